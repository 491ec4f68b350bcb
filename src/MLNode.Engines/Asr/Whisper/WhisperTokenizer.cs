using System.Globalization;
using MLNode.Engines.Llm.Tokenization;

namespace MLNode.Engines.Asr.Whisper;

/// <summary>
/// Whisper's byte-level BPE with its control tokens: a checkpoint's HF <c>tokenizer.json</c>, or openai's
/// <c>*.tiktoken</c> rank file with the control tokens appended in code in openai's order. Text in and out is plain
/// text: special tokens written in a prompt are encoded as text, and decoding drops control and timestamp tokens.
/// </summary>
public sealed class WhisperTokenizer
{
    /// <summary>Control tokens other than languages and timestamps: end of text, start of transcript, two tasks, four more.</summary>
    private const int FixedSpecialTokens = 8;

    /// <summary>&lt;|0.00|&gt; … &lt;|30.00|&gt;.</summary>
    public const int TimestampTokens = 1501;

    private WhisperTokenizer(ByteLevelBpeTokenizer bpe, WhisperConfig config)
    {
        Bpe = bpe;
        Special = WhisperSpecialTokens.Find(bpe.TokenToId, config);
    }

    public ByteLevelBpeTokenizer Bpe { get; }

    public WhisperSpecialTokens Special { get; }

    /// <summary>The checkpoint's tokenizer.json, else the one <c>*.tiktoken</c> file in <paramref name="folder"/>.</summary>
    public static WhisperTokenizer FromDirectory(string folder, WhisperConfig config)
    {
        if (File.Exists(Path.Combine(folder, "tokenizer.json")))
            return new WhisperTokenizer(ByteLevelBpeTokenizer.FromDirectory(folder), config);
        var rankFiles = Directory.GetFiles(folder, "*.tiktoken");
        return rankFiles.Length == 1
            ? FromTiktoken(rankFiles[0], config)
            : throw new FileNotFoundException($"{folder} has no tokenizer.json and {(rankFiles.Length == 0 ? "no" : "more than one")} *.tiktoken rank file");
    }

    /// <summary>
    /// openai's rank file with the control tokens appended; how many languages the model has is what the vocabulary
    /// leaves room for (99 before large-v3, 100 since).
    /// </summary>
    public static WhisperTokenizer FromTiktoken(string path, WhisperConfig config) =>
        new(TiktokenVocabulary.Load(path, ranks =>
        {
            var languages = config.VocabSize - ranks - FixedSpecialTokens - TimestampTokens;
            if (languages < 0 || languages > WhisperLanguages.Codes.Count)
                throw new InvalidDataException($"{path}: {ranks} ranks leave {languages} language tokens in a {config.VocabSize}-token vocabulary (0..{WhisperLanguages.Codes.Count} expected)");
            return OpenAiSpecialTokens(languages);
        }), config);

    /// <summary>openai-whisper's control tokens in order, as its <c>get_encoding</c> appends them after the ranks.</summary>
    public static IReadOnlyList<string> OpenAiSpecialTokens(int languages) =>
    [
        "<|endoftext|>", "<|startoftranscript|>",
        .. WhisperLanguages.Codes.Take(languages).Select(WhisperLanguages.Token),
        "<|translate|>", "<|transcribe|>", "<|startoflm|>", "<|startofprev|>", "<|nospeech|>", "<|notimestamps|>",
        .. Enumerable.Range(0, TimestampTokens).Select(i => string.Create(CultureInfo.InvariantCulture, $"<|{i * WhisperSpecialTokens.SecondsPerTimestamp:F2}|>")),
    ];

    /// <summary>Tokens of user text; control tokens written in it stay text.</summary>
    public int[] EncodeText(string text) => Bpe.Encode(text, allowSpecial: false);

    /// <summary>The text of <paramref name="ids"/> without control and timestamp tokens.</summary>
    public string Decode(IEnumerable<int> ids) => Bpe.Decode(ids.Where(id => !Bpe.IsSpecial(id) && !Special.IsTimestamp(id)));
}
