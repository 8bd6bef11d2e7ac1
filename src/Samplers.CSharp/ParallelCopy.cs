using System.Runtime.ExceptionServices;

namespace Samplers;

/// <summary>
/// The gather of a large batch on several threads: the rows are cut into contiguous parts, the calling thread and
/// thread-pool helpers claim parts one at a time until none is left, and the caller returns when every claimed part is
/// copied. Each part writes its own slice of the batch, so the bytes are the same for any split and any thread timing.
/// </summary>
/// <remarks>Allocation-free once warm: jobs are pooled objects queued as <see cref="IThreadPoolWorkItem"/> (no delegate,
/// no closure) and the caller's spans are passed as pointers, which stay valid because the caller's stack frame pins them
/// and does not return before the last part is done. A helper that starts late finds no part left and returns at once, so
/// a busy thread pool slows a batch down to the one-thread copy, never further.</remarks>
internal static unsafe class ParallelCopy
{
    /// <summary>Batch bytes per thread below which a gather stays on the calling thread (a hand-off costs microseconds).</summary>
    internal const long BytesPerWorker = 1 << 20;

    /// <summary>Parts per thread: more parts than threads lets the caller take over a helper's share when the helper is late.</summary>
    private const int PartsPerWorker = 4;

    /// <summary>Upper bound on the threads one gather uses; 0 means the processor count (tests pin it).</summary>
    internal static int MaxWorkers { get; set; }

    /// <summary>Threads for a gather of <paramref name="bytes"/> bytes (1 means: copy on the calling thread).</summary>
    internal static int Workers(long bytes, long bytesPerWorker = BytesPerWorker)
    {
        int cap = MaxWorkers > 0 ? MaxWorkers : Environment.ProcessorCount;
        return (int)Math.Clamp(bytes / Math.Max(1, bytesPerWorker), 1, Math.Max(1, cap));
    }

    private static readonly Stack<Job> Free = new();

    /// <summary>Copies rows <paramref name="indices"/>[0..<paramref name="count"/>) of <paramref name="table"/> (fixed shape)
    /// back to back to <paramref name="destination"/> with <paramref name="workers"/> threads, the caller included; with
    /// non-temporal stores when <paramref name="streaming"/> (<see cref="Gather.Streams"/>).</summary>
    internal static void Run(ExampleTable table, int* indices, int count, byte* destination, int workers, bool streaming = false)
    {
        Job job;
        lock (Free) job = Free.Count > 0 ? Free.Pop() : new Job();
        job.Start(table, indices, count, destination, Math.Min(count, Math.Min(workers * PartsPerWorker, MaxParts)), streaming);
        ExceptionDispatchInfo? error;
        try
        {
            for (int h = 1; h < workers; h++) ThreadPool.UnsafeQueueUserWorkItem(job, preferLocal: false);
        }
        finally
        {
            // Whatever happened to the hand-off, this thread copies what is left and waits for the parts taken by helpers
            // before the pointers it lent go out of scope.
            job.Work();
            error = job.Wait();
            job.Clear();
            lock (Free) if (Free.Count < 16) Free.Push(job);
        }
        error?.Throw();
    }

    private const int MaxParts = 0xFFFF;

    // One gather's parts. Parts are claimed through one 64-bit word (generation, part count, next part), so a helper
    // queued for an earlier gather of this pooled job either finds that gather's parts all claimed and leaves, or claims
    // a part of the gather in progress (whose fields were written before the word was), and that gather waits for it.
    private sealed class Job : IThreadPoolWorkItem
    {
        private readonly ManualResetEventSlim _done = new(false);
        private ExampleTable? _table;
        private int* _indices;
        private byte* _destination;
        private int _count;
        private bool _streaming;
        private long _claim;     // generation << 32 | parts << 16 | next part
        private int _unfinished; // parts not yet copied
        private ExceptionDispatchInfo? _error;

        // The event's kernel handle is made now, not at its first blocking wait, so a pooled job never allocates again.
        internal Job() => _ = _done.WaitHandle;

        internal void Start(ExampleTable table, int* indices, int count, byte* destination, int parts, bool streaming)
        {
            _table = table; _indices = indices; _count = count; _destination = destination; _streaming = streaming;
            _error = null;
            _unfinished = parts;
            _done.Reset();
            long generation = (Volatile.Read(ref _claim) >> 32) + 1;
            Interlocked.Exchange(ref _claim, (generation << 32) | ((long)parts << 16)); // publishes the fields above
        }

        void IThreadPoolWorkItem.Execute() => Work();

        // Claims and copies parts until none is left.
        internal void Work()
        {
            while (true)
            {
                long c = Volatile.Read(ref _claim);
                int parts = (int)(c >> 16) & 0xFFFF, part = (int)c & 0xFFFF;
                if (part >= parts) return; // all claimed (or this helper came after its gather was done)
                if (Interlocked.CompareExchange(ref _claim, c + 1, c) != c) continue;
                try
                {
                    ExampleTable table = _table!;
                    int rowBytes = table.ExampleBytes;
                    int from = (int)((long)_count * part / parts), to = (int)((long)_count * (part + 1) / parts);
                    Gather.CopyRun(table, new ReadOnlySpan<int>(_indices + from, to - from),
                        new Span<byte>(_destination + (long)from * rowBytes, (to - from) * rowBytes), _streaming);
                }
                catch (Exception e)
                {
                    Interlocked.CompareExchange(ref _error, ExceptionDispatchInfo.Capture(e), null);
                }
                if (Interlocked.Decrement(ref _unfinished) == 0) _done.Set();
            }
        }

        // Until every part is copied; then the first error a part raised, if any.
        internal ExceptionDispatchInfo? Wait()
        {
            if (Volatile.Read(ref _unfinished) != 0) _done.Wait();
            return Volatile.Read(ref _error);
        }

        // Every part is claimed and done, so no thread reads these fields again for this gather.
        internal void Clear()
        {
            _table = null; _indices = null; _destination = null; _error = null;
        }
    }
}
