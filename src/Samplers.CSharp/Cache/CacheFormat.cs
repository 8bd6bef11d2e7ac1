using System.Buffers;
using System.Buffers.Binary;
using System.Globalization;
using System.IO.Hashing;
using System.Runtime.InteropServices;
using System.Text;
using System.Text.Json;
using Parquet;
using Parquet.Schema;

namespace Samplers.Cache;

/// <summary>
/// The on-disk schema of a cache file (documented in docs/CACHE.md). One row per example, in split order:
/// <c>index</c> int64 (position in the split selection), <c>label</c> int64, optional <c>id</c> string (TFDS id),
/// <c>shape</c> binary (ragged only: rank little-endian int32 dims), <c>data</c> binary (row-major, little-endian
/// elements). Key-value metadata carries the schema version, key, fingerprint, dtype, shape, class names, counts and
/// an XXH3-128 checksum of the payload.
/// </summary>
internal static class CacheFormat
{
    public const int SchemaVersion = 1;
    public const string MetaSchemaVersion = "samplers.cache.schema_version";
    public const string MetaKey = "samplers.cache.key";
    public const string MetaFingerprint = "samplers.cache.fingerprint";
    public const string MetaDType = "samplers.cache.dtype";
    public const string MetaShape = "samplers.cache.shape";
    public const string MetaLayout = "samplers.cache.layout";
    public const string MetaCount = "samplers.cache.count";
    public const string MetaPayloadBytes = "samplers.cache.payload_bytes";
    public const string MetaClassNames = "samplers.cache.class_names";
    public const string MetaHasIds = "samplers.cache.has_ids";
    public const string MetaChecksum = "samplers.cache.checksum";
    public const string MetaXKey = "samplers.cache.x_key";
    public const string MetaYKey = "samplers.cache.y_key";
    /// <summary>The preprocess identity the stored table was made with (only in files of preprocessed tables; the key holds it too).</summary>
    public const string MetaPreprocess = "samplers.cache.preprocess";

    public static readonly DataField<long> IndexField = new("index", false);
    public static readonly DataField<long> LabelField = new("label", false);
    public static readonly DataField<string> IdField = new("id", false);
    public static readonly DataField<ReadOnlyMemory<byte>> ShapeField = new("shape", false);
    public static readonly DataField<ReadOnlyMemory<byte>> DataField = new("data", false);

    public static ParquetSchema SchemaFor(bool ragged, bool hasIds)
    {
        var fields = new List<Field> { IndexField, LabelField };
        if (hasIds) fields.Add(IdField);
        if (ragged) fields.Add(ShapeField);
        fields.Add(DataField);
        return new ParquetSchema(fields);
    }

    /// <summary>
    /// XXH3-128 over everything a load returns: dtype, declared shape, per-example shapes and bytes, labels, ids and class
    /// names. Integrity, not identity (the source fingerprint is SHA-256): a fast non-cryptographic hash keeps the check
    /// well above the read speed.
    /// </summary>
    /// <remarks>A mapped table (fixed shape, never ragged) is hashed with reads under its handle (<see cref="MappedRows.AppendRows"/>).</remarks>
    public static string Checksum(ExampleTable table)
    {
        var h = new XxHash128();
        ChecksumHead(h, table.DType, table.ExampleShape, table.Count);
        // A mapped table's rows are read through its file handle, not the mapping: a file truncated meanwhile is then a
        // DataFormatException instead of a SIGBUS that kills the process. The bytes appended are the same.
        if (table.Mapped is MappedRows mapped) mapped.AppendRows(h);
        else for (int i = 0; i < table.Count; i++)
        {
            if (table.IsRagged)
            {
                ReadOnlySpan<int> s = table.GetShape(i);
                h.Append(MemoryMarshal.AsBytes(s));
            }
            h.Append(table.GetExample(i));
        }
        return ChecksumTail(h, table.Labels, table.HasIds ? Ids(table) : null, table.ClassNames);
    }

