namespace MLNode.Runtime.Registry;

/// <summary>models.json could not be used; <see cref="Problems"/> lists every problem with its JSON path.</summary>
public sealed class RegistryException(string file, IReadOnlyList<string> problems)
    : Exception($"{file}: {problems.Count} problem(s):{Environment.NewLine}  " + string.Join(Environment.NewLine + "  ", problems))
{
    public IReadOnlyList<string> Problems { get; } = problems;
}
