using System.Globalization;
using System.Text;
using System.Text.Json;
using Samplers.Core.Tfds;
using Samplers.Core;

namespace Samplers.Tfds;

/// <summary>One split of a prepared dataset, from <c>dataset_info.json</c> (TFDS_FORMAT.md 2.2).</summary>
/// <param name="Name">Split name (case-sensitive).</param>
/// <param name="ShardLengths">Records in each shard, in shard order; the shard count is its length.</param>
/// <param name="NumBytes">Serialized size as TFDS summed it (informational).</param>
/// <param name="FilepathTemplate">Shard path template relative to the version directory (the default when the file has none).</param>
public sealed record SplitInfo(string Name, long[] ShardLengths, long NumBytes, string FilepathTemplate)
{
    /// <summary>TFDS's default shard template.</summary>
    public const string DefaultTemplate = "{DATASET}-{SPLIT}.{FILEFORMAT}-{SHARD_X_OF_Y}";

    /// <summary>The <c>dataset_info.json</c> this split was read from (for messages); empty when built in code.</summary>
    public string SourcePath { get; init; } = "";

    /// <summary>Examples in the split: the sum of <see cref="ShardLengths"/>.</summary>
    /// <exception cref="DataFormatException">The lengths sum to more than 2^63-1 (hostile or damaged metadata).</exception>
    public long NumExamples => TryNumExamples(out long n) ? n : throw TooMany();

    /// <summary>The sum of <see cref="ShardLengths"/>, or false when it does not fit in an int64.</summary>
    internal bool TryNumExamples(out long total)
    {
        total = 0;
        foreach (long l in ShardLengths)
        {
            // Lengths are checked non-negative at parse time, so an overflow shows as a sum below its last term.
            long next = unchecked(total + l);
            if (l < 0 || next < total) return false;
            total = next;
        }
        return true;
    }

    /// <summary>The error for a split whose lengths overflow: names the file, the split and what to do.</summary>
    internal DataFormatException TooMany() => new(
        $"{(SourcePath.Length > 0 ? SourcePath : "dataset_info.json")}: split '{Name}': shardLengths [{string.Join(", ", ShardLengths.Take(8))}{(ShardLengths.Length > 8 ? ", ..." : "")}] " +
        "sum to more than 9223372036854775807 records; the metadata is damaged. Re-download or re-prepare the dataset (other splits can still be loaded).",
        SourcePath.Length > 0 ? SourcePath : null, null, $"splits[{Name}].shardLengths");
}

/// <summary>
/// The parts of <c>dataset_info.json</c> a reader uses (TFDS_FORMAT.md 2). Accepts camelCase and snake_case keys,
/// int64 values as strings or numbers, and ignores unknown keys.
/// </summary>
public sealed class DatasetInfo
{
    /// <summary>The file formats this library reads.</summary>
    public static IReadOnlyList<string> SupportedFileFormats { get; } = ["tfrecord"];

    private DatasetInfo(string filePath, string name, string version, string configName, string fileFormat,
        IReadOnlyList<SplitInfo> splits, bool disableShuffling, string moduleName, IReadOnlyList<string>? supervisedKeys)
    {
        FilePath = filePath; Name = name; Version = version; ConfigName = configName; FileFormat = fileFormat;
        Splits = splits; DisableShuffling = disableShuffling; ModuleName = moduleName; SupervisedKeys = supervisedKeys;
    }

    /// <summary>The file this was read from.</summary>
    public string FilePath { get; }
    /// <summary>Dataset name; the <c>{DATASET}</c> of shard names (not necessarily the directory name).</summary>
    public string Name { get; }
    /// <summary>Version <c>x.y.z</c>.</summary>
    public string Version { get; }
    /// <summary>Config name; empty when the dataset has no configs.</summary>
    public string ConfigName { get; }
    /// <summary><c>fileFormat</c>; <c>tfrecord</c> when absent.</summary>
    public string FileFormat { get; }
    /// <summary>Splits in file order (this order defines <c>all</c>).</summary>
    public IReadOnlyList<SplitInfo> Splits { get; }
    /// <summary>True when TFDS reads shards strictly in order (interleave cycle 1).</summary>
    public bool DisableShuffling { get; }
    /// <summary>The Python module of the builder (informational); empty when absent.</summary>
    public string ModuleName { get; }
    /// <summary>The supervised (x, y[, w]) feature keys, or null when absent or not a tuple of plain feature keys.</summary>
    public IReadOnlyList<string>? SupervisedKeys { get; }

    /// <summary>The split named <paramref name="name"/>, or null.</summary>
    public SplitInfo? FindSplit(string name) => Splits.FirstOrDefault(s => s.Name == name);

