using System.Diagnostics;
using System.Text.Json;
using Microsoft.Extensions.Logging;
using MLNode.Engines.Asr;
using MLNode.Engines.Asr.Whisper;
using MLNode.Engines.Hosting;
using MLNode.Engines.Layers;
using MLNode.Engines.Llm;
using MLNode.Protocol.Poc;
using MLNode.Runtime.Checkpoints;
using MLNode.Runtime.Gpu;
using MLNode.Runtime.Native;
using MLNode.Runtime.Registry;
using MLNode.Runtime.Torch;
using static TorchSharp.torch;

// GPU benchmarks and GPU conformance runs of the engines (see benchmarks/README.md).
//   mlnode-bench poc [--layers 36] [--batch 32] [--seq-len 1024] [--batches 5]   Qwen3-8B shape, random bf16 weights
//   mlnode-bench poc-fixtures DIR                                              ../shared/fixtures/llm models on this device
//   mlnode-bench whisper [--tiktoken FILE] [--decoder-layers 32] [--tokens 100] [--windows 16]   large-v3 shape, random bf16 weights
//   mlnode-bench decode-profile [--span 136]                                   GPU time of each decode-layer stage (Qwen3-8B shape)
//   mlnode-bench wan-dit [--layers 40] [--runs 3]                              Wan2.2-A14B expert shape, random weights
//   mlnode-bench wan-dit-fixtures DIR                                          ../shared/fixtures/wan/wan-tiny experts on this device
//   mlnode-bench wan-calibrate DIR [--device cpu|cuda] [--prompts 4] [--seeds 2] [--steps S] [--margin 2] [--malign-dtype bf16|fp32]
//                                                                              the video validator's thresholds on wan-tiny (docs/wan-validation.md)
// Every command takes --cudnn-attention on|off: whether libtorch's SDPA may pick cuDNN; the default is the engine's own
// choice (on for the Wan commands, off for the decoders).
using var loggers = LoggerFactory.Create(b => b.AddSimpleConsole(o => o.SingleLine = true));
var log = loggers.CreateLogger("bench");
var runtime = TorchRuntime.Initialize(Environment.GetEnvironmentVariable("MLNODE_LIBTORCH"), log);
var options = Options.Parse(args.Skip(1).ToArray());
runtime.CudnnAttentionEnabled = options.String("cudnn-attention", args.FirstOrDefault()?.StartsWith("wan-", StringComparison.Ordinal) == true ? "on" : "off") == "on";
return args.FirstOrDefault() switch
{
    "poc" => await PocBenchmark.RunAsync(runtime, options),
    "poc-fixtures" => await PocFixtures.RunAsync(runtime, args.Length > 1 ? args[1] : "fixtures/llm", log),
    "layer-profile" => LayerProfile.Run(runtime, options),
    "decode-profile" => DecodeProfile.Run(runtime, options),
    "llm" => await LlmBenchmark.RunAsync(runtime, options, log),
    "llm-tp" => await TensorParallelBenchmark.RunAsync(runtime, options, log),
    "whisper" => await WhisperBenchmark.RunAsync(runtime, options, log),
    "wan-dit" => WanDitBenchmark.Run(runtime, options),
    "wan-dit-fixtures" => WanDitBenchmark.Fixtures(runtime, args.Length > 1 ? args[1] : "fixtures/wan-tiny"),
    "wan-vae" => WanVaeBenchmark.Run(runtime, options),
    "wan-calibrate" => WanCalibrateCommand.Run(runtime, args.Length > 1 ? args[1] : "../shared/fixtures/wan/wan-tiny", options, log),
    _ => Usage(),
};

static int Usage()
{
    Console.Error.WriteLine("usage: mlnode-bench poc [--layers N --batch B --seq-len L --batches K] | poc-fixtures DIR | layer-profile | llm | llm-tp [--tp N --layers N --concurrency C --batch B --seq-len L] | whisper [--tiktoken FILE] | wan-dit | wan-dit-fixtures DIR | wan-vae | wan-calibrate DIR [--device cpu|cuda --prompts N --seeds N --steps S --margin M --malign-dtype bf16|fp32]");
    return 2;
}

sealed record Options(Dictionary<string, string> Values)
{
    /// <summary>"--name value" pairs; a positional argument (a fixture folder) between them is skipped.</summary>
    public static Options Parse(string[] args)
    {
        var values = new Dictionary<string, string>();
        for (var i = 0; i < args.Length; i++)
            if (args[i].StartsWith("--", StringComparison.Ordinal) && i + 1 < args.Length) values[args[i][2..]] = args[++i];
        return new(values);
    }

    public int Int(string name, int fallback) => Values.TryGetValue(name, out var v) ? int.Parse(v) : fallback;

    public double Double(string name, double fallback) => Values.TryGetValue(name, out var v) ? double.Parse(v, System.Globalization.CultureInfo.InvariantCulture) : fallback;

    public string String(string name, string fallback) => Values.GetValueOrDefault(name, fallback);
}

