namespace Samplers;

/// <summary>
/// Where a sampler's rows come from, behind one interface for the three backings: an in-memory table and a mapped
/// table hand out their planned rows as they are; a lazy table loads just the planned rows (from its cache, or by its
/// loader) and, with a preprocess or a ragged declared shape, makes a small table of them first. The sampler's batch
/// paths (<c>GenerateBatchAt</c>, <c>GenerateBatchInto</c>, <c>GetExamples</c>, <c>GetSlice</c>) all gather through
/// <see cref="View"/>, so none of them chooses a backing.
/// </summary>
internal sealed class RowSource(ExampleTable table, LazyExampleTable? lazy, IExamplePreprocessor? lazyPreprocess)
{
    // A lazy table of one declared shape without a preprocess: its loaded examples are copied straight into the batch
    // (every example was checked against the declared shape when it was loaded), with no table in between.
    private readonly int _directRowBytes = lazy is not null && lazyPreprocess is null && lazy.ExampleShape.IndexOf(-1) < 0
        ? checked((int)RowBytes(lazy.ExampleShape, lazy.DType)) : -1;

    private static long RowBytes(ReadOnlySpan<int> shape, DType dtype)
    {
        long elems = 1;
        foreach (int d in shape) elems *= d;
        return elems * DTypes.SizeOf(dtype);
    }

    /// <summary>The rows <paramref name="planned"/> (indices into the sampled table), ready to gather.</summary>
    public RowView View(ReadOnlySpan<int> planned)
    {
        if (lazy is null) return new RowView(table, planned, planned);
        if (_directRowBytes >= 0) return new RowView(lazy.LoadExamples(planned), _directRowBytes, table, planned);
        ExampleTable loaded = lazy.LoadRows(planned);
        if (lazyPreprocess is not null) loaded = Preprocessing.Apply(loaded, lazyPreprocess);
        int[] rows = new int[planned.Length];
        for (int i = 0; i < rows.Length; i++) rows[i] = i;
        return new RowView(loaded, rows, planned);
    }
}

/// <summary>Planned rows resolved to a table and indices into it (or to loaded examples of one shape);
/// <see cref="Measure"/> then <see cref="CopyTo"/>.</summary>
internal readonly ref struct RowView
{
    private readonly ExampleTable _table;
    private readonly ReadOnlySpan<int> _rows;
    private readonly ReadOnlySpan<int> _planned;
    private readonly LoadedExample[]? _loaded;
    private readonly int _rowBytes;

    /// <summary>Rows <paramref name="rows"/> of <paramref name="table"/>, planned as <paramref name="planned"/> (named in errors).</summary>
    public RowView(ExampleTable table, ReadOnlySpan<int> rows, ReadOnlySpan<int> planned)
    {
        _table = table; _rows = rows; _planned = planned; _loaded = null; _rowBytes = 0;
    }

    /// <summary>Examples of <paramref name="rowBytes"/> bytes each, in planned order; labels from <paramref name="labels"/>
    /// at the <paramref name="planned"/> rows.</summary>
    public RowView(LoadedExample[] loaded, int rowBytes, ExampleTable labels, ReadOnlySpan<int> planned)
    {
        _table = labels; _rows = planned; _planned = planned; _loaded = loaded; _rowBytes = rowBytes;
    }

    /// <summary>Writes the rows' common shape into <paramref name="shape"/> and returns the bytes they need together;
    /// ragged rows fail with a <see cref="RaggedBatchException"/> naming <paramref name="what"/> and the planned rows.</summary>
    public long Measure(Span<int> shape, BatchWhat what)
    {
        if (_loaded is null) return Gather.Measure(_table, _rows, shape, what, _planned);
        _table.ExampleShape.CopyTo(shape);
        return (long)_rowBytes * _loaded.Length;
    }

    /// <summary>Copies the rows back to back into <paramref name="x"/> and their labels into <paramref name="y"/>: the
    /// label of row i is <paramref name="labelOf"/>[<paramref name="ordinals"/>[i]] (its class's label, which is the
    /// table's label of that row: classes are groups of equal labels), read from a small array of the batch's classes
    /// instead of at the rows' scattered places in the table's labels.</summary>
    public void CopyTo(Span<byte> x, Span<long> y, ReadOnlySpan<int> ordinals, ReadOnlySpan<long> labelOf)
    {
        if (_loaded is null) Gather.Rows(_table, _rows, x);
        else CopyLoaded(_loaded, _rowBytes, x);
        for (int i = 0; i < _rows.Length; i++) y[i] = labelOf[ordinals[i]];
    }

    // Loaded examples sit wherever the heap put them, so the copy asks for a few rows ahead (small rows only: a longer
    // one is a stream the hardware prefetcher follows), as the table gather does.
    private static unsafe void CopyLoaded(LoadedExample[] loaded, int rowBytes, Span<byte> x)
    {
        const int Ahead = 4;
        bool prefetch = System.Runtime.Intrinsics.X86.Sse.IsSupported && rowBytes < Gather.PrefetchMaxRowBytes;
        for (int i = 0; i < loaded.Length; i++)
        {
            if (prefetch && i + Ahead < loaded.Length)
            {
                // A prefetch never faults, so an address the GC may move a moment later is harmless.
                byte* p = (byte*)System.Runtime.CompilerServices.Unsafe.AsPointer(ref System.Runtime.InteropServices.MemoryMarshal.GetArrayDataReference(loaded[i + Ahead].Data));
                for (int off = 0; off < rowBytes; off += 64) System.Runtime.Intrinsics.X86.Sse.Prefetch0(p + off);
            }
            loaded[i].Data.AsSpan(0, rowBytes).CopyTo(x.Slice(i * rowBytes, rowBytes));
        }
    }
}
