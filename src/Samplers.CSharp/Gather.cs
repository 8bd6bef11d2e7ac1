using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace Samplers;

/// <summary>Copies table rows into contiguous batch memory. The hot path of every batch.</summary>
internal static class Gather
{
    /// <summary>The bytes a batch of <paramref name="indices"/> needs, and its example shape (written to <paramref name="shape"/>).</summary>
    /// <exception cref="RaggedBatchException">Two rows have different shapes.</exception>
    internal static long Measure(ExampleTable table, ReadOnlySpan<int> indices, Span<int> shape, BatchWhat what, ReadOnlySpan<int> rowIds = default)
    {
        if (!table.IsRagged)
        {
            table.ExampleShape.CopyTo(shape);
            return (long)table.ExampleBytes * indices.Length;
        }
        if (indices.IsEmpty)
        {
            // No rows: the declared shape with 0 where ragged keeps the batch a valid empty tensor.
            ReadOnlySpan<int> declared = table.ExampleShape;
            for (int d = 0; d < declared.Length; d++) shape[d] = Math.Max(0, declared[d]);
            return 0;
        }
        // rowIds: the rows to name in messages when indices point into a per-batch table (lazy rows).
        if (rowIds.IsEmpty) rowIds = indices;
        ReadOnlySpan<int> first = table.GetShape(indices[0]);
        for (int i = 1; i < indices.Length; i++)
        {
            ReadOnlySpan<int> s = table.GetShape(indices[i]);
            if (!s.SequenceEqual(first))
                throw new RaggedBatchException(
                    $"{what.Describe()} mixes example shapes [{string.Join(", ", first.ToArray())}] (row 0, example {rowIds[0]}) and [{string.Join(", ", s.ToArray())}] (row {i}, example {rowIds[i]}); " +
                    $"a batch is one tensor and needs one shape. The data is ragged (declared shape [{string.Join(", ", table.ExampleShape.ToArray())}]): " +
                    "pass a preprocess that resizes every example to one shape, e.g. Preprocess = Preprocessing.ResizeNearest(h, w).", i);
        }
        first.CopyTo(shape);
        return (long)table.GetExample(indices[0]).Length * indices.Length;
    }

    /// <summary>Copies the rows <paramref name="indices"/> back to back into <paramref name="destination"/> (which Measure sized).</summary>
    /// <remarks>Planned rows sit at scattered addresses, where the hardware prefetcher cannot guess the next one; so we
    /// prefetch the first <see cref="PrefetchBurstBytes"/> of rows before the loop, then, while copying row i, the row
    /// <see cref="PrefetchBytes"/> ahead (at least two rows; rows under <see cref="PrefetchMaxRowBytes"/>; a
    /// longer row is a stream the hardware follows). A prefetch never faults; without SSE the loop is a plain copy. A batch
    /// of <see cref="StreamingBytes"/> or more is written with non-temporal stores. A fixed-shape batch of <see cref="ParallelCopy.BytesPerWorker"/> bytes or more per thread is copied
    /// by the calling thread and thread-pool helpers, each taking whole parts of the batch (<see cref="ParallelCopy"/>):
    /// the bytes are the same for any split.</remarks>
    /// <para>A mapped table costs a memory read per batch where it holds a file lease, else one <c>statx</c> (a file
    /// written or truncated in place since it was opened fails with a clear error instead of serving other bytes or SIGBUS)
    /// and about the same per-row work as chunks: <see cref="ExampleTable.RowOffsets"/> and <see cref="ExampleTable.RowRef"/>
    /// resolve either backing with a null check and a multiply, no virtual call.</para>
    internal static void Rows(ExampleTable table, ReadOnlySpan<int> indices, Span<byte> destination) =>
        Rows(table, indices, destination, table.IsRagged ? 1 : ParallelCopy.Workers((long)table.ExampleBytes * indices.Length));

    /// <summary><see cref="Rows(ExampleTable, ReadOnlySpan{int}, Span{byte})"/> on <paramref name="workers"/> threads
    /// (fixed-shape tables; tests pin the count to compare splits).</summary>
    internal static void Rows(ExampleTable table, ReadOnlySpan<int> indices, Span<byte> destination, int workers)
    {
        int n = indices.Length;
        if (n == 0) return;
        MappedRows? mapped = table.Mapped;
        if (mapped is null)
        {
            CopyRows(table, indices, destination, workers);
            return;
        }
        // A dispose on another thread waits for this copy instead of unmapping the pages under it.
        mapped.Enter();
        try
        {
            mapped.CheckUnchanged();
            InsideMappedGather?.Invoke(mapped.Path);
            CopyRows(table, indices, destination, workers);
        }
        finally
        {
            mapped.Exit();
        }
    }

    /// <summary>Test hook: runs inside a mapped gather, after the change check and before the copy (lets tests hold a
    /// gather open while another thread writes the file).</summary>
    internal static Action<string>? InsideMappedGather;

