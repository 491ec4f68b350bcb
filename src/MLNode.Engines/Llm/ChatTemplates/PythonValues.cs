using System.Globalization;
using System.Text;

namespace MLNode.Engines.Llm.ChatTemplates;

/// <summary>
/// Python's meaning of the engine's values, which templates were written against: None is null, int is
/// long, float is double, str is string, list is List, tuple is object?[], dict is an OrderedDictionary.
/// </summary>
internal static class PythonValues
{
    public static bool IsTrue(object? value) => value switch
    {
        null or Undefined => false,
        bool b => b,
        long l => l != 0,
        double d => d != 0,
        string s => s.Length > 0,
        System.Collections.ICollection c => c.Count > 0,
        _ => true,
    };

    public static string TypeName(object? value) => value switch
    {
        null => "NoneType",
        bool => "bool",
        long => "int",
        double => "float",
        string => "str",
        object?[] => "tuple",
        List<object?> => "list",
        OrderedDictionary<object, object?> => "dict",
        Undefined => "Undefined",
        Namespace => "Namespace",
        LoopState => "LoopContext",
        ITemplateCallable => "function",
        _ => value.GetType().Name,
    };

    /// <summary>jinja's object_type_repr, how its undefined-value messages name the object that lacked something.</summary>
    public static string ObjectTypeRepr(object? value) => value is null ? "None" : $"{TypeName(value)} object";

    /// <summary>Python's str(): what {{ value }} and ~ write.</summary>
    public static string ToStr(object? value) => value switch
    {
        string s => s,
        Undefined => "",
        _ => Repr(value),
    };

    public static string Repr(object? value)
    {
        var text = new StringBuilder();
        AppendRepr(text, value);
        return text.ToString();
    }

    private static void AppendRepr(StringBuilder text, object? value)
    {
        switch (value)
        {
            case null: text.Append("None"); break;
            case bool b: text.Append(b ? "True" : "False"); break;
            case long l: text.Append(l.ToString(CultureInfo.InvariantCulture)); break;
            case double d: text.Append(FloatRepr(d)); break;
            case string s: AppendStringRepr(text, s); break;
            case Undefined: text.Append("Undefined"); break;
            case object?[] tuple:
                text.Append('(');
                AppendItems(text, tuple);
                text.Append(tuple.Length == 1 ? ",)" : ")");
                break;
            case List<object?> list:
                text.Append('[');
                AppendItems(text, list);
                text.Append(']');
                break;
            case OrderedDictionary<object, object?> dict:
                text.Append('{');
                var first = true;
                foreach (var (key, item) in dict)
                {
                    if (!first)
                        text.Append(", ");
                    first = false;
                    AppendRepr(text, key);
                    text.Append(": ");
                    AppendRepr(text, item);
                }
                text.Append('}');
                break;
            case Namespace ns:
                text.Append("<Namespace ");
                AppendRepr(text, new OrderedDictionary<object, object?>(ns.Attributes.Select(a => KeyValuePair.Create<object, object?>(a.Key, a.Value))));
                text.Append('>');
                break;
            default: text.Append('<').Append(TypeName(value)).Append('>'); break;
        }
    }

    private static void AppendItems(StringBuilder text, IEnumerable<object?> items)
    {
        var first = true;
        foreach (var item in items)
        {
            if (!first)
                text.Append(", ");
            first = false;
            AppendRepr(text, item);
        }
    }

    private static void AppendStringRepr(StringBuilder text, string s)
    {
        var quote = s.Contains('\'') && !s.Contains('"') ? '"' : '\'';
        text.Append(quote);
        for (var i = 0; i < s.Length; i++)
        {
            var c = s[i];
            switch (c)
            {
                case '\\': text.Append("\\\\"); break;
                case '\n': text.Append("\\n"); break;
                case '\r': text.Append("\\r"); break;
                case '\t': text.Append("\\t"); break;
                default:
                    if (c == quote)
                    {
                        text.Append('\\').Append(c);
                    }
                    else if (Rune.TryGetRuneAt(s, i, out var rune))
                    {
                        AppendPrintable(text, rune);
                        i += rune.Utf16SequenceLength - 1;
                    }
                    else
                    {
                        text.Append($"\\u{(int)c:x4}");
                    }
                    break;
            }
        }
        text.Append(quote);
    }

