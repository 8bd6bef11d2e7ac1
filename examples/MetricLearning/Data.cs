using static TorchSharp.torch;

namespace MetricLearning;

/// <summary>A set of uint8 images (row-major N × H × W × C, TFDS's layout) with labels.</summary>
internal sealed record ImageSet(byte[] X, int Height, int Width, int Channels, long[] Y)
{
    internal int Count => Y.Length;
    internal int RowBytes => Height * Width * Channels;

    internal ImageSet Take(IReadOnlyList<int> rows)
    {
        var x = new byte[rows.Count * RowBytes];
        var y = new long[rows.Count];
        for (int i = 0; i < rows.Count; i++)
        {
            Array.Copy(X, (long)rows[i] * RowBytes, x, (long)i * RowBytes, RowBytes);
            y[i] = Y[rows[i]];
        }
        return this with { X = x, Y = y };
    }

    /// <summary>The rows of each label, in row order, labels ascending.</summary>
    internal SortedDictionary<long, List<int>> ByClass()
    {
        var d = new SortedDictionary<long, List<int>>();
        for (int i = 0; i < Y.Length; i++)
        {
            if (!d.TryGetValue(Y[i], out var list)) d[Y[i]] = list = [];
            list.Add(i);
        }
        return d;
    }

    /// <summary>Float32 (N, C, H, W) scaled to [0, 1], as the training batches are.</summary>
    internal Tensor ToTensor()
    {
        using var scope = NewDisposeScope();
        return tensor(X, ScalarType.Byte).view(Count, Height, Width, Channels).permute(0, 3, 1, 2)
            .to(ScalarType.Float32).div(255.0f).contiguous().MoveToOuterDisposeScope();
    }

    internal Tensor Labels() => tensor(Y, ScalarType.Int64);

    /// <summary>One sampler-seeded shuffle (Fisher-Yates over System.Random, whose seeded sequence is fixed).</summary>
    internal static List<int> Shuffled(IEnumerable<int> items, Random rng)
    {
        var list = items.ToList();
        for (int i = list.Count - 1; i > 0; i--)
        {
            int j = rng.Next(i + 1);
            (list[i], list[j]) = (list[j], list[i]);
        }
        return list;
    }
}

/// <summary>One evaluation set: its name in the report and JSON keys, its images and labels.</summary>
internal sealed record EvalSet(string Name, string Title, ImageSet Images);

/// <summary>What a setting trains and evaluates on, for one seed.</summary>
internal sealed record Prepared(ImageSet Train, ImageSet Validation, IReadOnlyList<EvalSet> Evals, string Primary, string Description,
    IReadOnlyDictionary<long, int> TrainCounts);

/// <summary>The three settings: every random choice comes from the seed, so a run is reproducible.</summary>
internal static class Setups
{
    /// <summary>Holds out a share of each training class as the validation split (for early stopping only).</summary>
    internal static (ImageSet Train, ImageSet Validation) HoldOut(ImageSet set, double fraction, Random rng)
    {
        var train = new List<int>();
        var val = new List<int>();
        foreach (var (_, rows) in set.ByClass())
        {
            var order = ImageSet.Shuffled(rows, rng);
            int v = rows.Count < 3 ? 0 : Math.Clamp((int)Math.Round(rows.Count * fraction), 1, rows.Count - 2);
            val.AddRange(order.Take(v).Order());
            train.AddRange(order.Skip(v).Order());
        }
        train.Sort();
        val.Sort();
        return (set.Take(train), set.Take(val));
    }

    internal static Prepared SeenUnseen(ImageSet train, ImageSet eval, Settings s, int seed)
    {
        var rng = new Random(seed);
        var seenRows = Enumerable.Range(0, train.Count).Where(i => train.Y[i] < s.SeenClasses).ToList();
        var (tr, val) = HoldOut(train.Take(seenRows), s.ValidationFraction, rng);
        var seen = eval.Take([.. Enumerable.Range(0, eval.Count).Where(i => eval.Y[i] < s.SeenClasses)]);
        var unseen = eval.Take([.. Enumerable.Range(0, eval.Count).Where(i => eval.Y[i] >= s.SeenClasses)]);
        if (seen.Count < 2 || unseen.Count < 2)
            throw new ArgumentException($"The eval split '{s.EvalSplit}' has {seen.Count} examples of the seen classes (labels < {s.SeenClasses}) and {unseen.Count} of the others; each needs at least 2.");
        return new Prepared(tr, val, [new("seen_heldout", "seen, held out", seen), new("unseen", "unseen classes", unseen)], "unseen",
            $"train on labels < {s.SeenClasses}; evaluate held-out examples of those and all examples of the others", Counts(tr));
    }

