namespace MLNode.Worker.Hosting;

/// <summary>Settings of the worker process (section "Worker"; CLI flags and MLNODE_ environment variables override).</summary>
public sealed class WorkerOptions
{
    public const string Section = "Worker";

    /// <summary>models.json to serve from; the file shipped beside the executable by default.</summary>
    public string Models { get; set; } = Path.Combine(AppContext.BaseDirectory, "models.json");

    /// <summary>Management + OpenAI port (the reference node's 8080).</summary>
    public int Port { get; set; } = 8080;

    /// <summary>OpenAI-only port (the reference node's INFERENCE_PORT, 5000).</summary>
    public int InferencePort { get; set; } = 5000;

    public string Host { get; set; } = "0.0.0.0";

    /// <summary>Model id to load at start; the demo LLM when the worker runs with the shipped registry and no configuration.</summary>
    public string? Load { get; set; }

    /// <summary>Where generated demo models and other worker state live.</summary>
    public string CacheDir { get; set; } = Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".cache", "mlnode");

    /// <summary>Console log format: "text" (one line per event) or "json" (structured, for log collectors).</summary>
    public string LogFormat { get; set; } = "text";

    public const string StepReplay = "step";
    public const string TeacherForcedReplay = "teacher_forced";

    /// <summary>
    /// How a chat request with enforced_tokens (a validator's replay) runs: "step" decodes token by token
    /// exactly like the executor (same numerics, bit-identical logprobs on the same hardware);
    /// "teacher_forced" scores the whole claimed output in one forward (faster, float-rounding differences).
    /// </summary>
    public string ReplayMode { get; set; } = StepReplay;

    /// <summary>Largest JSON body a management route accepts.</summary>
    public long MaxRequestBytes { get; set; } = 1 << 20;
}
