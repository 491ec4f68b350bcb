using MLNode.Engines.Layers;
using MLNode.Runtime.Checkpoints;
using MLNode.Runtime.Native;
using TorchSharp;
using static TorchSharp.torch;

namespace MLNode.Gpu.Tests;

/// <summary>
/// The FP8 kernels (kernels/fp8_gemm.cu, kernels/fp8_linear_mma.cu, kernels/fp8_block_gemm.cu) against their references:
/// dequantisation bit for bit with <see cref="Fp8BlockDequantizer"/> and activation quantisation with
/// <see cref="Fp8GroupQuantizer"/>; the fused GEMM, the tensor-core linear, the block-scaled cuBLASLt GEMM and the FP8
/// <see cref="Linear"/> within bounds derived from their accumulation and the final rounding (see
/// <see cref="AssertWithinBound"/>).
/// </summary>
public sealed class Fp8Tests : IDisposable
{
    private readonly DirectoryInfo _folder = Directory.CreateTempSubdirectory("mlnode-fp8-gpu-");

    public void Dispose() => _folder.Delete(recursive: true);

    public static TheoryData<int, int, ScalarType> DequantizeCases => new()
    {
        { 130, 260, ScalarType.BFloat16 }, // cols not a multiple of 16: the one-element path
        { 200, 272, ScalarType.BFloat16 }, // 16-column path with partial blocks on both axes
        { 200, 272, ScalarType.Float16 },
        { 200, 272, ScalarType.Float32 },
        { 1, 16, ScalarType.BFloat16 },
        { 257, 1040, ScalarType.BFloat16 },
        { 128, 128, ScalarType.Float32 },
        { 70000, 32, ScalarType.BFloat16 }, // more rows than one grid dimension holds (65535): the row loop
    };

    [Theory]
    [MemberData(nameof(DequantizeCases))]
    public void Dequantize_is_bit_exact_with_the_reference(int rows, int cols, ScalarType dtype)
    {
        var cuda = Gpu.Require();
        using var scope = NewDisposeScope();
        var (bits, scales) = RandomFp8(rows, cols, seed: rows + cols, withNaN: true);
        var expected = Fp8BlockDequantizer.ToTensor(bits, scales, rows, cols, dtype);
        var output = empty([rows, cols], dtype, cuda);

        NativeKernels.Fp8Dequantize(Bits(bits, rows, cols, cuda), Scales(scales, rows, cols, cuda), 128, 128, output);

        // Widening to float32 is exact and one-to-one, so equal float32 bits mean equal bits in the output type.
        var ours = output.to_type(ScalarType.Float32).cpu().data<float>().ToArray();
        var reference = expected.to_type(ScalarType.Float32).data<float>().ToArray();
        for (var i = 0; i < ours.Length; i++)
        {
            var same = float.IsNaN(reference[i]) ? float.IsNaN(ours[i]) : BitConverter.SingleToInt32Bits(ours[i]) == BitConverter.SingleToInt32Bits(reference[i]);
            Assert.True(same, $"[{i / cols}, {i % cols}] (byte 0x{bits[i]:X2}, scale {scales[i / cols / 128 * Fp8BlockDequantizer.ScaleBlocks(cols, 128) + i % cols / 128]:R}): kernel {ours[i]:R} (0x{BitConverter.SingleToInt32Bits(ours[i]):X8}), reference {reference[i]:R} (0x{BitConverter.SingleToInt32Bits(reference[i]):X8})");
        }
    }

    public static TheoryData<int, ScalarType> FusedCases => new()
    {
        { 1, ScalarType.BFloat16 }, { 3, ScalarType.BFloat16 }, { 8, ScalarType.BFloat16 }, { 16, ScalarType.BFloat16 },
        { 5, ScalarType.Float16 }, { 2, ScalarType.Float32 },
    };

