using System.Globalization;
using System.Text.Json.Nodes;
using Samplers.Evaluation;
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

/// <summary>One epoch of a training run: the epoch-mean loss, validation recall@1 (early stopping) and the primary evaluation's recall@1.</summary>
internal sealed record EpochRecord(int Epoch, int Step, double Loss, double ValidationRecallAt1, double PrimaryRecallAt1);

/// <summary>A training run: its epochs, losses, time, and the epoch whose weights were kept (best validation recall@1).</summary>
internal sealed record TrainRun(IReadOnlyList<EpochRecord> History, double FirstLoss, double LastLoss, double Seconds, double WaitSeconds, int Steps, int BestEpoch)
{
    internal JsonArray HistoryJson() => new(History.Select(h => (JsonNode)new JsonObject
    {
        ["epoch"] = h.Epoch, ["step"] = h.Step, ["loss"] = h.Loss, ["validation_recall_at_1"] = h.ValidationRecallAt1, ["primary_recall_at_1"] = h.PrimaryRecallAt1,
    }).ToArray());
}

/// <summary>Everything one seed produced: scores by method then evaluation set, the two training runs.</summary>
internal sealed record SeedRun(int Seed, Prepared Prepared, Dictionary<string, Dictionary<string, RetrievalReport>> Scores,
    Dictionary<string, TrainRun> Runs, string PlanDigest, EmbeddingNet TrainedModel)
{
    internal TrainRun Trained(string method) => Runs[method];

    internal JsonObject ToJson()
    {
        var scores = new JsonObject();
        foreach (var (method, byEval) in Scores)
        {
            var m = new JsonObject();
            foreach (var (eval, report) in byEval)
            {
                RetrievalScores o = report.Overall;
                m[eval] = new JsonObject
                {
                    ["recall_at_1"] = o.RecallAt(1), ["recall_at_5"] = o.RecallAt(5), ["precision_at_5"] = o.PrecisionAt(5),
                    ["r_precision"] = Num(o.RPrecision), ["map_at_r"] = Num(o.MapAtR), ["queries"] = o.Queries,
                    ["per_class_recall_at_1"] = new JsonObject(report.PerClass.Select(kv => KeyValuePair.Create(kv.Key.ToString(CultureInfo.InvariantCulture), (JsonNode?)kv.Value.RecallAt(1)))),
                };
            }
            scores[method] = m;
        }
        return new JsonObject
        {
            ["seed"] = Seed, ["plan_digest"] = PlanDigest, ["scores"] = scores,
            ["training_examples_per_class"] = new JsonObject(Prepared.TrainCounts.OrderBy(kv => kv.Key).Select(kv => KeyValuePair.Create(kv.Key.ToString(CultureInfo.InvariantCulture), (JsonNode?)kv.Value))),
            ["runs"] = new JsonObject(Runs.Select(kv => KeyValuePair.Create(kv.Key, (JsonNode?)new JsonObject
            {
                ["steps"] = kv.Value.Steps, ["best_epoch"] = kv.Value.BestEpoch, ["train_seconds"] = kv.Value.Seconds,
                ["loss_first_step"] = kv.Value.FirstLoss, ["loss_last_epoch"] = kv.Value.LastLoss, ["history"] = kv.Value.HistoryJson(),
            }))),
        };
    }

    // JSON has no NaN: a metric without queries (MAP@R of a set where every class is alone) is null.
    private static JsonNode? Num(double v) => double.IsFinite(v) ? v : null;
}

