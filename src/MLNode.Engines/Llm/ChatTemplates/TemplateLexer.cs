using System.Globalization;
using System.Text;

namespace MLNode.Engines.Llm.ChatTemplates;

internal enum TokenKind { Data, VariableBegin, VariableEnd, BlockBegin, BlockEnd, Name, String, Integer, Float, Operator, End }

internal readonly record struct Token(TokenKind Kind, string Text, int Line, object? Value = null);

/// <summary>
/// Splits a template into text and tag tokens the way jinja2's lexer does with trim_blocks and
/// lstrip_blocks on and keep_trailing_newline off, so that whitespace comes out byte for byte the same.
/// </summary>
internal sealed class TemplateLexer
{
    private static readonly string[] Operators = ["//", "**", "==", "!=", ">=", "<=", "+", "-", "/", "*", "%", "~", "[", "]", "(", ")", "{", "}", ">", "<", "=", ".", ":", "|", ",", ";"];

    private readonly string source;
    private readonly List<Token> tokens = [];
    private int position;
    private int line = 1;
    // jinja's line_starting: whether the last thing consumed ended a line, which lets lstrip_blocks apply
    // to a tag that has no newline between it and the previous tag.
    private bool lineStarting = true;

    private TemplateLexer(string source)
    {
        source = source.Replace("\r\n", "\n").Replace('\r', '\n');
        this.source = source.EndsWith('\n') ? source[..^1] : source;
    }

    public static List<Token> Tokenize(string source)
    {
        var lexer = new TemplateLexer(source);
        lexer.Run();
        return lexer.tokens;
    }

    private void Run()
    {
        while (position < source.Length)
        {
            var start = NextTagStart(position);
            if (start < 0)
            {
                AddData(source[position..]);
                break;
            }
            var text = source[position..start];
            var opener = source[start + 1];
            var sign = start + 2 < source.Length && source[start + 2] is '-' or '+' ? source[start + 2] : '\0';
            if (sign == '-')
                text = text.TrimEnd();
            else if (sign != '+' && opener != '{')
                text = LeftStripped(text);
            AddData(text);
            line += CountNewlines(source.AsSpan(position, start - position));
            position = start + 2 + (sign == '\0' ? 0 : 1);
            switch (opener)
            {
                case '#': SkipComment(); break;
                case '{': LexTag(TokenKind.VariableBegin, TokenKind.VariableEnd); break;
                default:
                    if (!TryLexRaw())
                        LexTag(TokenKind.BlockBegin, TokenKind.BlockEnd);
                    break;
            }
        }
        tokens.Add(new Token(TokenKind.End, "", line));
    }

    private int NextTagStart(int from)
    {
        for (var at = source.IndexOf('{', from); at >= 0 && at + 1 < source.Length; at = source.IndexOf('{', at + 1))
        {
            if (source[at + 1] is '{' or '%' or '#')
                return at;
        }
        return -1;
    }

    /// <summary>lstrip_blocks: drop the spaces between the start of the line and a block or comment tag.</summary>
    private string LeftStripped(string text)
    {
        var lineStart = text.LastIndexOf('\n') + 1;
        if ((lineStart > 0 || lineStarting) && lineStart < text.Length && string.IsNullOrWhiteSpace(text[lineStart..]))
            return text[..lineStart];
        return text;
    }

    private void AddData(string text)
    {
        if (text.Length > 0)
            tokens.Add(new Token(TokenKind.Data, text, line));
    }

    private void SkipComment()
    {
        var end = source.IndexOf("#}", position, StringComparison.Ordinal);
        if (end < 0)
            throw Error("Missing end of comment tag");
        line += CountNewlines(source.AsSpan(position, end - position));
        var sign = end > position ? source[end - 1] : '\0';
        position = end + 2;
        SkipAfterTagEnd(sign);
    }

    /// <summary>After `-%}` all whitespace goes, after `+%}` none, otherwise trim_blocks takes one newline.</summary>
    private void SkipAfterTagEnd(char sign)
    {
        var from = position;
        if (sign == '-')
        {
            while (position < source.Length && char.IsWhiteSpace(source[position]))
                position++;
        }
        else if (sign != '+' && position < source.Length && source[position] == '\n')
        {
            position++;
        }
        line += CountNewlines(source.AsSpan(from, position - from));
        lineStarting = position > 0 && source[position - 1] == '\n';
    }

    /// <summary>{% raw %}...{% endraw %}: the text between is data, tags and all.</summary>
    private bool TryLexRaw()
    {
        var at = SkipSpaces(position);
        if (string.CompareOrdinal(source, at, "raw", 0, 3) != 0)
            return false;
        at = SkipSpaces(at + 3);
        var stripAfter = at < source.Length && source[at] == '-';
        if (stripAfter)
            at++;
        if (string.CompareOrdinal(source, at, "%}", 0, 2) != 0)
            return false;
        position = at + 2;
        if (stripAfter)
            position = SkipSpaces(position);
        lineStarting = source[position - 1] == '\n';
        for (var search = position; ; search++)
        {
            search = source.IndexOf("{%", search, StringComparison.Ordinal);
            if (search < 0)
                throw Error("Missing end of raw directive");
            var sign = search + 2 < source.Length && source[search + 2] is '-' or '+' ? source[search + 2] : '\0';
            var name = SkipSpaces(search + 2 + (sign == '\0' ? 0 : 1));
            if (string.CompareOrdinal(source, name, "endraw", 0, 6) != 0)
                continue;
            var close = SkipSpaces(name + 6);
            var endSign = close < source.Length && source[close] is '-' or '+' ? source[close] : '\0';
            if (string.CompareOrdinal(source, close + (endSign == '\0' ? 0 : 1), "%}", 0, 2) != 0)
                continue;
            var text = source[position..search];
            text = sign == '-' ? text.TrimEnd() : sign == '+' ? text : LeftStripped(text);
            AddData(text);
            line += CountNewlines(source.AsSpan(position, close - position));
            position = close + (endSign == '\0' ? 0 : 1) + 2;
            SkipAfterTagEnd(endSign);
            return true;
        }
    }

