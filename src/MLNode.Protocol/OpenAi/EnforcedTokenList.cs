namespace MLNode.Protocol.OpenAi;

/// <summary>
/// <c>enforced_tokens</c> of a validator replay: <c>{"tokens":[{"token":"24","top_tokens":["24","23",…]},…]}</c>.
/// Token strings are decimal ids, as the fork writes them in <c>logprobs.content[].token</c>.
/// </summary>
public sealed record EnforcedTokenList(IReadOnlyList<EnforcedToken> Tokens);

public sealed record EnforcedToken(string Token, IReadOnlyList<string>? TopTokens = null);
