using TorchSharp;
using static TorchSharp.torch;

namespace MLNode.Runtime.Native;

/// <summary>
/// Small host arrays sent to a GPU through page-locked memory. A copy from ordinary host memory makes libtorch wait for
/// everything queued on the device first; this one is queued behind that work instead, so the host can prepare a decode
/// step while the previous one still runs. (libtorch keeps the page-locked block until the copy has read it.)
/// </summary>
public static class PinnedUpload
{
    /// <summary>int64 [n] of <paramref name="values"/> on <paramref name="device"/> (on the CPU, a plain tensor).</summary>
    public static Tensor Int64(long[] values, Device device)
    {
        if (device.type != DeviceType.CUDA) return tensor(values, device: device);
        using var host = tensor(values);
        using var pinned = host.pin_memory();
        return pinned.to(device, non_blocking: true);
    }
}
