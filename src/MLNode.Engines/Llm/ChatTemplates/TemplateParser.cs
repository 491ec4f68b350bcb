namespace MLNode.Engines.Llm.ChatTemplates;

/// <summary>Recursive-descent parser for jinja2's statements and expressions, with jinja's operator precedence.</summary>
internal sealed class TemplateParser
{
    private static readonly HashSet<string> CompareOperators = ["==", "!=", "<", "<=", ">", ">="];

    private readonly List<Token> tokens;
    private int index;
    // How many for-loop bodies enclose the statement being parsed; a macro body starts again from none.
    private int loopDepth;

    private TemplateParser(List<Token> tokens) => this.tokens = tokens;

    public static IReadOnlyList<Statement> Parse(string source)
    {
        var parser = new TemplateParser(TemplateLexer.Tokenize(source));
        var body = parser.ParseBody(new HashSet<string>());
        if (parser.Current.Kind != TokenKind.End)
            throw parser.Error($"unexpected '{parser.PeekTagName()}'");
        return body;
    }

    private Token Current => tokens[index];

    private Token Advance() => tokens[index++];

    private bool IsOperator(string op) => Current.Kind == TokenKind.Operator && Current.Text == op;

    private bool IsName(string name) => Current.Kind == TokenKind.Name && Current.Text == name;

    private bool SkipOperator(string op)
    {
        if (!IsOperator(op))
            return false;
        index++;
        return true;
    }

    private bool SkipName(string name)
    {
        if (!IsName(name))
            return false;
        index++;
        return true;
    }

    private void ExpectOperator(string op)
    {
        if (!SkipOperator(op))
            throw Error($"expected '{op}', got '{Describe(Current)}'");
    }

    private string ExpectName()
    {
        if (Current.Kind != TokenKind.Name)
            throw Error($"expected a name, got '{Describe(Current)}'");
        return Advance().Text;
    }

    private void Expect(TokenKind kind)
    {
        if (Current.Kind != kind)
            throw Error($"expected end of {(kind == TokenKind.BlockEnd ? "statement block" : "print statement")}, got '{Describe(Current)}'");
        index++;
    }

    private static string Describe(Token token) => token.Kind switch
    {
        TokenKind.End => "end of template",
        TokenKind.BlockEnd => "%}",
        TokenKind.VariableEnd => "}}",
        _ => token.Text,
    };

    private ChatTemplateException Error(string message) => new($"TemplateSyntaxError: {message} (line {Current.Line})");

    private string PeekTagName() => index + 1 < tokens.Count ? tokens[index + 1].Text : "";

    /// <summary>Statements up to a block tag named in <paramref name="endTags"/>, which is left unconsumed.</summary>
    private List<Statement> ParseBody(IReadOnlySet<string> endTags)
    {
        ChatTemplate.EnsureStack();
        var body = new List<Statement>();
        while (true)
        {
            var token = Current;
            switch (token.Kind)
            {
                case TokenKind.End:
                    if (endTags.Count > 0)
                        throw Error($"unexpected end of template, expected one of {string.Join(", ", endTags.Select(t => $"'{t}'"))}");
                    return body;
                case TokenKind.Data:
                    index++;
                    body.Add(new TextStatement(token.Text));
                    break;
                case TokenKind.VariableBegin:
                    index++;
                    body.Add(new OutputStatement(ParseTupleOrExpression()));
                    Expect(TokenKind.VariableEnd);
                    break;
                default:
                    if (endTags.Contains(PeekTagName()))
                        return body;
                    index++;
                    body.Add(ParseStatement());
                    break;
            }
        }
    }

    /// <summary>Consumes `{% name` of the tag that ended a body.</summary>
    private string EnterTag()
    {
        index++;
        return Advance().Text;
    }

    private Statement ParseStatement()
    {
        var keyword = ExpectName();
        switch (keyword)
        {
            case "if": return ParseIf();
            case "for": return ParseFor();
            case "set": return ParseSet();
            case "macro": return ParseMacro();
            case "call": return ParseCallBlock();
            case "filter": return ParseFilterBlock();
            case "with": return ParseWith();
            case "generation":
                Expect(TokenKind.BlockEnd);
                var generated = ParseBody(new HashSet<string> { "endgeneration" });
                EndTag();
                return new BlockStatement(generated);
            case "break" or "continue":
                if (loopDepth == 0)
                    throw Error($"'{keyword}' outside loop");
                Expect(TokenKind.BlockEnd);
                return new LoopControlStatement(keyword == "break" ? Flow.Break : Flow.Continue);
            default:
                throw Error($"Encountered unknown tag '{keyword}'");
        }
    }

    private void EndTag()
    {
        EnterTag();
        Expect(TokenKind.BlockEnd);
    }

