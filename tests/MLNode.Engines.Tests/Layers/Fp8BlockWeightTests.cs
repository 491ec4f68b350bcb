using System.Text.Json.Nodes;
using Microsoft.Extensions.Logging.Abstractions;
using MLNode.Engines.Layers;
using MLNode.Engines.Llm;
using MLNode.Runtime.Checkpoints;
using TorchSharp;
using static TorchSharp.torch;

using MLNode.Tests;

namespace MLNode.Engines.Tests.Layers;

/// <summary>
/// Block-scaled FP8 weights on the CPU, where the reference runs: an <see cref="Fp8BlockWeight"/> multiplies exactly as
/// dequantise-then-linear, and an FP8 checkpoint loads (dequantised on loading) into the same model as a dense
/// checkpoint of the dequantised values.
/// </summary>
public sealed class Fp8BlockWeightTests : IDisposable
{
    private readonly DirectoryInfo _folder = Directory.CreateTempSubdirectory("mlnode-fp8-");

    public void Dispose() => _folder.Delete(recursive: true);

    [Theory]
    [InlineData(ScalarType.Float32)]
    [InlineData(ScalarType.BFloat16)]
    public void Reference_linear_equals_dequantise_then_linear(ScalarType dtype)
    {
        using var scope = NewDisposeScope();
        const int Out = 130, In = 260; // partial edge blocks on both axes
        var (bits, scales) = RandomFp8(Out, In, seed: 1);
        var weight = new Fp8BlockWeight(tensor(bits, [Out, In]), tensor(scales, [2, 3]));
        var dense = Fp8BlockDequantizer.ToTensor(bits, scales, Out, In, dtype);
        var x = randn([2, 3, In], generator: new Generator(2)).to_type(dtype);
        var bias = randn([Out], generator: new Generator(3)).to_type(dtype);

        var y = weight.Linear(x, bias);

        Assert.Equal([2L, 3, Out], y.shape);
        Assert.True(y.equal(nn.functional.linear(x, dense, bias)).all().item<bool>());
        Assert.True(weight.Linear(x, null).equal(nn.functional.linear(x, dense)).all().item<bool>());
        Assert.True(weight.Dequantize(dtype).equal(dense).all().item<bool>());
    }

    [Fact]
    public void Refuses_a_scale_grid_that_does_not_cover_the_weight()
    {
        using var scope = NewDisposeScope();
        var error = Assert.Throws<ArgumentException>(() => new Fp8BlockWeight(zeros([130, 260], ScalarType.Byte), zeros([3, 2])));
        Assert.Contains("[130, 260] in 128×128 blocks needs Float32 [2, 3]", error.Message);
    }

    [Fact]
    public void Fp8_checkpoint_runs_as_the_dense_checkpoint_of_its_dequantised_weights()
    {
        var fp8 = Directory.CreateDirectory(Path.Combine(_folder.FullName, "fp8")).FullName;
        var dense = Directory.CreateDirectory(Path.Combine(_folder.FullName, "dense")).FullName;
        WriteFp8AndDenseCopies(Fixtures.Path("llm", "qwen3-tiny"), fp8, dense);

        using var scope = NewDisposeScope();
        var ids = tensor(new long[] { 3, 141, 59, 265, 35, 89, 79, 323 }, [1, 8]);
        var fromFp8 = Logits(fp8, ids);
        var fromDense = Logits(dense, ids);

        Assert.Equal([8L, 512], fromFp8.shape);
        Assert.True(fromFp8.isfinite().all().item<bool>());
        Assert.True(fromFp8.equal(fromDense).all().item<bool>());
    }

    private static Tensor Logits(string folder, Tensor ids)
    {
        var model = LlmEngine.Load(HfModelConfig.FromFile(Path.Combine(folder, "config.json")), folder, CPU, ScalarType.Float32, NullLogger.Instance);
        using (no_grad())
            return model.Logits(model.Hidden(model.Embed(ids)))[0];
    }

    /// <summary>
    /// The fixture with every projection weight replaced by random FP8 bits and block scales (FP8 folder, with the
    /// quantization_config of Qwen3-FP8) or by their dequantised float32 values (dense folder).
    /// </summary>
    private static void WriteFp8AndDenseCopies(string source, string fp8, string dense)
    {
        using var checkpoint = Checkpoint.Open(source);
        var fp8Entries = new List<SafetensorsEntry>();
        var denseEntries = new List<SafetensorsEntry>();
        var seed = 10;
        foreach (var name in checkpoint.TensorNames)
        {
            var info = checkpoint.GetInfo(name);
            if (!name.EndsWith("_proj.weight", StringComparison.Ordinal))
            {
                var entry = new SafetensorsEntry(name, info.DType, info.Shape, checkpoint.GetBytes(name).ToArray());
                fp8Entries.Add(entry);
                denseEntries.Add(entry);
                continue;
            }
            var (rows, cols) = ((int)info.Shape[0], (int)info.Shape[1]);
            var (bits, scales) = RandomFp8(rows, cols, seed++);
            long[] grid = [Fp8BlockDequantizer.ScaleBlocks(rows, 128), Fp8BlockDequantizer.ScaleBlocks(cols, 128)];
            fp8Entries.Add(new SafetensorsEntry(name, SafetensorsDType.F8E4M3, info.Shape, bits));
            fp8Entries.Add(new SafetensorsEntry(name + "_scale_inv", SafetensorsDType.F32, grid, scales.SelectMany(BitConverter.GetBytes).ToArray()));
            var values = new float[rows * cols];
            Fp8BlockDequantizer.Dequantize(bits, scales, rows, cols, values);
            denseEntries.Add(new SafetensorsEntry(name, SafetensorsDType.F32, info.Shape, values.SelectMany(BitConverter.GetBytes).ToArray()));
        }
        SafetensorsWriter.Write(Path.Combine(fp8, "model.safetensors"), fp8Entries);
        SafetensorsWriter.Write(Path.Combine(dense, "model.safetensors"), denseEntries);

        var config = JsonNode.Parse(File.ReadAllText(Path.Combine(source, "config.json")))!;
        File.WriteAllText(Path.Combine(dense, "config.json"), config.ToJsonString());
        config["quantization_config"] = JsonNode.Parse("""
            {"activation_scheme": "dynamic", "fmt": "e4m3", "quant_method": "fp8", "weight_block_size": [128, 128], "modules_to_not_convert": ["lm_head"]}
            """);
        File.WriteAllText(Path.Combine(fp8, "config.json"), config.ToJsonString());
    }

    /// <summary>
    /// E4M3 bits of magnitude 2⁻⁴…2³ with random signs (no NaN codes) and one scale per 128×128 block around 0.01,
    /// so weights have the spread of a trained layer's.
    /// </summary>
    private static (byte[] Bits, float[] Scales) RandomFp8(int rows, int cols, int seed)
    {
        var random = new Random(seed);
        var bits = new byte[rows * cols];
        for (var i = 0; i < bits.Length; i++)
            bits[i] = (byte)(random.Next(0x18, 0x58) | (random.Next(2) << 7));
        var scales = new float[Fp8BlockDequantizer.ScaleBlocks(rows, 128) * Fp8BlockDequantizer.ScaleBlocks(cols, 128)];
        for (var i = 0; i < scales.Length; i++)
            scales[i] = 0.01f * (0.5f + (float)random.NextDouble());
        return (bits, scales);
    }
}
