using System.Buffers;
using System.Runtime.ExceptionServices;
using System.Threading.Channels;

namespace Samplers.Tfds;

/// <summary>
/// The TFRecord half of <see cref="TfdsLoader.LoadAsync"/>: reads the shards of resolved split selections and decodes
/// every record into its row of one preallocated table, in parallel.
/// </summary>
/// <remarks>
/// <para>One reader thread streams records into a fixed set of reusable batches (bounded queue); decoder threads parse
/// each record and write the decoded example straight into its slot of the table. At most a few MiB of encoded records
/// are held at any time, whatever the dataset size.</para>
/// <para>Row order: each selection's rows follow its own TFDS read order (TFDS_FORMAT.md 9.1), and selections follow
/// one another in list order. The first error stops every thread and is rethrown unchanged.</para>
/// </remarks>
internal static class TfdsRecordPipeline
{
    private const int RecordsPerBatch = 256;
    private const int BytesPerBatch = 1 << 20;

    /// <summary>A reusable unit of work: up to <see cref="RecordsPerBatch"/> consecutive records of one instruction, copied into one buffer.</summary>
    private sealed class RecordBatch(int bytes)
    {
        private readonly int _bytes = bytes;
        public byte[] Buffer = ArrayPool<byte>.Shared.Rent(bytes);
        public readonly int[] Start = new int[RecordsPerBatch];
        public readonly int[] Length = new int[RecordsPerBatch];
        public readonly long[] Offset = new long[RecordsPerBatch];
        public readonly long[] Index = new long[RecordsPerBatch];
        public readonly int[] Row = new int[RecordsPerBatch];
        public int Count;
        public int Used;
        public ShardInstruction Instruction = null!;
        public string IdPrefix = "";

        public bool TryAdd(TfRecord record, int row)
        {
            int len = record.Data.Length;
            if (Count == RecordsPerBatch || (Count > 0 && Used + len > Buffer.Length)) return false;
            if (Used + len > Buffer.Length)
            {
                // A single record larger than the buffer (big JPEGs): grow to fit it.
                ArrayPool<byte>.Shared.Return(Buffer);
                Buffer = ArrayPool<byte>.Shared.Rent(len);
            }
            record.Data.Span.CopyTo(Buffer.AsSpan(Used));
            Start[Count] = Used; Length[Count] = len; Offset[Count] = record.Offset; Index[Count] = record.Index; Row[Count] = row;
            Used += len;
            Count++;
            return true;
        }

        public void Reset(ShardInstruction instruction, string idPrefix)
        {
            Instruction = instruction; IdPrefix = idPrefix; Count = 0; Used = 0;
            if (Buffer.Length > 4 * _bytes)
            {
                ArrayPool<byte>.Shared.Return(Buffer);
                Buffer = ArrayPool<byte>.Shared.Rent(_bytes);
            }
        }
    }

    /// <summary>What the decoders do with each decoded example before it reaches the table: nothing (null), or a preprocess
    /// applied in the same worker (its output dtype and fixed shape computed once by the caller).</summary>
    public sealed record Fused(IExamplePreprocessor Preprocess, DType OutputDType, int[] OutputShape);

    /// <summary>Where decoded rows go: the slots of an in-memory table, or the row groups of a streamed cache file.</summary>
    internal interface IRowSink
    {
        /// <summary>Whether the sink keeps the TFDS ids the decoders compute (a streamed file takes them from the read order).</summary>
        bool WantsIds { get; }
        Span<byte> Slot(int row);
        Span<byte> AllocateRagged(int row, ReadOnlySpan<int> shape);
        void SetLabel(int row, long label);
        void SetId(int row, string id);
    }

    private sealed class BuilderSink(ExampleTableBuilder table) : IRowSink
    {
        public bool WantsIds => true;
        public Span<byte> Slot(int row) => table.Slot(row);
        public Span<byte> AllocateRagged(int row, ReadOnlySpan<int> shape) => table.AllocateRagged(row, shape);
        public void SetLabel(int row, long label) => table.SetLabel(row, label);
        public void SetId(int row, string id) => table.SetId(row, id);
    }

