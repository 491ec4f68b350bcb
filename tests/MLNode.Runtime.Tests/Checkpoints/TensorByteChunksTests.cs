using MLNode.Runtime.Checkpoints;
using TorchSharp;
using static TorchSharp.torch;

namespace MLNode.Runtime.Tests.Checkpoints;

/// <summary>The chunked walk that lets tensors beyond 2 GiB be loaded and written, exercised with tiny chunks.</summary>
public sealed class TensorByteChunksTests
{
    [Fact]
    public void Walks_a_tensor_in_whole_element_chunks_that_together_are_its_bytes()
    {
        using var scope = NewDisposeScope();
        var tensor = arange(10, ScalarType.Float32).reshape(2, 5);
        var offsets = new List<long>();
        var bytes = new List<byte>();

        TensorByteChunks.ForEach(tensor, (chunk, offset) =>
        {
            offsets.Add(offset);
            bytes.AddRange(chunk.ToArray());
        }, maxChunkBytes: 10);

        Assert.Equal([0L, 8, 16, 24, 32], offsets);
        Assert.Equal(tensor.bytes.ToArray(), bytes);
    }

    [Fact]
    public void Writes_through_the_chunks_into_the_tensor()
    {
        using var scope = NewDisposeScope();
        var tensor = zeros(7, ScalarType.Int16);

        TensorByteChunks.ForEach(tensor, (chunk, offset) => chunk.Fill((byte)(offset + 1)), maxChunkBytes: 4);

        Assert.Equal([0x0101, 0x0101, 0x0505, 0x0505, 0x0909, 0x0909, 0x0D0D], tensor.data<short>().ToArray());
    }

    [Fact]
    public void Refuses_a_strided_view()
    {
        using var scope = NewDisposeScope();
        var transposed = zeros(2, 3).t();

        Assert.Throws<ArgumentException>(() => TensorByteChunks.ForEach(transposed, (_, _) => { }));
    }
}
