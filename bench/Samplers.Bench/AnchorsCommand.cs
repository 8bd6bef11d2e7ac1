using System.Diagnostics;
using System.Globalization;
using Samplers.Cache;
using Samplers.Core;
using Samplers.TorchSharp;

namespace Samplers.Bench;

/// <summary>
/// The standing comparison (bench/anchors/README.md, docs/PERFORMANCE.md): <c>dotnet run -c Release --project
/// bench/Samplers.Bench -- anchors [--rounds R] [--python PATH] [--no-anchor] [--only STAGE] [--temp DIR]</c>. For each stage it measures ours, the
/// Python/numpy anchor (bench/anchors/anchors.py, a worker process fed over stdin) and the stage's limit (the hardware
/// floor: a memcpy or a plain float32 write of the same bytes), interleaved round by round so load changes hit all three
/// alike, and prints "stage | ours | anchor | limit | ratio" with ratio = ours / limit, medians over the rounds (best in
/// brackets).
/// </summary>
/// <remarks>Not a BenchmarkDotNet benchmark: it needs a second process and a 1 GiB table; the timings are Stopwatch medians
/// of many calls. It also times the tensor copy's first 30 calls in this fresh process (tiered JIT: the "first batch"
/// figure), before anything else runs the copy.</remarks>
internal static class AnchorsCommand
{
    private static readonly CultureInfo Inv = CultureInfo.InvariantCulture;

    // VsAnchor: the stage has no hardware limit; its ratio is ours / anchor (the target is stated against the anchor).
    private sealed record Stage(string Name, string? Anchor, string Target, Func<int, (double Median, double Best)> Ours, Func<int, (double Median, double Best)> Limit, int Reps,
        bool VsAnchor = false);

