using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace MLNode.Engines.Layers;

/// <summary>Token embedding table <c>weight</c> [vocab, d]; also serves as a tied LM head.</summary>
public sealed class Embedding : nn.Module<Tensor, Tensor>
{
#pragma warning disable IDE1006 // field names are the checkpoint's tensor names
    private readonly Parameter weight;
#pragma warning restore IDE1006

    public Embedding(WeightSource w, string prefix, long vocab, long width) : base(prefix)
    {
        weight = w.Parameter($"{prefix}.weight", vocab, width);
        RegisterComponents();
    }

    public Tensor Weight => weight;

    public override Tensor forward(Tensor ids) => weight.index_select(0, ids.flatten()).view([.. ids.shape, weight.shape[1]]);
}
