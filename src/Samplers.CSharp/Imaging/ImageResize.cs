using System.Numerics;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace Samplers.Imaging;

/// <summary>Interpolation of <see cref="ImageResize"/> and <see cref="Imaging.ImagePreprocessing.Resize"/>, as <c>tf.image.ResizeMethod</c>.</summary>
public enum ResizeMethod
{
    /// <summary><c>tf.image.ResizeMethod.BILINEAR</c> (the default): half-pixel centres; with antialias, a triangle kernel widened by the scale.</summary>
    Bilinear = 0,
    /// <summary><c>NEAREST_NEIGHBOR</c>: half-pixel centres, no interpolation (ignores antialias, as TF does).</summary>
    Nearest = 1,
    /// <summary><c>AREA</c>: the area-weighted mean of the covered source pixels (ignores antialias, as TF does).</summary>
    Area = 2,
    /// <summary><c>BICUBIC</c>: Keys cubic (a = -0.5), half-pixel centres, edge weights renormalised; with antialias, the Keys kernel widened by the scale.</summary>
    Bicubic = 3,
}

/// <summary>
/// Image resizing that follows <c>tf.image.resize</c> (TensorFlow 2: half-pixel centres, no corner alignment) formula
/// for formula, in IEEE single precision without fused multiply-add, on one HWC image (height, width, channels,
/// row-major). See docs/IMAGES.md for the exact semantics and the measured differences in levels.
/// </summary>
/// <remarks>Thread-safe; allocates only small per-call weight tables and at most a few rows of scratch.</remarks>
public static class ImageResize
{
    /// <summary>
    /// Resizes a uint8 or float32 HWC image (<typeparamref name="T"/> is <see cref="byte"/> or <see cref="float"/>) to
    /// <paramref name="outHeight"/> x <paramref name="outWidth"/>, writing float32 levels (no rounding, no clamping:
    /// bicubic may overshoot, as TF's does).
    /// </summary>
    /// <exception cref="ArgumentException">A size is not positive, or a span does not hold exactly one image.</exception>
    public static void Resize<T>(ReadOnlySpan<T> source, int height, int width, int channels, Span<float> destination,
        int outHeight, int outWidth, ResizeMethod method = ResizeMethod.Bilinear, bool antialias = false)
        where T : unmanaged
    {
        Check<T>(source.Length, height, width, channels, destination.Length, outHeight, outWidth);
        switch (method)
        {
            case ResizeMethod.Bilinear when antialias:
                ScaleAndTranslate(source, height, width, channels, destination, outHeight, outWidth, triangle: true);
                break;
            case ResizeMethod.Bicubic when antialias:
                ScaleAndTranslate(source, height, width, channels, destination, outHeight, outWidth, triangle: false);
                break;
            case ResizeMethod.Bilinear: Bilinear(source, height, width, channels, destination, outHeight, outWidth); break;
            case ResizeMethod.Bicubic: Bicubic(source, height, width, channels, destination, outHeight, outWidth); break;
            case ResizeMethod.Area: Area(source, height, width, channels, destination, outHeight, outWidth); break;
            case ResizeMethod.Nearest: Nearest(source, height, width, channels, destination, outHeight, outWidth); break;
            default: throw new ArgumentOutOfRangeException(nameof(method), method, "Unknown resize method.");
        }
    }

    /// <summary>Nearest-neighbour resize that keeps the element type (TF's nearest returns the input dtype): bytes are copied, not converted.</summary>
    /// <exception cref="ArgumentException">A size is not positive, or a span does not hold exactly one image.</exception>
    public static void ResizeNearest<T>(ReadOnlySpan<T> source, int height, int width, int channels, Span<T> destination, int outHeight, int outWidth)
        where T : unmanaged
    {
        Check<T>(source.Length, height, width, channels, destination.Length, outHeight, outWidth, checkType: false);
        Nearest(source, height, width, channels, destination, outHeight, outWidth);
    }

