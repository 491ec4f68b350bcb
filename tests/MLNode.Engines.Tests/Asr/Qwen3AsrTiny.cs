using System.Text.Json;
using Microsoft.Extensions.Logging.Abstractions;
using MLNode.Engines.Asr.Qwen3Asr;
using MLNode.Engines.Hosting;
using MLNode.Engines.Layers;
using MLNode.Runtime.Registry;
using MLNode.Tests;
using TorchSharp;
using static TorchSharp.torch;

namespace MLNode.Engines.Tests.Asr;

/// <summary>
/// ../shared/fixtures/asr/qwen3-asr-tiny loaded once in fp32 on the CPU, with an executor over it. The checkpoint has no
/// tokenizer: its prompt's text ids are fed as the reference wrote them (<see cref="Format"/>).
/// </summary>
public static class Qwen3AsrTiny
{
    /// <summary>The fixture README's &lt;|audio_end|&gt;: the config names only the placeholder and start ids.</summary>
    public const int AudioEndTokenId = 592;

    /// <summary>
    /// Stand-ins for &lt;asr_text&gt; and &lt;|im_end|&gt;, which the tiny vocabulary does not define: the reference generation
    /// ran with the released model's EOS ids, outside this vocabulary, so nothing stopped it; neither id is among its tokens.
    /// </summary>
    public const int AsrTextTokenId = 598, EndOfTurnTokenId = 599;

    private static readonly Lazy<Qwen3AsrExecutor> Shared = new(Load);

    public static string Folder => Fixtures.Path("asr", "qwen3-asr-tiny");

    public static Qwen3AsrExecutor Executor => Shared.Value;

    public static Qwen3AsrThinker Model => Shared.Value.Model;

    public static Qwen3AsrConfig Config => Qwen3AsrConfig.FromFile(Path.Combine(Folder, "config.json"));

    public static JsonElement Reference()
    {
        using var doc = JsonDocument.Parse(File.ReadAllText(Path.Combine(Folder, "reference_outputs.json")));
        return doc.RootElement.Clone();
    }

    public static Tensor ReferenceTensor(string name)
    {
        using var file = Runtime.Checkpoints.SafetensorsFile.Open(Path.Combine(Folder, "reference_tensors.safetensors"));
        return file.Load(name, CPU);
    }

    /// <summary>
    /// The prompt format with the reference's text ids: "&lt;|im_start|&gt;user\n" was [5, 17] and the assistant turn [9, 33].
    /// Decoding has no text to give; it names the ids.
    /// </summary>
    public static Qwen3AsrChatFormat Format(Qwen3AsrConfig config)
    {
        var pieces = new Dictionary<string, int[]>
        {
            [Qwen3AsrChatFormat.UserTurn] = [5, 17],
            [Qwen3AsrChatFormat.AssistantTurn] = [9, 33],
        };
        return new Qwen3AsrChatFormat(
            new Qwen3AsrChatFormat.SpecialTokens(config.AudioStartTokenId, config.AudioTokenId, AudioEndTokenId, AsrTextTokenId, EndOfTurnTokenId),
            (text, _) => pieces.TryGetValue(text, out var ids) ? ids : throw new ArgumentException($"the tiny fixture has no ids for '{text}'"),
            ids => string.Join(" ", ids));
    }

    private static Qwen3AsrExecutor Load()
    {
        // Loaded on a thread of its own, without the caller's execution context, so that no test's dispose scope adopts
        // the weights every test shares (see TinyModels).
        Qwen3AsrExecutor? executor = null;
        Exception? failure = null;
        using (ExecutionContext.SuppressFlow())
        {
            var loader = new Thread(() =>
            {
                try
                {
                    torch.set_grad_enabled(false);
                    var config = Config;
                    var model = Qwen3AsrEngine.Load(config, Folder, CPU, ScalarType.Float32, NullLogger.Instance);
                    var text = config.Text;
                    var cache = new KvCache(text.NumHiddenLayers, slots: 4, text.NumKeyValueHeads, capacity: 256, text.HeadDim, ScalarType.Float32, CPU);
                    var card = new ModelCard("qwen3-asr-tiny", Modality.Asr, Qwen3AsrConfig.ModelTypeName, "float32", "cpu", Folder,
                        new ModelLimits(256, 4), 0, new Dictionary<string, double>());
                    executor = new Qwen3AsrExecutor(card, model, Format(config), cache, new HashSet<int> { EndOfTurnTokenId }, Qwen3AsrEngine.DefaultWindowSeconds, NullLogger.Instance);
                }
                catch (Exception e)
                {
                    failure = e;
                }
            });
            loader.Start();
            loader.Join();
        }
        return failure is null ? executor! : throw new InvalidOperationException("qwen3-asr-tiny did not load", failure);
    }
}
