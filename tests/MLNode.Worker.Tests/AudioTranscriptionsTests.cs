using System.Net;
using System.Text.Json;
using System.Text.Json.Nodes;
using MLNode.Engines.Asr;
using MLNode.Protocol;
using MLNode.Protocol.OpenAi;
using MLNode.Protocol.Validation;

namespace MLNode.Worker.Tests;

/// <summary>
/// /v1/audio/transcriptions and /v1/audio/translations on the wire, over a scripted speech model: formats, streaming,
/// the replay round trip, and every way a request can be refused.
/// </summary>
public sealed class AudioTranscriptionsTests(SpeechWorker worker) : IClassFixture<SpeechWorker>
{
    private const string Transcriptions = "/v1/audio/transcriptions";
    private const string Translations = "/v1/audio/translations";

    /// <summary>The wav fixture's canonical hash (exact int16/32768 samples) and its length in samples.</summary>
    private const string SpeechSha256 = "57c34fd33a8472b3082e1c7a0629886f99f27710f21ed054524701822ee4774a";
    private const int SpeechSamples = 103601;

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private static readonly (string, string)[] WithLogprobs = [("model", SpeechWorker.WhisperId), ("language", "en"), ("logprobs", "true"), ("top_logprobs", "5"), ("seed", "42")];

    [Fact]
    public async Task Json_records_the_text_usage_hash_windows_and_logprobs()
    {
        var (status, body) = await worker.PostJsonAsync(Transcriptions, SpeechWorker.SpeechWav, WithLogprobs);
        Assert.Equal(HttpStatusCode.OK, status);
        var response = body.Deserialize<TranscriptionResponse>(GonkaJson.Options)!;

        Assert.Equal(SpeechSha256, response.AudioSha256);
        Assert.Equal("en", response.Language);
        // 6.475 s: vLLM's seconds = ⌈6.475⌉; the proposal's tokens = ⌈6.475 × 50⌉ = ⌈103601 / 320⌉.
        Assert.Equal(new TranscriptionUsage("duration", 7, 324), response.Usage);

        // 4 s windows: one cut, in the last second of the first window; together they cover every sample.
        Assert.Equal(2, response.Windows.Count);
        Assert.Equal(0, response.Windows[0].StartSample);
        Assert.Equal(SpeechSamples, response.Windows[^1].EndSample);
        for (var i = 1; i < response.Windows.Count; i++)
        {
            Assert.Equal(response.Windows[i - 1].EndSample, response.Windows[i].StartSample);
            Assert.InRange(response.Windows[i].StartSample - response.Windows[i - 1].StartSample, 48_000, 64_000);
        }
        Assert.All(response.Windows, w => Assert.Equal(w.StartSample / 16000.0, w.Start));

        var logprobs = response.Logprobs!;
        Assert.Equal(response.Windows.Sum(w => w.Tokens), logprobs.Count);
        Assert.All(logprobs, p => Assert.True(int.TryParse(p.Token, out _), $"token '{p.Token}' is not a decimal id"));
        Assert.All(logprobs, p => Assert.Equal(5, p.TopLogprobs.Count));
        var ids = logprobs.Select(p => int.Parse(p.Token)).ToList();
        Assert.Equal(string.Join(" ", Enumerable.Range(0, 2).Select(w => WindowIds(response, ids, w)).Select(worker.Model.Decode).Select(t => t.Trim())), response.Text);

        // Executor semantics: temperature 0 allows fallback; json needs no timestamps.
        var job = worker.Model.Jobs[^1];
        Assert.True(job.TemperatureFallback);
        Assert.False(job.Timestamps);
        Assert.Null(job.Enforced);
        Assert.Equal(SpeechTask.Transcribe, job.Task);

        // The same upload in another container has its own canonical audio and hash, stable across requests.
        var (_, first) = await worker.PostJsonAsync(Transcriptions, SpeechWorker.SpeechMp3);
        var (_, second) = await worker.PostJsonAsync(Transcriptions, SpeechWorker.SpeechMp3);
        Assert.Equal((string?)first!["audio_sha256"], (string?)second!["audio_sha256"]);
        Assert.NotEqual(SpeechSha256, (string?)first["audio_sha256"]);
    }

