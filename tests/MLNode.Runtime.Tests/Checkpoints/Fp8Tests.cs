using MLNode.Runtime.Checkpoints;
using TorchSharp;
using static TorchSharp.torch;

namespace MLNode.Runtime.Tests.Checkpoints;

/// <summary>
/// FP8 E4M3 decoding and block-scaled dequantisation. The expected values were computed with python3 from the OCP
/// FP8 definition using exact fractions (no shared code with the implementation under test).
/// </summary>
public sealed class Fp8Tests : IDisposable
{
    /// <summary>float32 bits of the E4M3 value of every byte 0x00..0xFF; 7FC00000 marks NaN.</summary>
    private const string E4M3AsFloat32Bits =
        "000000003B0000003B8000003BC000003C0000003C2000003C4000003C6000003C8000003C9000003CA000003CB000003CC000003CD000003CE000003CF00000" +
        "3D0000003D1000003D2000003D3000003D4000003D5000003D6000003D7000003D8000003D9000003DA000003DB000003DC000003DD000003DE000003DF00000" +
        "3E0000003E1000003E2000003E3000003E4000003E5000003E6000003E7000003E8000003E9000003EA000003EB000003EC000003ED000003EE000003EF00000" +
        "3F0000003F1000003F2000003F3000003F4000003F5000003F6000003F7000003F8000003F9000003FA000003FB000003FC000003FD000003FE000003FF00000" +
        "4000000040100000402000004030000040400000405000004060000040700000408000004090000040A0000040B0000040C0000040D0000040E0000040F00000" +
        "4100000041100000412000004130000041400000415000004160000041700000418000004190000041A0000041B0000041C0000041D0000041E0000041F00000" +
        "4200000042100000422000004230000042400000425000004260000042700000428000004290000042A0000042B0000042C0000042D0000042E0000042F00000" +
        "4300000043100000432000004330000043400000435000004360000043700000438000004390000043A0000043B0000043C0000043D0000043E000007FC00000" +
        "80000000BB000000BB800000BBC00000BC000000BC200000BC400000BC600000BC800000BC900000BCA00000BCB00000BCC00000BCD00000BCE00000BCF00000" +
        "BD000000BD100000BD200000BD300000BD400000BD500000BD600000BD700000BD800000BD900000BDA00000BDB00000BDC00000BDD00000BDE00000BDF00000" +
        "BE000000BE100000BE200000BE300000BE400000BE500000BE600000BE700000BE800000BE900000BEA00000BEB00000BEC00000BED00000BEE00000BEF00000" +
        "BF000000BF100000BF200000BF300000BF400000BF500000BF600000BF700000BF800000BF900000BFA00000BFB00000BFC00000BFD00000BFE00000BFF00000" +
        "C0000000C0100000C0200000C0300000C0400000C0500000C0600000C0700000C0800000C0900000C0A00000C0B00000C0C00000C0D00000C0E00000C0F00000" +
        "C1000000C1100000C1200000C1300000C1400000C1500000C1600000C1700000C1800000C1900000C1A00000C1B00000C1C00000C1D00000C1E00000C1F00000" +
        "C2000000C2100000C2200000C2300000C2400000C2500000C2600000C2700000C2800000C2900000C2A00000C2B00000C2C00000C2D00000C2E00000C2F00000" +
        "C3000000C3100000C3200000C3300000C3400000C3500000C3600000C3700000C3800000C3900000C3A00000C3B00000C3C00000C3D00000C3E000007FC00000";

    private const int Rows = 130;
    private const int Cols = 260;

    private readonly TempFolder _folder = new();

    public void Dispose() => _folder.Dispose();

    [Fact]
    public void Decodes_all_256_byte_values_as_the_python_table()
    {
        for (var bits = 0; bits < 256; bits++)
        {
            var expected = BitConverter.UInt32BitsToSingle(Convert.ToUInt32(E4M3AsFloat32Bits.Substring(bits * 8, 8), 16));
            var actual = Fp8E4M3.ToFloat((byte)bits);
            if (float.IsNaN(expected))
                Assert.True(float.IsNaN(actual), $"0x{bits:X2} should be NaN, got {actual}");
            else
                Assert.Equal(BitConverter.SingleToUInt32Bits(expected), BitConverter.SingleToUInt32Bits(actual));
        }
    }

    [Theory]
    [InlineData(0x00, 0f)]
    [InlineData(0x01, 0.001953125f)] // smallest subnormal, 2^-9
    [InlineData(0x07, 0.013671875f)] // largest subnormal, 7 × 2^-9
    [InlineData(0x08, 0.015625f)] // smallest normal, 2^-6
    [InlineData(0x38, 1f)]
    [InlineData(0x77, 240f)]
    [InlineData(0x78, 256f)]
    [InlineData(0x7E, 448f)] // largest finite: E4M3 spends S.1111.111 on NaN instead of infinity
    [InlineData(0x81, -0.001953125f)]
    [InlineData(0xB8, -1f)]
    [InlineData(0xFE, -448f)]
    public void Decodes_the_landmark_values(int bits, float expected) =>
        Assert.Equal(expected, Fp8E4M3.ToFloat((byte)bits));

