using System.CommandLine;
using System.Globalization;
using Samplers.Tfds;

namespace Samplers.Cli;

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
            "A split whose shard files are missing is listed with the files it lacks and left out of the counts (exit 0 while the metadata is readable).\n" +
            "With --download, an absent dataset (or missing shard files) is downloaded first.\n" +
            "An s3:// --data-dir is copied first (--s3-access copy, the default); with --s3-access remote, info reads the metadata and the record index only " +
            "(building the index with one pass over the shards if neither the local cache nor the bucket holds it) and counts the classes from the index's labels.\n\n" +
            "Examples:\n  samplers info\n  samplers info mnist --data-dir ~/tensorflow_datasets\n  samplers info mnist --splits train --json\n  samplers info mnist --no-counts --download\n" +
            "  samplers info mnist:3.0.1 --data-dir s3://my-bucket/tfds --s3-access remote",
            [dataset, noCounts], s.Options.LoadOptions, async (r, c, ct) =>
        {
            var options = s.LoadSettings(r, r.GetValue(dataset));
            LoadedDataset? data = null;
            DatasetBuilderDir dir;
            var skipped = new List<string>();
            // A bucket read remotely: the metadata and the record index (built with one pass over the shards if neither
            // this host's cache nor the bucket has it), never a copy of the data; the counts come from the index's labels.
            Samplers.Tfds.RemoteExampleTable? remote = null;
            if (Samplers.Storage.ObjectStoreLocation.IsRemote(options.DataDir) && options.ObjectStore?.Access != Samplers.Storage.ObjectStoreAccess.Remote)
                throw new UsageException($"info reads an object-store --data-dir ({options.DataDir}) with --s3-access remote: the metadata and the record index only, never a copy of the data. Add --s3-access remote.");
            if (Samplers.Storage.ObjectStoreLocation.IsRemote(options.DataDir) && options.ObjectStore?.Access == Samplers.Storage.ObjectStoreAccess.Remote)
                remote = await Progress.Run(c, $"opening {options.DatasetName} at {options.DataDir} for remote access",
                    (p, t) => Samplers.Tfds.RemoteDataset.OpenAsync(options with { Logger = c.Verbose ? new StderrLogger(c.Err) : null }, publish: false,
                        new SyncProgress<LoadProgress>(x => p.Report((x.ExamplesDone, x.ExamplesTotal))), t), ct).ConfigureAwait(false);
            using var remoteOwned = remote;
            // Without --download, a split spec whose shard files are missing is left out of the counts and the cache
            // lookup (and reported below) instead of failing the command: info is how one finds out what is there.
            DatasetBuilderDir? opened = remote?.Builder;
            if (remote is null && (options.Download is null || r.GetValue(noCounts))) opened = await OpenAsync(options, ct).ConfigureAwait(false);
            if (opened is not null && remote is null)
            {
                var loadable = options.Splits.Where(spec => !NeedsMissingShard(opened, spec)).ToList();
                skipped = options.Splits.Except(loadable).ToList();
                if (loadable.Count < options.Splits.Count) options = options with { Splits = loadable };
            }
            if (r.GetValue(noCounts) || options.Splits.Count == 0 || remote is not null) dir = opened!;
            else
            {
                data = await s.LoadAsync(c, options, null, ct).ConfigureAwait(false);
                dir = data.Dir;
            }
            // Which shard files each split lacks (only shards that hold examples need to exist).
            // (In a bucket read remotely, opening listed them: a missing shard fails the open, naming it.)
            var missing = dir.Info.Splits.ToDictionary(sp => sp.Name, sp => remote is not null ? [] :
                dir.ShardPaths(sp.Name).Where((p, i) => sp.ShardLengths[i] > 0 && !File.Exists(p)).ToArray(), StringComparer.Ordinal);
            string[] versions = Catalog.Versions(dir);
            string[] configs = Catalog.Configs(dir);
            var features = dir.Features.Select(f => new
            {
                key = f.Key, type = f.Kind.ToString(), dtype = DTypes.Name(f.DType), shape = f.Shape,
                numClasses = f.Kind == FeatureKind.ClassLabel ? f.NumClasses : (long?)null,
            }).ToArray();
            var splits = dir.Info.Splits.Select(sp => new
            {
                name = sp.Name, examples = sp.NumExamples, shards = sp.ShardLengths.Length, bytes = sp.NumBytes,
                present = missing[sp.Name].Length == 0, missingFiles = missing[sp.Name],
            }).ToArray();
            IReadOnlyList<ClassCount>? classes = remote is not null
                ? (r.GetValue(noCounts) ? null : remote.LabelsOnly(remote.DType, remote.ExampleShape.ToArray()).ClassCounts())
                : data?.Table.ClassCounts();
            bool nothingLoadable = options.Splits.Count == 0;
            var entry = nothingLoadable || remote is not null ? null : TfdsCacheEntry.Resolve(options);
            string cacheStatus = remote is not null
                ? "remote access (no table cache); record index: " + string.Join(", ", remote.Indexes.Select(i => $"{i.Split} {i.Origin.ToString().ToLowerInvariant()}")) +
                  $"; opening made {remote.OpenRequests} requests, {remote.OpenBytes} bytes"
                : nothingLoadable ? "not looked up: no requested split has all its shard files" : (entry, data) switch
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
                    versions, configs, features, splits, loadedSplits = data is null && remote is null ? [] : options.Splits, skippedSplits = skipped, classes, cache = cacheStatus,
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
            CliShared.Table(w, ["split", "examples", "shards", "bytes", "files"], splits.Select(sp => new[]
            {
                sp.name, sp.examples.ToString(Inv), sp.shards.ToString(Inv), sp.bytes.ToString(Inv),
                sp.present ? "present" : string.Create(Inv, $"missing {sp.missingFiles.Length} of {sp.shards} shard files"),
            }));
            var incomplete = splits.Where(sp => !sp.present).Select(sp => sp.name).ToArray();
            if (incomplete.Length > 0)
            {
                string dataDir = r.GetValue(s.Options.DataDir) is { } given ? $" --data-dir {given}" : "";
                w.WriteLine($"missing files (fetch them with 'samplers download {dir.FullName} --splits {string.Join(",", incomplete)}{dataDir}', or prepare the dataset again)");
                CliShared.Table(w, ["split", "file"], splits.SelectMany(sp => sp.missingFiles.Select(f => new[] { sp.name, f })));
            }
            if (classes is not null)
            {
                w.WriteLine($"classes in {string.Join(",", options.Splits)} (y_key {options.YKey})" + (skipped.Count > 0 ? $"; not counted: {string.Join(",", skipped)} (shard files missing)" : ""));
                CliShared.Table(w, ["label", "name", "count"], classes.Select(k => new[] { k.Label.ToString(Inv), k.Name, k.Count.ToString(Inv) }));
            }
            else if (skipped.Count > 0)
                w.WriteLine($"classes   not counted: {string.Join(",", skipped)} (shard files missing)");
            w.WriteLine($"cache     {cacheStatus}");
            return Program.ExitOk;
        });
    }

    /// <summary>True when <paramref name="spec"/> needs a shard file that is missing (other problems with it are left for
    /// loading to report).</summary>
    private static bool NeedsMissingShard(DatasetBuilderDir dir, string spec)
    {
        try
        {
            dir.Select(spec);
            return false;
        }
        catch (DatasetNotFoundException e) when (e.FilePath is { } path && path != dir.Info.FilePath && !File.Exists(path))
        {
            return true;
        }
        catch (Exception e) when (e is SamplersDataException or ArgumentException or IOException)
        {
            return false;
        }
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
