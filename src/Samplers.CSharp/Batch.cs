using System.Numerics.Tensors;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using Samplers.Core;

namespace Samplers;

/// <summary>
/// One batch: contiguous examples X (the dtype of the data) of shape [rows, ...example shape], their labels Y (int64),
/// and the plan they came from (the source row and the class ordinal of each row, the key). Dispose it to return its
/// buffers to the pool.
/// </summary>
/// <remarks>
/// A small handle (no allocation per batch) over pooled storage. Dispose is idempotent, also through copies of the
/// handle: only the first Dispose returns the storage, and every member of a disposed handle throws
/// <see cref="ObjectDisposedException"/>, so a stale handle can never read or write a batch that someone else now holds.
/// The default value is an empty, already-disposed handle.
/// </remarks>
public readonly struct Batch : IDisposable, IEquatable<Batch>
{
    private readonly BatchStorage? _storage;
    private readonly int _generation;

    internal Batch(BatchStorage storage)
    {
        _storage = storage;
        _generation = storage.Generation;
    }

    private BatchStorage S
    {
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        get
        {
            BatchStorage? s = _storage;
            if (s is null || Volatile.Read(ref s.Generation) != _generation) ThrowDisposed();
            return s!;
        }
    }

    private static void ThrowDisposed() =>
        throw new ObjectDisposedException(nameof(Batch), "This batch was disposed (its buffers went back to the pool); take data out of a batch before disposing it.");

    internal BatchStorage Storage => S;

    /// <summary>True once this batch was disposed (or for the default value).</summary>
    public bool IsDisposed => _storage is null || Volatile.Read(ref _storage.Generation) != _generation;

    /// <summary>Element type of <see cref="X{T}"/>.</summary>
    public DType DType => S.DType;

    /// <summary>Number of rows (examples).</summary>
    public int Count => S.Rows;

    /// <summary>The shape of X: [Count, ...ExampleShape].</summary>
    public ReadOnlySpan<int> Shape => new(S.Shape, 0, S.Rank);

    /// <summary>The shape of one example.</summary>
    public ReadOnlySpan<int> ExampleShape => new(S.Shape, 1, S.Rank - 1);

    /// <summary>X as raw bytes, row-major, little-endian elements.</summary>
    public Span<byte> XBytes => new(S.X, 0, S.XBytes);

    /// <summary>X as raw bytes, for APIs that keep memory (valid until Dispose).</summary>
    public Memory<byte> XMemory => new(S.X, 0, S.XBytes);

    /// <summary>X as elements of <typeparamref name="T"/>, which must be the .NET type of <see cref="DType"/>.</summary>
    /// <exception cref="ArgumentException"><typeparamref name="T"/> does not match <see cref="DType"/>.</exception>
    public Span<T> X<T>() where T : unmanaged
    {
        BatchStorage s = S;
        CheckType<T>(s.DType);
        return MemoryMarshal.Cast<byte, T>(new Span<byte>(s.X, 0, s.XBytes));
    }

    /// <summary>X as a <see cref="TensorSpan{T}"/> of shape <see cref="Shape"/> over the batch's own buffer (no copy; valid until Dispose).</summary>
    /// <exception cref="ArgumentException"><typeparamref name="T"/> does not match <see cref="DType"/>.</exception>
    public TensorSpan<T> AsTensorSpan<T>() where T : unmanaged
    {
        Span<T> x = X<T>();
        BatchStorage s = S;
        Span<nint> lengths = stackalloc nint[s.Rank];
        for (int i = 0; i < s.Rank; i++) lengths[i] = s.Shape[i];
        return new TensorSpan<T>(x, lengths, []);
    }

    /// <summary>The labels Y, one per row (writable, e.g. by an augmenter).</summary>
    public Span<long> Y => new(S.Y, 0, S.Rows);

    /// <summary>Row i holds example <c>Indices[i]</c> of the source table (-1 for rows an augmenter made up).</summary>
    public Span<int> Indices => new(S.Indices, 0, S.Rows);

    /// <summary>The class ordinal (position in <see cref="MultiShotMemorySampler.ClassList"/>) of each row (-1 when unknown).</summary>
    public Span<int> ClassOrdinals => new(S.Ordinals, 0, S.Rows);

    /// <summary>The key (seed, epoch, rank-local batch id) of the plan this batch came from; default for slices.</summary>
    public PlanKey Key => S.Key;

    /// <summary>The epoch-global batch id of the plan; -1 for slices and batches built by hand.</summary>
    public int GlobalBatchId => S.GlobalBatchId;

    /// <summary>The plan algorithm version the rows were chosen with (<see cref="Planner.PlanVersion"/>).</summary>
    public int PlanVersion => S.PlanVersion;

    /// <summary>Whether the sampler was in warmup when the batch was made (what the augmenter was told).</summary>
    public bool IsWarmup => S.IsWarmup;

    /// <summary>Copies X into a new array of <typeparamref name="T"/> (allocates; for tests and small tools).</summary>
    public T[] ToArray<T>() where T : unmanaged => X<T>().ToArray();

    /// <summary>Returns the buffers to the pool. Idempotent; later use of this handle throws <see cref="ObjectDisposedException"/>.</summary>
    public void Dispose()
    {
        BatchStorage? s = _storage;
        if (s is null) return;
        // Only the handle whose generation still matches wins; a second Dispose (or a copy's) sees a new generation.
        if (Interlocked.CompareExchange(ref s.Generation, _generation + 1, _generation) == _generation)
            s.Owner.Return(s);
    }

    /// <summary>True when both handles refer to the same rental.</summary>
    public bool Equals(Batch other) => ReferenceEquals(_storage, other._storage) && _generation == other._generation;

    /// <inheritdoc/>
    public override bool Equals(object? obj) => obj is Batch b && Equals(b);

    /// <inheritdoc/>
    public override int GetHashCode() => RuntimeHelpers.GetHashCode(_storage) ^ _generation;

    /// <summary>True when both handles refer to the same rental.</summary>
    public static bool operator ==(Batch left, Batch right) => left.Equals(right);

    /// <summary>False when both handles refer to the same rental.</summary>
    public static bool operator !=(Batch left, Batch right) => !left.Equals(right);

    /// <inheritdoc/>
    public override string ToString() =>
        IsDisposed ? "Batch (disposed)" : $"Batch [{string.Join(", ", Shape.ToArray())}] {DTypes.Name(DType)}, global batch {GlobalBatchId}";

    internal static void CheckType<T>(DType dtype) where T : unmanaged
    {
        if (!Matches<T>(dtype))
            throw new ArgumentException($"Element type {typeof(T).Name} does not match the data's dtype {DTypes.Name(dtype)}; use {ClrName(dtype)}.", nameof(T));
    }

    internal static bool Matches<T>(DType dtype) where T : unmanaged =>
        dtype switch
        {
            DType.UInt8 or DType.Bytes => typeof(T) == typeof(byte),
            DType.Int8 => typeof(T) == typeof(sbyte),
            DType.UInt16 => typeof(T) == typeof(ushort),
            DType.Int16 => typeof(T) == typeof(short),
            DType.UInt32 => typeof(T) == typeof(uint),
            DType.Int32 => typeof(T) == typeof(int),
            DType.UInt64 => typeof(T) == typeof(ulong),
            DType.Int64 => typeof(T) == typeof(long),
            DType.Float16 => typeof(T) == typeof(Half),
            DType.Float32 => typeof(T) == typeof(float),
            DType.Float64 => typeof(T) == typeof(double),
            DType.Bool => typeof(T) == typeof(bool) || typeof(T) == typeof(byte),
            _ => false,
        };

    private static string ClrName(DType dtype) => dtype switch
    {
        DType.UInt8 or DType.Bytes => "byte",
        DType.Int8 => "sbyte",
        DType.UInt16 => "ushort",
        DType.Int16 => "short",
        DType.UInt32 => "uint",
        DType.Int32 => "int",
        DType.UInt64 => "ulong",
        DType.Int64 => "long",
        DType.Float16 => "Half",
        DType.Float32 => "float",
        DType.Float64 => "double",
        DType.Bool => "bool",
        _ => dtype.ToString(),
    };
}

