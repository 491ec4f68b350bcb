using Microsoft.Extensions.Logging;
using MLNode.Engines.Hosting;
using MLNode.Engines.Layers;
using MLNode.Engines.Llm.ChatTemplates;
using MLNode.Engines.Llm.Sampling;
using MLNode.Engines.Llm.Tokenization;
using MLNode.Runtime.Checkpoints;
using MLNode.Runtime.Registry;
using MLNode.Runtime.Torch;
using TorchSharp;
using static TorchSharp.torch;

namespace MLNode.Engines.Llm;

/// <summary>Loads Qwen2 / Qwen3 / Qwen3-MoE checkpoints into an <see cref="LlmExecutor"/>.</summary>
public sealed class LlmEngine(TorchRuntime runtime, ILoggerFactory loggers) : IExecutorFactory
{
    private static readonly string[] Architectures = ["qwen2", "qwen3", "qwen3_moe"];

    public bool Supports(Modality modality, string architecture) => modality == Modality.Llm && Architectures.Contains(architecture);

    public Task<IModelExecutor> LoadAsync(ModelLoadRequest request, CancellationToken ct) => Task.Run<IModelExecutor>(() =>
    {
        var config = HfModelConfig.FromFile(Path.Combine(request.Folder, "config.json"));
        if (config.ModelType != request.Entry.Architecture)
            throw new ModelLoadException($"{request.Entry.Id}: config.json says model_type '{config.ModelType}', the registry says '{request.Entry.Architecture}'");
        var logger = loggers.CreateLogger<LlmEngine>();
        var dtype = DTypes.Parse(request.Entry.Dtype);
        var model = Load(config, request.Folder, runtime.Device, dtype, logger, ct);
        var tokenizer = File.Exists(Path.Combine(request.Folder, "tokenizer.json")) ? ByteLevelBpeTokenizer.FromDirectory(request.Folder) : null;
        if (tokenizer is null)
            logger.LogWarning("{Model}: no tokenizer.json; the OpenAI endpoints need one, PoC does not", request.Entry.Id);

        var slots = request.Args.MaxNumSeqs ?? request.Entry.Limits.MaxBatch;
        var wanted = Math.Min(request.Args.MaxModelLen ?? request.Entry.Limits.MaxModelLen, config.MaxPositionEmbeddings);
        // The context is cut to fit the KV-cache budget.
        var capacity = KvCache.CapacityWithinBudget(wanted, config.NumHiddenLayers, slots, config.NumKeyValueHeads, config.HeadDim, dtype);
        if (capacity < wanted)
            logger.LogWarning("{Model}: KV cache for {Slots} sequences holds {Capacity} positions, not {Wanted} (MLNODE_KV_CACHE_GB={Gb})",
                request.Entry.Id, slots, capacity, wanted, KvCache.BudgetGigabytes);
        var cache = new KvCache(config.NumHiddenLayers, slots, config.NumKeyValueHeads, capacity, config.HeadDim, dtype, runtime.Device);
        var generator = new LlmGenerator(model, cache, slots, logger);

        var card = new ModelCard(request.Entry.Id, Modality.Llm, request.Entry.Architecture, request.Entry.Dtype, runtime.Device.ToString(),
            request.Folder, request.Entry.Limits with { MaxModelLen = capacity, MaxBatch = slots },
            ParameterCount(model), request.Entry.Pricing);
        return new LlmExecutor(card, model, tokenizer, generator, StopTokens(request.Folder, tokenizer));
    }, ct);

    /// <summary>
    /// The checkpoint's weights, counted the same on every device: FP8 layers that stay FP8 on a GPU carry
    /// their block scales as parameters too, which the dequantised CPU layers do not.
    /// </summary>
    public static long ParameterCount(nn.Module model) =>
        model.named_parameters().Where(p => !p.name.EndsWith("weight_scale_inv", StringComparison.Ordinal)).Sum(p => p.parameter.numel());

