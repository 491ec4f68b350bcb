namespace MLNode.Engines.Dit.Text;

/// <summary>The piece kinds of SentencePiece's <c>ModelProto.SentencePiece.Type</c>.</summary>
public enum SentencePieceType
{
    Normal = 1,
    Unknown = 2,
    Control = 3,
    UserDefined = 4,
    Unused = 5,
    Byte = 6,
}

/// <summary>One vocabulary entry: its surface (with ▁ for a space), log-probability score and kind.</summary>
public readonly record struct SentencePiece(string Piece, float Score, SentencePieceType Type);

/// <summary>
/// The parts of a SentencePiece <c>spiece.model</c> (a serialised <c>ModelProto</c>, sentencepiece_model.proto) that
/// encoding and decoding read: the pieces, the trainer options that survive into inference, and the normaliser
/// spec with its precompiled character map. Field numbers and proto2 defaults are those of the proto file.
/// </summary>
public sealed class SentencePieceModelProto
{
    private const int UnigramModelType = 1;

    private SentencePieceModelProto() { }

    public required IReadOnlyList<SentencePiece> Pieces { get; init; }

    /// <summary>TrainerSpec.byte_fallback: unknown characters become their UTF-8 bytes as &lt;0xNN&gt; pieces.</summary>
    public bool ByteFallback { get; private init; }

    /// <summary>
    /// TrainerSpec.split_digits. A training-time constraint (no piece spans two digits); the encoder needs no rule of
    /// its own, since the Viterbi search can only use the single-digit pieces such a vocabulary holds.
    /// </summary>
    public bool SplitDigits { get; private init; }

    /// <summary>TrainerSpec.eos_id: the end-of-sequence control piece (default 2; −1 when the model has none).</summary>
    public int EosId { get; private init; } = 2;

    /// <summary>TrainerSpec.pad_id: the padding control piece (default −1: none).</summary>
    public int PadId { get; private init; } = -1;

    /// <summary>TrainerSpec.unk_surface: what an &lt;unk&gt; piece decodes to (default " ⁇ ").</summary>
    public string UnknownSurface { get; private init; } = " \u2047 ";

    /// <summary>NormalizerSpec.name, e.g. "nmt_nfkc"; the rules themselves are in <see cref="PrecompiledCharsMap"/>.</summary>
    public string NormalizerName { get; private init; } = "";

    public byte[] PrecompiledCharsMap { get; private init; } = [];

    public bool AddDummyPrefix { get; private init; } = true;
    public bool RemoveExtraWhitespaces { get; private init; } = true;
    public bool EscapeWhitespaces { get; private init; } = true;

    public static SentencePieceModelProto Read(string path) => Parse(File.ReadAllBytes(path), path);

    /// <summary>
    /// Parses a ModelProto, refusing the options this implementation does not carry out (other model types,
    /// whitespace as suffix, a denormaliser) rather than encoding differently from sentencepiece.
    /// </summary>
    public static SentencePieceModelProto Parse(ReadOnlySpan<byte> bytes, string source)
    {
        var pieces = new List<SentencePiece>();
        var trainer = new TrainerOptions();
        var normalizer = new NormalizerOptions();
        var reader = new ProtobufReader(bytes, source);
        while (!reader.AtEnd)
        {
            switch (reader.NextField())
            {
                case 1: pieces.Add(ReadPiece(reader.ReadBytes(), source)); break;
                case 2: trainer = ReadTrainerSpec(reader.ReadBytes(), source); break;
                case 3: normalizer = ReadNormalizerSpec(reader.ReadBytes(), source); break;
                case 5:
                    if (ReadNormalizerSpec(reader.ReadBytes(), source).CharsMap.Length > 0)
                        throw new NotSupportedException($"{source}: models with a denormalizer spec are not supported");
                    break;
                default: reader.Skip(); break;
            }
        }
        if (pieces.Count == 0) throw new InvalidDataException($"{source}: the model has no pieces");
        if (trainer.ModelType != UnigramModelType)
            throw new NotSupportedException($"{source}: model_type {trainer.ModelType} is not a unigram model");
        if (trainer.TreatWhitespaceAsSuffix)
            throw new NotSupportedException($"{source}: treat_whitespace_as_suffix is not supported");
        if (pieces.Count(p => p.Type == SentencePieceType.Unknown) != 1)
            throw new InvalidDataException($"{source}: the model must have exactly one unknown piece");
        if (pieces.Any(p => p.Type == SentencePieceType.Byte) && !trainer.ByteFallback)
            throw new InvalidDataException($"{source}: byte pieces without byte_fallback");
        int ControlOrNone(int id, string field) =>
            id == -1 || (id >= 0 && id < pieces.Count && pieces[id].Type == SentencePieceType.Control)
                ? id
                : throw new InvalidDataException($"{source}: {field} {id} is not a control piece");
        return new SentencePieceModelProto
        {
            Pieces = pieces,
            ByteFallback = trainer.ByteFallback,
            SplitDigits = trainer.SplitDigits,
            UnknownSurface = trainer.UnknownSurface,
            EosId = ControlOrNone(trainer.EosId, "eos_id"),
            PadId = ControlOrNone(trainer.PadId, "pad_id"),
            NormalizerName = normalizer.Name,
            PrecompiledCharsMap = normalizer.CharsMap,
            AddDummyPrefix = normalizer.AddDummyPrefix,
            RemoveExtraWhitespaces = normalizer.RemoveExtraWhitespaces,
            EscapeWhitespaces = normalizer.EscapeWhitespaces,
        };
    }

