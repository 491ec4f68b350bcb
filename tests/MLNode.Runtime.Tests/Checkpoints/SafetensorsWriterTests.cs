using System.Security.Cryptography;
using System.Text;
using MLNode.Runtime.Checkpoints;
using MLNode.Tests;
using TorchSharp;
using static TorchSharp.torch;

namespace MLNode.Runtime.Tests.Checkpoints;

public sealed class SafetensorsWriterTests : IDisposable
{
    /// <summary>SHA-256 of the qwen3-tiny fixture, which Python's safetensors wrote (computed with hashlib).</summary>
    private const string Qwen3TinySha256 = "6e69573ac77f18fc857455e122198e7fcb301dd51fcfcd3c64aeaa064db2932a";

    private readonly TempFolder _folder = new();

    public void Dispose() => _folder.Dispose();

    // The next three expectations are the byte vectors of the reference library's own serialisation tests.
    [Fact]
    public void Writes_the_reference_bytes_for_one_f32_tensor()
    {
        var bytes = WriteToBytes([new("attn.0", SafetensorsDType.F32, [1, 2, 3], Floats(0, 1, 2, 3, 4, 5))]);

        Assert.Equal(
            [.. LengthPrefix(64), .. Encoding.ASCII.GetBytes("""{"attn.0":{"dtype":"F32","shape":[1,2,3],"data_offsets":[0,24]}}"""), .. Floats(0, 1, 2, 3, 4, 5)],
            bytes);
    }

    [Fact]
    public void Pads_the_header_with_spaces_to_a_multiple_of_8()
    {
        var bytes = WriteToBytes([new("attn0", SafetensorsDType.F32, [1, 1, 2, 3], Floats(0, 1, 2, 3, 4, 5))]);

        Assert.Equal(
            [.. LengthPrefix(72), .. Encoding.ASCII.GetBytes("""{"attn0":{"dtype":"F32","shape":[1,1,2,3],"data_offsets":[0,24]}}       """), .. Floats(0, 1, 2, 3, 4, 5)],
            bytes);
    }

    [Fact]
    public void Writes_the_reference_bytes_for_no_tensors_with_and_without_metadata()
    {
        Assert.Equal([.. LengthPrefix(8), .. "{}      "u8.ToArray()], WriteToBytes([]));
        Assert.Equal(
            [.. LengthPrefix(40), .. """{"__metadata__":{"framework":"pt"}}     """u8.ToArray()],
            WriteToBytes([], new Dictionary<string, string> { ["framework"] = "pt" }));
    }

    [Fact]
    public void Rewriting_a_checkpoint_reproduces_the_reference_writers_file_byte_for_byte()
    {
        var fixture = Fixtures.Path("llm", "qwen3-tiny", "model.safetensors");
        var copy = _folder.File("rewritten.safetensors");
        using (var source = SafetensorsFile.Open(fixture))
        {
            var entries = source.Tensors.Select(t => new SafetensorsEntry(t.Name, t.DType, t.Shape, source.GetBytes(t.Name).ToArray())).Reverse();
            SafetensorsWriter.Write(copy, entries, source.Metadata);
        }

        Assert.Equal(Qwen3TinySha256, Sha256(copy));
    }

    [Fact]
    public void Writing_torch_tensors_gives_the_same_bytes_as_writing_their_raw_data()
    {
        var fixture = Fixtures.Path("llm", "qwen3-tiny", "model.safetensors");
        var copy = _folder.File("from-torch.safetensors");
        using var scope = NewDisposeScope();
        using (var source = SafetensorsFile.Open(fixture))
        {
            var tensors = source.Tensors.Select(t => KeyValuePair.Create(t.Name, source.Load(t.Name))).ToList();
            SafetensorsWriter.Write(copy, tensors, source.Metadata);
        }

        Assert.Equal(Qwen3TinySha256, Sha256(copy));
    }

    [Fact]
    public void Torch_tensors_on_strided_views_are_written_in_row_major_order()
    {
        using var scope = NewDisposeScope();
        var path = _folder.File("transposed.safetensors");
        var transposed = arange(6, ScalarType.Float32).reshape(2, 3).t();

        SafetensorsWriter.Write(path, [KeyValuePair.Create("t", transposed)]);

        using var file = SafetensorsFile.Open(path);
        Assert.Equal([3L, 2L], file.GetInfo("t").Shape);
        Assert.Equal(Floats(0, 3, 1, 4, 2, 5), file.GetBytes("t").ToArray());
    }

    [Fact]
    public void Same_tensors_in_any_order_give_the_same_file()
    {
        var entries = MixedEntries();
        var first = _folder.File("first.safetensors");
        var second = _folder.File("second.safetensors");
        var metadata = new Dictionary<string, string> { ["z"] = "last", ["format"] = "pt", ["a"] = "first" };

        SafetensorsWriter.Write(first, entries, metadata);
        SafetensorsWriter.Write(second, entries.AsEnumerable().Reverse(), metadata.Reverse().ToDictionary());

        Assert.Equal(File.ReadAllBytes(first), File.ReadAllBytes(second));
        Assert.Equal(Sha256(first), Sha256(second));
        Assert.Contains("""{"__metadata__":{"a":"first","format":"pt","z":"last"},""", Encoding.UTF8.GetString(File.ReadAllBytes(first)));
    }

