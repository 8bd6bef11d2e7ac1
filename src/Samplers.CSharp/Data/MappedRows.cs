using System.Buffers;
using System.IO.Hashing;
using System.IO.MemoryMappedFiles;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using Microsoft.Win32.SafeHandles;
using Samplers.Cache;

namespace Samplers;

/// <summary>
/// The example bytes of a fixed-shape table, read in place from a read-only memory mapping of a Parquet cache file
/// (docs/MAPPED.md). Rows live in "segments" (the PLAIN data pages of the <c>data</c> column): row r of a segment starts at
/// <c>segment start + r * (4 + stride)</c>, past the 4-byte length of each PLAIN BYTE_ARRAY value.
/// </summary>
/// <remarks>
/// Sealed, no virtual members: <see cref="ExampleTable.GetExample(int)"/> resolves a row with a division and a multiply,
/// as for the in-memory chunks. The file handle stays open for the table's life, so the mapping keeps serving the inode it
/// opened even if a writer renames a new cache over the path. The mapping is released when the table is disposed (or,
/// failing that, collected); a gather in progress holds a reference on the view (<see cref="Enter"/>), so a dispose from
/// another thread defers the unmapping until that gather is done instead of pulling the pages from under it.
/// </remarks>
internal sealed unsafe class MappedRows
{
    private readonly SafeFileHandle _file;
    private readonly MemoryMappedFile _map;
    private readonly MemoryMappedViewAccessor _view;
    private readonly byte* _base;
    private readonly long _length;
    private readonly FileIdentity? _identity; // (device, inode, size, mtime ns, ctime ns) at open; null off Linux
    private readonly FileLease? _lease;       // the kernel's word on writers, where granted; else the per-batch statx
    private readonly long[] _segmentStart;   // file offset of the first value's bytes in each segment
    private readonly int[] _segmentFirstRow; // first row of each segment, ascending; one extra entry = row count
    private readonly long[] _rowOrigin;      // start - first row * pitch of each segment, so row r is at origin + r * pitch; with uniform segments one entry per
                                             // index / rows-per-segment up to the last row's (the last segment's repeated), so no clamp or bounds check is needed
    private readonly int _rowsPerSegment;    // > 0 when every segment but the last has this many rows (division), else 0
    private readonly ulong _segmentDivisor;  // ceil(2^64 / _rowsPerSegment): index / _rowsPerSegment as one multiply (0 when 1 or 0)
    private readonly int _stride;
    private readonly int _pitch;
    private int _released;
    private int _unmapped;
    private readonly MappingGathers _gathers; // gathers between Enter and Exit (shared with the lease, which waits on it)
    private long _advisedRows;

    internal MappedRows(string path, SafeFileHandle file, MemoryMappedFile map, MemoryMappedViewAccessor view, long length,
        FileIdentity? identity, long[] segmentStart, int[] segmentFirstRow, int stride, FileLease? lease = null)
    {
        Path = path; _file = file; _map = map; _view = view; _length = length; _identity = identity; _lease = lease;
        _gathers = lease?.Gathers ?? new MappingGathers();
        _segmentStart = segmentStart; _segmentFirstRow = segmentFirstRow; _stride = stride; _pitch = stride + 4;
        byte* p = null;
        view.SafeMemoryMappedViewHandle.AcquirePointer(ref p);
        _base = p + view.PointerOffset;
        int segments = segmentStart.Length;
        int uniform = segments > 0 ? segmentFirstRow[1] - segmentFirstRow[0] : 0;
        for (int s = 0; s < segments - 1 && uniform > 0; s++)
            if (segmentFirstRow[s + 1] - segmentFirstRow[s] != uniform) uniform = 0;
        _rowsPerSegment = uniform;
        _segmentDivisor = DivisorOf(uniform);
        int rows = segmentFirstRow[segments];
        int origins = uniform > 0 && rows > 0 ? Math.Max(segments, (rows - 1) / uniform + 1) : segments;
        _rowOrigin = new long[origins];
        for (int i = 0; i < origins; i++)
        {
            int seg = Math.Min(i, segments - 1);
            _rowOrigin[i] = segmentStart[seg] - (long)segmentFirstRow[seg] * _pitch;
        }
    }

    // A division is 10-40 cycles and was made twice per row (prefetch and copy): the whole gap between a mapped and an
    // in-memory gather of small rows. So it is a multiply (Divide).
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private int SegmentOf(int index) => Divide(index, _segmentDivisor);

    /// <summary>The multiplier that makes <see cref="Divide"/> divide by <paramref name="d"/>: ceil(2^64 / d), or 0 for d &lt;= 1.</summary>
    internal static ulong DivisorOf(int d) => d > 1 ? ulong.MaxValue / (ulong)d + 1 : 0;