    [Theory]
    [MemberData(nameof(FusedCases))]
    public void Fused_linear_matches_the_product_of_the_dequantised_weight(int m, ScalarType dtype)
    {
        var cuda = Gpu.Require();
        using var scope = NewDisposeScope();
        const int Out = 301, In = 1040; // a partial group of 4 features, partial blocks on both axes
        var (bits, scales) = RandomFp8(Out, In, seed: m, withNaN: false);
        var x = randn([m, In], generator: new Generator((ulong)m)).to_type(dtype);
        var dense = Fp8BlockDequantizer.ToTensor(bits, scales, Out, In, ScalarType.Float32);
        var y = empty([m, Out], dtype, cuda);

        NativeKernels.Fp8Linear(x.to(cuda), Bits(bits, Out, In, cuda), Scales(scales, Out, In, cuda), 128, 128, y);

        AssertWithinProductBound(x, dense, null, y, dtype, "fused kernel");
        // libtorch's own GEMM on the same dequantised weight meets the same bound, so the two agree within twice it.
        AssertWithinProductBound(x, dense, null, nn.functional.linear(x.to(cuda), dense.to(dtype).to(cuda)), dtype, "libtorch GEMM");
    }

    [Fact]
    public void Fused_linear_refuses_more_rows_than_it_takes()
    {
        var cuda = Gpu.Require();
        using var scope = NewDisposeScope();
        var rows = NativeKernels.Fp8LinearMaxRows + 1;
        var error = Assert.Throws<NativeKernelException>(() => NativeKernels.Fp8Linear(
            zeros([rows, 128], ScalarType.BFloat16, cuda), zeros([64, 128], ScalarType.Byte, cuda), ones([1, 1], device: cuda), 128, 128,
            empty([rows, 64], ScalarType.BFloat16, cuda)));
        Assert.Contains($"m {rows} is outside", error.Message);
        Assert.True(Fp8BlockWeight.FusedMaxRows <= NativeKernels.Fp8LinearMaxRows);
    }

    public static TheoryData<int, int, int, int, int, ScalarType> MmaCases
    {
        get
        {
            // out = 301: three 128-feature tiles, the last partial and not a multiple of 16; in = 1152: 9 k blocks, so
            // the grid splits k (unevenly) on any GPU of more than a few SMs and the reduction pass runs.
            var cases = new TheoryData<int, int, int, int, int, ScalarType>();
            foreach (var m in new[] { 2, 8, 9, 16, 33, 64 }) // 8-, 16- and 64-row tiles, with and without padding rows
            {
                cases.Add(m, 301, 1152, 128, 128, ScalarType.BFloat16);
                cases.Add(m, 301, 1152, 128, 128, ScalarType.Float16);
            }
            cases.Add(64, 256, 384, 128, 128, ScalarType.BFloat16); // partials would cost more than they save: y in one launch
            cases.Add(9, 200, 512, 64, 256, ScalarType.BFloat16);   // scale blocks of 64 rows × 256 columns
            return cases;
        }
    }

    [Theory]
    [MemberData(nameof(MmaCases))]
    public void Mma_linear_matches_the_product_of_the_dequantised_weight(
        int m, int outFeatures, int inFeatures, int blockRows, int blockCols, ScalarType dtype)
    {
        var cuda = Gpu.Require();
        var (available, reason) = NativeKernels.Fp8LinearMmaSupport(cuda);
        if (!available) Assert.Skip($"no tensor-core FP8 linear here: {reason}");
        using var scope = NewDisposeScope();
        var (bits, scales) = RandomFp8(outFeatures, inFeatures, seed: m * 31 + inFeatures, withNaN: false, blockRows, blockCols);
        if (dtype == ScalarType.Float16) // y inside float16's normal range: scales of 2⁻¹¹…2⁻⁸, a different one per block
            scales = scales.Select((_, i) => MathF.ScaleB(1 + i % 7 / 8f, -8 - i % 4)).ToArray();
        var x = randn([m, inFeatures], generator: new Generator((ulong)m)).to_type(dtype);
        var dense = Fp8BlockDequantizer.ToTensor(bits, scales, outFeatures, inFeatures, ScalarType.Float32, blockRows: blockRows, blockCols: blockCols);
        var weight = Bits(bits, outFeatures, inFeatures, cuda);
        var scaleInv = Scales(scales, outFeatures, inFeatures, cuda, blockRows, blockCols);
        var y = full([m, outFeatures], float.NaN, dtype, cuda); // every output must be written

        NativeKernels.Fp8LinearMma(x.to(cuda), weight, scaleInv, blockRows, blockCols, y);

        AssertWithinBound(x, dense, null, y, Unit(dtype), MmaSumError(inFeatures), "tensor-core FP8 linear");
        // Nodes must agree bit for bit: the k splits are added in a fixed order, so the same call gives the same bits.
        var again = full([m, outFeatures], float.NaN, dtype, cuda);
        NativeKernels.Fp8LinearMma(x.to(cuda), weight, scaleInv, blockRows, blockCols, again);
        Assert.True((y == again).all().item<bool>(), "a second identical tensor-core FP8 linear gave different bits");
    }

