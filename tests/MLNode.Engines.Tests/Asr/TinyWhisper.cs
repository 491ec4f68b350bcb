using Microsoft.Extensions.Logging.Abstractions;
using MLNode.Engines.Asr.Whisper;
using MLNode.Runtime.Checkpoints;
using MLNode.Tests;
using TorchSharp;
using static TorchSharp.torch;

namespace MLNode.Engines.Tests.Asr;

/// <summary>The whisper-tiny-random fixture (../shared/fixtures/whisper), loaded once in float32 on the CPU.</summary>
public static class TinyWhisper
{
    private static readonly Lazy<WhisperForConditionalGeneration> Shared = new(Load);
    private static readonly Lazy<WhisperConfig> SharedConfig = new(() => WhisperConfig.FromDirectory(Folder));

    public static string Folder => Fixtures.Path("whisper", "whisper-tiny-random");

    public static WhisperConfig Config => SharedConfig.Value;

    public static WhisperForConditionalGeneration Model => Shared.Value;

    /// <summary>A reference tensor of reference_tensors.safetensors, e.g. "speech_en_16k.mel".</summary>
    public static Tensor Reference(string name)
    {
        using var file = SafetensorsFile.Open(Path.Combine(Folder, "reference_tensors.safetensors"));
        return file.Load(name, CPU);
    }

    private static WhisperForConditionalGeneration Load()
    {
        // Loaded on a new thread without the caller's execution context: TorchSharp registers new tensors in the
        // innermost dispose scope of the thread they are made on, and a test's open scope must not take the
        // weights every test shares with it.
        WhisperForConditionalGeneration? loaded = null;
        Exception? failure = null;
        using (ExecutionContext.SuppressFlow())
        {
            var loader = new Thread(() =>
            {
                try
                {
                    torch.set_grad_enabled(false);
                    loaded = WhisperEngine.Load(WhisperConfig.FromDirectory(Folder), Folder, CPU, ScalarType.Float32, NullLogger.Instance);
                }
                catch (Exception e)
                {
                    failure = e;
                }
            });
            loader.Start();
            loader.Join();
        }
        return loaded ?? throw new InvalidOperationException("whisper-tiny-random did not load", failure);
    }
}