    /// <summary><paramref name="n"/> / d for 0 &lt;= n &lt; 2^31 and <paramref name="divisor"/> = <see cref="DivisorOf"/>(d)
    /// (n itself when the multiplier is 0, d = 1): the high word of a 64x64-bit product, exact for every 32-bit dividend
    /// (Lemire, Kaser and Kurz, "Faster remainder by direct computation", 2019).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static int Divide(int n, ulong divisor) =>
        divisor == 0 ? n : (int)Math.BigMul(divisor, (ulong)(uint)n, out _);

    ~MappedRows() => Release();

    /// <summary>The cache file mapped.</summary>
    internal string Path { get; }

    /// <summary>Rows passed to <see cref="Prefetch"/> inside the table so far (lets tests see the read-ahead happen).</summary>
    internal long AdvisedRows => Interlocked.Read(ref _advisedRows);

    /// <summary>True when the open verified the payload checksum (no valid stamp); false when a matching verification
    /// stamp let it skip reading the example bytes (lets tests prove which path an open took).</summary>
    internal bool PayloadVerifiedAtOpen { get; set; }

    /// <summary>The open file (held for the table's life).</summary>
    internal SafeFileHandle File => _file;

    /// <summary>Its size when opened.</summary>
    internal long FileLength => _length;

    /// <summary>The identity of the open file (statx on the handle) taken before its metadata was read (through the
    /// handle, before the file was mapped); null where it cannot be known (not Linux). Every batch compares the file with it (<see cref="CheckUnchanged"/>).</summary>
    internal FileIdentity? OpenIdentity => _identity;

    /// <summary>How a batch checks the file: "lease" (a memory read; writers wait for gathers), "statx" (one system call),
    /// or "size" (off Linux: a shrink only). Tests and diagnostics.</summary>
    internal string ChangeCheck => _lease is not null ? "lease" : _identity is not null ? "statx" : "size";

    /// <summary>Number of segments (data pages).</summary>
    internal int SegmentCount => _segmentStart.Length;

    /// <summary>Rows per segment when uniform (all but the last), else 0.</summary>
    internal int RowsPerSegment => _rowsPerSegment;

    /// <summary>The bytes of row <paramref name="index"/> (already range-checked by the table).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal ReadOnlySpan<byte> Row(int index)
    {
        if (_released != 0) ThrowDisposed();
        return new(Address(index), _stride);
    }

    /// <summary>The first byte of row <paramref name="index"/> (already range-checked by the table), for a gather
    /// between <see cref="Enter"/> and <see cref="Exit"/>: Enter refused a disposed table, and a dispose after it waits
    /// for Exit to unmap, so no per-row check is needed.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal ref byte RowRef(int index) => ref *Address(index);

    /// <summary>The first mapped byte; rows are at <see cref="Offset"/> from it (the same rules as <see cref="RowRef"/>).</summary>
    internal ref byte Origin => ref *_base;

    /// <summary>Where row <paramref name="index"/> starts, from <see cref="Origin"/> (already range-checked by the table).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal nint Offset(int index) => (nint)(Address(index) - _base);

    /// <summary>Keeps the mapping alive until <see cref="Exit"/>, even if the table is disposed meanwhile.</summary>
    /// <remarks>One atomic increment: the count is the one a dispose waits on before unmapping and a lease break waits
    /// on before letting a writer go (<see cref="FileLease"/>). Increment first, then read the flags: the other side sets
    /// its flag first, then reads the count, so one of the two always sees the other.</remarks>
    /// <exception cref="ObjectDisposedException">The table was disposed.</exception>
    internal void Enter()
    {
        Interlocked.Increment(ref _gathers.Count);
        if (Volatile.Read(ref _released) != 0)
        {
            Exit();
            ThrowDisposed();
        }
    }

    /// <summary>Ends an <see cref="Enter"/>; the last gather out of a disposed table unmaps it.</summary>
    internal void Exit()
    {
        if (Interlocked.Decrement(ref _gathers.Count) == 0 && Volatile.Read(ref _released) != 0) Unmap();
    }

    /// <summary>Releases the mapping and the file now (the finalizer is only a safety net).</summary>
    internal void Dispose()
    {
        Release();
        GC.SuppressFinalize(this);
    }

