// What class-balanced batches are for: a class-balanced sampler feeds a small convolutional embedding trained with a
// metric loss (multi-similarity by default, as TensorFlow Similarity's hello world), against the same network trained
// on uniformly random batches of the same size, raw pixels and the untrained network, in three settings (seen/unseen
// classes, many classes, a long tail), with retrieval metrics (recall@k, precision@k, MAP@R). See docs/TRAINING.md.
using System.Diagnostics;
using System.Text.Json;
using System.Text.Json.Nodes;
using MetricLearning;
using Samplers;
using Samplers.Core;
using Samplers.Evaluation;
using Samplers.Experiments;
using Samplers.Tfds;
using Samplers.TorchSharp;
using TorchSharp;
using static TorchSharp.torch;

Settings settings;
try
{
    settings = Settings.Parse(args);
}
catch (ArgumentException ex)
{
    Console.Error.WriteLine($"metric-learning: {ex.Message}");
    Console.Error.WriteLine(Settings.Usage);
    return 2;
}
if (settings.Help)
{
    Console.WriteLine(Settings.Usage);
    return 0;
}

try
{
    return await Run(settings);
}
catch (Exception ex) when (ex is SamplersDataException or ArgumentException or InvalidOperationException or IOException)
{
    Console.Error.WriteLine($"metric-learning: {ex.Message}");
    return 1;
}

