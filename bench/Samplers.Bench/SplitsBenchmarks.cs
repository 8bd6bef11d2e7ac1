using BenchmarkDotNet.Attributes;
using Samplers.Core.Tfds;

namespace Samplers.Bench;

/// <summary>Split arithmetic and TFDS read order at imagenet2012 scale (1024 train shards of ~1251 records, 64 validation shards).</summary>
[MemoryDiagnoser]
public class SplitsBenchmarks
{
    private SplitShards[] _splits = [];
    private FileInstruction[] _instructions = [];

    [GlobalSetup]
    public void Setup()
    {
        var train = Enumerable.Range(0, 1024).Select(i => i < 175 ? 1252L : 1251L).ToArray();
        var validation = Enumerable.Repeat(782L, 64).ToArray();
        _splits = [new SplitShards("train", train), new SplitShards("validation", validation)];
        _instructions = Splits.Resolve("train+validation", _splits);
    }

    /// <summary>Parse + ranges + file instructions for a sliced two-part spec.</summary>
    [Benchmark]
    public int Resolve() => Splits.Resolve("train[10%:90%]+validation[:50%]", _splits).Length;

    /// <summary>The interleave plan for 1.33 million records over 1088 instructions.</summary>
    [Benchmark]
    public int ReadOrderPlan() => ReadOrder.Plan(_instructions, false).Length;
}
