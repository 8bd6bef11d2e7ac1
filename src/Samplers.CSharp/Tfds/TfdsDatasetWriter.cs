using System.Globalization;
using System.Text;
using System.Text.Json;
using Samplers.Core.Tfds;

namespace Samplers.Tfds;

/// <summary>A feature to describe in <c>features.json</c>: its spec and its path of FeaturesDict member names.</summary>
/// <param name="Spec">The feature; <c>Spec.Key</c> must equal the path joined with <c>/</c>.</param>
/// <param name="Path">The member names from the top FeaturesDict down. A name may itself contain <c>/</c>
/// (caltech_birds2011's <c>image/filename</c>). When <c>Spec.InSequence</c>, the first name is a Sequence: of a
/// FeaturesDict holding the rest of the path, or of the feature itself when the path has one name.</param>
public sealed record DatasetFeature(FeatureSpec Spec, IReadOnlyList<string> Path)
{
    /// <summary>A feature whose path is its key split on <c>/</c> (nested FeaturesDicts).</summary>
    public static DatasetFeature Nested(FeatureSpec spec)
    {
        ArgumentNullException.ThrowIfNull(spec);
        return new DatasetFeature(spec, spec.Key.Split('/'));
    }

    /// <summary>A top-level feature whose name is the whole key, even if it contains <c>/</c>.</summary>
    public static DatasetFeature TopLevel(FeatureSpec spec)
    {
        ArgumentNullException.ThrowIfNull(spec);
        return new DatasetFeature(spec, [spec.Key]);
    }
}

/// <summary>
/// Writes a dataset in the layout TFDS prepares (TFDS_FORMAT.md 1.2): TFRecord shards named by the template,
/// several per split, <c>features.json</c> in the current proto-JSON form, <c>&lt;feature&gt;.labels.txt</c> files and
/// <c>dataset_info.json</c> in the proto-JSON form with int64 values as strings.
/// </summary>
/// <remarks>
/// <para>The JSON is written from the format description, independently of the catalog's parser, so that tests
/// check the reader against an independent writer. Every file goes through a temporary file in the same folder and
/// a rename. <c>dataset_info.json</c> is written last by <see cref="Complete"/>: a folder without it is not a
/// dataset, so an interrupted generation never looks complete.</para>
/// <para>Use: construct, call <see cref="WriteSplit(string, IReadOnlyList{byte[]}, int)"/> per split (in the order
/// <c>dataset_info.json</c> should list them), then <see cref="Complete"/>.</para>
/// </remarks>
public sealed class TfdsDatasetWriter
{
    /// <summary>The default shard path template.</summary>
    public const string DefaultTemplate = "{DATASET}-{SPLIT}.{FILEFORMAT}-{SHARD_X_OF_Y}";

    /// <summary>The loader's own rules for what a writer names: <paramref name="name"/> is a plain dataset name as
    /// <see cref="DatasetNames.Parse"/> reads it (<c>[A-Za-z][A-Za-z0-9_]*</c>: no config, no version, no <c>/</c> or
    /// <c>..</c>) and <paramref name="version"/> a resolved version (<see cref="DatasetVersion.TryParse"/>, <c>x.y.z</c>),
    /// so <c>&lt;data_dir&gt;/{name}/{version}</c> stays inside the data directory.</summary>
    /// <exception cref="ArgumentException">Either is not valid (the exception names the parameter).</exception>
    internal static void CheckNameAndVersion(string name, string version)
    {
        ArgumentException.ThrowIfNullOrEmpty(name);
        ArgumentException.ThrowIfNullOrEmpty(version);
        bool plain = Char.IsAsciiLetter(name[0]);
        foreach (char c in name) plain &= Char.IsAsciiLetterOrDigit(c) || c == '_';
        if (!plain)
            throw new ArgumentException($"Dataset name '{name}' is not a dataset name the loader accepts ([A-Za-z][A-Za-z0-9_]*: no '/', '..', config or version); a writer never writes outside the data directory.", nameof(name));
        if (!DatasetVersion.TryParse(version, out _))
            throw new ArgumentException($"Dataset version '{version}' is not a version the loader accepts (x.y.z, each part 0 or a number without a leading zero); a writer never writes outside the data directory.", nameof(version));
    }

