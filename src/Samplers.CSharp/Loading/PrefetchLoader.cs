using System.Collections;
using System.Diagnostics;
using System.Runtime.CompilerServices;

namespace Samplers;

/// <summary>Builds prefetching loaders over a sampler.</summary>
public static class PrefetchLoader
{
    /// <summary>A loader handing out the sampler's batches in indexer order (<c>sampler[0..Count)</c> of each epoch, then
    /// the next epoch), made by <see cref="PrefetchOptions.Workers"/> background workers. Dispose every batch you are handed.</summary>
    /// <exception cref="ArgumentNullException">An argument is null.</exception>
    /// <exception cref="ArgumentOutOfRangeException">A setting is out of range (the message names it).</exception>
    public static PrefetchLoader<Batch> Create(MultiShotMemorySampler sampler, PrefetchOptions? options = null) =>
        new(sampler, options ?? new PrefetchOptions(), static b => b, static b => b.Dispose());
}

/// <summary>
/// Makes a sampler's batches on background workers, up to <see cref="PrefetchOptions.Depth"/> ahead of the consumer, and
/// hands them out in exactly the order the indexer would: batches 0 .. Count-1 of the current epoch, then
/// <see cref="MultiShotMemorySampler.OnEpochEnd"/>, then the next epoch, and so on; whatever the number of workers.
/// </summary>
/// <remarks>
/// <para>Each item is <c>transform(sampler.GenerateBatchAt(epoch, batchId))</c>, run on a worker: the sampler's augmenter and
/// the transform (e.g. a conversion to tensors) run there. Because batch (epoch, id) is a pure function of the seed and the
/// settings, the items are the same with 0, 1 or 8 workers.</para>
/// <para>Epochs as the consumer sees them: the loader calls <see cref="MultiShotMemorySampler.OnEpochEnd"/> when the consumer
/// moves past the last batch of an epoch (also after the last epoch), as Keras does. Workers make batches of the next
/// epoch before that (by id, with <see cref="MultiShotMemorySampler.GenerateBatchAt"/>, which tells the augmenter the
/// warmup state of the batch's own epoch, <see cref="MultiShotMemorySampler.IsWarmupAt"/>). While a run is under way,
/// nobody else should call <see cref="MultiShotMemorySampler.OnEpochEnd"/> on the sampler.</para>
/// <para>Ownership: an item handed to the consumer is the consumer's (dispose a <see cref="Batch"/>); items made but never
/// handed out (the consumer stopped, a worker failed, the loader was disposed) are released by the loader with the
/// <c>release</c> action. At most <see cref="PrefetchOptions.Depth"/> items are held by the loader at any time.</para>
/// <para>One run at a time: each enumeration starts a run from the sampler's current epoch; disposing the enumerator (or
/// the loader) stops its workers and releases what they made. A worker's exception surfaces at the consumer, when it
/// reaches that batch, as a <see cref="BatchLoadException"/> naming the epoch and batch id.</para>
/// </remarks>
/// <typeparam name="T">What the consumer receives.</typeparam>
public sealed class PrefetchLoader<T> : IEnumerable<T>, IAsyncEnumerable<T>, IDisposable
{
    private readonly MultiShotMemorySampler _sampler;
    private readonly Func<Batch, T> _transform;
    private readonly Action<T> _release;
    private readonly object _gate = new();
    private Run? _active;
    private long _waitTicks;
    private long _delivered;
    private bool _disposed;

    /// <summary>A loader whose items are <paramref name="transform"/> of each batch; <paramref name="release"/> frees an item
    /// that is never handed out.</summary>
    /// <param name="sampler">Where batches come from.</param>
    /// <param name="options">Workers, depth, epochs.</param>
    /// <param name="transform">Runs on a worker; owns the batch it receives (if it throws, the loader disposes the batch).</param>
    /// <param name="release">Frees an item the consumer never received.</param>
    /// <exception cref="ArgumentNullException">An argument is null.</exception>
    /// <exception cref="ArgumentOutOfRangeException">A setting is out of range (the message names it).</exception>
    public PrefetchLoader(MultiShotMemorySampler sampler, PrefetchOptions options, Func<Batch, T> transform, Action<T> release)
    {
        ArgumentNullException.ThrowIfNull(sampler);
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(transform);
        ArgumentNullException.ThrowIfNull(release);
        ArgumentOutOfRangeException.ThrowIfNegative(options.Workers, "options.Workers");
        ArgumentOutOfRangeException.ThrowIfLessThan(options.Depth, 1, "options.Depth");
        if (options.Epochs is int epochs) ArgumentOutOfRangeException.ThrowIfNegative(epochs, "options.Epochs");
        _sampler = sampler;
        Options = options;
        _transform = transform;
        _release = release;
    }

    /// <summary>The settings.</summary>
    public PrefetchOptions Options { get; }

    /// <summary>The sampler batches come from.</summary>
    public MultiShotMemorySampler Sampler => _sampler;

    /// <summary>Items per epoch (<see cref="MultiShotMemorySampler.Count"/>).</summary>
    public int Count => _sampler.Count;

