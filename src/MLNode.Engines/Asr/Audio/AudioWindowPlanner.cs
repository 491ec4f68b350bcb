namespace MLNode.Engines.Asr.Audio;

/// <summary>
/// Cuts canonical audio into decoding windows of at most the model's window length, as vLLM's <c>split_audio</c> does:
/// audio longer than a window is cut at the start of the quietest 100 ms (RMS over 1600 samples, stepping 1600 from the
/// start of the last second of the window); the rest becomes the next window. Boundaries are integer sample offsets
/// decided from the samples alone — no model, no floating-point state beyond one window's sum — so executor and
/// validator always agree, and the executor records them in its response besides.
/// </summary>
public sealed class AudioWindowPlanner
{
    /// <summary>The search region for a cut: the last second of the window (vLLM's <c>overlap_chunk_second</c>).</summary>
    public const int SearchSamples = CanonicalAudio.SampleRate;

    /// <summary>The energy window, 100 ms (vLLM's <c>min_energy_split_window_size</c>).</summary>
    public const int EnergyWindowSamples = 1600;

    public AudioWindowPlanner(double windowSeconds)
    {
        if (!(windowSeconds * CanonicalAudio.SampleRate > SearchSamples && windowSeconds < int.MaxValue / CanonicalAudio.SampleRate))
            throw new ArgumentOutOfRangeException(nameof(windowSeconds), windowSeconds, $"a window must be longer than the {SearchSamples / CanonicalAudio.SampleRate} s searched for a cut");
        WindowSamples = (int)Math.Round(windowSeconds * CanonicalAudio.SampleRate);
    }

    public int WindowSamples { get; }

    /// <summary>Consecutive windows covering all of <paramref name="samples"/>; one window when it fits in one.</summary>
    public IReadOnlyList<AudioWindow> Plan(ReadOnlySpan<float> samples)
    {
        var windows = new List<AudioWindow>();
        var start = 0;
        while (samples.Length - start > WindowSamples)
        {
            var end = QuietestPoint(samples, start + WindowSamples - SearchSamples, start + WindowSamples);
            windows.Add(new AudioWindow(start, end));
            start = end;
        }
        windows.Add(new AudioWindow(start, samples.Length));
        return windows;
    }

    /// <summary>
    /// Start of the lowest-energy 1600-sample window among those starting at <paramref name="from"/> + k·1600 that vLLM's
    /// <c>range(0, len − 1600, 1600)</c> visits (so the last 100 ms is never a candidate); the earliest wins a tie.
    /// Energies are compared as sums of squares in double, which orders them as the RMS does.
    /// </summary>
    private static int QuietestPoint(ReadOnlySpan<float> samples, int from, int to)
    {
        var quietest = from;
        var lowest = double.PositiveInfinity;
        for (var offset = 0; offset < to - from - EnergyWindowSamples; offset += EnergyWindowSamples)
        {
            var energy = 0.0;
            foreach (var x in samples.Slice(from + offset, EnergyWindowSamples))
                energy += (double)x * x;
            if (energy < lowest)
            {
                lowest = energy;
                quietest = from + offset;
            }
        }
        return quietest;
    }
}
