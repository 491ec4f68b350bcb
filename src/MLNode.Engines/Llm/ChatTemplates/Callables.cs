namespace MLNode.Engines.Llm.ChatTemplates;

/// <summary>Positional and keyword arguments of a call, with Python's rules for taking a parameter from either.</summary>
internal sealed class CallArguments(IReadOnlyList<object?> positional, IReadOnlyDictionary<string, object?> named)
{
    public IReadOnlyList<object?> Positional { get; } = positional;

    public IReadOnlyDictionary<string, object?> Named { get; } = named;

    /// <summary>The parameter at <paramref name="position"/> (counting after the filtered value) or named <paramref name="name"/>, else <paramref name="fallback"/>.</summary>
    public object? Get(int position, string name, object? fallback = null)
    {
        if (position < Positional.Count)
            return Positional[position];
        return Named.TryGetValue(name, out var value) ? value : fallback;
    }

    public bool Has(int position, string name) => position < Positional.Count || Named.ContainsKey(name);
}

/// <summary>A value a template can call: a macro, a global function, a bound method of a string, list or dict.</summary>
internal interface ITemplateCallable
{
    object? Call(CallArguments arguments);
}

/// <summary>A callable implemented in C#: global functions and the methods of built-in values.</summary>
internal sealed class NativeFunction(Func<CallArguments, object?> body) : ITemplateCallable
{
    public object? Call(CallArguments arguments) => body(arguments);
}
