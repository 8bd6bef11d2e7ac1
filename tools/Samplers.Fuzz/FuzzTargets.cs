using System.Text;
using Samplers.Cache;
using Samplers.Cli.Export;
using Samplers.Imaging;
using Samplers;
using Samplers.Tfds;

namespace Samplers.Fuzz;

/// <summary>
/// One entry per parser that takes untrusted bytes. Each target feeds the bytes to the parser and lets only the
/// documented refusals through (<see cref="SamplersDataException"/> and its subclasses, and <see cref="ArgumentException"/>
/// for the writer's inputs); anything else (an IndexOutOfRangeException, an OverflowException, an OutOfMemoryException,
/// a hang) escapes and is a finding.
/// </summary>
public static class FuzzTargets
{
    /// <summary>Target names, as given on the command line and as corpus folder names.</summary>
    public static IReadOnlyList<string> Names { get; } = ["tfrecord", "example", "features-json", "dataset-info-json", "image", "parquet-page", "npy-header", "labels-file", "verify-stamp"];

    /// <summary>Runs target <paramref name="name"/> on <paramref name="data"/>; returns normally for accepted input
    /// and for documented refusals.</summary>
    /// <exception cref="ArgumentException">No such target.</exception>
    public static void Run(string name, ReadOnlySpan<byte> data)
    {
        try
        {
            switch (name)
            {
                case "tfrecord": TfRecord(data); break;
                case "example": Example(data); break;
                case "features-json": FeaturesJsonTarget(data); break;
                case "dataset-info-json": DatasetInfoJson(data); break;
                case "image": Image(data); break;
                case "parquet-page": ParquetPage(data); break;
                case "npy-header": NpyHeader(data); break;
                case "labels-file": LabelsFile(data); break;
                case "verify-stamp": Stamp(data); break;
                default: throw new ArgumentException($"Unknown fuzz target '{name}'; targets: {string.Join(", ", Names)}.", nameof(name));
            }
        }
        catch (SamplersDataException)
        {
            // A documented refusal: the input was bad and the parser said so.
        }
    }

    /// <summary>TFRecord framing: every record with its length and CRCs, over a seekable stream.</summary>
    private static void TfRecord(ReadOnlySpan<byte> data)
    {
        using var reader = new TfRecordReader(new MemoryStream(data.ToArray(), writable: false), "fuzz.tfrecord");
        while (reader.TryReadNext(out _)) { }
    }

    // In a nested class so that they are built on first use, inside the fuzz loop: SharpFuzz's instrumented library
    // code may run only after Fuzzer.Run has set up AFL's shared memory (before that it faults).
    private static class Specs
    {
        public static readonly FeatureSpec Label = new("label", FeatureKind.ClassLabel, "ClassLabel", DType.Int64, [], NumClasses: 10);
        public static readonly FeatureSpec Floats = new("x", FeatureKind.Tensor, "Tensor", DType.Float32, [4]);
        public static readonly FeatureSpec Ragged = new("r", FeatureKind.Tensor, "Tensor", DType.Int64, [-1]);
        public static readonly FeatureSpec Picture = new("image", FeatureKind.Image, "Image", DType.UInt8, [-1, -1, 1]);
    }

    /// <summary>The Example decoder and the feature decoders behind it (label, fixed and ragged tensors, an image).</summary>
    private static void Example(ReadOnlySpan<byte> data)
    {
        var location = new RecordLocation("fuzz.tfrecord", 0, 0);
        var example = ExampleDecoder.Parse(data, location);
        var features = example.Features ?? new Samplers.Tfds.Protos.Features();
        Try(() => FeatureDecoder.ReadLabel(Specs.Label, features, location));
        Try(() => FeatureDecoder.DecodeInto(Specs.Floats, features, location, new byte[16]));
        Try(() =>
        {
            int[] shape = FeatureDecoder.MeasureShape(Specs.Ragged, features, location);
            return FeatureDecoder.DecodeInto(Specs.Ragged with { Shape = shape }, features, location, new byte[checked(shape[0] * 8)]);
        });
        var images = new LoaderImageDecoder(1 << 16);
        Try(() =>
        {
            int[] shape = FeatureDecoder.MeasureShape(Specs.Picture, features, location, images);
            return FeatureDecoder.DecodeInto(Specs.Picture with { Shape = shape }, features, location, new byte[checked(shape[0] * shape[1] * shape[2])], images);
        });
    }

    /// <summary>Runs one decoder step; a data refusal ends that step only.</summary>
    private static void Try<T>(Func<T> step)
    {
        try { step(); }
        catch (SamplersDataException) { }
    }

