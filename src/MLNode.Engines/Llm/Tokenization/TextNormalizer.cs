using System.Text;
using System.Text.Json;

namespace MLNode.Engines.Llm.Tokenization;

/// <summary>The <c>normalizer</c> of a <c>tokenizer.json</c>: Unicode normalization forms, alone or in a Sequence.</summary>
public sealed class TextNormalizer
{
    private readonly NormalizationForm[] _forms;

    private TextNormalizer(NormalizationForm[] forms) => _forms = forms;

    public static TextNormalizer FromJson(JsonElement normalizer)
    {
        var forms = new List<NormalizationForm>();
        Collect(normalizer, forms);
        return new TextNormalizer(forms.ToArray());
    }

    public string Normalize(string text)
    {
        if (_forms.Length > 0)
            text = ReplaceLoneSurrogates(text);
        foreach (var form in _forms)
            text = text.Normalize(form);
        return text;
    }

    // string.Normalize rejects lone surrogates; they have no UTF-8 form either, and UTF-8 encoding writes U+FFFD for them.
    private static string ReplaceLoneSurrogates(string text)
    {
        if (!text.AsSpan().ContainsAnyInRange('\uD800', '\uDFFF'))
            return text;
        var builder = new StringBuilder(text.Length);
        foreach (var rune in text.EnumerateRunes())
            builder.Append(rune.ToString());
        return builder.ToString();
    }

    private static void Collect(JsonElement normalizer, List<NormalizationForm> forms)
    {
        if (normalizer.ValueKind == JsonValueKind.Null)
            return;
        var type = normalizer.GetProperty("type").GetString();
        switch (type)
        {
            case "Sequence":
                foreach (var inner in normalizer.GetProperty("normalizers").EnumerateArray())
                    Collect(inner, forms);
                break;
            case "NFC": forms.Add(NormalizationForm.FormC); break;
            case "NFD": forms.Add(NormalizationForm.FormD); break;
            case "NFKC": forms.Add(NormalizationForm.FormKC); break;
            case "NFKD": forms.Add(NormalizationForm.FormKD); break;
            default: throw new NotSupportedException($"normalizer '{type}' is not supported");
        }
    }
}
