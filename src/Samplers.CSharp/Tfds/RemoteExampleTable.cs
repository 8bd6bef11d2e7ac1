using System.Buffers.Binary;
using System.Collections.Concurrent;
using System.Globalization;
using Samplers.Storage;

namespace Samplers.Tfds;

/// <summary>
/// A lazy table over a TFDS dataset in object storage (<see cref="ObjectStoreAccess.Remote"/>): its rows are the records
/// the split specs select, in exactly the order the disk load produces, and its labels come from the record index, so
/// a sampler plans batches before any example is read. Each batch's missing records are fetched by ranged reads
/// (sorted by shard and offset, neighbours merged, in parallel under a bound), their framing CRCs checked, decoded as
/// the disk load decodes them, and kept in the table's <see cref="LazyExampleTable.Cache"/>; the coming batches' records
/// are read ahead in the background. Every read names the ETag the index was built from: a replaced object fails with
/// an <see cref="ObjectChangedException"/> (wrapped in the <see cref="ExampleLoadException"/> of the row), never mixes versions.
/// </summary>
/// <remarks>Made by <see cref="TFDatasetMultiShotMemorySampler.LoadAsync"/> with <see cref="ObjectStoreAccess.Remote"/>
/// (then disposed with the sampler). Thread-safe. The counters (<see cref="Requests"/>, <see cref="BytesFetched"/>, ...)
/// cover the ranged reads made after opening; <see cref="OpenRequests"/> and <see cref="OpenBytes"/> what opening cost.</remarks>
public sealed class RemoteExampleTable : LazyExampleTable, IDisposable
{
    private const int Framing = 16; // 8 length + 4 length CRC + 4 data CRC
    private readonly CountingStore _store;
    private readonly ObjectStoreLocation _location;
    private readonly RemoteAccessOptions _options;
    private readonly int _retries;
    private readonly TimeSpan _timeout;
    private readonly RemoteDecoder _decoder;
    private readonly (string Key, string ETag, long Size)[] _shards;
    private readonly int[] _shard;
    private readonly long[] _record, _offset;
    private readonly int[] _length;
    private readonly SemaphoreSlim _requests;
    private readonly ConcurrentDictionary<int, Task> _inflight = new();
    private readonly ConcurrentDictionary<Task, byte> _readAheads = new();
    private readonly CancellationTokenSource _disposed = new();
    private long _requestCount, _bytes, _records, _recordBytes, _readAheadStarted;

    internal RemoteExampleTable(CountingStore store, ObjectStoreLocation location, RemoteAccessOptions options, int retries, TimeSpan timeout, RemoteDecoder decoder,
        (string Key, string ETag, long Size)[] shards, int[] shard, long[] record, long[] offset, int[] length, long[] labels, IReadOnlyList<string> classNames,
        DatasetBuilderDir builder, IReadOnlyList<SplitSelection> selections, IReadOnlyList<RecordIndexInfo> indexes, long openRequests, long openBytes)
        : base(labels.Length, decoder.DType, decoder.Shape, labels, classNames, new ExampleCache(options.CacheBytes))
    {
        _store = store; _location = location; _options = options; _retries = retries; _timeout = timeout; _decoder = decoder;
        _shards = shards; _shard = shard; _record = record; _offset = offset; _length = length;
        _requests = new SemaphoreSlim(options.MaxParallelRequests);
        Builder = builder; Selections = selections; Indexes = indexes; OpenRequests = openRequests; OpenBytes = openBytes;
        long sum = 0;
        foreach (int l in length) sum += l + Framing;
        RecordBytesTotal = sum;
    }

    /// <summary>The dataset's version folder as resolved (its metadata is the local copy's).</summary>
    public DatasetBuilderDir Builder { get; }

    /// <summary>One selection per split spec, in order.</summary>
    public IReadOnlyList<SplitSelection> Selections { get; }

    /// <summary>The record index of each split read, and where it came from.</summary>
    public IReadOnlyList<RecordIndexInfo> Indexes { get; }

