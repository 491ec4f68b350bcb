using System.Diagnostics;
using Microsoft.AspNetCore.Http.Features;
using MLNode.Engines.Asr;
using MLNode.Engines.Asr.Audio;
using MLNode.Engines.Llm.Sampling;
using MLNode.Protocol;
using MLNode.Protocol.Management;
using MLNode.Protocol.OpenAi;
using MLNode.Protocol.Validation;
using MLNode.Worker.Node;
using SamplingMode = MLNode.Engines.Llm.Sampling.LogprobsMode;
using WireMode = MLNode.Protocol.OpenAi.LogprobsMode;

namespace MLNode.Worker.Api;

/// <summary>
/// <c>POST /v1/audio/transcriptions</c> and <c>/v1/audio/translations</c>: OpenAI's multipart API over the loaded
/// speech model, with the network's extensions. Every response in JSON records the canonical audio's SHA-256, the
/// windows as decoded and the duration-based usage; <c>logprobs</c> adds the flat token logprobs of all windows in the
/// chat wire format. A validator replays with the same form plus <c>enforced_tokens</c> and <c>windows</c>: the same
/// samples are decoded teacher-forced on the executor's tokens, so the chat logprob comparison applies unchanged.
/// </summary>
public static class AudioTranscriptionsEndpoint
{
    /// <summary>Room for the form's other fields: a replay's enforced_tokens for 20 minutes of speech at 20 top tokens is a few MB.</summary>
    public const int FormFieldBytes = 8 << 20;

    public static void MapAudioTranscriptions(this IEndpointRouteBuilder app)
    {
        app.MapPost("/v1/audio/transcriptions", (HttpContext http, NodeController node, CanonicalAudioDecoder decoder, SpeechMetrics metrics, ILoggerFactory loggers, CancellationToken ct) =>
            HandleAsync(http, SpeechTask.Transcribe, node, decoder, metrics, loggers, ct));
        app.MapPost("/v1/audio/translations", (HttpContext http, NodeController node, CanonicalAudioDecoder decoder, SpeechMetrics metrics, ILoggerFactory loggers, CancellationToken ct) =>
            HandleAsync(http, SpeechTask.Translate, node, decoder, metrics, loggers, ct));
    }

    private static async Task<IResult> HandleAsync(HttpContext http, SpeechTask task, NodeController node, CanonicalAudioDecoder decoder,
        SpeechMetrics metrics, ILoggerFactory loggers, CancellationToken ct)
    {
        try
        {
            var result = await ServeAsync(http, task, node, decoder, metrics, loggers.CreateLogger(typeof(AudioTranscriptionsEndpoint)), ct);
            if (result is IStatusCodeHttpResult { StatusCode: >= 400 }) metrics.Rejected(task);
            return result;
        }
        catch
        {
            metrics.Failed(task);
            throw;
        }
    }

