using BenchmarkDotNet.Attributes;
using Samplers.Core;
using Samplers.Core.Statistics;

namespace Samplers.Bench;

/// <summary>
/// What auditing a batch costs on top of sampling it (the CLI's <c>run</c> does both for every batch):
/// <see cref="PlanDigest"/>.Add (SHA-256 over the plan's canonical bytes) and <see cref="BalanceTally"/>.Add (per-class
/// counts and the seen-bit per row), per batch, for a 10x2 and a 100x4 batch over 60 000 examples of 1000 classes.
/// Each invocation handles 1024 precomputed plans, so times are per batch. Target: no allocation per batch.
/// </summary>
[MemoryDiagnoser]
[MedianColumn]
public class AuditBenchmarks
{
    private const int Batches = 1024;
    private BatchPlan[] _plans = [];
    private ClassIndex _index = null!;

    [Params("10x2", "100x4")]
    public string Shape { get; set; } = "10x2";

    [GlobalSetup]
    public void Setup()
    {
        var labels = new long[60_000];
        for (int i = 0; i < labels.Length; i++) labels[i] = i % 1000;
        _index = ClassIndex.Build(labels);
        var parts = Shape.Split('x');
        var config = new PlanConfig(int.Parse(parts[0]), int.Parse(parts[1]), Batches);
        var planner = new Planner(config, _index);
        _plans = Enumerable.Range(0, Batches).Select(b => planner.Plan(new PlanKey(1, 0, b))).ToArray();
    }

    [Benchmark(OperationsPerInvoke = Batches)]
    public string Digest()
    {
        using var d = new PlanDigest();
        foreach (var p in _plans) d.Add(p.Key, p.GlobalBatchId, p.Indices.Span, p.ClassOrdinals.Span);
        return d.Finish();
    }

    [Benchmark(OperationsPerInvoke = Batches)]
    public long Tally()
    {
        var t = new BalanceTally(_index, 60_000);
        foreach (var p in _plans) t.Add(p.Indices.Span, p.ClassOrdinals.Span);
        return t.Rows;
    }
}
