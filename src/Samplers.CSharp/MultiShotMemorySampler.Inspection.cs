using Samplers.Core;

namespace Samplers;

// Inspection: the plans of any range of batches, without drawing a batch (digests and audits over them live in
// Samplers.Experiments). Kept apart from the sampling code in MultiShotMemorySampler.cs.
public partial class MultiShotMemorySampler
{
    /// <summary>The plans of batches [<paramref name="startBatch"/>, <paramref name="endBatch"/>) of epochs
    /// <paramref name="firstEpoch"/> .. <paramref name="firstEpoch"/> + <paramref name="epochs"/> - 1, epoch by epoch, as
    /// this rank sees them (batch ids are rank-local; <see cref="BatchPlan.GlobalBatchId"/> gives the global id).</summary>
    /// <remarks>Lazy: one plan is computed per step of the enumeration. Pure: the sampler's epoch counter is neither read nor
    /// changed, so any epoch can be previewed before, during or after training.</remarks>
    /// <exception cref="ArgumentOutOfRangeException">A negative epoch, an epoch count below 1, a last epoch past <see cref="int.MaxValue"/>, or a batch range outside [0, <see cref="Count"/>].</exception>
    public IEnumerable<BatchPlan> Plans(int firstEpoch, int epochs, int startBatch, int endBatch)
    {
        CheckPlanRange(firstEpoch, epochs, startBatch, endBatch);
        return Iterate();

        IEnumerable<BatchPlan> Iterate()
        {
            // Long: firstEpoch + epochs overflows int when the range ends at int.MaxValue.
            for (long e = firstEpoch; e < (long)firstEpoch + epochs; e++)
                for (int b = startBatch; b < endBatch; b++)
                    yield return _planner.Plan(new PlanKey(_options.Seed, (int)e, b));
        }
    }

    private void CheckPlanRange(int firstEpoch, int epochs, int startBatch, int endBatch)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(firstEpoch);
        ArgumentOutOfRangeException.ThrowIfLessThan(epochs, 1);
        if ((long)firstEpoch + epochs - 1 > int.MaxValue)
            throw new ArgumentOutOfRangeException(nameof(epochs), epochs,
                $"The epochs {firstEpoch}..{(long)firstEpoch + epochs - 1} end past the last epoch, int.MaxValue = {int.MaxValue}: lower firstEpoch or epochs.");
        if (startBatch < 0 || endBatch > Count || startBatch > endBatch)
            throw new ArgumentOutOfRangeException(nameof(endBatch), $"The batch range [{startBatch}, {endBatch}) must lie in [0, Count] = [0, {Count}] with start <= end.");
    }
}