    /// <summary>Python's repr keeps what str.isprintable accepts and escapes the rest (controls, format characters, separators other than the space).</summary>
    private static void AppendPrintable(StringBuilder text, Rune rune)
    {
        var printable = rune.Value == ' ' || Rune.GetUnicodeCategory(rune) is not (UnicodeCategory.Control or UnicodeCategory.Format
            or UnicodeCategory.Surrogate or UnicodeCategory.PrivateUse or UnicodeCategory.OtherNotAssigned
            or UnicodeCategory.LineSeparator or UnicodeCategory.ParagraphSeparator or UnicodeCategory.SpaceSeparator);
        if (printable)
            text.Append(rune.ToString());
        else if (rune.Value <= 0xff)
            text.Append($"\\x{rune.Value:x2}");
        else if (rune.Value <= 0xffff)
            text.Append($"\\u{rune.Value:x4}");
        else
            text.Append($"\\U{rune.Value:x8}");
    }

    /// <summary>Python's repr of a float: shortest round-trip digits, scientific below 1e-4 and from 1e16.</summary>
    public static string FloatRepr(double value)
    {
        if (double.IsNaN(value))
            return "nan";
        if (double.IsInfinity(value))
            return value > 0 ? "inf" : "-inf";
        if (value == 0)
            return double.IsNegative(value) ? "-0.0" : "0.0";
        // "E16" is not shortest; "R" is, so take its digits and exponent and lay them out Python's way.
        var roundTrip = Math.Abs(value).ToString("R", CultureInfo.InvariantCulture);
        var exponentAt = roundTrip.IndexOf('E');
        var mantissa = exponentAt < 0 ? roundTrip : roundTrip[..exponentAt];
        var exponent = exponentAt < 0 ? 0 : int.Parse(roundTrip[(exponentAt + 1)..], CultureInfo.InvariantCulture);
        var point = mantissa.IndexOf('.');
        var digits = mantissa.Replace(".", "");
        var integerDigits = point < 0 ? mantissa.Length : point;
        var leadingZeros = digits.Length - digits.TrimStart('0').Length;
        digits = digits.Trim('0');
        // Position of the decimal point relative to the first significant digit.
        var decimalExponent = integerDigits - leadingZeros + exponent;
        var sign = value < 0 ? "-" : "";
        var scientificExponent = decimalExponent - 1;
        if (scientificExponent < -4 || scientificExponent >= 16)
        {
            var fraction = digits.Length > 1 ? "." + digits[1..] : "";
            var expSign = scientificExponent < 0 ? "-" : "+";
            return $"{sign}{digits[0]}{fraction}e{expSign}{Math.Abs(scientificExponent):00}";
        }
        if (decimalExponent <= 0)
            return $"{sign}0.{new string('0', -decimalExponent)}{digits}";
        if (decimalExponent >= digits.Length)
            return $"{sign}{digits}{new string('0', decimalExponent - digits.Length)}.0";
        return $"{sign}{digits[..decimalExponent]}.{digits[decimalExponent..]}";
    }

    public static bool AreEqual(object? left, object? right)
    {
        if (IsNumber(left) && IsNumber(right))
            return left is double || right is double ? ToDouble(left) == ToDouble(right) : ToLong(left) == ToLong(right);
        return (left, right) switch
        {
            (null, null) => true,
            (string a, string b) => a == b,
            (Undefined, Undefined) => true,
            (List<object?> a, List<object?> b) => SequenceEqual(a, b),
            (object?[] a, object?[] b) => SequenceEqual(a, b),
            (OrderedDictionary<object, object?> a, OrderedDictionary<object, object?> b) =>
                a.Count == b.Count && a.All(pair => b.TryGetValue(pair.Key, out var other) && AreEqual(pair.Value, other)),
            _ => ReferenceEquals(left, right),
        };
    }

    private static bool SequenceEqual(IReadOnlyList<object?> a, IReadOnlyList<object?> b) =>
        a.Count == b.Count && a.Zip(b).All(pair => AreEqual(pair.First, pair.Second));

