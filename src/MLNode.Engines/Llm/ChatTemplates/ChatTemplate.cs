using System.Collections;
using System.Runtime.CompilerServices;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace MLNode.Engines.Llm.ChatTemplates;

/// <summary>
/// A parsed Hugging Face chat template (a jinja2 template), rendered the way transformers'
/// apply_chat_template renders it: sandboxed jinja2 with trim_blocks, lstrip_blocks, the loopcontrols
/// extension, tojson without ASCII escaping, and raise_exception / strftime_now as globals.
/// Parse once per model; a parsed template holds no render state and renders on any number of threads.
/// </summary>
public sealed class ChatTemplate
{
    private readonly IReadOnlyList<Statement> body;
    private readonly TimeProvider clock;

    private ChatTemplate(IReadOnlyList<Statement> body, TimeProvider clock)
    {
        this.body = body;
        this.clock = clock;
    }

    /// <exception cref="ChatTemplateException">The template has a syntax error or uses an unknown filter or test.</exception>
    public static ChatTemplate Parse(string source, TimeProvider? clock = null) =>
        new(Guarded(() => TemplateParser.Parse(source)), clock ?? TimeProvider.System);

    /// <summary>Renders with the given variables: JSON (JsonElement, JsonNode), strings, numbers, booleans, null, dictionaries and lists of these.</summary>
    /// <exception cref="ChatTemplateException">The template raised an exception or misused a value.</exception>
    public string Render(IReadOnlyDictionary<string, object?> variables)
    {
        var scope = new Scope(TemplateGlobals.CreateScope(clock));
        foreach (var (name, value) in variables)
            scope.Assign(name, ToTemplateValue(value));
        var output = new StringBuilder();
        Guarded(() => Statement.RenderAll(body, scope, output));
        return output.ToString();
    }

    /// <summary>
    /// Renders a conversation with the variables transformers passes: messages, tools (None without tools),
    /// documents (None), add_generation_prompt, the tokenizer's special tokens (bos_token, eos_token, ...),
    /// and the request's chat_template_kwargs (enable_thinking, ...), which override special tokens.
    /// </summary>
    public string RenderChat(
        JsonElement messages,
        bool addGenerationPrompt,
        JsonElement? tools = null,
        IReadOnlyDictionary<string, string>? specialTokens = null,
        IReadOnlyDictionary<string, object?>? chatTemplateKwargs = null)
    {
        var variables = new Dictionary<string, object?>();
        foreach (var (name, token) in specialTokens ?? new Dictionary<string, string>())
            variables[name] = token;
        foreach (var (name, value) in chatTemplateKwargs ?? new Dictionary<string, object?>())
            variables[name] = value;
        variables["messages"] = messages;
        variables["tools"] = tools is { ValueKind: not JsonValueKind.Null } ? tools : null;
        variables["documents"] = null;
        variables["add_generation_prompt"] = addGenerationPrompt;
        return Render(variables);
    }

    private static object? ToTemplateValue(object? value) => value switch
    {
        null or bool or long or double or string => value,
        int or short or byte or uint => Convert.ToInt64(value),
        float or decimal => Convert.ToDouble(value),
        JsonElement element => JsonValues.FromJson(element),
        JsonNode node => JsonValues.FromJson(JsonSerializer.SerializeToElement(node)),
        IDictionary dict => new OrderedDictionary<object, object?>(dict.Keys.Cast<object>()
            .Select(key => KeyValuePair.Create(key, ToTemplateValue(dict[key])))),
        IEnumerable<KeyValuePair<string, object?>> pairs => new OrderedDictionary<object, object?>(pairs
            .Select(pair => KeyValuePair.Create<object, object?>(pair.Key, ToTemplateValue(pair.Value)))),
        IEnumerable items => new List<object?>(items.Cast<object?>().Select(ToTemplateValue)),
        _ => throw new ArgumentException($"a {value.GetType().Name} cannot be passed to a chat template", nameof(value)),
    };

    /// <summary>Turns the failures a hostile or broken template can cause in .NET itself into template errors.</summary>
    private static T Guarded<T>(Func<T> action)
    {
        try
        {
            return action();
        }
        catch (OverflowException)
        {
            throw new ChatTemplateException("OverflowError: integer result too large");
        }
        catch (InsufficientExecutionStackException)
        {
            throw new ChatTemplateException("RecursionError: maximum recursion depth exceeded");
        }
        catch (InvalidOperationException e) when (e.InnerException is ChatTemplateException comparison)
        {
            // Sorting wraps the TypeError of comparing, say, a str with an int.
            throw comparison;
        }
    }

    /// <summary>Called where template recursion (macros calling themselves, deep nesting) could exhaust the stack.</summary>
    internal static void EnsureStack() => RuntimeHelpers.EnsureSufficientExecutionStack();
}
