namespace Samplers.TorchSharp;

/// <summary>Prefetching loaders that yield tensors.</summary>
public static class TensorLoader
{
    /// <summary>
    /// A <see cref="PrefetchLoader{T}"/> whose workers make each batch and copy it into pooled tensors (one fused copy; the
    /// <see cref="Batch"/> goes back to its pool right after). Dispose each <see cref="TensorBatch"/> when the step is done;
    /// see <see cref="TensorBatch"/> for the lifetime rules. The pool's spare tensors are freed by the garbage collector
    /// once the loader is unreachable; <c>TensorLoader.PoolOf(loader).Dispose()</c> frees them at once.
    /// </summary>
    /// <exception cref="ArgumentNullException"><paramref name="sampler"/> is null.</exception>
    /// <exception cref="ArgumentOutOfRangeException">A prefetch setting is out of range.</exception>
    public static PrefetchLoader<TensorBatch> Create(MultiShotMemorySampler sampler, PrefetchOptions? options = null, TensorConversion? conversion = null)
    {
        ArgumentNullException.ThrowIfNull(sampler);
        options ??= new PrefetchOptions();
        // Enough tensors for what the loader may hold plus the consumer's current batch and one kept a step longer.
        var pool = new TensorBatchPool(conversion, options.Depth + options.Workers + 2);
        var loader = new PrefetchLoader<TensorBatch>(sampler, options,
            batch =>
            {
                using (batch) return pool.Convert(batch);
            },
            static t => t.Dispose());
        Pools.Add(loader, pool);
        return loader;
    }

    /// <summary>The tensor pool behind a loader made by <see cref="Create"/> (to inspect <see cref="TensorBatchPool.Created"/>).</summary>
    /// <exception cref="ArgumentException">The loader was not made by <see cref="Create"/>.</exception>
    public static TensorBatchPool PoolOf(PrefetchLoader<TensorBatch> loader) =>
        Pools.TryGetValue(loader, out TensorBatchPool? pool) ? pool : throw new ArgumentException("This loader was not made by TensorLoader.Create.", nameof(loader));

    // The pool lives as long as its loader (no finalisation order to get wrong: tensors free themselves).
    private static readonly System.Runtime.CompilerServices.ConditionalWeakTable<PrefetchLoader<TensorBatch>, TensorBatchPool> Pools = new();
}
