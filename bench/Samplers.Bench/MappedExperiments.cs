using System.Diagnostics;
using System.Globalization;
using Samplers.Cache;

namespace Samplers.Bench;

/// <summary>
/// The mapped-table measurements that BenchmarkDotNet cannot make (files of several GB, cold page cache, a memory
/// cgroup, several processes): <c>dotnet run -c Release --project bench/Samplers.Bench -- mapped &lt;command&gt; ...</c>.
/// docs/MAPPED.md gives the commands and the figures they printed.
/// </summary>
/// <remarks>
/// <list type="bullet">
/// <item><c>write DIR GB [HxWxC]</c>: writes a cache file of about GB gigabytes of uint8 examples (default 64x64x3, 1000
/// classes) into DIR through <see cref="ParquetCache.StoreAsync"/>. The table's chunks all share one 1 GiB buffer of random
/// bytes, so an 8 GB file needs 1 GiB of RAM to write; the file itself holds every row.</item>
/// <item><c>open DIR [REPEATS] [unstamped]</c>: opens the file mapped REPEATS times (default 5) and prints each time and the
/// median; <c>unstamped</c> deletes the verification stamp before each open, so each open verifies the payload checksum.</item>
/// <item><c>sample DIR mapped|memory READAHEAD SECONDS [CPB EPC]</c>: opens the table, samples batches for SECONDS with
/// read-ahead READAHEAD batches (or <c>auto</c>: the sampler's default rule), prints batches/s and MB/s; with <c>hold</c> as a 7th argument it keeps going until killed
/// (for Pss measurements).</item>
/// </list>
/// </remarks>
internal static class MappedExperiments
{
    private static readonly SourceFingerprint Fingerprint = SourceFingerprint.FromValue("mapped-bench");
    private static CacheKey KeyFor(string dir) => new(dir, "bench_images", "", "1.0.0", "train", "image", "label");
    private static ParquetCache CacheFor(string dir) => new(new ParquetCacheOptions { Directory = dir });
    private static readonly CultureInfo Inv = CultureInfo.InvariantCulture;

    public static int Run(string[] args)
    {
        if (args.Length < 2) return Usage();
        string dir = Path.GetFullPath(args[1]);
        return args[0] switch
        {
            "write" => Write(dir, double.Parse(args[2], Inv), args.Length > 3 ? args[3] : "64x64x3"),
            "open" => Open(dir, args.Length > 2 ? int.Parse(args[2], Inv) : 5, args.Length > 3 && args[3] == "unstamped"),
            "sample" => Sample(dir, args[2], args[3] == "auto" ? null : int.Parse(args[3], Inv), double.Parse(args[4], Inv),
                args.Length > 5 ? int.Parse(args[5], Inv) : 32, args.Length > 6 ? int.Parse(args[6], Inv) : 4, args.Length > 7 && args[7] == "hold"),
            _ => Usage(),
        };
    }

    private static int Usage()
    {
        Console.Error.WriteLine("usage: mapped write DIR GB [HxWxC] | mapped open DIR [REPEATS] [unstamped] | mapped sample DIR mapped|memory READAHEAD SECONDS [CPB EPC [hold]]");
        return 2;
    }

