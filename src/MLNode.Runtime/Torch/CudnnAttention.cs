using System.Runtime.InteropServices;

namespace MLNode.Runtime.Torch;

/// <summary>
/// libtorch's switch for cuDNN's fused attention inside <c>scaled_dot_product_attention</c> (Python's
/// <c>torch.backends.cuda.enable_cudnn_sdp</c>), which TorchSharp does not bind; it is reached through the
/// <c>at::Context</c> methods libtorch_cpu exports. Why it matters: on Hopper libtorch prefers cuDNN attention,
/// and cuDNN builds an execution plan for every new shape, cached per thread, at ~50 ms a plan. A decoder
/// meets a new key length every step and our engine loops resume on whichever pool thread is free, so a
/// 32-layer Whisper step paid ~50 ms of plan building where its kernels take ~15 ms (benchmarks/README.md).
/// FlashAttention and memory-efficient attention need no plans.
/// </summary>
internal sealed class CudnnAttention
{
    [UnmanagedFunctionPointer(CallingConvention.Cdecl)] private delegate nint GlobalContext();
    [UnmanagedFunctionPointer(CallingConvention.Cdecl)] private delegate void SetFlag(nint context, [MarshalAs(UnmanagedType.U1)] bool enabled);
    [UnmanagedFunctionPointer(CallingConvention.Cdecl)] [return: MarshalAs(UnmanagedType.U1)] private delegate bool GetFlag(nint context);

    private readonly nint _context;
    private readonly SetFlag _set;
    private readonly GetFlag _get;

    private CudnnAttention(nint context, SetFlag set, GetFlag get) => (_context, _set, _get) = (context, set, get);

    /// <summary>The switch of the libtorch_cpu at <paramref name="library"/>, or null with the reason when that build exports none.</summary>
    public static CudnnAttention? Bind(nint library, out string? problem)
    {
        // Itanium-mangled at::globalContext(), at::Context::setSDPUseCuDNN(bool), at::Context::userEnabledCuDNNSDP() const.
        if (!NativeLibrary.TryGetExport(library, "_ZN2at13globalContextEv", out var global)
            || !NativeLibrary.TryGetExport(library, "_ZN2at7Context14setSDPUseCuDNNEb", out var set)
            || !NativeLibrary.TryGetExport(library, "_ZNK2at7Context19userEnabledCuDNNSDPEv", out var get))
        {
            problem = "this libtorch exports no at::Context::setSDPUseCuDNN";
            return null;
        }
        problem = null;
        var context = Marshal.GetDelegateForFunctionPointer<GlobalContext>(global)();
        return new CudnnAttention(context, Marshal.GetDelegateForFunctionPointer<SetFlag>(set), Marshal.GetDelegateForFunctionPointer<GetFlag>(get));
    }

    public bool Enabled
    {
        get => _get(_context);
        set => _set(_context, value);
    }
}
