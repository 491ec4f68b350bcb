using System.Buffers;
using System.Globalization;
using System.Security.Cryptography;
using System.Text;
using System.Text.Encodings.Web;
using System.Text.Json;
using MLNode.Engines.Dit.Sampling;
using MLNode.Engines.Llm.Tokenization.Unicode;

namespace MLNode.Engines.Dit;

/// <summary>A checkpoint file the job ran on: its path in the model folder and its SHA-256 (lowercase hex).</summary>
public sealed record WanWeightFile(string Path, string Sha256);

/// <summary>
/// Everything that decides a Wan2.2 text-to-video job's frames, with every default already filled in: two workers given
/// the same spec run the same job. <see cref="CanonicalJson"/> writes it in one byte form (fixed field order, no
/// whitespace, UTF-8 unescaped, doubles in their shortest round-trip form) and <see cref="JobId"/> is that text's SHA-256.
/// <para>
/// Prompts are canonical (<see cref="CanonicalPrompt"/>). The negative prompt is explicit: when a request names none, the
/// official Wan default (<see cref="OfficialNegativePrompt"/>) is filled in; an explicit empty string stays empty, as
/// diffusers and vLLM-Omni run it. The noise is <see cref="NoiseAlgorithm"/>: torch's CUDA <c>randn</c> of the latent
/// shape as a 132-SM Hopper draws it (<c>LatentNoise</c>), float32.
/// </para>
/// </summary>
public sealed record WanJobSpec(
    string Model,
    string ModelRevision,
    IReadOnlyList<WanWeightFile> Weights,
    string Prompt,
    string NegativePrompt,
    int Width,
    int Height,
    int NumFrames,
    int Fps,
    int NumInferenceSteps,
    double FlowShift,
    double BoundaryRatio,
    double GuidanceScaleHighNoise,
    double GuidanceScaleLowNoise,
    string SampleSolver,
    ulong Seed,
    string Noise,
    string Precision)
{
    public const string NoiseAlgorithm = "philox-torch-cuda-randn";

    /// <summary>Wan's own FlowUniPC grid (σ_max = 0.999), as the official <c>generate.py</c> samples.</summary>
    public const string UniPcOfficial = "unipc-official";

    /// <summary>diffusers' UniPC grid with flow sigmas (σ_max = 1 − 1e-6), as diffusers and vLLM-Omni sample.</summary>
    public const string UniPcDiffusers = "unipc-diffusers";

    /// <summary><c>sample_neg_prompt</c> of wan/configs/shared_config.py, which the official pipeline uses for an empty negative prompt.</summary>
    public const string OfficialNegativePrompt =
        "色调艳丽，过曝，静态，细节模糊不清，字幕，风格，作品，画作，画面，静止，整体发灰，最差质量，低质量，JPEG压缩残留，丑陋的，残缺的，多余的手指，画得不好的手部，画得不好的脸部，畸形的，毁容的，形态畸形的肢体，手指融合，静止不动的画面，杂乱的背景，三条腿，背景人很多，倒着走";

    private static readonly JsonWriterOptions CanonicalWriter = new() { Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping, Indented = false };

    /// <summary>The sampler grid <see cref="SampleSolver"/> names.</summary>
    public FlowSigmaGrid Grid => SampleSolver switch
    {
        UniPcOfficial => FlowSigmaGrid.WanOfficial,
        UniPcDiffusers => FlowSigmaGrid.Diffusers,
        _ => throw new WanJobException("sample_solver", $"unknown sample_solver '{SampleSolver}'; use '{UniPcOfficial}' or '{UniPcDiffusers}'"),
    };

    /// <summary>
    /// The form a prompt is hashed and encoded in: Unicode NFC, leading and trailing white space removed, every run of
    /// white space (any Unicode white space, line breaks included) replaced by one ASCII space. NFC comes from
    /// <see cref="CanonicalNormalizer"/>: the worker's invariant globalization leaves string.Normalize a no-op.
    /// </summary>
    public static string CanonicalPrompt(string prompt)
    {
        ArgumentNullException.ThrowIfNull(prompt);
        var text = new StringBuilder(prompt.Length);
        var pendingSpace = false;
        foreach (var c in CanonicalNormalizer.Compose(prompt))
        {
            if (char.IsWhiteSpace(c))
            {
                pendingSpace = text.Length > 0;
                continue;
            }
            if (pendingSpace) text.Append(' ');
            pendingSpace = false;
            text.Append(c);
        }
        return text.ToString();
    }

    /// <summary>The spec as canonical JSON text (UTF-8): what <see cref="JobId"/> hashes and what a job returns.</summary>
    public byte[] CanonicalJson()
    {
        var buffer = new ArrayBufferWriter<byte>();
        using (var json = new Utf8JsonWriter(buffer, CanonicalWriter))
        {
            json.WriteStartObject();
            json.WriteString("model", Model);
            json.WriteString("model_revision", ModelRevision);
            json.WriteStartArray("weights");
            foreach (var file in Weights.OrderBy(f => f.Path, StringComparer.Ordinal))
            {
                json.WriteStartObject();
                json.WriteString("path", file.Path);
                json.WriteString("sha256", file.Sha256);
                json.WriteEndObject();
            }
            json.WriteEndArray();
            json.WriteString("prompt", Prompt);
            json.WriteString("negative_prompt", NegativePrompt);
            json.WriteNumber("width", Width);
            json.WriteNumber("height", Height);
            json.WriteNumber("num_frames", NumFrames);
            json.WriteNumber("fps", Fps);
            json.WriteNumber("num_inference_steps", NumInferenceSteps);
            WriteDouble(json, "flow_shift", FlowShift);
            WriteDouble(json, "boundary_ratio", BoundaryRatio);
            WriteDouble(json, "guidance_scale_high_noise", GuidanceScaleHighNoise);
            WriteDouble(json, "guidance_scale_low_noise", GuidanceScaleLowNoise);
            json.WriteString("sample_solver", SampleSolver);
            json.WriteNumber("seed", Seed);
            json.WriteString("noise", Noise);
            json.WriteString("precision", Precision);
            json.WriteEndObject();
        }
        return buffer.WrittenSpan.ToArray();
    }

    /// <summary>SHA-256 (lowercase hex) of <see cref="CanonicalJson"/>.</summary>
    public string JobId => Convert.ToHexStringLower(SHA256.HashData(CanonicalJson()));

    /// <summary>
    /// Reads a spec back from its JSON form (field order free); every field is required and must have its JSON type,
    /// or a <see cref="WanJobException"/> names it ("width", "weights.2.sha256").
    /// </summary>
    public static WanJobSpec Parse(JsonElement json)
    {
        if (json.ValueKind != JsonValueKind.Object) throw new WanJobException("", $"the job spec must be a JSON object, got {json.ValueKind}");
        var weights = Field(json, "weights", "", JsonValueKind.Array);
        return new WanJobSpec(
            String(json, "model"),
            String(json, "model_revision"),
            [.. weights.EnumerateArray().Select((file, i) => file.ValueKind == JsonValueKind.Object
                ? new WanWeightFile(String(file, "path", $"weights.{i}."), String(file, "sha256", $"weights.{i}."))
                : throw new WanJobException($"weights.{i}", $"weights.{i} must be an object with path and sha256"))],
            String(json, "prompt"),
            String(json, "negative_prompt"),
            Int32(json, "width"),
            Int32(json, "height"),
            Int32(json, "num_frames"),
            Int32(json, "fps"),
            Int32(json, "num_inference_steps"),
            Number(json, "flow_shift"),
            Number(json, "boundary_ratio"),
            Number(json, "guidance_scale_high_noise"),
            Number(json, "guidance_scale_low_noise"),
            String(json, "sample_solver"),
            Field(json, "seed", "", JsonValueKind.Number).TryGetUInt64(out var seed) ? seed : throw new WanJobException("seed", "seed must be an integer in [0, 2^64)"),
            String(json, "noise"),
            String(json, "precision"));
    }

    /// <summary>The request this spec is the plan of: a planner with the same model, defaults and limits gives this spec back.</summary>
    public WanJobRequest ToRequest() => new(Prompt, NegativePrompt, Width, Height, NumFrames, Fps, NumInferenceSteps, FlowShift, BoundaryRatio,
        GuidanceScaleHighNoise, GuidanceScaleLowNoise, SampleSolver, Seed);

    private static JsonElement Field(JsonElement json, string name, string path, JsonValueKind kind)
    {
        if (!json.TryGetProperty(name, out var value)) throw new WanJobException(path + name, $"the job spec has no '{path}{name}'");
        return value.ValueKind == kind ? value : throw new WanJobException(path + name, $"{path}{name} must be a JSON {kind.ToString().ToLowerInvariant()}, got {value.ValueKind}");
    }

    private static string String(JsonElement json, string name, string path = "") => Field(json, name, path, JsonValueKind.String).GetString()!;

    private static int Int32(JsonElement json, string name) =>
        Field(json, name, "", JsonValueKind.Number).TryGetInt32(out var value) ? value : throw new WanJobException(name, $"{name} must be a 32-bit integer");

    private static double Number(JsonElement json, string name) => Field(json, name, "", JsonValueKind.Number).GetDouble();

    /// <summary>Doubles as their shortest round-trip text, with an integral value written as such (12 → 12, not 12.0).</summary>
    private static void WriteDouble(Utf8JsonWriter json, string name, double value)
    {
        if (!double.IsFinite(value)) throw new WanJobException(name, $"{name} must be a finite number");
        json.WritePropertyName(name);
        json.WriteRawValue(value.ToString("R", CultureInfo.InvariantCulture), skipInputValidation: false);
    }
}

/// <summary>
/// A job this worker will not run (a field out of range, a shape the model cannot take, a job over the limits): the
/// caller's fault, answered with a 400/422 naming <see cref="Field"/>, a request field.
/// </summary>
public sealed class WanJobException(string field, string message) : Exception(message)
{
    public string Field { get; } = field;
}
