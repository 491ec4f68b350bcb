namespace MLNode.Engines.Llm.ChatTemplates;

/// <summary>
/// Variables visible at one point of a render. Loop iterations and macro calls get a child scope, so
/// that, as in jinja, a `set` inside them is not seen outside (hence namespace()).
/// </summary>
internal sealed class Scope(Scope? parent)
{
    private readonly Dictionary<string, object?> variables = [];
    private readonly Scope? parent = parent;

    public object? Resolve(string name)
    {
        for (var scope = this; scope is not null; scope = scope.parent)
        {
            if (scope.variables.TryGetValue(name, out var value))
                return value;
        }
        return Undefined.Named(name);
    }

    public void Assign(string name, object? value) => variables[name] = value;
}