    /// <summary>Python's ordering: numbers with numbers, strings by code point, sequences element by element; anything else is a TypeError.</summary>
    public static int Compare(object? left, object? right, string op)
    {
        if (left is Undefined undefinedLeft)
            throw undefinedLeft.Error();
        if (right is Undefined undefinedRight)
            throw undefinedRight.Error();
        if (IsNumber(left) && IsNumber(right))
            return left is double || right is double ? ToDouble(left).CompareTo(ToDouble(right)) : ToLong(left).CompareTo(ToLong(right));
        switch (left, right)
        {
            case (string a, string b):
                return CompareCodePoints(a, b);
            case (List<object?> a, List<object?> b):
                return CompareSequences(a, b, op);
            case (object?[] a, object?[] b):
                return CompareSequences(a, b, op);
            default:
                throw new ChatTemplateException($"TypeError: '{op}' not supported between instances of '{TypeName(left)}' and '{TypeName(right)}'");
        }
    }

    private static int CompareCodePoints(string a, string b)
    {
        // UTF-16 code-unit order differs from code-point order only around surrogates; Python orders by code point.
        var runesA = a.EnumerateRunes().GetEnumerator();
        var runesB = b.EnumerateRunes().GetEnumerator();
        while (true)
        {
            var hasA = runesA.MoveNext();
            var hasB = runesB.MoveNext();
            if (!hasA || !hasB)
                return hasA.CompareTo(hasB);
            var order = runesA.Current.Value.CompareTo(runesB.Current.Value);
            if (order != 0)
                return order;
        }
    }

    private static int CompareSequences(IReadOnlyList<object?> a, IReadOnlyList<object?> b, string op)
    {
        for (var i = 0; i < Math.Min(a.Count, b.Count); i++)
        {
            if (!AreEqual(a[i], b[i]))
                return Compare(a[i], b[i], op);
        }
        return a.Count.CompareTo(b.Count);
    }

    /// <summary>The value as a string argument of a method or filter; anything else is Python's TypeError.</summary>
    public static string RequireString(object? value) => value as string
        ?? throw new ChatTemplateException($"TypeError: expected str, got {TypeName(value)}");

    public static bool IsNumber(object? value) => value is long or double or bool;

    public static bool IsInteger(object? value) => value is long or bool;

    public static long ToLong(object? value) => value switch
    {
        long l => l,
        bool b => b ? 1 : 0,
        double d => (long)d,
        _ => throw new ChatTemplateException($"TypeError: expected a number, got '{TypeName(value)}'"),
    };

    public static double ToDouble(object? value) => value is double d ? d : ToLong(value);

    /// <summary>What a for loop or list() walks: the items of a sequence, the keys of a dict, the characters of a string.</summary>
    public static IEnumerable<object?> Iterate(object? value) => value switch
    {
        Undefined => [],
        string s => Characters(s),
        List<object?> list => list,
        object?[] tuple => tuple,
        OrderedDictionary<object, object?> dict => dict.Keys,
        _ => throw new ChatTemplateException($"TypeError: '{TypeName(value)}' object is not iterable"),
    };

    public static List<object?> ToList(object? value) => [.. Iterate(value)];

    /// <summary>The characters of a string as Python counts them: one per code point, not per UTF-16 unit.</summary>
    public static List<object?> Characters(string s) => [.. s.EnumerateRunes().Select(r => (object?)r.ToString())];

    public static int CodePointLength(string s)
    {
        var count = 0;
        foreach (var c in s)
        {
            if (!char.IsLowSurrogate(c))
                count++;
        }
        return count;
    }

    public static long Length(object? value) => value switch
    {
        Undefined => 0,
        string s => CodePointLength(s),
        System.Collections.ICollection c => c.Count,
        Namespace ns => ns.Attributes.Count,
        _ => throw new ChatTemplateException($"TypeError: object of type '{TypeName(value)}' has no len()"),
    };

    /// <summary>Python's str.isspace, which differs from char.IsWhiteSpace by the four information separators.</summary>
    public static bool IsSpace(char c) => char.IsWhiteSpace(c) || c is >= '\x1c' and <= '\x1f';
}
