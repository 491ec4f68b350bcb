using System.Text.Json;
using MLNode.Engines.Llm.Tokenization.Unicode;

namespace MLNode.Engines.Llm.Tokenization;

/// <summary>The <c>normalizer</c> of a <c>tokenizer.json</c>: NFC or NFD, alone or in a Sequence.</summary>
internal sealed class TextNormalizer
{
    private readonly Func<string, string>[] _steps;

    private TextNormalizer(Func<string, string>[] steps) => _steps = steps;

    public static TextNormalizer FromJson(JsonElement normalizer)
    {
        var steps = new List<Func<string, string>>();
        Collect(normalizer, steps);
        return new TextNormalizer(steps.ToArray());
    }

    public string Normalize(string text)
    {
        foreach (var step in _steps)
            text = step(text);
        return text;
    }

    private static void Collect(JsonElement normalizer, List<Func<string, string>> steps)
    {
        if (normalizer.ValueKind is JsonValueKind.Null or JsonValueKind.Undefined)
            return;
        var type = normalizer.GetProperty("type").GetString();
        switch (type)
        {
            case "Sequence":
                foreach (var inner in normalizer.GetProperty("normalizers").EnumerateArray())
                    Collect(inner, steps);
                break;
            case "NFC":
                steps.Add(CanonicalNormalizer.Compose);
                break;
            case "NFD":
                steps.Add(CanonicalNormalizer.Decompose);
                break;
            default:
                throw new NotSupportedException($"normalizer '{type}' is not supported");
        }
    }
}