    /// <summary>Converts float levels to uint8 as <c>tf.saturate_cast(tf.round(x), tf.uint8)</c>: round half to even, then clamp to [0, 255] (NaN becomes 0).</summary>
    /// <exception cref="ArgumentException">The spans differ in length.</exception>
    public static void RoundToByte(ReadOnlySpan<float> source, Span<byte> destination)
    {
        if (source.Length != destination.Length) throw new ArgumentException($"destination holds {destination.Length} elements, but source holds {source.Length}.", nameof(destination));
        int i = 0;
        if (Vector.IsHardwareAccelerated && source.Length >= 4 * Vector<float>.Count)
        {
            // Clamp first (NaN fails the > 0 test and becomes 0), then round half to even by adding and removing 1.5 * 2^23
            // (exact for 0..255 in round-to-nearest-even arithmetic), then narrow 4 int vectors to one byte vector.
            var zero = Vector<float>.Zero;
            var max = new Vector<float>(255f);
            var magic = new Vector<float>(12582912f);
            int step = 4 * Vector<float>.Count;
            for (; i + step <= source.Length; i += step)
            {
                Vector<uint> q0 = Level(source.Slice(i), zero, max, magic), q1 = Level(source.Slice(i + Vector<float>.Count), zero, max, magic);
                Vector<uint> q2 = Level(source.Slice(i + 2 * Vector<float>.Count), zero, max, magic), q3 = Level(source.Slice(i + 3 * Vector<float>.Count), zero, max, magic);
                Vector.Narrow(Vector.Narrow(q0, q1), Vector.Narrow(q2, q3)).CopyTo(destination.Slice(i));
            }
        }
        for (; i < source.Length; i++)
        {
            float x = source[i];
            x = x > 0f ? (x < 255f ? x : 255f) : 0f;
            destination[i] = (byte)(int)((x + 12582912f) - 12582912f);
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector<uint> Level(ReadOnlySpan<float> s, Vector<float> zero, Vector<float> max, Vector<float> magic)
    {
        var v = new Vector<float>(s);
        v = Vector.ConditionalSelect(Vector.GreaterThan(v, zero), v, zero);
        v = Vector.ConditionalSelect(Vector.LessThan(v, max), v, max);
        v = (v + magic) - magic;
        return Vector.AsVectorUInt32(Vector.ConvertToInt32(v));
    }

    /// <summary>TF's <c>CalculateResizeScale</c> without corner alignment: in / out in single precision.</summary>
    internal static float Scale(int inSize, int outSize) => inSize / (float)outSize;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static float F<T>(T v) where T : unmanaged
    {
        if (typeof(T) == typeof(byte)) return Unsafe.As<T, byte>(ref v);
        if (typeof(T) == typeof(float)) return Unsafe.As<T, float>(ref v);
        throw new ArgumentException($"Element type {typeof(T).Name} is not supported; use byte or float.", nameof(T));
    }

    private static void Check<T>(int sourceLength, int height, int width, int channels, int destinationLength, int outHeight, int outWidth, bool checkType = true)
        where T : unmanaged
    {
        if (checkType && typeof(T) != typeof(byte) && typeof(T) != typeof(float))
            throw new ArgumentException($"Element type {typeof(T).Name} is not supported; images are byte (uint8) or float (float32).", nameof(T));
        if (height < 1 || width < 1 || channels < 1)
            throw new ArgumentException($"The source image must be at least 1x1x1, but was {height}x{width}x{channels}.", nameof(height));
        if (outHeight < 1 || outWidth < 1)
            throw new ArgumentException($"The output size must be at least 1x1, but was {outHeight}x{outWidth}.", nameof(outHeight));
        if ((long)height * width * channels != sourceLength)
            throw new ArgumentException($"source holds {sourceLength} elements, but a {height}x{width}x{channels} image has {(long)height * width * channels}.", "source");
        if ((long)outHeight * outWidth * channels != destinationLength)
            throw new ArgumentException($"destination holds {destinationLength} elements, but a {outHeight}x{outWidth}x{channels} image has {(long)outHeight * outWidth * channels}.", "destination");
    }

    // ---- nearest: resize_nearest_neighbor(half_pixel_centers=True) ----
    // in = min(floor((out + 0.5) * scale), in - 1), at least 0.

    private static int[] NearestIndex(int inSize, int outSize)
    {
        float scale = Scale(inSize, outSize);
        var idx = new int[outSize];
        for (int o = 0; o < outSize; o++)
            idx[o] = Math.Max(0, Math.Min((int)MathF.Floor((o + 0.5f) * scale), inSize - 1));
        return idx;
    }

    private static void Nearest<TIn, TOut>(ReadOnlySpan<TIn> src, int h, int w, int c, Span<TOut> dst, int oh, int ow)
        where TIn : unmanaged where TOut : unmanaged
    {
        int[] ys = NearestIndex(h, oh), xs = NearestIndex(w, ow);
        for (int y = 0; y < oh; y++)
        {
            ReadOnlySpan<TIn> row = src.Slice(ys[y] * w * c, w * c);
            Span<TOut> o = dst.Slice(y * ow * c, ow * c);
            for (int x = 0; x < ow; x++)
            {
                int s = xs[x] * c;
                for (int k = 0; k < c; k++)
                {
                    if (typeof(TIn) == typeof(TOut)) o[x * c + k] = Unsafe.As<TIn, TOut>(ref Unsafe.AsRef(in row[s + k]));
                    else { float f = F(row[s + k]); o[x * c + k] = Unsafe.As<float, TOut>(ref f); }
                }
            }
        }
    }

    // ---- bilinear: resize_bilinear(half_pixel_centers=True) ----
    // in = (out + 0.5) * scale - 0.5; lower = max(floor(in), 0); upper = min(ceil(in), in - 1); lerp = in - floor(in);
    // top = tl + (tr - tl) * xl; bottom = bl + (br - bl) * xl; out = top + (bottom - top) * yl.

    private static void LerpTable(int inSize, int outSize, Span<int> lower, Span<int> upper, Span<float> lerp)
    {
        float scale = Scale(inSize, outSize);
        for (int o = 0; o < outSize; o++)
        {
            float v = (o + 0.5f) * scale - 0.5f;
            float fl = MathF.Floor(v);
            lower[o] = Math.Max((int)fl, 0);
            upper[o] = Math.Min((int)MathF.Ceiling(v), inSize - 1);
            lerp[o] = v - fl;
        }
    }

    private static void Bilinear<T>(ReadOnlySpan<T> src, int h, int w, int c, Span<float> dst, int oh, int ow) where T : unmanaged
    {
        var yl = new int[oh]; var yu = new int[oh]; var yf = new float[oh];
        var xl = new int[ow]; var xu = new int[ow]; var xf = new float[ow];
        LerpTable(h, oh, yl, yu, yf);
        LerpTable(w, ow, xl, xu, xf);
        int rowLen = ow * c;
        // Two cached horizontally interpolated source rows: consecutive output rows mostly share them.
        float[] rowA = new float[rowLen], rowB = new float[rowLen];
        int rowAIndex = -1, rowBIndex = -1;
        for (int y = 0; y < oh; y++)
        {
            float[] top = HorizontalRow(src, w, c, yl[y], xl, xu, xf, ref rowA, ref rowAIndex, ref rowB, ref rowBIndex);
            float[] bottom = HorizontalRow(src, w, c, yu[y], xl, xu, xf, ref rowA, ref rowAIndex, ref rowB, ref rowBIndex, keep: top);
            VerticalLerp(top, bottom, yf[y], dst.Slice(y * rowLen, rowLen));
        }
    }

    private static float[] HorizontalRow<T>(ReadOnlySpan<T> src, int w, int c, int row, int[] xl, int[] xu, float[] xf,
        ref float[] a, ref int aIndex, ref float[] b, ref int bIndex, float[]? keep = null) where T : unmanaged
    {
        if (aIndex == row) return a;
        if (bIndex == row) return b;
        // Overwrite the buffer that is not in use by the other half of this output row.
        bool useA = !ReferenceEquals(keep, a) && (ReferenceEquals(keep, b) || aIndex < bIndex);
        float[] buf = useA ? a : b;
        if (useA) aIndex = row; else bIndex = row;
        ReadOnlySpan<T> r = src.Slice(row * w * c, w * c);
        int ow = xl.Length;
        for (int x = 0; x < ow; x++)
        {
            int lo = xl[x] * c, hi = xu[x] * c;
            float l = xf[x];
            for (int k = 0; k < c; k++)
            {
                float left = F(r[lo + k]), right = F(r[hi + k]);
                buf[x * c + k] = left + (right - left) * l;
            }
        }
        return buf;
    }

    private static void VerticalLerp(ReadOnlySpan<float> top, ReadOnlySpan<float> bottom, float lerp, Span<float> o)
    {
        int i = 0;
        if (Vector.IsHardwareAccelerated)
        {
            var vl = new Vector<float>(lerp);
            var t = MemoryMarshal.Cast<float, Vector<float>>(top);
            var b = MemoryMarshal.Cast<float, Vector<float>>(bottom);
            var d = MemoryMarshal.Cast<float, Vector<float>>(o);
            // Separate multiply and add (no FMA), as TF's kernel evaluates it.
            for (int v = 0; v < d.Length; v++) d[v] = t[v] + (b[v] - t[v]) * vl;
            i = d.Length * Vector<float>.Count;
        }
        for (; i < o.Length; i++) o[i] = top[i] + (bottom[i] - top[i]) * lerp;
    }

    // ---- bicubic: resize_bicubic(half_pixel_centers=True) ----
    // Keys cubic a = -0.5 from a 1024-entry table; taps outside the image get weight 0 and the rest are renormalised.
    // Vertical pass first (each of the 4 source columns), then horizontal, as TF's kernel.

    private const int TableSize = 1024;
    private const float MinNormal = 1.17549435E-38f; // std::numeric_limits<float>::min()
    private static readonly float[] KeysTable = BuildKeysTable(-0.5);

    private static float[] BuildKeysTable(double a)
    {
        var t = new float[(TableSize + 1) * 2];
        for (int i = 0; i <= TableSize; i++)
        {
            float x = (float)(i * 1.0 / TableSize);
            t[i * 2] = (float)(((a + 2) * x - (a + 3)) * x * x + 1);
            x += 1.0f;
            t[i * 2 + 1] = (float)(((a * x - 5 * a) * x + 8 * a) * x - 4 * a);
        }
        return t;
    }

    internal struct Cubic
    {
        internal int I0, I1, I2, I3;
        internal float W0, W1, W2, W3;
    }

    private static Cubic CubicAt(float scale, int o, int limit)
    {
        float v = (o + 0.5f) * scale - 0.5f;
        int loc = (int)MathF.Floor(v);
        float delta = v - loc;
        int off = (int)MathF.Round(delta * TableSize, MidpointRounding.ToEven); // lrintf, default rounding mode
        Cubic r;
        r.I0 = Bound(loc - 1, limit); r.W0 = r.I0 == loc - 1 ? KeysTable[off * 2 + 1] : 0f;
        r.I1 = Bound(loc, limit); r.W1 = r.I1 == loc ? KeysTable[off * 2] : 0f;
        r.I2 = Bound(loc + 1, limit); r.W2 = r.I2 == loc + 1 ? KeysTable[(TableSize - off) * 2] : 0f;
        r.I3 = Bound(loc + 2, limit); r.W3 = r.I3 == loc + 2 ? KeysTable[(TableSize - off) * 2 + 1] : 0f;
        float sum = r.W0 + r.W1 + r.W2 + r.W3;
        if (MathF.Abs(sum) >= 1000f * MinNormal)
        {
            float inv = 1f / sum;
            r.W0 *= inv; r.W1 *= inv; r.W2 *= inv; r.W3 *= inv;
        }
        return r;
    }

    private static int Bound(int v, int limit) => Math.Min(limit - 1, Math.Max(0, v));

    private static void Bicubic<T>(ReadOnlySpan<T> src, int h, int w, int c, Span<float> dst, int oh, int ow) where T : unmanaged
    {
        float ys = Scale(h, oh), xs = Scale(w, ow);
        var xw = new Cubic[ow];
        for (int x = 0; x < ow; x++) xw[x] = CubicAt(xs, x, w);
        int rowLen = w * c;
        var col = new float[rowLen];
        var r0 = new float[rowLen]; var r1 = new float[rowLen]; var r2 = new float[rowLen]; var r3 = new float[rowLen];
        for (int y = 0; y < oh; y++)
        {
            Cubic yw = CubicAt(ys, y, h);
            ToFloat(src.Slice(yw.I0 * rowLen, rowLen), r0);
            ToFloat(src.Slice(yw.I1 * rowLen, rowLen), r1);
            ToFloat(src.Slice(yw.I2 * rowLen, rowLen), r2);
            ToFloat(src.Slice(yw.I3 * rowLen, rowLen), r3);
            WeightedSum4(r0, r1, r2, r3, yw.W0, yw.W1, yw.W2, yw.W3, col);
            Span<float> o = dst.Slice(y * ow * c, ow * c);
            for (int x = 0; x < ow; x++)
            {
                ref readonly Cubic k = ref xw[x];
                int a0 = k.I0 * c, a1 = k.I1 * c, a2 = k.I2 * c, a3 = k.I3 * c;
                for (int ch = 0; ch < c; ch++)
                    o[x * c + ch] = col[a0 + ch] * k.W0 + col[a1 + ch] * k.W1 + col[a2 + ch] * k.W2 + col[a3 + ch] * k.W3;
            }
        }
    }

    internal static void ToFloat<T>(ReadOnlySpan<T> src, Span<float> dst) where T : unmanaged
    {
        if (typeof(T) == typeof(float)) { MemoryMarshal.Cast<T, float>(src).CopyTo(dst); return; }
        System.Numerics.Tensors.TensorPrimitives.ConvertTruncating(MemoryMarshal.Cast<T, byte>(src), dst);
    }

    // ((v0*w0 + v1*w1) + v2*w2) + v3*w3, every product rounded before the add (TF's Interpolate1D).
    private static void WeightedSum4(ReadOnlySpan<float> a, ReadOnlySpan<float> b, ReadOnlySpan<float> c, ReadOnlySpan<float> d,
        float w0, float w1, float w2, float w3, Span<float> o)
    {
        int i = 0;
        if (Vector.IsHardwareAccelerated)
        {
            var va = MemoryMarshal.Cast<float, Vector<float>>(a);
            var vb = MemoryMarshal.Cast<float, Vector<float>>(b);
            var vc = MemoryMarshal.Cast<float, Vector<float>>(c);
            var vd = MemoryMarshal.Cast<float, Vector<float>>(d);
            var vo = MemoryMarshal.Cast<float, Vector<float>>(o);
            Vector<float> x0 = new(w0), x1 = new(w1), x2 = new(w2), x3 = new(w3);
            for (int v = 0; v < vo.Length; v++) vo[v] = va[v] * x0 + vb[v] * x1 + vc[v] * x2 + vd[v] * x3;
            i = vo.Length * Vector<float>.Count;
        }
        for (; i < o.Length; i++) o[i] = a[i] * w0 + b[i] * w1 + c[i] * w2 + d[i] * w3;
    }

    // ---- area: resize_area (exact TF cell weights) ----

    private static void Area<T>(ReadOnlySpan<T> src, int h, int w, int c, Span<float> dst, int oh, int ow) where T : unmanaged
    {
        float hs = Scale(h, oh), ws = Scale(w, ow);
        var xStart = new long[ow]; var xEnd = new long[ow]; var xStartScale = new float[ow]; var xEndScale = new float[ow];
        for (int x = 0; x < ow; x++)
        {
            float inX = x * ws, inX1 = (x + 1) * ws;
            long v = (long)MathF.Floor(inX);
            xStart[x] = v;
            xStartScale[x] = v < inX ? (v + 1 > inX1 ? ws : v + 1 - inX) : (v + 1 > inX1 ? inX1 - v : 1f);
            xEnd[x] = (long)MathF.Ceiling(inX1);
            v = xEnd[x] - 1;
            xEndScale[x] = v < inX ? (v + 1 > inX1 ? ws : v + 1 - inX) : (v + 1 > inX1 ? inX1 - v : 1f);
        }
        float scale = (float)(1.0 / (hs * ws));
        var yScales = new List<float>(8);
        var yRows = new List<int>(8);
        for (int y = 0; y < oh; y++)
        {
            float inY = y * hs, inY1 = (y + 1) * hs;
            long yStart = (long)MathF.Floor(inY), yEnd = (long)MathF.Ceiling(inY1);
            yScales.Clear(); yRows.Clear();
            for (long i = yStart; i < yEnd; i++)
            {
                float sy = i < inY ? (i + 1 > inY1 ? hs : i + 1 - inY) : (i + 1 > inY1 ? inY1 - i : 1f);
                yScales.Add(sy);
                yRows.Add(Bound((int)i, h));
            }
            for (int x = 0; x < ow; x++)
            {
                for (int ch = 0; ch < c; ch++)
                {
                    float sum = 0;
                    for (int i = 0; i < yRows.Count; i++)
                    {
                        ReadOnlySpan<T> row = src.Slice(yRows[i] * w * c, w * c);
                        float sumY = F(row[Bound((int)xStart[x], w) * c + ch]) * xStartScale[x];
                        if (xStart[x] + 1 != xEnd[x])
                        {
                            for (long xx = xStart[x] + 1; xx < xEnd[x] - 1; xx++) sumY += F(row[Bound((int)xx, w) * c + ch]);
                            sumY += F(row[Bound((int)(xEnd[x] - 1), w) * c + ch]) * xEndScale[x];
                        }
                        sum += sumY * yScales[i];
                    }
                    dst[(y * ow + x) * c + ch] = sum * scale;
                }
            }
        }
    }

    // ---- antialias: scale_and_translate (triangle or Keys cubic kernel, widened by 1/scale when downscaling) ----

    internal readonly record struct Spans(int SpanSize, int[] Starts, float[] Weights);

    internal static Spans ComputeSpans(int outSize, int inSize, bool triangle, bool antialias = true)
    {
        float scale = outSize / (float)inSize;  // tf.image.resize: new_size / input_size in float32
        float invScale = (float)(1.0 / scale);
        float radius = triangle ? 1f : 2f;
        float kernelScale = antialias ? MathF.Max(invScale, 1f) : 1f;
        int spanSize = Math.Min(2 * (int)MathF.Ceiling(radius * kernelScale) + 1, inSize);
        var starts = new int[outSize];
        var weights = new float[spanSize * outSize];
        float oneOverKernelScale = 1f / kernelScale;
        Span<float> temp = spanSize <= 256 ? stackalloc float[spanSize] : new float[spanSize];
        for (int x = 0; x < outSize; x++)
        {
            float sampleF = (x + 0.5f) * invScale; // translate 0
            if (sampleF < 0 || sampleF > inSize) { starts[x] = 0; continue; }
            long start = (long)MathF.Ceiling(sampleF - radius * kernelScale - 0.5f);
            long end = (long)MathF.Floor(sampleF + radius * kernelScale - 0.5f);
            start = Math.Clamp(start, 0, inSize - 1);
            end = Math.Clamp(end, 0, inSize - 1) + 1;
            int n = (int)(end - start);
            float total = 0f;
            for (int s = 0; s < n; s++)
            {
                float pos = (float)(start + s) + 0.5f - sampleF;
                float wgt = triangle ? Triangle(MathF.Abs(pos * oneOverKernelScale)) : KeysCubic(MathF.Abs(pos * oneOverKernelScale));
                total += wgt;
                temp[s] = wgt;
            }
            if (MathF.Abs(total) >= 1000f * MinNormal)
            {
                float inv = 1f / total;
                for (int s = 0; s < n; s++) weights[x * spanSize + s] = temp[s] * inv;
            }
            starts[x] = (int)start;
        }
        return new Spans(spanSize, starts, weights);
    }

    private static float Triangle(float x) => x < 1f ? 1f - x : 0f;

    private static float KeysCubic(float x)
    {
        if (x >= 2f) return 0f;
        if (x >= 1f) return ((-0.5f * x + 2.5f) * x - 4.0f) * x + 2.0f;
        return ((1.5f * x - 2.5f) * x) * x + 1.0f;
    }

    private static void ScaleAndTranslate<T>(ReadOnlySpan<T> src, int h, int w, int c, Span<float> dst, int oh, int ow, bool triangle) where T : unmanaged
    {
        Spans rows = ComputeSpans(oh, h, triangle), cols = ComputeSpans(ow, w, triangle);
        int inRow = w * c;
        float[] inter = System.Buffers.ArrayPool<float>.Shared.Rent(oh * inRow);
        float[] rowF = System.Buffers.ArrayPool<float>.Shared.Rent(inRow);
        try { GatherRowsThenColumns(src, h, w, c, dst, oh, ow, rows, cols, inter, rowF); }
        finally
        {
            System.Buffers.ArrayPool<float>.Shared.Return(inter);
            System.Buffers.ArrayPool<float>.Shared.Return(rowF);
        }
    }

    private static void GatherRowsThenColumns<T>(ReadOnlySpan<T> src, int h, int w, int c, Span<float> dst, int oh, int ow, Spans rows, Spans cols, float[] inter, float[] rowF)
        where T : unmanaged
    {
        int inRow = w * c;
        // Rows first (into [oh, w, c]), then columns, as TF's GatherSpans.
        for (int y = 0; y < oh; y++)
        {
            Span<float> acc = inter.AsSpan(y * inRow, inRow);
            acc.Clear();
            int start = rows.Starts[y];
            int real = Math.Min(start + rows.SpanSize, h) - start;
            for (int k = 0; k < real; k++)
            {
                float wgt = rows.Weights[y * rows.SpanSize + k];
                ToFloat(src.Slice((start + k) * inRow, inRow), rowF.AsSpan(0, inRow));
                AddScaled(rowF.AsSpan(0, inRow), wgt, acc);
            }
        }
        for (int y = 0; y < oh; y++)
        {
            ReadOnlySpan<float> r = inter.AsSpan(y * inRow, inRow);
            Span<float> o = dst.Slice(y * ow * c, ow * c);
            for (int x = 0; x < ow; x++)
            {
                int start = cols.Starts[x];
                int real = Math.Min(start + cols.SpanSize, w) - start;
                for (int ch = 0; ch < c; ch++)
                {
                    float sum = 0f;
                    for (int k = 0; k < real; k++) sum += cols.Weights[x * cols.SpanSize + k] * r[(start + k) * c + ch];
                    o[x * c + ch] = sum;
                }
            }
        }
    }

    private static void AddScaled(ReadOnlySpan<float> x, float w, Span<float> acc)
    {
        int i = 0;
        if (Vector.IsHardwareAccelerated)
        {
            var vx = MemoryMarshal.Cast<float, Vector<float>>(x);
            var va = MemoryMarshal.Cast<float, Vector<float>>(acc);
            var vw = new Vector<float>(w);
            for (int v = 0; v < va.Length; v++) va[v] = va[v] + vw * vx[v];
            i = va.Length * Vector<float>.Count;
        }
        for (; i < acc.Length; i++) acc[i] += w * x[i];
    }
}
