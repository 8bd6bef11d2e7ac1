using System.CommandLine;
using System.Globalization;
using Samplers.Tfds;

namespace Samplers.Cli.Commands;

/// <summary><c>samplers info [dataset]</c>: versions, configs, features, splits, per-class counts, cache status.</summary>
internal static class InfoCommand
{
    private static readonly CultureInfo Inv = CultureInfo.InvariantCulture;

    public static Command Build(CliShared s)
    {
        var dataset = CliShared.DatasetArgument();
        var noCounts = new Option<bool>("--no-counts") { Description = "Skip loading the splits (no per-class counts)." };
        return s.Define("info",
            "Versions, configs, features (key, type, shape, dtype), splits with sizes, class names and per-class counts of the loaded splits, cache status.\n" +
            "With --download, an absent dataset is downloaded first.\n\n" +
            "Examples:\n  samplers info\n  samplers info mnist --data-dir ~/tensorflow_datasets\n  samplers info mnist --splits train --json\n  samplers info mnist --no-counts --download",
            [dataset, noCounts], s.Options.LoadOptions, async (r, c, ct) =>
        {
            var options = s.LoadSettings(r, r.GetValue(dataset));
            LoadedDataset? data = null;
            DatasetBuilderDir dir;
            if (r.GetValue(noCounts)) dir = await OpenAsync(options, ct).ConfigureAwait(false);
            else
            {
                data = await s.LoadAsync(c, options, null, ct).ConfigureAwait(false);
                dir = data.Dir;
            }
            string[] versions = Catalog.Versions(dir);
            string[] configs = Catalog.Configs(dir);
            var features = dir.Features.Select(f => new
            {
                key = f.Key, type = f.Kind.ToString(), dtype = DTypes.Name(f.DType), shape = f.Shape,
                numClasses = f.Kind == FeatureKind.ClassLabel ? f.NumClasses : (long?)null,
            }).ToArray();
            var splits = dir.Info.Splits.Select(sp => new { name = sp.Name, examples = sp.NumExamples, shards = sp.ShardLengths.Length, bytes = sp.NumBytes }).ToArray();
            IReadOnlyList<ClassCount>? classes = data?.Table.ClassCounts();
            var entry = TfdsCacheEntry.Resolve(options);
            string cacheStatus = (entry, data) switch
            {
                (null, _) => "off",
                (_, null) => entry.Exists ? $"present: {entry.Path} ({entry.Bytes} bytes; `samplers cache {options.DatasetName} verify` checks it)" : $"absent: {entry.Path}",
                _ => data.FromCache ? $"hit: {data.CachePath}" : entry.Exists ? $"built now: {data.CachePath}" : $"not stored: {data.CacheDetail.TrimStart(';', ' ')}",
            };
            if (c.Json)
            {
                c.WriteJson(new
                {
                    dataset = dir.FullName, name = dir.Name, config = dir.Config, version = dir.Version, path = dir.Path,
                    versions, configs, features, splits, loadedSplits = options.Splits, classes, cache = cacheStatus,
                });
                return Program.ExitOk;
            }
            var w = c.Out;
            w.WriteLine($"dataset   {dir.FullName}");
            w.WriteLine($"path      {dir.Path}");
            w.WriteLine($"versions  {string.Join(", ", versions)}");
            w.WriteLine($"configs   {(configs.Length == 0 ? "none" : string.Join(", ", configs))}");
            w.WriteLine("features");
            CliShared.Table(w, ["key", "type", "dtype", "shape", "classes"],
                features.Select(f => new[] { f.key, f.type, f.dtype, "(" + string.Join(", ", f.shape) + ")", f.numClasses?.ToString(Inv) ?? "" }));
            w.WriteLine("splits");
            CliShared.Table(w, ["split", "examples", "shards", "bytes"], splits.Select(sp => new[] { sp.name, sp.examples.ToString(Inv), sp.shards.ToString(Inv), sp.bytes.ToString(Inv) }));
            if (classes is not null)
            {
                w.WriteLine($"classes in {string.Join(",", options.Splits)} (y_key {options.YKey})");
                CliShared.Table(w, ["label", "name", "count"], classes.Select(k => new[] { k.Label.ToString(Inv), k.Name, k.Count.ToString(Inv) }));
            }
            w.WriteLine($"cache     {cacheStatus}");
            return Program.ExitOk;
        });
    }

    /// <summary>Opens the dataset without loading it; with --download, an absent one is fetched first (the same handler the
    /// loader calls).</summary>
    private static async Task<DatasetBuilderDir> OpenAsync(TfdsLoadOptions options, CancellationToken ct)
    {
        try
        {
            return Catalog.Open(options.DataDir, options.DatasetName);
        }
        catch (DatasetNotFoundException notFound) when (options.Download is not null)
        {
            await options.Download(new TfdsDownloadRequest(DataDirectory.Resolve(options.DataDir), options.DatasetName, options.Splits, notFound), null, ct).ConfigureAwait(false);
            return Catalog.Open(options.DataDir, options.DatasetName);
        }
    }
}