    /// <summary>A run of records of one instruction: records <c>Start</c>.. (counted from its first taken record), delivered
    /// to rows <c>Rows[Start + k]</c>, or to <c>FirstRow + k</c> when <c>Rows</c> is null.</summary>
    private readonly record struct Segment(int Work, long Start, int Count, int[]? Rows, int FirstRow)
    {
        public int RowOf(long k) => Rows is null ? FirstRow + (int)k : Rows[Start + k];
    }

    /// <summary>Decodes every record the plan's selections name into a table of the plan's dtype and shape (x) and labels
    /// (y); with <paramref name="fuse"/>, each decoded example goes through the plan's preprocess at once and only its
    /// output is kept.</summary>
    public static async Task<ExampleTable> DecodeAsync(LoadPlan plan, bool fuse, IProgress<LoadProgress>? progress, CancellationToken ct)
    {
        TfdsLoadOptions options = plan.Options;
        Fused? fused = fuse ? plan.Fused : null;
        int count = (int)plan.Total;
        bool ragged = Array.Exists(plan.Shape, d => d < 0);
        ExampleTableBuilder table = fused is not null
            ? ExampleTableBuilder.Fixed(fused.OutputDType, fused.OutputShape, count, options.ChunkBytes)
            : ragged
            ? ExampleTableBuilder.Ragged(plan.DType, plan.Shape, count, options.ChunkBytes)
            : ExampleTableBuilder.Fixed(plan.DType, plan.Shape, count, options.ChunkBytes);
        table.ClassNames = plan.ClassNames;

        // Each instruction read whole, file after file (sequential reads); the output row of every record comes from the
        // read order of its own selection, so rows fill in any order.
        var instructions = new List<ShardInstruction>();
        var segments = new List<Segment>();
        int rowBase = 0;
        foreach (var sel in plan.Selections)
        {
            var rows = new int[sel.Instructions.Count][];
            for (int i = 0; i < rows.Length; i++) rows[i] = new int[checked((int)sel.Instructions[i].Take)];
            int next = rowBase;
            foreach (var block in sel.ReadOrder)
            {
                int[] r = rows[block.Instruction];
                for (int k = 0; k < block.Count; k++) r[block.Start + k] = next++;
            }
            for (int i = 0; i < rows.Length; i++)
            {
                segments.Add(new Segment(instructions.Count, 0, rows[i].Length, rows[i], 0));
                instructions.Add(sel.Instructions[i]);
            }
            rowBase = next;
        }
        await RunAsync(plan, fused, new BuilderSink(table), instructions, segments, null, null, progress, ct, ct).ConfigureAwait(false);
        return table.Build();
    }

