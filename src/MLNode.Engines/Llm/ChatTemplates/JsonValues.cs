using System.Globalization;
using System.Text;
using System.Text.Json;

namespace MLNode.Engines.Llm.ChatTemplates;

/// <summary>
/// JSON to template values as Python's json.loads makes them (integers stay int, objects keep key order),
/// and back as transformers' tojson writes them: json.dumps with ensure_ascii=False and no key sorting.
/// </summary>
internal static class JsonValues
{
    public static object? FromJson(JsonElement element) => element.ValueKind switch
    {
        JsonValueKind.Object => new OrderedDictionary<object, object?>(
            element.EnumerateObject().Select(p => KeyValuePair.Create<object, object?>(p.Name, FromJson(p.Value)))),
        JsonValueKind.Array => new List<object?>(element.EnumerateArray().Select(FromJson)),
        JsonValueKind.String => element.GetString(),
        JsonValueKind.Number => ParseNumber(element.GetRawText()),
        JsonValueKind.True => true,
        JsonValueKind.False => false,
        _ => null,
    };

    private static object ParseNumber(string raw) =>
        raw.AsSpan().IndexOfAny('.', 'e', 'E') < 0 && long.TryParse(raw, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out var integer)
            ? (object)integer
            : double.Parse(raw, CultureInfo.InvariantCulture);

    /// <param name="indent">null for one line with ", " and ": "; otherwise the indentation string of each level.</param>
    /// <param name="ensureAscii">json.dumps' ensure_ascii: non-ASCII characters as \uXXXX (UTF-16 units, as Python writes them).</param>
    public static string ToJson(object? value, string? indent, bool sortKeys, (string Item, string Key)? separators = null, bool ensureAscii = false)
    {
        var (item, key) = separators ?? (indent is null ? (", ", ": ") : (",", ": "));
        var text = new StringBuilder();
        Write(text, value, indent, sortKeys, item, key, depth: 0);
        if (!ensureAscii)
            return text.ToString();
        var ascii = new StringBuilder(text.Length);
        foreach (var c in text.ToString())
            ascii.Append(c < 0x80 ? c.ToString() : $"\\u{(int)c:x4}");
        return ascii.ToString();
    }

    private static void Write(StringBuilder text, object? value, string? indent, bool sortKeys, string item, string key, int depth)
    {
        switch (value)
        {
            case null: text.Append("null"); break;
            case bool b: text.Append(b ? "true" : "false"); break;
            case long l: text.Append(l.ToString(CultureInfo.InvariantCulture)); break;
            case double d: text.Append(double.IsNaN(d) ? "NaN" : double.IsInfinity(d) ? (d > 0 ? "Infinity" : "-Infinity") : PythonValues.FloatRepr(d)); break;
            case string s: WriteString(text, s); break;
            case List<object?> or object?[]:
                WriteContainer(text, '[', ']', PythonValues.Iterate(value).ToList(), indent, depth, item,
                    element => Write(text, element, indent, sortKeys, item, key, depth + 1));
                break;
            case OrderedDictionary<object, object?> dict:
                IEnumerable<KeyValuePair<string, object?>> pairs = dict.Select(p => KeyValuePair.Create(KeyText(p.Key), p.Value));
                if (sortKeys)
                    pairs = pairs.OrderBy(p => p.Key, StringComparer.Ordinal);
                WriteContainer(text, '{', '}', pairs.ToList(), indent, depth, item, pair =>
                {
                    WriteString(text, pair.Key);
                    text.Append(key);
                    Write(text, pair.Value, indent, sortKeys, item, key, depth + 1);
                });
                break;
            default:
                throw new ChatTemplateException($"TypeError: Object of type {PythonValues.TypeName(value)} is not JSON serializable");
        }
    }

    private static void WriteContainer<T>(StringBuilder text, char open, char close, List<T> elements, string? indent, int depth, string item, Action<T> writeElement)
    {
        text.Append(open);
        if (elements.Count == 0)
        {
            text.Append(close);
            return;
        }
        for (var i = 0; i < elements.Count; i++)
        {
            if (i > 0)
                text.Append(item);
            if (indent is not null)
                text.Append('\n').Insert(text.Length, indent, depth + 1);
            writeElement(elements[i]);
        }
        if (indent is not null)
            text.Append('\n').Insert(text.Length, indent, depth);
        text.Append(close);
    }

    private static string KeyText(object key) => key switch
    {
        string s => s,
        bool b => b ? "true" : "false",
        long or double => ToJson(key, null, false),
        _ => throw new ChatTemplateException($"TypeError: keys must be str, int, float, bool or None, not {PythonValues.TypeName(key)}"),
    };

    private static void WriteString(StringBuilder text, string s)
    {
        text.Append('"');
        foreach (var c in s)
        {
            switch (c)
            {
                case '"': text.Append("\\\""); break;
                case '\\': text.Append("\\\\"); break;
                case '\n': text.Append("\\n"); break;
                case '\r': text.Append("\\r"); break;
                case '\t': text.Append("\\t"); break;
                case '\b': text.Append("\\b"); break;
                case '\f': text.Append("\\f"); break;
                default:
                    if (c < ' ')
                        text.Append($"\\u{(int)c:x4}");
                    else
                        text.Append(c);
                    break;
            }
        }
        text.Append('"');
    }
}
