using System.Text.Json;
using System.Text.Json.Nodes;
using MLNode.Engines.Llm.ChatTemplates;

namespace MLNode.Engines.Tests.ChatTemplates;

public sealed class ChatTemplateApiTests
{
    private static readonly JsonElement Messages = JsonDocument.Parse("""[{"role": "user", "content": "Hi"}]""").RootElement;

    /// <summary>transformers always passes tools and documents, None when absent, so `is defined` holds and `is none` tells.</summary>
    [Fact]
    public void RenderChat_passes_the_variables_transformers_passes()
    {
        var template = ChatTemplate.Parse(
            "{{ tools is defined }} {{ tools is none }} {{ documents is none }} {{ add_generation_prompt }} {{ messages[0].content }} {{ bos_token }}{{ enable_thinking }}");

        Assert.Equal("True True True False Hi <s>", template.RenderChat(Messages, addGenerationPrompt: false,
            specialTokens: new Dictionary<string, string> { ["bos_token"] = "<s>" }));
        Assert.Equal("True False True True Hi [BOS]False", template.RenderChat(Messages, addGenerationPrompt: true,
            tools: JsonDocument.Parse("[]").RootElement,
            specialTokens: new Dictionary<string, string> { ["bos_token"] = "<s>" },
            chatTemplateKwargs: new Dictionary<string, object?> { ["bos_token"] = "[BOS]", ["enable_thinking"] = false }));
    }

    [Fact]
    public void Render_takes_json_nodes_and_plain_dotnet_values()
    {
        var template = ChatTemplate.Parse("{{ node.a[1] }} {{ plain.k }} {{ numbers|sum }} {{ ratio }} {{ flag }}");
        var variables = new Dictionary<string, object?>
        {
            ["node"] = JsonNode.Parse("""{"a": [1, "two"]}"""),
            ["plain"] = new Dictionary<string, object?> { ["k"] = "v" },
            ["numbers"] = new[] { 1, 2, 3 },
            ["ratio"] = 0.5f,
            ["flag"] = true,
        };

        Assert.Equal("two v 6 0.5 True", template.Render(variables));
    }

    [Fact]
    public void Raise_exception_carries_the_template_message()
    {
        var template = ChatTemplate.Parse("{% if messages|length > 0 %}{{ raise_exception('Conversation roles must alternate') }}{% endif %}");

        Assert.Equal("Conversation roles must alternate",
            Assert.Throws<ChatTemplateException>(() => template.RenderChat(Messages, addGenerationPrompt: true)).Message);
    }

    [Fact]
    public void Strftime_now_formats_the_clock_in_local_time()
    {
        var clock = new FixedClock(new DateTimeOffset(2026, 3, 7, 14, 5, 9, TimeSpan.Zero));
        var template = ChatTemplate.Parse("{{ strftime_now('%Y-%m-%d %H:%M:%S %d %B %Y, %A %-d %b') }}", clock);

        Assert.Equal("2026-03-07 14:05:09 07 March 2026, Saturday 7 Mar", template.Render(new Dictionary<string, object?>()));
    }

    /// <summary>Nothing of one render lives in the parsed template, so concurrent renders of block captures do not mix.</summary>
    [Fact]
    public void One_parsed_template_renders_on_many_threads()
    {
        var template = ChatTemplate.Parse("{% set block %}{% for i in range(n) %}{{ i }}{% endfor %}{% endset %}{{ block|length }}");

        Parallel.For(0, 200, n => Assert.Equal(string.Concat(Enumerable.Range(0, n)).Length.ToString(),
            template.Render(new Dictionary<string, object?> { ["n"] = n })));
    }

    /// <summary>Which pair the sort compares first is the sort's business; that mixing str and int fails is Python's.</summary>
    [Fact]
    public void Sorting_values_python_cannot_order_is_a_type_error()
    {
        var template = ChatTemplate.Parse("{{ ['a', 1]|sort }}");

        Assert.StartsWith("TypeError: '<' not supported between instances of", Assert.Throws<ChatTemplateException>(() => template.Render(new Dictionary<string, object?>())).Message);
    }

    [Fact]
    public void Runaway_recursion_is_a_template_error()
    {
        var template = ChatTemplate.Parse("{% macro forever(n) %}{{ forever(n + 1) }}{% endmacro %}{{ forever(0) }}");

        Assert.StartsWith("RecursionError", Assert.Throws<ChatTemplateException>(() => template.Render(new Dictionary<string, object?>())).Message);
    }

    private sealed class FixedClock(DateTimeOffset now) : TimeProvider
    {
        public override DateTimeOffset GetUtcNow() => now;

        public override TimeZoneInfo LocalTimeZone => TimeZoneInfo.Utc;
    }
}