    public static int Run(string[] args)
    {
        int rounds = 5;
        string python = "python3";
        bool anchor = true;
        string only = "";
        string temp = Path.GetTempPath();
        for (int i = 0; i < args.Length; i++)
        {
            switch (args[i])
            {
                case "--rounds": rounds = int.Parse(args[++i], Inv); break;
                case "--python": python = args[++i]; break;
                case "--no-anchor": anchor = false; break;
                case "--only": only = args[++i]; break;
                case "--temp": temp = args[++i]; break;
                default: Console.Error.WriteLine("usage: anchors [--rounds R] [--python PATH] [--no-anchor] [--only tensor|gather|mnist|jpeg|simclr] [--temp DIR]"); return 2;
            }
        }
        // The mapped tables' cache files (1.1 GB) go here; the anchor's raw files go to its own temp folder (TMPDIR = temp).
        string dir = Path.Combine(temp, "samplers-anchors-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(dir);
        Process? py = null;
        try
        {
            Console.WriteLine($"# {Environment.ProcessorCount} cores, load average {LoadAverage()}, {DateTime.UtcNow:yyyy-MM-dd HH:mm} UTC");
            var first = FirstCalls();
            Console.WriteLine($"# tensor copy, first call in this process: {Ms(first.First)}; median of calls 1-30: {Ms(first.Median30)}; limit {Ms(first.Limit)} (ratio {first.Median30 / first.Limit:0.00})");
            if (anchor) py = StartPython(python, temp);
            List<Stage> stages = Stages(dir, only);
            var ours = stages.ToDictionary(s => s.Name, _ => new List<(double, double)>());
            var limits = stages.ToDictionary(s => s.Name, _ => new List<(double, double)>());
            var anchors = stages.ToDictionary(s => s.Name, _ => new List<(double, double)>());
            for (int r = 0; r < rounds; r++)
            {
                foreach (Stage s in stages)
                {
                    ours[s.Name].Add(s.Ours(s.Reps));
                    if (!s.VsAnchor) limits[s.Name].Add(s.Limit(s.Reps));
                    if (py is not null && s.Anchor is not null)
                    {
                        // "stage arguments...": the JPEG stage names its file and scale.
                        string[] a = s.Anchor.Split(' ', 2);
                        anchors[s.Name].Add(AskPython(py, a[0], s.Reps, a.Length > 1 ? a[1] : ""));
                    }
                }
            }
            Console.WriteLine($"# {rounds} rounds; load average at the end {LoadAverage()}");
            Console.WriteLine("stage | ours | anchor | limit | ratio | target");
            Console.WriteLine("--- | --- | --- | --- | --- | ---");
            foreach (Stage s in stages)
            {
                (double om, double ob) = Summary(ours[s.Name]);
                string an = anchors[s.Name].Count > 0 ? Pair(Summary(anchors[s.Name])) : "-";
                if (s.VsAnchor)
                {
                    string ratio = anchors[s.Name].Count > 0 ? $"{om / Summary(anchors[s.Name]).Item1:0.00} ({ob / Summary(anchors[s.Name]).Item2:0.00}) of anchor" : "-";
                    Console.WriteLine($"{s.Name} | {Pair((om, ob))} | {an} | - | {ratio} | {s.Target}");
                    continue;
                }
                (double lm, double lb) = Summary(limits[s.Name]);
                Console.WriteLine($"{s.Name} | {Pair((om, ob))} | {an} | {Pair((lm, lb))} | {om / lm:0.00} ({ob / lb:0.00}) | {s.Target}");
            }
            return 0;
        }
        finally
        {
            if (py is not null)
            {
                try { py.StandardInput.WriteLine("quit"); py.StandardInput.Close(); if (!py.WaitForExit(30_000)) py.Kill(true); } catch (InvalidOperationException) { }
                py.Dispose();
            }
            try { Directory.Delete(dir, true); } catch (IOException) { }
        }
    }

    private static (double, double) Summary(List<(double Median, double Best)> xs)
    {
        var m = xs.Select(x => x.Median).OrderBy(x => x).ToArray();
        return (m[m.Length / 2], xs.Min(x => x.Best));
    }

    private static string Pair((double M, double B) x) => $"{Ms(x.M)} ({Ms(x.B)})";

    internal static string Ms(double seconds) => seconds >= 1e-3 ? $"{seconds * 1e3:0.00} ms" : $"{seconds * 1e6:0.00} us";

    internal static string LoadAverage()
    {
        try { return string.Join(' ', File.ReadAllText("/proc/loadavg").Split(' ').Take(3)); } catch (IOException) { return "?"; }
    }

    // Median and best of `reps` samples, each the mean of `inner` calls (so sub-microsecond stages are not timer noise).
    internal static (double Median, double Best) Time(Action a, int reps, int inner = 1)
    {
        var t = new double[reps];
        for (int r = 0; r < reps; r++)
        {
            long t0 = Stopwatch.GetTimestamp();
            for (int i = 0; i < inner; i++) a();
            t[r] = (Stopwatch.GetTimestamp() - t0) / (double)Stopwatch.Frequency / inner;
        }
        Array.Sort(t);
        return (t[reps / 2], t[0]);
    }

    // A plain float32 write of `floats` values on 2 threads: the floor for a copy that writes them.
    private static void Write2(float[] dest)
    {
        int half = dest.Length / 2;
        Parallel.For(0, 2, w => (w == 0 ? dest.AsSpan(0, half) : dest.AsSpan(half)).Fill(1f));
    }

    private static (double First, double Median30, double Limit) FirstCalls()
    {
        using Batch batch = RgbBatch();
        var dest = new float[batch.XBytes.Length];
        dest.AsSpan().Fill(0f); // pages touched: the calls below time the copy, not first-touch faults
        var (scale, bias) = BatchCopy.Affine(new TensorConversion(), 3);
        // As a user's code: make the pool, then convert the first batch at once (no time for its warm-up to finish first).
        if (Environment.GetEnvironmentVariable("ANCHORS_PROBE") == "nowarm") BatchCopy.WarmUpEnabled = false;
        new TensorBatchPool().Dispose();
        var t = new double[30];
        if (Environment.GetEnvironmentVariable("ANCHORS_PROBE") == "2")
        {
            using Batch tiny = BatchPool.Shared.Rent(DType.UInt8, [224, 224, 3], 1);
            long p0 = Stopwatch.GetTimestamp();
            BatchCopy.ToFloat32(tiny, dest, scale, bias, true);
            Console.WriteLine($"# probe: first tiny copy {Ms(Stopwatch.GetElapsedTime(p0).TotalSeconds)}");
        }
        if (Environment.GetEnvironmentVariable("ANCHORS_PROBE") is "1" or "2")
        {
            long p0 = Stopwatch.GetTimestamp();
            Parallel.For(0, 2, _ => { });
            Console.WriteLine($"# probe: first Parallel.For {Ms(Stopwatch.GetElapsedTime(p0).TotalSeconds)}");
        }
        for (int i = 0; i < t.Length; i++)
        {
            long t0 = Stopwatch.GetTimestamp();
            BatchCopy.ToFloat32(batch, dest, scale, bias, true);
            t[i] = Stopwatch.GetElapsedTime(t0).TotalSeconds;
        }
        double first = t[0];
        Console.WriteLine("# first 5 calls: " + string.Join(", ", t.Take(5).Select(Ms)));
        Array.Sort(t);
        var limit = Time(() => Write2(dest), 15);
        return (first, t[15], limit.Median);
    }

    private static Batch RgbBatch()
    {
        Batch batch = BatchPool.Shared.Rent(DType.UInt8, [224, 224, 3], 256);
        new Random(1).NextBytes(batch.XBytes); // benchmark filler only
        return batch;
    }

    private static List<Stage> Stages(string dir, string only)
    {
        var stages = new List<Stage>();
        if (only is "" or "tensor") Tensor(stages);
        if (only is "" or "gather") Gathers(stages, dir);
        if (only is "" or "mnist") Mnist(stages, dir);
        if (only is "" or "jpeg") Jpeg(stages, dir);
        if (only is "" or "simclr") SimClr(stages);
        return stages;
    }

    private static void SimClr(List<Stage> stages)
    {
        // One SimCLR view (224x224 float32) of a 500x375 RGB uint8 image, on one thread, against the PIL pipeline.
        byte[] image = ResizeBenchmarks.Photo(500, 375, 3);
        var augmenter = new Samplers.Imaging.ImageAugmenter(224, 224, Samplers.Imaging.ImageAugmenter.SimClr(224, 224).Steps, maxDegreeOfParallelism: 1);
        var view = new float[224 * 224 * 3];
        int k = 0;
        stages.Add(new("SimCLR view 224 from 500x375, 1 thread", "simclr-view", "<= 0.6 of anchor",
            reps => Time(() => augmenter.AugmentImage(image, 375, 500, 3, view, 1, 0, k++ % 1000, 0, 0), reps, 10), _ => (0, 0), 21, VsAnchor: true));
    }

    private static void Tensor(List<Stage> stages)
    {

        // Tensor copy: uint8 NHWC -> float32 NCHW / 255 into a pooled tensor (the bridge's one copy).
        Batch rgb = RgbBatch();
        var pool = new TensorBatchPool();
        pool.Convert(rgb).Dispose();
        var floats = new float[rgb.XBytes.Length];
        stages.Add(new("tensor copy 64x4 of 224x224x3", "tensor-copy", "<= 1.15",
            reps => Time(() => pool.Convert(rgb).Dispose(), reps), reps => Time(() => Write2(floats), reps), 15));
    }

    private static void Gathers(List<Stage> stages, string dir)
    {

        // Gather: 256 random rows of 224x224x3 (38.5 MB) from a 1 GiB table, in memory and mapped.
        const int rowBytes = 224 * 224 * 3;
        int rows = (1 << 30) / rowBytes;
        var b = ExampleTableBuilder.Fixed(DType.UInt8, [224, 224, 3], rows);
        for (int i = 0; i < rows; i++) { b.Slot(i).Fill((byte)i); b.SetLabel(i, i % 100); }
        ExampleTable memory = b.Build();
        ExampleTable mapped = Mapped(Path.Combine(dir, "big"), memory);
        var rnd = new Random(7);
        int[][] sets = Enumerable.Range(0, 16).Select(_ => Enumerable.Range(0, 256).Select(_ => rnd.Next(rows)).ToArray()).ToArray();
        byte[] dest = new byte[256 * rowBytes];
        byte[] source = new byte[256 << 20];
        source.AsSpan().Fill(1);
        int turn = 0;
        void Memcpy2()
        {
            int at = (turn++ % (source.Length / dest.Length)) * dest.Length;
            int half = dest.Length / 2;
            Parallel.For(0, 2, w => source.AsSpan(at + w * half, w == 0 ? half : dest.Length - half).CopyTo(dest.AsSpan(w * half)));
        }
        foreach ((string name, ExampleTable t) in new[] { ("memory", memory), ("mapped", mapped) })
        {
            int k = 0;
            stages.Add(new($"gather 256 x 150 KB, {name}", $"gather-{name}", ">= 0.8 of memcpy (ratio <= 1.25)",
                reps => Time(() => Samplers.Gather.Rows(t, sets[k++ % sets.Length], dest), reps), reps => Time(Memcpy2, reps), 21));
        }
    }

    private static void Mnist(List<Stage> stages, string dir)
    {

        // MNIST-size batches: 60000 x 28x28 uint8, 10 classes; plan + gather into the caller's buffers.
        const int n = 60_000;
        var mb = ExampleTableBuilder.Fixed(DType.UInt8, [28, 28], n);
        for (int i = 0; i < n; i++) { mb.Slot(i).Fill((byte)i); mb.SetLabel(i, i % 10); }
        ExampleTable mnist = mb.Build();
        ExampleTable mnistMapped = Mapped(Path.Combine(dir, "mnist"), mnist);
        byte[] flat = new byte[n * 784];
        flat.AsSpan().Fill(3);
        foreach (int epc in new[] { 2, 32, 128 })
        {
            int batch = 10 * epc;
            var sampler = new MultiShotMemorySampler(mnist, new SamplerOptions { ClassesPerBatch = 10, ExamplesPerClassPerBatch = epc, StepsPerEpoch = 1000, Seed = 1 });
            var x = new byte[batch * 784];
            var y = new long[batch];
            var idx = new int[batch];
            var ord = new int[batch];
            int id = 0, m = 0;
            int inner = epc == 2 ? 200 : epc == 32 ? 20 : 5;
            stages.Add(new($"MNIST 10x{epc}: plan + gather", $"mnist-10x{epc}", epc == 32 ? "<= 2 (of memcpy)" : "-",
                reps => Time(() => sampler.GenerateBatchInto<byte>(id++ % 1000, x, y), reps, inner),
                reps => Time(() => { int at = (int)((long)m++ * 7919 % (n - batch)) * 784; flat.AsSpan(at, batch * 784).CopyTo(x); }, reps, inner), 201));
            Planner planner = sampler.Planner;
            if (epc == 32)
            {
                // The gather alone against the floor of any gather of the same rows: planned rows are scattered over a
                // 47 MB table, so even a bare copy from one flat buffer, its next rows prefetched, pays a memory latency per
                // row that the contiguous memcpy above does not.
                int[][] planned = Enumerable.Range(0, 64).Select(b => { var ix = new int[batch]; planner.Fill(new PlanKey(1, 0, b), ix, new int[batch]); return ix; }).ToArray();
                int g = 0, f = 0;
                stages.Add(new($"MNIST 10x{epc}: gather only (limit = bare copy of the same rows)", null, "-",
                    reps => Time(() => Samplers.Gather.Rows(mnist, planned[g++ % planned.Length], x), reps, inner),
                    reps => Time(() => BareGather(flat, planned[f++ % planned.Length], x, 784), reps, inner), 201));
            }
            int pid = 0;
            // The planning target, as a time: 1 us fixed + 20 ns per drawn index.
            double budget = 1e-6 + 20e-9 * batch;
            stages.Add(new($"MNIST 10x{epc}: planning only", null, "<= 1 (of 1 us + 20 ns/index)",
                reps => Time(() => planner.Fill(new PlanKey(1, 0, pid++ % 1000), idx, ord), reps, inner),
                _ => (budget, budget), 201));
        }

        // The mapped table against the memory table at 10x2 (ours = mapped, limit = memory).
        var mem2 = new MultiShotMemorySampler(mnist, new SamplerOptions { ClassesPerBatch = 10, ExamplesPerClassPerBatch = 2, StepsPerEpoch = 1000, Seed = 1 });
        var map2 = new MultiShotMemorySampler(mnistMapped, new SamplerOptions { ClassesPerBatch = 10, ExamplesPerClassPerBatch = 2, StepsPerEpoch = 1000, Seed = 1 });
        CheckOptions(mnistMapped.Mapped!);
        var x2 = new byte[20 * 784];
        var y2 = new long[20];
        int i1 = 0, i2 = 0;
        stages.Add(new("MNIST 10x2: mapped (limit = memory)", "mnist-mapped-10x2", "<= 1.1",
            reps => Time(() => map2.GenerateBatchInto<byte>(i1++ % 1000, x2, y2), reps, 200),
            reps => Time(() => mem2.GenerateBatchInto<byte>(i2++ % 1000, x2, y2), reps, 200), 201));
    }

    // Rows of rowBytes at the given indices of a flat buffer, copied back to back, each row 8 ahead prefetched: the least
    // work a gather of scattered rows can do.
    private static unsafe void BareGather(byte[] flat, int[] rows, byte[] x, int rowBytes)
    {
        fixed (byte* src = flat)
        fixed (byte* dst = x)
        {
            for (int i = 0; i < rows.Length; i++)
            {
                if (i + 8 < rows.Length)
                {
                    byte* p = src + (long)rows[i + 8] * rowBytes;
                    for (int o = 0; o < rowBytes; o += 64) System.Runtime.Intrinsics.X86.Sse.Prefetch0(p + o);
                }
                Buffer.MemoryCopy(src + (long)rows[i] * rowBytes, dst + (long)i * rowBytes, rowBytes, rowBytes);
            }
        }
    }

    private static void Jpeg(List<Stage> stages, string dir)
    {
        // JPEG decode to RGB, one image per call: the product codec against PIL (open, draft, load), with the system's
        // libturbojpeg called directly (fast IDCT, RGB) as the limit: the floor for any wrapper of that library.
        var c = new JpegCandidates();
        var product = new Samplers.SkiaSharp.SkiaImageCodec();
        foreach ((string name, byte[] jpeg, int scale) in new[] { ("500x375 q90", c.Small, 1), ("1024x768 q90 at 1/2", c.Large, 2) })
        {
            string path = Path.Combine(dir, $"anchor-{scale}.jpg");
            File.WriteAllBytes(path, jpeg);
            var (h, w) = JpegCandidates.Size(jpeg, scale);
            stages.Add(new($"JPEG {name} -> RGB", $"jpeg {path} {scale} 0", "ours <= anchor (PIL)",
                reps => Time(() => product.Decode(jpeg, h, w, 3, c.Dst, null), reps),
                reps => Time(() => c.Turbo(jpeg, scale, Samplers.SkiaSharp.TurboJpeg.FlagFastDct), reps), 41));
        }
    }

    // What the per-batch change check of the mapped table costs (a memory read under a file lease, else a statx), and
    // what a statx alone costs on this machine (the check where the kernel refuses a lease).
    private static void CheckOptions(MappedRows rows)
    {
        var statx = Time(() => FileIdentity.Of(rows.File), 101, 200);
        var check = Time(rows.CheckUnchanged, 101, 200);
        Console.WriteLine($"# mapped change check ({rows.ChangeCheck}{(FileLease.LastRefusal is string why ? ": lease refused, " + why : "")}): CheckUnchanged {Ms(check.Median)} ({Ms(check.Best)}), statx alone {Ms(statx.Median)} ({Ms(statx.Best)}) on {rows.Path}");
    }

    private static ExampleTable Mapped(string dir, ExampleTable table)
    {
        var cache = new ParquetCache(new ParquetCacheOptions { Directory = dir });
        var key = new CacheKey(dir, "anchors", "", "1.0.0", "train", "image", "label");
        var fp = SourceFingerprint.FromValue("anchors");
        var stored = cache.StoreAsync(key, fp, table).GetAwaiter().GetResult();
        if (!stored.Stored) throw new InvalidOperationException("store failed: " + stored.Detail);
        return cache.TryLoadAsync(key, fp, TableBacking.Mapped).GetAwaiter().GetResult().Table ?? throw new InvalidOperationException("mapped load failed");
    }

    internal static Process? StartPython(string python, string temp)
    {
        string script = Path.Combine(AppContext.BaseDirectory, "anchors", "anchors.py");
        var psi = new ProcessStartInfo(python, [script])
        {
            RedirectStandardInput = true,
            RedirectStandardOutput = true,
            UseShellExecute = false,
        };
        psi.Environment["OMP_NUM_THREADS"] = "1";
        psi.Environment["TMPDIR"] = temp;
        try
        {
            var p = Process.Start(psi)!;
            p.StandardInput.AutoFlush = true;
            return p;
        }
        catch (System.ComponentModel.Win32Exception e)
        {
            Console.WriteLine($"# no anchor: cannot start {python} ({e.Message}); pass --python PATH to an interpreter with numpy");
            return null;
        }
    }

    internal static (double, double) AskPython(Process py, string stage, int reps, string arguments = "")
    {
        py.StandardInput.WriteLine($"{stage} {reps} {arguments}".TrimEnd());
        string? line = py.StandardOutput.ReadLine()
            ?? throw new InvalidOperationException($"the anchor worker ended while measuring {stage} (is numpy installed for this interpreter? pass --python PATH)");
        string[] p = line.Split(' ');
        return (double.Parse(p[0], Inv), double.Parse(p[1], Inv));
    }
}
