using MLNode.Runtime.Checkpoints;
using TorchSharp;
using static TorchSharp.torch;

namespace MLNode.Runtime.Tests.Checkpoints;

/// <summary>Reading a slice of a stored tensor, as a tensor-parallel rank reads its shard of a weight.</summary>
public sealed class CheckpointSliceTests : IDisposable
{
    private readonly TempFolder _folder = new();

    public void Dispose() => _folder.Dispose();

    [Fact]
    public void A_slice_along_any_dimension_equals_that_part_of_the_whole_tensor()
    {
        using var scope = NewDisposeScope();
        var values = arange(4 * 6 * 5, ScalarType.Float32).reshape(4, 6, 5).to(ScalarType.BFloat16);
        SafetensorsWriter.Write(_folder.File("model.safetensors"), [KeyValuePair.Create("w", values)]);
        using var checkpoint = Checkpoint.Open(_folder.Path);

        foreach (var slice in new[] { new TensorSlice(0, 1, 2), new TensorSlice(1, 3, 3), new TensorSlice(2, 0, 1), new TensorSlice(2, 2, 3), new TensorSlice(1, 0, 6) })
        {
            var part = checkpoint.Load("w", dtype: ScalarType.Float32, slice: slice);
            Assert.Equal(slice.ShapeOf([4, 6, 5]), part.shape);
            Assert.True(part.equal(values.narrow(slice.Dim, slice.Start, slice.Length).to(ScalarType.Float32)).all().item<bool>(), $"slice {slice}");
        }
        Assert.Throws<ArgumentOutOfRangeException>(() => checkpoint.Load("w", slice: new TensorSlice(1, 4, 3)));
        Assert.Throws<ArgumentOutOfRangeException>(() => checkpoint.Load("w", slice: new TensorSlice(3, 0, 1)));
    }

    [Fact]
    public void Equal_shares_split_a_dimension_among_ranks_or_are_refused()
    {
        Assert.Equal(new TensorSlice(0, 96, 32), TensorSlice.Share(0, 128, 3, 4));
        Assert.Contains("does not split evenly among 3 ranks", Assert.Throws<ArgumentException>(() => TensorSlice.Share(1, 128, 0, 3)).Message);
    }
}
