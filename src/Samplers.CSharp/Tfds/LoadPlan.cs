using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace Samplers.Tfds;

/// <summary>
/// One load, resolved: the settings checked once, the dataset opened (downloading it first when the options allow),
/// every split selected, the x and y features found, the stored dtype and shape, and the preprocess's fixed output
/// and its part of the cache key. <see cref="TfdsLoader.LoadAsync"/> resolves it first and passes it down to the
/// cache lookup, the record pipeline and the result, so no step re-derives these facts.
/// </summary>
internal sealed class LoadPlan
{
    private LoadPlan(TfdsLoadOptions options, ILogger logger, DatasetBuilderDir builder, SplitSelection[] selections, FeatureSpec xSpec,
        FeatureSpec ySpec, long total, TfdsRecordPipeline.Fused? fused, string preprocessKey)
    {
        Options = options; Logger = logger; Builder = builder; Selections = selections; XSpec = xSpec; YSpec = ySpec; Total = total;
        Fused = fused; PreprocessKey = preprocessKey;
        ClassNames = ySpec.ClassNames ?? [];
        DType = xSpec.StorageDType;
        Shape = (int[])xSpec.StorageShape.Clone();
    }

    /// <summary>The settings the plan was resolved from.</summary>
    public TfdsLoadOptions Options { get; }

    /// <summary>Where the load logs (the options' logger, or none).</summary>
    public ILogger Logger { get; }

    /// <summary>The dataset version directory opened.</summary>
    public DatasetBuilderDir Builder { get; }

    /// <summary>One selection per entry of <see cref="TfdsLoadOptions.Splits"/>, in order.</summary>
    public SplitSelection[] Selections { get; }

    /// <summary>The example feature (<c>x_key</c>).</summary>
    public FeatureSpec XSpec { get; }

    /// <summary>The label feature (<c>y_key</c>).</summary>
    public FeatureSpec YSpec { get; }

    /// <summary>Rows the selections hold together.</summary>
    public long Total { get; }

    /// <summary>The label names (empty when the label feature names none).</summary>
    public IReadOnlyList<string> ClassNames { get; }

    /// <summary>The decoded examples' dtype.</summary>
    public DType DType { get; }

    /// <summary>The decoded examples' shape (-1 where it varies).</summary>
    public int[] Shape { get; }

    /// <summary>The preprocess with its fixed output dtype and shape (checked before anything is read), or null.</summary>
    public TfdsRecordPipeline.Fused? Fused { get; }

    /// <summary>The preprocess's part of the cache key: its declared identity, or empty when the cache stores the
    /// decoded examples (no preprocess, or one that declares no identity).</summary>
    public string PreprocessKey { get; }

    /// <summary>Whether the cache holds the preprocessed examples (the preprocess declares an identity).</summary>
    public bool CachePreprocessed => PreprocessKey.Length > 0;

    /// <summary>The dtype of what the cache stores.</summary>
    public DType StoredDType => CachePreprocessed ? Fused!.OutputDType : DType;

    /// <summary>The shape of what the cache stores: the preprocess's fixed one when it is cached preprocessed, so a
    /// ragged dataset can still be mapped.</summary>
    public int[] StoredShape => CachePreprocessed ? Fused!.OutputShape : Shape;

    /// <summary>The load's result around <paramref name="table"/>.</summary>
    public TfdsLoadResult Result(ExampleTable table, bool fromCache, string? cachePath, string cacheDetail) =>
        new(table, XSpec, YSpec, Builder, Selections, fromCache, cachePath, cacheDetail);

    /// <summary>Checks <paramref name="options"/>, opens the dataset (downloading it when absent and allowed) and resolves every fact of the load.</summary>
    /// <exception cref="ArgumentException">A bad setting, or a key naming no usable feature (the message lists them).</exception>
    /// <exception cref="DatasetNotFoundException">The dataset, config, version, split or a shard is absent.</exception>
    /// <exception cref="DataFormatException">Bad metadata.</exception>
    public static Task<LoadPlan> ResolveAsync(TfdsLoadOptions options, IProgress<LoadProgress>? progress, CancellationToken cancellationToken) =>
        ResolveAsync(options, progress, cancellationToken, remote: false);

