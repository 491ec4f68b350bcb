namespace MLNode.Protocol.Diffusion;

/// <summary>
/// Portable initial noise for DiT latents: the values <c>torch.randn(shape, generator=g, dtype=float32)</c>
/// gives with a CUDA generator seeded <c>seed</c> on a 132-SM Hopper (H100 SXM, H200), computed here on the
/// CPU. The native kernel computes the same stream on any GPU.
/// </summary>
/// <remarks>
/// <para>PyTorch's CUDA normal kernel launches G = min(ceil(N/256), SMs·maxThreadsPerSM/256) blocks of 256
/// threads. Thread t runs <c>curand_init(seed, subsequence: t, offset)</c> and loops: its k-th
/// <c>curand_normal4</c> turns one Philox4x32-10 block (counter = offset/4 + k in the low 64 bits, t in the
/// high 64 bits; key = seed) into four normals, written to elements t + k·4T + i·T (T = 256·G threads,
/// i = 0…3) that are below N. G depends on the GPU once N exceeds one wave (270,336 elements on 132 SMs ×
/// 2048 threads), which is why the same seed gives different noise on different GPUs; fixing G at 1056
/// (<see cref="VirtualBlocks"/>) defines one stream for every device.</para>
/// <para>Each pair of words (a, b) becomes (r·sin v, r·cos v) with u = a·2^-32 + 2^-33, v = b·2π·2^-32 + π·2^-32,
/// r = √(−2 ln u), as cuRAND's Box–Muller does. The integers are exact; the floats are not: the device
/// evaluates sin and cos with the fast approximate <c>__sincosf</c> (hardware units, ≈ 2^-22 absolute error)
/// where this code uses correctly rounded ones, so values here differ from the GPU's by up to
/// <see cref="MaxReferenceError"/>. Bit-exact noise comes from the kernel; this is its oracle and the CPU
/// fallback.</para>
/// </remarks>
public static class PhiloxNoise
{
    public const int ThreadsPerBlock = 256;

    /// <summary>Blocks of a full wave on a 132-SM Hopper: 132 SMs × (2048 threads per SM ÷ 256).</summary>
    public const int VirtualBlocks = 1056;

    /// <summary>Normals per Philox block (<c>curand_normal4</c>); also the philox offset's granularity.</summary>
    public const int ValuesPerDraw = 4;

    /// <summary>
    /// Largest difference between a value here and the device's: the sine and cosine units' ≈ 2^-22 absolute error
    /// scaled by r ≤ 6.8 (u ≥ 2^-33), plus an ulp or two of logf and of the product. Measured against PyTorch on an
    /// H100 (fixtures/wan): at most 5.4e-7.
    /// </summary>
    public const float MaxReferenceError = 4e-6f;

    // cuRAND's CURAND_2POW32_INV and CURAND_2POW32_INV_2PI, both float32 constants.
    private const float TwoPow32Inv = 2.3283064e-10f;
    private const float TwoPow32InvTwoPi = TwoPow32Inv * 6.2831855f;

    // The float32 1/2π the compiler multiplies by before the sine and cosine units.
    private const float InverseTwoPi = 0.15915494f;

    // Virtual blocks per parallel work item; the split never changes a value.
    private const int BlocksPerChunk = 32;

    /// <summary>G for <paramref name="count"/> elements: one block per 256 elements, at most one Hopper wave.</summary>
    public static int Blocks(long count) => (int)Math.Min((count + ThreadsPerBlock - 1) / ThreadsPerBlock, VirtualBlocks);

    /// <summary>
    /// Fills <paramref name="destination"/> (N = its length, the tensor's elements in row-major order) with the
    /// stream of <paramref name="seed"/>. <paramref name="offset"/> is the generator's philox offset in 32-bit
    /// draws (<c>Generator.get_offset()</c>): 0 for a freshly seeded generator; PyTorch advances it in
    /// multiples of 4 only.
    /// </summary>
    public static unsafe void Fill(ulong seed, Span<float> destination, ulong offset = 0)
    {
        CheckOffset(offset);
        var count = destination.Length;
        if (count == 0) return;
        var blocks = Blocks(count);
        fixed (float* start = destination)
        {
            // A span cannot cross into the parallel lambda; the buffer stays pinned until Parallel.For returns.
            var address = (nint)start;
            Parallel.For(0, (blocks + BlocksPerChunk - 1) / BlocksPerChunk, chunk =>
            {
                var output = new Span<float>((float*)address, count);
                var end = Math.Min(blocks, (chunk + 1) * BlocksPerChunk) * ThreadsPerBlock;
                for (var thread = chunk * BlocksPerChunk * ThreadsPerBlock; thread < end; thread++)
                    FillThread(seed, offset, blocks, thread, output);
            });
        }
    }

