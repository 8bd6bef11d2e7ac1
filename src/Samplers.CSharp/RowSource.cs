namespace Samplers;

/// <summary>
/// Where a sampler's rows come from, behind one interface for the three backings: an in-memory table and a mapped
/// table hand out their planned rows as they are; a lazy table loads (and preprocesses) just the planned rows into a
/// small table first. The sampler's batch paths (<c>GenerateBatchAt</c>, <c>GenerateBatchInto</c>, <c>GetExamples</c>,
/// <c>GetSlice</c>) all gather through <see cref="View"/>, so none of them chooses a backing.
/// </summary>
internal sealed class RowSource(ExampleTable table, LazyExampleTable? lazy, IExamplePreprocessor? lazyPreprocess)
{
    /// <summary>The rows <paramref name="planned"/> (indices into the sampled table), ready to gather.</summary>
    public RowView View(ReadOnlySpan<int> planned)
    {
        if (lazy is null) return new RowView(table, planned, planned);
        ExampleTable loaded = lazy.LoadRows(planned);
        if (lazyPreprocess is not null) loaded = Preprocessing.Apply(loaded, lazyPreprocess);
        int[] rows = new int[planned.Length];
        for (int i = 0; i < rows.Length; i++) rows[i] = i;
        return new RowView(loaded, rows, planned);
    }
}

/// <summary>Planned rows resolved to a table and indices into it; <see cref="Measure"/> then <see cref="CopyTo"/>.</summary>
internal readonly ref struct RowView(ExampleTable table, ReadOnlySpan<int> rows, ReadOnlySpan<int> planned)
{
    private readonly ReadOnlySpan<int> _rows = rows;
    private readonly ReadOnlySpan<int> _planned = planned;

    /// <summary>Writes the rows' common shape into <paramref name="shape"/> and returns the bytes they need together;
    /// ragged rows fail with a <see cref="RaggedBatchException"/> naming <paramref name="what"/> and the planned rows.</summary>
    public long Measure(Span<int> shape, BatchWhat what) => Gather.Measure(table, _rows, shape, what, _planned);

    /// <summary>Copies the rows back to back into <paramref name="x"/> (sized by <see cref="Measure"/>) and their labels into <paramref name="y"/>.</summary>
    public void CopyTo(Span<byte> x, Span<long> y)
    {
        Gather.Rows(table, _rows, x);
        Gather.Labels(table, _rows, y);
    }
}
