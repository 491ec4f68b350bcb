using TorchSharp;
using static TorchSharp.torch;

namespace MLNode.Engines.Dit.Sampling;

/// <summary>
/// Wan's FlowUniPCMultistepScheduler (wan/utils/fm_solvers_unipc.py: UniPC with the B(h) = e^h − 1 variant "bh2",
/// solver order 2, x0 prediction, lower order at the last step, final sigma 0) for a flow-matching model. With
/// α = 1 − σ, λ = log α − log σ and h the λ step, each <see cref="Step"/> takes the model's velocity v at the
/// current latent x̃_k and
/// <code>
///   m_k     = x̃_k − σ_k v                                     x0 prediction
///   x_k     = UniC(x_{k−1}, m_{k−2}, m_{k−1}, m_k)             corrects x̃_k (from step 1 on)
///   x̃_{k+1} = UniP(x_k, m_{k−1}, m_k)                         predicts the next latent
///   with both of the form  σ_t/σ_s · x − α_t (e^{−h} − 1) m_s − α_t (e^{−h} − 1) · (ρ-weighted differences of m)
/// </code>
/// Order 1 at step 0 (warm-up) and at the last step, 2 between; at σ = 0 the last step returns m_{S−1}.
/// The arithmetic is the reference's, op for op, on float32 tensors: scalar coefficients are float32 (logs and
/// expm1 rounded from float64, the 2×2 solve of the order-2 corrector exact then rounded), so a replay of any step
/// from its state (<see cref="LastSample"/>, the two previous x0 predictions) gives the same bits on one device.
/// </summary>
public sealed class FlowUniPcSampler(FlowSigmaSchedule schedule) : IDisposable
{
    public const int SolverOrder = 2;

    // m_{k−2}, m_{k−1} before a step's shift; m_{k−1}, m_k after it (model_outputs of the reference).
    private readonly Tensor?[] _x0Predictions = new Tensor?[SolverOrder];

    public FlowSigmaSchedule Schedule { get; } = schedule ?? throw new ArgumentNullException(nameof(schedule));

    /// <summary>The step the next <see cref="Step"/> call performs.</summary>
    public int StepIndex { get; private set; }

    public bool IsFinished => StepIndex == Schedule.Steps;

    /// <summary>The integer timestep the model sees at the current step.</summary>
    public int Timestep => Schedule.Timesteps[StepIndex];

    /// <summary>The corrected latent x_{k−1} the last predictor started from (the reference's <c>last_sample</c>).</summary>
    public Tensor? LastSample { get; private set; }

    /// <summary>m_{k−1}, the x0 prediction of the step before the current one (after a step: that step's m).</summary>
    public Tensor? PreviousX0Prediction => _x0Predictions[1];

    /// <summary>m_{k−2}, the x0 prediction two steps before the current one.</summary>
    public Tensor? SecondPreviousX0Prediction => _x0Predictions[0];

    /// <summary>
    /// A sampler at step <paramref name="step"/> in the state an uninterrupted run has there: x_{k−1}
    /// (<paramref name="lastSample"/>), m_{k−1} and m_{k−2}; step 0 takes none of them, step 1 no m_{k−2}. Its next
    /// <see cref="Step"/> gives the run's bits, since the solver's order at each step is a function of the step alone.
    /// The tensors are copied; the caller keeps its own.
    /// </summary>
    public static FlowUniPcSampler Resume(FlowSigmaSchedule schedule, int step, Tensor? lastSample, Tensor? previousX0, Tensor? secondPreviousX0)
    {
        ArgumentNullException.ThrowIfNull(schedule);
        ArgumentOutOfRangeException.ThrowIfNegative(step);
        ArgumentOutOfRangeException.ThrowIfGreaterThanOrEqual(step, schedule.Steps);
        if (step >= 1 && (lastSample is null || previousX0 is null))
            throw new ArgumentException($"step {step} resumes from the last sample x_{{k−1}} and m_{{k−1}}");
        if (step >= 2 && secondPreviousX0 is null)
            throw new ArgumentException($"step {step} resumes from m_{{k−2}} as well");
        var sampler = new FlowUniPcSampler(schedule) { StepIndex = step };
        if (step == 0) return sampler;
        sampler.LastSample = lastSample!.clone().DetachFromDisposeScope();
        sampler._x0Predictions[1] = previousX0!.clone().DetachFromDisposeScope();
        if (step >= 2) sampler._x0Predictions[0] = secondPreviousX0!.clone().DetachFromDisposeScope();
        return sampler;
    }

