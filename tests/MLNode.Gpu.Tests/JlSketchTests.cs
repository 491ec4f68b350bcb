using MLNode.Engines.Dit.Trajectory;
using static TorchSharp.torch;

namespace MLNode.Gpu.Tests;

public class JlSketchTests
{
    // The GPU draws R with the Philox kernel, the CPU with its C# reference (within 4e-6 absolute of the kernel, mostly
    // ≈ 2e-7, random in sign: ≈ 1e-7 relative on a sketch), and each sums its N products in its own order (≈ √N·u ≈ 3e-5
    // relative at worst, ≈ 1e-6 typical). 1e-4 covers both; a wrong row, offset or scale moves the sketch by O(1).
    private const double CrossDeviceTolerance = 1e-4;

    // A 299,520-element latent ([16, 3, 60, 104]): past one wave of the virtual grid, so every row is a second-draw stream.
    [Fact]
    public void The_sketch_on_the_gpu_is_the_cpus_up_to_rounding()
    {
        var cuda = Gpu.Require();
        using var x = randn(new long[] { 16, 3, 60, 104 }, generator: new Generator(5));
        using var onGpu = x.to(cuda);

        using var cpu = JlSketch.Default.Project(x);
        using var gpu = JlSketch.Default.Project(onGpu);
        using var back = gpu.cpu();

        var error = ((back - cpu).norm() / cpu.norm()).item<float>();
        TestContext.Current.TestOutputHelper?.WriteLine($"JL_256 GPU against CPU: relative difference {error:E2}");
        Assert.True(error <= CrossDeviceTolerance, $"relative difference {error:E3} > {CrossDeviceTolerance:E0}");
    }
}
