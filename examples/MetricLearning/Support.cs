using System.Globalization;
using System.Text.Json.Nodes;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;
using static TorchSharp.torch.nn;

namespace MetricLearning;

/// <summary>The reference README's model: Conv2D(64, 3x3) + ReLU -> Flatten -> Dense(64) + ReLU -> Dense(64), L2-normalised.</summary>
internal sealed class EmbeddingNet : Module<Tensor, Tensor>
{
    private readonly Conv2d _conv;
    private readonly Linear _hidden;
    private readonly Linear _out;

    internal EmbeddingNet(long[] chw, int dim) : base(nameof(EmbeddingNet))
    {
        if (chw.Length != 3) throw new ArgumentException($"Expected image examples (C, H, W) after conversion, but the examples have shape [{string.Join(", ", chw)}].");
        _conv = Conv2d(chw[0], 64, 3);
        _hidden = Linear(64 * (chw[1] - 2) * (chw[2] - 2), 64);
        _out = Linear(64, dim);
        RegisterComponents();
    }

    public override Tensor forward(Tensor x)
    {
        using var scope = NewDisposeScope();
        Tensor h = functional.relu(_conv.forward(x)).flatten(1);
        h = functional.relu(_hidden.forward(h));
        return functional.normalize(_out.forward(h), p: 2.0, dim: 1).MoveToOuterDisposeScope();
    }

    /// <summary>Embeddings of <paramref name="x"/>, in training mode when <c>train()</c> was called.</summary>
    internal Tensor Embed(Tensor x) => forward(x);
}

/// <summary>recall@1 and precision@5 of an embedding on the two evaluation groups.</summary>
internal sealed record Scores(double SeenR1, double SeenP5, double UnseenR1, double UnseenP5);

/// <summary>The evaluation split divided into the seen classes' (held-out) examples and the unseen classes'.</summary>
internal sealed class Groups
{
    internal Groups(Tensor x, Tensor y, Tensor seenMask)
    {
        SeenX = x.index(seenMask);
        SeenY = y.index(seenMask);
        UnseenX = x.index(seenMask.logical_not());
        UnseenY = y.index(seenMask.logical_not());
    }

    internal Tensor SeenX { get; }
    internal Tensor SeenY { get; }
    internal Tensor UnseenX { get; }
    internal Tensor UnseenY { get; }
    internal long SeenCount => SeenY.shape[0];
    internal long UnseenCount => UnseenY.shape[0];

    /// <summary>Scores an embedding function (evaluation mode, no gradients, in chunks).</summary>
    internal Scores Score(Func<Tensor, Tensor> embed)
    {
        using var noGrad = no_grad();
        (double s1, double s5) = Retrieval(EmbedAll(embed, SeenX), SeenY);
        (double u1, double u5) = Retrieval(EmbedAll(embed, UnseenX), UnseenY);
        return new Scores(s1, s5, u1, u5);
    }

    internal static Tensor EmbedAll(Func<Tensor, Tensor> embed, Tensor x)
    {
        using var scope = NewDisposeScope();
        var parts = new List<Tensor>();
        for (long i = 0; i < x.shape[0]; i += 512)
            parts.Add(embed(x.narrow(0, i, Math.Min(512, x.shape[0] - i))));
        // Cosine: compare unit vectors (raw pixels too); an all-zero row stays zero.
        return functional.normalize(cat(parts, 0).flatten(1), p: 2.0, dim: 1).MoveToOuterDisposeScope();
    }

    /// <summary>Leave-one-out nearest neighbours by cosine: recall@1 (the nearest other example has the same label) and
    /// precision@5 (the share of the 5 nearest with the same label), averaged over the examples.</summary>
    internal static (double RecallAt1, double PrecisionAt5) Retrieval(Tensor e, Tensor y)
    {
        using var scope = NewDisposeScope();
        Tensor sim = e.mm(e.t());
        sim.diagonal().fill_(float.NegativeInfinity); // leave-one-out: an example is not its own neighbour
        int k = (int)Math.Min(5, e.shape[0] - 1);
        Tensor idx = sim.topk(k, dim: 1).indexes;
        Tensor hits = y.index(idx).eq(y.view(-1, 1)).to(ScalarType.Float64);
        return (hits[.., 0].mean().item<double>(), hits.mean().item<double>());
    }

    /// <summary>The <paramref name="k"/> nearest neighbours (by cosine) of each of <paramref name="queries"/> among <paramref name="e"/>.</summary>
    internal static long[][] Neighbours(Tensor e, long[] queries, int k)
    {
        using var scope = NewDisposeScope();
        Tensor sim = e.index_select(0, tensor(queries)).mm(e.t());
        for (int q = 0; q < queries.Length; q++) sim[q, queries[q]] = float.NegativeInfinity;
        Tensor idx = sim.topk(k, dim: 1).indexes;
        return [.. Enumerable.Range(0, queries.Length).Select(q => idx[q].data<long>().ToArray())];
    }
}

/// <summary>Command-line settings.</summary>
internal sealed record Settings
{
    internal string Dataset { get; init; } = "synthetic_digits";
    internal string? DataDir { get; init; }
    internal string TrainSplit { get; init; } = "train";
    internal string EvalSplit { get; init; } = "test";
    internal int Epochs { get; init; } = 5;
    internal int StepsPerEpoch { get; init; } = 200;
    internal int Seed { get; init; } = 1;
    internal string? Out { get; init; }
    internal bool Json { get; init; }
    internal bool Quiet { get; init; }
    internal bool Help { get; init; }
    internal bool Check { get; init; }
    internal int ClassesPerBatch { get; init; } = 6;
    internal int ExamplesPerClass { get; init; } = 4;
    internal int SeenClasses { get; init; } = 6;
    internal double LearningRate { get; init; } = 1e-3;
    internal int EmbeddingDim { get; init; } = 64;
    internal int Workers { get; init; } = 1;
    internal int Threads { get; init; } = 1;
    internal string? CacheDir { get; init; }