    private IfStatement ParseIf()
    {
        var branches = new List<(Expression, IReadOnlyList<Statement>)>();
        var endTags = new HashSet<string> { "elif", "else", "endif" };
        while (true)
        {
            var condition = ParseTupleOrExpression();
            Expect(TokenKind.BlockEnd);
            branches.Add((condition, ParseBody(endTags)));
            var tag = EnterTag();
            if (tag == "elif")
                continue;
            if (tag == "endif")
            {
                Expect(TokenKind.BlockEnd);
                return new IfStatement(branches, []);
            }
            Expect(TokenKind.BlockEnd);
            var otherwise = ParseBody(new HashSet<string> { "endif" });
            EndTag();
            return new IfStatement(branches, otherwise);
        }
    }

    private ForStatement ParseFor()
    {
        var target = ParseAssignmentTarget(allowAttribute: false);
        if (!SkipName("in"))
            throw Error("expected 'in'");
        var iterable = ParseTupleOrExpression(withCondition: false);
        var filter = SkipName("if") ? ParseExpression() : null;
        if (IsName("recursive"))
            throw Error("recursive for loops are not supported");
        Expect(TokenKind.BlockEnd);
        loopDepth++;
        var body = ParseBody(new HashSet<string> { "else", "endfor" });
        loopDepth--;
        IReadOnlyList<Statement> otherwise = [];
        if (EnterTag() == "else")
        {
            Expect(TokenKind.BlockEnd);
            otherwise = ParseBody(new HashSet<string> { "endfor" });
            EnterTag();
        }
        Expect(TokenKind.BlockEnd);
        return new ForStatement(target, iterable, filter, body, otherwise);
    }

    private AssignmentTarget ParseAssignmentTarget(bool allowAttribute)
    {
        var targets = new List<AssignmentTarget>();
        var parenthesized = SkipOperator("(");
        do
        {
            if (parenthesized && IsOperator(")"))
                break;
            var name = ExpectName();
            if (allowAttribute && SkipOperator("."))
                targets.Add(new NamespaceAttributeTarget(name, ExpectName()));
            else
                targets.Add(new NameTarget(name));
        }
        while (SkipOperator(","));
        if (parenthesized)
            ExpectOperator(")");
        return targets.Count == 1 && !parenthesized ? targets[0] : new UnpackingTarget(targets);
    }

    private Statement ParseSet()
    {
        var target = ParseAssignmentTarget(allowAttribute: true);
        if (SkipOperator("="))
        {
            var value = ParseTupleOrExpression();
            Expect(TokenKind.BlockEnd);
            return new SetStatement(target, value);
        }
        var result = ParseFilterChain(new CapturedText());
        Expect(TokenKind.BlockEnd);
        var body = ParseBody(new HashSet<string> { "endset" });
        EndTag();
        return new CaptureStatement(target, result, body);
    }

    private WithStatement ParseWith()
    {
        var assignments = new List<(AssignmentTarget, Expression)>();
        while (Current.Kind != TokenKind.BlockEnd)
        {
            if (assignments.Count > 0)
                ExpectOperator(",");
            var target = ParseAssignmentTarget(allowAttribute: false);
            ExpectOperator("=");
            assignments.Add((target, ParseExpression()));
        }
        Expect(TokenKind.BlockEnd);
        var body = ParseBody(new HashSet<string> { "endwith" });
        EndTag();
        return new WithStatement(assignments, body);
    }

    private CaptureStatement ParseFilterBlock()
    {
        var result = ParseFilterChain(ParseFilter(new CapturedText()));
        Expect(TokenKind.BlockEnd);
        var body = ParseBody(new HashSet<string> { "endfilter" });
        EndTag();
        return new CaptureStatement(null, result, body);
    }

    private Expression ParseFilterChain(Expression value)
    {
        while (SkipOperator("|"))
            value = ParseFilter(value);
        return value;
    }

    private MacroStatement ParseMacro()
    {
        var name = ExpectName();
        var parameters = ParseParameters();
        Expect(TokenKind.BlockEnd);
        var body = ParseOutsideLoops(new HashSet<string> { "endmacro" });
        EndTag();
        return new MacroStatement(name, parameters, body);
    }

    private List<(string, Expression?)> ParseParameters()
    {
        var parameters = new List<(string, Expression?)>();
        ExpectOperator("(");
        while (!SkipOperator(")"))
        {
            if (parameters.Count > 0)
                ExpectOperator(",");
            var parameter = ExpectName();
            parameters.Add((parameter, SkipOperator("=") ? ParseExpression() : null));
        }
        return parameters;
    }

    private CallBlockStatement ParseCallBlock()
    {
        var parameters = IsOperator("(") ? ParseParameters() : [];
        if (ParseExpression() is not CallExpression call)
            throw Error("expected a macro call after 'call'");
        Expect(TokenKind.BlockEnd);
        var body = ParseOutsideLoops(new HashSet<string> { "endcall" });
        EndTag();
        return new CallBlockStatement(call.Callee, call.Arguments, parameters, body);
    }

