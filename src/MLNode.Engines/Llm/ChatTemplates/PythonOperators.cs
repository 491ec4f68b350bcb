namespace MLNode.Engines.Llm.ChatTemplates;

/// <summary>Python's arithmetic, concatenation and membership, with its TypeError messages for mismatched operands.</summary>
internal static class PythonOperators
{
    public static object? Apply(string op, object? left, object? right)
    {
        if (left is Undefined undefinedLeft)
            throw undefinedLeft.Error();
        if (right is Undefined undefinedRight)
            throw undefinedRight.Error();
        return op switch
        {
            "+" => Add(left, right),
            "-" => Numeric(op, left, right, (a, b) => a - b, (a, b) => a - b),
            "*" => Multiply(left, right),
            "/" => Divide(left, right),
            "//" => FloorDivide(left, right),
            "%" => Modulo(left, right),
            "**" => Power(left, right),
            _ => throw new ChatTemplateException($"unknown operator {op}"),
        };
    }

    private static object? Add(object? left, object? right) => (left, right) switch
    {
        (string a, string b) => a + b,
        (List<object?> a, List<object?> b) => new List<object?>([.. a, .. b]),
        (object?[] a, object?[] b) => (object?[])[.. a, .. b],
        (string or List<object?> or object?[], _) => throw new ChatTemplateException(
            $"TypeError: can only concatenate {PythonValues.TypeName(left)} (not \"{PythonValues.TypeName(right)}\") to {PythonValues.TypeName(left)}"),
        _ => Numeric("+", left, right, (a, b) => a + b, (a, b) => a + b),
    };

    private static object? Multiply(object? left, object? right) => (left, right) switch
    {
        (string s, _) when PythonValues.IsInteger(right) => Repeat(s, PythonValues.ToLong(right)),
        (_, string s) when PythonValues.IsInteger(left) => Repeat(s, PythonValues.ToLong(left)),
        (List<object?> list, _) when PythonValues.IsInteger(right) => RepeatList(list, PythonValues.ToLong(right)),
        (_, List<object?> list) when PythonValues.IsInteger(left) => RepeatList(list, PythonValues.ToLong(left)),
        _ => Numeric("*", left, right, (a, b) => a * b, (a, b) => a * b),
    };

    private static string Repeat(string s, long times) => times <= 0 ? "" : string.Concat(Enumerable.Repeat(s, (int)times));

    private static List<object?> RepeatList(List<object?> list, long times) =>
        times <= 0 ? [] : [.. Enumerable.Repeat(list, (int)times).SelectMany(l => l)];

    private static object? Divide(object? left, object? right)
    {
        RequireNumbers("/", left, right);
        var divisor = PythonValues.ToDouble(right);
        if (divisor == 0)
            throw new ChatTemplateException("ZeroDivisionError: division by zero");
        return PythonValues.ToDouble(left) / divisor;
    }

    private static object? FloorDivide(object? left, object? right)
    {
        RequireNumbers("//", left, right);
        if (PythonValues.ToDouble(right) == 0)
            throw new ChatTemplateException("ZeroDivisionError: integer division or modulo by zero");
        if (left is double || right is double)
            return Math.Floor(PythonValues.ToDouble(left) / PythonValues.ToDouble(right));
        return FloorDiv(PythonValues.ToLong(left), PythonValues.ToLong(right));
    }

    private static long FloorDiv(long a, long b)
    {
        var quotient = a / b;
        return (a % b != 0 && (a < 0) != (b < 0)) ? quotient - 1 : quotient;
    }

    private static object? Modulo(object? left, object? right)
    {
        if (left is string format)
            return PercentFormat.Apply(format, right);
        RequireNumbers("%", left, right);
        if (PythonValues.ToDouble(right) == 0)
            throw new ChatTemplateException("ZeroDivisionError: integer division or modulo by zero");
        if (left is double || right is double)
        {
            double a = PythonValues.ToDouble(left), b = PythonValues.ToDouble(right);
            return a - b * Math.Floor(a / b);
        }
        long x = PythonValues.ToLong(left), y = PythonValues.ToLong(right);
        return x - y * FloorDiv(x, y);
    }

    private static object? Power(object? left, object? right)
    {
        RequireNumbers("**", left, right);
        if (PythonValues.ToDouble(left) == 0 && PythonValues.ToDouble(right) < 0)
            throw new ChatTemplateException("ZeroDivisionError: 0.0 cannot be raised to a negative power");
        if (left is double || right is double || PythonValues.ToLong(right) < 0)
            return Math.Pow(PythonValues.ToDouble(left), PythonValues.ToDouble(right));
        long result = 1, power = PythonValues.ToLong(left);
        for (var exponent = PythonValues.ToLong(right); exponent > 0; exponent--)
            result = checked(result * power);
        return result;
    }

    private static object? Numeric(string op, object? left, object? right, Func<long, long, long> onIntegers, Func<double, double, double> onFloats)
    {
        RequireNumbers(op, left, right);
        if (left is double || right is double)
            return onFloats(PythonValues.ToDouble(left), PythonValues.ToDouble(right));
        return checked(onIntegers(PythonValues.ToLong(left), PythonValues.ToLong(right)));
    }

    private static void RequireNumbers(string op, object? left, object? right)
    {
        if (!PythonValues.IsNumber(left) || !PythonValues.IsNumber(right))
            throw new ChatTemplateException(
                $"TypeError: unsupported operand type(s) for {(op == "**" ? "** or pow()" : op)}: '{PythonValues.TypeName(left)}' and '{PythonValues.TypeName(right)}'");
    }

    public static object? Negate(object? value) => value switch
    {
        Undefined u => throw u.Error(),
        double d => (object)-d,
        _ when PythonValues.IsInteger(value) => -PythonValues.ToLong(value),
        _ => throw new ChatTemplateException($"TypeError: bad operand type for unary -: '{PythonValues.TypeName(value)}'"),
    };

    /// <summary>Python's `item in container`.</summary>
    public static bool Contains(object? container, object? item) => container switch
    {
        string s when item is string part => s.Contains(part, StringComparison.Ordinal),
        string => throw new ChatTemplateException($"TypeError: 'in <string>' requires string as left operand, not {PythonValues.TypeName(item)}"),
        OrderedDictionary<object, object?> when item is List<object?> or OrderedDictionary<object, object?> =>
            throw new ChatTemplateException($"TypeError: unhashable type: '{PythonValues.TypeName(item)}'"),
        OrderedDictionary<object, object?> dict => item is not null && dict.ContainsKey(item),
        Undefined => false,
        Namespace ns => item is string name && ns.Attributes.ContainsKey(name),
        List<object?> or object?[] => PythonValues.Iterate(container).Any(element => PythonValues.AreEqual(element, item)),
        _ => throw new ChatTemplateException($"TypeError: argument of type '{PythonValues.TypeName(container)}' is not iterable"),
    };
}
