using MLNode.Engines.Layers;
using MLNode.Engines.Llm;
using TorchSharp;
using static TorchSharp.torch;

namespace MLNode.Engines.Asr.Qwen3Asr;

/// <summary>
/// Qwen3-ASR's thinker: the audio tower, and the Qwen3 decoder of the LLM engine reading a prompt in which every
/// <c>&lt;|audio_pad|&gt;</c> placeholder's embedding is replaced by the next audio embedding:
/// <code>
///   e = embed_tokens(prompt);  e[placeholders] = audio_tower(mel)     one row per placeholder, in reading order
///   logits = lm_head(model(e))                                         positions 0..L−1 (MRoPE with equal axes = RoPE)
/// </code>
/// </summary>
public sealed class Qwen3AsrThinker : nn.Module
{
#pragma warning disable IDE1006 // field names are the checkpoint's tensor names
    private readonly Qwen3AsrAudioEncoder audio_tower;
#pragma warning restore IDE1006
    /// <summary>thinker.model.* and thinker.lm_head.* (absent when tied to the embeddings).</summary>
    private readonly QwenForCausalLM _decoder;

    public Qwen3AsrThinker(Qwen3AsrConfig config, WeightSource w) : base("thinker")
    {
        Config = config;
        audio_tower = new Qwen3AsrAudioEncoder(config.Audio, w, "thinker.audio_tower");
        _decoder = new QwenForCausalLM(config.Text, w, prefix: "thinker");
        RegisterComponents();
    }

    public Qwen3AsrConfig Config { get; }

    /// <summary>Audio embeddings of independent windows (mel [bins, frames] each) → [Σ tokens, hidden], in window order.</summary>
    public Tensor EncodeAudio(IReadOnlyList<Tensor> mels) => audio_tower.forward(mels);

    /// <summary>
    /// Input embeddings [B, L, d] of prompts right-padded to the longest, L: each prompt's placeholders take the rows of
    /// <paramref name="audio"/> in order (prompt 0's first). Padding positions hold token 0, whose outputs nobody reads.
    /// </summary>
    public Tensor Embed(IReadOnlyList<IReadOnlyList<int>> prompts, Tensor audio)
    {
        using var scope = NewDisposeScope();
        var width = prompts.Max(p => p.Count);
        var ids = new long[prompts.Count * width];
        var slots = new List<long>();
        for (var b = 0; b < prompts.Count; b++)
            for (var p = 0; p < prompts[b].Count; p++)
            {
                ids[b * width + p] = prompts[b][p];
                if (prompts[b][p] == Config.AudioTokenId) slots.Add(b * width + p);
            }
        if (slots.Count != audio.shape[0])
            throw new ArgumentException($"the prompts hold {slots.Count} audio placeholders for {audio.shape[0]} audio embeddings", nameof(audio));
        var device = audio.device;
        var embeds = _decoder.Embed(tensor(ids, [prompts.Count, width], device: device));
        var rows = embeds.view(-1, embeds.shape[2]).index_copy(0, tensor(slots.ToArray(), device: device), audio.to(embeds.dtype));
        return rows.view(embeds.shape).MoveToOuterDisposeScope();
    }

    /// <summary>Prefills the prompts into their cache slots (see <see cref="QwenForCausalLM.Prefill"/>): float32 logits [B, V] at each prompt's end.</summary>
    public Tensor Prefill(IReadOnlyList<IReadOnlyList<int>> prompts, Tensor audio, PrefillStep step)
    {
        using var scope = NewDisposeScope();
        return _decoder.PrefillEmbeds(Embed(prompts, audio), step).MoveToOuterDisposeScope();
    }

    /// <summary>The Qwen3 text decoder, whose decode steps the LLM engine's <see cref="LlmDecodeStep"/> runs.</summary>
    internal QwenForCausalLM TextDecoder => _decoder;

    /// <summary>Float32 logits [B, L, V] at every position of the prompts, without a cache (the reference's full forward).</summary>
    public Tensor Logits(IReadOnlyList<IReadOnlyList<int>> prompts, Tensor audio)
    {
        using var scope = NewDisposeScope();
        return _decoder.Logits(_decoder.Hidden(Embed(prompts, audio))).MoveToOuterDisposeScope();
    }
}