    /// <summary>A macro or caller body, which runs wherever it is called, so enclosing loops do not count for break and continue.</summary>
    private List<Statement> ParseOutsideLoops(IReadOnlySet<string> endTags)
    {
        var enclosingLoops = loopDepth;
        loopDepth = 0;
        var body = ParseBody(endTags);
        loopDepth = enclosingLoops;
        return body;
    }

    /// <summary>An expression, or a tuple when commas follow it (as in `{{ a, b }}` or `for x in a, b`).</summary>
    private Expression ParseTupleOrExpression(bool withCondition = true)
    {
        var first = ParseExpression(withCondition);
        if (!IsOperator(","))
            return first;
        var items = new List<Expression> { first };
        while (SkipOperator(","))
        {
            if (Current.Kind is TokenKind.BlockEnd or TokenKind.VariableEnd || IsOperator(")"))
                break;
            items.Add(ParseExpression(withCondition));
        }
        return new TupleLiteral(items);
    }

    private Expression ParseExpression(bool withCondition = true)
    {
        ChatTemplate.EnsureStack();
        var value = ParseOr();
        while (withCondition && SkipName("if"))
        {
            var condition = ParseOr();
            value = new ConditionalExpression(condition, value, SkipName("else") ? ParseExpression() : null);
        }
        return value;
    }

    private Expression ParseOr()
    {
        var left = ParseAnd();
        while (SkipName("or"))
            left = new LogicalExpression(isAnd: false, left, ParseAnd());
        return left;
    }

    private Expression ParseAnd()
    {
        var left = ParseNot();
        while (SkipName("and"))
            left = new LogicalExpression(isAnd: true, left, ParseNot());
        return left;
    }

    private Expression ParseNot() => SkipName("not") ? new NotExpression(ParseNot()) : ParseComparison();

    private Expression ParseComparison()
    {
        var first = ParseAdditive();
        var rest = new List<(string, Expression)>();
        while (true)
        {
            if (Current.Kind == TokenKind.Operator && CompareOperators.Contains(Current.Text))
                rest.Add((Advance().Text, ParseAdditive()));
            else if (SkipName("in"))
                rest.Add(("in", ParseAdditive()));
            else if (IsName("not") && tokens[index + 1] is { Kind: TokenKind.Name, Text: "in" })
            {
                index += 2;
                rest.Add(("not in", ParseAdditive()));
            }
            else
                break;
        }
        return rest.Count == 0 ? first : new ComparisonExpression(first, rest);
    }

    private Expression ParseAdditive()
    {
        var left = ParseConcat();
        while (IsOperator("+") || IsOperator("-"))
            left = new BinaryExpression(Advance().Text, left, ParseConcat());
        return left;
    }

    private Expression ParseConcat()
    {
        var left = ParseMultiplicative();
        while (SkipOperator("~"))
            left = new ConcatExpression(left, ParseMultiplicative());
        return left;
    }

    private Expression ParseMultiplicative()
    {
        var left = ParsePower();
        while (IsOperator("*") || IsOperator("/") || IsOperator("//") || IsOperator("%"))
            left = new BinaryExpression(Advance().Text, left, ParsePower());
        return left;
    }

    private Expression ParsePower()
    {
        var left = ParseUnary(withFilters: true);
        while (SkipOperator("**"))
            left = new BinaryExpression("**", left, ParseUnary(withFilters: true));
        return left;
    }

    private Expression ParseUnary(bool withFilters)
    {
        Expression value;
        if (SkipOperator("-"))
            value = new NegateExpression(ParseUnary(withFilters: false));
        else if (SkipOperator("+"))
            value = new BinaryExpression("+", new Literal(0L), ParseUnary(withFilters: false));
        else
            value = ParsePostfix(ParsePrimary());
        return withFilters ? ParseFiltersAndTests(value) : value;
    }

    private Expression ParseFiltersAndTests(Expression value)
    {
        while (true)
        {
            if (SkipOperator("|"))
                value = ParseFilter(value);
            else if (SkipName("is"))
                value = ParseTest(value);
            else if (IsOperator("("))
                value = ParseCall(value);
            else
                return value;
        }
    }

    private FilterExpression ParseFilter(Expression value)
    {
        var name = ParseDottedName();
        var arguments = IsOperator("(") ? ParseArguments() : ArgumentList.Empty;
        try
        {
            return new FilterExpression(value, name, arguments);
        }
        catch (ChatTemplateException e)
        {
            throw Error(e.Message);
        }
    }