    /// <summary>Total time the consumer spent waiting inside the loader for its next item (over all runs): with 0 workers,
    /// the time to make the batches; with workers, the time they were not ready.</summary>
    public TimeSpan ConsumerWait => Stopwatch.GetElapsedTime(0, Interlocked.Read(ref _waitTicks));

    /// <summary>Items handed to the consumer (over all runs).</summary>
    public long Delivered => Interlocked.Read(ref _delivered);

    /// <summary>Starts a run from the sampler's current epoch.</summary>
    /// <exception cref="InvalidOperationException">Another run of this loader is under way.</exception>
    /// <exception cref="ObjectDisposedException">The loader was disposed.</exception>
    public IEnumerator<T> GetEnumerator() => Start(CancellationToken.None);

    IEnumerator IEnumerable.GetEnumerator() => GetEnumerator();

    /// <summary>Starts a run from the sampler's current epoch; <paramref name="cancellationToken"/> stops it (the consumer
    /// then gets <see cref="OperationCanceledException"/>).</summary>
    /// <exception cref="InvalidOperationException">Another run of this loader is under way.</exception>
    /// <exception cref="ObjectDisposedException">The loader was disposed.</exception>
    public IAsyncEnumerator<T> GetAsyncEnumerator(CancellationToken cancellationToken = default) => Start(cancellationToken);

    /// <summary>A synchronous run that stops when <paramref name="cancellationToken"/> is cancelled (for <c>await foreach</c>, use
    /// <c>WithCancellation(token)</c> on the loader as on any async sequence).</summary>
    /// <exception cref="InvalidOperationException">Another run of this loader is under way.</exception>
    /// <exception cref="ObjectDisposedException">The loader was disposed.</exception>
    public IEnumerable<T> Enumerate(CancellationToken cancellationToken)
    {
        using Run run = Start(cancellationToken);
        while (run.MoveNext()) yield return run.Current;
    }

    /// <summary>Stops the run under way (its workers end; what they made is released). Idempotent.</summary>
    public void Dispose()
    {
        Run? run;
        lock (_gate)
        {
            _disposed = true;
            run = _active;
        }
        run?.Dispose();
    }

