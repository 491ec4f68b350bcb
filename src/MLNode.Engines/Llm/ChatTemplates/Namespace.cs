namespace MLNode.Engines.Llm.ChatTemplates;

/// <summary>The object namespace() returns: the one value whose attributes a template may assign, even from inside a loop.</summary>
internal sealed class Namespace(OrderedDictionary<string, object?> attributes)
{
    public OrderedDictionary<string, object?> Attributes { get; } = attributes;
}
