using System.Globalization;
using Samplers.Imaging;

namespace Samplers.Tfds;

/// <summary>What TFDS's own builder declares for a dataset distributed as IDX files: its version, its class names and
/// its description, so an import holds the features <c>tfds.load</c> would give.</summary>
/// <param name="Name">The TFDS name (<c>fashion_mnist</c>).</param>
/// <param name="Version">The version of TFDS's prepared dataset (<c>3.0.1</c>).</param>
/// <param name="ClassNames">The ClassLabel's names, label 0 first.</param>
/// <param name="Description">TFDS's description.</param>
/// <param name="Homepage">TFDS's homepage of the dataset.</param>
internal sealed record IdxDatasetDefaults(string Name, string Version, IReadOnlyList<string> ClassNames, string Description, string Homepage);

/// <summary>
/// IDX files (<see cref="IdxFile"/>: MNIST's format) written as a split of a TFDS dataset with the features TFDS's own
/// builders declare for <c>mnist</c>, <c>fashion_mnist</c> and <c>kmnist</c>: <c>image</c>, an Image of
/// height x width x 1 uint8 stored as PNG, and <c>label</c>, a ClassLabel. The files go through
/// <see cref="TfdsDatasetWriter"/>, so the folder holds what TFDS prepares: <c>dataset_info.json</c>,
/// <c>features.json</c>, <c>label.labels.txt</c> (unless the names are 0..N-1) and
/// <c>&lt;name&gt;-&lt;split&gt;.tfrecord-0000i-of-0000N</c>.
/// </summary>
public static class IdxTfds
{
    private static readonly IdxDatasetDefaults[] Known =
    [
        // From TFDS's image_classification/mnist.py: MNIST's ClassLabel is built from a count, so its names are 0..9.
        new("mnist", "3.0.1", Numbered(10), "The MNIST database of handwritten digits.", "http://yann.lecun.com/exdb/mnist/"),
        new("fashion_mnist", "3.0.1", ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"],
            "Fashion-MNIST is a dataset of Zalando's article images consisting of a training set of 60,000 examples and a test set of " +
            "10,000 examples. Each example is a 28x28 grayscale image, associated with a label from 10 classes.",
            "https://github.com/zalandoresearch/fashion-mnist"),
        new("kmnist", "3.0.1", ["o", "ki", "su", "tsu", "na", "ha", "ma", "ya", "re", "wo"],
            "Kuzushiji-MNIST is a drop-in replacement for the MNIST dataset (28x28 grayscale, 70,000 images), provided in the original " +
            "MNIST format as well as a NumPy format. Since MNIST restricts us to 10 classes, we chose one character to represent each " +
            "of the 10 rows of Hiragana when creating Kuzushiji-MNIST.",
            "http://codh.rois.ac.jp/kmnist/index.html.en"),
    ];

    /// <summary>What TFDS declares for <paramref name="name"/> (<c>mnist</c>, <c>fashion_mnist</c>, <c>kmnist</c>), or null
    /// for a dataset TFDS does not prepare from IDX files.</summary>
    internal static IdxDatasetDefaults? Defaults(string name) => Known.FirstOrDefault(k => k.Name == name);

    /// <summary>The version an import writes when none is given: TFDS's for a known dataset, else <c>1.0.0</c>.</summary>
    public static string DefaultVersion(string name) => Defaults(name)?.Version ?? "1.0.0";