    [System.Diagnostics.CodeAnalysis.DoesNotReturn]
    private void ThrowDisposed() =>
        throw new ObjectDisposedException(nameof(ExampleTable), $"The table mapped from {Path} was disposed: its rows are no longer mapped. Keep the table (or the sampler that owns it) until its last batch is built.");

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private byte* Address(int index)
    {
        // index < rows (checked by the table), so a uniform table's index / rows-per-segment is inside _rowOrigin.
        int s = _rowsPerSegment > 0 ? SegmentOf(index) : FindSegment(index);
        return _base + Unsafe.Add(ref MemoryMarshal.GetArrayDataReference(_rowOrigin), s) + (long)index * _pitch;
    }

    // Pages of unequal sizes (another writer): the last segment starting at or before the row. Segments are never
    // empty (pages without values are not indexed), so first rows strictly increase.
    private int FindSegment(int index)
    {
        int s = Array.BinarySearch(_segmentFirstRow, 0, _segmentStart.Length, index);
        return s >= 0 ? s : ~s - 1;
    }

    /// <summary>Throws when the file changed in place since it was opened. With a lease (<see cref="FileLease"/>): when
    /// any process opened it for writing or truncated it since. Without: when its device, inode, size or mtime (ns) differ
    /// from <see cref="OpenIdentity"/> (<see cref="FileIdentity.Of"/>). Where no identity is known (not Linux), only
    /// a shrink is caught (reading past the end would kill the process with SIGBUS). Call between <see cref="Enter"/>
    /// and <see cref="Exit"/>.</summary>
    /// <remarks>With a lease, a memory read: the writer is held in its open() until the gathers in progress end, so
    /// none of them reads changed bytes or faults. Without, one <c>statx</c> on the handle, no allocation. ctime is not compared: unlinking the file or renaming a new
    /// one over its path (the way ParquetCache replaces caches, which keeps this inode's bytes intact) also sets it. Every
    /// <c>write</c> or truncation sets mtime to "now", so an in-place change is caught at the next batch unless the writer
    /// set mtime back afterwards (<c>touch -d</c>, <c>utimensat</c>); the verification stamp (which does hold ctime) then
    /// catches it at the next open. A change that lands during a gather is undefined for that batch, as for any mmap user
    /// (docs/MAPPED.md, "Safety").</remarks>
    /// <exception cref="DataFormatException">The file changed (or shrank) in place while mapped.</exception>
    internal void CheckUnchanged()
    {
        if (_lease is not null)
        {
            if (_lease.Broken) ThrowWriterAnnounced();
            return;
        }
        if (_identity is FileIdentity was && FileIdentity.Of(_file) is FileIdentity now)
        {
            if (now.Size != was.Size || now.MtimeNs != was.MtimeNs || now.Inode != was.Inode || now.Device != was.Device)
                ThrowChanged(was, now);
            return;
        }
        long size = RandomAccess.GetLength(_file);
        if (size < _length) ThrowChanged(new FileIdentity(0, 0, _length, 0, 0), new FileIdentity(0, 0, size, 0, 0));
    }

    [System.Diagnostics.CodeAnalysis.DoesNotReturn]
    private void ThrowChanged(FileIdentity was, FileIdentity now)
    {
        string what = now.Size < was.Size
            ? $"it shrank from {was.Size} to {now.Size} bytes (truncated in place by another program)"
            : now.Device != was.Device || now.Inode != was.Inode
                ? $"its device/inode changed from {was.Device}/{was.Inode} to {now.Device}/{now.Inode}"
                : $"another program wrote or truncated it in place (size {was.Size} -> {now.Size} bytes, mtime {was.MtimeNs} -> {now.MtimeNs} ns)";
        throw new DataFormatException(
            $"{Path}: the cache file changed in place while mapped: {what}; its rows may now be other bytes or zeros, so this batch is refused. " +
            "Replace cache files by writing a new file and renaming it over the old one (as ParquetCache does), never by writing into it; then reopen the table (load it again).",
            Path, now.Size, "data");
    }

    [System.Diagnostics.CodeAnalysis.DoesNotReturn]
    private void ThrowWriterAnnounced()
    {
        long size = RandomAccess.GetLength(_file);
        throw new DataFormatException(
            $"{Path}: the cache file changed in place while mapped: another program opened it for writing or truncated it (size when mapped {_length} bytes, now {size}); " +
            "its rows may now be other bytes or zeros, so this batch is refused. " +
            "Replace cache files by writing a new file and renaming it over the old one (as ParquetCache does), never by writing into it; then reopen the table (load it again).",
            Path, size, "data");
    }

