namespace Samplers;

/// <summary>One example produced by a loader: its bytes (elements of the table's dtype, row-major) and its shape.</summary>
/// <param name="Data">The example's bytes; the loader hands them over and must not change them afterwards (they may be cached).</param>
/// <param name="Shape">The example's shape (no -1).</param>
public sealed record LoadedExample(byte[] Data, int[] Shape);

/// <summary>
/// A bounded, thread-safe cache of loaded (decoded) examples, bounded both by total bytes and by count, that keeps the
/// rows in use: when room is needed, a row not used since the last sweep goes first (the CLOCK approximation of least
/// recently used). Shared by every thread that builds batches (the indexer, a prefetching loader's workers).
/// </summary>
/// <remarks>One cache serves one table (a second table given the same cache is refused). Two threads missing the same row at once both load it and the first to finish is kept: loads are pure, so
/// this costs time, never correctness. A failed load is never cached.
/// <para>Why CLOCK and not a list in exact recency order: a hit then only sets a flag in the row's slot (found through an
/// array indexed by row), where moving a list node touched three scattered nodes per hit; a batch of 320 cached rows out
/// of 60,000 took about 75 us of lookups that way, most of a cached batch's time.</para></remarks>
public sealed class ExampleCache
{
    private readonly object _gate = new();
    private int[] _slotOf = [];                 // row -> its slot + 1 (0: not held); grown to the rows seen
    private Entry[] _slots = new Entry[16];     // the clock: held examples, in no particular order
    private int _used;                          // slots [0, _used) have been filled at least once
    private readonly Stack<int> _free = new();  // emptied slots below _used
    private int _hand;                          // the next slot a sweep looks at
    private int _count;
    private long _bytes;
    private long _hits, _misses, _evictions;
    private object? _owner; // rows are keys, so one cache serves one table

    private struct Entry
    {
        public LoadedExample? Example;
        public int Row;
        public bool Used; // looked up since the hand last passed
    }

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
    public int Count { get { lock (_gate) return _count; } }

    /// <summary>Bytes of example data held now.</summary>
    public long Bytes { get { lock (_gate) return _bytes; } }

    /// <summary>Lookups that found the row.</summary>
    public long Hits => Interlocked.Read(ref _hits);

    /// <summary>Lookups that did not.</summary>
    public long Misses => Interlocked.Read(ref _misses);

    /// <summary>Examples dropped to make room.</summary>
    public long Evictions => Interlocked.Read(ref _evictions);

    // The slot holding row, or -1. Under the lock.
    private int SlotOf(int row) => (uint)row < (uint)_slotOf.Length ? _slotOf[row] - 1 : -1;

    /// <summary>The cached example of <paramref name="row"/>, if held (and marks it used).</summary>
    public bool TryGet(int row, out LoadedExample example)
    {
        lock (_gate)
        {
            int slot = SlotOf(row);
            if (slot >= 0)
            {
                ref Entry e = ref _slots[slot];
                e.Used = true;
                example = e.Example!;
                _hits++;
                return true;
            }
            _misses++;
        }
        example = null!;
        return false;
    }

    /// <summary>Looks up every row of <paramref name="rows"/> under one lock, writing hits to <paramref name="into"/>
    /// (misses stay null); returns the number of misses. A batch's rows cost one lock instead of one each.</summary>
    internal int TryGetMany(ReadOnlySpan<int> rows, LoadedExample?[] into)
    {
        int misses = 0;
        lock (_gate)
        {
            for (int i = 0; i < rows.Length; i++)
            {
                int slot = SlotOf(rows[i]);
                if (slot < 0) { misses++; continue; }
                ref Entry e = ref _slots[slot];
                e.Used = true;
                into[i] = e.Example;
            }
            _hits += rows.Length - misses; // a miss is counted by the lookup of the load that follows
        }
        return misses;
    }

    /// <summary>Whether <paramref name="row"/> is held, without counting a lookup or marking it used.</summary>
    internal bool Contains(int row)
    {
        lock (_gate) return SlotOf(row) >= 0;
    }

    /// <summary>Adds <paramref name="example"/> for <paramref name="row"/> (kept if already present), dropping rows not used
    /// lately until both bounds hold. An example larger than the byte bound is not kept.</summary>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="row"/> is negative (rows are a table's row numbers).</exception>
    public void Add(int row, LoadedExample example)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(row);
        ArgumentNullException.ThrowIfNull(example);
        long size = example.Data.Length;
        if (size > MaxBytes || MaxCount == 0) return;
        lock (_gate)
        {
            if (SlotOf(row) >= 0) return;
            while (_count > 0 && (_bytes + size > MaxBytes || _count + 1 > MaxCount)) EvictOne();
            if (row >= _slotOf.Length)
                Array.Resize(ref _slotOf, (int)Math.Min(Array.MaxLength, Math.Max(row + 1L, 2L * _slotOf.Length)));
            int slot;
            if (_free.Count > 0) slot = _free.Pop();
            else
            {
                if (_used == _slots.Length) Array.Resize(ref _slots, (int)Math.Min(Array.MaxLength, 2L * _slots.Length));
                slot = _used++;
            }
            _slots[slot] = new Entry { Example = example, Row = row, Used = false };
            _slotOf[row] = slot + 1;
            _count++;
            _bytes += size;
        }
    }

    // Sweeps the hand to the first held row not used since the hand last passed it (clearing the marks it passes), and
    // drops that row. Under the lock, with at least one row held.
    private void EvictOne()
    {
        while (true)
        {
            if (_hand >= _used) _hand = 0;
            ref Entry e = ref _slots[_hand];
            int slot = _hand++;
            if (e.Example is null) continue;
            if (e.Used) { e.Used = false; continue; }
            _bytes -= e.Example.Data.Length;
            _slotOf[e.Row] = 0;
            e = default;
            _free.Push(slot);
            _count--;
            _evictions++;
            return;
        }
    }

    /// <summary>Drops every example (the counters are kept).</summary>
    public void Clear()
    {
        lock (_gate)
        {
            Array.Clear(_slotOf);
            Array.Clear(_slots);
            _free.Clear();
            _used = 0; _hand = 0; _count = 0; _bytes = 0;
        }
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
