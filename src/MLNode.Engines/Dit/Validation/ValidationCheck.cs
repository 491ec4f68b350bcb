using System.Diagnostics;

namespace MLNode.Engines.Dit.Validation;

/// <summary>How a check's value is held against its threshold.</summary>
public static class CheckRule
{
    public const string AtLeast = "at_least";
    public const string AtMost = "at_most";
    public const string Equal = "equals";
}

/// <summary>
/// One named test of a verdict: what was measured (<see cref="Value"/>: a number, a count or a hash), what it is held
/// against (<see cref="Threshold"/>, by <see cref="Rule"/>), and whether it passed. <see cref="Detail"/> says in words
/// what was compared, for people reading a rejection.
/// </summary>
public sealed record ValidationCheck(string Name, object Value, object Threshold, string Rule, bool Pass, string? Detail = null)
{
    public static ValidationCheck AtLeast(string name, double value, double threshold, string? detail = null) =>
        new(name, value, threshold, CheckRule.AtLeast, value >= threshold, detail);

    public static ValidationCheck AtMost(string name, double value, double threshold, string? detail = null) =>
        new(name, value, threshold, CheckRule.AtMost, value <= threshold, detail);

    public static ValidationCheck Equal(string name, string value, string expected, string? detail = null) =>
        new(name, value, expected, CheckRule.Equal, string.Equals(value, expected, StringComparison.Ordinal), detail);

    public static ValidationCheck Equal(string name, long value, long expected, string? detail = null) =>
        new(name, value, expected, CheckRule.Equal, value == expected, detail);

    public static ValidationCheck Equal(string name, double value, double expected, string? detail = null) =>
        new(name, value, expected, CheckRule.Equal, value == expected, detail);

    /// <summary>A yes-or-no fact that must hold (a proof verifies, hashes match).</summary>
    public static ValidationCheck Holds(string name, bool value, string? detail = null) =>
        new(name, value, true, CheckRule.Equal, value, detail);
}

/// <summary>
/// The outcome of validating one job: the checks made, in order, and the decision rule of spec §5.6 (D): accept iff
/// every check passed. Each mode adds its own checks (V0's delivery checks, V1's decode and step checks, V2's
/// regeneration), so a verdict lists exactly what was tested. <see cref="BitExact"/> says whether recomputed frames
/// were byte for byte the executor's (null when nothing was recomputed); it is reported, not required, since honest
/// runs on other GPUs differ by a few levels.
/// </summary>
public sealed class ValidationVerdict
{
    private readonly List<ValidationCheck> _checks = [];
    private readonly Dictionary<string, double> _timingsMs = new(StringComparer.Ordinal);

    public IReadOnlyList<ValidationCheck> Checks => _checks;

    /// <summary>Wall time of each stage that ran, in milliseconds.</summary>
    public IReadOnlyDictionary<string, double> TimingsMs => _timingsMs;

    public bool? BitExact { get; set; }

    public bool Accept => _checks.Count > 0 && _checks.TrueForAll(c => c.Pass);

    /// <summary>Adds <paramref name="check"/>; true when it passed.</summary>
    public bool Add(ValidationCheck check)
    {
        ArgumentNullException.ThrowIfNull(check);
        _checks.Add(check);
        return check.Pass;
    }

    /// <summary>Runs <paramref name="stage"/> and records its wall time under <paramref name="name"/>.</summary>
    public async Task<T> TimeAsync<T>(string name, Func<Task<T>> stage)
    {
        ArgumentNullException.ThrowIfNull(stage);
        var clock = Stopwatch.StartNew();
        try
        {
            return await stage();
        }
        finally
        {
            _timingsMs[name] = clock.Elapsed.TotalMilliseconds;
        }
    }

    public T Time<T>(string name, Func<T> stage)
    {
        ArgumentNullException.ThrowIfNull(stage);
        var clock = Stopwatch.StartNew();
        try
        {
            return stage();
        }
        finally
        {
            _timingsMs[name] = clock.Elapsed.TotalMilliseconds;
        }
    }
}

/// <summary>
/// Input a validation cannot run on (a malformed manifest, an unreadable video, a latent file without "x0"): the
/// caller's fault, answered with a 4xx naming <see cref="Field"/>, the request field at fault.
/// </summary>
public sealed class ValidationInputException(string field, string message) : Exception(message)
{
    public string Field { get; } = field;
}
