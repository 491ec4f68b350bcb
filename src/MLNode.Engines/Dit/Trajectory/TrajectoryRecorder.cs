using MLNode.Protocol.Diffusion;
using static TorchSharp.torch;

namespace MLNode.Engines.Dit.Trajectory;

/// <summary>
/// What denoising step <see cref="Step"/> saw and made: the model input x̃_k (<see cref="Sample"/>), the sampler's last
/// sample x_{k−1} (null at step 0), the guided velocity v_k and the sampler's x0 prediction m_k, all float32.
/// </summary>
public sealed record TrajectoryStep(int Step, int Timestep, int Expert, double Guidance, Tensor Sample, Tensor? LastSample, Tensor Velocity, Tensor X0Prediction);

/// <summary>
/// Builds a job's <see cref="TrajectoryCommitment"/> while it runs: per step h_k = SHA-256(x̃_k ‖ m_k) and the fp16
/// sketches of x̃_k and v_k (computed on the tensors' device), and the states a challenge replays written to the
/// <see cref="StepStateStore"/> when there is one; at the end h_final and JL(x0) of the final latent.
/// </summary>
public sealed class TrajectoryRecorder(string jobId, IReadOnlyList<long> latentShape, JlSketch jl, StepStateStore? states)
{
    private readonly List<TrajectoryRecord> _records = [];

    public void Record(TrajectoryStep step)
    {
        ArgumentNullException.ThrowIfNull(step);
        if (step.Step != _records.Count) throw new InvalidOperationException($"step {step.Step} recorded after {_records.Count} steps");
        using var scope = NewDisposeScope();
        var sketches = jl.Sketch(step.Sample, step.Velocity);
        var sample = step.Sample.cpu();
        var velocity = step.Velocity.cpu();
        states?.Write(step.Step, sample, velocity, step.LastSample?.cpu());
        _records.Add(new TrajectoryRecord(step.Step, step.Timestep, step.Expert, step.Guidance, TensorHash.Sha256(sample, step.X0Prediction), sketches[0], sketches[1]));
    }

    /// <summary>The commitment, once every step is recorded, with <paramref name="finalLatent"/> the latent the VAE decodes.</summary>
    public TrajectoryCommitment Finish(Tensor finalLatent)
    {
        ArgumentNullException.ThrowIfNull(finalLatent);
        using var scope = NewDisposeScope();
        var host = finalLatent.cpu();
        states?.WriteFinal(host);
        return new TrajectoryCommitment(jobId, jl.Parameters, latentShape, _records, TensorHash.Sha256(host), jl.Sketch(finalLatent)[0]);
    }
}
