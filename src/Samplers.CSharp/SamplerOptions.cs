using Microsoft.Extensions.Logging;
using Samplers.Core;

namespace Samplers;

/// <summary>
/// Settings of a <see cref="MultiShotMemorySampler"/>: the reference's parameters with its defaults, then ours.
/// </summary>
/// <remarks>
/// A record, so that settings can grow without breaking callers (<c>options with { Seed = 7 }</c>).
/// Validation happens when a sampler is built, so each error names the offending property.
/// Python names: <c>classes_per_batch</c>, <c>examples_per_class_per_batch</c>, <c>steps_per_epoch</c>,
/// <c>class_list</c>, <c>total_examples_per_class</c>, <c>augmenter</c>, <c>warmup</c>,
/// <c>num_augmentations_per_example</c> (of the base <c>Sampler</c>), <c>preprocess_fn</c> (of the TFDS sampler).
/// </remarks>
public record SamplerOptions
{
    /// <summary>Distinct classes in every batch (<c>classes_per_batch</c>; no default in the reference's TFDS sampler, 2 in its base class).</summary>
    public int ClassesPerBatch { get; init; } = 2;

    /// <summary>Examples of each class in every batch (<c>examples_per_class_per_batch</c>, default 2).</summary>
    public int ExamplesPerClassPerBatch { get; init; } = 2;

    /// <summary>Batches per epoch over all ranks (<c>steps_per_epoch</c>, default 1000); <see cref="MultiShotMemorySampler.Count"/> is this rank's share.</summary>
    public int StepsPerEpoch { get; init; } = 1000;

    /// <summary>Only these labels are sampled (<c>class_list</c>; duplicates ignored); null means every label present.</summary>
    public IReadOnlyList<long>? ClassList { get; init; }

    /// <summary>Keep at most this many examples of each class (<c>total_examples_per_class</c>); null keeps all.</summary>
    /// <remarks>Divergence: the reference draws them with replacement (duplicating examples); we draw min(total, available)
    /// without replacement, determined by <see cref="Seed"/>.</remarks>
    public int? TotalExamplesPerClass { get; init; }

    /// <summary>Applied once to every example when the sampler is built (<c>preprocess_fn</c>); may change dtype and shape.</summary>
    public IExamplePreprocessor? Preprocess { get; init; }

    /// <summary>Applied to every batch (<c>augmenter</c>); may change the batch size.</summary>
    public IAugmenter? Augmenter { get; init; }

    /// <summary>Passed to the augmenter (<c>num_augmentations_per_example</c>, default 0: the reference's
    /// <c>MultiShotMemorySampler</c> never sets it, so its base class default of 0 applies and the batch-size message
    /// says "with 0 augmenters").</summary>
    public int NumAugmentationsPerExample { get; init; }

    /// <summary>Warmup epochs (<c>warmup</c>, default -1).</summary>
    /// <remarks>As the reference: warmup is on at construction whenever this is not 0 (<c>is_warmup = bool(warmup)</c>), and
    /// <see cref="MultiShotMemorySampler.OnEpochEnd"/> turns it off once the epoch reaches this value. So the default -1
    /// means warmup is ON during epoch 0 only; 0 means never; 3 means epochs 0, 1, 2. The reference's doc string says the
    /// default is 0; its code uses -1, and we follow the code.</remarks>
    public int Warmup { get; init; } = -1;

    /// <summary>Ours: the experiment seed. The same (seed, epoch, batch id) always gives the same batch.</summary>
    public ulong Seed { get; init; }

    /// <summary>Ours: how batches are drawn (default <see cref="SamplingMode.Independent"/>, the reference's semantics).</summary>
    public SamplingMode Mode { get; init; } = SamplingMode.Independent;

    /// <summary>Ours: this process's rank for data-parallel training, in [0, WorldSize).</summary>
    public int Rank { get; init; }

    /// <summary>Ours: number of data-parallel processes; each gets a disjoint share of every epoch's batches.</summary>
    public int WorldSize { get; init; } = 1;

    /// <summary>Ours: receives the batch-size message, the one-time replacement warnings and "Warmup complete" (the reference prints them).</summary>
    public ILogger? Logger { get; init; }

    /// <summary>Ours: where batches are rented from; null gives the sampler its own pool.</summary>
    public BatchPool? Pool { get; init; }
}

/// <summary>
/// Settings of the TFDS-loading sampler (<c>TFDatasetMultiShotMemorySampler</c>): what to load, then every
/// <see cref="SamplerOptions"/> setting.
/// </summary>
/// <remarks>Python names: <c>dataset_name</c>, <c>x_key</c>, <c>y_key</c>, <c>splits</c>. Progress and cancellation are
/// arguments of the loading call, not settings.</remarks>
public record TFDatasetSamplerOptions : SamplerOptions
{
    /// <summary>The TFDS dataset (<c>dataset_name</c>): <c>name</c>, <c>name/config</c> or <c>name/config:version</c>.</summary>
    public required string DatasetName { get; init; }

    /// <summary>The feature holding the examples (<c>x_key</c>, default <c>"image"</c>).</summary>
    public string XKey { get; init; } = "image";

    /// <summary>The feature holding the labels (<c>y_key</c>, default <c>"label"</c>).</summary>
    public string YKey { get; init; } = "label";

    /// <summary>Splits to load and concatenate in order (<c>splits</c>, default train then test); each accepts the TFDS slicing syntax (<c>train[:80%]</c>).</summary>
    public IReadOnlyList<string> Splits { get; init; } = ["train", "test"];

    /// <summary>Ours: the TFDS data directory; null uses <c>TFDS_DATA_DIR</c> or the TFDS default.</summary>
    public string? DataDir { get; init; }

    /// <summary>Ours: where the Parquet cache lives; null uses <c>SAMPLERS_CACHE_DIR</c>, else the platform cache folder (see <see cref="Samplers.Cache.ParquetCache.ResolveDirectory"/>).</summary>
    public string? CacheDir { get; init; }

    /// <summary>Ours: false turns the Parquet cache off (always read the TFRecords, write nothing).</summary>
    public bool UseCache { get; init; } = true;

    /// <summary>Fetches the dataset when it is absent from the data directory. The default,
    /// <see cref="Samplers.Tfds.TfdsLoader.DownloadFromBucket"/>(), fetches TFDS's prepared files from its public bucket (or
    /// <c>SAMPLERS_TFDS_BASE_URL</c>), as the reference's <c>tfds.load</c> downloads a missing dataset. Set null to never touch
    /// the network: an absent dataset is then an error. See <see cref="TfdsLoadOptions.Download"/>.</summary>
    /// <remarks>Only an absent dataset, config, version or shard triggers it; a dataset already on disk is never re-fetched.</remarks>
    public TfdsDownloadHandler? Download { get; init; } = Samplers.Tfds.TfdsLoader.DownloadFromBucket();
}
