using System.Text;
using MLNode.Protocol.Diffusion;
using MLNode.Runtime.Checkpoints;
using static TorchSharp.torch;

namespace MLNode.Engines.Dit.Trajectory;

/// <summary>
/// A step reveal as one safetensors file: the <see cref="RevealManifest"/> as JSON under the metadata key
/// <see cref="ManifestKey"/>, and float32 tensors <c>step{j}.x</c> (x̃_j) and <c>step{j}.v</c> (v_j) for every revealed
/// step j, <c>step{k}.last_sample</c> (x_{k−1}) for every challenged k ≥ 1, and <c>final.x0</c> when the last step is
/// challenged (its successor is the final latent). docs/wan-verification.md describes what each is for.
/// </summary>
public sealed class RevealBundle : IDisposable
{
    public const string ManifestKey = "reveal";
    public const string FinalLatentTensor = "final.x0";

    private readonly SafetensorsFile _file;

    private RevealBundle(SafetensorsFile file, RevealManifest manifest)
    {
        _file = file;
        Manifest = manifest;
    }

    public RevealManifest Manifest { get; }

    public static string SampleTensor(int step) => $"step{step}.x";
    public static string VelocityTensor(int step) => $"step{step}.v";
    public static string LastSampleTensor(int step) => $"step{step}.last_sample";

    /// <summary>
    /// Writes the reveal <paramref name="beacon"/> asks of <paramref name="commitment"/> (<paramref name="count"/> steps) to
    /// <paramref name="path"/>, its tensors copied from <paramref name="states"/>. Throws <see cref="FileNotFoundException"/>
    /// when the states are gone.
    /// </summary>
    public static RevealManifest Write(string path, TrajectoryCommitment commitment, StepStateStore states, string beacon, int count)
    {
        ArgumentNullException.ThrowIfNull(states);
        var manifest = RevealManifest.For(commitment, beacon, count);
        var entries = new List<SafetensorsEntry>();
        foreach (var step in RevealManifest.RevealedSteps(manifest.Challenged, manifest.Steps))
        {
            using var file = states.OpenStep(step);
            entries.Add(Copy(file, StepStateStore.Sample, SampleTensor(step)));
            entries.Add(Copy(file, StepStateStore.Velocity, VelocityTensor(step)));
            if (step >= 1 && manifest.Challenged.Contains(step)) entries.Add(Copy(file, StepStateStore.LastSample, LastSampleTensor(step)));
        }
        if (manifest.RevealsFinalLatent)
        {
            using var final = states.OpenFinal();
            entries.Add(Copy(final, StepStateStore.FinalLatent, FinalLatentTensor));
        }
        SafetensorsWriter.Write(path, entries, new Dictionary<string, string> { [ManifestKey] = Encoding.UTF8.GetString(manifest.ToJson()) });
        return manifest;
    }

    /// <summary>Opens a reveal; throws <see cref="FormatException"/> when it is no reveal (no or a malformed manifest).</summary>
    public static RevealBundle Open(string path)
    {
        var file = SafetensorsFile.Open(path);
        try
        {
            if (!file.Metadata.TryGetValue(ManifestKey, out var json)) throw new FormatException($"{path}: no '{ManifestKey}' metadata; not a step reveal");
            return new RevealBundle(file, RevealManifest.Parse(Encoding.UTF8.GetBytes(json)));
        }
        catch
        {
            file.Dispose();
            throw;
        }
    }

    /// <summary>A revealed tensor as float32 on <paramref name="device"/>; <see cref="FormatException"/> when it is missing or not float32 of <paramref name="shape"/>.</summary>
    public Tensor Load(string name, IReadOnlyList<long> shape, Device device)
    {
        if (!_file.Contains(name)) throw new FormatException($"the reveal has no tensor '{name}'");
        var info = _file.GetInfo(name);
        if (info.DType != SafetensorsDType.F32 || !info.Shape.SequenceEqual(shape))
            throw new FormatException($"tensor '{name}' is {info.DType.FormatName()} [{string.Join(',', info.Shape)}], not F32 [{string.Join(',', shape)}]");
        return _file.Load(name, device);
    }

    public void Dispose() => _file.Dispose();

    private static SafetensorsEntry Copy(SafetensorsFile file, string name, string renamed)
    {
        var info = file.GetInfo(name);
        return new SafetensorsEntry(renamed, info.DType, info.Shape, file.GetBytes(name).ToArray());
    }
}
