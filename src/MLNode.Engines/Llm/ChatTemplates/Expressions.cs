namespace MLNode.Engines.Llm.ChatTemplates;

internal abstract class Expression
{
    public abstract object? Evaluate(Scope scope);
}

internal sealed class Literal(object? value) : Expression
{
    public override object? Evaluate(Scope scope) => value;
}

internal sealed class ListLiteral(IReadOnlyList<Expression> items) : Expression
{
    public override object? Evaluate(Scope scope) => new List<object?>(items.Select(item => item.Evaluate(scope)));
}

internal sealed class TupleLiteral(IReadOnlyList<Expression> items) : Expression
{
    public override object? Evaluate(Scope scope) => items.Select(item => item.Evaluate(scope)).ToArray();
}

internal sealed class DictLiteral(IReadOnlyList<(Expression Key, Expression Value)> pairs) : Expression
{
    public override object? Evaluate(Scope scope)
    {
        var dict = new OrderedDictionary<object, object?>();
        foreach (var (key, value) in pairs)
            dict[key.Evaluate(scope) ?? throw new ChatTemplateException("TypeError: None as a dict key is not supported")] = value.Evaluate(scope);
        return dict;
    }
}

internal sealed class VariableReference(string name) : Expression
{
    public override object? Evaluate(Scope scope) => scope.Resolve(name);
}

internal sealed class AttributeLookup(Expression target, string name) : Expression
{
    public override object? Evaluate(Scope scope) => AttributeAccess.GetAttribute(target.Evaluate(scope), name);
}

internal sealed class ItemLookup(Expression target, Expression key) : Expression
{
    public override object? Evaluate(Scope scope) => AttributeAccess.GetItem(target.Evaluate(scope), key.Evaluate(scope));
}

internal sealed class SliceLookup(Expression target, Expression? start, Expression? stop, Expression? step) : Expression
{
    public override object? Evaluate(Scope scope) =>
        AttributeAccess.Slice(target.Evaluate(scope), start?.Evaluate(scope), stop?.Evaluate(scope), step?.Evaluate(scope));
}

/// <summary>The arguments written at a call site, evaluated on each call.</summary>
internal sealed class ArgumentList(IReadOnlyList<Expression> positional, IReadOnlyList<(string Name, Expression Value)> named)
{
    public static readonly ArgumentList Empty = new([], []);

    public CallArguments Evaluate(Scope scope, object? first = null, bool hasFirst = false)
    {
        var values = new List<object?>();
        if (hasFirst)
            values.Add(first);
        values.AddRange(positional.Select(argument => argument.Evaluate(scope)));
        var keywords = new Dictionary<string, object?>();
        foreach (var (name, value) in named)
            keywords[name] = value.Evaluate(scope);
        return new CallArguments(values, keywords);
    }
}

internal sealed class CallExpression(Expression callee, ArgumentList arguments) : Expression
{
    public Expression Callee { get; } = callee;

    public ArgumentList Arguments { get; } = arguments;

    public override object? Evaluate(Scope scope)
    {
        var target = Callee.Evaluate(scope);
        return target switch
        {
            ITemplateCallable callable => callable.Call(Arguments.Evaluate(scope)),
            Undefined undefined => throw undefined.Error(),
            _ => throw new ChatTemplateException($"TypeError: '{PythonValues.TypeName(target)}' object is not callable"),
        };
    }
}

internal sealed class FilterExpression(Expression value, string name, ArgumentList arguments) : Expression
{
    private readonly BuiltinFilters.Filter filter = BuiltinFilters.Find(name);

    public override object? Evaluate(Scope scope) => filter(value.Evaluate(scope), arguments.Evaluate(scope));
}

internal sealed class TestExpression(Expression value, string name, ArgumentList arguments, bool negated) : Expression
{
    private readonly BuiltinTests.Test test = BuiltinTests.Find(name);

    public override object? Evaluate(Scope scope) => test(value.Evaluate(scope), arguments.Evaluate(scope)) != negated;
}

internal sealed class NotExpression(Expression operand) : Expression
{
    public override object? Evaluate(Scope scope) => !PythonValues.IsTrue(operand.Evaluate(scope));
}

internal sealed class NegateExpression(Expression operand) : Expression
{
    public override object? Evaluate(Scope scope) => PythonOperators.Negate(operand.Evaluate(scope));
}

internal sealed class BinaryExpression(string op, Expression left, Expression right) : Expression
{
    public override object? Evaluate(Scope scope) => PythonOperators.Apply(op, left.Evaluate(scope), right.Evaluate(scope));
}

/// <summary>`a ~ b`: both sides as Python str, concatenated.</summary>
internal sealed class ConcatExpression(Expression left, Expression right) : Expression
{
    public override object? Evaluate(Scope scope) => PythonValues.ToStr(left.Evaluate(scope)) + PythonValues.ToStr(right.Evaluate(scope));
}

/// <summary>`and` / `or`, which like Python's return the deciding operand rather than a bool.</summary>
internal sealed class LogicalExpression(bool isAnd, Expression left, Expression right) : Expression
{
    public override object? Evaluate(Scope scope)
    {
        var first = left.Evaluate(scope);
        return PythonValues.IsTrue(first) == isAnd ? right.Evaluate(scope) : first;
    }
}

/// <summary>A comparison chain such as `a < b <= c`, each operand evaluated once.</summary>
internal sealed class ComparisonExpression(Expression first, IReadOnlyList<(string Op, Expression Operand)> rest) : Expression
{
    public override object? Evaluate(Scope scope)
    {
        var left = first.Evaluate(scope);
        foreach (var (op, operand) in rest)
        {
            var right = operand.Evaluate(scope);
            if (!Holds(op, left, right))
                return false;
            left = right;
        }
        return true;
    }

    private static bool Holds(string op, object? left, object? right) => op switch
    {
        "==" => PythonValues.AreEqual(left, right),
        "!=" => !PythonValues.AreEqual(left, right),
        "in" => PythonOperators.Contains(right, left),
        "not in" => !PythonOperators.Contains(right, left),
        "<" => PythonValues.Compare(left, right, op) < 0,
        "<=" => PythonValues.Compare(left, right, op) <= 0,
        ">" => PythonValues.Compare(left, right, op) > 0,
        _ => PythonValues.Compare(left, right, op) >= 0,
    };
}

/// <summary>`a if condition else b`; without `else` the result is undefined when the condition is false.</summary>
internal sealed class ConditionalExpression(Expression condition, Expression whenTrue, Expression? whenFalse) : Expression
{
    public override object? Evaluate(Scope scope) => PythonValues.IsTrue(condition.Evaluate(scope))
        ? whenTrue.Evaluate(scope)
        : whenFalse is null ? new Undefined("the inline if-expression evaluated to false and no else section was defined") : whenFalse.Evaluate(scope);
}
