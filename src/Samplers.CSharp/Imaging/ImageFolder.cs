namespace Samplers.Imaging;

/// <summary>
/// An image dataset laid out as one sub-folder per class (<c>root/&lt;class&gt;/…/*.jpg</c>), as TFDS'
/// <c>tfds.folder_dataset.ImageFolder</c> and Keras' <c>image_dataset_from_directory</c> read it: class names are the
/// sub-folder names sorted (ordinal), a file's label is the index of its class, and files are in ordinal path order
/// within each class. Files ending in .jpg, .jpeg or .png (any case) count; others are skipped.
/// </summary>
/// <remarks>Three ways to use it: sample it lazily (<see cref="ToLazyTable"/>: files are decoded when a batch needs them,
/// through a bounded cache), load it eagerly (<see cref="Load"/>), or write it once as a TFDS dataset
/// (<see cref="Samplers.Tfds.ImageFolderTfds.WriteTfds"/>) so the TFDS loader and its Parquet cache serve it.</remarks>
public sealed class ImageFolder
{
    private static readonly string[] Extensions = [".jpg", ".jpeg", ".png"];
    private readonly string[] _files;
    private readonly long[] _labels;
    private readonly string[] _classNames;

    private ImageFolder(string root, string[] classNames, string[] files, long[] labels, int channels)
    {
        Root = root; _classNames = classNames; _files = files; _labels = labels; Channels = channels;
    }

    /// <summary>Lists <paramref name="root"/>: its sub-folders are the classes; images under each (sub-folders included) are its examples.</summary>
    /// <param name="root">The dataset folder.</param>
    /// <param name="channels">Channels every image is decoded to: 1 (grey), 3 (RGB, the default, as Keras) or 4 (RGBA).</param>
    /// <exception cref="DatasetNotFoundException"><paramref name="root"/> does not exist, or has no class sub-folder with an image.</exception>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="channels"/> is not 1, 3 or 4.</exception>
    public static ImageFolder Scan(string root, int channels = 3)
    {
        ArgumentException.ThrowIfNullOrEmpty(root);
        if (channels is not (1 or 3 or 4)) throw new ArgumentOutOfRangeException(nameof(channels), channels, "channels must be 1, 3 or 4.");
        if (!Directory.Exists(root))
            throw new DatasetNotFoundException($"The image folder '{root}' does not exist; give a folder with one sub-folder of images per class.", root);
        string[] classes = Directory.GetDirectories(root).Select(Path.GetFileName).OfType<string>().ToArray();
        Array.Sort(classes, StringComparer.Ordinal);
        var files = new List<string>();
        var labels = new List<long>();
        for (int c = 0; c < classes.Length; c++)
        {
            string dir = Path.Combine(root, classes[c]);
            string[] images = ImagesUnder(dir);
            Array.Sort(images, StringComparer.Ordinal);
            files.AddRange(images);
            labels.AddRange(Enumerable.Repeat((long)c, images.Length));
        }
        if (files.Count == 0)
            throw new DatasetNotFoundException($"The image folder '{root}' has no images (.jpg, .jpeg, .png) in class sub-folders ({classes.Length} sub-folders found); expected root/<class>/<image>.", root);
        return new ImageFolder(root, classes, files.ToArray(), labels.ToArray(), channels);
    }

    /// <summary>The image files under a class folder, sub-folders included, without following a symbolic link to a
    /// directory below it: such a link is skipped (a link back up, <c>a/loop -&gt; ..</c>, made the old recursive listing
    /// run without end). The class folder itself may be a link, and so may each image file.</summary>
    private static string[] ImagesUnder(string dir)
    {
        var options = new EnumerationOptions { RecurseSubdirectories = true, IgnoreInaccessible = false, AttributesToSkip = 0 };
        var found = new System.IO.Enumeration.FileSystemEnumerable<string>(dir, (ref System.IO.Enumeration.FileSystemEntry e) => e.ToFullPath(), options)
        {
            ShouldIncludePredicate = (ref System.IO.Enumeration.FileSystemEntry e) => !e.IsDirectory && HasImageExtension(e.FileName),
            ShouldRecursePredicate = (ref System.IO.Enumeration.FileSystemEntry e) => (e.Attributes & FileAttributes.ReparsePoint) == 0,
        };
        return found.ToArray();
    }