    private static async Task<IResult> ServeAsync(HttpContext http, SpeechTask task, NodeController node, CanonicalAudioDecoder decoder,
        SpeechMetrics metrics, ILogger logger, CancellationToken ct)
    {
        if (node.Model is not ISpeechExecutor speech) return SystemEndpoints.NoBackend();
        var (form, formError) = await ReadFormAsync(http.Request, decoder.Options, ct);
        if (formError is not null) return formError;
        if (form!.Model is { } model && model != speech.Card.Id)
            return ChatCompletionsEndpoint.OpenAiFailure(StatusCodes.Status404NotFound, "NotFoundError", $"The model `{model}` does not exist.", "model");
        if (Unsupported(form, task, speech) is { } unsupported) return unsupported;
        var (enforced, mode, replayErrors) = Replay(form);
        if (replayErrors.Count > 0) return RequestBody.Invalid([.. replayErrors]);

        var watch = Stopwatch.StartNew();
        CanonicalAudio audio;
        try
        {
            await using var upload = form.File.OpenReadStream();
            audio = await decoder.DecodeAsync(upload, ct);
        }
        catch (AudioInputException e)
        {
            logger.LogInformation("Refused an upload of {Bytes} bytes: {Problem}: {Message}", form.File.Length, e.Problem, e.Message);
            return ChatCompletionsEndpoint.OpenAiFailure(e.OverLimit ? StatusCodes.Status413PayloadTooLarge : StatusCodes.Status400BadRequest,
                OpenAiError.BadRequestType, e.Message, TranscriptionForm.FileField);
        }
        catch (AudioDecoderUnavailableException e)
        {
            logger.LogError(e, "The audio decoder cannot run");
            return RequestBody.Detail(StatusCodes.Status503ServiceUnavailable, $"audio decoding is unavailable on this node: {e.Message}");
        }
        if (form.AudioSha256 is { } claimed && claimed != audio.Sha256)
            return ChatCompletionsEndpoint.OpenAiFailure(StatusCodes.Status400BadRequest, OpenAiError.BadRequestType,
                $"audio_sha256 {claimed} is not the SHA-256 of the uploaded file's canonical audio ({audio.Sha256})", TranscriptionForm.AudioSha256Field);

        var windowErrors = new List<FieldError>();
        var windows = form.Windows is { } recorded ? RecordedWindows(recorded, audio, speech, windowErrors) : speech.PlanWindows(audio);
        if (windowErrors.Count > 0) return RequestBody.Invalid([.. windowErrors]);

        var sampling = new SamplingParams(Temperature: form.Temperature, Seed: form.Seed, TopLogprobs: form.TopLogprobs, Mode: mode);
        // OpenAI: temperature 0 lets the model raise it when a window decodes badly. Not when streaming (text already
        // sent cannot be taken back) nor on replay (each window's temperature is given).
        var job = new SpeechJob(audio, windows, task, form.Language, form.Prompt, sampling,
            Timestamps: TranscriptFormat.NeedsTimestamps(form.ResponseFormat),
            TemperatureFallback: form.Temperature == 0 && !form.Stream && enforced is null,
            Enforced: enforced);

        var id = $"trsc-{Guid.NewGuid():N}";
        var created = DateTimeOffset.UtcNow.ToUnixTimeSeconds();
        SpeechResult result;
        try
        {
            result = await DecodeAsync(http, form, speech, job, audio, id, created, logger, ct);
        }
        catch (SpeechJobException e)
        {
            return ChatCompletionsEndpoint.OpenAiFailure(StatusCodes.Status400BadRequest, OpenAiError.BadRequestType, e.Message, e.Field);
        }
        metrics.Completed(task, audio.Seconds, watch.Elapsed);
        logger.LogDebug("{Task} of {Seconds:F1} s in {Windows} windows, {Tokens} tokens, RTFx {Rtfx:F1}", task, audio.Seconds,
            result.Windows.Count, result.Windows.Sum(w => w.Tokens.Count), audio.Seconds / watch.Elapsed.TotalSeconds);
        return form.Stream ? Results.Empty : Respond(form, task, speech, audio, result);
    }

    /// <summary>Runs the job, streaming its text as SSE when asked; the model refuses a job it cannot take before any output.</summary>
    private static Task<SpeechResult> DecodeAsync(HttpContext http, TranscriptionForm form, ISpeechExecutor speech, SpeechJob job,
        CanonicalAudio audio, string id, long created, ILogger logger, CancellationToken ct)
    {
        if (form.Stream)
        {
            var stream = new TranscriptionEventStream(http, speech, id, created, form.Logprobs, logger);
            return stream.SendAsync(job, r => new TranscriptionChunk(id, created, speech.Card.Id,
                [new TranscriptionChunkChoice(new TranscriptionDelta(""), FinishReason: "stop")],
                Usage(speech, audio), r.Language, audio.Sha256, Windows(r)), ct);
        }
        return speech.TranscribeAsync(job, null, ct);
    }

    /// <summary>
    /// The multipart form within the limits: the whole body within the file limit plus <see cref="FormFieldBytes"/>
    /// (413 otherwise), the file itself within <see cref="AudioDecodingOptions.MaxUploadBytes"/> (413 naming file).
    /// </summary>
    private static async Task<(TranscriptionForm? Form, IResult? Error)> ReadFormAsync(HttpRequest request, AudioDecodingOptions limits, CancellationToken ct)
    {
        var maxBody = limits.MaxUploadBytes + FormFieldBytes;
        if (request.ContentLength > maxBody) return (null, TooLarge(limits));
        if (request.ContentType?.StartsWith("multipart/form-data", StringComparison.OrdinalIgnoreCase) != true)
            return (null, RequestBody.Invalid(new FieldError("body", "expected multipart/form-data with the audio in a 'file' field")));
        if (request.HttpContext.Features.Get<IHttpMaxRequestBodySizeFeature>() is { IsReadOnly: false } bodyLimit)
            bodyLimit.MaxRequestBodySize = maxBody;
        request.HttpContext.Features.Set<IFormFeature>(new FormFeature(request,
            new FormOptions { MultipartBodyLengthLimit = maxBody, ValueLengthLimit = FormFieldBytes }));

        IFormCollection collection;
        try
        {
            collection = await request.ReadFormAsync(ct);
        }
        catch (InvalidDataException e) when (e.Message.Contains("limit", StringComparison.OrdinalIgnoreCase))
        {
            return (null, TooLarge(limits));
        }
        catch (InvalidDataException e)
        {
            return (null, RequestBody.Invalid(new FieldError("body", $"malformed multipart/form-data: {e.Message}")));
        }
        catch (BadHttpRequestException e) when (e.StatusCode == StatusCodes.Status413PayloadTooLarge)
        {
            return (null, TooLarge(limits));
        }

        var (form, errors) = TranscriptionForm.Read(collection);
        if (errors.Count > 0) return (null, RequestBody.Invalid([.. errors]));
        if (form!.File.Length > limits.MaxUploadBytes) return (null, TooLarge(limits));
        return (form, null);
    }

