using MLNode.Runtime.Checkpoints;
using MLNode.Tests;
using TorchSharp;
using static TorchSharp.torch;

namespace MLNode.Runtime.Tests.Checkpoints;

/// <summary>
/// Reads the qwen3-tiny fixture. Expected names, shapes, offsets and values were taken with python3 from the raw
/// file (struct + json on the header, bf16 bits shifted left by 16 for float32), independently of this code.
/// </summary>
public sealed class SafetensorsFileTests
{
    private static string Qwen3Tiny => Fixtures.Path("llm", "qwen3-tiny", "model.safetensors");

    [Fact]
    public void Lists_every_tensor_with_the_header_metadata()
    {
        using var file = SafetensorsFile.Open(Qwen3Tiny);

        Assert.Equal(47, file.Tensors.Count);
        Assert.Equal(new Dictionary<string, string> { ["format"] = "pt" }, file.Metadata);
        Assert.All(file.Tensors, t => Assert.Equal(SafetensorsDType.BF16, t.DType));
        Assert.Equal("lm_head.weight", file.Tensors[0].Name);
        Assert.Equal("model.embed_tokens.weight", file.Tensors[1].Name);
        Assert.Equal("model.norm.weight", file.Tensors[^1].Name);
        Assert.True(file.Contains("model.layers.3.self_attn.v_proj.weight"));
        Assert.False(file.Contains("model.layers.4.self_attn.v_proj.weight"));
    }

    [Theory]
    [InlineData("model.embed_tokens.weight", new long[] { 512, 64 }, 65536, 131072)]
    [InlineData("model.layers.0.self_attn.q_norm.weight", new long[] { 16 }, 205088, 205120)]
    [InlineData("model.layers.3.mlp.down_proj.weight", new long[] { 64, 160 }, 390208, 410688)]
    [InlineData("model.norm.weight", new long[] { 64 }, 476416, 476544)]
    public void Reports_shape_and_offsets_as_the_header_states(string name, long[] shape, long begin, long end)
    {
        const long dataStart = 8 + 4856; // 8-byte length + the 4856-byte header
        using var file = SafetensorsFile.Open(Qwen3Tiny);

        var info = file.GetInfo(name);

        Assert.Equal(shape, info.Shape);
        Assert.Equal(dataStart + begin, info.FileOffset);
        Assert.Equal(end - begin, info.ByteLength);
        Assert.Equal(shape.Aggregate(1L, (a, b) => a * b), info.ElementCount);
    }

    [Fact]
    public void Gives_the_raw_bf16_bits_of_each_element()
    {
        using var file = SafetensorsFile.Open(Qwen3Tiny);

        var embed = file.GetBytes("model.embed_tokens.weight");

        Assert.Equal(512 * 64 * 2, embed.Length);
        Assert.Equal(0x3E7E, BitConverter.ToUInt16(embed[..2]));
        Assert.Equal(0xBD58, BitConverter.ToUInt16(embed.Slice(2, 2)));
        Assert.Equal(0x3CD5, BitConverter.ToUInt16(embed.Slice(32767 * 2, 2)));
        Assert.Equal(0x3D97, BitConverter.ToUInt16(file.GetBytes("model.layers.3.mlp.down_proj.weight", 10239 * 2, 2)));
    }

    [Theory]
    [InlineData("model.embed_tokens.weight", 0, 0.248046875f)]
    [InlineData("model.embed_tokens.weight", 1, -0.052734375f)]
    [InlineData("model.embed_tokens.weight", 64, -0.05517578125f)]
    [InlineData("model.embed_tokens.weight", 32767, 0.0260009765625f)]
    [InlineData("model.layers.0.self_attn.q_norm.weight", 0, 1.078125f)]
    [InlineData("model.layers.0.self_attn.q_norm.weight", 15, 0.87890625f)]
    [InlineData("model.norm.weight", 0, 1.0078125f)]
    [InlineData("model.norm.weight", 63, 1.1171875f)]
    [InlineData("model.layers.3.mlp.down_proj.weight", 0, 0.051025390625f)]
    [InlineData("model.layers.3.mlp.down_proj.weight", 10239, 0.07373046875f)]
    [InlineData("lm_head.weight", 12345, 0.10791015625f)]
    public void Loads_bf16_weights_as_float32_exactly(string name, long flatIndex, float expected)
    {
        using var scope = NewDisposeScope();
        using var file = SafetensorsFile.Open(Qwen3Tiny);

        var tensor = file.Load(name, dtype: ScalarType.Float32);

        Assert.Equal(ScalarType.Float32, tensor.dtype);
        Assert.Equal(file.GetInfo(name).Shape, tensor.shape);
        Assert.Equal(expected, tensor.reshape(-1)[flatIndex].item<float>());
    }

    [Fact]
    public void Loads_in_the_stored_dtype_when_none_is_asked()
    {
        using var scope = NewDisposeScope();
        using var file = SafetensorsFile.Open(Qwen3Tiny);

        var tensor = file.Load("model.embed_tokens.weight");

        Assert.Equal(ScalarType.BFloat16, tensor.dtype);
        Assert.True(file.GetBytes("model.embed_tokens.weight").SequenceEqual(tensor.bytes));
    }

    [Fact]
    public void Loaded_tensors_outlive_the_file_and_the_mapping_is_released()
    {
        using var folder = new TempFolder();
        var path = folder.File("copy.safetensors");
        File.Copy(Qwen3Tiny, path);
        using var scope = NewDisposeScope();

        var file = SafetensorsFile.Open(path);
        var norm = file.Load("model.norm.weight", dtype: ScalarType.Float32);
        Assert.Contains(path, File.ReadAllText("/proc/self/maps"));
        file.Dispose();

        Assert.DoesNotContain(path, File.ReadAllText("/proc/self/maps"));
        Assert.Equal(1.1171875f, norm[63].item<float>());
        Assert.Throws<ObjectDisposedException>(() => file.GetBytes("model.norm.weight").Length);
    }

    [Fact]
    public void Unknown_tensor_names_are_reported_with_the_file()
    {
        using var file = SafetensorsFile.Open(Qwen3Tiny);

        var error = Assert.Throws<KeyNotFoundException>(() => file.GetInfo("model.layers.9.mlp.up_proj.weight"));

        Assert.Contains("model.layers.9.mlp.up_proj.weight", error.Message);
        Assert.Contains(Qwen3Tiny, error.Message);
    }

    [Fact]
    public void Byte_windows_outside_the_tensor_are_refused()
    {
        using var file = SafetensorsFile.Open(Qwen3Tiny);

        Assert.Throws<ArgumentOutOfRangeException>(() => file.GetBytes("model.norm.weight", 120, 16).Length);
        Assert.Throws<ArgumentOutOfRangeException>(() => file.GetBytes("model.norm.weight", -1, 2).Length);
    }
}