/// <summary>The reusable storage behind <see cref="Batch"/> handles. Generation changes on every return.</summary>
internal sealed class BatchStorage
{
    internal BatchStorage(BatchPool owner) => Owner = owner;

    internal readonly BatchPool Owner;
    internal int Generation;
    internal byte[] X = [];
    internal long[] Y = [];
    internal int[] Indices = [];
    internal int[] Ordinals = [];
    internal int[] Shape = new int[8];
    internal int Rank;
    internal int Rows;
    internal int XBytes;
    internal DType DType;
    internal PlanKey Key;
    internal int GlobalBatchId;
    internal int PlanVersion;
    internal bool IsWarmup;

    /// <summary>Starts a rental of <paramref name="rows"/> rows: room for the plan arrays; grows only (steady state allocates nothing).</summary>
    internal void PrepareRows(DType dtype, int rows)
    {
        if (Y.Length < rows) { Y = new long[rows]; Indices = new int[rows]; Ordinals = new int[rows]; }
        Rows = rows;
        DType = dtype;
        Rank = 1;
        Shape[0] = rows;
        XBytes = 0;
        Key = default;
        GlobalBatchId = -1;
        PlanVersion = Planner.PlanVersion;
        IsWarmup = false;
    }

    /// <summary>Sets the example shape and makes room for <paramref name="xBytes"/> bytes of X; grows only.</summary>
    internal void PrepareX(ReadOnlySpan<int> exampleShape, long xBytes)
    {
        if (xBytes > Array.MaxLength)
            throw new ArgumentOutOfRangeException(nameof(xBytes), xBytes, $"A batch of {Rows} rows needs {xBytes} bytes, more than the largest array ({Array.MaxLength}); use fewer classes or examples per batch.");
        if (X.Length < xBytes) X = GC.AllocateUninitializedArray<byte>((int)xBytes);
        if (Shape.Length < exampleShape.Length + 1) Shape = new int[exampleShape.Length + 1];
        Shape[0] = Rows;
        exampleShape.CopyTo(Shape.AsSpan(1));
        Rank = exampleShape.Length + 1;
        XBytes = (int)xBytes;
    }
}