/// <summary>
/// PoC nonces/min on a Qwen3-8B-shaped model with random bf16 weights, the benchmark shape;
/// prints the time of each stage, model FLOP/s and peak GPU memory (NVML, all of the device).
/// </summary>
static class PocBenchmark
{
    public static async Task<int> RunAsync(TorchRuntime runtime, Options o)
    {
        var layers = o.Int("layers", 36);
        var (batch, seqLen, batches) = (o.Int("batch", 32), o.Int("seq-len", 1024), o.Int("batches", 5));
        var config = Qwen3_8B(layers);
        var model = new QwenForCausalLM(config, new RandomWeights(runtime.Device, ScalarType.BFloat16, seed: 1));
        var prover = new LlmPocProver(model);
        using var peak = new PeakMemory(new Nvml());

        var round = new PocRound("9F3A6C1E2B7D4058A1C3E5F708192A3B4C5D6E7F8091A2B3C4D5E6F708192A3B", "02ab34cd", seqLen, config.HiddenSize, 12, StrongRng: true);
        var nonces = new NonceIterator(1, 2);
        await prover.ComputeAsync(round, nonces.Take(batch), CancellationToken.None); // warm-up: kernels, allocator, layer vectors

        var watch = Stopwatch.StartNew();
        var produced = 0;
        for (var i = 0; i < batches; i++)
            produced += (await prover.ComputeAsync(round, nonces.Take(batch), CancellationToken.None)).Count;
        var seconds = watch.Elapsed.TotalSeconds;

        // Model FLOPs of one PoC forward: 2 per weight per token (no LM head), plus causal attention QKᵀ and PV.
        var weightsPerToken = (double)layers * (4096L * (4096 + 2 * 1024) + 4096L * 4096 + 3L * 4096 * 12288);
        var attention = (double)layers * 2 * 2 * seqLen * (seqLen + 1) / 2.0 * 4096;
        var flops = batches * batch * (2 * weightsPerToken * seqLen + attention);
        Console.WriteLine($"RESULT poc engine=mlnode layers={layers} batch={batch} seq_len={seqLen} nonces={produced} seconds={seconds:F3} " +
            $"nonces_per_min={produced / seconds * 60:F1} tflops={flops / seconds / 1e12:F1} peak_gpu_mib={peak.MaxUsedMb} " +
            $"input_gen_s={prover.Stages.InputSeconds / (batches + 1):F3} forward_s={prover.Stages.ForwardSeconds / (batches + 1):F3} (upload_s={prover.Stages.UploadSeconds / (batches + 1):F3}) per batch");
        return 0;
    }

    public static HfModelConfig Qwen3_8B(int layers) => HfModelConfig.Parse(JsonSerializer.Serialize(new
    {
        model_type = "qwen3", hidden_size = 4096, intermediate_size = 12288, num_hidden_layers = layers,
        num_attention_heads = 32, num_key_value_heads = 8, head_dim = 128, vocab_size = 151936,
        rms_norm_eps = 1e-6, rope_theta = 1000000.0, tie_word_embeddings = false, max_position_embeddings = 40960,
    }), "qwen3-8b-shape");

    /// <summary>Samples NVML's used memory every 50 ms; the maximum is the run's peak footprint.</summary>
    internal sealed class PeakMemory : IDisposable
    {
        private readonly Timer _timer;
        private long _max;

        /// <summary>MLNODE_BENCH_PEAK=off samples nothing: to see what the NVML queries cost the run they measure.</summary>
        public PeakMemory(IGpuInventory gpus) =>
            _timer = new Timer(_ => Interlocked.Exchange(ref _max, Math.Max(Interlocked.Read(ref _max), gpus.Devices().FirstOrDefault()?.UsedMemoryMb ?? 0)),
                null, 0, Environment.GetEnvironmentVariable("MLNODE_BENCH_PEAK") == "off" ? Timeout.Infinite : 50);

        public long MaxUsedMb => Interlocked.Read(ref _max);

        public void Dispose() => _timer.Dispose();
    }
}