    private int SkipSpaces(int at)
    {
        while (at < source.Length && char.IsWhiteSpace(source[at]))
            at++;
        return at;
    }

    private void LexTag(TokenKind begin, TokenKind end)
    {
        tokens.Add(new Token(begin, "", line));
        var closer = begin == TokenKind.BlockBegin ? "%}" : "}}";
        var brackets = new Stack<char>();
        while (true)
        {
            if (position >= source.Length)
                throw Error($"unexpected end of template, expected '{closer}'");
            if (brackets.Count == 0 && TryCloseTag(closer, end))
                return;
            var c = source[position];
            if (char.IsWhiteSpace(c))
            {
                if (c == '\n')
                    line++;
                position++;
            }
            else if (char.IsDigit(c))
            {
                LexNumber();
            }
            else if (char.IsLetter(c) || c == '_')
            {
                var start = position;
                while (position < source.Length && (char.IsLetterOrDigit(source[position]) || source[position] == '_'))
                    position++;
                tokens.Add(new Token(TokenKind.Name, source[start..position], line));
            }
            else if (c is '\'' or '"')
            {
                LexString(c);
            }
            else
            {
                LexOperator(brackets);
            }
        }
    }

    private bool TryCloseTag(string closer, TokenKind end)
    {
        var sign = source[position] is '-' or '+' ? source[position] : '\0';
        var at = position + (sign == '\0' ? 0 : 1);
        if (string.CompareOrdinal(source, at, closer, 0, 2) != 0 || (sign == '+' && end == TokenKind.VariableEnd))
            return false;
        tokens.Add(new Token(end, "", line));
        position = at + 2;
        if (end == TokenKind.BlockEnd)
        {
            SkipAfterTagEnd(sign);
        }
        else
        {
            // trim_blocks leaves the newline after `}}` alone; only `-}}` strips.
            SkipAfterTagEnd(sign == '-' ? '-' : '+');
        }
        return true;
    }

    private void LexNumber()
    {
        var start = position;
        SkipDigits();
        var isFloat = false;
        if (position + 1 < source.Length && source[position] == '.' && char.IsDigit(source[position + 1]) && (start == 0 || source[start - 1] != '.'))
        {
            isFloat = true;
            position++;
            SkipDigits();
        }
        if (position < source.Length && source[position] is 'e' or 'E' && (start == 0 || source[start - 1] != '.'))
        {
            var exponent = position + 1;
            if (exponent < source.Length && source[exponent] is '+' or '-')
                exponent++;
            if (exponent < source.Length && char.IsDigit(source[exponent]))
            {
                isFloat = true;
                position = exponent;
                SkipDigits();
            }
        }
        var text = source[start..position].Replace("_", "");
        tokens.Add(isFloat
            ? new Token(TokenKind.Float, text, line, double.Parse(text, CultureInfo.InvariantCulture))
            : new Token(TokenKind.Integer, text, line, long.Parse(text, CultureInfo.InvariantCulture)));
    }

    private void SkipDigits()
    {
        while (position < source.Length && (char.IsDigit(source[position]) || (source[position] == '_' && position + 1 < source.Length && char.IsDigit(source[position + 1]))))
            position++;
    }

    private void LexString(char quote)
    {
        var start = position++;
        var value = new StringBuilder();
        while (true)
        {
            if (position >= source.Length)
                throw Error("unexpected end of string");
            var c = source[position++];
            if (c == quote)
                break;
            if (c == '\n')
                line++;
            if (c != '\\' || position >= source.Length)
            {
                value.Append(c);
                continue;
            }
            position = PythonEscapes.Decode(source, position, value);
        }
        tokens.Add(new Token(TokenKind.String, source[start..position], line, value.ToString()));
    }

    private void LexOperator(Stack<char> brackets)
    {
        var op = Operators.FirstOrDefault(o => string.CompareOrdinal(source, position, o, 0, o.Length) == 0)
            ?? throw Error($"unexpected char '{source[position]}'");
        switch (op)
        {
            case "(": brackets.Push(')'); break;
            case "[": brackets.Push(']'); break;
            case "{": brackets.Push('}'); break;
            case ")" or "]" or "}":
                if (brackets.Count == 0 || brackets.Pop() != op[0])
                    throw Error($"unexpected '{op}'");
                break;
        }
        tokens.Add(new Token(TokenKind.Operator, op, line));
        position += op.Length;
    }

    private static int CountNewlines(ReadOnlySpan<char> text) => text.Count('\n');

    private ChatTemplateException Error(string message) => new($"TemplateSyntaxError: {message} (line {line})");
}
