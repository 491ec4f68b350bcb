using System.Runtime.InteropServices;
using System.Text.Json;
using static TorchSharp.torch;

namespace MLNode.Runtime.Checkpoints;

/// <summary>
/// The safetensors weights of one model folder, in one file or sharded: <c>{stem}.safetensors</c>, or
/// <c>{stem}.safetensors.index.json</c> with the shards its <c>weight_map</c> names, or, without an index,
/// every <c>{stem}.safetensors</c> / <c>{stem}-*.safetensors</c> file. The stem is "model" for transformers
/// checkpoints and "diffusion_pytorch_model" for diffusers components.
/// </summary>
public sealed class Checkpoint : IDisposable
{
    public const string DefaultFileStem = "model";

    private readonly IReadOnlyList<SafetensorsFile> _shards;
    private readonly Dictionary<string, SafetensorsFile> _shardOf;

    private Checkpoint(string folder, IReadOnlyList<SafetensorsFile> shards, Dictionary<string, SafetensorsFile> shardOf)
    {
        Folder = folder;
        _shards = shards;
        _shardOf = shardOf;
        TensorNames = shardOf.Keys.Order(StringComparer.Ordinal).ToArray();
    }

    public string Folder { get; }

    /// <summary>Every tensor name, in ordinal order.</summary>
    public IReadOnlyList<string> TensorNames { get; }

    /// <summary>The shard files, full paths as found in the folder (symbolic links not resolved).</summary>
    public IReadOnlyList<string> ShardPaths => _shards.Select(s => s.Path).ToArray();

    public static Checkpoint Open(string folder, string fileStem = DefaultFileStem)
    {
        folder = Path.TrimEndingDirectorySeparator(Path.GetFullPath(folder));
        if (!Directory.Exists(folder))
            throw new DirectoryNotFoundException($"model folder not found: {folder}");
        var indexPath = Path.Combine(folder, fileStem + ".safetensors.index.json");
        return File.Exists(indexPath) ? OpenIndexed(folder, indexPath) : OpenUnindexed(folder, fileStem);
    }

    public bool Contains(string name) => _shardOf.ContainsKey(name);

    public TensorInfo GetInfo(string name) => ShardOf(name).GetInfo(name);

    /// <summary>The tensor's raw bytes in its shard's mapping; valid until <see cref="Dispose"/>.</summary>
    public ReadOnlySpan<byte> GetBytes(string name) => ShardOf(name).GetBytes(name);

    /// <inheritdoc cref="SafetensorsFile.Load"/>
    public Tensor Load(string name, Device? device = null, ScalarType? dtype = null, TensorSlice? slice = null) => ShardOf(name).Load(name, device, dtype, slice);

    /// <summary>
    /// Dequantises a block-scaled FP8 weight <paramref name="weightName"/> with its <c>{weightName}_scale_inv</c>
    /// (see <see cref="Fp8BlockDequantizer"/>) into a [rows, cols] tensor of <paramref name="dtype"/> on <paramref name="device"/>.
    /// Runs the C# reference on the CPU: meant for tests and small weights until the native kernel takes over. With
    /// <paramref name="slice"/>, only that part of the weight is read and dequantised (see <see cref="LoadFp8BlockSlice"/>).
    /// </summary>
    public Tensor LoadFp8BlockScaled(
        string weightName, ScalarType dtype = ScalarType.Float32, Device? device = null,
        int blockRows = Fp8BlockDequantizer.DefaultBlockSize, int blockCols = Fp8BlockDequantizer.DefaultBlockSize, TensorSlice? slice = null)
    {
        if (slice is not null)
        {
            var (bits, scales) = LoadFp8BlockSlice(weightName, slice, blockRows, blockCols);
            using (bits)
            using (scales)
                return Fp8BlockDequantizer.ToTensor(bits.bytes, scales.data<float>().ToArray(), (int)bits.shape[0], (int)bits.shape[1], dtype, device, blockRows, blockCols);
        }
        var weight = GetInfo(weightName);
        if (weight.DType != SafetensorsDType.F8E4M3 || weight.Shape.Length != 2)
            throw new InvalidDataException($"{Folder}: '{weightName}' is {weight.DType.FormatName()} [{string.Join(',', weight.Shape)}], not a 2-D F8_E4M3 weight");
        var (rows, cols) = ((int)weight.Shape[0], (int)weight.Shape[1]);
        var scaleName = weightName + "_scale_inv";
        var scale = GetInfo(scaleName);
        long[] scaleShape = [Fp8BlockDequantizer.ScaleBlocks(rows, blockRows), Fp8BlockDequantizer.ScaleBlocks(cols, blockCols)];
        // The shape, not only the count: a transposed grid has as many scales and would pass silently.
        if (scale.DType != SafetensorsDType.F32 || !scale.Shape.SequenceEqual(scaleShape))
            throw new InvalidDataException(
                $"{Folder}: '{scaleName}' is {scale.DType.FormatName()} [{string.Join(',', scale.Shape)}]; [{rows},{cols}] in {blockRows}×{blockCols} blocks needs F32 [{string.Join(',', scaleShape)}]");

        return Fp8BlockDequantizer.ToTensor(
            GetBytes(weightName), MemoryMarshal.Cast<byte, float>(GetBytes(scaleName)), rows, cols, dtype, device, blockRows, blockCols);
    }

