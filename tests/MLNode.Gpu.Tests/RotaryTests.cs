using MLNode.Engines.Layers;
using static TorchSharp.torch;

namespace MLNode.Gpu.Tests;

public class RotaryTests
{
    [Theory]
    [InlineData(ScalarType.BFloat16, false)]
    [InlineData(ScalarType.BFloat16, true)]
    [InlineData(ScalarType.Float16, false)]
    [InlineData(ScalarType.Float32, true)]
    public void Kernel_is_bit_identical_to_the_eager_expression(ScalarType dtype, bool decode)
    {
        var cuda = Gpu.Require();
        using var scope = NewDisposeScope();
        var (batch, length, heads, dim) = decode ? (5L, 1L, 8L, 128L) : (2L, 37L, 4L, 64L);
        var rope = new RotaryEmbedding((int)dim, 1e6, cuda);
        var positions = decode ? tensor(new long[] { 0, 3, 17, 400, 4095 }, device: cuda) : arange(length, ScalarType.Int64, cuda);
        var (cos, sin) = rope.Tables(positions, dtype);
        long[] tableShape = decode ? [batch, 1, 1, dim] : [1, length, 1, dim];
        (cos, sin) = (cos.view(tableShape), sin.view(tableShape));
        var x = randn([batch, length, heads, dim], generator: new Generator(3)).to(dtype).to(cuda);

        var ours = RotaryEmbedding.Apply(x, cos, sin);
        var reference = RotaryEmbedding.Reference(x, cos, sin);

        // Each product and the sum are rounded to the dtype once, in the same order as the eager ops: exact.
        var mismatches = (ours != reference).sum().item<long>();
        Assert.True(mismatches == 0, $"{mismatches} of {x.numel()} values differ from the eager expression");
    }
}
