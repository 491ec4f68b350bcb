namespace MLNode.Engines.Dit;

/// <summary>
/// Turns a request into the spec that is hashed and run: defaults filled in, prompts canonical, every field checked
/// against what the model can take and what the worker accepts. A field that fails raises a
/// <see cref="WanJobException"/> naming it (the request field, as the API spells it).
/// </summary>
public sealed class WanJobPlanner(WanModelFacts model, WanJobDefaults defaults, WanJobLimits limits)
{
    public WanModelFacts Model { get; } = model ?? throw new ArgumentNullException(nameof(model));
    public WanJobDefaults Defaults { get; } = defaults ?? throw new ArgumentNullException(nameof(defaults));
    public WanJobLimits Limits { get; } = limits ?? throw new ArgumentNullException(nameof(limits));

    /// <summary>The same model and defaults under a worker's own limits.</summary>
    public WanJobPlanner WithLimits(WanJobLimits workerLimits) => new(Model, Defaults, workerLimits);

    public WanJobSpec Plan(WanJobRequest request)
    {
        ArgumentNullException.ThrowIfNull(request);
        var prompt = WanJobSpec.CanonicalPrompt(request.Prompt ?? "");
        if (prompt.Length == 0) throw new WanJobException("prompt", "prompt must not be empty");
        var negative = request.NegativePrompt is null ? WanJobSpec.OfficialNegativePrompt : WanJobSpec.CanonicalPrompt(request.NegativePrompt);

        var width = request.Width ?? Defaults.Width;
        var height = request.Height ?? Defaults.Height;
        var multiple = Model.SizeMultiple;
        if (width <= 0 || width % multiple != 0) throw new WanJobException("width", $"width must be a positive multiple of {multiple}, got {width}");
        if (height <= 0 || height % multiple != 0) throw new WanJobException("height", $"height must be a positive multiple of {multiple}, got {height}");
        if ((long)width * height > Limits.MaxPixels)
            throw new WanJobException("size", $"{width}×{height} is {(long)width * height} pixels, over this worker's limit of {Limits.MaxPixels}");

        var frames = request.NumFrames ?? Defaults.NumFrames;
        var stride = Model.VaeTemporalStride;
        if (frames <= 0 || (frames - 1) % stride != 0)
            throw new WanJobException("num_frames", $"num_frames must be {stride}k+1 (1, {1 + stride}, {1 + 2 * stride}, …), got {frames}");
        if (frames > Limits.MaxFrames) throw new WanJobException("num_frames", $"num_frames {frames} is over this worker's limit of {Limits.MaxFrames}");

        var fps = request.Fps ?? Defaults.Fps;
        if (fps is <= 0 or > 120) throw new WanJobException("fps", $"fps must be in 1..120, got {fps}");
        var steps = request.NumInferenceSteps ?? Defaults.NumInferenceSteps;
        if (steps <= 0) throw new WanJobException("num_inference_steps", $"num_inference_steps must be positive, got {steps}");
        if (steps > Limits.MaxSteps) throw new WanJobException("num_inference_steps", $"num_inference_steps {steps} is over this worker's limit of {Limits.MaxSteps}");

        var shift = request.FlowShift ?? Defaults.FlowShift;
        if (!double.IsFinite(shift) || shift <= 0) throw new WanJobException("flow_shift", $"flow_shift must be a positive number, got {shift}");
        var boundary = request.BoundaryRatio ?? Defaults.BoundaryRatio;
        if (!double.IsFinite(boundary) || boundary is < 0 or > 1) throw new WanJobException("boundary_ratio", $"boundary_ratio must be in [0, 1], got {boundary}");
        var high = Guidance("guidance_scale", request.GuidanceScale ?? Defaults.GuidanceScaleHighNoise);
        var low = Guidance("guidance_scale_2", request.GuidanceScale2 ?? Defaults.GuidanceScaleLowNoise);

        var solver = request.SampleSolver ?? Defaults.SampleSolver;
        if (solver is not (WanJobSpec.UniPcOfficial or WanJobSpec.UniPcDiffusers))
            throw new WanJobException("sample_solver", $"sample_solver must be '{WanJobSpec.UniPcOfficial}' or '{WanJobSpec.UniPcDiffusers}', got '{solver}'");

        return new WanJobSpec(Model.Model, Model.Revision, Model.Weights, prompt, negative, width, height, frames, fps, steps,
            shift, boundary, high, low, solver, request.Seed ?? Defaults.Seed, WanJobSpec.NoiseAlgorithm, Model.Precision);
    }

    public WanJobCost Cost(WanJobSpec spec) => WanJobCost.Of(spec, Model);

    private static double Guidance(string field, double scale) =>
        double.IsFinite(scale) && scale >= 0 ? scale : throw new WanJobException(field, $"{field} must be a non-negative number, got {scale}");
}