    private static IEnumerable<string> Ids(ExampleTable table)
    {
        for (int i = 0; i < table.Count; i++) yield return table.GetId(i) ?? "";
    }

    /// <summary>The checksum's part before the examples: dtype, declared shape, count. The examples follow (for each, its shape
    /// when ragged, then its bytes); <see cref="ChecksumTail"/> ends it. Split so a streamed table hashes as it is written.</summary>
    public static void ChecksumHead(XxHash128 h, DType dtype, ReadOnlySpan<int> shape, int count)
    {
        I64(h, (long)dtype);
        I64(h, shape.Length);
        foreach (int d in shape) I64(h, d);
        I64(h, count);
    }

    /// <summary>The checksum's part after the examples: labels, ids (when recorded; a missing id as ""), class names; returns the checksum text.</summary>
    public static string ChecksumTail(XxHash128 h, ReadOnlySpan<long> labels, IEnumerable<string>? ids, IReadOnlyList<string> classNames)
    {
        h.Append(MemoryMarshal.AsBytes(labels));
        if (ids is not null)
        {
            foreach (string id in ids)
            {
                I64(h, id.Length);
                h.Append(MemoryMarshal.AsBytes(id.AsSpan()));
            }
        }
        foreach (string name in classNames)
        {
            I64(h, name.Length);
            h.Append(MemoryMarshal.AsBytes(name.AsSpan()));
        }
        return "xxh3-128:" + Convert.ToHexStringLower(h.GetCurrentHash());
    }

    private static void I64(XxHash128 h, long v)
    {
        Span<byte> scratch = stackalloc byte[8];
        BinaryPrimitives.WriteInt64LittleEndian(scratch, v);
        h.Append(scratch);
    }

    /// <summary>Metadata key of the shards' content hashes (JSON array of "name\tlength\txxh3:hex"), compared by verify.</summary>
    public const string MetaShardHashes = "samplers.cache.shard_hashes";

    public static Dictionary<string, string> Metadata(CacheKey key, SourceFingerprint fingerprint, ExampleTable table, string checksum) =>
        Metadata(key, fingerprint, new Layout(table.DType, table.ExampleShape.ToArray(), table.IsRagged, table.Count, table.PayloadBytes, table.ClassNames, table.HasIds), checksum);

    /// <summary>The facts of a table the metadata records (a streamed table has no <see cref="ExampleTable"/> to ask).</summary>
    internal sealed record Layout(DType DType, int[] Shape, bool Ragged, int Count, long PayloadBytes, IReadOnlyList<string> ClassNames, bool HasIds);

    /// <summary>The file's key-value metadata. The insertion order is the order in the footer: kept fixed so the same
    /// table always gives the same bytes, whether written from memory or streamed (<see cref="CacheStreamWriter"/>).</summary>
    public static Dictionary<string, string> Metadata(CacheKey key, SourceFingerprint fingerprint, Layout t, string checksum)
    {
        var meta = new Dictionary<string, string>
        {
            [MetaSchemaVersion] = SchemaVersion.ToString(CultureInfo.InvariantCulture),
            [MetaKey] = key.Canonical,
            [MetaFingerprint] = fingerprint.Value,
            [MetaDType] = DTypes.Name(t.DType),
            [MetaShape] = JsonSerializer.Serialize(t.Shape),
            [MetaLayout] = t.Ragged ? "ragged" : "fixed",
            [MetaCount] = t.Count.ToString(CultureInfo.InvariantCulture),
            [MetaPayloadBytes] = t.PayloadBytes.ToString(CultureInfo.InvariantCulture),
            [MetaClassNames] = JsonSerializer.Serialize(t.ClassNames.ToArray()),
            [MetaHasIds] = t.HasIds ? "true" : "false",
            [MetaChecksum] = checksum,
            [MetaXKey] = key.XKey,
            [MetaYKey] = key.YKey,
        };
        // Hashed at build time, right after the load read the same files (so mostly from the page cache).
        if (fingerprint.ShardPaths.Length > 0) meta[MetaShardHashes] = JsonSerializer.Serialize(fingerprint.ContentHashes());
        if (key.Preprocess.Length > 0) meta[MetaPreprocess] = key.Preprocess;
        return meta;
    }

