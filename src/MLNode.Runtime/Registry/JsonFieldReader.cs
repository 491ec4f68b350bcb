using System.Text.Json;

namespace MLNode.Runtime.Registry;

/// <summary>
/// Reads typed fields out of a JSON object while collecting every problem with its JSON path, so an
/// operator sees all mistakes of a hand-edited file at once rather than one per restart.
/// </summary>
internal sealed class JsonFieldReader(List<string> problems)
{
    public List<string> Problems { get; } = problems;

    public void Fail(string path, string message) => Problems.Add($"{path}: {message}");

    public bool IsObject(JsonElement e, string path)
    {
        if (e.ValueKind == JsonValueKind.Object) return true;
        Fail(path, $"expected an object, got {Describe(e)}");
        return false;
    }

    public void RejectUnknown(JsonElement obj, string path, params string[] known)
    {
        foreach (var p in obj.EnumerateObject())
            if (!known.Contains(p.Name))
                Fail($"{path}.{p.Name}", $"unknown field (known: {string.Join(", ", known)})");
    }

    public string? String(JsonElement obj, string name, string path, bool required)
    {
        if (!obj.TryGetProperty(name, out var e) || e.ValueKind == JsonValueKind.Null)
        {
            if (required) Fail($"{path}.{name}", "is required");
            return null;
        }
        if (e.ValueKind != JsonValueKind.String)
        {
            Fail($"{path}.{name}", $"expected a string, got {Describe(e)}");
            return null;
        }
        var s = e.GetString()!;
        if (s.Length == 0) Fail($"{path}.{name}", "must not be empty");
        return s;
    }

    public bool? Bool(JsonElement obj, string name, string path)
    {
        if (!obj.TryGetProperty(name, out var e) || e.ValueKind == JsonValueKind.Null) return null;
        if (e.ValueKind is JsonValueKind.True or JsonValueKind.False) return e.GetBoolean();
        Fail($"{path}.{name}", $"expected true or false, got {Describe(e)}");
        return null;
    }

    public double? Number(JsonElement obj, string name, string path, bool required, double min, double max)
    {
        if (!obj.TryGetProperty(name, out var e) || e.ValueKind == JsonValueKind.Null)
        {
            if (required) Fail($"{path}.{name}", "is required");
            return null;
        }
        if (e.ValueKind != JsonValueKind.Number || !e.TryGetDouble(out var v) || !double.IsFinite(v))
        {
            Fail($"{path}.{name}", $"expected a number, got {Describe(e)}");
            return null;
        }
        if (v < min || v > max)
        {
            Fail($"{path}.{name}", $"{v} is outside [{min}, {max}]");
            return null;
        }
        return v;
    }

    public int? Int(JsonElement obj, string name, string path, bool required, int min, int max)
    {
        var v = Number(obj, name, path, required, min, max);
        if (v is null) return null;
        if (v != Math.Floor(v.Value))
        {
            Fail($"{path}.{name}", $"expected an integer, got {v}");
            return null;
        }
        return (int)v.Value;
    }

    public T? Enum<T>(JsonElement obj, string name, string path, bool required) where T : struct, System.Enum
    {
        var s = String(obj, name, path, required);
        if (s is null) return null;
        if (System.Enum.TryParse<T>(s.Replace("_", ""), ignoreCase: true, out var v) && System.Enum.IsDefined(v)) return v;
        Fail($"{path}.{name}", $"'{s}' is not one of {string.Join(", ", System.Enum.GetNames<T>().Select(n => n.ToLowerInvariant()))}");
        return null;
    }

    public static string Describe(JsonElement e) => e.ValueKind switch
    {
        JsonValueKind.String => $"string \"{Truncate(e.GetString()!)}\"",
        JsonValueKind.Number => $"number {e.GetRawText()}",
        JsonValueKind.True or JsonValueKind.False => $"boolean {e.GetRawText()}",
        JsonValueKind.Null => "null",
        JsonValueKind.Array => "an array",
        _ => "an object",
    };

    private static string Truncate(string s) => s.Length <= 40 ? s : s[..40] + "…";
}