    /// <summary>
    /// Reads an images file (rank 3: N x height x width) and a labels file (rank 1: N) and writes them as split
    /// <paramref name="split"/> of <c>&lt;dataDir&gt;/&lt;name&gt;/&lt;version&gt;/</c>. When that folder already holds a
    /// dataset, its splits are kept and the new one is added to <c>dataset_info.json</c> (TFDS holds train and test in
    /// one dataset), provided its features are the same. Everything is read and checked before anything is written; each
    /// file is written to a temporary name and renamed, <c>dataset_info.json</c> last. Returns the version folder.
    /// </summary>
    /// <param name="imagesPath">The images IDX file (gzip-compressed or not).</param>
    /// <param name="labelsPath">The labels IDX file (gzip-compressed or not).</param>
    /// <param name="dataDir">The data directory.</param>
    /// <param name="name">The dataset name, <c>[A-Za-z][A-Za-z0-9_]*</c>.</param>
    /// <param name="version">The version, <c>x.y.z</c>.</param>
    /// <param name="split">The split to write (<c>train</c>, <c>test</c>).</param>
    /// <param name="classNames">The class names, label 0 first; null: those of the dataset already in the folder, else
    /// TFDS's for a known dataset (<see cref="Defaults"/>), else <c>0</c>..<c>max label</c>.</param>
    /// <param name="shards">The number of shard files of the split.</param>
    /// <exception cref="ArgumentException">The name, version or split is not one the loader accepts; the split is already
    /// in the dataset; class names repeat or are empty.</exception>
    /// <exception cref="DataFormatException">A file is not a valid IDX file of that rank (see <see cref="IdxFile.Read"/>);
    /// the two files hold different numbers of items; a label is outside the class names; the dataset already in the
    /// folder has other features.</exception>
    /// <exception cref="FileNotFoundException">A file does not exist.</exception>
    public static string WriteTfds(string imagesPath, string labelsPath, string dataDir, string name, string version, string split,
        IReadOnlyList<string>? classNames = null, int shards = 1)
    {
        ArgumentException.ThrowIfNullOrEmpty(imagesPath);
        ArgumentException.ThrowIfNullOrEmpty(labelsPath);
        ArgumentException.ThrowIfNullOrEmpty(dataDir);
        TfdsDatasetWriter.CheckNameAndVersion(name, version);
        TfdsDatasetWriter.CheckSplitName(split);
        ArgumentOutOfRangeException.ThrowIfLessThan(shards, 1);
        if (classNames is not null) CheckClassNames(classNames);

        string versionDir = Path.Combine(dataDir, name, version);
        DatasetBuilderDir? existing = File.Exists(Path.Combine(versionDir, "dataset_info.json")) ? Catalog.Open(dataDir, $"{name}:{version}") : null;
        if (existing?.Info.FindSplit(split) is not null)
            throw new ArgumentException(
                $"Split '{split}' is already in {existing.Info.FilePath}; importing it again would replace its shards under the existing metadata. " +
                $"Delete the folder {versionDir} to import every split afresh, or import under another split name or version.", nameof(split));

        var images = IdxFile.Read(imagesPath, 3, "images file");
        var labels = IdxFile.Read(labelsPath, 1, "labels file");
        if (images.Count != labels.Count)
            throw new DataFormatException(
                $"{imagesPath} holds {images.Count} images but {labelsPath} holds {labels.Count} labels (the first size of each header, at byte 4); " +
                "each image needs one label: give the labels file of the same split.", labelsPath, 4);
        int height = images.Dimensions[1], width = images.Dimensions[2];

        var existingLabel = existing?.FindFeature("label");
        var names = classNames
            ?? (existingLabel?.ClassNames is { Count: > 0 } held ? held.ToArray() : null)
            ?? Defaults(name)?.ClassNames
            ?? Numbered(MaxOf(labels.Data.Span) + 1);
        var labelSpan = labels.Data.Span;
        for (int i = 0; i < labelSpan.Length; i++)
            if (labelSpan[i] >= names.Count)
                throw new DataFormatException(
                    $"{labelsPath}: label {labelSpan[i]} of item {i} (at byte {labels.HeaderLength + i}" + (labels.Compressed ? " of the decompressed data" : "") +
                    $") is outside the {names.Count} class names (labels 0 to {names.Count - 1}); give class names that cover every label (one per line, label 0 first).",
                    labelsPath, labels.HeaderLength + i);

        var image = new FeatureSpec("image", FeatureKind.Image, "tensorflow_datasets.core.features.image_feature.Image", DType.UInt8, [height, width, 1]);
        var label = new FeatureSpec("label", FeatureKind.ClassLabel, "tensorflow_datasets.core.features.class_label_feature.ClassLabel",
            DType.Int64, [], NumClasses: names.Count, ClassNames: [.. names]);
        if (existing is not null) CheckSameFeatures(existing, image, label);

        var examples = new byte[images.Count][];
        Parallel.For(0, images.Count, i =>
        {
            byte[] png = PngEncoder.Encode(images.Item(i), width, height, PngColorType.Grey);
            examples[i] = new ExampleBuilder().AddImage("image", png).AddLabel("label", labels.Data.Span[i]).ToByteArray();
        });

        var known = Defaults(name);
        var writer = new TfdsDatasetWriter(versionDir, name, version, [image, label])
        {
            SupervisedKeys = ("image", "label"),
            Description = known?.Description ?? $"{height}x{width} grey images of {names.Count} classes, imported from IDX files.",
            Homepage = known?.Homepage,
        };
        if (existing is not null)
            foreach (var s in existing.Info.Splits) writer.KeepSplit(s);
        writer.WriteSplit(split, examples, Math.Min(shards, examples.Length));
        writer.Complete();
        return versionDir;
    }