    /// <summary>Decodes every record the plan's selections name, in row order, into the row groups of a streamed cache file
    /// (<paramref name="writer"/>), writing each group as soon as its rows are decoded; with <paramref name="fuse"/> the
    /// plan's preprocess runs in the decoder and the file holds its output. Memory: the labels (8 bytes a row), plus
    /// <c>workers + 1</c> row-group buffers (<see cref="Samplers.Cache.CacheStreamWriter.RowsPerGroup"/> examples each), plus
    /// the record batches in flight; never the whole table. Ends with <see cref="Samplers.Cache.CacheStreamWriter.CompleteAsync"/>.</summary>
    public static async Task StreamAsync(LoadPlan plan, bool fuse, Samplers.Cache.CacheStreamWriter writer, IProgress<LoadProgress>? progress, CancellationToken ct)
    {
        Fused? fused = fuse ? plan.Fused : null;
        if (writer.Count != plan.Total)
            throw new InvalidOperationException($"Internal error: a streamed cache file for {writer.Count} rows, the load selects {plan.Total}; please report this.");
        // Rows in read order: the TFDS interleave's blocks, each a run of consecutive rows (blocks of one instruction that
        // follow one another merged), so rows reach the decoders in increasing order.
        var instructions = new List<ShardInstruction>();
        var segments = new List<Segment>();
        int row = 0;
        foreach (var sel in plan.Selections)
        {
            int firstWork = instructions.Count;
            instructions.AddRange(sel.Instructions);
            foreach (var block in sel.ReadOrder)
            {
                int work = firstWork + block.Instruction;
                if (segments.Count > 0 && segments[^1] is { } last && last.Work == work && last.Start + last.Count == block.Start && (long)last.Count + block.Count <= int.MaxValue)
                    segments[^1] = last with { Count = last.Count + block.Count };
                else
                    segments.Add(new Segment(work, block.Start, block.Count, null, row));
                row += block.Count;
            }
        }
        var ring = new GroupRing(writer, Environment.ProcessorCount, plan.Options.MaxDegreeOfParallelism);
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(ct);
        Task decode = RunAsync(plan, fused, ring, instructions, segments, ring, stop, progress, stop.Token, ct);
        // The writer on a thread of its own, synchronously: Parquet.Net rents a row group's page from the shared array
        // pool for each column chunk, and the pool keeps a returned array per thread, so a writer hopping between pool
        // threads would keep one page-sized array per thread alive; on one thread it is one array. Nor can a busy pool delay it.
        Task write = Task.Factory.StartNew(() => ring.WriteAll(IdsInRowOrder(plan).GetEnumerator(), stop.Token),
            stop.Token, TaskCreationOptions.LongRunning, TaskScheduler.Default);
        // Either side's failure stops the other: the decoders wait for no group, the writer for no row.
        Task first = await Task.WhenAny(decode, write).ConfigureAwait(false);
        if (first.IsFaulted || first.IsCanceled) stop.Cancel();
        try
        {
            await Task.WhenAll(decode, write).ConfigureAwait(false);
        }
        catch when (first.IsFaulted && !ct.IsCancellationRequested)
        {
            await first.ConfigureAwait(false); // the cause, not the cancellation it caused on the other side
            throw;
        }
        await writer.CompleteAsync(ring.Labels, IdsInRowOrder(plan)).ConfigureAwait(false);
    }

    /// <summary>Every row's TFDS id in row order, from the read order alone: <c>&lt;shard file name&gt;__&lt;record index in the file&gt;</c>,
    /// as the decoders name them (TFDS_FORMAT.md 9.3).</summary>
    private static IEnumerable<string> IdsInRowOrder(LoadPlan plan)
    {
        foreach (var sel in plan.Selections)
        {
            var prefixes = sel.Instructions.Select(i => Path.GetFileName(i.Path) + "__").ToArray();
            foreach (var block in sel.ReadOrder)
            {
                ShardInstruction ins = sel.Instructions[block.Instruction];
                for (long k = 0; k < block.Count; k++)
                    yield return string.Concat(prefixes[block.Instruction], (ins.Skip + block.Start + k).ToString(System.Globalization.CultureInfo.InvariantCulture));
            }
        }
    }

    /// <summary>
    /// The row groups being decoded: a ring of <c>workers + 1</c> buffers of one row group each. The reader takes a buffer
    /// (<see cref="EnterGroupAsync"/>) before it hands out the first row of a group, so rows in flight always have a
    /// buffer; decoders write rows into it and count them; the writer writes each group once all its rows are counted,
    /// in order, and gives the buffer back. Rows reach the decoders in order and the reader sends its partial batch before
    /// it waits, so the oldest group always completes: no deadlock.
    /// </summary>
    private sealed class GroupRing : IRowSink
    {
        private readonly Samplers.Cache.CacheStreamWriter _writer;
        private readonly byte[][] _buffers;
        private readonly int[] _remaining;
        private readonly TaskCompletionSource[] _done;
        private readonly SemaphoreSlim _free;
        private readonly int _rows, _stride;

        public GroupRing(Samplers.Cache.CacheStreamWriter writer, int processors, int maxDegree)
        {
            _writer = writer;
            _rows = writer.RowsPerGroup;
            _stride = writer.ExampleBytes;
            int workers = maxDegree > 0 ? maxDegree : processors;
            // One group being written, and one being filled per decoder (a decoder's batch may straddle two: the
            // reader waits then, not the decoders).
            int slots = Math.Min(workers + 1, writer.GroupCount);
            _buffers = new byte[slots][];
            _remaining = new int[slots];
            _done = new TaskCompletionSource[slots];
            for (int s = 0; s < slots; s++)
            {
                _buffers[s] = GC.AllocateUninitializedArray<byte>(checked(_rows * _stride));
                _remaining[s] = writer.RowsIn(s);
                _done[s] = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            }
            _free = new SemaphoreSlim(slots, slots);
            Labels = new long[writer.Count];
        }