    /// <summary>Rows per row group for examples of <paramref name="averageBytes"/>: about <see cref="ParquetCacheOptions.RowGroupBytes"/>
    /// of payload each (one rule for tables written from memory and streamed ones, so both give the same file).</summary>
    public static int RowsPerGroup(long rowGroupBytes, long averageBytes) => (int)Math.Clamp(rowGroupBytes / Math.Max(1, averageBytes), 1, 1 << 20);

    /// <summary>The parquet options of every cache file.</summary>
    public static ParquetOptions WriterOptions(ParquetCacheOptions options) =>
        new() { CompressionMethod = options.Compression, CompressionLevel = System.IO.Compression.CompressionLevel.Fastest };

    /// <summary>Writes one row group's columns (rows <paramref name="start"/>.. in the file): index, label, id when given, shape when
    /// given, data. The one writer of row groups, for tables from memory and streamed ones alike.</summary>
    public static async Task WriteGroupAsync(ParquetWriter writer, long start, ReadOnlyMemory<long> labels, ReadOnlyMemory<char>[]? ids,
        ReadOnlyMemory<byte>[]? shapes, ReadOnlyMemory<byte>[] data, CancellationToken cancellationToken)
    {
        int rows = data.Length;
        var index = new long[rows];
        for (int i = 0; i < rows; i++) index[i] = start + i;
        using ParquetRowGroupWriter group = writer.CreateRowGroup();
        await group.WriteAsync<long>(IndexField, index, null, null, cancellationToken).ConfigureAwait(false);
        await group.WriteAsync<long>(LabelField, labels, null, null, cancellationToken).ConfigureAwait(false);
        if (ids is not null)
            await group.WriteAsync<ReadOnlyMemory<char>>(IdField, ids, null, null, cancellationToken).ConfigureAwait(false);
        if (shapes is not null)
            await group.WriteAsync<ReadOnlyMemory<byte>>(ShapeField, shapes, null, null, cancellationToken).ConfigureAwait(false);
        await group.WriteAsync<ReadOnlyMemory<byte>>(DataField, data, null, null, cancellationToken).ConfigureAwait(false);
        group.CompleteValidate();
    }

