namespace MLNode.Worker.Api;

/// <summary>
/// Text deltas of one window as its tokens arrive: the window's text so far is decoded whole each time (a token may
/// hold half a character), and only the settled part is sent — leading and trailing spaces and an incomplete character
/// at the end wait for what follows, so the deltas of a window add up to its trimmed text.
/// </summary>
public sealed class WindowTextDeltas(Func<IReadOnlyList<int>, string> decode)
{
    private const char Replacement = '\uFFFD';
    private readonly List<int> _tokens = [];

    /// <summary>The text sent so far.</summary>
    public string Sent { get; private set; } = "";

    public string Append(int token)
    {
        _tokens.Add(token);
        return Advance(Settled(decode(_tokens))) ?? "";
    }

    /// <summary>
    /// The rest of <paramref name="finalText"/> (the window's trimmed text) after what was sent; null when what was sent
    /// is not its beginning (the engine's text differs from its tokens' decoding).
    /// </summary>
    public string? Finish(string finalText) => Advance(finalText);

    private string? Advance(string text)
    {
        // Decoding more tokens only ever extends the settled text; text already sent is never sent again.
        if (!text.StartsWith(Sent, StringComparison.Ordinal)) return null;
        var delta = text[Sent.Length..];
        Sent = text;
        return delta;
    }

    private static string Settled(string text)
    {
        var settled = text.TrimStart();
        var end = settled.Length;
        while (end > 0 && (char.IsWhiteSpace(settled[end - 1]) || settled[end - 1] == Replacement)) end--;
        return settled[..end];
    }
}
