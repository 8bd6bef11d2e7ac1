using Samplers.Imaging;

namespace Samplers.Tfds;

/// <summary>An image folder written as a TFDS dataset: the image folder knows nothing of TFDS (Samplers.Imaging sits
/// below Samplers.Tfds), so the writing lives here, as an extension of <see cref="ImageFolder"/>.</summary>
public static class ImageFolderTfds
{
    /// <summary>Writes the folder once as the TFDS dataset <c>&lt;dataDir&gt;/&lt;name&gt;/&lt;version&gt;/</c> (one <c>train</c>
    /// split; features <c>image</c>, the files' bytes as they are, and <c>label</c>, a ClassLabel with the class names),
    /// so <see cref="TfdsLoader"/> and its Parquet cache can serve it. Returns the version folder.</summary>
    /// <remarks>Every file is checked to decode first, so a corrupt file stops the write before anything is written.
    /// All encoded files are held in memory while writing.</remarks>
    /// <exception cref="ExampleLoadException">A file could not be read or decoded (the message names it).</exception>
    /// <exception cref="ArgumentException"><paramref name="name"/> or <paramref name="version"/> is not one the loader
    /// accepts (<c>[A-Za-z][A-Za-z0-9_]*</c>, <c>x.y.z</c>), e.g. <c>../x</c>: nothing is written outside
    /// <paramref name="dataDir"/>.</exception>
    public static string WriteTfds(this ImageFolder folder, string dataDir, string name, string version = "1.0.0", int shards = 1)
    {
        ArgumentNullException.ThrowIfNull(folder);
        ArgumentException.ThrowIfNullOrEmpty(dataDir);
        TfdsDatasetWriter.CheckNameAndVersion(name, version); // before decoding anything; the writer checks again
        ArgumentOutOfRangeException.ThrowIfLessThan(shards, 1);
        IReadOnlyList<string> files = folder.Files;
        long[] labels = folder.Labels.ToArray();
        var examples = new byte[files.Count][];
        var errors = new Exception?[files.Count];
        Parallel.For(0, files.Count, i =>
        {
            try
            {
                byte[] encoded = SafeFile.ReadAllBytes(files[i], SafeFile.MaxImageFileBytes, "image file");
                ImageDecoder.Decode(encoded, new byte[ImageDecoder.ElementCount(ImageDecoder.Measure(encoded, files[i]), folder.Channels)], folder.Channels, source: files[i]);
                examples[i] = new ExampleBuilder().AddImage("image", encoded).AddLabel("label", labels[i]).ToByteArray();
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException or SamplersDataException)
            {
                errors[i] = new ExampleLoadException($"Row {i} (key '{files[i]}') could not be loaded: {e.Message} Nothing was written; fix or remove the file.", i, files[i], files[i], e);
            }
        });
        foreach (var e in errors)
            if (e is not null) throw e;
        string versionDir = Path.Combine(dataDir, name, version);
        var image = new FeatureSpec("image", FeatureKind.Image, "tensorflow_datasets.core.features.image_feature.Image", DType.UInt8, [-1, -1, folder.Channels]);
        var label = new FeatureSpec("label", FeatureKind.ClassLabel, "tensorflow_datasets.core.features.class_label_feature.ClassLabel",
            DType.Int64, [], NumClasses: folder.ClassNames.Count, ClassNames: [.. folder.ClassNames]);
        var writer = new TfdsDatasetWriter(versionDir, name, version, [image, label])
        {
            SupervisedKeys = ("image", "label"),
            Description = $"Images of {folder.ClassNames.Count} classes from an image folder (one sub-folder per class).",
        };
        writer.WriteSplit("train", examples, Math.Min(shards, Math.Max(1, examples.Length)));
        writer.Complete();
        return versionDir;
    }
}
