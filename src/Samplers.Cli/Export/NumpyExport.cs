using Samplers.Core;

namespace Samplers.Cli.Export;

/// <summary>Where and how <see cref="NumpyExport.Write"/> writes.</summary>
internal sealed record NumpyExportOptions
{
    /// <summary>Rows of the table to write, in this order (repeats allowed, e.g. the rows of planned batches); null writes every row.</summary>
    public IReadOnlyList<int>? Rows { get; init; }

    /// <summary>True writes a folder of <c>.npy</c> files (<c>x.npy</c>, <c>y.npy</c>, ...); false one <c>.npz</c> archive.</summary>
    public bool Folder { get; init; }

    /// <summary>Deflate the <c>.npz</c> members (as <c>np.savez_compressed</c>).</summary>
    public bool Compress { get; init; }

    /// <summary>More 1-D int64 arrays, one value per written row (e.g. <c>index</c>, <c>batch</c>).</summary>
    public IReadOnlyDictionary<string, long[]>? Extra { get; init; }
}

/// <summary>
/// Writes decoded examples to NumPy files for Python tools: <c>x</c> (shape [n, ...example shape], the table's dtype),
/// <c>y</c> (int64 labels), <c>id</c> (TFDS ids, NumPy unicode; only when the table has ids) and any extra arrays.
/// </summary>
/// <remarks>Load in Python with <c>np.load("out.npz")["x"]</c>, or <c>np.load("out/x.npy")</c> for a folder.</remarks>
internal static class NumpyExport
{
    /// <summary>Options that write the rows <paramref name="sampler"/> draws from (its class list and per-class selection
    /// applied) in ascending row order; the other settings come from <paramref name="options"/>.</summary>
    public static NumpyExportOptions SamplerRows(MultiShotMemorySampler sampler, NumpyExportOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(sampler);
        return (options ?? new NumpyExportOptions()) with { Rows = sampler.ClassIndex.AllExamples() };
    }

    /// <summary>Options that write the rows of the planned batches [<paramref name="startBatch"/>, <paramref name="endBatch"/>)
    /// of <paramref name="epoch"/> in plan order, with the extra arrays <c>index</c> (source row), <c>batch</c> and <c>epoch</c>;
    /// the other settings come from <paramref name="options"/>.</summary>
    /// <exception cref="ArgumentOutOfRangeException">A negative epoch, or a batch range outside [0, sampler.Count].</exception>
    public static NumpyExportOptions PlannedBatches(MultiShotMemorySampler sampler, int epoch, int startBatch, int endBatch, NumpyExportOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(sampler);
        ArgumentOutOfRangeException.ThrowIfNegative(epoch);
        ArgumentOutOfRangeException.ThrowIfNegative(startBatch);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(endBatch, sampler.Count);
        ArgumentOutOfRangeException.ThrowIfLessThan(endBatch, startBatch);
        var rows = new List<int>();
        var batch = new List<long>();
        for (int b = startBatch; b < endBatch; b++)
        {
            var plan = sampler.Planner.Plan(new PlanKey(sampler.Seed, epoch, b));
            foreach (int i in plan.Indices.Span) { rows.Add(i); batch.Add(b); }
        }
        return (options ?? new NumpyExportOptions()) with
        {
            Rows = rows,
            Extra = new Dictionary<string, long[]>
            {
                ["index"] = rows.Select(i => (long)i).ToArray(), ["batch"] = batch.ToArray(), ["epoch"] = Enumerable.Repeat((long)epoch, rows.Count).ToArray(),
            },
        };
    }

