
namespace Samplers;

/// <summary>
/// Reusable batch storage. A <see cref="Batch"/> rented here returns its storage on Dispose; storage is reused only
/// after that, so a batch still in use never shares buffers with another one.
/// </summary>
/// <remarks>
/// Buffers only grow, so once every batch shape was seen, renting allocates nothing. Batches that are never disposed
/// cost only speed (their storage is collected as garbage). Thread-safe.
/// </remarks>
public sealed class BatchPool
{
    private readonly BatchStorage?[] _free;
    private int _count;
    private readonly object _gate = new();

    /// <summary>A pool shared by default (e.g. for augmenters that build new batches).</summary>
    public static BatchPool Shared { get; } = new();

    /// <summary>Creates a pool that keeps up to <paramref name="maxRetained"/> returned storages.</summary>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="maxRetained"/> is less than 1.</exception>
    public BatchPool(int maxRetained = 64)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(maxRetained, 1);
        _free = new BatchStorage?[maxRetained];
    }

    /// <summary>Number of storages waiting to be reused.</summary>
    public int Available { get { lock (_gate) return _count; } }

    /// <summary>Rents a batch of <paramref name="rows"/> examples of <paramref name="exampleShape"/>; its contents are
    /// unspecified, <see cref="Batch.Indices"/> and <see cref="Batch.ClassOrdinals"/> are -1, <see cref="Batch.Y"/> is 0.</summary>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="rows"/> is negative or a dimension is negative.</exception>
    public Batch Rent(DType dtype, ReadOnlySpan<int> exampleShape, int rows)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(rows);
        long bytes = DTypes.SizeOf(dtype);
        foreach (int d in exampleShape)
        {
            if (d < 0) throw new ArgumentOutOfRangeException(nameof(exampleShape), $"exampleShape must have no negative dimension, but was [{string.Join(", ", exampleShape.ToArray())}].");
            bytes *= d;
        }
        BatchStorage s = RentStorage(dtype, rows);
        s.PrepareX(exampleShape, bytes * rows);
        s.Y.AsSpan(0, rows).Clear();
        s.Indices.AsSpan(0, rows).Fill(-1);
        s.Ordinals.AsSpan(0, rows).Fill(-1);
        return new Batch(s);
    }

    internal BatchStorage RentStorage(DType dtype, int rows)
    {
        BatchStorage? s = null;
        lock (_gate)
        {
            if (_count > 0)
            {
                s = _free[--_count];
                _free[_count] = null;
            }
        }
        s ??= new BatchStorage(this);
        s.PrepareRows(dtype, rows);
        return s;
    }

    internal void Return(BatchStorage s)
    {
        lock (_gate)
        {
            if (_count < _free.Length) _free[_count++] = s;
        }
    }
}