    // Large fixed-shape batches are split into parts copied by the calling thread and thread-pool helpers (one copy
    // thread cannot use all of the memory bandwidth); small ones, and ragged tables, are copied here in one pass.
    private static unsafe void CopyRows(ExampleTable table, ReadOnlySpan<int> indices, Span<byte> destination, int workers)
    {
        bool streaming = Streams(table, indices.Length);
        if (workers <= 1 || table.IsRagged || indices.Length < 2)
        {
            CopyRun(table, indices, destination, streaming);
            return;
        }
        fixed (int* idx = indices)
        fixed (byte* dst = destination)
            ParallelCopy.Run(table, idx, indices.Length, dst, workers, streaming);
    }

    /// <summary>Batches of this many bytes or more are written with non-temporal stores.</summary>
    /// <remarks>A batch this large does not stay in the cache until its consumer reads it anyway, and an ordinary store
    /// first reads each destination line from memory (read for ownership): three memory transfers per byte copied
    /// instead of two. Measured on 64x4 rows of 224x224x3 (docs/PERFORMANCE.md). Below the bound the batch is likely
    /// still cached when the consumer reads it, so ordinary stores win.</remarks>
    internal const long StreamingBytes = 16L << 20;

    /// <summary>Whether a fixed-shape batch of <paramref name="rows"/> rows is copied with non-temporal stores.</summary>
    internal static bool Streams(ExampleTable table, int rows) =>
        Avx.IsSupported && !table.IsRagged && (long)table.ExampleBytes * rows >= StreamingBytes;

    /// <summary>Copies rows <paramref name="indices"/> back to back into <paramref name="destination"/> on this thread,
    /// with non-temporal stores when <paramref name="streaming"/> (the bytes written are the same either way).</summary>
    internal static unsafe void CopyRun(ExampleTable table, ReadOnlySpan<int> indices, Span<byte> destination, bool streaming = false)
    {
        if (indices.IsEmpty) return;
        if (!table.IsRagged)
        {
            CopyFixed(table, indices, destination, streaming);
            return;
        }
        int n = indices.Length;
        int ahead = 0, burst = 0;
        int rowBytes = Math.Max(1, table.GetExample(indices[0]).Length); // ragged: the first row's size stands for all
        if (Sse.IsSupported && rowBytes < PrefetchMaxRowBytes)
        {
            ahead = Math.Max(2, PrefetchBytes / rowBytes);
            burst = Math.Min(n, Math.Max(ahead, PrefetchBurstBytes / rowBytes));
            for (int i = 0; i < burst; i++) Prefetch(table.GetExample(indices[i]));
        }
        int at = 0;
        for (int i = 0; i < n; i++)
        {
            if (ahead > 0 && i + ahead >= burst && i + ahead < n) Prefetch(table.GetExample(indices[i + ahead]));
            ReadOnlySpan<byte> row = table.GetExample(indices[i]);
            row.CopyTo(destination.Slice(at, row.Length));
            at += row.Length;
        }
    }

    // Rows of one size: each row's address is one range check and a multiply (ExampleTable.RowRef), with no span made
    // per row; the rows ahead are prefetched as in the ragged loop.
    private static unsafe void CopyFixed(ExampleTable table, ReadOnlySpan<int> indices, Span<byte> destination, bool streaming)
    {
        int n = indices.Length;
        int rowBytes = table.ExampleBytes;
        if ((long)rowBytes * n > destination.Length)
            throw new ArgumentException($"The destination holds {destination.Length} bytes; {n} rows of {rowBytes} need {(long)rowBytes * n}.", nameof(destination));
        if (rowBytes == 0) return;
        int ahead = 0, burst = 0;
        if (Sse.IsSupported && rowBytes < PrefetchMaxRowBytes)
        {
            ahead = Math.Max(2, PrefetchBytes / rowBytes);
            burst = Math.Min(n, Math.Max(ahead, PrefetchBurstBytes / rowBytes));
            if (n <= SmallBatchRows && !streaming)
            {
                // Each row's place computed once (not once for its prefetch and again for its copy), as an offset from
                // the table's one base: a one-chunk or a mapped table (the usual cases).
                Span<nint> offsets = stackalloc nint[n];
                ref byte origin = ref table.RowOffsets(indices, offsets, out bool one);
                if (one)
                {
                    CopyByOffsets(ref origin, offsets, destination, rowBytes, ahead, burst);
                    GC.KeepAlive(table);
                    return;
                }
            }
            for (int i = 0; i < burst; i++) PrefetchRow(ref table.RowRef(indices[i]), rowBytes);
        }
        ref byte to = ref MemoryMarshal.GetReference(destination);
        for (int i = 0; i < n; i++)
        {
            if (ahead > 0 && i + ahead >= burst && i + ahead < n) PrefetchRow(ref table.RowRef(indices[i + ahead]), rowBytes);
            ref byte from = ref table.RowRef(indices[i]);
            ref byte at = ref Unsafe.Add(ref to, (nint)i * rowBytes);
            if (streaming)
            {
                fixed (byte* s = &from)
                fixed (byte* d = &at)
                    StreamCopy(s, d, rowBytes);
            }
            else Unsafe.CopyBlockUnaligned(ref at, ref from, (uint)rowBytes);
        }
        // Non-temporal stores are weakly ordered: fence them before another thread may read the batch.
        if (streaming) Sse.StoreFence();
        GC.KeepAlive(table); // a mapped table's rows are in its mapping: keep it until the last copy is done
    }

