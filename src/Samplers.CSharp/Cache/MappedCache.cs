using System.Buffers.Binary;
using System.IO.MemoryMappedFiles;
using Microsoft.Win32.SafeHandles;
using Parquet;
using Parquet.Schema;

namespace Samplers.Cache;

/// <summary>
/// Opens a cache file as a mapped <see cref="ExampleTable"/> (docs/MAPPED.md): labels are read into memory, the file is
/// mapped read-only, and the <c>data</c> column's page headers are read once to locate every page. Opening costs
/// O(row groups + pages) for the data, plus 8 bytes per row of labels; the example bytes are not read.
/// </summary>
/// <remarks>
/// Only the layout the cache writes by default can be mapped: fixed shape, uncompressed, version-1 PLAIN data pages
/// without a dictionary. Anything else is <see cref="NotMappableException"/> (the caller then reads the file into memory
/// or reports it). Each page must hold exactly <c>values x (4 + stride)</c> bytes and its first and last values must
/// declare <c>stride</c> bytes, so every row's offset is known without reading the rows; the payload checksum is not
/// verified here (that would read every byte): <see cref="ParquetCache.VerifyAsync"/> does it.
/// </remarks>
internal static class MappedCache
{
    /// <summary>Row groups whose labels were read straight from the mapping since start-up (lets tests prove the path is taken).</summary>
    internal static long PlainLabelGroups;

    /// <summary>The file is a valid cache but not in a layout that can be mapped.</summary>
    internal sealed class NotMappableException(string message) : Exception(message);

    /// <summary>Refuses, before any work, a <see cref="TableBacking.Mapped"/> load that cannot be honoured: ragged examples
    /// or caching turned off. Auto and Memory pass.</summary>
    /// <exception cref="ArgumentException">The request names the reason and what to do.</exception>
    internal static void CheckRequest(TableBacking backing, string dataset, string xKey, int[] shape, bool cacheOn)
    {
        if (backing != TableBacking.Mapped) return;
        if (Array.Exists(shape, d => d < 0))
            throw new ArgumentException($"Table = Mapped needs examples of one fixed shape, but {dataset} '{xKey}' has shape [{string.Join(", ", shape)}] (ragged). " +
                "Use TableBacking.Memory (or Auto), with a resizing preprocess such as Preprocessing.ResizeNearest(h, w).", "options.Table");
        if (!cacheOn)
            throw new ArgumentException($"Table = Mapped reads the Parquet cache file, but caching is off (UseCache = false or {ParquetCache.DisableVariable}). " +
                "Turn the cache on, or use TableBacking.Memory.", "options.Table");
    }

    /// <summary>The backing to ask the cache for: an explicit Mapped still reads a valid file it cannot map into memory
    /// (compressed by other settings) rather than rebuilding it; CheckRequest already refused what the loader can know.</summary>
    internal static TableBacking ForLoad(TableBacking backing) => backing == TableBacking.Mapped ? TableBacking.Auto : backing;

    /// <summary>Why the header alone rules mapping out, or null.</summary>
    internal static string? HeaderBlocksMapping(CacheFormat.Header header) =>
        header.Ragged ? $"its examples are ragged (shape [{string.Join(", ", header.Shape)}]); mapping needs one fixed shape" : null;

