using System.Globalization;
using System.Text;
using MLNode.Engines.Llm.Tokenization.Unicode;

namespace MLNode.Engines.Tests.Tokenization;

public sealed class CanonicalNormalizerTests
{
    [Fact]
    public void Nfc_and_nfd_match_python_unicodedata()
    {
        var failures = new List<string>();
        foreach (var line in File.ReadLines(Path.Combine(AppContext.BaseDirectory, "Tokenization", "normalization_cases.txt")).Where(line => !line.StartsWith('#')))
        {
            var fields = line.Split("; ");
            var (source, nfc, nfd) = (Text(fields[0]), Text(fields[1]), Text(fields[2]));
            if (CanonicalNormalizer.Compose(source) != nfc || CanonicalNormalizer.Decompose(source) != nfd)
                failures.Add(line);
        }

        Assert.True(failures.Count == 0, $"{failures.Count} cases differ, first: {string.Join(" | ", failures.Take(5))}");
    }

    [Fact]
    public void Lone_surrogates_become_replacement_characters()
    {
        Assert.Equal("e\u0301\uFFFD", CanonicalNormalizer.Decompose("\u00E9\uDC00"));
        Assert.Equal("\u00E9\uFFFD", CanonicalNormalizer.Compose("e\u0301\uD800"));
    }

    private static string Text(string hexCodePoints)
    {
        var text = new StringBuilder();
        foreach (var hex in hexCodePoints.Split(' '))
            text.Append(char.ConvertFromUtf32(int.Parse(hex, NumberStyles.HexNumber, CultureInfo.InvariantCulture)));
        return text.ToString();
    }
}
