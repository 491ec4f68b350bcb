using System.Text.Json;
using Microsoft.Extensions.Logging.Abstractions;
using MLNode.Engines.Asr;
using MLNode.Engines.Asr.Qwen3Asr;
using MLNode.Engines.Asr.Whisper;
using MLNode.Engines.Hosting;
using MLNode.Engines.Layers;
using MLNode.Engines.Llm.Sampling;
using MLNode.Runtime.Checkpoints;
using MLNode.Runtime.Registry;
using MLNode.Tests;
using static TorchSharp.torch;

namespace MLNode.Gpu.Tests;

/// <summary>
/// The speech engines on CUDA against the fixtures the CPU tests use: Whisper's greedy transcription from audio
/// and Qwen3-ASR's audio encoder, in float32.
/// </summary>
public sealed class SpeechGpuTests
{
    // The references were recorded on an H100 with PyTorch's default TF32 convolutions, which libtorch also uses
    // here; the CPU tests' bound (5e-4 on logprobs, 2e-3 on encoder activations) covers the remaining order-of-
    // summation differences with the same margin.
    private const double LogprobTolerance = 5e-4;
    private const double EncoderTolerance = 2e-3;

    [Fact]
    public async Task Whisper_greedy_transcription_on_cuda_reproduces_the_reference_steps()
    {
        var device = Gpu.Require();
        var folder = Fixtures.Path("whisper", "whisper-tiny-random");
        var config = WhisperConfig.FromDirectory(folder);
        using var checkpoint = Checkpoint.Open(folder);
        var model = new WhisperForConditionalGeneration(config, new CheckpointWeights(checkpoint, device, ScalarType.Float32));
        var tokenizer = WhisperTokenizer.FromTiktoken(Fixtures.Path("whisper", "assets", "multilingual.tiktoken"), config);
        var card = new ModelCard("whisper-tiny-random", Modality.Asr, "whisper", "float32", device.ToString(), folder,
            new ModelLimits(config.MaxTargetPositions, 4), 0, new Dictionary<string, double>());
        await using var executor = WhisperExecutor.Create(card, model, tokenizer, 4, device, NullLogger.Instance);

        var samples = WavSamples.Read(Fixtures.Path("audio", "speech_en_16k.wav"));
        var audio = new CanonicalAudio(samples, "fixture");
        var greedy = new SamplingParams(Temperature: 0, TopLogprobs: 5, Mode: LogprobsMode.Raw);
        var result = await executor.TranscribeAsync(new SpeechJob(audio, executor.PlanWindows(audio), SpeechTask.Transcribe, "en", null, greedy,
            MaxTokensPerWindow: 16), null, TestContext.Current.CancellationToken);

        using var doc = JsonDocument.Parse(File.ReadAllText(Path.Combine(folder, "reference_outputs.json")));
        var steps = doc.RootElement.GetProperty("clips")[0].GetProperty("greedy").GetProperty("steps").EnumerateArray().ToArray();
        var window = Assert.Single(result.Windows);
        Assert.Equal(steps.Length, window.Tokens.Count);
        for (var i = 0; i < steps.Length; i++)
        {
            Assert.Equal(steps[i].GetProperty("token").GetInt32(), window.Tokens[i].Token);
            Assert.Equal(steps[i].GetProperty("top_ids").EnumerateArray().Select(e => e.GetInt32()), window.Tokens[i].Top.Select(t => t.Token));
            Assert.True(Math.Abs(steps[i].GetProperty("logprob").GetDouble() - window.Tokens[i].Logprob) <= LogprobTolerance,
                $"step {i}: {window.Tokens[i].Logprob} vs {steps[i].GetProperty("logprob").GetDouble()}");
        }
    }

    [Fact]
    public void Qwen3_asr_audio_encoder_on_cuda_matches_the_reference()
    {
        var device = Gpu.Require();
        var folder = Fixtures.Path("asr", "qwen3-asr-tiny");
        using var checkpoint = Checkpoint.Open(folder);
        var model = new Qwen3AsrThinker(Qwen3AsrConfig.FromFile(Path.Combine(folder, "config.json")), new CheckpointWeights(checkpoint, device, ScalarType.Float32));
        using var reference = SafetensorsFile.Open(Path.Combine(folder, "reference_tensors.safetensors"));
        using var mel = reference.Load("mel", device);
        using var expected = reference.Load("audio_embeds", device);
        using var ours = model.EncodeAudio([mel]);
        Assert.Equal(expected.shape, ours.shape);
        var worst = (ours - expected).abs().max().item<float>();
        Assert.True(worst <= EncoderTolerance, $"max |Δ| {worst} > {EncoderTolerance}");
    }
}
