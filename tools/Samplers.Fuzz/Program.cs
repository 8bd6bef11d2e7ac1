using Samplers.Fuzz;

// Usage:
//   Samplers.Fuzz <target>                   run under afl-fuzz (SharpFuzz's AFL loop; the input comes from AFL)
//   Samplers.Fuzz <target> --replay <dir>    run every file of <dir> through the target in-process (no AFL)
// Targets: tfrecord, example, features-json, dataset-info-json, image, parquet-page, npy-header, labels-file, verify-stamp.
if (args.Length == 0 || !FuzzTargets.Names.Contains(args[0]))
{
    Console.Error.WriteLine($"usage: Samplers.Fuzz <target> [--replay <dir>]; targets: {string.Join(", ", FuzzTargets.Names)}");
    return 64;
}
string target = args[0];
if (args.Length == 3 && args[1] == "--replay")
{
    int n = 0;
    foreach (string file in Directory.EnumerateFiles(args[2]).Order(StringComparer.Ordinal))
    {
        FuzzTargets.Run(target, File.ReadAllBytes(file));
        n++;
    }
    Console.WriteLine($"{target}: {n} inputs replayed without a finding");
    return 0;
}
SharpFuzz.Fuzzer.OutOfProcess.Run(stream =>
{
    using var ms = new MemoryStream();
    stream.CopyTo(ms);
    FuzzTargets.Run(target, ms.ToArray());
});
return 0;
