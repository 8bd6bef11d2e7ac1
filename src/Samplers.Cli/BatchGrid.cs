using Samplers.Imaging;

namespace Samplers.Cli;

/// <summary>Where one image of a <see cref="BatchGrid"/> sits in the PNG.</summary>
/// <param name="GridRow">The grid row (one per class, in order of first appearance in the batch).</param>
/// <param name="BatchRow">The row of the source batch.</param>
/// <param name="SourceIndex">The example's index in the source table (<see cref="Batch.Indices"/>).</param>
/// <param name="View">-1 for the example itself, else the augmented view number.</param>
/// <param name="X">Left edge of the image, in pixels.</param>
/// <param name="Y">Top edge of the image, in pixels.</param>
/// <param name="Width">Image width.</param>
/// <param name="Height">Image height.</param>
internal sealed record GridCell(int GridRow, int BatchRow, int SourceIndex, int View, int X, int Y, int Width, int Height);

/// <summary>The caption of one example of a <see cref="BatchGrid"/>: "class name #source index", whole, on one line or (when
/// that is wider than the images) two: the name, then "#index". The cell is widened to the longest line, so the text is
/// never cut.</summary>
/// <param name="GridRow">The grid row.</param>
/// <param name="BatchRow">The row of the source batch.</param>
/// <param name="Text">The caption ("zero #1234").</param>
/// <param name="Lines">The caption as drawn, line by line (joined by a space they give <paramref name="Text"/>).</param>
/// <param name="X">Left edge of the text, in pixels.</param>
/// <param name="Y">Top edge of the first line; line i starts at <c>Y + i * LineHeight</c>.</param>
/// <param name="Width">Width of the longest line, in pixels (6 per character, less the last character's spacing).</param>
/// <param name="Height">Height of the text, in pixels.</param>
/// <param name="LineHeight">Distance between the tops of two lines, in pixels.</param>
internal sealed record GridLabel(int GridRow, int BatchRow, string Text, IReadOnlyList<string> Lines, int X, int Y, int Width, int Height, int LineHeight);

/// <summary>A rendered grid: the PNG bytes, its size and where every image went.</summary>
/// <param name="Png">The PNG file.</param>
/// <param name="Width">Width in pixels.</param>
/// <param name="Height">Height in pixels.</param>
/// <param name="Cells">Every image drawn.</param>
internal sealed record BatchGridImage(byte[] Png, int Width, int Height, IReadOnlyList<GridCell> Cells)
{
    /// <summary>Every caption drawn (one per example), with its text and where it is.</summary>
    public IReadOnlyList<GridLabel> Labels { get; init; } = [];
}

/// <summary>
/// Renders a batch as a PNG grid (TensorFlow Similarity's <c>visualize_views</c>, for looking before training): one row
/// per class, one cell per example, the example followed by its augmented views side by side, each cell labelled
/// "class name #source index". Pixels are copied unscaled: uint8 levels as they are, float32 levels as
/// <c>round(x * 255)</c> when every level is at most 1.5 (e.g. an augmenter's [0, 1] output), else as
/// <c>round(x)</c> (e.g. a resize's 0-255 float output), clamped to [0, 255]; 1-channel images are drawn grey and a 4th
/// channel is ignored.
/// </summary>
internal static class BatchGrid
{
    private const int Margin = 6, Gap = 3, LabelTop = 4, LabelBottom = 5, LineHeight = TinyFont.GlyphHeight + 2;

    /// <summary>The widest or tallest grid drawn, in pixels.</summary>
    public const int MaxSide = 16384;
    /// <summary>The most pixels a grid holds (8192 x 8192; 256 MiB of RGBA before PNG encoding).</summary>
    public const long MaxPixels = 1L << 26;

