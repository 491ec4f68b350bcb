using System.Buffers.Binary;
using System.Security.Cryptography;
using System.Text;
using MLNode.Engines.Dit.Trajectory;
using MLNode.Protocol.Diffusion;
using static TorchSharp.torch;

namespace MLNode.Engines.Tests.Dit;

/// <summary>
/// JL_256: its matrix is 256 successive portable randn draws of the public seed, the sketch is linear, does not depend on
/// how R is chunked, and keeps norms as a Gaussian projection should.
/// </summary>
public sealed class JlSketchTests
{
    // The wan-tiny latent [16, 3, 8, 8].
    private const int Count = 3072;

    // Chunking or combining changes only the order float32 sums N = 3072 products in: a random-walk error of about
    // √N·u·‖y‖ ≈ 55 × 6e-8 ≈ 3e-6 relative. 1e-5 allows that and still fails on any wrong or shifted row of R (O(1)).
    private const double RoundingTolerance = 1e-5;

    [Fact]
    public void The_public_seed_is_the_first_8_bytes_of_sha256_of_the_version()
    {
        var expected = BinaryPrimitives.ReadUInt64LittleEndian(SHA256.HashData(Encoding.ASCII.GetBytes("mlnode-wan-jl-v1")));

        Assert.Equal(expected, JlSketch.Default.Seed);
        Assert.Equal(new JlParameters("mlnode-wan-jl-v1", expected, 256), JlSketch.Default.Parameters);
    }

    // Sketching a basis vector e_i reads column i of R / 16 exactly (one product by 1, the rest by 0).
    [Theory]
    [InlineData(3072)]
    [InlineData(1001)]
    public void Row_r_of_R_is_the_r_th_randn_draw_of_the_seed(int count)
    {
        var jl = new JlSketch(77);
        var advance = PhiloxNoise.OffsetAdvance(count);
        foreach (var i in new[] { 0, 5, count - 1 })
        {
            using var basis = zeros(count);
            basis[i] = 1f;
            using var column = jl.Project(basis);
            var values = column.data<float>().ToArray();
            foreach (var r in new[] { 0, 1, 17, 255 })
                Assert.Equal(PhiloxNoise.At(77, count, i, (ulong)r * advance) / 16f, values[r]);
        }
    }

    [Fact]
    public void The_sketch_is_linear()
    {
        using var x = randn(new long[] { 16, 3, 8, 8 }, generator: new Generator(1));
        using var y = randn(new long[] { 16, 3, 8, 8 }, generator: new Generator(2));

        using var combined = JlSketch.Default.Project(x * 2 - y * 3);
        using var parts = JlSketch.Default.Project(x, y);
        using var expected = parts[0] * 2 - parts[1] * 3;

        AssertClose(expected, combined, "JL(2x − 3y) against 2·JL(x) − 3·JL(y)");
    }

    [Theory]
    [InlineData(Count * 4L)]        // one row per chunk
    [InlineData(Count * 4L * 7)]    // seven rows per chunk, the last chunk partial
    [InlineData(1L << 40)]          // all 256 rows at once
    public void Chunking_R_changes_the_sketch_by_rounding_only(long maxChunkBytes)
    {
        using var x = randn(new long[] { 16, 3, 8, 8 }, generator: new Generator(3));

        using var chunked = new JlSketch(JlSketch.Default.Seed, maxChunkBytes).Project(x);
        using var reference = JlSketch.Default.Project(x);

        AssertClose(reference, chunked, $"chunks of {maxChunkBytes} bytes");
    }

    // ‖y‖²/‖x‖² is χ²_256/256: relative standard deviation √(2/256) ≈ 8.8%, so ‖y‖/‖x‖ has ≈ 4.4%; four of them
    // (±18%) fail a correct projection with probability below 1e-4, a wrong scale (√k vs k) by far.
    [Fact]
    public void The_sketch_keeps_norms_within_four_sigma()
    {
        for (var seed = 10; seed < 20; seed++)
        {
            using var x = randn(new long[] { 16, 3, 8, 8 }, generator: new Generator((ulong)seed)) * seed;
            using var y = JlSketch.Default.Project(x);
            var ratio = y.norm().item<float>() / x.norm().item<float>();
            Assert.InRange(ratio, 0.82, 1.18);
        }
    }

    [Fact]
    public void Sketches_round_to_fp16_and_tensors_of_other_sizes_are_refused()
    {
        using var x = randn(new long[] { 16, 3, 8, 8 }, generator: new Generator(4));
        using var projected = JlSketch.Default.Project(x);

        var sketch = JlSketch.Default.Sketch(x)[0];

        Assert.Equal(projected.data<float>().ToArray().Select(v => (Half)v), sketch);
        Assert.Throws<ArgumentException>(() => JlSketch.Default.Project(x, zeros(5)));
    }

    private static void AssertClose(Tensor expected, Tensor actual, string what)
    {
        var error = ((actual - expected).norm() / expected.norm()).item<float>();
        TestContext.Current.TestOutputHelper?.WriteLine($"{what}: relative difference {error:E2}");
        Assert.True(error <= RoundingTolerance, $"{what}: relative difference {error:E3} > {RoundingTolerance:E0}");
    }
}
