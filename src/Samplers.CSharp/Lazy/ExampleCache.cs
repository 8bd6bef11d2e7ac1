namespace Samplers;

/// <summary>One example produced by a loader: its bytes (elements of the table's dtype, row-major) and its shape.</summary>
/// <param name="Data">The example's bytes; the loader hands them over and must not change them afterwards (they may be cached).</param>
/// <param name="Shape">The example's shape (no -1).</param>
public sealed record LoadedExample(byte[] Data, int[] Shape);

/// <summary>
/// A bounded, thread-safe cache of loaded (decoded) examples, least recently used first out, bounded both by total
/// bytes and by count. Shared by every thread that builds batches (the indexer, a prefetching loader's workers).
/// </summary>
/// <remarks>One cache serves one table (a second table given the same cache is refused). Two threads missing the same row at once both load it and the first to finish is kept: loads are pure, so
/// this costs time, never correctness. A failed load is never cached.</remarks>
public sealed class ExampleCache
{
    private readonly object _gate = new();
    private readonly Dictionary<int, LinkedListNode<(int Row, LoadedExample Example)>> _map = new();
    private readonly LinkedList<(int Row, LoadedExample Example)> _lru = new(); // first = most recent
    private long _bytes;
    private long _hits, _misses, _evictions;
    private object? _owner; // rows are keys, so one cache serves one table

    // Binds the cache to the table that uses it; a second table would read the first one's rows.
    internal void Claim(object table)
    {
        object? was = Interlocked.CompareExchange(ref _owner, table, null);
        if (was is not null && !ReferenceEquals(was, table))
            throw new ArgumentException("This ExampleCache already serves another lazy table; the cache is keyed by row, so give each table its own cache.", "cache");
    }

    /// <summary>A cache holding at most <paramref name="maxBytes"/> bytes of example data and <paramref name="maxCount"/> examples.</summary>
    /// <exception cref="ArgumentOutOfRangeException">A bound is negative.</exception>
    public ExampleCache(long maxBytes = 256L << 20, int maxCount = int.MaxValue)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(maxBytes);
        ArgumentOutOfRangeException.ThrowIfNegative(maxCount);
        MaxBytes = maxBytes; MaxCount = maxCount;
    }

    /// <summary>A cache that keeps nothing (every row is loaded each time it is needed, as the reference does).</summary>
    public static ExampleCache None => new(0, 0);

    /// <summary>The byte bound.</summary>
    public long MaxBytes { get; }

    /// <summary>The count bound.</summary>
    public int MaxCount { get; }

    /// <summary>Examples held now.</summary>
    public int Count { get { lock (_gate) return _map.Count; } }

    /// <summary>Bytes of example data held now.</summary>
    public long Bytes { get { lock (_gate) return _bytes; } }

    /// <summary>Lookups that found the row.</summary>
    public long Hits => Interlocked.Read(ref _hits);

    /// <summary>Lookups that did not.</summary>
    public long Misses => Interlocked.Read(ref _misses);

    /// <summary>Examples dropped to respect a bound.</summary>
    public long Evictions => Interlocked.Read(ref _evictions);

    /// <summary>The cached example of <paramref name="row"/>, marked most recently used; false when absent.</summary>
    public bool TryGet(int row, out LoadedExample example)
    {
        lock (_gate)
        {
            if (_map.TryGetValue(row, out var node))
            {
                _lru.Remove(node);
                _lru.AddFirst(node);
                example = node.Value.Example;
                _hits++;
                return true;
            }
            _misses++;
        }
        example = null!;
        return false;
    }

    /// <summary>Whether <paramref name="row"/> is held, without counting a lookup or refreshing it.</summary>
    internal bool Contains(int row)
    {
        lock (_gate) return _map.ContainsKey(row);
    }

    /// <summary>Adds <paramref name="example"/> for <paramref name="row"/> (unless present or larger than the byte bound),
    /// evicting least recently used examples until both bounds hold.</summary>
    public void Add(int row, LoadedExample example)
    {
        ArgumentNullException.ThrowIfNull(example);
        long size = example.Data.Length;
        if (size > MaxBytes || MaxCount == 0) return;
        lock (_gate)
        {
            if (_map.ContainsKey(row)) return;
            while (_map.Count > 0 && (_bytes + size > MaxBytes || _map.Count + 1 > MaxCount))
            {
                var last = _lru.Last!;
                _lru.RemoveLast();
                _map.Remove(last.Value.Row);
                _bytes -= last.Value.Example.Data.Length;
                _evictions++;
            }
            _map[row] = _lru.AddFirst((row, example));
            _bytes += size;
        }
    }

    /// <summary>Drops everything.</summary>
    public void Clear()
    {
        lock (_gate) { _map.Clear(); _lru.Clear(); _bytes = 0; }
    }
}

/// <summary>A row of a lazy table could not be loaded: the message names the row and its key (e.g. the file), and the
/// inner exception is the loader's. Only the batch (or slice) that needed the row fails; nothing is cached for it.</summary>
public sealed class ExampleLoadException : DataFormatException
{
    /// <summary>Creates the exception.</summary>
    public ExampleLoadException(string message, int row, string key, string? filePath = null, Exception? inner = null)
        : base(message, filePath, row, key, inner)
    {
        Row = row;
    }

    /// <summary>The table row whose example failed to load.</summary>
    public int Row { get; }
}