    /// <summary>Requests made while opening (listing, metadata not yet local, index reads or shard scans, publishing).</summary>
    public long OpenRequests { get; }

    /// <summary>Body bytes read while opening (a scan reads every shard once; a reused index reads none).</summary>
    public long OpenBytes { get; }

    /// <summary>The stored bytes (data plus 16 bytes of framing) of all the table's records.</summary>
    public long RecordBytesTotal { get; }

    /// <summary>Ranged reads made for examples (batches, read-ahead, single rows).</summary>
    public long Requests => Interlocked.Read(ref _requestCount);

    /// <summary>Body bytes those reads returned (records plus the gaps merged between them).</summary>
    public long BytesFetched => Interlocked.Read(ref _bytes);

    /// <summary>Records fetched and decoded.</summary>
    public long RecordsFetched => Interlocked.Read(ref _records);

    /// <summary>The stored bytes (data plus framing) of the records fetched: <see cref="BytesFetched"/> minus the merged gaps.</summary>
    public long RecordBytesFetched => Interlocked.Read(ref _recordBytes);

    /// <summary>Read-ahead requests started (one per coming batch with rows missing from the cache).</summary>
    public long ReadAheadsStarted => Interlocked.Read(ref _readAheadStarted);

    /// <summary>The object and record of <paramref name="row"/>: <c>s3://bucket/key#record</c>.</summary>
    public override string KeyText(int row) =>
        $"{_location.Scheme}://{_location.Bucket}/{_shards[_shard[row]].Key}#{_record[row].ToString(CultureInfo.InvariantCulture)}";

    /// <summary>Waits until the read-ahead started so far has finished (its failures are not reported here: the batch
    /// that needs a row reports them).</summary>
    public async Task WaitForReadAheadAsync()
    {
        foreach (var t in _readAheads.Keys.ToArray())
        {
            try { await t.ConfigureAwait(false); }
            catch (Exception e) when (e is not null) { }
        }
    }

    internal override int ReadAheadBatches => _options.ReadAheadBatches;

    internal override void ReadAhead(ReadOnlySpan<int> rows)
    {
        if (_disposed.IsCancellationRequested) return;
        var missing = new List<int>(rows.Length);
        foreach (int row in rows)
            if ((uint)row < (uint)Count && !Cache.Contains(row) && !_inflight.ContainsKey(row) && !missing.Contains(row)) missing.Add(row);
        if (missing.Count == 0) return;
        Interlocked.Increment(ref _readAheadStarted);
        int[] wanted = missing.ToArray();
        Task t = Task.Run(() => FetchMissingAsync(wanted, _disposed.Token));
        _readAheads[t] = 0;
        // Failures are the foreground's to report: the row is loaded again when a batch needs it.
        t.ContinueWith(done => { _ = done.Exception; _readAheads.TryRemove(done, out _); }, CancellationToken.None, TaskContinuationOptions.ExecuteSynchronously, TaskScheduler.Default);
    }

    // Dense epochs are read in blocks: each shard's rows, in file order, cut into runs of consecutive records of at most
    // BlockBytes. When the records an epoch's batches need make up at least 5/6 of a block's bytes (so a whole-block read
    // fetches at most 1.2x what the epoch needs), the first batch that needs any of its rows reads the whole block once,
    // and every record of it the epoch needs is kept as verified record data (encoded, as stored: far smaller than
    // decoded), decoded when a batch or its read-ahead needs it, and again from the kept bytes if the decoded cache has
    // dropped it meanwhile. Only when the records the epoch needs fit the kept-bytes bound (a quarter of CacheBytes).
    private sealed record EpochNeed(bool[] Needed, bool[] DenseBlock)
    {
        public bool AnyDense { get; } = Array.IndexOf(DenseBlock, true) >= 0;
    }
    private volatile EpochNeed? _need;
    private (int Shard, long Start, long End, int[] Rows)[]? _blocks;
    private int[]? _blockOf;
    private readonly Lock _blockGate = new();
    private readonly ConcurrentDictionary<int, Task> _blockReads = new();
    private readonly ConcurrentDictionary<int, byte[]> _raw = new();
    private long _rawBytes, _blockCount;

