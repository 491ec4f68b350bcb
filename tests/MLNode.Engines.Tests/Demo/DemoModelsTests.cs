using System.Security.Cryptography;
using MLNode.Engines.Demo;
using MLNode.Runtime.Registry;

namespace MLNode.Engines.Tests.Demo;

public sealed class DemoModelsTests
{
    /// <summary>The generator is deterministic: what it writes here has the SHA-256s pinned in the shipped models.json.</summary>
    [Fact]
    public void Generated_demo_files_have_the_hashes_pinned_in_models_json()
    {
        var registry = ModelRegistry.Load(Path.Combine(AppContext.BaseDirectory, "..", "..", "..", "..", "..", "models.json"));
        var demos = registry.Models.Where(m => m.Source == ModelSource.Demo).ToList();
        Assert.NotEmpty(demos);
        foreach (var demo in demos)
        {
            var folder = Path.Combine(Directory.CreateTempSubdirectory("mlnode-demo-").FullName, "model");
            try
            {
                DemoModels.Write(demo.Id, demo.Architecture, folder);
                foreach (var file in demo.Files!)
                    Assert.Equal(file.Sha256, Convert.ToHexStringLower(SHA256.HashData(File.ReadAllBytes(Path.Combine(folder, file.Path)))));
                Assert.Equal(demo.Files!.Select(f => f.Path).Order(), Directory.GetFiles(folder).Select(Path.GetFileName).Order()!);
            }
            finally
            {
                Directory.Delete(Path.GetDirectoryName(folder)!, recursive: true);
            }
        }
    }
}
