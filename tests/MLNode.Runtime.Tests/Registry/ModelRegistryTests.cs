using MLNode.Runtime.Registry;

namespace MLNode.Runtime.Tests.Registry;

public sealed class ModelRegistryTests
{
    private const string Sha = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    private static string Entry(string extra = "", string id = "Qwen/Qwen3-8B") => $$"""
        {"id":"{{id}}","modality":"llm","architecture":"qwen3","dtype":"bfloat16",
         "limits":{"max_model_len":40960,"max_batch":64}{{extra}}}
        """;

    private static ModelRegistry Parse(params string[] entries) =>
        ModelRegistry.Parse($$"""{"models":[{{string.Join(",", entries)}}]}""", "models.json", "/srv/models");

    private static IReadOnlyList<string> Problems(string json) =>
        Assert.Throws<RegistryException>(() => ModelRegistry.Parse(json, "models.json", "/srv")).Problems;

    [Fact]
    public void Reads_a_hub_entry_with_defaults()
    {
        var m = Assert.Single(Parse(Entry(""", "validation_threshold":0.94,"poc":{"seq_len":1024,"stat_test":{"dist_threshold":0.2,"p_mismatch":0.1,"p_value_threshold":0.05}},"pricing":{"units_of_compute_per_token":1000}""")).Models);
        Assert.Equal("Qwen/Qwen3-8B", m.Id);
        Assert.Equal("main", m.Revision);
        Assert.Equal(ModelSource.Hub, m.Source);
        Assert.Equal(Modality.Llm, m.Modality);
        Assert.Null(m.Files);
        Assert.Equal(new ModelLimits(40960, 64), m.Limits);
        Assert.Equal(0.94, m.ValidationThreshold);
        Assert.Equal(new PocParams(1024, 12, new StatTestParams(0.2, 0.1, 0.05), 1.0), m.Poc);
        Assert.Equal(1000, m.Pricing["units_of_compute_per_token"]);
    }

    [Fact]
    public void Local_folders_resolve_against_the_registry_file_and_demo_entries_are_marked()
    {
        var registry = Parse(
            Entry(""", "path":"weights/qwen" """, id: "local-qwen"),
            Entry($$""", "demo":true,"files":[{"path":"model.safetensors","sha256":"{{Sha}}"}]""", id: "mlnode/demo"));
        Assert.Equal("/srv/models/weights/qwen", registry.Find("local-qwen")!.Folder);
        Assert.Equal(ModelSource.Folder, registry.Find("local-qwen")!.Source);
        Assert.Equal(ModelSource.Demo, registry.Find("mlnode/demo")!.Source);
        Assert.Equal([new ModelFile("model.safetensors", Sha)], registry.Find("mlnode/demo")!.Files);
        Assert.Null(registry.Find("unknown/model"));
    }

    [Fact]
    public void Reports_every_problem_with_its_json_path_at_once()
    {
        var problems = Problems($$"""
            {"models":[
              {"id":"Qwen/Qwen3-8B","modality":"vision","architecture":"qwen3","dtype":"int4","limits":{"max_model_len":0,"max_batch":"many"} },
              {"id":"ok/model","modality":"llm","architecture":"llama","dtype":"bfloat16","limits":{"max_model_len":10,"max_batch":1},"colour":"red"},
              {"modality":"llm","architecture":"qwen3","dtype":"float32"},
              {"id":"x/y","modality":"llm","architecture":"qwen3","dtype":"float32","limits":{"max_model_len":10,"max_batch":1},
               "files":[{"path":"../etc/passwd","sha256":"{{Sha}}"},{"path":"a","sha256":"XYZ"}],
               "poc":{"seq_len":1024,"stat_test":{"dist_threshold":-1,"p_mismatch":0.1} } }
            ]}
            """);
        string[] expected =
        [
            "$.models[0].modality", "$.models[0].dtype", "$.models[0].limits.max_model_len", "$.models[0].limits.max_batch",
            "$.models[1].architecture", "$.models[1].colour",
            "$.models[2].id", "$.models[2].limits",
            "$.models[3].files[0].path", "$.models[3].files[1].sha256", "$.models[3].poc.stat_test.dist_threshold", "$.models[3].poc.stat_test.p_value_threshold",
        ];
        foreach (var path in expected)
            Assert.Contains(problems, p => p.StartsWith(path + ":", StringComparison.Ordinal));
        Assert.Equal(expected.Length, problems.Count);
    }

    [Theory]
    [InlineData("not json", "$: not valid JSON")]
    [InlineData("[]", "$: expected an object")]
    [InlineData("{}", "$.models: is required")]
    [InlineData("""{"models":[1]}""", "$.models[0]: expected an object")]
    public void Rejects_malformed_files(string json, string problem) =>
        Assert.StartsWith(problem, Assert.Single(Problems(json)));

    [Fact]
    public void Rejects_duplicate_ids_bad_hub_ids_and_revisions()
    {
        var problems = Problems($$"""{"models":[{{Entry()}},{{Entry()}},{{Entry(id: "no-owner")}},{{Entry(""", "revision":"../main" """, id: "a/b")}}]}""");
        Assert.Contains(problems, p => p.StartsWith("$.models[1].id: duplicate id"));
        Assert.Contains(problems, p => p.StartsWith("$.models[2].id: 'no-owner' is not a hub repository id"));
        Assert.Contains(problems, p => p.StartsWith("$.models[3].revision:"));
    }

    [Fact]
    public void A_demo_model_must_list_its_hashes() =>
        Assert.Contains(Problems($$"""{"models":[{{Entry(""", "demo":true""")}}]}"""), p => p.StartsWith("$.models[0].files: a demo model must list"));

    [Fact]
    public void The_shipped_registry_is_valid()
    {
        var file = Path.Combine(AppContext.BaseDirectory, "..", "..", "..", "..", "..", "models.json");
        var registry = ModelRegistry.Load(file);
        Assert.NotEmpty(registry.Models);
        Assert.All(registry.Models.Where(m => m.Source == ModelSource.Demo), m => Assert.NotNull(m.Files));
    }

    [Theory]
    [InlineData("model.safetensors", true)]
    [InlineData("sub/dir/file.bin", true)]
    [InlineData("../model.safetensors", false)]
    [InlineData("a/../../b", false)]
    [InlineData("/etc/passwd", false)]
    [InlineData("a//b", false)]
    [InlineData("a\\b", false)]
    [InlineData("./a", false)]
    [InlineData("", false)]
    public void Relative_paths_must_stay_inside_the_model_folder(string path, bool safe)
    {
        Assert.Equal(safe, ModelPaths.IsSafeRelative(path));
        if (safe) Assert.StartsWith("/srv/m/", ModelPaths.Resolve("/srv/m", path));
        else Assert.Throws<InvalidDataException>(() => ModelPaths.Resolve("/srv/m", path));
    }
}
