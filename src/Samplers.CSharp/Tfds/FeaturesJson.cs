using System.Text;
using System.Text.Json;

namespace Samplers.Tfds;

/// <summary>
/// Parses <c>features.json</c> (TFDS_FORMAT.md 4) into the flat list of leaf features, in both the proto-JSON form
/// (<c>pythonClassName</c> + one content key, TFDS ≈4.6+) and the legacy <c>type</c>/<c>content</c> form (TFDS 4.0–4.5),
/// and fills ClassLabel names from the <c>&lt;path&gt;.labels.txt</c> sidecar files.
/// </summary>
internal static class FeaturesJson
{
    private const string Prefix = "tensorflow_datasets.core.features.";

    /// <summary>Reads <c>features.json</c> from <paramref name="versionDirectory"/> and returns its leaf features in file order.</summary>
    /// <exception cref="DatasetNotFoundException">The file is absent (the dataset was prepared by TFDS ≤ 3.2.1).</exception>
    /// <exception cref="DataFormatException">Malformed JSON, an unsupported feature class, a bad labels file.</exception>
    public static IReadOnlyList<FeatureSpec> Load(string versionDirectory)
    {
        ArgumentNullException.ThrowIfNull(versionDirectory);
        string path = Path.Combine(versionDirectory, "features.json");
        if (!File.Exists(path))
            throw new DatasetNotFoundException(
                $"{path} is missing: this version directory was prepared by TFDS <= 3.2.1, which did not write features.json, " +
                "and the schema cannot be read without the dataset's Python code. Re-prepare or re-download the dataset with TFDS 4 or later.",
                path, "features.json");
        using var doc = TfdsJson.ParseFile(path, "features.json");
        return Parse(doc.RootElement, path, versionDirectory);
    }

    /// <summary>Parses <c>features.json</c> text; label files are looked up in <paramref name="versionDirectory"/>
    /// (null: no lookup, names default to "0".."N-1").</summary>
    /// <exception cref="DataFormatException">As <see cref="Load"/>.</exception>
    public static IReadOnlyList<FeatureSpec> Parse(string json, string path, string? versionDirectory)
    {
        ArgumentNullException.ThrowIfNull(json);
        using var doc = TfdsJson.Parse(Encoding.UTF8.GetBytes(json), path, "features.json");
        return Parse(doc.RootElement, path, versionDirectory);
    }

    private static List<FeatureSpec> Parse(JsonElement root, string path, string? versionDirectory, List<string>? labelFiles = null)
    {
        var ctx = new Ctx(path, versionDirectory, labelFiles);
        var result = new List<FeatureSpec>();
        Feature(ctx, root, [], false, -2, result);
        return result;
    }

    /// <summary>
    /// The sidecar labels file names that the ClassLabels of <c>features.json</c> text would read (one per ClassLabel
    /// without inline names, whether or not the file exists). The downloader uses it to know which files to fetch.
    /// </summary>
    /// <exception cref="DataFormatException">As <see cref="Load"/>.</exception>
    internal static IReadOnlyList<string> LabelsFileNames(ReadOnlyMemory<byte> json, string path)
    {
        using var doc = TfdsJson.Parse(json, path, "features.json");
        var files = new List<string>();
        Parse(doc.RootElement, path, null, files);
        return files.Distinct(StringComparer.Ordinal).ToArray();
    }

    /// <summary>Parse state; <c>LabelFiles</c>, when set, collects the labels file names the ClassLabels would read.</summary>
    private sealed record Ctx(string Path, string? VersionDirectory, List<string>? LabelFiles = null);

    private static string Flat(List<string> keys) => keys.Count == 0 ? "(top level)" : string.Join("/", keys);

