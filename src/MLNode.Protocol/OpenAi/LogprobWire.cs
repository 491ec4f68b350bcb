using System.Globalization;
using System.Text;

namespace MLNode.Protocol.OpenAi;

/// <summary>How Gonka's vLLM fork writes tokens and logprobs, which the validator's comparison depends on.</summary>
public static class LogprobWire
{
    /// <summary>What −inf is written as: JSON has no infinity, and vLLM floors every reported logprob here.</summary>
    public const double NegativeInfinity = -9999.0;

    /// <summary>
    /// The logprob as written. Masked entries (processed mode) are −inf and become −9999; NaN does too, since JSON
    /// cannot hold it and a NaN here means the entry carries no probability.
    /// </summary>
    public static double Logprob(double logprob) => logprob >= NegativeInfinity ? logprob : NegativeInfinity;

    /// <summary>The fork's token string: the decimal id, never decoded text (dapi rejects decoded text).</summary>
    public static string TokenString(int tokenId) => tokenId.ToString(CultureInfo.InvariantCulture);

    /// <summary><c>bytes</c> is the UTF-8 of the token string, so for an id string its ASCII digits.</summary>
    public static IReadOnlyList<int> Bytes(string token) => [.. Encoding.UTF8.GetBytes(token).Select(b => (int)b)];
}