    /// <summary>Writes <paramref name="table"/> to <paramref name="stream"/> as a complete Parquet file; returns the payload
    /// checksum recorded in its metadata (the builder stamps the file with it).</summary>
    public static async Task<string> WriteAsync(Stream stream, CacheKey key, SourceFingerprint fingerprint, ExampleTable table,
        ParquetCacheOptions options, IProgress<CacheProgress>? progress, string path, CancellationToken cancellationToken)
    {
        string checksum = Checksum(table);
        ParquetSchema schema = SchemaFor(table.IsRagged, table.HasIds);
        await using ParquetWriter writer = await ParquetWriter.CreateAsync(schema, stream, WriterOptions(options), false, cancellationToken).ConfigureAwait(false);
        writer.CustomMetadata = Metadata(key, fingerprint, table, checksum);
        int n = table.Count;
        int rowsPerGroup = RowsPerGroup(options.RowGroupBytes, n == 0 ? 1 : table.PayloadBytes / n);
        int rank = table.ExampleShape.Length;
        for (int start = 0; start < n || (n == 0 && start == 0); start += rowsPerGroup)
        {
            int rows = Math.Min(rowsPerGroup, n - start);
            // Copy the group's bytes into one pooled buffer and slice it: Parquet.Net takes ReadOnlyMemory values,
            // and ExampleTable exposes spans only.
            long bytes = 0;
            for (int i = 0; i < rows; i++) bytes += table.GetExample(start + i).Length;
            byte[] buffer = ArrayPool<byte>.Shared.Rent((int)Math.Max(1, bytes));
            byte[] shapeBuffer = ArrayPool<byte>.Shared.Rent(Math.Max(1, rows * rank * 4));
            try
            {
                var labels = table.Labels.Slice(start, rows).ToArray();
                var data = new ReadOnlyMemory<byte>[rows];
                var shapes = table.IsRagged ? new ReadOnlyMemory<byte>[rows] : null;
                int at = 0;
                for (int i = 0; i < rows; i++)
                {
                    ReadOnlySpan<byte> ex = table.GetExample(start + i);
                    ex.CopyTo(buffer.AsSpan(at));
                    data[i] = new ReadOnlyMemory<byte>(buffer, at, ex.Length);
                    at += ex.Length;
                    if (shapes is not null)
                    {
                        ReadOnlySpan<int> s = table.GetShape(start + i);
                        for (int d = 0; d < rank; d++) BinaryPrimitives.WriteInt32LittleEndian(shapeBuffer.AsSpan((i * rank + d) * 4), s[d]);
                        shapes[i] = new ReadOnlyMemory<byte>(shapeBuffer, i * rank * 4, rank * 4);
                    }
                }
                ReadOnlyMemory<char>[]? ids = null;
                if (table.HasIds)
                {
                    ids = new ReadOnlyMemory<char>[rows];
                    for (int i = 0; i < rows; i++) ids[i] = (table.GetId(start + i) ?? "").AsMemory();
                }
                await WriteGroupAsync(writer, start, labels, ids, shapes, data, cancellationToken).ConfigureAwait(false);
            }
            finally
            {
                ArrayPool<byte>.Shared.Return(buffer);
                ArrayPool<byte>.Shared.Return(shapeBuffer);
            }
            progress?.Report(new CacheProgress(CachePhase.Writing, path, start + rows, n));
            if (n == 0) break;
        }
        return checksum;
    }

    /// <summary>The facts a cache file's metadata states, validated for shape but not yet against a request.</summary>
    internal sealed record Header(int SchemaVersion, string Key, string Fingerprint, DType DType, int[] Shape, bool Ragged,
        int Count, long PayloadBytes, string[] ClassNames, bool HasIds, string Checksum)
    {
        /// <summary>The shards' content hashes recorded at build time; null for files built before they were recorded.</summary>
        public string[]? ShardHashes { get; init; }
    }

    /// <summary>Parses the metadata; throws <see cref="DataFormatException"/> naming the key that is missing or bad.</summary>
    public static Header ReadHeader(IReadOnlyDictionary<string, string> meta, string path)
    {
        string Get(string k) => meta.TryGetValue(k, out string? v) ? v
            : throw new DataFormatException($"{path}: metadata key '{k}' is missing; this is not a samplers cache file (or a damaged one).", path, key: k);
        int version = int.TryParse(Get(MetaSchemaVersion), NumberStyles.None, CultureInfo.InvariantCulture, out int v) ? v
            : throw new DataFormatException($"{path}: metadata '{MetaSchemaVersion}' is '{Get(MetaSchemaVersion)}', expected an integer.", path, key: MetaSchemaVersion);
        if (version != SchemaVersion)
            return new Header(version, "", "", default, [], false, 0, 0, [], false, "");
        if (!DTypes.TryParse(Get(MetaDType), out DType dtype))
            throw new DataFormatException($"{path}: metadata '{MetaDType}' is '{Get(MetaDType)}', not a known dtype.", path, key: MetaDType);
        int[] shape = ParseJson<int[]>(Get(MetaShape), MetaShape, path);
        string layout = Get(MetaLayout);
        if (layout is not ("fixed" or "ragged"))
            throw new DataFormatException($"{path}: metadata '{MetaLayout}' is '{layout}', expected 'fixed' or 'ragged'.", path, key: MetaLayout);
        int count = int.TryParse(Get(MetaCount), NumberStyles.None, CultureInfo.InvariantCulture, out int c) ? c
            : throw new DataFormatException($"{path}: metadata '{MetaCount}' is '{Get(MetaCount)}', expected a non-negative integer.", path, key: MetaCount);
        long payload = long.TryParse(Get(MetaPayloadBytes), NumberStyles.None, CultureInfo.InvariantCulture, out long p) ? p
            : throw new DataFormatException($"{path}: metadata '{MetaPayloadBytes}' is '{Get(MetaPayloadBytes)}', expected a non-negative integer.", path, key: MetaPayloadBytes);
        string[] names = ParseJson<string[]>(Get(MetaClassNames), MetaClassNames, path);
        bool hasIds = Get(MetaHasIds) == "true";
        bool ragged = layout == "ragged";
        foreach (int d in shape)
            if (d < -1 || (d == -1 && !ragged))
                throw new DataFormatException($"{path}: metadata shape [{string.Join(", ", shape)}] does not fit layout '{layout}'.", path, key: MetaShape);
        string[]? hashes = meta.TryGetValue(MetaShardHashes, out string? hj) ? ParseJson<string[]>(hj, MetaShardHashes, path) : null;
        return new Header(version, Get(MetaKey), Get(MetaFingerprint), dtype, shape, ragged, count, payload, names, hasIds, Get(MetaChecksum)) { ShardHashes = hashes };
    }

