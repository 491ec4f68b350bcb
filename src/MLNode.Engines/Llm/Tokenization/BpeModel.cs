using System.Collections.Concurrent;
using System.Text;
using System.Text.Json;

namespace MLNode.Engines.Llm.Tokenization;

/// <summary>
/// The byte-level BPE model of a <c>tokenizer.json</c>: a pre-token's UTF-8 bytes start as one symbol each
/// and the lowest-ranked adjacent pair is merged (leftmost first on ties) until no pair has a merge,
/// exactly as HF <c>tokenizers</c> does it.
/// </summary>
internal sealed class BpeModel
{
    // HF's BPE cache holds 10 000 words; long pre-tokens are rare and not worth keeping.
    private const int CacheCapacity = 10_000;
    private const int MaxCachedLength = 256;

    private readonly Dictionary<long, Merge> _merges;
    private readonly int[] _byteIds;
    private readonly bool _ignoreMerges;
    private readonly ConcurrentDictionary<string, int[]> _cache = new(StringComparer.Ordinal);
    // ConcurrentDictionary.Count takes every lock; a counter of our own keeps cache misses cheap.
    private int _cachedCount;

    private readonly record struct Merge(int Rank, int Id);

    private BpeModel(Dictionary<string, int> vocab, Dictionary<long, Merge> merges, bool ignoreMerges)
    {
        Vocab = vocab;
        _merges = merges;
        _ignoreMerges = ignoreMerges;
        _byteIds = Enumerable.Range(0, 256).Select(b => vocab.GetValueOrDefault(ByteLevelAlphabet.ToChar((byte)b).ToString(), -1)).ToArray();
    }

    /// <summary>Token text (in the byte-level alphabet) to id.</summary>
    public IReadOnlyDictionary<string, int> Vocab { get; }

    /// <summary>Reads the <c>model</c> object of a <c>tokenizer.json</c>; merges may be "a b" strings or [a, b] pairs.</summary>
    public static BpeModel FromJson(JsonElement model)
    {
        var type = model.GetProperty("type").GetString();
        if (type != "BPE")
            throw new NotSupportedException($"tokenizer model '{type}' is not supported; only byte-level BPE is");
        if (model.TryGetProperty("byte_fallback", out var byteFallback) && byteFallback.GetBoolean())
            throw new NotSupportedException("BPE byte_fallback is not supported");

        var vocab = new Dictionary<string, int>(StringComparer.Ordinal);
        foreach (var entry in model.GetProperty("vocab").EnumerateObject())
            vocab.Add(entry.Name, entry.Value.GetInt32());

        var merges = new Dictionary<long, Merge>();
        var rank = 0;
        foreach (var merge in model.GetProperty("merges").EnumerateArray())
        {
            var (left, right) = ParseMerge(merge);
            var leftId = LookUp(vocab, left);
            var rightId = LookUp(vocab, right);
            merges.TryAdd(PairKey(leftId, rightId), new Merge(rank++, LookUp(vocab, left + right)));
        }

        var ignoreMerges = model.TryGetProperty("ignore_merges", out var ignore) && ignore.GetBoolean();
        return new BpeModel(vocab, merges, ignoreMerges);
    }

    /// <summary>Appends the ids of one pre-token (plain text; its UTF-8 bytes are what gets merged).</summary>
    public void Tokenize(string preToken, List<int> ids)
    {
        if (_cache.TryGetValue(preToken, out var cached))
        {
            ids.AddRange(cached);
            return;
        }
        var tokenized = TokenizeUncached(Encoding.UTF8.GetBytes(preToken));
        if (preToken.Length <= MaxCachedLength && Volatile.Read(ref _cachedCount) < CacheCapacity && _cache.TryAdd(preToken, tokenized))
            Interlocked.Increment(ref _cachedCount);
        ids.AddRange(tokenized);
    }

    private int[] TokenizeUncached(byte[] bytes)
    {
        if (_ignoreMerges && Vocab.TryGetValue(ByteLevelAlphabet.ToText(bytes), out var whole))
            return [whole];

        // Symbols form a linked list over the byte positions; a merged-away symbol gets id -1.
        var symbols = new List<int>(bytes.Length);
        foreach (var b in bytes)
        {
            // Without an unk token HF drops characters the vocabulary lacks; byte-level vocabularies have all 256.
            if (_byteIds[b] >= 0)
                symbols.Add(_byteIds[b]);
        }
        var count = symbols.Count;
        var id = symbols.ToArray();
        var next = new int[count];
        var prev = new int[count];
        for (var i = 0; i < count; i++)
        {
            next[i] = i + 1 < count ? i + 1 : -1;
            prev[i] = i - 1;
        }

        var queue = new PriorityQueue<int, long>();
        for (var i = 0; i + 1 < count; i++)
            Enqueue(queue, id, i, i + 1);

        while (queue.TryDequeue(out var left, out var priority))
        {
            var right = id[left] >= 0 ? next[left] : -1;
            // Entries go stale when either side was merged since; ranks are unique per pair, so a rank match proves the pair.
            if (right < 0 || !_merges.TryGetValue(PairKey(id[left], id[right]), out var merge) || merge.Rank != (int)(priority >> 32))
                continue;
            id[left] = merge.Id;
            id[right] = -1;
            next[left] = next[right];
            if (next[left] >= 0)
                prev[next[left]] = left;
            if (prev[left] >= 0)
                Enqueue(queue, id, prev[left], left);
            if (next[left] >= 0)
                Enqueue(queue, id, left, next[left]);
        }

        var result = new List<int>(count);
        for (var i = 0; i >= 0 && i < count; i = next[i])
            result.Add(id[i]);
        return result.ToArray();
    }

    private void Enqueue(PriorityQueue<int, long> queue, int[] id, int left, int right)
    {
        // Ordered by rank, then by position, as HF's merge queue is.
        if (_merges.TryGetValue(PairKey(id[left], id[right]), out var merge))
            queue.Enqueue(left, ((long)merge.Rank << 32) | (uint)left);
    }

    private static long PairKey(int left, int right) => ((long)left << 32) | (uint)right;

    private static (string Left, string Right) ParseMerge(JsonElement merge)
    {
        if (merge.ValueKind == JsonValueKind.Array && merge.GetArrayLength() == 2)
            return (merge[0].GetString()!, merge[1].GetString()!);
        var text = merge.GetString() ?? throw new InvalidDataException("null BPE merge");
        var space = text.IndexOf(' ');
        if (space < 0 || text.IndexOf(' ', space + 1) >= 0)
            throw new InvalidDataException($"BPE merge '{text}' is not two tokens separated by one space");
        return (text[..space], text[(space + 1)..]);
    }

    private static int LookUp(Dictionary<string, int> vocab, string token) =>
        vocab.TryGetValue(token, out var id) ? id : throw new InvalidDataException($"BPE merge uses '{token}', which is not in the vocabulary");
}