    [Fact]
    public void Mma_linear_refuses_what_it_does_not_take()
    {
        var cuda = Gpu.Require();
        var (available, reason) = NativeKernels.Fp8LinearMmaSupport(cuda);
        if (!available) Assert.Skip($"no tensor-core FP8 linear here: {reason}");
        using var scope = NewDisposeScope();
        Assert.Equal(Fp8BlockWeight.MmaMaxRows, NativeKernels.Fp8LinearMmaMaxRows);

        void Call(int rows, int inFeatures, ScalarType dtype, string expected)
        {
            var error = Assert.Throws<NativeKernelException>(() => NativeKernels.Fp8LinearMma(
                zeros([rows, inFeatures], dtype, cuda), zeros([64, inFeatures], ScalarType.Byte, cuda),
                ones([1, Fp8BlockDequantizer.ScaleBlocks(inFeatures, 128)], device: cuda), 128, 128, empty([rows, 64], dtype, cuda)));
            Assert.Contains(expected, error.Message);
        }

        var tooMany = NativeKernels.Fp8LinearMmaMaxRows + 1;
        Call(tooMany, 128, ScalarType.BFloat16, $"m {tooMany} is outside");
        Call(2, 1040, ScalarType.BFloat16, "in_features 1040 is not a positive multiple of 128");
        Call(2, 128, ScalarType.Float32, "neither F16 nor BF16");
    }

    [Fact]
    public void Fp8_linear_takes_the_tensor_core_kernel_for_three_to_64_rows()
    {
        var cuda = Gpu.Require();
        var (available, reason) = NativeKernels.Fp8LinearMmaSupport(cuda);
        if (!available) Assert.Skip($"no tensor-core FP8 linear here: {reason}");
        using var scope = NewDisposeScope();
        const int Out = 272, In = 512;
        var (bits, scales) = RandomFp8(Out, In, seed: 21, withNaN: false);
        var weight = new Fp8BlockWeight(Bits(bits, Out, In, cuda), Scales(scales, Out, In, cuda));
        foreach (var rows in new[] { Fp8BlockWeight.MmaMinRows, 40, Fp8BlockWeight.MmaMaxRows })
        {
            var x = randn([1, rows, In], generator: new Generator((ulong)rows)).to_type(ScalarType.BFloat16).to(cuda);

            var y = weight.Linear(x, null);

            var direct = empty([rows, Out], ScalarType.BFloat16, cuda);
            NativeKernels.Fp8LinearMma(x.view(rows, In), weight.Bits, weight.ScaleInv, 128, 128, direct);
            Assert.True((y[0] == direct).all().item<bool>(), $"{rows} rows: Fp8BlockWeight.Linear differs from the tensor-core kernel's bits");
        }
    }

    public static TheoryData<int, int, ScalarType> QuantizeCases => new()
    {
        { 5, 1040, ScalarType.BFloat16 }, // a partial last group, 3 padding rows, 4-byte code stores
        { 3, 130, ScalarType.Float16 },   // cols not a multiple of 4: byte stores
        { 64, 4096, ScalarType.BFloat16 },
        { 33, 260, ScalarType.Float32 },
        { 1, 7, ScalarType.Float32 },     // less than one group
    };

