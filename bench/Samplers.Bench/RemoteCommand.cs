using System.Diagnostics;
using System.Globalization;
using System.Text.RegularExpressions;
using Amazon.Runtime;
using Amazon.S3;
using Amazon.S3.Model;
using Samplers.FaultProxy;
using Samplers.Storage;
using Samplers.Tfds;

namespace Samplers.Bench;

/// <summary>
/// <c>remote</c>: remote random access (docs/OBJECT_STORAGE.md, mode 2) against an S3-compatible server on loopback
/// (s3rver, tools/s3rver) behind the fault proxy's fixed per-request latency. For each read-ahead setting it opens the
/// dataset on a fresh local cache folder (a new host, loading the published index), then a consumer that spends
/// <c>--step-ms</c> per batch (busy, as a CPU training step) takes <c>--batches</c> batches; it prints the input-wait
/// fraction (time spent waiting for a batch / total), the requests and bytes fetched against the bytes of the records
/// fetched, and the time to the first batch. A local run (the same dataset read from disk by a lazy table with the same
/// decoding) gives the decode-bound floor of the wait.
/// Usage: <c>dotnet run -c Release --project bench/Samplers.Bench -- remote --data-dir DIR --dataset NAME:VER
/// [--split train] [-c 10] [-e 32] [--batches 100] [--steps-per-epoch 1000] [--step-ms 10] [--latency-ms 20] [--read-ahead 0,4] [--parallel 8] [--repeats 3] [--resize HxW [--uint8]] [--cache-mb 256] [--workers 0]
/// [--resize HxW]</c> (<c>--resize</c> for images of varying size: the preprocess every record is decoded through).
/// </summary>
/// <remarks>Not a BenchmarkDotNet benchmark: it needs a server process and measures a consumer's wait, not a call.</remarks>
internal static class RemoteCommand
{
    private static readonly CultureInfo Inv = CultureInfo.InvariantCulture;

