using System.Globalization;
using Samplers.Core;

namespace Samplers.Cli;

/// <summary>Batch plans as text lines for <c>plan --format csv|table</c>. Invariant culture throughout.</summary>
internal static class PlanText
{
    private static readonly CultureInfo Inv = CultureInfo.InvariantCulture;

    /// <summary>The CSV header: one row per planned example.</summary>
    public const string CsvHeader = "epoch,batch,global_batch,row,index,label";

    /// <summary>The header of the one-line-per-batch table.</summary>
    public static readonly string TableHeader = string.Create(Inv, $"{"epoch",5}  {"batch",6}  {"global",6}  labels | indices");

    /// <summary>The CSV lines of <paramref name="plan"/> (no header): epoch, rank-local batch, global batch, row in the
    /// batch, source index, label.</summary>
    public static string[] CsvLines(BatchPlan plan)
    {
        var k = plan.Key;
        var idx = plan.Indices.Span;
        var lab = plan.Labels.Span;
        var lines = new string[plan.Count];
        for (int i = 0; i < lines.Length; i++)
            lines[i] = string.Create(Inv, $"{k.Epoch},{k.BatchId},{plan.GlobalBatchId},{i},{idx[i]},{lab[i]}");
        return lines;
    }

    /// <summary>One table line: epoch, rank-local batch, global batch, the labels, then the source indices.</summary>
    public static string TableLine(BatchPlan plan)
    {
        var k = plan.Key;
        string labels = string.Join(' ', plan.Labels.ToArray().Select(l => l.ToString(Inv)));
        string indices = string.Join(' ', plan.Indices.ToArray().Select(i => i.ToString(Inv)));
        return string.Create(Inv, $"{k.Epoch,5}  {k.BatchId,6}  {plan.GlobalBatchId,6}  {labels} | {indices}");
    }
}