        /// <summary>Every row's label (kept whole: the checksum hashes them after all examples).</summary>
        public long[] Labels { get; }

        public int RowsPerGroup => _rows;

        public bool WantsIds => false;

        public Span<byte> Slot(int row) => _buffers[row / _rows % _buffers.Length].AsSpan(row % _rows * _stride, _stride);

        public Span<byte> AllocateRagged(int row, ReadOnlySpan<int> shape) =>
            throw new InvalidOperationException("Internal error: a streamed cache file holds fixed shapes only; please report this.");

        public void SetLabel(int row, long label) => Labels[row] = label;

        public void SetId(int row, string id) { }

        /// <summary>Waits for a free buffer for the next group (the reader calls it before the group's first row).</summary>
        public Task EnterGroupAsync(CancellationToken ct) => _free.WaitAsync(ct);

        /// <summary>Counts the rows of a decoded batch.</summary>
        public void Decoded(RecordBatch batch)
        {
            // Runs of consecutive rows (a streamed batch is one run), counted per group.
            for (int i = 0; i < batch.Count;)
            {
                int j = i + 1;
                while (j < batch.Count && batch.Row[j] == batch.Row[j - 1] + 1) j++;
                Decoded(batch.Row[i], j - i);
                i = j;
            }
        }

        private void Decoded(int first, int count)
        {
            while (count > 0)
            {
                int group = first / _rows;
                int n = Math.Min(count, (group + 1) * _rows - first);
                int slot = group % _buffers.Length;
                if (Interlocked.Add(ref _remaining[slot], -n) == 0) _done[slot].TrySetResult();
                first += n; count -= n;
            }
        }

        public void WriteAll(IEnumerator<string> ids, CancellationToken ct)
        {
            using (ids)
            {
                var groupIds = new string[_rows];
                for (int g = 0; g < _writer.GroupCount; g++)
                {
                    int slot = g % _buffers.Length;
                    _done[slot].Task.Wait(ct);
                    int rows = _writer.RowsIn(g);
                    for (int i = 0; i < rows; i++)
                        groupIds[i] = ids.MoveNext() ? ids.Current : throw new InvalidOperationException("Internal error: fewer ids than rows; please report this.");
                    // Completes synchronously: the file stream below writes synchronously (ParquetCache.StoreStreamingAsync).
                    _writer.WriteGroupAsync(g, _buffers[slot].AsMemory(0, rows * _stride), Labels.AsMemory(g * _rows, rows), groupIds, ct).GetAwaiter().GetResult();
                    // Ready the buffer for group g + slots before the reader may enter it.
                    int reuse = g + _buffers.Length;
                    if (reuse < _writer.GroupCount)
                    {
                        _remaining[slot] = _writer.RowsIn(reuse);
                        _done[slot] = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
                    }
                    _free.Release();
                }
            }
        }
    }

