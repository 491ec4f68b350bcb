using System.Buffers;
using System.Runtime.InteropServices;
using System.Text;

namespace MLNode.Engines.Llm.Tokenization;

/// <summary>
/// Turns generated ids into text deltas for streaming. A token can end inside a multi-byte character, so bytes
/// that could still become a character are held back until the tokens completing it arrive; ill-formed bytes are
/// emitted as U+FFFD at once. The deltas concatenate to exactly what <see cref="ByteLevelBpeTokenizer.Decode"/> gives.
/// </summary>
public sealed class StreamingDecoder(ByteLevelBpeTokenizer tokenizer, bool skipSpecialTokens = false)
{
    private readonly List<byte> _pending = [];

    /// <summary>The text that <paramref name="id"/> completes; empty while a character is still unfinished.</summary>
    public string Append(int id)
    {
        tokenizer.AppendBytes(id, skipSpecialTokens, _pending);
        return TakeComplete();
    }

    public string Append(IEnumerable<int> ids)
    {
        foreach (var id in ids)
            tokenizer.AppendBytes(id, skipSpecialTokens, _pending);
        return TakeComplete();
    }

    /// <summary>At the end of the stream: whatever is held back, an unfinished character becoming U+FFFD.</summary>
    public string Flush()
    {
        var text = Encoding.UTF8.GetString(CollectionsMarshal.AsSpan(_pending));
        _pending.Clear();
        return text;
    }

    private string TakeComplete()
    {
        var pending = CollectionsMarshal.AsSpan(_pending);
        var complete = 0;
        // Splitting before a well-formed but unfinished sequence cannot change how the bytes before it decode.
        while (complete < pending.Length && Rune.DecodeFromUtf8(pending[complete..], out _, out var consumed) != OperationStatus.NeedMoreData)
            complete += consumed;
        var text = Encoding.UTF8.GetString(pending[..complete]);
        _pending.RemoveRange(0, complete);
        return text;
    }
}
