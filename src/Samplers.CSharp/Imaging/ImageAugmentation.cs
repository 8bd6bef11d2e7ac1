using System.Globalization;
using Samplers.Core;

namespace Samplers.Imaging;

/// <summary>
/// One random step of an <see cref="ImageAugmenter"/> pipeline, working on a float32 RGB image with levels in [0, 1].
/// Every step first draws one uniform number from the view's stream and runs only when it is below the step's
/// probability (TensorFlow Similarity's <c>random_apply</c>); then it draws its own parameters, always in the same
/// order, so a view is a pure function of (seed, batch key, row, view). Parameters and defaults are documented in
/// docs/IMAGES.md.
/// </summary>
public abstract class ImageAugmentation
{
    private protected ImageAugmentation(double p)
    {
        if (!(p >= 0 && p <= 1)) throw new ArgumentOutOfRangeException(nameof(p), p, "A probability must be in [0, 1].");
        P = p;
    }

    /// <summary>The probability that the step runs.</summary>
    public double P { get; }

    internal void Run(ImageWork img, ref PhiloxStream rng)
    {
        float u = (float)rng.NextDouble();
        if (u < (float)P) Apply(img, ref rng);
    }

    private protected abstract void Apply(ImageWork img, ref PhiloxStream rng);

    /// <summary>A uniform float in [lo, hi), as <c>tf.random.uniform</c> computes it: <c>u * (hi - lo) + lo</c>.</summary>
    private protected static float Uniform(ref PhiloxStream rng, float lo, float hi) => (float)rng.NextDouble() * (hi - lo) + lo;

    private protected static string F(double v) => v.ToString("R", CultureInfo.InvariantCulture);

