using System.Text.Json;
using MLNode.Runtime.Checkpoints;
using MLNode.Tests;
using TorchSharp;
using static TorchSharp.torch;

namespace MLNode.Runtime.Tests.Checkpoints;

public sealed class CheckpointTests : IDisposable
{
    private readonly TempFolder _folder = new();

    public void Dispose() => _folder.Dispose();

    [Fact]
    public void Opens_a_single_file_model_folder()
    {
        using var scope = NewDisposeScope();
        using var checkpoint = Checkpoint.Open(Fixtures.Path("llm", "qwen3-tiny"));

        Assert.Equal(47, checkpoint.TensorNames.Count);
        Assert.Single(checkpoint.ShardPaths);
        Assert.Equal([512L, 64L], checkpoint.GetInfo("lm_head.weight").Shape);
        Assert.Equal(1.1171875f, checkpoint.Load("model.norm.weight", dtype: ScalarType.Float32)[63].item<float>());
    }

    [Fact]
    public void Opens_a_diffusers_component_by_its_file_stem()
    {
        using var checkpoint = Checkpoint.Open(Fixtures.Path("wan", "wan-tiny", "transformer"), "diffusion_pytorch_model");

        Assert.Equal(69, checkpoint.TensorNames.Count);
        Assert.All(checkpoint.TensorNames, name => Assert.Equal(SafetensorsDType.F32, checkpoint.GetInfo(name).DType));
    }

    [Fact]
    public void Follows_the_index_across_shards()
    {
        using var scope = NewDisposeScope();
        var model = WriteTwoShards(_folder.Path);
        WriteIndex(model, new() { ["a.weight"] = "model-00001-of-00002.safetensors", ["b.weight"] = "model-00002-of-00002.safetensors", ["c.bias"] = "model-00002-of-00002.safetensors" });

        using var checkpoint = Checkpoint.Open(model);

        Assert.Equal(["a.weight", "b.weight", "c.bias"], checkpoint.TensorNames);
        Assert.Equal(2, checkpoint.ShardPaths.Count);
        Assert.Equal([1f, 2f, 3f, 4f], checkpoint.Load("a.weight").data<float>().ToArray());
        Assert.Equal([2L, 2L], checkpoint.Load("a.weight").shape);
        Assert.Equal([5.5f, -6.5f], checkpoint.Load("b.weight").data<float>().ToArray());
        Assert.Equal([7L], checkpoint.Load("c.bias", dtype: ScalarType.Int64).data<long>().ToArray());
    }

    [Fact]
    public void Without_an_index_reads_every_shard_of_the_stem()
    {
        var model = WriteTwoShards(_folder.Path, "diffusion_pytorch_model");

        using var checkpoint = Checkpoint.Open(model, "diffusion_pytorch_model");

        Assert.Equal(["a.weight", "b.weight", "c.bias"], checkpoint.TensorNames);
        Assert.Throws<FileNotFoundException>(() => Checkpoint.Open(model));
    }

    [Fact]
    public void A_tensor_in_two_unindexed_shards_is_refused()
    {
        var model = WriteTwoShards(_folder.Path);
        SafetensorsWriter.Write(Path.Combine(model, "model.safetensors"), [new SafetensorsEntry("b.weight", SafetensorsDType.U8, [1], new byte[1])]);

        var error = Assert.Throws<SafetensorsFormatException>(() => Checkpoint.Open(model).Dispose());

        Assert.Equal("b.weight", error.TensorName);
        Assert.Contains("ambiguous", error.Message);
    }

    [Theory]
    [InlineData("../outside.safetensors")]
    [InlineData("shards/../../outside.safetensors")]
    [InlineData("/tmp/outside.safetensors")]
    [InlineData("")]
    public void Index_entries_that_leave_the_model_folder_are_refused(string shardName)
    {
        var model = WriteTwoShards(_folder.Path);
        SafetensorsWriter.Write(_folder.File("outside.safetensors"), [new SafetensorsEntry("x", SafetensorsDType.U8, [1], new byte[1])]);
        WriteIndex(model, new() { ["a.weight"] = "model-00001-of-00002.safetensors", ["x"] = shardName });

        var error = Assert.Throws<SafetensorsFormatException>(() => Checkpoint.Open(model).Dispose());

        Assert.Contains($"shard name '{shardName}' escapes the model folder", error.Message);
        Assert.EndsWith(".index.json", error.FilePath);
    }

