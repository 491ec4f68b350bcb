using System.Text;

namespace MLNode.Engines.Llm.ChatTemplates;

/// <summary>The methods of Python's str, dict, list and tuple that chat templates call, bound to their receiver.</summary>
internal static class BuiltinMethods
{
    public static NativeFunction? Bind(object? target, string name)
    {
        Func<CallArguments, object?>? body = target switch
        {
            string s => StringMethod(s, name),
            OrderedDictionary<object, object?> dict => DictMethod(dict, name),
            List<object?> or object?[] => SequenceMethod((IReadOnlyList<object?>)target, name),
            _ => null,
        };
        return body is null ? null : new NativeFunction(body);
    }

    private static Func<CallArguments, object?>? DictMethod(OrderedDictionary<object, object?> dict, string name) => name switch
    {
        "get" => a => a.Get(0, "key") is { } key && dict.TryGetValue(key, out var value) ? value : a.Get(1, "default"),
        "items" => _ => Items(dict),
        "keys" => _ => new List<object?>(dict.Keys),
        "values" => _ => new List<object?>(dict.Values),
        _ => null,
    };

    public static List<object?> Items(OrderedDictionary<object, object?> dict) =>
        [.. dict.Select(pair => (object?)new object?[] { pair.Key, pair.Value })];

    private static Func<CallArguments, object?>? SequenceMethod(IReadOnlyList<object?> items, string name) => name switch
    {
        "index" => a => (long)IndexOf(items, a.Get(0, "value")),
        "count" => a => (long)items.Count(item => PythonValues.AreEqual(item, a.Get(0, "value"))),
        _ => null,
    };

    private static int IndexOf(IReadOnlyList<object?> items, object? value)
    {
        for (var i = 0; i < items.Count; i++)
        {
            if (PythonValues.AreEqual(items[i], value))
                return i;
        }
        throw new ChatTemplateException($"ValueError: {PythonValues.Repr(value)} is not in list");
    }

    private static Func<CallArguments, object?>? StringMethod(string s, string name) => name switch
    {
        "startswith" => a => Affixes(a.Get(0, "prefix")).Any(p => s.StartsWith(p, StringComparison.Ordinal)),
        "endswith" => a => Affixes(a.Get(0, "suffix")).Any(p => s.EndsWith(p, StringComparison.Ordinal)),
        "strip" => a => Strip(s, a.Get(0, "chars"), start: true, end: true),
        "lstrip" => a => Strip(s, a.Get(0, "chars"), start: true, end: false),
        "rstrip" => a => Strip(s, a.Get(0, "chars"), start: false, end: true),
        "split" => a => Split(s, a.Get(0, "sep"), MaxSplit(a)),
        "rsplit" => a => RightSplit(s, a.Get(0, "sep"), MaxSplit(a)),
        "splitlines" => _ => new List<object?>(SplitLines(s)),
        "replace" => a => Replace(s, PythonValues.RequireString(a.Get(0, "old")), PythonValues.RequireString(a.Get(1, "new")), a.Has(2, "count") ? PythonValues.ToLong(a.Get(2, "count")) : -1),
        "upper" => _ => PythonCase.Upper(s),
        "lower" => _ => PythonCase.Lower(s),
        "title" => _ => Title(s),
        "capitalize" => _ => Capitalize(s),
        "find" => a => CodePointIndex(s, s.IndexOf(PythonValues.RequireString(a.Get(0, "sub")), StringComparison.Ordinal)),
        "rfind" => a => CodePointIndex(s, s.LastIndexOf(PythonValues.RequireString(a.Get(0, "sub")), StringComparison.Ordinal)),
        "count" => a => (long)Count(s, PythonValues.RequireString(a.Get(0, "sub"))),
        "join" => a => string.Join(s, PythonValues.Iterate(a.Get(0, "iterable")).Select(PythonValues.RequireString)),
        "format" => a => StringFormat.Apply(s, a),
        "isdigit" => _ => s.Length > 0 && s.All(char.IsDigit),
        "isalpha" => _ => s.Length > 0 && s.All(char.IsLetter),
        "isalnum" => _ => s.Length > 0 && s.All(char.IsLetterOrDigit),
        "isspace" => _ => s.Length > 0 && s.All(PythonValues.IsSpace),
        "islower" => _ => IsLower(s),
        "isupper" => _ => IsUpper(s),
        _ => null,
    };


    private static IEnumerable<string> Affixes(object? affix) => affix is object?[] choices ? choices.Select(PythonValues.RequireString) : [PythonValues.RequireString(affix)];

    /// <summary>A UTF-16 index as Python counts it, in code points; -1 stays -1.</summary>
    private static long CodePointIndex(string s, int index) => index < 0 ? index : PythonValues.CodePointLength(s[..index]);

    private static long MaxSplit(CallArguments a) => a.Has(1, "maxsplit") ? PythonValues.ToLong(a.Get(1, "maxsplit")) : -1;

    /// <summary>Python's str.islower: some cased character, and no upper-case one.</summary>
    public static bool IsLower(string s) => s.Any(char.IsLower) && !s.Any(char.IsUpper);

    public static bool IsUpper(string s) => s.Any(char.IsUpper) && !s.Any(char.IsLower);

