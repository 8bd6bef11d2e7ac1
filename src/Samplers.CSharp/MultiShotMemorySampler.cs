using System.Buffers;
using System.Collections;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Samplers.Core;

namespace Samplers;

/// <summary>
/// Serves class-balanced batches (<see cref="ClassesPerBatch"/> classes x <see cref="ExamplesPerClassPerBatch"/> examples)
/// from data held in memory, through a Keras-Sequence-like API: the reference's <c>MultiShotMemorySampler</c>.
/// </summary>
/// <remarks>
/// <para>Every sampling decision comes from the core planner (<see cref="Planner"/>): batch <c>b</c> of epoch <c>e</c> is a
/// pure function of (seed, e, b, settings, data), whatever was asked before and on whichever thread. Requests for
/// batches may come from many threads at once.</para>
/// <para>Batches are pooled: dispose each one (enumeration included) to reuse its buffers; one that is not disposed
/// is merely collected as garbage. <see cref="GenerateBatchInto{T}"/> writes into the caller's buffers instead.</para>
/// <para>Divergences from the reference: seeded, reproducible batches; <c>total_examples_per_class</c> draws without
/// replacement; messages go to an <see cref="ILogger"/>.</para>
/// </remarks>
public partial class MultiShotMemorySampler : IEnumerable<Batch>, IDisposable
{
    private static readonly Action<ILogger, int, int, int, int, Exception?> LogBatchSize =
        LoggerMessage.Define<int, int, int, int>(LogLevel.Information, new EventId(1, "BatchSize"),
            "The initial batch size is {BatchSize} ({ClassesPerBatch} classes * {ExamplesPerClassPerBatch} examples per class) with {NumAugmentations} augmentations");
    private static readonly Action<ILogger, long, int, int, Exception?> LogReplacement =
        LoggerMessage.Define<long, int, int>(LogLevel.Warning, new EventId(2, "WithReplacement"),
            "Class {Label} has {Available} examples, fewer than the {Requested} examples per class per batch: its examples are drawn with replacement (repeats within a batch)");
    private static readonly Action<ILogger, Exception?> LogWarmupComplete =
        LoggerMessage.Define(LogLevel.Information, new EventId(3, "WarmupComplete"), "Warmup complete");

    private readonly ExampleTable _table;
    private readonly LazyExampleTable? _lazy; // set: _table holds labels only, rows are loaded per batch
    private readonly ClassIndex _index;
    private readonly PlanConfig _config;
    private readonly Planner _planner;       // (config, index), validated once
    private readonly SamplerOptions _options;
    private readonly BatchPool _pool;
    private readonly ILogger _logger;
    private readonly IAugmenter? _augmenter;
    private readonly bool[] _tooSmall;       // class ordinal -> fewer examples than ExamplesPerClassPerBatch
    private readonly bool _anyTooSmall;
    private readonly int[] _warned;          // class ordinal -> 1 once its replacement warning was logged
    private readonly int[] _selected;        // the sampled examples in table order (GetSlice, NumExamples)
    private readonly string[] _classNames;
    // Read-only views made once: the index and table never change, and callers index these per class.
    private readonly IReadOnlyList<long> _classList;
    private readonly IReadOnlyList<int> _exampleShape;
    private readonly int _readAhead;         // batches of read-ahead (mapped tables, or a lazy table that asks for it), resolved once
    private readonly RowSource _rows;        // memory, mapped or lazy: the one way batches get their rows
    private readonly long[] _labelOfOrdinal; // the label of each class ordinal: a batch's labels come from its plan's ordinals
    // The epoch is the sampler's only mutable state; whether warmup is on is a function of it (IsWarmupAt), so a
    // reader can never see an epoch with another epoch's warmup flag.
    private int _epoch;
    private readonly bool _ownsTable;        // the table was made or loaded here (preprocessed copy, TFDS load): disposed with the sampler
    private IDisposable? _ownedLazy;          // a lazy table opened for this sampler (remote access): disposed with it
    private int _disposed;