    [Theory]
    [MemberData(nameof(QuantizeCases))]
    public void Quantize_groups_is_bit_exact_with_the_reference(int rows, int cols, ScalarType dtype)
    {
        var cuda = Gpu.Require();
        using var scope = NewDisposeScope();
        var x = Activations(rows, cols, seed: rows * cols, dtype);
        var values = x.to_type(ScalarType.Float32).data<float>().ToArray();
        if (dtype == ScalarType.Float32 && rows > 1)
        {
            // Edge cases of the reference's definition: NaN (skipped by amax, coded 0x7F), -0, an infinity (its group's
            // scale is infinite: NaN for it, ±0 for the rest), float32 subnormals, and a group of zeros (scale 0).
            values[3] = float.NaN;
            values[4] = -0f;
            values[cols + 1] = float.NegativeInfinity;
            values[2 * cols + 2] = 1e-40f;
            for (var col = 0; col < Math.Min(cols, 128); col++) values[(rows - 1) * cols + col] = 0;
            values[(rows - 1) * cols] = -0f;
            x = tensor(values, [rows, cols]);
        }
        var padded = Fp8GroupQuantizer.PaddedRows(rows);
        var groups = Fp8GroupQuantizer.Groups(cols);
        var expectedCodes = new byte[padded * cols];
        var expectedScales = new float[groups * padded];
        Fp8GroupQuantizer.Quantize(values, rows, cols, padded, expectedCodes, expectedScales);
        var codes = full([padded, cols], 0xA5, ScalarType.Byte, cuda); // garbage the kernel must overwrite, padding included
        var scales = full([groups, padded], float.NaN, device: cuda);

        NativeKernels.Fp8QuantizeGroups(x.to(cuda), codes, scales);

        var ours = codes.cpu().bytes.ToArray();
        for (var i = 0; i < ours.Length; i++)
            Assert.True(ours[i] == expectedCodes[i],
                $"code [{i / cols}, {i % cols}] of x = {(i / cols < rows ? values[i] : 0):R}: kernel 0x{ours[i]:X2}, reference 0x{expectedCodes[i]:X2}");
        var ourScales = scales.cpu().data<float>().ToArray();
        for (var i = 0; i < ourScales.Length; i++)
            Assert.True(BitConverter.SingleToInt32Bits(ourScales[i]) == BitConverter.SingleToInt32Bits(expectedScales[i]),
                $"scale of row {i % padded}, group {i / padded}: kernel {ourScales[i]:R}, reference {expectedScales[i]:R}");
    }

    public static TheoryData<int, int, int, ScalarType> BlockGemmCases => new()
    {
        { 16, 512, 1024, ScalarType.BFloat16 },
        { 36, 400, 1536, ScalarType.BFloat16 }, // out not a multiple of 128: a partial last weight block
        { 300, 256, 512, ScalarType.Float16 },
        { 4, 128, 2048, ScalarType.Float32 },
    };

    [Theory]
    [MemberData(nameof(BlockGemmCases))]
    public void Block_gemm_matches_the_product_of_the_quantised_operands(int rows, int outFeatures, int inFeatures, ScalarType dtype)
    {
        var cuda = Gpu.Require();
        var (available, reason) = NativeKernels.Fp8BlockGemmSupport(cuda);
        if (!available) Assert.Skip($"no block-scaled FP8 GEMM here: {reason}");
        using var scope = NewDisposeScope();
        var (bits, weightScales) = RandomFp8(outFeatures, inFeatures, seed: rows, withNaN: false);
        if (dtype == ScalarType.Float16) // keep y inside float16's range (65504)
            weightScales = weightScales.Select(scale => MathF.ScaleB(scale, -12)).ToArray();
        var x = Activations(rows, inFeatures, seed: rows + 1, dtype);
        var groups = Fp8GroupQuantizer.Groups(inFeatures);
        var codes = empty([rows, inFeatures], ScalarType.Byte, cuda);
        var xScales = empty([groups, rows], ScalarType.Float32, cuda);
        NativeKernels.Fp8QuantizeGroups(x.to(cuda), codes, xScales);
        var (weight, scaleInv) = (Bits(bits, outFeatures, inFeatures, cuda), Scales(weightScales, outFeatures, inFeatures, cuda));
        var y = full([rows, outFeatures], float.NaN, dtype, cuda);

        NativeKernels.Fp8BlockGemm(codes, xScales, weight, scaleInv, y);

        var (x64, w64) = QuantisedOperands(codes, xScales, bits, weightScales, outFeatures, inFeatures);
        AssertWithinBound(x64, w64, null, y, Unit(dtype), BlockScaledSumError(inFeatures, dtype), "block-scaled GEMM");
        // Nodes must agree bit for bit: the same call gives the same bits (no order-dependent split-K reduction).
        var again = full([rows, outFeatures], float.NaN, dtype, cuda);
        NativeKernels.Fp8BlockGemm(codes, xScales, weight, scaleInv, again);
        Assert.True((y == again).all().item<bool>(), "a second identical block-scaled GEMM gave different bits");
    }