    [Fact]
    public void Has_nan_but_no_infinity_and_a_negative_zero()
    {
        Assert.True(float.IsNaN(Fp8E4M3.ToFloat(0x7F)));
        Assert.True(float.IsNaN(Fp8E4M3.ToFloat(0xFF)));
        Assert.DoesNotContain(Enumerable.Range(0, 256), bits => float.IsInfinity(Fp8E4M3.ToFloat((byte)bits)));
        Assert.True(float.IsNegative(Fp8E4M3.ToFloat(0x80)) && Fp8E4M3.ToFloat(0x80) == 0);
    }

    /// <summary>
    /// Encoding against a search for the nearest of the 127 finite non-negative E4M3 values (in double, ties to the even
    /// code, beyond 448 the largest): every value exactly, the midpoints between neighbours (the ties) and one float32
    /// ulp either side, values past 448, and random floats over E4M3's range and below it.
    /// </summary>
    [Fact]
    public void Encodes_every_float_as_the_nearest_value_ties_to_even_saturating()
    {
        var values = Enumerable.Range(0, 0x7F).Select(code => (double)Fp8E4M3.ToFloat((byte)code)).ToArray();
        var probes = new List<float> { 448f, 449f, 463.99f, 464f, 500f, float.MaxValue, float.PositiveInfinity, float.Epsilon, 1e-30f };
        for (var code = 0; code < values.Length; code++)
        {
            probes.Add((float)values[code]);
            if (code + 1 < values.Length)
            {
                var midpoint = (float)((values[code] + values[code + 1]) / 2); // exact in float32
                probes.AddRange([midpoint, MathF.BitDecrement(midpoint), MathF.BitIncrement(midpoint)]);
            }
        }
        var random = new Random(5);
        for (var i = 0; i < 20000; i++)
            probes.Add((float)((random.NextDouble() + 0.5) * Math.Pow(2, random.Next(-14, 9))));

        foreach (var probe in probes.SelectMany(p => new[] { p, -p }))
        {
            var magnitude = Math.Abs((double)probe);
            var nearest = 0x7E;
            if (magnitude < 448)
            {
                nearest = 0;
                for (var code = 1; code < values.Length; code++)
                {
                    var (distance, best) = (Math.Abs(values[code] - magnitude), Math.Abs(values[nearest] - magnitude));
                    if (distance < best || (distance == best && code % 2 == 0)) nearest = code;
                }
            }
            var expected = (byte)(nearest | (float.IsNegative(probe) ? 0x80 : 0));
            Assert.True(expected == Fp8E4M3.FromFloat(probe), $"{probe:R}: expected 0x{expected:X2}, got 0x{Fp8E4M3.FromFloat(probe):X2}");
        }
        Assert.Equal(0x7F, Fp8E4M3.FromFloat(float.NaN));
        Assert.Equal(0x80, Fp8E4M3.FromFloat(-0f));
    }

    [Fact]
    public void Block_dequantises_a_130_by_260_weight_with_partial_edge_blocks()
    {
        var (weight, scales) = Example();
        var output = new float[Rows * Cols];

        Fp8BlockDequantizer.Dequantize(weight, scales, Rows, Cols, output);

        foreach (var (row, col, expected) in ExpectedSamples)
            Assert.Equal(expected, output[row * Cols + col]);
        Assert.Equal(3886.875, output.Sum(v => (double)v));
        Assert.Equal(1192437.5361328125, output.Sum(v => Math.Abs((double)v)));
    }

    [Fact]
    public void Refuses_a_scale_grid_that_does_not_cover_the_weight()
    {
        var (weight, _) = Example();

        var error = Assert.Throws<ArgumentException>(() =>
            Fp8BlockDequantizer.Dequantize(weight, new float[4], Rows, Cols, new float[Rows * Cols]));

        Assert.Contains("needs [2,3]", error.Message);
    }

    [Fact]
    public void Checkpoint_loads_block_scaled_fp8_as_float32_and_bfloat16()
    {
        using var scope = NewDisposeScope();
        var (weight, scales) = Example();
        var model = Directory.CreateDirectory(_folder.File("fp8")).FullName;
        SafetensorsWriter.Write(Path.Combine(model, "model.safetensors"),
        [
            new SafetensorsEntry("proj.weight", SafetensorsDType.F8E4M3, [Rows, Cols], weight),
            new SafetensorsEntry("proj.weight_scale_inv", SafetensorsDType.F32, [2, 3], scales.SelectMany(BitConverter.GetBytes).ToArray()),
        ]);
        using var checkpoint = Checkpoint.Open(model);

        var asFloat = checkpoint.LoadFp8BlockScaled("proj.weight");
        var asBf16 = checkpoint.LoadFp8BlockScaled("proj.weight", ScalarType.BFloat16);
        var raw = checkpoint.Load("proj.weight");

        Assert.Equal([(long)Rows, Cols], asFloat.shape);
        foreach (var (row, col, expected) in ExpectedSamples)
            Assert.Equal(expected, asFloat[row, col].item<float>());
        Assert.Equal(ScalarType.BFloat16, asBf16.dtype);
        Assert.True(asBf16.equal(asFloat.to_type(ScalarType.BFloat16)).all().item<bool>());
        Assert.Equal(ScalarType.Byte, raw.dtype);
        Assert.Equal(weight, raw.bytes.ToArray());
        Assert.Throws<NotSupportedException>(() => checkpoint.Load("proj.weight", dtype: ScalarType.Float32));
        Assert.Contains("not a 2-D F8_E4M3 weight", Assert.Throws<InvalidDataException>(() => checkpoint.LoadFp8BlockScaled("proj.weight_scale_inv")).Message);
    }

