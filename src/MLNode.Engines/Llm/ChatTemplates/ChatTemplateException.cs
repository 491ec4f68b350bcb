namespace MLNode.Engines.Llm.ChatTemplates;

/// <summary>
/// A chat template failed to parse or render: a syntax error, a template calling raise_exception, or a
/// value used the wrong way (what Python would raise as TypeError or UndefinedError). The message is
/// meant for the API client, which sent the conversation the template rejected.
/// </summary>
public sealed class ChatTemplateException(string message) : Exception(message);
