using Samplers.Core;
using TorchSharp;
using static TorchSharp.torch;

namespace Samplers.TorchSharp;

/// <summary>
/// A batch as tensors: <see cref="X"/> float32 (N, C, H, W) for images, <see cref="Y"/> int64 (N), with the plan's
/// identity. Rented from a <see cref="TensorBatchPool"/>; dispose it to hand its tensors back for reuse.
/// </summary>
/// <remarks>
/// <para>Lifetime rules. The tensors belong to this object until it is disposed; then they go back to the pool and the
/// next batch of the same shape is written into them, so anything that still reads them afterwards (a tensor you kept, an
/// autograd graph you did not run yet) would see other data. To keep a batch, keep the <see cref="TensorBatch"/> itself
/// without disposing it (it stays valid for as long as you hold it, and the pool makes new tensors instead), or clone the
/// tensor (<c>X.clone()</c>) before disposing. A batch that is never disposed is reclaimed by the garbage collector
/// (TorchSharp frees the native memory).</para>
/// <para>The tensors are outside every <see cref="DisposeScope"/> (a scope around a training step does not dispose them).
/// The <see cref="Batch"/> they were copied from went back to its pool as soon as the copy was done.</para>
/// </remarks>
public sealed class TensorBatch : IDisposable
{
    private readonly TensorBatchPool _owner;
    private Tensor _x;
    private Tensor _y;
    private readonly Tensor? _staging;   // CPU copy target when X lives on another device
    private int _rented;                 // 1 while a consumer holds it

    internal TensorBatch(TensorBatchPool owner, long[] xShape, long rows, Device device)
    {
        _owner = owner;
        XShape = xShape;
        bool cpu = device.type == DeviceType.CPU;
        // Made outside any dispose scope: the pool, not the caller's scope, owns them.
        _x = empty(xShape, ScalarType.Float32, device).DetachFromDisposeScope();
        _y = empty([rows], ScalarType.Int64, device).DetachFromDisposeScope();
        _staging = cpu ? null : empty(xShape, ScalarType.Float32, CPU).DetachFromDisposeScope();
    }

    /// <summary>The examples, float32, channels first for images.</summary>
    /// <exception cref="ObjectDisposedException">The batch was disposed (its tensors went back to the pool).</exception>
    public Tensor X { get { Check(); return _x; } }

    /// <summary>The labels, int64.</summary>
    /// <exception cref="ObjectDisposedException">The batch was disposed (its tensors went back to the pool).</exception>
    public Tensor Y { get { Check(); return _y; } }

    /// <summary>The (seed, epoch, batch id) the rows were planned with; default for slices.</summary>
    public PlanKey Key { get; private set; }

    /// <summary>The epoch-global batch id (-1 for slices).</summary>
    public int GlobalBatchId { get; private set; }

    /// <summary>Whether the sampler was in warmup when the batch was made.</summary>
    public bool IsWarmup { get; private set; }

    /// <summary>Rows in the batch.</summary>
    public int Count => (int)XShape[0];

    internal long[] XShape { get; }

    internal bool IsFree => Volatile.Read(ref _rented) == 0;

    /// <summary>Hands the tensors back to the pool (idempotent). Do not use them afterwards.</summary>
    public void Dispose()
    {
        if (Interlocked.Exchange(ref _rented, 0) == 1) _owner.Return(this);
    }

    internal void MarkRented() => Volatile.Write(ref _rented, 1);

    // The one copy: bytes -> float32 (scaled, CHW) straight into the tensor's storage (or the staging tensor).
    internal void Fill(Batch batch, float[] scale, float[] bias, bool channelsFirst)
    {
        Tensor target = _staging ?? _x;
        BatchCopy.ToFloat32(batch, System.Runtime.InteropServices.MemoryMarshal.Cast<byte, float>(target.bytes), scale, bias, channelsFirst);
        if (_staging is null) batch.Y.CopyTo(System.Runtime.InteropServices.MemoryMarshal.Cast<byte, long>(_y.bytes));
        else
        {
            using Tensor labels = tensor(batch.Y.ToArray(), ScalarType.Int64);
            _y.copy_(labels);
            _x.copy_(_staging);
        }
        Key = batch.Key;
        GlobalBatchId = batch.GlobalBatchId;
        IsWarmup = batch.IsWarmup;
    }

    internal void Free()
    {
        _x.Dispose();
        _y.Dispose();
        _staging?.Dispose();
    }

