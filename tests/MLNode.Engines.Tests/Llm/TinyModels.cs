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
            // Loaded on a new thread, without the caller's execution context: TorchSharp registers new tensors in
            // the innermost dispose scope of the thread (and async flow) they are made on, so loading on the
            // caller's thread — or on a pool thread an awaiting test left a scope open on — would let that scope
            // dispose the weights of a model every test shares.
            QwenForCausalLM? loaded = null;
            Exception? failure = null;
            using (ExecutionContext.SuppressFlow())
            {
                var loader = new Thread(() =>
                {
                    try
                    {
                        torch.set_grad_enabled(false);
                        loaded = LlmEngine.Load(HfModelConfig.FromFile(Path.Combine(folder, "config.json")), folder, CPU, dtype, NullLogger.Instance);
                    }
                    catch (Exception e)
                    {
                        failure = e;
                    }
                });
                loader.Start();
                loader.Join();
            }
            if (failure is not null) throw new InvalidOperationException($"{name} did not load", failure);
            model = loaded!;
            Cache[(name, dtype)] = model;
            return model;
        }
    }
}
