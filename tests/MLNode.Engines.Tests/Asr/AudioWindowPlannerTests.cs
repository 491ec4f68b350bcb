using MLNode.Engines.Asr;
using MLNode.Engines.Asr.Audio;
using MLNode.Tests;

namespace MLNode.Engines.Tests.Asr;

/// <summary>Window boundaries as vLLM's split_audio places them: integer offsets from the samples alone.</summary>
public sealed class AudioWindowPlannerTests
{
    private const int Rate = CanonicalAudio.SampleRate;
    private static readonly AudioWindowPlanner Whisper = new(30);

    [Fact]
    public void Short_audio_is_one_window()
    {
        var samples = WavSamples.Read(Fixtures.Path("audio", "speech_en_16k.wav"));
        Assert.Equal([new AudioWindow(0, samples.Length)], Whisper.Plan(samples));
    }

    [Fact]
    public void Exactly_one_window_of_audio_is_not_cut_and_one_sample_more_is()
    {
        Assert.Single(Whisper.Plan(Noise(30 * Rate, seed: 1)));
        var windows = Whisper.Plan(Noise(30 * Rate + 1, seed: 1));
        Assert.Equal(2, windows.Count);
        Assert.Equal(30 * Rate + 1, windows[1].End);
    }

    [Fact]
    public void The_70_second_fixture_is_cut_at_the_quietest_100_ms_of_each_window_s_last_second()
    {
        var samples = WavSamples.Read(Fixtures.Path("audio", "speech_long_16k.wav"));
        var windows = Whisper.Plan(samples);

        Assert.Equal(3, windows.Count);
        Assert.Equal(0, windows[0].Start);
        Assert.Equal(samples.Length, windows[^1].End);
        for (var i = 0; i < windows.Count; i++)
        {
            Assert.InRange(windows[i].Length, 1, Whisper.WindowSamples);
            if (i == 0) continue;
            var previous = windows[i - 1];
            Assert.Equal(previous.End, windows[i].Start);

            // The cut is one of the candidates vLLM visits: starts of 100 ms windows from the last second of the window, the last one excluded.
            var searchStart = previous.Start + Whisper.WindowSamples - AudioWindowPlanner.SearchSamples;
            var candidates = Enumerable.Range(0, 9).Select(k => searchStart + k * AudioWindowPlanner.EnergyWindowSamples).ToList();
            Assert.Contains(previous.End, candidates);
            Assert.All(candidates, c => Assert.True(Energy(samples, previous.End) <= Energy(samples, c),
                $"cut at {previous.End} (energy {Energy(samples, previous.End)}) is louder than {c} (energy {Energy(samples, c)})"));
        }
        Assert.Equal(windows, Whisper.Plan(samples));
    }

    [Fact]
    public void A_silent_gap_in_the_last_second_is_where_the_window_ends()
    {
        var samples = Noise(45 * Rate, seed: 3);
        var gap = 30 * Rate - AudioWindowPlanner.SearchSamples + 4 * AudioWindowPlanner.EnergyWindowSamples;
        Array.Clear(samples, gap, AudioWindowPlanner.EnergyWindowSamples);
        Assert.Equal([new AudioWindow(0, gap), new AudioWindow(gap, samples.Length)], Whisper.Plan(samples));
    }

    [Fact]
    public void Equal_energies_cut_at_the_earliest_candidate()
    {
        var windows = Whisper.Plan(new float[40 * Rate]);
        Assert.Equal(30 * Rate - AudioWindowPlanner.SearchSamples, windows[0].End);
    }

    [Fact]
    public void Long_audio_gives_windows_of_at_most_the_window_length_that_cover_it()
    {
        // vLLM's docstring example: 65 s of noise at 16 kHz in 30 s windows → 3 chunks.
        var samples = Noise(65 * Rate, seed: 5);
        var windows = Whisper.Plan(samples);
        Assert.Equal(3, windows.Count);
        Assert.Equal(samples.Length, windows.Sum(w => w.Length));
        Assert.All(windows, w => Assert.True(w.Length <= 30 * Rate));
        Assert.All(windows.Take(2), w => Assert.InRange(w.Length, 29 * Rate, 30 * Rate - AudioWindowPlanner.EnergyWindowSamples));
    }

    [Fact]
    public void The_window_length_follows_the_model()
    {
        var windows = new AudioWindowPlanner(5).Plan(WavSamples.Read(Fixtures.Path("audio", "speech_en_16k.wav")));
        Assert.Equal(2, windows.Count);
        Assert.InRange(windows[0].End, 4 * Rate, 5 * Rate);
        Assert.Throws<ArgumentOutOfRangeException>(() => new AudioWindowPlanner(1));
        Assert.Throws<ArgumentOutOfRangeException>(() => new AudioWindowPlanner(double.NaN));
    }

    private static double Energy(float[] samples, int start) =>
        samples.AsSpan(start, AudioWindowPlanner.EnergyWindowSamples).ToArray().Sum(x => (double)x * x);

    private static float[] Noise(int length, int seed)
    {
        var random = new Random(seed);
        return Enumerable.Range(0, length).Select(_ => (float)(random.NextDouble() - 0.5)).ToArray();
    }
}
