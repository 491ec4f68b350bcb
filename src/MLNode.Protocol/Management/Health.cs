namespace MLNode.Protocol.Management;

public sealed record ManagerHealth(bool Running, bool Healthy);

public sealed record GpuHealth(bool Available, int Count, IReadOnlyList<GpuDevice> Devices);

/// <summary>GET /health and /livez.</summary>
public sealed record HealthResponse(string Status, NodeState ServiceState, GpuHealth Gpu, IReadOnlyDictionary<string, ManagerHealth> Managers);

public sealed record ReadyResponse(bool Ready);
