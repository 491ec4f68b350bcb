using Microsoft.Extensions.Logging;
using MLNode.Engines.Layers;
using MLNode.Runtime.Checkpoints;
using TorchSharp;
using static TorchSharp.torch;

namespace MLNode.Engines.Dit.Text;

/// <summary>
/// The Wan text conditioning: a prompt's umT5 embeddings as the DiT's cross-attention context. As the official
/// pipeline (T5EncoderModel, then the DiT's padding) and diffusers' <c>_get_t5_prompt_embeds</c> do: tokenise
/// (<see cref="WanPromptTokens"/>), encode the real tokens, keep those rows and pad with zero rows to the text length.
/// </summary>
public sealed class WanTextEncoder(SentencePieceTokenizer tokenizer, Umt5EncoderModel encoder)
{
    public SentencePieceTokenizer Tokenizer { get; } = tokenizer;
    public Umt5EncoderModel Encoder { get; } = encoder;

    /// <summary>
    /// Loads a diffusers-layout Wan checkpoint's <c>tokenizer/spiece.model</c> and <c>text_encoder</c> folder, with the
    /// encoder's weights in <paramref name="dtype"/> on <paramref name="device"/>.
    /// </summary>
    public static WanTextEncoder Load(string checkpointFolder, Device device, ScalarType dtype, ILogger logger, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(logger);
        cancellationToken.ThrowIfCancellationRequested();
        var tokenizer = SentencePieceTokenizer.Load(Path.Combine(checkpointFolder, "tokenizer", "spiece.model"));
        var encoderFolder = Path.Combine(checkpointFolder, "text_encoder");
        var config = Umt5Config.FromFile(Path.Combine(encoderFolder, "config.json"));
        if (config.VocabSize < tokenizer.VocabSize)
            throw new InvalidDataException($"{encoderFolder}: vocab_size {config.VocabSize} is smaller than the tokenizer's {tokenizer.VocabSize} pieces");
        using var checkpoint = Checkpoint.Open(encoderFolder);
        logger.LogInformation("Reading umT5 ({Layers} layers, d_model {DModel}) from {Folder} onto {Device} as {DType}",
            config.NumLayers, config.DModel, encoderFolder, device, dtype);
        var encoder = new Umt5EncoderModel(config, new CheckpointWeights(checkpoint, device, dtype));
        encoder.eval();
        return new WanTextEncoder(tokenizer, encoder);
    }

    /// <summary>The context [<paramref name="textLength"/>, d_model] of one prompt: its token embeddings, then zero rows.</summary>
    public Tensor Encode(string prompt, int textLength = WanPromptTokens.TextLength, CancellationToken cancellationToken = default)
    {
        cancellationToken.ThrowIfCancellationRequested();
        var ids = WanPromptTokens.Ids(Tokenizer, prompt, textLength);
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        var embeddings = Encoder.forward(tensor(ids.Select(id => (long)id).ToArray(), [1, ids.Length], ScalarType.Int64, Encoder.Device))[0];
        return PadToTextLength(embeddings, textLength).MoveToOuterDisposeScope();
    }

    /// <summary>[L, d] real-token embeddings → [textLength, d], rows past L zero (L ≤ textLength).</summary>
    public static Tensor PadToTextLength(Tensor embeddings, int textLength)
    {
        ArgumentNullException.ThrowIfNull(embeddings);
        var length = embeddings.shape[0];
        if (length > textLength) throw new ArgumentException($"{length} token embeddings do not fit a text length of {textLength}", nameof(embeddings));
        return nn.functional.pad(embeddings, [0, 0, 0, textLength - length]);
    }
}
