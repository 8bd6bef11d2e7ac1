using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace Samplers;

/// <summary>
/// The store of a dataset: examples of one dtype, one label per example, and optional TFDS ids. Two backings
/// (<see cref="Backing"/>): in memory, the examples sit in a few large byte chunks (no per-example objects); mapped,
/// they are read in place from a memory-mapped Parquet cache file (labels stay in memory). Fixed-shape examples sit at a
/// fixed stride; examples whose shapes vary ("ragged") carry their own shape and byte range (in memory only).
/// </summary>
/// <remarks>
/// Chunking keeps every array under the 2 GiB limit, so datasets larger than that work; an example never spans
/// two chunks. Immutable once built and safe to read from many threads. Build one with
/// <see cref="ExampleTableBuilder"/> or <see cref="From{T}(ReadOnlySpan{T}, ReadOnlySpan{int}, ReadOnlySpan{long})"/>;
/// open a mapped one with <see cref="Samplers.Cache.ParquetCache.TryLoadAsync(Samplers.Cache.CacheKey, Samplers.Cache.SourceFingerprint, TableBacking, Samplers.Cache.CacheExpectation?, IProgress{Samplers.Cache.CacheProgress}?, CancellationToken)"/>
/// (docs/MAPPED.md). A span from <see cref="GetExample(int)"/> of a mapped table points into the mapping: use it before
/// the table is disposed.
/// <para>Dispose a mapped table to release its mapping and file handle at once (a sampler disposes the tables it loaded or
/// made); an in-memory table holds only managed arrays, so its Dispose releases nothing and it stays readable.</para>
/// </remarks>
public sealed class ExampleTable : IDisposable
{
    /// <summary>Default size of one chunk: 1 GiB.</summary>
    public const long DefaultChunkBytes = 1L << 30;

    private readonly byte[][] _chunks;
    private readonly int[] _shape;
    private readonly long[] _labels;
    private readonly string?[]? _ids;
    private readonly IReadOnlyList<string> _classNames; // a string[] or an immutable NumberedClassNames
    // Fixed layout.
    private readonly int _stride;
    private readonly int _examplesPerChunk;
    private readonly byte[]? _single; // the one chunk of a fixed-layout table that has one (the usual case: chunks are 1 GiB)
    // Ragged layout: per example its chunk, offset, byte length and shape (Rank ints).
    private readonly int[]? _chunkOf;
    private readonly int[]? _offsetOf;
    private readonly int[]? _lengthOf;
    private readonly int[]? _shapes;
    // Mapped layout: rows read in place; ids read on first use.
    private readonly MappedRows? _mapped;
    private readonly Func<string?[]>? _loadIds;
    private string?[]? _lazyIds;

    internal ExampleTable(DType dtype, int[] shape, byte[][] chunks, int stride, int examplesPerChunk, long[] labels, string?[]? ids, IReadOnlyList<string> classNames)
    {
        DType = dtype; _shape = shape; _chunks = chunks; _stride = stride; _examplesPerChunk = examplesPerChunk;
        _labels = labels; _ids = ids; _classNames = classNames;
        if (chunks.Length == 1) _single = chunks[0];
    }

    internal ExampleTable(DType dtype, int[] shape, byte[][] chunks, int[] chunkOf, int[] offsetOf, int[] lengthOf, int[] shapes, long[] labels, string?[]? ids, IReadOnlyList<string> classNames)
    {
        DType = dtype; _shape = shape; _chunks = chunks; _stride = -1; _examplesPerChunk = 0;
        _chunkOf = chunkOf; _offsetOf = offsetOf; _lengthOf = lengthOf; _shapes = shapes;
        _labels = labels; _ids = ids; _classNames = classNames;
    }

    internal ExampleTable(DType dtype, int[] shape, MappedRows mapped, int stride, long[] labels, Func<string?[]>? loadIds, string[] classNames)
    {
        DType = dtype; _shape = shape; _chunks = []; _stride = stride; _examplesPerChunk = mapped.RowsPerSegment;
        _mapped = mapped; _loadIds = loadIds;
        _labels = labels; _classNames = classNames;
    }

    /// <summary>Where the example bytes live: in memory, or in a memory-mapped cache file.</summary>
    public TableBacking Backing => _mapped is null ? TableBacking.Memory : TableBacking.Mapped;