    /// <summary>Writes the arrays and returns the member names written (without <c>.npy</c>).</summary>
    /// <exception cref="ArgumentOutOfRangeException">A row is outside [0, table.Count).</exception>
    /// <exception cref="ArgumentException">An extra array's length differs from the row count, or its name clashes with x, y or id; the dtype has no NumPy form.</exception>
    /// <exception cref="DataFormatException">The rows written have different shapes (a ragged table whose rows differ): they cannot form one array.</exception>
    /// <remarks><paramref name="path"/> may be a regular file (replaced atomically through a temporary file), a symbolic
    /// link (its target is replaced the same way; the link stays), or a FIFO or character device such as <c>/dev/stdout</c>
    /// (written directly, never replaced). A failed or cancelled export leaves no temporary file.</remarks>
    /// <exception cref="OperationCanceledException"><paramref name="cancellationToken"/> was cancelled (checked every 256 rows).</exception>
    public static IReadOnlyList<string> Write(ExampleTable table, string path, NumpyExportOptions? options = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(table);
        ArgumentException.ThrowIfNullOrEmpty(path);
        options ??= new NumpyExportOptions();
        int n = options.Rows?.Count ?? table.Count;
        if (options.Rows is { } rows)
            for (int i = 0; i < rows.Count; i++)
                if ((uint)rows[i] >= (uint)table.Count)
                    throw new ArgumentOutOfRangeException(nameof(options), rows[i], $"Row {i} of the export is {rows[i]}, outside [0, {table.Count}).");
        int Row(int i) => options.Rows is { } r ? r[i] : i;
        // A ragged table whose written rows all share one shape still forms one array (declared ragged is not the same
        // as ragged in fact); only rows that really differ are refused, and the message shows two of them.
        int[] exampleShape = table.ExampleShape.ToArray();
        if (table.IsRagged && n > 0)
        {
            exampleShape = table.GetShape(Row(0)).ToArray();
            for (int i = 1; i < n; i++)
            {
                if (table.GetShape(Row(i)).SequenceEqual(exampleShape)) continue;
                throw new DataFormatException(
                    $"The examples have different shapes: row {Row(0)} is ({string.Join(", ", exampleShape)}) but row {Row(i)} is ({string.Join(", ", table.GetShape(Row(i)).ToArray())}) " +
                    $"(declared shape ({string.Join(", ", table.ExampleShape.ToArray())})), so they cannot form one NumPy array. " +
                    "Export a fixed-shape feature, or resize the examples first (Preprocessing.ResizeNearest).");
            }
        }
        NpyWriter.Descr(table.DType); // fails early for dtypes without a NumPy form
        var extra = options.Extra ?? new Dictionary<string, long[]>();
        foreach (var (name, values) in extra)
        {
            if (name is "x" or "y" or "id") throw new ArgumentException($"Extra array name '{name}' clashes with a standard member (x, y, id).", nameof(options));
            if (values.Length != n) throw new ArgumentException($"Extra array '{name}' has {values.Length} values but {n} rows are written.", nameof(options));
        }

        var members = new List<(string Name, Action<Stream> Write)>
        {
            ("x", s =>
            {
                var shape = new long[1 + exampleShape.Length];
                shape[0] = n;
                for (int d = 0; d < exampleShape.Length; d++) shape[d + 1] = exampleShape[d];
                var w = new NpyWriter(s, table.DType, shape);
                if (table.Mapped is not null && !table.IsRagged)
                {
                    // A mapped table: rows go through the gather path, which checks before each block of rows that the
                    // cache file was not changed in place (another program truncating it would make a plain read of the
                    // mapping kill the process with SIGBUS, and a write into it would export other bytes).
                    const int Block = 256;
                    int stride = table.ExampleBytes;
                    var rowsBlock = new int[Block];
                    var buffer = new byte[(long)Block * stride <= Array.MaxLength ? Block * stride : stride];
                    int per = buffer.Length / Math.Max(1, stride);
                    for (int i = 0; i < n; i += per)
                    {
                        cancellationToken.ThrowIfCancellationRequested();
                        int count = Math.Min(per, n - i);
                        for (int k = 0; k < count; k++) rowsBlock[k] = Row(i + k);
                        Gather.Rows(table, rowsBlock.AsSpan(0, count), buffer.AsSpan(0, count * stride));
                        w.Write(buffer.AsSpan(0, count * stride));
                    }
                }
                else
                    for (int i = 0; i < n; i++)
                    {
                        if ((i & 255) == 0) cancellationToken.ThrowIfCancellationRequested();
                        w.Write(table.GetExample(Row(i)));
                    }
                w.Complete();
            }),
            ("y", s =>
            {
                var y = new long[n];
                for (int i = 0; i < n; i++) y[i] = table.Labels[Row(i)];
                NpyWriter.Write(s, y);
            }),
        };
        if (table.HasIds)
            members.Add(("id", s =>
            {
                var ids = new string[n];
                for (int i = 0; i < n; i++) ids[i] = table.GetId(Row(i)) ?? "";
                NpyWriter.WriteStrings(s, ids);
            }));
        foreach (var (name, values) in extra) members.Add((name, s => NpyWriter.Write(s, values)));

        cancellationToken.ThrowIfCancellationRequested(); // before the folder or the archive exists
        if (options.Folder)
        {
            Directory.CreateDirectory(path);
            foreach (var (name, write) in members)
            {
                cancellationToken.ThrowIfCancellationRequested();
                NpzWriter.WriteFolderFile(Path.Combine(path, name + ".npy"), write);
            }
        }
        else
        {
            using var npz = new NpzWriter(path, options.Compress);
            foreach (var (name, write) in members)
            {
                cancellationToken.ThrowIfCancellationRequested();
                npz.Add(name, write);
            }
            cancellationToken.ThrowIfCancellationRequested();
            npz.Complete();
        }
        return members.Select(m => m.Name).ToArray();
    }
}
