using MLNode.Protocol.Management;

namespace MLNode.Protocol.OpenAi;

/// <summary>
/// vLLM's error body on the OpenAI routes: <c>{"error":{"message","type","param","code"}}</c>, where code repeats the
/// HTTP status. Routes outside the OpenAI surface answer FastAPI's <c>{"detail": …}</c> (<see cref="ErrorDetail"/>).
/// dapi's validator counts a 400 or 422 on a replay as a pass, so failures of this node must answer 5xx, never those.
/// </summary>
public sealed record OpenAiErrorResponse(OpenAiError Error)
{
    /// <summary>vLLM answers request validation failures with 400 BadRequestError (not FastAPI's 422).</summary>
    public static OpenAiErrorResponse FromFieldErrors(IReadOnlyList<FieldError> errors) =>
        new(new OpenAiError(
            string.Join("; ", errors.Select(e => $"{e.Field}: {e.Message}")),
            OpenAiError.BadRequestType,
            400,
            errors.Count > 0 ? errors[0].Field : null));
}

public sealed record OpenAiError(string Message, string Type, int Code, string? Param = null)
{
    public const string BadRequestType = "BadRequestError";
}
