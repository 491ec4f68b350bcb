using MLNode.Engines.Llm;
using MLNode.Protocol.Poc;
using MLNode.Tests;
using static TorchSharp.torch;

namespace MLNode.Engines.Tests.Llm;

/// <summary>
/// PoC v2 artifacts of the served model against Gonka's reference (poc_reference.json, computed with
/// the reference node's primitives and hooks on the same checkpoints), within <see cref="PocReference.MaxL2"/>.
/// </summary>
public sealed class QwenPocTests
{
    public static TheoryData<string, string, string> Cases()
    {
        var data = new TheoryData<string, string, string>();
        foreach (var model in TinyModels.Names)
        {
            data.Add(model, "fp32", "fp32");
            data.Add(model, "bf16", "fp32");
            data.Add(model, "fp32_strong_rng", "fp32");
            data.Add(model, "seq_len_256_fp32", "fp32");
            data.Add(model, "seq_len_256_fp32", "bf16");
        }
        return data;
    }

    private static async Task<IReadOnlyList<PocArtifact>> Prove(string model, ScalarType dtype, PocRound round, long[] nonces)
    {
        var prover = new LlmPocProver(TinyModels.Get(model, dtype));
        return await prover.ComputeAsync(round, nonces, TestContext.Current.CancellationToken);
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public async Task Every_artifact_is_within_the_network_tolerance_of_the_reference(string model, string section, string dtype)
    {
        var reference = PocReference.Load(model, section, TinyModels.Get(model, ScalarType.Float32).Config.HiddenSize);
        var ours = await Prove(model, dtype == "fp32" ? ScalarType.Float32 : ScalarType.BFloat16, reference.Round, reference.Nonces);
        Assert.Equal(reference.Nonces, ours.Select(a => a.Nonce));
        foreach (var artifact in ours)
        {
            var distance = PocReference.L2(artifact.VectorB64, reference.Artifacts[artifact.Nonce]);
            Assert.True(distance <= PocReference.MaxL2, $"{model} {section} as {dtype}: nonce {artifact.Nonce} L2 {distance:F4}");
        }
    }

    /// <summary>
    /// Validation with the chain's statistical test (dist 0.2, p_mismatch 0.1, p-value 0.05, as for
    /// Qwen3-235B): the honest reference artifacts pass, the impostor model's are caught.
    /// </summary>
    [Theory]
    [MemberData(nameof(ModelNames))]
    public async Task Validation_accepts_the_reference_and_detects_the_impostor(string model)
    {
        var hidden = TinyModels.Get(model, ScalarType.Float32).Config.HiddenSize;
        var honest = PocReference.Load(model, "fp32", hidden);
        var impostor = PocReference.Load(model, "impostor_fp32", hidden);
        var computed = await Prove(model, ScalarType.BFloat16, honest.Round, honest.Nonces);
        var test = new PocStatTest(DistThreshold: 0.2, PMismatch: 0.1, FraudThreshold: 0.05);

        var accepted = ArtifactValidator.Validate(honest.Nonces, computed, honest.Artifacts, test);
        Assert.Equal(0, accepted.NMismatch);
        Assert.False(accepted.FraudDetected);

        var caught = ArtifactValidator.Validate(impostor.Nonces, computed, impostor.Artifacts, test);
        Assert.True(caught.NMismatch > impostor.Nonces.Length / 2, $"{model}: only {caught.NMismatch} impostor mismatches");
        Assert.True(caught.FraudDetected);
    }

    public static TheoryData<string> ModelNames => new(TinyModels.Names);
}
