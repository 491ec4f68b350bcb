using Microsoft.Extensions.Options;
using MLNode.Engines.Hosting;
using MLNode.Protocol;
using MLNode.Protocol.Management;
using MLNode.Protocol.Poc;
using MLNode.Worker.Api;
using MLNode.Worker.Node;

namespace MLNode.Worker.Poc;

/// <summary>
/// PoC v2 of this worker, the vLLM-side PoC API of its single backend: checks requests against the loaded
/// model, starts and stops continuous generation, and reports its status. The worker is its node's only
/// backend, so it always generates as group 0 of 1.
/// </summary>
public sealed class PocRunner(
    NodeController node,
    PocGate gate,
    PocCompute compute,
    PocJobQueue jobs,
    CallbackClient callbacks,
    InferencePort port,
    IOptions<PocOptions> options,
    PocMetrics metrics,
    IHostApplicationLifetime lifetime,
    ILogger<PocRunner> logger)
{
    private readonly Lock _lock = new();
    private GenerationRound? _round;

    /// <summary>The model's prover and the round's parameters for a request, or the refusal to answer with.</summary>
    public (IPocProver? Prover, PocRound? Round, IResult? Refusal) Prepare(
        PocRequestParams p, string blockHash, string publicKey, bool strongerRng)
    {
        if (node.Model is not { } model)
            return (null, null, SystemEndpoints.NoBackend());
        if (p.Model != model.Card.Id)
        {
            return (null, null, Results.Json(new ErrorDetail(new
            {
                error = "params mismatch",
                requested = new { model = p.Model, seq_len = p.SeqLen, k_dim = p.KDim },
                deployed = new { model = new[] { model.Card.Id }, seq_len = (int?)null, k_dim = (int?)null },
            }), GonkaJson.Options, statusCode: StatusCodes.Status409Conflict));
        }
        if (model.Poc is not { } prover)
            return (null, null, RequestBody.Detail(StatusCodes.Status503ServiceUnavailable, $"{model.Card.Id} has no PoC v2 forward in this build"));
        if (p.SeqLen > model.Card.Limits.MaxModelLen)
            return (null, null, RequestBody.Invalid(new FieldError("body.params.seq_len", $"{p.SeqLen} exceeds the model's context of {model.Card.Limits.MaxModelLen} tokens")));
        if (p.KDim > prover.HiddenSize)
            return (null, null, RequestBody.Invalid(new FieldError("body.params.k_dim", $"{p.KDim} exceeds the model's hidden size {prover.HiddenSize}")));
        return (prover, new PocRound(blockHash, publicKey, p.SeqLen, prover.HiddenSize, p.KDim, strongerRng), null);
    }

    /// <summary>init/generate: starts continuous generation; null when started, otherwise the refusal.</summary>
    public IResult? StartGeneration(PocInitGenerateRequest request)
    {
        var (prover, round, refusal) = Prepare(request.Params, request.BlockHash, request.PublicKey, request.PocStrongerRng);
        if (refusal is not null) return refusal;

        var settings = options.Value;
        var config = new PocGenerationConfig(request.BlockHash, request.BlockHeight, request.PublicKey, request.NodeId, request.NodeCount,
            GroupId: 0, NGroups: 1, round!.SeqLen, round.KDim);
        lock (_lock)
        {
            if (_round is { Completion.IsCompleted: false })
                return RequestBody.Detail(StatusCodes.Status409Conflict, "Already generating");
            var stream = request.Url is { } url
                ? new GeneratedArtifactStream(url,
                    new PocGeneratedCallback(request.PublicKey, request.BlockHash, request.BlockHeight, request.NodeId, [], PocEncoding.Float16(round.KDim)),
                    settings, callbacks, metrics, logger)
                : null;
            _ = stream?.RunAsync(lifetime.ApplicationStopping);
            _round = GenerationRound.Start(config, prover!, round, request.BatchSize ?? settings.BatchSizeDefault, stream,
                gate.EnterGeneration(), compute, settings, metrics, logger, lifetime.ApplicationStopping);
        }
        return null;
    }

    /// <summary>stop: ends continuous generation and cancels queued jobs. Generated artifacts are still delivered.</summary>
    public async Task StopAsync()
    {
        GenerationRound? round;
        lock (_lock)
        {
            round = _round;
            _round = null;
        }
        jobs.CancelAll();
        if (round is not null)
            await round.StopAsync();
    }

    /// <summary>GET /status: this backend's state, with the round's parameters and throughput while generating.</summary>
    public PocStatusResponse Status()
    {
        if (node.Model is null)
            return new PocStatusResponse(PocStatus.NoBackends, []);
        GenerationRound? round;
        lock (_lock) round = _round is { Completion.IsCompleted: false } active ? active : null;
        var status = gate.Status;
        var backend = status == PocStatus.Generating && round is not null
            ? new PocBackendStatus(port.Port, status, round.Config, round.Stats)
            : new PocBackendStatus(port.Port, status, null, null);
        return new PocStatusResponse(status, [backend]);
    }
}