    /// <summary>The mapped cache file, or null for an in-memory table.</summary>
    public string? MappedPath => _mapped?.Path;

    internal MappedRows? Mapped => _mapped;

    /// <summary>Releases a mapped table's mapping and cache file handle now, rather than when the table is collected;
    /// afterwards reading its rows throws <see cref="ObjectDisposedException"/>. Nothing for an in-memory table.
    /// Safe to call more than once, and while another thread builds a batch (the unmapping waits for that copy).</summary>
    public void Dispose() => _mapped?.Dispose();

    /// <summary>Element type of every example.</summary>
    public DType DType { get; }

    /// <summary>Number of examples.</summary>
    public int Count => _labels.Length;

    /// <summary>True when example shapes vary (the declared shape has -1 dimensions).</summary>
    public bool IsRagged => _chunkOf is not null;

    /// <summary>The declared example shape (without the batch dimension); -1 marks a dimension that varies (ragged).</summary>
    public ReadOnlySpan<int> ExampleShape => _shape;

    /// <summary>Bytes of one example when the shape is fixed; -1 when ragged.</summary>
    public int ExampleBytes => _stride;

    /// <summary>Examples per chunk in the fixed layout (0 when ragged); for a mapped table, rows per data page when
    /// every page but the last holds the same number, else 0.</summary>
    public int ExamplesPerChunk => _examplesPerChunk;

    /// <summary>The label of every example (TFDS <c>ClassLabel</c> values are int64; -1 means "no label").</summary>
    public ReadOnlySpan<long> Labels => _labels;

    /// <summary>Class names, position = label; empty when unknown.</summary>
    public IReadOnlyList<string> ClassNames => _classNames;

    /// <summary>Every label with its name and number of examples, ascending by label. The name is the class name when
    /// the label indexes <see cref="ClassNames"/>, else the label as a number.</summary>
    public IReadOnlyList<ClassCount> ClassCounts()
    {
        var index = Samplers.Core.ClassIndex.Build(Labels);
        var counts = new ClassCount[index.ClassCount];
        for (int o = 0; o < counts.Length; o++)
        {
            long label = index.LabelOf(o);
            string name = label >= 0 && label < _classNames.Count ? _classNames[(int)label] : label.ToString(System.Globalization.CultureInfo.InvariantCulture);
            counts[o] = new ClassCount(label, name, index.CountOf(o));
        }
        return counts;
    }

    /// <summary>Whether TFDS ids (<c>shard__record</c>) were recorded.</summary>
    public bool HasIds => _ids is not null || _loadIds is not null;

    /// <summary>Total bytes of example data (the decoded payload).</summary>
    public long PayloadBytes
    {
        get
        {
            if (!IsRagged) return (long)_stride * Count;
            long n = 0;
            foreach (int l in _lengthOf!) n += l;
            return n;
        }
    }

    /// <summary>Number of backing chunks (for a mapped table, data pages).</summary>
    public int ChunkCount => _mapped?.SegmentCount ?? _chunks.Length;

    /// <summary>The TFDS id of example <paramref name="index"/> (e.g. <c>mnist-train.tfrecord-00000-of-00001__7</c>), or null when not recorded.</summary>
    public string? GetId(int index)
    {
        CheckIndex(index);
        if (_loadIds is not null)
        {
            string?[] ids = Volatile.Read(ref _lazyIds) ?? Interlocked.CompareExchange(ref _lazyIds, _loadIds(), null) ?? _lazyIds!;
            return ids[index];
        }
        return _ids?[index];
    }

    /// <summary>Tells the OS that <paramref name="rows"/> will be read soon, so a mapped table's pages are read ahead
    /// (<c>madvise(MADV_WILLNEED)</c> on Linux and macOS); nothing for an in-memory table. Indices outside [0, Count) are ignored.</summary>
    /// <remarks>Cheap and asynchronous: it returns before the reads complete. The sampler calls it for the batches
    /// <see cref="SamplerOptions.ReadAheadBatches"/> ahead; loaders that know their upcoming plans may call it too.</remarks>
    public void PrefetchRows(ReadOnlySpan<int> rows)
    {
        if (_mapped is null) return;
        _mapped.Prefetch(rows, _labels.Length);
        GC.KeepAlive(this);
    }