    /// <summary>A split name the writer accepts: not empty, no path separator, not <c>.</c> or <c>..</c>, so shard names stay
    /// inside the version folder.</summary>
    /// <exception cref="ArgumentException">It is not (the exception names the parameter <c>split</c>).</exception>
    internal static void CheckSplitName(string split)
    {
        ArgumentException.ThrowIfNullOrEmpty(split);
        if (split is "." or ".." || split.IndexOfAny(['/', '\\', '\0']) >= 0)
            throw new ArgumentException($"Split name '{split}' would name a folder (it has a path separator or is '.' or '..'); a writer never writes outside the version folder.", nameof(split));
    }

    private readonly List<DatasetFeature> _features;
    private readonly List<(string Name, long[] Lengths, long Bytes, string? Template)> _splits = [];
    private bool _completed;

    /// <summary>Prepares to write into <paramref name="versionDirectory"/> (created if needed).</summary>
    /// <param name="versionDirectory">The version folder, e.g. <c>&lt;data_dir&gt;/mnist/3.0.1</c>.</param>
    /// <param name="name">The dataset name (<c>{DATASET}</c> in shard names).</param>
    /// <param name="version">The version string, <c>x.y.z</c>.</param>
    /// <param name="features">The features, in the order to write them.</param>
    /// <exception cref="ArgumentException">A feature's key differs from its path, or keys repeat; or the name or the
    /// version is not one the loader accepts (a name <c>[A-Za-z][A-Za-z0-9_]*</c>, a version <c>x.y.z</c>), so it can
    /// never name a folder outside the data directory (<c>..</c>, <c>/</c>).</exception>
    public TfdsDatasetWriter(string versionDirectory, string name, string version, IEnumerable<DatasetFeature> features)
    {
        ArgumentNullException.ThrowIfNull(versionDirectory);
        CheckNameAndVersion(name, version);
        ArgumentNullException.ThrowIfNull(features);
        VersionDirectory = versionDirectory;
        Name = name;
        Version = version;
        _features = features.ToList();
        var seen = new HashSet<string>(StringComparer.Ordinal);
        foreach (var f in _features)
        {
            if (f.Path.Count == 0 || string.Join('/', f.Path) != f.Spec.Key)
                throw new ArgumentException($"Feature path ({string.Join(" > ", f.Path)}) does not join to its key '{f.Spec.Key}'.", nameof(features));
            if (!seen.Add(f.Spec.Key)) throw new ArgumentException($"Feature key '{f.Spec.Key}' appears twice.", nameof(features));
        }
        Directory.CreateDirectory(versionDirectory);
    }

    /// <summary>Same, with each feature nested by splitting its key on <c>/</c>.</summary>
    public TfdsDatasetWriter(string versionDirectory, string name, string version, IEnumerable<FeatureSpec> features)
        : this(versionDirectory, name, version, (features ?? throw new ArgumentNullException(nameof(features))).Select(DatasetFeature.Nested))
    {
    }

    /// <summary>The version folder written into.</summary>
    public string VersionDirectory { get; }

    /// <summary>The dataset name.</summary>
    public string Name { get; }

    /// <summary>The version string.</summary>
    public string Version { get; }

    /// <summary>The config name written as <c>configName</c>; null for datasets without configs.</summary>
    public string? ConfigName { get; init; }

    /// <summary>The shard path template; null writes no <c>filepathTemplate</c> (the pre-4.6 form, meaning the default).</summary>
    public string? FilepathTemplate { get; init; } = DefaultTemplate;

    /// <summary>The <c>fileFormat</c> field; null omits it (older files; readers then assume tfrecord).</summary>
    public string? FileFormat { get; init; } = "tfrecord";

    /// <summary>Supervised keys <c>(input, label)</c> written in the current <c>tuple</c> form; null omits them.</summary>
    public (string Input, string Label)? SupervisedKeys { get; init; }

