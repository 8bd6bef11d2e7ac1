using System.Numerics;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace Samplers.TorchSharp;

/// <summary>
/// The one copy from a batch's bytes to float32: dtype conversion, affine scaling (<c>x * scale[c] + bias[c]</c>) and
/// the HWC → CHW layout change fused into a single pass (no intermediate buffer).
/// </summary>
public static class BatchCopy
{
    /// <summary>The float32 shape a batch of <paramref name="batchShape"/> has after conversion (channels first for rank-4 batches when asked).</summary>
    public static long[] OutputShape(ReadOnlySpan<int> batchShape, bool channelsFirst)
    {
        var shape = new long[batchShape.Length];
        for (int i = 0; i < shape.Length; i++) shape[i] = batchShape[i];
        if (channelsFirst && shape.Length == 4) (shape[1], shape[2], shape[3]) = (batchShape[3], batchShape[1], batchShape[2]);
        return shape;
    }

    /// <summary>Per-channel multiplier and offset of <paramref name="conversion"/> for <paramref name="channels"/> channels.</summary>
    /// <exception cref="ArgumentException">Mean or Std has a length other than 1 or <paramref name="channels"/>, or a zero Std.</exception>
    public static (float[] Scale, float[] Bias) Affine(TensorConversion conversion, int channels)
    {
        ArgumentNullException.ThrowIfNull(conversion);
        var scale = new float[channels];
        var bias = new float[channels];
        for (int c = 0; c < channels; c++)
        {
            float mean = Pick(conversion.Mean, c, channels, 0f, "Mean");
            float std = Pick(conversion.Std, c, channels, 1f, "Std");
            if (std == 0f) throw new ArgumentException($"Std[{c}] is 0; a standard deviation must be non-zero.", nameof(conversion));
            scale[c] = conversion.Scale / std;
            bias[c] = -mean / std;
        }
        return (scale, bias);
    }

    private static float Pick(IReadOnlyList<float>? values, int c, int channels, float none, string name)
    {
        if (values is null) return none;
        if (values.Count == 1) return values[0];
        if (values.Count != channels)
            throw new ArgumentException($"{name} has {values.Count} values, but the examples have {channels} channels; give 1 or {channels}.", "conversion");
        return values[c];
    }

    /// <summary>Writes the batch's X (uint8 or float32) into <paramref name="destination"/> as float32, scaled per channel and,
    /// when <paramref name="channelsFirst"/> and the batch has rank 4 (N, H, W, C), reordered to (N, C, H, W).</summary>
    /// <exception cref="NotSupportedException">The batch's dtype is neither uint8 nor float32.</exception>
    /// <exception cref="ArgumentException"><paramref name="destination"/> is too short, or scale/bias do not have one value per channel.</exception>
    public static void ToFloat32(Batch batch, Span<float> destination, ReadOnlySpan<float> scale, ReadOnlySpan<float> bias, bool channelsFirst) =>
        ToFloat32(batch, destination, scale, bias, channelsFirst, vectors: true, BytesPerWorker);

    /// <summary><see cref="ToFloat32(Batch, Span{float}, ReadOnlySpan{float}, ReadOnlySpan{float}, bool)"/> with the vector
    /// kernels on or off and the split threshold given (tests compare every combination bit for bit).</summary>
    internal static void ToFloat32(Batch batch, Span<float> destination, ReadOnlySpan<float> scale, ReadOnlySpan<float> bias, bool channelsFirst,
        bool vectors, long bytesPerWorker)
    {
        ReadOnlySpan<int> shape = batch.Shape;
        bool chw = channelsFirst && shape.Length == 4;
        int channels = shape.Length == 4 ? shape[3] : 1;
        long total = 1;
        foreach (int d in shape) total *= d;
        if (destination.Length < total)
            throw new ArgumentException($"The destination holds {destination.Length} floats, but the batch has {total} elements.", nameof(destination));
        if (scale.Length < channels || bias.Length < channels)
            throw new ArgumentException($"scale and bias need {channels} values (one per channel), but have {scale.Length} and {bias.Length}.", nameof(scale));
        Span<float> dst = destination[..(int)total];
        bool uniform = AllSame(scale, bias, channels);
        switch (batch.DType)
        {
            case DType.UInt8:
                if (chw && channels > 1) Transpose<byte>(batch.XBytes, dst, shape[0], shape[1] * shape[2], channels, scale, bias, vectors, bytesPerWorker);
                else if (uniform) Affine(batch.XBytes, dst, scale[0], bias[0]);
                else Cycle<byte>(batch.XBytes, dst, channels, scale, bias);
                break;
            case DType.Float32:
                ReadOnlySpan<float> src = batch.X<float>();
                if (chw && channels > 1) Transpose(src, dst, shape[0], shape[1] * shape[2], channels, scale, bias, vectors, bytesPerWorker);
                else if (uniform) AffineF(src, dst, scale[0], bias[0]);
                else Cycle(src, dst, channels, scale, bias);
                break;
            default:
                throw new NotSupportedException($"Batches of {DTypes.Name(batch.DType)} cannot be converted to float32 tensors here; use uint8 or float32 data (e.g. Preprocessing.ToFloat32()).");
        }
    }

