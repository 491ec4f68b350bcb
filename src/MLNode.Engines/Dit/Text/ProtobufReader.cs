namespace MLNode.Engines.Dit.Text;

/// <summary>
/// Reads the protobuf wire format field by field: enough for a fixed, known schema such as SentencePiece's
/// ModelProto without a protobuf runtime. Unknown fields are skipped by their wire type, as protobuf parsers do.
/// </summary>
internal ref struct ProtobufReader(ReadOnlySpan<byte> data, string source)
{
    private const int Varint = 0, Fixed64 = 1, LengthDelimited = 2, Fixed32 = 5;

    private readonly ReadOnlySpan<byte> _data = data;
    private int _position;
    private int _wireType = -1;

    public readonly bool AtEnd => _position >= _data.Length;

    /// <summary>The next field's number; call one of the Read methods (or <see cref="Skip"/>) for its value.</summary>
    public int NextField()
    {
        var key = ReadVarint();
        _wireType = (int)(key & 7);
        var field = (int)(key >> 3);
        return field > 0 ? field : throw Malformed($"field number {field}");
    }

    public ulong ReadUInt64()
    {
        ExpectWireType(Varint);
        return ReadVarint();
    }

    /// <summary>An int32 field: negative values are stored as ten-byte varints of their 64-bit two's complement.</summary>
    public int ReadInt32() => unchecked((int)ReadUInt64());

    public bool ReadBool() => ReadUInt64() != 0;

    public float ReadFloat()
    {
        ExpectWireType(Fixed32);
        return System.Buffers.Binary.BinaryPrimitives.ReadSingleLittleEndian(Take(4));
    }

    public ReadOnlySpan<byte> ReadBytes()
    {
        ExpectWireType(LengthDelimited);
        var length = ReadVarint();
        return length <= (ulong)(_data.Length - _position) ? Take((int)length) : throw Malformed($"a length of {length} bytes past the end");
    }

    public string ReadString() => System.Text.Encoding.UTF8.GetString(ReadBytes());

    public void Skip()
    {
        switch (_wireType)
        {
            case Varint: ReadVarint(); break;
            case Fixed64: Take(8); break;
            case LengthDelimited: ReadBytes(); break;
            case Fixed32: Take(4); break;
            default: throw Malformed($"wire type {_wireType}");
        }
    }

    private void ExpectWireType(int wireType)
    {
        if (_wireType != wireType) throw Malformed($"wire type {_wireType} where {wireType} was expected");
        _wireType = -1;
    }

    private ulong ReadVarint()
    {
        ulong value = 0;
        for (var shift = 0; shift < 64; shift += 7)
        {
            if (AtEnd) throw Malformed("a varint running past the end");
            var b = _data[_position++];
            value |= (ulong)(b & 0x7F) << shift;
            if (b < 0x80) return value;
        }
        throw Malformed("a varint longer than ten bytes");
    }

    private ReadOnlySpan<byte> Take(int count)
    {
        if (count > _data.Length - _position) throw Malformed("a value running past the end");
        var slice = _data.Slice(_position, count);
        _position += count;
        return slice;
    }

    private readonly InvalidDataException Malformed(string what) =>
        new($"{source}: not a valid protobuf message ({what} at byte {_position})");
}
