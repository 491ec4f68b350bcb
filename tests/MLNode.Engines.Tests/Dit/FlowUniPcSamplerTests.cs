using System.Text.Json;
using MLNode.Engines.Dit.Sampling;
using MLNode.Protocol.Poc;
using MLNode.Runtime.Checkpoints;
using MLNode.Tests;
using static TorchSharp.torch;

namespace MLNode.Engines.Tests.Dit;

/// <summary>
/// The FlowUniPC grids against the official scheduler's (reference_outputs.json), and the sampler replaying the
/// wan-tiny pipeline run (pipeline_tensors.safetensors): from its noise, fed each step's recorded CFG velocity,
/// it must reproduce each step's latent.
/// </summary>
public sealed class FlowUniPcSamplerTests
{
    // The grid is float64 arithmetic rounded once to float32, as numpy then torch do; the issue allows 1e-6.
    private const double SigmaTolerance = 1e-6;

    // Our latents come from the reference's float32 ops in the same order; what may differ is the last bit of a
    // coefficient (its log/expm1/2×2 solve ran on another library) and CPU versus GPU division, ~1e-7 relative per
    // step. 1e-4 (relative to the largest reference value) is the bound and still catches a wrong order,
    // sigma or coefficient, which move latents by 1e-3 or more.
    private const double LatentTolerance = 1e-4;

    private static readonly JsonElement Outputs = ReadJson(Fixtures.Path("wan", "wan-tiny", "reference_outputs.json"));

    [Theory]
    [InlineData("official_40_12.0", 40, 12.0)]
    [InlineData("official_4_12.0", 4, 12.0)]
    [InlineData("official_50_5.0", 50, 5.0)]
    public void Official_grid_matches_the_reference_scheduler(string name, int steps, double shift)
    {
        var reference = Outputs.GetProperty("scheduler_grids").GetProperty(name);

        var schedule = FlowSigmaSchedule.Create(steps, shift);

        Assert.Equal(reference.GetProperty("timesteps").EnumerateArray().Select(t => t.GetInt32()), schedule.Timesteps);
        var sigmas = reference.GetProperty("sigmas").EnumerateArray().Select(s => s.GetDouble()).ToArray();
        Assert.Equal(sigmas.Length, schedule.Sigmas.Count);
        for (var i = 0; i < sigmas.Length; i++)
            Assert.True(Math.Abs(schedule.Sigmas[i] - sigmas[i]) <= SigmaTolerance, $"sigma {i}: {schedule.Sigmas[i]} vs {sigmas[i]}");
    }

    [Fact]
    public void Diffusers_grid_starts_just_below_one()
    {
        // numpy float64 emulation of diffusers' set_timesteps with use_flow_sigmas, flow_shift 12; it differs from the
        // official grid where the spec says it does (973, 957, …, 242 against 972, 956, …, 235).
        int[] expected =
        [
            999, 997, 995, 993, 990, 988, 985, 982, 979, 976, 973, 969, 965, 961, 957, 952, 947, 942, 936, 930,
            923, 915, 907, 898, 889, 878, 866, 852, 837, 820, 800, 777, 750, 719, 680, 633, 573, 496, 391, 242,
        ];

        var schedule = FlowSigmaSchedule.Create(40, 12.0, FlowSigmaGrid.Diffusers);

        Assert.Equal(expected, schedule.Timesteps);
        Assert.Equal((float)(1 - 1e-6), schedule.Sigmas[0]);
        Assert.Equal(0f, schedule.Sigmas[^1]);
    }

    [Fact]
    public void Sampler_reproduces_every_latent_of_the_pipeline_run()
    {
        var job = ReadJson(Fixtures.Path("wan", "wan-tiny", "pipeline_reference.json")).GetProperty("job");
        using var file = SafetensorsFile.Open(Fixtures.Path("wan", "wan-tiny", "pipeline_tensors.safetensors"));
        using var sampler = new FlowUniPcSampler(FlowSigmaSchedule.Create(job.GetProperty("num_inference_steps").GetInt32(), job.GetProperty("flow_shift").GetDouble()));
        var latent = file.Load("noise", CPU);

        for (var step = 0; step < sampler.Schedule.Steps; step++)
        {
            using var velocity = file.Load($"step{step}_velocity", CPU);
            var next = sampler.Step(velocity, latent);
            latent.Dispose();
            latent = next;

            using var reference = file.Load($"step{step}_latent", CPU);
            var worst = (latent - reference).abs().max().item<float>();
            var scale = reference.abs().max().item<float>();
            Assert.True(worst <= LatentTolerance * scale, $"step {step}: max |Δ| {worst} > {LatentTolerance} × max |ref| {scale}");
        }
        Assert.True(sampler.IsFinished);
        latent.Dispose();
    }

    [Fact]
    public void Last_step_returns_the_x0_prediction()
    {
        using var sampler = new FlowUniPcSampler(FlowSigmaSchedule.Create(1, 12.0));
        using var sample = randn(2, 3, generator: new TorchSharp.torch.Generator(7));
        using var velocity = randn(2, 3, generator: new TorchSharp.torch.Generator(8));

        using var next = sampler.Step(velocity, sample);

        using var x0 = sample - velocity * sampler.Schedule.Sigmas[0];
        Assert.True(next.eq(x0).all().item<bool>());
    }

