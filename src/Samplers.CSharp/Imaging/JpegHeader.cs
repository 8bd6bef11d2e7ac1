using System.Buffers.Binary;

namespace Samplers.Imaging;

/// <summary>
/// The JPEG marker walk behind two header-time refusals (docs/ROBUSTNESS.md, "Budgets and limits").
/// <para>Data too short for the claimed size: a Huffman-coded JPEG, sequential (SOF0/1) or progressive (SOF2), spends at
/// least one bit per 8x8 block of every component it codes a DC coefficient for. Sequential scans code each block's DC
/// difference with a Huffman code of one bit or more; a progressive file must send every component's DC in a DC first
/// scan (ITU-T T.81 G.1.1.1.1: a component's AC scans may not precede its DC first scan), and that scan too codes each
/// block's DC difference with a Huffman code of one bit or more, one block at a time: unlike AC scans it has no
/// end-of-band runs, so a run of blocks cannot share a code. The least-sampled component has at least one block per
/// 32x32 pixels (sampling factors are at most 4). So the entropy-coded data (for a progressive file, summed over all
/// its scans) must be at least ceil(W/32) x ceil(H/32) bits long. Arithmetic-coded JPEGs can code runs of blocks in
/// less than a bit each, so only the pixel budget applies to them.</para>
/// <para>Incomplete scan data: a progressive file's scans each refine the whole image, so a file cut anywhere before its
/// last scan ends still decodes "successfully" to wrong pixels (libjpeg fills in the scans it never saw). Its marker
/// walk must therefore reach the EOI marker after its last scan; a file whose bytes end before that is refused.
/// TensorFlow's decode_jpeg refuses the same files (libjpeg runs out of input before EOI). A truncated sequential file
/// is refused by the decoder itself (it runs out of data before the last row).</para>
/// </summary>
internal static class JpegHeader
{
    /// <summary>The frame type from the SOF marker: Huffman sequential (SOF0/1), Huffman progressive (SOF2), anything
    /// else (arithmetic, lossless, hierarchical), or unknown.</summary>
    internal enum Coding { Unknown, HuffmanSequential, HuffmanProgressive, Other }

    /// <summary>How a walk over the whole file ended.</summary>
    internal enum End
    {
        /// <summary>At the EOI marker.</summary>
        Eoi,
        /// <summary>The bytes ran out first: the file is truncated.</summary>
        Truncated,
        /// <summary>A byte where a marker must be is not one (libjpeg skips such garbage with a warning); undecided.</summary>
        Lost,
    }

    /// <summary>Finds the SOF marker's coding and the offset where the first scan's entropy-coded data starts
    /// (-1 when the walk does not reach an SOS marker).</summary>
    internal static (Coding Coding, long ScanStart) Walk(ReadOnlySpan<byte> jpeg)
    {
        var (coding, scanStart, _, _) = WalkAll(jpeg, firstScanOnly: true);
        return (coding, scanStart);
    }

