using TorchSharp;
using static TorchSharp.torch;

namespace MLNode.Runtime.Native;

/// <summary>
/// Small host tensors sent to a GPU through page-locked memory. A copy from ordinary host memory makes libtorch wait for
/// everything queued on the device first; this one is queued behind that work instead, so the host can prepare a decode
/// step while the previous one still runs. (libtorch keeps the page-locked block until the copy has read it.)
/// </summary>
public static class PinnedUpload
{
    /// <summary><paramref name="host"/> (a CPU tensor) on <paramref name="device"/>; on the CPU, itself.</summary>
    public static Tensor Of(Tensor host, Device device)
    {
        if (device.type != DeviceType.CUDA) return host;
        using var pinned = host.pin_memory();
        return pinned.to(device, non_blocking: true);
    }

    /// <summary>int64 [n] of <paramref name="values"/> on <paramref name="device"/>.</summary>
    public static Tensor Int64(long[] values, Device device)
    {
        var host = tensor(values);
        if (device.type != DeviceType.CUDA) return host;
        using (host) return Of(host, device);
    }
}
