using System.Globalization;
using System.IO.Compression;
using System.Security.Cryptography;
using System.Text.Json;
using MLNode.Engines.Asr.Audio;
using MLNode.Engines.Dit.Output;

namespace MLNode.Engines.Dit.Validation;

/// <summary>
/// A video as a validator received it: its form, the SHA-256 of the file, the frame size and count it has, its frame
/// rate when its container states one (MP4), and its frames as canonical [F, H, W, 3] RGB. <see cref="Frames"/> is null
/// when the size or the count is not the spec's: such a video fails V0 on those facts, and is not decoded further.
/// </summary>
public sealed record DeliveredVideo(VideoFormat Format, string FileSha256, int Width, int Height, int FrameCount, double? Fps, WanVideo? Frames);

/// <summary>
/// Reads the files a worker serves (<see cref="VideoFormat"/>) back into frames, as the spec's video: raw frames
/// (<c>frames.rgb</c>, [F, H, W, 3] bytes at the spec's size), the PNG zip (<see cref="PngArchive"/>), or an MP4 decoded
/// by FFmpeg with its options pinned like <see cref="VideoEncoder"/>'s: the first video stream, one thread, every
/// frame as stored (no frame-rate conversion), and the conversion to RGB fixed (BT.601 limited range in, which is what
/// the encoder's swscale wrote; bicubic chroma, accurate rounding, bit-exact). A file that is not what its format says
/// raises a <see cref="ValidationInputException"/> for <see cref="Field"/>.
/// </summary>
public sealed class DeliveredVideoReader(string ffmpegPath)
{
    public const string Field = "video";

    /// <summary>The demuxers FFmpeg may open an "mp4" with, so a playlist or concat script cannot pull in other files.</summary>
    public const string Demuxers = "mov,mp4,m4a,3gp,3g2,mj2";

    public const string RgbFilter = "scale=flags=bicubic+accurate_rnd+full_chroma_int+bitexact:in_color_matrix=bt601:in_range=tv,format=rgb24";

    private const long MaxToolOutputBytes = 1 << 20;

    public string FFprobePath { get; } = ExternalTool.Beside(ffmpegPath, "ffprobe");

    /// <summary>FFmpeg's arguments: the first <paramref name="maxFrames"/> frames of the first video stream as raw RGB to stdout.</summary>
    public static IReadOnlyList<string> DecodeArguments(string input, int maxFrames) =>
    [
        "-nostdin", "-hide_banner", "-nostats", "-loglevel", "error", "-threads", "1",
        "-protocol_whitelist", "file", "-format_whitelist", Demuxers, "-i", input,
        "-map", "0:v:0", "-frames:v", maxFrames.ToString(CultureInfo.InvariantCulture), "-fps_mode", "passthrough",
        "-vf", RgbFilter, "-f", "rawvideo", "pipe:1",
    ];

    public async Task<DeliveredVideo> ReadAsync(string path, VideoFormat format, WanJobSpec spec, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(spec);
        var length = new FileInfo(path).Length;
        if (length == 0) throw new ValidationInputException(Field, "the uploaded file is empty");
        string sha256;
        await using (var file = File.OpenRead(path))
            sha256 = Convert.ToHexStringLower(await SHA256.HashDataAsync(file, ct));
        return format switch
        {
            VideoFormat.Mp4 => await Mp4Async(path, sha256, spec, ct),
            VideoFormat.Png => PngZip(path, sha256, spec),
            _ => await RawAsync(path, length, sha256, spec, ct),
        };
    }

    /// <summary>Raw frames carry no size: they are read at the spec's, and must be whole frames of it.</summary>
    private static async Task<DeliveredVideo> RawAsync(string path, long length, string sha256, WanJobSpec spec, CancellationToken ct)
    {
        var frameBytes = (long)spec.Width * spec.Height * WanVideo.Channels;
        if (length % frameBytes != 0)
            throw new ValidationInputException(Field, $"{length} bytes are not whole {spec.Width}×{spec.Height} RGB frames ({frameBytes} bytes each) at the spec's size");
        var count = (int)(length / frameBytes);
        var frames = count <= spec.NumFrames ? new WanVideo(await File.ReadAllBytesAsync(path, ct), count, spec.Height, spec.Width) : null;
        return new DeliveredVideo(VideoFormat.Frames, sha256, spec.Width, spec.Height, count, null, frames);
    }

    private static DeliveredVideo PngZip(string path, string sha256, WanJobSpec spec)
    {
        try
        {
            using var zip = ZipFile.OpenRead(path);
            var entries = zip.Entries;
            if (entries.Count == 0) throw new ValidationInputException(Field, "the zip holds no frames");
            for (var f = 0; f < entries.Count; f++)
                if (zip.GetEntry(PngArchive.EntryName(f)) is null)
                    throw new ValidationInputException(Field, $"the zip's {entries.Count} entries are not {PngArchive.EntryName(0)} … {PngArchive.EntryName(entries.Count - 1)}: {PngArchive.EntryName(f)} is missing");
            // A frame's PNG is never much larger than its raw pixels: a bound on what one entry may inflate to.
            var maxEntryBytes = 2L * spec.Width * spec.Height * WanVideo.Channels + (1 << 20);
            var (height, width) = PngArchive.Size(Entry(zip, 0, maxEntryBytes));
            if (height != spec.Height || width != spec.Width || entries.Count > spec.NumFrames)
                return new DeliveredVideo(VideoFormat.Png, sha256, width, height, entries.Count, null, null);

            var frameBytes = width * height * WanVideo.Channels;
            var frames = new byte[entries.Count * frameBytes];
            for (var f = 0; f < entries.Count; f++)
            {
                var rgb = PngArchive.Decode(Entry(zip, f, maxEntryBytes), out var h, out var w);
                if (h != height || w != width)
                    throw new ValidationInputException(Field, $"{PngArchive.EntryName(f)} is {w}×{h}, the first frame {width}×{height}");
                rgb.CopyTo(frames, f * frameBytes);
            }
            return new DeliveredVideo(VideoFormat.Png, sha256, width, height, entries.Count, null, new WanVideo(frames, entries.Count, height, width));
        }
        catch (InvalidDataException e)
        {
            throw new ValidationInputException(Field, $"not a zip of 8-bit RGB PNG frames: {e.Message}");
        }
    }

