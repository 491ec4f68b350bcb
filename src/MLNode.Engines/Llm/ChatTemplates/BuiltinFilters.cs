using System.Globalization;
using System.Text;
using System.Text.RegularExpressions;

namespace MLNode.Engines.Llm.ChatTemplates;

/// <summary>jinja2's built-in filters that chat templates use, with tojson as transformers defines it.</summary>
internal static partial class BuiltinFilters
{
    /// <summary>A filter: the filtered value, then the arguments written after the filter name.</summary>
    public delegate object? Filter(object? value, CallArguments arguments);

    private static readonly Dictionary<string, Filter> Filters = new()
    {
        ["abs"] = (v, _) => v is double d ? (object)Math.Abs(d) : Math.Abs(PythonValues.ToLong(v)),
        ["attr"] = (v, a) => AttributeAccess.GetAttribute(v, PythonValues.RequireString(a.Get(0, "name"))),
        ["capitalize"] = (v, _) => BuiltinMethods.Capitalize(PythonValues.ToStr(v)),
        ["center"] = (v, a) => Center(PythonValues.ToStr(v), (int)PythonValues.ToLong(a.Get(0, "width", 80L))),
        ["count"] = (v, _) => PythonValues.Length(v),
        ["default"] = Default,
        ["d"] = Default,
        ["dictsort"] = DictSort,
        ["escape"] = (v, _) => Escape(v),
        ["e"] = (v, _) => Escape(v),
        ["forceescape"] = (v, _) => Escape(v),
        ["first"] = (v, _) => PythonValues.Iterate(v).Take(1).ToList() is [var item] ? item : new Undefined("No first item, sequence was empty."),
        ["last"] = (v, _) => PythonValues.ToList(v) is { Count: > 0 } items ? items[^1] : new Undefined("No last item, sequence was empty."),
        ["float"] = (v, a) => ToFloat(v, a.Get(0, "default", 0.0)),
        ["format"] = (v, a) => PercentFormat.Apply(PythonValues.ToStr(v),
            a.Named.Count > 0 ? new OrderedDictionary<object, object?>(a.Named.Select(p => KeyValuePair.Create<object, object?>(p.Key, p.Value))) : a.Positional.ToArray()),
        ["indent"] = Indent,
        ["int"] = (v, a) => ToInt(v, a.Get(0, "default", 0L), (int)PythonValues.ToLong(a.Get(1, "base", 10L))),
        ["items"] = (v, _) => v switch
        {
            Undefined => new List<object?>(),
            OrderedDictionary<object, object?> dict => BuiltinMethods.Items(dict),
            _ => throw new ChatTemplateException($"TypeError: can only get item pairs from a mapping, not {PythonValues.TypeName(v)}"),
        },
        ["join"] = (v, a) => string.Join(PythonValues.ToStr(a.Get(0, "d", "")),
            Attribute(PythonValues.Iterate(v), a.Get(1, "attribute")).Select(PythonValues.ToStr)),
        ["length"] = (v, _) => PythonValues.Length(v),
        ["list"] = (v, _) => PythonValues.ToList(v),
        ["lower"] = (v, _) => PythonCase.Lower(PythonValues.ToStr(v)),
        ["map"] = Map,
        ["max"] = (v, a) => Extreme(v, a, pickLarger: true),
        ["min"] = (v, a) => Extreme(v, a, pickLarger: false),
        ["reject"] = (v, a) => Select(v, a, attribute: false, keep: false),
        ["rejectattr"] = (v, a) => Select(v, a, attribute: true, keep: false),
        ["replace"] = (v, a) => BuiltinMethods.Replace(PythonValues.ToStr(v), PythonValues.RequireString(a.Get(0, "old")), PythonValues.RequireString(a.Get(1, "new")),
            a.Get(2, "count") is { } count ? PythonValues.ToLong(count) : -1),
        ["reverse"] = (v, _) => v is string s ? string.Concat(PythonValues.Characters(s).AsEnumerable().Reverse()) : PythonValues.ToList(v).AsEnumerable().Reverse().ToList(),
        ["round"] = Round,
        ["safe"] = (v, _) => v,
        ["select"] = (v, a) => Select(v, a, attribute: false, keep: true),
        ["selectattr"] = (v, a) => Select(v, a, attribute: true, keep: true),
        ["sort"] = Sort,
        ["string"] = (v, _) => PythonValues.ToStr(v),
        ["sum"] = (v, a) => Attribute(PythonValues.Iterate(v), a.Get(0, "attribute")).Aggregate(a.Get(1, "start", 0L), (total, item) => PythonOperators.Apply("+", total, item)),
        ["title"] = (v, _) => Title(PythonValues.ToStr(v)),
        ["tojson"] = ToJson,
        ["trim"] = (v, a) => BuiltinMethods.Strip(PythonValues.ToStr(v), a.Get(0, "chars"), start: true, end: true),
        ["unique"] = Unique,
        ["upper"] = (v, _) => PythonCase.Upper(PythonValues.ToStr(v)),
        ["wordcount"] = (v, _) => (long)WordPattern().Count(PythonValues.ToStr(v)),
    };

