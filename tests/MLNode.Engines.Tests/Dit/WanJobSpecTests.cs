using System.Text;
using System.Text.Json;
using MLNode.Engines.Dit;
using MLNode.Engines.Dit.Vae;
using MLNode.Tests;

namespace MLNode.Engines.Tests.Dit;

/// <summary>
/// The job spec: defaults filled in before hashing, prompts canonical, the canonical JSON and its SHA-256 stable, every
/// bad field refused by name, and the price (spec §6.1) computable from the request alone.
/// </summary>
public sealed class WanJobSpecTests
{
    private static readonly WanJobPlanner Tiny = new(TinyFacts(), new WanJobDefaults(), new WanJobLimits());

    [Fact]
    public void Defaults_are_filled_in_and_returned()
    {
        var spec = Tiny.Plan(new WanJobRequest("a cat"));

        Assert.Equal((832, 480, 81, 16, 40), (spec.Width, spec.Height, spec.NumFrames, spec.Fps, spec.NumInferenceSteps));
        Assert.Equal((12.0, 0.875, 4.0, 3.0), (spec.FlowShift, spec.BoundaryRatio, spec.GuidanceScaleHighNoise, spec.GuidanceScaleLowNoise));
        Assert.Equal(WanJobSpec.OfficialNegativePrompt, spec.NegativePrompt);
        Assert.Equal((WanJobSpec.UniPcOfficial, 42ul, WanJobSpec.NoiseAlgorithm), (spec.SampleSolver, spec.Seed, spec.Noise));
        Assert.Equal(spec.CanonicalJson(), WanJobSpec.Parse(JsonDocument.Parse(spec.CanonicalJson()).RootElement).CanonicalJson());
    }

    [Fact]
    public void A_spec_planned_again_from_its_request_is_itself()
    {
        var spec = Tiny.Plan(new WanJobRequest("  a  cat\n", "", 64, 32, 9, 8, 4, 5.0, 0.9, 2.5, 1.5, WanJobSpec.UniPcDiffusers, 7));

        Assert.Equal(spec.JobId, Tiny.Plan(spec.ToRequest()).JobId);
    }

    [Theory]
    [InlineData("width", "\"64\"", "width")]
    [InlineData("seed", "-1", "seed")]
    [InlineData("flow_shift", "null", "flow_shift")]
    [InlineData("num_frames", "9.5", "num_frames")]
    [InlineData("weights", "[1]", "weights.0")]
    [InlineData("weights", "[{\"path\": \"a\"}]", "weights.0.sha256")]
    public void A_spec_with_a_mistyped_field_is_refused_naming_it(string field, string json, string named)
    {
        var spec = System.Text.Json.Nodes.JsonNode.Parse(Tiny.Plan(new WanJobRequest("a cat")).CanonicalJson())!.AsObject();
        spec[field] = System.Text.Json.Nodes.JsonNode.Parse(json);

        var error = Assert.Throws<WanJobException>(() => WanJobSpec.Parse(JsonDocument.Parse(spec.ToJsonString()).RootElement));

        Assert.Equal(named, error.Field);
    }

    [Fact]
    public void An_explicit_empty_negative_prompt_stays_empty()
    {
        Assert.Equal("", Tiny.Plan(new WanJobRequest("a cat", NegativePrompt: "  ")).NegativePrompt);
    }

    [Fact]
    public void Prompts_are_nfc_trimmed_with_white_space_collapsed()
    {
        Assert.Equal("a caf\u00e9 on the hill", WanJobSpec.CanonicalPrompt("  a cafe\u0301  on\t\n the hill \u3000"));
        var a = Tiny.Plan(new WanJobRequest(" a  cat "));
        var b = Tiny.Plan(new WanJobRequest("a cat"));
        Assert.Equal(a.JobId, b.JobId);
    }