    private static int Write(string dir, double gb, string shapeText)
    {
        int[] shape = shapeText.Split('x').Select(s => int.Parse(s, Inv)).ToArray();
        int stride = shape.Aggregate(1, (a, b) => a * b);
        long rows = (long)(gb * 1e9 / stride);
        int perChunk = (int)Math.Min(rows, ExampleTable.DefaultChunkBytes / stride);
        byte[] buffer = GC.AllocateUninitializedArray<byte>(perChunk * stride);
        new Random(13).NextBytes(buffer); // benchmark filler only: nothing here feeds a plan
        int chunks = (int)((rows + perChunk - 1) / perChunk);
        var labels = new long[rows];
        for (long i = 0; i < rows; i++) labels[i] = (i * 7919) % 1000;
        var table = new ExampleTable(DType.UInt8, shape, Enumerable.Repeat(buffer, chunks).ToArray(), stride, perChunk, labels, null,
            Enumerable.Range(0, 1000).Select(c => "class" + c.ToString(Inv)).ToArray());
        Directory.CreateDirectory(dir);
        var sw = Stopwatch.StartNew();
        CacheStoreResult r = CacheFor(dir).StoreAsync(KeyFor(dir), Fingerprint, table).GetAwaiter().GetResult();
        if (!r.Stored) { Console.Error.WriteLine(r.Detail); return 1; }
        Console.WriteLine(string.Create(Inv, $"wrote {r.Path}: {r.Bytes / 1e9:0.000} GB, {rows} rows of [{shapeText}] in {sw.Elapsed.TotalSeconds:0.0} s"));
        return 0;
    }

    private static ExampleTable Load(string dir, TableBacking backing)
    {
        CacheLoadResult r = CacheFor(dir).TryLoadAsync(KeyFor(dir), Fingerprint, backing).GetAwaiter().GetResult();
        return r.Table ?? throw new InvalidOperationException(r.Detail);
    }

    private static int Open(string dir, int repeats, bool unstamped)
    {
        var times = new List<double>();
        ExampleTable? t = null;
        int verified = 0;
        for (int i = 0; i < repeats; i++)
        {
            if (unstamped) VerifyStamp.Delete(CacheFor(dir).GetPath(KeyFor(dir)));
            var sw = Stopwatch.StartNew();
            t = Load(dir, TableBacking.Mapped);
            times.Add(sw.Elapsed.TotalMilliseconds);
            if (t.Mapped!.PayloadVerifiedAtOpen) verified++;
        }
        times.Sort();
        long bytes = new FileInfo(t!.MappedPath!).Length;
        Console.WriteLine(string.Create(Inv, $"open mapped {bytes / 1e9:0.000} GB, {t.Count} rows, {t.ChunkCount} pages, {verified} of {repeats} opens verified the payload: median {times[times.Count / 2]:0.0} ms (runs: {string.Join(", ", times.Select(x => x.ToString("0.0", Inv)))})"));
        return 0;
    }

    private static int Sample(string dir, string backing, int? readAhead, double seconds, int cpb, int epc, bool hold)
    {
        var sw = Stopwatch.StartNew();
        ExampleTable table = Load(dir, backing == "mapped" ? TableBacking.Mapped : TableBacking.Memory);
        double openMs = sw.Elapsed.TotalMilliseconds;
        var sampler = new MultiShotMemorySampler(table, new SamplerOptions
        {
            ClassesPerBatch = cpb, ExamplesPerClassPerBatch = epc, StepsPerEpoch = 1_000_000, Seed = 5, ReadAheadBatches = readAhead,
        });
        Console.Error.WriteLine(string.Create(Inv, $"pid {Environment.ProcessId}: {backing} table of {table.Count} rows ready in {openMs:0} ms"));
        long batches = 0, bytes = 0;
        sw.Restart();
        while (hold || sw.Elapsed.TotalSeconds < seconds)
        {
            using Batch b = sampler[(int)(batches % sampler.Count)];
            bytes += b.XBytes.Length;
            batches++;
            if (hold && batches % 1000 == 0 && sw.Elapsed.TotalSeconds >= seconds) { Console.WriteLine("steady"); Console.Out.Flush(); seconds = double.MaxValue; }
        }
        double s = sw.Elapsed.TotalSeconds;
        Console.WriteLine(string.Create(Inv, $"{backing} readahead {(readAhead is null ? "auto=" : "")}{sampler.ReadAheadBatches}: {batches} batches of {cpb}x{epc} in {s:0.0} s = {batches / s:0.0} batches/s, {bytes / s / 1e6:0.0} MB/s"));
        return 0;
    }
}
