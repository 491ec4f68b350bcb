using Microsoft.Extensions.Configuration.Memory;

namespace MLNode.Worker.Poc;

/// <summary>Registers PoC v2: options, the gate, the runner, the job queue and callback delivery.</summary>
public static class PocServices
{
    public static void AddPoc(this WebApplicationBuilder builder)
    {
        // The reference node's POC_* variables go first, so that every configured source overrides them.
        builder.Configuration.Sources.Insert(0, new MemoryConfigurationSource { InitialData = PocOptions.FromReferenceEnvironment() });

        var services = builder.Services;
        services.AddOptions<PocOptions>().BindConfiguration(PocOptions.Section)
            .Validate(o => o.IsValid(), "Poc: every size, count and duration must be positive").ValidateOnStart();
        // Each callback attempt has its own timeout; the client's own would cut retries short.
        services.AddHttpClient(CallbackClient.HttpClientName, c => c.Timeout = Timeout.InfiniteTimeSpan).RemoveAllLoggers();
        services.AddSingleton<PocMetrics>();
        services.AddSingleton<PocGate>();
        services.AddSingleton<PocCompute>();
        services.AddSingleton<CallbackClient>();
        services.AddSingleton<CallbackOutbox>();
        services.AddHostedService(sp => sp.GetRequiredService<CallbackOutbox>());
        services.AddSingleton<PocJobQueue>();
        services.AddHostedService(sp => sp.GetRequiredService<PocJobQueue>());
        services.AddSingleton<PocRunner>();
    }
}
