namespace MLNode.Engines.Dit.Text;

/// <summary>
/// How the Wan pipelines (official and diffusers) tokenise a prompt for umT5: <c>encode(prompt) + [eos]</c>, cut to
/// the text length as transformers' truncation does (the text shortened, eos kept). The pipelines then pad the
/// ids with the pad id to the text length under an attention mask that is 1 on the real tokens; masked keys
/// get no attention weight, so running the encoder on the real tokens alone gives the same embeddings.
/// </summary>
public static class WanPromptTokens
{
    /// <summary>Wan2.2's text length (<c>text_len</c>): umT5 sees at most this many tokens.</summary>
    public const int TextLength = 512;

    public static int[] Ids(SentencePieceTokenizer tokenizer, string prompt, int maxLength = TextLength)
    {
        ArgumentNullException.ThrowIfNull(tokenizer);
        ArgumentOutOfRangeException.ThrowIfLessThan(maxLength, 1);
        if (tokenizer.EosId < 0) throw new InvalidOperationException("the tokenizer's model defines no eos piece");
        var text = tokenizer.Encode(prompt);
        return [.. text.AsSpan(0, Math.Min(text.Length, maxLength - 1)), tokenizer.EosId];
    }
}
