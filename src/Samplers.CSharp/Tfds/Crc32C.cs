using System.IO.Hashing;

namespace Samplers.Tfds;

/// <summary>
/// CRC-32C (Castagnoli) and TFRecord's CRC masking.
/// </summary>
/// <remarks>
/// CRC-32C: reflected polynomial 0x82F63B78, initial value and final XOR 0xFFFFFFFF; check value of ASCII
/// "123456789" is 0xE3069283 (TFDS_FORMAT.md 6.2). The hashing is System.IO.Hashing's
/// <c>Crc32ParameterSet.Crc32C</c>, which uses the CPU's CRC32C instructions where present. Note that plain
/// <c>Crc32.Hash</c> is CRC-32/IEEE, a different polynomial. TensorFlow stores a masked CRC
/// (<c>rotr(crc, 15) + 0xA282EAD8</c>) because a CRC over data that itself holds CRCs is weak.
/// </remarks>
internal static class Crc32C
{
    private const uint MaskDelta = 0xA282EAD8u;

    /// <summary>The CRC-32C of <paramref name="data"/>.</summary>
    public static uint Compute(ReadOnlySpan<byte> data) => Crc32.HashToUInt32(Crc32ParameterSet.Crc32C, data);

    /// <summary>Masks a CRC as TFRecord stores it: rotate right by 15, add 0xA282EAD8.</summary>
    public static uint Mask(uint crc) => ((crc >> 15) | (crc << 17)) + MaskDelta;

    /// <summary>Inverts <see cref="Mask(uint)"/>.</summary>
    public static uint Unmask(uint masked)
    {
        uint r = masked - MaskDelta;
        return (r >> 17) | (r << 15);
    }

    /// <summary>The masked CRC-32C of <paramref name="data"/>, as stored in a TFRecord.</summary>
    public static uint ComputeMasked(ReadOnlySpan<byte> data) => Mask(Compute(data));
}