    private long KeptBytesBound => Cache.MaxBytes / 4;

    /// <summary>The most bytes of one block read (1 MiB: at a store's usual latency and bandwidth, larger reads gain
    /// little and delay the batch that waits for them).</summary>
    private const long BlockBytes = 1 << 20;

    internal override bool WantsEpochRows => true;

    /// <summary>Whole-block reads made so far (dense epochs, see <see cref="EpochRows"/>).</summary>
    public long BlockReads => Interlocked.Read(ref _blockCount);

    internal override void EpochRows(int epoch, bool[] needed)
    {
        if (needed.Length != Count) return;
        long encoded = 0;
        for (int r = 0; r < needed.Length; r++) if (needed[r]) encoded += _length[r] + Framing;
        var blocks = Blocks();
        var dense = new bool[blocks.Length];
        if (encoded <= KeptBytesBound)
        {
            for (int b = 0; b < blocks.Length; b++)
            {
                long want = 0;
                foreach (int r in blocks[b].Rows) if (needed[r]) want += _length[r] + Framing;
                dense[b] = 6 * want >= 5 * (blocks[b].End - blocks[b].Start);
            }
        }
        _need = new EpochNeed(needed, dense);
    }

    private (int Shard, long Start, long End, int[] Rows)[] Blocks()
    {
        lock (_blockGate)
        {
            if (_blocks is not null) return _blocks;
            var order = new int[Count];
            for (int i = 0; i < order.Length; i++) order[i] = i;
            Array.Sort(order, (a, b) => _shard[a] != _shard[b] ? _shard[a].CompareTo(_shard[b]) : _offset[a].CompareTo(_offset[b]));
            var blocks = new List<(int, long, long, int[])>();
            var blockOf = new int[Count];
            var run = new List<int>();
            long start = 0, end = 0;
            foreach (int r in order)
            {
                long rs = _offset[r], re = rs + _length[r] + Framing;
                // A new block at a shard change, a gap (rows the table does not select), or the size bound.
                if (run.Count > 0 && (_shard[r] != _shard[run[0]] || rs != end || re - start > BlockBytes))
                {
                    blocks.Add((_shard[run[0]], start, end, run.ToArray()));
                    run.Clear();
                }
                if (run.Count == 0) start = rs;
                run.Add(r);
                end = re;
                blockOf[r] = blocks.Count;
            }
            if (run.Count > 0) blocks.Add((_shard[run[0]], start, end, run.ToArray()));
            _blockOf = blockOf;
            return _blocks = blocks.ToArray();
        }
    }

    // Reads the dense blocks holding any of rows (each block once per table); returns when they are all in.
    private async Task ReadBlocksAsync(int[] rows, EpochNeed need, CancellationToken ct)
    {
        var blocks = Blocks();
        int[] blockOf = _blockOf!;
        var waits = new List<Task>();
        foreach (int row in rows)
        {
            if ((uint)row >= (uint)Count || Cache.Contains(row) || _raw.ContainsKey(row)) continue;
            int b = blockOf[row];
            if (!need.DenseBlock[b]) continue;
            var tcs = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            Task held = _blockReads.GetOrAdd(b, tcs.Task);
            if (held != tcs.Task) { if (!held.IsCompleted) waits.Add(held); continue; }
            waits.Add(ReadBlockAsync(b, blocks[b], need.Needed, tcs, ct));
        }
        // A failed block read is not retried here: its rows are fetched one by one below, which reports the error.
        foreach (var w in waits)
        {
            try { await w.ConfigureAwait(false); }
            catch (Exception e) when (e is not OperationCanceledException) { }
        }
    }

