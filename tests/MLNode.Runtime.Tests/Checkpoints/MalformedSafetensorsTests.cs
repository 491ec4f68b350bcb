using System.Buffers.Binary;
using System.Text;
using MLNode.Runtime.Checkpoints;

namespace MLNode.Runtime.Tests.Checkpoints;

/// <summary>Files that break the format are refused on open with a message naming the file and the tensor at fault.</summary>
public sealed class MalformedSafetensorsTests : IDisposable
{
    private readonly TempFolder _folder = new();

    public void Dispose() => _folder.Dispose();

    [Theory]
    [InlineData("""{"a":{"dtype":"F7","shape":[2],"data_offsets":[0,8]}}""", 8, "a", "unknown dtype 'F7'")]
    [InlineData("""{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}}""", 12, "b", "overlaps tensor 'a'")]
    [InlineData("""{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[2],"data_offsets":[12,20]}}""", 20, "b", "gap after offset 8")]
    [InlineData("""{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}""", 4, "a", "run past the end of the 4-byte data section")]
    [InlineData("""{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"U8","shape":[4],"data_offsets":[1000,1004]}}""", 12, "b", "run past the end")]
    [InlineData("""{"a":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}}""", 8, "a", "needs 12 bytes but data_offsets [0,8] span 8")]
    [InlineData("""{"a":{"dtype":"F32","shape":[2],"data_offsets":[8,0]}}""", 8, "a", "end before they begin")]
    [InlineData("""{"a":{"dtype":"F32","shape":[2],"data_offsets":[0]}}""", 8, "a", "data_offsets must hold 2 numbers")]
    [InlineData("""{"a":{"dtype":"F32","shape":[-2],"data_offsets":[0,8]}}""", 8, "a", "'shape' must hold non-negative integers")]
    [InlineData("""{"a":{"dtype":"F32","shape":[4611686018427387904,4],"data_offsets":[0,8]}}""", 8, "a", "overflows")]
    [InlineData("""{"a":{"shape":[2],"data_offsets":[0,8]}}""", 8, "a", "missing string field 'dtype'")]
    [InlineData("""{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}""", 8, "a", "appears twice")]
    [InlineData("""{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}""", 12, null, "4 bytes after the last tensor")]
    [InlineData("""{"__metadata__":{"format":1}}""", 0, null, "__metadata__ entry 'format' must be a string")]
    [InlineData("""{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]""", 8, null, "not valid JSON")]
    [InlineData("""["a"]""", 0, null, "does not start with '{'")]
    public void Malformed_headers_are_refused(string header, int dataBytes, string? tensor, string problem)
    {
        var path = Write(Encoding.UTF8.GetBytes(header), dataBytes);

        var error = Assert.Throws<SafetensorsFormatException>(() => SafetensorsFile.Open(path).Dispose());

        Assert.Equal(path, error.FilePath);
        Assert.Equal(tensor, error.TensorName);
        Assert.Contains(problem, error.Message);
        Assert.StartsWith(path, error.Message);
    }

    [Fact]
    public void A_file_shorter_than_the_length_field_is_refused()
    {
        var path = _folder.File("short.safetensors");
        File.WriteAllBytes(path, [1, 2, 3, 4, 5]);

        var error = Assert.Throws<SafetensorsFormatException>(() => SafetensorsFile.Open(path).Dispose());

        Assert.Contains("file is 5 bytes", error.Message);
    }

    [Fact]
    public void A_header_length_beyond_the_file_is_refused()
    {
        var path = Write(Encoding.UTF8.GetBytes("{}"), 0, declaredHeaderLength: 1000);

        var error = Assert.Throws<SafetensorsFormatException>(() => SafetensorsFile.Open(path).Dispose());

        Assert.Contains("header length 1000 runs past the end of the 10-byte file", error.Message);
    }

    [Fact]
    public void A_header_length_beyond_the_reference_limit_is_refused_before_reading_it()
    {
        var path = Write(Encoding.UTF8.GetBytes("{}"), 0, declaredHeaderLength: 1L << 40);

        var error = Assert.Throws<SafetensorsFormatException>(() => SafetensorsFile.Open(path).Dispose());

        Assert.Contains("exceeds the limit of 100000000 bytes", error.Message);
    }

    [Fact]
    public void A_file_truncated_inside_the_data_is_refused_naming_the_cut_tensor()
    {
        var whole = _folder.File("whole.safetensors");
        SafetensorsWriter.Write(whole,
        [
            new SafetensorsEntry("first", SafetensorsDType.F32, [4], new byte[16]),
            new SafetensorsEntry("second", SafetensorsDType.F32, [4], new byte[16]),
        ]);
        var bytes = File.ReadAllBytes(whole);
        var cut = _folder.File("cut.safetensors");
        File.WriteAllBytes(cut, bytes[..^5]);

        var error = Assert.Throws<SafetensorsFormatException>(() => SafetensorsFile.Open(cut).Dispose());

        Assert.Equal("second", error.TensorName);
        Assert.Contains("run past the end of the 27-byte data section", error.Message);
    }

    private string Write(byte[] header, int dataBytes, long? declaredHeaderLength = null)
    {
        var path = _folder.File($"{Guid.NewGuid():N}.safetensors");
        var file = new byte[8 + header.Length + dataBytes];
        BinaryPrimitives.WriteInt64LittleEndian(file, declaredHeaderLength ?? header.Length);
        header.CopyTo(file, 8);
        File.WriteAllBytes(path, file);
        return path;
    }
}