    /// <summary>Appends every row's bytes, in row order, to <paramref name="hash"/> (what hashing <see cref="Row"/> of
    /// each row would append), reading the file through the handle into a pooled buffer instead of touching the mapping:
    /// a file truncated meanwhile ends the read early, which is a <see cref="DataFormatException"/>, where reading the
    /// mapping past the new end would kill the process (SIGBUS).</summary>
    /// <exception cref="DataFormatException">The file ends before the last row (it was truncated in place).</exception>
    internal void AppendRows(NonCryptographicHashAlgorithm hash)
    {
        if (_stride == 0 || _segmentStart.Length == 0) return;
        byte[] buffer = ArrayPool<byte>.Shared.Rent(1 << 20);
        try
        {
            long pitch = _pitch;
            for (int s = 0; s < _segmentStart.Length; s++)
            {
                long start = _segmentStart[s];
                long end = start + (long)(_segmentFirstRow[s + 1] - _segmentFirstRow[s]) * pitch - 4; // past the last row
                for (long at = start; at < end;)
                {
                    int want = (int)Math.Min(buffer.Length, end - at);
                    int got = 0;
                    while (got < want)
                    {
                        int n = RandomAccess.Read(_file, buffer.AsSpan(got, want - got), at + got);
                        if (n <= 0)
                            throw new DataFormatException(
                                $"{Path}: the cache file ends at byte {at + got} while its rows were being checksummed (they reach byte {end}): " +
                                "it was truncated in place while being opened. Replace cache files by writing a new file and renaming it (as ParquetCache does).",
                                Path, at + got, "data");
                        got += n;
                    }
                    // Append the row bytes of [at, at + want), skipping the 4-byte value lengths between rows.
                    for (long o = at, stop = at + want; o < stop;)
                    {
                        long rel = (o - start) % pitch;
                        long take = Math.Min(rel < _stride ? _stride - rel : pitch - rel, stop - o);
                        if (rel < _stride) hash.Append(buffer.AsSpan((int)(o - at), (int)take));
                        o += take;
                    }
                    at += want;
                }
            }
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }
    }

    /// <summary>Asks the OS to start reading the pages of <paramref name="rows"/> into the page cache (Linux/macOS
    /// <c>madvise(MADV_WILLNEED)</c>; elsewhere nothing). Adjacent rows are merged into one call. Returns the calls made.</summary>
    internal int Prefetch(ReadOnlySpan<int> rows, int count)
    {
        if (!(OperatingSystem.IsLinux() || OperatingSystem.IsMacOS()) || rows.IsEmpty || _stride == 0 || _released != 0) return 0;
        long page = Environment.SystemPageSize;
        long mask = ~(page - 1);
        long runStart = -1, runEnd = -1;
        int calls = 0;
        foreach (int r in rows)
        {
            if ((uint)r >= (uint)count) continue; // rows come from plans over this table; anything else is ignored, not read
            long a = (long)(Address(r) - _base);
            long start = a & mask, end = (a + _stride + page - 1) & mask;
            if (runStart >= 0 && start <= runEnd && end >= runStart)
            {
                runStart = Math.Min(runStart, start);
                runEnd = Math.Max(runEnd, end);
                continue;
            }
            if (runStart >= 0) { Advise(runStart, runEnd); calls++; }
            runStart = start; runEnd = end;
        }
        if (runStart >= 0) { Advise(runStart, runEnd); calls++; }
        int inside = 0;
        foreach (int r in rows) if ((uint)r < (uint)count) inside++;
        Interlocked.Add(ref _advisedRows, inside);
        return calls;
    }

    private void Advise(long start, long end)
    {
        end = Math.Min(end, (_length + Environment.SystemPageSize - 1) & ~((long)Environment.SystemPageSize - 1));
        if (end <= start) return;
        // The view starts at a page boundary (offset 0 of the file), so these addresses are page-aligned.
        _ = madvise(_base + start, (nuint)(end - start), MadvWillNeed);
    }

    private const int MadvWillNeed = 3; // the same value on Linux and macOS

    [DllImport("libc", EntryPoint = "madvise", SetLastError = false)]
    private static extern int madvise(void* address, nuint length, int advice);

    private void Release()
    {
        if (Interlocked.Exchange(ref _released, 1) != 0) return;
        if (Volatile.Read(ref _gathers.Count) == 0) Unmap(); // else the last gather's Exit does
    }

    private void Unmap()
    {
        if (Interlocked.Exchange(ref _unmapped, 1) != 0) return;
        try
        {
            _lease?.Release(); // only now may a writer go on: no gather reads the mapping any more
            _view.SafeMemoryMappedViewHandle.ReleasePointer();
            _view.Dispose();
            _map.Dispose();
            _file.Dispose();
        }
        catch (ObjectDisposedException) { } // finalisation order: the handles may already be gone
    }
}