    [Fact]
    public void Fp8_linear_takes_the_block_scaled_gemm_for_larger_batches()
    {
        var cuda = Gpu.Require();
        var (available, reason) = NativeKernels.Fp8BlockGemmSupport(cuda);
        if (!available) Assert.Skip($"no block-scaled FP8 GEMM here: {reason}");
        using var scope = NewDisposeScope();
        const int Out = 256, In = 1024, Rows = 69; // past MmaMaxRows (64); 69 rows pad to 72
        var (bits, scales) = RandomFp8(Out, In, seed: 11, withNaN: false);
        var weight = new Fp8BlockWeight(Bits(bits, Out, In, cuda), Scales(scales, Out, In, cuda));
        var x = Activations(Rows, In, seed: 12, ScalarType.BFloat16);
        var bias = randn([Out], generator: new Generator(13)).to_type(ScalarType.BFloat16);

        var y = weight.Linear(x.view(1, Rows, In).to(cuda), bias.to(cuda));

        Assert.Equal([1L, Rows, Out], y.shape);
        var padded = Fp8GroupQuantizer.PaddedRows(Rows);
        var codes = new byte[padded * In];
        var xScales = new float[Fp8GroupQuantizer.Groups(In) * padded];
        Fp8GroupQuantizer.Quantize(x.to_type(ScalarType.Float32).data<float>().ToArray(), Rows, In, padded, codes, xScales);
        var (x64, w64) = QuantisedOperands(tensor(codes, [padded, In]), tensor(xScales, [Fp8GroupQuantizer.Groups(In), padded]), bits, scales, Out, In);
        AssertWithinBound(x64[..Rows], w64, bias, y[0], Unit(ScalarType.BFloat16), BlockScaledSumError(In, ScalarType.BFloat16), $"FP8 linear, {Rows} rows");
    }

    [Fact]
    public void Fp8_linear_on_cuda_matches_the_cpu_reference()
    {
        var cuda = Gpu.Require();
        using var scope = NewDisposeScope();
        const int Out = 300, In = 272;
        var (bits, scales) = RandomFp8(Out, In, seed: 7, withNaN: false);
        var bias = randn([Out], generator: new Generator(8));
        SafetensorsWriter.Write(Path.Combine(_folder.FullName, "model.safetensors"),
        [
            new SafetensorsEntry("proj.weight", SafetensorsDType.F8E4M3, [Out, In], bits),
            new SafetensorsEntry("proj.weight_scale_inv", SafetensorsDType.F32, [3, 3], scales.SelectMany(BitConverter.GetBytes).ToArray()),
            new SafetensorsEntry("proj.bias", SafetensorsDType.F32, [Out], bias.data<float>().ToArray().SelectMany(BitConverter.GetBytes).ToArray()),
        ]);
        using var checkpoint = Checkpoint.Open(_folder.FullName);
        var onGpu = new Linear(new CheckpointWeights(checkpoint, cuda, ScalarType.BFloat16), "proj", In, Out, hasBias: true);
        var onCpu = new Linear(new CheckpointWeights(checkpoint, CPU, ScalarType.Float32), "proj", In, Out, hasBias: true);
        Assert.True(onGpu.IsFp8, "the CUDA weight source should keep the FP8 weight");
        Assert.False(onCpu.IsFp8, "the CPU weight source should dequantise on loading");
        var dense = Fp8BlockDequantizer.ToTensor(bits, scales, Out, In, ScalarType.Float32);

        // 1 and 7 rows take the fused kernel, 33 and 600 dequantise into a temporary and use the dense GEMM.
        foreach (var rows in new[] { 1, 7, 33, 600 })
        {
            var x = randn([1, rows, In], generator: new Generator((ulong)rows)).to_type(ScalarType.BFloat16);
            var y = onGpu.forward(x.to(cuda));
            Assert.Equal([1L, rows, Out], y.shape);
            AssertWithinProductBound(x[0], dense, bias, y[0], ScalarType.BFloat16, $"{rows} rows on CUDA");
            AssertWithinProductBound(x[0], dense, bias, onCpu.forward(x.to_type(ScalarType.Float32))[0], ScalarType.Float32, $"{rows} rows on the CPU");
        }
    }