    /// <summary>EOS ids of generation_config.json (an id or a list, as Qwen ships both) and the tokenizer's eos_token.</summary>
    public static HashSet<int> StopTokens(string folder, ByteLevelBpeTokenizer? tokenizer)
    {
        var stops = new HashSet<int>();
        if (tokenizer?.EosTokenId is { } eos) stops.Add(eos);
        var path = Path.Combine(folder, "generation_config.json");
        if (File.Exists(path))
        {
            using var doc = System.Text.Json.JsonDocument.Parse(File.ReadAllText(path));
            if (doc.RootElement.TryGetProperty("eos_token_id", out var e))
            {
                if (e.ValueKind == System.Text.Json.JsonValueKind.Number) stops.Add(e.GetInt32());
                else if (e.ValueKind == System.Text.Json.JsonValueKind.Array) stops.UnionWith(e.EnumerateArray().Select(x => x.GetInt32()));
            }
        }
        return stops;
    }

    /// <summary>Builds the model straight from the checkpoint tensors on <paramref name="device"/> in <paramref name="dtype"/>.</summary>
    public static QwenForCausalLM Load(HfModelConfig config, string folder, Device device, ScalarType dtype, ILogger logger, CancellationToken ct = default) =>
        CheckpointWeights.Load(folder, device, dtype, logger, w => new QwenForCausalLM(config, w), ct);
}

/// <summary>The activation dtypes a registry entry can name.</summary>
public static class DTypes
{
    public static ScalarType Parse(string dtype) => dtype switch
    {
        "bfloat16" => ScalarType.BFloat16,
        "float16" => ScalarType.Float16,
        "float32" => ScalarType.Float32,
        _ => throw new ArgumentException($"unknown activation dtype '{dtype}'", nameof(dtype)),
    };
}

/// <summary>A loaded Qwen-family model; the same instance serves inference, replay and PoC.</summary>
public sealed class LlmExecutor(ModelCard card, QwenForCausalLM model, ByteLevelBpeTokenizer? tokenizer, LlmGenerator generator, IReadOnlySet<int> stopTokens)
    : IModelExecutor
{
    /// <summary>Ids that end a completion (EOS of the tokenizer and of generation_config.json).</summary>
    public IReadOnlySet<int> StopTokens { get; } = stopTokens;

    public ModelCard Card { get; } = card;
    public QwenForCausalLM Model { get; } = model;
    public ByteLevelBpeTokenizer? Tokenizer { get; } = tokenizer;

    /// <summary>The checkpoint's chat template, parsed once (a template that does not parse fails each chat request with its message).</summary>
    public Lazy<ChatTemplate>? ChatTemplate { get; } =
        tokenizer?.Config.ChatTemplate is { } source ? new Lazy<ChatTemplate>(() => ChatTemplates.ChatTemplate.Parse(source)) : null;
    public LlmGenerator Generator { get; } = generator;
    public IPocProver? Poc { get; } = new LlmPocProver(model);

    /// <summary>
    /// Teacher-forced replay: one forward over prompt + completion, then each completion token's logprob
    /// (raw or processed, as <paramref name="sampling"/> says) from the logits of the position before it.
    /// The fast validator mode; numerics differ from step-by-step decoding only in float rounding.
    /// </summary>
    public Task<IReadOnlyList<TokenLogprob>> ScoreAsync(IReadOnlyList<int> prompt, IReadOnlyList<int> completion, SamplingParams sampling, CancellationToken ct) =>
        Task.Run<IReadOnlyList<TokenLogprob>>(() =>
        {
            using var scope = torch.NewDisposeScope();
            var device = Model.parameters().First().device;
            var ids = torch.tensor(prompt.Concat(completion).Select(t => (long)t).ToArray(), [1, prompt.Count + completion.Count], device: device);
            var logits = Model.Logits(Model.Hidden(Model.Embed(ids)))[0];
            return completion.Select((token, i) => TokenSampler.Next(logits[prompt.Count - 1 + i], sampling, i, token)).ToList();
        }, ct);

    public async ValueTask DisposeAsync()
    {
        await Generator.DisposeAsync();
        Model.Dispose();
    }
}