/// <summary>
/// LLM serving on a Qwen3-8B-shaped model with random bf16 weights: decode tokens/s at concurrency 1
/// and 64 through the generator (KV cache, continuous batching), and teacher-forced forward tokens/s.
/// </summary>
static class LlmBenchmark
{
    public static async Task<int> RunAsync(TorchRuntime runtime, Options o, ILogger log)
    {
        var (promptLen, newTokens) = (o.Int("prompt", 128), o.Int("new-tokens", 128));
        var config = PocBenchmark.Qwen3_8B(o.Int("layers", 36));
        using var peak = new PocBenchmark.PeakMemory(new Nvml());
        var model = new QwenForCausalLM(config, new RandomWeights(runtime.Device, ScalarType.BFloat16, seed: 1));
        var cache = new KvCache(config.NumHiddenLayers, 64, config.NumKeyValueHeads, promptLen + newTokens + 8, config.HeadDim, ScalarType.BFloat16, runtime.Device);
        await using var generator = new LlmGenerator(model, cache, 64, log);
        var greedy = new MLNode.Engines.Llm.Sampling.SamplingParams(Temperature: 0, TopLogprobs: 5);
        Task<double> Decode(int concurrency, MLNode.Engines.Llm.Sampling.SamplingParams? sampling = null) =>
            DecodeTokensPerSecond(generator, config.VocabSize, promptLen, newTokens, concurrency, sampling);

        await Decode(1); // warm-up
        generator.DecodeTimes.Reset();
        var single = await Decode(1);
        Console.WriteLine($"RESULT llm-host c1 {generator.DecodeTimes}");
        generator.DecodeTimes.Reset();
        var many = await Decode(64);
        Console.WriteLine($"RESULT llm-host c64 {generator.DecodeTimes}");
        // What network requests usually ask for: a seeded draw at a temperature with top-k and top-p, processed logprobs.
        var sampled = new MLNode.Engines.Llm.Sampling.SamplingParams(Temperature: 0.7, TopP: 0.9, TopK: 50, Seed: 7, TopLogprobs: 5);
        var sampledSingle = await Decode(1, sampled);
        var sampledMany = await Decode(64, sampled);
        Console.WriteLine($"RESULT llm engine=mlnode sampled (T 0.7, top-k 50, top-p 0.9) decode_c1_tok_s={sampledSingle:F1} decode_c64_tok_s={sampledMany:F1}");
        var weightBytes = model.parameters().Sum(p => p.numel()) * 2.0 - config.VocabSize * 4096 * 2.0; // embedding rows are gathered, not streamed
        Console.WriteLine($"RESULT llm engine=mlnode decode_c1_tok_s={single:F1} decode_c64_tok_s={many:F1} " +
            $"c1_fraction_of_hbm_limit={single / (3.35e12 / weightBytes):F3} (limit {3.35e12 / weightBytes:F0} tok/s at 3.35 TB/s) peak_gpu_mib={peak.MaxUsedMb}");

        // Split of one decode step at 1 and 64 sequences: the model forward alone, then the sampler alone.
        var probe = new KvCache(config.NumHiddenLayers, 64, config.NumKeyValueHeads, promptLen + 8, config.HeadDim, ScalarType.BFloat16, runtime.Device);
        foreach (var b in new[] { 1, 64 })
        {
            var slots = arange(b, ScalarType.Int64, runtime.Device);
            var positions = full(b, (long)promptLen, ScalarType.Int64, runtime.Device);
            var ids = zeros(b, ScalarType.Int64, runtime.Device);
            var step = new DecodeStep(probe, slots, positions, promptLen + 1);
            Tensor Forward() => model.Decode(ids, step);
            for (var i = 0; i < 3; i++) Forward().Dispose();
            cuda.synchronize();
            var w = Stopwatch.StartNew();
            for (var i = 0; i < 10; i++) Forward().Dispose();
            cuda.synchronize();
            var forwardMs = w.Elapsed.TotalMilliseconds / 10;
            using var logits = Forward();
            var sampling = Enumerable.Repeat(greedy, b).ToList();
            w.Restart();
            for (var i = 0; i < 10; i++) MLNode.Engines.Llm.Sampling.TokenSampler.NextBatch(logits, sampling, Enumerable.Repeat(0, b).ToList(), Enumerable.Repeat<int?>(null, b).ToList());
            var samplerMs = w.Elapsed.TotalMilliseconds / 10;
            // The generator's step: a CUDA graph replay where the native library allows, with the host copies around it.
            using var graphed = new LlmDecodeStep(model, probe, runtime.Device, log);
            var (idArray, slotArray, positionArray) = (new long[b], Enumerable.Range(0, b).Select(i => (long)i).ToArray(), Enumerable.Repeat((long)promptLen, b).ToArray());
            for (var i = 0; i < 3; i++) graphed.Logits(idArray, slotArray, positionArray).Dispose();
            cuda.synchronize();
            w.Restart();
            for (var i = 0; i < 10; i++) graphed.Logits(idArray, slotArray, positionArray).Dispose();
            cuda.synchronize();
            Console.WriteLine($"RESULT llm-step batch={b} forward_ms={forwardMs:F2} generator_step_ms={w.Elapsed.TotalMilliseconds / 10:F2} sampler_ms={samplerMs:F2}");
        }
        probe.Dispose();

        var (batch, length) = (o.Int("replay-batch", 8), o.Int("replay-len", 2048));
        var replayIds = randint(0, config.VocabSize, [batch, length], ScalarType.Int64, runtime.Device);
        for (var i = 0; i < 2; i++) model.Logits(model.Hidden(model.Embed(replayIds))).Dispose();
        cuda.synchronize();
        var watch = Stopwatch.StartNew();
        const int reps = 3;
        for (var i = 0; i < reps; i++) model.Logits(model.Hidden(model.Embed(replayIds))).Dispose();
        cuda.synchronize();
        Console.WriteLine($"RESULT llm engine=mlnode teacher_forced_tok_s={reps * batch * length / watch.Elapsed.TotalSeconds:F0} ({batch}x{length}, with LM head)");
        return 0;
    }