    public static Filter Find(string name) =>
        Filters.TryGetValue(name, out var filter) ? filter : throw new ChatTemplateException($"No filter named '{name}'.");


    private static object? Default(object? value, CallArguments arguments)
    {
        var useFallback = value is Undefined || (PythonValues.IsTrue(arguments.Get(1, "boolean", false)) && !PythonValues.IsTrue(value));
        return useFallback ? arguments.Get(0, "default_value", "") : value;
    }

    private static string Escape(object? value) => PythonValues.ToStr(value)
        .Replace("&", "&amp;").Replace("<", "&lt;").Replace(">", "&gt;").Replace("\"", "&#34;").Replace("'", "&#39;");

    private static string Center(string s, int width)
    {
        var padding = width - PythonValues.CodePointLength(s);
        if (padding <= 0)
            return s;
        // Python puts the odd extra space on the left when the width is odd.
        var left = padding / 2 + (padding & width & 1);
        return new string(' ', left) + s + new string(' ', padding - left);
    }

    /// <summary>The values of an `attribute=` path such as "function.name" (parts that are digits index lists), or the items themselves without one.</summary>
    private static IEnumerable<object?> Attribute(IEnumerable<object?> items, object? attribute) =>
        attribute is null ? items : items.Select(item => Lookup(item, attribute));

    private static object? Lookup(object? item, object? attribute)
    {
        if (attribute is long index)
            return AttributeAccess.GetItem(item, index);
        foreach (var part in PythonValues.RequireString(attribute).Split('.'))
            item = AttributeAccess.GetItem(item, long.TryParse(part, out var number) ? number : part);
        return item;
    }

    private static object? ToInt(object? value, object? fallback, int numberBase)
    {
        switch (value)
        {
            case Undefined undefined: throw undefined.Error();
            case long or bool: return PythonValues.ToLong(value);
            case double d: return (long)Math.Truncate(d);
            case string s:
                var text = s.Trim().Replace("_", "");
                try
                {
                    if (numberBase != 10)
                        return Convert.ToInt64(text, numberBase);
                }
                catch (FormatException)
                {
                    return fallback;
                }
                if (long.TryParse(text, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out var integer))
                    return integer;
                return double.TryParse(text, NumberStyles.Float, CultureInfo.InvariantCulture, out var real) ? (long)Math.Truncate(real) : fallback;
            default: return fallback;
        }
    }

    private static object? ToFloat(object? value, object? fallback) => value switch
    {
        Undefined undefined => throw undefined.Error(),
        double d => d,
        long or bool => PythonValues.ToDouble(value),
        string s when double.TryParse(s.Trim(), NumberStyles.Float, CultureInfo.InvariantCulture, out var parsed) => parsed,
        _ => fallback,
    };

    /// <summary>jinja's indent: every line but the first (unless first=true) gets the prefix; blank lines only with blank=true.</summary>
    private static object? Indent(object? value, CallArguments arguments)
    {
        var width = arguments.Get(0, "width", 4L);
        var prefix = width as string ?? new string(' ', (int)PythonValues.ToLong(width));
        var indentFirst = PythonValues.IsTrue(arguments.Get(1, "first", false));
        var indentBlank = PythonValues.IsTrue(arguments.Get(2, "blank", false));
        var lines = BuiltinMethods.SplitLines(PythonValues.ToStr(value) + "\n");
        var text = new StringBuilder(lines[0]);
        foreach (var line in lines.Skip(1))
            text.Append('\n').Append(line.Length > 0 || indentBlank ? prefix + line : line);
        return indentFirst ? prefix + text : text.ToString();
    }

    private static object? Map(object? value, CallArguments arguments)
    {
        var items = PythonValues.Iterate(value);
        if (arguments.Named.TryGetValue("attribute", out var attribute))
        {
            var fallback = arguments.Named.GetValueOrDefault("default");
            return items.Select(item => Lookup(item, attribute) is Undefined && arguments.Named.ContainsKey("default") ? fallback : Lookup(item, attribute)).ToList();
        }
        var filter = Find(PythonValues.RequireString(arguments.Get(0, "filter")));
        var rest = new CallArguments([.. arguments.Positional.Skip(1)], arguments.Named);
        return items.Select(item => filter(item, rest)).ToList();
    }

    private static List<object?> Select(object? value, CallArguments arguments, bool attribute, bool keep)
    {
        var skip = attribute ? 1 : 0;
        Func<object?, bool> passes = arguments.Positional.Count > skip
            ? item => BuiltinTests.Find(PythonValues.RequireString(arguments.Positional[skip]))(item, new CallArguments([.. arguments.Positional.Skip(skip + 1)], arguments.Named))
            : PythonValues.IsTrue;
        return [.. PythonValues.Iterate(value).Where(item => passes(attribute ? Lookup(item, arguments.Positional[0]) : item) == keep)];
    }

    /// <summary>The key jinja sorts and deduplicates by: the attribute if given, strings lower-cased unless case_sensitive.</summary>
    private static Func<object?, object?> SortKey(object? attribute, bool caseSensitive) => item =>
    {
        var key = attribute is null ? item : Lookup(item, attribute);
        return !caseSensitive && key is string s ? PythonCase.Lower(s) : key;
    };