/// <summary>Disposes two tensors (a uniformly drawn batch).</summary>
internal sealed class Both(Tensor a, Tensor b) : IDisposable
{
    public void Dispose()
    {
        a.Dispose();
        b.Dispose();
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
    internal int[] Seeds { get; init; } = [1];
    internal string Sampler { get; init; } = "balanced";
    internal string Loss { get; init; } = "multisimilarity";
    internal string Setting { get; init; } = "seen-unseen";
    internal double Imbalance { get; init; } = 0.01;
    internal int Patience { get; init; } = 2;
    internal double ValidationFraction { get; init; } = 0.1;
    internal int PairsPerClass { get; init; } = 30;
    internal int EvalPairsPerClass { get; init; } = 10;

    internal const string Usage =
        "usage: dotnet run --project examples/MetricLearning -c Release -- [--dataset NAME] [--data-dir DIR] [--train-split S] [--eval-split S]\n" +
        "         [--epochs N] [--steps-per-epoch N] [--seed N] [--out DIR] [--json] [--quiet]\n" +
        "         [--classes-per-batch N] [--examples-per-class N] [--seen-classes N] [--lr X] [--workers N] [--threads N] [--cache-dir DIR] [--check]\n" +
        "         [--setting seen-unseen|many-classes|long-tail] [--sampler balanced|random] [--loss multisimilarity|triplet-hard|triplet-semihard|supcon]\n" +
        "         [--seeds 1,2,3] [--imbalance RHO] [--patience N] [--validation-fraction F] [--pairs-per-class N] [--eval-pairs-per-class N]\n" +
        "defaults: the embedded dataset (synthetic_digits in the repository's data folder), train and test, setting seen-unseen,\n" +
        "5 epochs x 200 steps at most (early stopping: patience 2 epochs on recall@1 of a 10% validation split of the training classes),\n" +
        "seed 1, 6 classes x 4 examples per batch, the first 6 classes seen, multi-similarity loss, Adam 1e-3, 1 loader worker, 1 torch thread;\n" +
        "long-tail: imbalance 0.01; many-classes: 30 training and 10 evaluation pairs per class.\n" +
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
            string OneOf(string v, params string[] allowed) =>
                allowed.Contains(v) ? v : throw new ArgumentException($"{a} must be one of {string.Join(", ", allowed)}, but was '{v}'.");
            double Fraction(string v, bool open) =>
                double.TryParse(v, NumberStyles.Float, CultureInfo.InvariantCulture, out double f) && f > 0 && (open ? f <= 1 : f < 1)
                    ? f : throw new ArgumentException($"{a} must be a number in (0, 1{(open ? "]" : ")")}, but was '{v}'.");
            int[] ParseSeeds(string v)
            {
                var parts = v.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries);
                var seeds = new int[parts.Length];
                for (int j = 0; j < parts.Length; j++)
                    if (!int.TryParse(parts[j], NumberStyles.Integer, CultureInfo.InvariantCulture, out seeds[j]) || seeds[j] < 0)
                        throw new ArgumentException($"--seeds takes whole numbers >= 0 separated by commas, but '{parts[j]}' in '{v}' is not one.");
                return seeds.Length > 0 && seeds.Distinct().Count() == seeds.Length ? seeds : throw new ArgumentException($"--seeds needs at least one seed and no repeats, but was '{v}'.");
            }
            s = a switch
            {
                "--dataset" => s with { Dataset = Value() },
                "--data-dir" => s with { DataDir = Value() },
                "--train-split" => s with { TrainSplit = Value() },
                "--eval-split" => s with { EvalSplit = Value() },
                "--epochs" => s with { Epochs = Int(1) },
                "--steps-per-epoch" => s with { StepsPerEpoch = Int(1) },
                "--seed" => Int(0) is int one ? s with { Seed = one, Seeds = [one] } : s,
                "--seeds" => ParseSeeds(Value()) is int[] many ? s with { Seeds = many, Seed = many[0] } : s,
                "--sampler" => s with { Sampler = OneOf(Value(), "balanced", "random") },
                "--loss" => s with { Loss = OneOf(Value(), "multisimilarity", "triplet-hard", "triplet-semihard", "supcon") },
                "--setting" => s with { Setting = OneOf(Value(), "seen-unseen", "many-classes", "long-tail") },
                "--imbalance" => s with { Imbalance = Fraction(Value(), open: true) },
                "--validation-fraction" => s with { ValidationFraction = Fraction(Value(), open: false) },
                "--patience" => s with { Patience = Int(1) },
                "--pairs-per-class" => s with { PairsPerClass = Int(2) },
                "--eval-pairs-per-class" => s with { EvalPairsPerClass = Int(2) },
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
        ["loss"] = Loss switch
        {
            "triplet-hard" => "TripletLoss(cosine, hard positives, hard negatives, soft margin)",
            "triplet-semihard" => "TripletLoss(cosine, hard positives, semi-hard negatives, soft margin)",
            "supcon" => "SupervisedContrastiveLoss(temperature 0.07, base temperature 0.07)",
            _ => "MultiSimilarityLoss(alpha 2, beta 40, epsilon 0.1, lambda 0.5, cosine)",
        },
        ["optimizer"] = "Adam", ["setting"] = Setting, ["sampler"] = Sampler, ["seeds"] = new JsonArray(Seeds.Select(x => (JsonNode)x).ToArray()),
        ["imbalance"] = Imbalance, ["patience"] = Patience, ["validation_fraction"] = ValidationFraction,
        ["pairs_per_class"] = PairsPerClass, ["eval_pairs_per_class"] = EvalPairsPerClass,
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