    /// <summary>
    /// Decode tokens/s of <paramref name="concurrency"/> streams of <paramref name="promptLen"/>-token prompts and
    /// <paramref name="newTokens"/> new tokens: the tokens all streams produce once every stream has its first token
    /// (prefills done; the generator admits arrivals in waves, and a prefill inside the window is not decoding), over the
    /// time from then to the last token.
    /// </summary>
    public static async Task<double> DecodeTokensPerSecond(LlmGenerator generator, int vocab, int promptLen, int newTokens, int concurrency,
        MLNode.Engines.Llm.Sampling.SamplingParams? sampling = null)
    {
        sampling ??= new MLNode.Engines.Llm.Sampling.SamplingParams(Temperature: 0, TopLogprobs: 5);
        var runs = Enumerable.Range(0, concurrency).Select(async i =>
        {
            var prompt = Enumerable.Range(0, promptLen).Select(t => (t * 31 + i * 7) % vocab).ToArray();
            var reader = generator.Generate(new GenerationRequest(prompt, sampling, newTokens, new HashSet<int>()), CancellationToken.None);
            var times = new List<long>();
            await foreach (var _ in reader.ReadAllAsync()) times.Add(Stopwatch.GetTimestamp());
            return times;
        }).ToList();
        var streams = await Task.WhenAll(runs);
        var start = streams.Max(t => t[0]);
        var tokens = streams.Sum(t => t.Count(x => x > start));
        return tokens / Stopwatch.GetElapsedTime(start, streams.Max(t => t[^1])).TotalSeconds;
    }
}

/// <summary>
/// Where one Qwen3-8B decoder layer's time goes at the PoC shape: each step timed alone (synchronised),
/// with its achieved TFLOP/s or GB/s, to decide what to fuse.
/// </summary>
static class LayerProfile
{
    public static int Run(TorchRuntime runtime, Options o)
    {
        var (b, l, d, heads, kv, hd, ff) = (o.Int("batch", 32), o.Int("seq-len", 1024), 4096, 32, 8, 128, 12288);
        var w = new RandomWeights(runtime.Device, ScalarType.BFloat16, 1);
        var q = new Linear(w, "q", d, heads * hd);
        var k = new Linear(w, "k", d, kv * hd);
        var mlp = new SwiGlu(w, "mlp", d, ff);
        var norm = new RmsNorm(w, "n.norm", d, 1e-6);
        var x = randn([b, l, d], ScalarType.BFloat16, runtime.Device);
        var qh = randn([b, heads, l, hd], ScalarType.BFloat16, runtime.Device);
        var ql = randn([b, l, heads, hd], ScalarType.BFloat16, runtime.Device);
        var kh = randn([b, kv, l, hd], ScalarType.BFloat16, runtime.Device);
        var v = randn([d], ScalarType.BFloat16, runtime.Device);
        double tokens = (double)b * l, bytes = tokens * d * 2;
        Time("q_proj gemm", () => q.forward(x), 2 * tokens * d * heads * hd, 0);
        Time("k_proj gemm", () => k.forward(x), 2 * tokens * d * kv * hd, 0);
        Time("mlp (3 gemm + silu·up)", () => mlp.forward(x), 2 * tokens * 3 * d * ff, 0);
        Time("rmsnorm", () => norm.forward(x), 0, 2 * bytes);
        Time("rmsnorm (libtorch ops)", () => norm.Reference(x), 0, 2 * bytes);
        Time("repeat_interleave kv", () => kh.repeat_interleave(heads / kv, dim: 1), 0, 2 * bytes);
        var kr = kh.repeat_interleave(heads / kv, dim: 1);
        Time("sdpa causal", () => nn.functional.scaled_dot_product_attention(qh, kr, kr, is_casual: true), 2 * 2 * tokens * (l + 1) / 2.0 * d, 0);
        Time("reflection", () => x - 2 * matmul(x, v).unsqueeze(-1) * v, 0, 4 * bytes);
        var config = HfModelConfig.Parse(JsonSerializer.Serialize(new
        {
            model_type = "qwen3", hidden_size = d, intermediate_size = ff, num_hidden_layers = 1, num_attention_heads = heads,
            num_key_value_heads = kv, head_dim = hd, vocab_size = 1024, rms_norm_eps = 1e-6, rope_theta = 1e6,
        }), "layer");
        var layer = new QwenDecoderLayer(config, w, "model.layers.0", 0);
        var (cos, sin) = new RotaryEmbedding(hd, 1e6, runtime.Device).Tables(arange(l, ScalarType.Int64, runtime.Device), ScalarType.BFloat16);
        (cos, sin) = (cos.view(1, l, 1, hd), sin.view(1, l, 1, hd));
        Time("whole decoder layer", () => layer.forward(x, cos, sin, null, 0), 2 * tokens * (d * (heads + 2 * kv) * hd + heads * hd * d + 3 * d * ff) + 2 * 2 * tokens * (l + 1) / 2.0 * d, 0);
        Time("rope q", () => RotaryEmbedding.Apply(ql, cos, sin), 0, 2 * bytes);
        Time("rope q (libtorch ops)", () => RotaryEmbedding.Reference(ql, cos, sin), 0, 2 * bytes);
        return 0;
    }