    private async Task ReadBlockAsync(int b, (int Shard, long Start, long End, int[] Rows) block, bool[] needed, TaskCompletionSource done, CancellationToken ct)
    {
        try
        {
            var keep = new List<int>(block.Rows.Length);
            foreach (int r in block.Rows)
                if (needed[r] && !_raw.ContainsKey(r)) keep.Add(r); // decoded ones too: the decoded cache may drop them
            Interlocked.Increment(ref _blockCount);
            using var linked = CancellationTokenSource.CreateLinkedTokenSource(ct, _disposed.Token);
            await FetchRangeAsync(new Range(block.Shard, block.Start, block.End, keep), admit: false, linked.Token, keepRaw: true).ConfigureAwait(false);
            done.TrySetResult();
        }
        catch (Exception e)
        {
            _blockReads.TryRemove(b, out _); // a later batch may try the block again
            done.TrySetException(e);
            throw;
        }
    }

    /// <summary>The framed bytes of <paramref name="row"/>'s record in its shard (what a read of it fetches).</summary>
    internal long RecordBytesOf(int row) => _length[row] + Framing;

    internal override void FetchMissing(int[] rows) => FetchMissingAsync(rows, CancellationToken.None).GetAwaiter().GetResult();

    internal override async Task FetchMissingAsync(int[] rows, CancellationToken cancellationToken)
    {
        if (_need is { AnyDense: true } need) await ReadBlocksAsync(rows, need, cancellationToken).ConfigureAwait(false);
        // Each row is claimed by one caller (a batch or a read-ahead), which decodes it from the bytes a block read kept or
        // fetches it; another caller that needs it waits for that one instead of doing the work twice.
        var kept = new List<(int Row, byte[] Data)>();
        var claimed = new List<int>();
        var mine = new Dictionary<int, TaskCompletionSource>();
        var waits = new List<Task>();
        foreach (int row in rows)
        {
            // A row out of range is left to Load, which reports it.
            if ((uint)row >= (uint)Count || Cache.Contains(row)) continue;
            var tcs = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            Task held = _inflight.GetOrAdd(row, tcs.Task);
            if (held != tcs.Task) { waits.Add(held); continue; }
            mine[row] = tcs;
            if (_raw.TryGetValue(row, out byte[]? data)) kept.Add((row, data));
            else claimed.Add(row);
        }
        try
        {
            // A record that fails to decode is left out here; Load decodes it again and reports it for its batch.
            if (kept.Count > 0)
                Parallel.ForEach(kept, k =>
                {
                    try { Admit(k.Row, DecodeKept(k.Row, k.Data)); }
                    catch (Exception e) when (e is not OperationCanceledException) { }
                });
            if (claimed.Count > 0) await FetchAsync(claimed, cancellationToken).ConfigureAwait(false);
        }
        finally
        {
            foreach (var (row, tcs) in mine)
            {
                _inflight.TryRemove(row, out _);
                tcs.TrySetResult();
            }
        }
        // Rows another fetch (a read-ahead) had in flight: wait for it; a row it failed on is loaded again by Load.
        foreach (var w in waits) await w.ConfigureAwait(false);
    }

    /// <inheritdoc/>
    protected override LoadedExample LoadCore(int row) => LoadCoreAsync(row, CancellationToken.None).AsTask().GetAwaiter().GetResult();

    /// <inheritdoc/>
    protected override async ValueTask<LoadedExample> LoadCoreAsync(int row, CancellationToken cancellationToken)
    {
        if (_raw.TryGetValue(row, out byte[]? kept)) return DecodeKept(row, kept);
        var got = await FetchRangeAsync(new Range(_shard[row], _offset[row], _offset[row] + _length[row] + Framing, [row]), admit: false, cancellationToken).ConfigureAwait(false);
        return got[0];
    }

    /// <summary>Contiguous bytes [Start, End) of one shard holding the records of <see cref="Rows"/> (sorted by offset).</summary>
    private sealed record Range(int Shard, long Start, long End, List<int> Rows);

