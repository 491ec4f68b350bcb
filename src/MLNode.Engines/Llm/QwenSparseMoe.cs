using MLNode.Engines.Layers;
using MLNode.Runtime.Checkpoints;
using TorchSharp;
using TorchSharp.Modules;
using Embedding = MLNode.Engines.Layers.Embedding;
using Linear = MLNode.Engines.Layers.Linear;
using static TorchSharp.torch;

namespace MLNode.Engines.Llm;

/// <summary>
/// Qwen3-MoE feed-forward: a linear router, softmax in float32, the top-k experts per token (weights
/// renormalised when <c>norm_topk_prob</c>), each expert a SwiGLU, outputs summed by routing weight. Under tensor
/// parallelism the experts are split over the ranks whole (expert parallelism) and the router is replicated: every rank
/// routes every token alike, runs the tokens routed to its own experts, and an all-reduce sums the ranks' outputs.
/// </summary>
public sealed class QwenSparseMoe : nn.Module<Tensor, Tensor>
{
#pragma warning disable IDE1006 // field names are the checkpoint's tensor names
    private readonly Linear gate;
    private readonly ModuleList<SwiGlu> experts;
#pragma warning restore IDE1006
    private readonly int _topK;
    private readonly bool _normTopK;
    private readonly TensorParallel _parallel;
    private readonly int _firstExpert;

    public QwenSparseMoe(HfModelConfig config, WeightSource w, string prefix, TensorParallel? parallel = null) : base(prefix)
    {
        var experts = config.NumExperts!.Value;
        var hidden = config.MoeIntermediateSize ?? throw new InvalidDataException($"{prefix}: moe_intermediate_size is required for a MoE layer");
        _parallel = parallel ?? TensorParallel.Single;
        var local = _parallel.Share(experts, $"{prefix}: {experts} experts");
        _firstExpert = (int)local.Start;
        gate = new Linear(w, $"{prefix}.gate", config.HiddenSize, experts);
        this.experts = new ModuleList<SwiGlu>(Enumerable.Range(_firstExpert, (int)local.Length)
            .Select(e => new SwiGlu(w, $"{prefix}.experts.{e}", config.HiddenSize, hidden)).ToArray());
        _topK = config.NumExpertsPerTok ?? throw new InvalidDataException($"{prefix}: num_experts_per_tok is required for a MoE layer");
        _normTopK = config.NormTopkProb;
        RegisterComponents();
    }

    public override Tensor forward(Tensor x)
    {
        using var scope = NewDisposeScope();
        var shape = x.shape;
        var tokens = x.reshape(-1, shape[^1]);
        var probabilities = gate.forward(tokens).softmax(-1, ScalarType.Float32);
        var (weights, chosen) = probabilities.topk(_topK, dim: -1);
        if (_normTopK) weights = weights / weights.sum(-1, keepdim: true);
        weights = weights.to(x.dtype);

        var output = zeros_like(tokens);
        // (token, slot) pairs grouped by expert on the device — a stable sort keeps each expert's tokens in token order —
        // and only the experts' counts read to the host: one synchronisation per layer where a nonzero per expert would
        // make one each; then only the experts that were chosen run, in expert order.
        var pairs = chosen.flatten();
        var (_, byExpert) = pairs.sort(stable: true);
        var counts = pairs.bincount(null, _firstExpert + experts.Count).cpu().data<long>().ToArray();
        var offset = counts.Take(_firstExpert).Sum();
        for (var e = 0; e < experts.Count; offset += counts[_firstExpert + e], e++)
        {
            if (counts[_firstExpert + e] == 0) continue;
            var hits = byExpert.narrow(0, offset, counts[_firstExpert + e]);
            var (rows, slots) = (hits.div(_topK, RoundingMode.floor), hits.remainder(_topK));
            var routed = experts[e].forward(tokens.index_select(0, rows)) * weights[rows, slots].unsqueeze(-1);
            output.index_add_(0, rows, routed, 1);
        }
        _parallel.AllReduceSum(output);
        return output.reshape(shape).MoveToOuterDisposeScope();
    }
}
