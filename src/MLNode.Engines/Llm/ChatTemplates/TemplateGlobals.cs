using System.Globalization;
using System.Text;

namespace MLNode.Engines.Llm.ChatTemplates;

/// <summary>The functions every template sees: jinja's range, namespace and dict, plus transformers' raise_exception and strftime_now.</summary>
internal static class TemplateGlobals
{
    // The sandbox's cap, so that a template cannot make the worker build a huge list.
    private const long MaxRange = 100_000;

    public static Scope CreateScope(TimeProvider clock)
    {
        var scope = new Scope(null);
        Add(scope, "range", Range);
        Add(scope, "namespace", a => new Namespace(new OrderedDictionary<string, object?>(
            ToDict(a).Select(p => KeyValuePair.Create(p.Key as string ?? throw new ChatTemplateException("TypeError: namespace keys must be strings"), p.Value)))));
        Add(scope, "dict", a => ToDict(a));
        Add(scope, "raise_exception", a => throw new ChatTemplateException(PythonValues.ToStr(a.Get(0, "message"))));
        Add(scope, "strftime_now", a => Strftime(clock.GetLocalNow().DateTime, PythonValues.ToStr(a.Get(0, "format"))));
        return scope;
    }

    private static void Add(Scope scope, string name, Func<CallArguments, object?> body) => scope.Assign(name, new NativeFunction(body));

    private static OrderedDictionary<object, object?> ToDict(CallArguments arguments)
    {
        var dict = new OrderedDictionary<object, object?>();
        if (arguments.Positional.Count > 0)
        {
            if (arguments.Positional[0] is not OrderedDictionary<object, object?> initial)
                throw new ChatTemplateException("TypeError: expected a mapping as positional argument");
            foreach (var (key, value) in initial)
                dict[key] = value;
        }
        foreach (var (key, value) in arguments.Named)
            dict[key] = value;
        return dict;
    }

    private static List<object?> Range(CallArguments arguments)
    {
        var bounds = arguments.Positional.Select(PythonValues.ToLong).ToList();
        var (start, stop, step) = bounds.Count switch
        {
            1 => (0, bounds[0], 1),
            2 => (bounds[0], bounds[1], 1),
            3 => (bounds[0], bounds[1], bounds[2]),
            _ => throw new ChatTemplateException($"TypeError: range expected 1 to 3 arguments, got {bounds.Count}"),
        };
        if (step == 0)
            throw new ChatTemplateException("ValueError: range() arg 3 must not be zero");
        var count = Math.Max(0, (stop - start + step + (step > 0 ? -1 : 1)) / step);
        if (count > MaxRange)
            throw new ChatTemplateException($"OverflowError: Range too big. The sandbox blocks ranges larger than MAX_RANGE ({MaxRange}).");
        var items = new List<object?>((int)count);
        for (var i = 0L; i < count; i++)
            items.Add(start + i * step);
        return items;
    }

    /// <summary>Python's strftime for the directives date-stamping templates use; `%-d` style drops the zero padding as glibc does.</summary>
    private static string Strftime(DateTime now, string format)
    {
        var culture = CultureInfo.InvariantCulture;
        var text = new StringBuilder();
        for (var i = 0; i < format.Length; i++)
        {
            if (format[i] != '%' || i + 1 >= format.Length)
            {
                text.Append(format[i]);
                continue;
            }
            var unpadded = format[i + 1] == '-' && i + 2 < format.Length;
            var directive = format[i + (unpadded ? 2 : 1)];
            i += unpadded ? 2 : 1;
            string Number(int value, int width) => unpadded ? value.ToString(culture) : value.ToString(culture).PadLeft(width, '0');
            text.Append(directive switch
            {
                'Y' => now.Year.ToString(culture),
                'y' => Number(now.Year % 100, 2),
                'm' => Number(now.Month, 2),
                'd' => Number(now.Day, 2),
                'e' => now.Day.ToString(culture).PadLeft(2),
                'H' => Number(now.Hour, 2),
                'I' => Number(now.Hour % 12 == 0 ? 12 : now.Hour % 12, 2),
                'M' => Number(now.Minute, 2),
                'S' => Number(now.Second, 2),
                'p' => now.Hour < 12 ? "AM" : "PM",
                'j' => Number(now.DayOfYear, 3),
                'B' => now.ToString("MMMM", culture),
                'b' or 'h' => now.ToString("MMM", culture),
                'A' => now.ToString("dddd", culture),
                'a' => now.ToString("ddd", culture),
                'F' => now.ToString("yyyy-MM-dd", culture),
                'T' => now.ToString("HH:mm:ss", culture),
                '%' => "%",
                _ => "%" + directive,
            });
        }
        return text.ToString();
    }
}
