using System.Globalization;
using Microsoft.Extensions.Logging;

namespace MLNode.Engines.Hosting;

/// <summary>A value in <c>additional_args</c> that this worker understands but cannot accept.</summary>
public sealed class EngineArgsException(string message) : Exception(message);

/// <summary>
/// The vLLM command-line flags dapi passes in <c>additional_args</c>, reduced to those that mean something
/// to this engine. Everything else (parsers, attention backends, compile options) is logged and ignored:
/// a flag this worker does not know must never fail a model start.
/// </summary>
public sealed record EngineArgs
{
    public int TensorParallelSize { get; init; } = 1;
    public int? MaxModelLen { get; init; }
    public int? MaxNumSeqs { get; init; }
    public int? MaxNumBatchedTokens { get; init; }
    public double? GpuMemoryUtilization { get; init; }
    public long? Seed { get; init; }
    /// <summary>Flags that were read but have no effect here, for the log and /state.</summary>
    public IReadOnlyList<string> Ignored { get; init; } = [];

    private static readonly Dictionary<string, Func<EngineArgs, string, string?, EngineArgs>> Known = new()
    {
        ["--tensor-parallel-size"] = (a, f, v) => a with { TensorParallelSize = PositiveInt(f, v) },
        ["-tp"] = (a, f, v) => a with { TensorParallelSize = PositiveInt(f, v) },
        ["--max-model-len"] = (a, f, v) => a with { MaxModelLen = PositiveInt(f, v) },
        ["--max-num-seqs"] = (a, f, v) => a with { MaxNumSeqs = PositiveInt(f, v) },
        ["--max-num-batched-tokens"] = (a, f, v) => a with { MaxNumBatchedTokens = PositiveInt(f, v) },
        ["--gpu-memory-utilization"] = (a, f, v) => a with { GpuMemoryUtilization = Fraction(f, v) },
        ["--seed"] = (a, f, v) => a with { Seed = Integer(f, v) },
    };

    public static EngineArgs Parse(IReadOnlyList<string>? args, ILogger logger)
    {
        var result = new EngineArgs();
        var ignored = new List<string>();
        if (args is null) return result;
        for (var i = 0; i < args.Count; i++)
        {
            var token = args[i];
            if (!token.StartsWith('-'))
            {
                ignored.Add(token);
                continue;
            }
            var (flag, value) = SplitFlag(token, args, ref i);
            if (Known.TryGetValue(flag, out var apply)) result = apply(result, flag, value);
            else ignored.Add(value is null ? flag : $"{flag} {value}");
        }
        if (ignored.Count > 0)
            logger.LogInformation("Ignoring engine arguments that have no effect here: {Args}", string.Join(" ", ignored));
        return result with { Ignored = ignored };
    }

    /// <summary>A flag takes the next token as its value unless that token is itself a flag.</summary>
    private static (string Flag, string? Value) SplitFlag(string token, IReadOnlyList<string> args, ref int i)
    {
        var eq = token.IndexOf('=');
        if (eq > 0) return (token[..eq], token[(eq + 1)..]);
        if (i + 1 < args.Count && !args[i + 1].StartsWith("--", StringComparison.Ordinal) && args[i + 1] != "-tp") return (token, args[++i]);
        return (token, null);
    }

    private static int PositiveInt(string flag, string? value) =>
        int.TryParse(value, NumberStyles.None, CultureInfo.InvariantCulture, out var v) && v > 0
            ? v
            : throw new EngineArgsException($"additional_args: {flag} needs a positive integer, got '{value}'");

    private static long Integer(string flag, string? value) =>
        long.TryParse(value, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out var v)
            ? v
            : throw new EngineArgsException($"additional_args: {flag} needs an integer, got '{value}'");

    private static double Fraction(string flag, string? value) =>
        double.TryParse(value, NumberStyles.Float, CultureInfo.InvariantCulture, out var v) && v is > 0 and <= 1
            ? v
            : throw new EngineArgsException($"additional_args: {flag} needs a number in (0, 1], got '{value}'");
}
