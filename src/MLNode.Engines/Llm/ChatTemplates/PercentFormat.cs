using System.Globalization;
using System.Text;
using System.Text.RegularExpressions;

namespace MLNode.Engines.Llm.ChatTemplates;

/// <summary>Python's printf-style `format % values` (and the format filter): %s %r %d %i %f %e %x %%, with flags, width and precision.</summary>
internal static partial class PercentFormat
{
    public static string Apply(string format, object? values)
    {
        var positional = values as object?[] ?? [values];
        var next = 0;
        var text = new StringBuilder();
        var position = 0;
        foreach (Match spec in Specifier().Matches(format))
        {
            text.Append(format, position, spec.Index - position);
            position = spec.Index + spec.Length;
            var conversion = spec.Groups["conversion"].Value[0];
            if (conversion == '%')
            {
                text.Append('%');
                continue;
            }
            object? value;
            if (spec.Groups["key"].Success)
            {
                if (values is not OrderedDictionary<object, object?> mapping)
                    throw new ChatTemplateException("TypeError: format requires a mapping");
                var key = spec.Groups["key"].Value;
                value = mapping.TryGetValue(key, out var found) ? found : throw new ChatTemplateException($"KeyError: '{key}'");
            }
            else
            {
                value = next < positional.Length ? positional[next++] : throw new ChatTemplateException("TypeError: not enough arguments for format string");
            }
            var flags = spec.Groups["flags"].Value;
            int? precision = spec.Groups["precision"].Success ? int.Parse(spec.Groups["precision"].Value, CultureInfo.InvariantCulture) : null;
            var body = Convert(conversion, value, precision, flags);
            var width = spec.Groups["width"].Success ? int.Parse(spec.Groups["width"].Value, CultureInfo.InvariantCulture) : 0;
            text.Append(Pad(body, width, flags, numeric: conversion is not ('s' or 'r')));
        }
        text.Append(format, position, format.Length - position);
        // Python ignores unused arguments only when they come as a mapping or a list (objects with __getitem__).
        if (next < positional.Length && values is not (OrderedDictionary<object, object?> or List<object?>))
            throw new ChatTemplateException("TypeError: not all arguments converted during string formatting");
        return text.ToString();
    }

    private static string Convert(char conversion, object? value, int? precision, string flags)
    {
        var culture = CultureInfo.InvariantCulture;
        var body = conversion switch
        {
            's' => precision is { } p ? string.Concat(PythonValues.Characters(PythonValues.ToStr(value)).Take(p)) : PythonValues.ToStr(value),
            'r' => PythonValues.Repr(value),
            'd' or 'i' => NumberArgument(value, conversion) is double d ? ((long)Math.Truncate(d)).ToString(culture) : PythonValues.ToLong(value).ToString(culture),
            'f' or 'F' => PythonValues.ToDouble(NumberArgument(value, conversion)).ToString("F" + (precision ?? 6), culture),
            'e' => PythonValues.ToDouble(NumberArgument(value, conversion)).ToString((precision ?? 6) == 0 ? "0e+00" : "0." + new string('0', precision ?? 6) + "e+00", culture),
            'x' => PythonValues.ToLong(NumberArgument(value, conversion)).ToString("x", culture),
            'X' => PythonValues.ToLong(NumberArgument(value, conversion)).ToString("X", culture),
            _ => throw new ChatTemplateException($"ValueError: unsupported format character '{conversion}'"),
        };
        if (conversion is not ('s' or 'r') && !body.StartsWith('-'))
            body = (flags.Contains('+') ? "+" : flags.Contains(' ') ? " " : "") + body;
        return body;
    }

    private static object? NumberArgument(object? value, char conversion) => PythonValues.IsNumber(value)
        ? value
        : throw new ChatTemplateException($"TypeError: %{conversion} format: a real number is required, not {PythonValues.TypeName(value)}");

    private static string Pad(string body, int width, string flags, bool numeric)
    {
        var missing = width - PythonValues.CodePointLength(body);
        if (missing <= 0)
            return body;
        if (flags.Contains('-'))
            return body + new string(' ', missing);
        if (numeric && flags.Contains('0'))
        {
            // Zeros go between the sign and the digits.
            var signLength = body.Length > 0 && body[0] is '-' or '+' or ' ' ? 1 : 0;
            return body[..signLength] + new string('0', missing) + body[signLength..];
        }
        return new string(' ', missing) + body;
    }

    [GeneratedRegex(@"%(?:\((?<key>[^)]*)\))?(?<flags>[-+ 0#]*)(?<width>\d+)?(?:\.(?<precision>\d+))?(?<conversion>[%a-zA-Z])")]
    private static partial Regex Specifier();
}