    internal static Prepared LongTail(ImageSet train, ImageSet eval, Settings s, int seed)
    {
        var rng = new Random(seed);
        var (pool, val) = HoldOut(train, s.ValidationFraction, rng);
        var byClass = pool.ByClass();
        int n = byClass.Values.Min(r => r.Count);
        int classes = byClass.Count;
        var keep = new List<int>();
        int c = 0;
        foreach (var (_, rows) in byClass)
        {
            // Class c keeps N * rho^(c / (C - 1)): from N (the smallest class's count) down to N * rho.
            double share = classes == 1 ? 1 : Math.Pow(s.Imbalance, (double)c / (classes - 1));
            int k = Math.Max(1, (int)Math.Round(n * share));
            keep.AddRange(ImageSet.Shuffled(rows, rng).Take(k));
            c++;
        }
        keep.Sort();
        var tr = pool.Take(keep);
        return new Prepared(tr, val, [new("heldout", "held out (balanced)", eval)], "heldout",
            $"long tail: class c keeps {n} x {s.Imbalance}^(c/{classes - 1}) training examples; evaluate the balanced eval split", Counts(tr));
    }

    internal static Prepared ManyClasses(ImageSet train, ImageSet eval, Settings s, int seed)
    {
        var rng = new Random(seed);
        var (pool, valPool) = HoldOut(train, s.ValidationFraction, rng);
        var tr = Pairs(pool, s.PairsPerClass, new Random(seed * 3 + 1));
        var val = Pairs(valPool, Math.Max(2, s.PairsPerClass / 10), new Random(seed * 3 + 2));
        var ev = Pairs(eval, s.EvalPairsPerClass, new Random(seed * 3 + 3));
        int c = train.ByClass().Count;
        return new Prepared(tr, val, [new("heldout", "held-out pairs", ev)], "heldout",
            $"many classes: ordered pairs side by side, {c} x {c} = {c * c} classes; train {s.PairsPerClass} pairs per class from the train split, evaluate {s.EvalPairsPerClass} per class from the eval split", Counts(tr));
    }

    /// <summary>Ordered pairs of images side by side (H × 2W): class (left, right) → ordinal(left) · C + ordinal(right).</summary>
    internal static ImageSet Pairs(ImageSet src, int perClass, Random rng)
    {
        var byClass = src.ByClass();
        var classes = byClass.Keys.ToArray();
        int c = classes.Length, h = src.Height, w = src.Width, ch = src.Channels;
        int rowBytes = h * 2 * w * ch, half = w * ch;
        var x = new byte[c * c * perClass * rowBytes];
        var y = new long[c * c * perClass];
        int at = 0;
        for (int l = 0; l < c; l++)
        {
            for (int r = 0; r < c; r++)
            {
                var left = byClass[classes[l]];
                var right = byClass[classes[r]];
                for (int p = 0; p < perClass; p++, at++)
                {
                    int a = left[rng.Next(left.Count)], b = right[rng.Next(right.Count)];
                    for (int row = 0; row < h; row++)
                    {
                        Array.Copy(src.X, (long)a * src.RowBytes + row * half, x, (long)at * rowBytes + row * 2 * half, half);
                        Array.Copy(src.X, (long)b * src.RowBytes + row * half, x, (long)at * rowBytes + row * 2 * half + half, half);
                    }
                    y[at] = l * c + r;
                }
            }
        }
        return new ImageSet(x, h, 2 * w, ch, y);
    }

    private static Dictionary<long, int> Counts(ImageSet s) => s.ByClass().ToDictionary(kv => kv.Key, kv => kv.Value.Count);
}
