using System.Text.Json;
using MLNode.Protocol.OpenAi;

namespace MLNode.Protocol.Tests.Validation;

/// <summary>Gonka's recorded QwQ-32B executor/validator responses (../shared/fixtures/gonka/validation).</summary>
internal static class ValidationFixtures
{
    public const string HonestExecutor = "inference_response.json";
    public const string HonestValidator = "validation_response.json";
    public const string Int4Executor = "inference_response_int4.json";
    public const string Fp8Validator = "validation_response_fp8.json";

    public static string Path(string file) => MLNode.Tests.Fixtures.Path("gonka", "validation", file);

    public static ChatCompletionResponse Response(string file) =>
        JsonSerializer.Deserialize<ChatCompletionResponse>(File.ReadAllBytes(Path(file)), GonkaJson.Options)!;

    public static IReadOnlyList<ChatCompletionLogprob> Content(string file) => Response(file).Choices[0].Logprobs!.Content;
}