    /// <summary>The reader and decoder threads: reads <paramref name="segments"/> in order (one open reader per instruction,
    /// kept across its segments) into reusable batches, and decodes them in parallel into <paramref name="sink"/>. With a
    /// <paramref name="ring"/>, the rows come in increasing order and each group's buffer is entered before its first row.</summary>
    private static async Task RunAsync(LoadPlan plan, Fused? fused, IRowSink sink, List<ShardInstruction> instructions, List<Segment> segments,
        GroupRing? ring, CancellationTokenSource? outer, IProgress<LoadProgress>? progress, CancellationToken ct, CancellationToken userToken)
    {
        DatasetBuilderDir builder = plan.Builder;
        FeatureSpec xSpec = plan.XSpec, ySpec = plan.YSpec;
        DType dtype = plan.DType;
        int[] shape = plan.Shape;
        TfdsLoadOptions options = plan.Options;
        long total = plan.Total;
        bool ragged = Array.Exists(shape, d => d < 0);
        long bytesTotal = instructions.Sum(i => new FileInfo(i.Path).Length);

        int workers = options.MaxDegreeOfParallelism > 0 ? options.MaxDegreeOfParallelism : Environment.ProcessorCount;
        // Streaming holds row groups too: fewer and smaller batches in flight (1 MiB of encoded records each, 256 KiB
        // when streaming; a larger record grows its batch).
        int batches = ring is null ? workers * 3 : workers * 2;
        int batchBytes = ring is null ? BytesPerBatch : BytesPerBatch / 4;
        var free = Channel.CreateBounded<RecordBatch>(batches);
        var full = Channel.CreateBounded<RecordBatch>(new BoundedChannelOptions(batches) { SingleWriter = true });
        var all = new RecordBatch[batches];
        for (int i = 0; i < batches; i++) free.Writer.TryWrite(all[i] = new RecordBatch(batchBytes));
        // Interleaved reading keeps up to 16 files open (TFDS's cycle): smaller read windows keep that bounded.
        int window = ring is not null && instructions.Count > 1 ? 64 << 10 : 1 << 20;

        using var stop = CancellationTokenSource.CreateLinkedTokenSource(ct);
        ExceptionDispatchInfo? firstError = null;
        void Fail(Exception e)
        {
            if (e is OperationCanceledException && stop.IsCancellationRequested) return;
            Interlocked.CompareExchange(ref firstError, ExceptionDispatchInfo.Capture(e), null);
            stop.Cancel();
            outer?.Cancel();
        }

        long done = 0, bytesRead = 0;
        var images = new LoaderImageDecoder(options.MaxImagePixels, fused is not null && options.ReducedJpegDecode && xSpec.Kind == FeatureKind.Image
            ? Imaging.ReducedJpeg.TargetOf(fused.Preprocess) : null);
        progress?.Report(new LoadProgress(LoadPhase.Decoding, 0, total, 0, bytesTotal, builder.FullName));

        Task reader = Task.Run(async () =>
        {
            var open = new Dictionary<int, (TfRecordReader File, long Next, long Counted)>();
            try
            {
                int nextGroupRow = 0;
                RecordBatch? batch = null;
                foreach (Segment seg in segments)
                {
                    ShardInstruction ins = instructions[seg.Work];
                    if (!open.TryGetValue(seg.Work, out var state))
                    {
                        var f = new TfRecordReader(ins.Path, window);
                        state = (f, 0, 0);
                        open[seg.Work] = state;
                        long skipped = f.Skip(ins.Skip);
                        if (skipped < ins.Skip) throw TooFew(ins, skipped);
                    }
                    if (state.Next != seg.Start)
                        throw new InvalidOperationException($"Internal error: {ins.Path} read at record {state.Next}, the read order asks for {seg.Start}; please report this.");
                    TfRecordReader file = state.File;
                    string idPrefix = Path.GetFileName(ins.Path) + "__"; // tfds_id = <shard file name>__<record index> (9.3)
                    if (batch is not null && batch.Instruction != ins)
                    {
                        await SendAsync(batch).ConfigureAwait(false);
                        batch = null;
                    }
                    for (long k = 0; k < seg.Count; k++)
                    {
                        int row = seg.RowOf(k);
                        if (ring is not null && row == nextGroupRow)
                        {
                            // The group's first row: its buffer first. Everything decoded so far is sent, so the oldest group can complete.
                            if (batch is { Count: > 0 }) { await SendAsync(batch).ConfigureAwait(false); batch = null; }
                            await ring.EnterGroupAsync(stop.Token).ConfigureAwait(false);
                            nextGroupRow += ring.RowsPerGroup;
                        }
                        if (!file.TryReadNext(out TfRecord rec)) throw TooFew(ins, ins.Skip + state.Next);
                        state.Next++;
                        if (batch is null) batch = await TakeAsync(ins, idPrefix).ConfigureAwait(false);
                        if (!batch.TryAdd(rec, row))
                        {
                            Interlocked.Add(ref bytesRead, file.NextOffset - state.Counted);
                            state.Counted = file.NextOffset;
                            await SendAsync(batch).ConfigureAwait(false);
                            batch = await TakeAsync(ins, idPrefix).ConfigureAwait(false);
                            batch.TryAdd(rec, row);
                        }
                    }
                    Interlocked.Add(ref bytesRead, file.NextOffset - state.Counted);
                    state.Counted = file.NextOffset;
                    open[seg.Work] = state;
                    if (state.Next == ins.Take)
                    {
                        // A shard read to its end must hold exactly shardLengths[i] records (TFDS_FORMAT.md 9.4).
                        if (ins.Skip + ins.Take == ins.ShardLength && file.TryReadNext(out TfRecord extra))
                            throw new DataFormatException(
                                $"{ins.Path}: holds more records than dataset_info.json says: shardLengths[{ins.ShardIndex}] of split '{ins.Split}' is {ins.ShardLength}, " +
                                $"but record {extra.Index} starts at byte {extra.Offset}. The shard or its metadata is damaged; download the dataset again.",
                                ins.Path, extra.Offset, ins.Split);
                        // The batch may still point into nothing of the file (records are copied), so the file can close now.
                        file.Dispose();
                        open.Remove(seg.Work);
                    }
                }
                if (batch is { Count: > 0 }) await SendAsync(batch).ConfigureAwait(false);
                else if (batch is not null) await free.Writer.WriteAsync(batch, stop.Token).ConfigureAwait(false);
            }
            catch (Exception e)
            {
                Fail(e);
            }
            finally
            {
                foreach (var state in open.Values) state.File.Dispose();
                full.Writer.TryComplete();
            }

            async Task<RecordBatch> TakeAsync(ShardInstruction ins, string idPrefix)
            {
                RecordBatch b = await free.Reader.ReadAsync(stop.Token).ConfigureAwait(false);
                b.Reset(ins, idPrefix);
                return b;
            }

            ValueTask SendAsync(RecordBatch b) => full.Writer.WriteAsync(b, stop.Token);
        });

        var decoders = new Task[workers];
        for (int w = 0; w < workers; w++)
        {
            decoders[w] = Task.Run(async () =>
            {
                // The one full-size example this worker holds at a time when fusing (grown to the largest seen, pooled).
                var scratch = new Scratch();
                try
                {
                    await foreach (RecordBatch batch in full.Reader.ReadAllAsync(stop.Token).ConfigureAwait(false))
                    {
                        if (fused is null) DecodeBatch(batch, xSpec, ySpec, sink, ragged, images, stop.Token);
                        else DecodeAndPreprocessBatch(batch, xSpec, ySpec, dtype, shape, ragged, fused.Preprocess, sink, images, scratch, stop.Token);
                        ring?.Decoded(batch);
                        long now = Interlocked.Add(ref done, batch.Count);
                        progress?.Report(new LoadProgress(LoadPhase.Decoding, now, total, Interlocked.Read(ref bytesRead), bytesTotal));
                        await free.Writer.WriteAsync(batch, stop.Token).ConfigureAwait(false);
                    }
                }
                catch (Exception e)
                {
                    Fail(e);
                }
                finally
                {
                    scratch.Dispose();
                }
            });
        }

        try
        {
            await Task.WhenAll(decoders.Append(reader)).ConfigureAwait(false);
        }
        finally
        {
            foreach (var b in all) ArrayPool<byte>.Shared.Return(b.Buffer);
        }
        // The caller's cancellation first; then this pipeline's own error, before the cancellation it caused (with a ring,
        // ct is also cancelled when the writer fails: that error is the writer's to report).
        userToken.ThrowIfCancellationRequested();
        firstError?.Throw();
        ct.ThrowIfCancellationRequested();
        if (done != total)
            throw new InvalidOperationException($"Internal error: decoded {done} of {total} examples of {builder.FullName} without an error; please report this.");
    }