    private static void FeaturesJsonTarget(ReadOnlySpan<byte> data)
    {
        var specs = Samplers.Tfds.FeaturesJson.Parse(Encoding.UTF8.GetString(data), "fuzz/features.json", null);
        foreach (var s in specs) _ = s.ToString();
    }

    private static void DatasetInfoJson(ReadOnlySpan<byte> data)
    {
        var info = DatasetInfo.Parse(Encoding.UTF8.GetString(data), "fuzz/dataset_info.json");
        foreach (var split in info.Splits)
        {
            Try(() => split.NumExamples);
            if (split.ShardLengths.Length <= 4096) Try(() => info.ShardRelativePaths(split));
        }
    }

    /// <summary>The PNG/JPEG header checks and, when the budget allows, a decode (budget 2^16 pixels).</summary>
    private static void Image(ReadOnlySpan<byte> data)
    {
        const long budget = 1 << 16;
        ImageInfo info = ImageDecoder.Measure(data, "fuzz", budget);
        var dst = new byte[checked(info.Height * info.Width * 4)];
        ImageDecoder.Decode(data, dst, 4, -1, -1, "fuzz", budget);
    }

    // Every scratch file of the targets lives in one folder per process, a subfolder per target (the corpus replay runs
    // targets in parallel and deletes each one's subfolder when done); the rest goes at process exit, so neither the fuzzer
    // nor the test suite leaves files in the temp folder.
    private static readonly Lazy<string> Scratch = new(() =>
    {
        string dir = Path.Combine(Path.GetTempPath(), $"samplers-fuzz-{Environment.ProcessId}-{Guid.NewGuid():N}");
        Directory.CreateDirectory(dir);
        AppDomain.CurrentDomain.ProcessExit += (_, _) => Delete(dir);
        return dir;
    });

    private static string ScratchFor(string target) => Directory.CreateDirectory(Path.Combine(Scratch.Value, target)).FullName;

    /// <summary>Deletes the scratch files of <paramref name="target"/> (if it made any); a later run makes them again.</summary>
    public static void DeleteScratch(string target)
    {
        if (Scratch.IsValueCreated) Delete(Path.Combine(Scratch.Value, target));
    }

    private static void Delete(string dir)
    {
        try { if (Directory.Exists(dir)) Directory.Delete(dir, true); }
        catch (IOException) { }
        catch (UnauthorizedAccessException) { }
    }

    private static string PageFile => Path.Combine(ScratchFor("parquet-page"), "page.bin");

    /// <summary>The cache's plain-page reader over a column chunk of 4 rows of 8 bytes.</summary>
    private static void ParquetPage(ReadOnlySpan<byte> data)
    {
        File.WriteAllBytes(PageFile, data.ToArray());
        using var handle = File.OpenHandle(PageFile);
        var builder = ExampleTableBuilder.Fixed(DType.UInt8, [8], 4);
        PlainPageReader.TryReadFixed(handle, 0, data.Length, 0, 4, builder, PageFile);
    }

    /// <summary>A version folder whose features.json declares one ClassLabel 'label' without inline names and without a
    /// class count (numClasses 0: any number of names is accepted), so its names come from <c>label.labels.txt</c>.</summary>
    private static string LabelsDir()
    {
        string dir = ScratchFor("labels-file");
        if (File.Exists(Path.Combine(dir, "features.json"))) return dir;
        File.WriteAllText(Path.Combine(dir, "features.json"),
            "{\"pythonClassName\": \"tensorflow_datasets.core.features.features_dict.FeaturesDict\", \"featuresDict\": {\"features\": {" +
            "\"label\": {\"pythonClassName\": \"tensorflow_datasets.core.features.class_label_feature.ClassLabel\", \"classLabel\": {\"numClasses\": \"0\"}}}}}");
        return dir;
    }

    /// <summary>The labels file reader (FeaturesJson's ClassLabel names from <c>&lt;feature&gt;.labels.txt</c>, through
    /// SafeFile): names are accepted or refused as a data error. Accepted names must be what TFDS would read: one per
    /// non-empty line, trimmed, none empty, none with a line feed, no two alike.</summary>
    private static void LabelsFile(ReadOnlySpan<byte> data)
    {
        string labelsDir = LabelsDir();
        File.WriteAllBytes(Path.Combine(labelsDir, "label.labels.txt"), data.ToArray());
        var specs = Samplers.Tfds.FeaturesJson.Load(labelsDir);
        var names = specs.Single(f => f.Key == "label").ClassNames ?? throw new InvalidOperationException("the ClassLabel has no names");
        var seen = new HashSet<string>(StringComparer.Ordinal);
        foreach (string n in names)
        {
            if (n.Length == 0 || n.Contains('\n') || n != n.Trim()) throw new InvalidOperationException($"accepted class name '{n}' is empty, untrimmed or spans lines");
            if (!seen.Add(n)) throw new InvalidOperationException($"accepted class name '{n}' twice");
        }
    }

