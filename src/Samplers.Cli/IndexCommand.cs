using System.CommandLine;
using System.Globalization;
using Samplers.Storage;
using Samplers.Tfds;

namespace Samplers.Cli;

/// <summary><c>samplers index DATASET --data-dir s3://...</c>: builds (or checks) the record index remote access uses,
/// and with <c>--publish</c> writes it next to the data so later hosts load it instead of scanning the shards.</summary>
internal static class IndexCommand
{
    public static Command Build(CliShared s)
    {
        var dataset = new Argument<string>("dataset") { Description = "The dataset: name, name/config or name[/config]:version (e.g. mnist:3.0.1)." };
        var publish = new Option<bool>("--publish") { Description = "Also write each split's index to the bucket (<version>/samplers-index/<split>.sidx). Nothing is written to the bucket without it." };
        var cmd = s.Describe(new Command("index"),
            "Builds the record index of an object-store dataset (s3://bucket/prefix --data-dir) for remote access: one streaming pass over every shard of the " +
            "requested splits (both CRCs of every record checked, labels read), kept in the local cache folder and reused while the shards' sizes and ETags match. " +
            "With --publish the index is also written next to the data, so that later hosts load it instead of scanning.\n\n" +
            "Examples:\n  samplers index mnist:3.0.1 --data-dir s3://my-bucket/tfds --splits train\n  samplers index mnist:3.0.1 --data-dir s3://my-bucket/tfds --s3-endpoint http://127.0.0.1:9000 --publish --json");
        foreach (Symbol symbol in new Symbol[] { dataset, publish, s.Options.DataDir, s.Options.S3Endpoint, s.Options.S3Anonymous, s.Options.CacheDir, s.Options.Splits, s.Options.XKey, s.Options.YKey })
        {
            if (symbol is Argument a) cmd.Add(a);
            else cmd.Add((Option)symbol);
        }
        cmd.SetAction(s.Guarded(async (r, c, ct) =>
        {
            var load = s.Options.ToLoadOptions(r, r.GetValue(dataset)!);
            if (!ObjectStoreLocation.IsRemote(load.DataDir))
                throw new UsageException($"--data-dir must be an object-store location (s3://bucket/prefix) for index, but was '{load.DataDir ?? "(none)"}'; a local data directory needs no record index.");
            load = load with
            {
                ObjectStore = (load.ObjectStore ?? new ObjectStoreOptions()) with { Access = ObjectStoreAccess.Remote },
                Logger = c.Verbose ? new StderrLogger(c.Err) : null,
            };
            bool pub = r.GetValue(publish);
            using var table = await Progress.Run(c, $"indexing {load.DatasetName} at {load.DataDir}",
                (p, t) => RemoteDataset.OpenAsync(load, pub, new SyncProgress<LoadProgress>(x => p.Report((x.ExamplesDone, x.ExamplesTotal))), t), ct).ConfigureAwait(false);
            if (c.Json)
            {
                c.WriteJson(new
                {
                    dataset = table.Builder.FullName, location = load.DataDir, examples = table.Count, recordBytes = table.RecordBytesTotal,
                    requests = table.OpenRequests, bytesRead = table.OpenBytes,
                    indexes = table.Indexes.Select(i => new { split = i.Split, origin = i.Origin.ToString().ToLowerInvariant(), records = i.Records, path = i.Path, published = i.Published }),
                });
            }
            else
            {
                foreach (var i in table.Indexes)
                    c.Out.WriteLine(string.Create(CultureInfo.InvariantCulture,
                        $"{table.Builder.FullName} {i.Split}: {i.Records} records, index {i.Origin.ToString().ToLowerInvariant()} ({i.Path}){(i.Published ? "; published to the bucket" : "")}"));
                c.Out.WriteLine(string.Create(CultureInfo.InvariantCulture, $"{table.OpenRequests} requests, {table.OpenBytes} bytes read"));
            }
            return Program.ExitOk;
        }));
        return cmd;
    }
}
