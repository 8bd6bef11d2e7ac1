using System.Text.Json;
using Samplers.Core.Tfds;
using Samplers.Core;

namespace Samplers.Tfds;

/// <summary>
/// Finds a prepared TFDS dataset on disk (TFDS_FORMAT.md 1): data directory, name, config and version, using TFDS's
/// files-only rules (mode A: without a version, the highest valid version directory; no fallback to a lower one).
/// </summary>
public static class Catalog
{
    /// <summary>
    /// Resolves <paramref name="name"/> (<c>mnist</c>, <c>mnist:3.0.1</c>, <c>imagenette/320px-v2:1.*.*</c>) in the data
    /// directory and reads its <c>dataset_info.json</c> and <c>features.json</c>.
    /// </summary>
    /// <param name="dataDirectory">The data directory, or null for <c>TFDS_DATA_DIR</c> / <c>~/tensorflow_datasets</c> (<see cref="DataDirectory.Resolve(string?)"/>).</param>
    /// <param name="name">The dataset name with optional config and version.</param>
    /// <exception cref="SpecFormatException">The name is malformed (an <see cref="ArgumentException"/>).</exception>
    /// <exception cref="DatasetNotFoundException">The data directory, dataset, config or version does not exist (the message lists what does), or the version directory is incomplete.</exception>
    /// <exception cref="DataFormatException">A metadata file is malformed, disagrees with its directory, or describes an unsupported format.</exception>
    public static DatasetBuilderDir Open(string? dataDirectory, string name)
    {
        ArgumentNullException.ThrowIfNull(name);
        string dataDir = DataDirectory.Resolve(dataDirectory);
        var spec = DatasetNames.Parse(name);
        if (!Directory.Exists(dataDir))
            throw DataHints.NotFound(
                $"The data directory {dataDir} does not exist" +
                (dataDirectory is null ? $" ({DataDirectory.EnvironmentVariable} is {(string.IsNullOrEmpty(Environment.GetEnvironmentVariable(DataDirectory.EnvironmentVariable)) ? "unset, so ~/tensorflow_datasets was used" : "set to it")})" : "") + ".",
                [DataHints.DataDir($"pass the directory that holds prepared TFDS datasets (TfdsLoadOptions.DataDir) or set {DataDirectory.EnvironmentVariable}"),
                 DataHints.Download("download the dataset first")], dataDir);

        string datasetDir = Path.Combine(dataDir, spec.Name);
        if (!Directory.Exists(datasetDir))
        {
            var present = SubDirectories(dataDir).Where(d => !d.StartsWith('.') && !d.StartsWith("downloads", StringComparison.Ordinal)).ToArray();
            throw DataHints.NotFound(
                $"Dataset '{spec.Name}' was not found in {dataDir}. Datasets present: {List(present)}.",
                [DataHints.CheckName(), DataHints.Download("download the dataset")], datasetDir, spec.Name);
        }

        string config = spec.Config;
        if (!spec.HasConfig)
        {
            string meta = Path.Combine(datasetDir, ".config", "metadata.json");
            if (File.Exists(meta))
            {
                using var doc = TfdsJson.ParseFile(meta, ".config/metadata.json");
                config = TfdsJson.GetString(doc.RootElement, "defaultConfigName", "", meta, "");
                if (config is "." or ".." || config.IndexOfAny(['/', '\\', '\0']) >= 0)
                    throw new DataFormatException(
                        $"{meta}: key 'defaultConfigName' is '{config}', which is not a config folder name (it has a path separator or is a dot-segment " +
                        "and would open a folder outside the dataset). Fix or delete the file, or give the config in the name.", meta, null, "defaultConfigName");
            }
        }
        string baseDir = config.Length > 0 ? Path.Combine(datasetDir, config) : datasetDir;
        string[] entries = SubDirectories(baseDir);
        string[] versions = DatasetNames.ValidVersions(entries);
        if (config.Length > 0 && !Directory.Exists(baseDir))
        {
            var configs = Configs(datasetDir);
            throw new DatasetNotFoundException(
                $"Config '{config}' of dataset '{spec.Name}' was not found in {datasetDir}" + (spec.HasConfig ? "" : " (it is the default named by .config/metadata.json)") +
                $". Configs present: {List(configs)}.", baseDir, config);
        }
        if (config.Length == 0 && versions.Length == 0 && Configs(datasetDir).Length > 0)
            throw new DatasetNotFoundException(
                $"Dataset '{spec.Name}' in {datasetDir} has configs ({List(Configs(datasetDir))}) and no .config/metadata.json names a default; " +
                $"give the config in the name, e.g. '{spec.Name}/{Configs(datasetDir)[0]}'.", datasetDir, spec.Name);

        string chosen;
        if (spec.IsExactVersion)
            chosen = Directory.Exists(Path.Combine(baseDir, spec.Version)) && versions.Contains(spec.Version) ? spec.Version : "";
        else
            chosen = DatasetNames.SelectHighest(versions, spec.Version);
        string label = spec.Name + (config.Length > 0 ? "/" + config : "");
        if (chosen.Length == 0)
            throw DataHints.NotFound(
                $"Version {(spec.HasVersion ? spec.Version : "(any)")} of '{label}' was not found in {baseDir}. Versions present: {List(versions)}.",
                [DataHints.CheckName("request one of them"), DataHints.Download("download the version you need")], baseDir, spec.HasVersion ? spec.Version : label);

        string versionDir = Path.Combine(baseDir, chosen);
        string infoPath = Path.Combine(versionDir, "dataset_info.json");
        if (!File.Exists(infoPath))
            throw new DatasetNotFoundException(
                $"{versionDir} is an incomplete version directory: dataset_info.json is missing. TFDS does not fall back to a lower version; " +
                "delete the directory and prepare or download it again, or request another version explicitly" + (versions.Length > 1 ? $" ({List(versions)})" : "") + ".",
                infoPath, "dataset_info.json");
        var info = DatasetInfo.Load(infoPath);
        if (info.Version != chosen)
            throw new DataFormatException($"{infoPath}: key 'version' is '{info.Version}', but the directory is named '{chosen}'. The directory was renamed or the file replaced; restore the matching pair.", infoPath, null, "version");
        if (info.ConfigName != config)
            throw new DataFormatException($"{infoPath}: key 'configName' is '{info.ConfigName}', but the config directory is '{(config.Length > 0 ? config : "(none)")}'. The directory was moved or the file replaced; restore the matching pair.", infoPath, null, "configName");
        if (!DatasetInfo.SupportedFileFormats.Contains(info.FileFormat))
            throw new DataFormatException(
                $"{infoPath}: key 'fileFormat' is '{info.FileFormat}'" + (info.FileFormat == "array_record" ? " (ArrayRecord not supported)" : "") +
                $"; supported formats: {string.Join(", ", DatasetInfo.SupportedFileFormats)}. Prepare the dataset with file_format='tfrecord'.", infoPath, null, "fileFormat");
        var features = FeaturesJson.Load(versionDir);
        return new DatasetBuilderDir(dataDir, spec.Name, config, chosen, versionDir, info, features);
    }