    /// <summary>A sampler over <paramref name="x"/> (examples and their labels) with <paramref name="options"/>.</summary>
    /// <exception cref="ArgumentNullException">An argument is null.</exception>
    /// <exception cref="ArgumentOutOfRangeException">A count is out of range (the message names the setting).</exception>
    /// <exception cref="ArgumentException">The data is empty, a listed class is absent, or ClassesPerBatch exceeds the number of classes.</exception>
    public MultiShotMemorySampler(ExampleTable x, SamplerOptions options)
        : this(x, options, applyPreprocess: true, ownsInput: false)
    {
    }

    // For the TFDS sampler: applyPreprocess false means x already went through the preprocess (the loader applies it with
    // its cancellation token and progress); ownsInput means x was loaded for this sampler, which disposes it.
    private protected MultiShotMemorySampler(ExampleTable x, SamplerOptions options, bool applyPreprocess, bool ownsInput)
    {
        ArgumentNullException.ThrowIfNull(x);
        ArgumentNullException.ThrowIfNull(options);
        _options = options;
        _config = new PlanConfig(options.ClassesPerBatch, options.ExamplesPerClassPerBatch, options.StepsPerEpoch, options.Mode, options.Rank, options.WorldSize);
        ArgumentOutOfRangeException.ThrowIfNegative(options.NumAugmentationsPerExample, "options.NumAugmentationsPerExample");
        if (options.ReadAheadBatches is int ra) ArgumentOutOfRangeException.ThrowIfNegative(ra, "options.ReadAheadBatches");
        if (options.TotalExamplesPerClass is int total)
            ArgumentOutOfRangeException.ThrowIfLessThan(total, 1, "options.TotalExamplesPerClass");
        if (x.Count == 0) throw new ArgumentException("The data has no examples; a sampler needs at least ClassesPerBatch classes.", nameof(x));
        _logger = options.Logger ?? NullLogger.Instance;
        _pool = options.Pool ?? new BatchPool();
        _augmenter = options.Augmenter;

        _table = options.Preprocess is null || !applyPreprocess ? x : Preprocessing.Apply(x, options.Preprocess);
        _ownsTable = ownsInput || !ReferenceEquals(_table, x);
        _readAhead = ResolveReadAhead(_table, options.ReadAheadBatches);
        _rows = new RowSource(_table, null, null);

        // As the reference (`if not class_list`): null and an empty list both mean every class.
        ClassIndex index = options.ClassList is null || options.ClassList.Count == 0
            ? ClassIndex.Build(_table.Labels)
            : ClassIndex.Build(_table.Labels, options.ClassList.ToArray());
        if (options.TotalExamplesPerClass is int keep) index = index.Select(options.Seed, keep);
        _planner = new Planner(_config, index);
        _labelOfOrdinal = index.Classes.ToArray();
        _index = index;

        int classes = index.ClassCount;
        _tooSmall = new bool[classes];
        _warned = new int[classes];
        _classNames = new string[classes];
        _classList = Array.AsReadOnly(index.Classes.ToArray());
        _exampleShape = Array.AsReadOnly(_table.ExampleShape.ToArray());
        IReadOnlyList<string> names = _table.ClassNames;
        var selected = new List<int>(index.ExampleCount);
        for (int c = 0; c < classes; c++)
        {
            _tooSmall[c] = index.CountOf(c) < options.ExamplesPerClassPerBatch;
            _anyTooSmall |= _tooSmall[c];
            long label = index.LabelOf(c);
            _classNames[c] = label >= 0 && label < names.Count ? names[(int)label] : label.ToString(System.Globalization.CultureInfo.InvariantCulture);
            foreach (int row in index.ExamplesOf(c)) selected.Add(row);
        }
        _selected = selected.ToArray();
        Array.Sort(_selected);

        // The reference prints `0 if self.augmenter is None else self.num_augmentations_per_example`.
        LogBatchSize(_logger, BatchSize, ClassesPerBatch, ExamplesPerClassPerBatch, _augmenter is null ? 0 : NumAugmentationsPerExample, null);
    }