    /// <summary>As <see cref="ResolveAsync(TfdsLoadOptions, IProgress{LoadProgress}?, CancellationToken)"/>; with
    /// <paramref name="remote"/>, an object-store data directory's metadata only is copied locally (and no local shard
    /// file is looked at): remote access reads the shards in place.</summary>
    public static async Task<LoadPlan> ResolveAsync(TfdsLoadOptions options, IProgress<LoadProgress>? progress, CancellationToken cancellationToken, bool remote)
    {
        ArgumentNullException.ThrowIfNull(options);
        ArgumentException.ThrowIfNullOrEmpty(options.DatasetName, "options.DatasetName");
        ArgumentNullException.ThrowIfNull(options.Splits, "options.Splits");
        if (options.Splits.Count == 0)
            throw new ArgumentException("options.Splits is empty; give at least one split spec, e.g. \"train\".", "options.Splits");
        for (int i = 0; i < options.Splits.Count; i++)
            if (string.IsNullOrWhiteSpace(options.Splits[i]))
                throw new ArgumentException($"options.Splits[{i}] is empty; give a split spec such as \"train\" or \"train[:10%]\".", "options.Splits");
        ArgumentException.ThrowIfNullOrEmpty(options.XKey, "options.XKey");
        ArgumentException.ThrowIfNullOrEmpty(options.YKey, "options.YKey");
        ArgumentOutOfRangeException.ThrowIfLessThan(options.ChunkBytes, 1L, "options.ChunkBytes");
        cancellationToken.ThrowIfCancellationRequested();

        progress?.Report(new LoadProgress(LoadPhase.Resolving, 0, 0, Detail: options.DatasetName));
        // A data directory in object storage: copied locally once, then everything below reads the copy.
        DatasetBuilderDir builder;
        SplitSelection[] selections;
        if (remote)
        {
            options = await ObjectStoreDataDir.LocalizeAsync(options, progress, cancellationToken, metadataOnly: true).ConfigureAwait(false);
            (builder, selections) = Resolve(options, checkFiles: false);
            // The record index checks every shard's record count against its size and shardLengths as it is built.
        }
        else
        {
            options = await ObjectStoreDataDir.LocalizeAsync(options, progress, cancellationToken).ConfigureAwait(false);
            (builder, selections) = await OpenAsync(options, progress, cancellationToken).ConfigureAwait(false);
            // No count the files cannot hold may size anything below (a file of S bytes holds at most S/16 records).
            ShardChecks.RequirePlausibleLengths(selections, builder.Info.FilePath);
        }
        FeatureSpec xSpec = FindX(builder, options.XKey);
        FeatureSpec ySpec = FindY(builder, options.YKey);
        long total = selections.Sum(s => s.NumExamples);
        if (total > Array.MaxLength)
            throw new ArgumentException($"{builder.FullName} splits [{string.Join(", ", options.Splits)}] select {total} examples; a table holds at most {Array.MaxLength}. Load a slice, e.g. \"train[:50%]\".", "options.Splits");
        LoadLimits.CheckExampleFits(builder, xSpec, xSpec.StorageDType, xSpec.StorageShape, options.ChunkBytes);
        // With a preprocess: its output type and fixed shape, checked before anything is read.
        TfdsRecordPipeline.Fused? fused = options.Preprocess is null ? null : FusedFor(options.Preprocess, xSpec.StorageDType, xSpec.StorageShape);
        return new LoadPlan(options, options.Logger ?? NullLogger.Instance, builder, selections, xSpec, ySpec, total, fused,
            TfdsCacheEntry.PreprocessKey(options, xSpec));
    }

    /// <summary>The preprocess's output dtype and fixed shape for the table's; its errors (a ragged output, a dtype it does not
    /// take) surface before any record is read.</summary>
    private static TfdsRecordPipeline.Fused FusedFor(IExamplePreprocessor preprocess, DType dtype, int[] shape)
    {
        DType outType = preprocess.OutputDType(dtype);
        int[] outShape = preprocess.OutputShape(shape) ?? throw new ArgumentException("The preprocess returned no output shape.", "options.Preprocess");
        foreach (int d in outShape)
            if (d < 0) throw new ArgumentException($"The preprocess's output shape [{string.Join(", ", outShape)}] has a negative dimension; every output example needs one fixed shape.", "options.Preprocess");
        return new TfdsRecordPipeline.Fused(preprocess, outType, outShape);
    }