    /// <summary>Class names as a labels file holds them: not empty, none blank, none repeated.</summary>
    private static void CheckClassNames(IReadOnlyList<string> names)
    {
        if (names.Count == 0) throw new ArgumentException("The class names are empty; give one name per class, label 0 first.", "classNames");
        var seen = new HashSet<string>(StringComparer.Ordinal);
        for (int i = 0; i < names.Count; i++)
        {
            if (string.IsNullOrWhiteSpace(names[i]) || names[i].Contains('\n', StringComparison.Ordinal) || names[i] != names[i].Trim())
                throw new ArgumentException($"Class name {i} ('{names[i]}') is blank, spans lines or has surrounding spaces; a labels file could not hold it.", "classNames");
            if (!seen.Add(names[i]))
                throw new ArgumentException($"Class name '{names[i]}' appears twice (again as class {i}); class names must be unique.", "classNames");
        }
    }

    /// <summary>The dataset already in the folder must have the features this import writes, or its splits would disagree.</summary>
    private static void CheckSameFeatures(DatasetBuilderDir existing, FeatureSpec image, FeatureSpec label)
    {
        string file = Path.Combine(existing.Path, "features.json");
        string Describe(FeatureSpec? f) => f is null ? "no such feature"
            : f.Kind == FeatureKind.ClassLabel ? $"ClassLabel of {f.NumClasses} classes ({string.Join(", ", (f.ClassNames ?? []).Take(12))}{((f.ClassNames?.Count ?? 0) > 12 ? ", ..." : "")})"
            : $"{f.Kind} {DTypes.Name(f.DType)} ({string.Join(", ", f.Shape)})";
        var keys = existing.Features.Select(f => f.Key).Order(StringComparer.Ordinal).ToArray();
        if (!keys.SequenceEqual(["image", "label"], StringComparer.Ordinal))
            throw new DataFormatException(
                $"{file}: the dataset {existing.FullName} already in the folder has the features {string.Join(", ", keys)}, but an IDX import writes image and label; " +
                "import into another dataset name or version, or delete the folder first.", file);
        foreach (var want in new[] { image, label })
        {
            var have = existing.FindFeature(want.Key)!;
            bool same = have.Kind == want.Kind && have.DType == want.DType && have.Shape.SequenceEqual(want.Shape)
                && (want.Kind != FeatureKind.ClassLabel || (have.NumClasses == want.NumClasses && (have.ClassNames ?? Numbered((int)have.NumClasses)).SequenceEqual(want.ClassNames!, StringComparer.Ordinal)));
            if (!same)
                throw new DataFormatException(
                    $"{file}: feature '{want.Key}' of {existing.FullName} already in the folder is {Describe(have)}, but this import's is {Describe(want)}; " +
                    "the splits of one dataset share their features. Import into another dataset name or version, give the same class names, or delete the folder first.", file, key: want.Key);
        }
    }

    private static int MaxOf(ReadOnlySpan<byte> values)
    {
        int max = 0;
        foreach (byte b in values) if (b > max) max = b;
        return max;
    }

    private static string[] Numbered(int count) => [.. Enumerable.Range(0, count).Select(i => i.ToString(CultureInfo.InvariantCulture))];
}