    /// <summary>A sampler over a lazy table: the reference's <c>MultiShotMemorySampler(x, y, load_example_fn=...)</c>. Only the
    /// rows a batch (or slice) needs are loaded, when it is built, through <paramref name="x"/>'s cache; then
    /// <see cref="SamplerOptions.Preprocess"/> runs on them (per batch, not cached) and the augmenter as usual.</summary>
    /// <remarks>Plans are the eager sampler's over the same labels: with the same seed, the same batches. <see cref="Table"/>
    /// holds the labels and class names only (no example bytes); <see cref="LazyTable"/> holds the keys. A row that fails
    /// to load fails only the batches that contain it, with an <see cref="ExampleLoadException"/>.</remarks>
    /// <exception cref="ArgumentNullException">An argument is null.</exception>
    /// <exception cref="ArgumentOutOfRangeException">A count is out of range (the message names the setting).</exception>
    /// <exception cref="ArgumentException">The data is empty, a listed class is absent, or ClassesPerBatch exceeds the number of classes.</exception>
    public static MultiShotMemorySampler CreateLazy(LazyExampleTable x, SamplerOptions options) => new(x, options, lazy: true);

    // Not a public constructor overload: a second one-table constructor would make `MultiShotMemorySampler(x, options)`
    // ambiguous for F# callers whose x is not yet typed.
    private protected MultiShotMemorySampler(LazyExampleTable x, SamplerOptions options, bool lazy)
        : this(LabelsOf(x, options), options, applyPreprocess: false, ownsInput: true)
    {
        _lazy = lazy ? x : null;
        // The table made above holds labels only: rows come from the lazy table, preprocessed per batch.
        if (_lazy is not null)
        {
            _rows = new RowSource(_table, _lazy, options.Preprocess);
            _readAhead = options.ReadAheadBatches ?? _lazy.ReadAheadBatches;
        }
    }

    // A lazy table this sampler opened (and so disposes).
    private protected void OwnLazy(IDisposable table) => _ownedLazy = table;

    private static ExampleTable LabelsOf(LazyExampleTable x, SamplerOptions options)
    {
        ArgumentNullException.ThrowIfNull(x);
        ArgumentNullException.ThrowIfNull(options);
        IExamplePreprocessor? p = options.Preprocess;
        return x.LabelsOnly(p is null ? x.DType : p.OutputDType(x.DType), p is null ? x.ExampleShape.ToArray() : p.OutputShape(x.ExampleShape));
    }

    /// <summary>The lazy table this sampler loads rows from, or null when the data is in memory.</summary>
    public LazyExampleTable? LazyTable => _lazy;

    /// <summary>The reference's constructor shape: <c>MultiShotMemorySampler(x, y, classes_per_batch=2,
    /// examples_per_class_per_batch=2, steps_per_epoch=1000, class_list=None, total_examples_per_class=None, augmenter=None,
    /// warmup=-1)</c>, with x and y in one table, then our seed.</summary>
    /// <exception cref="ArgumentNullException"><paramref name="x"/> is null.</exception>
    /// <exception cref="ArgumentOutOfRangeException">A count is out of range.</exception>
    /// <exception cref="ArgumentException">The data is empty, a listed class is absent, or classesPerBatch exceeds the number of classes.</exception>
    public MultiShotMemorySampler(ExampleTable x, int classesPerBatch = 2, int examplesPerClassPerBatch = 2, int stepsPerEpoch = 1000,
        IReadOnlyList<long>? classList = null, int? totalExamplesPerClass = null, IAugmenter? augmenter = null, int warmup = -1, ulong seed = 0)
        : this(x, new SamplerOptions
        {
            ClassesPerBatch = classesPerBatch, ExamplesPerClassPerBatch = examplesPerClassPerBatch, StepsPerEpoch = stepsPerEpoch,
            ClassList = classList, TotalExamplesPerClass = totalExamplesPerClass, Augmenter = augmenter, Warmup = warmup, Seed = seed,
        })
    {
    }

    /// <summary>A sampler over examples the caller holds: <paramref name="x"/> is every example back to back (row-major),
    /// each of <paramref name="exampleShape"/>, with one label per example in <paramref name="y"/> (the data is copied once).</summary>
    /// <exception cref="ArgumentException">Lengths disagree with the shape, or the element type is unsupported; see also the constructor.</exception>
    public static MultiShotMemorySampler Create<T>(ReadOnlySpan<T> x, ReadOnlySpan<int> exampleShape, ReadOnlySpan<long> y, SamplerOptions options) where T : unmanaged
    {
        ArgumentNullException.ThrowIfNull(options);
        return new MultiShotMemorySampler(ExampleTable.From(x, exampleShape, y), options);
    }

