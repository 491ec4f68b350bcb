using System.Globalization;
using MLNode.Protocol.Management;
using MLNode.Protocol.OpenAi;

namespace MLNode.Protocol.Validation;

/// <summary>The replay's token ids, read from <see cref="EnforcedTokenList"/>: one emitted id and its top ids per position.</summary>
public sealed record EnforcedTokenIds(IReadOnlyList<int> TokenIds, IReadOnlyList<IReadOnlyList<int>> TopTokenIds);

/// <summary>The ids, or the fields that kept them from being read.</summary>
public sealed record EnforcedTokensParse(EnforcedTokenIds? Ids, IReadOnlyList<FieldError> Errors);

/// <summary>
/// Gonka's replay rules (fork <c>vllm/validation.py</c>): the validator emits the executor's tokens one step at a
/// time while computing its own distribution, so the logprobs it returns can be compared position by position.
/// </summary>
public static class EnforcedTokens
{
    /// <summary>The fork's ceilings, applied before any id reaches the engine.</summary>
    public const int MaxPositions = 32768;

    public const int MaxTopTokensPerPosition = 64;

    /// <summary>Processed-mode padding uses the lowest ids (0–3 for Qwen: <c>! " # $</c>).</summary>
    public const int PaddingIdLimit = 4;

    /// <summary>Fewer top-token entries than this say nothing about the mode.</summary>
    public const int MinTopTokensToDetect = 10;

    public const double ProcessedPaddingFraction = 0.10;

    private const string Field = "body.enforced_tokens.tokens";

    /// <summary>
    /// Reads the decimal ids. The fork falls back to tokenizing text, but dapi has sent ids since it began
    /// rejecting decoded text, so anything other than a non-negative integer is a field error here.
    /// Whether an id is inside the vocabulary is the engine's check: only it knows the vocabulary size.
    /// </summary>
    public static EnforcedTokensParse Parse(EnforcedTokenList list)
    {
        var errors = new List<FieldError>();
        if (list.Tokens.Count == 0)
            errors.Add(new FieldError(Field, "must hold at least one token"));
        if (list.Tokens.Count > MaxPositions)
            errors.Add(new FieldError(Field, $"more than {MaxPositions} tokens"));
        if (errors.Count > 0)
            return new EnforcedTokensParse(null, errors);

        var tokenIds = new int[list.Tokens.Count];
        var topTokenIds = new IReadOnlyList<int>[list.Tokens.Count];
        for (var i = 0; i < list.Tokens.Count; i++)
        {
            var position = list.Tokens[i];
            if (!TryParseId(position.Token, out tokenIds[i]))
                errors.Add(new FieldError($"{Field}.{i}.token", $"'{position.Token}' is not a token id (a non-negative decimal integer)"));
            var top = position.TopTokens ?? [];
            if (top.Count > MaxTopTokensPerPosition)
            {
                errors.Add(new FieldError($"{Field}.{i}.top_tokens", $"more than {MaxTopTokensPerPosition} top tokens"));
                continue;
            }
            var ids = new int[top.Count];
            for (var j = 0; j < top.Count; j++)
            {
                if (!TryParseId(top[j], out ids[j]))
                    errors.Add(new FieldError($"{Field}.{i}.top_tokens.{j}", $"'{top[j]}' is not a token id (a non-negative decimal integer)"));
            }
            topTokenIds[i] = ids;
        }
        return errors.Count > 0 ? new EnforcedTokensParse(null, errors) : new EnforcedTokensParse(new EnforcedTokenIds(tokenIds, topTokenIds), []);
    }

    /// <summary>The ids to emit: EOS is appended unless the executor's last token was EOS, so the replay terminates.</summary>
    public static IReadOnlyList<int> AppendEos(IReadOnlyList<int> tokenIds, int eosTokenId) =>
        tokenIds.Count > 0 && tokenIds[^1] == eosTokenId ? tokenIds : [.. tokenIds, eosTokenId];

    /// <summary>
    /// Which logprobs mode the executor used, for a replay that does not say: processed-mode padding puts ~75 % of
    /// top ids below <see cref="PaddingIdLimit"/>, raw mode ~0.2 %. Null when there are too few top ids to tell.
    /// </summary>
    public static string? DetectLogprobsMode(EnforcedTokenIds ids)
    {
        var total = ids.TopTokenIds.Sum(top => top.Count);
        if (total < MinTopTokensToDetect)
            return null;
        var padding = ids.TopTokenIds.Sum(top => top.Count(id => id < PaddingIdLimit));
        return (double)padding / total > ProcessedPaddingFraction ? LogprobsMode.Processed : LogprobsMode.Raw;
    }

    /// <summary>The replay's <c>enforced_tokens</c> from the executor's <c>logprobs.content</c>, as dapi builds it.</summary>
    public static EnforcedTokenList FromContent(IReadOnlyList<ChatCompletionLogprob> content) =>
        new([.. content.Select(p => new EnforcedToken(p.Token, [.. p.TopLogprobs.Select(t => t.Token)]))]);

    private static bool TryParseId(string token, out int id) =>
        int.TryParse(token, NumberStyles.None, CultureInfo.InvariantCulture, out id);
}
