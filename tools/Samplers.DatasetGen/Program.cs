using Samplers.DatasetGen;

// Usage: dotnet run --project tools/Samplers.DatasetGen -- <data dir>
// Writes <data dir>/synthetic_digits/1.0.0/ (docs/EMBEDDED_DATASET.md).
if (args.Length != 1 || args[0] is "-h" or "--help")
{
    Console.Error.WriteLine("usage: Samplers.DatasetGen <data dir>   (writes <data dir>/synthetic_digits/1.0.0/)");
    return args.Length == 1 ? 0 : 2;
}
string dir = SyntheticDigits.Write(args[0]);
long bytes = new DirectoryInfo(dir).EnumerateFiles().Sum(f => f.Length);
Console.WriteLine($"wrote {Path.GetRelativePath(Environment.CurrentDirectory, dir)} ({bytes:N0} bytes)");
return 0;
