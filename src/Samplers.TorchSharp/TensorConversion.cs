using TorchSharp;

namespace Samplers.TorchSharp;

/// <summary>
/// How a batch becomes tensors: <c>x = (pixel * Scale - Mean[c]) / Std[c]</c> as float32, images moved from TFDS's
/// channels-last layout (N, H, W, C) to PyTorch's channels-first (N, C, H, W); labels as int64.
/// </summary>
/// <remarks>The conversion, the scaling and the layout change happen in one pass over the batch (see <see cref="BatchCopy"/>).
/// Defaults: uint8 pixels to [0, 1] (<c>÷ 255</c>), no normalisation, channels first, CPU.</remarks>
public sealed record TensorConversion
{
    /// <summary>Multiplies every element first (default 1/255 for uint8 data, so pixels land in [0, 1]; use 1 for float data).</summary>
    public float Scale { get; init; } = 1f / 255f;

    /// <summary>Per-channel mean subtracted after scaling (length 1 = every channel); null for none.</summary>
    public IReadOnlyList<float>? Mean { get; init; }

    /// <summary>Per-channel standard deviation divided by after the mean (length 1 = every channel); null for none.</summary>
    public IReadOnlyList<float>? Std { get; init; }

    /// <summary>Examples of rank 3 (H, W, C) become (C, H, W) (default true); examples of any other rank keep their layout.</summary>
    public bool ChannelsFirst { get; init; } = true;

    /// <summary>Where the tensors live (default CPU). On another device, the batch is written once into a CPU staging
    /// tensor and copied to the device by libtorch.</summary>
    public torch.Device? Device { get; init; }

    /// <summary>The default: uint8 pixels to float32 in [0, 1], channels first, on the CPU.</summary>
    public static TensorConversion Default { get; } = new();
}
