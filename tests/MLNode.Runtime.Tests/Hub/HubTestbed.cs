using System.Collections.Concurrent;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using MLNode.Protocol.Management;
using MLNode.Runtime.Hub;
using Xunit;

namespace MLNode.Runtime.Tests.Hub;

/// <summary>A fake hub, an empty HF_HOME in a temporary folder and the services wired to both, with short timings.</summary>
internal sealed class HubTestbed : IAsyncDisposable
{
    private readonly HttpClient _http = new();
    private readonly ILoggerFactory _loggers;

    private HubTestbed(FakeHub hub, HubOptions options)
    {
        Hub = hub;
        Options = options;
        _loggers = LoggerFactory.Create(b => b.AddProvider(new ListLoggerProvider(Logs)).SetMinimumLevel(LogLevel.Debug));
        Cache = new HubCache(Microsoft.Extensions.Options.Options.Create(options));
        Client = new HubClient(_http, Cache, Microsoft.Extensions.Options.Options.Create(options), _loggers.CreateLogger<HubClient>());
        Downloads = new ModelDownloads(Cache, Client, Microsoft.Extensions.Options.Options.Create(options), _loggers.CreateLogger<ModelDownloads>());
    }

    public FakeHub Hub { get; }
    public HubOptions Options { get; }
    public HubCache Cache { get; }
    public HubClient Client { get; }
    public ModelDownloads Downloads { get; }
    public ConcurrentQueue<string> Logs { get; } = new();

    /// <summary>The folder HF_HOME sits in: nothing a hostile listing names may appear here.</summary>
    public string Sandbox => Path.GetDirectoryName(Options.HfHome)!;

    public static async Task<HubTestbed> StartAsync(Action<HubOptions>? configure = null)
    {
        var hub = await FakeHub.StartAsync(TestContext.Current.CancellationToken);
        var options = new HubOptions
        {
            HfHome = Path.Combine(Directory.CreateTempSubdirectory("mlnode-hub-").FullName, "hf"),
            Endpoint = hub.Endpoint,
            Token = "test-token",
            StallTimeout = TimeSpan.FromSeconds(5),
            StallCheckInterval = TimeSpan.FromMilliseconds(50),
            ProgressLogInterval = TimeSpan.FromMilliseconds(30),
            RetryBackoffBase = TimeSpan.FromMilliseconds(1),
        };
        configure?.Invoke(options);
        return new HubTestbed(hub, options);
    }

    /// <summary>Polls the status until the download task is gone; fails after 5 s.</summary>
    public async Task<ModelStatusResponse> SettledAsync(HfModelRef model, CancellationToken ct)
    {
        var deadline = DateTime.UtcNow.AddSeconds(5);
        while (Downloads.Status(model) is var status && status.Status == ModelCacheStatus.Downloading)
        {
            Assert.True(DateTime.UtcNow < deadline, $"{ModelDownloads.TaskId(model)} still downloading after 5 s");
            await Task.Delay(10, ct);
        }
        return Downloads.Status(model);
    }

    public async ValueTask DisposeAsync()
    {
        await Downloads.DisposeAsync();
        await Hub.DisposeAsync();
        _http.Dispose();
        _loggers.Dispose();
        Directory.Delete(Sandbox, recursive: true);
    }

    private sealed class ListLoggerProvider(ConcurrentQueue<string> lines) : ILoggerProvider
    {
        public ILogger CreateLogger(string categoryName) => new ListLogger(lines);
        public void Dispose() { }
    }

    private sealed class ListLogger(ConcurrentQueue<string> lines) : ILogger
    {
        public IDisposable? BeginScope<TState>(TState state) where TState : notnull => null;
        public bool IsEnabled(LogLevel logLevel) => true;
        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter) =>
            lines.Enqueue($"{logLevel}: {formatter(state, exception)}");
    }
}