    /// <summary>The data being sampled (after the preprocess).</summary>
    public ExampleTable Table => _table;

    /// <summary>The settings this sampler was built with.</summary>
    public SamplerOptions Options => _options;

    /// <summary>The plan configuration (counts, mode, shard) handed to the core.</summary>
    public PlanConfig PlanConfig => _config;

    /// <summary>The core planner over <see cref="PlanConfig"/> and <see cref="ClassIndex"/>: the plan of any batch, as the sampler draws it.</summary>
    public Planner Planner => _planner;

    /// <summary>The examples of each class that are sampled (after <c>class_list</c> and <c>total_examples_per_class</c>).</summary>
    public ClassIndex ClassIndex => _index;

    /// <summary>Distinct classes per batch (<c>classes_per_batch</c>).</summary>
    public int ClassesPerBatch => _config.ClassesPerBatch;

    /// <summary>Examples per class per batch (<c>examples_per_class_per_batch</c>).</summary>
    public int ExamplesPerClassPerBatch => _config.ExamplesPerClassPerBatch;

    /// <summary>Batches per epoch over all ranks (<c>steps_per_epoch</c>).</summary>
    public int StepsPerEpoch => _config.StepsPerEpoch;

    /// <summary>Rows of a planned batch, before the augmenter (<c>batch_size</c>).</summary>
    public int BatchSize => _config.BatchSize;

    /// <summary>Passed to the augmenter (<c>num_augmentations_per_example</c>).</summary>
    public int NumAugmentationsPerExample => _options.NumAugmentationsPerExample;

    /// <summary>Batches in one epoch for this rank.</summary>
    /// <remarks>Python: <c>__len__</c> (= <c>steps_per_epoch</c>; with sharding, this rank's share).</remarks>
    public int Count => _config.BatchesPerRank;

    /// <summary>The current epoch, starting at 0 (<c>epoch</c>).</summary>
    public int Epoch => Volatile.Read(ref _epoch);

    /// <summary>Whether warmup is on in the current epoch (<c>is_warmup</c>); see <see cref="SamplerOptions.Warmup"/>.</summary>
    public bool IsWarmup => IsWarmupAt(Epoch);

    /// <summary>Whether warmup is on during <paramref name="epoch"/>: the reference's state machine (<c>is_warmup = bool(warmup)</c>,
    /// then <c>on_epoch_end</c> turns it off once <c>epoch &gt;= warmup</c>) as a function of the epoch, so a batch's
    /// <see cref="Batch.IsWarmup"/> always agrees with its epoch, whichever thread calls <see cref="OnEpochEnd"/>.</summary>
    public bool IsWarmupAt(int epoch) => _options.Warmup != 0 && epoch < Math.Max(_options.Warmup, 1);

    /// <summary>The warmup setting (<c>warmup</c>).</summary>
    public int Warmup => _options.Warmup;

    /// <summary>Batches of read-ahead in effect: <see cref="SamplerOptions.ReadAheadBatches"/> resolved for this table (0 for
    /// in-memory tables, and for mapped files that fit comfortably in memory unless set explicitly).</summary>
    public int ReadAheadBatches => _readAhead;

    /// <summary>The seed.</summary>
    public ulong Seed => _options.Seed;

    /// <summary>Number of examples sampled from, after class filtering and selection (<c>num_examples</c>).</summary>
    public int NumExamples => _selected.Length;

    /// <summary>The shape of one example (<c>example_shape</c>); -1 marks a dimension that varies (ragged data).</summary>
    public IReadOnlyList<int> ExampleShape => _exampleShape;

    /// <summary>The dtype of the examples.</summary>
    public DType DType => _table.DType;

    /// <summary>The sampled labels in ascending order; position = class ordinal (<c>class_list</c>).</summary>
    public IReadOnlyList<long> ClassList => _classList;

    /// <summary>The name of each sampled class (position = class ordinal); the label as text when the data has no names.</summary>
    public IReadOnlyList<string> ClassNames => _classNames;

