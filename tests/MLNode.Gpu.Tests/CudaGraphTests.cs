using MLNode.Runtime.Native;
using static TorchSharp.torch;

namespace MLNode.Gpu.Tests;

/// <summary>
/// CUDA graphs of libtorch ops issued from .NET: a replay runs the captured kernels on whatever the inputs hold now,
/// so it gives the bits the same ops give eagerly, and it leaves libtorch's stream usable afterwards.
/// </summary>
public class CudaGraphTests
{
    [Fact]
    public void Replays_compute_what_the_eager_ops_compute_on_rewritten_inputs()
    {
        var cuda = Gpu.Require();
        Assert.True(CudaGraph.IsAvailable, "the native library was built without libtorch's headers (MLNODE_TORCH_DIR)");
        using var scope = NewDisposeScope();
        var weight = randn(256, 512, generator: new Generator(1)).to(ScalarType.BFloat16).to(cuda);
        var input = zeros([8, 512], ScalarType.BFloat16, cuda);
        Tensor Ops() => nn.functional.gelu(nn.functional.linear(input, weight)).softmax(-1).to(ScalarType.Float32);

        using var graph = CudaGraph.Capture(Ops, out var output);
        for (var seed = 2UL; seed < 6; seed++)
        {
            input.copy_(randn(8, 512, generator: new Generator(seed)).to(ScalarType.BFloat16).to(cuda));
            graph.Replay();
            var first = output.clone();
            graph.Replay();
            Assert.True(first.equal(output).all().item<bool>(), $"two replays on input {seed} differ");
            // The captured GEMM ran on the graph's side stream, where cuBLAS may pick another algorithm (its workspace
            // is per stream) than on the default stream: equal up to bf16 rounding, not bit for bit.
            var eager = Ops();
            var worst = (eager - output).abs().max().item<float>();
            Assert.True(worst <= 1e-3f * eager.abs().max().item<float>(), $"replay {seed} differs from the eager ops by {worst}");
        }
    }

    [Fact]
    public void A_failed_capture_leaves_the_stream_usable()
    {
        var cuda = Gpu.Require();
        using var scope = NewDisposeScope();
        var x = ones(4, device: cuda);
        // A host read cannot be captured: the capture fails, and libtorch's stream must still take work afterwards.
        Assert.ThrowsAny<Exception>(() => CudaGraph.Capture(() => tensor((x * 2).sum().item<float>()).to(cuda), out _));
        Assert.Equal(8f, (x * 2).sum().item<float>());
    }
}