    /// <summary>
    /// <paramref name="slice"/> of a block-scaled FP8 weight as its E4M3 bits (a CPU Byte tensor) and the float32 scales
    /// of the blocks it covers. The slice must start on a block boundary and end on one or at the weight's edge, so that
    /// its blocks are whole blocks of the weight.
    /// </summary>
    public (Tensor Bits, Tensor ScaleInv) LoadFp8BlockSlice(string weightName, TensorSlice slice,
        int blockRows = Fp8BlockDequantizer.DefaultBlockSize, int blockCols = Fp8BlockDequantizer.DefaultBlockSize)
    {
        var weight = GetInfo(weightName);
        if (weight.DType != SafetensorsDType.F8E4M3 || weight.Shape.Length != 2)
            throw new InvalidDataException($"{Folder}: '{weightName}' is {weight.DType.FormatName()} [{string.Join(',', weight.Shape)}], not a 2-D F8_E4M3 weight");
        slice.ShapeOf(weight.Shape);
        var block = slice.Dim == 0 ? blockRows : blockCols;
        if (slice.Start % block != 0 || (slice.Length % block != 0 && slice.Start + slice.Length != weight.Shape[slice.Dim]))
            throw new InvalidDataException($"{Folder}: shard {slice} of '{weightName}' cuts its {blockRows}×{blockCols} FP8 scale blocks; the shard must span whole blocks");
        var scale = GetInfo(weightName + "_scale_inv");
        long[] grid = [Fp8BlockDequantizer.ScaleBlocks((int)weight.Shape[0], blockRows), Fp8BlockDequantizer.ScaleBlocks((int)weight.Shape[1], blockCols)];
        if (scale.DType != SafetensorsDType.F32 || !scale.Shape.SequenceEqual(grid))
            throw new InvalidDataException(
                $"{Folder}: '{scale.Name}' is {scale.DType.FormatName()} [{string.Join(',', scale.Shape)}]; [{string.Join(',', weight.Shape)}] in {blockRows}×{blockCols} blocks needs F32 [{string.Join(',', grid)}]");
        var blocks = new TensorSlice(slice.Dim, slice.Start / block, Fp8BlockDequantizer.ScaleBlocks((int)slice.Length, block));
        var bits = Load(weightName, slice: slice);
        try
        {
            return (bits, Load(scale.Name, slice: blocks));
        }
        catch
        {
            bits.Dispose();
            throw;
        }
    }

    public void Dispose()
    {
        foreach (var shard in _shards)
            shard.Dispose();
    }

    private SafetensorsFile ShardOf(string name) =>
        _shardOf.TryGetValue(name, out var shard) ? shard : throw new KeyNotFoundException($"{Folder}: no tensor named '{name}'");