    /// <summary>The bytes of example <paramref name="index"/>, row-major, little-endian elements.</summary>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="index"/> is outside [0, Count).</exception>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public ReadOnlySpan<byte> GetExample(int index)
    {
        CheckIndex(index);
        if (_single is not null) return new ReadOnlySpan<byte>(_single, index * _stride, _stride);
        if (_mapped is not null) return _mapped.Row(index);
        if (_chunkOf is null)
        {
            int chunk = index / _examplesPerChunk;
            int offset = (index - chunk * _examplesPerChunk) * _stride;
            return new ReadOnlySpan<byte>(_chunks[chunk], offset, _stride);
        }
        return new ReadOnlySpan<byte>(_chunks[_chunkOf[index]], _offsetOf![index], _lengthOf![index]);
    }

    /// <summary>The first byte of row <paramref name="index"/> of a fixed-shape table (<see cref="ExampleBytes"/> bytes
    /// follow): the gather's per-row lookup, one range check and, for a one-chunk table, one multiply. A mapped table's
    /// rows only inside its gather's <see cref="MappedRows.Enter"/> and <see cref="MappedRows.Exit"/>.</summary>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="index"/> is outside [0, Count).</exception>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal ref byte RowRef(int index)
    {
        CheckIndex(index);
        if (_single is not null) return ref Unsafe.Add(ref MemoryMarshal.GetArrayDataReference(_single), (nint)index * _stride);
        if (_mapped is not null) return ref _mapped.RowRef(index);
        int chunk = index / _examplesPerChunk;
        return ref Unsafe.Add(ref MemoryMarshal.GetArrayDataReference(_chunks[chunk]), (nint)(index - chunk * _examplesPerChunk) * _stride);
    }

    /// <summary>Writes each row's byte offset from one base into <paramref name="offsets"/> and returns that base, for a
    /// fixed-shape table whose rows all have one (one chunk, or mapped); <paramref name="one"/> is false otherwise (and
    /// nothing is written). A mapped table's base only inside its gather's <see cref="MappedRows.Enter"/> and
    /// <see cref="MappedRows.Exit"/>.</summary>
    /// <exception cref="ArgumentOutOfRangeException">An index is outside [0, Count).</exception>
    internal ref byte RowOffsets(ReadOnlySpan<int> indices, Span<nint> offsets, out bool one)
    {
        if (_single is not null)
        {
            for (int i = 0; i < indices.Length; i++)
            {
                int r = indices[i];
                CheckIndex(r);
                offsets[i] = (nint)r * _stride;
            }
            one = true;
            return ref MemoryMarshal.GetArrayDataReference(_single);
        }
        if (_mapped is not null)
        {
            for (int i = 0; i < indices.Length; i++)
            {
                int r = indices[i];
                CheckIndex(r);
                offsets[i] = _mapped.Offset(r);
            }
            one = true;
            return ref _mapped.Origin;
        }
        one = false;
        return ref Unsafe.NullRef<byte>();
    }

    /// <summary>Example <paramref name="index"/> viewed as elements of <typeparamref name="T"/> (its size must match <see cref="DType"/>).</summary>
    public ReadOnlySpan<T> GetExample<T>(int index) where T : unmanaged
    {
        if (Unsafe.SizeOf<T>() != DTypes.SizeOf(DType))
            throw new ArgumentException($"Element type {typeof(T).Name} ({Unsafe.SizeOf<T>()} bytes) does not match the table dtype {DTypes.Name(DType)} ({DTypes.SizeOf(DType)} bytes).", nameof(T));
        return MemoryMarshal.Cast<byte, T>(GetExample(index));
    }

    /// <summary>The shape of example <paramref name="index"/> (equals <see cref="ExampleShape"/> unless ragged).</summary>
    public ReadOnlySpan<int> GetShape(int index)
    {
        CheckIndex(index);
        if (_shapes is null) return _shape;
        return new ReadOnlySpan<int>(_shapes, index * _shape.Length, _shape.Length);
    }