    // Resuming must give the uninterrupted run's bits, not nearly them: a validator replays a committed step and compares
    // hashes. Six steps cover the first-order warm-up, the second-order middle and the first-order last step.
    [Fact]
    public void A_sampler_resumed_at_any_step_from_the_runs_state_steps_to_the_same_bits()
    {
        var schedule = FlowSigmaSchedule.Create(6, 12.0);
        using var sampler = new FlowUniPcSampler(schedule);
        var latent = randn(new long[] { 2, 3, 4 }, generator: new TorchSharp.torch.Generator(1));

        for (var k = 0; k < schedule.Steps; k++)
        {
            using var velocity = randn(new long[] { 2, 3, 4 }, generator: new TorchSharp.torch.Generator((ulong)(100 + k)));
            using var resumed = FlowUniPcSampler.Resume(schedule, k, sampler.LastSample, sampler.PreviousX0Prediction, sampler.SecondPreviousX0Prediction);
            if (k >= 1)
            {
                using var repeated = resumed.RepeatLastPrediction();
                Assert.Equal(Bits(latent), Bits(repeated));
            }

            var next = sampler.Step(velocity, latent);
            using var replayed = resumed.Step(velocity, latent);

            Assert.Equal(Bits(next), Bits(replayed));
            Assert.Equal(k + 1, resumed.StepIndex);
            latent.Dispose();
            latent = next;
        }
        latent.Dispose();
    }

    [Fact]
    public void Resuming_without_the_state_a_step_needs_is_refused()
    {
        var schedule = FlowSigmaSchedule.Create(4, 12.0);
        using var x = zeros(2);

        Assert.Throws<ArgumentException>(() => FlowUniPcSampler.Resume(schedule, 1, x, null, null));
        Assert.Throws<ArgumentException>(() => FlowUniPcSampler.Resume(schedule, 2, x, x, null));
        Assert.Throws<ArgumentOutOfRangeException>(() => FlowUniPcSampler.Resume(schedule, 4, x, x, x));
        using var first = FlowUniPcSampler.Resume(schedule, 0, null, null, null);
        Assert.Throws<InvalidOperationException>(() => first.RepeatLastPrediction());
    }

    [Fact]
    public void Expert_and_guidance_follow_the_reference_trace()
    {
        var sampling = Outputs.GetProperty("sampling");
        var guidance = new WanExpertGuidance(
            sampling.GetProperty("boundary_timestep").GetInt32(), sampling.GetProperty("guidance_high").GetDouble(), sampling.GetProperty("guidance_low").GetDouble());
        var schedule = FlowSigmaSchedule.Create(sampling.GetProperty("steps").GetInt32(), sampling.GetProperty("shift").GetDouble());

        foreach (var entry in sampling.GetProperty("trace").EnumerateArray())
        {
            var timestep = schedule.Timesteps[entry.GetProperty("step").GetInt32()];
            Assert.Equal(entry.GetProperty("timestep").GetInt32(), timestep);
            Assert.Equal(entry.GetProperty("expert").GetString() == "high" ? WanRouting.HighNoiseExpert : WanRouting.LowNoiseExpert, guidance.Expert(timestep));
            Assert.Equal(entry.GetProperty("guidance").GetDouble(), guidance.Guidance(timestep));
        }
    }

    [Fact]
    public void Boundary_ratio_0_875_gives_26_high_noise_steps_of_40()
    {
        var guidance = WanExpertGuidance.FromBoundaryRatio(0.875, 4.0, 3.0);
        var schedule = FlowSigmaSchedule.Create(40, 12.0);

        Assert.Equal(875, guidance.BoundaryTimestep);
        Assert.Equal(26, schedule.Timesteps.Count(t => guidance.Expert(t) == WanRouting.HighNoiseExpert));
        Assert.Equal(WanRouting.HighNoiseExpert, guidance.Expert(875));
        Assert.Equal(WanRouting.LowNoiseExpert, guidance.Expert(874));
    }

    [Fact]
    public void Guidance_moves_from_the_unconditional_towards_the_conditional_velocity()
    {
        var guidance = new WanExpertGuidance(875, 4.0, 3.0);
        using var conditional = tensor(new[] { 1f, 2f });
        using var unconditional = tensor(new[] { 0.5f, 3f });

        using var high = guidance.Guide(conditional, unconditional, timestep: 900);
        using var low = guidance.Guide(conditional, unconditional, timestep: 800);

        Assert.Equal(new[] { 2.5f, -1f }, high.data<float>().ToArray());
        Assert.Equal(new[] { 2f, 0f }, low.data<float>().ToArray());
    }

    private static byte[] Bits(Tensor tensor)
    {
        using var contiguous = tensor.contiguous();
        return contiguous.bytes.ToArray();
    }

    private static JsonElement ReadJson(string path)
    {
        using var document = JsonDocument.Parse(File.ReadAllBytes(path));
        return document.RootElement.Clone();
    }
}
