namespace MLNode.Protocol.Management;

/// <summary>One problem with a request body, located by its JSON path ("body.params.seq_len").</summary>
public sealed record FieldError(string Field, string Message);

/// <summary>A request that checks its own value ranges after it has been read.</summary>
public interface IValidatedRequest
{
    IEnumerable<FieldError> Validate();
}
