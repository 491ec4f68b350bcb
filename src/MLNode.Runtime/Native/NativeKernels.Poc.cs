using System.Runtime.InteropServices;
using MLNode.Protocol.Poc;
using TorchSharp;
using static TorchSharp.torch;

namespace MLNode.Runtime.Native;

// PoC v2 kernels (kernels/poc_inputs.cu, kernels/poc_householder.cu); their references are PocInputs and the
// reflection expression of LlmPocProver.
public static partial class NativeKernels
{
    /// <summary>
    /// Writes the PoC input embeddings of a batch of nonces into <paramref name="output"/> [B, L, d] (CUDA,
    /// contiguous, float32/float16/bfloat16), bit for bit <c>PocInputs.FillBatch</c> rounded to the dtype.
    /// </summary>
    /// <param name="seeds">int32 on the output's device, nonce-major: <c>PocInputs.Seeds</c> (B seeds, or B×8 with
    /// <paramref name="strongRng"/>) reinterpreted as signed.</param>
    public static void PocInputs(Tensor seeds, bool strongRng, Tensor output)
    {
        RequireFloatingOnCuda(output, nameof(output));
        if (output.dim() != 3)
            throw new ArgumentException($"output must be [batch, seq_len, hidden], got [{string.Join(", ", output.shape)}]", nameof(output));
        var (batch, length, width) = (output.shape[0], output.shape[1], output.shape[2]);
        var perNonce = strongRng ? PocSeeds.StrongSubSeedCount : 1;
        if (seeds.dtype != ScalarType.Int32 || !SameDevice(seeds, output) || seeds.numel() != batch * perNonce)
            throw new ArgumentException(
                $"seeds must be {batch * perNonce} int32 values on {output.device}, got {seeds.numel()} {seeds.dtype} on {seeds.device}", nameof(seeds));
        if (batch == 0) return;
        if (length * width > int.MaxValue)
            throw new ArgumentException($"seq_len·hidden = {length * width} exceeds 2^31 − 1", nameof(output));
        Check(mlnode_poc_inputs_fill(Pointer(seeds), strongRng ? 1 : 0, checked((int)batch), (int)length, (int)width, Pointer(output), (int)output.dtype, Stream),
            nameof(mlnode_poc_inputs_fill));
    }

    /// <summary>
    /// <c>x ← x − 2 (x·v) v</c> in place on every row of <paramref name="hidden"/> and, when given, of
    /// <paramref name="residual"/> (same shape), rounded like libtorch's <c>h - 2 * matmul(h, v).unsqueeze(-1) * v</c>
    /// in their dtype; <paramref name="unitVector"/> is [d] in the same dtype on the same device.
    /// </summary>
    public static void HouseholderReflect(Tensor hidden, Tensor? residual, Tensor unitVector)
    {
        RequireFloatingOnCuda(hidden, nameof(hidden));
        if (hidden.dim() == 0)
            throw new ArgumentException("hidden must have a last dimension", nameof(hidden));
        var width = hidden.shape[^1];
        if (unitVector.dim() != 1 || unitVector.shape[0] != width || unitVector.dtype != hidden.dtype || !SameDevice(unitVector, hidden))
            throw new ArgumentException(
                $"the vector must be [{width}] {hidden.dtype} on {hidden.device}, got [{string.Join(", ", unitVector.shape)}] {unitVector.dtype} on {unitVector.device}",
                nameof(unitVector));
        if (residual is not null && (!residual.shape.SequenceEqual(hidden.shape) || residual.dtype != hidden.dtype || !SameDevice(residual, hidden)))
            throw new ArgumentException(
                $"residual must match hidden ([{string.Join(", ", hidden.shape)}] {hidden.dtype} on {hidden.device}), got [{string.Join(", ", residual.shape)}] {residual.dtype} on {residual.device}",
                nameof(residual));
        if (width == 0 || width > int.MaxValue)
            throw new ArgumentException($"hidden size {width} is out of range", nameof(hidden));
        Check(mlnode_poc_householder_reflect(Pointer(hidden), residual is null ? 0 : Pointer(residual), Pointer(unitVector),
            hidden.numel() / width, (int)width, (int)hidden.dtype, Stream), nameof(mlnode_poc_householder_reflect));
    }

    private static void RequireFloatingOnCuda(Tensor tensor, string name)
    {
        if (tensor.device.type != DeviceType.CUDA)
            throw new ArgumentException($"{name} must be on a CUDA device, got {tensor.device}", name);
        if (tensor.dtype is not (ScalarType.Float32 or ScalarType.Float16 or ScalarType.BFloat16))
            throw new ArgumentException($"{name} must be float32, float16 or bfloat16, got {tensor.dtype}", name);
    }

    private static bool SameDevice(Tensor a, Tensor b) => a.device_type == b.device_type && a.device_index == b.device_index;

    [LibraryImport(LibraryName)]
    private static partial int mlnode_poc_inputs_fill(nint seeds, int strong, int batch, int seqLen, int hidden, nint output, int dtype, nint stream);

    [LibraryImport(LibraryName)]
    private static partial int mlnode_poc_householder_reflect(nint hidden, nint residual, nint unitVector, long rows, int dim, int dtype, nint stream);
}
