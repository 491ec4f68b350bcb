namespace MLNode.Protocol.Management;

/// <summary>One GPU as /api/v1/gpu/devices reports it (pynvml field names of the reference).</summary>
public sealed record GpuDevice(
    int Index,
    string Name,
    long? TotalMemoryMb,
    long? FreeMemoryMb,
    long? UsedMemoryMb,
    int? UtilizationPercent,
    int? TemperatureC,
    bool IsAvailable,
    string? ErrorMessage);

public sealed record GpuDevicesResponse(IReadOnlyList<GpuDevice> Devices, int Count);

public sealed record GpuDriverResponse(string DriverVersion, string CudaDriverVersion, string NvmlVersion);
