namespace MLNode.Engines.Llm.ChatTemplates;

/// <summary>
/// jinja's `a.b` and `a[b]`: attribute syntax prefers methods then falls back to dict keys, subscript
/// syntax the reverse, and a miss gives an Undefined naming what was missing.
/// </summary>
internal static class AttributeAccess
{
    public static object? GetAttribute(object? target, string name)
    {
        switch (target)
        {
            case Undefined undefined:
                throw undefined.Error();
            case Namespace ns:
                return ns.Attributes.TryGetValue(name, out var attribute) ? attribute : Missing(target, name);
            case LoopState loop:
                return loop.GetAttribute(name);
        }
        if (BuiltinMethods.Bind(target, name) is { } method)
            return method;
        if (target is OrderedDictionary<object, object?> dict && dict.TryGetValue(name, out var value))
            return value;
        return Missing(target, name);
    }

    public static object? GetItem(object? target, object? key)
    {
        switch (target)
        {
            case Undefined undefined:
                throw undefined.Error();
            case OrderedDictionary<object, object?> dict:
                if (key is not null && dict.TryGetValue(key, out var value))
                    return value;
                break;
            case string or List<object?> or object?[] when key is long or bool:
                var items = target as IReadOnlyList<object?> ?? PythonValues.Characters((string)target);
                var index = PythonValues.ToLong(key);
                if (index < 0)
                    index += items.Count;
                return index >= 0 && index < items.Count ? items[(int)index]
                    : MissingElement(target, key);
        }
        return key is string name ? GetAttribute(target, name) : MissingElement(target, key);
    }

    private static Undefined MissingElement(object? target, object? key) =>
        new($"{PythonValues.ObjectTypeRepr(target)} has no element {PythonValues.Repr(key)}");

    private static Undefined Missing(object? target, string name) =>
        new($"'{PythonValues.ObjectTypeRepr(target)}' has no attribute '{name}'");

    /// <summary>Python's target[start:stop:step] on a list, tuple or string.</summary>
    public static object? Slice(object? target, object? start, object? stop, object? step)
    {
        if (target is Undefined undefined)
            throw undefined.Error();
        IReadOnlyList<object?> items;
        switch (target)
        {
            case string s: items = PythonValues.Characters(s); break;
            case List<object?> list: items = list; break;
            case object?[] tuple: items = tuple; break;
            default:
                // jinja compiles slices to plain Python subscripts, so unlike a[b] a miss is a TypeError, not undefined.
                throw new ChatTemplateException($"TypeError: '{PythonValues.TypeName(target)}' object is not subscriptable");
        }
        var stride = step is null or Undefined ? 1 : PythonValues.ToLong(step);
        if (stride == 0)
            throw new ChatTemplateException("ValueError: slice step cannot be zero");
        var count = items.Count;
        long Clamp(object? bound, long whenMissing)
        {
            if (bound is null or Undefined)
                return whenMissing;
            var position = PythonValues.ToLong(bound);
            if (position < 0)
                position += count;
            return stride > 0 ? Math.Clamp(position, 0, count) : Math.Clamp(position, -1, count - 1);
        }
        var from = Clamp(start, stride > 0 ? 0 : count - 1);
        var to = Clamp(stop, stride > 0 ? count : -1);
        var picked = new List<object?>();
        for (var i = from; stride > 0 ? i < to : i > to; i += stride)
            picked.Add(items[(int)i]);
        return target switch
        {
            string => string.Concat(picked.Cast<string>()),
            object?[] => picked.ToArray(),
            _ => picked,
        };
    }
}
