namespace Samplers;

/// <summary>
/// Transforms every batch the sampler serves (the reference's <c>augmenter(x, y, num_augmentations_per_example, is_warmup)</c>).
/// </summary>
/// <remarks>
/// The augmenter receives a batch it owns. It may change the batch in place and return it, or build another batch
/// (of any size, e.g. with <see cref="BatchPool.Rent"/>) and return that; when the returned batch is a different one,
/// the sampler disposes the input (a no-op if the augmenter already did). It is called from whatever threads request
/// batches, so it must be thread-safe; to stay reproducible it should derive any randomness from
/// <see cref="Batch.Key"/> rather than from a shared generator.
/// </remarks>
public interface IAugmenter
{
    /// <summary>Returns the augmented batch.</summary>
    /// <param name="batch">The batch as planned (owned by the augmenter from now on).</param>
    /// <param name="numAugmentationsPerExample">The sampler's <see cref="SamplerOptions.NumAugmentationsPerExample"/>.</param>
    /// <param name="isWarmup">Whether the sampler is in warmup (<see cref="MultiShotMemorySampler.IsWarmup"/>).</param>
    Batch Augment(Batch batch, int numAugmentationsPerExample, bool isWarmup);
}

/// <summary>The augmenter contract as a delegate.</summary>
public delegate Batch AugmentFunc(Batch batch, int numAugmentationsPerExample, bool isWarmup);

/// <summary>Helpers for <see cref="IAugmenter"/>.</summary>
public static class Augmenters
{
    /// <summary>Wraps a delegate as an <see cref="IAugmenter"/>.</summary>
    /// <exception cref="ArgumentNullException"><paramref name="augment"/> is null.</exception>
    public static IAugmenter FromFunc(AugmentFunc augment)
    {
        ArgumentNullException.ThrowIfNull(augment);
        return new FuncAugmenter(augment);
    }

    private sealed class FuncAugmenter(AugmentFunc f) : IAugmenter
    {
        public Batch Augment(Batch batch, int numAugmentationsPerExample, bool isWarmup) => f(batch, numAugmentationsPerExample, isWarmup);
    }
}
