using System.Text;
using Samplers.Cache;
using Samplers.Cli.Export;
using Samplers.Imaging;
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
    public static IReadOnlyList<string> Names { get; } = ["tfrecord", "example", "features-json", "dataset-info-json", "image", "parquet-page", "npy-header"];

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

    private static readonly string PageFile = Path.Combine(Path.GetTempPath(), $"samplers-fuzz-page-{Environment.ProcessId}.bin");

    /// <summary>The cache's plain-page reader over a column chunk of 4 rows of 8 bytes.</summary>
    private static void ParquetPage(ReadOnlySpan<byte> data)
    {
        File.WriteAllBytes(PageFile, data.ToArray());
        using var handle = File.OpenHandle(PageFile);
        var builder = ExampleTableBuilder.Fixed(DType.UInt8, [8], 4);
        PlainPageReader.TryReadFixed(handle, 0, data.Length, 0, 4, builder, PageFile);
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