    private TestExpression ParseTest(Expression value)
    {
        var negated = SkipName("not");
        var name = ParseDottedName();
        var arguments = ArgumentList.Empty;
        if (IsOperator("("))
            arguments = ParseArguments();
        else if (Current.Kind is TokenKind.Name or TokenKind.String or TokenKind.Integer or TokenKind.Float || IsOperator("[") || IsOperator("{") || IsOperator("("))
        {
            if (!IsName("else") && !IsName("or") && !IsName("and") && !IsName("is"))
                arguments = new ArgumentList([ParsePostfix(ParsePrimary())], []);
        }
        try
        {
            return new TestExpression(value, name, arguments, negated);
        }
        catch (ChatTemplateException e)
        {
            throw Error(e.Message);
        }
    }

    private string ParseDottedName()
    {
        var name = ExpectName();
        while (SkipOperator("."))
            name += "." + ExpectName();
        return name;
    }

    private Expression ParsePrimary()
    {
        var token = Advance();
        switch (token.Kind)
        {
            case TokenKind.Name:
                return token.Text switch
                {
                    "true" or "True" => new Literal(true),
                    "false" or "False" => new Literal(false),
                    "none" or "None" => new Literal(null),
                    _ => new VariableReference(token.Text),
                };
            case TokenKind.String:
                var text = (string)token.Value!;
                // Adjacent string literals concatenate, as in Python.
                while (Current.Kind == TokenKind.String)
                    text += (string)Advance().Value!;
                return new Literal(text);
            case TokenKind.Integer or TokenKind.Float:
                return new Literal(token.Value);
            case TokenKind.Operator when token.Text == "(":
                return ParseParenthesized();
            case TokenKind.Operator when token.Text == "[":
                var items = new List<Expression>();
                while (!SkipOperator("]"))
                {
                    if (items.Count > 0)
                        ExpectOperator(",");
                    if (SkipOperator("]"))
                        break;
                    items.Add(ParseExpression());
                }
                return new ListLiteral(items);
            case TokenKind.Operator when token.Text == "{":
                var pairs = new List<(Expression, Expression)>();
                while (!SkipOperator("}"))
                {
                    if (pairs.Count > 0)
                        ExpectOperator(",");
                    if (SkipOperator("}"))
                        break;
                    var key = ParseExpression();
                    ExpectOperator(":");
                    pairs.Add((key, ParseExpression()));
                }
                return new DictLiteral(pairs);
            default:
                index--;
                throw Error($"unexpected '{Describe(token)}'");
        }
    }

    private Expression ParseParenthesized()
    {
        if (SkipOperator(")"))
            return new TupleLiteral([]);
        var first = ParseExpression();
        if (SkipOperator(")"))
            return first;
        var items = new List<Expression> { first };
        while (SkipOperator(","))
        {
            if (IsOperator(")"))
                break;
            items.Add(ParseExpression());
        }
        ExpectOperator(")");
        return new TupleLiteral(items);
    }

    private Expression ParsePostfix(Expression value)
    {
        while (true)
        {
            if (SkipOperator("."))
            {
                var token = Advance();
                value = token.Kind switch
                {
                    TokenKind.Name => new AttributeLookup(value, token.Text),
                    TokenKind.Integer => new ItemLookup(value, new Literal(token.Value)),
                    _ => throw Error($"expected an attribute name after '.', got '{Describe(token)}'"),
                };
            }
            else if (SkipOperator("["))
            {
                value = ParseSubscript(value);
            }
            else if (IsOperator("("))
            {
                value = ParseCall(value);
            }
            else
            {
                return value;
            }
        }
    }

    private Expression ParseSubscript(Expression target)
    {
        Expression? start = IsOperator(":") ? null : ParseExpression();
        if (start is not null && SkipOperator("]"))
            return new ItemLookup(target, start);
        ExpectOperator(":");
        Expression? stop = IsOperator(":") || IsOperator("]") ? null : ParseExpression();
        Expression? step = null;
        if (SkipOperator(":") && !IsOperator("]"))
            step = ParseExpression();
        ExpectOperator("]");
        return new SliceLookup(target, start, stop, step);
    }

    private CallExpression ParseCall(Expression callee) => new(callee, ParseArguments());

    private ArgumentList ParseArguments()
    {
        ExpectOperator("(");
        var positional = new List<Expression>();
        var named = new List<(string, Expression)>();
        while (!SkipOperator(")"))
        {
            if (positional.Count + named.Count > 0)
            {
                ExpectOperator(",");
                if (SkipOperator(")"))
                    break;
            }
            if (Current.Kind == TokenKind.Name && tokens[index + 1] is { Kind: TokenKind.Operator, Text: "=" })
            {
                var name = Advance().Text;
                index++;
                named.Add((name, ParseExpression()));
            }
            else
            {
                if (named.Count > 0)
                    throw Error("positional argument follows keyword argument");
                positional.Add(ParseExpression());
            }
        }
        return new ArgumentList(positional, named);
    }
}
