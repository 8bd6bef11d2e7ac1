using System.Runtime.ExceptionServices;

namespace Samplers;

/// <summary>
/// A table whose rows are keys (e.g. file paths) with one label each, plus a loader that turns a key into an example
/// only when a batch needs it: the reference's <c>MultiShotMemorySampler(x, y, load_example_fn=...)</c>. Sample it with
/// <see cref="MultiShotMemorySampler.CreateLazy"/>; loaded examples go through a bounded
/// <see cref="ExampleCache"/>.
/// </summary>
/// <remarks>Thread-safe: batches may be built from many threads at once (the indexer, a prefetching loader's workers).
/// A row that fails to load raises an <see cref="ExampleLoadException"/> naming the row and key, fails only the batch
/// that needed it, and is not cached. Build one with <see cref="Create{TKey}"/> or <see cref="CreateAsync{TKey}"/>.</remarks>
public abstract class LazyExampleTable
{
    private readonly int[] _shape;
    private readonly long[] _labels;
    private readonly string[] _classNames;

    /// <summary>For subclasses: <paramref name="count"/> rows of <paramref name="dtype"/> examples of <paramref name="exampleShape"/>
    /// (-1 where it varies), their labels and class names, and the cache (null: a 256 MiB one).</summary>
    /// <exception cref="ArgumentException">The labels are not one per row, the shape has a dimension below -1, or the cache serves another table.</exception>
    protected LazyExampleTable(int count, DType dtype, ReadOnlySpan<int> exampleShape, ReadOnlySpan<long> labels, IReadOnlyList<string>? classNames, ExampleCache? cache)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(count);
        if (labels.Length != count) throw new ArgumentException($"There are {count} keys but {labels.Length} labels; give one label per key.", nameof(labels));
        foreach (int d in exampleShape)
            if (d < -1) throw new ArgumentException($"exampleShape [{string.Join(", ", exampleShape.ToArray())}] has a dimension below -1.", nameof(exampleShape));
        DType = dtype; _shape = exampleShape.ToArray(); _labels = labels.ToArray();
        _classNames = classNames?.ToArray() ?? [];
        Cache = cache ?? new ExampleCache();
        Cache.Claim(this);
    }

    /// <summary>A lazy table over <paramref name="keys"/> whose examples <paramref name="load"/> makes (called from many threads).</summary>
    /// <param name="keys">One key per row (e.g. a file path).</param>
    /// <param name="labels">One label per key.</param>
    /// <param name="dtype">The dtype of every loaded example.</param>
    /// <param name="exampleShape">The shape of every loaded example; -1 where it varies (then a preprocess must make batches one shape).</param>
    /// <param name="load">Turns a key into its example.</param>
    /// <param name="classNames">Class names, position = label.</param>
    /// <param name="cache">The decoded-example cache; null for a 256 MiB one, <see cref="ExampleCache.None"/> for none.</param>
    /// <exception cref="ArgumentNullException">An argument is null.</exception>
    /// <exception cref="ArgumentException">The keys and labels differ in number, or the cache serves another table.</exception>
    public static LazyExampleTable<TKey> Create<TKey>(IReadOnlyList<TKey> keys, ReadOnlySpan<long> labels, DType dtype, ReadOnlySpan<int> exampleShape,
        Func<TKey, LoadedExample> load, IReadOnlyList<string>? classNames = null, ExampleCache? cache = null)
    {
        ArgumentNullException.ThrowIfNull(keys);
        ArgumentNullException.ThrowIfNull(load);
        return new LazyExampleTable<TKey>(keys, labels, dtype, exampleShape, load, null, classNames, cache);
    }

    /// <summary>As <see cref="Create{TKey}"/> with an asynchronous loader (e.g. one that reads from a network store).
    /// Synchronous batch requests (the indexer) wait for it; <see cref="LoadRowsAsync"/> does not block.</summary>
    /// <exception cref="ArgumentNullException">An argument is null.</exception>
    /// <exception cref="ArgumentException">The keys and labels differ in number, or the cache serves another table.</exception>
    public static LazyExampleTable<TKey> CreateAsync<TKey>(IReadOnlyList<TKey> keys, ReadOnlySpan<long> labels, DType dtype, ReadOnlySpan<int> exampleShape,
        Func<TKey, CancellationToken, ValueTask<LoadedExample>> loadAsync, IReadOnlyList<string>? classNames = null, ExampleCache? cache = null)
    {
        ArgumentNullException.ThrowIfNull(keys);
        ArgumentNullException.ThrowIfNull(loadAsync);
        return new LazyExampleTable<TKey>(keys, labels, dtype, exampleShape, null, loadAsync, classNames, cache);
    }

    /// <summary>Number of rows.</summary>
    public int Count => _labels.Length;

    /// <summary>The dtype of every example.</summary>
    public DType DType { get; }

    /// <summary>The declared example shape; -1 where it varies.</summary>
    public ReadOnlySpan<int> ExampleShape => _shape;

    /// <summary>The label of every row.</summary>
    public ReadOnlySpan<long> Labels => _labels;

    /// <summary>Class names, position = label; empty when unknown.</summary>
    public IReadOnlyList<string> ClassNames => _classNames;

    /// <summary>The decoded-example cache.</summary>
    public ExampleCache Cache { get; }

    /// <summary>The key of row <paramref name="row"/> as text, for messages.</summary>
    public abstract string KeyText(int row);

    /// <summary>Loads the example of <paramref name="row"/> (no cache, no checks).</summary>
    protected abstract LoadedExample LoadCore(int row);

    /// <summary>Loads the example of <paramref name="row"/> asynchronously (no cache, no checks).</summary>
    protected abstract ValueTask<LoadedExample> LoadCoreAsync(int row, CancellationToken cancellationToken);

    /// <summary>The example of <paramref name="row"/>, from the cache or the loader (then cached).</summary>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="row"/> is outside [0, Count).</exception>
    /// <exception cref="ExampleLoadException">The loader failed or returned an example that does not fit the declared dtype and shape.</exception>
    public LoadedExample Load(int row)
    {
        CheckRow(row);
        if (Cache.TryGet(row, out var hit)) return hit;
        LoadedExample loaded;
        try
        {
            loaded = LoadCore(row);
        }
        catch (Exception e) when (e is not OperationCanceledException and not ExampleLoadException)
        {
            throw Failed(row, e);
        }
        return Admit(row, loaded);
    }

    /// <summary>As <see cref="Load"/>, asynchronously.</summary>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="row"/> is outside [0, Count).</exception>
    /// <exception cref="ExampleLoadException">The loader failed or returned an example that does not fit.</exception>
    public async ValueTask<LoadedExample> LoadAsync(int row, CancellationToken cancellationToken = default)
    {
        CheckRow(row);
        if (Cache.TryGet(row, out var hit)) return hit;
        LoadedExample loaded;
        try
        {
            loaded = await LoadCoreAsync(row, cancellationToken).ConfigureAwait(false);
        }
        catch (Exception e) when (e is not OperationCanceledException and not ExampleLoadException)
        {
            throw Failed(row, e);
        }
        return Admit(row, loaded);
    }

    /// <summary>The examples of <paramref name="rows"/> (in that order, repeats allowed; each distinct row loaded once, in
    /// parallel) as a table with their labels: what a batch gathers from.</summary>
    /// <exception cref="ExampleLoadException">A row failed to load (the first failing position is reported).</exception>
    public ExampleTable LoadRows(ReadOnlySpan<int> rows) => Build(rows.ToArray(), LoadExamples(rows));

    /// <summary>The examples of <paramref name="rows"/> in that order (repeats share one object): from the cache, the
    /// missing ones loaded once each, in parallel.</summary>
    /// <exception cref="ExampleLoadException">A row failed to load (the first failing position is reported).</exception>
    internal LoadedExample[] LoadExamples(ReadOnlySpan<int> rows)
    {
        var loaded = new LoadedExample?[rows.Length];
        // The usual case once read-ahead has run: every row is in the cache, found under one lock, nothing to fetch.
        if (Cache.TryGetMany(rows, loaded) > 0)
        {
            int[] r = rows.ToArray();
            var errors = new Exception?[r.Length];
            var first = new Dictionary<int, int>(); // row -> first missing position
            var distinct = new List<int>();
            for (int i = 0; i < r.Length; i++)
                if (loaded[i] is null && first.TryAdd(r[i], i)) distinct.Add(i);
            FetchMissing(distinct.Select(at => r[at]).ToArray());
            Parallel.For(0, distinct.Count, j =>
            {
                int at = distinct[j];
                try { loaded[at] = Load(r[at]); }
                catch (Exception e) { errors[at] = e; }
            });
            Rethrow(errors);
            for (int i = 0; i < r.Length; i++) loaded[i] ??= loaded[first[r[i]]];
        }
        return loaded!;
    }

    /// <summary>As <see cref="LoadRows"/>, with the asynchronous loader where there is one (the rows load concurrently).</summary>
    /// <exception cref="ExampleLoadException">A row failed to load.</exception>
    public async Task<ExampleTable> LoadRowsAsync(IReadOnlyList<int> rows, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(rows);
        int[] r = rows.ToArray();
        var unique = r.Distinct().ToArray();
        foreach (int row in unique) CheckRow(row);
        await FetchMissingAsync(unique, cancellationToken).ConfigureAwait(false);
        var tasks = unique.Select(row => LoadAsync(row, cancellationToken).AsTask()).ToArray();
        try { await Task.WhenAll(tasks).ConfigureAwait(false); }
        catch
        {
            // Report the failure of the lowest row, whichever finished first.
            var failed = unique.Select((row, i) => (row, t: tasks[i])).Where(x => x.t.IsFaulted || x.t.IsCanceled).OrderBy(x => x.row).First();
            await failed.t.ConfigureAwait(false);
            throw;
        }
        var byRow = new Dictionary<int, LoadedExample>();
        for (int i = 0; i < unique.Length; i++) byRow[unique[i]] = tasks[i].Result;
        return Build(r, r.Select(x => byRow[x]).ToArray());
    }

    /// <summary>Loads every row into an in-memory <see cref="ExampleTable"/> (eager; fixed or ragged as the declared shape).</summary>
    /// <exception cref="ExampleLoadException">A row failed to load.</exception>
    /// <remarks>Each example is copied into the table as soon as it is loaded, so the peak is the table plus the examples
    /// in flight (and what the cache keeps), not two copies of the dataset.</remarks>
    public ExampleTable ToExampleTable()
    {
        bool ragged = Array.IndexOf(_shape, -1) >= 0;
        var b = ragged ? ExampleTableBuilder.Ragged(DType, _shape, Count) : ExampleTableBuilder.Fixed(DType, _shape, Count);
        b.ClassNames = _classNames;
        var errors = new Exception?[Count];
        Parallel.For(0, Count, row =>
        {
            try
            {
                LoadedExample e = Load(row);
                e.Data.CopyTo(ragged ? b.AllocateRagged(row, e.Shape) : b.Slot(row));
                b.SetLabel(row, _labels[row]);
            }
            catch (Exception e) { errors[row] = e; }
        });
        Rethrow(errors);
        return b.Build();
    }

    private ExampleTable Build(int[] rows, LoadedExample[] loaded)
    {
        bool ragged = Array.IndexOf(_shape, -1) >= 0;
        var b = ragged ? ExampleTableBuilder.Ragged(DType, _shape, rows.Length) : ExampleTableBuilder.Fixed(DType, _shape, rows.Length);
        b.ClassNames = _classNames;
        for (int i = 0; i < rows.Length; i++)
        {
            Span<byte> slot = ragged ? b.AllocateRagged(i, loaded[i].Shape) : b.Slot(i);
            loaded[i].Data.CopyTo(slot);
            b.SetLabel(i, _labels[rows[i]]);
        }
        return b.Build();
    }

    /// <summary>A bulk loader's chance to fetch the rows of a batch that are not cached yet in one go (sorted, merged
    /// reads) before <see cref="LoadRows"/> takes each row from the cache; rows it leaves out are loaded one by one.
    /// Rows are distinct and in range. Failures are its to report (as <see cref="ExampleLoadException"/>).</summary>
    internal virtual void FetchMissing(int[] rows)
    {
    }

    /// <summary>As <see cref="FetchMissing"/>, for <see cref="LoadRowsAsync"/>.</summary>
    internal virtual Task FetchMissingAsync(int[] rows, CancellationToken cancellationToken) => Task.CompletedTask;

    /// <summary>Batches a sampler should read ahead (their rows go to <see cref="ReadAhead"/>); 0 for none.</summary>
    internal virtual int ReadAheadBatches => 0;

    /// <summary>Starts loading <paramref name="rows"/> (a coming batch) into the cache in the background; never throws.</summary>
    internal virtual void ReadAhead(ReadOnlySpan<int> rows)
    {
    }

    /// <summary>True when the table plans its reads with the rows of a whole epoch (<see cref="EpochRows"/>).</summary>
    internal virtual bool WantsEpochRows => false;

    /// <summary>Which rows the batches of <paramref name="epoch"/> a sampler serves will need (one flag per row; the table
    /// keeps the array); called before the epoch's first batch is loaded. Plans are pure, so this is exact.</summary>
    internal virtual void EpochRows(int epoch, bool[] needed)
    {
    }

    // A labels-only stand-in for the sampler's class index (no example bytes): every example is empty.
    internal ExampleTable LabelsOnly(DType dtype, int[] shape)
    {
        int n = Count;
        return new ExampleTable(dtype, shape, [Array.Empty<byte>()], new int[n], new int[n], new int[n], new int[n * shape.Length], _labels, null, _classNames);
    }

    private protected LoadedExample Admit(int row, LoadedExample? e)
    {
        if (e is null || e.Data is null || e.Shape is null)
            throw new ExampleLoadException($"Row {row} (key '{KeyText(row)}'): the loader returned no example (null data or shape).", row, KeyText(row));
        long elems = 1;
        bool fits = e.Shape.Length == _shape.Length;
        for (int d = 0; d < e.Shape.Length; d++)
        {
            if (e.Shape[d] < 0 || (fits && _shape[d] >= 0 && _shape[d] != e.Shape[d])) fits = false;
            elems *= Math.Max(0, e.Shape[d]);
        }
        if (!fits)
            throw new ExampleLoadException($"Row {row} (key '{KeyText(row)}'): the loader returned an example of shape [{string.Join(", ", e.Shape)}], which does not fit the declared shape [{string.Join(", ", _shape)}]; " +
                "declare -1 where sizes vary, or resize in the loader.", row, KeyText(row));
        if (elems * DTypes.SizeOf(DType) != e.Data.Length)
            throw new ExampleLoadException($"Row {row} (key '{KeyText(row)}'): the loader returned {e.Data.Length} bytes, but shape [{string.Join(", ", e.Shape)}] of {DTypes.Name(DType)} needs {elems * DTypes.SizeOf(DType)}.", row, KeyText(row));
        Cache.Add(row, e);
        return e;
    }

    private protected ExampleLoadException Failed(int row, Exception e)
    {
        string key = KeyText(row);
        string? file = (e as SamplersDataException)?.FilePath ?? (e as FileNotFoundException)?.FileName;
        return new ExampleLoadException($"Row {row} (key '{key}') could not be loaded: {e.Message} Only batches that contain this row fail; fix or remove the file, or drop the key from the table.",
            row, key, file, e);
    }

    private static void Rethrow(Exception?[] errors)
    {
        foreach (var e in errors)
            if (e is not null) ExceptionDispatchInfo.Capture(e).Throw();
    }

    private protected void CheckRow(int row)
    {
        if ((uint)row >= (uint)Count)
            throw new ArgumentOutOfRangeException(nameof(row), row, $"row must be in [0, {Count}), but was {row}.");
    }
}