    private static void Time(string step, Func<Tensor> op, double flops, double bytes)
    {
        for (var i = 0; i < 2; i++) op().Dispose();
        cuda.synchronize();
        var watch = Stopwatch.StartNew();
        const int reps = 10;
        for (var i = 0; i < reps; i++) op().Dispose();
        cuda.synchronize();
        var s = watch.Elapsed.TotalSeconds / reps;
        Console.WriteLine($"RESULT layer-step {step}: {s * 1e3:F2} ms" + (flops > 0 ? $", {flops / s / 1e12:F0} TFLOP/s" : "") + (bytes > 0 ? $", {bytes / s / 1e9:F0} GB/s" : ""));
    }
}

/// <summary>
/// Where a Qwen3-8B-shaped decode step's GPU time goes: each stage of the decoder layer run for all 36 layers (each
/// layer's own weights and cache, as in a real step, so nothing stays in L2) captured as one CUDA graph and replayed,
/// at 1 and 64 sequences; GEMM stages with their fraction of HBM bandwidth.
/// </summary>
static class DecodeProfile
{
    public static int Run(TorchRuntime runtime, Options o)
    {
        var (layers, d, heads, kv, hd, ff, span) = (o.Int("layers", 36), 4096, 32, 8, 128, 12288, o.Int("span", 136));
        var dev = runtime.Device;
        var w = new RandomWeights(dev, ScalarType.BFloat16, 1);
        var qkv = Enumerable.Range(0, layers).Select(i => PackedLinears.Load(w, $"l{i}.self_attn", ["q_proj", "k_proj", "v_proj"], d, [heads * hd, kv * hd, kv * hd])).ToArray();
        var oProj = Enumerable.Range(0, layers).Select(i => new Linear(w, $"l{i}.o_proj", heads * hd, d)).ToArray();
        var gateUp = Enumerable.Range(0, layers).Select(i => PackedLinears.Load(w, $"l{i}.mlp", ["gate_proj", "up_proj"], d, [ff, ff])).ToArray();
        var down = Enumerable.Range(0, layers).Select(i => new Linear(w, $"l{i}.down_proj", ff, d)).ToArray();
        var norm = Enumerable.Range(0, layers).Select(i => new RmsNorm(w, $"l{i}.input_layernorm", d, 1e-6)).ToArray();
        var qNorm = Enumerable.Range(0, layers).Select(i => new RmsNorm(w, $"l{i}.q_norm", hd, 1e-6)).ToArray();
        var kNorm = Enumerable.Range(0, layers).Select(i => new RmsNorm(w, $"l{i}.k_norm", hd, 1e-6)).ToArray();
        var head = new Linear(w, "lm_head", d, 151936);
        var cache = new KvCache(layers, 64, kv, 512, hd, ScalarType.BFloat16, dev);
        foreach (var b in new[] { 1, 64 })
        {
            var x = randn([b, 1, d], ScalarType.BFloat16, dev);
            var slots = arange(b, ScalarType.Int64, dev);
            var positions = full(b, (long)span - 1, ScalarType.Int64, dev);
            var (cos, sin) = new RotaryEmbedding(hd, 1e6, dev).Tables(positions, ScalarType.BFloat16);
            var packed = qkv[0].Forward(x);
            var q = randn([b, heads, hd], ScalarType.BFloat16, dev);
            var attended = randn([b, 1, heads * hd], ScalarType.BFloat16, dev);
            var gu = gateUp[0].Forward(x);
            var gated = randn([b, 1, ff], ScalarType.BFloat16, dev);
            double GemmBytes(long outF, long inF) => layers * 2.0 * outF * inF;
            void Stage(string name, Func<int, Tensor> op, double bytes = 0)
            {
                using var scope = NewDisposeScope();
                using var graph = CudaGraph.Capture(() =>
                {
                    Tensor last = null!;
                    for (var i = 0; i < layers; i++) last = op(i);
                    return last;
                }, out _);
                for (var i = 0; i < 3; i++) graph.Replay();
                cuda.synchronize();
                var watch = Stopwatch.StartNew();
                const int reps = 20;
                for (var i = 0; i < reps; i++) graph.Replay();
                cuda.synchronize();
                var ms = watch.Elapsed.TotalMilliseconds / reps;
                Console.WriteLine($"RESULT decode-profile batch={b} span={span} stage=\"{name}\" ms_per_step={ms:F3} us_per_layer={ms * 1e3 / layers:F1}" +
                    (bytes > 0 ? $" hbm_fraction={bytes / (ms / 1e3) / 3.35e12:F3}" : ""));
            }
            Stage("input rmsnorm", i => norm[i].forward(x));
            Stage("qkv gemm", i => qkv[i].Forward(x), GemmBytes((heads + 2 * kv) * hd, d));
            Stage("qkv prep (norm, rope, cache write)", i => NativeKernels.DecodeQkv(packed.view(b, -1), qNorm[i].Weight, kNorm[i].Weight, 1e-6, cos, sin,
                cache.Keys(i), cache.Values(i), slots, positions, heads, kv));
            Stage("attention, exact span", i => NativeKernels.DecodeAttention(q, cache.Keys(i), cache.Values(i), slots, positions, span));
            Stage("attention, span bucket 256", i => NativeKernels.DecodeAttention(q, cache.Keys(i), cache.Values(i), slots, positions, 256));
            Stage("qkv cuBLAS", i => nn.functional.linear(x, qkv[i].Weight!), GemmBytes((heads + 2 * kv) * hd, d));
            Stage("gate/up cuBLAS", i => nn.functional.linear(x, gateUp[i].Weight!), GemmBytes(2 * ff, d));
            Stage("o gemm", i => oProj[i].forward(attended), GemmBytes(d, heads * hd));
            Stage("add + rmsnorm", i => norm[i].AddAndNorm(x, x).Normed);
            Stage("gate/up gemm", i => gateUp[i].Forward(x), GemmBytes(2 * ff, d));
            Stage("silu·up", i => NativeKernels.SiluMul(gu));
            Stage("down gemm", i => down[i].forward(gated), GemmBytes(d, ff));
            Stage("residual add", i => x + x);
            Stage("whole layer", i =>
            {
                var p = qkv[i].Forward(norm[i].forward(x));
                var qi = NativeKernels.DecodeQkv(p.view(b, -1), qNorm[i].Weight, kNorm[i].Weight, 1e-6, cos, sin, cache.Keys(i), cache.Values(i), slots, positions, heads, kv);
                var a = NativeKernels.DecodeAttention(qi, cache.Keys(i), cache.Values(i), slots, positions, 256);
                var (h, hn) = norm[i].AddAndNorm(x, oProj[i].forward(a.view(b, 1, heads * hd)));
                return h + down[i].forward(NativeKernels.SiluMul(gateUp[i].Forward(hn)));
            }, GemmBytes((heads + 2 * kv) * hd + heads * hd + 3 * ff, d));
            Stage("lm head + float32 (per layer = /36)", i => i == 0 ? head.forward(x).to(ScalarType.Float32) : x, 2.0 * 151936 * d);
        }
        return 0;
    }
}

