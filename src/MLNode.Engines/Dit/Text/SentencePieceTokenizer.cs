using System.Text;

namespace MLNode.Engines.Dit.Text;

/// <summary>
/// A SentencePiece unigram tokenizer loaded from <c>spiece.model</c>, encoding and decoding as the sentencepiece
/// library does (SentencePieceProcessor with its optimised unigram encoder):
/// <list type="number">
/// <item>normalise (<see cref="SentencePieceNormalizer"/>: charsmap rules, whitespace, dummy prefix, ▁);</item>
/// <item>find the best segmentation of the normalised bytes by Viterbi over the lattice of vocabulary pieces,
/// scoring a path by the sum of its piece scores; a character no piece starts with becomes &lt;unk&gt; scored
/// min score − 10;</item>
/// <item>with byte fallback, spell each unknown piece as its UTF-8 bytes (&lt;0xNN&gt;); without it, merge runs
/// of unknowns into one &lt;unk&gt;.</item>
/// </list>
/// </summary>
public sealed class SentencePieceTokenizer
{
    // FLT_MIN, FLT_MAX and kUnkPenalty of unigram_model.cc: the score range starts as (FLT_MAX, FLT_MIN) — the
    // smallest positive float, not the most negative — so a model of negative scores keeps max score 1.2e-38.
    private const float SmallestPositiveFloat = 1.17549435e-38f;
    private const float UnknownPenalty = 10.0f;

    private readonly SentencePieceModelProto _model;
    private readonly PieceTrie _pieces;
    private readonly SentencePieceNormalizer _normalizer;
    private readonly Dictionary<string, int> _idOfPiece = new(StringComparer.Ordinal);
    private readonly int[] _byteIds = new int[256];
    private readonly float _minScore = float.MaxValue;
    private readonly float _maxScore = SmallestPositiveFloat;

    public SentencePieceTokenizer(SentencePieceModelProto model)
    {
        ArgumentNullException.ThrowIfNull(model);
        _model = model;
        var pieces = model.Pieces;
        for (var id = 0; id < pieces.Count; id++)
        {
            if (!_idOfPiece.TryAdd(pieces[id].Piece, id))
                throw new InvalidDataException($"piece '{pieces[id].Piece}' is defined twice");
            if (pieces[id].Type == SentencePieceType.Unknown) UnknownId = id;
            if (pieces[id].Type == SentencePieceType.Normal)
            {
                _minScore = Math.Min(_minScore, pieces[id].Score);
                _maxScore = Math.Max(_maxScore, pieces[id].Score);
            }
        }
        // Normal, user-defined and unused pieces are what the lattice matches; control, unknown and byte pieces never match text.
        _pieces = new PieceTrie(Enumerable.Range(0, pieces.Count)
            .Where(id => pieces[id].Type is SentencePieceType.Normal or SentencePieceType.UserDefined or SentencePieceType.Unused)
            .Select(id => (pieces[id].Piece, id)));
        _normalizer = new SentencePieceNormalizer(model, new PieceTrie(Enumerable.Range(0, pieces.Count)
            .Where(id => pieces[id].Type == SentencePieceType.UserDefined)
            .Select(id => (pieces[id].Piece, id))));
        if (model.ByteFallback)
        {
            for (var b = 0; b < 256; b++)
                _byteIds[b] = _idOfPiece.TryGetValue(BytePiece(b), out var id) && pieces[id].Type == SentencePieceType.Byte
                    ? id
                    : throw new InvalidDataException($"byte fallback needs the byte piece {BytePiece(b)}");
        }
    }

    public static SentencePieceTokenizer Load(string spieceModelPath) => new(SentencePieceModelProto.Read(spieceModelPath));

    public int VocabSize => _model.Pieces.Count;
    public int UnknownId { get; }

    /// <summary>The end-of-sequence id, or −1 when the model defines none.</summary>
    public int EosId => _model.EosId;

    /// <summary>The padding id, or −1 when the model defines none.</summary>
    public int PadId => _model.PadId;

    public string IdToPiece(int id) => (uint)id < (uint)VocabSize
        ? _model.Pieces[id].Piece
        : throw new ArgumentOutOfRangeException(nameof(id), id, $"not a piece id of this {VocabSize}-piece model");

    public int[] Encode(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        var normalized = _normalizer.Normalize(Encoding.UTF8.GetBytes(text));
        var ids = new List<int>(normalized.Length);
        var previousWasUnknown = false;
        foreach (var (start, end, id) in BestSegmentation(normalized))
        {
            var isUnknown = id == UnknownId;
            if (isUnknown && _model.ByteFallback)
            {
                for (var i = start; i < end; i++) ids.Add(_byteIds[normalized[i]]);
            }
            else if (!(isUnknown && previousWasUnknown))
            {
                ids.Add(id);
            }
            previousWasUnknown = isUnknown;
        }
        return [.. ids];
    }