    private async Task FetchAsync(List<int> rows, CancellationToken ct)
    {
        rows.Sort((a, b) => _shard[a] != _shard[b] ? _shard[a].CompareTo(_shard[b]) : _offset[a].CompareTo(_offset[b]));
        var ranges = new List<Range>();
        long wanted = 0, waste = 0; // of the range being grown
        foreach (int row in rows)
        {
            long start = _offset[row], end = start + _length[row] + Framing;
            long gap = ranges.Count > 0 ? start - ranges[^1].End : -1;
            // Merge a neighbour when the gap is small, the range stays under its bound, and the gaps stay at most a fifth of
            // the records' bytes in the range: bytes fetched stay within 1.2x the records' bytes whatever the gap setting.
            if (ranges.Count > 0 && ranges[^1] is { } last && last.Shard == _shard[row] && gap >= 0 && gap <= _options.CoalesceGapBytes
                && end - last.Start <= _options.MaxRangeBytes && 5 * (waste + gap) <= wanted + (end - start))
            {
                ranges[^1] = last with { End = end };
                last.Rows.Add(row);
                wanted += end - start;
                waste += gap;
            }
            else
            {
                ranges.Add(new Range(_shard[row], start, end, [row]));
                wanted = end - start;
                waste = 0;
            }
        }
        // The first range that fails stops the others (the batch fails anyway): on a store that stalls, a batch fails after
        // one round of its parallel reads instead of after every round (each up to (1 + Retries) x Timeout).
        using var linked = CancellationTokenSource.CreateLinkedTokenSource(ct, _disposed.Token);
        async Task FetchOrStop(Range r)
        {
            try { await FetchRangeAsync(r, admit: true, linked.Token).ConfigureAwait(false); }
            catch (Exception e) when (e is not OperationCanceledException)
            {
                try { linked.Cancel(); } catch (ObjectDisposedException) { }
                throw;
            }
        }
        Task[] reads = ranges.Select(FetchOrStop).ToArray();
        try
        {
            await Task.WhenAll(reads).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (!ct.IsCancellationRequested && !_disposed.IsCancellationRequested)
        {
            // Stopped by a failed range: report that failure, not the cancellations it caused.
            Task? failed = reads.FirstOrDefault(t => t.IsFaulted && t.Exception!.InnerException is not OperationCanceledException);
            if (failed is null) throw;
            System.Runtime.ExceptionServices.ExceptionDispatchInfo.Capture(failed.Exception!.InnerException!).Throw();
        }
    }

    // One range read (resumed when an answer is short or cut), each record's framing checked, decoded, and admitted to
    // the cache (or, for a block read, kept encoded).
    private async Task<LoadedExample[]> FetchRangeAsync(Range range, bool admit, CancellationToken ct, bool keepRaw = false)
    {
        var (key, etag, _) = _shards[range.Shard];
        string where = $"{_location.Scheme}://{_location.Bucket}/{key}";
        long length = range.End - range.Start;
        byte[] buffer;
        try
        {
            buffer = await ReadAsync(key, where, range.Start, length, etag, ct).ConfigureAwait(false);
        }
        catch (Exception e) when (e is not OperationCanceledException)
        {
            throw Failed(range.Rows[0], e);
        }
        var result = new LoadedExample[range.Rows.Count];
        for (int i = 0; i < range.Rows.Count; i++)
        {
            int row = range.Rows[i];
            LoadedExample example;
            try
            {
                int at = (int)(_offset[row] - range.Start);
                var location = new RecordLocation(where, _record[row], _offset[row]);
                ReadOnlySpan<byte> data = Unframe(buffer.AsSpan(at, _length[row] + Framing), location);
                if (keepRaw)
                {
                    // A block read: verified, kept encoded until a batch needs it.
                    Keep(row, data);
                    Interlocked.Increment(ref _records);
                    Interlocked.Add(ref _recordBytes, _length[row] + Framing);
                    continue;
                }
                example = _decoder.Decode(data, location, Labels[row]);
                // In a dense epoch every needed record read is kept too, so one the decoded cache drops is decoded again
                // from its bytes instead of fetched again.
                if (_need is { AnyDense: true } need && need.Needed[row]) Keep(row, data);
            }
            catch (Exception e) when (e is not OperationCanceledException)
            {
                throw Failed(row, e);
            }
            Interlocked.Increment(ref _records);
            Interlocked.Add(ref _recordBytes, _length[row] + Framing);
            result[i] = admit ? Admit(row, example) : example;
        }
        return result;
    }

    // Keeps a verified record's data for later decoding; past the bound it is simply not kept (a batch that needs it
    // fetches it alone).
    private void Keep(int row, ReadOnlySpan<byte> data)
    {
        if (_raw.ContainsKey(row) || Interlocked.Read(ref _rawBytes) + data.Length > KeptBytesBound) return;
        byte[] copy = data.ToArray();
        if (_raw.TryAdd(row, copy)) Interlocked.Add(ref _rawBytes, copy.Length);
    }

    // A row brought along by an earlier read: its verified record data, decoded now.
    private LoadedExample DecodeKept(int row, byte[] data)
    {
        var (key, _, _) = _shards[_shard[row]];
        var location = new RecordLocation($"{_location.Scheme}://{_location.Bucket}/{key}", _record[row], _offset[row]);
        try
        {
            return _decoder.Decode(data, location, Labels[row]);
        }
        catch (Exception e) when (e is not OperationCanceledException)
        {
            throw Failed(row, e);
        }
    }

    // The record's data after checking its framing: the length the index gave, both masked CRC-32Cs.
    private ReadOnlySpan<byte> Unframe(ReadOnlySpan<byte> framed, RecordLocation location)
    {
        ulong length = BinaryPrimitives.ReadUInt64LittleEndian(framed);
        uint lengthCrc = BinaryPrimitives.ReadUInt32LittleEndian(framed[8..]);
        if (Crc32C.ComputeMasked(framed[..8]) != lengthCrc)
            throw new DataFormatException($"{location}: corrupted record: length CRC 0x{lengthCrc:X8} stored, 0x{Crc32C.ComputeMasked(framed[..8]):X8} expected. The object is damaged, or the record index does not describe it.", location.FilePath, location.Offset);
        if (length != (ulong)(framed.Length - Framing))
            throw new DataFormatException($"{location}: the record header declares {length} data bytes, the record index {framed.Length - Framing}; the index does not describe this object.", location.FilePath, location.Offset);
        var data = framed.Slice(12, (int)length);
        uint dataCrc = BinaryPrimitives.ReadUInt32LittleEndian(framed[(12 + (int)length)..]);
        if (Crc32C.ComputeMasked(data) != dataCrc)
            throw new DataFormatException($"{location}: corrupted record: data CRC 0x{dataCrc:X8} stored, 0x{Crc32C.ComputeMasked(data):X8} expected (masked CRC-32C of {length} data bytes). The object is damaged.", location.FilePath, location.Offset);
        return data;
    }

    // The range's bytes: one request normally; a short answer or a cut body is resumed from where it stopped (ResumingRange).
    private async Task<byte[]> ReadAsync(string key, string where, long from, long length, string etag, CancellationToken ct)
    {
        await _requests.WaitAsync(ct).ConfigureAwait(false);
        try
        {
            byte[] buffer = await ResumingRange.ReadAllAsync(_store, key, where, from, checked((int)length), etag.Length > 0 ? etag : null, _retries, _timeout,
                () => Interlocked.Increment(ref _requestCount), ct).ConfigureAwait(false);
            Interlocked.Add(ref _bytes, buffer.Length);
            return buffer;
        }
        finally
        {
            _requests.Release();
        }
    }

    /// <summary>Stops read-ahead and releases the store's client. Batches already built stay valid.</summary>
    public void Dispose()
    {
        if (_disposed.IsCancellationRequested) return;
        _disposed.Cancel();
        try { Task.WaitAll(_readAheads.Keys.ToArray(), TimeSpan.FromSeconds(10)); }
        catch (AggregateException) { }
        _store.Dispose();
    }
}