    /// <summary>One feature object, proto or legacy form. <paramref name="seqLength"/> is -2 outside a Sequence.</summary>
    private static void Feature(Ctx ctx, JsonElement f, List<string> keys, bool inSeq, long seqLength, List<FeatureSpec> output)
    {
        string where = Flat(keys);
        if (f.ValueKind != JsonValueKind.Object) throw TfdsJson.Bad(ctx.Path, where, "a feature object", f);
        if (f.TryGetProperty("type", out var typeEl) && typeEl.ValueKind == JsonValueKind.String)
        {
            // Legacy form: {"type": cls, "content": ..., "proto_cls": ...}.
            string cls = typeEl.GetString()!;
            f.TryGetProperty("content", out var content);
            bool proto = f.TryGetProperty("proto_cls", out var pc) && pc.ValueKind == JsonValueKind.String && pc.GetString() is { Length: > 0 };
            if (proto && content.ValueKind == JsonValueKind.String)
            {
                using var inner = TfdsJson.Parse(Encoding.UTF8.GetBytes(content.GetString()!), ctx.Path, $"the JSON string in '{where}.content'");
                Content(ctx, cls, inner.RootElement.Clone(), keys, inSeq, seqLength, output, legacy: false);
            }
            else Content(ctx, cls, content, keys, inSeq, seqLength, output, legacy: !proto);
            return;
        }
        string pyClass = TfdsJson.GetString(f, "pythonClassName", "", ctx.Path, where);
        if (pyClass.Length == 0)
            throw new DataFormatException($"{ctx.Path}: feature '{where}' has neither 'pythonClassName' (TFDS 4.6+ form) nor 'type' (legacy form); found keys {string.Join(", ", f.EnumerateObject().Select(p => p.Name))}.", ctx.Path, null, where);
        string kind = Short(pyClass);
        if (TfdsJson.TryGet(f, "jsonFeature", out var jf))
        {
            string text = TfdsJson.GetString(jf, "json", "{}", ctx.Path, where + ".jsonFeature");
            using var inner = TfdsJson.Parse(Encoding.UTF8.GetBytes(text), ctx.Path, $"the JSON string in '{where}.jsonFeature.json'");
            Content(ctx, pyClass, inner.RootElement.Clone(), keys, inSeq, seqLength, output, legacy: true);
            return;
        }
        string contentKey = kind switch
        {
            "FeaturesDict" => "featuresDict",
            "Image" => "image",
            "ClassLabel" => "classLabel",
            "Tensor" or "Scalar" => "tensor",
            "Text" => "text",
            "BBoxFeature" => "boundingBox",
            "Sequence" => "sequence",
            _ => "",
        };
        JsonElement c = default;
        if (contentKey.Length > 0) TfdsJson.TryGet(f, contentKey, out c);
        Content(ctx, pyClass, c, keys, inSeq, seqLength, output, legacy: false);
    }

    private static string Short(string cls) => cls[(cls.LastIndexOf('.') + 1)..];