    /// <summary>Creates a fixed-shape table from data the caller already has (copied once).</summary>
    /// <param name="data">All examples back to back, row-major; length = count × product(shape).</param>
    /// <param name="shape">The shape of one example (no -1).</param>
    /// <param name="labels">One label per example.</param>
    /// <exception cref="ArgumentException">Lengths do not agree with the shape, or the element type is not a supported dtype.</exception>
    public static ExampleTable From<T>(ReadOnlySpan<T> data, ReadOnlySpan<int> shape, ReadOnlySpan<long> labels) where T : unmanaged
    {
        DType dtype = DTypeOf<T>();
        long elems = 1;
        foreach (int d in shape)
        {
            if (d < 0) throw new ArgumentException($"shape must be fixed (no negative dimensions), but was [{string.Join(", ", shape.ToArray())}].", nameof(shape));
            elems *= d;
        }
        if ((long)data.Length != elems * labels.Length)
            throw new ArgumentException($"data has {data.Length} elements, but {labels.Length} examples of shape [{string.Join(", ", shape.ToArray())}] need {elems * labels.Length}.", nameof(data));
        var b = ExampleTableBuilder.Fixed(dtype, shape, labels.Length);
        ReadOnlySpan<byte> bytes = MemoryMarshal.AsBytes(data);
        int stride = checked((int)(elems * Unsafe.SizeOf<T>()));
        for (int i = 0; i < labels.Length; i++)
        {
            bytes.Slice(i * stride, stride).CopyTo(b.Slot(i));
            b.SetLabel(i, labels[i]);
        }
        return b.Build();
    }

    /// <summary>The dtype matching a .NET element type.</summary>
    /// <exception cref="ArgumentException">The type has no dtype.</exception>
    public static DType DTypeOf<T>() where T : unmanaged
    {
        if (typeof(T) == typeof(byte)) return DType.UInt8;
        if (typeof(T) == typeof(sbyte)) return DType.Int8;
        if (typeof(T) == typeof(ushort)) return DType.UInt16;
        if (typeof(T) == typeof(short)) return DType.Int16;
        if (typeof(T) == typeof(uint)) return DType.UInt32;
        if (typeof(T) == typeof(int)) return DType.Int32;
        if (typeof(T) == typeof(ulong)) return DType.UInt64;
        if (typeof(T) == typeof(long)) return DType.Int64;
        if (typeof(T) == typeof(Half)) return DType.Float16;
        if (typeof(T) == typeof(float)) return DType.Float32;
        if (typeof(T) == typeof(double)) return DType.Float64;
        if (typeof(T) == typeof(bool)) return DType.Bool;
        throw new ArgumentException($"{typeof(T).Name} is not a supported element type; use byte, sbyte, ushort, short, uint, int, ulong, long, Half, float, double or bool.", nameof(T));
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private void CheckIndex(int index)
    {
        if ((uint)index >= (uint)_labels.Length) ThrowIndex(index);
    }

    private void ThrowIndex(int index) =>
        throw new ArgumentOutOfRangeException(nameof(index), index, $"index must be in [0, {Count}), but was {index}.");
}

/// <summary>One class of a table: its label, name and number of examples (<see cref="ExampleTable.ClassCounts"/>).</summary>
/// <param name="Label">The label value.</param>
/// <param name="Name">The class name, or the label as a number when the table names no class for it.</param>
/// <param name="Count">Examples with this label.</param>
public sealed record ClassCount(long Label, string Name, int Count);

/// <summary>
/// Fills an <see cref="ExampleTable"/>. Fixed shapes: every slot is preallocated and distinct slots may be written
/// from many threads at once. Ragged: <see cref="AllocateRagged"/> is thread-safe too.
/// </summary>
public sealed class ExampleTableBuilder
{
    private readonly DType _dtype;
    private readonly int[] _shape;
    private readonly long _chunkBytes;
    private readonly long[] _labels;
    private string?[]? _ids;
    private readonly List<byte[]> _chunks = new();
    // Fixed.
    private readonly int _stride;
    private readonly int _examplesPerChunk;
    private readonly byte[]?[]? _fixedChunks; // allocated on first use
    // Ragged.
    private readonly int[]? _chunkOf, _offsetOf, _lengthOf, _shapes;
    private readonly object _gate = new();
    private int _cursor; // fill of the last ragged chunk

