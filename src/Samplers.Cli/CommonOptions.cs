using System.CommandLine;
using System.CommandLine.Parsing;
using System.Globalization;
using Samplers.Core;
using Samplers.Tfds;
using Samplers.Imaging;

namespace Samplers.Cli;

/// <summary>The options every dataset command shares, and their mapping to the library's settings records
/// (<see cref="TfdsLoadOptions"/> for loading, <see cref="TFDatasetSamplerOptions"/> for loading and sampling).</summary>
internal sealed class CommonOptions
{
    public readonly Option<string?> DataDir = new("--data-dir") { Description = "TFDS data directory (default: TFDS_DATA_DIR, else ~/tensorflow_datasets; without a dataset, commands use the embedded data/)." };
    public readonly Option<string?> S3Endpoint = new("--s3-endpoint") { Description = "Endpoint of an S3-compatible service for an s3://bucket/prefix --data-dir (default: AWS_ENDPOINT_URL_S3, else AWS_ENDPOINT_URL, else AWS); addressed path-style. Needs the Samplers.S3 package (in the tool)." };
    public readonly Option<bool> S3Anonymous = new("--s3-anonymous") { Description = "Send unsigned requests to an s3:// --data-dir (a public bucket) without looking for credentials." };
    public readonly Option<string> S3Access = new("--s3-access")
    {
        Description = "How run and plan read an s3:// --data-dir: copy (the requested splits are copied into a local folder, then loaded and cached; the default) " +
            "or remote (a record index is built once or loaded, and each batch's records are fetched by ranged reads; with --rank/--world-size each process fetches only its own batches). " +
            "Commands that need the whole table (info, export, show, cache) always copy.",
        DefaultValueFactory = _ => "copy",
    };
    public readonly Option<string?> CacheDir = new("--cache-dir") { Description = "Parquet cache directory (default: SAMPLERS_CACHE_DIR, else the user cache folder)." };
    public readonly Option<bool> NoCache = new("--no-cache") { Description = "Read the TFRecords; neither read nor write the cache." };
    public readonly Option<bool> Download = new("--download") { Description = "Download the dataset from the TFDS bucket (or --base-url) when it is absent from the data directory." };
    public readonly Option<string?> BaseUrl = new("--base-url") { Description = "Bucket to download from (default: SAMPLERS_TFDS_BASE_URL, else TFDS's public bucket)." };
    public readonly Option<string[]> Splits = new("--splits")
    {
        // One spec per token (comma-separated or repeated): several per token would swallow a following positional argument.
        Description = "Split specs loaded and concatenated in order, comma-separated or repeated (default: train,test). TFDS slicing works: train[:80%].",
    };
    public readonly Option<string> XKey = new("--x-key") { Description = "Feature holding the examples (x_key).", DefaultValueFactory = _ => "image" };
    public readonly Option<string> YKey = new("--y-key") { Description = "Feature holding the labels (y_key).", DefaultValueFactory = _ => "label" };
    public readonly Option<int> ClassesPerBatch = new("--classes-per-batch", "-c") { Description = "Distinct classes per batch (classes_per_batch).", DefaultValueFactory = _ => 2 };
    public readonly Option<int> ExamplesPerClass = new("--examples-per-class", "-e") { Description = "Examples of each class per batch (examples_per_class_per_batch).", DefaultValueFactory = _ => 2 };
    public readonly Option<int> StepsPerEpoch = new("--steps-per-epoch", "-s") { Description = "Batches per epoch over all ranks (steps_per_epoch).", DefaultValueFactory = _ => 1000 };
    public readonly Option<long[]?> ClassList = new("--class-list")
    {
        Description = "Only these labels, comma-separated (class_list).",
        CustomParser = ParseLongList,
    };
    public readonly Option<int?> TotalExamplesPerClass = new("--total-examples-per-class") { Description = "Keep at most this many examples of each class, drawn without replacement by the seed (total_examples_per_class)." };
    public readonly Option<ulong> Seed = new("--seed") { Description = "Experiment seed: the same seed, epoch and batch id always give the same batch.", DefaultValueFactory = _ => 0UL };
    public readonly Option<SamplingMode> Mode = new("--mode")
    {
        Description = "independent (the reference's semantics) or coverage (balanced rounds, no repeats before a class is used up).",
        DefaultValueFactory = _ => SamplingMode.Independent,
        CustomParser = ParseMode,
    };
    public readonly Option<TableBacking> Table = new("--table")
    {
        Description = "Where examples live: mapped (read in place from the memory-mapped Parquet cache: beyond RAM, one copy shared by every process), " +
            "memory (a private copy), or auto (mapped when the cache exists and shapes are fixed). Default: auto.",
        DefaultValueFactory = _ => TableBacking.Auto,
        CustomParser = ParseTable,
    };
    public readonly Option<long?> MaxImagePixels = new("--max-image-pixels")
    {
        Description = "The most pixels (height x width) one encoded image may declare; larger ones are refused from their header, " +
            "before any memory is allocated (a decompression-bomb guard). Default: 89478485, PIL's limit.",
    };
    public readonly Option<int> Rank = new("--rank") { Description = "This process's rank for data-parallel sharding, in [0, world size). Default: the RANK environment variable (set by torchrun and similar launchers), else 0.", DefaultValueFactory = _ => 0 };
    public readonly Option<int> WorldSize = new("--world-size") { Description = "Number of data-parallel processes. Default: the WORLD_SIZE environment variable, else 1.", DefaultValueFactory = _ => 1 };
    public readonly Option<string?> Resize = new("--resize")
    {
        Description = "Resize every image while loading, HEIGHTxWIDTH (bilinear as tf.image.resize, rounded to uint8); the cache then holds the resized table. Needed for datasets of varying image sizes.",
    };

