namespace MLNode.Runtime.Checkpoints;

/// <summary>A safetensors file (or a checkpoint index) that does not follow the format; the message names the file and, where one is at fault, the tensor.</summary>
public sealed class SafetensorsFormatException : IOException
{
    public SafetensorsFormatException(string filePath, string? tensorName, string problem)
        : base(tensorName is null ? $"{filePath}: {problem}" : $"{filePath}: tensor '{tensorName}': {problem}")
    {
        FilePath = filePath;
        TensorName = tensorName;
    }

    public string FilePath { get; }

    public string? TensorName { get; }
}
