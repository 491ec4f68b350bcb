using System.Runtime.InteropServices;
using static TorchSharp.torch;

namespace MLNode.Runtime.Collectives;

/// <summary>The part of NCCL's C API (<c>nccl.h</c>) that <see cref="NcclCommunicator"/> uses.</summary>
internal static partial class Nccl
{
    /// <summary>What <see cref="NcclLibrary.Open"/> requires of a library before it calls it NCCL.</summary>
    public static readonly string[] EntryPoints =
        [nameof(ncclGetVersion), nameof(ncclGetErrorString), nameof(ncclCommInitAll), nameof(ncclCommDestroy), nameof(ncclCommAbort),
         nameof(ncclAllReduce), nameof(ncclAllGather), nameof(ncclBroadcast)];

    private const int Success = 0;
    public const int Sum = 0; // ncclRedOp_t ncclSum

    /// <summary>ncclDataType_t of a libtorch dtype.</summary>
    public static int DataType(ScalarType dtype) => dtype switch
    {
        ScalarType.Int8 => 0,
        ScalarType.Byte => 1,
        ScalarType.Int32 => 2,
        ScalarType.Int64 => 4,
        ScalarType.Float16 => 6,
        ScalarType.Float32 => 7,
        ScalarType.Float64 => 8,
        ScalarType.BFloat16 => 9,
        _ => throw new NotSupportedException($"NCCL has no data type for {dtype}"),
    };

    public static void Check(int result, string call)
    {
        if (result != Success)
            throw new NcclException(call, result, Marshal.PtrToStringUTF8(ncclGetErrorString(result)) ?? "");
    }

    [LibraryImport(NcclLibrary.ImportName)] internal static partial int ncclGetVersion(out int version);
    [LibraryImport(NcclLibrary.ImportName)] internal static partial nint ncclGetErrorString(int result);
    [LibraryImport(NcclLibrary.ImportName)] internal static partial int ncclCommInitAll([Out] nint[] comms, int count, [In] int[] devices);
    [LibraryImport(NcclLibrary.ImportName)] internal static partial int ncclCommDestroy(nint comm);
    [LibraryImport(NcclLibrary.ImportName)] internal static partial int ncclCommAbort(nint comm);
    [LibraryImport(NcclLibrary.ImportName)] internal static partial int ncclAllReduce(nint send, nint receive, nuint count, int dataType, int op, nint comm, nint stream);
    [LibraryImport(NcclLibrary.ImportName)] internal static partial int ncclAllGather(nint send, nint receive, nuint sendCount, int dataType, nint comm, nint stream);
    [LibraryImport(NcclLibrary.ImportName)] internal static partial int ncclBroadcast(nint send, nint receive, nuint count, int dataType, int root, nint comm, nint stream);
}

/// <summary>An NCCL call returned an error.</summary>
public sealed class NcclException(string call, int result, string message) : Exception($"{call} failed with NCCL error {result}: {message}")
{
    public int Result { get; } = result;
}