    private ExampleTableBuilder(DType dtype, int[] shape, int count, long chunkBytes, bool ragged)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(count);
        ArgumentOutOfRangeException.ThrowIfLessThan(chunkBytes, 1L);
        if (chunkBytes > Array.MaxLength) chunkBytes = Array.MaxLength;
        _dtype = dtype; _shape = shape; _chunkBytes = chunkBytes; _labels = new long[count];
        int size = DTypes.SizeOf(dtype);
        if (!ragged)
        {
            long stride = size;
            foreach (int d in shape) stride *= d;
            if (stride > chunkBytes) throw new ArgumentException($"One example ({stride} bytes) is larger than a chunk ({chunkBytes} bytes).", nameof(chunkBytes));
            _stride = (int)stride;
            _examplesPerChunk = stride == 0 ? Math.Max(1, count) : (int)Math.Min(int.MaxValue, chunkBytes / stride);
            if (_examplesPerChunk == 0) _examplesPerChunk = 1;
            // Chunks are allocated when a slot in them is first asked for, not here: the count may come from
            // untrusted metadata, and memory should follow the examples actually written.
            _fixedChunks = new byte[]?[count == 0 ? 0 : (int)((count + (long)_examplesPerChunk - 1) / _examplesPerChunk)];
        }
        else
        {
            _stride = -1;
            _chunkOf = new int[count]; _offsetOf = new int[count]; _lengthOf = new int[count];
            Array.Fill(_chunkOf, -1);
            _shapes = new int[count * shape.Length];
        }
    }

    /// <summary>A builder for <paramref name="count"/> examples of a fixed <paramref name="shape"/>.</summary>
    /// <exception cref="ArgumentException">The shape has a negative dimension.</exception>
    public static ExampleTableBuilder Fixed(DType dtype, ReadOnlySpan<int> shape, int count, long chunkBytes = ExampleTable.DefaultChunkBytes)
    {
        foreach (int d in shape)
            if (d < 0) throw new ArgumentException($"A fixed shape cannot have negative dimensions: [{string.Join(", ", shape.ToArray())}]; use Ragged.", nameof(shape));
        return new ExampleTableBuilder(dtype, shape.ToArray(), count, chunkBytes, ragged: false);
    }

    /// <summary>A builder for <paramref name="count"/> examples whose shapes vary; <paramref name="declaredShape"/> has -1 where they do.</summary>
    public static ExampleTableBuilder Ragged(DType dtype, ReadOnlySpan<int> declaredShape, int count, long chunkBytes = ExampleTable.DefaultChunkBytes) =>
        new(dtype, declaredShape.ToArray(), count, chunkBytes, ragged: true);

    /// <summary>Number of examples.</summary>
    public int Count => _labels.Length;

    /// <summary>True for the ragged layout.</summary>
    public bool IsRagged => _chunkOf is not null;

    /// <summary>Bytes of one example (fixed layout); -1 when ragged.</summary>
    public int ExampleBytes => _stride;

    /// <summary>Class names (position = label) to carry into the table.</summary>
    public IReadOnlyList<string> ClassNames { get; set; } = Array.Empty<string>();

    /// <summary>The writable bytes of example <paramref name="index"/> (fixed layout).</summary>
    public Span<byte> Slot(int index)
    {
        if (IsRagged) throw new InvalidOperationException("Slot is for fixed shapes; call AllocateRagged on a ragged builder.");
        if ((uint)index >= (uint)_labels.Length) throw new ArgumentOutOfRangeException(nameof(index), index, $"index must be in [0, {Count}).");
        int chunk = index / _examplesPerChunk;
        byte[] bytes = _fixedChunks![chunk] ?? AllocateFixedChunk(chunk);
        return new Span<byte>(bytes, (index - chunk * _examplesPerChunk) * _stride, _stride);
    }

    private byte[] AllocateFixedChunk(int chunk)
    {
        long first = (long)chunk * _examplesPerChunk;
        long n = Math.Min(_labels.Length - first, _examplesPerChunk);
        var fresh = GC.AllocateUninitializedArray<byte>(checked((int)(n * _stride)));
        // Another thread may have allocated it meanwhile; keep whichever landed first.
        return Interlocked.CompareExchange(ref _fixedChunks![chunk], fresh, null) ?? fresh;
    }

