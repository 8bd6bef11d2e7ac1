using Samplers.DatasetGen;

// Usage: dotnet run --project tools/Samplers.DatasetGen -- <data dir>
//   writes <data dir>/synthetic_digits/1.0.0/ (docs/EMBEDDED_DATASET.md).
// Usage: dotnet run --project tools/Samplers.DatasetGen -- photos <data dir> [train] [test] [minSide] [maxSide] [shards]
//   writes <data dir>/synthetic_photos/1.0.0/: variable-size JPEGs (docs/IMAGES.md); defaults 2000 500 200 800 4.
// Usage: dotnet run --project tools/Samplers.DatasetGen -c Release -- synthetic <data dir> --examples N --shape HxWxC --classes C
//          [--shards S] [--name NAME] [--seed K] [--format png|tensor] [--test N]
//   writes <data dir>/<NAME, default synthetic_large>/1.0.0/ for benchmarks (docs/MAPPED.md), streaming shard by shard.
if (args.Length >= 1 && args[0] == "synthetic")
{
    SyntheticOptions o;
    try
    {
        o = SyntheticLarge.Parse(args[1..]);
    }
    catch (ArgumentException e)
    {
        Console.Error.WriteLine($"synthetic: {e.Message}. {SyntheticLarge.Usage}");
        return 2;
    }
    var clock = System.Diagnostics.Stopwatch.StartNew();
    string dir = SyntheticLarge.Write(o);
    Report(dir);
    long total = new DirectoryInfo(dir).EnumerateFiles().Sum(f => f.Length);
    Console.WriteLine($"{clock.Elapsed.TotalSeconds:F1} s, {(o.Examples + o.Test) / clock.Elapsed.TotalSeconds:F0} examples/s, {total / 1e6 / clock.Elapsed.TotalSeconds:F0} MB/s, peak working set {System.Diagnostics.Process.GetCurrentProcess().PeakWorkingSet64 / 1e6:F0} MB");
    return 0;
}
if (args.Length >= 2 && args[0] == "photos")
{
    int Arg(int i, int fallback) => args.Length > i ? int.Parse(args[i], System.Globalization.CultureInfo.InvariantCulture) : fallback;
    string photos = SyntheticPhotos.Write(args[1], Arg(2, 2000), Arg(3, 500), Arg(4, 200), Arg(5, 800), Arg(6, 4));
    Report(photos);
    return 0;
}
if (args.Length != 1 || args[0] is "-h" or "--help")
{
    Console.Error.WriteLine("usage: Samplers.DatasetGen <data dir>   (writes <data dir>/synthetic_digits/1.0.0/)");
    Console.Error.WriteLine("       " + SyntheticLarge.Usage[7..]);
    Console.Error.WriteLine("       Samplers.DatasetGen photos <data dir> [train] [test] [minSide] [maxSide] [shards]   (writes <data dir>/synthetic_photos/1.0.0/)");
    return args.Length == 1 ? 0 : 2;
}
Report(SyntheticDigits.Write(args[0]));
return 0;

static void Report(string dir)
{
    long bytes = new DirectoryInfo(dir).EnumerateFiles().Sum(f => f.Length);
    Console.WriteLine($"wrote {Path.GetRelativePath(Environment.CurrentDirectory, dir)} ({bytes:N0} bytes)");
}