    private static Checkpoint OpenIndexed(string folder, string indexPath)
    {
        var weightMap = ReadWeightMap(indexPath);
        var shards = new Dictionary<string, SafetensorsFile>(StringComparer.Ordinal);
        try
        {
            var shardOf = new Dictionary<string, SafetensorsFile>(StringComparer.Ordinal);
            foreach (var (tensor, shardName) in weightMap)
            {
                if (!shards.TryGetValue(shardName, out var shard))
                    shards[shardName] = shard = SafetensorsFile.Open(ResolveShardPath(folder, shardName, indexPath));
                if (!shard.Contains(tensor))
                    throw new SafetensorsFormatException(indexPath, tensor, $"the index places it in '{shardName}', which does not hold it");
                shardOf[tensor] = shard;
            }
            return new Checkpoint(folder, shards.Values.ToArray(), shardOf);
        }
        catch
        {
            foreach (var shard in shards.Values)
                shard.Dispose();
            throw;
        }
    }

    private static Checkpoint OpenUnindexed(string folder, string fileStem)
    {
        var paths = Directory.EnumerateFiles(folder, fileStem + "-*.safetensors")
            .Prepend(Path.Combine(folder, fileStem + ".safetensors"))
            .Where(File.Exists)
            .Order(StringComparer.Ordinal)
            .ToArray();
        if (paths.Length == 0)
            throw new FileNotFoundException($"no {fileStem}.safetensors, {fileStem}-*.safetensors or {fileStem}.safetensors.index.json in {folder}");

        var shards = new List<SafetensorsFile>();
        try
        {
            var shardOf = new Dictionary<string, SafetensorsFile>(StringComparer.Ordinal);
            foreach (var path in paths)
            {
                var shard = SafetensorsFile.Open(path);
                shards.Add(shard);
                foreach (var tensor in shard.Tensors)
                {
                    if (!shardOf.TryAdd(tensor.Name, shard))
                        throw new SafetensorsFormatException(path, tensor.Name, $"also in {shardOf[tensor.Name].Path}; which copy counts is ambiguous");
                }
            }
            return new Checkpoint(folder, shards, shardOf);
        }
        catch
        {
            foreach (var shard in shards)
                shard.Dispose();
            throw;
        }
    }

    private static Dictionary<string, string> ReadWeightMap(string indexPath)
    {
        JsonDocument document;
        try
        {
            document = JsonDocument.Parse(File.ReadAllBytes(indexPath));
        }
        catch (JsonException e)
        {
            throw new SafetensorsFormatException(indexPath, null, $"not valid JSON: {e.Message}");
        }
        using (document)
        {
            if (document.RootElement.ValueKind != JsonValueKind.Object
                || !document.RootElement.TryGetProperty("weight_map", out var map)
                || map.ValueKind != JsonValueKind.Object)
                throw new SafetensorsFormatException(indexPath, null, "missing object field 'weight_map'");

            var weightMap = new Dictionary<string, string>(StringComparer.Ordinal);
            foreach (var entry in map.EnumerateObject())
            {
                if (entry.Value.ValueKind != JsonValueKind.String)
                    throw new SafetensorsFormatException(indexPath, entry.Name, $"weight_map value must be a shard file name, got {entry.Value.ValueKind}");
                if (!weightMap.TryAdd(entry.Name, entry.Value.GetString()!))
                    throw new SafetensorsFormatException(indexPath, entry.Name, "appears twice in weight_map");
            }
            return weightMap;
        }
    }

    /// <summary>
    /// The index is data from the checkpoint's publisher: a shard name must stay inside the model folder.
    /// Only the name is checked, not where a symbolic link points, since the Hugging Face cache links
    /// each file of a snapshot to ../../blobs.
    /// </summary>
    private static string ResolveShardPath(string folder, string shardName, string indexPath)
    {
        var path = Path.GetFullPath(Path.Combine(folder, shardName));
        if (shardName.Length == 0 || Path.IsPathRooted(shardName) || !path.StartsWith(folder + Path.DirectorySeparatorChar, StringComparison.Ordinal))
            throw new SafetensorsFormatException(indexPath, null, $"shard name '{shardName}' escapes the model folder {folder}");
        return path;
    }
}
