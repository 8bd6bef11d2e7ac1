using System.Text.Json.Nodes;
using SkiaSharp;
using static TorchSharp.torch;

namespace MetricLearning;

/// <summary>The two PNG figures of <c>--out</c>, drawn with SkiaSharp (already a dependency of the library).</summary>
internal static class Figures
{
    // SkiaSharp's NoDependencies build has no fontconfig, so its default typeface draws nothing on Linux: load a font file
    // from the usual places (any one will do), else fall back to the default.
    private static readonly SKTypeface Face = new[]
    {
        "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf", "/usr/share/fonts/TTF/DejaVuSans.ttf", "/usr/share/fonts/dejavu/DejaVuSans.ttf",
        "/usr/share/fonts/truetype/liberation/LiberationSans-Regular.ttf", "/usr/share/fonts/liberation-sans/LiberationSans-Regular.ttf",
        "/System/Library/Fonts/Supplemental/Arial.ttf", "/Library/Fonts/Arial.ttf",
        Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.Fonts), "arial.ttf"),
    }.Where(File.Exists).Select(SKTypeface.FromFile).FirstOrDefault(t => t is not null) ?? SKTypeface.Default;

    private static readonly SKColor Loss = new(0x1f, 0x77, 0xb4), Seen = new(0x2c, 0xa0, 0x2c), Unseen = new(0xd6, 0x27, 0x28), Grey = new(0x88, 0x88, 0x88);

    /// <summary>Loss per epoch (left) and recall@1 per epoch (right) with the raw-pixel and untrained baselines as dashed lines.</summary>
    internal static byte[] TrainingCurves(IReadOnlyList<JsonObject> history, Scores raw, Scores untrained, string dataset)
    {
        const int w = 960, h = 410;
        using var surface = SKSurface.Create(new SKImageInfo(w, h));
        SKCanvas c = surface.Canvas;
        c.Clear(SKColors.White);
        using var title = new SKFont(Face, 16);
        using var small = new SKFont(Face, 12);
        using var ink = new SKPaint { Color = SKColors.Black, IsAntialias = true };
        c.DrawText($"{dataset}: multi-similarity training", 20, 24, SKTextAlign.Left, title, ink);

        double[] epochs = history.Select(e => (double)e["epoch"]!.GetValue<int>()).ToArray();
        double[] loss = history.Select(e => e["loss"]!.GetValue<double>()).ToArray();
        double[] seen = history.Select(e => e["recall_at_1_seen_heldout"]!.GetValue<double>()).ToArray();
        double[] unseen = history.Select(e => e["recall_at_1_unseen"]!.GetValue<double>()).ToArray();

        var left = new SKRect(60, 50, 450, 330);
        double lmax = loss.Length == 0 ? 1 : loss.Max() * 1.1, lmin = loss.Length == 0 ? 0 : Math.Min(0, loss.Min());
        Axes(c, left, "epoch", "loss (epoch mean)", 1, Math.Max(1, epochs.Length), lmin, lmax, small);
        Line(c, left, epochs, loss, 1, Math.Max(1, epochs.Length), lmin, lmax, Loss, dashed: false);

        var right = new SKRect(540, 50, 930, 330);
        double all = new[] { raw.SeenR1, raw.UnseenR1, untrained.SeenR1, untrained.UnseenR1 }.Concat(seen).Concat(unseen).Min();
        double rmin = Math.Max(0, Math.Floor((all - 0.05) * 10) / 10), rmax = 1.0;
        Axes(c, right, "epoch", "recall@1", 1, Math.Max(1, epochs.Length), rmin, rmax, small);
        Line(c, right, epochs, seen, 1, Math.Max(1, epochs.Length), rmin, rmax, Seen, dashed: false);
        Line(c, right, epochs, unseen, 1, Math.Max(1, epochs.Length), rmin, rmax, Unseen, dashed: false);
        double[] ends = [1, Math.Max(1, epochs.Length)];
        Line(c, right, ends, [raw.SeenR1, raw.SeenR1], 1, ends[1], rmin, rmax, Seen, dashed: true);
        Line(c, right, ends, [raw.UnseenR1, raw.UnseenR1], 1, ends[1], rmin, rmax, Unseen, dashed: true);
        Line(c, right, ends, [untrained.UnseenR1, untrained.UnseenR1], 1, ends[1], rmin, rmax, Grey, dashed: true);
        Legend(c, 560, 372, small, [(Seen, false, "seen, held out"), (Unseen, false, "unseen classes"), (Seen, true, "raw pixels (seen)"), (Unseen, true, "raw pixels (unseen)"), (Grey, true, "untrained (unseen)")]);
        return Png(surface);
    }

    /// <summary>Query images (left column) and their nearest neighbours by the trained embedding, within their group;
    /// a green frame marks a neighbour of the query's class, red another class (the reference's viz_neigbors_imgs).</summary>
    internal static byte[] NeighbourGrid(Groups g, Func<Tensor, Tensor> embed, int queries, int k, int seed)
    {
        int half = queries / 2;
        var rows = new List<(Tensor X, Tensor Y, long[] Neighbours, long Query, string Group)>();
        using (no_grad())
        {
            foreach ((Tensor x, Tensor y, string name, int n) in new[] { (g.SeenX, g.SeenY, "seen", half), (g.UnseenX, g.UnseenY, "unseen", queries - half) })
            {
                Tensor e = Groups.EmbedAll(embed, x);
                var rng = new Random(seed);
                long[] q = Enumerable.Range(0, n).Select(_ => rng.NextInt64(x.shape[0])).ToArray();
                long[][] nn = Groups.Neighbours(e, q, k);
                for (int i = 0; i < n; i++) rows.Add((x, y, nn[i], q[i], name));
            }
        }
        long ch = g.SeenX.shape[1], ih = g.SeenX.shape[2], iw = g.SeenX.shape[3];
        int scale = (int)Math.Max(1, 84 / Math.Max(ih, iw));
        int cell = (int)Math.Max(ih, iw) * scale + 8;
        int w = 90 + (k + 1) * cell + 16, hgt = 40 + rows.Count * cell + 8;
        using var surface = SKSurface.Create(new SKImageInfo(w, hgt));
        SKCanvas c = surface.Canvas;
        c.Clear(SKColors.White);
        using var font = new SKFont(Face, 12);
        using var ink = new SKPaint { Color = SKColors.Black, IsAntialias = true };
        c.DrawText("query", 90, 24, SKTextAlign.Left, font, ink);
        c.DrawText($"{k} nearest neighbours (cosine, trained embedding)", 90 + cell + 4, 24, SKTextAlign.Left, font, ink);
        for (int r = 0; r < rows.Count; r++)
        {
            var (x, y, nn, query, group) = rows[r];
            float top = 40 + r * cell;
            long label = y[query].item<long>();
            c.DrawText($"{group} {label}", 8, top + cell / 2f, SKTextAlign.Left, font, ink);
            DrawImage(c, x[query], 90, top, scale, ch, ih, iw, SKColors.Black);
            for (int j = 0; j < nn.Length; j++)
            {
                bool same = y[nn[j]].item<long>() == label;
                DrawImage(c, x[nn[j]], 90 + (j + 1) * cell + 4, top, scale, ch, ih, iw, same ? Seen : Unseen);
            }
        }
        return Png(surface);
    }

    private static void DrawImage(SKCanvas c, Tensor image, float x, float y, int scale, long ch, long ih, long iw, SKColor frame)
    {
        float[] px = image.contiguous().data<float>().ToArray();
        using var paint = new SKPaint();
        for (int yy = 0; yy < ih; yy++)
        {
            for (int xx = 0; xx < iw; xx++)
            {
                byte At(long cc) => (byte)Math.Clamp(px[(cc * ih + yy) * iw + xx] * 255f, 0f, 255f);
                paint.Color = ch >= 3 ? new SKColor(At(0), At(1), At(2)) : new SKColor(At(0), At(0), At(0));
                c.DrawRect(x + 3 + xx * scale, y + 3 + yy * scale, scale, scale, paint);
            }
        }
        using var border = new SKPaint { Color = frame, Style = SKPaintStyle.Stroke, StrokeWidth = 3 };
        c.DrawRect(x + 1.5f, y + 1.5f, iw * scale + 3, ih * scale + 3, border);
    }

    private static void Axes(SKCanvas c, SKRect r, string xLabel, string yLabel, double x0, double x1, double y0, double y1, SKFont font)
    {
        using var axis = new SKPaint { Color = SKColors.Black, StrokeWidth = 1, IsAntialias = true };
        using var grid = new SKPaint { Color = new SKColor(0xe0, 0xe0, 0xe0), StrokeWidth = 1 };
        using var ink = new SKPaint { Color = SKColors.Black, IsAntialias = true };
        for (int i = 0; i <= 4; i++)
        {
            double v = y0 + (y1 - y0) * i / 4;
            float yy = r.Bottom - (float)((v - y0) / (y1 - y0)) * r.Height;
            c.DrawLine(r.Left, yy, r.Right, yy, grid);
            c.DrawText(v.ToString("0.###", System.Globalization.CultureInfo.InvariantCulture), r.Left - 45, yy + 4, SKTextAlign.Left, font, ink);
        }
        int n = (int)Math.Round(x1 - x0);
        for (int i = 0; i <= n; i++)
        {
            float xx = r.Left + (n == 0 ? 0 : (float)i / n * r.Width);
            c.DrawText((x0 + i).ToString(System.Globalization.CultureInfo.InvariantCulture), xx - 3, r.Bottom + 16, SKTextAlign.Left, font, ink);
        }
        c.DrawLine(r.Left, r.Bottom, r.Right, r.Bottom, axis);
        c.DrawLine(r.Left, r.Top, r.Left, r.Bottom, axis);
        c.DrawText(xLabel, r.MidX - 15, r.Bottom + 34, SKTextAlign.Left, font, ink);
        c.DrawText(yLabel, r.Left, r.Top - 8, SKTextAlign.Left, font, ink);
    }

    private static void Line(SKCanvas c, SKRect r, double[] xs, double[] ys, double x0, double x1, double y0, double y1, SKColor color, bool dashed)
    {
        if (xs.Length == 0) return;
        using var paint = new SKPaint { Color = color, StrokeWidth = 2, IsAntialias = true, Style = SKPaintStyle.Stroke };
        if (dashed) paint.PathEffect = SKPathEffect.CreateDash([6, 4], 0);
        SKPoint P(int i) => new(r.Left + (x1 == x0 ? 0 : (float)((xs[i] - x0) / (x1 - x0))) * r.Width, r.Bottom - (float)((ys[i] - y0) / (y1 - y0)) * r.Height);
        for (int i = 1; i < xs.Length; i++) c.DrawLine(P(i - 1), P(i), paint);
        if (!dashed)
        {
            using var dot = new SKPaint { Color = color, IsAntialias = true };
            for (int i = 0; i < xs.Length; i++) c.DrawCircle(P(i), 3, dot);
        }
    }

    private static void Legend(SKCanvas c, float x, float y, SKFont font, (SKColor Color, bool Dashed, string Text)[] items)
    {
        using var ink = new SKPaint { Color = SKColors.Black, IsAntialias = true };
        float at = x - 520;
        foreach (var (color, dashed, text) in items)
        {
            using var paint = new SKPaint { Color = color, StrokeWidth = 2, Style = SKPaintStyle.Stroke };
            if (dashed) paint.PathEffect = SKPathEffect.CreateDash([6, 4], 0);
            c.DrawLine(at, y + 12, at + 24, y + 12, paint);
            c.DrawText(text, at + 28, y + 16, SKTextAlign.Left, font, ink);
            at += 36 + font.MeasureText(text);
        }
    }

    private static byte[] Png(SKSurface surface)
    {
        using SKImage image = surface.Snapshot();
        using SKData data = image.Encode(SKEncodedImageFormat.Png, 100);
        return data.ToArray();
    }
}