    private static IResult TooLarge(AudioDecodingOptions limits) => ChatCompletionsEndpoint.OpenAiFailure(StatusCodes.Status413PayloadTooLarge,
        OpenAiError.BadRequestType, $"the uploaded file is larger than the limit of {limits.MaxUploadBytes} bytes", TranscriptionForm.FileField);

    /// <summary>What the model cannot do: translate, or produce the timestamps a format needs, or the language asked for.</summary>
    private static IResult? Unsupported(TranscriptionForm form, SpeechTask task, ISpeechExecutor speech)
    {
        var can = speech.Speech;
        if (task == SpeechTask.Translate && !can.Translation)
            return ChatCompletionsEndpoint.OpenAiFailure(StatusCodes.Status400BadRequest, OpenAiError.BadRequestType,
                $"{speech.Card.Id} does not translate; use /v1/audio/transcriptions", "model");
        if (TranscriptFormat.NeedsTimestamps(form.ResponseFormat) && !can.Timestamps)
            return ChatCompletionsEndpoint.OpenAiFailure(StatusCodes.Status400BadRequest, OpenAiError.BadRequestType,
                $"response_format {form.ResponseFormat} needs segment timestamps, which {speech.Card.Id} does not produce; use json or text", "response_format");
        if (form.Language is { } language && can.Languages.Count > 0 && !can.Languages.Contains(language))
            return RequestBody.Invalid(new FieldError("body.language", $"'{language}' is not one of the {can.Languages.Count} languages {speech.Card.Id} knows"));
        return null;
    }

    /// <summary>
    /// A validator replay: the flat enforced tokens cut into the recorded windows, and the logprobs mode to report. The
    /// mode is the request's, processed when unset, as on the executor: unlike chat, it is not guessed from the top
    /// tokens, since Whisper's decoding rules mask tokens even in greedy decoding and the guess would then misfire.
    /// </summary>
    private static (IReadOnlyList<EnforcedWindow>? Enforced, SamplingMode Mode, IReadOnlyList<FieldError> Errors) Replay(TranscriptionForm form)
    {
        var mode = form.LogprobsMode == WireMode.Raw ? SamplingMode.Raw : SamplingMode.Processed;
        if (form.EnforcedTokens is not { } list) return (null, mode, []);

        // A transcription of silence emits no tokens; the chat parser insists on at least one, so it is skipped then.
        IReadOnlyList<int> ids = [];
        if (list.Tokens.Count > 0)
        {
            var parsed = EnforcedTokens.Parse(list);
            if (parsed.Errors.Count > 0) return (null, mode, parsed.Errors);
            ids = parsed.Ids!.TokenIds;
        }
        var enforced = new List<EnforcedWindow>();
        var at = 0;
        foreach (var window in form.Windows!)
        {
            enforced.Add(new EnforcedWindow([.. ids.Skip(at).Take(window.Tokens)], window.Temperature));
            at += window.Tokens;
        }
        return (enforced, mode, []);
    }