    private void Check()
    {
        if (Volatile.Read(ref _rented) == 0)
            throw new ObjectDisposedException(nameof(TensorBatch), "This tensor batch was disposed: its tensors went back to the pool and will hold another batch. Keep the TensorBatch undisposed, or clone the tensor before disposing.");
    }
}

/// <summary>
/// Converts batches into reusable tensors: <see cref="Convert"/> rents a <see cref="TensorBatch"/> of the right shape
/// (reusing returned ones, so a steady run allocates no tensors) and writes the batch into it with one fused copy.
/// Thread-safe (loader workers convert in parallel).
/// </summary>
public sealed class TensorBatchPool : IDisposable
{
    private readonly Stack<TensorBatch> _free = new();
    private readonly object _gate = new();
    private readonly Device _device;
    private readonly int _maxRetained;
    private readonly Dictionary<int, (float[] Scale, float[] Bias)> _affine = [];
    private long _created;
    private bool _disposed;

    /// <summary>A pool converting with <paramref name="conversion"/> (null: <see cref="TensorConversion.Default"/>), keeping up to
    /// <paramref name="maxRetained"/> returned batches.</summary>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="maxRetained"/> is less than 1.</exception>
    public TensorBatchPool(TensorConversion? conversion = null, int maxRetained = 16)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(maxRetained, 1);
        Conversion = conversion ?? TensorConversion.Default;
        _device = Conversion.Device ?? CPU;
        _maxRetained = maxRetained;
        BatchCopy.WarmUp(); // the first batch then finds the copy compiled and its threads started
    }

    /// <summary>The conversion applied.</summary>
    public TensorConversion Conversion { get; }

    /// <summary>Tensor batches created so far (a steady run stops creating them once the pool is warm).</summary>
    public long Created => Interlocked.Read(ref _created);

    /// <summary>Copies <paramref name="batch"/> into a rented <see cref="TensorBatch"/> (the batch itself is left to the caller).</summary>
    /// <exception cref="NotSupportedException">The batch's dtype is neither uint8 nor float32.</exception>
    /// <exception cref="ArgumentException">The conversion's Mean/Std do not fit the batch's channels.</exception>
    /// <exception cref="ObjectDisposedException">The pool was disposed.</exception>
    public TensorBatch Convert(Batch batch)
    {
        ReadOnlySpan<int> shape = batch.Shape;
        long[] xShape = BatchCopy.OutputShape(shape, Conversion.ChannelsFirst);
        int channels = shape.Length == 4 ? shape[3] : 1;
        (float[] scale, float[] bias) = AffineFor(channels);
        TensorBatch t = Rent(xShape);
        try
        {
            t.Fill(batch, scale, bias, Conversion.ChannelsFirst);
        }
        catch
        {
            t.Dispose();
            throw;
        }
        return t;
    }

    private (float[], float[]) AffineFor(int channels)
    {
        lock (_gate)
        {
            if (!_affine.TryGetValue(channels, out var a)) _affine[channels] = a = BatchCopy.Affine(Conversion, channels);
            return a;
        }
    }

    private TensorBatch Rent(long[] xShape)
    {
        TensorBatch? found = null;
        List<TensorBatch>? misfits = null;
        lock (_gate)
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            while (_free.Count > 0)
            {
                TensorBatch c = _free.Pop();
                if (c.XShape.AsSpan().SequenceEqual(xShape)) { found = c; break; }
                (misfits ??= []).Add(c);
            }
        }
        // Another shape (an augmenter that changes the batch size): free the misfits rather than keep every shape.
        if (misfits is not null) foreach (TensorBatch m in misfits) m.Free();
        if (found is null)
        {
            found = new TensorBatch(this, xShape, xShape[0], _device);
            Interlocked.Increment(ref _created);
        }
        found.MarkRented();
        return found;
    }

    internal void Return(TensorBatch t)
    {
        lock (_gate)
        {
            if (!_disposed && _free.Count < _maxRetained)
            {
                _free.Push(t);
                return;
            }
        }
        t.Free();
    }

    /// <summary>Frees the returned tensors; batches still rented stay valid until they are disposed (then they are freed).</summary>
    public void Dispose()
    {
        TensorBatch[] free;
        lock (_gate)
        {
            _disposed = true;
            free = _free.ToArray();
            _free.Clear();
        }
        foreach (TensorBatch t in free) t.Free();
    }
}