    /// <summary>Batch <paramref name="batchId"/> of the current epoch, augmented if an augmenter is set.</summary>
    /// <remarks>Python: <c>__getitem__(batch_id)</c>. Dispose the batch.</remarks>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="batchId"/> is outside [0, Count).</exception>
    public Batch this[int batchId] => GenerateBatch(batchId);

    /// <summary>Batch <paramref name="batchId"/> of the current epoch, augmented if an augmenter is set.</summary>
    /// <remarks>Python: <c>generate_batch(batch_id)</c>. Dispose the batch.</remarks>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="batchId"/> is outside [0, Count).</exception>
    /// <exception cref="RaggedBatchException">The batch would mix example shapes.</exception>
    public Batch GenerateBatch(int batchId) => GenerateBatchAt(Epoch, batchId);

    /// <summary>Batch <paramref name="batchId"/> of <paramref name="epoch"/>, whatever the current epoch (for prefetching across an epoch boundary).
    /// The batch and the augmenter are told whether warmup is on in that epoch (<see cref="IsWarmupAt"/>).</summary>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="batchId"/> is outside [0, Count) or <paramref name="epoch"/> is negative.</exception>
    /// <exception cref="RaggedBatchException">The batch would mix example shapes.</exception>
    public Batch GenerateBatchAt(int epoch, int batchId)
    {
        CheckBatchId(batchId);
        ArgumentOutOfRangeException.ThrowIfNegative(epoch);
        bool warm = IsWarmupAt(epoch);
        var key = new PlanKey(_options.Seed, epoch, batchId);
        AnnounceEpoch(epoch);
        Batch batch = Build(BatchSize, key, _config.GlobalBatchId(batchId), warm, BatchWhat.Planned(batchId, epoch), key,
            static (self, key, s) =>
            {
                self._planner.Fill(key, s.Indices, s.Ordinals);
                if (self._lazy is null) self.ReadAhead(key.Epoch, key.BatchId);
            });
        // A lazy table reads ahead once this batch's own rows are in: its fetches go first.
        if (_lazy is not null) ReadAhead(epoch, batchId);
        return Augment(batch, warm);
    }

    /// <summary>Writes batch <paramref name="batchId"/> of the current epoch into the caller's buffers; returns the number of rows.
    /// Allocates nothing.</summary>
    /// <remarks>No augmenter is applied (an augmenter may change the batch size); with one set this throws.</remarks>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="batchId"/> is outside [0, Count).</exception>
    /// <exception cref="ArgumentException"><typeparamref name="T"/> is not the data's element type, or a buffer is too short (the message gives both lengths).</exception>
    /// <exception cref="InvalidOperationException">An augmenter is set.</exception>
    /// <exception cref="RaggedBatchException">The batch would mix example shapes.</exception>
    [System.Runtime.CompilerServices.SkipLocalsInit] // the plan buffers are fully written by the planner; zeroing them is waste
    public int GenerateBatchInto<T>(int batchId, Span<T> x, Span<long> y) where T : unmanaged
    {
        CheckBatchId(batchId);
        Batch.CheckType<T>(_table.DType);
        if (_augmenter is not null)
            throw new InvalidOperationException("GenerateBatchInto writes planned rows only, but this sampler has an augmenter (which may change the batch size); use GenerateBatch, or a sampler without an augmenter.");
        int n = BatchSize;
        if (y.Length < n) throw new ArgumentException($"y holds {y.Length} labels, but a batch has {n} rows.", nameof(y));
        int[]? rentedI = null, rentedO = null;
        Span<int> idx = n <= 512 ? stackalloc int[n] : (rentedI = ArrayPool<int>.Shared.Rent(n));
        Span<int> ord = n <= 512 ? stackalloc int[n] : (rentedO = ArrayPool<int>.Shared.Rent(n));
        try
        {
            var key = new PlanKey(_options.Seed, Epoch, batchId);
            _planner.Fill(key, idx, ord);
            if (_lazy is null) ReadAhead(key.Epoch, batchId);
            else AnnounceEpoch(key.Epoch);
            RowView rows = _rows.View(idx[..n]);
            if (_lazy is not null) ReadAhead(key.Epoch, batchId);
            Span<int> shape = stackalloc int[_table.ExampleShape.Length];
            long bytes = rows.Measure(shape, BatchWhat.Planned(batchId, key.Epoch));
            Span<byte> dest = System.Runtime.InteropServices.MemoryMarshal.AsBytes(x);
            if (dest.Length < bytes) throw ShortX(x.Length, batchId, bytes, shape);
            rows.CopyTo(dest[..(int)bytes], y, ord[..n], _labelOfOrdinal);
            WarnReplacement(ord[..n]);
            return n;
        }
        finally
        {
            if (rentedI is not null) ArrayPool<int>.Shared.Return(rentedI);
            if (rentedO is not null) ArrayPool<int>.Shared.Return(rentedO);
        }
    }