    internal static async Task<ExampleTable> OpenAsync(ParquetReader reader, SafeFileHandle handle, CacheFormat.Header header,
        long[] groupRows, string path, CancellationToken cancellationToken)
    {
        if (HeaderBlocksMapping(header) is string why) throw new NotMappableException(why);
        DataField[] fields = reader.Schema.GetDataFields();
        DataField dataField = Find(fields, "data", path), labelField = Find(fields, "label", path);
        long stride = DTypes.SizeOf(header.DType);
        foreach (int d in header.Shape) stride *= d;
        if (stride > int.MaxValue - 4)
            throw new NotMappableException($"one example is {stride} bytes, more than a span holds");
        // The identity first: every batch compares the file with it (MappedRows.CheckUnchanged), so a change in place
        // from here on, while the metadata is read or later, is caught; the length is read after it.
        FileIdentity? identity = FileIdentity.Of(handle);
        long length = RandomAccess.GetLength(handle);
        var groups = groupRows.Length;
        var chunkOffset = new long[groups];
        var chunkLength = new long[groups];
        var labels = new long[header.Count];
        var labelOffset = new long[groups];
        var labelLength = new long[groups];
        var labelPlain = new bool[groups];
        for (int g = 0; g < groups; g++)
        {
            cancellationToken.ThrowIfCancellationRequested();
            using ParquetRowGroupReader group = reader.OpenRowGroupReader(g);
            Parquet.Meta.ColumnMetaData meta = group.GetMetadata(dataField)?.MetaData
                ?? throw new DataFormatException($"{path}: row group {g} has no metadata for column 'data'.", path, key: "data");
            if (meta.Codec != Parquet.Meta.CompressionCodec.UNCOMPRESSED)
                throw new NotMappableException($"its 'data' column is compressed ({meta.Codec}); mapping needs uncompressed pages (ParquetCacheOptions.Compression = None, the default)");
            if (meta.DictionaryPageOffset is not null)
                throw new NotMappableException("its 'data' column has a dictionary page; mapping needs PLAIN pages");
            chunkOffset[g] = meta.DataPageOffset;
            chunkLength[g] = meta.TotalCompressedSize;
            if (chunkOffset[g] < 4 || chunkLength[g] < 0 || chunkOffset[g] + chunkLength[g] > length)
                throw new DataFormatException($"{path}: row group {g}'s 'data' column claims bytes [{chunkOffset[g]}, {chunkOffset[g] + chunkLength[g]}), outside the file's {length} bytes; the file is truncated or damaged.", path, chunkOffset[g], "data");
            Parquet.Meta.ColumnMetaData? lm = group.GetMetadata(labelField)?.MetaData;
            if (lm is not null)
            {
                labelOffset[g] = lm.DataPageOffset;
                labelLength[g] = lm.TotalCompressedSize;
                // Our writer's labels: uncompressed PLAIN int64 pages, read straight from the mapping; anything else goes through Parquet.Net.
                labelPlain[g] = lm.Codec == Parquet.Meta.CompressionCodec.UNCOMPRESSED && lm.DictionaryPageOffset is null
                    && labelOffset[g] >= 4 && labelLength[g] >= 0 && labelOffset[g] + labelLength[g] <= length;
            }
        }
        MemoryMappedFile map = MemoryMappedFile.CreateFromFile(handle, null, 0, MemoryMappedFileAccess.Read, HandleInheritability.None, leaveOpen: true);
        MemoryMappedViewAccessor? view = null;
        try
        {
            view = map.CreateViewAccessor(0, 0, MemoryMappedFileAccess.Read);
            // Ask for every label chunk and every data chunk's first page at once: on a cold cache the reads then overlap
            // instead of costing one seek each in turn.
            ReadAheadMetadata(view, labelOffset, labelLength, chunkOffset, length);
            int first = 0;
            for (int g = 0; g < groups; g++)
            {
                cancellationToken.ThrowIfCancellationRequested();
                int rows = checked((int)groupRows[g]);
                if (rows > 0 && labelPlain[g] && TryReadPlainInt64(view, labelOffset[g], labelLength[g], labels.AsSpan(first, rows)))
                    Interlocked.Increment(ref PlainLabelGroups);
                else if (rows > 0)
                {
                    using ParquetRowGroupReader group = reader.OpenRowGroupReader(g);
                    var part = new long[rows];
                    await group.ReadAsync<long>(labelField, part, null, cancellationToken).ConfigureAwait(false);
                    part.CopyTo(labels, first);
                }
                first += rows;
            }
            (long[] starts, int[] firsts) = IndexPages(view, chunkOffset, chunkLength, groupRows, (int)stride, header.Count, path);
            var mapped = new MappedRows(path, handle, map, view, length, identity, starts, firsts, (int)stride);
            Func<string?[]>? ids = header.HasIds ? () => ReadIds(mapped, header.Count, path) : null;
            return new ExampleTable(header.DType, header.Shape, mapped, (int)stride, labels, ids, header.ClassNames);
        }
        catch
        {
            view?.Dispose();
            map.Dispose();
            throw;
        }
    }