    /// <summary>
    /// Windows sent back by a replay, checked against the decoded audio: consecutive from sample 0 to the last sample,
    /// each no longer than the model's window. The sample offsets are authoritative; the seconds are for people.
    /// </summary>
    private static IReadOnlyList<AudioWindow> RecordedWindows(IReadOnlyList<TranscriptionWindow> recorded, CanonicalAudio audio,
        ISpeechExecutor speech, List<FieldError> errors)
    {
        var maxLength = (int)Math.Round(speech.Speech.WindowSeconds * CanonicalAudio.SampleRate);
        var windows = new List<AudioWindow>();
        var expectedStart = 0;
        for (var i = 0; i < recorded.Count; i++)
        {
            var (w, field) = (recorded[i], $"body.windows.{i}");
            if (w.StartSample != expectedStart)
                errors.Add(new FieldError($"{field}.start_sample", $"must be {expectedStart}: windows start at sample 0 and follow each other without gaps"));
            if (w.EndSample <= w.StartSample)
                errors.Add(new FieldError($"{field}.end_sample", "must be after start_sample"));
            else if (w.EndSample - w.StartSample > maxLength)
                errors.Add(new FieldError($"{field}.end_sample", $"the window is longer than {speech.Card.Id}'s {maxLength} samples"));
            if (w.EndSample > audio.Samples.Length)
                errors.Add(new FieldError($"{field}.end_sample", $"is past the end of the canonical audio ({audio.Samples.Length} samples)"));
            if (w.Tokens < 0)
                errors.Add(new FieldError($"{field}.tokens", "must be ≥ 0"));
            if (!(w.Temperature >= 0 && double.IsFinite(w.Temperature)))
                errors.Add(new FieldError($"{field}.temperature", "must be a finite number ≥ 0"));
            windows.Add(new AudioWindow(w.StartSample, w.EndSample));
            expectedStart = w.EndSample;
        }
        if (errors.Count == 0 && expectedStart != audio.Samples.Length)
            errors.Add(new FieldError("body.windows", $"the windows end at sample {expectedStart}, the canonical audio at {audio.Samples.Length}"));
        return windows;
    }

    private static IResult Respond(TranscriptionForm form, SpeechTask task, ISpeechExecutor speech, CanonicalAudio audio, SpeechResult result)
    {
        var text = Transcript.Text(result);
        var segments = result.Windows.SelectMany(w => w.Segments);
        switch (form.ResponseFormat)
        {
            case TranscriptFormat.Text:
                return Results.Text(text, "text/plain; charset=utf-8");
            case TranscriptFormat.Srt:
                return Results.Text(Transcript.Srt(segments), "text/plain; charset=utf-8");
            case TranscriptFormat.Vtt:
                return Results.Text(Transcript.Vtt(segments), "text/vtt; charset=utf-8");
        }
        var logprobs = form.Logprobs ? result.Windows.SelectMany(w => w.Tokens).Select(ChatCompletionsEndpoint.Wire).ToList() : null;
        if (form.ResponseFormat == TranscriptFormat.VerboseJson)
            return Results.Json(new VerboseTranscriptionResponse(task == SpeechTask.Translate ? "translate" : "transcribe", result.Language,
                audio.Seconds, text, VerboseSegments(result), Usage(speech, audio), audio.Sha256, Windows(result), logprobs), GonkaJson.Options);
        return Results.Json(new TranscriptionResponse(text, Usage(speech, audio), result.Language, audio.Sha256, Windows(result), logprobs), GonkaJson.Options);
    }

    /// <summary>Segments numbered across windows; <c>seek</c> is the window's start in mel frames, as openai-whisper reports it.</summary>
    private static List<TranscriptionSegment> VerboseSegments(SpeechResult result) =>
        [.. result.Windows
            .SelectMany(w => w.Segments.Select(s => (Window: w, Segment: s)))
            .Select((p, i) => new TranscriptionSegment(i, p.Window.Window.Start / LogMelSpectrogram.HopLength, p.Segment.Start, p.Segment.End,
                p.Segment.Text, p.Segment.Tokens, p.Window.Temperature, p.Window.AvgLogprob, p.Window.CompressionRatio, p.Window.NoSpeechProb))];

    private static List<TranscriptionWindow> Windows(SpeechResult result) =>
        [.. result.Windows.Select(w => new TranscriptionWindow(w.Window.StartSeconds, w.Window.EndSeconds, w.Window.Start, w.Window.End, w.Tokens.Count, w.Temperature))];

    /// <summary>Duration usage; the billable token rate is the model's <c>tokens_per_audio_second</c> price, 50 when unset.</summary>
    private static TranscriptionUsage Usage(ISpeechExecutor speech, CanonicalAudio audio) => TranscriptionUsage.For(audio.Samples.Length,
        CanonicalAudio.SampleRate, speech.Card.Pricing.GetValueOrDefault("tokens_per_audio_second", TranscriptionUsage.DefaultTokensPerSecond));
}
