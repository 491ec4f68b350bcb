using System.Globalization;
using System.Text;
using MLNode.Engines.Asr;

namespace MLNode.Worker.Api;

/// <summary>
/// The text of a speech result and its subtitle renderings. Windows are decoded independently, so their texts are
/// joined as vLLM joins chunks: with a space, or nothing in languages written without spaces between words.
/// </summary>
public static class Transcript
{
    private static readonly HashSet<string> NoSpaceLanguages = ["zh", "yue", "ja", "th", "lo", "km", "my"];

    public static string Separator(string language) => NoSpaceLanguages.Contains(language) ? "" : " ";

    public static string Text(SpeechResult result) =>
        string.Join(Separator(result.Language), result.Windows.Select(w => w.Text.Trim()).Where(t => t.Length > 0));

    /// <summary>SubRip: numbered cues, <c>HH:MM:SS,mmm</c> times, a blank line after each cue.</summary>
    public static string Srt(IEnumerable<SpeechSegment> segments)
    {
        var srt = new StringBuilder();
        var index = 0;
        foreach (var segment in segments)
        {
            srt.Append(CultureInfo.InvariantCulture, $"{++index}\n{Time(segment.Start, ',')} --> {Time(segment.End, ',')}\n{CueText(segment)}\n\n");
        }
        return srt.ToString();
    }

    /// <summary>WebVTT: the header, then cues with <c>HH:MM:SS.mmm</c> times, a blank line after each cue.</summary>
    public static string Vtt(IEnumerable<SpeechSegment> segments)
    {
        var vtt = new StringBuilder("WEBVTT\n\n");
        foreach (var segment in segments)
            vtt.Append(CultureInfo.InvariantCulture, $"{Time(segment.Start, '.')} --> {Time(segment.End, '.')}\n{CueText(segment)}\n\n");
        return vtt.ToString();
    }

    /// <summary>A cue's text on one line; "-->" would end the cue's timing line early, so it becomes "->" (as openai-whisper writes it).</summary>
    private static string CueText(SpeechSegment segment) =>
        segment.Text.Trim().Replace("-->", "->", StringComparison.Ordinal).Replace('\n', ' ');

    private static string Time(double seconds, char decimalMarker)
    {
        var ms = (long)Math.Round(Math.Max(0, seconds) * 1000, MidpointRounding.AwayFromZero);
        return string.Create(CultureInfo.InvariantCulture, $"{ms / 3_600_000:00}:{ms / 60_000 % 60:00}:{ms / 1000 % 60:00}{decimalMarker}{ms % 1000:000}");
    }
}