    /// <summary>The x0 prediction m = x̃ − σ·v of a (guided) velocity at a sample, the first op of every step.</summary>
    public static Tensor PredictX0(Tensor sample, Tensor velocity, float sigma) => sample - velocity * sigma;

    /// <summary>
    /// x̃_k as the previous step's predictor made it from <see cref="LastSample"/>, m_{k−1} and m_{k−2}: a resumed state
    /// is the run's own only if this gives the sample it resumes at (from step 1 on).
    /// </summary>
    public Tensor RepeatLastPrediction()
    {
        if (StepIndex == 0 || LastSample is null) throw new InvalidOperationException("step 0 has no previous prediction");
        using var scope = NewDisposeScope();
        return Predictor(LastSample, Order(StepIndex - 1), StepIndex - 1).MoveToOuterDisposeScope();
    }

    /// <summary>
    /// One sampling step: <paramref name="velocity"/> is the model's (guided) flow prediction at <paramref name="sample"/>,
    /// the latent x̃_k at <see cref="Timestep"/>; returns x̃_{k+1}, float32 like its inputs.
    /// </summary>
    public Tensor Step(Tensor velocity, Tensor sample)
    {
        ArgumentNullException.ThrowIfNull(velocity);
        ArgumentNullException.ThrowIfNull(sample);
        if (IsFinished) throw new InvalidOperationException($"all {Schedule.Steps} steps have run");
        if (sample.dtype != ScalarType.Float32 || velocity.dtype != ScalarType.Float32)
            throw new ArgumentException($"the sampler state is float32; got a {sample.dtype} sample and a {velocity.dtype} velocity");

        using var scope = NewDisposeScope();
        var k = StepIndex;
        var x0 = PredictX0(sample, velocity, Sigma(k));
        var x = LastSample is null ? sample.clone() : Corrector(x0, LastSample, Order(k - 1), k);

        _x0Predictions[0]?.Dispose();
        _x0Predictions[0] = _x0Predictions[1];
        _x0Predictions[1] = x0.DetachFromDisposeScope();

        LastSample?.Dispose();
        LastSample = x.DetachFromDisposeScope();
        var next = Predictor(x, Order(k), k);

        StepIndex++;
        return next.MoveToOuterDisposeScope();
    }

    public void Dispose()
    {
        foreach (var tensor in _x0Predictions) tensor?.Dispose();
        LastSample?.Dispose();
    }

    /// <summary>UniP: from the corrected x_k at σ_k to x̃_{k+1} at σ_{k+1}, with m_k and, at order 2, m_{k−1}.</summary>
    private Tensor Predictor(Tensor x, int order, int k)
    {
        var step = new UniStep(Sigma(k), Sigma(k + 1));
        var m0 = _x0Predictions[1]!;
        var predicted = step.FirstOrder(x, m0);
        if (order == 1) return predicted;
        // Order 2 uses ρ = 1/2 for its single difference, as the reference does instead of solving for it.
        var rk = step.Ratio(Sigma(k - 1));
        var d1 = (_x0Predictions[0]! - m0) / rk;
        return predicted - d1 * 0.5f * (step.AlphaT * step.BH);
    }