    /// <summary>
    /// Random resized crop as SimCLR's <c>crop_and_resize</c>: a box drawn like <c>tf.image.sample_distorted_bounding_box</c>
    /// (area fraction in [minArea, maxArea], aspect ratio width/height in [minAspect, maxAspect] times width/height,
    /// covering at least <paramref name="minObjectCovered"/> of the image, up to <paramref name="maxAttempts"/> tries, else
    /// the whole image), then resized to <paramref name="height"/> x <paramref name="width"/> (bicubic, as SimCLR).
    /// </summary>
    /// <exception cref="ArgumentOutOfRangeException">A size, range or probability is out of range.</exception>
    public static ImageAugmentation RandomResizedCrop(int height, int width, double minArea = 0.08, double maxArea = 1.0,
        double minAspect = 3.0 / 4.0, double maxAspect = 4.0 / 3.0, double minObjectCovered = 0.1, int maxAttempts = 100,
        ResizeMethod method = ResizeMethod.Bicubic, double p = 1.0)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(height, 1);
        ArgumentOutOfRangeException.ThrowIfLessThan(width, 1);
        ArgumentOutOfRangeException.ThrowIfLessThan(maxAttempts, 1);
        if (!(minArea > 0 && minArea <= maxArea && maxArea <= 1)) throw new ArgumentOutOfRangeException(nameof(minArea), $"The area range must satisfy 0 < min <= max <= 1, but was [{F(minArea)}, {F(maxArea)}].");
        if (!(minAspect > 0 && minAspect <= maxAspect)) throw new ArgumentOutOfRangeException(nameof(minAspect), $"The aspect range must satisfy 0 < min <= max, but was [{F(minAspect)}, {F(maxAspect)}].");
        return new Crop(height, width, minArea, maxArea, minAspect, maxAspect, minObjectCovered, maxAttempts, method, p);
    }

    /// <summary>SimCLR's evaluation crop (<c>center_crop</c>): the central <paramref name="cropProportion"/> window with the
    /// output's aspect ratio, resized to <paramref name="height"/> x <paramref name="width"/> (bicubic). Draws only the apply number.</summary>
    /// <exception cref="ArgumentOutOfRangeException">A size or the proportion is out of range.</exception>
    public static ImageAugmentation CenterCropResize(int height, int width, double cropProportion = 0.875, ResizeMethod method = ResizeMethod.Bicubic)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(height, 1);
        ArgumentOutOfRangeException.ThrowIfLessThan(width, 1);
        if (!(cropProportion > 0 && cropProportion <= 1)) throw new ArgumentOutOfRangeException(nameof(cropProportion), cropProportion, "cropProportion must be in (0, 1].");
        return new CenterCrop(height, width, cropProportion, method);
    }

    /// <summary>Mirrors the image left-right with probability <paramref name="p"/> (<c>tf.image.random_flip_left_right</c>: 0.5).</summary>
    public static ImageAugmentation HorizontalFlip(double p = 0.5) => new Flip(p);

    /// <summary>
    /// SimCLR's colour jitter (<c>color_jitter</c> with <c>random_order=True</c>): brightness, contrast, saturation and hue in a
    /// random order, clipping to [0, 1] after each. Brightness is multiplicative (SimCLR v2: factor in
    /// [max(1 - b, 0), 1 + b)) or additive (v1: delta in [-b, b)); contrast and saturation factors are in [1 - s, 1 + s);
    /// the hue delta is in [-h, h). A zero strength skips that transform.
    /// </summary>
    /// <exception cref="ArgumentOutOfRangeException">A strength is negative or the probability is out of range.</exception>
    public static ImageAugmentation ColorJitter(double brightness = 0.8, double contrast = 0.8, double saturation = 0.8, double hue = 0.2,
        double p = 0.8, bool randomOrder = true, bool multiplicativeBrightness = true)
    {
        if (brightness < 0 || contrast < 0 || saturation < 0 || hue < 0 || hue > 0.5)
            throw new ArgumentOutOfRangeException(nameof(brightness), "Jitter strengths must be non-negative (hue at most 0.5).");
        return new Jitter((float)brightness, (float)contrast, (float)saturation, (float)hue, p, randomOrder, multiplicativeBrightness);
    }

    /// <summary>Greyscale (<c>rgb_to_grayscale</c>, kept as 3 channels) with probability <paramref name="p"/> (SimCLR: 0.2).</summary>
    public static ImageAugmentation RandomGreyscale(double p = 0.2) => new Grey(p);

    /// <summary>Gaussian blur with sigma uniform in [<paramref name="minSigma"/>, <paramref name="maxSigma"/>) and a kernel of
    /// <c>2 * (kernelSize / 2) + 1</c> taps (SimCLR uses a tenth of the image height), with probability <paramref name="p"/>.</summary>
    /// <exception cref="ArgumentOutOfRangeException">The kernel size is negative or the sigma range is not positive.</exception>
    public static ImageAugmentation GaussianBlur(int kernelSize, double minSigma = 0.1, double maxSigma = 2.0, double p = 0.5)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(kernelSize);
        if (!(minSigma > 0 && minSigma <= maxSigma)) throw new ArgumentOutOfRangeException(nameof(minSigma), $"The sigma range must satisfy 0 < min <= max, but was [{F(minSigma)}, {F(maxSigma)}].");
        return new Blur(kernelSize, (float)minSigma, (float)maxSigma, p);
    }

    /// <summary>Solarise (<c>x &lt; threshold ? x : 1 - x</c>) with probability <paramref name="p"/> (BYOL: threshold 0.5, p 0.2).</summary>
    public static ImageAugmentation Solarize(double threshold = 0.5, double p = 0.2) => new Solar((float)threshold, p);

    private sealed class Crop(int h, int w, double minArea, double maxArea, double minAspect, double maxAspect, double minCovered, int attempts, ResizeMethod method, double p)
        : ImageAugmentation(p)
    {
        private protected override void Apply(ImageWork img, ref PhiloxStream rng)
        {
            float ar = w / (float)h;
            var (y, x, ch, cw) = SampleDistortedBoundingBox(ref rng, img.H, img.W, (float)minCovered,
                (float)(minAspect * ar), (float)(maxAspect * ar), (float)minArea, (float)maxArea, attempts);
            img.CropResize(y, x, ch, cw, h, w, method);
        }

        public override string ToString() =>
            $"random_resized_crop({h},{w},area=[{F(minArea)},{F(maxArea)}],aspect=[{F(minAspect)},{F(maxAspect)}],min_covered={F(minCovered)},attempts={attempts},{method.ToString().ToLowerInvariant()},p={F(P)})";
    }

    /// <summary>
    /// <c>tf.image.sample_distorted_bounding_box</c> with the whole image as the only box and
    /// <c>use_image_if_no_bounding_boxes</c>: returns (y, x, height, width).
    /// </summary>
    internal static (int Y, int X, int H, int W) SampleDistortedBoundingBox(ref PhiloxStream rng, int height, int width, float minCovered,
        float minAspect, float maxAspect, float minArea, float maxArea, int attempts)
    {
        for (int i = 0; i < attempts; i++)
        {
            float aspect = (float)rng.NextDouble() * (maxAspect - minAspect) + minAspect;
            if (GenerateRandomCrop(ref rng, width, height, minArea, maxArea, aspect, out var r))
            {
                // The crop must cover min_object_covered of the (whole-image) box.
                float covered = (float)((long)r.H * r.W) / ((float)height * width);
                if (covered >= minCovered) return r;
            }
        }
        return (0, 0, height, width);
    }

    private static bool GenerateRandomCrop(ref PhiloxStream rng, int originalWidth, int originalHeight, float minRelativeArea, float maxRelativeArea,
        float aspect, out (int Y, int X, int H, int W) crop)
    {
        crop = default;
        float minArea = minRelativeArea * originalWidth * originalHeight;
        float maxArea = maxRelativeArea * originalWidth * originalHeight;
        int height = (int)MathF.Round(MathF.Sqrt(minArea / aspect), MidpointRounding.ToEven);
        int maxHeight = (int)MathF.Round(MathF.Sqrt(maxArea / aspect), MidpointRounding.ToEven);
        if (MathF.Round(maxHeight * aspect, MidpointRounding.ToEven) > originalWidth)
        {
            const float eps = 0.0000001f;
            maxHeight = (int)((originalWidth + 0.5 - eps) / aspect);
            if (MathF.Round(maxHeight * aspect, MidpointRounding.ToEven) > originalWidth) maxHeight -= 1;
        }
        if (maxHeight > originalHeight) maxHeight = originalHeight;
        if (height >= maxHeight) height = maxHeight;
        if (height < maxHeight) height += rng.NextBounded(maxHeight - height + 1);
        int width = (int)MathF.Round(height * aspect, MidpointRounding.ToEven);
        float area = (float)width * height;
        if (area < minArea)
        {
            height += 1;
            width = (int)MathF.Round(height * aspect, MidpointRounding.ToEven);
            area = (float)width * height;
        }
        if (area > maxArea)
        {
            height -= 1;
            width = (int)MathF.Round(height * aspect, MidpointRounding.ToEven);
            area = (float)width * height;
        }
        if (area < minArea || area > maxArea || width > originalWidth || height > originalHeight || width <= 0 || height <= 0) return false;
        int y = height < originalHeight ? rng.NextBounded(originalHeight - height) : 0;
        int x = width < originalWidth ? rng.NextBounded(originalWidth - width) : 0;
        crop = (y, x, height, width);
        return true;
    }

    private sealed class CenterCrop(int h, int w, double proportion, ResizeMethod method) : ImageAugmentation(1.0)
    {
        private protected override void Apply(ImageWork img, ref PhiloxStream rng)
        {
            // SimCLR's _compute_crop_shape, called with aspect_ratio = height / width as the reference does.
            float aspect = h / (float)w;
            float iw = img.W, ih = img.H, cp = (float)proportion;
            int ch, cw;
            if (aspect > iw / ih)
            {
                ch = (int)MathF.Round(cp / aspect * iw, MidpointRounding.ToEven);
                cw = (int)MathF.Round(cp * iw, MidpointRounding.ToEven);
            }
            else
            {
                ch = (int)MathF.Round(cp * ih, MidpointRounding.ToEven);
                cw = (int)MathF.Round(cp * aspect * ih, MidpointRounding.ToEven);
            }
            ch = Math.Clamp(ch, 1, img.H);
            cw = Math.Clamp(cw, 1, img.W);
            int oy = (img.H - ch + 1) / 2, ox = (img.W - cw + 1) / 2;
            img.CropResize(oy, ox, ch, cw, h, w, method);
        }

        public override string ToString() => $"center_crop_resize({h},{w},proportion={F(proportion)},{method.ToString().ToLowerInvariant()})";
    }

    private sealed class Flip(double p) : ImageAugmentation(p)
    {
        private protected override void Apply(ImageWork img, ref PhiloxStream rng) => ImageOps.FlipLeftRight(img.Pixels, img.H, img.W, 3);
        public override string ToString() => $"horizontal_flip(p={F(P)})";
    }

    private sealed class Grey(double p) : ImageAugmentation(p)
    {
        private protected override void Apply(ImageWork img, ref PhiloxStream rng) => ImageOps.ToGrayscale(img.Pixels);
        public override string ToString() => $"random_greyscale(p={F(P)})";
    }

    private sealed class Solar(float threshold, double p) : ImageAugmentation(p)
    {
        private protected override void Apply(ImageWork img, ref PhiloxStream rng) => ImageOps.Solarize(img.Pixels, threshold);
        public override string ToString() => $"solarize(threshold={F(threshold)},p={F(P)})";
    }

    private sealed class Blur(int kernelSize, float minSigma, float maxSigma, double p) : ImageAugmentation(p)
    {
        private protected override void Apply(ImageWork img, ref PhiloxStream rng)
        {
            float sigma = Uniform(ref rng, minSigma, maxSigma);
            ImageOps.GaussianBlur(img.Pixels, img.H, img.W, 3, kernelSize, sigma);
        }

        public override string ToString() => $"gaussian_blur(kernel={kernelSize},sigma=[{F(minSigma)},{F(maxSigma)}],p={F(P)})";
    }

    private sealed class Jitter(float b, float c, float s, float h, double p, bool randomOrder, bool multiplicative) : ImageAugmentation(p)
    {
        private protected override void Apply(ImageWork img, ref PhiloxStream rng)
        {
            Span<int> order = [0, 1, 2, 3];
            if (randomOrder)
            {
                // tf.random.shuffle(tf.range(4)): a uniform permutation (Fisher-Yates on our stream).
                for (int i = 3; i > 0; i--)
                {
                    int j = rng.NextBounded(i + 1);
                    (order[i], order[j]) = (order[j], order[i]);
                }
            }
            Span<float> px = img.Pixels;
            foreach (int t in order)
            {
                switch (t)
                {
                    case 0 when b != 0:
                        if (multiplicative) ImageOps.Scale(px, Uniform(ref rng, MathF.Max(1f - b, 0f), 1f + b));
                        else ImageOps.AddBrightness(px, Uniform(ref rng, -b, b));
                        break;
                    case 1 when c != 0:
                        ImageOps.AdjustContrast(px, img.H, img.W, 3, Uniform(ref rng, 1f - c, 1f + c));
                        break;
                    case 2 when s != 0:
                        ImageOps.AdjustSaturation(px, Uniform(ref rng, 1f - s, 1f + s));
                        break;
                    case 3 when h != 0:
                        ImageOps.AdjustHue(px, Uniform(ref rng, -h, h));
                        break;
                }
                ImageOps.Clip01(px);
            }
        }

        public override string ToString() =>
            $"color_jitter(brightness={F(b)},contrast={F(c)},saturation={F(s)},hue={F(h)},p={F(P)},random_order={(randomOrder ? "true" : "false")},{(multiplicative ? "multiplicative" : "additive")})";
    }
}

