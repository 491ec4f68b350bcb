namespace MLNode.Protocol.Management;

/// <summary>POST /api/v1/inference/up body as dapi sends it.</summary>
public sealed record InferenceUpRequest(string Model, string Dtype = "auto", IReadOnlyList<string>? AdditionalArgs = null)
    : IValidatedRequest
{
    public static readonly string[] Dtypes = ["auto", "bfloat16", "float16", "float32", "half", "float", "bf16", "fp16", "fp32"];

    public IEnumerable<FieldError> Validate()
    {
        if (string.IsNullOrWhiteSpace(Model))
            yield return new FieldError("body.model", "must be a non-empty model id");
        if (!Dtypes.Contains(Dtype, StringComparer.OrdinalIgnoreCase))
            yield return new FieldError("body.dtype", $"'{Dtype}' is not one of {string.Join(", ", Dtypes)}");
        if (AdditionalArgs is { Count: > 256 })
            yield return new FieldError("body.additional_args", "more than 256 arguments");
    }
}

public enum UpStatus { NotStarted, InProgress, Completed, Failed, Cancelled }

/// <summary>GET /api/v1/inference/up/status. Status values are lower-case in the reference.</summary>
public sealed record UpStatusResponse(string Status, bool IsStarting, bool IsRunning, double? ElapsedSeconds, string? Error);

public sealed record UpAsyncResponse(string Status, string Message);
