using Samplers.Tfds;

namespace Samplers.Tfds;

/// <summary>
/// The reference's <c>TFDatasetMultiShotMemorySampler</c>: a <see cref="MultiShotMemorySampler"/> over a TFDS dataset
/// loaded from its TFRecord files (or the Parquet cache) by <see cref="TfdsLoader"/>.
/// </summary>
/// <remarks>
/// <para>Build one with <see cref="LoadAsync"/> (async, with progress and cancellation) or with a constructor (the
/// reference's shape; it blocks while loading). All of them load through <see cref="TfdsLoader.LoadAsync"/> (the one load
/// route, which the CLI and the experiment scripts use too): every entry of <see cref="TfdsLoadOptions.Splits"/>, concatenated
/// in order, applying <see cref="TfdsLoadOptions.Preprocess"/> to every example as it is decoded; then they index the classes.</para>
/// <para>The preprocess is a loading setting (<c>Load.Preprocess</c>); the inherited <see cref="SamplerOptions.Preprocess"/>
/// must stay null here. The cache stores the preprocessed table only when the preprocess declares an
/// <see cref="IExamplePreprocessor.Identity"/>, else the decoded data (user code cannot be fingerprinted), so changing the
/// preprocess never serves stale data.</para>
/// </remarks>
public sealed class TFDatasetMultiShotMemorySampler : MultiShotMemorySampler
{
    /// <summary>Hands a loaded table to the sampler (used by the loader). <paramref name="preprocessed"/> true means the loader
    /// already applied <see cref="SamplerOptions.Preprocess"/> (with its cancellation token), so it is not applied again.</summary>
    internal TFDatasetMultiShotMemorySampler(ExampleTable loaded, TFDatasetSamplerOptions options, bool preprocessed)
        : base(loaded, options, applyPreprocess: !preprocessed, ownsInput: true)
    {
        DatasetOptions = options;
    }

    private TFDatasetMultiShotMemorySampler(TfdsLoadResult loaded, TFDatasetSamplerOptions options)
        : base(loaded.Table, options, applyPreprocess: false, ownsInput: true)
    {
        DatasetOptions = options;
        LoadResult = loaded;
    }

    // Remote access: a lazy sampler over the remote table, which it owns. Load.Preprocess is applied by the table as it decodes.
    private TFDatasetMultiShotMemorySampler(RemoteExampleTable remote, TFDatasetSamplerOptions options)
        : base(remote, options, lazy: true)
    {
        DatasetOptions = options;
        RemoteTable = remote;
        OwnLazy(remote);
    }

    /// <summary>Loads the dataset <paramref name="options"/> describes and builds the sampler; blocks until loaded.
    /// Prefer <see cref="LoadAsync"/> in async code or when you want progress and cancellation.</summary>
    /// <exception cref="ArgumentNullException"><paramref name="options"/> is null.</exception>
    /// <exception cref="ArgumentException">Bad settings, or <c>x_key</c>/<c>y_key</c> names no usable feature (see <see cref="TfdsLoader.LoadAsync"/>).</exception>
    /// <exception cref="SamplersDataException">The dataset is absent or its files are bad (see <see cref="TfdsLoader.LoadAsync"/>).</exception>
    public TFDatasetMultiShotMemorySampler(TFDatasetSamplerOptions options)
        : this(LoadBlocking(options ?? throw new ArgumentNullException(nameof(options))), options)
    {
    }

#pragma warning disable RS0026 // Two overloads with optional parameters on purpose: the reference's splits is str | Sequence[str].
    /// <summary>
    /// The reference's constructor shape: <c>TFDatasetMultiShotMemorySampler(dataset_name, classes_per_batch,
    /// x_key="image", y_key="label", splits=["train", "test"], examples_per_class_per_batch=2, steps_per_epoch=1000,
    /// class_list=None, total_examples_per_class=None, preprocess_fn=None, augmenter=None, warmup=-1)</c>, then our seed
    /// and data directory, and whether an absent dataset may be downloaded (default true, as <c>tfds.load</c>). Blocks while loading.
    /// </summary>
    /// <exception cref="ArgumentException">Bad settings, or <c>x_key</c>/<c>y_key</c> names no usable feature.</exception>
    /// <exception cref="SamplersDataException">The dataset is absent or its files are bad.</exception>
    public TFDatasetMultiShotMemorySampler(string datasetName, int classesPerBatch, string xKey = "image", string yKey = "label",
        IReadOnlyList<string>? splits = null, int examplesPerClassPerBatch = 2, int stepsPerEpoch = 1000, IReadOnlyList<long>? classList = null,
        int? totalExamplesPerClass = null, IExamplePreprocessor? preprocessFn = null, IAugmenter? augmenter = null, int warmup = -1,
        ulong seed = 0, string? dataDir = null, bool download = true)
        : this(ReferenceOptions(datasetName, classesPerBatch, xKey, yKey, splits, examplesPerClassPerBatch, stepsPerEpoch, classList,
            totalExamplesPerClass, preprocessFn, augmenter, warmup, seed, dataDir, download))
    {
    }

