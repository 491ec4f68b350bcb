using System.Text.Json;
using MLNode.Runtime.Checkpoints;

namespace MLNode.Engines.Dit.Vae;

/// <summary>
/// The fields of a diffusers <c>AutoencoderKLWan</c> config (<c>vae/config.json</c>) that the decoder needs, with the
/// class's defaults where a field may be absent. Only the Wan2.1 VAE (the one Wan2.2-T2V-A14B uses) is accepted:
/// the Wan2.2 VAE of TI2V-5B (<c>is_residual</c>, pixel <c>patch_size</c> 2) and attention in the up blocks
/// (<c>attn_scales</c>, which diffusers' decoder ignores but the official one builds) are refused rather than decoded wrongly.
/// </summary>
public sealed class WanVaeConfig
{
    private WanVaeConfig(ConfigJsonReader json)
    {
        if (json.OptionalBool("is_residual") == true)
            throw json.Error("is_residual", "is true: the Wan2.2 (TI2V-5B) VAE with residual up blocks is not supported");
        var patchSize = json.OptionalInt("patch_size");
        if (patchSize is not null and not 1)
            throw json.Error("patch_size", $"is {patchSize}: pixel-patchified VAEs (Wan2.2 TI2V-5B) are not supported");
        if (json.OptionalDoubleArray("attn_scales") is { Count: > 0 })
            throw json.Error("attn_scales", "is not empty: attention inside the up blocks is not supported");

        var baseDim = Positive(json, "base_dim", json.OptionalInt("base_dim") ?? 96);
        DecoderBaseDim = Positive(json, "decoder_base_dim", json.OptionalInt("decoder_base_dim") ?? baseDim);
        ZDim = Positive(json, "z_dim", json.OptionalInt("z_dim") ?? 16);
        DimMult = json.OptionalIntArray("dim_mult") ?? [1, 2, 4, 4];
        if (DimMult.Count == 0 || DimMult.Any(m => m <= 0)) throw json.Error("dim_mult", "must be a non-empty list of positive integers");
        NumResBlocks = Positive(json, "num_res_blocks", json.OptionalInt("num_res_blocks") ?? 2);
        TemperalDownsample = json.OptionalBoolArray("temperal_downsample") ?? [false, true, true];
        if (TemperalDownsample.Count != DimMult.Count - 1)
            throw json.Error("temperal_downsample", $"has {TemperalDownsample.Count} entries; dim_mult's {DimMult.Count} stages need {DimMult.Count - 1}");
        OutChannels = Positive(json, "out_channels", json.OptionalInt("out_channels") ?? 3);
        LatentsMean = json.OptionalDoubleArray("latents_mean") ?? throw json.Error("latents_mean", "is missing");
        LatentsStd = json.OptionalDoubleArray("latents_std") ?? throw json.Error("latents_std", "is missing");
        if (LatentsMean.Count != ZDim) throw json.Error("latents_mean", $"has {LatentsMean.Count} entries, z_dim is {ZDim}");
        if (LatentsStd.Count != ZDim) throw json.Error("latents_std", $"has {LatentsStd.Count} entries, z_dim is {ZDim}");
        if (LatentsStd.Any(s => s <= 0)) throw json.Error("latents_std", "must be positive");
    }

    /// <summary>The decoder's base channel count; its stages run at base × <see cref="DimMult"/> in reverse.</summary>
    public int DecoderBaseDim { get; }

    public int ZDim { get; }
    public IReadOnlyList<int> DimMult { get; }

    /// <summary>Residual blocks per encoder stage; the decoder's up blocks have one more.</summary>
    public int NumResBlocks { get; }

    /// <summary>The encoder's per-stage temporal downsampling (the config's spelling); the decoder upsamples in reverse.</summary>
    public IReadOnlyList<bool> TemperalDownsample { get; }

    public int OutChannels { get; }

    /// <summary>Per-channel statistics of the latent space: the DiT works on (z − mean)/std.</summary>
    public IReadOnlyList<double> LatentsMean { get; }

    public IReadOnlyList<double> LatentsStd { get; }

    public static WanVaeConfig FromFile(string path)
    {
        if (!File.Exists(path)) throw new FileNotFoundException($"VAE config not found: {path}", path);
        try
        {
            using var document = JsonDocument.Parse(File.ReadAllText(path));
            return new WanVaeConfig(ConfigJsonReader.Root(document.RootElement, path));
        }
        catch (JsonException e)
        {
            throw new InvalidDataException($"{path}: not valid JSON: {e.Message}", e);
        }
    }

    private static int Positive(ConfigJsonReader json, string field, int value) =>
        value > 0 ? value : throw json.Error(field, $"must be positive, got {value}");
}