    // Channels-last kept, per-channel values: the channel cycles along the row.
    private static void Cycle<TIn>(ReadOnlySpan<TIn> src, Span<float> dst, int channels, ReadOnlySpan<float> scale, ReadOnlySpan<float> bias)
        where TIn : unmanaged
    {
        for (int i = 0; i < dst.Length; i++)
        {
            TIn v = src[i];
            int c = i % channels;
            dst[i] = ToFloat(v) * scale[c] + bias[c];
        }
    }

    // Same layout, one affine map: dst[i] = src[i] * s + b, 32 pixels at a time.
    private static void Affine(ReadOnlySpan<byte> src, Span<float> dst, float s, float b)
    {
        int k = 0;
        if (Vector256.IsHardwareAccelerated && dst.Length >= 32)
        {
            var vs = Vector256.Create(s);
            var vb = Vector256.Create(b);
            ref byte sr = ref MemoryMarshal.GetReference(src);
            ref float dr = ref MemoryMarshal.GetReference(dst);
            for (; k <= dst.Length - 32; k += 32)
            {
                Vector256<byte> v = Vector256.LoadUnsafe(ref sr, (nuint)k);
                (Vector256<ushort> lo, Vector256<ushort> hi) = Vector256.Widen(v);
                (Vector256<uint> a, Vector256<uint> bb) = Vector256.Widen(lo);
                (Vector256<uint> c, Vector256<uint> d) = Vector256.Widen(hi);
                Vector256.FusedMultiplyAdd(Vector256.ConvertToSingle(a), vs, vb).StoreUnsafe(ref dr, (nuint)k);
                Vector256.FusedMultiplyAdd(Vector256.ConvertToSingle(bb), vs, vb).StoreUnsafe(ref dr, (nuint)(k + 8));
                Vector256.FusedMultiplyAdd(Vector256.ConvertToSingle(c), vs, vb).StoreUnsafe(ref dr, (nuint)(k + 16));
                Vector256.FusedMultiplyAdd(Vector256.ConvertToSingle(d), vs, vb).StoreUnsafe(ref dr, (nuint)(k + 24));
            }
        }
        for (; k < dst.Length; k++) dst[k] = MathF.FusedMultiplyAdd(src[k], s, b);
    }

    private static bool AllSame(ReadOnlySpan<float> scale, ReadOnlySpan<float> bias, int channels)
    {
        if (scale.Length < channels || bias.Length < channels) return true;
        for (int c = 1; c < channels; c++)
            if (scale[c] != scale[0] || bias[c] != bias[0]) return false;
        return true;
    }

    private static void AffineF(ReadOnlySpan<float> src, Span<float> dst, float s, float b)
    {
        int k = 0;
        int w = Vector<float>.Count;
        if (Vector.IsHardwareAccelerated)
        {
            var vs = new Vector<float>(s);
            var vb = new Vector<float>(b);
            for (; k <= dst.Length - w; k += w) (new Vector<float>(src[k..]) * vs + vb).CopyTo(dst[k..]);
        }
        for (; k < dst.Length; k++) dst[k] = MathF.FusedMultiplyAdd(src[k], s, b);
    }

    // (N, P, C) -> (N, C, P) with the affine map; P = H * W. Large batches are split over threads by pixel ranges
    // (each range inside one example), so every thread reads its pixels once and writes each plane sequentially.
    private static unsafe void Transpose<TIn>(ReadOnlySpan<TIn> src, Span<float> dst, int n, int pixels, int channels, ReadOnlySpan<float> scale, ReadOnlySpan<float> bias,
        bool vectors, long bytesPerWorker)
        where TIn : unmanaged
    {
        fixed (TIn* s0 = src)
        fixed (float* d0 = dst)
        fixed (float* sc = scale)
        fixed (float* bi = bias)
        {
            var job = new TransposeJob<TIn>(s0, d0, pixels, channels, sc, bi, vectors);
            long total = (long)n * pixels;
            int workers = Workers(total * channels * sizeof(float), bytesPerWorker);
            if (workers <= 1) job.Run(0, total);
            else Split(job, total, workers);
        }
    }