    private static unsafe void ReadAheadMetadata(MemoryMappedViewAccessor view, long[] labelOffset, long[] labelLength, long[] dataOffset, long length)
    {
        byte* p = null;
        view.SafeMemoryMappedViewHandle.AcquirePointer(ref p);
        try
        {
            byte* b = p + view.PointerOffset;
            for (int g = 0; g < dataOffset.Length; g++)
            {
                if (labelLength[g] > 0) MappedRows.WillNeed(b, labelOffset[g], labelLength[g], length);
                MappedRows.WillNeed(b, dataOffset[g], 1, length);
            }
        }
        finally
        {
            view.SafeMemoryMappedViewHandle.ReleasePointer();
        }
    }

    // The values of a required INT64 column chunk made of version-1 PLAIN data pages; false for anything else.
    private static unsafe bool TryReadPlainInt64(MemoryMappedViewAccessor view, long offset, long length, Span<long> values)
    {
        byte* p = null;
        view.SafeMemoryMappedViewHandle.AcquirePointer(ref p);
        try
        {
            byte* b = p + view.PointerOffset;
            long pos = offset, end = offset + length;
            int got = 0;
            while (got < values.Length)
            {
                if (pos >= end) return false;
                var r = new PlainPageReader.ThriftReader(new ReadOnlySpan<byte>(b + pos, (int)Math.Min(end - pos, int.MaxValue)));
                var h = new PlainPageReader.Header();
                if (!PlainPageReader.ReadPageHeader(ref r, ref h)) return false;
                long data = pos + r.Position;
                if (h.Type != 0 || !h.HasDataPageHeader || h.Encoding != 0 || h.NumValues < 0 || got + h.NumValues > values.Length
                    || h.CompressedSize != h.UncompressedSize || h.CompressedSize != h.NumValues * 8L || data + h.CompressedSize > end)
                    return false;
                if (!BitConverter.IsLittleEndian) return false; // PLAIN is little-endian; not worth a swap path
                new ReadOnlySpan<byte>(b + data, h.CompressedSize).CopyTo(System.Runtime.InteropServices.MemoryMarshal.AsBytes(values.Slice(got, h.NumValues)));
                got += h.NumValues;
                pos = data + h.CompressedSize;
            }
            return true;
        }
        finally
        {
            view.SafeMemoryMappedViewHandle.ReleasePointer();
        }
    }

    private static DataField Find(DataField[] fields, string name, string path)
    {
        foreach (DataField f in fields) if (f.Name == name) return f;
        throw new DataFormatException($"{path}: column '{name}' is missing; found [{string.Join(", ", fields.Select(f => f.Name))}].", path, key: name);
    }

