using System.Text.Json;
using MLNode.Engines.Llm.ChatTemplates;
using MLNode.Tests;

namespace MLNode.Engines.Tests.ChatTemplates;

/// <summary>Every case of fixtures/chat-templates/rendered.json: what Python jinja2 rendered (or raised), reproduced exactly.</summary>
public sealed class RenderedFixtureTests
{
    private static readonly JsonElement Fixture = JsonDocument.Parse(File.ReadAllText(Fixtures.Path("chat-templates", "rendered.json"))).RootElement;

    public static TheoryData<string> CaseIds()
    {
        var ids = new TheoryData<string>();
        foreach (var fixtureCase in Fixture.GetProperty("cases").EnumerateArray())
            ids.Add(Id(fixtureCase));
        return ids;
    }

    private static string Id(JsonElement fixtureCase) =>
        $"{fixtureCase.GetProperty("template").GetString()} / {fixtureCase.GetProperty("conversation").GetString()} / {fixtureCase.GetProperty("variant").GetString()}";

    [Theory]
    [MemberData(nameof(CaseIds))]
    public void Renders_like_jinja2(string id)
    {
        var fixtureCase = Fixture.GetProperty("cases").EnumerateArray().Single(c => Id(c) == id);
        var template = ChatTemplate.Parse(File.ReadAllText(Fixtures.Path("chat-templates", fixtureCase.GetProperty("template").GetString()!)));
        var conversation = Fixture.GetProperty("conversations").GetProperty(fixtureCase.GetProperty("conversation").GetString()!);
        var kwargs = fixtureCase.GetProperty("kwargs");
        var specialTokens = new Dictionary<string, string>
        {
            ["bos_token"] = kwargs.GetProperty("bos_token").GetString()!,
            ["eos_token"] = kwargs.GetProperty("eos_token").GetString()!,
        };
        var templateKwargs = new Dictionary<string, object?>();
        if (kwargs.TryGetProperty("enable_thinking", out var enableThinking))
            templateKwargs["enable_thinking"] = enableThinking.GetBoolean();
        string Render() => template.RenderChat(
            conversation.GetProperty("messages"),
            kwargs.GetProperty("add_generation_prompt").GetBoolean(),
            conversation.TryGetProperty("tools", out var tools) ? tools : null,
            specialTokens,
            templateKwargs);

        if (fixtureCase.GetProperty("error").GetString() is { } error)
        {
            var exception = Assert.Throws<ChatTemplateException>(Render);
            Assert.Equal(error, exception.Message);
        }
        else
        {
            Assert.Equal(fixtureCase.GetProperty("rendered").GetString(), Render());
        }
    }
}
