using MLNode.Runtime.Native;
using TorchSharp;
using static TorchSharp.torch;

namespace MLNode.Runtime.Collectives;

/// <summary>
/// One GPU's rank of an NCCL communicator group. The group is made in one process, one rank per visible GPU, by
/// <c>ncclCommInitAll</c>, and each rank is then driven by its own thread (NCCL needs no group calls when every thread
/// issues only its own rank's collectives). Collectives are enqueued on libtorch's current stream, after the ops that
/// produced their input and before the ops that read their output, with no host synchronisation.
/// </summary>
/// <remarks>
/// Why one process with a thread per GPU rather than a process per GPU (vLLM's choice): the worker keeps one HTTP front,
/// one model registry, one PoC runner and one node state machine whatever the GPU count, with nothing to serialise
/// between processes; the ranks share host memory (the tokenizer, the PoC input buffer, the request queues); and
/// TorchSharp needs nothing per process, since every tensor names its device and each rank's thread touches only its
/// own. Python needs processes to escape its interpreter lock; .NET threads have none.
/// </remarks>
public sealed class NcclCommunicator : ICommunicator
{
    private nint _comm;
    private Exception? _aborted;

    private NcclCommunicator(nint comm, int rank, int worldSize, int device) => (_comm, Rank, WorldSize, DeviceIndex) = (comm, rank, worldSize, device);

    public int Rank { get; }
    public int WorldSize { get; }

    /// <summary>The CUDA device this rank's tensors live on.</summary>
    public int DeviceIndex { get; }

    /// <summary>
    /// A group of one rank per device of <paramref name="devices"/> (rank r on devices[r]). NCCL is found as
    /// <see cref="NcclLibrary"/> says, beside the CUDA libtorch in <paramref name="libtorchFolder"/> unless configured.
    /// </summary>
    public static IReadOnlyList<NcclCommunicator> CreateGroup(IReadOnlyList<int> devices, string? libtorchFolder)
    {
        if (devices.Count == 0) throw new ArgumentException("a group needs at least one device", nameof(devices));
        NcclLibrary.Load(libtorchFolder);
        var comms = new nint[devices.Count];
        Nccl.Check(Nccl.ncclCommInitAll(comms, devices.Count, [.. devices]), nameof(Nccl.ncclCommInitAll));
        return comms.Select((comm, rank) => new NcclCommunicator(comm, rank, devices.Count, devices[rank])).ToArray();
    }

    public void AllReduceSum(Tensor tensor)
    {
        var pointer = Pointer(tensor);
        Nccl.Check(Nccl.ncclAllReduce(pointer, pointer, (nuint)tensor.numel(), Nccl.DataType(tensor.dtype), Nccl.Sum, Comm, Stream), nameof(Nccl.ncclAllReduce));
    }

    public Tensor AllGather(Tensor tensor, long dim)
    {
        using var scope = NewDisposeScope();
        var send = tensor.contiguous();
        var received = empty([WorldSize, .. send.shape], send.dtype, send.device);
        Nccl.Check(Nccl.ncclAllGather(Pointer(send), Pointer(received), (nuint)send.numel(), Nccl.DataType(send.dtype), Comm, Stream), nameof(Nccl.ncclAllGather));
        // received is [ranks, ...shape]: moving the rank axis next to dim and merging the two is the concatenation along dim.
        var at = dim < 0 ? dim + send.dim() : dim;
        return received.movedim([0], [at]).flatten(at, at + 1).contiguous().MoveToOuterDisposeScope();
    }

    public void Broadcast(Tensor tensor, int root)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(root);
        ArgumentOutOfRangeException.ThrowIfGreaterThanOrEqual(root, WorldSize);
        var pointer = Pointer(tensor);
        Nccl.Check(Nccl.ncclBroadcast(pointer, pointer, (nuint)tensor.numel(), Nccl.DataType(tensor.dtype), root, Comm, Stream), nameof(Nccl.ncclBroadcast));
    }

    /// <summary>An all-reduce of one element whose result the host waits for: every rank has enqueued it and the GPU ran it.</summary>
    public void Barrier()
    {
        using var token = ones([1], ScalarType.Int32, new Device(DeviceType.CUDA, DeviceIndex));
        AllReduceSum(token);
        _ = token.item<int>();
    }

    /// <summary>
    /// ncclCommAbort: kernels of this rank waiting on a peer that will never come return, so the thread blocked on them
    /// is released; every later collective throws. The owner aborts every rank's communicator when one rank fails.
    /// </summary>
    public void Abort(Exception cause)
    {
        if (Interlocked.CompareExchange(ref _aborted, cause, null) is not null) return;
        var comm = Interlocked.Exchange(ref _comm, 0);
        if (comm != 0) Nccl.ncclCommAbort(comm);
    }

    public void Dispose()
    {
        var comm = Interlocked.Exchange(ref _comm, 0);
        if (comm != 0) Nccl.ncclCommDestroy(comm);
    }

    private nint Comm
    {
        get
        {
            if (Volatile.Read(ref _aborted) is { } cause)
                throw new CommunicatorAbortedException($"rank {Rank} of {WorldSize}: the group was aborted ({cause.Message})", cause);
            var comm = Volatile.Read(ref _comm);
            ObjectDisposedException.ThrowIf(comm == 0, this);
            return comm;
        }
    }

    /// <summary>
    /// libtorch's current stream on this thread. TorchSharp never selects a stream, so it is each device's default
    /// stream (handle 0, which NCCL resolves on its communicator's device) unless the native library says otherwise.
    /// </summary>
    private static nint Stream => NativeKernels.HasTorch ? NativeKernels.Stream : 0;

    private Tensor CheckDevice(Tensor tensor) =>
        tensor.device.type == DeviceType.CUDA && tensor.device.index == DeviceIndex
            ? tensor
            : throw new ArgumentException($"rank {Rank} communicates tensors on cuda:{DeviceIndex}; got one on {tensor.device}", nameof(tensor));

    private nint Pointer(Tensor tensor) => NativeKernels.Pointer(CheckDevice(tensor));
}