    /// <summary>
    /// |y − x·Wᵀ − b| ≤ u·|x·Wᵀ + b| + (2u + n·2⁻²⁴)·(|x|·|W|ᵀ + |b|) + tiny, elementwise, against the exact product in
    /// float64, u the unit roundoff of the output type (2⁻⁸ bf16, 2⁻¹¹ f16, 2⁻²⁴ f32). The first term is the one rounding
    /// of the result. 2u·(|x|·|W|ᵀ + |b|) covers W and b rounded to that type first (the dequantise-then-GEMM path; the
    /// fused kernel keeps W exact in float32) plus cuBLAS rounding split-K partial sums to that type (PyTorch allows it
    /// for bf16/f16 by default). n·2⁻²⁴·(…) is the classic bound on a float32 sum of n = in + 1 terms in any order
    /// (Higham's γₙ), so any split of the sum over threads and blocks passes.
    /// </summary>
    private static void AssertWithinProductBound(Tensor x, Tensor w, Tensor? bias, Tensor y, ScalarType dtype, string what) =>
        AssertWithinBound(x, w, bias, y, Unit(dtype), 2 * Unit(dtype) + (x.shape[1] + 1) * Math.Pow(2, -24), what);

    /// <summary>
    /// The sum term of the tensor-core linear's bound, against x times the float32 dequantised W: that W rounds each
    /// E4M3 value × scale once (2⁻²⁴), while the kernel keeps both exact. The products of a bf16/f16 x and an E4M3 value
    /// are exact in float32; the tensor cores add them in float32 but align to the largest exponent and may truncate
    /// (Fasi et al., "Numerical behavior of NVIDIA tensor cores", 2021), so each addition is taken as 2⁻²³ rather than
    /// 2⁻²⁴, and doubled to 2⁻²² for γₙ's 1/(1 − nu) and the multi-term adder. Along any path to an output there are
    /// fewer than in + in/64 + 2 additions: in within the 128-column blocks, one scaled fmaf per block, one per k split.
    /// </summary>
    private static double MmaSumError(int inFeatures) => Math.Pow(2, -24) + (inFeatures + inFeatures / 64 + 2) * Math.Pow(2, -22);

    /// <summary>
    /// The sum term of the block-scaled FP8 GEMM's bound, against the product of the quantised x and W: Hopper's FP8
    /// tensor cores add the 128 products of one scale block in an accumulator of about 14 bits (DeepSeek-V3 report,
    /// §3.3.2), at most γ₁₂₈ = 128·2⁻¹³ = 2⁻⁶ of their magnitudes at 13 bits; the scaled block sums then add in float32
    /// (n·2⁻²⁴ over-covers them); u more covers a bias added after y was rounded.
    /// </summary>
    private static double BlockScaledSumError(int inFeatures, ScalarType dtype) =>
        Unit(dtype) + Math.Pow(2, -6) + (inFeatures + 1) * Math.Pow(2, -24);

    private static double Unit(ScalarType dtype) =>
        dtype switch { ScalarType.BFloat16 => Math.Pow(2, -8), ScalarType.Float16 => Math.Pow(2, -11), _ => Math.Pow(2, -24) };

    /// <summary>|y − x·Wᵀ − b| ≤ unit·|x·Wᵀ + b| + sumError·(|x|·|W|ᵀ + |b|) + tiny, elementwise, in float64.</summary>
    private static void AssertWithinBound(Tensor x, Tensor w, Tensor? bias, Tensor y, double unit, double sumError, string what)
    {
        using var scope = NewDisposeScope();
        var (x64, w64) = (x.cpu().to_type(ScalarType.Float64), w.cpu().to_type(ScalarType.Float64));
        var exact = x64.mm(w64.t());
        var magnitude = x64.abs().mm(w64.abs().t());
        if (bias is not null)
        {
            var b64 = bias.cpu().to_type(ScalarType.Float64);
            exact += b64;
            magnitude += b64.abs();
        }
        var bound = exact.abs() * unit + magnitude * sumError + 1e-30;
        var error = (y.cpu().to_type(ScalarType.Float64) - exact).abs();
        var worst = (error / (magnitude + 1e-30)).max().item<double>();
        var over = (error > bound).logical_or(error.isnan()).nonzero();
        if (over.shape[0] == 0) return;
        var (row, col) = (over[0, 0].item<long>(), over[0, 1].item<long>());
        Assert.Fail($"{what}: {over.shape[0]} of {error.numel()} outputs outside the bound (largest error / magnitude {worst:E2}); first [{row}, {col}]: got {y.cpu()[row, col].to_type(ScalarType.Float64).item<double>():R}, exact {exact[row, col].item<double>():R}, bound {bound[row, col].item<double>():R}");
    }

