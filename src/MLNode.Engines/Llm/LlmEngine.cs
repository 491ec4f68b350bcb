using Microsoft.Extensions.Logging;
using MLNode.Engines.Hosting;
using MLNode.Engines.Layers;
using MLNode.Engines.Llm.ChatTemplates;
using MLNode.Engines.Llm.Sampling;
using MLNode.Engines.Llm.Tokenization;
using MLNode.Runtime.Checkpoints;
using MLNode.Runtime.Collectives;
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
        var tokenizer = File.Exists(Path.Combine(request.Folder, "tokenizer.json")) ? ByteLevelBpeTokenizer.FromDirectory(request.Folder) : null;
        if (tokenizer is null)
            logger.LogWarning("{Model}: no tokenizer.json; the OpenAI endpoints need one, PoC does not", request.Entry.Id);

        var slots = request.Args.MaxNumSeqs ?? request.Entry.Limits.MaxBatch;
        var wanted = Math.Min(request.Args.MaxModelLen ?? request.Entry.Limits.MaxModelLen, config.MaxPositionEmbeddings);
        var model = LoadRanks(config, request.Folder, runtime, dtype, request.Args.TensorParallelSize, new KvCacheRequest(slots, wanted), logger, ct);
        try
        {
            // The context is cut to fit the KV-cache budget.
            var capacity = model.Ranks.Ranks[0].Cache!.Capacity;
            if (capacity < wanted)
                logger.LogWarning("{Model}: KV cache for {Slots} sequences holds {Capacity} positions, not {Wanted} (MLNODE_KV_CACHE_GB={Gb})",
                    request.Entry.Id, slots, capacity, wanted, KvCache.BudgetGigabytes);
            var generator = new LlmGenerator(model.Ranks, slots, logger);
            var card = new ModelCard(request.Entry.Id, Modality.Llm, request.Entry.Architecture, request.Entry.Dtype, model.Devices,
                request.Folder, request.Entry.Limits with { MaxModelLen = capacity, MaxBatch = slots },
                model.ParameterCount, request.Entry.Pricing);
            return new LlmExecutor(card, model.Ranks, tokenizer, generator, StopTokens(request.Folder, tokenizer));
        }
        catch
        {
            model.Ranks.Dispose();
            throw;
        }
    }, ct);

    /// <summary>How many sequences the KV cache holds, and the context each should have if the budget allows.</summary>
    public sealed record KvCacheRequest(int Slots, int WantedContext);

    /// <summary>The loaded ranks, where they run (for the model card) and the checkpoint's parameters they hold between them.</summary>
    public sealed record LoadedRanks(RankThreads<LlmRank> Ranks, string Devices, long ParameterCount);

    /// <summary>
    /// The served model with a KV cache per rank: all of it on the runtime's device when <paramref name="tensorParallelSize"/>
    /// is 1, else that many shards, one per GPU over NCCL on a CUDA runtime (GPU r for rank r), or one per thread over the
    /// CPU communicator on the CPU. Each rank reads only its shard of the checkpoint.
    /// </summary>
    public static LoadedRanks LoadRanks(HfModelConfig config, string folder, TorchRuntime runtime, ScalarType dtype, int tensorParallelSize,
        KvCacheRequest cache, ILogger logger, CancellationToken ct = default)
    {
        ct.ThrowIfCancellationRequested();
        using var checkpoint = Checkpoint.Open(folder);
        logger.LogInformation("Reading {Tensors} tensors from {Shards} shard(s) as {Ranks} rank(s) on {Device} as {DType}",
            checkpoint.TensorNames.Count, checkpoint.ShardPaths.Count, tensorParallelSize, runtime.Device, dtype);
        return BuildRanks(config, device => new CheckpointWeights(checkpoint, device, dtype), runtime, tensorParallelSize, cache, logger);
    }

    /// <summary>
    /// <see cref="LoadRanks"/> with the weights of each rank's device from <paramref name="weights"/> (random weights of a
    /// real model's shapes, for benchmarks); the KV caches in the weights' dtype.
    /// </summary>
    public static LoadedRanks BuildRanks(HfModelConfig config, Func<Device, WeightSource> weights, TorchRuntime runtime, int tensorParallelSize,
        KvCacheRequest cache, ILogger logger)
    {
        var parameters = new System.Collections.Concurrent.ConcurrentDictionary<string, long>(StringComparer.Ordinal);
        LlmRank Build(Device device, TensorParallel parallel)
        {
            var source = weights(device);
            var model = new QwenForCausalLM(config, source, parallel: parallel);
            try
            {
                model.eval();
                foreach (var read in source.Reads) parameters[read.Name] = read.WholeElements;
                if (parallel.Size > 1)
                    logger.LogInformation("Rank {Rank} on {Device} holds {Held:N0} of the {Whole:N0} parameters it uses",
                        parallel.Rank, device, source.Reads.Sum(r => r.Elements), source.Reads.Sum(r => r.WholeElements));
                return new LlmRank(model, NewCache(model, cache, device, source.DType), logger);
            }
            catch
            {
                model.Dispose();
                throw;
            }
        }

        if (tensorParallelSize == 1)
        {
            var whole = RankThreads<LlmRank>.Inline(Build(runtime.Device, TensorParallel.Single), Release);
            return new LoadedRanks(whole, runtime.Device.ToString(), parameters.Values.Sum());
        }
        IReadOnlyList<ICommunicator> communicators = runtime.IsCuda
            ? NcclCommunicator.CreateGroup(Enumerable.Range(0, tensorParallelSize).ToArray(), runtime.LibtorchPath)
            : CpuCommunicator.CreateGroup(tensorParallelSize);
        var devices = communicators.Select(c => runtime.IsCuda ? new Device(DeviceType.CUDA, c.Rank) : runtime.Device).ToArray();
        var ranks = RankThreads<LlmRank>.Start(communicators, c => Build(devices[c.Rank], new TensorParallel(c)), Release);
        var where = runtime.IsCuda ? string.Join(",", devices.Select(d => d.ToString())) : $"{runtime.Device} ({tensorParallelSize} tensor-parallel ranks)";
        return new LoadedRanks(ranks, where, parameters.Values.Sum());
    }

    /// <summary>A rank's KV cache: its own key/value heads for every slot, at the context that fits the budget.</summary>
    private static KvCache NewCache(QwenForCausalLM model, KvCacheRequest request, Device device, ScalarType dtype)
    {
        var config = model.Config;
        var capacity = KvCache.CapacityWithinBudget(request.WantedContext, config.NumHiddenLayers, request.Slots, model.KeyValueHeads, config.HeadDim, dtype);
        return new KvCache(config.NumHiddenLayers, request.Slots, model.KeyValueHeads, capacity, config.HeadDim, dtype, device);
    }

    private static void Release(LlmRank rank)
    {
        rank.Dispose();
        rank.Model.Dispose();
    }

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

