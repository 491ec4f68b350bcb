using System.Globalization;
using System.Text;

namespace MLNode.Engines.Llm.ChatTemplates;

/// <summary>Python's printf-style `format % values` for the conversions templates use: %s, %r, %d, %i, %f, %%.</summary>
internal static class PercentFormat
{
    public static string Apply(string format, object? values)
    {
        var positional = values as object?[] ?? [values];
        var mapping = values as OrderedDictionary<object, object?>;
        var next = 0;
        var text = new StringBuilder();
        for (var i = 0; i < format.Length; i++)
        {
            if (format[i] != '%')
            {
                text.Append(format[i]);
                continue;
            }
            if (++i >= format.Length)
                throw new ChatTemplateException("ValueError: incomplete format");
            object? value;
            if (format[i] == '(')
            {
                var close = format.IndexOf(')', i);
                if (close < 0 || mapping is null)
                    throw new ChatTemplateException("TypeError: format requires a mapping");
                value = mapping.TryGetValue(format[(i + 1)..close], out var found) ? found
                    : throw new ChatTemplateException($"KeyError: '{format[(i + 1)..close]}'");
                i = close + 1;
            }
            else if (format[i] == '%')
            {
                text.Append('%');
                continue;
            }
            else
            {
                value = next < positional.Length ? positional[next++] : throw new ChatTemplateException("TypeError: not enough arguments for format string");
            }
            var conversion = i < format.Length ? format[i] : ' ';
            text.Append(conversion switch
            {
                's' => PythonValues.ToStr(value),
                'r' => PythonValues.Repr(value),
                'd' or 'i' => PythonValues.ToLong(value).ToString(CultureInfo.InvariantCulture),
                'f' => PythonValues.ToDouble(value).ToString("F6", CultureInfo.InvariantCulture),
                _ => throw new ChatTemplateException($"ValueError: unsupported format character '{conversion}'"),
            });
        }
        return text.ToString();
    }
}