    /// <summary>Walks the markers of the whole file (or up to the first SOS with <paramref name="firstScanOnly"/>):
    /// the frame's coding, where the first scan's data starts (-1 when no SOS is reached), the entropy-coded bytes of
    /// all scans (RST markers and stuffed bytes included) and how the walk ended.</summary>
    internal static (Coding Coding, long ScanStart, long ScanBytes, End End) WalkAll(ReadOnlySpan<byte> jpeg, bool firstScanOnly = false)
    {
        Coding coding = Coding.Unknown;
        long scanStart = -1, scanBytes = 0;
        int pos = 2; // after SOI
        while (true)
        {
            if (pos + 2 > jpeg.Length) return (coding, scanStart, scanBytes, End.Truncated);
            if (jpeg[pos] != 0xFF) return (coding, scanStart, scanBytes, End.Lost);
            byte marker = jpeg[pos + 1];
            if (marker == 0xFF) { pos++; continue; } // fill byte
            if (marker is 0x01 or (>= 0xD0 and <= 0xD7)) { pos += 2; continue; } // markers without a length
            if (marker == 0xD9) return (coding, scanStart, scanBytes, End.Eoi);
            if (pos + 4 > jpeg.Length) return (coding, scanStart, scanBytes, End.Truncated);
            int len = BinaryPrimitives.ReadUInt16BigEndian(jpeg[(pos + 2)..]);
            if (len < 2) return (coding, scanStart, scanBytes, End.Lost);
            if (marker is >= 0xC0 and <= 0xCF && marker is not (0xC4 or 0xC8 or 0xCC))
                coding = marker switch { 0xC0 or 0xC1 => Coding.HuffmanSequential, 0xC2 => Coding.HuffmanProgressive, _ => Coding.Other };
            pos += 2 + len;
            if (marker == 0xDA && scanStart < 0) scanStart = pos; // may lie past the end: then no scan data at all
            if (pos > jpeg.Length) return (coding, scanStart, scanBytes, End.Truncated);
            if (marker != 0xDA) continue;
            if (firstScanOnly) return (coding, scanStart, scanBytes, End.Lost);
            // Entropy-coded data: up to the next 0xFF that is neither a stuffed 0xFF00 nor a restart marker.
            int start = pos;
            while (true)
            {
                int ff = jpeg[pos..].IndexOf((byte)0xFF);
                if (ff < 0 || pos + ff + 1 >= jpeg.Length)
                {
                    scanBytes += jpeg.Length - start;
                    return (coding, scanStart, scanBytes, End.Truncated);
                }
                pos += ff;
                byte next = jpeg[pos + 1];
                if (next == 0x00 || next is >= 0xD0 and <= 0xD7) { pos += 2; continue; }
                if (next == 0xFF) { pos++; continue; } // fill bytes before a marker
                break;
            }
            scanBytes += pos - start;
        }
    }

    /// <summary>Refuses a Huffman-coded JPEG whose scan data is too short for <paramref name="info"/>'s size, and a
    /// progressive one whose bytes end before its EOI marker.</summary>
    /// <exception cref="DataFormatException">The data cannot hold the claimed pixels, or a progressive file is cut short.</exception>
    internal static void CheckDataLength(ReadOnlySpan<byte> jpeg, ImageInfo info, string? source)
    {
        var (coding, scanStart) = Walk(jpeg);
        if (coding == Coding.HuffmanProgressive)
        {
            CheckProgressive(jpeg, info, source);
            return;
        }
        if (coding != Coding.HuffmanSequential || scanStart < 0) return;
        long minBits = MinScanBits(info);
        long haveBits = Math.Max(0, jpeg.Length - scanStart) * 8;
        if (haveBits < minBits)
            throw TooShort(info, Math.Max(0, jpeg.Length - scanStart), minBits, "Huffman-coded", source);
    }

    private static void CheckProgressive(ReadOnlySpan<byte> jpeg, ImageInfo info, string? source)
    {
        var (_, _, scanBytes, end) = WalkAll(jpeg);
        if (end == End.Lost) return; // garbage between segments: left to the decoder
        // Checked first: a header-only file claiming a large size is named for its size, not only as truncated.
        long minBits = MinScanBits(info);
        if (scanBytes * 8 < minBits)
            throw TooShort(info, scanBytes, minBits, "progressive Huffman-coded", source);
        if (end == End.Truncated)
            throw new DataFormatException(
                $"{ImageDecoder.Where(source)}progressive JPEG ({info.Width}x{info.Height}) is truncated: its {jpeg.Length} bytes end before the EOI marker " +
                "that follows its last scan, so some scans are missing or incomplete and the pixels would be wrong. Re-download or regenerate it.", source);
    }

    /// <summary>One bit per 8x8 block of the least-sampled component: ceil(W/32) x ceil(H/32).</summary>
    private static long MinScanBits(ImageInfo info) => ((info.Width + 31L) / 32) * ((info.Height + 31L) / 32);

    private static DataFormatException TooShort(ImageInfo info, long haveBytes, long minBits, string kind, string? source) =>
        new($"{ImageDecoder.Where(source)}JPEG claims {info.Width}x{info.Height} pixels but its scan data is {haveBytes} bytes, " +
            $"less than the {(minBits + 7) / 8} bytes any {kind} image of that size needs (one bit per 8x8 block at least); " +
            "the file is truncated or forged. Re-download or regenerate it.", source);
}