    /// <summary>The versions prepared beside <paramref name="builder"/> (same dataset and config), in the catalog's order.</summary>
    public static string[] Versions(DatasetBuilderDir builder)
    {
        ArgumentNullException.ThrowIfNull(builder);
        return DatasetNames.ValidVersions(SubDirectories(Path.GetDirectoryName(builder.Path)!));
    }

    /// <summary>The config directories of <paramref name="builder"/>'s dataset (empty for a dataset without configs):
    /// sub-directories that are neither versions, hidden nor incomplete downloads.</summary>
    public static string[] Configs(DatasetBuilderDir builder)
    {
        ArgumentNullException.ThrowIfNull(builder);
        return Configs(Path.Combine(builder.DataDir, builder.Name));
    }

    private static string[] SubDirectories(string dir)
    {
        if (!Directory.Exists(dir)) return [];
        return Directory.GetDirectories(dir).Select(Path.GetFileName).OfType<string>().Order(StringComparer.Ordinal).ToArray();
    }

    /// <summary>Config directories: sub-directories that are neither versions nor hidden.</summary>
    private static string[] Configs(string datasetDir) =>
        SubDirectories(datasetDir).Where(d => !d.StartsWith('.') && DatasetNames.ValidVersions([d]).Length == 0
            && !d.Contains(".incomplete", StringComparison.Ordinal)).ToArray();

