using Samplers.Core;
using Samplers.Core.Statistics;

namespace Samplers.Experiments;

/// <summary>
/// Audits of a sampler's plans for experiment scripts and the <c>samplers</c> tool: the plan digest of any range of
/// batches, and a run of whole epochs that reports what was drawn. Extension methods, so the sampler's own surface
/// stays what training needs; everything here uses only the sampler's public members.
/// </summary>
public static class SamplerAudit
{
    /// <summary>The plan digest (<see cref="Core.PlanDigest"/>: SHA-256 over the canonical bytes of every plan) of the
    /// batches <see cref="MultiShotMemorySampler.Plans"/> returns for the same arguments; equal to the digest
    /// <see cref="RunEpochs"/> reports over the same epochs and batches.</summary>
    /// <param name="sampler">The sampler whose plans are digested; its epoch counter is not changed.</param>
    /// <param name="firstEpoch">The first epoch.</param>
    /// <param name="epochs">Epochs to digest, at least 1.</param>
    /// <param name="startBatch">The first batch id of each epoch.</param>
    /// <param name="endBatch">One past the last batch id of each epoch.</param>
    /// <exception cref="ArgumentOutOfRangeException">A negative epoch, an epoch count below 1, or a batch range outside [0, <see cref="MultiShotMemorySampler.Count"/>].</exception>
    public static string DigestPlans(this MultiShotMemorySampler sampler, int firstEpoch, int epochs, int startBatch, int endBatch)
    {
        ArgumentNullException.ThrowIfNull(sampler);
        // Plans checks its range before it yields anything: the same checks and messages as the sampler's own.
        _ = sampler.Plans(firstEpoch, epochs, startBatch, endBatch);
        return Core.PlanDigest.Compute(sampler.Planner, sampler.Seed, firstEpoch, epochs, startBatch, endBatch - startBatch);
    }

    /// <summary><see cref="DigestPlans(MultiShotMemorySampler, int, int, int, int)"/> that stops between batches when
    /// <paramref name="cancellationToken"/> is cancelled (a range of many epochs takes minutes). The same digest: the same
    /// plans (<see cref="Core.Planner.Fill"/>) added in the same order as <see cref="Core.PlanDigest.Compute"/> adds them.</summary>
    /// <param name="sampler">The sampler whose plans are digested; its epoch counter is not changed.</param>
    /// <param name="firstEpoch">The first epoch.</param>
    /// <param name="epochs">Epochs to digest, at least 1.</param>
    /// <param name="startBatch">The first batch id of each epoch.</param>
    /// <param name="endBatch">One past the last batch id of each epoch.</param>
    /// <param name="cancellationToken">Checked every 256 batches.</param>
    /// <exception cref="ArgumentOutOfRangeException">As the other overload.</exception>
    /// <exception cref="OperationCanceledException">The token was cancelled.</exception>
    public static string DigestPlans(this MultiShotMemorySampler sampler, int firstEpoch, int epochs, int startBatch, int endBatch, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(sampler);
        _ = sampler.Plans(firstEpoch, epochs, startBatch, endBatch);
        if (!cancellationToken.CanBeCanceled) return Core.PlanDigest.Compute(sampler.Planner, sampler.Seed, firstEpoch, epochs, startBatch, endBatch - startBatch);
        var planner = sampler.Planner;
        int size = planner.Config.BatchSize;
        var indices = new int[size];
        var ordinals = new int[size];
        using var digest = new Core.PlanDigest();
        long done = 0;
        int lastEpoch = (int)((long)firstEpoch + epochs - 1);
        for (long e = firstEpoch; e <= lastEpoch; e++)
            for (int b = startBatch; b < endBatch; b++)
            {
                if ((done++ & 255) == 0) cancellationToken.ThrowIfCancellationRequested();
                var key = new Core.PlanKey(sampler.Seed, (int)e, b);
                planner.Fill(key, indices, ordinals);
                digest.Add(key, planner.Config.GlobalBatchId(b), indices, ordinals);
            }
        return digest.Finish();
    }

    /// <summary>Runs <paramref name="epochs"/> epochs through the indexer as a training loop would (every batch of the current
    /// epoch in order, disposed, then <see cref="MultiShotMemorySampler.OnEpochEnd"/>), and reports what was drawn: rows and
    /// visits per class, balance statistics, examples seen and the plan digest of every batch served.</summary>
    /// <param name="sampler">The sampler to run.</param>
    /// <param name="epochs">Epochs to run, at least 1; they start at the current <see cref="MultiShotMemorySampler.Epoch"/>.</param>
    /// <param name="progress">Receives the number of batches done (every 256 batches and at the end).</param>
    /// <param name="cancellationToken">Stops between batches.</param>
    /// <remarks>Advances the epoch counter by <paramref name="epochs"/>. The statistics are <see cref="BalanceTally"/>'s.</remarks>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="epochs"/> is below 1.</exception>
    /// <exception cref="OperationCanceledException">The token was cancelled.</exception>
    public static SamplerReport RunEpochs(this MultiShotMemorySampler sampler, int epochs, IProgress<long>? progress = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(sampler);
        ArgumentOutOfRangeException.ThrowIfLessThan(epochs, 1);
        var tally = new BalanceTally(sampler.ClassIndex, sampler.Table.Count);
        using var digest = new Core.PlanDigest();
        int firstEpoch = sampler.Epoch;
        long batches = 0;
        for (int e = 0; e < epochs; e++)
        {
            for (int b = 0; b < sampler.Count; b++)
            {
                cancellationToken.ThrowIfCancellationRequested();
                using var batch = sampler[b];
                tally.Add(batch.Indices, batch.ClassOrdinals);
                digest.Add(batch.Key, batch.GlobalBatchId, batch.Indices, batch.ClassOrdinals);
                batches++;
                if ((batches & 255) == 0) progress?.Report(batches);
            }
            sampler.OnEpochEnd();
        }
        progress?.Report(batches);
        BalanceSummary summary = tally.Summary();
        var perClass = new ClassReport[summary.Counts.Length];
        for (int o = 0; o < perClass.Length; o++)
            perClass[o] = new ClassReport(sampler.ClassList[o], sampler.ClassNames[o], summary.Counts[o], summary.Visits[o]);
        return new SamplerReport(firstEpoch, epochs, batches, perClass, summary, digest.Finish());
    }
}