    private ArgumentException ShortX(int length, int batchId, long bytes, ReadOnlySpan<int> shape) =>
        new($"x holds {length} elements, but batch {batchId} needs {bytes / Math.Max(1, DTypes.SizeOf(_table.DType))} ({BatchSize} rows of shape [{string.Join(", ", shape.ToArray())}]).", "x");

    /// <summary>A batch of <paramref name="numClasses"/> classes x <paramref name="examplesPerClass"/> examples, truncated to
    /// <see cref="BatchSize"/> rows, for batch <paramref name="batchId"/> of the current epoch; no augmenter.</summary>
    /// <remarks>Python: <c>get_examples(batch_id, num_classes, examples_per_class)</c> (<c>_get_examples</c> in current source).</remarks>
    /// <exception cref="ArgumentOutOfRangeException">An argument is out of range.</exception>
    public Batch GetExamples(int batchId, int numClasses, int examplesPerClass)
    {
        CheckBatchId(batchId);
        ArgumentOutOfRangeException.ThrowIfLessThan(numClasses, 1);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(numClasses, _index.ClassCount);
        ArgumentOutOfRangeException.ThrowIfLessThan(examplesPerClass, 1);
        int epoch = Epoch;
        var key = new PlanKey(_options.Seed, epoch, batchId);
        BatchPlan plan = _planner.PlanExamples(key, numClasses, examplesPerClass);
        return Build(plan.Count, key, plan.GlobalBatchId, IsWarmupAt(epoch), BatchWhat.Examples(batchId, epoch), plan,
            static (_, plan, s) =>
            {
                plan.Indices.Span.CopyTo(s.Indices);
                plan.ClassOrdinals.Span.CopyTo(s.Ordinals);
            });
    }

    /// <summary>Examples <paramref name="begin"/> .. <paramref name="begin"/> + <paramref name="size"/> - 1 of the sampled examples
    /// (in table order), never augmented; <paramref name="size"/> -1 means "to the end".</summary>
    /// <remarks>Python: <c>get_slice(begin=0, size=-1)</c>. As the reference's <c>MultiShotMemorySampler.get_slice</c>, no
    /// augmenter is applied (only its <c>SingleShotMemorySampler</c> augments slices). Divergences: the reference's
    /// <c>size=-1</c> is Python's <c>x[begin:begin-1]</c> (all but the last row) and a range past the end is silently cut;
    /// here -1 means to the end and a range outside [0, NumExamples] throws (docs/API.md).</remarks>
    /// <exception cref="ArgumentOutOfRangeException">The range is not inside [0, NumExamples].</exception>
    public Batch GetSlice(int begin = 0, int size = -1)
    {
        ObjectDisposedException.ThrowIf(Volatile.Read(ref _disposed) != 0, this);
        if (begin < 0 || begin > NumExamples)
            throw new ArgumentOutOfRangeException(nameof(begin), begin, $"begin must be in [0, NumExamples] = [0, {NumExamples}], but was {begin}.");
        if (size == -1) size = NumExamples - begin;
        if (size < 0 || (long)begin + size > NumExamples)
            throw new ArgumentOutOfRangeException(nameof(size), size, $"size must be -1 or in [0, NumExamples - begin] = [0, {NumExamples - begin}], but was {size}.");
        // A slice is no planned batch: no key, global batch id -1 (as a fresh storage has).
        return Build(size, default, -1, IsWarmup, BatchWhat.Slice(begin, begin + size), (Begin: begin, Size: size),
            static (self, range, s) =>
            {
                self._selected.AsSpan(range.Begin, range.Size).CopyTo(s.Indices);
                for (int i = 0; i < range.Size; i++) s.Ordinals[i] = self._index.OrdinalOf(self._table.Labels[s.Indices[i]]);
            });
    }