    /// <summary>Opens the dataset and selects every split; with a download hook, an absent dataset or shard is fetched once.</summary>
    private static async Task<(DatasetBuilderDir, SplitSelection[])> OpenAsync(TfdsLoadOptions options, IProgress<LoadProgress>? progress, CancellationToken ct)
    {
        try
        {
            return Resolve(options);
        }
        catch (DatasetNotFoundException notFound) when (options.Download is not null && IsAbsentData(notFound))
        {
            string dataDir = DataDirectory.Resolve(options.DataDir);
            progress?.Report(new LoadProgress(LoadPhase.Downloading, 0, 0, Detail: options.DatasetName));
            try
            {
                await options.Download(new TfdsDownloadRequest(dataDir, options.DatasetName, options.Splits, notFound), progress, ct).ConfigureAwait(false);
            }
            catch (Exception e) when (e is DatasetNotFoundException or DownloadException && !ct.IsCancellationRequested)
            {
                // Not published, or the bucket unreachable: most often a misspelled name. Lead with what is on disk (the
                // catalog's message lists the datasets, configs or versions present), then what the download said.
                // Each hint once: the catalog's and the download's, less "download it" (that was just tried).
                throw DataHints.NotFound(
                    $"{DataHints.FactsOf(notFound).TrimEnd()} The download (TfdsLoadOptions.Download) could not fetch it either: {DataHints.FactsOf(e).TrimEnd()}",
                    [.. DataHints.HintsOf(notFound).Where(h => h.Kind != HintKind.Download), .. DataHints.HintsOf(e),
                     DataHints.CheckName(), DataHints.DataDir("point TfdsLoadOptions.DataDir at a directory that holds the dataset"),
                     DataHints.NoDownload("set TfdsLoadOptions.Download = null to never use the network")],
                    notFound.FilePath, notFound.Key, e);
            }
            ct.ThrowIfCancellationRequested();
            return Resolve(options);
        }
    }

    private static (DatasetBuilderDir, SplitSelection[]) Resolve(TfdsLoadOptions options, bool checkFiles = true)
    {
        DatasetBuilderDir builder = Catalog.Open(options.DataDir, options.DatasetName);
        var selections = new SplitSelection[options.Splits.Count];
        for (int i = 0; i < selections.Length; i++) selections[i] = builder.Select(options.Splits[i], checkFiles);
        return (builder, selections);
    }

    /// <summary>True when downloading can help: the dataset, config or version is absent, or a shard file is missing;
    /// false for a split name the dataset does not have (its error points at dataset_info.json and lists the splits).</summary>
    private static bool IsAbsentData(DatasetNotFoundException e)
    {
        if (e.FilePath is null || !e.FilePath.EndsWith("dataset_info.json", StringComparison.Ordinal)) return true;
        return !File.Exists(e.FilePath);
    }

    private static string Available(DatasetBuilderDir builder) =>
        string.Join(", ", builder.Features.Select(f => f.ToString()));

    private static FeatureSpec FindX(DatasetBuilderDir builder, string key)
    {
        FeatureSpec spec = builder.FindFeature(key) ?? throw new ArgumentException(
            $"x_key '{key}' not found - available features are: {Available(builder)} ({builder.FullName}, {builder.Path}). Pass one of these keys as XKey.", "options.XKey");
        if (!spec.IsNumeric)
            throw new ArgumentException(
                $"x_key '{key}' is {spec}: examples must be numeric (an Image, a numeric Tensor, a ClassLabel or a BBox). Available features are: {Available(builder)}.", "options.XKey");
        return spec;
    }

    private static FeatureSpec FindY(DatasetBuilderDir builder, string key)
    {
        FeatureSpec spec = builder.FindFeature(key) ?? throw new ArgumentException(
            $"y_key '{key}' not found - available features are: {Available(builder)} ({builder.FullName}, {builder.Path}). Pass one of these keys as YKey.", "options.YKey");
        if (!spec.IsLabel)
            throw new ArgumentException(
                $"y_key '{key}' is {spec}: labels must be a scalar ClassLabel or integer Tensor. Available features are: {Available(builder)}.", "options.YKey");
        return spec;
    }
}