    /// <summary>Batches of at most this many rows have their rows' places computed once, on the stack.</summary>
    private const int SmallBatchRows = 512;

    private static void CopyByOffsets(ref byte origin, ReadOnlySpan<nint> offsets, Span<byte> destination, int rowBytes, int ahead, int burst)
    {
        int n = offsets.Length;
        for (int i = 0; i < burst; i++) PrefetchRow(ref Unsafe.Add(ref origin, offsets[i]), rowBytes);
        ref byte to = ref MemoryMarshal.GetReference(destination);
        for (int i = 0; i < n; i++)
        {
            if (i + ahead >= burst && i + ahead < n) PrefetchRow(ref Unsafe.Add(ref origin, offsets[i + ahead]), rowBytes);
            Unsafe.CopyBlockUnaligned(ref Unsafe.Add(ref to, (nint)i * rowBytes), ref Unsafe.Add(ref origin, offsets[i]), (uint)rowBytes);
        }
    }

    private static unsafe void PrefetchRow(ref byte row, int length)
    {
        // A prefetch never faults, so an address the GC may move a moment later is harmless.
        byte* p = (byte*)Unsafe.AsPointer(ref row);
        for (int off = 0; off < length; off += 64) Sse.Prefetch0(p + off);
    }

    // Copies with 32-byte non-temporal stores: an ordinary copy up to the destination's first 32-byte boundary, then
    // 128 bytes per step, then the rest.
    private static unsafe void StreamCopy(byte* source, byte* destination, int length)
    {
        int head = (int)((32 - ((nuint)destination & 31)) & 31);
        if (head > length) head = length;
        Buffer.MemoryCopy(source, destination, head, head);
        int i = head;
        for (; i + 128 <= length; i += 128)
        {
            Vector256<byte> a = Avx.LoadVector256(source + i), b = Avx.LoadVector256(source + i + 32);
            Vector256<byte> c = Avx.LoadVector256(source + i + 64), d = Avx.LoadVector256(source + i + 96);
            Avx.StoreAlignedNonTemporal(destination + i, a);
            Avx.StoreAlignedNonTemporal(destination + i + 32, b);
            Avx.StoreAlignedNonTemporal(destination + i + 64, c);
            Avx.StoreAlignedNonTemporal(destination + i + 96, d);
        }
        Buffer.MemoryCopy(source + i, destination + i, length - i, length - i);
    }

    private static unsafe void Prefetch(ReadOnlySpan<byte> row)
    {
        byte* p = (byte*)Unsafe.AsPointer(ref MemoryMarshal.GetReference(row));
        for (int off = 0; off < row.Length; off += 64) Sse.Prefetch0(p + off);
    }

    /// <summary>How far ahead of the copy the gather prefetches rows, in bytes (at least two rows).</summary>
    /// <remarks>About a quarter of a 32 KiB L1 data cache: a row prefetched much further ahead is evicted from L1 by
    /// the rows after it before it is copied. 10x32 MNIST rows (784 bytes) were gathered 7-15 % faster at 6-8 KiB than
    /// at the 64 KiB this was before (docs/PERFORMANCE.md).</remarks>
    internal const int PrefetchBytes = 8192;

    /// <summary>How many bytes of rows a gather prefetches before its first copy (a small batch entirely): the misses
    /// of a batch's first rows overlap each other instead of waiting on the short distance above; three quarters of L1.</summary>
    internal const int PrefetchBurstBytes = 24576;

    /// <summary>Rows of this many bytes or more are not prefetched by software.</summary>
    /// <remarks>Within a row of several pages the hardware prefetcher follows the stream by itself, and prefetching whole
    /// rows ahead only competes with it: 256 rows of 224x224x3 were copied at 1.4-1.7x a 2-thread memcpy with the
    /// prefetch and at 0.8-1.0x without (docs/PERFORMANCE.md).</remarks>
    internal const int PrefetchMaxRowBytes = 4096;
}

/// <summary>Names a batch in error messages; formatted only when an error is raised, so the hot path allocates nothing.</summary>
internal readonly record struct BatchWhat(int Kind, int A, int B)
{
    internal static BatchWhat Planned(int batchId, int epoch) => new(0, batchId, epoch);
    internal static BatchWhat Examples(int batchId, int epoch) => new(1, batchId, epoch);
    internal static BatchWhat Slice(int begin, int end) => new(2, begin, end);

    internal string Describe() => Kind switch
    {
        0 => $"Batch {A} of epoch {B}",
        1 => $"get_examples for batch {A} of epoch {B}",
        _ => $"The slice [{A}, {B})",
    };
}
