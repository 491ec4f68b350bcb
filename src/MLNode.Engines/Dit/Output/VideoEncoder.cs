using System.Globalization;
using MLNode.Engines.Asr.Audio;

namespace MLNode.Engines.Dit.Output;

/// <summary>The forms a finished video is served in: an MP4, or lossless as the raw frames or a zip of PNGs.</summary>
public enum VideoFormat { Mp4, Frames, Png }

/// <summary>
/// Encodes canonical frames to H.264 MP4 with FFmpeg, settings pinned so the same frames and FFmpeg build give the same
/// bytes: libx264, preset medium, CRF 18, yuv420p, one thread (x264's multithreaded rate control depends on timing),
/// the job's fps, and no timestamps or tool names in the file (bitexact flags, metadata dropped). The MP4 is for
/// viewing; the network hashes the frames (<see cref="VideoHashes"/>), since other builds may encode differently.
/// </summary>
public sealed class VideoEncoder(string ffmpegPath)
{
    private const long MaxToolOutputBytes = 1 << 20;

    public async Task<byte[]> Mp4Async(WanVideo video, int fps, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(video);
        var folder = Directory.CreateTempSubdirectory("mlnode-video-");
        try
        {
            var raw = Path.Combine(folder.FullName, "frames.rgb");
            var mp4 = Path.Combine(folder.FullName, "video.mp4");
            await File.WriteAllBytesAsync(raw, video.Frames, ct);
            string[] arguments =
            [
                "-hide_banner", "-nostdin", "-loglevel", "error",
                "-f", "rawvideo", "-pix_fmt", "rgb24", "-s", $"{video.Width}x{video.Height}", "-r", fps.ToString(CultureInfo.InvariantCulture), "-i", raw,
                "-c:v", "libx264", "-preset", "medium", "-crf", "18", "-pix_fmt", "yuv420p", "-threads", "1",
                "-fflags", "+bitexact", "-flags:v", "+bitexact", "-map_metadata", "-1",
                "-f", "mp4", "-y", mp4,
            ];
            ToolOutput run;
            try
            {
                run = await ExternalTool.RunAsync(ffmpegPath, arguments, MaxToolOutputBytes, ct);
            }
            catch (AudioDecoderUnavailableException e)
            {
                throw new InvalidOperationException($"cannot run '{ffmpegPath}' to encode the MP4; install FFmpeg or set Video:FFmpegPath", e);
            }
            if (run.ExitCode != 0) throw new InvalidOperationException($"ffmpeg could not encode the video (exit {run.ExitCode}): {run.Stderr}");
            return await File.ReadAllBytesAsync(mp4, ct);
        }
        finally
        {
            folder.Delete(recursive: true);
        }
    }
}