static async Task<int> Run(Settings s)
{
    // The report lines: results on stdout; with --json the JSON document is stdout's only content, so they go to stderr
    // as progress instead. --quiet drops everything on stderr but errors.
    void Say(string line)
    {
        if (!s.Json) Console.WriteLine(line);
        else if (!s.Quiet) Console.Error.WriteLine(line);
    }
    void Progress(string line) { if (!s.Quiet) Console.Error.WriteLine(line); }
    // Reproducible kernels: a fixed thread count (TorchSharp 0.107 does not implement use_deterministic_algorithms).
    torch.set_num_threads(s.Threads);

    Progress($"loading {s.Dataset} (train split '{s.TrainSplit}', eval split '{s.EvalSplit}')");
    var load = new TfdsLoadOptions { DatasetName = s.Dataset, DataDir = s.DataDir, Splits = [s.TrainSplit], CacheDir = s.CacheDir };
    var (trainAll, fingerprint) = await LoadSplit(load);
    var (evalAll, evalFingerprint) = await LoadSplit(load with { Splits = [s.EvalSplit] });
    Say($"dataset {s.Dataset}: train split '{s.TrainSplit}' ({trainAll.Count} examples), eval split '{s.EvalSplit}' ({evalAll.Count} examples), images {trainAll.Height}x{trainAll.Width}x{trainAll.Channels}");
    Say($"setting {s.Setting}, loss {s.Loss}, trained sampler {s.Sampler} (the other is the baseline), seeds {string.Join(",", s.Seeds)}");

    var runs = new List<SeedRun>();
    foreach (int seed in s.Seeds) runs.Add(RunSeed(s, seed, trainAll, evalAll, Say, Progress));

    // ---- aggregate over seeds ----
    SeedRun first = runs[0];
    string primary = first.Prepared.Primary;
    string trainedMethod = s.Sampler == "balanced" ? "balanced_batches" : "random_batches";
    var metrics = new JsonObject();
    (double Mean, double Std) Stat(Func<SeedRun, double> f) => MeanStd(runs.Select(f).ToArray());
    var r1 = Stat(r => r.Scores[trainedMethod][primary].Overall.RecallAt(1));
    var map = Stat(r => r.Scores[trainedMethod][primary].Overall.MapAtR);
    metrics["recall_at_1_mean"] = r1.Mean;
    metrics["recall_at_1_std"] = r1.Std;
    metrics["map_at_r_mean"] = map.Mean;
    metrics["map_at_r_std"] = map.Std;
    metrics["primary_evaluation"] = primary;
    // Per evaluation set and method, means over seeds; the trained embedding has no suffix (as before the settings).
    string[] methods = ["trained", "raw_pixels", "untrained", "balanced_batches", "random_batches"];
    foreach (EvalSet e in first.Prepared.Evals)
    {
        foreach (string m in methods)
        {
            string key = m == "trained" ? trainedMethod : m;
            string suffix = m == "trained" ? "" : "_" + m;
            metrics[$"recall_at_1_{e.Name}{suffix}"] = Stat(r => r.Scores[key][e.Name].Overall.RecallAt(1)).Mean;
            metrics[$"precision_at_5_{e.Name}{suffix}"] = Stat(r => r.Scores[key][e.Name].Overall.PrecisionAt(5)).Mean;
            metrics[$"map_at_r_{e.Name}{suffix}"] = Stat(r => r.Scores[key][e.Name].Overall.MapAtR).Mean;
        }
    }
    foreach (string m in new[] { "raw_pixels", "untrained", "balanced_batches", "random_batches" })
    {
        var mr = Stat(r => r.Scores[m][primary].Overall.RecallAt(1));
        var mm = Stat(r => r.Scores[m][primary].Overall.MapAtR);
        metrics[$"recall_at_1_{m}_mean"] = mr.Mean;
        metrics[$"recall_at_1_{m}_std"] = mr.Std;
        metrics[$"map_at_r_{m}_mean"] = mm.Mean;
        metrics[$"map_at_r_{m}_std"] = mm.Std;
    }
    TrainRun firstTrained = first.Trained(trainedMethod);
    double trainSeconds = runs.Sum(r => r.Trained(trainedMethod).Seconds);
    int steps = runs.Sum(r => r.Trained(trainedMethod).Steps);
    metrics["loss_first_step"] = firstTrained.FirstLoss;
    metrics["loss_last_epoch"] = firstTrained.LastLoss;
    metrics["train_seconds"] = trainSeconds;
    metrics["steps"] = firstTrained.Steps;
    metrics["best_epoch"] = firstTrained.BestEpoch;
    metrics["steps_per_second"] = steps / trainSeconds;
    metrics["input_wait_fraction"] = runs.Sum(r => r.Trained(trainedMethod).WaitSeconds) / trainSeconds;
    metrics["plan_digest"] = first.PlanDigest;
    metrics["dataset_fingerprint"] = fingerprint;
    metrics["eval_dataset_fingerprint"] = evalFingerprint;
    metrics["seed"] = s.Seeds[0];
    metrics["seeds"] = new JsonArray(s.Seeds.Select(x => (JsonNode)x).ToArray());
    metrics["setting"] = s.Setting;
    metrics["loss"] = s.Loss;
    metrics["sampler"] = s.Sampler;

    string Pm(string method, string eval, Func<RetrievalScores, double> f)
    {
        var (m, sd) = Stat(r => f(r.Scores[method][eval].Overall));
        return runs.Count > 1 ? $"{m:F3} ± {sd:F3}" : $"{m:F3}";
    }
    var table = new List<string>
    {
        $"| evaluation | method | recall@1 | precision@5 | R-precision | MAP@R |",
        "| --- | --- | --- | --- | --- | --- |",
    };
    foreach (EvalSet e in first.Prepared.Evals)
    {
        foreach (string m in new[] { "balanced_batches", "random_batches", "raw_pixels", "untrained" })
            table.Add($"| {e.Title} | {m.Replace('_', ' ')}{(m == trainedMethod ? " (trained)" : "")} | {Pm(m, e.Name, x => x.RecallAt(1))} | {Pm(m, e.Name, x => x.PrecisionAt(5))} | {Pm(m, e.Name, x => x.RPrecision)} | {Pm(m, e.Name, x => x.MapAtR)} |");
    }
    Say($"results over {runs.Count} seed(s) (mean{(runs.Count > 1 ? " ± std" : "")}):");
    foreach (string line in table) Say(line);
    // Every evaluation set, not only the primary one: seen-unseen's held-out seen examples can fall below raw pixels too.
    foreach (EvalSet e in first.Prepared.Evals)
    {
        var trainedR1 = metrics[$"recall_at_1_{e.Name}"]!.GetValue<double>();
        var rawR1 = metrics[$"recall_at_1_{e.Name}_raw_pixels"]!.GetValue<double>();
        if (trainedR1 < rawR1)
            Say($"note: on {e.Name} the trained embedding ({trainedR1:F3}) is below raw pixels ({rawR1:F3}): this small model, trained briefly, does not beat pixel matching there.");
    }

    if (s.Out is not null)
    {
        Directory.CreateDirectory(s.Out);
        var perSeed = new JsonArray(runs.Select(r => (JsonNode)r.ToJson()).ToArray());
        var manifest = new JsonObject
        {
            ["tool"] = "examples/MetricLearning",
            ["settings"] = s.ToJson(),
            ["setting_description"] = first.Prepared.Description,
            ["metrics"] = metrics.DeepClone(),
            ["history"] = firstTrained.HistoryJson(),
            ["seeds"] = perSeed,
            ["torch"] = new JsonObject { ["threads"] = s.Threads, ["deterministic_algorithms"] = false },
        };
        var indented = new JsonSerializerOptions { WriteIndented = true };
        Files.WriteAtomically(Path.Combine(s.Out, "manifest.json"), JsonSerializer.SerializeToUtf8Bytes(manifest, indented));
        Files.WriteAtomically(Path.Combine(s.Out, "results.json"), JsonSerializer.SerializeToUtf8Bytes(new JsonObject
        {
            ["setting"] = s.Setting, ["description"] = first.Prepared.Description, ["metrics"] = metrics.DeepClone(), ["seeds"] = perSeed.DeepClone(),
        }, indented));
        Files.WriteAtomically(Path.Combine(s.Out, "results.md"), System.Text.Encoding.UTF8.GetBytes(
            $"# {s.Dataset}, setting {s.Setting}, loss {s.Loss}\n\n{first.Prepared.Description}.\nSeeds {string.Join(", ", s.Seeds)}; " +
            $"{s.Epochs} epochs x {s.StepsPerEpoch} steps at most (early stopping on a validation split of the training classes), " +
            $"batches of {s.ClassesPerBatch} x {s.ExamplesPerClass}.\n\n{string.Join("\n", table)}\n"));
        Files.WriteAtomically(Path.Combine(s.Out, "training.png"), Figures.TrainingCurves(firstTrained.History, first.Prepared.Evals, first.Scores["raw_pixels"], first.Scores["untrained"], $"{s.Dataset} {s.Setting}: {s.Loss}"));
        Files.WriteAtomically(Path.Combine(s.Out, "samplers.png"), Figures.SamplerCurves(runs, primary, s.StepsPerEpoch, $"{s.Dataset} {s.Setting}: recall@1 ({primary}) over steps"));
        Files.WriteAtomically(Path.Combine(s.Out, "neighbours.png"), Figures.NeighbourGrid(first.Prepared.Evals, first.TrainedModel.Embed, 8, 5, s.Seeds[0]));
        var written = new List<string> { "manifest.json", "results.json", "results.md", "training.png", "samplers.png", "neighbours.png" };
        if (s.Setting == "long-tail")
        {
            Files.WriteAtomically(Path.Combine(s.Out, "per_class.png"), Figures.PerClass(runs, primary, $"{s.Dataset} long tail (rho {s.Imbalance}): recall@1 per class"));
            written.Add("per_class.png");
        }
        Say($"wrote {string.Join(", ", written.Select(w => Path.Combine(s.Out, w)))}");
    }
    int failures = 0;
    if (s.Check)
    {
        // CI's smoke check: the loss fell over training and every output was written.
        double firstEpoch = firstTrained.History[0].Loss;
        if (!(firstTrained.LastLoss < firstEpoch)) { Console.Error.WriteLine($"check failed: the epoch-mean loss did not fall (epoch 1: {firstEpoch:F4}, last epoch: {firstTrained.LastLoss:F4})."); failures++; }
        if (s.Out is not null)
        {
            foreach (string f in new[] { "manifest.json", "training.png", "neighbours.png", "results.md", "results.json", "samplers.png" })
            {
                var info = new FileInfo(Path.Combine(s.Out, f));
                if (!info.Exists || info.Length < 100) { Console.Error.WriteLine($"check failed: {info.FullName} is missing or empty."); failures++; }
            }
        }
        Say(failures == 0 ? "check: ok (loss fell, outputs written)" : $"check: {failures} failure(s)");
    }
    if (s.Json) Console.WriteLine(metrics.ToJsonString());
    return failures == 0 ? 0 : 3;
}