    /// <summary>
    /// The quantised activations and the weight as exact float64 matrices: every E4M3 value times its scale (a 4-bit by
    /// 24-bit product, exact in float64). x's scales are [groups, rows] (<see cref="Fp8GroupQuantizer"/>'s layout).
    /// </summary>
    private static (Tensor X, Tensor W) QuantisedOperands(Tensor codes, Tensor xScales, byte[] bits, float[] weightScales, int outFeatures, int inFeatures)
    {
        var rows = (int)codes.shape[0];
        var xBytes = codes.cpu().bytes.ToArray();
        var xs = xScales.cpu().data<float>().ToArray();
        var weightScaleCols = Fp8BlockDequantizer.ScaleBlocks(inFeatures, 128);
        return (Exact(xBytes, rows, inFeatures, (r, c) => xs[c / 128 * rows + r]),
            Exact(bits, outFeatures, inFeatures, (r, c) => weightScales[r / 128 * weightScaleCols + c / 128]));
    }

    private static Tensor Exact(byte[] codes, int rows, int cols, Func<int, int, float> scale)
    {
        var values = new double[codes.Length];
        for (var i = 0; i < values.Length; i++)
            values[i] = (double)Fp8E4M3.ToFloat(codes[i]) * scale(i / cols, i % cols);
        return tensor(values, [rows, cols]);
    }

    /// <summary>
    /// Normal activations whose (row, 128-column group) blocks are scaled by 2⁻⁸…2⁸, so a scale read for the wrong block
    /// is far off; on the CPU, in <paramref name="dtype"/>.
    /// </summary>
    private static Tensor Activations(int rows, int cols, int seed, ScalarType dtype)
    {
        var random = new Random(seed);
        var factors = new float[rows * Fp8GroupQuantizer.Groups(cols)];
        for (var i = 0; i < factors.Length; i++) factors[i] = MathF.ScaleB(1, random.Next(-8, 9));
        var blocks = tensor(factors, [rows, Fp8GroupQuantizer.Groups(cols)]).repeat_interleave(128, 1)[.., ..cols];
        return (randn([rows, cols], generator: new Generator((ulong)seed)) * blocks).to_type(dtype);
    }

    private static Tensor Bits(byte[] bits, int rows, int cols, Device device) => tensor(bits, [rows, cols]).to(device);

    private static Tensor Scales(float[] scales, int rows, int cols, Device device, int blockRows = 128, int blockCols = 128) =>
        tensor(scales, [Fp8BlockDequantizer.ScaleBlocks(rows, blockRows), Fp8BlockDequantizer.ScaleBlocks(cols, blockCols)]).to(device);

    /// <summary>
    /// Random E4M3 bytes (every code, NaN included when asked; otherwise NaN codes become zero) and the scales of its
    /// blockRows × blockCols blocks, spread over 2⁻²⁰…2⁴, the first one tiny enough (2⁻¹³⁰) that products fall below float32's normal range.
    /// </summary>
    private static (byte[] Bits, float[] Scales) RandomFp8(int rows, int cols, int seed, bool withNaN, int blockRows = 128, int blockCols = 128)
    {
        var random = new Random(seed);
        var bits = new byte[rows * cols];
        random.NextBytes(bits);
        if (!withNaN)
        {
            for (var i = 0; i < bits.Length; i++)
                if ((bits[i] & 0x7F) == 0x7F) bits[i] = 0;
        }
        var scales = new float[Fp8BlockDequantizer.ScaleBlocks(rows, blockRows) * Fp8BlockDequantizer.ScaleBlocks(cols, blockCols)];
        for (var i = 0; i < scales.Length; i++)
            scales[i] = (float)((1 + random.NextDouble()) * Math.Pow(2, random.Next(-20, 4)));
        if (withNaN) scales[0] = MathF.ScaleB(1.5f, -130);
        return (bits, scales);
    }
}
