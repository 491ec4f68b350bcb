using System.Globalization;
using System.Text;

namespace MLNode.Engines.Llm.ChatTemplates;

/// <summary>The backslash escapes of a Python string literal, which jinja applies to its string literals.</summary>
internal static class PythonEscapes
{
    /// <summary>Appends the escape that starts at <paramref name="at"/> (just after the backslash) and returns the position after it.</summary>
    public static int Decode(string source, int at, StringBuilder value)
    {
        var c = source[at++];
        switch (c)
        {
            case '\n': return at;
            case '\\' or '\'' or '"': value.Append(c); return at;
            case 'a': value.Append('\a'); return at;
            case 'b': value.Append('\b'); return at;
            case 'f': value.Append('\f'); return at;
            case 'n': value.Append('\n'); return at;
            case 'r': value.Append('\r'); return at;
            case 't': value.Append('\t'); return at;
            case 'v': value.Append('\v'); return at;
            case 'x': return Hex(source, at, 2, value);
            case 'u': return Hex(source, at, 4, value);
            case 'U': return Hex(source, at, 8, value);
            case >= '0' and <= '7':
                var end = at - 1;
                while (end < source.Length && end < at + 2 && source[end] is >= '0' and <= '7')
                    end++;
                value.Append((char)Convert.ToInt32(source[(at - 1)..end], 8));
                return end;
            default:
                // Python keeps unknown escapes as they are, backslash included.
                value.Append('\\').Append(c);
                return at;
        }
    }

    private static int Hex(string source, int at, int digits, StringBuilder value)
    {
        if (at + digits > source.Length || !int.TryParse(source.AsSpan(at, digits), NumberStyles.AllowHexSpecifier, CultureInfo.InvariantCulture, out var code))
            throw new ChatTemplateException($"TemplateSyntaxError: truncated \\{source[at - 1]} escape in a string literal");
        value.Append(char.ConvertFromUtf32(code));
        return at + digits;
    }
}