    /// <summary>The free-text <c>description</c>.</summary>
    public string Description { get; init; } = "";

    /// <summary>The dataset's homepage, written as <c>location.urls</c> (as TFDS writes it); null omits it.</summary>
    public string? Homepage { get; init; }

    /// <summary>Writes the TFDS shard name for shard <paramref name="index"/> of <paramref name="count"/> (TFDS_FORMAT.md 3.1).</summary>
    /// <exception cref="ArgumentException">The template has a placeholder TFDS does not define.</exception>
    public static string ShardName(string template, string dataset, string split, string fileFormat, int index, int count)
    {
        ArgumentNullException.ThrowIfNull(template);
        int width = Math.Max(5, count.ToString(CultureInfo.InvariantCulture).Length);
        string i = index.ToString(CultureInfo.InvariantCulture).PadLeft(width, '0');
        string n = count.ToString(CultureInfo.InvariantCulture).PadLeft(width, '0');
        var sb = new StringBuilder();
        int pos = 0;
        while (pos < template.Length)
        {
            int open = template.IndexOf('{', pos);
            if (open < 0) { sb.Append(template, pos, template.Length - pos); break; }
            int close = template.IndexOf('}', open);
            if (close < 0) throw new ArgumentException($"Template '{template}' has an unclosed '{{'.", nameof(template));
            sb.Append(template, pos, open - pos);
            string name = template[(open + 1)..close];
            sb.Append(name switch
            {
                "DATASET" => dataset,
                "SPLIT" => split,
                "FILEFORMAT" => fileFormat,
                "SHARD_INDEX" => i,
                "NUM_SHARDS" => n,
                "SHARD_X_OF_Y" => $"{i}-of-{n}",
                _ => throw new ArgumentException($"Template '{template}' has the unknown placeholder {{{name}}}.", nameof(template)),
            });
            pos = close + 1;
        }
        return sb.ToString();
    }

    /// <summary>
    /// Writes a split of serialized Examples over <paramref name="numShards"/> shards, in order, as evenly as
    /// possible (the first shards take one extra record when the count does not divide). Returns the shard paths.
    /// </summary>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="numShards"/> is less than 1.</exception>
    /// <exception cref="InvalidOperationException">The split was already written, or <see cref="Complete"/> was called.</exception>
    public IReadOnlyList<string> WriteSplit(string split, IReadOnlyList<byte[]> examples, int numShards = 1)
    {
        ArgumentNullException.ThrowIfNull(examples);
        ArgumentOutOfRangeException.ThrowIfLessThan(numShards, 1);
        var shards = new List<IReadOnlyList<byte[]>>(numShards);
        int q = examples.Count / numShards, r = examples.Count % numShards, at = 0;
        for (int s = 0; s < numShards; s++)
        {
            int take = q + (s < r ? 1 : 0);
            shards.Add(examples.Skip(at).Take(take).ToList());
            at += take;
        }
        return WriteSplit(split, shards);
    }

    /// <summary>Writes a split whose shard contents are given explicitly (a shard may be empty). Returns the shard paths.</summary>
    /// <exception cref="ArgumentException">No shards given, or a bad split name.</exception>
    /// <exception cref="InvalidOperationException">The split was already written, or <see cref="Complete"/> was called.</exception>
    public IReadOnlyList<string> WriteSplit(string split, IReadOnlyList<IReadOnlyList<byte[]>> shards)
    {
        ArgumentNullException.ThrowIfNull(shards);
        if (shards.Count == 0) throw new ArgumentException("A split needs at least one shard.", nameof(shards));
        return WriteSplitStreamed(split, shards.Count, s => shards[s]);
    }

