using Microsoft.Extensions.Options;
using MLNode.Engines.Demo;
using MLNode.Engines.Hosting;
using MLNode.Protocol.Management;
using MLNode.Runtime.Hub;
using MLNode.Runtime.Registry;

namespace MLNode.Worker.Hosting;

/// <summary>Finds a registry entry's files: an operator's folder, a generated demo model, or the HF cache.</summary>
public sealed class ModelFolders(IOptions<WorkerOptions> options, ModelDownloads downloads, ILogger<ModelFolders> logger) : IModelFolders
{
    private static readonly Lock DemoGate = new();

    public Task<string> ResolveAsync(ModelEntry entry, CancellationToken ct) => entry.Source switch
    {
        ModelSource.Folder when Directory.Exists(entry.Folder) => Task.FromResult(entry.Folder!),
        ModelSource.Folder => throw new ModelLoadException($"model folder {entry.Folder} of {entry.Id} does not exist"),
        ModelSource.Demo => Task.FromResult(DemoFolder(entry)),
        _ => downloads.EnsureAsync(new HfModelRef(entry.Id, entry.Revision), ct),
    };

    public IReadOnlyList<ModelFile> HubFiles(string folder) => HubCache.LfsFiles(folder);

    /// <summary>Generates the demo model on first use; its files are then verified against models.json like any model's.</summary>
    private string DemoFolder(ModelEntry entry)
    {
        var folder = Path.Combine(options.Value.CacheDir, "demo", entry.Id.Replace('/', '-'));
        lock (DemoGate)
        {
            if (!Directory.Exists(folder))
            {
                if (!DemoModels.CanGenerate(entry.Architecture))
                    throw new ModelLoadException($"{entry.Id}: no demo generator for architecture '{entry.Architecture}'");
                logger.LogInformation("Generating demo model {Model} in {Folder} (random weights from a fixed seed)", entry.Id, folder);
                DemoModels.Write(entry.Id, entry.Architecture, folder);
            }
        }
        return folder;
    }
}