    private static SentencePiece ReadPiece(ReadOnlySpan<byte> bytes, string source)
    {
        var (piece, score, type) = ("", 0f, SentencePieceType.Normal);
        var reader = new ProtobufReader(bytes, source);
        while (!reader.AtEnd)
        {
            switch (reader.NextField())
            {
                case 1: piece = reader.ReadString(); break;
                case 2: score = reader.ReadFloat(); break;
                case 3: type = (SentencePieceType)reader.ReadInt32(); break;
                default: reader.Skip(); break;
            }
        }
        if (piece.Length == 0) throw new InvalidDataException($"{source}: a piece is empty");
        return Enum.IsDefined(type) ? new SentencePiece(piece, score, type) : throw new InvalidDataException($"{source}: piece '{piece}' has unknown type {(int)type}");
    }

    private sealed record TrainerOptions
    {
        public int ModelType { get; init; } = UnigramModelType;
        public bool TreatWhitespaceAsSuffix { get; init; }
        public bool SplitDigits { get; init; }
        public bool ByteFallback { get; init; }
        public string UnknownSurface { get; init; } = " \u2047 ";
        public int EosId { get; init; } = 2;
        public int PadId { get; init; } = -1;
    }

    private static TrainerOptions ReadTrainerSpec(ReadOnlySpan<byte> bytes, string source)
    {
        var options = new TrainerOptions();
        var reader = new ProtobufReader(bytes, source);
        while (!reader.AtEnd)
        {
            options = reader.NextField() switch
            {
                3 => options with { ModelType = reader.ReadInt32() },
                24 => options with { TreatWhitespaceAsSuffix = reader.ReadBool() },
                25 => options with { SplitDigits = reader.ReadBool() },
                35 => options with { ByteFallback = reader.ReadBool() },
                42 => options with { EosId = reader.ReadInt32() },
                43 => options with { PadId = reader.ReadInt32() },
                44 => options with { UnknownSurface = reader.ReadString() },
                _ => Skipped(ref reader, options),
            };
        }
        return options;
    }

    private sealed record NormalizerOptions
    {
        public string Name { get; init; } = "";
        public byte[] CharsMap { get; init; } = [];
        public bool AddDummyPrefix { get; init; } = true;
        public bool RemoveExtraWhitespaces { get; init; } = true;
        public bool EscapeWhitespaces { get; init; } = true;
    }

    private static NormalizerOptions ReadNormalizerSpec(ReadOnlySpan<byte> bytes, string source)
    {
        var options = new NormalizerOptions();
        var reader = new ProtobufReader(bytes, source);
        while (!reader.AtEnd)
        {
            options = reader.NextField() switch
            {
                1 => options with { Name = reader.ReadString() },
                2 => options with { CharsMap = reader.ReadBytes().ToArray() },
                3 => options with { AddDummyPrefix = reader.ReadBool() },
                4 => options with { RemoveExtraWhitespaces = reader.ReadBool() },
                5 => options with { EscapeWhitespaces = reader.ReadBool() },
                _ => Skipped(ref reader, options),
            };
        }
        return options;
    }

    private static T Skipped<T>(ref ProtobufReader reader, T options)
    {
        reader.Skip();
        return options;
    }
}