    /// <summary>
    /// Writes a split shard by shard: <paramref name="shardExamples"/> is asked for shard 0, 1, ... in turn and its
    /// sequence is enumerated once, while that shard's file is written, so a split larger than memory can be written
    /// from a lazy sequence. Shard lengths and byte counts are counted as records go by. Returns the shard paths.
    /// </summary>
    /// <param name="split">The split name.</param>
    /// <param name="numShards">The number of shards (a shard may be empty).</param>
    /// <param name="shardExamples">The serialized Examples of shard <c>i</c>.</param>
    /// <exception cref="ArgumentException"><paramref name="split"/> has a path separator or is <c>.</c> or <c>..</c>.</exception>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="numShards"/> is less than 1.</exception>
    /// <exception cref="InvalidOperationException">The split was already written, or <see cref="Complete"/> was called.</exception>
    public IReadOnlyList<string> WriteSplitStreamed(string split, int numShards, Func<int, IEnumerable<byte[]>> shardExamples)
    {
        CheckSplitName(split);
        ArgumentOutOfRangeException.ThrowIfLessThan(numShards, 1);
        ArgumentNullException.ThrowIfNull(shardExamples);
        if (_completed) throw new InvalidOperationException("Complete() was already called; create a new writer.");
        if (_splits.Exists(s => s.Name == split)) throw new InvalidOperationException($"Split '{split}' was already written.");
        string template = FilepathTemplate ?? DefaultTemplate;
        var paths = new List<string>(numShards);
        var lengths = new long[numShards];
        long bytes = 0;
        for (int s = 0; s < numShards; s++)
        {
            string rel = ShardName(template, Name, split, FileFormat ?? "tfrecord", s, numShards);
            string path = Path.Combine(VersionDirectory, rel);
            var records = shardExamples(s) ?? throw new InvalidOperationException($"Shard {s} of split '{split}': the callback returned null.");
            lengths[s] = TfRecordWriter.WriteFileInFolder(path, Counted(records));
            paths.Add(path);
        }
        _splits.Add((split, lengths, bytes, null));
        return paths;

        IEnumerable<byte[]> Counted(IEnumerable<byte[]> records)
        {
            foreach (var e in records)
            {
                bytes += e.Length;
                yield return e;
            }
        }
    }

    /// <summary>
    /// Lists a split whose shards are already in the version folder (written by an earlier run, read back with
    /// <see cref="DatasetInfo"/>), so that <see cref="Complete"/> keeps it in <c>dataset_info.json</c> beside the splits
    /// written now. Its shard lengths, byte count and shard template are written as they are; its files are not touched.
    /// </summary>
    /// <exception cref="ArgumentException">A bad split name.</exception>
    /// <exception cref="InvalidOperationException">A split of that name is already listed, or <see cref="Complete"/> was called.</exception>
    public void KeepSplit(SplitInfo split)
    {
        ArgumentNullException.ThrowIfNull(split);
        CheckSplitName(split.Name);
        if (_completed) throw new InvalidOperationException("Complete() was already called; create a new writer.");
        if (_splits.Exists(s => s.Name == split.Name)) throw new InvalidOperationException($"Split '{split.Name}' was already written.");
        _splits.Add((split.Name, [.. split.ShardLengths], split.NumBytes, split.FilepathTemplate));
    }

    /// <summary>Writes <c>features.json</c>, the labels files and, last, <c>dataset_info.json</c>.</summary>
    /// <exception cref="InvalidOperationException">Already completed.</exception>
    public void Complete()
    {
        if (_completed) throw new InvalidOperationException("Complete() was already called.");
        WriteAtomically(Path.Combine(VersionDirectory, "features.json"), FeaturesJson());
        foreach (var f in _features)
        {
            var names = f.Spec.ClassNames;
            if (f.Spec.Kind != FeatureKind.ClassLabel || names is null || IsDefaultNames(names)) continue;
            string file = string.Join('-', f.Path.Select(p => p.Replace('/', '.'))) + ".labels.txt";
            WriteAtomically(Path.Combine(VersionDirectory, file), Encoding.UTF8.GetBytes(string.Concat(names.Select(n => n + "\n"))));
        }
        WriteAtomically(Path.Combine(VersionDirectory, "dataset_info.json"), DatasetInfoJson());
        _completed = true;
    }

    private static bool IsDefaultNames(IReadOnlyList<string> names)
    {
        for (int i = 0; i < names.Count; i++) if (names[i] != i.ToString(CultureInfo.InvariantCulture)) return false;
        return true;
    }

