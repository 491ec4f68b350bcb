namespace MLNode.Engines.Llm.ChatTemplates;

/// <summary>
/// jinja2's default Undefined: renders as "", is falsy, iterates as empty and has length 0, but any
/// attribute or item access, call or arithmetic on it fails with the hint of what was missing.
/// </summary>
internal sealed class Undefined(string hint)
{
    public static Undefined Named(string name) => new($"'{name}' is undefined");

    public ChatTemplateException Error() => new($"UndefinedError: {hint}");
}
