using Microsoft.Extensions.Options;
using MLNode.Engines.Hosting;
using MLNode.Runtime.Registry;

namespace MLNode.Worker.Hosting;

/// <summary>Finds a registry entry's files: an operator's folder, a generated demo model, or the HF cache.</summary>
public sealed class ModelFolders(IOptions<WorkerOptions> options) : IModelFolders
{
    public Task<string> ResolveAsync(ModelEntry entry, CancellationToken ct) => entry.Source switch
    {
        ModelSource.Folder when Directory.Exists(entry.Folder) => Task.FromResult(entry.Folder!),
        ModelSource.Folder => throw new ModelLoadException($"model folder {entry.Folder} of {entry.Id} does not exist"),
        _ => throw new ModelLoadException($"{entry.Id}: source {entry.Source} is not available ({options.Value.CacheDir})"),
    };

    public IReadOnlyList<ModelFile> HubFiles(string folder) => [];
}