    private static string List(IReadOnlyCollection<string> items) => items.Count == 0 ? "none" : string.Join(", ", items);
}

/// <summary>
/// A resolved version directory of a prepared dataset ("builder dir"): where it is, its metadata, and its features.
/// Get one from <see cref="Catalog.Open"/>; select records with <see cref="Select(string)"/>.
/// </summary>
public sealed class DatasetBuilderDir
{
    internal DatasetBuilderDir(string dataDirectory, string name, string config, string version, string path, DatasetInfo info, IReadOnlyList<FeatureSpec> features)
    {
        DataDir = dataDirectory; Name = name; Config = config; Version = version; Path = path; Info = info; Features = features;
    }

    /// <summary>The data directory searched.</summary>
    public string DataDir { get; }
    /// <summary>The dataset directory name (snake_case).</summary>
    public string Name { get; }
    /// <summary>The config; empty when the dataset has none.</summary>
    public string Config { get; }
    /// <summary>The resolved version <c>x.y.z</c>.</summary>
    public string Version { get; }
    /// <summary>Full path of the version directory.</summary>
    public string Path { get; }
    /// <summary>The parsed <c>dataset_info.json</c>.</summary>
    public DatasetInfo Info { get; }
    /// <summary>The leaf features from <c>features.json</c>, in file order, with ClassLabel names filled in.</summary>
    public IReadOnlyList<FeatureSpec> Features { get; }

    /// <summary>The full name <c>name[/config]:version</c>.</summary>
    public string FullName => Name + (Config.Length > 0 ? "/" + Config : "") + ":" + Version;

    /// <summary>The feature with flat key <paramref name="key"/>, or null.</summary>
    public FeatureSpec? FindFeature(string key) => Features.FirstOrDefault(f => f.Key == key);

    /// <summary>Full shard paths of a split, paired index by index with its <see cref="SplitInfo.ShardLengths"/>.</summary>
    /// <exception cref="DatasetNotFoundException">No such split (the message lists the splits).</exception>
    public string[] ShardPaths(string split)
    {
        ArgumentNullException.ThrowIfNull(split);
        var s = Info.FindSplit(split) ?? throw SplitNotFound(split, split);
        return Info.ShardRelativePaths(s).Select(r => System.IO.Path.Combine(Path, r)).ToArray();
    }

    private DatasetNotFoundException SplitNotFound(string split, string spec) =>
        new($"Split '{split}' (in spec '{spec}') does not exist in {FullName} ({Info.FilePath}). Splits present: {string.Join(", ", Info.Splits.Select(s => s.Name))} (names are case-sensitive).",
            Info.FilePath, split);

    /// <summary>
    /// Resolves a split spec (<c>train</c>, <c>train[:10%]+test</c>, ...) into file instructions and the TFDS read
    /// order, after checking that every shard it needs exists and is an uncompressed TFRecord file.
    /// </summary>
    /// <exception cref="SpecFormatException">The spec is malformed, a bound lies outside its split, or it selects no data (an <see cref="ArgumentException"/>).</exception>
    /// <exception cref="DatasetNotFoundException">A split named in the spec does not exist, or a needed shard file is missing.</exception>
    /// <exception cref="DataFormatException">A shard is gzip-compressed or a Parquet file.</exception>
    public SplitSelection Select(string splitSpec) => Select(splitSpec, checkFiles: true);