    public static int Run(string[] args)
    {
        string? dataDir = null, dataset = null, split = "train";
        int classes = 10, perClass = 32, batches = 100, parallel = 8, repeats = 3, stepsPerEpoch = 1000;
        long cacheMb = 256;
        int workers = 0;    // > 0: the consumer reads a PrefetchLoader with this many workers
        bool uint8 = false; // --resize to uint8 rather than float32 (a quarter of the bytes per batch)
        double stepMs = 10, latencyMs = 20;
        int[] readAheads = [0, 4];
        int[]? resize = null;
        for (int i = 0; i < args.Length; i++)
        {
            string Next() => i + 1 < args.Length ? args[++i] : throw new ArgumentException($"{args[i]} needs a value");
            switch (args[i])
            {
                case "--data-dir": dataDir = Next(); break;
                case "--dataset": dataset = Next(); break;
                case "--split": split = Next(); break;
                case "-c": classes = int.Parse(Next(), Inv); break;
                case "-e": perClass = int.Parse(Next(), Inv); break;
                case "--batches": batches = int.Parse(Next(), Inv); break;
                case "--steps-per-epoch": stepsPerEpoch = int.Parse(Next(), Inv); break;
                case "--step-ms": stepMs = double.Parse(Next(), Inv); break;
                case "--latency-ms": latencyMs = double.Parse(Next(), Inv); break;
                case "--read-ahead": readAheads = Next().Split(',').Select(s => int.Parse(s, Inv)).ToArray(); break;
                case "--parallel": parallel = int.Parse(Next(), Inv); break;
                case "--cache-mb": cacheMb = long.Parse(Next(), Inv); break;
                case "--uint8": uint8 = true; break;
                case "--workers": workers = int.Parse(Next(), Inv); break;
                case "--repeats": repeats = int.Parse(Next(), Inv); break;
                case "--resize": resize = Next().Split('x').Select(s => int.Parse(s, Inv)).ToArray(); break;
                default:
                    Console.Error.WriteLine("usage: remote --data-dir DIR --dataset NAME:VER [--split S] [-c C] [-e E] [--batches N] [--steps-per-epoch S] [--step-ms X] [--latency-ms L] [--read-ahead 0,4] [--parallel P] [--repeats R] [--resize HxW [--uint8]] [--cache-mb M] [--workers W]");
                    return 2;
            }
        }
        if (dataDir is null || dataset is null)
        {
            Console.Error.WriteLine("remote: --data-dir and --dataset are required (a TFDS data directory holding the dataset)");
            return 2;
        }
        string work = Path.Combine(Path.GetTempPath(), "samplers-remote-bench-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(work);
        try
        {
            using var server = S3rverProcess.Start(Path.Combine(work, "s3rver"));
            string name = dataset.Split(':')[0].Split('/')[0];
            long uploaded = server.Upload("bench", "tfds", dataDir, name);
            using var proxy = FaultProxy.FaultProxy.Start(new Uri(server.Endpoint), new FaultSchedule { Latency = TimeSpan.FromMilliseconds(latencyMs) });
            Environment.SetEnvironmentVariable("AWS_ACCESS_KEY_ID", S3rverProcess.Key);
            Environment.SetEnvironmentVariable("AWS_SECRET_ACCESS_KEY", S3rverProcess.Key);
            Console.WriteLine($"# {Environment.ProcessorCount} cores, load average {AnchorsCommand.LoadAverage()}, {DateTime.UtcNow:yyyy-MM-dd HH:mm} UTC; {dataset} [{split}] ({uploaded / 1e6:F1} MB uploaded), " +
                              $"{classes}x{perClass} batches, the first {batches} of a {stepsPerEpoch}-batch epoch per run, consumer {stepMs} ms per step, {latencyMs} ms added per request, {parallel} parallel requests, {cacheMb} MiB decoded cache, {(workers > 0 ? $"a PrefetchLoader with {workers} workers (depth 4)" : "batches built on the consumer's thread")}{(resize is null ? "" : $", resized to {resize[0]}x{resize[1]} {(uint8 ? "uint8" : "float32")}")}, median of {repeats} runs");

            TfdsLoadOptions Load(string cacheDir, int readAhead) => new()
            {
                DatasetName = dataset, DataDir = "s3://bench/tfds", Splits = [split], CacheDir = cacheDir, Download = null,
                Preprocess = resize is null ? null : Samplers.Imaging.ImagePreprocessing.Resize(resize[0], resize[1], output: uint8 ? DType.UInt8 : DType.Float32),
                ObjectStore = new ObjectStoreOptions
                {
                    Endpoint = proxy.Uri.ToString().TrimEnd('/'), Access = ObjectStoreAccess.Remote,
                    Remote = new RemoteAccessOptions { ReadAheadBatches = readAhead, MaxParallelRequests = parallel, CacheBytes = cacheMb << 20 },
                },
            };
            // The first host scans the shards and publishes the index (untimed set-up).
            var scanClock = Stopwatch.StartNew();
            using (var first = RemoteDataset.OpenAsync(Load(Path.Combine(work, "host-0"), 0), publish: true, null, CancellationToken.None).GetAwaiter().GetResult())
                Console.WriteLine($"# index: scanned and published in {scanClock.Elapsed.TotalSeconds:F2} s ({first.Count} records, {first.OpenRequests} requests, {first.OpenBytes / 1e6:F1} MB read)");

            Console.WriteLine("read_ahead | wait_fraction | waits p50 / p90 / p99 / max | batches/s | open (published index) | first batch | requests/batch | block reads | bytes fetched / record bytes | startup requests, bytes");
            Console.WriteLine("--- | --- | --- | --- | --- | --- | --- | --- | --- | ---");
            int host = 1;
            foreach (int k in readAheads)
            {
                var runs = new List<Measured>();
                for (int r = 0; r < repeats; r++) runs.Add(Once(Load(Path.Combine(work, "host-" + host++), k), classes, perClass, batches, stepsPerEpoch, stepMs, workers));
                runs.Sort((a, b) => a.Wait.CompareTo(b.Wait));
                Measured m = runs[runs.Count / 2];
                Console.WriteLine($"{k} | {m.Wait:F4} | {m.Waits} | {m.Rate:F1} | {m.Open * 1e3:F0} ms | {m.FirstBatch * 1e3:F0} ms | {m.RequestsPerBatch:F2} | {m.BlockReads} | {m.Overfetch:F3} | {m.OpenRequests}, {m.OpenBytes / 1e3:F0} KB");
            }
            Console.WriteLine($"# proxy: {proxy.Counters.Requests} requests, {proxy.Counters.BytesToClients / 1e6:F1} MB to clients; load average at the end {AnchorsCommand.LoadAverage()}");
            return 0;
        }
        finally
        {
            try { Directory.Delete(work, true); } catch (IOException) { }
        }
    }

    private sealed record Measured(double Wait, string Waits, double Rate, double Open, double FirstBatch, double RequestsPerBatch, double Overfetch, long OpenRequests, long OpenBytes, long BlockReads);

    private static Measured Once(TfdsLoadOptions load, int classes, int perClass, int batches, int stepsPerEpoch, double stepMs, int workers)
    {
        var clock = Stopwatch.StartNew();
        using var sampler = TFDatasetMultiShotMemorySampler.LoadAsync(new TFDatasetSamplerOptions
        {
            Load = load, ClassesPerBatch = classes, ExamplesPerClassPerBatch = perClass, StepsPerEpoch = stepsPerEpoch, Seed = 1, Warmup = 0,
        }).GetAwaiter().GetResult();
        double open = clock.Elapsed.TotalSeconds;
        RemoteExampleTable table = sampler.RemoteTable ?? throw new InvalidOperationException("the sampler does not read remotely");
        // The consumer takes batches from the sampler itself (workers 0: each batch is built on the consumer's thread) or
        // from a PrefetchLoader whose workers build the next batches while it trains.
        using var loader = workers > 0 ? PrefetchLoader.Create(sampler, new PrefetchOptions { Workers = workers, Depth = 4, Epochs = null }) : null;
        using var batchesIn = loader?.GetEnumerator();
        Batch Next(int b)
        {
            if (batchesIn is null) return sampler.GenerateBatchAt(b / stepsPerEpoch, b % stepsPerEpoch); // later epochs once past the first
            if (!batchesIn.MoveNext()) throw new InvalidOperationException("the loader ended early");
            return batchesIn.Current;
        }
        using (Next(0)) { }
        double firstBatch = clock.Elapsed.TotalSeconds;
        long requests0 = table.Requests;
        long stepTicks = (long)(stepMs * Stopwatch.Frequency / 1000);
        long wait = 0;
        var waits = new double[Math.Max(0, batches - 1)];
        var run = Stopwatch.StartNew();
        for (int b = 1; b < batches; b++)
        {
            long t0 = Stopwatch.GetTimestamp();
            using (Next(b))
            {
                long t1 = Stopwatch.GetTimestamp();
                wait += t1 - t0;
                waits[b - 1] = (t1 - t0) * 1e3 / Stopwatch.Frequency;
                while (Stopwatch.GetTimestamp() < t1 + stepTicks) { } // the training step
            }
        }
        double total = run.Elapsed.TotalSeconds;
        table.WaitForReadAheadAsync().GetAwaiter().GetResult();
        double waitFraction = wait / (double)Stopwatch.Frequency / total;
        // Bytes over the whole run, the first batch included (with an epoch's rows announced, it reads the dense blocks).
        long recordBytes = table.RecordBytesFetched;
        // Where the wait is: spread over every batch, or a few long stalls (and at which batch the longest was).
        int longest = waits.Length == 0 ? 0 : Array.IndexOf(waits, waits.Max()) + 1;
        Array.Sort(waits);
        string Q(double q) => waits.Length == 0 ? "-" : waits[Math.Min(waits.Length - 1, (int)(q * waits.Length))].ToString("F2", CultureInfo.InvariantCulture);
        string spread = $"{Q(0.5)} / {Q(0.9)} / {Q(0.99)} / {Q(1.0)} ms (batch {longest})";
        return new Measured(waitFraction, spread, (batches - 1) / total, open, firstBatch, (table.Requests - requests0) / (double)(batches - 1),
            recordBytes == 0 ? double.NaN : table.BytesFetched / (double)recordBytes, table.OpenRequests, table.OpenBytes, table.BlockReads);
    }

}

/// <summary>s3rver (tools/s3rver, <c>npm ci</c> there) on 127.0.0.1 at a free port with its own data folder; killed with its
/// process tree on Dispose.</summary>
internal sealed class S3rverProcess : IDisposable
{
    /// <summary>s3rver's fixed account: the only credentials it accepts.</summary>
    public const string Key = "S3RVER";

    private readonly Process _process;

    private S3rverProcess(Process process, int port) { _process = process; Endpoint = $"http://127.0.0.1:{port}"; }

    public string Endpoint { get; }

    public static S3rverProcess Start(string folder)
    {
        string script = Path.Combine(RepoRoot(), "tools", "s3rver", "node_modules", "s3rver", "bin", "s3rver.js");
        if (!File.Exists(script)) throw new InvalidOperationException($"s3rver is not installed: run `npm ci --ignore-scripts` in tools/s3rver ({script} is missing)");
        Directory.CreateDirectory(folder);
        var psi = new ProcessStartInfo("node") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (string a in new[] { script, "-d", folder, "-a", "127.0.0.1", "-p", "0" }) psi.ArgumentList.Add(a);
        var p = Process.Start(psi)!;
        var ready = new TaskCompletionSource<int>(TaskCreationOptions.RunContinuationsAsynchronously);
        p.OutputDataReceived += (_, e) =>
        {
            if (e.Data is null) return;
            var m = Regex.Match(e.Data, @"listening on 127\.0\.0\.1:(\d+)");
            if (m.Success) ready.TrySetResult(int.Parse(m.Groups[1].Value, CultureInfo.InvariantCulture));
        };
        p.ErrorDataReceived += (_, _) => { };
        p.BeginOutputReadLine();
        p.BeginErrorReadLine();
        if (!ready.Task.Wait(TimeSpan.FromSeconds(30)))
        {
            p.Kill(true);
            throw new InvalidOperationException("s3rver did not report its port within 30 s");
        }
        return new S3rverProcess(p, ready.Task.Result);
    }

    /// <summary>Creates <paramref name="bucket"/> and uploads <paramref name="dataDir"/>/<paramref name="dataset"/> under
    /// <paramref name="prefix"/> (plain PUTs: s3rver keeps aws-chunked framing as the object's bytes); returns the bytes.</summary>
    public long Upload(string bucket, string prefix, string dataDir, string dataset)
    {
        var config = new AmazonS3Config
        {
            ServiceURL = Endpoint, ForcePathStyle = true, AuthenticationRegion = "us-east-1",
            RequestChecksumCalculation = RequestChecksumCalculation.WHEN_REQUIRED, ResponseChecksumValidation = ResponseChecksumValidation.WHEN_REQUIRED,
        };
        using var client = new AmazonS3Client(new BasicAWSCredentials(Key, Key), config);
        client.PutBucketAsync(bucket).GetAwaiter().GetResult();
        long bytes = 0;
        string root = Path.Combine(dataDir, dataset);
        foreach (string f in Directory.EnumerateFiles(root, "*", SearchOption.AllDirectories))
        {
            string key = prefix + "/" + Path.GetRelativePath(dataDir, f).Replace(Path.DirectorySeparatorChar, '/');
            client.PutObjectAsync(new PutObjectRequest { BucketName = bucket, Key = key, FilePath = f, UseChunkEncoding = false }).GetAwaiter().GetResult();
            bytes += new FileInfo(f).Length;
        }
        return bytes;
    }

    private static string RepoRoot()
    {
        for (var d = new DirectoryInfo(AppContext.BaseDirectory); d is not null; d = d.Parent)
            if (File.Exists(Path.Combine(d.FullName, "Samplers.sln"))) return d.FullName;
        throw new InvalidOperationException("run from inside the repository (Samplers.sln not found above " + AppContext.BaseDirectory + ")");
    }

    public void Dispose()
    {
        try { _process.Kill(true); } catch (InvalidOperationException) { }
        _process.WaitForExit(10_000);
        _process.Dispose();
    }
}
