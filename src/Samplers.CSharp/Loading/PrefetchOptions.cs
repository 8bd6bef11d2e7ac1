namespace Samplers;

/// <summary>
/// Settings of a <see cref="PrefetchLoader{T}"/>: how many background workers make batches, how far ahead, for how many epochs.
/// </summary>
/// <remarks>A record, so settings can grow without breaking callers (<c>options with { Workers = 2 }</c>).</remarks>
public record PrefetchOptions
{
    /// <summary>Background workers that make batches (default 1). 0 makes every batch on the consumer's thread when it is
    /// asked for (no prefetching; the order and contents are the same).</summary>
    public int Workers { get; init; } = 1;

    /// <summary>How many batches may be made ahead of the consumer (default 4, at least 1). The loader holds at most this
    /// many batches (finished or in the making); the consumer holds the ones it was handed and has not disposed.</summary>
    /// <remarks>A depth below <see cref="Workers"/> leaves the extra workers idle.</remarks>
    public int Depth { get; init; } = 4;

    /// <summary>Epochs to run (default 1), starting at the sampler's current <see cref="MultiShotMemorySampler.Epoch"/>;
    /// null runs until the consumer stops.</summary>
    public int? Epochs { get; init; } = 1;
}

/// <summary>A batch could not be made: names the epoch and the batch id; the cause is the inner exception.</summary>
public sealed class BatchLoadException : Exception
{
    /// <summary>Wraps <paramref name="inner"/>, thrown while making batch <paramref name="batchId"/> of <paramref name="epoch"/>.</summary>
    public BatchLoadException(int epoch, int batchId, Exception inner)
        : base($"Making batch {batchId} of epoch {epoch} failed on a loader worker: {inner.Message} (the inner exception has the details; batches before this one were delivered, none after it).", inner)
    {
        Epoch = epoch;
        BatchId = batchId;
    }

    /// <summary>The epoch of the batch that failed.</summary>
    public int Epoch { get; }

    /// <summary>The (rank-local) batch id that failed.</summary>
    public int BatchId { get; }
}
