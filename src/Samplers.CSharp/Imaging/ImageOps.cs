using System.Numerics;
using System.Runtime.InteropServices;

namespace Samplers.Imaging;

/// <summary>
/// Deterministic colour and geometry operations on float32 RGB HWC images with levels in [0, 1], following the
/// TensorFlow ops that TensorFlow Similarity's augmenters call (formulas in docs/IMAGES.md). The random augmenters
/// (<see cref="ImageAugmentation"/>) draw their parameters and call these.
/// </summary>
public static class ImageOps
{
    /// <summary>Mirrors columns (<c>tf.image.flip_left_right</c>).</summary>
    public static void FlipLeftRight(Span<float> image, int height, int width, int channels)
    {
        for (int y = 0; y < height; y++)
        {
            Span<float> row = image.Slice(y * width * channels, width * channels);
            for (int a = 0, b = width - 1; a < b; a++, b--)
                for (int k = 0; k < channels; k++)
                    (row[a * channels + k], row[b * channels + k]) = (row[b * channels + k], row[a * channels + k]);
        }
    }

    /// <summary>Clamps every level to [0, 1] (<c>tf.clip_by_value(x, 0, 1)</c>).</summary>
    public static void Clip01(Span<float> image)
    {
        int i = 0;
        if (Vector.IsHardwareAccelerated)
        {
            var v = MemoryMarshal.Cast<float, Vector<float>>(image);
            for (int j = 0; j < v.Length; j++) v[j] = Vector.Min(Vector.Max(v[j], Vector<float>.Zero), Vector<float>.One);
            i = v.Length * Vector<float>.Count;
        }
        for (; i < image.Length; i++) image[i] = Math.Clamp(image[i], 0f, 1f);
    }

    /// <summary>Multiplies every level by <paramref name="factor"/> (SimCLR v2's multiplicative brightness).</summary>
    public static void Scale(Span<float> image, float factor)
    {
        int i = 0;
        if (Vector.IsHardwareAccelerated)
        {
            var v = MemoryMarshal.Cast<float, Vector<float>>(image);
            var f = new Vector<float>(factor);
            for (int j = 0; j < v.Length; j++) v[j] *= f;
            i = v.Length * Vector<float>.Count;
        }
        for (; i < image.Length; i++) image[i] *= factor;
    }

    /// <summary>Adds <paramref name="delta"/> to every level (<c>tf.image.adjust_brightness</c>, SimCLR v1's additive brightness).</summary>
    public static void AddBrightness(Span<float> image, float delta)
    {
        for (int i = 0; i < image.Length; i++) image[i] += delta;
    }

    /// <summary><c>tf.image.adjust_contrast</c>: per channel, <c>(x - mean) * factor + mean</c> with the channel's mean over the image.</summary>
    public static void AdjustContrast(Span<float> image, int height, int width, int channels, float factor)
    {
        int n = height * width;
        Span<double> mean = stackalloc double[channels];
        for (int p = 0; p < n; p++)
            for (int k = 0; k < channels; k++) mean[k] += image[p * channels + k];
        Span<float> m = stackalloc float[channels];
        for (int k = 0; k < channels; k++) m[k] = (float)(mean[k] / n);
        for (int p = 0; p < n; p++)
            for (int k = 0; k < channels; k++)
            {
                ref float x = ref image[p * channels + k];
                x = (x - m[k]) * factor + m[k];
            }
    }

    /// <summary><c>tf.image.rgb_to_grayscale</c> (weights 0.2989, 0.5870, 0.1140), written back to all three channels (SimCLR's <c>to_grayscale(keep_channels=True)</c>).</summary>
    public static void ToGrayscale(Span<float> rgb)
    {
        for (int i = 0; i + 2 < rgb.Length; i += 3)
        {
            float g = rgb[i] * 0.2989f + rgb[i + 1] * 0.5870f + rgb[i + 2] * 0.1140f;
            rgb[i] = g; rgb[i + 1] = g; rgb[i + 2] = g;
        }
    }

    /// <summary><c>tf.image.adjust_saturation</c>: in HSV, <c>s = clamp(s * factor, 0, 1)</c>.</summary>
    public static void AdjustSaturation(Span<float> rgb, float factor)
    {
        for (int i = 0; i + 2 < rgb.Length; i += 3)
        {
            RgbToHsv(rgb[i], rgb[i + 1], rgb[i + 2], out float h, out float s, out float v);
            s = Math.Min(1f, Math.Max(0f, s * factor));
            HsvToRgb(h, s, v, out rgb[i], out rgb[i + 1], out rgb[i + 2]);
        }
    }

    /// <summary><c>tf.image.adjust_hue</c> as TF's CPU kernel: hue on [0, 6) from the (min, mid, max) ordering, shifted by
    /// <c>6 * delta</c> and wrapped, then rebuilt from the same min and max.</summary>
    public static void AdjustHue(Span<float> rgb, float delta)
    {
        for (int i = 0; i + 2 < rgb.Length; i += 3)
        {
            RgbToHvRange(rgb[i], rgb[i + 1], rgb[i + 2], out float h, out float vMin, out float vMax);
            h += delta * 6;
            while (h < 0) h += 6;
            while (h >= 6) h -= 6;
            HvRangeToRgb(h, vMin, vMax, out rgb[i], out rgb[i + 1], out rgb[i + 2]);
        }
    }

