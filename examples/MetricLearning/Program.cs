// The hello world of TensorFlow Similarity, in .NET: a class-balanced TFDS sampler feeds a small convolutional
// embedding trained with the multi-similarity loss; then nearest-neighbour recall on held-out examples of the seen
// classes and on classes never seen, beside three baselines (raw pixels, the untrained network, the same training
// with uniformly random batches). See docs/TRAINING.md.
using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;
using MetricLearning;
using Samplers;
using Samplers.Imaging;
using Samplers.Tfds;
using Samplers.Core;
using Samplers.Experiments;
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
    // as progress instead (a minute of silence otherwise). --quiet drops everything on stderr but errors.
    void Say(string line)
    {
        if (!s.Json) Console.WriteLine(line);
        else if (!s.Quiet) Console.Error.WriteLine(line);
    }
    // Progress only (loading, the baseline's training): always stderr, never with --quiet.
    void Progress(string line) { if (!s.Quiet) Console.Error.WriteLine(line); }
    // Reproducible kernels: a fixed thread count (TorchSharp 0.107 does not implement use_deterministic_algorithms;
    // see docs/TRAINING.md for what was measured).
    torch.set_num_threads(s.Threads);

    // Training data: the seen classes of the training split, served class-balanced.
    var seen = Enumerable.Range(0, s.SeenClasses).Select(i => (long)i).ToArray();
    var load = new TfdsLoadOptions { DatasetName = s.Dataset, DataDir = s.DataDir, Splits = [s.TrainSplit], CacheDir = s.CacheDir };
    var trainOptions = new TFDatasetSamplerOptions
    {
        Load = load, ClassList = seen,
        ClassesPerBatch = s.ClassesPerBatch, ExamplesPerClassPerBatch = s.ExamplesPerClass, StepsPerEpoch = s.StepsPerEpoch,
        Seed = (ulong)s.Seed, Warmup = 0,
    };
    Progress($"loading {s.Dataset} (train split '{s.TrainSplit}', eval split '{s.EvalSplit}')");
    var train = await TFDatasetMultiShotMemorySampler.LoadAsync(trainOptions);
    var evalSampler = await TFDatasetMultiShotMemorySampler.LoadAsync(trainOptions with
    {
        Load = load with { Splits = [s.EvalSplit] }, ClassList = null, ClassesPerBatch = 2, ExamplesPerClassPerBatch = 1,
    });
    string planDigest = PlanDigest.Compute(train.Planner, train.Seed, 0, s.Epochs, 0, train.Count);
    string fingerprint = DatasetFingerprint.Compute(train.Table);
    string evalFingerprint = DatasetFingerprint.Compute(evalSampler.Table);
    Say($"dataset {s.Dataset}: train split '{s.TrainSplit}' ({train.NumExamples} examples of classes {string.Join(",", seen)}), eval split '{s.EvalSplit}' ({evalSampler.NumExamples} examples)");
    Say($"batches: {train.ClassesPerBatch} classes x {train.ExamplesPerClassPerBatch} examples, {s.Epochs} epochs x {train.Count} steps, seed {s.Seed}; plan digest {planDigest[..16]}...");

    // Evaluation data as tensors (all of it, once).
    using var pool = new TensorBatchPool(maxRetained: 1);
    Tensor evalX, evalY, trainX, trainY;
    using (Batch all = evalSampler.GetSlice())
    using (TensorBatch t = pool.Convert(all)) { evalX = t.X.clone(); evalY = t.Y.clone(); }
    using (Batch all = train.GetSlice())
    using (TensorBatch t = pool.Convert(all)) { trainX = t.X.clone(); trainY = t.Y.clone(); }
    var seenMask = evalY.lt(s.SeenClasses);
    var groups = new Groups(evalX, evalY, seenMask);
    if (groups.SeenCount < 2 || groups.UnseenCount < 2)
        throw new ArgumentException($"The eval split '{s.EvalSplit}' has {groups.SeenCount} examples of the seen classes (labels < {s.SeenClasses}) and {groups.UnseenCount} of the others; each needs at least 2.");

    long[] inputShape = evalX.shape[1..];
    var metrics = new JsonObject();
    var raw = groups.Score(x => x.flatten(1));
    Say($"raw pixels:        seen held-out recall@1 {raw.SeenR1:F3}  P@5 {raw.SeenP5:F3} | unseen recall@1 {raw.UnseenR1:F3}  P@5 {raw.UnseenP5:F3}");

    torch.manual_seed(s.Seed);
    var model = new EmbeddingNet(inputShape, s.EmbeddingDim);
    var untrainedState = model.state_dict().ToDictionary(kv => kv.Key, kv => kv.Value.clone());
    var untrained = groups.Score(model.Embed);
    Say($"untrained network: seen held-out recall@1 {untrained.SeenR1:F3}  P@5 {untrained.SeenP5:F3} | unseen recall@1 {untrained.UnseenR1:F3}  P@5 {untrained.UnseenP5:F3}");

    // Training with the sampler, batches prefetched on a worker as tensors.
    var loss = new MultiSimilarityLoss();
    var history = new List<JsonObject>();
    var optimizer = torch.optim.Adam(model.parameters(), lr: s.LearningRate);
    using var loader = TensorLoader.Create(train, new PrefetchOptions { Workers = s.Workers, Depth = 4, Epochs = s.Epochs });
    double trainSeconds = 0, firstLoss = double.NaN, lastLoss = double.NaN;
    int step = 0;
    double epochLoss = 0;
    var clock = Stopwatch.StartNew();
    foreach (TensorBatch batch in loader)
    {
        using (batch)
        using (var scope = torch.NewDisposeScope())
        {
            model.train();
            optimizer.zero_grad();
            Tensor l = loss.Forward(model.Embed(batch.X), batch.Y);
            l.backward();
            optimizer.step();
            double v = l.item<float>();
            epochLoss += v;
            if (step == 0) firstLoss = v;
        }
        step++;
        if (step % train.Count == 0)
        {
            trainSeconds += clock.Elapsed.TotalSeconds;
            int epoch = step / train.Count;
            lastLoss = epochLoss / train.Count;
            var e = groups.Score(model.Embed);
            history.Add(new JsonObject
            {
                ["epoch"] = epoch, ["loss"] = lastLoss, ["recall_at_1_seen_heldout"] = e.SeenR1, ["recall_at_1_unseen"] = e.UnseenR1,
            });
            Say($"epoch {epoch}: loss {lastLoss:F4}, seen held-out recall@1 {e.SeenR1:F3}, unseen recall@1 {e.UnseenR1:F3}");
            epochLoss = 0;
            clock.Restart();
        }
    }
    double waitSeconds = loader.ConsumerWait.TotalSeconds;
    var trained = groups.Score(model.Embed);

    // Baseline: the same network from the same start, trained on uniformly random batches of the same size.
    Progress($"baseline: training the same network on uniformly random batches ({s.Epochs * train.Count} steps)");
    var randomModel = new EmbeddingNet(inputShape, s.EmbeddingDim);
    randomModel.load_state_dict(untrainedState);
    var randomOptimizer = torch.optim.Adam(randomModel.parameters(), lr: s.LearningRate);
    var rng = new Random(s.Seed);
    int batchSize = train.BatchSize, totalSteps = s.Epochs * train.Count;
    var rows = new long[batchSize];
    for (int i = 0; i < totalSteps; i++)
    {
        using var scope = torch.NewDisposeScope();
        for (int r = 0; r < batchSize; r++) rows[r] = rng.NextInt64(trainX.shape[0]);
        using Tensor idx = torch.tensor(rows);
        randomModel.train();
        randomOptimizer.zero_grad();
        Tensor l = loss.Forward(randomModel.Embed(trainX.index_select(0, idx)), trainY.index_select(0, idx));
        l.backward();
        randomOptimizer.step();
    }
    var randomBatches = groups.Score(randomModel.Embed);

    double stepsPerSecond = totalSteps / trainSeconds;
    double waitFraction = waitSeconds / trainSeconds;
    Say($"trained:           seen held-out recall@1 {trained.SeenR1:F3}  P@5 {trained.SeenP5:F3} | unseen recall@1 {trained.UnseenR1:F3}  P@5 {trained.UnseenP5:F3}");
    Say($"random batches:    seen held-out recall@1 {randomBatches.SeenR1:F3}  P@5 {randomBatches.SeenP5:F3} | unseen recall@1 {randomBatches.UnseenR1:F3}  P@5 {randomBatches.UnseenP5:F3}");
    Say($"training: {totalSteps} steps in {trainSeconds:F1} s ({stepsPerSecond:F1} steps/s), input wait fraction {waitFraction:F4}; loss {firstLoss:F4} (first step) -> {lastLoss:F4} (last epoch mean)");
    if (trained.UnseenR1 < raw.UnseenR1)
        Say($"note: on the unseen classes the trained embedding ({trained.UnseenR1:F3}) is below raw pixels ({raw.UnseenR1:F3}): this small model, trained briefly on {s.SeenClasses} classes, does not beat pixel matching there.");
    if (trained.SeenR1 < raw.SeenR1)
        Say($"note: on held-out examples of the seen classes the trained embedding ({trained.SeenR1:F3}) is below raw pixels ({raw.SeenR1:F3}).");

    metrics["recall_at_1_seen_heldout"] = trained.SeenR1;
    metrics["precision_at_5_seen_heldout"] = trained.SeenP5;
    metrics["recall_at_1_unseen"] = trained.UnseenR1;
    metrics["precision_at_5_unseen"] = trained.UnseenP5;
    metrics["recall_at_1_seen_heldout_raw_pixels"] = raw.SeenR1;
    metrics["precision_at_5_seen_heldout_raw_pixels"] = raw.SeenP5;
    metrics["recall_at_1_unseen_raw_pixels"] = raw.UnseenR1;
    metrics["precision_at_5_unseen_raw_pixels"] = raw.UnseenP5;
    metrics["recall_at_1_seen_heldout_untrained"] = untrained.SeenR1;
    metrics["precision_at_5_seen_heldout_untrained"] = untrained.SeenP5;
    metrics["recall_at_1_unseen_untrained"] = untrained.UnseenR1;
    metrics["precision_at_5_unseen_untrained"] = untrained.UnseenP5;
    metrics["recall_at_1_seen_heldout_random_batches"] = randomBatches.SeenR1;
    metrics["precision_at_5_seen_heldout_random_batches"] = randomBatches.SeenP5;
    metrics["recall_at_1_unseen_random_batches"] = randomBatches.UnseenR1;
    metrics["precision_at_5_unseen_random_batches"] = randomBatches.UnseenP5;
    metrics["loss_first_step"] = firstLoss;
    metrics["loss_last_epoch"] = lastLoss;
    metrics["train_seconds"] = trainSeconds;
    metrics["steps"] = totalSteps;
    metrics["steps_per_second"] = stepsPerSecond;
    metrics["input_wait_fraction"] = waitFraction;
    metrics["plan_digest"] = planDigest;
    metrics["dataset_fingerprint"] = fingerprint;
    metrics["eval_dataset_fingerprint"] = evalFingerprint;
    metrics["seed"] = s.Seed;

    if (s.Out is not null)
    {
        Directory.CreateDirectory(s.Out);
        var manifest = new JsonObject
        {
            ["tool"] = "examples/MetricLearning",
            ["settings"] = s.ToJson(),
            ["metrics"] = metrics.DeepClone(),
            ["history"] = new JsonArray(history.Select(h => (JsonNode)h.DeepClone()).ToArray()),
            ["torch"] = new JsonObject { ["threads"] = s.Threads, ["deterministic_algorithms"] = false },
        };
        Files.WriteAtomically(Path.Combine(s.Out, "manifest.json"), JsonSerializer.SerializeToUtf8Bytes(manifest, new JsonSerializerOptions { WriteIndented = true }));
        Files.WriteAtomically(Path.Combine(s.Out, "training.png"), Figures.TrainingCurves(history, raw, untrained, s.Dataset));
        Files.WriteAtomically(Path.Combine(s.Out, "neighbours.png"), Figures.NeighbourGrid(groups, model.Embed, 8, 5, s.Seed));
        Say($"wrote {Path.Combine(s.Out, "manifest.json")}, training.png, neighbours.png");
    }
    int failures = 0;
    if (s.Check)
    {
        // CI's smoke check: the loss fell over training and every output was written.
        double firstEpoch = history[0]["loss"]!.GetValue<double>();
        if (!(lastLoss < firstEpoch)) { Console.Error.WriteLine($"check failed: the epoch-mean loss did not fall (epoch 1: {firstEpoch:F4}, epoch {s.Epochs}: {lastLoss:F4})."); failures++; }
        if (s.Out is not null)
        {
            foreach (string f in new[] { "manifest.json", "training.png", "neighbours.png" })
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
