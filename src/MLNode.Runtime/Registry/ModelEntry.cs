namespace MLNode.Runtime.Registry;

public enum Modality { Llm, Asr, Dit }

/// <summary>Where a model's files come from: the HF cache (hub id + revision), an operator's folder, or the built-in demo generator.</summary>
public enum ModelSource { Hub, Folder, Demo }

/// <summary>One file of a model with the SHA-256 it must have; <see cref="Path"/> is relative to the model folder.</summary>
public sealed record ModelFile(string Path, string Sha256);

public sealed record ModelLimits(int MaxModelLen, int MaxBatch);

/// <summary>The chain's PoC statistical test for a model (dapi sends p_value_threshold; the reference calls it fraud_threshold).</summary>
public sealed record StatTestParams(double DistThreshold, double PMismatch, double PValueThreshold);

public sealed record PocParams(int SeqLen, int KDim, StatTestParams StatTest, double WeightScaleFactor);

/// <summary>One model the worker can serve, as models.json declares it.</summary>
public sealed record ModelEntry
{
    public required string Id { get; init; }
    public string Revision { get; init; } = "main";
    public ModelSource Source { get; init; }
    /// <summary>Absolute folder for <see cref="ModelSource.Folder"/>; null otherwise.</summary>
    public string? Folder { get; init; }
    public required Modality Modality { get; init; }
    public required string Architecture { get; init; }
    /// <summary>Activation dtype: bfloat16, float16 or float32.</summary>
    public required string Dtype { get; init; }
    /// <summary>Files with their SHA-256; null means "verify against the hub's LFS hashes recorded in the cache".</summary>
    public IReadOnlyList<ModelFile>? Files { get; init; }
    public required ModelLimits Limits { get; init; }
    public double? ValidationThreshold { get; init; }
    public PocParams? Poc { get; init; }
    public IReadOnlyDictionary<string, double> Pricing { get; init; } = new Dictionary<string, double>();
}