/// <summary>The PoC conformance fixtures on this device: every nonce's L2 against Gonka's reference, fp32 and bf16.</summary>
static class PocFixtures
{
    public static async Task<int> RunAsync(TorchRuntime runtime, string folder, ILogger log)
    {
        var worst = 0.0;
        foreach (var name in new[] { "qwen3-tiny", "qwen2-tiny", "qwen3-moe-tiny" })
        {
            var dir = Path.Combine(folder, name);
            using var doc = JsonDocument.Parse(File.ReadAllText(Path.Combine(dir, "poc_reference.json")));
            var root = doc.RootElement;
            var config = HfModelConfig.FromFile(Path.Combine(dir, "config.json"));
            foreach (var (dtype, section) in new[] { (ScalarType.Float32, "fp32"), (ScalarType.BFloat16, "fp32"), (ScalarType.BFloat16, "bf16") })
            {
                var model = LlmEngine.Load(config, dir, runtime.Device, dtype, log);
                var reference = root.GetProperty(section).EnumerateArray().ToDictionary(a => a.GetProperty("nonce").GetInt64(), a => a.GetProperty("vector_b64").GetString()!);
                var round = new PocRound(root.GetProperty("block_hash").GetString()!, root.GetProperty("public_key").GetString()!,
                    root.GetProperty("seq_len").GetInt32(), config.HiddenSize, root.GetProperty("k_dim").GetInt32());
                var ours = await new LlmPocProver(model).ComputeAsync(round, [.. reference.Keys.Order()], CancellationToken.None);
                var distances = ours.Select(a => L2(a.VectorB64, reference[a.Nonce])).ToList();
                worst = Math.Max(worst, distances.Max());
                Console.WriteLine($"RESULT poc-fixture model={name} run_dtype={dtype} reference={section} device={runtime.Device} nonces={ours.Count}/{reference.Count} " +
                    $"mean_l2={distances.Average():F5} max_l2={distances.Max():F5}");
                model.Dispose();
            }
        }
        Console.WriteLine($"RESULT poc-fixtures worst_l2={worst:F5} pass={worst <= 0.02}");
        return worst <= 0.02 ? 0 : 1;
    }

    private static double L2(string a, string b)
    {
        var (x, y) = (ArtifactCodec.Decode(a), ArtifactCodec.Decode(b));
        return Math.Sqrt(x.Zip(y, (p, q) => (double)(p - q) * (p - q)).Sum());
    }
}

