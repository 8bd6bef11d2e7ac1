using System.Globalization;
using Samplers.Imaging;
using Samplers.Tfds;

namespace Samplers.DatasetGen;

/// <summary>The pixel storage of a <see cref="SyntheticLarge"/> dataset.</summary>
public enum SyntheticFormat
{
    /// <summary>An Image feature of PNG files (what image datasets look like; decoding costs at load time).</summary>
    Png,

    /// <summary>A uint8 Tensor feature stored as raw bytes (fastest to write and load; for multi-GB sets).</summary>
    Tensor,
}

/// <summary>The settings of <see cref="SyntheticLarge.Write"/>; <see cref="SyntheticLarge.Parse"/> reads them from the command line.</summary>
/// <param name="DataDir">The TFDS data directory.</param>
/// <param name="Examples">Train examples.</param>
/// <param name="Height">Image height.</param>
/// <param name="Width">Image width.</param>
/// <param name="Channels">Channels (PNG: 1, 3 or 4).</param>
/// <param name="Classes">Number of classes; labels are <c>i % Classes</c>, so classes differ in size by at most one.</param>
/// <param name="Shards">Train shards.</param>
/// <param name="Name">The dataset name.</param>
/// <param name="Seed">The content seed.</param>
/// <param name="Format">PNG image or raw uint8 tensor.</param>
/// <param name="Test">Test examples (0: no test split).</param>
public sealed record SyntheticOptions(
    string DataDir, int Examples, int Height, int Width, int Channels, int Classes,
    int Shards = 1, string Name = "synthetic_large", ulong Seed = 0, SyntheticFormat Format = SyntheticFormat.Png, int Test = 0);

/// <summary>
/// Large synthetic datasets for benchmarks: <c>&lt;name&gt;:1.0.0</c> with an <c>image</c> feature (PNG Image or uint8
/// Tensor of shape HxWxC) and a <c>label</c> ClassLabel. Each example is a cheap deterministic pattern (a diagonal ramp
/// shifted per example, plus a label-dependent offset), so a label can be checked from its pixels and generation runs
/// at disk speed. Shards are written one at a time from lazy sequences, so memory stays bounded whatever the size.
/// </summary>
public static class SyntheticLarge
{
    /// <summary>The dataset version.</summary>
    public const string Version = "1.0.0";

    /// <summary>The one-line usage.</summary>
    public const string Usage =
        "usage: Samplers.DatasetGen synthetic <data dir> --examples N --shape HxWxC --classes C [--shards S] [--name NAME] [--seed K] [--format png|tensor] [--test N]";

    /// <summary>Reads the options after the <c>synthetic</c> word.</summary>
    /// <exception cref="ArgumentException">A missing, unknown or out-of-range argument (the message names it).</exception>
    public static SyntheticOptions Parse(IReadOnlyList<string> args)
    {
        ArgumentNullException.ThrowIfNull(args);
        string? dir = null, name = "synthetic_large";
        int? examples = null, classes = null;
        (int H, int W, int C)? shape = null;
        int shards = 1, test = 0;
        ulong seed = 0;
        var format = SyntheticFormat.Png;
        for (int i = 0; i < args.Count; i++)
        {
            string a = args[i];
            if (!a.StartsWith("--", StringComparison.Ordinal))
            {
                if (dir is not null) throw new ArgumentException($"unexpected argument '{a}' (the data dir is already '{dir}')");
                dir = a;
                continue;
            }
            if (i + 1 >= args.Count) throw new ArgumentException($"{a} needs a value");
            string v = args[++i];
            switch (a)
            {
                case "--examples": examples = Int(a, v, 1); break;
                case "--classes": classes = Int(a, v, 1); break;
                case "--shards": shards = Int(a, v, 1); break;
                case "--test": test = Int(a, v, 0); break;
                case "--name":
                    if (v.Length == 0 || !v.All(c => char.IsAsciiLetterLower(c) || char.IsAsciiDigit(c) || c == '_'))
                        throw new ArgumentException($"--name: expected lower-case letters, digits and '_', found '{v}'");
                    name = v;
                    break;
                case "--seed":
                    if (!ulong.TryParse(v, NumberStyles.None, CultureInfo.InvariantCulture, out seed))
                        throw new ArgumentException($"--seed: expected a non-negative integer, found '{v}'");
                    break;
                case "--format":
                    format = v switch
                    {
                        "png" => SyntheticFormat.Png,
                        "tensor" => SyntheticFormat.Tensor,
                        _ => throw new ArgumentException($"--format: expected png or tensor, found '{v}'"),
                    };
                    break;
                case "--shape":
                    var parts = v.Split('x');
                    if (parts.Length != 3) throw new ArgumentException($"--shape: expected HxWxC (e.g. 64x64x3), found '{v}'");
                    shape = (Int(a, parts[0], 1), Int(a, parts[1], 1), Int(a, parts[2], 1));
                    break;
                default: throw new ArgumentException($"unknown option '{a}'");
            }
        }
        if (dir is null) throw new ArgumentException("missing <data dir>");
        if (examples is null) throw new ArgumentException("missing --examples N");
        if (shape is null) throw new ArgumentException("missing --shape HxWxC");
        if (classes is null) throw new ArgumentException("missing --classes C");
        var (h, w, c) = shape.Value;
        if (format == SyntheticFormat.Png && c is not (1 or 3 or 4))
            throw new ArgumentException($"--shape: PNG needs 1, 3 or 4 channels, found {c} (use --format tensor)");
        if ((long)h * w * c > 1L << 28) throw new ArgumentException($"--shape: {h}x{w}x{c} is over 256 MiB per example");
        return new SyntheticOptions(dir, examples.Value, h, w, c, classes.Value, shards, name, seed, format, test);
    }

