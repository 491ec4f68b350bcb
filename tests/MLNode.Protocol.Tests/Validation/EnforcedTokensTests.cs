using MLNode.Protocol.OpenAi;
using MLNode.Protocol.Validation;
using static MLNode.Protocol.Tests.Validation.ValidationFixtures;

namespace MLNode.Protocol.Tests.Validation;

public class EnforcedTokensTests
{
    private const int QwenEos = 151645;

    [Fact]
    public void Parse_ReadsDecimalIds()
    {
        var parse = EnforcedTokens.Parse(new EnforcedTokenList([new("24", ["24", "23", "0"]), new("151645")]));

        Assert.Empty(parse.Errors);
        Assert.Equal([24, 151645], parse.Ids!.TokenIds);
        Assert.Equal([24, 23, 0], parse.Ids.TopTokenIds[0]);
        Assert.Empty(parse.Ids.TopTokenIds[1]);
    }

    [Theory]
    [InlineData("Okay")]
    [InlineData("-1")]
    [InlineData("+5")]
    [InlineData(" 5")]
    [InlineData("1.0")]
    [InlineData("99999999999")]
    [InlineData("<EMPTY>")]
    public void Parse_RejectsWhatIsNotATokenId(string token)
    {
        var parse = EnforcedTokens.Parse(new EnforcedTokenList([new("7", ["7", token])]));

        Assert.Null(parse.Ids);
        Assert.Equal("body.enforced_tokens.tokens.0.top_tokens.1", Assert.Single(parse.Errors).Field);
    }

    [Fact]
    public void Parse_RecordedExecutorContentHasDecodedText()
    {
        // These responses predate the fork's id strings: dapi would refuse them, and so does the parser.
        var parse = EnforcedTokens.Parse(EnforcedTokens.FromContent(Content(HonestExecutor)));

        Assert.Null(parse.Ids);
        Assert.Equal("body.enforced_tokens.tokens.0.token", parse.Errors[0].Field);
    }

    [Fact]
    public void Parse_EnforcesTheForksCeilings()
    {
        var tooManyTop = new EnforcedTokenList([new("1", [.. Enumerable.Repeat("2", EnforcedTokens.MaxTopTokensPerPosition + 1)])]);
        var tooLong = new EnforcedTokenList([.. Enumerable.Repeat(new EnforcedToken("1"), EnforcedTokens.MaxPositions + 1)]);

        Assert.Equal("body.enforced_tokens.tokens.0.top_tokens", Assert.Single(EnforcedTokens.Parse(tooManyTop).Errors).Field);
        Assert.Equal("body.enforced_tokens.tokens", Assert.Single(EnforcedTokens.Parse(tooLong).Errors).Field);
    }

    [Fact]
    public void AppendEos_OnlyWhenTheLastIdIsNotEos()
    {
        Assert.Equal([1, 2, 3, QwenEos], EnforcedTokens.AppendEos([1, 2, 3], QwenEos));
        Assert.Equal([1, QwenEos], EnforcedTokens.AppendEos([1, QwenEos], QwenEos));
        Assert.Equal([QwenEos, 1, QwenEos], EnforcedTokens.AppendEos([QwenEos, 1], QwenEos));
        Assert.Equal([QwenEos], EnforcedTokens.AppendEos([], QwenEos));
    }

    [Theory]
    [InlineData(HonestExecutor, LogprobsMode.Raw)]      // 0 of 300 top tokens are padding
    [InlineData(Int4Executor, LogprobsMode.Processed)]  // 170 of 300 are "!" or "\"" at −9999
    [InlineData(Fp8Validator, LogprobsMode.Processed)]
    public void DetectLogprobsMode_OnTheRecordedResponses(string file, string mode)
    {
        Assert.Equal(mode, EnforcedTokens.DetectLogprobsMode(QwenIds(Content(file))));
    }

    [Fact]
    public void DetectLogprobsMode_TenPercentIsStillRaw()
    {
        static EnforcedTokenIds Ids(int padding) =>
            new([.. Enumerable.Repeat(5, 10)], [.. Enumerable.Range(0, 10).Select(i => (IReadOnlyList<int>)[i < padding ? 3 : 4])]);

        Assert.Equal(LogprobsMode.Raw, EnforcedTokens.DetectLogprobsMode(Ids(1)));
        Assert.Equal(LogprobsMode.Processed, EnforcedTokens.DetectLogprobsMode(Ids(2)));
        Assert.Null(EnforcedTokens.DetectLogprobsMode(new EnforcedTokenIds([1], [[0, 0, 0, 0, 0, 0, 0, 0, 0]])));
    }

    /// <summary>
    /// The recorded responses carry decoded text, so their ids are recovered the way the fork's fallback tokenizer
    /// would for the padding: Qwen's byte-level vocabulary starts with the printable bytes '!'…'~' as ids 0…93, so a
    /// one-byte printable token's id is its byte − 33. Every other token stands in as id 1000 (≥ 4 is all that matters).
    /// </summary>
    private static EnforcedTokenIds QwenIds(IReadOnlyList<ChatCompletionLogprob> content)
    {
        static int Id(string token) => token is [var c] && c is >= '!' and <= '~' ? c - '!' : 1000;
        return new([.. content.Select(p => Id(p.Token))], [.. content.Select(p => (IReadOnlyList<int>)[.. p.TopLogprobs.Select(t => Id(t.Token))])]);
    }
}