    /// <summary>A worker's reusable buffer for one decoded example.</summary>
    private sealed class Scratch : IDisposable
    {
        private byte[] _buffer = [];

        public Span<byte> Get(int bytes)
        {
            if (_buffer.Length < bytes)
            {
                if (_buffer.Length > 0) ArrayPool<byte>.Shared.Return(_buffer);
                _buffer = ArrayPool<byte>.Shared.Rent(bytes);
            }
            return _buffer.AsSpan(0, bytes);
        }

        public void Dispose()
        {
            if (_buffer.Length > 0) ArrayPool<byte>.Shared.Return(_buffer);
            _buffer = [];
        }
    }

    /// <summary>Decodes each record into the worker's scratch buffer and writes only the preprocess's output into the table, so
    /// a full-size example lives only while its worker handles it.</summary>
    private static void DecodeAndPreprocessBatch(RecordBatch batch, FeatureSpec xSpec, FeatureSpec ySpec, DType dtype, int[] shape, bool ragged,
        IExamplePreprocessor preprocess, IRowSink table, LoaderImageDecoder images, Scratch scratch, CancellationToken ct)
    {
        ShardInstruction ins = batch.Instruction;
        for (int i = 0; i < batch.Count; i++)
        {
            if ((i & 31) == 0) ct.ThrowIfCancellationRequested();
            var (location, features, row) = OpenRecord(batch, i);
            long label = FeatureDecoder.ReadLabel(ySpec, features, location);
            // With reduced decoding even a fixed-size image is measured: it may decode smaller than declared.
            int[] exampleShape = ragged ? FeatureDecoder.MeasureShape(xSpec, features, location, images)
                : images.Reduces ? images.MeasureShape(xSpec, FeatureDecoder.GetBytes(xSpec, features, location).Span, location)
                : shape;
            Span<byte> decoded = scratch.Get(FeatureDecoder.ByteCount(xSpec, exampleShape));
            FeatureDecoder.DecodeInto(xSpec, features, location, decoded, images);
            string id = string.Concat(batch.IdPrefix, batch.Index[i].ToString(System.Globalization.CultureInfo.InvariantCulture));
            try
            {
                preprocess.Process(decoded, exampleShape, dtype, table.Slot(row), ref label);
            }
            catch (Exception e) when (e is not OperationCanceledException)
            {
                throw new InvalidOperationException(
                    $"The preprocess failed on {location} (tfds_id {id}, row {row}, shape [{string.Join(", ", exampleShape)}]): {e.Message}", e);
            }
            table.SetLabel(row, label);
            if (table.WantsIds) table.SetId(row, id);
        }
    }