    private static int Int(string opt, string v, int min)
    {
        if (!int.TryParse(v, NumberStyles.None, CultureInfo.InvariantCulture, out int n) || n < min)
            throw new ArgumentException($"{opt}: expected an integer >= {min}, found '{v}'");
        return n;
    }

    /// <summary>The <c>image</c> feature for the options.</summary>
    public static FeatureSpec ImageSpec(SyntheticOptions o)
    {
        ArgumentNullException.ThrowIfNull(o);
        return o.Format == SyntheticFormat.Png
            ? new("image", FeatureKind.Image, "tensorflow_datasets.core.features.image_feature.Image",
                DType.UInt8, [o.Height, o.Width, o.Channels], EncodingFormat: "png")
            : new("image", FeatureKind.Tensor, "tensorflow_datasets.core.features.tensor_feature.Tensor",
                DType.UInt8, [o.Height, o.Width, o.Channels], Encoding: TensorEncoding.Bytes);
    }

    /// <summary>Writes <c>&lt;DataDir&gt;/&lt;Name&gt;/1.0.0/</c> (train, and test when asked) and returns that folder.</summary>
    public static string Write(SyntheticOptions o)
    {
        ArgumentNullException.ThrowIfNull(o);
        string versionDir = Path.Combine(o.DataDir, o.Name, Version);
        // A previous generation's shards may have other names (another shard count): start from an empty folder.
        if (Directory.Exists(versionDir))
            foreach (string f in Directory.EnumerateFiles(versionDir)) File.Delete(f);
        var label = new FeatureSpec("label", FeatureKind.ClassLabel, "tensorflow_datasets.core.features.class_label_feature.ClassLabel",
            DType.Int64, [], NumClasses: o.Classes);
        var image = ImageSpec(o);
        var writer = new TfdsDatasetWriter(versionDir, o.Name, Version, [image, label])
        {
            SupervisedKeys = ("image", "label"),
            Description = $"Synthetic {o.Height}x{o.Width}x{o.Channels} {(o.Format == SyntheticFormat.Png ? "PNG images" : "uint8 tensors")}, {o.Classes} classes, seed {o.Seed}; generated by tools/Samplers.DatasetGen.",
        };
        WriteSplit(writer, o, image, "train", o.Examples, o.Shards);
        if (o.Test > 0) WriteSplit(writer, o, image, "test", o.Test, 1);
        writer.Complete();
        return versionDir;
    }

    private static void WriteSplit(TfdsDatasetWriter writer, SyntheticOptions o, FeatureSpec image, string split, int count, int shards)
    {
        shards = Math.Min(shards, count);
        int q = count / shards, r = count % shards;
        ulong splitKey = split == "train" ? 0UL : 0x9E3779B97F4A7C15UL;
        writer.WriteSplitStreamed(split, shards, s =>
        {
            int start = s * q + Math.Min(s, r), take = q + (s < r ? 1 : 0);
            return Shard(o, image, splitKey, start, take);
        });
    }

    // Examples are made in parallel batches of bounded size, then yielded in order: memory is one batch.
    private static IEnumerable<byte[]> Shard(SyntheticOptions o, FeatureSpec image, ulong splitKey, int start, int count)
    {
        int batch = Math.Max(1, Math.Min(4096, (int)(64L * 1024 * 1024 / ((long)o.Height * o.Width * o.Channels + 64))));
        var buffer = new byte[batch][];
        for (int at = 0; at < count; at += batch)
        {
            int n = Math.Min(batch, count - at);
            Parallel.For(0, n, j => buffer[j] = Example(o, image, splitKey, start + at + j));
            for (int j = 0; j < n; j++)
            {
                yield return buffer[j];
                buffer[j] = null!;
            }
        }
    }

    /// <summary>The pixels of example <paramref name="index"/>: value at (y, x, c) is
    /// <c>(offset + y + x + 7c + 40 * label) mod 256</c> with <c>offset</c> a hash of the seed, split and index.</summary>
    public static byte[] Pixels(int height, int width, int channels, int label, ulong seed, int index, bool test = false)
    {
        ulong h = (seed ^ (test ? 0x9E3779B97F4A7C15UL : 0UL) ^ ((ulong)index * 0xD1B54A32D192ED03UL)) * 0xBF58476D1CE4E5B9UL;
        int offset = (int)(h >> 56);
        var px = new byte[height * width * channels];
        int p = 0;
        for (int y = 0; y < height; y++)
            for (int x = 0; x < width; x++)
                for (int c = 0; c < channels; c++)
                    px[p++] = (byte)(offset + y + x + 7 * c + 40 * label);
        return px;
    }

    private static byte[] Example(SyntheticOptions o, FeatureSpec image, ulong splitKey, int index)
    {
        int label = index % o.Classes;
        var px = Pixels(o.Height, o.Width, o.Channels, label, o.Seed, index, splitKey != 0);
        var b = new ExampleBuilder();
        if (o.Format == SyntheticFormat.Png)
        {
            var ct = o.Channels switch { 1 => PngColorType.Grey, 3 => PngColorType.Rgb, _ => PngColorType.Rgba };
            b.AddImage("image", PngEncoder.Encode(px, o.Width, o.Height, ct));
        }
        else
        {
            b.AddTensor(image, px);
        }
        return b.AddLabel("label", label).ToByteArray();
    }
}
