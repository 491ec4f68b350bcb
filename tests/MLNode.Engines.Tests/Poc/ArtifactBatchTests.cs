using MLNode.Engines.Poc;
using MLNode.Protocol.Poc;
using static TorchSharp.torch;

namespace MLNode.Engines.Tests.Poc;

/// <summary>The batch entry on the CPU, where it runs the per-nonce reference (the GPU tests hold the kernel to it).</summary>
public sealed class ArtifactBatchTests
{
    private static readonly PocRound Round = new("TEST_BLOCK", "test_pub_keys", SeqLen: 4, HiddenSize: 256);
    private static readonly long[] Nonces = [0, 3, 6, 9, 12, 15];

    [Theory]
    [InlineData(ScalarType.Float32)]
    [InlineData(ScalarType.BFloat16)]
    public void Encode_gives_each_nonce_its_reference_artifact(ScalarType dtype)
    {
        using var scope = NewDisposeScope();
        var hidden = tensor(PocRandom.Normal(5, Nonces.Length * Round.HiddenSize), [Nonces.Length, Round.HiddenSize]).to(dtype);
        var rows = hidden.to(ScalarType.Float32).data<float>().ToArray();

        var artifacts = ArtifactBatch.Encode(Round, Nonces, hidden);

        var expected = Nonces.Select((n, i) => new PocArtifact(n, ArtifactEncoder.Encode(Round, n, rows.AsSpan(i * Round.HiddenSize, Round.HiddenSize))));
        Assert.Equal(expected, artifacts);
    }

    [Fact]
    public void Encode_drops_the_rows_that_are_not_finite()
    {
        using var scope = NewDisposeScope();
        var values = PocRandom.Normal(6, Nonces.Length * Round.HiddenSize);
        values[1 * Round.HiddenSize + 7] = float.NaN;
        values[4 * Round.HiddenSize + 200] = float.PositiveInfinity;

        var artifacts = ArtifactBatch.Encode(Round, Nonces, tensor(values, [Nonces.Length, Round.HiddenSize]));

        Assert.Equal(new long[] { 0, 6, 9, 15 }, artifacts.Select(a => a.Nonce));
        Assert.Equal(ArtifactEncoder.Encode(Round, 9, values.AsSpan(3 * Round.HiddenSize, Round.HiddenSize)), artifacts[2].VectorB64);
    }

    [Fact]
    public void Encode_takes_the_last_position_of_a_hidden_batch()
    {
        // LlmPocProver passes hidden[:, -1, :], a strided view of [B, L, d].
        using var scope = NewDisposeScope();
        var hidden = tensor(PocRandom.Normal(7, Nonces.Length * 3 * Round.HiddenSize), [Nonces.Length, 3, Round.HiddenSize]);
        var last = hidden[TensorIndex.Colon, -1, TensorIndex.Colon];

        Assert.Equal(ArtifactBatch.Encode(Round, Nonces, last.contiguous()), ArtifactBatch.Encode(Round, Nonces, last));
    }

    [Fact]
    public void Encode_rejects_rows_that_do_not_match_the_nonces_and_the_round()
    {
        using var scope = NewDisposeScope();
        Assert.Throws<ArgumentException>(() => ArtifactBatch.Encode(Round, Nonces, zeros(Nonces.Length - 1, Round.HiddenSize)));
        Assert.Throws<ArgumentException>(() => ArtifactBatch.Encode(Round, Nonces, zeros(Nonces.Length, Round.HiddenSize + 1)));
    }
}
