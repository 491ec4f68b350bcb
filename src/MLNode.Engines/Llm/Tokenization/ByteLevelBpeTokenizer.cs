using System.Runtime.InteropServices;
using System.Text;
using System.Text.Json;

namespace MLNode.Engines.Llm.Tokenization;

/// <summary>
/// A HF <c>tokenizer.json</c> of the Qwen kind (byte-level BPE, as Qwen2/Qwen3 ship it) reproduced id for id:
/// added tokens are cut out first, the rest is normalized, pre-tokenized and merged; decoding maps tokens back to
/// bytes and reads them as UTF-8 with U+FFFD for ill-formed sequences. Thread-safe once loaded.
/// </summary>
public sealed class ByteLevelBpeTokenizer
{
    private readonly BpeModel _model;
    private readonly TextNormalizer _normalizer;
    private readonly PreTokenizer _preTokenizer;
    private readonly AddedTokenSplitter _rawAddedTokens;
    private readonly AddedTokenSplitter _normalizedAddedTokens;
    private readonly Dictionary<string, int> _addedTokenIds;
    private readonly string?[] _tokens;
    private readonly byte[]?[] _tokenBytes;
    private readonly bool[] _special;

    private ByteLevelBpeTokenizer(JsonElement tokenizer, TokenizerConfig config)
    {
        RequireByteLevel(tokenizer, "decoder", allowNull: false);
        RequireByteLevel(tokenizer, "post_processor", allowNull: true);
        _model = BpeModel.FromJson(tokenizer.GetProperty("model"));
        _normalizer = TextNormalizer.FromJson(Property(tokenizer, "normalizer"));
        _preTokenizer = PreTokenizer.FromJson(Property(tokenizer, "pre_tokenizer"));
        AddedTokens = tokenizer.TryGetProperty("added_tokens", out var added) ? added.EnumerateArray().Select(AddedToken.FromJson).ToArray() : [];
        _rawAddedTokens = new AddedTokenSplitter(AddedTokens.Where(token => !token.Normalized), content => content);
        _normalizedAddedTokens = new AddedTokenSplitter(AddedTokens.Where(token => token.Normalized), _normalizer.Normalize);
        _addedTokenIds = AddedTokens.GroupBy(token => token.Content).ToDictionary(group => group.Key, group => group.First().Id, StringComparer.Ordinal);

        VocabSize = Math.Max(_model.Vocab.Values.DefaultIfEmpty(-1).Max(), AddedTokens.Select(token => token.Id).DefaultIfEmpty(-1).Max()) + 1;
        _tokens = new string?[VocabSize];
        foreach (var (token, id) in _model.Vocab)
            _tokens[id] = token;
        _special = new bool[VocabSize];
        foreach (var token in AddedTokens)
        {
            _tokens[token.Id] = token.Content;
            _special[token.Id] = token.Special;
        }
        // HF's ByteLevel decoder reads a token through the byte alphabet, or as its own UTF-8 when it has other characters.
        _tokenBytes = _tokens.Select(token => token is null ? null : ByteLevelAlphabet.TryToBytes(token) ?? Encoding.UTF8.GetBytes(token)).ToArray();

        Config = config;
        EosTokenId = IdOf(config.EosToken);
        PadTokenId = IdOf(config.PadToken);
        BosTokenId = IdOf(config.BosToken);
    }

    /// <summary>Ids run from 0 to <see cref="VocabSize"/> - 1 (the model's embedding may have more rows).</summary>
    public int VocabSize { get; }

    public IReadOnlyList<AddedToken> AddedTokens { get; }

    public TokenizerConfig Config { get; }

    public int? EosTokenId { get; }

    public int? PadTokenId { get; }

    public int? BosTokenId { get; }