    private static T ParseJson<T>(string json, string key, string path) where T : class
    {
        try
        {
            return JsonSerializer.Deserialize<T>(json) ?? throw new JsonException("null");
        }
        catch (JsonException e)
        {
            throw new DataFormatException($"{path}: metadata '{key}' is not valid JSON of the expected type: {e.Message}", path, key: key, inner: e);
        }
    }

    /// <summary>
    /// Reads every row group into a new table. <paramref name="openStream"/> is called once per reader: with
    /// <paramref name="parallelism"/> &gt; 1, row groups are split among that many readers, each over its own stream.
    /// </summary>
    public static async Task<ExampleTable> ReadTableAsync(Func<Stream> openStream, Microsoft.Win32.SafeHandles.SafeFileHandle? file, Header header, int rowGroupCount, long[] rowGroupRows,
        int parallelism, long chunkBytes, IProgress<CacheProgress>? progress, string path, CancellationToken cancellationToken)
    {
        ExampleTableBuilder builder = header.Ragged
            ? ExampleTableBuilder.Ragged(header.DType, header.Shape, header.Count, chunkBytes)
            : ExampleTableBuilder.Fixed(header.DType, header.Shape, header.Count, chunkBytes);
        builder.ClassNames = header.ClassNames;
        var firstRow = new long[rowGroupCount];
        for (int g = 1; g < rowGroupCount; g++) firstRow[g] = firstRow[g - 1] + rowGroupRows[g - 1];
        long done = 0;
        int workers = Math.Clamp(parallelism, 1, Math.Max(1, rowGroupCount));
        int next = -1;
        async Task Worker()
        {
            Stream stream = openStream();
            await using (stream.ConfigureAwait(false))
            {
                await using ParquetReader reader = await ParquetReader.CreateAsync(stream, null, false, cancellationToken).ConfigureAwait(false);
                DataField[] fields = reader.Schema.GetDataFields();
                int g;
                while ((g = Interlocked.Increment(ref next)) < rowGroupCount)
                {
                    cancellationToken.ThrowIfCancellationRequested();
                    await ReadGroupAsync(reader, file, fields, g, (int)firstRow[g], (int)rowGroupRows[g], header, builder, path, cancellationToken).ConfigureAwait(false);
                    long d = Interlocked.Add(ref done, rowGroupRows[g]);
                    progress?.Report(new CacheProgress(CachePhase.Reading, path, d, header.Count));
                }
            }
        }
        var tasks = new Task[workers];
        for (int w = 0; w < workers; w++) tasks[w] = workers == 1 ? Worker() : Task.Run(Worker, cancellationToken);
        await Task.WhenAll(tasks).ConfigureAwait(false);
        return builder.Build();
    }