/// <summary>A <see cref="LazyExampleTable"/> whose rows are keys of type <typeparamref name="TKey"/>.</summary>
public sealed class LazyExampleTable<TKey> : LazyExampleTable
{
    private readonly TKey[] _keys;
    private readonly Func<TKey, LoadedExample>? _load;
    private readonly Func<TKey, CancellationToken, ValueTask<LoadedExample>>? _loadAsync;

    internal LazyExampleTable(IReadOnlyList<TKey> keys, ReadOnlySpan<long> labels, DType dtype, ReadOnlySpan<int> exampleShape,
        Func<TKey, LoadedExample>? load, Func<TKey, CancellationToken, ValueTask<LoadedExample>>? loadAsync, IReadOnlyList<string>? classNames, ExampleCache? cache)
        : base(keys.Count, dtype, exampleShape, labels, classNames, cache)
    {
        _keys = keys.ToArray(); _load = load; _loadAsync = loadAsync;
    }

    /// <summary>The key of every row.</summary>
    public IReadOnlyList<TKey> Keys => _keys;

    /// <inheritdoc/>
    public override string KeyText(int row) => _keys[row]?.ToString() ?? "null";

    /// <inheritdoc/>
    protected override LoadedExample LoadCore(int row) =>
        _load is not null ? _load(_keys[row]) : _loadAsync!(_keys[row], CancellationToken.None).AsTask().GetAwaiter().GetResult();

    /// <inheritdoc/>
    protected override ValueTask<LoadedExample> LoadCoreAsync(int row, CancellationToken cancellationToken) =>
        _loadAsync is not null ? _loadAsync(_keys[row], cancellationToken) : new ValueTask<LoadedExample>(Task.Run(() => _load!(_keys[row]), cancellationToken));
}
