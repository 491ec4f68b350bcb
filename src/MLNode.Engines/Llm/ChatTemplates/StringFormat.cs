using System.Text;

namespace MLNode.Engines.Llm.ChatTemplates;

/// <summary>Python's str.format with automatic, numbered and named fields; format specs are not supported.</summary>
internal static class StringFormat
{
    public static string Apply(string format, CallArguments arguments)
    {
        var text = new StringBuilder();
        var nextAutomatic = 0;
        for (var i = 0; i < format.Length; i++)
        {
            var c = format[i];
            if ((c == '{' || c == '}') && i + 1 < format.Length && format[i + 1] == c)
            {
                text.Append(c);
                i++;
                continue;
            }
            if (c == '}')
                throw new ChatTemplateException("ValueError: Single '}' encountered in format string");
            if (c != '{')
            {
                text.Append(c);
                continue;
            }
            var close = format.IndexOf('}', i);
            if (close < 0)
                throw new ChatTemplateException("ValueError: Single '{' encountered in format string");
            var field = format[(i + 1)..close];
            if (field.Contains(':') || field.Contains('!'))
                throw new ChatTemplateException($"format field '{{{field}}}' uses a format spec or conversion, which this engine does not support");
            object? value;
            if (field.Length == 0)
                value = Positional(arguments, nextAutomatic++);
            else if (int.TryParse(field, out var index))
                value = Positional(arguments, index);
            else
                value = arguments.Named.TryGetValue(field, out var named) ? named : throw new ChatTemplateException($"KeyError: '{field}'");
            text.Append(PythonValues.ToStr(value));
            i = close;
        }
        return text.ToString();
    }

    private static object? Positional(CallArguments arguments, int index) => index < arguments.Positional.Count
        ? arguments.Positional[index]
        : throw new ChatTemplateException($"IndexError: Replacement index {index} out of range for positional args tuple");
}