    private static void RgbToHvRange(float r, float g, float b, out float h, out float vMin, out float vMax)
    {
        float vMid;
        int cat;
        if (r < g)
        {
            if (b < r) { vMax = g; vMid = r; vMin = b; cat = 1; }
            else if (b > g) { vMax = b; vMid = g; vMin = r; cat = 3; }
            else { vMax = g; vMid = b; vMin = r; cat = 2; }
        }
        else
        {
            if (b < g) { vMax = r; vMid = g; vMin = b; cat = 0; }
            else if (b > r) { vMax = b; vMid = r; vMin = g; cat = 4; }
            else { vMax = r; vMid = b; vMin = g; cat = 5; }
        }
        if (vMax == vMin) { h = 0; return; }
        float ratio = (vMid - vMin) / (vMax - vMin);
        h = cat + ((cat & 1) == 0 ? ratio : 1 - ratio);
    }

    private static void HvRangeToRgb(float h, float vMin, float vMax, out float r, out float g, out float b)
    {
        int cat = (int)h;
        float ratio = h - cat;
        if ((cat & 1) != 0) ratio = 1 - ratio;
        float vMid = vMin + ratio * (vMax - vMin);
        switch (cat)
        {
            case 0: r = vMax; g = vMid; b = vMin; break;
            case 1: r = vMid; g = vMax; b = vMin; break;
            case 2: r = vMin; g = vMax; b = vMid; break;
            case 3: r = vMin; g = vMid; b = vMax; break;
            case 4: r = vMid; g = vMin; b = vMax; break;
            default: r = vMax; g = vMin; b = vMid; break;
        }
    }

    /// <summary><c>x &lt; threshold ? x : 1 - x</c> (solarise on [0, 1] levels).</summary>
    public static void Solarize(Span<float> image, float threshold)
    {
        for (int i = 0; i < image.Length; i++)
            if (!(image[i] < threshold)) image[i] = 1f - image[i];
    }

    /// <summary>
    /// Separable Gaussian blur as TensorFlow Similarity's <c>gaussian_blur</c>: radius <c>kernelSize / 2</c>, taps
    /// <c>exp(-x²/(2σ²))</c> normalised to sum 1, horizontal then vertical, zero padding at the borders ('SAME'
    /// convolution: edges darken slightly, as in TF). Taps are computed in double precision.
    /// </summary>
    /// <exception cref="ArgumentOutOfRangeException">sigma is not positive or kernelSize is negative.</exception>
    public static void GaussianBlur(Span<float> image, int height, int width, int channels, int kernelSize, float sigma)
    {
        if (!(sigma > 0)) throw new ArgumentOutOfRangeException(nameof(sigma), sigma, "sigma must be positive.");
        ArgumentOutOfRangeException.ThrowIfNegative(kernelSize);
        int r = kernelSize / 2;
        if (r == 0) return;
        var taps = new float[2 * r + 1];
        double sum = 0;
        var d = new double[taps.Length];
        for (int i = -r; i <= r; i++) { d[i + r] = Math.Exp(-(double)i * i / (2.0 * sigma * sigma)); sum += d[i + r]; }
        for (int i = 0; i < taps.Length; i++) taps[i] = (float)(d[i] / sum);
        float[] tmp = System.Buffers.ArrayPool<float>.Shared.Rent(image.Length);
        try
        {
            Span<float> t = tmp.AsSpan(0, image.Length);
            for (int y = 0; y < height; y++)
                for (int x = 0; x < width; x++)
                    for (int k = 0; k < channels; k++)
                    {
                        float acc = 0f;
                        for (int j = -r; j <= r; j++)
                        {
                            int xx = x + j;
                            if ((uint)xx < (uint)width) acc += taps[j + r] * image[(y * width + xx) * channels + k];
                        }
                        t[(y * width + x) * channels + k] = acc;
                    }
            int row = width * channels;
            for (int y = 0; y < height; y++)
            {
                Span<float> o = image.Slice(y * row, row);
                o.Clear();
                for (int j = -r; j <= r; j++)
                {
                    int yy = y + j;
                    if ((uint)yy >= (uint)height) continue;
                    float w = taps[j + r];
                    ReadOnlySpan<float> s = t.Slice(yy * row, row);
                    for (int i = 0; i < row; i++) o[i] += w * s[i];
                }
            }
        }
        finally { System.Buffers.ArrayPool<float>.Shared.Return(tmp); }
    }

    // TF's CPU rgb_to_hsv / hsv_to_rgb helpers (adjust_hsv ops), in single precision.
    internal static void RgbToHsv(float r, float g, float b, out float h, out float s, out float v)
    {
        float vv = Math.Max(r, Math.Max(g, b));
        float range = vv - Math.Min(r, Math.Min(g, b));
        s = vv > 0 ? range / vv : 0;
        float norm = 1.0f / (6.0f * range);
        float hh;
        if (r == vv) hh = norm * (g - b);
        else if (g == vv) hh = norm * (b - r) + 2.0f / 6.0f;
        else hh = norm * (r - g) + 4.0f / 6.0f;
        if (range <= 0.0f) hh = 0;
        if (hh < 0.0f) hh += 1;
        v = vv;
        h = hh;
    }

    internal static void HsvToRgb(float h, float s, float v, out float r, out float g, out float b)
    {
        float c = s * v;
        float m = v - c;
        float dh = h * 6;
        int category = (int)dh;
        float fmodu = dh;
        while (fmodu <= 0) fmodu += 2.0f;
        while (fmodu >= 2.0f) fmodu -= 2.0f;
        float x = c * (1 - Math.Abs(fmodu - 1));
        float rr, gg, bb;
        switch (category)
        {
            case 0: rr = c; gg = x; bb = 0; break;
            case 1: rr = x; gg = c; bb = 0; break;
            case 2: rr = 0; gg = c; bb = x; break;
            case 3: rr = 0; gg = x; bb = c; break;
            case 4: rr = x; gg = 0; bb = c; break;
            case 5: rr = c; gg = 0; bb = x; break;
            default: rr = 0; gg = 0; bb = 0; break;
        }
        r = rr + m;
        g = gg + m;
        b = bb + m;
    }
}
