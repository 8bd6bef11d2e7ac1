using System.Buffers.Binary;

namespace Samplers.Imaging;

/// <summary>
/// The JPEG marker walk behind the "data too short for the claimed size" check: a baseline or extended Huffman
/// JPEG spends at least one bit per 8x8 block of every scan (each block's DC difference has a code of one bit or
/// more), and its least-sampled component has at least one block per 32x32 pixels (sampling factors are at most 4).
/// So the entropy-coded data after the first SOS marker must be at least ceil(W/32) x ceil(H/32) bits long. Progressive
/// and arithmetic-coded JPEGs can code whole runs of blocks in a few bits, so only the pixel budget applies to them.
/// </summary>
internal static class JpegHeader
{
    /// <summary>The frame type from the SOF marker: Huffman sequential (SOF0/1), progressive, arithmetic, or unknown.</summary>
    internal enum Coding { Unknown, HuffmanSequential, Other }

    /// <summary>Finds the SOF marker's coding and the offset where the first scan's entropy-coded data starts
    /// (-1 when the walk does not reach an SOS marker).</summary>
    internal static (Coding Coding, long ScanStart) Walk(ReadOnlySpan<byte> jpeg)
    {
        Coding coding = Coding.Unknown;
        int pos = 2; // after SOI
        while (pos + 4 <= jpeg.Length)
        {
            if (jpeg[pos] != 0xFF) return (coding, -1);
            byte marker = jpeg[pos + 1];
            if (marker == 0xFF) { pos++; continue; } // fill byte
            if (marker is 0x01 or (>= 0xD0 and <= 0xD7)) { pos += 2; continue; } // markers without a length
            if (marker == 0xD9) return (coding, -1); // EOI before any scan
            int len = BinaryPrimitives.ReadUInt16BigEndian(jpeg[(pos + 2)..]);
            if (len < 2) return (coding, -1);
            if (marker is >= 0xC0 and <= 0xCF && marker is not (0xC4 or 0xC8 or 0xCC))
                coding = marker is 0xC0 or 0xC1 ? Coding.HuffmanSequential : Coding.Other;
            if (marker == 0xDA) return (coding, pos + 2L + len);
            pos += 2 + len;
        }
        return (coding, -1);
    }

    /// <summary>Refuses a Huffman-sequential JPEG whose scan data is too short for <paramref name="info"/>'s size.</summary>
    /// <exception cref="DataFormatException">The data cannot hold the claimed pixels.</exception>
    internal static void CheckDataLength(ReadOnlySpan<byte> jpeg, ImageInfo info, string? source)
    {
        var (coding, scanStart) = Walk(jpeg);
        if (coding != Coding.HuffmanSequential || scanStart < 0) return;
        long minBits = ((info.Width + 31L) / 32) * ((info.Height + 31L) / 32);
        long haveBits = Math.Max(0, jpeg.Length - scanStart) * 8;
        if (haveBits < minBits)
            throw new DataFormatException(
                $"{ImageDecoder.Where(source)}JPEG claims {info.Width}x{info.Height} pixels but its scan data is {Math.Max(0, jpeg.Length - scanStart)} bytes, " +
                $"less than the {(minBits + 7) / 8} bytes any Huffman-coded image of that size needs (one bit per 8x8 block at least); " +
                "the file is truncated or forged. Re-download or regenerate it.", source);
    }
}