    private static int _warmed;

    /// <summary>Whether <see cref="WarmUp"/> does anything (the bench turns it off to measure a cold first batch).</summary>
    internal static bool WarmUpEnabled { get; set; } = true;

    /// <summary>Once per process, on a thread-pool thread: runs the transpose on a tiny input (compiling its kernels, which
    /// are AggressiveOptimization and so compiled once, fully optimised, never through the slow first tier) and splits a
    /// tiny job over the threads a large batch uses (starting them). Without it the first large batch pays both.</summary>
    internal static void WarmUp()
    {
        if (!WarmUpEnabled || Interlocked.Exchange(ref _warmed, 1) != 0) return;
        ThreadPool.UnsafeQueueUserWorkItem(static _ =>
        {
            // 2 examples of 37 RGB pixels: two vector blocks and a scalar tail per example, on each thread.
            byte[] src = new byte[2 * 37 * 3];
            float[] dst = new float[src.Length];
            float[] f = new float[src.Length];
            ReadOnlySpan<float> one = [1f, 1f, 1f], zero = [0f, 0f, 0f];
            Transpose<byte>(src, dst, 2, 37, 3, one, zero, true, BytesPerWorker);
            Transpose<float>(f, dst, 2, 37, 3, one, zero, true, BytesPerWorker);
            Transpose<byte>(src, dst, 2, 37, 2, one, zero, true, BytesPerWorker);
            unsafe
            {
                fixed (byte* s = src)
                fixed (float* d = dst)
                fixed (float* o = one)
                fixed (float* z = zero)
                {
                    int workers = Workers(long.MaxValue, BytesPerWorker);
                    if (workers > 1) Split(new TransposeJob<byte>(s, d, 37, 3, o, z, true), 2L * 37, workers);
                }
            }
        }, null);
    }

    /// <summary>Output bytes per thread below which a copy stays on the calling thread (thread hand-off costs more).</summary>
    internal const long BytesPerWorker = 4 << 20;

    /// <summary>Upper bound on the threads one copy uses; 0 means the processor count.</summary>
    internal static int MaxWorkers { get; set; }

    private static int Workers(long outputBytes, long bytesPerWorker)
    {
        int cap = MaxWorkers > 0 ? MaxWorkers : Environment.ProcessorCount;
        return (int)Math.Clamp(outputBytes / Math.Max(1, bytesPerWorker), 1, Math.Max(1, cap));
    }

    // Contiguous ranges of the flat pixel index, one per worker; the caller's thread takes the first.
    private static void Split<TIn>(TransposeJob<TIn> job, long total, int workers) where TIn : unmanaged
    {
        Parallel.For(0, workers, new ParallelOptions { MaxDegreeOfParallelism = workers }, w =>
            job.Run(total * w / workers, total * (w + 1) / workers));
    }

    // Pointers and counts of one transpose (a class: Parallel.For's delegate captures it; spans cannot be captured).
    private sealed unsafe class TransposeJob<TIn>(TIn* src, float* dst, int pixels, int channels, float* scale, float* bias, bool vectors)
        where TIn : unmanaged
    {
        // Flat pixels [from, to) of the batch: example by example, the part of each example's pixels inside the range.
        [MethodImpl(MethodImplOptions.AggressiveOptimization)]
        internal void Run(long from, long to)
        {
            while (from < to)
            {
                int e = (int)(from / pixels);
                int p0 = (int)(from - (long)e * pixels);
                int p1 = (int)Math.Min(pixels, to - (long)e * pixels);
                TIn* s = src + (long)e * pixels * channels;
                float* d = dst + (long)e * pixels * channels;
                if (channels == 3 && typeof(TIn) == typeof(byte)) Rgb((byte*)s, d, pixels, p0, p1, scale, bias, vectors);
                else Planes(s, d, pixels, channels, p0, p1, scale, bias);
                from += p1 - p0;
            }
        }
    }

    // Any channel count: channel by channel, a strided read and a sequential write.
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static unsafe void Planes<TIn>(TIn* s, float* d, int pixels, int channels, int p0, int p1, float* scale, float* bias)
        where TIn : unmanaged
    {
        for (int c = 0; c < channels; c++)
        {
            float sc = scale[c], bc = bias[c];
            float* plane = d + (long)c * pixels;
            TIn* col = s + c + (long)p0 * channels;
            for (int p = p0; p < p1; p++, col += channels)
                plane[p] = ToFloat(*col) * sc + bc;
        }
    }