    // Walks the page headers of every row group's 'data' chunk in the mapping: one segment per data page.
    private static unsafe (long[] Starts, int[] FirstRows) IndexPages(MemoryMappedViewAccessor view, long[] chunkOffset, long[] chunkLength,
        long[] groupRows, int stride, int count, string path)
    {
        var starts = new List<long>();
        var firsts = new List<int>();
        byte* p = null;
        view.SafeMemoryMappedViewHandle.AcquirePointer(ref p);
        try
        {
            byte* b = p + view.PointerOffset;
            long pitch = 4L + stride;
            int row0 = 0;
            for (int g = 0; g < chunkOffset.Length; g++)
            {
                long pos = chunkOffset[g], end = chunkOffset[g] + chunkLength[g];
                long rows = groupRows[g], row = 0;
                while (row < rows)
                {
                    if (pos >= end)
                        throw new DataFormatException($"{path}: row group {g}'s 'data' pages hold {row} values, the row group has {rows}.", path, pos, "data");
                    var span = new ReadOnlySpan<byte>(b + pos, (int)Math.Min(end - pos, int.MaxValue));
                    var r = new PlainPageReader.ThriftReader(span);
                    var h = new PlainPageReader.Header();
                    if (!PlainPageReader.ReadPageHeader(ref r, ref h))
                        throw new DataFormatException($"{path}: the page header at byte {pos} of column 'data' cannot be parsed.", path, pos, "data");
                    long data = pos + r.Position;
                    if (h.Type != 0 || !h.HasDataPageHeader || h.Encoding != 0)
                        throw new NotMappableException($"its 'data' column has a page of type {h.Type} / encoding {h.Encoding} at byte {pos}; mapping needs version-1 PLAIN data pages");
                    if (h.NumValues < 0 || row + h.NumValues > rows || h.CompressedSize != h.UncompressedSize
                        || h.CompressedSize != h.NumValues * pitch || data + h.CompressedSize > end)
                        throw new DataFormatException($"{path}: the data page at byte {pos} holds {h.NumValues} values in {h.CompressedSize} bytes; " +
                            $"expected {h.NumValues} x (4 + {stride}) bytes inside its column chunk (row group {g}, {rows - row} rows left).", path, pos, "data");
                    if (h.NumValues > 0)
                    {
                        int firstLen = BinaryPrimitives.ReadInt32LittleEndian(new ReadOnlySpan<byte>(b + data, 4));
                        int lastLen = BinaryPrimitives.ReadInt32LittleEndian(new ReadOnlySpan<byte>(b + data + (h.NumValues - 1) * pitch, 4));
                        if (firstLen != stride || lastLen != stride)
                            throw new DataFormatException($"{path}: the data page at byte {pos} declares values of {firstLen} and {lastLen} bytes, expected {stride}.", path, data, "data");
                        starts.Add(data + 4);
                        firsts.Add(row0 + (int)row);
                    }
                    row += h.NumValues;
                    pos = data + h.CompressedSize;
                }
                row0 += (int)rows;
            }
            if (row0 != count)
                throw new DataFormatException($"{path}: the row groups hold {row0} rows, the metadata says {count}.", path, key: CacheFormat.MetaCount);
            firsts.Add(count);
            return (starts.ToArray(), firsts.ToArray());
        }
        finally
        {
            view.SafeMemoryMappedViewHandle.ReleasePointer();
        }
    }

    // Ids are strings: read on first use, through Parquet.Net over the handle the table holds (the same inode).
    private static string?[] ReadIds(MappedRows rows, int count, string path) => Task.Run(async () =>
    {
        var ids = new string?[count];
        await using var stream = new PlainPageReader.HandleStream(rows.File);
        await using ParquetReader reader = await ParquetReader.CreateAsync(stream, null, false).ConfigureAwait(false);
        DataField idField = Find(reader.Schema.GetDataFields(), "id", path);
        int at = 0;
        for (int g = 0; g < reader.RowGroupCount; g++)
        {
            using ParquetRowGroupReader group = reader.OpenRowGroupReader(g);
            int n = checked((int)group.RowCount);
            var part = new ReadOnlyMemory<char>[n];
            await group.ReadAsync<ReadOnlyMemory<char>>(idField, part, null).ConfigureAwait(false);
            for (int i = 0; i < n; i++) ids[at + i] = part[i].ToString();
            at += n;
        }
        GC.KeepAlive(rows);
        return ids;
    }).GetAwaiter().GetResult();
}