    /// <summary>As <see cref="Select(string)"/>; <paramref name="checkFiles"/> false skips the checks of the local shard
    /// files (remote access: the shards are objects in a bucket, checked by the record index instead).</summary>
    internal SplitSelection Select(string splitSpec, bool checkFiles)
    {
        ArgumentNullException.ThrowIfNull(splitSpec);
        foreach (var part in Splits.Parse(splitSpec))
        {
            if (part.Split != "all" && Info.FindSplit(part.Split) is null) throw SplitNotFound(part.Split, splitSpec);
            // Lengths whose sum overflows are damaged metadata; only the splits the spec names are checked, so a
            // damaged split does not make the others unusable.
            foreach (var s in part.Split == "all" ? Info.Splits : [Info.FindSplit(part.Split)!])
                if (!s.TryNumExamples(out _)) throw s.TooMany();
        }
        FileInstruction[] instructions;
        try
        {
            instructions = Splits.Resolve(splitSpec, Info.ToSplitShards());
        }
        catch (SpecFormatException e) when (NamedSplits(splitSpec).All(s => s.ShardLengths.Sum() == 0))
        {
            // Not a usage error: the metadata says the split holds nothing (e.g. an empty shardLengths).
            throw new DataFormatException(
                $"{Info.FilePath}: split spec '{splitSpec}' corresponds to no data: " +
                string.Join(", ", NamedSplits(splitSpec).Select(s => $"split '{s.Name}' has shardLengths [{string.Join(", ", s.ShardLengths)}]")) +
                ". The dataset_info.json is damaged or the split was prepared empty; re-download or re-prepare the dataset.",
                Info.FilePath, null, splitSpec, e);
        }
        var paths = new Dictionary<string, string[]>(StringComparer.Ordinal);
        var shards = new ShardInstruction[instructions.Length];
        for (int i = 0; i < instructions.Length; i++)
        {
            var ins = instructions[i];
            if (!paths.TryGetValue(ins.Split, out var p)) paths[ins.Split] = p = ShardPaths(ins.Split);
            shards[i] = new ShardInstruction(p[ins.ShardIndex], ins.Split, ins.ShardIndex, ins.Skip, ins.Take, ins.ShardLength);
        }
        bool sequential = Info.DisableShuffling;
        if (!checkFiles) return new SplitSelection(splitSpec, shards, () => ReadOrder.Plan(instructions, sequential), sequential);
        // Check every needed shard before anything is read: TensorFlow would only fail when it reaches the file.
        var missing = shards.Select(s => s.Path).Distinct().Where(p => !File.Exists(p)).ToArray();
        if (missing.Length > 0)
            throw DataHints.NotFound(
                $"Shard file {missing[0]} is missing" + (missing.Length > 1 ? $" (and {missing.Length - 1} more shard(s) of this selection)" : "") +
                $"; {FullName} split spec '{splitSpec}' needs it. The download or preparation was incomplete.",
                [DataHints.Download("download the dataset again")], missing[0], splitSpec);
        // Before any byte is read: regular files only (opening a FIFO would block, a device would never end).
        foreach (var s in shards) ShardChecks.RequireRegular(s.Path, $"shard {s.ShardIndex} of split '{s.Split}'");
        foreach (var path in shards.Select(s => s.Path).Distinct()) Sniff(path);
        return new SplitSelection(splitSpec, shards, () => ReadOrder.Plan(instructions, sequential), sequential);
    }

    /// <summary>The splits a spec names (every split for <c>all</c>); the names were checked to exist.</summary>
    private IEnumerable<SplitInfo> NamedSplits(string splitSpec) =>
        Splits.Parse(splitSpec).SelectMany(p => p.Split == "all" ? Info.Splits : [Info.FindSplit(p.Split)!]);

    /// <summary>Refuses gzip-compressed and Parquet shards by their first bytes (TFDS never writes compressed TFRecords).</summary>
    private static void Sniff(string path)
    {
        Span<byte> head = stackalloc byte[4];
        int n;
        // Through SafeFile: RequireRegular checked the path; the handle's own kind is checked again (it may have changed).
        using (var f = SafeFile.OpenRead(path, "shard", SafeFile.Unbounded, bufferSize: 1))
            n = f.ReadAtLeast(head, 4, throwOnEndOfStream: false);
        if (n >= 2 && head[0] == 0x1F && head[1] == 0x8B)
            throw new DataFormatException($"{path}: starts with the gzip magic 1F 8B: compressed TFRecord not supported (TFDS never writes them). Decompress the shard or re-download the dataset.", path, 0);
        if (n == 4 && head[0] == (byte)'P' && head[1] == (byte)'A' && head[2] == (byte)'R' && head[3] == (byte)'1')
            throw new DataFormatException($"{path}: is a Parquet file (starts with PAR1) but dataset_info.json says fileFormat tfrecord; supported formats: tfrecord. Re-download the dataset.", path, 0);
    }
}