    /// <summary>The <c>dataset_info.json</c> bytes for the splits written so far (keys sorted, as TFDS writes them).</summary>
    public byte[] DatasetInfoJson()
    {
        using var ms = new MemoryStream();
        using (var w = new Utf8JsonWriter(ms, new JsonWriterOptions { Indented = true }))
        {
            w.WriteStartObject();
            if (ConfigName is not null) w.WriteString("configName", ConfigName);
            if (Description.Length > 0) w.WriteString("description", Description);
            if (FileFormat is not null) w.WriteString("fileFormat", FileFormat);
            if (Homepage is not null)
            {
                w.WriteStartObject("location");
                w.WriteStartArray("urls");
                w.WriteStringValue(Homepage);
                w.WriteEndArray();
                w.WriteEndObject();
            }
            w.WriteString("name", Name);
            w.WriteStartArray("splits");
            foreach (var (name, lengths, bytes, kept) in _splits)
            {
                w.WriteStartObject();
                if ((kept ?? FilepathTemplate) is { } template) w.WriteString("filepathTemplate", template);
                w.WriteString("name", name);
                if (bytes != 0) w.WriteString("numBytes", bytes.ToString(CultureInfo.InvariantCulture));
                w.WriteStartArray("shardLengths");
                foreach (long l in lengths) w.WriteStringValue(l.ToString(CultureInfo.InvariantCulture));
                w.WriteEndArray();
                w.WriteEndObject();
            }
            w.WriteEndArray();
            if (SupervisedKeys is var (x, y))
            {
                w.WriteStartObject("supervisedKeys");
                w.WriteStartObject("tuple");
                w.WriteStartArray("items");
                w.WriteStartObject(); w.WriteString("featureKey", x); w.WriteEndObject();
                w.WriteStartObject(); w.WriteString("featureKey", y); w.WriteEndObject();
                w.WriteEndArray();
                w.WriteEndObject();
                w.WriteEndObject();
            }
            w.WriteString("version", Version);
            w.WriteEndObject();
        }
        return ms.ToArray();
    }

    /// <summary>The <c>features.json</c> bytes in the current proto-JSON form (TFDS_FORMAT.md 4.1).</summary>
    public byte[] FeaturesJson()
    {
        // Build the tree of FeaturesDicts (and Sequences) from the paths, keeping first-seen order.
        var root = new Node();
        foreach (var f in _features)
        {
            var node = root;
            int last = f.Path.Count - 1;
            for (int i = 0; i < last; i++)
            {
                node = node.Child(f.Path[i]);
                if (i == 0 && f.Spec.InSequence) node.IsSequence = true;
            }
            node.Child(f.Path[last]).Leaf = f.Spec;
        }
        using var ms = new MemoryStream();
        using (var w = new Utf8JsonWriter(ms, new JsonWriterOptions { Indented = true }))
            WriteDict(w, root);
        return ms.ToArray();
    }

    private sealed class Node
    {
        public readonly List<(string Name, Node Node)> Children = [];
        public FeatureSpec? Leaf;
        public bool IsSequence;

        public Node Child(string name)
        {
            foreach (var (n, c) in Children) if (n == name) return c;
            var node = new Node();
            Children.Add((name, node));
            return node;
        }
    }

    private static void WriteDict(Utf8JsonWriter w, Node node, bool insideSequence = false)
    {
        w.WriteStartObject();
        w.WriteString("pythonClassName", "tensorflow_datasets.core.features.features_dict.FeaturesDict");
        w.WriteStartObject("featuresDict");
        w.WriteStartObject("features");
        foreach (var (name, child) in node.Children)
        {
            w.WritePropertyName(name);
            if (child.Leaf is { } spec)
            {
                // A sequenced leaf directly under a plain dict is a Sequence of that feature.
                if (spec.InSequence && !insideSequence) WriteSequence(w, () => WriteLeaf(w, spec, dropLeading: true));
                else WriteLeaf(w, spec, dropLeading: insideSequence);
            }
            else if (child.IsSequence)
            {
                WriteSequence(w, () => WriteDict(w, child, insideSequence: true));
            }
            else
            {
                WriteDict(w, child, insideSequence);
            }
        }
        w.WriteEndObject();
        w.WriteEndObject();
        w.WriteEndObject();
    }