/// <summary>A per-thread working image: float32 RGB in [0, 1], with a second buffer for steps that change the size.</summary>
/// <remarks>The source is kept as it came (uint8 or float32, 1, 3 or 4 channels) until a step needs float pixels: a crop
/// that runs first converts only the pixels it keeps (SimCLR keeps 8-100 % of the image), which gives the same floats as
/// converting the whole image and then cropping. Instances are pooled (<see cref="Rent"/>/<see cref="Return"/>), so the
/// buffers (2.25 MB for a 500x375 image) are allocated once per thread, not once per view.</remarks>
internal sealed class ImageWork
{
    internal float[] Buf = new float[3 * 64 * 64];
    internal float[] Tmp = new float[3 * 64 * 64];
    internal int H, W;

    // The source while it is not yet converted (Pending): an array and offset, or a copy of a span in SrcCopy.
    private byte[]? _src;
    private int _srcOffset, _srcC;
    private DType _srcType;
    private byte[] _srcCopy = [];
    internal bool Pending { get; private set; }

    private static readonly System.Collections.Concurrent.ConcurrentBag<ImageWork> Pool = new();

    /// <summary>A working image from the pool (or a new one).</summary>
    internal static ImageWork Rent() => Pool.TryTake(out var w) ? w : new ImageWork();

