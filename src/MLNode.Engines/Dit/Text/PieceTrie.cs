using System.Text;

namespace MLNode.Engines.Dit.Text;

/// <summary>
/// A byte trie over the UTF-8 of vocabulary pieces, each key ending at a node that holds its piece id. Walking
/// it from a position yields every piece that is a prefix of the text there, shortest first — the lattice edges
/// of one start position.
/// </summary>
internal sealed class PieceTrie
{
    public const int Root = 0;
    private const int NoPiece = -1;

    private readonly Dictionary<long, int> _children = [];
    private readonly List<int> _pieceAt = [NoPiece];

    public PieceTrie(IEnumerable<(string Piece, int Id)> pieces)
    {
        foreach (var (piece, id) in pieces)
        {
            var node = Root;
            foreach (var b in Encoding.UTF8.GetBytes(piece))
            {
                if (!_children.TryGetValue(Key(node, b), out var child))
                {
                    child = _pieceAt.Count;
                    _pieceAt.Add(NoPiece);
                    _children.Add(Key(node, b), child);
                }
                node = child;
            }
            _pieceAt[node] = id;
        }
    }

    /// <summary>The node reached from <paramref name="node"/> by byte <paramref name="b"/>, or −1 when no piece continues so.</summary>
    public int Next(int node, byte b) => _children.TryGetValue(Key(node, b), out var child) ? child : -1;

    /// <summary>The id of the piece ending at <paramref name="node"/>, or −1.</summary>
    public int PieceAt(int node) => _pieceAt[node];

    /// <summary>The longest piece that is a prefix of <paramref name="text"/>: its length in bytes (0 if none) and id.</summary>
    public (int Length, int Id) LongestPrefix(ReadOnlySpan<byte> text)
    {
        var (length, id, node) = (0, NoPiece, Root);
        for (var i = 0; i < text.Length && (node = Next(node, text[i])) >= 0; i++)
            if (_pieceAt[node] != NoPiece) (length, id) = (i + 1, _pieceAt[node]);
        return (length, id);
    }

    private static long Key(int node, byte b) => ((long)node << 8) | b;
}
