using BenchmarkDotNet.Attributes;
using Samplers.TorchSharp;
using TorchSharp;
using static TorchSharp.torch;

namespace Samplers.Bench;

/// <summary>
/// Batch -> float32 CHW tensor: the bridge's fused copy (uint8 -> float32 ÷ 255 and HWC -> CHW in one pass, into a reused
/// tensor) against a plain memcpy of the batch's bytes (the floor for reading them; the fused copy also writes 4x as many
/// bytes) and against the naive path <c>torch.tensor(batch.ToArray()) -> float -> / 255 -> permute -> contiguous</c>.
/// Shapes: the 10x2 MNIST-size batch (20 x 28x28x1) and 64x4 batch of 224x224x3 (256 x 150 KB = 38.5 MB).
/// </summary>
[MemoryDiagnoser]
[MedianColumn]
public class TensorCopyBenchmarks
{
    private Batch _batch;
    private byte[] _memcpyDest = null!;
    private TensorBatchPool _pool = null!;

    /// <summary>The batch: "mnist-10x2" or "rgb224-64x4".</summary>
    [Params("mnist-10x2", "rgb224-64x4")]
    public string Shape { get; set; } = "";

    [GlobalSetup]
    public void Setup()
    {
        (int rows, int h, int w, int c) = Shape == "mnist-10x2" ? (20, 28, 28, 1) : (256, 224, 224, 3);
        _batch = BatchPool.Shared.Rent(DType.UInt8, [h, w, c], rows);
        new Random(1).NextBytes(_batch.XBytes); // benchmark filler only
        _memcpyDest = new byte[_batch.XBytes.Length];
        _pool = new TensorBatchPool();
        _pool.Convert(_batch).Dispose(); // warm: the pool now holds a tensor pair of this shape
        torch.set_num_threads(1);
    }

    [GlobalCleanup]
    public void Cleanup()
    {
        _pool.Dispose();
        _batch.Dispose();
    }

    [Benchmark(Baseline = true, Description = "memcpy of the batch bytes")]
    public void Memcpy() => _batch.XBytes.CopyTo(_memcpyDest);

    [Benchmark(Description = "fused copy into a pooled tensor")]
    public void Fused() => _pool.Convert(_batch).Dispose();

    [Benchmark(Description = "naive: torch.tensor(ToArray) + float + /255 + permute")]
    public void Naive()
    {
        using var scope = torch.NewDisposeScope();
        ReadOnlySpan<int> s = _batch.Shape;
        Tensor t = torch.tensor(_batch.ToArray<byte>(), [s[0], s[1], s[2], s[3]]);
        Tensor x = t.to(ScalarType.Float32).div(255f).permute(0, 3, 1, 2).contiguous();
        GC.KeepAlive(x);
    }
}