    private static byte[] Entry(ZipArchive zip, int index, long maxBytes)
    {
        var entry = zip.GetEntry(PngArchive.EntryName(index))!;
        if (entry.Length > maxBytes) throw new ValidationInputException(Field, $"{entry.FullName} inflates to {entry.Length} bytes, more than a frame of the spec's size can take");
        using var stream = entry.Open();
        using var bytes = new MemoryStream();
        stream.CopyTo(bytes);
        return bytes.ToArray();
    }

    private async Task<DeliveredVideo> Mp4Async(string path, string sha256, WanJobSpec spec, CancellationToken ct)
    {
        var stream = await ProbeAsync(path, ct);
        if (stream.Height != spec.Height || stream.Width != spec.Width)
            return new DeliveredVideo(VideoFormat.Mp4, sha256, stream.Width, stream.Height, stream.StoredFrames, stream.Fps, null);

        // One frame past the spec's count is enough to know there are too many.
        var frameBytes = spec.Width * spec.Height * WanVideo.Channels;
        var decoded = await RunAsync(ffmpegPath, DecodeArguments(path, spec.NumFrames + 1), (spec.NumFrames + 1L) * frameBytes, ct);
        if (decoded.ExitCode != 0) throw new ValidationInputException(Field, $"the MP4's video stream cannot be decoded: {decoded.FirstError(path)}");
        if (decoded.Stdout.Length == 0 || decoded.Stdout.Length % frameBytes != 0)
            throw new ValidationInputException(Field, $"the MP4 decodes to {decoded.Stdout.Length} bytes, not whole {spec.Width}×{spec.Height} frames");
        var count = decoded.Stdout.Length / frameBytes;
        return count <= spec.NumFrames
            ? new DeliveredVideo(VideoFormat.Mp4, sha256, stream.Width, stream.Height, count, stream.Fps, new WanVideo(decoded.Stdout, count, spec.Height, spec.Width))
            : new DeliveredVideo(VideoFormat.Mp4, sha256, stream.Width, stream.Height, Math.Max(count, stream.StoredFrames), stream.Fps, null);
    }

    private sealed record VideoStream(int Width, int Height, double? Fps, int StoredFrames);

    private async Task<VideoStream> ProbeAsync(string path, CancellationToken ct)
    {
        string[] arguments =
        [
            "-v", "error", "-hide_banner", "-protocol_whitelist", "file", "-format_whitelist", Demuxers,
            "-select_streams", "v:0", "-show_entries", "stream=width,height,r_frame_rate,nb_frames", "-of", "json", path,
        ];
        var probe = await RunAsync(FFprobePath, arguments, MaxToolOutputBytes, ct);
        if (probe.ExitCode != 0) throw new ValidationInputException(Field, $"not an MP4: {probe.FirstError(path)}");
        try
        {
            using var json = JsonDocument.Parse(probe.Stdout);
            var streams = json.RootElement.GetProperty("streams");
            if (streams.GetArrayLength() == 0) throw new ValidationInputException(Field, "the MP4 has no video stream");
            var video = streams[0];
            var rate = video.TryGetProperty("r_frame_rate", out var r) ? r.GetString()!.Split('/') : [];
            double? fps = rate.Length == 2 && long.TryParse(rate[0], CultureInfo.InvariantCulture, out var num)
                && long.TryParse(rate[1], CultureInfo.InvariantCulture, out var den) && den > 0 ? (double)num / den : null;
            var stored = video.TryGetProperty("nb_frames", out var n) && int.TryParse(n.GetString(), CultureInfo.InvariantCulture, out var frames) ? frames : 0;
            return new VideoStream(video.GetProperty("width").GetInt32(), video.GetProperty("height").GetInt32(), fps, stored);
        }
        catch (Exception e) when (e is JsonException or KeyNotFoundException or InvalidOperationException or FormatException)
        {
            throw new InvalidOperationException($"ffprobe printed something other than its JSON stream list: {e.Message}", e);
        }
    }

    private async Task<ToolOutput> RunAsync(string tool, IReadOnlyList<string> arguments, long maxStdoutBytes, CancellationToken ct)
    {
        try
        {
            return await ExternalTool.RunAsync(tool, arguments, maxStdoutBytes, ct);
        }
        catch (AudioDecoderUnavailableException e)
        {
            throw new InvalidOperationException($"cannot run '{tool}' to read the MP4; install FFmpeg or set Video:FFmpegPath", e);
        }
    }
}
