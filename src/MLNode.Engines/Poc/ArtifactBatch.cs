using MLNode.Protocol.Poc;
using MLNode.Runtime.Native;
using TorchSharp;
using static TorchSharp.torch;

namespace MLNode.Engines.Poc;

/// <summary>
/// The artifacts of a batch of nonces from their final hidden rows [B, d]. On a GPU with the native library
/// one kernel does for every row what <see cref="ArtifactEncoder"/> does for one; elsewhere the rows come to
/// the host and <see cref="ArtifactEncoder"/> runs. Either way a row holding NaN or ±∞ gives no artifact, as
/// the reference drops it.
/// </summary>
public static class ArtifactBatch
{
    /// <summary>The artifacts of the nonces whose row is finite, in the order of <paramref name="nonces"/>.</summary>
    public static List<PocArtifact> Encode(PocRound round, IReadOnlyList<long> nonces, Tensor lastHidden)
    {
        ArgumentNullException.ThrowIfNull(round);
        ArgumentNullException.ThrowIfNull(nonces);
        if (!lastHidden.shape.SequenceEqual([nonces.Count, round.HiddenSize]))
            throw new ArgumentException($"expected hidden rows [{nonces.Count}, {round.HiddenSize}], got [{string.Join(", ", lastHidden.shape)}]", nameof(lastHidden));

        using var scope = NewDisposeScope();
        return NativeKernels.Handles(lastHidden) && round.KDim <= NativeKernels.PocArtifactsMaxK
            ? EncodeOnDevice(round, nonces, lastHidden)
            : EncodeOnHost(round, nonces, lastHidden);
    }

    /// <summary>
    /// Runs the kernel on <paramref name="lastHidden"/>'s GPU: artifacts float16 [B, k], the picked
    /// dimensions int32 [B, k] in the reference order, and whether each row is finite (bool [B]). The seeds
    /// and the Haar unit vectors (SHA-256 and k-long normal streams) are made here on the host.
    /// </summary>
    public static (Tensor Artifacts, Tensor Indices, Tensor Finite) RunKernel(PocRound round, IReadOnlyList<long> nonces, Tensor lastHidden)
    {
        ArgumentNullException.ThrowIfNull(round);
        ArgumentNullException.ThrowIfNull(nonces);
        var (batch, k, device) = (nonces.Count, round.KDim, lastHidden.device);
        var vectorsLength = HaarRotation.UnitVectorsLength(k);
        var seeds = new uint[batch];
        var vectors = new float[checked(batch * vectorsLength)];
        for (var i = 0; i < batch; i++)
        {
            seeds[i] = PocSeeds.Pick(round.BlockHash, round.PublicKey, nonces[i], k);
            HaarRotation.UnitVectors(round, nonces[i], vectors.AsSpan(i * vectorsLength, vectorsLength));
        }

        using var scope = NewDisposeScope();
        var artifacts = empty([batch, k], ScalarType.Float16, device);
        var indices = empty([batch, k], ScalarType.Int32, device);
        var finite = empty([batch], ScalarType.Bool, device);
        // The inputs are released when the scope ends, right after the launch: libtorch's allocator hands
        // their memory only to later work on the same stream, which runs after the kernel.
        NativeKernels.PocArtifacts(lastHidden.contiguous(), NativeKernels.SeedTensor(seeds, device), tensor(vectors, [batch, k - 1, k]).to(device),
            artifacts, indices, finite);
        return (artifacts.MoveToOuterDisposeScope(), indices.MoveToOuterDisposeScope(), finite.MoveToOuterDisposeScope());
    }

    private static List<PocArtifact> EncodeOnDevice(PocRound round, IReadOnlyList<long> nonces, Tensor lastHidden)
    {
        var (artifacts, _, finite) = RunKernel(round, nonces, lastHidden);
        // float16 → float32 is exact, so ArtifactCodec rounds every value back to the kernel's float16 bits.
        var values = artifacts.to(ScalarType.Float32).cpu().data<float>().ToArray();
        var rowFinite = finite.cpu().data<bool>().ToArray();
        var k = round.KDim;
        var encoded = new List<PocArtifact>(nonces.Count);
        for (var i = 0; i < nonces.Count; i++)
        {
            if (rowFinite[i])
                encoded.Add(new PocArtifact(nonces[i], ArtifactCodec.Encode(values.AsSpan(i * k, k))));
        }
        return encoded;
    }

    private static List<PocArtifact> EncodeOnHost(PocRound round, IReadOnlyList<long> nonces, Tensor lastHidden)
    {
        var width = round.HiddenSize;
        var rows = lastHidden.to(ScalarType.Float32).cpu().data<float>().ToArray();
        var encoded = new List<PocArtifact>(nonces.Count);
        for (var i = 0; i < nonces.Count; i++)
        {
            var row = rows.AsSpan(i * width, width);
            if (ArtifactEncoder.IsFinite(row))
                encoded.Add(new PocArtifact(nonces[i], ArtifactEncoder.Encode(round, nonces[i], row)));
        }
        return encoded;
    }
}