    internal const string Usage =
        "usage: dotnet run --project examples/MetricLearning -c Release -- [--dataset NAME] [--data-dir DIR] [--train-split S] [--eval-split S]\n" +
        "         [--epochs N] [--steps-per-epoch N] [--seed N] [--out DIR] [--json] [--quiet]\n" +
        "         [--classes-per-batch N] [--examples-per-class N] [--seen-classes N] [--lr X] [--workers N] [--threads N] [--cache-dir DIR] [--check]\n" +
        "defaults: the embedded dataset (synthetic_digits in the repository's data folder), train and test, 5 epochs x 200 steps,\n" +
        "seed 1, 6 classes x 4 examples per batch, the first 6 classes seen, Adam 1e-3, 1 loader worker, 1 torch thread.\n" +
        "--json prints one JSON document of metrics on stdout; the report lines then go to stderr as progress.\n" +
        "--quiet: nothing on stderr but errors (no progress lines). --check exits with 3 unless the loss fell and (with --out) every output was written.";

    internal static Settings Parse(string[] args)
    {
        var s = new Settings();
        for (int i = 0; i < args.Length; i++)
        {
            string a = args[i];
            string Value() => i + 1 < args.Length ? args[++i] : throw new ArgumentException($"{a} needs a value.");
            int Int(int min)
            {
                string v = Value();
                return int.TryParse(v, NumberStyles.Integer, CultureInfo.InvariantCulture, out int n) && n >= min
                    ? n : throw new ArgumentException($"{a} must be a whole number >= {min}, but was '{v}'.");
            }
            s = a switch
            {
                "--dataset" => s with { Dataset = Value() },
                "--data-dir" => s with { DataDir = Value() },
                "--train-split" => s with { TrainSplit = Value() },
                "--eval-split" => s with { EvalSplit = Value() },
                "--epochs" => s with { Epochs = Int(1) },
                "--steps-per-epoch" => s with { StepsPerEpoch = Int(1) },
                "--seed" => s with { Seed = Int(0) },
                "--out" => s with { Out = Value() },
                "--json" => s with { Json = true },
                "--quiet" or "-q" => s with { Quiet = true },
                "--check" => s with { Check = true },
                "--classes-per-batch" => s with { ClassesPerBatch = Int(2) },
                "--examples-per-class" => s with { ExamplesPerClass = Int(2) },
                "--seen-classes" => s with { SeenClasses = Int(2) },
                "--lr" => s with { LearningRate = double.TryParse(Value(), NumberStyles.Float, CultureInfo.InvariantCulture, out double lr) && lr > 0 ? lr : throw new ArgumentException($"--lr must be a positive number, but was '{args[i]}'.") },
                "--workers" => s with { Workers = Int(0) },
                "--threads" => s with { Threads = Int(1) },
                "--cache-dir" => s with { CacheDir = Value() },
                "-h" or "--help" => s with { Help = true },
                _ => throw new ArgumentException($"unknown argument '{a}'."),
            };
        }
        if (s.Check && s.Epochs < 2) throw new ArgumentException("--check compares the first and last epochs' mean loss, so it needs --epochs 2 or more.");
        if (s.DataDir is null && s.Dataset == "synthetic_digits") s = s with { DataDir = FindEmbeddedData() };
        return s;
    }

    // The repository's data folder, from the working directory or the binary's location upwards.
    private static string? FindEmbeddedData()
    {
        foreach (string start in new[] { Directory.GetCurrentDirectory(), AppContext.BaseDirectory })
        {
            for (var d = new DirectoryInfo(start); d is not null; d = d.Parent)
            {
                string candidate = Path.Combine(d.FullName, "data");
                if (Directory.Exists(Path.Combine(candidate, "synthetic_digits"))) return candidate;
            }
        }
        return null;
    }

    internal JsonObject ToJson() => new()
    {
        ["dataset"] = Dataset, ["train_split"] = TrainSplit, ["eval_split"] = EvalSplit, ["epochs"] = Epochs,
        ["steps_per_epoch"] = StepsPerEpoch, ["seed"] = Seed, ["classes_per_batch"] = ClassesPerBatch,
        ["examples_per_class_per_batch"] = ExamplesPerClass, ["seen_classes"] = SeenClasses, ["learning_rate"] = LearningRate,
        ["embedding_dim"] = EmbeddingDim, ["loader_workers"] = Workers, ["torch_threads"] = Threads,
        ["model"] = "Conv2D(64, 3x3) + ReLU -> Flatten -> Dense(64) + ReLU -> Dense(64), L2-normalised",
        ["loss"] = "MultiSimilarityLoss(alpha 2, beta 40, epsilon 0.1, lambda 0.5, cosine)", ["optimizer"] = "Adam",
    };
}

internal static class Files
{
    /// <summary>Temp file + rename: a reader never sees half a file.</summary>
    internal static void WriteAtomically(string path, byte[] bytes)
    {
        string temp = path + ".tmp";
        File.WriteAllBytes(temp, bytes);
        File.Move(temp, path, overwrite: true);
    }
}
