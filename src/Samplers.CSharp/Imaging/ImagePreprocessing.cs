using System.Buffers;
using System.Globalization;
using System.Runtime.InteropServices;

namespace Samplers.Imaging;

/// <summary>Image preprocessors (<c>preprocess_fn</c>s) that follow <c>tf.image</c>: resize, resize with padding, centre
/// crop. Declared identities, so the cache stores their output and the loader fuses them with decoding.</summary>
public static class ImagePreprocessing
{
    /// <summary>
    /// Resizes [H, W] or [H, W, C] uint8 or float32 images as <c>tf.image.resize(x, (height, width), method, antialias)</c>
    /// (TensorFlow 2 semantics; see docs/IMAGES.md). The output is float32 levels (as TF returns them; bilinear and
    /// bicubic keep the input's 0-255 range), or uint8 rounded as <c>tf.saturate_cast(tf.round(x), tf.uint8)</c>.
    /// </summary>
    /// <param name="height">Output height.</param>
    /// <param name="width">Output width.</param>
    /// <param name="method">Interpolation (bilinear by default, as TF).</param>
    /// <param name="antialias">TF's <c>antialias</c>: for bilinear and bicubic, use the scale-and-translate kernels widened when downscaling.</param>
    /// <param name="output">float32 (default) or uint8.</param>
    /// <exception cref="ArgumentOutOfRangeException">A size is less than 1, or <paramref name="output"/> is neither float32 nor uint8.</exception>
    public static IExamplePreprocessor Resize(int height, int width, ResizeMethod method = ResizeMethod.Bilinear, bool antialias = false, DType output = DType.Float32)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(height, 1);
        ArgumentOutOfRangeException.ThrowIfLessThan(width, 1);
        CheckImageOutput(output);
        if (method is < ResizeMethod.Bilinear or > ResizeMethod.Bicubic) throw new ArgumentOutOfRangeException(nameof(method), method, "Unknown resize method.");
        return new ResizeImages(height, width, method, antialias, output, pad: false);
    }

    /// <summary>
    /// Resizes keeping the aspect ratio and pads with zeros to exactly <paramref name="height"/> x <paramref name="width"/>,
    /// as <c>tf.image.resize_with_pad</c> (the image is centred; the padding offsets are floored).
    /// </summary>
    /// <exception cref="ArgumentOutOfRangeException">A size is less than 1, or <paramref name="output"/> is neither float32 nor uint8.</exception>
    public static IExamplePreprocessor ResizeWithPad(int height, int width, ResizeMethod method = ResizeMethod.Bilinear, bool antialias = false, DType output = DType.Float32)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(height, 1);
        ArgumentOutOfRangeException.ThrowIfLessThan(width, 1);
        CheckImageOutput(output);
        return new ResizeImages(height, width, method, antialias, output, pad: true);
    }

    /// <summary>
    /// Crops the central <paramref name="height"/> x <paramref name="width"/> window of [H, W] or [H, W, C] examples of any
    /// dtype, as <c>tf.image.resize_with_crop_or_pad</c>: offset (H - height) / 2 (floored) when larger; zero padding,
    /// centred the same way, when smaller. Values are copied unchanged.
    /// </summary>
    /// <exception cref="ArgumentOutOfRangeException">A size is less than 1.</exception>
    public static IExamplePreprocessor CenterCrop(int height, int width)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(height, 1);
        ArgumentOutOfRangeException.ThrowIfLessThan(width, 1);
        return new CropOrPad(height, width);
    }

    private static void CheckImageOutput(DType output)
    {
        if (output != DType.Float32 && output != DType.UInt8)
            throw new ArgumentOutOfRangeException(nameof(output), output, $"Images resize to float32 or uint8, not {DTypes.Name(output)}.");
    }

    private static string MethodName(ResizeMethod m) => m switch
    {
        ResizeMethod.Bilinear => "bilinear",
        ResizeMethod.Nearest => "nearest",
        ResizeMethod.Area => "area",
        ResizeMethod.Bicubic => "bicubic",
        _ => m.ToString(),
    };

    /// <summary>(H, W, C) of one example's own shape; C = 1 for [H, W].</summary>
    private static (int H, int W, int C) Hwc(ReadOnlySpan<int> shape, string who)
    {
        if (shape.Length == 2) return (shape[0], shape[1], 1);
        if (shape.Length == 3) return (shape[0], shape[1], shape[2]);
        throw new ArgumentException($"{who} takes [H, W] or [H, W, C] images, but an example has shape [{string.Join(", ", shape.ToArray())}].");
    }

    private static int[] ImageOutputShape(ReadOnlySpan<int> s, int height, int width, string who)
    {
        if (s.Length == 2) return [height, width];
        if (s.Length == 3 && s[2] >= 0) return [height, width, s[2]];
        throw new ArgumentException($"{who} takes [H, W] or [H, W, C] examples with a fixed C, but the declared shape is [{string.Join(", ", s.ToArray())}].", "preprocess");
    }

    private sealed class ResizeImages(int height, int width, ResizeMethod method, bool antialias, DType output, bool pad) : IExamplePreprocessor, IResizeTarget
    {
        public (int Height, int Width)? ResizeTarget => pad ? null : (height, width);

        private string Who => pad ? "ResizeWithPad" : "Resize";

        public DType OutputDType(DType input)
        {
            if (input != DType.UInt8 && input != DType.Float32)
                throw new ArgumentException($"{Who} takes uint8 or float32 images, but the data is {DTypes.Name(input)}.", "preprocess");
            return output;
        }

        public int[] OutputShape(ReadOnlySpan<int> declared) => ImageOutputShape(declared, height, width, Who);

        public void Process(ReadOnlySpan<byte> x, ReadOnlySpan<int> shape, DType dtype, Span<byte> outBytes, ref long label)
        {
            var (h, w, c) = Hwc(shape, Who);
            int n = height * width * c;
            if (!pad)
            {
                ResizeInto(x, dtype, h, w, c, outBytes, height, width);
                return;
            }
            // tf.image.resize_with_pad: ratio = max(w / tw, h / th) in float32; resize to floor(h / ratio) x floor(w / ratio);
            // pad offsets floor((t - resized_float) / 2), at least 0; zeros elsewhere.
            float ratio = MathF.Max(w / (float)width, h / (float)height);
            float rhF = h / ratio, rwF = w / ratio;
            int rh = (int)MathF.Floor(rhF), rw = (int)MathF.Floor(rwF);
            int ph = Math.Max(0, (int)MathF.Floor((height - rhF) / 2)), pw = Math.Max(0, (int)MathF.Floor((width - rwF) / 2));
            rh = Math.Max(rh, 1); rw = Math.Max(rw, 1);
            int es = DTypes.SizeOf(output);
            byte[] tmp = ArrayPool<byte>.Shared.Rent(rh * rw * c * es);
            try
            {
                Span<byte> t = tmp.AsSpan(0, rh * rw * c * es);
                ResizeInto(x, dtype, h, w, c, t, rh, rw);
                outBytes.Slice(0, n * es).Clear();
                for (int r = 0; r < rh && ph + r < height; r++)
                {
                    int cols = Math.Min(rw, width - pw);
                    t.Slice(r * rw * c * es, cols * c * es).CopyTo(outBytes.Slice(((ph + r) * width + pw) * c * es));
                }
            }
            finally { ArrayPool<byte>.Shared.Return(tmp); }
        }

        private void ResizeInto(ReadOnlySpan<byte> x, DType dtype, int h, int w, int c, Span<byte> dst, int oh, int ow)
        {
            int n = oh * ow * c;
            if (method == ResizeMethod.Nearest && output == dtype)
            {
                // TF's nearest keeps the dtype: copy elements, no conversion.
                if (dtype == DType.UInt8) ImageResize.ResizeNearest(x, h, w, c, dst.Slice(0, n), oh, ow);
                else ImageResize.ResizeNearest(MemoryMarshal.Cast<byte, float>(x), h, w, c, MemoryMarshal.Cast<byte, float>(dst).Slice(0, n), oh, ow);
                return;
            }
            if (output == DType.Float32)
            {
                Span<float> o = MemoryMarshal.Cast<byte, float>(dst).Slice(0, n);
                if (dtype == DType.UInt8) ImageResize.Resize(x, h, w, c, o, oh, ow, method, antialias);
                else ImageResize.Resize(MemoryMarshal.Cast<byte, float>(x), h, w, c, o, oh, ow, method, antialias);
                return;
            }
            float[] f = ArrayPool<float>.Shared.Rent(n);
            try
            {
                Span<float> o = f.AsSpan(0, n);
                if (dtype == DType.UInt8) ImageResize.Resize(x, h, w, c, o, oh, ow, method, antialias);
                else ImageResize.Resize(MemoryMarshal.Cast<byte, float>(x), h, w, c, o, oh, ow, method, antialias);
                ImageResize.RoundToByte(o, dst.Slice(0, n));
            }
            finally { ArrayPool<float>.Shared.Return(f); }
        }

        public PreprocessIdentity Identity => new(ToString(), 1);

        public override string ToString() =>
            $"{(pad ? "resize_with_pad" : "resize")}({height},{width},{MethodName(method)},antialias={(antialias ? "true" : "false")},{DTypes.Name(output)})";
    }

    private sealed class CropOrPad(int height, int width) : IExamplePreprocessor
    {
        public DType OutputDType(DType input) => input;

        public int[] OutputShape(ReadOnlySpan<int> declared) => ImageOutputShape(declared, height, width, "CenterCrop");

        public void Process(ReadOnlySpan<byte> x, ReadOnlySpan<int> shape, DType dtype, Span<byte> output, ref long label)
        {
            var (h, w, c) = Hwc(shape, "CenterCrop");
            int px = c * DTypes.SizeOf(dtype);
            // resize_with_crop_or_pad: crop offsets max((in - target) // 2, 0), pad offsets max((target - in) // 2, 0).
            int cy = Math.Max((h - height) / 2, 0), cx = Math.Max((w - width) / 2, 0);
            int py = Math.Max((height - h) / 2, 0), pxo = Math.Max((width - w) / 2, 0);
            int rows = Math.Min(h, height), cols = Math.Min(w, width);
            if (rows < height || cols < width) output.Slice(0, height * width * px).Clear();
            for (int r = 0; r < rows; r++)
                x.Slice(((cy + r) * w + cx) * px, cols * px).CopyTo(output.Slice(((py + r) * width + pxo) * px));
        }

        public PreprocessIdentity Identity => new(ToString(), 1);

        public override string ToString() => $"center_crop({height},{width})";
    }
}