    private static DataField Field(DataField[] fields, string name, string path)
    {
        foreach (DataField f in fields) if (f.Name == name) return f;
        throw new DataFormatException($"{path}: column '{name}' is missing; found [{string.Join(", ", fields.Select(f => f.Name))}].", path, key: name);
    }

    private static async Task ReadGroupAsync(ParquetReader reader, Microsoft.Win32.SafeHandles.SafeFileHandle? file, DataField[] fields, int g, int start, int rows, Header header,
        ExampleTableBuilder builder, string path, CancellationToken cancellationToken)
    {
        using ParquetRowGroupReader group = reader.OpenRowGroupReader(g);
        var index = new long[rows];
        await group.ReadAsync<long>(Field(fields, "index", path), index, null, cancellationToken).ConfigureAwait(false);
        for (int i = 0; i < rows; i++)
            if (index[i] != start + i)
                throw new DataFormatException($"{path}: row group {g} row {i} has index {index[i]}, expected {start + i}; rows are out of order.", path, start + i, "index");
        var labels = new long[rows];
        await group.ReadAsync<long>(Field(fields, "label", path), labels, null, cancellationToken).ConfigureAwait(false);
        for (int i = 0; i < rows; i++) builder.SetLabel(start + i, labels[i]);
        if (header.HasIds)
        {
            var ids = new ReadOnlyMemory<char>[rows];
            await group.ReadAsync<ReadOnlyMemory<char>>(Field(fields, "id", path), ids, null, cancellationToken).ConfigureAwait(false);
            for (int i = 0; i < rows; i++) builder.SetId(start + i, ids[i].ToString());
        }
        ReadOnlyMemory<byte>[]? shapes = null;
        int rank = header.Shape.Length;
        if (header.Ragged)
        {
            shapes = new ReadOnlyMemory<byte>[rows];
            await group.ReadAsync<ReadOnlyMemory<byte>>(Field(fields, "shape", path), shapes, null, cancellationToken).ConfigureAwait(false);
        }
        DataField dataField = Field(fields, "data", path);
        if (file is not null && !header.Ragged)
        {
            // Hot path: uncompressed PLAIN pages go straight into the slots (see PlainPageReader).
            Parquet.Meta.ColumnMetaData? meta = group.GetMetadata(dataField)?.MetaData;
            if (meta is not null && meta.Codec == Parquet.Meta.CompressionCodec.UNCOMPRESSED && meta.DictionaryPageOffset is null
                && PlainPageReader.TryReadFixed(file, meta.DataPageOffset, meta.TotalCompressedSize, start, rows, builder, path))
                return;
        }
        var data = new ReadOnlyMemory<byte>[rows];
        await group.ReadAsync<ReadOnlyMemory<byte>>(dataField, data, null, cancellationToken).ConfigureAwait(false);
        var dims = new int[rank];
        for (int i = 0; i < rows; i++)
        {
            ReadOnlySpan<byte> bytes = data[i].Span;
            Span<byte> slot;
            if (shapes is null)
            {
                slot = builder.Slot(start + i);
            }
            else
            {
                ReadOnlySpan<byte> s = shapes[i].Span;
                if (s.Length != rank * 4)
                    throw new DataFormatException($"{path}: example {start + i} has a shape of {s.Length} bytes, expected {rank * 4} (rank {rank}).", path, start + i, "shape");
                for (int d = 0; d < rank; d++) dims[d] = BinaryPrimitives.ReadInt32LittleEndian(s[(d * 4)..]);
                try
                {
                    slot = builder.AllocateRagged(start + i, dims);
                }
                catch (ArgumentException e)
                {
                    throw new DataFormatException($"{path}: example {start + i}: {e.Message}", path, start + i, "shape", e);
                }
            }
            if (bytes.Length != slot.Length)
                throw new DataFormatException($"{path}: example {start + i} has {bytes.Length} bytes, expected {slot.Length}.", path, start + i, "data");
            bytes.CopyTo(slot);
        }
    }
}
