using System.Globalization;
using System.Text.Json;
using MLNode.Engines.Dit;
using MLNode.Engines.Dit.Output;
using MLNode.Protocol.Management;

namespace MLNode.Worker.Video;

/// <summary>
/// A <c>/v1/videos</c> request: vLLM-Omni's fields, sent as multipart/form-data (as vLLM-Omni takes them) or as a JSON
/// object. OpenAI's <c>size</c> ("WxH") and <c>seconds</c> are accepted when the explicit fields are absent; features
/// this worker does not run (image or video references, LoRA, frame interpolation, true CFG) are refused by name rather
/// than ignored, since ignoring them would change the job silently.
/// </summary>
public sealed class VideoForm
{
    private static readonly string[] Unsupported =
        ["input_reference", "image_reference", "video_reference", "lora", "enable_frame_interpolation", "true_cfg_scale"];

    private static readonly HashSet<string> Known = new(StringComparer.Ordinal)
    {
        "prompt", "model", "seconds", "size", "user", "width", "height", "num_frames", "fps", "num_inference_steps",
        "guidance_scale", "guidance_scale_2", "boundary_ratio", "flow_shift", "seed", "negative_prompt", "output_format", "extra_params",
    };

    private readonly Dictionary<string, string> _fields;
    private readonly List<FieldError> _errors = [];

    private VideoForm(Dictionary<string, string> fields) => _fields = fields;

    public string? Model => _fields.GetValueOrDefault("model");

    /// <summary>Reads the request's fields, or the errors that name what is wrong with them.</summary>
    public static async Task<(VideoForm? Form, IReadOnlyList<FieldError> Errors)> ReadAsync(HttpRequest request, CancellationToken ct)
    {
        var fields = new Dictionary<string, string>(StringComparer.Ordinal);
        if (request.HasFormContentType)
        {
            IFormCollection form;
            try
            {
                form = await request.ReadFormAsync(ct);
            }
            catch (InvalidDataException e)
            {
                return (null, [new FieldError("body", $"malformed multipart/form-data: {e.Message}")]);
            }
            if (form.Files.Count > 0) return (null, [new FieldError(form.Files[0].Name, "file uploads (image or video references) are not supported")]);
            foreach (var (name, value) in form) fields[name] = value.ToString();
        }
        else
        {
            JsonDocument document;
            try
            {
                document = await JsonDocument.ParseAsync(request.Body, cancellationToken: ct);
            }
            catch (JsonException e)
            {
                return (null, [new FieldError("body", $"expected multipart/form-data or a JSON object: {e.Message}")]);
            }
            using (document)
            {
                if (document.RootElement.ValueKind != JsonValueKind.Object) return (null, [new FieldError("body", "must be a JSON object")]);
                foreach (var property in document.RootElement.EnumerateObject())
                    fields[property.Name] = property.Value.ValueKind == JsonValueKind.String ? property.Value.GetString()! : property.Value.GetRawText();
            }
        }
        var errors = fields.Keys.Where(k => Unsupported.Contains(k)).Select(k => new FieldError(k, "is not supported by this worker"))
            .Concat(fields.Keys.Where(k => !Known.Contains(k) && !Unsupported.Contains(k)).Select(k => new FieldError(k, "unknown field")))
            .ToList();
        return errors.Count > 0 ? (null, errors) : (new VideoForm(fields), []);
    }

    /// <summary>The job request and output format, or the fields that do not parse (the planner checks the values).</summary>
    public (WanJobRequest? Request, VideoFormat Format, IReadOnlyList<FieldError> Errors) ToRequest(int defaultFps)
    {
        if (!_fields.TryGetValue("prompt", out var prompt)) _errors.Add(new FieldError("prompt", "Field required"));
        var (width, height) = (Int("width"), Int("height"));
        if (_fields.TryGetValue("size", out var size))
        {
            var parts = size.Split('x', 'X', '*');
            if (parts.Length == 2 && int.TryParse(parts[0], CultureInfo.InvariantCulture, out var w) && int.TryParse(parts[1], CultureInfo.InvariantCulture, out var h))
                (width, height) = (width ?? w, height ?? h);
            else
                _errors.Add(new FieldError("size", $"must be WIDTHxHEIGHT, got '{size}'"));
        }
        var fps = Int("fps");
        var frames = Int("num_frames");
        if (frames is null && Double("seconds") is { } seconds)
            frames = (int)Math.Round(seconds * (fps ?? defaultFps)) / 4 * 4 + 1; // vLLM-Omni's n // 4 * 4 + 1
        string? solver = null;
        if (_fields.TryGetValue("extra_params", out var extra)) solver = ExtraParams(extra);
        var format = _fields.GetValueOrDefault("output_format") switch
        {
            null or "mp4" => VideoFormat.Mp4,
            "frames" => VideoFormat.Frames,
            "png" => VideoFormat.Png,
            var other => Bad<VideoFormat>("output_format", $"must be mp4, frames or png, got '{other}'"),
        };
        ulong? seed = null;
        if (_fields.TryGetValue("seed", out var seedText))
        {
            if (ulong.TryParse(seedText, CultureInfo.InvariantCulture, out var parsed)) seed = parsed;
            else _errors.Add(new FieldError("seed", $"must be a non-negative integer, got '{seedText}'"));
        }
        var request = new WanJobRequest(prompt ?? "", _fields.GetValueOrDefault("negative_prompt"), width, height, frames, fps,
            Int("num_inference_steps"), Double("flow_shift"), Double("boundary_ratio"), Double("guidance_scale"), Double("guidance_scale_2"), solver, seed);
        return (_errors.Count == 0 ? request : null, format, _errors);
    }

    private string? ExtraParams(string json)
    {
        try
        {
            using var document = JsonDocument.Parse(json);
            string? solver = null;
            foreach (var property in document.RootElement.EnumerateObject())
            {
                if (property.Name == "sample_solver" && property.Value.ValueKind == JsonValueKind.String) solver = property.Value.GetString();
                else _errors.Add(new FieldError($"extra_params.{property.Name}", "is not supported by this worker"));
            }
            return solver;
        }
        catch (Exception e) when (e is JsonException or InvalidOperationException)
        {
            _errors.Add(new FieldError("extra_params", $"must be a JSON object: {e.Message}"));
            return null;
        }
    }

    private int? Int(string name)
    {
        if (!_fields.TryGetValue(name, out var text)) return null;
        if (int.TryParse(text, CultureInfo.InvariantCulture, out var value)) return value;
        return Bad<int?>(name, $"must be an integer, got '{text}'");
    }

    private double? Double(string name)
    {
        if (!_fields.TryGetValue(name, out var text)) return null;
        if (double.TryParse(text, NumberStyles.Float, CultureInfo.InvariantCulture, out var value) && double.IsFinite(value)) return value;
        return Bad<double?>(name, $"must be a number, got '{text}'");
    }

    private T Bad<T>(string field, string message)
    {
        _errors.Add(new FieldError(field, message));
        return default!;
    }
}