    /// <summary>
    /// UniC: re-derives x_k from x_{k−1} (<paramref name="lastSample"/>) with the new x0 prediction m_k, using m_{k−1}
    /// and, at order 2, m_{k−2}; <paramref name="order"/> is the order the previous predictor ran at.
    /// </summary>
    private Tensor Corrector(Tensor x0, Tensor lastSample, int order, int k)
    {
        var step = new UniStep(Sigma(k - 1), Sigma(k));
        var m0 = _x0Predictions[1]!;
        var corrected = step.FirstOrder(lastSample, m0);
        var d1T = x0 - m0;
        if (order == 1) return corrected - d1T * 0.5f * (step.AlphaT * step.BH);

        var rk = step.Ratio(Sigma(k - 2));
        var d1 = (_x0Predictions[0]! - m0) / rk;
        // ρ solves [1 1; r_k 1] ρ = b with b_i = i! · (h φ_i(h) terms) / B(h), as the reference builds them.
        var hPhiK = step.BH / step.Hh - 1f;
        var b1 = hPhiK * 1f / step.BH;
        hPhiK = hPhiK / step.Hh - 1f / 2f;
        var b2 = hPhiK * 2f / step.BH;
        var (rho0, rho1) = Solve2x2(rk, b1, b2);
        return corrected - (d1 * rho0 + d1T * rho1) * (step.AlphaT * step.BH);
    }

    private float Sigma(int index) => Schedule.Sigmas[index];

    /// <summary>
    /// The order step <paramref name="step"/> runs at: min(2, S − k) with <c>lower_order_final</c>, and at most one more
    /// than the steps already run (the reference's <c>lower_order_nums</c>, which is min(k, 2) at step k).
    /// </summary>
    private int Order(int step) => Math.Min(Math.Min(SolverOrder, Schedule.Steps - step), Math.Min(step, SolverOrder) + 1);

    /// <summary>
    /// The float32 coefficients of a UniP or UniC update from σ_s to σ_t that both share: α_t, λ_s, h = λ_t − λ_s,
    /// −h, and B(h) = e^{−h} − 1, which in bh2 is also h·φ_1 (the reference computes it twice under both names).
    /// </summary>
    private readonly record struct UniStep
    {
        public UniStep(float sigmaS, float sigmaT)
        {
            (SigmaS, SigmaT) = (sigmaS, sigmaT);
            AlphaT = 1f - sigmaT;
            LambdaS = Lambda(sigmaS);
            H = Lambda(sigmaT) - LambdaS;
            Hh = -H;
            BH = Expm1(Hh);
        }

        public float SigmaS { get; }
        public float SigmaT { get; }
        public float AlphaT { get; }
        public float LambdaS { get; }
        public float H { get; }
        public float Hh { get; }
        public float BH { get; }

        /// <summary>σ_t/σ_s · x − α_t (e^{−h} − 1) m: the first-order update both start from.</summary>
        public Tensor FirstOrder(Tensor x, Tensor m) => x * (SigmaT / SigmaS) - m * (AlphaT * BH);

        /// <summary>r = (λ at an earlier σ − λ_s) / h, the step ratio of an x0 difference.</summary>
        public float Ratio(float earlierSigma) => (Lambda(earlierSigma) - LambdaS) / H;
    }

    /// <summary>λ = log α − log σ in float32 (+∞ at σ = 0).</summary>
    private static float Lambda(float sigma) => (float)Math.Log(1f - sigma) - (float)Math.Log(sigma);

    /// <summary>e^x − 1 rounded to float32 from float64 (a short series near 0, where exp(x) − 1 would cancel).</summary>
    private static float Expm1(float x)
    {
        double d = x;
        return (float)(Math.Abs(d) < 1e-5 ? d + d * d / 2 + d * d * d / 6 : Math.Exp(d) - 1);
    }

    /// <summary>The solution of [[1, 1], [r, 1]] · (ρ0, ρ1) = (b1, b2), computed exactly in float64 and rounded.</summary>
    private static (float Rho0, float Rho1) Solve2x2(float r, float b1, float b2)
    {
        var determinant = 1.0 - r;
        return ((float)((b1 - (double)b2) / determinant), (float)((b2 - (double)r * b1) / determinant));
    }
}
