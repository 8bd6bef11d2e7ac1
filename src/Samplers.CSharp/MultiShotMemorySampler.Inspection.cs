using Samplers.Core;
using Samplers.Core.Statistics;

namespace Samplers;

// Inspection: what a caller needs to preview, digest and audit the plans (the CLI's `plan` and `run`, the experiment
// scripts), so that no front end re-implements plan ranges, digests or balance statistics. Kept apart from the
// sampling code in MultiShotMemorySampler.cs.
public partial class MultiShotMemorySampler
{
    /// <summary>The plans of batches [<paramref name="startBatch"/>, <paramref name="endBatch"/>) of epochs
    /// <paramref name="firstEpoch"/> .. <paramref name="firstEpoch"/> + <paramref name="epochs"/> - 1, epoch by epoch, as
    /// this rank sees them (batch ids are rank-local; <see cref="BatchPlan.GlobalBatchId"/> gives the global id).</summary>
    /// <remarks>Lazy: one plan is computed per step of the enumeration. Pure: the sampler's epoch counter is neither read nor
    /// changed, so any epoch can be previewed before, during or after training.</remarks>
    /// <exception cref="ArgumentOutOfRangeException">A negative epoch, an epoch count below 1, or a batch range outside [0, <see cref="Count"/>].</exception>
    public IEnumerable<BatchPlan> Plans(int firstEpoch, int epochs, int startBatch, int endBatch)
    {
        CheckPlanRange(firstEpoch, epochs, startBatch, endBatch);
        return Iterate();

        IEnumerable<BatchPlan> Iterate()
        {
            for (int e = firstEpoch; e < firstEpoch + epochs; e++)
                for (int b = startBatch; b < endBatch; b++)
                    yield return _planner.Plan(new PlanKey(_options.Seed, e, b));
        }
    }

    /// <summary>The plan digest (<see cref="Core.PlanDigest"/>: SHA-256 over the canonical bytes of every plan) of the
    /// batches <see cref="Plans"/> returns for the same arguments; equal to the digest <see cref="RunEpochs"/> reports
    /// over the same epochs and batches.</summary>
    /// <exception cref="ArgumentOutOfRangeException">A negative epoch, an epoch count below 1, or a batch range outside [0, <see cref="Count"/>].</exception>
    public string DigestPlans(int firstEpoch, int epochs, int startBatch, int endBatch)
    {
        CheckPlanRange(firstEpoch, epochs, startBatch, endBatch);
        return Core.PlanDigest.Compute(_planner, _options.Seed, firstEpoch, epochs, startBatch, endBatch - startBatch);
    }

    /// <summary>Runs <paramref name="epochs"/> epochs through the indexer as a training loop would (every batch of the current
    /// epoch in order, disposed, then <see cref="OnEpochEnd"/>), and reports what was drawn: rows and visits per class,
    /// balance statistics, examples seen and the plan digest of every batch served.</summary>
    /// <param name="epochs">Epochs to run, at least 1; they start at the current <see cref="Epoch"/>.</param>
    /// <param name="progress">Receives the number of batches done (every 256 batches and at the end).</param>
    /// <param name="cancellationToken">Stops between batches.</param>
    /// <remarks>Advances the epoch counter by <paramref name="epochs"/>. The statistics are <see cref="BalanceTally"/>'s.</remarks>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="epochs"/> is below 1.</exception>
    /// <exception cref="OperationCanceledException">The token was cancelled.</exception>
    public SamplerReport RunEpochs(int epochs, IProgress<long>? progress = null, CancellationToken cancellationToken = default)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(epochs, 1);
        var tally = new BalanceTally(_index, _table.Count);
        using var digest = new Core.PlanDigest();
        int firstEpoch = _epoch;
        long batches = 0;
        for (int e = 0; e < epochs; e++)
        {
            for (int b = 0; b < Count; b++)
            {
                cancellationToken.ThrowIfCancellationRequested();
                using var batch = this[b];
                tally.Add(batch.Indices, batch.ClassOrdinals);
                digest.Add(batch.Key, batch.GlobalBatchId, batch.Indices, batch.ClassOrdinals);
                batches++;
                if ((batches & 255) == 0) progress?.Report(batches);
            }
            OnEpochEnd();
        }
        progress?.Report(batches);
        BalanceSummary summary = tally.Summary();
        var perClass = new ClassReport[summary.Counts.Length];
        for (int o = 0; o < perClass.Length; o++)
            perClass[o] = new ClassReport(_classList[o], _classNames[o], summary.Counts[o], summary.Visits[o]);
        return new SamplerReport(firstEpoch, epochs, batches, perClass, summary, digest.Finish());
    }

    private void CheckPlanRange(int firstEpoch, int epochs, int startBatch, int endBatch)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(firstEpoch);
        ArgumentOutOfRangeException.ThrowIfLessThan(epochs, 1);
        if (startBatch < 0 || endBatch > Count || startBatch > endBatch)
            throw new ArgumentOutOfRangeException(nameof(endBatch), $"The batch range [{startBatch}, {endBatch}) must lie in [0, Count] = [0, {Count}] with start <= end.");
    }
}
