using System.Numerics;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;

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
    public static void ToFloat32(Batch batch, Span<float> destination, ReadOnlySpan<float> scale, ReadOnlySpan<float> bias, bool channelsFirst)
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
                if (chw && channels > 1) Transpose<byte>(batch.XBytes, dst, shape[0], shape[1] * shape[2], channels, scale, bias);
                else if (uniform) Affine(batch.XBytes, dst, scale[0], bias[0]);
                else Cycle<byte>(batch.XBytes, dst, channels, scale, bias);
                break;
            case DType.Float32:
                ReadOnlySpan<float> src = batch.X<float>();
                if (chw && channels > 1) Transpose(src, dst, shape[0], shape[1] * shape[2], channels, scale, bias);
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

    // (N, P, C) -> (N, C, P) with the affine map; P = H * W. Reads each example once, writes each plane sequentially.
    [SkipLocalsInit]
    private static unsafe void Transpose<TIn>(ReadOnlySpan<TIn> src, Span<float> dst, int n, int pixels, int channels, ReadOnlySpan<float> scale, ReadOnlySpan<float> bias)
        where TIn : unmanaged
    {
        fixed (TIn* s0 = src)
        fixed (float* d0 = dst)
        {
            for (int e = 0; e < n; e++)
            {
                TIn* s = s0 + (long)e * pixels * channels;
                float* d = d0 + (long)e * pixels * channels;
                if (channels == 3 && typeof(TIn) == typeof(byte))
                {
                    byte* sb = (byte*)s;
                    float s0c = scale[0], s1c = scale[1], s2c = scale[2], b0 = bias[0], b1 = bias[1], b2 = bias[2];
                    float* p0 = d, p1 = d + pixels, p2 = d + 2 * pixels;
                    for (int p = 0; p < pixels; p++, sb += 3)
                    {
                        p0[p] = sb[0] * s0c + b0;
                        p1[p] = sb[1] * s1c + b1;
                        p2[p] = sb[2] * s2c + b2;
                    }
                    continue;
                }
                for (int c = 0; c < channels; c++)
                {
                    float sc = scale[c], bc = bias[c];
                    float* plane = d + (long)c * pixels;
                    TIn* col = s + c;
                    for (int p = 0; p < pixels; p++, col += channels)
                        plane[p] = ToFloat(*col) * sc + bc;
                }
            }
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static float ToFloat<TIn>(TIn v) where TIn : unmanaged =>
        typeof(TIn) == typeof(byte) ? Unsafe.As<TIn, byte>(ref v) : Unsafe.As<TIn, float>(ref v);
}