    // xKey, yKey and splits are required in this overload, so no call matches both constructors.
    /// <summary>The reference's constructor shape with one split given as a string (<c>splits="train"</c>; the reference
    /// accepts <c>str | Sequence[str]</c>). Blocks while loading.</summary>
    /// <exception cref="ArgumentException">Bad settings, or <c>x_key</c>/<c>y_key</c> names no usable feature.</exception>
    /// <exception cref="SamplersDataException">The dataset is absent or its files are bad.</exception>
    public TFDatasetMultiShotMemorySampler(string datasetName, int classesPerBatch, string xKey, string yKey,
        string splits, int examplesPerClassPerBatch = 2, int stepsPerEpoch = 1000, IReadOnlyList<long>? classList = null,
        int? totalExamplesPerClass = null, IExamplePreprocessor? preprocessFn = null, IAugmenter? augmenter = null, int warmup = -1,
        ulong seed = 0, string? dataDir = null, bool download = true)
        : this(ReferenceOptions(datasetName, classesPerBatch, xKey, yKey, [splits ?? throw new ArgumentNullException(nameof(splits))],
            examplesPerClassPerBatch, stepsPerEpoch, classList, totalExamplesPerClass, preprocessFn, augmenter, warmup, seed, dataDir, download))
    {
    }
#pragma warning restore RS0026

    private static TFDatasetSamplerOptions ReferenceOptions(string datasetName, int classesPerBatch, string xKey, string yKey,
        IReadOnlyList<string>? splits, int examplesPerClassPerBatch, int stepsPerEpoch, IReadOnlyList<long>? classList,
        int? totalExamplesPerClass, IExamplePreprocessor? preprocessFn, IAugmenter? augmenter, int warmup, ulong seed, string? dataDir, bool download)
    {
        var load = new TfdsLoadOptions { DatasetName = datasetName, XKey = xKey, YKey = yKey, DataDir = dataDir, Preprocess = preprocessFn };
        if (splits is not null) load = load with { Splits = splits };
        if (!download) load = load with { Download = null };
        return new TFDatasetSamplerOptions
        {
            Load = load, ClassesPerBatch = classesPerBatch, ExamplesPerClassPerBatch = examplesPerClassPerBatch, StepsPerEpoch = stepsPerEpoch,
            ClassList = classList, TotalExamplesPerClass = totalExamplesPerClass, Augmenter = augmenter, Warmup = warmup,
            Seed = seed,
        };
    }

    /// <summary>Loads the dataset (TFRecords or the Parquet cache), applying <c>Load.Preprocess</c> once to every example, and builds the sampler.</summary>
    /// <param name="options">What to load and how to sample.</param>
    /// <param name="progress">Receives the loader's <see cref="LoadProgress"/> reports; null for none.</param>
    /// <param name="cancellationToken">Cancels loading and preprocessing; a cancelled load leaves no cache file.</param>
    /// <exception cref="ArgumentNullException"><paramref name="options"/> is null.</exception>
    /// <exception cref="ArgumentException">Bad settings, or <c>x_key</c>/<c>y_key</c> names no usable feature (see <see cref="TfdsLoader.LoadAsync"/>).</exception>
    /// <exception cref="SamplersDataException">The dataset is absent or its files are bad (see <see cref="TfdsLoader.LoadAsync"/>).</exception>
    /// <exception cref="OperationCanceledException"><paramref name="cancellationToken"/> was cancelled.</exception>
    public static async Task<TFDatasetMultiShotMemorySampler> LoadAsync(TFDatasetSamplerOptions options, IProgress<LoadProgress>? progress = null,
        CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(options);
        if (IsRemoteAccess(options))
        {
            RemoteExampleTable remote = await RemoteDataset.OpenAsync(EffectiveLoadOptions(options), publish: false, progress, cancellationToken).ConfigureAwait(false);
            try
            {
                return new TFDatasetMultiShotMemorySampler(remote, options);
            }
            catch
            {
                remote.Dispose();
                throw;
            }
        }
        TfdsLoadResult loaded = await LoadTableAsync(options, progress, cancellationToken).ConfigureAwait(false);
        return new TFDatasetMultiShotMemorySampler(loaded, options);
    }

