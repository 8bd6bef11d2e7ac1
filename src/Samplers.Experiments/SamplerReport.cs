using Samplers.Core.Statistics;

namespace Samplers.Experiments;

/// <summary>One class in a <see cref="SamplerReport"/>: its label and name, the rows drawn of it and its visits (batches
/// that drew it; each visit brings <see cref="MultiShotMemorySampler.ExamplesPerClassPerBatch"/> rows).</summary>
public sealed class ClassReport
{
    internal ClassReport(long label, string name, long rows, long visits)
    {
        Label = label; Name = name; Rows = rows; Visits = visits;
    }

    /// <summary>The class label.</summary>
    public long Label { get; }

    /// <summary>The class name (the label as text when the data has no names).</summary>
    public string Name { get; }

    /// <summary>Rows drawn of this class.</summary>
    public long Rows { get; }

    /// <summary>Batches that drew this class.</summary>
    public long Visits { get; }
}

/// <summary>What <see cref="SamplerAudit.RunEpochs"/> drew: per-class rows and visits, balance statistics and the
/// plan digest of every batch served.</summary>
public sealed class SamplerReport
{
    internal SamplerReport(int firstEpoch, int epochs, long batches, IReadOnlyList<ClassReport> perClass, BalanceSummary balance, string planDigest)
    {
        FirstEpoch = firstEpoch; Epochs = epochs; Batches = batches; PerClass = perClass; Balance = balance; PlanDigest = planDigest;
    }

    /// <summary>The epoch the run started at.</summary>
    public int FirstEpoch { get; }

    /// <summary>Epochs run.</summary>
    public int Epochs { get; }

    /// <summary>Batches served.</summary>
    public long Batches { get; }

    /// <summary>One entry per class the sampler draws from, in class-ordinal order (ascending labels).</summary>
    public IReadOnlyList<ClassReport> PerClass { get; }

    /// <summary>Rows, min/max/mean per class, the chi-square test over visits, examples seen and coverage
    /// (<see cref="BalanceTally"/>).</summary>
    public BalanceSummary Balance { get; }

    /// <summary>SHA-256 over the canonical bytes of every batch served, equal to
    /// <see cref="SamplerAudit.DigestPlans(MultiShotMemorySampler, int, int, int, int)"/> over the same epochs and all batches.</summary>
    public string PlanDigest { get; }
}