    private static bool HasImageExtension(ReadOnlySpan<char> name)
    {
        foreach (string e in Extensions)
            if (name.EndsWith(e, StringComparison.OrdinalIgnoreCase)) return true;
        return false;
    }

    /// <summary>The folder scanned.</summary>
    public string Root { get; }

    /// <summary>Channels every image is decoded to.</summary>
    public int Channels { get; }

    /// <summary>Class names (sorted sub-folder names), position = label.</summary>
    public IReadOnlyList<string> ClassNames => _classNames;

    /// <summary>Every image file, in label then path order.</summary>
    public IReadOnlyList<string> Files => _files;

    /// <summary>The label of every file.</summary>
    public ReadOnlySpan<long> Labels => _labels;

    /// <summary>Number of images.</summary>
    public int Count => _files.Length;

    /// <summary>Reads and decodes one image file to [H, W, <paramref name="channels"/>] uint8, then applies
    /// <paramref name="preprocess"/> if given (e.g. <see cref="Imaging.ImagePreprocessing.Resize"/>).</summary>
    /// <exception cref="DataFormatException">The file is not a decodable PNG or JPEG (the message names it).</exception>
    /// <exception cref="IOException">The file cannot be read.</exception>
    public static LoadedExample DecodeFile(string path, int channels = 3, IExamplePreprocessor? preprocess = null)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        byte[] encoded = SafeFile.ReadAllBytes(path, SafeFile.MaxImageFileBytes, "image file");
        var info = ImageDecoder.Measure(encoded, path);
        var pixels = new byte[ImageDecoder.ElementCount(info, channels)];
        ImageDecoder.Decode(encoded, pixels, channels, source: path);
        int[] shape = [info.Height, info.Width, channels];
        if (preprocess is null) return new LoadedExample(pixels, shape);
        int[] outShape = preprocess.OutputShape([-1, -1, channels]);
        long elems = 1;
        foreach (int d in outShape)
        {
            if (d < 0) throw new ArgumentException($"The preprocess's output shape [{string.Join(", ", outShape)}] is not fixed.", nameof(preprocess));
            elems *= d;
        }
        var output = new byte[checked(elems * DTypes.SizeOf(preprocess.OutputDType(DType.UInt8)))];
        long label = 0;
        preprocess.Process(pixels, shape, DType.UInt8, output, ref label);
        return new LoadedExample(output, outShape);
    }

    /// <summary>A lazy table over the files (key = path): each is decoded (and preprocessed) when a batch needs it,
    /// through <paramref name="cache"/>. Without a preprocess, examples are [-1, -1, C] uint8 and a batch needs one size:
    /// give the preprocess here (cached small) or as <see cref="SamplerOptions.Preprocess"/> (per batch).</summary>
    public LazyExampleTable<string> ToLazyTable(IExamplePreprocessor? preprocess = null, ExampleCache? cache = null)
    {
        int channels = Channels;
        DType dtype = preprocess?.OutputDType(DType.UInt8) ?? DType.UInt8;
        int[] shape = preprocess?.OutputShape([-1, -1, channels]) ?? [-1, -1, channels];
        return LazyExampleTable.Create<string>(_files, _labels, dtype, shape, path => DecodeFile(path, channels, preprocess), _classNames, cache);
    }

    /// <summary>Decodes every image now (in parallel) into an <see cref="ExampleTable"/> (ragged unless
    /// <paramref name="preprocess"/> fixes the shape).</summary>
    /// <exception cref="ExampleLoadException">An image could not be read or decoded (the message names the file).</exception>
    public ExampleTable Load(IExamplePreprocessor? preprocess = null) => ToLazyTable(preprocess, ExampleCache.None).ToExampleTable();
}