    [Fact]
    public void Shards_may_be_symbolic_links_out_of_the_folder_as_in_the_hugging_face_cache()
    {
        var blobs = Directory.CreateDirectory(_folder.File("blobs")).FullName;
        var snapshot = Directory.CreateDirectory(_folder.File("snapshots", "abc123")).FullName;
        SafetensorsWriter.Write(Path.Combine(blobs, "9f86d081"), [new SafetensorsEntry("w", SafetensorsDType.F32, [1], BitConverter.GetBytes(2.5f))]);
        File.CreateSymbolicLink(Path.Combine(snapshot, "model-00001-of-00001.safetensors"), "../../blobs/9f86d081");
        WriteIndex(snapshot, new() { ["w"] = "model-00001-of-00001.safetensors" });

        using var checkpoint = Checkpoint.Open(snapshot);

        Assert.Equal(BitConverter.GetBytes(2.5f), checkpoint.GetBytes("w").ToArray());
    }

    [Fact]
    public void An_index_entry_missing_from_its_shard_is_refused()
    {
        var model = WriteTwoShards(_folder.Path);
        WriteIndex(model, new() { ["a.weight"] = "model-00002-of-00002.safetensors" });

        var error = Assert.Throws<SafetensorsFormatException>(() => Checkpoint.Open(model).Dispose());

        Assert.Equal("a.weight", error.TensorName);
        Assert.Contains("'model-00002-of-00002.safetensors', which does not hold it", error.Message);
    }

    [Fact]
    public void An_index_without_a_weight_map_is_refused()
    {
        var model = WriteTwoShards(_folder.Path);
        File.WriteAllText(Path.Combine(model, "model.safetensors.index.json"), """{"metadata":{}}""");

        var error = Assert.Throws<SafetensorsFormatException>(() => Checkpoint.Open(model).Dispose());

        Assert.Contains("missing object field 'weight_map'", error.Message);
    }

    [Fact]
    public void Unknown_names_and_missing_folders_are_reported()
    {
        using var checkpoint = Checkpoint.Open(Fixtures.Path("llm", "qwen3-tiny"));

        Assert.Contains("no tensor named 'nope'", Assert.Throws<KeyNotFoundException>(() => checkpoint.GetInfo("nope")).Message);
        Assert.False(checkpoint.Contains("nope"));
        Assert.Throws<DirectoryNotFoundException>(() => Checkpoint.Open(_folder.File("absent")));
    }

    [Fact]
    public void Tensors_outlive_the_checkpoint_and_its_spans_do_not()
    {
        using var scope = NewDisposeScope();
        var model = WriteTwoShards(_folder.Path);
        var checkpoint = Checkpoint.Open(model);
        var b = checkpoint.Load("b.weight");

        checkpoint.Dispose();

        Assert.Equal([5.5f, -6.5f], b.data<float>().ToArray());
        Assert.Throws<ObjectDisposedException>(() => checkpoint.GetBytes("b.weight").Length);
        Assert.DoesNotContain(model, File.ReadAllText("/proc/self/maps"));
    }

    /// <summary>Shard 1: a.weight f32 [2,2] = 1..4; shard 2: b.weight f32 [2] = 5.5, -6.5 and c.bias i32 [1] = 7.</summary>
    private static string WriteTwoShards(string parent, string stem = "model")
    {
        var model = Directory.CreateDirectory(Path.Combine(parent, "model")).FullName;
        SafetensorsWriter.Write(Path.Combine(model, $"{stem}-00001-of-00002.safetensors"),
            [new SafetensorsEntry("a.weight", SafetensorsDType.F32, [2, 2], Floats(1, 2, 3, 4))]);
        SafetensorsWriter.Write(Path.Combine(model, $"{stem}-00002-of-00002.safetensors"),
        [
            new SafetensorsEntry("b.weight", SafetensorsDType.F32, [2], Floats(5.5f, -6.5f)),
            new SafetensorsEntry("c.bias", SafetensorsDType.I32, [1], BitConverter.GetBytes(7)),
        ]);
        return model;
    }

    private static void WriteIndex(string folder, Dictionary<string, string> weightMap) =>
        File.WriteAllText(Path.Combine(folder, "model.safetensors.index.json"),
            JsonSerializer.Serialize(new { metadata = new { total_size = 0 }, weight_map = weightMap }));

    private static byte[] Floats(params float[] values) => values.SelectMany(BitConverter.GetBytes).ToArray();
}
