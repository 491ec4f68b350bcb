using System.Text.Json;
using System.Text.RegularExpressions;

namespace MLNode.Engines.Llm.Tokenization;

/// <summary>
/// The <c>pre_tokenizer</c> of a <c>tokenizer.json</c> for byte-level BPE: Split steps (Isolated) and ByteLevel,
/// alone or in a Sequence. It yields the plain-text pre-tokens whose UTF-8 bytes BPE merges; the mapping to the
/// byte-level alphabet that HF's ByteLevel step also does is left to <see cref="BpeModel"/>.
/// </summary>
internal sealed class PreTokenizer
{
    // tokenizers' ByteLevel pattern (GPT-2's), used when ByteLevel has use_regex.
    private const string Gpt2Pattern = @"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+";

    private readonly Action<string, List<string>>[] _steps;

    private PreTokenizer(Action<string, List<string>>[] steps) => _steps = steps;

    public static PreTokenizer FromJson(JsonElement preTokenizer)
    {
        var steps = new List<Action<string, List<string>>>();
        Collect(preTokenizer, steps);
        return new PreTokenizer(steps.ToArray());
    }

    public List<string> PreTokenize(string text)
    {
        var pieces = new List<string> { text };
        foreach (var step in _steps)
        {
            var next = new List<string>(pieces.Count * 2);
            foreach (var piece in pieces)
                step(piece, next);
            pieces = next;
        }
        return pieces;
    }

    private static void Collect(JsonElement preTokenizer, List<Action<string, List<string>>> steps)
    {
        if (preTokenizer.ValueKind is JsonValueKind.Null or JsonValueKind.Undefined)
            return;
        var type = preTokenizer.GetProperty("type").GetString();
        switch (type)
        {
            case "Sequence":
                foreach (var inner in preTokenizer.GetProperty("pretokenizers").EnumerateArray())
                    Collect(inner, steps);
                break;
            case "Split":
                steps.Add(SplitStep(preTokenizer));
                break;
            case "ByteLevel":
                steps.Add(ByteLevelStep(preTokenizer));
                break;
            default:
                throw new NotSupportedException($"pre-tokenizer '{type}' is not supported");
        }
    }

    private static Action<string, List<string>> SplitStep(JsonElement split)
    {
        var behavior = split.GetProperty("behavior").GetString();
        if (behavior != "Isolated" || (split.TryGetProperty("invert", out var invert) && invert.GetBoolean()))
            throw new NotSupportedException($"Split pre-tokenizer with behavior '{behavior}' or invert is not supported; only Isolated is");
        var pattern = split.GetProperty("pattern");
        var regex = pattern.TryGetProperty("Regex", out var expression)
            ? expression.GetString()!
            : Regex.Escape(pattern.GetProperty("String").GetString()!);
        return new IsolatingRegexSplitter(regex).Split;
    }

    private static Action<string, List<string>> ByteLevelStep(JsonElement byteLevel)
    {
        var addPrefixSpace = byteLevel.TryGetProperty("add_prefix_space", out var prefix) && prefix.GetBoolean();
        // tokenizers defaults use_regex to true.
        var splitter = !byteLevel.TryGetProperty("use_regex", out var useRegex) || useRegex.GetBoolean() ? new IsolatingRegexSplitter(Gpt2Pattern) : null;
        return (piece, pieces) =>
        {
            if (addPrefixSpace && !piece.StartsWith(' '))
                piece = " " + piece;
            if (splitter is null)
                pieces.Add(piece);
            else
                splitter.Split(piece, pieces);
        };
    }
}
