using System.CommandLine;
using Samplers.Cli.Export;

namespace Samplers.Cli;

/// <summary><c>samplers export [dataset] --out PATH</c>: decoded examples (or planned batches) to NumPy files.</summary>
internal static class ExportCommand
{
    public static Command Build(CliShared s)
    {
        var dataset = CliShared.DatasetArgument();
        var outPath = new Option<string>("--out", "-o") { Description = "Output: a .npz file, or a folder of .npy files with --format npy.", Required = true };
        var format = new Option<string>("--format", "-f") { Description = "npz (one archive, as np.savez) or npy (a folder: x.npy, y.npy, id.npy, ...).", DefaultValueFactory = _ => "npz" };
        format.AcceptOnlyFromAmong("npz", "npy");
        var compress = new Option<bool>("--compress") { Description = "Deflate the .npz members (as np.savez_compressed)." };
        var batches = new Option<string?>("--batches", "-b") { Description = "Export the rows of these planned batches (START:END of epoch --epoch) instead of the examples." };
        var epoch = new Option<int>("--epoch") { Description = "Epoch of --batches.", DefaultValueFactory = _ => 0 };
        return s.Define("export",
            "Writes decoded examples to NumPy: x (examples), y (int64 labels), id (TFDS ids) for the selected splits (and --class-list / --total-examples-per-class); " +
            "with --batches, the rows of planned batches in order, plus index (source row), epoch and batch arrays.\n\n" +
            "Examples:\n  samplers export --splits test --out digits-test.npz\n  samplers export mnist --splits test --out mnist-test.npz\n  samplers export mnist --format npy --out mnist-npy\n" +
            "  samplers export mnist -c 10 -e 2 --seed 7 --batches 0:100 --out batches.npz\n  python -c \"import numpy as np; d = np.load('mnist-test.npz'); print(d['x'].shape)\"",
            [dataset, outPath, format, compress, batches, epoch, s.Options.Resize], s.Options.SamplerOptions, async (r, c, ct) =>
        {
            string path = r.GetValue(outPath)!;
            bool folder = r.GetValue(format) == "npy";
            int e = r.GetValue(epoch);
            string? range = r.GetValue(batches);
            if (range is not null && e < 0) throw new UsageException($"--epoch must be 0 or more, but was {e}.");
            CheckOutput(path, folder);
            var options = s.Settings(r, r.GetValue(dataset));
            bool sampling = range is not null || options.ClassList is not null || options.TotalExamplesPerClass is not null;
            var data = await s.LoadAsync(c, options.Load, sampling ? options : null, ct).ConfigureAwait(false);
            var exportOptions = new NumpyExportOptions { Folder = folder, Compress = r.GetValue(compress) };
            int rows;
            if (range is null)
            {
                // Without batches, the examples the sampler would draw from: every row unless a class list or total per class selects.
                if (sampling) exportOptions = NumpyExport.SamplerRows(CliShared.Sampler(data, options), exportOptions);
                rows = exportOptions.Rows?.Count ?? data.Table.Count;
            }
            else
            {
                var sampler = CliShared.Sampler(data, options);
                var (start, end) = CommonOptions.ParseRange(range, sampler.Count, "--batches");
                exportOptions = NumpyExport.PlannedBatches(sampler, e, start, end, exportOptions);
                rows = exportOptions.Rows!.Count;
            }
            IReadOnlyList<string> members;
            try
            {
                members = NumpyExport.Write(data.Table, path, exportOptions, ct);
            }
            catch (Exception x) when (x is IOException or UnauthorizedAccessException)
            {
                // The writer works on a temporary name beside the output; the user knows the path they gave.
                throw new IOException($"Could not write {Path.GetFullPath(path)}: {x.GetType().Name}: {x.Message}", x);
            }
            if (c.Json)
                c.WriteJson(new { path = Path.GetFullPath(path), format = folder ? "npy" : "npz", rows, members, dtype = DTypes.Name(data.Table.DType), exampleShape = data.Table.ExampleShape.ToArray() });
            else
                c.Out.WriteLine($"wrote {rows} rows ({string.Join(", ", members)}; x {DTypes.Name(data.Table.DType)} ({string.Join(", ", data.Table.ExampleShape.ToArray())})) to {Path.GetFullPath(path)}");
            return Program.ExitOk;
        });
    }

    /// <summary>Before loading: the folder that will hold the output exists, and a .npz path is not a folder.</summary>
    private static void CheckOutput(string path, bool folder)
    {
        string full = Path.GetFullPath(path);
        string? parent = Path.GetDirectoryName(full.TrimEnd(Path.DirectorySeparatorChar));
        if (parent is not null && !Directory.Exists(parent))
            throw new UsageException($"--out {path}: the folder {parent} does not exist. Create it first, or choose another --out.");
        if (!folder && Directory.Exists(full))
            throw new UsageException($"--out {path} is a folder; give a file name for the .npz (or --format npy to write a folder of .npy files).");
        if (!folder)
        {
            // A block device or a socket: refused here, as a usage error, rather than by the writer after loading.
            try { _ = OutputTarget.Resolve(full); }
            catch (ArgumentException a) { throw new UsageException($"--out {path}: {ErrorPolicy.WithoutParameterTail(a)}."); }
        }
        if (folder && File.Exists(full))
            throw new UsageException($"--out {path} is a file; --format npy writes a folder of .npy files. Choose another --out.");
    }
}