    /// <summary>
    /// The text of <paramref name="ids"/>: control pieces vanish, runs of byte pieces are read as UTF-8 (a malformed
    /// byte as U+FFFD), ▁ becomes a space, and the dummy-prefix space of the leading pieces is dropped.
    /// </summary>
    public string Decode(IEnumerable<int> ids)
    {
        ArgumentNullException.ThrowIfNull(ids);
        var text = new List<byte>();
        var bytes = new List<byte>();
        var (expectingLeadingSpace, leadingSpaceSeen) = (true, false);
        foreach (var id in ids)
        {
            var piece = IdToPiece(id);
            var type = _model.Pieces[id].Type;
            if (type == SentencePieceType.Byte)
            {
                bytes.Add(PieceToByte(piece));
                continue;
            }
            AppendUtf8(text, bytes);
            bytes.Clear();
            if (leadingSpaceSeen || text.Count > 0) expectingLeadingSpace = false;
            leadingSpaceSeen = false;
            switch (type)
            {
                case SentencePieceType.Control:
                    break;
                case SentencePieceType.Unknown:
                    text.AddRange(Encoding.UTF8.GetBytes(_model.UnknownSurface));
                    break;
                default:
                    if (expectingLeadingSpace && (_model.AddDummyPrefix || _model.RemoveExtraWhitespaces) && piece.StartsWith('▁'))
                    {
                        piece = piece[1..];
                        // Without extra-whitespace removal only one leading ▁ is the dummy prefix; with it, every leading one goes.
                        leadingSpaceSeen = !_model.RemoveExtraWhitespaces;
                    }
                    text.AddRange(Encoding.UTF8.GetBytes(piece.Replace('▁', ' ')));
                    break;
            }
        }
        AppendUtf8(text, bytes);
        return Encoding.UTF8.GetString([.. text]);
    }

    /// <summary>
    /// The best path through the lattice as (start, end, id) byte spans: at each character start, every piece
    /// beginning there relaxes the best path ending where it ends (sentencepiece's EncodeOptimized, including its
    /// float/double arithmetic and first-found tie-breaking).
    /// </summary>
    private List<(int Start, int End, int Id)> BestSegmentation(byte[] normalized)
    {
        var size = normalized.Length;
        var best = new (int Id, float Score, int Start)[size + 1];
        Array.Fill(best, (-1, 0f, -1));
        var unknownScore = _minScore - UnknownPenalty;
        for (var start = 0; start < size;)
        {
            var scoreHere = best[start].Score;
            var charLength = SentencePieceUtf8.OneCharLength(normalized.AsSpan(start));
            var hasSingleCharPiece = false;
            var node = PieceTrie.Root;
            for (var end = start; end < size && (node = _pieces.Next(node, normalized[end])) >= 0;)
            {
                end++;
                var id = _pieces.PieceAt(node);
                if (id < 0 || _model.Pieces[id].Type == SentencePieceType.Unused) continue;
                var length = end - start;
                // User-defined symbols win any segmentation. As in the C++, this score is a double (float product
                // minus the double 0.1), so the candidate is compared in double and stored as float.
                var score = _model.Pieces[id].Type == SentencePieceType.UserDefined ? (double)(length * _maxScore) - 0.1 : _model.Pieces[id].Score;
                var candidate = score + scoreHere;
                if (best[end].Start == -1 || candidate > best[end].Score) best[end] = (id, (float)candidate, start);
                if (length == charLength) hasSingleCharPiece = true;
            }
            if (!hasSingleCharPiece)
            {
                var candidate = unknownScore + scoreHere;
                ref var target = ref best[start + charLength];
                if (target.Start == -1 || candidate > target.Score) target = (UnknownId, candidate, start);
            }
            start += charLength;
        }
        var path = new List<(int, int, int)>();
        for (var end = size; end > 0; end = best[end].Start)
            path.Add((best[end].Start, end, best[end].Id));
        path.Reverse();
        return path;
    }

    private static void AppendUtf8(List<byte> text, List<byte> bytes)
    {
        var span = bytes.ToArray().AsSpan();
        while (!span.IsEmpty)
        {
            if (SentencePieceUtf8.TryDecode(span, out var length)) text.AddRange(span[..length]);
            else text.AddRange(SentencePieceUtf8.ReplacementCharacter);
            span = span[length..];
        }
    }

    private static string BytePiece(int b) => $"<0x{b:X2}>";

    private static byte PieceToByte(string piece) => Convert.ToByte(piece[3..5], 16);
}
