namespace MLNode.Worker.Hosting;

/// <summary>The <c>mlnode</c> command line: <c>mlnode serve [--models FILE] [--port N] [--inference-port M] [--load ID] [--libtorch DIR]</c>.</summary>
public static class WorkerCommand
{
    public const string Usage = """
        usage: mlnode serve [options]

          --models FILE         model registry (default: models.json beside the executable)
          --port N              management + OpenAI port (default 8080)
          --inference-port M    OpenAI-only port (default 5000, env INFERENCE_PORT)
          --host ADDRESS        address to listen on (default 0.0.0.0)
          --load ID             model to load at start (default: the demo LLM when --models is not given)
          --libtorch DIR        CUDA libtorch folder (env MLNODE_LIBTORCH); CPU when absent
          --cache-dir DIR       worker cache: generated demo models (default ~/.cache/mlnode)
          --log-format FORMAT   text (default) or json
          --replay-mode MODE    validator replay: step (default, bit-identical) or teacher_forced (one forward)

        Any setting can also be given as configuration (appsettings.json) or environment
        variable MLNODE_Worker__Port, MLNODE_Runtime__Libtorch, MLNODE_Hub__Endpoint, …
        PoC settings (section Poc, e.g. MLNODE_Poc__CallbackIntervalSec) fall back to the
        reference node's variables POC_BATCH_SIZE_DEFAULT, POC_CALLBACK_INTERVAL_SEC, …
        """;

    public static readonly Dictionary<string, string> SwitchMappings = new()
    {
        ["--models"] = "Worker:Models",
        ["--port"] = "Worker:Port",
        ["--inference-port"] = "Worker:InferencePort",
        ["--host"] = "Worker:Host",
        ["--load"] = "Worker:Load",
        ["--cache-dir"] = "Worker:CacheDir",
        ["--libtorch"] = "Runtime:Libtorch",
        ["--log-format"] = "Worker:LogFormat",
        ["--replay-mode"] = "Worker:ReplayMode",
    };

    public static async Task<int> RunAsync(string[] args)
    {
        if (args.Length > 0 && args[0] is "-h" or "--help" or "help")
        {
            Console.WriteLine(Usage);
            return 0;
        }
        var rest = args.Length > 0 && args[0] == "serve" ? args[1..] : args;
        if (rest.Length > 0 && !rest[0].StartsWith("--", StringComparison.Ordinal))
        {
            Console.Error.WriteLine($"mlnode: unknown command '{rest[0]}'\n\n{Usage}");
            return 2;
        }
        WebApplication app;
        try
        {
            app = WorkerApp.Build(rest);
        }
        catch (Exception e) when (e is FormatException or InvalidOperationException or MLNode.Runtime.Registry.RegistryException)
        {
            Console.Error.WriteLine($"mlnode: {e.Message}");
            return 2;
        }
        await app.RunAsync();
        return 0;
    }
}