    /// <summary>A rank's shard of an FP8 weight: the block-aligned slice dequantises to the same numbers as that part of the whole.</summary>
    [Fact]
    public void Checkpoint_loads_a_block_aligned_slice_of_an_fp8_weight_and_refuses_one_that_cuts_blocks()
    {
        using var scope = NewDisposeScope();
        var (weight, scales) = Example();
        var model = Directory.CreateDirectory(_folder.File("fp8-slices")).FullName;
        SafetensorsWriter.Write(Path.Combine(model, "model.safetensors"),
        [
            new SafetensorsEntry("proj.weight", SafetensorsDType.F8E4M3, [Rows, Cols], weight),
            new SafetensorsEntry("proj.weight_scale_inv", SafetensorsDType.F32, [2, 3], scales.SelectMany(BitConverter.GetBytes).ToArray()),
        ]);
        using var checkpoint = Checkpoint.Open(model);
        var whole = checkpoint.LoadFp8BlockScaled("proj.weight");

        foreach (var slice in new[] { new TensorSlice(0, 128, Rows - 128), new TensorSlice(1, 128, 128), new TensorSlice(1, 256, Cols - 256) })
        {
            var part = checkpoint.LoadFp8BlockScaled("proj.weight", slice: slice);
            Assert.True(part.equal(whole.narrow(slice.Dim, slice.Start, slice.Length)).all().item<bool>(), $"slice {slice}");
            var (bits, scaleInv) = checkpoint.LoadFp8BlockSlice("proj.weight", slice);
            Assert.Equal(slice.ShapeOf([Rows, Cols]), bits.shape);
            Assert.Equal(slice.Dim == 0 ? [1L, 3] : [2L, 1], scaleInv.shape);
        }
        var error = Assert.Throws<InvalidDataException>(() => checkpoint.LoadFp8BlockScaled("proj.weight", slice: new TensorSlice(1, 0, 130)));
        Assert.Contains("cuts its 128×128 FP8 scale blocks", error.Message);
    }

    [Fact]
    public void Checkpoint_refuses_a_transposed_scale_grid()
    {
        var (weight, scales) = Example();
        var model = Directory.CreateDirectory(_folder.File("fp8-transposed")).FullName;
        SafetensorsWriter.Write(Path.Combine(model, "model.safetensors"),
        [
            new SafetensorsEntry("proj.weight", SafetensorsDType.F8E4M3, [Rows, Cols], weight),
            new SafetensorsEntry("proj.weight_scale_inv", SafetensorsDType.F32, [3, 2], scales.SelectMany(BitConverter.GetBytes).ToArray()),
        ]);
        using var checkpoint = Checkpoint.Open(model);

        var error = Assert.Throws<InvalidDataException>(() => checkpoint.LoadFp8BlockScaled("proj.weight"));

        Assert.Contains("'proj.weight_scale_inv' is F32 [3,2]; [130,260] in 128×128 blocks needs F32 [2,3]", error.Message);
    }

    /// <summary>(row, col, value) from the python computation, across all six blocks.</summary>
    private static readonly (int Row, int Col, float Value)[] ExpectedSamples =
    [
        (0, 1, 0.025390625f), (127, 127, -96f), (129, 259, -0.4921875f), (127, 128, -180f), (5, 200, 3.4375f),
        (129, 130, 0.28125f), (128, 3, -0.8203125f), (64, 255, -0.4296875f), (100, 259, -16.5f), (129, 0, -0.0478515625f),
        (3, 128, -0.03173828125f),
    ];

    /// <summary>Weight byte (7r + 13c) mod 256 with NaN codes zeroed; scale 2^(br-bc) × (1 + (3br+bc)/4) per 128×128 block.</summary>
    private static (byte[] Weight, float[] Scales) Example()
    {
        var weight = new byte[Rows * Cols];
        for (var row = 0; row < Rows; row++)
        {
            for (var col = 0; col < Cols; col++)
            {
                var bits = (row * 7 + col * 13) % 256;
                weight[row * Cols + col] = (byte)((bits & 0x7F) == 0x7F ? 0 : bits);
            }
        }
        float[] scales = [1f, 0.625f, 0.375f, 3.5f, 2f, 1.125f];
        return (weight, scales);
    }
}