/// <summary>
/// A loaded Qwen-family model, whole or as tensor-parallel ranks; the same instance serves inference, replay and PoC.
/// A rank that fails stops the model: every later request fails with that rank's error until the model is reloaded.
/// </summary>
public sealed class LlmExecutor(ModelCard card, RankThreads<LlmRank> ranks, ByteLevelBpeTokenizer? tokenizer, LlmGenerator generator, IReadOnlySet<int> stopTokens)
    : IModelExecutor
{
    /// <summary>Ids that end a completion (EOS of the tokenizer and of generation_config.json).</summary>
    public IReadOnlySet<int> StopTokens { get; } = stopTokens;

    public ModelCard Card { get; } = card;

    /// <summary>The model's ranks (one when it is not tensor-parallel).</summary>
    public RankThreads<LlmRank> Ranks { get; } = ranks;

    public ByteLevelBpeTokenizer? Tokenizer { get; } = tokenizer;

    /// <summary>The checkpoint's chat template, parsed once (a template that does not parse fails each chat request with its message).</summary>
    public Lazy<ChatTemplate>? ChatTemplate { get; } =
        tokenizer?.Config.ChatTemplate is { } source ? new Lazy<ChatTemplate>(() => ChatTemplates.ChatTemplate.Parse(source)) : null;
    public LlmGenerator Generator { get; } = generator;

    public string? Failure => Ranks.Failure?.Message;
    public IPocProver? Poc { get; } = new LlmPocProver(ranks);

    /// <summary>
    /// Teacher-forced replay: one forward over prompt + completion, then each completion token's logprob
    /// (raw or processed, as <paramref name="sampling"/> says) from the logits of the position before it.
    /// The fast validator mode; numerics differ from step-by-step decoding only in float rounding.
    /// </summary>
    public Task<IReadOnlyList<TokenLogprob>> ScoreAsync(IReadOnlyList<int> prompt, IReadOnlyList<int> completion, SamplingParams sampling, CancellationToken ct) =>
        Task.Run<IReadOnlyList<TokenLogprob>>(() =>
        {
            using var scope = torch.NewDisposeScope();
            var ids = prompt.Concat(completion).Select(t => (long)t).ToArray();
            var logits = Ranks.RunLast(r => r.LogitsOf(ids));
            return TokenSampler.NextBatch(logits.narrow(0, prompt.Count - 1, completion.Count), [.. Enumerable.Repeat(sampling, completion.Count)],
                [.. Enumerable.Range(0, completion.Count)], [.. completion.Select(token => (int?)token)]);
        }, ct);

    public async ValueTask DisposeAsync()
    {
        await Generator.DisposeAsync();
        Ranks.Dispose();
    }
}