    /// <summary>Gives <paramref name="work"/> back; its buffers are kept for the next view. Very large ones are dropped so a
    /// single huge image does not pin its buffers for the life of the process.</summary>
    internal static void Return(ImageWork work)
    {
        work._src = null; work.Pending = false;
        if ((long)work.Buf.Length + work.Tmp.Length + work._srcCopy.Length / 4 > 64L << 20) return;
        Pool.Add(work);
    }

    /// <summary>The pixels as float32 RGB, converting the source first if it is still pending.</summary>
    internal Span<float> Pixels
    {
        get
        {
            if (Pending) Materialize();
            return Buf.AsSpan(0, H * W * 3);
        }
    }

    private void Reset(int h, int w)
    {
        H = h; W = w;
        if (Buf.Length < h * w * 3) Buf = new float[h * w * 3];
    }

    /// <summary>Loads one example (uint8 levels / 255, or float32 as is; 1 channel replicated, alpha dropped), copying the span.</summary>
    internal void Load(ReadOnlySpan<byte> x, DType dtype, int h, int w, int c)
    {
        if (_srcCopy.Length < x.Length) _srcCopy = new byte[x.Length];
        x.CopyTo(_srcCopy);
        Load(_srcCopy, 0, dtype, h, w, c);
    }

    /// <summary>Loads one example held in <paramref name="array"/> from <paramref name="offset"/>; the array must stay
    /// unchanged until the view is finished (it is the batch being augmented).</summary>
    internal void Load(byte[] array, int offset, DType dtype, int h, int w, int c)
    {
        H = h; W = w;
        _src = array; _srcOffset = offset; _srcC = c; _srcType = dtype;
        Pending = true;
    }