    private static void Content(Ctx ctx, string pyClass, JsonElement c, List<string> keys, bool inSeq, long seqLength, List<FeatureSpec> output, bool legacy)
    {
        string where = Flat(keys);
        string kind = Short(pyClass);
        bool known = pyClass.StartsWith(Prefix, StringComparison.Ordinal) || !pyClass.Contains('.');
        string ck = where == "(top level)" ? "" : where + ".";
        int[] Prepend(int[] shape) => inSeq ? [(int)(seqLength is > 0 and <= int.MaxValue ? seqLength : -1), .. shape] : shape;
        switch (known ? kind : "")
        {
            case "FeaturesDict":
            {
                JsonElement members = c;
                if (!legacy && TfdsJson.TryGet(c, "features", out var inner)) members = inner;
                if (members.ValueKind != JsonValueKind.Object)
                {
                    if (members.ValueKind == JsonValueKind.Undefined) return; // an empty dict
                    throw TfdsJson.Bad(ctx.Path, ck + "features", "an object of named features", members);
                }
                foreach (var m in members.EnumerateObject())
                {
                    var sub = new List<string>(keys) { m.Name };
                    Feature(ctx, m.Value, sub, inSeq, seqLength, output);
                }
                return;
            }
            case "Sequence":
            {
                if (inSeq)
                    throw Refuse(ctx, pyClass, where, "a Sequence inside a Sequence uses TFDS's ragged encoding, which is not supported");
                if (!TfdsJson.TryGet(c, "feature", out var inner))
                    throw new DataFormatException($"{ctx.Path}: Sequence feature '{where}' has no 'feature' member; expected the element feature.", ctx.Path, null, where);
                long len = TfdsJson.GetInt64(c, "length", -1, ctx.Path, where);
                Feature(ctx, inner, keys, true, len <= 0 ? -1 : len, output);
                return;
            }
            case "Image":
            {
                int[] shape = Shape(ctx, c, where, [-1, -1, 3]);
                string dt = TfdsJson.GetString(c, "dtype", "uint8", ctx.Path, where);
                if (shape.Length != 3)
                    throw new DataFormatException($"{ctx.Path}: Image feature '{where}' has shape ({string.Join(", ", shape)}); expected rank 3 (height, width, channels).", ctx.Path, null, where);
                DType d = dt switch
                {
                    "uint8" => DType.UInt8,
                    "uint16" => DType.UInt16,
                    "float32" => DType.Float32,
                    _ => throw new DataFormatException($"{ctx.Path}: Image feature '{where}' has dtype '{dt}'; supported image dtypes are uint8, uint16 and float32.", ctx.Path, null, where),
                };
                if (shape[2] is 0 or < -1 or > 4)
                    throw new DataFormatException(
                        $"{ctx.Path}: Image feature '{where}' declares {shape[2]} channels (shape ({string.Join(", ", shape)})); an image has 1, 2, 3 or 4 channels, " +
                        "or -1 for the image's own. The features.json is damaged; re-download or re-prepare the dataset.", ctx.Path, null, where + ".shape[2]");
                string fmt = TfdsJson.GetString(c, "encodingFormat", "", ctx.Path, where);
                output.Add(new FeatureSpec(Join(keys), FeatureKind.Image, pyClass, d, Prepend(shape), EncodingFormat: fmt.Length == 0 ? null : fmt, InSequence: inSeq));
                return;
            }
            case "ClassLabel":
            {
                long n = TfdsJson.GetInt64(c, "numClasses", 0, ctx.Path, where);
                string[]? inline = null;
                if (TfdsJson.TryGet(c, "names", out var namesEl) && namesEl.ValueKind == JsonValueKind.Array)
                    inline = namesEl.EnumerateArray().Select(e => e.GetString() ?? "").ToArray();
                var names = ClassNames(ctx, keys, where, n, inline);
                output.Add(new FeatureSpec(Join(keys), FeatureKind.ClassLabel, pyClass, DType.Int64, Prepend([]),
                    NumClasses: names.Count, ClassNames: names, InSequence: inSeq));
                return;
            }
            case "Tensor" or "Scalar":
            {
                int[] shape = Shape(ctx, c, where, []);
                string dt = TfdsJson.GetString(c, "dtype", "", ctx.Path, where);
                if (!DTypes.TryParse(dt, out DType d))
                    throw new DataFormatException($"{ctx.Path}: Tensor feature '{where}' has dtype '{dt}'; supported: bool, int8..int64, uint8..uint64, float16, float32, float64, string.", ctx.Path, null, where);
                string enc = TfdsJson.GetString(c, "encoding", "none", ctx.Path, where).ToLowerInvariant();
                TensorEncoding e = enc switch
                {
                    "none" or "" => TensorEncoding.None,
                    "bytes" => TensorEncoding.Bytes,
                    "zlib" => TensorEncoding.Zlib,
                    _ => throw new DataFormatException($"{ctx.Path}: Tensor feature '{where}' has encoding '{enc}'; expected none, bytes or zlib.", ctx.Path, null, where),
                };
                if (e != TensorEncoding.None && d == DType.Bytes)
                    throw new DataFormatException($"{ctx.Path}: Tensor feature '{where}' has dtype string with encoding '{enc}'; TFDS allows only encoding none for strings.", ctx.Path, null, where);
                int unknown = shape.Count(x => x < 0);
                if (e == TensorEncoding.None && (unknown > 1 || (unknown == 1 && shape[0] >= 0)))
                    throw Refuse(ctx, pyClass, where, $"a Tensor of shape ({string.Join(", ", shape)}) with encoding none cannot be parsed (TFDS allows an unknown dimension only first)");
                output.Add(new FeatureSpec(Join(keys), FeatureKind.Tensor, pyClass, d, Prepend(shape), Encoding: e,
                    InSequence: inSeq, Optional: TfdsJson.GetBool(c, "optional", ctx.Path, where)));
                return;
            }
            case "Text":
            {
                if (c.ValueKind == JsonValueKind.Object && TfdsJson.TryGet(c, "encoder", out _))
                    throw Refuse(ctx, pyClass, where, "a Text feature with an encoder (TFDS 1.x subword/byte encoders) stores integer ids");
                output.Add(new FeatureSpec(Join(keys), FeatureKind.Text, pyClass, DType.Bytes, Prepend([]), InSequence: inSeq));
                return;
            }
            case "BBoxFeature":
            {
                int[] shape = Shape(ctx, c, where, [4]);
                string dt = TfdsJson.GetString(c, "dtype", "float32", ctx.Path, where);
                if (dt != "float32")
                    throw new DataFormatException($"{ctx.Path}: BBoxFeature '{where}' has dtype '{dt}'; expected float32.", ctx.Path, null, where);
                output.Add(new FeatureSpec(Join(keys), FeatureKind.BoundingBox, pyClass, DType.Float32, Prepend(shape), InSequence: inSeq));
                return;
            }
            default:
                throw Refuse(ctx, pyClass, where, kind is "Video" or "Audio" or "Translation"
                    ? $"{kind} features are out of scope"
                    : "this feature class is unknown to this reader");
        }
    }

