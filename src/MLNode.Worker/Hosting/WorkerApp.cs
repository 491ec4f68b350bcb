using Microsoft.Extensions.Options;
using MLNode.Engines.Asr.Audio;
using MLNode.Engines.Asr.Qwen3Asr;
using MLNode.Engines.Asr.Whisper;
using MLNode.Engines.Dit;
using MLNode.Engines.Dit.Validation;
using MLNode.Engines.Hosting;
using MLNode.Engines.Llm;
using MLNode.Runtime.Gpu;
using MLNode.Runtime.Hub;
using MLNode.Runtime.Registry;
using MLNode.Runtime.Torch;
using MLNode.Worker.Api;
using MLNode.Worker.Node;
using MLNode.Worker.Poc;
using MLNode.Worker.Video;
using Prometheus;

namespace MLNode.Worker.Hosting;

/// <summary>Composition of the worker: options, services, the two listeners and every route.</summary>
public static class WorkerApp
{
    public static WebApplication Build(string[] args, Action<WebApplicationBuilder>? configure = null)
    {
        var builder = WebApplication.CreateSlimBuilder(new WebApplicationOptions { Args = [] });
        builder.Configuration.AddEnvironmentVariables("MLNODE_");
        if (Environment.GetEnvironmentVariable("MLNODE_LIBTORCH") is { Length: > 0 } libtorch)
            builder.Configuration["Runtime:Libtorch"] = libtorch;
        if (Environment.GetEnvironmentVariable("INFERENCE_PORT") is { Length: > 0 } inferencePort)
            builder.Configuration["Worker:InferencePort"] = inferencePort;
        builder.Configuration.AddCommandLine(args, WorkerCommand.SwitchMappings);
        // With the shipped registry and nothing chosen, serve the demo LLM so every endpoint answers out of the box.
        var defaultSetup = builder.Configuration["Worker:Models"] is null && builder.Configuration["Worker:Load"] is null;
        configure?.Invoke(builder);

        builder.Services.AddOptions<WorkerOptions>().BindConfiguration(WorkerOptions.Section)
            .Validate(o => o.Port is > 0 and < 65536 && o.InferencePort is > 0 and < 65536 && o.Port != o.InferencePort,
                "Worker:Port and Worker:InferencePort must be distinct TCP ports")
            .Validate(o => o.ReplayMode is WorkerOptions.StepReplay or WorkerOptions.TeacherForcedReplay,
                $"Worker:ReplayMode must be {WorkerOptions.StepReplay} or {WorkerOptions.TeacherForcedReplay}")
            .ValidateOnStart();
        var options = builder.Configuration.GetSection(WorkerOptions.Section).Get<WorkerOptions>() ?? new WorkerOptions();

        // One line per event; "json" gives the message template's fields as JSON for log collectors.
        if (string.Equals(options.LogFormat, "json", StringComparison.OrdinalIgnoreCase))
            builder.Logging.AddJsonConsole(o => o.TimestampFormat = "yyyy-MM-ddTHH:mm:ss.fffZ");
        else
            builder.Logging.AddSimpleConsole(o =>
            {
                o.SingleLine = true;
                o.TimestampFormat = "yyyy-MM-dd HH:mm:ss.fff ";
            });
        builder.WebHost.ConfigureKestrel(k =>
        {
            k.Limits.MaxRequestBodySize = 64L << 20;
            k.Listen(System.Net.IPAddress.Parse(options.Host), options.Port);
            k.Listen(System.Net.IPAddress.Parse(options.Host), options.InferencePort);
        });

        var registry = ModelRegistry.Load(options.Models);
        builder.Services.AddSingleton(registry);
        builder.Services.AddSingleton(new InferencePort(options.InferencePort));
        builder.Services.AddSingleton(sp => TorchRuntime.Initialize(builder.Configuration["Runtime:Libtorch"], sp.GetRequiredService<ILoggerFactory>().CreateLogger("Runtime")));
        builder.Services.AddSingleton<IGpuInventory, Nvml>();
        builder.Services.AddSingleton<WeightVerifier>();
        builder.Services.AddOptions<HubOptions>().Configure(o => o.ApplyEnvironment(Environment.GetEnvironmentVariable)).BindConfiguration("Hub");
        builder.Services.AddSingleton<HubCache>();
        builder.Services.AddSingleton(sp => new HubClient(
            new HttpClient(new SocketsHttpHandler { PooledConnectionLifetime = TimeSpan.FromMinutes(5) }) { Timeout = Timeout.InfiniteTimeSpan },
            sp.GetRequiredService<HubCache>(), sp.GetRequiredService<IOptions<HubOptions>>(), sp.GetRequiredService<ILogger<HubClient>>()));
        builder.Services.AddSingleton<ModelDownloads>();
        builder.Services.AddSingleton<IModelFolders, ModelFolders>();
        builder.Services.AddSingleton<IExecutorFactory, LlmEngine>();
        builder.Services.AddSingleton<IExecutorFactory, WhisperEngine>();
        builder.Services.AddSingleton<IExecutorFactory, Qwen3AsrEngine>();
        builder.Services.AddSingleton<IExecutorFactory, WanEngine>();
        builder.Services.AddSingleton<ModelHost>();
        builder.Services.AddSingleton<WorkerMetrics>();
        builder.Services.AddOptions<AudioDecodingOptions>().BindConfiguration(AudioDecodingOptions.Section)
            .Validate(o => o.Problem() is null, "Audio settings: MaxUploadBytes, MaxDurationSeconds and DecodeTimeoutSeconds must be positive and FFmpegPath set")
            .ValidateOnStart();
        builder.Services.AddSingleton(sp => new CanonicalAudioDecoder(
            sp.GetRequiredService<IOptions<AudioDecodingOptions>>().Value, sp.GetRequiredService<ILogger<CanonicalAudioDecoder>>()));
        builder.Services.AddSingleton<SpeechMetrics>();
        builder.Services.AddOptions<VideoOptions>().BindConfiguration(VideoOptions.Section)
            .Validate(o => o.IsValid, "Video settings: MaxFrames, MaxPixels, MaxSteps, MaxQueuedJobs, ChallengeWindow, ChallengeSweepInterval and ChallengeSteps must be positive, OutputDir and FFmpegPath set")
            .ValidateOnStart();
        builder.Services.AddOptions<VideoValidationOptions>().BindConfiguration(VideoValidationOptions.Section)
            .Validate(o => o.Problem() is null, "VideoValidation settings: pHash bounds in 0..64, fractions in [0, 1], SSIM in [-1, 1], finite PSNR, error bounds non-negative, ChallengeSteps and MaxUploadBytes positive")
            .ValidateOnStart();
        builder.Services.AddSingleton<VideoMetrics>();
        builder.Services.AddSingleton<VideoJobQueue>();
        builder.Services.AddHostedService(sp => sp.GetRequiredService<VideoJobQueue>());
        builder.Services.AddHostedService<StepStateSweeper>();
        builder.Services.AddSingleton<NodeController>();
        builder.AddPoc();
        builder.Services.AddHostedService(sp => new StartupLoader(
            sp.GetRequiredService<NodeController>(), sp.GetRequiredService<ModelRegistry>(), sp.GetRequiredService<ModelHost>(),
            sp.GetRequiredService<IOptions<WorkerOptions>>(), defaultSetup, sp.GetRequiredService<ILogger<StartupLoader>>()));

        var app = builder.Build();
        // Resolve the runtime now so the log says which device serves before the first request.
        app.Services.GetRequiredService<TorchRuntime>();
        app.Use(app.Services.GetRequiredService<InferencePort>().Gate);
        app.UseExceptionHandler(errors => errors.Run(ErrorHandler.WriteAsync));
        app.UseHttpMetrics();
        app.Use(app.Services.GetRequiredService<PocGate>().RefuseInference);
        app.MapManagement();
        app.MapSystem();
        app.MapModelCache();
        app.MapPoc();
        app.MapChatCompletions();
        app.MapAudioTranscriptions();
        app.MapVideos();
        app.MapVideoVerification();
        app.MapVideoValidations();
        app.MapMetrics("/metrics");
        app.MapMetrics("/api/v1/metrics");
        return app;
    }
}
