namespace MLNode.Protocol.Management;

/// <summary>GET /v1/models, as vLLM answers it (dapi reads the first data[].id).</summary>
public sealed record OpenAiModelList(IReadOnlyList<OpenAiModel> Data, string Object = "list");

public sealed record OpenAiModel(string Id, long Created, string OwnedBy, string Root, long? MaxModelLen, string Object = "model");