    /// <summary>The least size of a grid of <paramref name="classes"/> rows of <paramref name="examples"/> cells, each an
    /// image of at least one pixel followed by <paramref name="views"/> views of <paramref name="viewSide"/> pixels: what
    /// the options alone decide, so a grid too large is refused before loading.</summary>
    public static (long Width, long Height) LeastSize(int classes, int examples, int views, int viewSide) =>
        (Margin + (long)examples * (1 + (long)views * (Gap + viewSide) + Margin),
         Margin + (long)classes * (LabelTop + LineHeight - 2 + LabelBottom + Math.Max(1L, views > 0 ? viewSide : 1) + Margin));

    /// <summary>True when a grid of this size is within <see cref="MaxSide"/> and <see cref="MaxPixels"/>.</summary>
    public static bool Fits(long width, long height) => width <= MaxSide && height <= MaxSide && width * height <= MaxPixels;

    /// <summary>Renders <paramref name="batch"/> (and, when given, <paramref name="views"/>: an augmenter's output for it,
    /// grouped view by view, i.e. <c>views.Count = k * batch.Count</c>).</summary>
    /// <param name="batch">Images [N, H, W] or [N, H, W, C] (C = 1, 3 or 4), uint8 or float32.</param>
    /// <param name="classNames">Names by class ordinal (<see cref="MultiShotMemorySampler.ClassNames"/>); null or short: the label is shown.</param>
    /// <param name="views">The augmented views, or default for none.</param>
    /// <exception cref="ArgumentException">A batch is not an image batch, or the views do not match the batch.</exception>
    public static BatchGridImage Render(Batch batch, IReadOnlyList<string>? classNames = null, Batch views = default)
    {
        var (h, w, c) = Hwc(batch, nameof(batch));
        int n = batch.Count;
        int k = 0, vh = 0, vw = 0, vc = 0;
        bool hasViews = !views.IsDisposed;
        if (hasViews)
        {
            (vh, vw, vc) = Hwc(views, nameof(views));
            if (n == 0 || views.Count % n != 0)
                throw new ArgumentException($"views holds {views.Count} rows, which is not a whole number of views of the batch's {n} rows.", nameof(views));
            k = views.Count / n;
            for (int v = 0; v < k; v++)
                for (int r = 0; r < n; r++)
                    if (views.Indices[v * n + r] != batch.Indices[r])
                        throw new ArgumentException($"views row {v * n + r} comes from example {views.Indices[v * n + r]}, but batch row {r} is example {batch.Indices[r]}; pass the augmenter's output for this batch.", nameof(views));
        }
        // Group rows by class (ordinal when known, else label), in order of first appearance.
        var groups = new List<(long Key, List<int> Rows)>();
        for (int r = 0; r < n; r++)
        {
            long key = batch.ClassOrdinals[r] >= 0 ? batch.ClassOrdinals[r] : batch.Y[r];
            int g = groups.FindIndex(x => x.Key == key);
            if (g < 0) { groups.Add((key, [])); g = groups.Count - 1; }
            groups[g].Rows.Add(r);
        }
        // Captions: "name #index" on one line when every caption fits above the images, else the name and "#index" on two
        // lines; the cells widen to the longest line, so no caption is cut (a 28 px digit is narrower than "eight #8429").
        var captions = new string[n];
        for (int r = 0; r < n; r++)
        {
            int ord = batch.ClassOrdinals[r];
            string name = classNames is not null && ord >= 0 && ord < classNames.Count ? classNames[ord] : batch.Y[r].ToString(System.Globalization.CultureInfo.InvariantCulture);
            captions[r] = $"{name} #{batch.Indices[r]}";
        }
        int imagesW = w + k * (Gap + vw);
        bool oneLine = captions.All(t => 1 + TinyFont.Width(t) <= imagesW);
        string[][] lines = captions.Select(t => oneLine ? [t] : SplitCaption(t)).ToArray();
        int lineCount = oneLine ? 1 : 2;
        int textW = lines.Length == 0 ? 0 : 1 + lines.Max(l => l.Max(TinyFont.Width));
        int band = LabelTop + lineCount * LineHeight - 2 + LabelBottom;
        int cellW = Math.Max(imagesW, textW), cellH = band + Math.Max(h, vh);
        int cols = groups.Count == 0 ? 0 : groups.Max(x => x.Rows.Count);
        // Long: a batch of many examples with many views overflows int; a grid past the bound is the options' doing.
        long longWidth = Math.Max(1, Margin + cols * ((long)cellW + Margin)), longHeight = Math.Max(1, Margin + groups.Count * ((long)cellH + Margin));
        if (!Fits(longWidth, longHeight))
            throw new UsageException(
                $"the grid would be {longWidth}x{longHeight} px, over the limit of {MaxSide} px a side and {MaxPixels} px in all; " +
                "lower --examples-per-class or --classes-per-batch, --views or --view-size, or shrink the images with --resize.");
        int width = (int)longWidth, height = (int)longHeight;
        var cells = new List<GridCell>();
        var px = new byte[width * height * 4];
        for (int i = 0; i < px.Length; i += 4) { px[i] = 40; px[i + 1] = 40; px[i + 2] = 40; px[i + 3] = 255; }
        float[]? vf = hasViews && views.DType == DType.Float32 ? views.ToArray<float>() : null;
        bool viewsUnit = vf is null || vf.All(x => x <= 1.5f);
        float[]? bf = batch.DType == DType.Float32 ? batch.ToArray<float>() : null;
        bool batchUnit = bf is null || bf.All(x => x <= 1.5f);
        var labels = new List<GridLabel>();
        for (int g = 0; g < groups.Count; g++)
        {
            for (int j = 0; j < groups[g].Rows.Count; j++)
            {
                int r = groups[g].Rows[j];
                int x0 = Margin + j * (cellW + Margin), y0 = Margin + g * (cellH + Margin);
                Blit(px, width, batch, bf, batchUnit, r, h, w, c, x0, y0 + band);
                cells.Add(new GridCell(g, r, batch.Indices[r], -1, x0, y0 + band, w, h));
                for (int v = 0; v < k; v++)
                {
                    int xv = x0 + w + Gap + v * (vw + Gap);
                    Blit(px, width, views, vf, viewsUnit, v * n + r, vh, vw, vc, xv, y0 + band);
                    cells.Add(new GridCell(g, r, batch.Indices[r], v, xv, y0 + band, vw, vh));
                }
                labels.Add(new GridLabel(g, r, captions[r], lines[r], x0 + 1, y0 + LabelTop, lines[r].Max(TinyFont.Width), lines[r].Length * LineHeight - 2, LineHeight));
            }
        }
        foreach (var label in labels)
            for (int i = 0; i < label.Lines.Count; i++)
                TinyFont.Draw(px, width, height, label.Lines[i], label.X, label.Y + i * LineHeight, cellW - 1, 230, 230, 230);
        // Opaque: written as 8-bit RGB by the managed encoder (the alpha byte of every pixel is dropped).
        var rgb = new byte[width * height * 3];
        for (int p = 0, s = 0; s < px.Length; p += 3, s += 4) { rgb[p] = px[s]; rgb[p + 1] = px[s + 1]; rgb[p + 2] = px[s + 2]; }
        return new BatchGridImage(PngEncoder.Encode(rgb, width, height, PngColorType.Rgb), width, height, cells) { Labels = labels };
    }