    /// <summary>
    /// Loads <c>tokenizer.json</c> and, when present, <c>tokenizer_config.json</c> from a model folder; without a
    /// tokenizer.json, Qwen's <c>vocab.json</c> + <c>merges.txt</c> (see <see cref="Qwen2TokenizerFiles"/>).
    /// </summary>
    public static ByteLevelBpeTokenizer FromDirectory(string folder)
    {
        var configPath = Path.Combine(folder, "tokenizer_config.json");
        var config = File.Exists(configPath) ? TokenizerConfig.FromFile(configPath) : TokenizerConfig.None;
        var tokenizerJson = Path.Combine(folder, "tokenizer.json");
        if (File.Exists(tokenizerJson) || !Qwen2TokenizerFiles.ArePresent(folder))
            return FromFiles(tokenizerJson, config);
        using var document = Qwen2TokenizerFiles.ToTokenizerJson(folder);
        return new ByteLevelBpeTokenizer(document.RootElement, config);
    }

    /// <summary>Whether <paramref name="folder"/> holds a tokenizer <see cref="FromDirectory"/> can load.</summary>
    public static bool ExistsIn(string folder) => File.Exists(Path.Combine(folder, "tokenizer.json")) || Qwen2TokenizerFiles.ArePresent(folder);

    public static ByteLevelBpeTokenizer FromFiles(string tokenizerJsonPath, TokenizerConfig config)
    {
        using var document = JsonDocument.Parse(File.ReadAllBytes(tokenizerJsonPath));
        return new ByteLevelBpeTokenizer(document.RootElement, config);
    }

    /// <summary>
    /// Token ids of <paramref name="text"/>. With <paramref name="allowSpecial"/> false, special tokens written in the
    /// text are tokenized as ordinary text (HF's <c>encode_special_tokens</c>), so user text cannot inject them.
    /// </summary>
    public int[] Encode(string text, bool allowSpecial = true)
    {
        var ids = new List<int>();
        foreach (var raw in _rawAddedTokens.Split(text, allowSpecial))
        {
            if (raw.IsAddedToken)
            {
                ids.Add(raw.TokenId);
                continue;
            }
            foreach (var segment in _normalizedAddedTokens.Split(_normalizer.Normalize(raw.Text), allowSpecial))
            {
                if (segment.IsAddedToken)
                    ids.Add(segment.TokenId);
                else
                    foreach (var preToken in _preTokenizer.PreTokenize(segment.Text))
                        _model.Tokenize(preToken, ids);
            }
        }
        return ids.ToArray();
    }

    /// <summary>Text of <paramref name="ids"/>; like HF, ids outside the vocabulary are skipped.</summary>
    public string Decode(IEnumerable<int> ids, bool skipSpecialTokens = false)
    {
        var bytes = new List<byte>();
        foreach (var id in ids)
            AppendBytes(id, skipSpecialTokens, bytes);
        return Encoding.UTF8.GetString(CollectionsMarshal.AsSpan(bytes));
    }

    public int? TokenToId(string token) =>
        _addedTokenIds.TryGetValue(token, out var id) || _model.Vocab.TryGetValue(token, out id) ? id : null;

    /// <summary>The token as the vocabulary writes it (byte-level alphabet for BPE tokens), or null for an unknown id.</summary>
    public string? IdToToken(int id) => (uint)id < (uint)VocabSize ? _tokens[id] : null;

    public bool IsSpecial(int id) => (uint)id < (uint)VocabSize && _special[id];

    internal void AppendBytes(int id, bool skipSpecialTokens, List<byte> bytes)
    {
        if ((uint)id >= (uint)VocabSize || _tokenBytes[id] is not { } tokenBytes || (skipSpecialTokens && _special[id]))
            return;
        bytes.AddRange(tokenBytes);
    }

    private int? IdOf(string? token) => token is null ? null : TokenToId(token);

    private static JsonElement Property(JsonElement tokenizer, string name) =>
        tokenizer.TryGetProperty(name, out var value) ? value : default;

    private static void RequireByteLevel(JsonElement tokenizer, string name, bool allowNull)
    {
        var step = Property(tokenizer, name);
        if (step.ValueKind is JsonValueKind.Null or JsonValueKind.Undefined ? allowNull : step.GetProperty("type").GetString() == "ByteLevel")
            return;
        throw new NotSupportedException($"tokenizer.json {name} must be ByteLevel{(allowNull ? " or null" : "")}");
    }
}
