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
    private sealed class RecordBatch
    {
        public byte[] Buffer = ArrayPool<byte>.Shared.Rent(BytesPerBatch);
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
            if (Buffer.Length > 4 * BytesPerBatch)
            {
                ArrayPool<byte>.Shared.Return(Buffer);
                Buffer = ArrayPool<byte>.Shared.Rent(BytesPerBatch);
            }
        }
    }

    /// <summary>What the decoders do with each decoded example before it reaches the table: nothing (null), or a preprocess
    /// applied in the same worker (its output dtype and fixed shape computed once by the caller).</summary>
    public sealed record Fused(IExamplePreprocessor Preprocess, DType OutputDType, int[] OutputShape);

    /// <summary>Decodes every record the plan's selections name into a table of the plan's dtype and shape (x) and labels
    /// (y); with <paramref name="fuse"/>, each decoded example goes through the plan's preprocess at once and only its
    /// output is kept.</summary>
    public static async Task<ExampleTable> DecodeAsync(LoadPlan plan, bool fuse, IProgress<LoadProgress>? progress, CancellationToken ct)
    {
        DatasetBuilderDir builder = plan.Builder;
        FeatureSpec xSpec = plan.XSpec, ySpec = plan.YSpec;
        DType dtype = plan.DType;
        int[] shape = plan.Shape;
        TfdsLoadOptions options = plan.Options;
        long total = plan.Total;
        Fused? fused = fuse ? plan.Fused : null;
        int count = (int)total;
        bool ragged = Array.Exists(shape, d => d < 0);
        ExampleTableBuilder table = fused is not null
            ? ExampleTableBuilder.Fixed(fused.OutputDType, fused.OutputShape, count, options.ChunkBytes)
            : ragged
            ? ExampleTableBuilder.Ragged(dtype, shape, count, options.ChunkBytes)
            : ExampleTableBuilder.Fixed(dtype, shape, count, options.ChunkBytes);
        table.ClassNames = plan.ClassNames;

        // Output row of every record each instruction delivers, from the read order of its own selection.
        var work = new List<(ShardInstruction Instruction, int[] Rows)>();
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
            for (int i = 0; i < rows.Length; i++) work.Add((sel.Instructions[i], rows[i]));
            rowBase = next;
        }
        long bytesTotal = work.Sum(w => new FileInfo(w.Instruction.Path).Length);

        int workers = options.MaxDegreeOfParallelism > 0 ? options.MaxDegreeOfParallelism : Environment.ProcessorCount;
        int batches = workers * 3;
        var free = Channel.CreateBounded<RecordBatch>(batches);
        var full = Channel.CreateBounded<RecordBatch>(new BoundedChannelOptions(batches) { SingleWriter = true });
        var all = new RecordBatch[batches];
        for (int i = 0; i < batches; i++) free.Writer.TryWrite(all[i] = new RecordBatch());

        using var stop = CancellationTokenSource.CreateLinkedTokenSource(ct);
        ExceptionDispatchInfo? firstError = null;
        void Fail(Exception e)
        {
            if (e is OperationCanceledException && stop.IsCancellationRequested) return;
            Interlocked.CompareExchange(ref firstError, ExceptionDispatchInfo.Capture(e), null);
            stop.Cancel();
        }

        long done = 0, bytesRead = 0;
        var images = new LoaderImageDecoder(options.MaxImagePixels, fused is not null && options.ReducedJpegDecode && xSpec.Kind == FeatureKind.Image
            ? Imaging.ReducedJpeg.TargetOf(fused.Preprocess) : null);
        progress?.Report(new LoadProgress(LoadPhase.Decoding, 0, total, 0, bytesTotal, builder.FullName));

        Task reader = Task.Run(async () =>
        {
            try
            {
                foreach (var (ins, rows) in work)
                {
                    using var file = new TfRecordReader(ins.Path);
                    string idPrefix = Path.GetFileName(ins.Path) + "__"; // tfds_id = <shard file name>__<record index> (9.3)
                    long counted = 0;
                    long skipped = file.Skip(ins.Skip);
                    if (skipped < ins.Skip) throw TooFew(ins, skipped);
                    long k = 0;
                    RecordBatch batch = await free.Reader.ReadAsync(stop.Token).ConfigureAwait(false);
                    batch.Reset(ins, idPrefix);
                    while (k < ins.Take)
                    {
                        if (!file.TryReadNext(out TfRecord rec)) throw TooFew(ins, ins.Skip + k);
                        if (!batch.TryAdd(rec, rows[k]))
                        {
                            Interlocked.Add(ref bytesRead, file.NextOffset - counted);
                            counted = file.NextOffset;
                            await full.Writer.WriteAsync(batch, stop.Token).ConfigureAwait(false);
                            batch = await free.Reader.ReadAsync(stop.Token).ConfigureAwait(false);
                            batch.Reset(ins, idPrefix);
                            batch.TryAdd(rec, rows[k]);
                        }
                        k++;
                    }
                    // A shard read to its end must hold exactly shardLengths[i] records (TFDS_FORMAT.md 9.4).
                    if (ins.Skip + ins.Take == ins.ShardLength && file.TryReadNext(out TfRecord extra))
                        throw new DataFormatException(
                            $"{ins.Path}: holds more records than dataset_info.json says: shardLengths[{ins.ShardIndex}] of split '{ins.Split}' is {ins.ShardLength}, " +
                            $"but record {extra.Index} starts at byte {extra.Offset}. The shard or its metadata is damaged; download the dataset again.",
                            ins.Path, extra.Offset, ins.Split);
                    Interlocked.Add(ref bytesRead, file.NextOffset - counted);
                    if (batch.Count > 0) await full.Writer.WriteAsync(batch, stop.Token).ConfigureAwait(false);
                    else await free.Writer.WriteAsync(batch, stop.Token).ConfigureAwait(false);
                }
            }
            catch (Exception e)
            {
                Fail(e);
            }
            finally
            {
                full.Writer.TryComplete();
            }
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
                        if (fused is null) DecodeBatch(batch, xSpec, ySpec, table, ragged, images, stop.Token);
                        else DecodeAndPreprocessBatch(batch, xSpec, ySpec, dtype, shape, ragged, fused.Preprocess, table, images, scratch, stop.Token);
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
        ct.ThrowIfCancellationRequested();
        firstError?.Throw();
        if (done != total)
            throw new InvalidOperationException($"Internal error: decoded {done} of {total} examples of {builder.FullName} without an error; please report this.");
        return table.Build();
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
        IExamplePreprocessor preprocess, ExampleTableBuilder table, LoaderImageDecoder images, Scratch scratch, CancellationToken ct)
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
            table.SetId(row, id);
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

    private static void DecodeBatch(RecordBatch batch, FeatureSpec xSpec, FeatureSpec ySpec, ExampleTableBuilder table, bool ragged, LoaderImageDecoder images, CancellationToken ct)
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
            table.SetId(row, string.Concat(batch.IdPrefix, batch.Index[i].ToString(System.Globalization.CultureInfo.InvariantCulture)));
        }
    }
}
