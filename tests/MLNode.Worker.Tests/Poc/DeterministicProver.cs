using System.Collections.Concurrent;
using MLNode.Engines.Hosting;
using MLNode.Protocol.Poc;

namespace MLNode.Worker.Tests.Poc;

/// <summary>
/// A PoC forward without a model: the "final hidden state" of a nonce is the last row of its seeded inputs, and
/// the artifact comes from it through the real protocol math. Every call is recorded; calls can be made to fail.
/// </summary>
public sealed class DeterministicProver(int hiddenSize = 16) : IPocProver
{
    private readonly ConcurrentQueue<long[]> _calls = new();
    private readonly ConcurrentQueue<long> _computed = new();
    private int _failures;

    public int HiddenSize => hiddenSize;

    /// <summary>Time one forward takes, so that generation runs at a bounded pace.</summary>
    public TimeSpan Delay { get; set; } = TimeSpan.FromMilliseconds(5);

    /// <summary>The nonces of every call in order, failed calls included.</summary>
    public IReadOnlyList<long[]> Calls => [.. _calls];

    /// <summary>Every nonce an artifact was returned for, in order.</summary>
    public IReadOnlyList<long> Computed => [.. _computed];

    /// <summary>Makes the next <paramref name="count"/> calls throw, like a GPU fault.</summary>
    public void FailNext(int count) => Volatile.Write(ref _failures, count);

    public async Task<IReadOnlyList<PocArtifact>> ComputeAsync(PocRound round, IReadOnlyList<long> nonces, CancellationToken ct)
    {
        _calls.Enqueue([.. nonces]);
        await Task.Delay(Delay, ct);
        if (Volatile.Read(ref _failures) > 0 && Interlocked.Decrement(ref _failures) >= 0)
            throw new InvalidOperationException("injected fault in the PoC forward");
        var artifacts = nonces.Select(n => Artifact(round, n)).ToList();
        foreach (var nonce in nonces)
            _computed.Enqueue(nonce);
        return artifacts;
    }

    /// <summary>The artifact this prover computes for <paramref name="nonce"/>.</summary>
    public static PocArtifact Artifact(PocRound round, long nonce)
    {
        var inputs = new float[round.InputLength];
        PocInputs.Fill(round, nonce, inputs);
        return new PocArtifact(nonce, ArtifactEncoder.Encode(round, nonce, inputs.AsSpan(inputs.Length - round.HiddenSize)));
    }
}
