namespace MLNode.Runtime.Checkpoints;

/// <summary>
/// The <c>quantization_config</c> of a checkpoint, as far as the engines read it. For the FP8 checkpoints
/// of Qwen3 and DeepSeek: method "fp8", format "e4m3", <see cref="WeightBlockSize"/> [128, 128] — each linear
/// weight then comes with a <c>weight_scale_inv</c> per block (see <see cref="Fp8BlockDequantizer"/>).
/// </summary>
/// <param name="WeightBlockSize">[rows, cols] of one scale block; null for per-tensor scaling.</param>
/// <param name="ModulesToNotConvert">Modules left unquantised, as the config lists them.</param>
public sealed record QuantizationConfig(
    string QuantMethod,
    string? Format,
    IReadOnlyList<int>? WeightBlockSize,
    string? ActivationScheme,
    IReadOnlyList<string> ModulesToNotConvert)
{
    internal static QuantizationConfig Parse(ConfigJsonReader json)
    {
        var method = json.OptionalString("quant_method") ?? throw json.Error("quant_method", "is missing (expected a string)");
        var blockSize = json.OptionalIntArray("weight_block_size");
        if (blockSize is not null && (blockSize.Count != 2 || blockSize.Any(size => size <= 0)))
            throw json.Error("weight_block_size", $"must be two positive integers, got [{string.Join(',', blockSize)}]");
        return new QuantizationConfig(
            method,
            json.OptionalString("fmt"),
            blockSize,
            json.OptionalString("activation_scheme"),
            json.OptionalStringArray("modules_to_not_convert") ?? []);
    }
}