    private Run Start(CancellationToken token)
    {
        lock (_gate)
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            if (_active is not null)
                throw new InvalidOperationException("This loader is already running (one enumeration at a time: batches are handed out in one order); dispose the first enumerator before starting another.");
            var run = new Run(this, token);
            _active = run;
            run.StartWorkers();
            return run;
        }
    }

    private void Ended(Run run)
    {
        lock (_gate)
        {
            if (ReferenceEquals(_active, run)) _active = null;
        }
    }

    // One enumeration: a ring of `depth` slots, sequence numbers s = 0, 1, ... mapping to (epoch0 + s / Count, s % Count).
    private sealed class Run : IEnumerator<T>, IAsyncEnumerator<T>
    {
        private readonly PrefetchLoader<T> _owner;
        private readonly MultiShotMemorySampler _sampler;
        private readonly int _count;
        private readonly int _depth;
        private readonly long _total;            // sequence numbers in the run; long.MaxValue when endless
        private readonly int _epoch0;
        private readonly Slot[] _slots;
        private readonly object _gate = new();
        private readonly CancellationTokenSource _cts;   // the caller's token, or this run's disposal
        private readonly CancellationToken _token;
        private readonly CancellationTokenRegistration _registration;
        private Thread[] _threads = [];
        private long _nextClaim;                 // next sequence number a worker takes
        private long _nextTake;                  // next sequence number the consumer takes
        private int _consumerEpoch;              // the sampler's epoch as the consumer sees it
        private bool _stopping;
        private bool _failed;                    // a worker failed: claim nothing more
        private int _disposed;
        private T _current = default!;

        internal Run(PrefetchLoader<T> owner, CancellationToken token)
        {
            _owner = owner;
            _sampler = owner._sampler;
            _count = _sampler.Count;
            _epoch0 = _sampler.Epoch;
            _consumerEpoch = _epoch0;
            PrefetchOptions o = owner.Options;
            _depth = o.Depth;
            _total = o.Epochs is int e ? (long)e * _count : long.MaxValue;
            _slots = new Slot[o.Workers == 0 ? 0 : _depth];
            for (int i = 0; i < _slots.Length; i++) _slots[i] = new Slot();
            _cts = CancellationTokenSource.CreateLinkedTokenSource(token);
            _token = _cts.Token;
            _registration = _token.Register(static r => ((Run)r!).Stop(), this);
        }

        public T Current => _current;

        object? IEnumerator.Current => _current;

        internal void StartWorkers()
        {
            int n = _owner.Options.Workers;
            _threads = new Thread[n];
            for (int i = 0; i < n; i++)
            {
                _threads[i] = new Thread(Work) { IsBackground = true, Name = $"Samplers prefetch worker {i}" };
                _threads[i].Start();
            }
        }

        private (int Epoch, int BatchId) Locate(long s) => ((int)(_epoch0 + s / _count), (int)(s % _count));

        private void Work()
        {
            while (true)
            {
                long s;
                lock (_gate)
                {
                    while (true)
                    {
                        if (_stopping || _failed || _nextClaim >= _total) return;
                        if (_nextClaim < _nextTake + _depth) break;
                        Monitor.Wait(_gate);
                    }
                    s = _nextClaim++;
                }
                Slot slot = _slots[s % _depth];
                (int epoch, int id) = Locate(s);
                try
                {
                    slot.Item = Make(epoch, id);
                    slot.Error = null;
                }
                catch (Exception ex)
                {
                    slot.Error = ex is OperationCanceledException ? ex : new BatchLoadException(epoch, id, ex);
                    lock (_gate)
                    {
                        _failed = true;
                        Monitor.PulseAll(_gate);
                    }
                }
                slot.Sequence = s;
                slot.Ready.Release();
            }
        }

        private T Make(int epoch, int id)
        {
            Batch batch = _sampler.GenerateBatchAt(epoch, id);
            try
            {
                return _owner._transform(batch);
            }
            catch
            {
                batch.Dispose();
                throw;
            }
        }

        public bool MoveNext()
        {
            if (!BeforeTake(out long s)) return false;
            long t0 = Stopwatch.GetTimestamp();
            if (_slots.Length == 0) return MoveNextInline(s, t0);
            Slot slot = _slots[s % _depth];
            slot.Ready.Wait(_token);
            _current = TakeFrom(slot, s);
            AfterTake(t0);
            return true;
        }

        public async ValueTask<bool> MoveNextAsync()
        {
            if (!BeforeTake(out long s)) return false;
            long t0 = Stopwatch.GetTimestamp();
            if (_slots.Length == 0) return MoveNextInline(s, t0);
            Slot slot = _slots[s % _depth];
            await slot.Ready.WaitAsync(_token).ConfigureAwait(false);
            _current = TakeFrom(slot, s);
            AfterTake(t0);
            return true;
        }

        private bool MoveNextInline(long s, long t0)
        {
            _token.ThrowIfCancellationRequested();
            (int epoch, int id) = Locate(s);
            try
            {
                _current = Make(epoch, id);
            }
            catch (Exception ex) when (ex is not OperationCanceledException)
            {
                throw new BatchLoadException(epoch, id, ex);
            }
            AfterTake(t0);
            return true;
        }

        // Ends the epoch the consumer just finished (if it did), and says which sequence number comes next.
        private bool BeforeTake(out long s)
        {
            ObjectDisposedException.ThrowIf(Volatile.Read(ref _disposed) != 0, this);
            s = _nextTake;
            if (s > 0 && s % _count == 0 && _consumerEpoch < _epoch0 + s / _count)
            {
                _sampler.OnEpochEnd();
                lock (_gate)
                {
                    _consumerEpoch++;
                    Monitor.PulseAll(_gate);
                }
            }
            return s < _total;
        }

        private T TakeFrom(Slot slot, long s)
        {
            Debug.Assert(slot.Sequence == s);
            Exception? error = slot.Error;
            if (error is not null)
            {
                slot.Ready.Release(); // the failure stays in its slot, visible to a repeated MoveNext
                if (error is OperationCanceledException) _token.ThrowIfCancellationRequested();
                throw error is BatchLoadException ble ? new BatchLoadException(ble.Epoch, ble.BatchId, ble.InnerException!) : error;
            }
            T item = slot.Item;
            slot.Item = default!;
            return item;
        }

        private void AfterTake(long t0)
        {
            Interlocked.Add(ref _owner._waitTicks, Stopwatch.GetTimestamp() - t0);
            Interlocked.Increment(ref _owner._delivered);
            lock (_gate)
            {
                _nextTake++;
                Monitor.PulseAll(_gate);
            }
        }

        private void Stop()
        {
            lock (_gate)
            {
                _stopping = true;
                Monitor.PulseAll(_gate);
            }
        }

        public void Reset() => throw new NotSupportedException("A loader run cannot be reset; start a new enumeration.");

        public void Dispose()
        {
            if (Interlocked.Exchange(ref _disposed, 1) != 0) return;
            Stop();
            _cts.Cancel(); // a consumer blocked on another thread wakes up with OperationCanceledException
            _registration.Dispose();
            foreach (Thread t in _threads) t.Join();
            Sweep();
            _cts.Dispose();
            _owner.Ended(this);
        }

        public ValueTask DisposeAsync()
        {
            if (Volatile.Read(ref _disposed) != 0) return ValueTask.CompletedTask;
            // Joining waits at most for the batches in the making; do it off the caller's context.
            return new ValueTask(Task.Run(Dispose));
        }

        // After the workers ended: release every item made but not handed out.
        private void Sweep()
        {
            foreach (Slot slot in _slots)
            {
                if (slot.Ready.CurrentCount > 0 && slot.Error is null && slot.Sequence >= _nextTake)
                    _owner._release(slot.Item);
                slot.Item = default!;
                slot.Error = null;
            }
        }
    }

    private sealed class Slot
    {
        internal readonly SemaphoreSlim Ready = new(0, 1);
        internal long Sequence = -1;
        internal T Item = default!;
        internal Exception? Error;
    }
}