    [Fact]
    public async Task Text_srt_and_vtt_are_plain_text()
    {
        var (_, json) = await worker.PostJsonAsync(Transcriptions, SpeechWorker.SpeechWav);
        var text = (string)json!["text"]!;

        using var plain = await worker.PostAsync(Transcriptions, SpeechWorker.SpeechWav, ("response_format", "text"));
        Assert.Equal("text/plain", plain.Content.Headers.ContentType!.MediaType);
        Assert.Equal(text, await plain.Content.ReadAsStringAsync(Ct));

        using var srt = await worker.PostAsync(Transcriptions, SpeechWorker.SpeechWav, ("response_format", "srt"));
        var cues = (await srt.Content.ReadAsStringAsync(Ct)).Split("\n\n", StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal(4, cues.Length); // two timed segments in each of two windows
        Assert.Matches(@"^1\n00:00:00,000 --> 00:00:01,\d{3}\nw\d+", cues[0]);
        Assert.Matches(@"^4\n00:00:0\d,\d{3} --> 00:00:06,475\nw\d+", cues[^1]);
        Assert.True(worker.Model.Jobs[^1].Timestamps);

        using var vtt = await worker.PostAsync(Transcriptions, SpeechWorker.SpeechWav, ("response_format", "vtt"));
        Assert.Equal("text/vtt", vtt.Content.Headers.ContentType!.MediaType);
        var webvtt = await vtt.Content.ReadAsStringAsync(Ct);
        Assert.StartsWith("WEBVTT\n\n00:00:00.000 --> 00:00:01.", webvtt);
        Assert.Contains("--> 00:00:06.475\n", webvtt);
    }

    [Fact]
    public async Task Verbose_json_has_segments_duration_and_the_extensions()
    {
        var (status, body) = await worker.PostJsonAsync(Transcriptions, SpeechWorker.SpeechWav,
            ("response_format", "verbose_json"), ("timestamp_granularities[]", "segment"), ("temperature", "0.4"), ("seed", "3"));
        Assert.Equal(HttpStatusCode.OK, status);
        var response = body.Deserialize<VerboseTranscriptionResponse>(GonkaJson.Options)!;
        Assert.Equal("transcribe", response.Task);
        Assert.Equal(SpeechSamples / 16000.0, response.Duration);
        Assert.Equal(4, response.Segments.Count);
        Assert.Equal(Enumerable.Range(0, 4), response.Segments.Select(s => s.Id));
        Assert.All(response.Segments, s => Assert.Equal(0.4, s.Temperature));
        Assert.Equal(response.Windows[1].StartSample / 160, response.Segments[2].Seek);
        Assert.Null(response.Segments[0].NoSpeechProb);
        Assert.Equal(response.Windows.Sum(w => w.Tokens), response.Segments.Sum(s => s.Tokens.Count));
        Assert.Equal(SpeechSha256, response.AudioSha256);
        Assert.Null(response.Logprobs);
        var segment = body!["segments"]![0]!.AsObject();
        foreach (var field in new[] { "id", "seek", "start", "end", "text", "tokens", "temperature", "avg_logprob", "compression_ratio", "no_speech_prob" })
            Assert.True(segment.ContainsKey(field), $"segment has no {field}");
        Assert.False(worker.Model.Jobs[^1].TemperatureFallback);
    }

    [Fact]
    public async Task Translations_reach_the_model_as_translate()
    {
        var (status, body) = await worker.PostJsonAsync(Translations, SpeechWorker.SpeechWav, ("response_format", "verbose_json"));
        Assert.Equal(HttpStatusCode.OK, status);
        Assert.Equal("translate", (string?)body!["task"]);
        Assert.Equal(SpeechTask.Translate, worker.Model.Jobs[^1].Task);
    }

    [Fact]
    public async Task Streaming_sends_chunks_that_add_up_to_the_json_response()
    {
        var (_, json) = await worker.PostJsonAsync(Transcriptions, SpeechWorker.SpeechWav, WithLogprobs);
        var expected = json.Deserialize<TranscriptionResponse>(GonkaJson.Options)!;

        using var response = await worker.PostAsync(Transcriptions, SpeechWorker.SpeechWav, [.. WithLogprobs, ("stream", "true")]);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("text/event-stream", response.Content.Headers.ContentType!.MediaType);
        var events = (await response.Content.ReadAsStringAsync(Ct)).Split("\n\n", StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal("data: [DONE]", events[^1]);
        var chunks = events[..^1].Select(e => JsonNode.Parse(e["data: ".Length..])!).ToList();
        Assert.All(chunks, c => Assert.Equal("transcription.chunk", (string?)c["object"]));
        Assert.All(chunks[..^1], c =>
        {
            var choice = c["choices"]![0]!.AsObject();
            Assert.True(choice.ContainsKey("finish_reason") && choice["finish_reason"] is null);
            Assert.True(choice.ContainsKey("stop_reason"));
        });

        var content = string.Concat(chunks.Select(c => (string?)c["choices"]![0]!["delta"]!["content"]));
        Assert.Equal(expected.Text, content);
        var streamedLogprobs = chunks.SelectMany(c => c["choices"]![0]!["logprobs"]?["content"]?.AsArray() ?? [])
            .Select(p => p.Deserialize<ChatCompletionLogprob>(GonkaJson.Options)!).ToList();
        Assert.Equal(expected.Logprobs!.Select(p => p.Token), streamedLogprobs.Select(p => p.Token));
        Assert.Equal(1.0, LogprobComparison.Compare(expected.Logprobs!, streamedLogprobs).Similarity);

        var last = chunks[^1];
        Assert.Equal("stop", (string?)last["choices"]![0]!["finish_reason"]);
        Assert.Equal(SpeechSha256, (string?)last["audio_sha256"]);
        Assert.Equal(324, (int)last["usage"]!["audio_tokens"]!);
        Assert.Equal(expected.Windows, last["windows"].Deserialize<List<TranscriptionWindow>>(GonkaJson.Options));
        Assert.False(worker.Model.Jobs[^1].TemperatureFallback);
    }

    [Fact]
    public async Task An_executor_transcription_replayed_with_its_own_tokens_has_similarity_one()
    {
        var executorForm = WithLogprobs.Append(("response_format", "verbose_json")).ToArray();
        var (_, executed) = await worker.PostJsonAsync(Transcriptions, SpeechWorker.SpeechMp3, executorForm);
        var executor = executed.Deserialize<VerboseTranscriptionResponse>(GonkaJson.Options)!;
        Assert.NotEmpty(executor.Logprobs!);

        // dapi's replay: the stored request plus enforced_tokens built from the response's logprobs, the recorded windows
        // and the audio's hash; another seed, as a validator would not know the executor's.
        var replay = executorForm.Where(f => f.Item1 != "seed").Concat(
        [
            ("seed", "7"),
            ("enforced_tokens", JsonSerializer.Serialize(EnforcedTokens.FromContent(executor.Logprobs!), GonkaJson.Options)),
            ("windows", JsonSerializer.Serialize(executor.Windows, GonkaJson.Options)),
            ("audio_sha256", executor.AudioSha256),
        ]).ToArray();
        var (status, validated) = await worker.PostJsonAsync(Transcriptions, SpeechWorker.SpeechMp3, replay);
        Assert.Equal(HttpStatusCode.OK, status);
        var validator = validated.Deserialize<VerboseTranscriptionResponse>(GonkaJson.Options)!;

        var comparison = LogprobComparison.Compare(executor.Logprobs!, validator.Logprobs!);
        Assert.Equal(LogprobComparisonOutcome.Compared, comparison.Outcome);
        Assert.Equal(1.0, comparison.Similarity);
        Assert.Equal(executor.Windows, validator.Windows);
        Assert.Equal(executor.Text, validator.Text);

        // The engine was handed the recorded windows and each window's share of the tokens.
        var job = worker.Model.Jobs[^1];
        Assert.Equal(executor.Windows.Select(w => w.Tokens), job.Enforced!.Select(e => e.Tokens.Count));
        Assert.Equal(executor.Windows.Select(w => (w.StartSample, w.EndSample)), job.Windows.Select(w => (w.Start, w.End)));
        Assert.False(job.TemperatureFallback);

        // Another upload under the executor's hash is refused before any decoding.
        var (wrongAudio, wrongBody) = await worker.PostJsonAsync(Transcriptions, SpeechWorker.SpeechWav, replay);
        Assert.Equal(HttpStatusCode.BadRequest, wrongAudio);
        Assert.Equal("audio_sha256", (string?)wrongBody!["error"]!["param"]);

        // Windows that do not tile the audio are refused naming the window.
        var gap = executor.Windows.Select((w, i) => i == 1 ? w with { StartSample = w.StartSample + 1 } : w).ToList();
        var (badWindows, badBody) = await worker.PostJsonAsync(Transcriptions, SpeechWorker.SpeechMp3,
            [.. replay.Where(f => f.Item1 != "windows"), ("windows", JsonSerializer.Serialize(gap, GonkaJson.Options))]);
        Assert.Equal(HttpStatusCode.UnprocessableEntity, badWindows);
        Assert.Contains("body.windows.1.start_sample", badBody!.ToJsonString());
    }

    [Theory]
    [InlineData("response_format", "xml", "body.response_format")]
    [InlineData("temperature", "-1", "body.temperature")]
    [InlineData("temperature", "warm", "body.temperature")]
    [InlineData("stream", "maybe", "body.stream")]
    [InlineData("language", "english", "body.language")]
    [InlineData("language", "xx", "body.language")]
    [InlineData("timestamp_granularities[]", "word", "body.timestamp_granularities[]")]
    [InlineData("timestamp_granularities[]", "segment", "body.timestamp_granularities[]")]
    [InlineData("top_logprobs", "5", "body.top_logprobs")]
    [InlineData("logprobs_mode", "raw", "body.logprobs_mode")]
    [InlineData("audio_sha256", "abc", "body.audio_sha256")]
    [InlineData("enforced_tokens", "{\"tokens\":[{\"token\":\"1\"}]}", "body.windows")]
    [InlineData("enforced_tokens", "[1,2]", "body.enforced_tokens")]
    [InlineData("windows", "[{\"start\":0}]", "body.windows.0")]
    public async Task Bad_fields_get_a_422_naming_them(string field, string value, string named)
    {
        var (status, body) = await worker.PostJsonAsync(Transcriptions, SpeechWorker.SpeechWav, (field, value));
        Assert.Equal(HttpStatusCode.UnprocessableEntity, status);
        Assert.Contains(named, body!["detail"]!.ToJsonString());
    }

    [Theory]
    [InlineData("verbose_json")]
    [InlineData("srt")]
    public async Task Streaming_a_format_that_cannot_stream_is_refused(string format)
    {
        var (status, body) = await worker.PostJsonAsync(Transcriptions, SpeechWorker.SpeechWav, ("response_format", format), ("stream", "true"));
        Assert.Equal(HttpStatusCode.UnprocessableEntity, status);
        Assert.Contains("body.stream", body!.ToJsonString());
    }

    [Fact]
    public async Task Logprobs_in_a_plain_text_format_are_refused()
    {
        var (status, body) = await worker.PostJsonAsync(Transcriptions, SpeechWorker.SpeechWav, ("response_format", "srt"), ("logprobs", "true"));
        Assert.Equal(HttpStatusCode.UnprocessableEntity, status);
        Assert.Contains("body.logprobs", body!.ToJsonString());
    }

    [Fact]
    public async Task A_missing_file_or_a_non_multipart_body_is_a_422()
    {
        var (missing, body) = await worker.PostJsonAsync(Transcriptions, null, ("model", SpeechWorker.WhisperId));
        Assert.Equal(HttpStatusCode.UnprocessableEntity, missing);
        Assert.Contains("body.file", body!.ToJsonString());

        var (json, jsonBody) = await JsonHttp.Send(worker.Server.Inference, HttpMethod.Post, Transcriptions, """{"file":"x"}""");
        Assert.Equal(HttpStatusCode.UnprocessableEntity, json);
        Assert.Contains("multipart/form-data", jsonBody!.ToJsonString());
    }

    [Theory]
    [InlineData("garbage")]
    [InlineData("text")]
    [InlineData("empty")]
    public async Task Uploads_that_are_not_audio_get_a_400_naming_file(string kind)
    {
        var bytes = kind switch
        {
            "garbage" => Enumerable.Range(0, 4000).Select(i => (byte)(i * 7919 % 251)).ToArray(),
            "text" => "this is a text file, not audio\n"u8.ToArray(),
            _ => [],
        };
        var (status, body) = await worker.PostJsonAsync(Transcriptions, bytes);
        Assert.Equal(HttpStatusCode.BadRequest, status);
        Assert.Equal("file", (string?)body!["error"]!["param"]);

        // The node still serves.
        var (ok, _) = await worker.PostJsonAsync(Transcriptions, SpeechWorker.SpeechWav);
        Assert.Equal(HttpStatusCode.OK, ok);
    }

    [Fact]
    public async Task An_unknown_model_is_a_404()
    {
        var (status, body) = await worker.PostJsonAsync(Transcriptions, SpeechWorker.SpeechWav, ("model", "openai/whisper-large-v3"));
        Assert.Equal(HttpStatusCode.NotFound, status);
        Assert.Equal("model", (string?)body!["error"]!["param"]);
    }

    [Fact]
    public async Task Metrics_count_requests_and_audio_seconds()
    {
        var (ok, _) = await worker.PostJsonAsync(Transcriptions, SpeechWorker.SpeechWav);
        Assert.Equal(HttpStatusCode.OK, ok);
        await worker.PostJsonAsync(Transcriptions, SpeechWorker.SpeechWav, ("response_format", "xml"));
        var metrics = await worker.Server.Management.GetStringAsync("/metrics", Ct);
        Assert.Contains("mlnode_speech_requests_total{task=\"transcribe\",outcome=\"completed\"}", metrics);
        Assert.Contains("mlnode_speech_requests_total{task=\"transcribe\",outcome=\"rejected\"}", metrics);
        Assert.Contains("mlnode_speech_audio_seconds_total{task=\"transcribe\"}", metrics);
        Assert.Contains("mlnode_speech_rtfx_bucket{task=\"transcribe\"", metrics);
    }

    private static List<int> WindowIds(TranscriptionResponse response, List<int> ids, int window) =>
        ids.Skip(response.Windows.Take(window).Sum(w => w.Tokens)).Take(response.Windows[window].Tokens).ToList();
}

/// <summary>A model without translation or timestamps (Qwen3-ASR's kind), tight upload limits, and a node with no model.</summary>
public sealed class AudioTranscriptionLimitsTests
{
    private const string Transcriptions = "/v1/audio/transcriptions";

    [Fact]
    public async Task Limits_capabilities_and_a_missing_model_are_named()
    {
        // The wav is 207 280 bytes (over the byte limit); the mp3 is 104 533 bytes of 6.5 s (over the duration limit).
        await using var worker = SpeechWorker.For("qwen3_asr", "--Audio:MaxUploadBytes=150000", "--Audio:MaxDurationSeconds=3");
        await worker.StartAsync();

        var (noModel, _) = await worker.PostJsonAsync(Transcriptions, SpeechWorker.SpeechMp3);
        Assert.Equal(HttpStatusCode.ServiceUnavailable, noModel);

        await worker.LoadAsync();
        var (tooLarge, largeBody) = await worker.PostJsonAsync(Transcriptions, SpeechWorker.SpeechWav);
        Assert.Equal(HttpStatusCode.RequestEntityTooLarge, tooLarge);
        Assert.Equal("file", (string?)largeBody!["error"]!["param"]);

        var (tooLong, longBody) = await worker.PostJsonAsync(Transcriptions, SpeechWorker.SpeechMp3);
        Assert.Equal(HttpStatusCode.RequestEntityTooLarge, tooLong);
        Assert.Equal("file", (string?)longBody!["error"]!["param"]);
        Assert.Contains("3 s", (string?)longBody["error"]!["message"]);

        var (translate, translateBody) = await worker.PostJsonAsync("/v1/audio/translations", SpeechWorker.SpeechMp3);
        Assert.Equal(HttpStatusCode.BadRequest, translate);
        Assert.Equal("model", (string?)translateBody!["error"]!["param"]);

        var (verbose, verboseBody) = await worker.PostJsonAsync(Transcriptions, SpeechWorker.SpeechMp3, ("response_format", "verbose_json"));
        Assert.Equal(HttpStatusCode.BadRequest, verbose);
        Assert.Equal("response_format", (string?)verboseBody!["error"]!["param"]);
    }
}
