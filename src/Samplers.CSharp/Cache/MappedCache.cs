using System.Buffers.Binary;
using System.IO.MemoryMappedFiles;
using Microsoft.Win32.SafeHandles;
using Parquet;
using Parquet.Schema;

namespace Samplers.Cache;

/// <summary>
/// Opens a cache file as a mapped <see cref="ExampleTable"/> (docs/MAPPED.md): labels are read into memory and the
/// <c>data</c> column's page headers are read once to locate every page, both through the file handle; then the file is
/// mapped read-only. Opening costs
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
        // The lease before anything is read: a writer that opens the file from here on is announced (and held back
        // while a gather reads the mapping); one that wrote and closed before is seen by the reads below.
        FileLease? lease = FileLease.TryTake(handle);
        try
        {
            ExampleTable table = await OpenCoreAsync(reader, handle, header, groupRows, path, lease, cancellationToken).ConfigureAwait(false);
            if (lease is { Broken: true })
            {
                table.Dispose();
                throw new DataFormatException($"{path}: another program opened the cache file for writing while it was being mapped; it was written in place. " +
                    "Replace cache files by temp file + rename; it is rebuilt from the source.", path, key: "data");
            }
            return table;
        }
        catch
        {
            lease?.Release();
            throw;
        }
    }

    private static async Task<ExampleTable> OpenCoreAsync(ParquetReader reader, SafeFileHandle handle, CacheFormat.Header header,
        long[] groupRows, string path, FileLease? lease, CancellationToken cancellationToken)
    {
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
        // Everything the open needs from the file (labels, page headers, the length of each page's first and last value)
        // is read through the handle, before the mapping exists: a read past the end of a file truncated meanwhile is a
        // short read (a DataFormatException below), whereas touching a mapped page past the end kills the process with
        // SIGBUS. The mapping is made last, and no mapped byte is touched until a batch has checked the file's identity.
        BeforeMetadataReads?.Invoke(path);
        ReadAhead(handle, labelOffset, labelLength, chunkOffset);
        int first = 0;
        for (int g = 0; g < groups; g++)
        {
            cancellationToken.ThrowIfCancellationRequested();
            int rows = checked((int)groupRows[g]);
            if (rows > 0 && labelPlain[g] && TryReadPlainInt64(handle, labelOffset[g], labelLength[g], labels.AsSpan(first, rows), path))
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
        (long[] starts, int[] firsts) = IndexPages(handle, chunkOffset, chunkLength, groupRows, (int)stride, header.Count, path, length);
        // Mapped at the length the index was checked against: a file that shrank since is refused here, not mapped short.
        if (RandomAccess.GetLength(handle) != length)
            throw ChangedDuringOpen(path, length, RandomAccess.GetLength(handle));
        MemoryMappedFile map = MemoryMappedFile.CreateFromFile(handle, null, length, MemoryMappedFileAccess.Read, HandleInheritability.None, leaveOpen: true);
        MemoryMappedViewAccessor? view = null;
        try
        {
            view = map.CreateViewAccessor(0, length, MemoryMappedFileAccess.Read);
            if (RandomAccess.GetLength(handle) != length)
                throw ChangedDuringOpen(path, length, RandomAccess.GetLength(handle));
            var mapped = new MappedRows(path, handle, map, view, length, identity, starts, firsts, (int)stride, lease);
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

    /// <summary>Test hook: runs on a mapped open after the footer and column metadata are read, before the labels and
    /// page headers are (lets tests truncate the file there).</summary>
    internal static Action<string>? BeforeMetadataReads;

    private static DataFormatException ChangedDuringOpen(string path, long was, long now) =>
        new($"{path}: the cache file changed size while it was opened ({was} bytes, now {now}); it was written in place. " +
            "Replace cache files by temp file + rename; it is rebuilt from the source.", path, now);

    private static DataFormatException Truncated(string path, long at, string what) =>
        new($"{path}: the file ends before {what} at byte {at}; it was truncated (or changed in place while opened). It is rebuilt from the source.", path, at, "data");

    /// <summary>Reads [<paramref name="offset"/>, +<paramref name="buffer"/>.Length) through the handle; returns the bytes
    /// read, fewer only where the file ends.</summary>
    private static int ReadAt(SafeFileHandle file, Span<byte> buffer, long offset)
    {
        int filled = 0;
        while (filled < buffer.Length)
        {
            int n = RandomAccess.Read(file, buffer[filled..], offset + filled);
            if (n == 0) break;
            filled += n;
        }
        return filled;
    }

    // Asks the kernel for every label chunk and every data chunk's first page at once (posix_fadvise WILLNEED, Linux):
    // on a cold cache the reads then overlap instead of costing one seek each in turn. Advice only: nothing is read here.
    private static void ReadAhead(SafeFileHandle file, long[] labelOffset, long[] labelLength, long[] dataOffset)
    {
        if (!OperatingSystem.IsLinux() || s_noFadvise) return;
        bool added = false;
        try
        {
            file.DangerousAddRef(ref added);
            int fd = (int)file.DangerousGetHandle();
            for (int g = 0; g < dataOffset.Length; g++)
            {
                if (labelLength[g] > 0) _ = posix_fadvise(fd, labelOffset[g], labelLength[g], FadvWillNeed);
                _ = posix_fadvise(fd, dataOffset[g], 4096, FadvWillNeed);
            }
        }
        catch (Exception e) when (e is DllNotFoundException or EntryPointNotFoundException)
        {
            s_noFadvise = true;
        }
        finally
        {
            if (added) file.DangerousRelease();
        }
    }

    private const int FadvWillNeed = 3; // Linux
    private static bool s_noFadvise;

    [System.Runtime.InteropServices.DllImport("libc", EntryPoint = "posix_fadvise", SetLastError = false)]
    private static extern int posix_fadvise(int fd, long offset, long length, int advice);

    // The values of a required INT64 column chunk made of version-1 PLAIN data pages, read through the handle; false for
    // anything else, which then goes through Parquet.Net; a chunk cut short (the file ends inside it) is an error.
    private static bool TryReadPlainInt64(SafeFileHandle file, long offset, long length, Span<long> values, string path)
    {
        if (!BitConverter.IsLittleEndian) return false; // PLAIN is little-endian; not worth a swap path
        // Our writer's chunk is 8 bytes a value plus a page header per page; a claim far beyond that is not ours.
        if (length > 16L * values.Length + (1 << 20)) return false;
        byte[] rented = System.Buffers.ArrayPool<byte>.Shared.Rent((int)length);
        try
        {
            ReadOnlySpan<byte> chunk = rented.AsSpan(0, (int)length);
            int read = ReadAt(file, rented.AsSpan(0, (int)length), offset);
            if (read != length) throw Truncated(path, offset + read, "the end of a label column chunk");
            int pos = 0, got = 0;
            while (got < values.Length)
            {
                if (pos >= chunk.Length) return false;
                var r = new PlainPageReader.ThriftReader(chunk[pos..]);
                var h = new PlainPageReader.Header();
                if (!PlainPageReader.ReadPageHeader(ref r, ref h)) return false;
                long data = (long)pos + r.Position;
                if (h.Type != 0 || !h.HasDataPageHeader || h.Encoding != 0 || h.NumValues < 0 || got + h.NumValues > values.Length
                    || h.CompressedSize != h.UncompressedSize || h.CompressedSize != h.NumValues * 8L || data + h.CompressedSize > chunk.Length)
                    return false;
                chunk.Slice((int)data, h.CompressedSize).CopyTo(System.Runtime.InteropServices.MemoryMarshal.AsBytes(values.Slice(got, h.NumValues)));
                got += h.NumValues;
                pos = (int)data + h.CompressedSize;
            }
            return true;
        }
        finally
        {
            System.Buffers.ArrayPool<byte>.Shared.Return(rented);
        }
    }

    private static DataField Find(DataField[] fields, string name, string path)
    {
        foreach (DataField f in fields) if (f.Name == name) return f;
        throw new DataFormatException($"{path}: column '{name}' is missing; found [{string.Join(", ", fields.Select(f => f.Name))}].", path, key: name);
    }

    // Walks the page headers of every row group's 'data' chunk through the handle: one segment per data page. A page
    // header is read in a small window, grown when it does not hold the whole header (statistics can make it long).
    private static (long[] Starts, int[] FirstRows) IndexPages(SafeFileHandle file, long[] chunkOffset, long[] chunkLength,
        long[] groupRows, int stride, int count, string path, long length)
    {
        var starts = new List<long>();
        var firsts = new List<int>();
        byte[] window = new byte[256];
        Span<byte> four = stackalloc byte[4];
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
                var h = new PlainPageReader.Header();
                long data;
                int want = (int)Math.Min(end - pos, window.Length);
                while (true)
                {
                    if (window.Length < want) window = new byte[want];
                    int got = ReadAt(file, window.AsSpan(0, want), pos);
                    var r = new PlainPageReader.ThriftReader(window.AsSpan(0, got));
                    h = new PlainPageReader.Header();
                    if (PlainPageReader.ReadPageHeader(ref r, ref h)) { data = pos + r.Position; break; }
                    if (got < want) throw Truncated(path, pos, "the page header of column 'data'");
                    if (want >= end - pos || want >= Array.MaxLength / 4)
                        throw new DataFormatException($"{path}: the page header at byte {pos} of column 'data' cannot be parsed.", path, pos, "data");
                    want = (int)Math.Min(end - pos, want * 4L);
                }
                if (h.Type != 0 || !h.HasDataPageHeader || h.Encoding != 0)
                    throw new NotMappableException($"its 'data' column has a page of type {h.Type} / encoding {h.Encoding} at byte {pos}; mapping needs version-1 PLAIN data pages");
                if (h.NumValues < 0 || row + h.NumValues > rows || h.CompressedSize != h.UncompressedSize
                    || h.CompressedSize != h.NumValues * pitch || data + h.CompressedSize > end)
                    throw new DataFormatException($"{path}: the data page at byte {pos} holds {h.NumValues} values in {h.CompressedSize} bytes; " +
                        $"expected {h.NumValues} x (4 + {stride}) bytes inside its column chunk (row group {g}, {rows - row} rows left).", path, pos, "data");
                if (h.NumValues > 0)
                {
                    long lastAt = data + (h.NumValues - 1) * pitch;
                    if (ReadAt(file, four, data) < 4) throw Truncated(path, data, "the first value of a data page");
                    int firstLen = BinaryPrimitives.ReadInt32LittleEndian(four);
                    if (ReadAt(file, four, lastAt) < 4) throw Truncated(path, lastAt, "the last value of a data page");
                    int lastLen = BinaryPrimitives.ReadInt32LittleEndian(four);
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