    private static DataFormatException Refuse(Ctx ctx, string pyClass, string where, string why) =>
        new($"{ctx.Path}: feature '{where}' has class {pyClass}: {why}. Supported classes: FeaturesDict, Image, ClassLabel, Tensor, Scalar, Text, BBoxFeature, Sequence (of one of these or of a FeaturesDict). Select other features or convert the dataset.",
            ctx.Path, null, where);

    /// <summary>The flat Example key: FeaturesDict names joined with '/' (a Sequence adds nothing).</summary>
    private static string Join(List<string> keys) => string.Join("/", keys);

    /// <summary>Shape from <c>{"dimensions": [...]}</c> (proto) or a plain array (legacy); null/-1 mean unknown.</summary>
    private static int[] Shape(Ctx ctx, JsonElement c, string where, int[] fallback)
    {
        if (!TfdsJson.TryGet(c, "shape", out var s)) return fallback;
        JsonElement dims = s;
        if (s.ValueKind == JsonValueKind.Object)
        {
            if (!TfdsJson.TryGet(s, "dimensions", out dims)) return []; // "shape": {} is a scalar
        }
        if (dims.ValueKind != JsonValueKind.Array) throw TfdsJson.Bad(ctx.Path, where + ".shape", "a list of dimensions", s);
        var result = new List<int>();
        int i = 0;
        foreach (var d in dims.EnumerateArray())
        {
            if (d.ValueKind == JsonValueKind.Null) result.Add(-1);
            else
            {
                long v = TfdsJson.ToInt64(d, ctx.Path, $"{where}.shape[{i}]");
                if (v < -1 || v > int.MaxValue) throw TfdsJson.Bad(ctx.Path, $"{where}.shape[{i}]", "-1 or a dimension size", d);
                result.Add((int)v);
            }
            i++;
        }
        return result.ToArray();
    }

    /// <summary>
    /// Class names of a ClassLabel (TFDS_FORMAT.md 4.3): inline names when present, else the sidecar file named after
    /// the FeaturesDict keys on its path ('/' in a key becomes '.', keys joined with '-') + <c>.labels.txt</c>, else "0".."N-1".
    /// </summary>
    private static IReadOnlyList<string> ClassNames(Ctx ctx, List<string> keys, string where, long numClasses, string[]? inline)
    {
        string[]? names = inline;
        string source = $"{ctx.Path} ('{where}.names')";
        if (inline is null) ctx.LabelFiles?.Add(LabelsFileName(keys));
        if (names is null && ctx.VersionDirectory is not null)
        {
            string file = Path.Combine(ctx.VersionDirectory, LabelsFileName(keys));
            if (File.Exists(file))
            {
                source = file;
                names = SafeFile.ReadAllText(file, SafeFile.MaxLabelsFileBytes, "labels file").Split('\n').Select(l => l.Trim()).Where(l => l.Length > 0).ToArray();
            }
        }
        if (names is null)
        {
            if (numClasses < 0 || numClasses > 100_000_000)
                throw new DataFormatException($"{ctx.Path}: ClassLabel '{where}' has numClasses = {numClasses}; expected a count between 0 and 100000000.", ctx.Path, null, where);
            // Made on demand: a hostile count must not cost memory before any data is read.
            return new NumberedClassNames((int)numClasses);
        }
        if (numClasses != 0 && names.Length != numClasses)
            throw new DataFormatException($"{source}: has {names.Length} class names, but features.json declares numClasses = {numClasses} for '{where}'. The labels file does not belong to this version; re-download the dataset.", source, null, where);
        var seen = new HashSet<string>(StringComparer.Ordinal);
        for (int i = 0; i < names.Length; i++)
            if (!seen.Add(names[i]))
                throw new DataFormatException($"{source}: class name '{names[i]}' appears twice (again as class {i}) for '{where}'; class names must be unique. Fix or re-download the labels file.", source, i, where);
        return names;
    }

    /// <summary>The sidecar labels file name for a ClassLabel at this path of FeaturesDict keys, e.g.
    /// <c>objects-label.labels.txt</c>, <c>image.label.labels.txt</c> for the key <c>image/label</c>.</summary>
    public static string LabelsFileName(IReadOnlyList<string> dictKeys)
    {
        ArgumentNullException.ThrowIfNull(dictKeys);
        return string.Join("-", dictKeys.Select(k => k.Replace('/', '.'))) + ".labels.txt";
    }
}
