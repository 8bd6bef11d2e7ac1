using Samplers.Evaluation;
using SkiaSharp;
using TorchSharp;
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

    private static readonly SKColor Random = new(0xff, 0x7f, 0x0e);

    /// <summary>Loss per epoch (left) and recall@1 per epoch of the validation split and the primary evaluation (right),
    /// with the raw-pixel and untrained baselines of each evaluation set as dashed lines.</summary>
    internal static byte[] TrainingCurves(IReadOnlyList<EpochRecord> history, IReadOnlyList<EvalSet> evals,
        IReadOnlyDictionary<string, RetrievalReport> raw, IReadOnlyDictionary<string, RetrievalReport> untrained, string title)
    {
        const int w = 960, h = 410;
        using var surface = SKSurface.Create(new SKImageInfo(w, h));
        SKCanvas c = surface.Canvas;
        c.Clear(SKColors.White);
        using var big = new SKFont(Face, 16);
        using var small = new SKFont(Face, 12);
        using var ink = new SKPaint { Color = SKColors.Black, IsAntialias = true };
        c.DrawText(title, 20, 24, SKTextAlign.Left, big, ink);

        double[] epochs = history.Select(e => (double)e.Epoch).ToArray();
        double[] loss = history.Select(e => e.Loss).ToArray();
        double[] val = history.Select(e => e.ValidationRecallAt1).ToArray();
        double[] prim = history.Select(e => e.PrimaryRecallAt1).ToArray();
        double x1 = Math.Max(2, epochs.Length);

        var left = new SKRect(60, 50, 450, 330);
        double lmax = loss.Length == 0 ? 1 : loss.Max() * 1.1, lmin = loss.Length == 0 ? 0 : Math.Min(0, loss.Min());
        Axes(c, left, "epoch", "loss (epoch mean)", 1, x1, lmin, lmax, small);
        Line(c, left, epochs, loss, 1, x1, lmin, lmax, Loss, dashed: false);

        var right = new SKRect(540, 50, 930, 330);
        string primary = evals.Count > 1 ? evals[^1].Name : evals[0].Name;
        double rawP = raw[primary].Overall.RecallAt(1), untP = untrained[primary].Overall.RecallAt(1);
        double all = new[] { rawP, untP }.Concat(val).Concat(prim).DefaultIfEmpty(0).Min();
        double rmin = Math.Max(0, Math.Floor((all - 0.05) * 10) / 10), rmax = 1.0;
        Axes(c, right, "epoch", "recall@1", 1, x1, rmin, rmax, small);
        Line(c, right, epochs, val, 1, x1, rmin, rmax, Seen, dashed: false);
        Line(c, right, epochs, prim, 1, x1, rmin, rmax, Unseen, dashed: false);
        double[] ends = [1, x1];
        Line(c, right, ends, [rawP, rawP], 1, x1, rmin, rmax, Unseen, dashed: true);
        Line(c, right, ends, [untP, untP], 1, x1, rmin, rmax, Grey, dashed: true);
        Legend(c, 560, 372, small, [(Seen, false, "validation (training classes)"), (Unseen, false, primary), (Unseen, true, $"raw pixels ({primary})"), (Grey, true, $"untrained ({primary})")]);
        return Png(surface);
    }

    /// <summary>recall@1 of the primary evaluation over training steps, balanced against uniformly random batches
    /// (mean over seeds; a seed that stopped early contributes up to its last epoch), with the baselines dashed.</summary>
    internal static byte[] SamplerCurves(IReadOnlyList<SeedRun> runs, string primary, int stepsPerEpoch, string title)
    {
        const int w = 720, h = 430;
        using var surface = SKSurface.Create(new SKImageInfo(w, h));
        SKCanvas c = surface.Canvas;
        c.Clear(SKColors.White);
        using var big = new SKFont(Face, 16);
        using var small = new SKFont(Face, 12);
        using var ink = new SKPaint { Color = SKColors.Black, IsAntialias = true };
        c.DrawText(title, 20, 24, SKTextAlign.Left, big, ink);
        (double[] X, double[] Y) Mean(string method)
        {
            int epochs = runs.Max(r => r.Runs[method].History.Count);
            // Step 0 is the untrained network (both samplers start from the same weights).
            var xs = new List<double> { 0 };
            var ys = new List<double> { runs.Average(r => r.Scores["untrained"][primary].Overall.RecallAt(1)) };
            for (int e = 0; e < epochs; e++)
            {
                var at = runs.Where(r => r.Runs[method].History.Count > e).Select(r => r.Runs[method].History[e].PrimaryRecallAt1).ToArray();
                xs.Add((e + 1) * stepsPerEpoch);
                ys.Add(at.Average());
            }
            return (xs.ToArray(), ys.ToArray());
        }
        var bal = Mean("balanced_batches");
        var rnd = Mean("random_batches");
        double rawR = runs.Average(r => r.Scores["raw_pixels"][primary].Overall.RecallAt(1));
        double untR = runs.Average(r => r.Scores["untrained"][primary].Overall.RecallAt(1));
        double lo = bal.Y.Concat(rnd.Y).Append(rawR).Append(untR).Min();
        double rmin = Math.Max(0, Math.Floor((lo - 0.05) * 10) / 10);
        double x1 = Math.Max(bal.X.DefaultIfEmpty(1).Max(), rnd.X.DefaultIfEmpty(1).Max());
        var r0 = new SKRect(70, 50, 690, 350);
        Axes(c, r0, "step", "recall@1", 0, x1, rmin, 1.0, small, xTicks: 4);
        Line(c, r0, bal.X, bal.Y, 0, x1, rmin, 1.0, Seen, dashed: false);
        Line(c, r0, rnd.X, rnd.Y, 0, x1, rmin, 1.0, Random, dashed: false);
        Line(c, r0, [0, x1], [rawR, rawR], 0, x1, rmin, 1.0, Unseen, dashed: true);
        Line(c, r0, [0, x1], [untR, untR], 0, x1, rmin, 1.0, Grey, dashed: true);
        Legend(c, 560, 392, small, [(Seen, false, "class-balanced batches"), (Random, false, "uniformly random batches"), (Unseen, true, "raw pixels"), (Grey, true, "untrained")]);
        return Png(surface);
    }

    /// <summary>Long tail: recall@1 per class (mean over seeds) for both samplers, classes in label order (the head
    /// first), with each class's training examples written under it.</summary>
    internal static byte[] PerClass(IReadOnlyList<SeedRun> runs, string primary, string title)
    {
        var labels = runs[0].Scores["balanced_batches"][primary].PerClass.Keys.ToArray();
        double Per(string method, int label) => runs.Average(r => r.Scores[method][primary].PerClass[label].RecallAt(1));
        int w = Math.Max(720, 90 + labels.Length * 40), h = 440;
        using var surface = SKSurface.Create(new SKImageInfo(w, h));
        SKCanvas c = surface.Canvas;
        c.Clear(SKColors.White);
        using var big = new SKFont(Face, 16);
        using var small = new SKFont(Face, 11);
        using var ink = new SKPaint { Color = SKColors.Black, IsAntialias = true };
        c.DrawText(title, 20, 24, SKTextAlign.Left, big, ink);
        var r0 = new SKRect(70, 50, w - 20, 350);
        Axes(c, r0, "", "recall@1", 0, 0, 0, 1.0, small);
        float slot = r0.Width / labels.Length;
        for (int i = 0; i < labels.Length; i++)
        {
            float x = r0.Left + i * slot;
            foreach (var (method, color, offset) in new[] { ("balanced_batches", Seen, 0.15f), ("random_batches", Random, 0.5f) })
            {
                float top = r0.Bottom - (float)Per(method, labels[i]) * r0.Height;
                using var fill = new SKPaint { Color = color };
                c.DrawRect(x + offset * slot, top, slot * 0.33f, r0.Bottom - top, fill);
            }
            runs[0].Prepared.TrainCounts.TryGetValue(labels[i], out int n);
            c.DrawText(labels[i].ToString(System.Globalization.CultureInfo.InvariantCulture), x + slot * 0.4f, r0.Bottom + 14, SKTextAlign.Left, small, ink);
            c.DrawText($"n={n}", x + slot * 0.2f, r0.Bottom + 28, SKTextAlign.Left, small, ink);
        }
        c.DrawText("class (training examples)", r0.MidX - 60, r0.Bottom + 46, SKTextAlign.Left, small, ink);
        Legend(c, 560, 402, small, [(Seen, false, "class-balanced batches"), (Random, false, "uniformly random batches")]);
        return Png(surface);
    }

    /// <summary>Query images (left column) and their nearest neighbours by the trained embedding, within their
    /// evaluation set; a green frame marks a neighbour of the query's class, red another class (the reference's viz_neigbors_imgs).</summary>
    internal static byte[] NeighbourGrid(IReadOnlyList<EvalSet> evals, Func<Tensor, Tensor> embed, int queries, int k, int seed)
    {
        var rows = new List<(Tensor X, long[] Y, long[] Neighbours, long Query, string Group)>();
        using (no_grad())
        {
            for (int g = 0; g < evals.Count; g++)
            {
                int n = g == evals.Count - 1 ? queries - queries / evals.Count * (evals.Count - 1) : queries / evals.Count;
                Tensor x = evals[g].Images.ToTensor();
                long[] y = evals[g].Images.Y;
                Tensor e = nn.functional.normalize(embed(x), p: 2.0, dim: 1);
                var rng = new Random(seed);
                long[] q = Enumerable.Range(0, n).Select(_ => rng.NextInt64(x.shape[0])).ToArray();
                Tensor sim = e.index_select(0, tensor(q)).mm(e.t());
                for (int i = 0; i < n; i++) sim[i, q[i]] = float.NegativeInfinity;
                Tensor idx = sim.topk(Math.Min(k, (int)x.shape[0] - 1), dim: 1).indexes;
                for (int i = 0; i < n; i++) rows.Add((x, y, idx[i].data<long>().ToArray(), q[i], evals[g].Name));
            }
        }
        long ch = rows[0].X.shape[1], ih = rows[0].X.shape[2], iw = rows[0].X.shape[3];
        int scale = (int)Math.Max(1, 84 / Math.Max(ih, iw));
        int cellW = (int)iw * scale + 8, cellH = (int)ih * scale + 8;
        int w = 110 + (k + 1) * cellW + 16, hgt = 40 + rows.Count * cellH + 8;
        using var surface = SKSurface.Create(new SKImageInfo(w, hgt));
        SKCanvas c = surface.Canvas;
        c.Clear(SKColors.White);
        using var font = new SKFont(Face, 12);
        using var ink = new SKPaint { Color = SKColors.Black, IsAntialias = true };
        c.DrawText("query", 110, 24, SKTextAlign.Left, font, ink);
        c.DrawText($"{k} nearest neighbours (cosine, trained embedding)", 110 + cellW + 4, 24, SKTextAlign.Left, font, ink);
        for (int r = 0; r < rows.Count; r++)
        {
            var (x, y, nn, query, group) = rows[r];
            float top = 40 + r * cellH;
            long label = y[query];
            c.DrawText($"{group} {label}", 8, top + cellH / 2f, SKTextAlign.Left, font, ink);
            DrawImage(c, x[query], 110, top, scale, ch, ih, iw, SKColors.Black);
            for (int j = 0; j < nn.Length; j++)
                DrawImage(c, x[nn[j]], 110 + (j + 1) * cellW + 4, top, scale, ch, ih, iw, y[nn[j]] == label ? Seen : Unseen);
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

    private static void Axes(SKCanvas c, SKRect r, string xLabel, string yLabel, double x0, double x1, double y0, double y1, SKFont font, int xTicks = 0)
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
        // Integer ticks (epochs), or xTicks evenly spaced ones (steps); none when x0 = x1.
        int n = xTicks > 0 ? xTicks : (int)Math.Round(x1 - x0);
        for (int i = 0; i <= n && x1 > x0; i++)
        {
            float xx = r.Left + (n == 0 ? 0 : (float)i / n * r.Width);
            double v = xTicks > 0 ? x0 + (x1 - x0) * i / n : x0 + i;
            c.DrawText(v.ToString("0", System.Globalization.CultureInfo.InvariantCulture), xx - 3, r.Bottom + 16, SKTextAlign.Left, font, ink);
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