    private void Materialize()
    {
        Reset(H, W);
        Convert(0, 0, H, W, Buf);
        Pending = false;
        _src = null;
    }

    // Converts the source window (y, x, ch, cw) to float32 RGB, row after row, into dst.
    private void Convert(int y, int x, int ch, int cw, float[] dst)
    {
        int c = _srcC, srcW = W;
        if (_srcType == DType.UInt8)
        {
            ReadOnlySpan<byte> src = _src.AsSpan(_srcOffset);
            for (int r = 0; r < ch; r++)
            {
                ReadOnlySpan<byte> row = src.Slice(((y + r) * srcW + x) * c, cw * c);
                Span<float> o = dst.AsSpan(r * cw * 3, cw * 3);
                if (c == 3)
                {
                    for (int k = 0; k < o.Length; k++) o[k] = row[k] / 255f;
                }
                else
                {
                    for (int p = 0; p < cw; p++)
                        for (int k = 0; k < 3; k++) o[p * 3 + k] = row[p * c + (c >= 3 ? k : 0)] / 255f;
                }
            }
        }
        else
        {
            ReadOnlySpan<float> src = System.Runtime.InteropServices.MemoryMarshal.Cast<byte, float>(_src.AsSpan(_srcOffset));
            for (int r = 0; r < ch; r++)
            {
                ReadOnlySpan<float> row = src.Slice(((y + r) * srcW + x) * c, cw * c);
                Span<float> o = dst.AsSpan(r * cw * 3, cw * 3);
                if (c == 3) row.CopyTo(o);
                else
                    for (int p = 0; p < cw; p++)
                        for (int k = 0; k < 3; k++) o[p * 3 + k] = row[p * c + (c >= 3 ? k : 0)];
            }
        }
    }

    /// <summary>Crops (y, x, ch, cw) and resizes it to (oh, ow) with <paramref name="method"/> (no antialias, as tf.image.resize's default).</summary>
    internal void CropResize(int y, int x, int ch, int cw, int oh, int ow, ResizeMethod method)
    {
        int need = ch * cw * 3;
        if (Tmp.Length < need) Tmp = new float[need];
        if (Pending)
        {
            // Only the kept window is converted: the same floats as converting everything, then cropping.
            Convert(y, x, ch, cw, Tmp);
            Pending = false;
            _src = null;
        }
        else
        {
            for (int r = 0; r < ch; r++) Buf.AsSpan(((y + r) * W + x) * 3, cw * 3).CopyTo(Tmp.AsSpan(r * cw * 3));
        }
        if (Buf.Length < oh * ow * 3) Buf = new float[oh * ow * 3];
        ImageResize.Resize<float>(Tmp.AsSpan(0, need), ch, cw, 3, Buf.AsSpan(0, oh * ow * 3), oh, ow, method, antialias: false);
        H = oh; W = ow;
    }
}
