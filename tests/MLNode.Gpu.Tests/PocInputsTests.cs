using MLNode.Protocol.Poc;
using MLNode.Runtime.Native;
using static TorchSharp.torch;

namespace MLNode.Gpu.Tests;

/// <summary>
/// kernels/poc_inputs.cu against PocInputs.FillBatch cast to the dtype on the CPU: bit for bit, since both run
/// the same IEEE-754 operations (PortableMath) and the cast rounds to nearest even on either side.
/// </summary>
public class PocInputsTests
{
    private static readonly long[] Nonces = [0, 1, 7, 123456789];

    public static TheoryData<string, bool, int, int> Cases()
    {
        var data = new TheoryData<string, bool, int, int>();
        foreach (var dtype in new[] { "float32", "float16", "bfloat16" })
            foreach (var strong in new[] { false, true })
            {
                data.Add(dtype, strong, 4, 64);    // L·d even
                data.Add(dtype, strong, 3, 21);    // L·d = 63: odd, strong segments of 8 with the last of 7
                data.Add(dtype, strong, 5, 4099);  // several blocks per stream, odd
                data.Add(dtype, strong, 2, 3);     // strong: six segments of one value, two empty
            }
        return data;
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public void Kernel_equals_the_reference_bit_for_bit(string dtypeName, bool strong, int seqLen, int hidden)
    {
        var cuda = Gpu.Require();
        var dtype = DType(dtypeName);
        var round = new PocRound("9F3A6C1E2B7D4058", "02ab34cd", seqLen, hidden, KDim: 1, StrongRng: strong);
        var reference = new float[Nonces.Length * round.InputLength];
        PocInputs.FillBatch(round, Nonces, reference);
        using var expected = tensor(reference, [Nonces.Length, seqLen, hidden]).to(dtype);

        // One nonce more than asked for, filled with a sentinel: the kernel must leave it alone.
        using var buffer = full([Nonces.Length + 1, seqLen, hidden], 7f, dtype, cuda);
        using var output = buffer.narrow(0, 0, Nonces.Length);
        using var seeds = Seeds(round, cuda);
        NativeKernels.PocInputs(seeds, strong, output);

        AssertBitEqual(Floats(expected), Floats(output), $"{dtypeName} strong={strong} L={seqLen} d={hidden}", hidden);
        Assert.True(Floats(buffer[Nonces.Length]).All(x => x == 7f), "the kernel wrote past the batch");
    }

    [Fact]
    public void Wrong_seed_count_or_device_is_refused()
    {
        var cuda = Gpu.Require();
        var round = new PocRound("TEST_BLOCK", "test_pub_keys", 2, 8, KDim: 1, StrongRng: true);
        using var output = empty([Nonces.Length, 2, 8], ScalarType.BFloat16, cuda);
        using var seeds = Seeds(round, cuda);
        Assert.Throws<ArgumentException>(() => NativeKernels.PocInputs(seeds, strongRng: false, output));
        using var onCpu = empty([Nonces.Length, 2, 8], ScalarType.BFloat16);
        Assert.Throws<ArgumentException>(() => NativeKernels.PocInputs(seeds, strongRng: true, onCpu));
    }

    private static Tensor Seeds(PocRound round, Device cuda) =>
        NativeKernels.SeedTensor(PocInputs.Seeds(round, Nonces), cuda);

    internal static ScalarType DType(string name) => name switch
    {
        "float32" => ScalarType.Float32,
        "float16" => ScalarType.Float16,
        _ => ScalarType.BFloat16,
    };

    /// <summary>The values as float32 on the CPU (exact for every floating dtype used here).</summary>
    internal static float[] Floats(Tensor t) => t.to(ScalarType.Float32).cpu().data<float>().ToArray();

    private static void AssertBitEqual(float[] expected, float[] actual, string what, int hidden)
    {
        Assert.Equal(expected.Length, actual.Length);
        var mismatches = Enumerable.Range(0, expected.Length)
            .Where(i => BitConverter.SingleToInt32Bits(expected[i]) != BitConverter.SingleToInt32Bits(actual[i])).ToArray();
        if (mismatches.Length == 0) return;
        var first = mismatches[0];
        var perNonce = expected.Length / Nonces.Length;
        Assert.Fail($"{what}: {mismatches.Length} of {expected.Length} values differ; first at nonce {Nonces[first / perNonce]} element {first % perNonce} " +
                    $"(row {first % perNonce / hidden}, column {first % hidden}): expected {expected[first]:R} (0x{BitConverter.SingleToInt32Bits(expected[first]):X8}), " +
                    $"got {actual[first]:R} (0x{BitConverter.SingleToInt32Bits(actual[first]):X8})");
    }
}