    // Byte RGB, pixels [p0, p1) of one example: 16 pixels (48 bytes) at a time, split into three 16-byte channel vectors
    // by byte shuffles, widened to int32, converted, multiplied and added (not fused: the scalar tail and the fallback
    // round the product before adding, and both must give the same floats).
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static unsafe void Rgb(byte* s, float* d, int pixels, int p0, int p1, float* scale, float* bias, bool vectors)
    {
        float s0c = scale[0], s1c = scale[1], s2c = scale[2], b0 = bias[0], b1 = bias[1], b2 = bias[2];
        float* q0 = d, q1 = d + pixels, q2 = d + 2 * (long)pixels;
        int p = p0;
        if (vectors && Avx2.IsSupported && p1 - p0 >= 16)
        {
            Vector128<byte> r0 = Mask(0, 0), r1 = Mask(0, 1), r2 = Mask(0, 2);
            Vector128<byte> g0 = Mask(1, 0), g1 = Mask(1, 1), g2 = Mask(1, 2);
            Vector128<byte> c0 = Mask(2, 0), c1 = Mask(2, 1), c2 = Mask(2, 2);
            Vector256<float> vs0 = Vector256.Create(s0c), vs1 = Vector256.Create(s1c), vs2 = Vector256.Create(s2c);
            Vector256<float> vb0 = Vector256.Create(b0), vb1 = Vector256.Create(b1), vb2 = Vector256.Create(b2);
            for (; p <= p1 - 16; p += 16)
            {
                byte* at = s + (long)p * 3;
                Vector128<byte> a = Sse2.LoadVector128(at), b = Sse2.LoadVector128(at + 16), c = Sse2.LoadVector128(at + 32);
                Vector128<byte> red = Sse2.Or(Sse2.Or(Ssse3.Shuffle(a, r0), Ssse3.Shuffle(b, r1)), Ssse3.Shuffle(c, r2));
                Vector128<byte> green = Sse2.Or(Sse2.Or(Ssse3.Shuffle(a, g0), Ssse3.Shuffle(b, g1)), Ssse3.Shuffle(c, g2));
                Vector128<byte> blue = Sse2.Or(Sse2.Or(Ssse3.Shuffle(a, c0), Ssse3.Shuffle(b, c1)), Ssse3.Shuffle(c, c2));
                Store(red, q0 + p, vs0, vb0);
                Store(green, q1 + p, vs1, vb1);
                Store(blue, q2 + p, vs2, vb2);
            }
        }
        byte* sb = s + (long)p * 3;
        for (; p < p1; p++, sb += 3)
        {
            q0[p] = sb[0] * s0c + b0;
            q1[p] = sb[1] * s1c + b1;
            q2[p] = sb[2] * s2c + b2;
        }
    }

    // 16 bytes -> 16 floats x * s + b (rounded product, then rounded sum, as the scalar loop).
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static unsafe void Store(Vector128<byte> v, float* d, Vector256<float> s, Vector256<float> b)
    {
        Vector256<float> lo = Avx.ConvertToVector256Single(Avx2.ConvertToVector256Int32(v));
        Vector256<float> hi = Avx.ConvertToVector256Single(Avx2.ConvertToVector256Int32(Sse2.ShiftRightLogical128BitLane(v, 8)));
        Avx.Store(d, Avx.Add(Avx.Multiply(lo, s), b));
        Avx.Store(d + 8, Avx.Add(Avx.Multiply(hi, s), b));
    }

    // The pshufb control that moves channel `channel` of the 16 interleaved pixels out of source vector `part` (bytes
    // [16 * part, 16 * part + 16) of the 48) into its place; 0x80 zeroes the other lanes, so OR-ing the three gives all 16.
    private static Vector128<byte> Mask(int channel, int part)
    {
        Span<byte> m = stackalloc byte[16];
        for (int j = 0; j < 16; j++)
        {
            int g = 3 * j + channel;
            m[j] = g / 16 == part ? (byte)(g % 16) : (byte)0x80;
        }
        return Vector128.Create((ReadOnlySpan<byte>)m);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static float ToFloat<TIn>(TIn v) where TIn : unmanaged =>
        typeof(TIn) == typeof(byte) ? Unsafe.As<TIn, byte>(ref v) : Unsafe.As<TIn, float>(ref v);
}