static async Task<(ImageSet Set, string Fingerprint)> LoadSplit(TfdsLoadOptions load)
{
    using var sampler = await TFDatasetMultiShotMemorySampler.LoadAsync(new TFDatasetSamplerOptions
    {
        Load = load, ClassesPerBatch = 2, ExamplesPerClassPerBatch = 1, StepsPerEpoch = 1, Warmup = 0,
    });
    string fingerprint = DatasetFingerprint.Compute(sampler.Table);
    using Batch all = sampler.GetSlice();
    if (all.DType != DType.UInt8 || all.ExampleShape.Length != 3)
        throw new ArgumentException($"The example needs uint8 images (H, W, C); dataset '{load.DatasetName}' split '{load.Splits[0]}' has {all.DType} examples of shape [{string.Join(", ", all.ExampleShape.ToArray())}].");
    int[] shape = all.ExampleShape.ToArray();
    return (new ImageSet(all.ToArray<byte>(), shape[0], shape[1], shape[2], all.Y.ToArray()), fingerprint);
}

static SeedRun RunSeed(Settings s, int seed, ImageSet trainAll, ImageSet evalAll, Action<string> say, Action<string> progress)
{
    Prepared p = s.Setting switch
    {
        "many-classes" => Setups.ManyClasses(trainAll, evalAll, s, seed),
        "long-tail" => Setups.LongTail(trainAll, evalAll, s, seed),
        _ => Setups.SeenUnseen(trainAll, evalAll, s, seed),
    };
    say($"seed {seed}: {p.Description}; {p.Train.Count} training examples of {p.TrainCounts.Count} classes (largest {p.TrainCounts.Values.Max()}, smallest {p.TrainCounts.Values.Min()}), {p.Validation.Count} for validation");
    var evals = p.Evals.Select(e => (e.Name, X: e.Images.ToTensor(), Y: e.Images.Labels())).ToList();
    Tensor valX = p.Validation.ToTensor(), valY = p.Validation.Labels();
    var options = new RetrievalOptions { Ks = [1, 5] };
    Dictionary<string, RetrievalReport> Score(Func<Tensor, Tensor> embed)
    {
        using var noGrad = no_grad();
        return evals.ToDictionary(e => e.Name, e => { using var em = EmbedAll(embed, e.X); return TensorRetrieval.Evaluate(em, e.Y, options); });
    }
    var scores = new Dictionary<string, Dictionary<string, RetrievalReport>>
    {
        ["raw_pixels"] = Score(x => x.flatten(1)),
    };
    long[] inputShape = [p.Train.Channels, p.Train.Height, p.Train.Width];
    torch.manual_seed(seed);
    var model = new EmbeddingNet(inputShape, s.EmbeddingDim);
    var initial = model.state_dict().ToDictionary(kv => kv.Key, kv => kv.Value.clone());
    scores["untrained"] = Score(model.Embed);
    string primary = p.Primary;
    say($"seed {seed}: raw pixels recall@1 ({primary}) {scores["raw_pixels"][primary].Overall.RecallAt(1):F3}, untrained {scores["untrained"][primary].Overall.RecallAt(1):F3}");

    // The training set, for the class-balanced sampler (as uint8 HWC, converted per batch) and for uniform draws.
    var samplerOptions = new SamplerOptions
    {
        ClassesPerBatch = Math.Min(s.ClassesPerBatch, p.TrainCounts.Count), ExamplesPerClassPerBatch = s.ExamplesPerClass,
        StepsPerEpoch = s.StepsPerEpoch, Seed = (ulong)seed, Warmup = 0,
    };
    using var sampler = MultiShotMemorySampler.Create<byte>(p.Train.X, [p.Train.Height, p.Train.Width, p.Train.Channels], p.Train.Y, samplerOptions);
    string planDigest = PlanDigest.Compute(sampler.Planner, sampler.Seed, 0, s.Epochs, 0, sampler.Count);
    Tensor trainX = p.Train.ToTensor(), trainY = p.Train.Labels();
    Func<Tensor, Tensor, Tensor> loss = s.Loss switch
    {
        "triplet-hard" => new TripletLoss { NegativeMining = NegativeMining.Hard }.Forward,
        "triplet-semihard" => new TripletLoss().Forward,
        "supcon" => new SupervisedContrastiveLoss().Forward,
        _ => new MultiSimilarityLoss().Forward,
    };

    var runs = new Dictionary<string, TrainRun>();
    var models = new Dictionary<string, EmbeddingNet>();
    foreach (string method in new[] { "balanced_batches", "random_batches" })
    {
        bool trained = method == (s.Sampler == "balanced" ? "balanced_batches" : "random_batches");
        var m = trained ? model : new EmbeddingNet(inputShape, s.EmbeddingDim);
        m.load_state_dict(initial);
        if (!trained) progress($"seed {seed}: baseline: the same network on {(method == "random_batches" ? "uniformly random" : "class-balanced")} batches");
        IEnumerable<(Tensor X, Tensor Y, IDisposable? Owner)> batches = method == "balanced_batches"
            ? Balanced(sampler, s)
            : Uniform(trainX, trainY, sampler.BatchSize, s.Epochs * sampler.Count, seed);
        runs[method] = Train(m, batches, loss, s, sampler.Count, valX, valY, evals.First(e => e.Name == primary), options, trained ? say : progress, $"seed {seed} {method.Replace('_', ' ')}");
        scores[method] = Score(m.Embed);
        models[method] = m;
    }
    foreach (var (name, _, _) in evals)
        say($"seed {seed} {name}: recall@1 balanced {scores["balanced_batches"][name].Overall.RecallAt(1):F3}, random {scores["random_batches"][name].Overall.RecallAt(1):F3}, raw {scores["raw_pixels"][name].Overall.RecallAt(1):F3}, untrained {scores["untrained"][name].Overall.RecallAt(1):F3}; MAP@R balanced {scores["balanced_batches"][name].Overall.MapAtR:F3}, random {scores["random_batches"][name].Overall.MapAtR:F3}");
    return new SeedRun(seed, p, scores, runs, planDigest, models[s.Sampler == "balanced" ? "balanced_batches" : "random_batches"]);
}

