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

    /// <summary>Only these labels are sampled (<c>class_list</c>; duplicates ignored); null or empty means every label present
    /// (the reference tests <c>if not class_list</c>).</summary>
    public IReadOnlyList<long>? ClassList { get; init; }

    /// <summary>Keep at most this many examples of each class (<c>total_examples_per_class</c>); null keeps all.</summary>
    /// <remarks>Divergence: the reference draws them with replacement (duplicating examples); we draw min(total, available)
    /// without replacement, determined by <see cref="Seed"/>.</remarks>
    public int? TotalExamplesPerClass { get; init; }

    /// <summary>Applied once to every example when the sampler is built (<c>preprocess_fn</c>); may change dtype and shape.</summary>
    public IExamplePreprocessor? Preprocess { get; init; }

    /// <summary>Applied to every batch (<c>augmenter</c>); may change the batch size.</summary>
    public IAugmenter? Augmenter { get; init; }

    /// <summary>Passed to the augmenter (<c>num_augmentations_per_example</c>, default 1: the reference's
    /// <c>MultiShotMemorySampler</c> never sets it, so its base <c>Sampler</c>'s default of 1 (since v0.17) applies).</summary>
    /// <remarks>The batch-size message reports it only when an augmenter is set, as the reference does ("with 0 augmentations" otherwise).</remarks>
    public int NumAugmentationsPerExample { get; init; } = 1;

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

    /// <summary>Ours: for a mapped table, how many batches ahead the sampler asks the OS to read; 0 turns it off. Batch b
    /// also plans batch b + this and calls <see cref="ExampleTable.PrefetchRows"/> on its rows, so consumers that walk
    /// batches in order find their pages read. Null (the default) means <see cref="AutoReadAheadBatches"/> when the mapped
    /// file is larger than half the memory available to the process (it may not stay in the page cache), else 0: in the page
    /// cache the advice only costs system calls. No effect on in-memory tables; never changes a batch (docs/MAPPED.md).
    /// Over a remote table (object storage, <c>ObjectStoreAccess.Remote</c>) it is the number of coming batches whose
    /// records are fetched in the background, null meaning the table's <c>RemoteAccessOptions.ReadAheadBatches</c>.</summary>
    public int? ReadAheadBatches { get; init; }

    /// <summary>The read-ahead distance used when <see cref="ReadAheadBatches"/> is null and the file is large.</summary>
    public const int AutoReadAheadBatches = 1;
}
