using MLNode.Protocol.Diffusion;
using MLNode.Runtime.Diffusion;
using static TorchSharp.torch;

namespace MLNode.Runtime.Tests.Diffusion;

public class LatentNoiseTests
{
    [Fact]
    public void Randn_OnTheCpuIsThePhiloxStreamInTheRequestedShape()
    {
        using var noise = LatentNoise.Randn([16, 5, 8, 8], 42, CPU, offset: 8);
        Assert.Equal([16L, 5, 8, 8], noise.shape);
        Assert.Equal(ScalarType.Float32, noise.dtype);
        Assert.Equal(PhiloxNoise.Generate(42, 5120, offset: 8), noise.data<float>().ToArray());
    }
}