    private static void WriteSequence(Utf8JsonWriter w, Action inner)
    {
        w.WriteStartObject();
        w.WriteString("pythonClassName", "tensorflow_datasets.core.features.sequence_feature.Sequence");
        w.WriteStartObject("sequence");
        w.WritePropertyName("feature");
        inner();
        // Variable length: no "length" (TFDS writes the default 0 for None, and defaults are omitted).
        w.WriteEndObject();
        w.WriteEndObject();
    }

    private static void WriteShape(Utf8JsonWriter w, IEnumerable<int> shape)
    {
        w.WriteStartObject("shape");
        var dims = shape.ToList();
        if (dims.Count > 0)
        {
            w.WriteStartArray("dimensions");
            foreach (int d in dims) w.WriteStringValue(d.ToString(CultureInfo.InvariantCulture));
            w.WriteEndArray();
        }
        w.WriteEndObject();
    }

    private static void WriteLeaf(Utf8JsonWriter w, FeatureSpec spec, bool dropLeading)
    {
        var shape = dropLeading && spec.InSequence ? spec.Shape.Skip(1) : spec.Shape;
        string cls = !string.IsNullOrEmpty(spec.PythonClassName) ? spec.PythonClassName : spec.Kind switch
        {
            FeatureKind.Image => "tensorflow_datasets.core.features.image_feature.Image",
            FeatureKind.ClassLabel => "tensorflow_datasets.core.features.class_label_feature.ClassLabel",
            FeatureKind.Tensor => "tensorflow_datasets.core.features.tensor_feature.Tensor",
            FeatureKind.Text => "tensorflow_datasets.core.features.text_feature.Text",
            FeatureKind.BoundingBox => "tensorflow_datasets.core.features.bounding_boxes.BBoxFeature",
            _ => throw new ArgumentOutOfRangeException(nameof(spec), spec.Kind, "Unknown feature kind."),
        };
        w.WriteStartObject();
        w.WriteString("pythonClassName", cls);
        switch (spec.Kind)
        {
            case FeatureKind.Image:
                w.WriteStartObject("image");
                WriteShape(w, shape);
                w.WriteString("dtype", DTypes.Name(spec.DType));
                if (spec.EncodingFormat is not null) w.WriteString("encodingFormat", spec.EncodingFormat);
                w.WriteEndObject();
                break;
            case FeatureKind.ClassLabel:
                w.WriteStartObject("classLabel");
                w.WriteString("numClasses", spec.NumClasses.ToString(CultureInfo.InvariantCulture));
                w.WriteEndObject();
                break;
            case FeatureKind.Tensor:
                w.WriteStartObject("tensor");
                WriteShape(w, shape);
                w.WriteString("dtype", DTypes.Name(spec.DType));
                if (spec.Encoding != TensorEncoding.None) w.WriteString("encoding", spec.Encoding == TensorEncoding.Bytes ? "bytes" : "zlib");
                if (spec.Optional) w.WriteBoolean("optional", true);
                w.WriteEndObject();
                break;
            case FeatureKind.Text:
                w.WriteStartObject("text");
                w.WriteEndObject();
                break;
            case FeatureKind.BoundingBox:
                w.WriteStartObject("boundingBox");
                WriteShape(w, shape.Any() ? shape : [4]);
                w.WriteString("dtype", "float32");
                w.WriteEndObject();
                break;
        }
        w.WriteEndObject();
    }

    // A name the writer chooses in the version folder: a fresh temporary file (O_EXCL) and a rename, so a symbolic link
    // planted at the name is replaced, never written through (docs/ROBUSTNESS.md, "Output rule", 2).
    private static void WriteAtomically(string path, byte[] bytes) => OutputTarget.ReplaceInFolder(path, s => s.Write(bytes));
}
