using System.Text;

namespace MLNode.Engines.Llm.ChatTemplates;

/// <summary>How a statement ended: normally, or by {% break %} / {% continue %} bound for the enclosing loop.</summary>
internal enum Flow { Normal, Break, Continue }

internal abstract class Statement
{
    public abstract Flow Render(Scope scope, StringBuilder output);

    public static Flow RenderAll(IReadOnlyList<Statement> body, Scope scope, StringBuilder output)
    {
        foreach (var statement in body)
        {
            var flow = statement.Render(scope, output);
            if (flow != Flow.Normal)
                return flow;
        }
        return Flow.Normal;
    }
}

internal sealed class TextStatement(string text) : Statement
{
    public override Flow Render(Scope scope, StringBuilder output)
    {
        output.Append(text);
        return Flow.Normal;
    }
}

internal sealed class OutputStatement(Expression value) : Statement
{
    public override Flow Render(Scope scope, StringBuilder output)
    {
        output.Append(PythonValues.ToStr(value.Evaluate(scope)));
        return Flow.Normal;
    }
}

internal sealed class LoopControlStatement(Flow flow) : Statement
{
    public override Flow Render(Scope scope, StringBuilder output) => flow;
}

/// <summary>A body rendered in place: {% generation %}, whose only other effect in transformers is marking assistant tokens.</summary>
internal sealed class BlockStatement(IReadOnlyList<Statement> body) : Statement
{
    public override Flow Render(Scope scope, StringBuilder output) => RenderAll(body, scope, output);
}

internal sealed class IfStatement(IReadOnlyList<(Expression Condition, IReadOnlyList<Statement> Body)> branches, IReadOnlyList<Statement> otherwise) : Statement
{
    public override Flow Render(Scope scope, StringBuilder output)
    {
        foreach (var (condition, body) in branches)
        {
            if (PythonValues.IsTrue(condition.Evaluate(scope)))
                return RenderAll(body, scope, output);
        }
        return RenderAll(otherwise, scope, output);
    }
}

internal sealed class ForStatement(AssignmentTarget target, Expression iterable, Expression? filter, IReadOnlyList<Statement> body, IReadOnlyList<Statement> otherwise) : Statement
{
    public override Flow Render(Scope scope, StringBuilder output)
    {
        var items = PythonValues.ToList(iterable.Evaluate(scope));
        if (filter is not null)
        {
            // The `if` clause filters before the loop starts, so loop.length and loop.last count only kept items.
            items = [.. items.Where(item =>
            {
                var filterScope = new Scope(scope);
                target.Assign(filterScope, item);
                return PythonValues.IsTrue(filter.Evaluate(filterScope));
            })];
        }
        var loop = new LoopState(items);
        for (var i = 0; i < items.Count; i++)
        {
            var iteration = new Scope(scope);
            loop.Index0 = i;
            iteration.Assign("loop", loop);
            target.Assign(iteration, items[i]);
            if (RenderAll(body, iteration, output) == Flow.Break)
                break;
        }
        return items.Count == 0 ? RenderAll(otherwise, scope, output) : Flow.Normal;
    }
}

/// <summary>{% with a = x %}...{% endwith %}: values evaluated outside, visible only inside.</summary>
internal sealed class WithStatement(IReadOnlyList<(AssignmentTarget Target, Expression Value)> assignments, IReadOnlyList<Statement> body) : Statement
{
    public override Flow Render(Scope scope, StringBuilder output)
    {
        var inner = new Scope(scope);
        foreach (var (target, value) in assignments)
            target.Assign(inner, value.Evaluate(scope));
        return RenderAll(body, inner, output);
    }
}

internal sealed class SetStatement(AssignmentTarget target, Expression value) : Statement
{
    public override Flow Render(Scope scope, StringBuilder output)
    {
        target.Assign(scope, value.Evaluate(scope));
        return Flow.Normal;
    }
}

/// <summary>{% set name %}...{% endset %} and {% filter f %}...{% endfilter %}: a body rendered to a string, optionally filtered.</summary>
internal sealed class CaptureStatement(AssignmentTarget? target, Expression result, IReadOnlyList<Statement> body) : Statement
{
    public override Flow Render(Scope scope, StringBuilder output)
    {
        var text = new StringBuilder();
        // As in jinja, the body has a scope of its own, and a break or continue in it leaves the loop before anything is assigned.
        var flow = RenderAll(body, new Scope(scope), text);
        if (flow != Flow.Normal)
            return flow;
        var captured = new Scope(scope);
        captured.Assign(CapturedText.VariableName, text.ToString());
        var value = result.Evaluate(captured);
        if (target is null)
            output.Append(PythonValues.ToStr(value));
        else
            target.Assign(scope, value);
        return Flow.Normal;
    }
}

/// <summary>
/// The rendered body of a capture, which its filter chain (if any) starts from. It travels in a scope
/// rather than in this node so that one parsed template can render on several threads at once.
/// </summary>
internal sealed class CapturedText : Expression
{
    // Not an identifier, so no template variable can shadow it.
    public const string VariableName = "<captured>";

    public override object? Evaluate(Scope scope) => scope.Resolve(VariableName);
}

internal sealed class MacroStatement(string name, IReadOnlyList<(string Name, Expression? Default)> parameters, IReadOnlyList<Statement> body) : Statement
{
    public override Flow Render(Scope scope, StringBuilder output)
    {
        scope.Assign(name, new Macro(parameters, body, scope));
        return Flow.Normal;
    }
}

/// <summary>{% call(params) macro(args) %}body{% endcall %}: the macro gets the body as `caller`.</summary>
internal sealed class CallBlockStatement(Expression callee, ArgumentList arguments, IReadOnlyList<(string Name, Expression? Default)> parameters, IReadOnlyList<Statement> body) : Statement
{
    public override Flow Render(Scope scope, StringBuilder output)
    {
        if (callee.Evaluate(scope) is not Macro macro)
            throw new ChatTemplateException("TypeError: {% call %} needs a macro");
        var caller = new Macro(parameters, body, scope);
        var values = arguments.Evaluate(scope);
        output.Append(macro.Call(new CallArguments(values.Positional, new Dictionary<string, object?>(values.Named) { ["caller"] = caller })));
        return Flow.Normal;
    }
}

internal sealed class Macro(IReadOnlyList<(string Name, Expression? Default)> parameters, IReadOnlyList<Statement> body, Scope definedIn) : ITemplateCallable
{
    public object? Call(CallArguments arguments)
    {
        ChatTemplate.EnsureStack();
        var scope = new Scope(definedIn);
        var extraNamed = new OrderedDictionary<object, object?>();
        foreach (var (key, value) in arguments.Named)
        {
            if (key != "caller" && !parameters.Any(p => p.Name == key))
                extraNamed[key] = value;
        }
        for (var i = 0; i < parameters.Count; i++)
        {
            var (parameter, fallback) = parameters[i];
            object? value;
            if (i < arguments.Positional.Count)
                value = arguments.Positional[i];
            else if (arguments.Named.TryGetValue(parameter, out var named))
                value = named;
            else
                value = fallback is null ? new Undefined($"parameter '{parameter}' was not provided") : fallback.Evaluate(scope);
            scope.Assign(parameter, value);
        }
        scope.Assign("varargs", arguments.Positional.Skip(parameters.Count).ToArray());
        scope.Assign("kwargs", extraNamed);
        if (arguments.Named.TryGetValue("caller", out var caller))
            scope.Assign("caller", caller);
        var output = new StringBuilder();
        Statement.RenderAll(body, scope, output);
        return output.ToString();
    }
}
