namespace MLNode.Engines.Llm.Sampling;

/// <summary>Which distribution logprobs report: the model's, or the one actually sampled from (Gonka's default).</summary>
public enum LogprobsMode { Raw, Processed }

/// <summary>Per-request sampling, as vLLM reads it: temperature 0 is greedy; top_k ≤ 0 disables top-k.</summary>
public sealed record SamplingParams(
    double Temperature = 1.0,
    double TopP = 1.0,
    int TopK = 0,
    double MinP = 0.0,
    long? Seed = null,
    int TopLogprobs = 0,
    LogprobsMode Mode = LogprobsMode.Processed)
{
    public bool Greedy => Temperature < 1e-5;
}

/// <summary>One emitted token with its log-probability and the top alternatives (descending, ties by lower id).</summary>
public sealed record TokenLogprob(int Token, float Logprob, IReadOnlyList<(int Token, float Logprob)> Top);