static IEnumerable<(Tensor X, Tensor Y, IDisposable? Owner)> Balanced(MultiShotMemorySampler sampler, Settings s)
{
    // Batches prefetched on a worker as tensors; leaving the loop early (early stopping) disposes the loader.
    using var loader = TensorLoader.Create(sampler, new PrefetchOptions { Workers = s.Workers, Depth = 4, Epochs = s.Epochs });
    foreach (TensorBatch b in loader) yield return (b.X, b.Y, b);
}

static IEnumerable<(Tensor X, Tensor Y, IDisposable? Owner)> Uniform(Tensor x, Tensor y, int batchSize, int steps, int seed)
{
    var rng = new Random(seed);
    var rows = new long[batchSize];
    for (int i = 0; i < steps; i++)
    {
        for (int r = 0; r < batchSize; r++) rows[r] = rng.NextInt64(x.shape[0]);
        using Tensor idx = tensor(rows);
        Tensor bx = x.index_select(0, idx), by = y.index_select(0, idx);
        yield return (bx, by, new Both(bx, by));
    }
}

static TrainRun Train(EmbeddingNet model, IEnumerable<(Tensor X, Tensor Y, IDisposable? Owner)> batches, Func<Tensor, Tensor, Tensor> loss, Settings s,
    int stepsPerEpoch, Tensor valX, Tensor valY, (string Name, Tensor X, Tensor Y) primary, RetrievalOptions options, Action<string> say, string label)
{
    var optimizer = torch.optim.Adam(model.parameters(), lr: s.LearningRate);
    var history = new List<EpochRecord>();
    double seconds = 0, firstLoss = double.NaN, epochLoss = 0, bestVal = double.NegativeInfinity, wait = 0;
    int step = 0, bestEpoch = 0;
    Dictionary<string, Tensor>? best = null;
    var clock = Stopwatch.StartNew();
    var waitClock = new Stopwatch();
    waitClock.Start();
    foreach (var (x, y, owner) in batches)
    {
        waitClock.Stop();
        wait += waitClock.Elapsed.TotalSeconds;
        using (owner)
        using (var scope = torch.NewDisposeScope())
        {
            model.train();
            optimizer.zero_grad();
            Tensor l = loss(model.Embed(x), y);
            l.backward();
            optimizer.step();
            double v = l.item<float>();
            epochLoss += v;
            if (step == 0) firstLoss = v;
        }
        step++;
        if (step % stepsPerEpoch == 0)
        {
            seconds += clock.Elapsed.TotalSeconds;
            int epoch = step / stepsPerEpoch;
            double meanLoss = epochLoss / stepsPerEpoch;
            double val, prim;
            using (no_grad())
            {
                using Tensor ev = EmbedAll(model.Embed, valX);
                val = TensorRetrieval.Evaluate(ev, valY, options).Overall.RecallAt(1);
                using Tensor ep = EmbedAll(model.Embed, primary.X);
                prim = TensorRetrieval.Evaluate(ep, primary.Y, options).Overall.RecallAt(1);
            }
            history.Add(new EpochRecord(epoch, step, meanLoss, val, prim));
            say($"{label} epoch {epoch}: loss {meanLoss:F4}, validation recall@1 {val:F3}, {primary.Name} recall@1 {prim:F3}");
            epochLoss = 0;
            // A tie counts as an improvement: a small validation split saturates, and the later weights have the lower loss.
            if (val >= bestVal)
            {
                bestVal = val;
                bestEpoch = epoch;
                foreach (var t in best?.Values ?? Enumerable.Empty<Tensor>()) t.Dispose();
                best = model.state_dict().ToDictionary(kv => kv.Key, kv => kv.Value.clone());
            }
            else if (epoch - bestEpoch >= s.Patience)
            {
                say($"{label}: early stop after epoch {epoch} (validation recall@1 best {bestVal:F3} at epoch {bestEpoch})");
                break;
            }
            clock.Restart();
        }
        waitClock.Restart();
    }
    if (best is not null) model.load_state_dict(best);
    return new TrainRun(history, firstLoss, history.Count > 0 ? history[^1].Loss : double.NaN, seconds, wait, step, bestEpoch);
}

static Tensor EmbedAll(Func<Tensor, Tensor> embed, Tensor x)
{
    using var scope = NewDisposeScope();
    var parts = new List<Tensor>();
    for (long i = 0; i < x.shape[0]; i += 512)
        parts.Add(embed(x.narrow(0, i, Math.Min(512, x.shape[0] - i))));
    return cat(parts, 0).flatten(1).MoveToOuterDisposeScope();
}

static (double Mean, double Std) MeanStd(double[] v)
{
    double mean = v.Average();
    // Sample standard deviation over seeds (0 for one seed).
    double std = v.Length < 2 ? 0 : Math.Sqrt(v.Sum(x => (x - mean) * (x - mean)) / (v.Length - 1));
    return (mean, std);
}