    /// <summary>Reads and validates a <c>dataset_info.json</c>.</summary>
    /// <exception cref="DatasetNotFoundException">The file does not exist.</exception>
    /// <exception cref="DataFormatException">Malformed JSON, a key of the wrong type, or a legacy (TFDS 1.x) split without shard lengths.</exception>
    public static DatasetInfo Load(string path)
    {
        ArgumentNullException.ThrowIfNull(path);
        using var doc = TfdsJson.ParseFile(path, "dataset_info.json");
        return FromJson(doc.RootElement, path);
    }

    /// <summary>Parses <c>dataset_info.json</c> content; <paramref name="path"/> is used in messages.</summary>
    /// <exception cref="DataFormatException">As <see cref="Load"/>.</exception>
    public static DatasetInfo Parse(string json, string path)
    {
        ArgumentNullException.ThrowIfNull(json);
        using var doc = TfdsJson.Parse(Encoding.UTF8.GetBytes(json), path, "dataset_info.json");
        return FromJson(doc.RootElement, path);
    }

    private static DatasetInfo FromJson(JsonElement root, string path)
    {
        if (root.ValueKind != JsonValueKind.Object) throw TfdsJson.Bad(path, "(top level)", "a JSON object", root);
        string name = TfdsJson.GetString(root, "name", "", path, "");
        string version = TfdsJson.GetString(root, "version", "", path, "");
        string config = TfdsJson.GetString(root, "configName", "", path, "");
        string format = TfdsJson.GetString(root, "fileFormat", "", path, "");
        if (format.Length == 0) format = "tfrecord";
        if (name.Length == 0)
            throw new DataFormatException($"{path}: key 'name' is missing or empty; expected the dataset name (it names the shard files). Re-download or re-prepare the dataset.", path, null, "name");
        var splits = new List<SplitInfo>();
        if (TfdsJson.TryGet(root, "splits", out var splitsEl))
        {
            if (splitsEl.ValueKind != JsonValueKind.Array) throw TfdsJson.Bad(path, "splits", "an array of split objects", splitsEl);
            int i = 0;
            foreach (var s in splitsEl.EnumerateArray())
            {
                string where = $"splits[{i}]";
                if (s.ValueKind != JsonValueKind.Object) throw TfdsJson.Bad(path, where, "a split object", s);
                string splitName = TfdsJson.GetString(s, "name", "", path, where);
                if (splitName.Length == 0)
                    throw new DataFormatException($"{path}: key '{where}.name' is missing or empty; every split needs a name.", path, null, where + ".name");
                long[] lengths;
                if (TfdsJson.TryGet(s, "shardLengths", out var sl))
                {
                    if (sl.ValueKind != JsonValueKind.Array) throw TfdsJson.Bad(path, $"{where}.shardLengths", "an array of integers", sl);
                    lengths = sl.EnumerateArray().Select((e, k) => TfdsJson.ToInt64(e, path, $"{where}.shardLengths[{k}]")).ToArray();
                    for (int k = 0; k < lengths.Length; k++)
                        if (lengths[k] < 0) throw new DataFormatException($"{path}: key '{where}.shardLengths[{k}]' is {lengths[k]}; a shard length cannot be negative.", path, null, $"{where}.shardLengths[{k}]");
                }
                else lengths = [];
                long numShards = TfdsJson.GetInt64(s, "numShards", 0, path, where);
                if (lengths.Length == 0 && numShards > 0)
                {
                    long legacyCount = TfdsJson.TryGet(s, "statistics", out var st) ? TfdsJson.GetInt64(st, "numExamples", 0, path, where + ".statistics") : 0;
                    throw new DataFormatException(
                        $"{path}: split '{splitName}' is a legacy dataset (TFDS 1.x): it lists numShards = {numShards} and {legacyCount} examples but no shardLengths, " +
                        "so per-shard record counts are unknown and slicing is impossible (TFDS 4 refuses it too). Re-prepare the dataset with TFDS 4.",
                        path, null, where + ".numShards");
                }
                string template = TfdsJson.GetString(s, "filepathTemplate", "", path, where);
                if (template.Length == 0) template = SplitInfo.DefaultTemplate;
                splits.Add(new SplitInfo(splitName, lengths, TfdsJson.GetInt64(s, "numBytes", 0, path, where), template) { SourcePath = path });
                i++;
            }
        }
        return new DatasetInfo(path, name, version, config, format, splits,
            TfdsJson.GetBool(root, "disableShuffling", path, ""), TfdsJson.GetString(root, "moduleName", "", path, ""),
            ReadSupervisedKeys(root));
    }

