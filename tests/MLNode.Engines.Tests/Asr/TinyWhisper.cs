using Microsoft.Extensions.Logging.Abstractions;
using MLNode.Engines.Asr;
using MLNode.Engines.Asr.Whisper;
using MLNode.Engines.Hosting;
using MLNode.Runtime.Registry;
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

    private static readonly Lazy<WhisperTokenizer> SharedTokenizer = new(() =>
        WhisperTokenizer.FromTiktoken(Fixtures.Path("whisper", "assets", "multilingual.tiktoken"), Config));

    /// <summary>openai's multilingual rank file with the control tokens appended: the fixture ships no tokenizer.</summary>
    public static WhisperTokenizer Tokenizer => SharedTokenizer.Value;

    /// <summary>An executor over the shared model decoding up to <paramref name="slots"/> windows together.</summary>
    public static WhisperExecutor Executor(int slots = 4)
    {
        var card = new ModelCard("whisper-tiny-random", Modality.Asr, "whisper", "float32", "cpu", Folder, new ModelLimits(Config.MaxTargetPositions, slots),
            Model.parameters().Sum(p => p.numel()), new Dictionary<string, double>());
        return WhisperExecutor.Create(card, Model, Tokenizer, slots, CPU, NullLogger.Instance);
    }

    /// <summary>A fixture clip of ../shared/fixtures/audio as canonical audio (its wav samples are exactly what FFmpeg gives).</summary>
    public static CanonicalAudio Audio(string clip)
    {
        var samples = WavSamples.Read(Fixtures.Path("audio", $"{clip}.wav"));
        var bytes = new byte[samples.Length * sizeof(float)];
        Buffer.BlockCopy(samples, 0, bytes, 0, bytes.Length);
        return new CanonicalAudio(samples, Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData(bytes)));
    }

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
