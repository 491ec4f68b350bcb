using System.Text.Json;
using Microsoft.Extensions.Logging;
using MLNode.Engines.Hosting;
using MLNode.Engines.Layers;
using MLNode.Engines.Llm;
using MLNode.Engines.Llm.Tokenization;
using MLNode.Runtime.Checkpoints;
using MLNode.Runtime.Registry;
using MLNode.Runtime.Torch;
using static TorchSharp.torch;

namespace MLNode.Engines.Asr.Qwen3Asr;

/// <summary>Loads Qwen3-ASR checkpoints (HF layout: <c>thinker_config</c>, weights under <c>thinker.</c>) into a <see cref="Qwen3AsrExecutor"/>.</summary>
public sealed class Qwen3AsrEngine(TorchRuntime runtime, ILoggerFactory loggers) : IExecutorFactory
{
    /// <summary>Window length when preprocessor_config.json names no <c>chunk_length</c>: the extractor's default.</summary>
    public const double DefaultWindowSeconds = 30;

    public bool Supports(Modality modality, string architecture) => modality == Modality.Asr && architecture == Qwen3AsrConfig.ModelTypeName;

    public Task<IModelExecutor> LoadAsync(ModelLoadRequest request, CancellationToken ct) => Task.Run<IModelExecutor>(() =>
    {
        var folder = request.Folder;
        var config = Qwen3AsrConfig.FromFile(Path.Combine(folder, "config.json"));
        if (config.ModelType != request.Entry.Architecture)
            throw new ModelLoadException($"{request.Entry.Id}: config.json says model_type '{config.ModelType}', the registry says '{request.Entry.Architecture}'");
        if (!ByteLevelBpeTokenizer.ExistsIn(folder))
            throw new ModelLoadException($"{request.Entry.Id}: no tokenizer (tokenizer.json, or vocab.json + merges.txt) in {folder}; Qwen3-ASR's prompt needs one");
        var tokenizer = ByteLevelBpeTokenizer.FromDirectory(folder);
        var format = Qwen3AsrChatFormat.FromTokenizer(tokenizer, config);
        var windowSeconds = WindowSeconds(folder, config.Audio.NumMelBins);

        var logger = loggers.CreateLogger<Qwen3AsrEngine>();
        var dtype = DTypes.Parse(request.Entry.Dtype);
        var model = Load(config, folder, runtime.Device, dtype, logger, ct);

        var text = config.Text;
        var slots = request.Args.MaxNumSeqs ?? request.Entry.Limits.MaxBatch;
        var wanted = Math.Min(request.Args.MaxModelLen ?? request.Entry.Limits.MaxModelLen, text.MaxPositionEmbeddings);
        var capacity = KvCache.CapacityWithinBudget(wanted, text.NumHiddenLayers, slots, text.NumKeyValueHeads, text.HeadDim, dtype);
        if (capacity < wanted)
            logger.LogWarning("{Model}: KV cache for {Slots} windows holds {Capacity} positions, not {Wanted} (MLNODE_KV_CACHE_GB={Gb})",
                request.Entry.Id, slots, capacity, wanted, KvCache.BudgetGigabytes);
        var cache = new KvCache(text.NumHiddenLayers, slots, text.NumKeyValueHeads, capacity, text.HeadDim, dtype, runtime.Device);

        var stops = LlmEngine.StopTokens(folder, tokenizer);
        stops.Add(format.Tokens.EndOfTurn);
        var card = new ModelCard(request.Entry.Id, Modality.Asr, request.Entry.Architecture, request.Entry.Dtype, runtime.Device.ToString(),
            folder, request.Entry.Limits with { MaxModelLen = capacity, MaxBatch = slots }, LlmEngine.ParameterCount(model), request.Entry.Pricing);
        return new Qwen3AsrExecutor(card, model, format, cache, stops, windowSeconds, logger);
    }, ct);

    /// <summary>Builds the thinker straight from the checkpoint tensors on <paramref name="device"/> in <paramref name="dtype"/>.</summary>
    public static Qwen3AsrThinker Load(Qwen3AsrConfig config, string folder, Device device, ScalarType dtype, ILogger logger, CancellationToken ct = default) =>
        CheckpointWeights.Load(folder, device, dtype, logger, w => new Qwen3AsrThinker(config, w), ct);

    /// <summary>
    /// The window length of preprocessor_config.json (<c>chunk_length</c>, what vLLM serves as its longest clip), after
    /// checking that its feature extractor is the one this engine computes: 16 kHz, hop 160, the encoder's mel bins.
    /// </summary>
    private static double WindowSeconds(string folder, int melBins)
    {
        var path = Path.Combine(folder, "preprocessor_config.json");
        if (!File.Exists(path)) return DefaultWindowSeconds;
        using var document = JsonDocument.Parse(File.ReadAllText(path));
        var json = ConfigJsonReader.Root(document.RootElement, path);
        if (json.OptionalInt("feature_size") is { } bins && bins != melBins)
            throw new ModelLoadException($"{path}: feature_size {bins}, but the audio encoder reads {melBins} mel bins");
        if (json.OptionalInt("sampling_rate") is { } rate && rate != CanonicalAudio.SampleRate)
            throw new ModelLoadException($"{path}: sampling_rate {rate}; canonical audio is {CanonicalAudio.SampleRate} Hz");
        if (json.OptionalInt("hop_length") is { } hop && hop != Audio.LogMelSpectrogram.HopLength)
            throw new ModelLoadException($"{path}: hop_length {hop}; the front end hops {Audio.LogMelSpectrogram.HopLength} samples");
        var seconds = json.OptionalDouble("chunk_length") ?? DefaultWindowSeconds;
        return seconds > 0 ? seconds : throw new ModelLoadException($"{path}: chunk_length must be positive, got {seconds}");
    }
}