    private static object? Sort(object? value, CallArguments arguments)
    {
        var key = SortKey(arguments.Get(2, "attribute"), PythonValues.IsTrue(arguments.Get(1, "case_sensitive", false)));
        var comparer = Comparer<object?>.Create((x, y) => PythonValues.Compare(x, y, "<"));
        var items = PythonValues.Iterate(value);
        return (PythonValues.IsTrue(arguments.Get(0, "reverse", false)) ? items.OrderByDescending(key, comparer) : items.OrderBy(key, comparer)).ToList();
    }

    private static object? DictSort(object? value, CallArguments arguments)
    {
        if (value is not OrderedDictionary<object, object?> dict)
            throw new ChatTemplateException($"TypeError: dictsort needs a mapping, not {PythonValues.TypeName(value)}");
        var caseSensitive = PythonValues.IsTrue(arguments.Get(0, "case_sensitive", false));
        var position = arguments.Get(1, "by", "key") switch
        {
            "key" => 0,
            "value" => 1,
            _ => throw new ChatTemplateException("FilterArgumentError: You can only sort by either \"key\" or \"value\""),
        };
        var key = SortKey(null, caseSensitive);
        var comparer = Comparer<object?>.Create((x, y) => PythonValues.Compare(x, y, "<"));
        var items = BuiltinMethods.Items(dict);
        Func<object?, object?> pick = item => key(((object?[])item!)[position]);
        return (PythonValues.IsTrue(arguments.Get(2, "reverse", false)) ? items.OrderByDescending(pick, comparer) : items.OrderBy(pick, comparer)).ToList();
    }

    private static object? Unique(object? value, CallArguments arguments)
    {
        var key = SortKey(arguments.Get(1, "attribute"), PythonValues.IsTrue(arguments.Get(0, "case_sensitive", false)));
        var seen = new List<object?>();
        var unique = new List<object?>();
        foreach (var item in PythonValues.Iterate(value))
        {
            var itemKey = key(item);
            if (seen.Any(other => PythonValues.AreEqual(other, itemKey)))
                continue;
            seen.Add(itemKey);
            unique.Add(item);
        }
        return unique;
    }

    private static object? Extreme(object? value, CallArguments arguments, bool pickLarger)
    {
        var key = SortKey(arguments.Get(1, "attribute"), PythonValues.IsTrue(arguments.Get(0, "case_sensitive", false)));
        var items = PythonValues.ToList(value);
        if (items.Count == 0)
            return new Undefined($"No aggregated item, sequence was empty.");
        var best = items[0];
        foreach (var item in items.Skip(1))
        {
            var order = PythonValues.Compare(key(item), key(best), pickLarger ? ">" : "<");
            if (pickLarger ? order > 0 : order < 0)
                best = item;
        }
        return best;
    }

    private static object? Round(object? value, CallArguments arguments)
    {
        var precision = (int)PythonValues.ToLong(arguments.Get(0, "precision", 0L));
        var number = PythonValues.ToDouble(value);
        var scale = Math.Pow(10, precision);
        return arguments.Get(1, "method", "common") switch
        {
            // Python's round keeps an int an int.
            "common" => PythonValues.IsInteger(value) ? (object)PythonValues.ToLong(value) : Math.Round(number, precision, MidpointRounding.ToEven),
            "ceil" => Math.Ceiling(number * scale) / scale,
            "floor" => Math.Floor(number * scale) / scale,
            _ => throw new ChatTemplateException("FilterArgumentError: method must be common, ceil or floor"),
        };
    }

    /// <summary>transformers' tojson: json.dumps(x, ensure_ascii=False, indent=indent, separators=separators, sort_keys=sort_keys).</summary>
    private static object? ToJson(object? value, CallArguments arguments)
    {
        var indent = arguments.Get(1, "indent") switch
        {
            null => null,
            string s => s,
            var width => new string(' ', (int)PythonValues.ToLong(width)),
        };
        (string, string)? separators = arguments.Get(2, "separators") is object?[] { Length: 2 } pair ? (PythonValues.RequireString(pair[0]), PythonValues.RequireString(pair[1])) : null;
        return JsonValues.ToJson(value, indent, PythonValues.IsTrue(arguments.Get(3, "sort_keys", false)), separators,
            ensureAscii: PythonValues.IsTrue(arguments.Get(0, "ensure_ascii", false)));
    }

    /// <summary>jinja's title: each word (split at whitespace, -, and opening brackets) gets an upper first letter and lower rest.</summary>
    private static string Title(string s) => string.Concat(WordBeginning().Split(s)
        .Where(part => part.Length > 0)
        .Select(part => PythonCase.Upper(part[..1]) + PythonCase.Lower(part[1..])));

    // Python's \s also covers the information separators \x1c-\x1f.
    [GeneratedRegex(@"([-\s\x1c-\x1f\(\{\[\<]+)")]
    private static partial Regex WordBeginning();

    [GeneratedRegex(@"\w+")]
    private static partial Regex WordPattern();
}