    /// <summary>Reserves the bytes of ragged example <paramref name="index"/> with the given <paramref name="shape"/>; thread-safe. Each index once.</summary>
    /// <exception cref="ArgumentException">The shape's rank or a fixed dimension disagrees with the declared shape.</exception>
    public Span<byte> AllocateRagged(int index, ReadOnlySpan<int> shape)
    {
        if (!IsRagged) throw new InvalidOperationException("AllocateRagged is for ragged builders; call Slot on a fixed one.");
        if ((uint)index >= (uint)_labels.Length) throw new ArgumentOutOfRangeException(nameof(index), index, $"index must be in [0, {Count}).");
        if (shape.Length != _shape.Length)
            throw new ArgumentException($"Example {index} has rank {shape.Length}, the declared shape [{string.Join(", ", _shape)}] has rank {_shape.Length}.", nameof(shape));
        long bytes = DTypes.SizeOf(_dtype);
        for (int d = 0; d < shape.Length; d++)
        {
            if (shape[d] < 0 || (_shape[d] >= 0 && _shape[d] != shape[d]))
                throw new ArgumentException($"Example {index} has shape [{string.Join(", ", shape.ToArray())}], which does not fit the declared shape [{string.Join(", ", _shape)}].", nameof(shape));
            bytes *= shape[d];
        }
        if (bytes > Array.MaxLength) throw new ArgumentException($"Example {index} ({bytes} bytes) exceeds the largest array.", nameof(shape));
        int len = (int)bytes;
        lock (_gate)
        {
            if (_chunkOf![index] >= 0) throw new InvalidOperationException($"Example {index} was already allocated.");
            byte[]? last = _chunks.Count > 0 ? _chunks[^1] : null;
            if (last is null || last.Length - _cursor < len)
            {
                // Grow geometrically up to the chunk size, so small datasets do not reserve a whole chunk.
                long next = last is null ? Math.Min(1 << 20, _chunkBytes) : Math.Min(_chunkBytes, (long)last.Length * 2);
                next = Math.Max(next, len);
                last = GC.AllocateUninitializedArray<byte>((int)Math.Min(next, Array.MaxLength));
                _chunks.Add(last);
                _cursor = 0;
            }
            _chunkOf[index] = _chunks.Count - 1;
            _offsetOf![index] = _cursor;
            _lengthOf![index] = len;
            shape.CopyTo(new Span<int>(_shapes!, index * _shape.Length, _shape.Length));
            var span = new Span<byte>(last, _cursor, len);
            _cursor += len;
            return span;
        }
    }

    /// <summary>Sets the label of example <paramref name="index"/>.</summary>
    public void SetLabel(int index, long label) => _labels[index] = label;

    /// <summary>Sets the TFDS id of example <paramref name="index"/>.</summary>
    public void SetId(int index, string id)
    {
        if (_ids is null) Interlocked.CompareExchange(ref _ids, new string?[_labels.Length], null);
        _ids[index] = id;
    }

    /// <summary>Finishes the table. The builder must not be used afterwards.</summary>
    /// <exception cref="InvalidOperationException">A ragged example was never allocated.</exception>
    public ExampleTable Build()
    {
        // Numbered names stay lazy (immutable); any other list is copied so later changes cannot reach the table.
        IReadOnlyList<string> names = ClassNames is NumberedClassNames numbered ? numbered : ClassNames.ToArray();
        if (!IsRagged)
        {
            for (int c = 0; c < _fixedChunks!.Length; c++)
                if (_fixedChunks[c] is null) AllocateFixedChunk(c);
            return new ExampleTable(_dtype, _shape, _fixedChunks.Select(c => c!).ToArray(), _stride, _examplesPerChunk, _labels, _ids, names);
        }
        int missing = Array.IndexOf(_chunkOf!, -1);
        if (missing >= 0) throw new InvalidOperationException($"Ragged example {missing} was never allocated.");
        return new ExampleTable(_dtype, _shape, _chunks.ToArray(), _chunkOf!, _offsetOf!, _lengthOf!, _shapes!, _labels, _ids, names);
    }
}

/// <summary>Where an <see cref="ExampleTable"/> keeps its example bytes, and which one a loader should make.</summary>
public enum TableBacking
{
    /// <summary>Loaders choose: mapped when a cache file exists and the data is fixed-shape (and no preprocess without a
    /// declared identity must run), else in memory (docs/MAPPED.md).</summary>
    Auto = 0,
    /// <summary>Every example in the process's own memory.</summary>
    Memory = 1,
    /// <summary>Examples read in place from the memory-mapped Parquet cache file; labels in memory.</summary>
    Mapped = 2,
}