/// <summary>
/// Speech-to-text RTFx (audio seconds per wall-clock second) on a Whisper-large-v3-shaped model with random bf16
/// weights (--decoder-layers 4 for turbo): jobs of 1 and of --windows 30 s windows of seeded noise, each window
/// decoded for a fixed --tokens tokens (all but the last teacher-forced, then the end token: the same work per step
/// as free decoding, which a random model would end at random), greedy with top-5 logprobs. Also the encoder alone
/// and the peak GPU memory (NVML, all of the device).
/// </summary>
static class WhisperBenchmark
{
    public static async Task<int> RunAsync(TorchRuntime runtime, Options o, ILogger log)
    {
        var (tokens, windows, decoderLayers) = (o.Int("tokens", 100), o.Int("windows", 16), o.Int("decoder-layers", 32));
        var config = WhisperConfig.Parse(JsonSerializer.Serialize(new
        {
            model_type = "whisper", d_model = 1280, encoder_layers = o.Int("encoder-layers", 32), decoder_layers = decoderLayers,
            encoder_attention_heads = 20, decoder_attention_heads = 20, encoder_ffn_dim = 5120, decoder_ffn_dim = 5120, num_mel_bins = 128,
            max_source_positions = 1500, max_target_positions = 448, vocab_size = 51866, decoder_start_token_id = 50258, eos_token_id = 50257,
        }), "whisper-large-v3-shape", null, "");
        var model = new WhisperForConditionalGeneration(config, new RandomWeights(runtime.Device, ScalarType.BFloat16, seed: 1));
        var tokenizer = WhisperTokenizer.FromTiktoken(o.String("tiktoken", ".gpu/multilingual.tiktoken"), config);
        var card = new ModelCard("whisper-large-v3-shape", Modality.Asr, "whisper", "bfloat16", runtime.Device.ToString(), "",
            new ModelLimits(448, windows), model.parameters().Sum(p => p.numel()), new Dictionary<string, double>());
        await using var executor = WhisperExecutor.Create(card, model, tokenizer, windows, runtime.Device, log);
        using var peak = new PocBenchmark.PeakMemory(new Nvml());

        var noise = new Random(1);
        var samples = Enumerable.Range(0, windows * 480_000).Select(_ => (float)(noise.NextDouble() - 0.5) * 0.2f).ToArray();
        var audio = new CanonicalAudio(samples, "seeded-noise");
        var greedy = new MLNode.Engines.Llm.Sampling.SamplingParams(Temperature: 0, TopLogprobs: 5, Mode: MLNode.Engines.Llm.Sampling.LogprobsMode.Raw);
        SpeechJob Job(int n) => new(audio, Enumerable.Range(0, n).Select(w => new AudioWindow(w * 480_000, (w + 1) * 480_000)).ToArray(),
            SpeechTask.Transcribe, "en", null, greedy,
            Enforced: Enumerable.Range(0, n).Select(w => new EnforcedWindow(Enumerable.Range(0, tokens - 1).Select(i => 100 + (i * 7919 + w * 104729) % 50000).ToArray(), 0)).ToArray());
        void Sync() { if (runtime.IsCuda) cuda.synchronize(); }

        async Task<double> Seconds(int n)
        {
            Sync();
            var watch = Stopwatch.StartNew();
            var result = await executor.TranscribeAsync(Job(n), null, CancellationToken.None);
            Sync();
            if (result.Windows.Any(w => w.Tokens.Count != tokens - 1)) throw new InvalidOperationException("a window did not decode its fixed token count");
            return watch.Elapsed.TotalSeconds;
        }

        double EncoderSeconds(int n)
        {
            using var scope = NewDisposeScope();
            var mel = randn([n, 128, 3000], ScalarType.BFloat16, runtime.Device);
            model.Encode(mel);
            Sync();
            var watch = Stopwatch.StartNew();
            model.Encode(mel);
            Sync();
            return watch.Elapsed.TotalSeconds;
        }

        // The decoder alone, for the split between model time and the engine's per-step work: n windows, the 4-token
        // prompt, then `tokens` single-token steps with the fp32 logits of each, no sampling; optionally reading each
        // step's argmax back to the host, the synchronisation every engine step has.
        double DecoderStepMs(int n, bool readEachStep)
        {
            using var scope = NewDisposeScope();
            using var cache = new WhisperKvCache(config.DecoderLayers, n, config.DecoderAttentionHeads, config.DModel / config.DecoderAttentionHeads,
                config.MaxTargetPositions, config.MaxSourcePositions, ScalarType.BFloat16, runtime.Device);
            cache.Start(n);
            model.AttendTo(model.Encode(randn([n, 128, 3000], ScalarType.BFloat16, runtime.Device)), cache);
            model.Decode(zeros([n, 4], ScalarType.Int64, runtime.Device), 0, cache);
            var ids = zeros([n, 1], ScalarType.Int64, runtime.Device);
            Sync();
            var watch = Stopwatch.StartNew();
            for (var step = 0; step < tokens; step++)
            {
                using var stepScope = NewDisposeScope();
                var logits = model.Logits(model.Decode(ids, 4 + step, cache));
                // As the engine does: the step's choice read back to the host before the next step is launched.
                if (readEachStep) logits.argmax(-1).cpu().data<long>().ToArray();
            }
            Sync();
            return watch.Elapsed.TotalMilliseconds / tokens;
        }

        await Seconds(1); // warm-up: kernels, allocator
        await Seconds(windows);
        foreach (var n in new[] { 1, windows })
        {
            var seconds = await Seconds(n);
            Console.WriteLine($"RESULT whisper engine=mlnode decoder_layers={decoderLayers} windows={n} tokens_per_window={tokens} seconds={seconds:F3} " +
                $"rtfx={n * 30.0 / seconds:F1} encoder_s={EncoderSeconds(n):F3} decoder_step_ms={DecoderStepMs(n, false):F2} decoder_step_read_ms={DecoderStepMs(n, true):F2} engine_step_ms={seconds * 1000 / tokens:F2} peak_gpu_mib={peak.MaxUsedMb}");
        }
        return 0;
    }
}

