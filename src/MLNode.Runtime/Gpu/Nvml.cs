using System.Runtime.InteropServices;
using System.Text;
using MLNode.Protocol.Management;

namespace MLNode.Runtime.Gpu;

/// <summary>
/// GPU inventory through NVML (<c>libnvidia-ml.so.1</c>), as the reference reads it with pynvml. On a
/// machine without the NVIDIA driver the library is absent: no devices, and no driver information.
/// </summary>
public sealed partial class Nvml : IGpuInventory
{
    private const string Library = "libnvidia-ml.so.1";
    private const int Success = 0;
    private static readonly Lazy<bool> Initialized = new(TryInit);

    public bool Available => Initialized.Value;

    public IReadOnlyList<GpuDevice> Devices()
    {
        if (!Available || nvmlDeviceGetCount_v2(out var count) != Success) return [];
        var devices = new List<GpuDevice>((int)count);
        for (uint i = 0; i < count; i++) devices.Add(Describe(i));
        return devices;
    }

    public GpuDriverResponse? Driver()
    {
        if (!Available) return null;
        var driver = ReadString((b, n) => nvmlSystemGetDriverVersion(b, n));
        var nvml = ReadString((b, n) => nvmlSystemGetNVMLVersion(b, n));
        var cuda = nvmlSystemGetCudaDriverVersion_v2(out var v) == Success ? $"{v / 1000}.{v % 1000 / 10}" : "unknown";
        return new GpuDriverResponse(driver ?? "unknown", cuda, nvml ?? "unknown");
    }

    private static GpuDevice Describe(uint index)
    {
        var rc = nvmlDeviceGetHandleByIndex_v2(index, out var handle);
        if (rc != Success)
            return new GpuDevice((int)index, "unknown", null, null, null, null, null, false, ErrorText(rc));
        var name = ReadString((b, n) => nvmlDeviceGetName(handle, b, n)) ?? "unknown";
        long? total = null, free = null, used = null;
        if (nvmlDeviceGetMemoryInfo(handle, out var mem) == Success)
        {
            total = (long)(mem.Total / (1024 * 1024));
            free = (long)(mem.Free / (1024 * 1024));
            used = (long)(mem.Used / (1024 * 1024));
        }
        int? utilization = nvmlDeviceGetUtilizationRates(handle, out var util) == Success ? (int)util.Gpu : null;
        int? temperature = nvmlDeviceGetTemperature(handle, 0, out var temp) == Success ? (int)temp : null;
        return new GpuDevice((int)index, name, total, free, used, utilization, temperature, total is not null, null);
    }

    private static bool TryInit()
    {
        try
        {
            return nvmlInit_v2() == Success;
        }
        catch (Exception e) when (e is DllNotFoundException or EntryPointNotFoundException)
        {
            return false;
        }
    }

    private static unsafe string? ReadString(Func<nint, uint, int> read)
    {
        var buffer = stackalloc byte[256];
        return read((nint)buffer, 256) == Success ? Encoding.UTF8.GetString(MemoryMarshal.CreateReadOnlySpanFromNullTerminated(buffer)) : null;
    }

    private static string ErrorText(int rc) => Marshal.PtrToStringUTF8(nvmlErrorString(rc)) ?? $"NVML error {rc}";

    [StructLayout(LayoutKind.Sequential)]
    private struct MemoryInfo
    {
        public ulong Total, Free, Used;
    }

    [StructLayout(LayoutKind.Sequential)]
    private struct Utilization
    {
        public uint Gpu, Memory;
    }

    [LibraryImport(Library)] private static partial int nvmlInit_v2();
    [LibraryImport(Library)] private static partial int nvmlDeviceGetCount_v2(out uint count);
    [LibraryImport(Library)] private static partial int nvmlDeviceGetHandleByIndex_v2(uint index, out nint device);
    [LibraryImport(Library)] private static partial int nvmlDeviceGetName(nint device, nint name, uint length);
    [LibraryImport(Library)] private static partial int nvmlDeviceGetMemoryInfo(nint device, out MemoryInfo memory);
    [LibraryImport(Library)] private static partial int nvmlDeviceGetUtilizationRates(nint device, out Utilization utilization);
    [LibraryImport(Library)] private static partial int nvmlDeviceGetTemperature(nint device, int sensor, out uint temperature);
    [LibraryImport(Library)] private static partial int nvmlSystemGetDriverVersion(nint version, uint length);
    [LibraryImport(Library)] private static partial int nvmlSystemGetNVMLVersion(nint version, uint length);
    [LibraryImport(Library)] private static partial int nvmlSystemGetCudaDriverVersion_v2(out int version);
    [LibraryImport(Library)] private static partial nint nvmlErrorString(int result);
}

/// <summary>What /api/v1/gpu/* and /health read; tests substitute a fixed inventory.</summary>
public interface IGpuInventory
{
    bool Available { get; }
    IReadOnlyList<GpuDevice> Devices();
    GpuDriverResponse? Driver();
}
