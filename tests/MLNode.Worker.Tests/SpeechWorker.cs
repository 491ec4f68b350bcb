using System.Net;
using System.Text.Json.Nodes;
using Microsoft.Extensions.DependencyInjection;
using MLNode.Engines.Hosting;
using MLNode.Tests;

namespace MLNode.Worker.Tests;

/// <summary>A worker serving a <see cref="ScriptedSpeechExecutor"/>, and the multipart requests the audio tests send it.</summary>
public sealed class SpeechWorker : IAsyncLifetime
{
    public const string WhisperId = "openai/whisper-scripted";
    public const string QwenAsrId = "Qwen/Qwen3-ASR-scripted";

    private string _architecture = "whisper";
    private string[] _args = [];

    /// <summary>A worker for a model of <paramref name="architecture"/>, with extra worker arguments (limits).</summary>
    public static SpeechWorker For(string architecture, params string[] args) => new() { _architecture = architecture, _args = args };

    public WorkerServer Server { get; private set; } = null!;
    public ScriptedSpeechEngine Engine { get; } = new();
    public ScriptedSpeechExecutor Model => Engine.Loaded!;
    public string ModelId => _architecture == "whisper" ? WhisperId : QwenAsrId;

    public static byte[] SpeechWav => File.ReadAllBytes(Fixtures.Path("audio", "speech_en_16k.wav"));
    public static byte[] SpeechMp3 => File.ReadAllBytes(Fixtures.Path("audio", "speech_en_44k_stereo.mp3"));

    /// <summary>Starts the worker without loading the model (see <see cref="LoadAsync"/>).</summary>
    public async ValueTask StartAsync()
    {
        Server = await WorkerServer.StartAsync(Registry, services => services.AddSingleton<IExecutorFactory>(Engine), _args);
    }

    public async ValueTask LoadAsync()
    {
        var (status, body) = await JsonHttp.Send(Server.Management, HttpMethod.Post, "/api/v1/inference/up", $$"""{"model":"{{ModelId}}"}""");
        Assert.True(status == HttpStatusCode.OK, $"inference/up: {status} {body}");
    }

    public async ValueTask InitializeAsync()
    {
        await StartAsync();
        await LoadAsync();
    }

    public async ValueTask DisposeAsync()
    {
        if (Server is not null) await Server.DisposeAsync();
    }

    /// <summary>Posts a multipart form: <paramref name="file"/> (if any) as "file", then the fields in order.</summary>
    public async Task<HttpResponseMessage> PostAsync(string path, byte[]? file, params (string Name, string Value)[] fields)
    {
        using var form = new MultipartFormDataContent();
        if (file is not null) form.Add(new ByteArrayContent(file), "file", "speech.bin");
        foreach (var (name, value) in fields) form.Add(new StringContent(value), name);
        return await Server.Inference.PostAsync(path, form, TestContext.Current.CancellationToken);
    }

    /// <summary>Posts and reads the answer as JSON.</summary>
    public async Task<(HttpStatusCode Status, JsonNode? Body)> PostJsonAsync(string path, byte[]? file, params (string Name, string Value)[] fields)
    {
        using var response = await PostAsync(path, file, fields);
        var text = await response.Content.ReadAsStringAsync(TestContext.Current.CancellationToken);
        return (response.StatusCode, text.Length == 0 ? null : JsonNode.Parse(text));
    }

    private string Registry(string folder)
    {
        var files = WorkerServer.WriteModelFolder(Path.Combine(folder, "model"));
        var entry = new JsonObject
        {
            ["id"] = ModelId,
            ["path"] = "model",
            ["modality"] = "asr",
            ["architecture"] = _architecture,
            ["dtype"] = "float32",
            ["files"] = new JsonArray([.. files.Select(f => (JsonNode)new JsonObject { ["path"] = f.Path, ["sha256"] = f.Sha256 })]),
            ["limits"] = new JsonObject { ["max_model_len"] = 448, ["max_batch"] = 16 },
            ["validation_threshold"] = 0.94,
            ["pricing"] = new JsonObject { ["tokens_per_audio_second"] = 50 },
        };
        return new JsonObject { ["models"] = new JsonArray(entry) }.ToJsonString();
    }
}
