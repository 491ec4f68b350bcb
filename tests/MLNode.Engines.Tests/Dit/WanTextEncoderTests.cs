using Microsoft.Extensions.Logging.Abstractions;
using MLNode.Engines.Dit.Text;
using MLNode.Runtime.Checkpoints;
using MLNode.Tests;
using static TorchSharp.torch;

namespace MLNode.Engines.Tests.Dit;

/// <summary>
/// umT5 and the Wan text conditioning against wan-tiny's reference_tensors.safetensors: <c>text_embeds</c> is the
/// official encoder's output for <c>text_input_ids</c>, trimmed to the real tokens.
/// </summary>
public sealed class WanTextEncoderTests
{
    // Both sides run the same float32 ops (matmuls over d_model 32, a float32 softmax) with different kernels and
    // summation orders; that moves embeddings of order 1 by ~1e-6, so the 1e-4 (relative to the largest
    // reference value) keeps a wide margin while a wrong bucket, norm or activation shows up at 1e-2 or more.
    private const double RelativeTolerance = 1e-4;

    // bfloat16 keeps 8 significant bits (relative rounding 2^-9 ≈ 2e-3 per op); through two blocks of norms, matmuls
    // and residual adds that compounds to ~1e-2 of the largest value, so 3e-2 shows the bfloat16 path works.
    private const double BFloat16Tolerance = 3e-2;

    private static readonly WanTextEncoder Text = LoadOnOwnThread(ScalarType.Float32);

    [Fact]
    public void Encoder_output_matches_the_reference_embeddings()
    {
        using var reference = Reference("text_embeds");
        using var ids = Reference("text_input_ids").to(ScalarType.Int64);

        using var ours = Text.Encoder.forward(ids)[0];

        AssertClose(reference, ours);
    }

    [Fact]
    public void BFloat16_encoder_stays_close_to_the_reference()
    {
        var text = LoadOnOwnThread(ScalarType.BFloat16);
        using var reference = Reference("text_embeds");
        using var ids = Reference("text_input_ids").to(ScalarType.Int64);

        using var ours = text.Encoder.forward(ids)[0];

        Assert.Equal(ScalarType.BFloat16, ours.dtype);
        using var ours32 = ours.to(ScalarType.Float32);
        AssertClose(reference, ours32, BFloat16Tolerance);
    }

    [Fact]
    public void Context_holds_the_prompt_embeddings_then_zero_rows_to_the_text_length()
    {
        const string prompt = "A cat walks on the grass, cinematic lighting.";
        var ids = WanPromptTokens.Ids(Text.Tokenizer, prompt);
        using var tokens = Text.Encoder.forward(tensor(ids.Select(id => (long)id).ToArray(), [1, ids.Length], ScalarType.Int64))[0];

        using var context = Text.Encode(prompt, cancellationToken: TestContext.Current.CancellationToken);

        Assert.Equal([WanPromptTokens.TextLength, (long)Text.Encoder.Config.DModel], context.shape);
        Assert.True(context[..ids.Length].eq(tokens).all().item<bool>());
        Assert.Equal(0f, context[ids.Length..].abs().max().item<float>());
    }

    [Fact]
    public void A_short_text_length_truncates_the_prompt_and_keeps_eos()
    {
        using var context = Text.Encode("A cat walks on the grass, cinematic lighting.", textLength: 16, TestContext.Current.CancellationToken);
        var ids = WanPromptTokens.Ids(Text.Tokenizer, "A cat walks on the grass, cinematic lighting.", maxLength: 16);
        using var tokens = Text.Encoder.forward(tensor(ids.Select(id => (long)id).ToArray(), [1, ids.Length], ScalarType.Int64))[0];

        Assert.Equal(16, ids.Length);
        Assert.True(context.eq(tokens).all().item<bool>());
    }

    [Theory]
    // Exact below max_exact = 8 on each side; keys after the query use the upper half; log-spaced beyond, capped at 15.
    [InlineData(0, 0)]
    [InlineData(-7, 7)]
    [InlineData(7, 23)]
    [InlineData(-8, 8)]
    [InlineData(-16, 10)]
    [InlineData(16, 26)]
    [InlineData(-64, 14)]
    [InlineData(-127, 15)]
    [InlineData(300, 31)]
    public void Relative_position_buckets_follow_t5(int keyMinusQuery, long bucket)
    {
        var length = Math.Abs(keyMinusQuery) + 1;
        using var buckets = Umt5Attention.RelativePositionBuckets(length, numBuckets: 32, maxDistance: 128, CPU);
        var (query, key) = keyMinusQuery >= 0 ? (0, keyMinusQuery) : (-keyMinusQuery, 0);

        Assert.Equal(bucket, buckets[query, key].item<long>());
    }

    private static Tensor Reference(string name)
    {
        using var file = SafetensorsFile.Open(Fixtures.Path("wan", "wan-tiny", "reference_tensors.safetensors"));
        return file.Load(name, CPU);
    }

    /// <summary>
    /// Loads wan-tiny's text encoder on a new thread without the caller's execution context: TorchSharp would otherwise
    /// register the weights in whatever dispose scope the calling test thread has open (see TinyModels).
    /// </summary>
    private static WanTextEncoder LoadOnOwnThread(ScalarType dtype)
    {
        WanTextEncoder? loaded = null;
        Exception? failure = null;
        using (ExecutionContext.SuppressFlow())
        {
            var loader = new Thread(() =>
            {
                try
                {
                    loaded = WanTextEncoder.Load(Fixtures.Path("wan", "wan-tiny"), CPU, dtype, NullLogger.Instance);
                }
                catch (Exception e)
                {
                    failure = e;
                }
            });
            loader.Start();
            loader.Join();
        }
        return loaded ?? throw new InvalidOperationException("wan-tiny's text encoder did not load", failure);
    }

    private static void AssertClose(Tensor reference, Tensor ours, double tolerance = RelativeTolerance)
    {
        Assert.Equal(reference.shape, ours.shape);
        var worst = (reference - ours).abs().max().item<float>();
        var scale = reference.abs().max().item<float>();
        Assert.True(worst <= tolerance * scale, $"max |Δ| {worst} > {tolerance} × max |ref| {scale}");
    }
}
