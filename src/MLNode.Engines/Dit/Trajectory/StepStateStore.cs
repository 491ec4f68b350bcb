using MLNode.Runtime.Checkpoints;
using static TorchSharp.torch;

namespace MLNode.Engines.Dit.Trajectory;

/// <summary>
/// A job's sampler states on disk for its challenge window, one safetensors file per step: <c>step{k}.safetensors</c>
/// holds x̃_k (<see cref="Sample"/>), the guided velocity v_k (<see cref="Velocity"/>) and, from step 1 on, x_{k−1}
/// (<see cref="LastSample"/>); <c>final.safetensors</c> holds the final latent x0 (<see cref="FinalLatent"/>), all float32.
/// m_k is not stored: it is x̃_k − σ_k·v_k, two float32 ops anyone repeats bit for bit (docs/wan-verification.md).
/// </summary>
public sealed class StepStateStore
{
    public const string Sample = "x";
    public const string Velocity = "v";
    public const string LastSample = "last_sample";
    public const string FinalLatent = "x0";

    private long _bytes;

    public StepStateStore(string folder)
    {
        ArgumentException.ThrowIfNullOrEmpty(folder);
        Folder = Path.GetFullPath(folder);
    }

    public string Folder { get; }

    /// <summary>Bytes written by this instance so far.</summary>
    public long BytesWritten => Interlocked.Read(ref _bytes);

    public string StepPath(int step) => Path.Combine(Folder, $"step{step}.safetensors");

    public string FinalPath => Path.Combine(Folder, "final.safetensors");

    public void Write(int step, Tensor sample, Tensor velocity, Tensor? lastSample)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(step);
        var tensors = new Dictionary<string, Tensor> { [Sample] = sample, [Velocity] = velocity };
        if (lastSample is not null) tensors[LastSample] = lastSample;
        Save(StepPath(step), tensors);
    }

    public void WriteFinal(Tensor finalLatent) => Save(FinalPath, new Dictionary<string, Tensor> { [FinalLatent] = finalLatent });

    /// <summary>Step <paramref name="step"/>'s file; throws <see cref="FileNotFoundException"/> once the window has swept it away.</summary>
    public SafetensorsFile OpenStep(int step) => SafetensorsFile.Open(StepPath(step));

    public SafetensorsFile OpenFinal() => SafetensorsFile.Open(FinalPath);

    private void Save(string path, Dictionary<string, Tensor> tensors)
    {
        foreach (var (name, tensor) in tensors)
            if (tensor.dtype != ScalarType.Float32) throw new ArgumentException($"sampler states are float32; {name} is {tensor.dtype}");
        Directory.CreateDirectory(Folder);
        SafetensorsWriter.Write(path, tensors);
        Interlocked.Add(ref _bytes, new FileInfo(path).Length);
    }
}