    [Fact]
    public void Round_trips_every_dtype_with_larger_elements_first_and_each_tensor_aligned()
    {
        var path = _folder.File("mixed.safetensors");
        var entries = MixedEntries();

        SafetensorsWriter.Write(path, entries, new Dictionary<string, string> { ["format"] = "pt" });

        using var file = SafetensorsFile.Open(path);
        Assert.Equal(
            ["u64", "i64", "f64", "b_f32", "f32", "u32", "i32", "bf16", "f16", "u16", "i16", "f8_e4m3", "f8_e5m2", "i8", "u8", "bool", "scalar_bool"],
            file.Tensors.Select(t => t.Name));
        Assert.All(file.Tensors, t => Assert.Equal(0, t.FileOffset % t.DType.ElementSize()));
        foreach (var entry in entries)
        {
            var info = file.GetInfo(entry.Name);
            Assert.Equal(entry.DType, info.DType);
            Assert.Equal(entry.Shape, info.Shape);
            Assert.Equal(entry.Data.ToArray(), file.GetBytes(entry.Name).ToArray());
        }
        Assert.Equal("pt", file.Metadata["format"]);
    }

    [Fact]
    public void Escapes_names_as_serde_json_does_and_reads_them_back()
    {
        var path = _folder.File("names.safetensors");
        string[] names = ["quote\"d", "back\\slash", "new\nline", "bell\u0001", "caf\u00e9 \U0001F600", "a/b<c>&"];

        SafetensorsWriter.Write(path, names.Select(name => new SafetensorsEntry(name, SafetensorsDType.U8, [1], new byte[] { 7 })));

        var header = Encoding.UTF8.GetString(File.ReadAllBytes(path));
        Assert.Contains("\"bell\\u0001\"", header);
        Assert.Contains("\"caf\u00e9 \U0001F600\"", header);
        Assert.Contains("\"a/b<c>&\"", header);
        using var file = SafetensorsFile.Open(path);
        Assert.Equal(names.Order(StringComparer.Ordinal), file.Tensors.Select(t => t.Name).Order(StringComparer.Ordinal));
    }

    [Fact]
    public void Refuses_inconsistent_input()
    {
        Assert.Contains("needs 12 bytes, got 8", Assert.Throws<ArgumentException>(() =>
            WriteToBytes([new("a", SafetensorsDType.F32, [3], new byte[8])])).Message);
        Assert.Contains("'a' appears twice", Assert.Throws<ArgumentException>(() =>
            WriteToBytes([new("a", SafetensorsDType.U8, [1], new byte[1]), new("a", SafetensorsDType.F32, [1], new byte[4])])).Message);
        Assert.Contains("reserved", Assert.Throws<ArgumentException>(() =>
            WriteToBytes([new("__metadata__", SafetensorsDType.U8, [1], new byte[1])])).Message);
        Assert.Contains("not valid Unicode", Assert.Throws<ArgumentException>(() =>
            WriteToBytes([new("lone\ud800", SafetensorsDType.U8, [1], new byte[1])])).Message);
        Assert.Contains("metadata value 'x\udc00' is not valid Unicode", Assert.Throws<ArgumentException>(() =>
            WriteToBytes([], new Dictionary<string, string> { ["k"] = "x\udc00" })).Message);
    }

    [Fact]
    public void A_refused_write_leaves_no_file_behind()
    {
        var path = _folder.File("refused.safetensors");

        Assert.Throws<ArgumentException>(() => SafetensorsWriter.Write(path, [new SafetensorsEntry("a", SafetensorsDType.F32, [3], new byte[8])]));

        Assert.Empty(Directory.EnumerateFileSystemEntries(_folder.Path));
    }

    private static SafetensorsEntry[] MixedEntries()
    {
        var random = new Random(1234);
        SafetensorsEntry Entry(string name, SafetensorsDType dtype, params long[] shape)
        {
            var data = new byte[shape.Aggregate(1L, (a, b) => a * b) * dtype.ElementSize()];
            random.NextBytes(data);
            return new SafetensorsEntry(name, dtype, shape, data);
        }
        // Odd element counts make a misordered layout misalign the wider types that follow.
        return
        [
            Entry("bool", SafetensorsDType.Bool, 3),
            Entry("scalar_bool", SafetensorsDType.Bool),
            Entry("u8", SafetensorsDType.U8, 5),
            Entry("i8", SafetensorsDType.I8, 1, 3),
            Entry("f8_e5m2", SafetensorsDType.F8E5M2, 7),
            Entry("f8_e4m3", SafetensorsDType.F8E4M3, 3, 3),
            Entry("i16", SafetensorsDType.I16, 3),
            Entry("u16", SafetensorsDType.U16, 1),
            Entry("f16", SafetensorsDType.F16, 5),
            Entry("bf16", SafetensorsDType.BF16, 2, 0, 4),
            Entry("i32", SafetensorsDType.I32, 3),
            Entry("u32", SafetensorsDType.U32, 1),
            Entry("f32", SafetensorsDType.F32, 2, 3),
            Entry("b_f32", SafetensorsDType.F32, 1),
            Entry("f64", SafetensorsDType.F64, 3),
            Entry("i64", SafetensorsDType.I64, 2),
            Entry("u64", SafetensorsDType.U64, 1),
        ];
    }

    private static byte[] WriteToBytes(SafetensorsEntry[] entries, IReadOnlyDictionary<string, string>? metadata = null)
    {
        using var stream = new MemoryStream();
        SafetensorsWriter.Write(stream, entries, metadata);
        return stream.ToArray();
    }

    private static byte[] LengthPrefix(long length) => BitConverter.GetBytes(length);

    private static byte[] Floats(params float[] values) => values.SelectMany(BitConverter.GetBytes).ToArray();

    private static string Sha256(string path) => Convert.ToHexStringLower(SHA256.HashData(File.ReadAllBytes(path)));
}