    /// <summary>
    /// How far one draw of <paramref name="count"/> elements advances the generator's philox offset: PyTorch adds
    /// ((N − 1) / (4·T) + 1)·4 (T = 256·G threads), one curand4 call per loop iteration of its busiest thread. Successive
    /// draws of one generator are the streams at offsets 0, a, 2a, … for a = this.
    /// </summary>
    public static ulong OffsetAdvance(long count)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(count, 1);
        var threads = (long)Blocks(count) * ThreadsPerBlock;
        return (ulong)((count - 1) / (ValuesPerDraw * threads) + 1) * ValuesPerDraw;
    }

    public static float[] Generate(ulong seed, int count, ulong offset = 0)
    {
        var values = new float[count];
        Fill(seed, values, offset);
        return values;
    }

    /// <summary>Element <paramref name="index"/> of the stream for an N = <paramref name="count"/> element tensor.</summary>
    public static float At(ulong seed, long count, long index, ulong offset = 0)
    {
        CheckOffset(offset);
        ArgumentOutOfRangeException.ThrowIfNegative(index);
        ArgumentOutOfRangeException.ThrowIfGreaterThanOrEqual(index, count);
        long threads = (long)Blocks(count) * ThreadsPerBlock;
        var lane = index / threads;
        var block = Draw(seed, offset, (uint)(index % threads), (ulong)(lane / ValuesPerDraw));
        var (sin, cos) = lane % ValuesPerDraw < 2 ? BoxMuller(block.X, block.Y) : BoxMuller(block.Z, block.W);
        return lane % 2 == 0 ? sin : cos;
    }

    private static void FillThread(ulong seed, ulong offset, int blocks, int thread, Span<float> output)
    {
        long threads = (long)blocks * ThreadsPerBlock;
        ulong draw = 0;
        for (long first = thread; first < output.Length; first += ValuesPerDraw * threads, draw++)
        {
            var block = Draw(seed, offset, (uint)thread, draw);
            var (n0, n1) = BoxMuller(block.X, block.Y);
            var (n2, n3) = BoxMuller(block.Z, block.W);
            Store(output, first, n0);
            Store(output, first + threads, n1);
            Store(output, first + 2 * threads, n2);
            Store(output, first + 3 * threads, n3);
        }
    }

    private static void Store(Span<float> output, long index, float value)
    {
        if (index < output.Length) output[(int)index] = value;
    }

    // Thread t's draw k: curand_init put t in the counter's high 64 bits and offset/4 in its low 64 bits, and
    // each curand4 call adds one. offset/4 + k stays far below 2^64, so no carry reaches the high half.
    private static PhiloxWords Draw(ulong seed, ulong offset, uint thread, ulong draw)
    {
        var low = offset / ValuesPerDraw + draw;
        return Philox4x32.Block(new PhiloxWords((uint)low, (uint)(low >> 32), thread, 0), (uint)seed, (uint)(seed >> 32));
    }

    // cuRAND's _curand_box_muller: words (X, Y) give lanes 0, 1 and (Z, W) lanes 2, 3, each as (r·sin v, r·cos v).
    private static (float Sin, float Cos) BoxMuller(uint a, uint b)
    {
        // The device contracts a·c + c/2 into one fused multiply-add.
        var u = MathF.FusedMultiplyAdd(a, TwoPow32Inv, TwoPow32Inv / 2);
        var v = MathF.FusedMultiplyAdd(b, TwoPow32InvTwoPi, TwoPow32InvTwoPi / 2);
        var radius = MathF.Sqrt(-2f * MathF.Log(u));
        var (sin, cos) = FastSinCos(v);
        // PyTorch stores rand·std + mean with std 1 and mean 0, which turns a −0 into +0.
        return (radius * sin + 0f, radius * cos + 0f);
    }

    /// <summary>
    /// The device's <c>__sincosf(v)</c> up to the hardware units' own error: the compiler emits
    /// <c>FMUL.RZ t = v·(1/2π)</c>, then <c>MUFU.SIN</c> and <c>MUFU.COS</c> of t revolutions. Rounding t toward
    /// zero shortens large angles, which biases the device's cosine by about −4e-8 on average: it moved the sum
    /// of the 2M-element fixture by 0.08 until this truncation was reproduced here (then 0.004).
    /// </summary>
    private static (float Sin, float Cos) FastSinCos(float v)
    {
        var exact = (double)v * InverseTwoPi;
        var revolutions = (float)exact;
        if (Math.Abs((double)revolutions) > Math.Abs(exact)) revolutions = MathF.BitDecrement(revolutions);
        var (sin, cos) = Math.SinCos(2 * Math.PI * revolutions);
        return ((float)sin, (float)cos);
    }

    private static void CheckOffset(ulong offset)
    {
        if (offset % ValuesPerDraw != 0)
            throw new ArgumentOutOfRangeException(nameof(offset), offset, $"a philox offset is a multiple of {ValuesPerDraw} (PyTorch advances its generators in whole curand4 draws)");
    }
}