    /// <summary>Options that only say what to load (info, cache, export without batches).</summary>
    public IEnumerable<Option> LoadOptions => [DataDir, S3Endpoint, S3Anonymous, S3Access, CacheDir, NoCache, Table, Splits, XKey, YKey, MaxImagePixels, Download, BaseUrl];

    /// <summary>Checks on the loading options' values, at parse time (before anything is read).</summary>
    public CommonOptions()
    {
        S3Access.AcceptOnlyFromAmong("copy", "remote");
        MaxImagePixels.Validators.Add(v =>
        {
            long? n = v.GetValueOrDefault<long?>();
            if (n is < 1) v.AddError($"--max-image-pixels must be at least 1, but was {n}.");
        });
    }

    /// <summary>Loading plus sampling options.</summary>
    public IEnumerable<Option> SamplerOptions => LoadOptions.Concat<Option>([ClassesPerBatch, ExamplesPerClass, StepsPerEpoch, ClassList, TotalExamplesPerClass, Seed, Mode, Rank, WorldSize]);

    /// <summary>What to load, from the loading options (the one <see cref="TfdsLoadOptions"/> record the library reads).</summary>
    public TfdsLoadOptions ToLoadOptions(ParseResult r, string dataset, string? dataDirOverride = null)
    {
        string[] splits = (r.GetValue(Splits) ?? [])
            .SelectMany(s => s.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)).ToArray();
        var load = new TfdsLoadOptions
        {
            DatasetName = dataset,
            DataDir = r.GetValue(DataDir) ?? dataDirOverride,
            CacheDir = r.GetValue(CacheDir),
            UseCache = !r.GetValue(NoCache),
            Table = r.GetValue(Table),
            XKey = r.GetValue(XKey)!,
            YKey = r.GetValue(YKey)!,
            // The tool fetches data only when asked (--download): a typo in a dataset name must not start a download.
            // (The library downloads by default, as tfds.load does.)
            Download = r.GetValue(Download) ? TfdsLoader.DownloadFromBucket(r.GetValue(BaseUrl)) : null,
            // uint8: a quarter of float32's size in memory and in the cache, and what images are; a model's float conversion
            // (TorchSharp's batch copy) scales it later. Absent on commands without --resize.
            Preprocess = ResizePreprocess(r.GetValue(Resize)),
        };
        // Object-store settings only when one was given: the library's defaults (environment, credential chain) otherwise.
        bool remote = r.GetValue(S3Access) == "remote";
        if (r.GetValue(S3Endpoint) is not null || r.GetValue(S3Anonymous) || remote)
            load = load with
            {
                ObjectStore = new Samplers.Storage.ObjectStoreOptions
                {
                    Endpoint = r.GetValue(S3Endpoint), Anonymous = r.GetValue(S3Anonymous),
                    Access = remote ? Samplers.Storage.ObjectStoreAccess.Remote : Samplers.Storage.ObjectStoreAccess.Copy,
                },
            };
        // Absent means the library's default (PIL's limit).
        if (r.GetValue(MaxImagePixels) is long maxPixels) load = load with { MaxImagePixels = maxPixels };
        // Absent means the library's default (train then test).
        return splits.Length > 0 ? load with { Splits = splits } : load;
    }

    /// <summary>What to load and how to sample.</summary>
    public TFDatasetSamplerOptions ToOptions(ParseResult r, string dataset, string? dataDirOverride = null) =>
        new()
        {
            Load = ToLoadOptions(r, dataset, dataDirOverride),
            ClassesPerBatch = r.GetValue(ClassesPerBatch),
            ExamplesPerClassPerBatch = r.GetValue(ExamplesPerClass),
            StepsPerEpoch = r.GetValue(StepsPerEpoch),
            // Absent means every class; a custom parser would otherwise give an empty list.
            ClassList = r.GetResult(ClassList) is null ? null : r.GetValue(ClassList),
            TotalExamplesPerClass = r.GetValue(TotalExamplesPerClass),
            Seed = r.GetValue(Seed),
            Mode = r.GetValue(Mode),
            Rank = FromOptionOrEnvironment(r, Rank, "RANK"),
            WorldSize = FromOptionOrEnvironment(r, WorldSize, "WORLD_SIZE"),
        };

    /// <summary>The option's value when given on the command line; else the environment variable a launcher sets
    /// (torchrun and most others set RANK and WORLD_SIZE for each process); else the option's default.</summary>
    /// <exception cref="UsageException">The variable is set but is not an integer.</exception>
    internal static int FromOptionOrEnvironment(ParseResult r, Option<int> option, string variable)
    {
        if (r.GetResult(option) is { Implicit: false }) return r.GetValue(option);
        string? text = Environment.GetEnvironmentVariable(variable);
        if (string.IsNullOrWhiteSpace(text)) return r.GetValue(option);
        if (!int.TryParse(text.Trim(), NumberStyles.Integer, CultureInfo.InvariantCulture, out int v))
            throw new UsageException($"{variable}={text} (from the environment, used for {option.Name} when it is not given) is not an integer; set it to a number or pass {option.Name}.");
        return v;
    }

    /// <summary>The <c>--resize</c> preprocess: <see cref="Imaging.ImagePreprocessing.Resize"/>(h, w, bilinear, no antialias, uint8); null when absent.</summary>
    public static IExamplePreprocessor? ResizePreprocess(string? text) =>
        ParseSize(text, "--resize") is { } z ? ImagePreprocessing.Resize(z.Height, z.Width, ResizeMethod.Bilinear, antialias: false, output: DType.UInt8) : null;

    /// <summary>The most pixels (height x width) <c>--resize</c> accepts: 4 bytes a pixel in one table chunk (2^28 = 16384 x 16384).</summary>
    public const long MaxResizePixels = ExampleTable.DefaultChunkBytes / 4;

    /// <summary>Parses <c>HEIGHTxWIDTH</c> (e.g. 224x224); null when absent.</summary>
    /// <exception cref="UsageException">Not two positive integers joined by x.</exception>
    public static (int Height, int Width)? ParseSize(string? text, string option)
    {
        if (string.IsNullOrEmpty(text)) return null;
        string[] p = text.Split('x', 'X');
        if (p.Length == 2 && int.TryParse(p[0], NumberStyles.None, CultureInfo.InvariantCulture, out int h) &&
            int.TryParse(p[1], NumberStyles.None, CultureInfo.InvariantCulture, out int w) && h >= 1 && w >= 1 && h <= 65535 && w <= 65535)
        {
            // One resized example (uint8, up to 4 channels) must fit a table chunk: the size's fault, not the dataset's.
            if ((long)h * w > MaxResizePixels)
                throw new UsageException(string.Create(CultureInfo.InvariantCulture,
                    $"{option}: {h}x{w} is {(long)h * w} pixels; the most is {MaxResizePixels} (e.g. 16384x16384), so that a resized image of up to 4 channels fits a {ExampleTable.DefaultChunkBytes / (1024 * 1024)} MiB table chunk."));
            return (h, w);
        }
        throw new UsageException($"{option}: '{text}' is not a size; write HEIGHTxWIDTH with positive integers, e.g. 224x224.");
    }

    private static long[]? ParseLongList(ArgumentResult a)
    {
        var values = new List<long>();
        foreach (var token in a.Tokens)
            foreach (string part in token.Value.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
            {
                if (!long.TryParse(part, NumberStyles.Integer, CultureInfo.InvariantCulture, out long v))
                {
                    a.AddError($"--class-list: '{part}' is not an integer label; give labels as integers separated by commas, e.g. --class-list 0,3,7.");
                    return null;
                }
                values.Add(v);
            }
        return values.ToArray();
    }

    private static TableBacking ParseTable(ArgumentResult a)
    {
        string text = a.Tokens.Count > 0 ? a.Tokens[0].Value : "";
        foreach (TableBacking t in Enum.GetValues<TableBacking>())
            if (text.Equals(t.ToString(), StringComparison.OrdinalIgnoreCase)) return t;
        a.AddError($"--table: '{text}' is not a table backing; use mapped, memory or auto.");
        return TableBacking.Auto;
    }

    private static SamplingMode ParseMode(ArgumentResult a)
    {
        string text = a.Tokens.Count > 0 ? a.Tokens[0].Value : "";
        if (text.Equals("independent", StringComparison.OrdinalIgnoreCase)) return SamplingMode.Independent;
        if (text.Equals("coverage", StringComparison.OrdinalIgnoreCase)) return SamplingMode.Coverage;
        a.AddError($"--mode: '{text}' is not a mode; use independent or coverage.");
        return SamplingMode.Independent;
    }

    /// <summary>Parses <c>START:END</c> (end exclusive; either may be omitted) against a count.</summary>
    public static (int Start, int End) ParseRange(string? text, int count, string option)
    {
        if (string.IsNullOrEmpty(text)) return (0, count);
        string[] parts = text.Split(':');
        if (parts.Length != 2)
            throw new ArgumentException($"{option}: '{text}' is not a range; write START:END (end exclusive), e.g. 0:10, :10 or 5:.");
        int Parse(string s, int dflt)
        {
            if (s.Length == 0) return dflt;
            if (!int.TryParse(s, NumberStyles.Integer, CultureInfo.InvariantCulture, out int v))
                throw new ArgumentException($"{option}: '{s}' in '{text}' is not an integer.");
            return v;
        }
        int start = Parse(parts[0], 0), end = Parse(parts[1], count);
        if (start < 0 || end > count || start > end)
            throw new ArgumentOutOfRangeException(option, text, $"{option}: {text} must lie in [0, {count}] with START <= END ({count} batches per epoch for this rank).");
        return (start, end);
    }
}
