namespace Samplers.Core

open System
open System.Globalization

/// <summary>
/// Batch plans as text lines, so every program that prints or saves plans writes the same columns (the CLI's
/// <c>plan --format csv|table</c>). Invariant culture throughout.
/// </summary>
[<AbstractClass; Sealed>]
type PlanText =
    /// <summary>The CSV header: one row per planned example.</summary>
    static member CsvHeader = "epoch,batch,global_batch,row,index,label"

    /// <summary>The CSV lines of <paramref name="plan"/> (no header): epoch, rank-local batch, global batch, row in the
    /// batch, source index, label.</summary>
    static member CsvLines(plan: BatchPlan) : string[] =
        let k = plan.Key
        let idx = plan.Indices.ToArray()
        let lab = plan.Labels.ToArray()
        Array.init plan.Count (fun i ->
            String.Format(CultureInfo.InvariantCulture, "{0},{1},{2},{3},{4},{5}", k.Epoch, k.BatchId, plan.GlobalBatchId, i, idx[i], lab[i]))

    /// <summary>The header of the one-line-per-batch table.</summary>
    static member TableHeader = sprintf "%5s  %6s  %6s  labels | indices" "epoch" "batch" "global"

    /// <summary>One table line: epoch, rank-local batch, global batch, the labels, then the source indices.</summary>
    static member TableLine(plan: BatchPlan) : string =
        let k = plan.Key
        let join (xs: string seq) = String.Join(" ", xs)
        sprintf "%5d  %6d  %6d  %s | %s" k.Epoch k.BatchId plan.GlobalBatchId
            (plan.Labels.ToArray() |> Seq.map (fun l -> l.ToString(CultureInfo.InvariantCulture)) |> join)
            (plan.Indices.ToArray() |> Seq.map (fun i -> i.ToString(CultureInfo.InvariantCulture)) |> join)