    private static IReadOnlyList<string>? ReadSupervisedKeys(JsonElement root)
    {
        if (!TfdsJson.TryGet(root, "supervisedKeys", out var sk) || sk.ValueKind != JsonValueKind.Object) return null;
        // Legacy form {"input": x, "output": y}.
        if (sk.TryGetProperty("input", out var input) && sk.TryGetProperty("output", out var output)
            && input.ValueKind == JsonValueKind.String && output.ValueKind == JsonValueKind.String
            && input.GetString() is { Length: > 0 } x && output.GetString() is { Length: > 0 } y)
            return [x, y];
        // Current form {"tuple": {"items": [{"featureKey": k}, ...]}}; other nests are not supported (null).
        if (TfdsJson.TryGet(sk, "tuple", out var tuple) && TfdsJson.TryGet(tuple, "items", out var items) && items.ValueKind == JsonValueKind.Array)
        {
            var keys = new List<string>();
            foreach (var item in items.EnumerateArray())
            {
                if (TfdsJson.TryGet(item, "featureKey", out var fk) && fk.ValueKind == JsonValueKind.String && fk.GetString() is { } k) keys.Add(k);
                else return null;
            }
            return keys.Count is 2 or 3 ? keys : null;
        }
        return null;
    }

    /// <summary>
    /// The shard file paths of a split, relative to the version directory, paired with <see cref="SplitInfo.ShardLengths"/>
    /// as TFDS pairs them: the template is formatted for every index, the results are sorted ordinally, and sorted
    /// path i goes with length i (TFDS_FORMAT.md 3.2).
    /// </summary>
    /// <exception cref="DataFormatException">The template has an unknown placeholder, a '%', an unbalanced brace, or leaves the version directory.</exception>
    public string[] ShardRelativePaths(SplitInfo split)
    {
        ArgumentNullException.ThrowIfNull(split);
        int n = split.ShardLengths.Length;
        var paths = new string[n];
        for (int i = 0; i < n; i++) paths[i] = FormatTemplate(split, i, n);
        Array.Sort(paths, StringComparer.Ordinal);
        return paths;
    }

    /// <summary>Formats the shard template for shard <paramref name="index"/> of <paramref name="count"/>; numbers are
    /// zero-padded to max(5, digits of count).</summary>
    /// <exception cref="DataFormatException">As <see cref="ShardRelativePaths"/>.</exception>
    public string FormatTemplate(SplitInfo split, int index, int count)
    {
        ArgumentNullException.ThrowIfNull(split);
        string t = split.FilepathTemplate;
        string key = $"splits[{split.Name}].filepathTemplate";
        DataFormatException Err(string what) => new(
            $"{FilePath}: key '{key}' = \"{t}\": {what}. Known placeholders: {{DATASET}}, {{SPLIT}}, {{FILEFORMAT}}, {{SHARD_INDEX}}, {{NUM_SHARDS}}, {{SHARD_X_OF_Y}}.",
            FilePath, null, key);
        if (t.Contains('%')) throw Err("templates with '%' (encoding suffixes) are not supported");
        int width = Math.Max(5, count.ToString(CultureInfo.InvariantCulture).Length);
        string idx = index.ToString(CultureInfo.InvariantCulture).PadLeft(width, '0');
        string num = count.ToString(CultureInfo.InvariantCulture).PadLeft(width, '0');
        var sb = new StringBuilder();
        for (int i = 0; i < t.Length; i++)
        {
            char c = t[i];
            if (c == '{' && i + 1 < t.Length && t[i + 1] == '{') { sb.Append('{'); i++; continue; }
            if (c == '}' && i + 1 < t.Length && t[i + 1] == '}') { sb.Append('}'); i++; continue; }
            if (c == '}') throw Err($"unbalanced '}}' at position {i}");
            if (c != '{') { sb.Append(c); continue; }
            int close = t.IndexOf('}', i + 1);
            if (close < 0) throw Err($"unbalanced '{{' at position {i}");
            string ph = t.Substring(i + 1, close - i - 1);
            sb.Append(ph switch
            {
                "DATASET" => Name,
                "SPLIT" => split.Name,
                "FILEFORMAT" => FileFormat,
                "SHARD_INDEX" => idx,
                "NUM_SHARDS" => num,
                "SHARD_X_OF_Y" => $"{idx}-of-{num}",
                _ => throw Err($"unknown placeholder {{{ph}}}"),
            });
            i = close;
        }
        string rel = sb.ToString();
        if (Path.IsPathRooted(rel) || rel.Split('/', '\\').Contains(".."))
            throw Err($"the shard path '{rel}' leaves the version directory");
        return rel;
    }

    /// <summary>The splits as the core's split arithmetic takes them.</summary>
    internal SplitShards[] ToSplitShards() => Splits.Select(s => new SplitShards(s.Name, s.ShardLengths)).ToArray();
}
