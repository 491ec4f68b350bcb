using System.Net;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using MLNode.Protocol;
using MLNode.Protocol.OpenAi;
using MLNode.Protocol.Validation;
using MLNode.Tests;

namespace MLNode.Worker.Tests;

/// <summary>
/// The shipped registry's demo Whisper served by the real engine: generated, verified, loaded, and transcribing an
/// upload through FFmpeg, the front end and the decoder; a validator's replay of that transcription scores 1.0.
/// </summary>
public sealed class DemoWhisperTests
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task Demo_whisper_transcribes_and_its_replay_has_similarity_one()
    {
        var shipped = File.ReadAllText(Path.Combine(AppContext.BaseDirectory, "models.json"));
        await using var worker = await WorkerServer.StartAsync(_ => shipped);
        using (var up = await worker.Management.PostAsync("/api/v1/inference/up",
            new StringContent("""{"model":"mlnode/demo-whisper","dtype":"auto","additional_args":[]}""", Encoding.UTF8, "application/json"), Ct))
            Assert.Equal(HttpStatusCode.OK, up.StatusCode);

        // 70 s of speech: three windows, the language detected on the first, a fixed token budget so the demo's
        // meaningless output stays short.
        var audio = File.ReadAllBytes(Fixtures.Path("audio", "speech_long_16k.wav"));
        (string, string)[] form = [("model", "mlnode/demo-whisper"), ("response_format", "verbose_json"), ("logprobs", "true"),
            ("top_logprobs", "5"), ("temperature", "0"), ("seed", "3")];
        var (status, body) = await PostAsync(worker, audio, form);
        Assert.True(status == HttpStatusCode.OK, body);
        var executed = JsonSerializer.Deserialize<VerboseTranscriptionResponse>(body, GonkaJson.Options)!;
        Assert.Equal(3, executed.Windows.Count);
        Assert.Equal(executed.Windows.Sum(w => w.Tokens), executed.Logprobs!.Count);
        Assert.Equal(64, executed.AudioSha256.Length);

        (string, string)[] replay = [.. form, ("enforced_tokens", JsonSerializer.Serialize(EnforcedTokens.FromContent(executed.Logprobs!), GonkaJson.Options)),
            ("windows", JsonSerializer.Serialize(executed.Windows, GonkaJson.Options)), ("language", executed.Language), ("audio_sha256", executed.AudioSha256)];
        var (replayStatus, replayBody) = await PostAsync(worker, audio, replay);
        Assert.True(replayStatus == HttpStatusCode.OK, replayBody);
        var validated = JsonSerializer.Deserialize<VerboseTranscriptionResponse>(replayBody, GonkaJson.Options)!;
        var comparison = LogprobComparison.Compare(executed.Logprobs!, validated.Logprobs!);
        Assert.Equal(LogprobComparisonOutcome.Compared, comparison.Outcome);
        Assert.Equal(1.0, comparison.Similarity);
    }

    private static async Task<(HttpStatusCode, string)> PostAsync(WorkerServer worker, byte[] audio, (string Name, string Value)[] fields)
    {
        using var content = new MultipartFormDataContent { { new ByteArrayContent(audio), "file", "speech.wav" } };
        foreach (var (name, value) in fields) content.Add(new StringContent(value), name);
        using var response = await worker.Inference.PostAsync("/v1/audio/transcriptions", content, Ct);
        return (response.StatusCode, await response.Content.ReadAsStringAsync(Ct));
    }
}
