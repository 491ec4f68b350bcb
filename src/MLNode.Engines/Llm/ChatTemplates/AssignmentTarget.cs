namespace MLNode.Engines.Llm.ChatTemplates;

/// <summary>What `set` and `for` assign to: a name, a tuple of names to unpack into, or a namespace attribute.</summary>
internal abstract class AssignmentTarget
{
    public abstract void Assign(Scope scope, object? value);
}

internal sealed class NameTarget(string name) : AssignmentTarget
{
    public override void Assign(Scope scope, object? value) => scope.Assign(name, value);
}

internal sealed class UnpackingTarget(IReadOnlyList<AssignmentTarget> targets) : AssignmentTarget
{
    public override void Assign(Scope scope, object? value)
    {
        var items = PythonValues.ToList(value);
        if (items.Count != targets.Count)
            throw new ChatTemplateException(items.Count > targets.Count
                ? $"ValueError: too many values to unpack (expected {targets.Count})"
                : $"ValueError: not enough values to unpack (expected {targets.Count}, got {items.Count})");
        for (var i = 0; i < targets.Count; i++)
            targets[i].Assign(scope, items[i]);
    }
}

internal sealed class NamespaceAttributeTarget(string variable, string attribute) : AssignmentTarget
{
    public override void Assign(Scope scope, object? value)
    {
        if (scope.Resolve(variable) is not Namespace ns)
            throw new ChatTemplateException("cannot assign attribute on non-namespace object");
        ns.Attributes[attribute] = value;
    }
}
