namespace MLNode.Protocol.Management;

/// <summary>The reference node's <c>ServiceState</c>; this worker runs no PoC v1 or training service.</summary>
public enum NodeState { Stopped, Inference }

/// <summary>PoC v2 sub-state of an INFERENCE node, as <c>poc_status</c> reports it.</summary>
public enum PocStatus { Idle, Generating, Validating, Mixed, NoBackends }

/// <summary>GET /api/v1/state. The last three fields are null unless the state is INFERENCE.</summary>
public sealed record StateResponse(
    NodeState State,
    string Version,
    PocStatus? PocStatus,
    bool? InferenceHealthy,
    string? LoadedModel,
    RuntimeInfo Runtime);

/// <summary>Which tensor device and libtorch this process uses (an MLNode extension of /state).</summary>
public sealed record RuntimeInfo(string Device, string Libtorch, string? LibtorchPath);

public sealed record StatusOk(string Status = "OK");

public sealed record ErrorDetail(object Detail);