    /// <summary>"name #index" as two lines: the name, then "#index".</summary>
    private static string[] SplitCaption(string caption)
    {
        int at = caption.LastIndexOf(" #", StringComparison.Ordinal);
        return at < 0 ? [caption] : [caption[..at], caption[(at + 1)..]];
    }

    /// <summary>Renders <paramref name="batch"/> with <paramref name="views"/> views of it made by <paramref name="augmenter"/>
    /// (on a copy: <paramref name="batch"/> stays the caller's and unchanged).</summary>
    /// <exception cref="ArgumentNullException"><paramref name="augmenter"/> is null.</exception>
    /// <exception cref="ArgumentException">As <see cref="Render(Batch, IReadOnlyList{string}?, Batch)"/>, or the augmenter's output does not keep the rows.</exception>
    public static BatchGridImage RenderWithViews(Batch batch, IAugmenter augmenter, int views, IReadOnlyList<string>? classNames = null, bool isWarmup = false)
    {
        ArgumentNullException.ThrowIfNull(augmenter);
        using Batch augmented = augmenter.Augment(Copy(batch), views, isWarmup);
        return Render(batch, classNames, augmented);
    }

    /// <summary>A pooled copy of a batch, plan fields included (the augmenter keys its draws by them).</summary>
    internal static Batch Copy(Batch batch)
    {
        Batch copy = BatchPool.Shared.Rent(batch.DType, batch.ExampleShape, batch.Count);
        batch.XBytes.CopyTo(copy.XBytes);
        batch.Y.CopyTo(copy.Y);
        batch.Indices.CopyTo(copy.Indices);
        batch.ClassOrdinals.CopyTo(copy.ClassOrdinals);
        BatchStorage s = batch.Storage, d = copy.Storage;
        d.Key = s.Key; d.GlobalBatchId = s.GlobalBatchId; d.PlanVersion = s.PlanVersion; d.IsWarmup = s.IsWarmup;
        return copy;
    }