    private static bool IsRemoteAccess(TFDatasetSamplerOptions options) =>
        options.Load is { } load && Samplers.Storage.ObjectStoreLocation.IsRemote(load.DataDir) && load.ObjectStore?.Access == Samplers.Storage.ObjectStoreAccess.Remote;

    /// <summary>With <see cref="Samplers.Storage.ObjectStoreAccess.Remote"/>: the table the batches' records are fetched
    /// into (counters of requests and bytes, the record indexes used); null otherwise.</summary>
    public RemoteExampleTable? RemoteTable { get; }

    /// <summary>What was loaded and how.</summary>
    public TFDatasetSamplerOptions DatasetOptions { get; }

    /// <summary>The dataset name (<c>dataset_name</c>).</summary>
    public string DatasetName => DatasetOptions.Load.DatasetName;

    /// <summary>The loader's result: resolved dataset directory, x/y feature specs, selections, and whether the data came
    /// from the cache. Null when the sampler was handed a table directly, or reads remotely (see <see cref="RemoteTable"/>).</summary>
    public TfdsLoadResult? LoadResult { get; }

    /// <summary>What the loader is given: <see cref="TFDatasetSamplerOptions.Load"/> as it is, except that a null load logger
    /// falls back to the sampler's <see cref="SamplerOptions.Logger"/> (one Logger setting serves both), and that
    /// <see cref="TableBacking.Auto"/> means <see cref="TableBacking.Memory"/> when <c>Load.Preprocess</c> must run after the
    /// load (it declares no identity, so the cache holds the data before it and a new in-memory table is made anyway).</summary>
    /// <exception cref="ArgumentException">The inherited <see cref="SamplerOptions.Preprocess"/> is set: the preprocess of a
    /// TFDS sampler is a loading setting, <c>Load.Preprocess</c>, declared once.</exception>
    internal static TfdsLoadOptions EffectiveLoadOptions(TFDatasetSamplerOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(options.Load, "options.Load");
        if (options.Preprocess is not null)
            throw new ArgumentException(
                "TFDatasetSamplerOptions.Preprocess is set, but a TFDS sampler's preprocess is a loading setting: set TFDatasetSamplerOptions.Load.Preprocess " +
                "instead (the loader applies it while decoding, and caches its output when it declares an identity). SamplerOptions.Preprocess is for " +
                "MultiShotMemorySampler over a table you already hold.", "options.Preprocess");
        TfdsLoadOptions load = options.Load.Logger is null && options.Logger is not null ? options.Load with { Logger = options.Logger } : options.Load;
        // A declared preprocess is cached preprocessed (fixed shape: mappable); an undeclared one makes a new in-memory table anyway.
        return load.Table == TableBacking.Auto && load.Preprocess is { Identity: null } ? load with { Table = TableBacking.Memory } : load;
    }

    // On the thread pool, so a caller's SynchronizationContext (UI, old ASP.NET) can never deadlock the blocking wait.
    private static TfdsLoadResult LoadBlocking(TFDatasetSamplerOptions options)
    {
        if (IsRemoteAccess(options))
            throw new ArgumentException("ObjectStoreOptions.Access is Remote, which builds a sampler over a lazy remote table: use TFDatasetMultiShotMemorySampler.LoadAsync " +
                "(the constructors build an in-memory or mapped table), or Access = Copy.", "options.Load.ObjectStore.Access");
        return Task.Run(() => LoadTableAsync(options, null, CancellationToken.None)).GetAwaiter().GetResult();
    }

    // The loader applies Load.Preprocess (fused with decoding, or after a cache hit of the decoded data).
    private static Task<TfdsLoadResult> LoadTableAsync(TFDatasetSamplerOptions options, IProgress<LoadProgress>? progress, CancellationToken cancellationToken) =>
        TfdsLoader.LoadAsync(EffectiveLoadOptions(options), progress, cancellationToken);
}
