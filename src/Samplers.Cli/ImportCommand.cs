using System.CommandLine;
using System.Diagnostics;
using System.Globalization;
using Samplers.Core;
using Samplers.Core.Tfds;
using Samplers.Tfds;

namespace Samplers.Cli;

/// <summary><c>samplers import idx</c>: IDX files (MNIST's format) written as a split of a TFDS dataset
/// (<see cref="IdxTfds.WriteTfds"/>), so every other command can load it.</summary>
internal static class ImportCommand
{
    public static Command Build(CliShared s)
    {
        var import = s.Describe(new Command("import"),
            "Writes data from another format as a TFDS dataset in the data directory, so the other commands load it like a prepared one.\n\n" +
            "Examples:\n  samplers import idx --images train-images-idx3-ubyte.gz --labels train-labels-idx1-ubyte.gz --name fashion_mnist --split train");
        import.Add(BuildIdx(s));
        return import;
    }

    private static Command BuildIdx(CliShared s)
    {
        var images = new Option<string>("--images") { Description = "The images IDX file (N x height x width unsigned bytes), gzip-compressed or not.", Required = true };
        var labels = new Option<string>("--labels") { Description = "The labels IDX file (N unsigned bytes), gzip-compressed or not.", Required = true };
        var name = new Option<string>("--name")
        {
            Description = "The dataset to write, name or name:version (e.g. fashion_mnist:3.0.1). mnist, fashion_mnist and kmnist get TFDS's class names " +
                "and version (3.0.1); another name gets version 1.0.0 and the names of --class-names, else 0..max label.",
            Required = true,
        };
        var split = new Option<string>("--split") { Description = "The split the files hold (train, test). Another split imported into the same dataset is added to it.", Required = true };
        var classNames = new Option<string?>("--class-names") { Description = "A file of class names, one per line, label 0 first (as TFDS's label.labels.txt)." };
        var shards = new Option<int>("--shards") { Description = "Shard files of the split (at least 1).", DefaultValueFactory = _ => 1 };
        shards.Validators.Add(v => { if (v.GetValueOrDefault<int>() < 1) v.AddError($"--shards must be at least 1, but was {v.GetValueOrDefault<int>()}."); });
        var cmd = s.Describe(new Command("idx"),
            "Imports a split from IDX files (MNIST, Fashion-MNIST, KMNIST and EMNIST are distributed in this format) as a TFDS dataset with TFDS's features: " +
            "image (height x width x 1 uint8, stored as PNG) and label (a ClassLabel). The files are checked whole before anything is written " +
            "(magic, type, rank, sizes, length, matching counts, labels within the class names).\n\n" +
            "Examples:\n" +
            "  samplers import idx --images train-images-idx3-ubyte.gz --labels train-labels-idx1-ubyte.gz --name fashion_mnist:3.0.1 --split train\n" +
            "  samplers import idx --images t10k-images-idx3-ubyte.gz --labels t10k-labels-idx1-ubyte.gz --name fashion_mnist:3.0.1 --split test\n" +
            "  samplers import idx --images digits-idx3-ubyte --labels digits-idx1-ubyte --name my_digits --split train --class-names names.txt --data-dir data");
        foreach (var o in new Option[] { images, labels, name, split, s.Options.DataDir, classNames, shards }) cmd.Add(o);
        cmd.SetAction(s.Guarded((r, c, ct) =>
        {
            var (dataset, version) = ParseName(r.GetValue(name)!);
            string? namesFile = r.GetValue(classNames);
            string[]? names = namesFile is null ? null
                : SafeFile.ReadAllText(namesFile, SafeFile.MaxLabelsFileBytes, "class names file").Split('\n').Select(l => l.Trim()).Where(l => l.Length > 0).ToArray();
            if (names is { Length: 0 }) throw new UsageException($"--class-names {namesFile}: the file holds no names; give one class name per line, label 0 first.");
            string dataDir = DataDirectory.Resolve(r.GetValue(s.Options.DataDir));
            string splitName = r.GetValue(split)!;
            c.Status($"importing {dataset}:{version} split {splitName} from {r.GetValue(images)} and {r.GetValue(labels)}");
            var clock = Stopwatch.StartNew();
            string dir;
            try
            {
                dir = IdxTfds.WriteTfds(r.GetValue(images)!, r.GetValue(labels)!, dataDir, dataset, version, splitName, names, r.GetValue(shards));
            }
            catch (ArgumentException e) when (OptionOf(e.ParamName) is { } option)
            {
                throw new UsageException($"{option}: {ErrorPolicy.WithoutParameterTail(e)}.");
            }
            double seconds = clock.Elapsed.TotalSeconds;
            var builder = Catalog.Open(dataDir, $"{dataset}:{version}");
            var written = builder.Info.FindSplit(splitName)!;
            var label = builder.FindFeature("label")!;
            var image = builder.FindFeature("image")!;
            if (c.Json)
            {
                c.WriteJson(new
                {
                    dataset = builder.FullName, path = dir, split = splitName, examples = written.NumExamples,
                    height = image.Shape[0], width = image.Shape[1], classes = label.NumClasses,
                    shards = builder.ShardPaths(splitName).Select(Path.GetFileName),
                    splits = builder.Info.Splits.Select(sp => new { name = sp.Name, examples = sp.NumExamples, shards = sp.ShardLengths.Length }),
                    seconds,
                });
            }
            else
            {
                c.Out.WriteLine($"imported  {builder.FullName} split {splitName}: {written.NumExamples} images {image.Shape[0]}x{image.Shape[1]}, {label.NumClasses} classes, in {seconds.ToString("0.00", CultureInfo.InvariantCulture)} s");
                c.Out.WriteLine($"path      {dir}");
                c.Out.WriteLine($"shards    {string.Join(", ", builder.ShardPaths(splitName).Select(Path.GetFileName))}");
                c.Out.WriteLine($"splits    {string.Join(", ", builder.Info.Splits.Select(sp => $"{sp.Name} {sp.NumExamples}"))}");
            }
            return Task.FromResult(Program.ExitOk);
        }));
        return cmd;
    }

    /// <summary>--name as name or name:x.y.z (no config, no wildcard): the dataset and the version to write.</summary>
    private static (string Name, string Version) ParseName(string text)
    {
        DatasetNameSpec spec;
        try
        {
            spec = DatasetNames.Parse(text);
        }
        catch (SpecFormatException e)
        {
            throw new UsageException($"--name: {ErrorPolicy.WithoutParameterTail(e)}");
        }
        if (spec.HasConfig)
            throw new UsageException($"--name {text}: import writes datasets without configs; give name or name:x.y.z.");
        if (spec.HasVersion && !spec.IsExactVersion)
            throw new UsageException($"--name {text}: the version to write must be exact (x.y.z, no '*').");
        return (spec.Name, spec.HasVersion ? spec.Version : IdxTfds.DefaultVersion(spec.Name));
    }

    /// <summary>The option a library parameter of <see cref="IdxTfds.WriteTfds"/> came from.</summary>
    private static string? OptionOf(string? parameter) => parameter switch
    {
        "name" or "version" => "--name",
        "split" => "--split",
        "classNames" => "--class-names",
        "shards" => "--shards",
        "dataDir" => "--data-dir",
        "imagesPath" => "--images",
        "labelsPath" => "--labels",
        _ => null,
    };
}