    /// <summary>Record <paramref name="i"/> of a batch: where it is (for messages), its parsed features, and its table row.</summary>
    private static (RecordLocation Location, Protos.Features Features, int Row) OpenRecord(RecordBatch batch, int i)
    {
        var location = new RecordLocation(batch.Instruction.Path, batch.Index[i], batch.Offset[i]);
        var example = ExampleDecoder.Parse(batch.Buffer.AsSpan(batch.Start[i], batch.Length[i]), location);
        return (location, example.Features ?? new Protos.Features(), batch.Row[i]);
    }

    private static DataFormatException TooFew(ShardInstruction ins, long found) =>
        new($"{ins.Path}: expected {ins.ShardLength} records (shardLengths[{ins.ShardIndex}] of split '{ins.Split}' in dataset_info.json) but the file " +
            $"contains only {found}. The shard is truncated or its metadata is wrong; download the dataset again.", ins.Path, null, ins.Split);

    private static void DecodeBatch(RecordBatch batch, FeatureSpec xSpec, FeatureSpec ySpec, IRowSink table, bool ragged, LoaderImageDecoder images, CancellationToken ct)
    {
        ShardInstruction ins = batch.Instruction;
        for (int i = 0; i < batch.Count; i++)
        {
            if ((i & 31) == 0) ct.ThrowIfCancellationRequested();
            var (location, features, row) = OpenRecord(batch, i);
            table.SetLabel(row, FeatureDecoder.ReadLabel(ySpec, features, location));
            Span<byte> slot = ragged
                ? table.AllocateRagged(row, FeatureDecoder.MeasureShape(xSpec, features, location, images))
                : table.Slot(row);
            FeatureDecoder.DecodeInto(xSpec, features, location, slot, images);
            if (table.WantsIds) table.SetId(row, string.Concat(batch.IdPrefix, batch.Index[i].ToString(System.Globalization.CultureInfo.InvariantCulture)));
        }
    }
}
