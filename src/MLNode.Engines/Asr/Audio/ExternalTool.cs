using System.ComponentModel;
using System.Diagnostics;
using System.Text;

namespace MLNode.Engines.Asr.Audio;

/// <summary>What a tool run produced: its exit code, its standard output (up to the limit) and the start of its errors.</summary>
internal sealed record ToolOutput(int ExitCode, byte[] Stdout, bool StdoutOverflowed, string Stderr)
{
    /// <summary>The first error line, with a private temporary path the tool read replaced by "upload".</summary>
    public string FirstError(string privatePath)
    {
        var line = Stderr.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).FirstOrDefault() ?? "no message";
        return line.Replace(privatePath, "upload", StringComparison.Ordinal);
    }
}

/// <summary>
/// Runs FFmpeg's command-line tools with an exact argument vector (no shell, no quoting), reading standard output as
/// bytes. A run whose output passes the limit is killed, so an over-long upload costs no more than the limit.
/// </summary>
internal static class ExternalTool
{
    private const int StderrChars = 4096;

    /// <summary>Another FFmpeg tool (ffprobe) in the folder of <paramref name="ffmpegPath"/>, or by name on PATH when that is a bare name.</summary>
    public static string Beside(string ffmpegPath, string tool) =>
        Path.GetDirectoryName(ffmpegPath) is { Length: > 0 } folder ? Path.Combine(folder, tool) : tool;

    public static async Task<ToolOutput> RunAsync(string executable, IReadOnlyList<string> arguments, long maxStdoutBytes, CancellationToken ct)
    {
        var start = new ProcessStartInfo(executable)
        {
            UseShellExecute = false,
            RedirectStandardInput = true,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
        };
        foreach (var argument in arguments) start.ArgumentList.Add(argument);

        using var process = new Process { StartInfo = start };
        try
        {
            process.Start();
        }
        catch (Win32Exception e)
        {
            throw new AudioDecoderUnavailableException($"cannot run '{executable}' ({e.Message}); install FFmpeg or set Audio:FFmpegPath", e);
        }
        process.StandardInput.Close();

        void Stop()
        {
            try
            {
                process.Kill(entireProcessTree: true);
            }
            catch (InvalidOperationException)
            {
                // It exited on its own in the meantime.
            }
        }

        byte[] stdout;
        bool overflowed;
        string stderr;
        await using (ct.Register(Stop))
        {
            // Both pipes are drained concurrently: a tool blocked on a full stderr pipe would never finish its stdout.
            var errors = ReadStartAsync(process.StandardError, StderrChars);
            (stdout, overflowed) = await ReadBoundedAsync(process.StandardOutput.BaseStream, maxStdoutBytes, Stop);
            stderr = await errors;
            await process.WaitForExitAsync(CancellationToken.None);
        }
        ct.ThrowIfCancellationRequested();
        return new ToolOutput(process.ExitCode, stdout, overflowed, stderr);
    }

    private static async Task<(byte[] Bytes, bool Overflowed)> ReadBoundedAsync(Stream stream, long maxBytes, Action stop)
    {
        using var collected = new MemoryStream();
        var buffer = new byte[1 << 16];
        int read;
        while ((read = await stream.ReadAsync(buffer)) > 0)
        {
            if (collected.Length + read > maxBytes)
            {
                stop();
                return (collected.ToArray(), true);
            }
            collected.Write(buffer, 0, read);
        }
        return (collected.ToArray(), false);
    }

    /// <summary>The first <paramref name="maxChars"/> characters; the rest is read and dropped.</summary>
    private static async Task<string> ReadStartAsync(StreamReader reader, int maxChars)
    {
        var kept = new StringBuilder();
        var buffer = new char[1024];
        int read;
        while ((read = await reader.ReadAsync(buffer)) > 0)
        {
            if (kept.Length < maxChars) kept.Append(buffer, 0, Math.Min(read, maxChars - kept.Length));
        }
        return kept.ToString();
    }
}
