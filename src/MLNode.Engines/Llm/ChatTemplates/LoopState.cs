namespace MLNode.Engines.Llm.ChatTemplates;

/// <summary>The `loop` variable of a for loop: position, neighbours and cycle().</summary>
internal sealed class LoopState(IReadOnlyList<object?> items)
{
    public int Index0 { get; set; }

    public object? GetAttribute(string name) => name switch
    {
        "index" => (long)Index0 + 1,
        "index0" => (long)Index0,
        "revindex" => (long)(items.Count - Index0),
        "revindex0" => (long)(items.Count - Index0 - 1),
        "first" => Index0 == 0,
        "last" => Index0 == items.Count - 1,
        "length" => (long)items.Count,
        "depth" => 1L,
        "depth0" => 0L,
        "previtem" => Index0 > 0 ? items[Index0 - 1] : new Undefined("there is no previous item"),
        "nextitem" => Index0 < items.Count - 1 ? items[Index0 + 1] : new Undefined("there is no next item"),
        "cycle" => new NativeFunction(arguments => arguments.Positional.Count == 0
            ? throw new ChatTemplateException("TypeError: no items for cycling given")
            : arguments.Positional[Index0 % arguments.Positional.Count]),
        _ => new Undefined($"'LoopContext object' has no attribute '{name}'"),
    };
}