    private static string StampTarget => Path.Combine(ScratchFor("verify-stamp"), "stamp.parquet");

    /// <summary>The identity and checksum the stamp target compares with (those of the seed <c>corpus/verify-stamp/valid</c>).</summary>
    internal static readonly FileIdentity StampIdentity = new(2049, 1234567, 3437368, 1764547200123456789, 1764547200987654321);

    internal const string StampChecksum = "0123456789abcdef";

    /// <summary>The verification stamp reader (<c>VerifyStamp.Matches</c>, through SafeFile): any bytes give true or false,
    /// never an exception; true only for exactly the stamp of the identity and checksum compared with (in UTF-8, or in a
    /// Unicode encoding announced by its byte order mark).</summary>
    private static void Stamp(ReadOnlySpan<byte> data)
    {
        File.WriteAllBytes(VerifyStamp.PathOf(StampTarget), data.ToArray());
        bool matches = VerifyStamp.Matches(StampTarget, StampIdentity, StampChecksum);
        string expected = string.Create(System.Globalization.CultureInfo.InvariantCulture,
            $"samplers-verified-v1\ndevice={StampIdentity.Device}\ninode={StampIdentity.Inode}\nsize={StampIdentity.Size}\nmtime_ns={StampIdentity.MtimeNs}\nctime_ns={StampIdentity.CtimeNs}\nchecksum={StampChecksum}\n");
        // The stamp is read as text (SafeFile.ReadAllText), which honours a byte order mark: the expected text in UTF-8, or
        // after the BOM of UTF-8, UTF-16 or UTF-32, is the same stamp. Nothing else may match.
        bool same = data.SequenceEqual(Encoding.UTF8.GetBytes(expected));
        foreach (var enc in new Encoding[] { Encoding.UTF8, Encoding.Unicode, Encoding.BigEndianUnicode, Encoding.UTF32 })
            same |= data.SequenceEqual([.. enc.GetPreamble(), .. enc.GetBytes(expected)]);
        if (matches != same)
            throw new InvalidOperationException($"the stamp {(matches ? "matched" : "did not match")} although its bytes {(matches ? "differ from" : "equal")} the expected stamp");
    }

    /// <summary>The .npy writer's inputs: a dtype, a shape and strings taken from the bytes. Bad inputs must be
    /// refused with an ArgumentException; whatever is written must parse back as the header it claims.</summary>
    private static void NpyHeader(ReadOnlySpan<byte> data)
    {
        if (data.Length < 2) return;
        var dtype = (DType)(data[0] % 16);
        int rank = data[1] % 8;
        var shape = new long[rank];
        for (int i = 0; i < rank; i++)
            shape[i] = data.Length > 2 + i * 2 ? (sbyte)data[2 + i * 2] * (long)(data[3 + Math.Min(i * 2, data.Length - 4)] + 1) : 1;
        try
        {
            using var ms = new MemoryStream();
            var w = new NpyWriter(ms, dtype, shape);
            CheckHeader(ms.ToArray());
            string text = Encoding.UTF8.GetString(data[Math.Min(data.Length, 2 + rank * 2)..]);
            using var ms2 = new MemoryStream();
            NpyWriter.WriteStrings(ms2, text.Split('\n'));
            CheckHeader(ms2.ToArray());
        }
        catch (ArgumentException) { }
    }

    private static void CheckHeader(byte[] npy)
    {
        if (npy.Length < 10 || npy[0] != 0x93 || Encoding.ASCII.GetString(npy, 1, 5) != "NUMPY")
            throw new InvalidOperationException("the .npy magic is missing");
        int headerLength = npy[6] == 1 ? BitConverter.ToUInt16(npy, 8) : BitConverter.ToInt32(npy, 8);
        int start = npy[6] == 1 ? 10 : 12;
        if ((start + headerLength) % 64 != 0) throw new InvalidOperationException("the .npy header is not padded to 64 bytes");
        string header = Encoding.ASCII.GetString(npy, start, Math.Min(headerLength, npy.Length - start));
        if (!header.StartsWith("{'descr': ", StringComparison.Ordinal) || !header.EndsWith('\n'))
            throw new InvalidOperationException($"malformed .npy header: {header}");
    }
}
