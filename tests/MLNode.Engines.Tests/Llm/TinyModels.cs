using Microsoft.Extensions.Logging.Abstractions;
using MLNode.Engines.Llm;
using MLNode.Runtime.Checkpoints;
using TorchSharp;
using static TorchSharp.torch;

using MLNode.Tests;

namespace MLNode.Engines.Tests.Llm;

/// <summary>The three tiny random Qwen checkpoints of ../shared/fixtures/llm, loaded once per dtype.</summary>
public static class TinyModels
{
    public static readonly string[] Names = ["qwen3-tiny", "qwen2-tiny", "qwen3-moe-tiny"];
    private static readonly Dictionary<(string, ScalarType), QwenForCausalLM> Cache = new();
    private static readonly Lock Gate = new();

    public static QwenForCausalLM Get(string name, ScalarType dtype)
    {
        lock (Gate)
        {
            if (Cache.TryGetValue((name, dtype), out var model)) return model;
            torch.set_grad_enabled(false);
            var folder = Fixtures.Path("llm", name);
            // Loaded on a thread of its own: dispose scopes are per thread, so a caller's open scope cannot
            // claim (and later dispose) the weights of a model every test shares.
            model = Task.Run(() =>
            {
                torch.set_grad_enabled(false);
                return LlmEngine.Load(HfModelConfig.FromFile(Path.Combine(folder, "config.json")), folder, CPU, dtype, NullLogger.Instance);
            }).GetAwaiter().GetResult();
            Cache[(name, dtype)] = model;
            return model;
        }
    }
}
