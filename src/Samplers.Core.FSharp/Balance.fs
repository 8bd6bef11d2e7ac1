namespace Samplers.Core.Statistics

open System
open Samplers.Core
open Samplers.Core.Internal

/// <summary>Pearson's chi-square test of counts against a uniform expectation.</summary>
[<Struct>]
type ChiSquareTest =
    { /// <summary>The statistic: sum over classes of (count - expected)^2 / expected (0 when nothing was counted).</summary>
      Statistic: float
      /// <summary>Degrees of freedom: the number of counts - 1.</summary>
      DegreesOfFreedom: int
      /// <summary>P(X &gt;= Statistic) for X ~ chi-square(DegreesOfFreedom); 1 when there is one count or none was counted.</summary>
      PValue: float }

/// <summary>Class-balance and coverage statistics of the rows sampled so far (see <see cref="BalanceTally"/>).</summary>
/// <remarks>The chi-square test compares the per-class VISITS (batch slots: a class drawn into a batch once, bringing
/// ExamplesPerClassPerBatch rows) with the uniform expectation. Visits, not rows, are the unit the sampler draws: rows
/// come in groups, so a test over rows would overstate the evidence by that group size. Independent mode draws the
/// classes of a batch without replacement (visit counts vary by a factor 1 - k/n less than multinomial counts) and
/// Coverage mode visits them in rounds, so the test is conservative for both: a small p-value (say below 0.001) means
/// real imbalance; p near 1 is expected for Coverage.</remarks>
type BalanceSummary =
    { /// <summary>Rows drawn of each class ordinal (index = ordinal in the ClassIndex).</summary>
      Counts: int64[]
      /// <summary>Visits of each class ordinal: how many batches drew it (a run of rows of one class is one visit).</summary>
      Visits: int64[]
      /// <summary>Total rows drawn.</summary>
      Rows: int64
      /// <summary>Smallest per-class count.</summary>
      Min: int64
      /// <summary>Largest per-class count.</summary>
      Max: int64
      /// <summary>Mean per-class count (Rows / ClassCount).</summary>
      Mean: float
      /// <summary>Pearson's chi-square statistic of the visits against uniform (0 when nothing was drawn).</summary>
      ChiSquare: float
      /// <summary>Degrees of freedom: ClassCount - 1.</summary>
      DegreesOfFreedom: int
      /// <summary>P(X >= ChiSquare) for X ~ chi-square(DegreesOfFreedom); 1 when there is one class or no rows.</summary>
      PValue: float
      /// <summary>Distinct examples (source rows) drawn at least once.</summary>
      DistinctExamples: int
      /// <summary>Examples available to the sampler (the class index's example count).</summary>
      AvailableExamples: int
      /// <summary>DistinctExamples / AvailableExamples, in [0, 1].</summary>
      Coverage: float }

/// <summary>Accumulates the rows of batch plans or batches: per-class counts and which examples were seen.</summary>
/// <remarks>Memory: one int64 per class and one bit per table row. Not thread-safe.</remarks>
[<Sealed>]
type BalanceTally
    /// <summary>A tally over <paramref name="classCount"/> class ordinals and source rows [0, <paramref name="tableRows"/>),
    /// of which <paramref name="availableExamples"/> can be sampled (the denominator of Coverage).</summary>
    /// <exception cref="System.ArgumentOutOfRangeException">classCount or tableRows below 1, or availableExamples negative.</exception>
    (classCount: int, tableRows: int, availableExamples: int) =
    do
        Guard.positive "classCount" classCount
        Guard.positive "tableRows" tableRows
        Guard.nonNegative "availableExamples" availableExamples
    let counts : int64[] = Array.zeroCreate classCount
    let visits : int64[] = Array.zeroCreate classCount
    let seen : uint64[] = Array.zeroCreate ((tableRows + 63) / 64)
    let mutable distinct = 0
    let mutable rows = 0L

    /// <summary>A tally over the classes and examples of <paramref name="index"/>; source rows must be below <paramref name="tableRows"/>.</summary>
    new(index: ClassIndex, tableRows: int) =
        if isNull (box index) then nullArg "index"
        BalanceTally(index.ClassCount, tableRows, index.ExampleCount)

    /// <summary>Pearson's chi-square test of <paramref name="counts"/> against uniform: statistic, degrees of freedom and upper-tail p-value.</summary>
    /// <exception cref="System.ArgumentException">No counts, or a negative count.</exception>
    static member ChiSquareUniform(counts: ReadOnlySpan<int64>) : ChiSquareTest =
        if counts.IsEmpty then invalidArg "counts" "At least one class count is needed."
        let mutable total = 0L
        for c in counts do
            if c < 0L then invalidArg "counts" $"Counts must be 0 or more, but one was {c}."
            total <- total + c
        let k = counts.Length
        if k = 1 || total = 0L then { Statistic = 0.0; DegreesOfFreedom = k - 1; PValue = 1.0 }
        else
            let expected = float total / float k
            let mutable stat = 0.0
            for c in counts do
                let d = float c - expected
                stat <- stat + d * d / expected
            // The regularized upper incomplete gamma is the chi-square survival function, accurate in the far tail.
            { Statistic = stat; DegreesOfFreedom = k - 1; PValue = SpecialFunctions.ChiSquareSurvival(k - 1, stat) }

    /// <summary>Adds the rows of one batch (or plan): the source index and class ordinal of each. Rows of a class are
    /// consecutive (as plans lay them out); each run of one class counts as one visit.</summary>
    /// <exception cref="System.ArgumentException">Span lengths differ, or an index or ordinal is out of range.</exception>
    member _.Add(indices: ReadOnlySpan<int>, classOrdinals: ReadOnlySpan<int>) : unit =
        if indices.Length <> classOrdinals.Length then
            invalidArg "classOrdinals" $"indices ({indices.Length}) and classOrdinals ({classOrdinals.Length}) must have the same length."
        for i in 0 .. indices.Length - 1 do
            let o = classOrdinals[i]
            let r = indices[i]
            if o < 0 || o >= classCount then invalidArg "classOrdinals" $"Class ordinal {o} at row {i} is outside [0, {classCount})."
            if r < 0 || r >= tableRows then invalidArg "indices" $"Source row {r} at row {i} is outside [0, {tableRows})."
            counts[o] <- counts[o] + 1L
            if i = 0 || classOrdinals[i - 1] <> o then visits[o] <- visits[o] + 1L
            let w = r >>> 6
            let bit = 1UL <<< (r &&& 63)
            if seen[w] &&& bit = 0UL then
                seen[w] <- seen[w] ||| bit
                distinct <- distinct + 1
        rows <- rows + int64 indices.Length

    /// <summary>Adds the rows of a plan.</summary>
    member this.Add(plan: BatchPlan) : unit =
        if isNull (box plan) then nullArg "plan"
        this.Add(plan.Indices.Span, plan.ClassOrdinals.Span)

    /// <summary>Total rows added.</summary>
    member _.Rows = rows

    /// <summary>The statistics of everything added so far.</summary>
    member _.Summary() : BalanceSummary =
        let test = BalanceTally.ChiSquareUniform(ReadOnlySpan visits)
        { Counts = Array.copy counts
          Visits = Array.copy visits
          Rows = rows
          Min = Array.min counts
          Max = Array.max counts
          Mean = float rows / float classCount
          ChiSquare = test.Statistic
          DegreesOfFreedom = test.DegreesOfFreedom
          PValue = test.PValue
          DistinctExamples = distinct
          AvailableExamples = availableExamples
          Coverage = if availableExamples = 0 then 0.0 else float distinct / float availableExamples }
