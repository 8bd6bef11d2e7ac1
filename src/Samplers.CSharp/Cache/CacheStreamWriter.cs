using System.IO.Hashing;
using Parquet;

namespace Samplers.Cache;

/// <summary>
/// Writes a fixed-shape cache file row group by row group, for a table that is never whole in memory: the first load of
/// a dataset decodes each row group's examples and hands them here (<see cref="ParquetCache.StoreStreamingAsync"/>).
/// The file is byte for byte the one <see cref="CacheFormat.WriteAsync"/> writes for the same table: the same row-group
/// rule, the same column writer, the same metadata; the checksum is computed as the rows pass (examples in order, then
/// labels, ids and class names at <see cref="CompleteAsync"/>), and the metadata goes into the footer, which Parquet
/// writes last.
/// </summary>
internal sealed class CacheStreamWriter
{
    private readonly ParquetWriter _writer;
    private readonly CacheKey _key;
    private readonly SourceFingerprint _fingerprint;
    private readonly CacheFormat.Layout _layout;
    private readonly XxHash128 _hash = new();
    private readonly string _path;
    private readonly IProgress<CacheProgress>? _progress;
    private int _nextGroup;

    private CacheStreamWriter(ParquetWriter writer, CacheKey key, SourceFingerprint fingerprint, CacheFormat.Layout layout, long rowGroupBytes,
        string path, IProgress<CacheProgress>? progress)
    {
        _writer = writer; _key = key; _fingerprint = fingerprint; _layout = layout; _path = path; _progress = progress;
        ExampleBytes = layout.Count == 0 ? 0 : checked((int)(layout.PayloadBytes / layout.Count));
        RowsPerGroup = CacheFormat.RowsPerGroup(rowGroupBytes, ExampleBytes);
        GroupCount = (int)((layout.Count + (long)RowsPerGroup - 1) / RowsPerGroup);
        CacheFormat.ChecksumHead(_hash, layout.DType, layout.Shape, layout.Count);
    }

    /// <summary>Starts a file on <paramref name="stream"/> for <paramref name="count"/> examples of one fixed shape, with ids.</summary>
    /// <exception cref="ArgumentException">A ragged shape, or no examples (nothing to stream).</exception>
    internal static async Task<CacheStreamWriter> CreateAsync(Stream stream, CacheKey key, SourceFingerprint fingerprint, DType dtype, int[] shape,
        int count, IReadOnlyList<string> classNames, ParquetCacheOptions options, string path, IProgress<CacheProgress>? progress, CancellationToken cancellationToken)
    {
        if (Array.Exists(shape, d => d < 0)) throw new ArgumentException($"A streamed cache file needs one fixed shape, not [{string.Join(", ", shape)}].", nameof(shape));
        ArgumentOutOfRangeException.ThrowIfLessThan(count, 1);
        long stride = DTypes.SizeOf(dtype);
        foreach (int d in shape) stride *= d;
        var layout = new CacheFormat.Layout(dtype, (int[])shape.Clone(), false, count, checked(stride * count), classNames, HasIds: true);
        ParquetWriter writer = await ParquetWriter.CreateAsync(CacheFormat.SchemaFor(ragged: false, hasIds: true), stream, CacheFormat.WriterOptions(options),
            false, cancellationToken).ConfigureAwait(false);
        return new CacheStreamWriter(writer, key, fingerprint, layout, options.RowGroupBytes, path, progress);
    }

    /// <summary>Bytes of one example.</summary>
    public int ExampleBytes { get; }

    /// <summary>Rows of every row group but maybe the last.</summary>
    public int RowsPerGroup { get; }

    /// <summary>Row groups the file will hold.</summary>
    public int GroupCount { get; }

    /// <summary>Examples the file will hold.</summary>
    public int Count => _layout.Count;

    /// <summary>Rows of row group <paramref name="group"/>.</summary>
    public int RowsIn(int group) => (int)Math.Min(RowsPerGroup, _layout.Count - (long)group * RowsPerGroup);

    /// <summary>The payload checksum, once <see cref="CompleteAsync"/> ran.</summary>
    public string? Checksum { get; private set; }

    /// <summary>Writes the next row group: <paramref name="data"/> holds its examples back to back, <paramref name="labels"/>
    /// and <paramref name="ids"/> one per row. Groups come in order, each once.</summary>
    /// <exception cref="InvalidOperationException">A group out of order or of the wrong size.</exception>
    public async Task WriteGroupAsync(int group, ReadOnlyMemory<byte> data, ReadOnlyMemory<long> labels, string[] ids, CancellationToken cancellationToken)
    {
        int rows = group < GroupCount ? RowsIn(group) : -1;
        if (group != _nextGroup || Checksum is not null || data.Length != (long)rows * ExampleBytes || labels.Length != rows || ids.Length < rows)
            throw new InvalidOperationException($"Internal error: row group {group} ({labels.Length} rows, {data.Length} bytes) does not follow group {_nextGroup - 1} of {GroupCount} " +
                $"({RowsPerGroup} rows of {ExampleBytes} bytes each); please report this.");
        _hash.Append(data.Span);
        var values = new ReadOnlyMemory<byte>[rows];
        var idValues = new ReadOnlyMemory<char>[rows];
        for (int i = 0; i < rows; i++)
        {
            values[i] = data.Slice(i * ExampleBytes, ExampleBytes);
            idValues[i] = ids[i].AsMemory();
        }
        long start = (long)group * RowsPerGroup;
        await CacheFormat.WriteGroupAsync(_writer, start, labels, idValues, null, values, cancellationToken).ConfigureAwait(false);
        _nextGroup++;
        _progress?.Report(new CacheProgress(CachePhase.Writing, _path, start + rows, _layout.Count));
    }

    /// <summary>After the last group: ends the checksum with every label, every id (in row order) and the class names,
    /// puts the metadata in the footer and writes it. Returns the checksum.</summary>
    /// <exception cref="InvalidOperationException">Groups are missing, or the labels or ids do not match the count.</exception>
    public async Task<string> CompleteAsync(ReadOnlyMemory<long> labels, IEnumerable<string> ids)
    {
        if (_nextGroup != GroupCount || labels.Length != _layout.Count)
            throw new InvalidOperationException($"Internal error: completing a streamed cache file after {_nextGroup} of {GroupCount} row groups, {labels.Length} labels of {_layout.Count}; please report this.");
        int seen = 0;
        IEnumerable<string> Counted()
        {
            foreach (string id in ids) { seen++; yield return id; }
        }
        string checksum = CacheFormat.ChecksumTail(_hash, labels.Span, Counted(), _layout.ClassNames);
        if (seen != _layout.Count)
            throw new InvalidOperationException($"Internal error: {seen} ids for {_layout.Count} rows of a streamed cache file; please report this.");
        _writer.CustomMetadata = CacheFormat.Metadata(_key, _fingerprint, _layout, checksum);
        await _writer.DisposeAsync().ConfigureAwait(false); // writes the footer
        Checksum = checksum;
        return checksum;
    }
}
