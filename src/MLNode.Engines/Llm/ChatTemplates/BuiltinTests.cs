namespace MLNode.Engines.Llm.ChatTemplates;

/// <summary>jinja2's built-in tests, the right-hand side of `value is name`.</summary>
internal static class BuiltinTests
{
    public delegate bool Test(object? value, CallArguments arguments);

    private static readonly Dictionary<string, Test> Tests = new()
    {
        ["defined"] = (v, _) => v is not Undefined,
        ["undefined"] = (v, _) => v is Undefined,
        ["none"] = (v, _) => v is null,
        ["boolean"] = (v, _) => v is bool,
        ["true"] = (v, _) => v is true,
        ["false"] = (v, _) => v is false,
        ["integer"] = (v, _) => v is long,
        ["float"] = (v, _) => v is double,
        // bool is an int in Python, so it is a number too.
        ["number"] = (v, _) => PythonValues.IsNumber(v),
        ["string"] = (v, _) => v is string,
        ["mapping"] = (v, _) => v is OrderedDictionary<object, object?>,
        ["iterable"] = (v, _) => v is string or List<object?> or object?[] or OrderedDictionary<object, object?> or Undefined,
        ["sequence"] = (v, _) => v is string or List<object?> or object?[] or OrderedDictionary<object, object?> or Undefined,
        ["callable"] = (v, _) => v is ITemplateCallable,
        // Python's modulo, so that floats are odd or even only when whole.
        ["odd"] = (v, _) => PythonValues.AreEqual(PythonOperators.Apply("%", v, 2L), 1L),
        ["even"] = (v, _) => PythonValues.AreEqual(PythonOperators.Apply("%", v, 2L), 0L),
        ["divisibleby"] = (v, a) => PythonValues.AreEqual(PythonOperators.Apply("%", v, a.Get(0, "num")), 0L),
        ["eq"] = Equal,
        ["equalto"] = Equal,
        ["=="] = Equal,
        ["ne"] = (v, a) => !Equal(v, a),
        ["!="] = (v, a) => !Equal(v, a),
        ["lt"] = (v, a) => PythonValues.Compare(v, a.Get(0, "other"), "<") < 0,
        ["lessthan"] = (v, a) => PythonValues.Compare(v, a.Get(0, "other"), "<") < 0,
        ["le"] = (v, a) => PythonValues.Compare(v, a.Get(0, "other"), "<=") <= 0,
        ["gt"] = (v, a) => PythonValues.Compare(v, a.Get(0, "other"), ">") > 0,
        ["greaterthan"] = (v, a) => PythonValues.Compare(v, a.Get(0, "other"), ">") > 0,
        ["ge"] = (v, a) => PythonValues.Compare(v, a.Get(0, "other"), ">=") >= 0,
        ["in"] = (v, a) => PythonOperators.Contains(a.Get(0, "seq"), v),
        ["lower"] = (v, _) => BuiltinMethods.IsLower(PythonValues.ToStr(v)),
        ["upper"] = (v, _) => BuiltinMethods.IsUpper(PythonValues.ToStr(v)),
        ["sameas"] = (v, a) => a.Get(0, "other") is var other && (v is null or bool ? Equals(v, other) : ReferenceEquals(v, other)),
        ["escaped"] = (_, _) => false,
    };

    public static Test Find(string name) =>
        Tests.TryGetValue(name, out var test) ? test : throw new ChatTemplateException($"No test named '{name}'.");

    private static bool Equal(object? value, CallArguments arguments) => PythonValues.AreEqual(value, arguments.Get(0, "other"));
}