/// <summary>
/// Tensor-parallel scaling on a Qwen3-30B-A3B-shaped MoE with random bf16 weights as --tp N ranks (one per GPU over NCCL,
/// or CPU threads): decode tokens/s at concurrency 1 and --concurrency through the generator, and PoC nonces/min. Run at
/// N = 1, 2, 4 on one machine; the scaling efficiency at N is rate(N) / (N · rate(1)).
/// </summary>
static class TensorParallelBenchmark
{
    public static async Task<int> RunAsync(TorchRuntime runtime, Options o, ILogger log)
    {
        var ranks = o.Int("tp", 1);
        var (promptLen, newTokens, concurrency) = (o.Int("prompt", 128), o.Int("new-tokens", 64), o.Int("concurrency", 64));
        var (batch, seqLen, batches) = (o.Int("batch", 32), o.Int("seq-len", 1024), o.Int("batches", 3));
        var config = Qwen3_30B_A3B(o.Int("layers", 48));
        var loaded = LlmEngine.BuildRanks(config, device => new RandomWeights(device, ScalarType.BFloat16, seed: 1), runtime, ranks,
            new LlmEngine.KvCacheRequest(concurrency, promptLen + newTokens + 8), log);
        try
        {
            double single, many;
            await using (var generator = new LlmGenerator(loaded.Ranks, concurrency, log))
            {
                await LlmBenchmark.DecodeTokensPerSecond(generator, config.VocabSize, promptLen, 8, 1); // warm-up
                single = await LlmBenchmark.DecodeTokensPerSecond(generator, config.VocabSize, promptLen, newTokens, 1);
                many = await LlmBenchmark.DecodeTokensPerSecond(generator, config.VocabSize, promptLen, newTokens, concurrency);
            }

            var prover = new LlmPocProver(loaded.Ranks);
            var round = new PocRound("9F3A6C1E2B7D4058A1C3E5F708192A3B4C5D6E7F8091A2B3C4D5E6F708192A3B", "02ab34cd", seqLen, config.HiddenSize, 12, StrongRng: true);
            var nonces = new NonceIterator(1, 2);
            await prover.ComputeAsync(round, nonces.Take(batch), CancellationToken.None); // warm-up
            var watch = Stopwatch.StartNew();
            var produced = 0;
            for (var i = 0; i < batches; i++)
                produced += (await prover.ComputeAsync(round, nonces.Take(batch), CancellationToken.None)).Count;
            var pocPerMinute = produced / watch.Elapsed.TotalSeconds * 60;

            Console.WriteLine($"RESULT llm-tp engine=mlnode tp={ranks} devices={loaded.Devices} layers={config.NumHiddenLayers} parameters={loaded.ParameterCount} " +
                $"decode_c1_tok_s={single:F1} decode_c{concurrency}_tok_s={many:F1} poc_batch={batch} seq_len={seqLen} poc_nonces_per_min={pocPerMinute:F1}");
            return 0;
        }
        finally
        {
            loaded.Ranks.Dispose();
        }
    }

    public static HfModelConfig Qwen3_30B_A3B(int layers) => HfModelConfig.Parse(JsonSerializer.Serialize(new
    {
        model_type = "qwen3_moe", hidden_size = 2048, intermediate_size = 6144, num_hidden_layers = layers,
        num_attention_heads = 32, num_key_value_heads = 4, head_dim = 128, vocab_size = 151936,
        num_experts = 128, num_experts_per_tok = 8, moe_intermediate_size = 768, norm_topk_prob = true,
        decoder_sparse_step = 1, mlp_only_layers = Array.Empty<int>(),
        rms_norm_eps = 1e-6, rope_theta = 1000000.0, tie_word_embeddings = false, max_position_embeddings = 40960,
    }), "qwen3-30b-a3b-shape");
}
