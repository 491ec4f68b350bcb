using System.Reflection;

namespace MLNode.Worker.Api;

/// <summary>The version /state reports (dapi records it); the assembly's informational version without build metadata.</summary>
public static class WorkerVersion
{
    public static string Value { get; } =
        (typeof(WorkerVersion).Assembly.GetCustomAttribute<AssemblyInformationalVersionAttribute>()?.InformationalVersion ?? "0.0.0")
        .Split('+')[0];
}