    /// <summary>Writes a grid's PNG to <paramref name="path"/> by the output rule (<see cref="OutputTarget"/>): a
    /// temporary file and a rename beside the file (beside a symlink's target; the link stays), a FIFO or character
    /// device written directly and never replaced.</summary>
    /// <exception cref="ArgumentException"><paramref name="path"/> is empty, or names a directory, a block device or a socket.</exception>
    public static void WritePng(string path, BatchGridImage img)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        ArgumentNullException.ThrowIfNull(img);
        var (target, direct) = OutputTarget.Resolve(path);
        OutputTarget.Write(target, direct, s => s.Write(img.Png));
    }

    private static (int H, int W, int C) Hwc(Batch b, string name)
    {
        if (b.DType != DType.UInt8 && b.DType != DType.Float32)
            throw new ArgumentException($"{name} must hold uint8 or float32 images, but holds {DTypes.Name(b.DType)}.", name);
        ReadOnlySpan<int> s = b.ExampleShape;
        if (s.Length == 2) return (s[0], s[1], 1);
        if (s.Length == 3 && s[2] is 1 or 3 or 4) return (s[0], s[1], s[2]);
        throw new ArgumentException($"{name} must hold [H, W] or [H, W, C] images with C = 1, 3 or 4, but its example shape is [{string.Join(", ", s.ToArray())}].", name);
    }

    /// <summary>The 0-255 level a grid shows for a float level (see the class remarks).</summary>
    public static byte Level(float x, bool unitRange)
    {
        float v = unitRange ? x * 255f : x;
        v = MathF.Round(v, MidpointRounding.ToEven);
        return v >= 255f ? (byte)255 : v > 0f ? (byte)v : (byte)0;
    }

    private static void Blit(byte[] px, int stride, Batch b, float[]? f, bool unit, int row, int h, int w, int c, int x0, int y0)
    {
        int per = h * w * c;
        ReadOnlySpan<byte> u = b.DType == DType.UInt8 ? b.XBytes.Slice(row * per, per) : default;
        for (int y = 0; y < h; y++)
            for (int x = 0; x < w; x++)
            {
                int o = ((y0 + y) * stride + x0 + x) * 4;
                for (int k = 0; k < 3; k++)
                {
                    int s = (y * w + x) * c + (c >= 3 ? k : 0);
                    px[o + k] = f is null ? u[s] : Level(f[row * per + s], unit);
                }
            }
    }
}
