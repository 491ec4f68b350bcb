using static TorchSharp.torch;

namespace MLNode.Engines.Dit.Vae;

/// <summary>
/// Decoded video in [−1, 1] to 8-bit pixel values the way the official <c>save_video</c> (wan/utils/utils.py) does it:
/// clamp to [−1, 1], map to [0, 1] as (x − (−1)) / 2 (torchvision's make_grid normalisation), then
/// <c>(x·255).type(uint8)</c>, which truncates. diffusers' <c>export_to_video</c> truncates too. Rounding instead
/// would move about half of all values by one level, so frames hashed for the network must use exactly this.
/// </summary>
public static class VideoQuantizer
{
    /// <summary>uint8 values of <paramref name="video"/> (float32, any layout), elementwise, in the same layout.</summary>
    public static Tensor ToUInt8(Tensor video)
    {
        ArgumentNullException.ThrowIfNull(video);
        if (video.dtype != ScalarType.Float32) throw new ArgumentException($"expected a float32 video, got {video.dtype}", nameof(video));
        using var scope = NewDisposeScope();
        return video.clamp(-1, 1).add(1).div(2).mul(255).to(ScalarType.Byte).MoveToOuterDisposeScope();
    }
}