    [Fact]
    public void Canonical_json_has_a_fixed_form_and_its_sha256_is_the_job_id()
    {
        var spec = Tiny.Plan(new WanJobRequest("a cat", NegativePrompt: "blurry", Width: 64, Height: 64, NumFrames: 9, NumInferenceSteps: 4, Seed: 7));

        var json = Encoding.UTF8.GetString(spec.CanonicalJson());

        Assert.Equal(
            """{"model":"wan-tiny","model_revision":"fixture","weights":[{"path":"a.safetensors","sha256":"aa"},{"path":"b.safetensors","sha256":"bb"}],"prompt":"a cat","negative_prompt":"blurry","width":64,"height":64,"num_frames":9,"fps":16,"num_inference_steps":4,"flow_shift":12,"boundary_ratio":0.875,"guidance_scale_high_noise":4,"guidance_scale_low_noise":3,"sample_solver":"unipc-official","seed":7,"noise":"philox-torch-cuda-randn","precision":"float32"}""",
            json);
        Assert.Equal(Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData(Encoding.UTF8.GetBytes(json))), spec.JobId);
        Assert.NotEqual(spec.JobId, (spec with { Seed = 8 }).JobId);
        // Non-ASCII prompts are written as UTF-8, not \u escapes, so the hashed bytes are the prompt's own.
        Assert.Contains("色调艳丽", Encoding.UTF8.GetString(Tiny.Plan(new WanJobRequest("a cat")).CanonicalJson()), StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("width", 70, null, null, null)]
    [InlineData("height", null, 40, null, null)]
    [InlineData("num_frames", null, null, 8, null)]
    [InlineData("num_frames", null, null, 133, null)]
    [InlineData("num_inference_steps", null, null, null, 0)]
    [InlineData("num_inference_steps", null, null, null, 101)]
    [InlineData("size", 1920, 1088, null, null)]
    public void Bad_fields_are_refused_by_name(string field, int? width, int? height, int? frames, int? steps)
    {
        var error = Assert.Throws<WanJobException>(() => Tiny.Plan(new WanJobRequest("a cat", Width: width, Height: height, NumFrames: frames, NumInferenceSteps: steps)));

        Assert.Equal(field, error.Field);
    }

    [Fact]
    public void Other_fields_are_refused_by_name()
    {
        Assert.Equal("prompt", Assert.Throws<WanJobException>(() => Tiny.Plan(new WanJobRequest(" \n"))).Field);
        Assert.Equal("sample_solver", Assert.Throws<WanJobException>(() => Tiny.Plan(new WanJobRequest("a", SampleSolver: "euler"))).Field);
        Assert.Equal("boundary_ratio", Assert.Throws<WanJobException>(() => Tiny.Plan(new WanJobRequest("a", BoundaryRatio: 1.5))).Field);
        Assert.Equal("guidance_scale_2", Assert.Throws<WanJobException>(() => Tiny.Plan(new WanJobRequest("a", GuidanceScale2: double.NaN))).Field);
        Assert.Equal("flow_shift", Assert.Throws<WanJobException>(() => Tiny.Plan(new WanJobRequest("a", FlowShift: 0))).Field);
    }

    /// <summary>
    /// The A14B expert's coefficients and the 480p 81-frame job of spec §6.1: α 2.4327e10, β 8.192e5, γ 2.20e12,
    /// N 32,760, F(N) 1.678e15, 80 forwards, 1.343e17 FLOPs (the spec's 4 significant digits; γ to its 3).
    /// </summary>
    [Fact]
    public void A14b_price_matches_the_spec_table()
    {
        var dit = WanTransformerConfig.Parse(
            """{"_class_name": "WanTransformer3DModel", "num_attention_heads": 40, "attention_head_dim": 128, "ffn_dim": 13824, "num_layers": 40, "text_dim": 4096, "in_channels": 16, "out_channels": 16, "patch_size": [1, 2, 2], "freq_dim": 256, "cross_attn_norm": true, "eps": 1e-6, "qk_norm": "rms_norm_across_heads"}""",
            "a14b");
        var vae = WanVaeConfig.FromFile(Fixtures.Path("wan", "wan-tiny", "vae", "config.json"));
        var facts = WanModelFacts.Of("Wan-AI/Wan2.2-T2V-A14B-Diffusers", "main", [], "bfloat16", dit, vae);
        var planner = new WanJobPlanner(facts, new WanJobDefaults(), new WanJobLimits());

        var cost = planner.Cost(planner.Plan(new WanJobRequest("a cat")));

        Assert.Equal(2.4327e10, facts.Flops.Alpha, 2.4327e10 * 1e-4);
        Assert.Equal(8.192e5, facts.Flops.Beta);
        Assert.Equal(2.20e12, facts.Flops.Gamma, 2.20e12 * 5e-3);
        Assert.Equal(32_760, cost.LatentPatches);
        Assert.Equal(80, cost.ForwardPasses);
        Assert.Equal(1.678e15, cost.FlopsPerForward, 1.678e15 * 5e-4);
        Assert.Equal(1.343e17, cost.CostUnits, 1.343e17 * 5e-4);
    }

    private static WanModelFacts TinyFacts()
    {
        var dit = WanTransformerConfig.FromFile(Fixtures.Path("wan", "wan-tiny", "transformer", "config.json"));
        var vae = WanVaeConfig.FromFile(Fixtures.Path("wan", "wan-tiny", "vae", "config.json"));
        return WanModelFacts.Of("wan-tiny", "fixture", [new("b.safetensors", "bb"), new("a.safetensors", "aa")], "float32", dit, vae);
    }
}