    /// <summary>Python's strip family: whitespace when no characters are given, else any of the given characters.</summary>
    public static string Strip(string s, object? chars, bool start, bool end)
    {
        Func<char, bool> strips = chars is null or Undefined ? PythonValues.IsSpace : PythonValues.RequireString(chars).Contains;
        int from = 0, to = s.Length;
        while (start && from < to && strips(s[from]))
            from++;
        while (end && to > from && strips(s[to - 1]))
            to--;
        return s[from..to];
    }

    private static List<object?> Split(string s, object? separator, long maxSplit)
    {
        if (separator is null)
            return SplitOnWhitespace(s, maxSplit);
        var sep = NonEmptySeparator(separator);
        var parts = new List<object?>();
        var from = 0;
        for (int at; maxSplit != 0 && (at = s.IndexOf(sep, from, StringComparison.Ordinal)) >= 0; maxSplit--)
        {
            parts.Add(s[from..at]);
            from = at + sep.Length;
        }
        parts.Add(s[from..]);
        return parts;
    }

    private static List<object?> RightSplit(string s, object? separator, long maxSplit)
    {
        if (separator is null)
        {
            // Only maxsplit makes rsplit differ from split; whitespace splitting from the right is its mirror image.
            var reversed = SplitOnWhitespace(new string([.. s.Reverse()]), maxSplit);
            reversed.Reverse();
            return [.. reversed.Select(part => (object?)new string([.. ((string)part!).Reverse()]))];
        }
        var sep = NonEmptySeparator(separator);
        var parts = new List<object?>();
        var to = s.Length;
        for (int at; maxSplit != 0 && to > 0 && (at = s.LastIndexOf(sep, to - 1, StringComparison.Ordinal)) >= 0 && at + sep.Length <= to; maxSplit--)
        {
            parts.Insert(0, s[(at + sep.Length)..to]);
            to = at;
        }
        parts.Insert(0, s[..to]);
        return parts;
    }

    private static string NonEmptySeparator(object? separator) =>
        PythonValues.RequireString(separator) is { Length: > 0 } sep ? sep : throw new ChatTemplateException("ValueError: empty separator");

    private static List<object?> SplitOnWhitespace(string s, long maxSplit)
    {
        var parts = new List<object?>();
        var i = 0;
        while (true)
        {
            while (i < s.Length && PythonValues.IsSpace(s[i]))
                i++;
            if (i == s.Length)
                return parts;
            if (maxSplit == 0)
            {
                parts.Add(s[i..]);
                return parts;
            }
            var start = i;
            while (i < s.Length && !PythonValues.IsSpace(s[i]))
                i++;
            parts.Add(s[start..i]);
            maxSplit--;
        }
    }

    /// <summary>Python's str.splitlines: \n, \r, \r\n and the other Unicode line boundaries end a line; no empty last line.</summary>
    public static List<string> SplitLines(string s)
    {
        var lines = new List<string>();
        var start = 0;
        for (var i = 0; i < s.Length; i++)
        {
            if (s[i] is not ('\n' or '\r' or '\v' or '\f' or '\x1c' or '\x1d' or '\x1e' or '\x85' or '\u2028' or '\u2029'))
                continue;
            lines.Add(s[start..i]);
            if (s[i] == '\r' && i + 1 < s.Length && s[i + 1] == '\n')
                i++;
            start = i + 1;
        }
        if (start < s.Length)
            lines.Add(s[start..]);
        return lines;
    }

    public static string Replace(string s, string old, string replacement, long count)
    {
        if (old.Length == 0)
        {
            // Python inserts the replacement before every character and at the end, up to count times.
            var characters = PythonValues.Characters(s);
            var limit = count < 0 ? characters.Count + 1 : count;
            var inserted = new StringBuilder();
            for (var i = 0; i <= characters.Count; i++)
            {
                if (i < limit)
                    inserted.Append(replacement);
                if (i < characters.Count)
                    inserted.Append((string)characters[i]!);
            }
            return inserted.ToString();
        }
        if (count < 0)
            return s.Replace(old, replacement, StringComparison.Ordinal);
        var text = new StringBuilder();
        var from = 0;
        for (int at; count > 0 && old.Length > 0 && (at = s.IndexOf(old, from, StringComparison.Ordinal)) >= 0; count--)
        {
            text.Append(s, from, at - from).Append(replacement);
            from = at + old.Length;
        }
        return text.Append(s, from, s.Length - from).ToString();
    }

    private static int Count(string s, string part)
    {
        if (part.Length == 0)
            return PythonValues.CodePointLength(s) + 1;
        var count = 0;
        for (var at = s.IndexOf(part, StringComparison.Ordinal); at >= 0; at = s.IndexOf(part, at + part.Length, StringComparison.Ordinal))
            count++;
        return count;
    }

    /// <summary>Python's str.title: a letter is upper-cased when it does not follow another letter.</summary>
    public static string Title(string s)
    {
        var text = new StringBuilder(s.Length);
        var afterLetter = false;
        foreach (var c in s)
        {
            text.Append(afterLetter ? PythonCase.Lower(c.ToString()) : PythonCase.Title(c));
            afterLetter = char.IsLetter(c);
        }
        return text.ToString();
    }

    public static string Capitalize(string s) => s.Length == 0 ? s : PythonCase.Title(s[0]) + PythonCase.Lower(s[1..]);
}