    /// <summary>Ends an epoch: the epoch counter goes up, and warmup ends once it reaches <see cref="Warmup"/> ("Warmup complete" is logged).</summary>
    /// <remarks>Python: <c>on_epoch_end()</c>. Batches requested afterwards belong to the new epoch.</remarks>
    public void OnEpochEnd()
    {
        // One atomic step: every epoch value is reached exactly once, so "Warmup complete" is logged once.
        int now = Interlocked.Increment(ref _epoch);
        if (IsWarmupAt(now - 1) && !IsWarmupAt(now)) LogWarmupComplete(_logger, null);
    }

    /// <summary>Releases what the sampler made or loaded: a table it loaded (a mapped cache's mapping and file handle) or
    /// the preprocessed copy it built. A table passed in by the caller stays the caller's (dispose it yourself); so
    /// does a lazy table. Afterwards, asking for a batch throws <see cref="ObjectDisposedException"/>; batches already
    /// built stay valid. Safe to call more than once.</summary>
    public void Dispose()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0) return;
        if (_ownsTable) _table.Dispose();
        _ownedLazy?.Dispose();
    }

    /// <summary>The batches of the current epoch in order (0 .. Count-1); dispose each one.</summary>
    /// <remarks>Python: <c>__iter__</c>. Holding on to them (e.g. <c>ToList()</c>) keeps their buffers out of the pool.</remarks>
    public IEnumerator<Batch> GetEnumerator()
    {
        int epoch = Epoch;
        for (int b = 0; b < Count; b++) yield return GenerateBatchAt(epoch, b);
    }

    IEnumerator IEnumerable.GetEnumerator() => GetEnumerator();

    private void CheckBatchId(int batchId)
    {
        ObjectDisposedException.ThrowIf(Volatile.Read(ref _disposed) != 0, this);
        if ((uint)batchId >= (uint)Count)
            throw new ArgumentOutOfRangeException(nameof(batchId), batchId, $"batchId must be in [0, Count) = [0, {Count}), but was {batchId}.");
    }

    // How a batch path writes a batch's planned rows (Indices, Ordinals) into its storage.
    private delegate void PlanRows<TState>(MultiShotMemorySampler self, TState state, BatchStorage storage);

    // Every pooled batch is built here: rent the storage, let the path plan its rows, gather them through the row
    // source, stamp the batch; on any failure the storage goes back to the pool. The plan callbacks are static lambdas,
    // so building a batch allocates nothing once the pool is warm.
    private Batch Build<TState>(int rows, PlanKey key, int globalBatchId, bool warm, BatchWhat what, TState state, PlanRows<TState> plan)
    {
        BatchStorage s = _pool.RentStorage(_table.DType, rows);
        try
        {
            plan(this, state, s);
            Fill(s, rows, what);
            s.Key = key;
            s.GlobalBatchId = globalBatchId;
            s.IsWarmup = warm;
        }
        catch
        {
            _pool.Return(s);
            throw;
        }
        return new Batch(s);
    }

    // Shape, X and Y of a storage whose Indices/Ordinals hold `rows` planned rows.
    private void Fill(BatchStorage s, int rows, BatchWhat what)
    {
        RowView view = _rows.View(s.Indices.AsSpan(0, rows));
        Span<int> shape = stackalloc int[_table.ExampleShape.Length];
        long bytes = view.Measure(shape, what);
        s.PrepareX(shape, bytes);
        view.CopyTo(s.X.AsSpan(0, (int)bytes), s.Y, s.Ordinals.AsSpan(0, rows), _labelOfOrdinal);
        WarnReplacement(s.Ordinals.AsSpan(0, rows));
    }

    // Null means: read ahead only when the mapped file may not fit the page cache (larger than half the memory the
    // process may use: physical memory, or the container's limit).
    internal static int ResolveReadAhead(ExampleTable table, int? setting)
    {
        if (table.Mapped is not { } m) return 0;
        if (setting is int k) return k;
        return m.FileLength > GC.GetGCMemoryInfo().TotalAvailableMemoryBytes / 2 ? SamplerOptions.AutoReadAheadBatches : 0;
    }

    // Mapped tables: asks the OS for the rows of the batch ReadAheadBatches after this one (at batch 0, of every batch up to
    // it), so a consumer walking batches in order finds them read. Plans are pure, so this never changes a batch.
    [System.Runtime.CompilerServices.SkipLocalsInit]
    private void ReadAhead(int epoch, int batchId)
    {
        AnnounceEpoch(epoch);
        int k = _readAhead;
        if (k == 0) return;
        int n = BatchSize;
        int[]? rentedI = null, rentedO = null;
        Span<int> idx = n <= 512 ? stackalloc int[n] : (rentedI = ArrayPool<int>.Shared.Rent(n));
        Span<int> ord = n <= 512 ? stackalloc int[n] : (rentedO = ArrayPool<int>.Shared.Rent(n));
        try
        {
            for (int ahead = batchId == 0 ? 1 : k; ahead <= k; ahead++)
            {
                long target = (long)batchId + ahead;
                int e = (int)Math.Min(int.MaxValue, epoch + target / Count), b = (int)(target % Count);
                _planner.Fill(new PlanKey(_options.Seed, e, b), idx[..n], ord[..n]);
                if (_lazy is not null) _lazy.ReadAhead(idx[..n]);
                else _table.PrefetchRows(idx[..n]);
            }
        }
        finally
        {
            if (rentedI is not null) ArrayPool<int>.Shared.Return(rentedI);
            if (rentedO is not null) ArrayPool<int>.Shared.Return(rentedO);
        }
    }

    // A lazy table that plans its reads per epoch learns the epoch's rows before the epoch's first batch loads its own, so
    // that batch already reads whole blocks (a remote table's first batch: 12 block reads instead of 320 record reads).
    private void AnnounceEpoch(int epoch)
    {
        if (_lazy is { WantsEpochRows: true } && ClaimEpochRows(epoch)) GiveEpochRows(epoch);
    }

    private int _epochRowsGiven = -1;

    // True for the first caller to reach an epoch later than any announced: epochs only move forward, so workers serving
    // batches on both sides of an epoch boundary do not make the table's epoch flip back and forth.
    private bool ClaimEpochRows(int epoch)
    {
        while (true)
        {
            int given = Volatile.Read(ref _epochRowsGiven);
            if (epoch <= given) return false;
            if (Interlocked.CompareExchange(ref _epochRowsGiven, epoch, given) == given) return true;
        }
    }

    // Lazy tables that plan their reads per epoch (remote ones) learn which rows this sampler's batches of the epoch will
    // need: one plan per batch (microseconds each), once per epoch, into one flag per row. Epochs of more than 2^26 drawn
    // rows (about a second of planning) are not announced: such a table then reads per batch.
    private void GiveEpochRows(int epoch)
    {
        int n = BatchSize;
        if ((long)Count * n > 1L << 26) return;
        var needed = new bool[_lazy!.Count];
        var idx = new int[n];
        var ord = new int[n];
        for (int b = 0; b < Count; b++)
        {
            _planner.Fill(new PlanKey(_options.Seed, epoch, b), idx, ord);
            foreach (int r in idx) if ((uint)r < (uint)needed.Length) needed[r] = true;
        }
        _lazy.EpochRows(epoch, needed);
    }

    private void WarnReplacement(ReadOnlySpan<int> ordinals)
    {
        if (!_anyTooSmall) return;
        foreach (int o in ordinals)
        {
            if (o >= 0 && _tooSmall[o] && Volatile.Read(ref _warned[o]) == 0 && Interlocked.Exchange(ref _warned[o], 1) == 0)
                LogReplacement(_logger, _index.LabelOf(o), _index.CountOf(o), ExamplesPerClassPerBatch, null);
        }
    }

    private Batch Augment(Batch batch, bool warm)
    {
        if (_augmenter is null) return batch;
        Batch result;
        try
        {
            result = _augmenter.Augment(batch, NumAugmentationsPerExample, warm);
        }
        catch
        {
            batch.Dispose();
            throw;
        }
        if (result != batch) batch.Dispose();
        return result;
    }
}
