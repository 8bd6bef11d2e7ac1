using Samplers.DatasetGen;

// Usage: dotnet run --project tools/Samplers.DatasetGen -- <data dir>
//   writes <data dir>/synthetic_digits/1.0.0/ (docs/EMBEDDED_DATASET.md).
// Usage: dotnet run --project tools/Samplers.DatasetGen -- photos <data dir> [train] [test] [minSide] [maxSide] [shards]
//   writes <data dir>/synthetic_photos/1.0.0/: variable-size JPEGs (docs/IMAGES.md); defaults 2000 500 200 800 4.
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
