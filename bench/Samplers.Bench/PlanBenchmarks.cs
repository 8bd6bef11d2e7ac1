using BenchmarkDotNet.Attributes;
using Samplers.Core;

namespace Samplers.Bench;

/// <summary>One plan configuration: classes per batch x examples per class, over a label array of C classes.</summary>
public sealed record PlanCase(int ClassesPerBatch, int ExamplesPerClass, int Classes, int Examples, SamplingMode Mode)
{
    // Short, because BenchmarkDotNet truncates long parameter names: "I 10x2 C1e3 N1e7" (I = Independent, C = Coverage).
    public override string ToString() => $"{Mode.ToString()[0]} {ClassesPerBatch}x{ExamplesPerClass} C1e{Math.Log10(Classes):0} N1e{Math.Log10(Examples):0}";
}

/// <summary>
/// Plan throughput: Planner.Fill into caller buffers (the hot path of every batch). Each invocation plans 1024
/// consecutive batches, so the reported time is per plan. Targets: 10x2 under 1 us, cost independent of N and C,
/// 0 B allocated.
/// </summary>
[MemoryDiagnoser]
[MedianColumn]
public class PlanBenchmarks
{
    private const int Batches = 1024;
    private ClassIndex _index = null!;
    private PlanConfig _config = null!;
    private Planner _planner = null!;
    private int[] _indices = [];
    private int[] _ordinals = [];

    public static IEnumerable<PlanCase> Cases()
    {
        foreach (var mode in new[] { SamplingMode.Independent, SamplingMode.Coverage })
        {
            foreach (var (k, e) in new[] { (10, 2), (10, 32), (100, 4) })
            {
                foreach (var c in new[] { 10, 1000, 100_000 })
                {
                    if (k <= c) yield return new PlanCase(k, e, c, 10_000_000, mode);
                }
            }
            // Same shape, 1000x fewer examples: the cost must not depend on N.
            yield return new PlanCase(10, 2, 1000, 10_000, mode);
        }
    }

    [ParamsSource(nameof(Cases))]
    public PlanCase Case { get; set; } = null!;

    [GlobalSetup]
    public void Setup()
    {
        // Labels spread over C classes in a scrambled order (an odd multiplier is a bijection mod 2^k, so classes stay balanced enough).
        var labels = new long[Case.Examples];
        for (int i = 0; i < labels.Length; i++) labels[i] = (long)((uint)(i * 2654435761u) % (uint)Case.Classes);
        _index = ClassIndex.Build(labels);
        _config = new PlanConfig(Case.ClassesPerBatch, Case.ExamplesPerClass, 1_000_000, Case.Mode, 0, 1);
        _planner = new Planner(_config, _index);
        _indices = new int[_config.BatchSize];
        _ordinals = new int[_config.BatchSize];
    }

    [Benchmark(OperationsPerInvoke = Batches)]
    public int Fill()
    {
        int sum = 0;
        for (int b = 0; b < Batches; b++)
        {
            _planner.Fill(new PlanKey(42UL, 3, b), _indices, _ordinals);
            sum += _ordinals[0];
        }
        return sum + _indices[0];
    }
}

/// <summary>ClassIndex.Build over 10^7 labels (target: at least 50 M labels/s, i.e. under 200 ms).</summary>
[MemoryDiagnoser]
[MedianColumn]
public class ClassIndexBenchmarks
{
    private long[] _labels = [];

    [Params(1000, 100_000)]
    public int Classes { get; set; }

    [GlobalSetup]
    public void Setup()
    {
        _labels = new long[10_000_000];
        for (int i = 0; i < _labels.Length; i++) _labels[i] = (long)((uint)(i * 2654435761u) % (uint)Classes);
    }

    [Benchmark]
    public int Build() => ClassIndex.Build(_labels).ClassCount;
}
