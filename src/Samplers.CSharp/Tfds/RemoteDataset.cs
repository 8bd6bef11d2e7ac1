using Samplers.Core.Tfds;
using Microsoft.Extensions.Logging;
using Samplers.Storage;

namespace Samplers.Tfds;

/// <summary>Where a record index came from when a remote dataset was opened.</summary>
public enum RecordIndexOrigin
{
    /// <summary>Built by scanning the shards (first open, or the shards changed).</summary>
    Scanned = 0,
    /// <summary>Read from the local index file (the shards' sizes and ETags still match).</summary>
    LocalFile = 1,
    /// <summary>Read from the index published next to the data in the bucket.</summary>
    Published = 2,
}

/// <summary>What opening a remote dataset cost and found, per split index.</summary>
/// <param name="Split">The split.</param>
/// <param name="Origin">Where its index came from.</param>
/// <param name="Records">Records the index holds.</param>
/// <param name="Path">The local index file.</param>
/// <param name="Published">True when this open also wrote the index to the bucket.</param>
public sealed record RecordIndexInfo(string Split, RecordIndexOrigin Origin, long Records, string Path, bool Published);

/// <summary>Opens object-store data directories for remote random access (<see cref="ObjectStoreAccess.Remote"/>):
/// metadata copied locally, one listing of the version folder, a record index per split (local, published or
/// scanned), then a <see cref="RemoteExampleTable"/> over the rows the split specs select, in the disk load's order.</summary>
internal static class RemoteDataset
{
    /// <summary>The folder (relative to a version folder) that holds published indexes.</summary>
    internal const string IndexFolder = "samplers-index";

    /// <summary>The index file name of <paramref name="split"/>.</summary>
    internal static string IndexName(string split) => split + ".sidx";

    /// <summary>Opens the remote table for <paramref name="options"/> (whose DataDir is an object-store location).</summary>
    /// <param name="options">What to load.</param>
    /// <param name="publish">Also write each index to the bucket (only the <c>samplers index --publish</c> command asks).</param>
    /// <param name="progress">Load progress; null for none.</param>
    /// <param name="ct">Cancels.</param>
    public static async Task<RemoteExampleTable> OpenAsync(TfdsLoadOptions options, bool publish, IProgress<LoadProgress>? progress, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(options);
        var settings = options.ObjectStore ?? new ObjectStoreOptions();
        var remote = settings.Remote ?? new RemoteAccessOptions();
        settings = settings with { Remote = remote };
        ArgumentOutOfRangeException.ThrowIfNegative(remote.ReadAheadBatches, "options.ObjectStore.Remote.ReadAheadBatches");
        ArgumentOutOfRangeException.ThrowIfLessThan(remote.MaxParallelRequests, 1, "options.ObjectStore.Remote.MaxParallelRequests");
        ArgumentOutOfRangeException.ThrowIfNegative(remote.CoalesceGapBytes, "options.ObjectStore.Remote.CoalesceGapBytes");
        ArgumentOutOfRangeException.ThrowIfLessThan(remote.MaxRangeBytes, 1, "options.ObjectStore.Remote.MaxRangeBytes");
        ArgumentOutOfRangeException.ThrowIfNegative(remote.CacheBytes, "options.ObjectStore.Remote.CacheBytes");
        if (!ObjectStoreLocation.IsRemote(options.DataDir))
            throw new ArgumentException($"Remote access reads an object-store data directory (s3://bucket/prefix), but TfdsLoadOptions.DataDir is '{options.DataDir ?? "(null)"}'.", "options.DataDir");
        ObjectStoreLocation location;
        try { location = ObjectStoreLocation.Parse(options.DataDir); }
        catch (ArgumentException e) { throw new ArgumentException($"TfdsLoadOptions.DataDir: {e.Message.Split(" (Parameter")[0]}", "options.DataDir", e); }
        var provider = ObjectStores.Find(location.Scheme, $"TfdsLoadOptions.DataDir '{location}'");

        LoadPlan plan = await LoadPlan.ResolveAsync(options, progress, ct, remote: true).ConfigureAwait(false);
        ILogger logger = plan.Logger;
        DatasetBuilderDir builder = plan.Builder;
        string versionRel = builder.Name + (builder.Config.Length > 0 ? "/" + builder.Config : "") + "/" + builder.Version;
        string versionKey = location.Key(versionRel) + "/";
        // Beside the metadata in the data directory's local folder, or under IndexDir keyed as the copies are.
        string indexDir = remote.IndexDir is { Length: > 0 } dir
            ? Path.Combine(ObjectStoreDataDir.LocalCopy(location, settings with { CopyDir = dir }, provider, null), Path.Combine(versionRel.Split('/')), IndexFolder)
            : Path.Combine(builder.Path, IndexFolder);

        var store = new CountingStore(provider.Open(location, settings));
        try
        {
            progress?.Report(new LoadProgress(LoadPhase.Resolving, 0, plan.Total, Detail: $"listing {location}/{versionRel}"));
            Dictionary<string, ObjectEntry> listing = await ListAllAsync(store, location, versionKey, ct).ConfigureAwait(false);
            var indexes = new Dictionary<string, RecordIndex>(StringComparer.Ordinal);
            var infos = new List<RecordIndexInfo>();
            var splits = plan.Selections.SelectMany(s => s.Instructions).Select(i => i.Split).Distinct().ToList();
            long scanBytesBefore = store.Bytes;
            foreach (string split in splits)
            {
                var (index, info) = await IndexFor(store, location, versionKey, builder, plan.YSpec, split, listing, indexDir, settings, publish, logger, ct).ConfigureAwait(false);
                indexes[split] = index;
                infos.Add(info);
            }
            long openRequests = store.Requests, openBytes = store.Bytes;

            // Rows in the disk load's order: each split spec's TFDS read order, the specs concatenated.
            var shardKeys = new List<(string Key, string ETag, long Size)>();
            var shardId = new Dictionary<(string Split, int Shard), int>();
            int count = (int)plan.Total;
            var rowShard = new int[count];
            var rowRecord = new long[count];
            var rowOffset = new long[count];
            var rowLength = new int[count];
            var labels = new long[count];
            int row = 0;
            foreach (SplitSelection sel in plan.Selections)
            {
                foreach (ReadBlock block in sel.ReadOrder)
                {
                    ShardInstruction ins = sel.Instructions[block.Instruction];
                    RecordIndex index = indexes[ins.Split];
                    if (!shardId.TryGetValue((ins.Split, ins.ShardIndex), out int sid))
                    {
                        IndexedShard s = index.Shards[ins.ShardIndex];
                        sid = shardKeys.Count;
                        shardKeys.Add((versionKey + s.RelativeKey, s.ETag, s.Size));
                        shardId[(ins.Split, ins.ShardIndex)] = sid;
                    }
                    long first = index.ShardStart[ins.ShardIndex];
                    for (long k = 0; k < block.Count; k++)
                    {
                        long rec = ins.Skip + block.Start + k;
                        long at = first + rec;
                        rowShard[row] = sid;
                        rowRecord[row] = rec;
                        rowOffset[row] = index.Offsets[at];
                        rowLength[row] = index.Lengths[at];
                        labels[row] = index.Labels[at];
                        row++;
                    }
                }
            }
            if (row != count)
                throw new InvalidOperationException($"Internal error: the read order gave {row} rows, the selections hold {count}; please report this.");

            var decoder = RemoteDecoder.For(plan);
            var table = new RemoteExampleTable(store, location, remote, Math.Max(0, settings.Retries), settings.Timeout, decoder, shardKeys.ToArray(),
                rowShard, rowRecord, rowOffset, rowLength, labels, plan.ClassNames, builder, plan.Selections, infos, openRequests, openBytes);
            progress?.Report(new LoadProgress(LoadPhase.Done, count, plan.Total, Detail: $"{location}/{versionRel} (remote access)"));
            logger.LogInformation("Opened {Dataset} {Splits} for remote access at {Location}: {Count} records; indexes: {Indexes}; {Requests} requests, {Bytes} bytes",
                builder.FullName, string.Join(",", options.Splits), location, count, string.Join(", ", infos.Select(i => $"{i.Split} {i.Origin}")), openRequests, openBytes);
            return table;
        }
        catch
        {
            store.Dispose();
            throw;
        }
    }

    /// <summary>Every object under <paramref name="prefix"/> by key (relative to it), paging until the end; a listing that
    /// does not advance is an error, as for the copy.</summary>
    private static async Task<Dictionary<string, ObjectEntry>> ListAllAsync(IObjectStore store, ObjectStoreLocation location, string prefix, CancellationToken ct)
    {
        var all = new Dictionary<string, ObjectEntry>(StringComparer.Ordinal);
        string? token = null;
        for (int page = 0; page < TfdsDownloader.MaxListingPages; page++)
        {
            var listing = await store.ListAsync(prefix, null, token, ct).ConfigureAwait(false);
            foreach (var o in listing.Objects)
                if (o.Key.StartsWith(prefix, StringComparison.Ordinal)) all[o.Key[prefix.Length..]] = o;
            if (!listing.IsTruncated) return all;
            if (listing.NextToken is null || listing.NextToken == token)
                throw new DownloadException($"{location}: the listing of {prefix} says it is truncated but does not advance (page {page + 1}); the server's listing is broken.", location.ToString());
            token = listing.NextToken;
        }
        throw new DownloadException($"{location}: the listing of {prefix} ran over {TfdsDownloader.MaxListingPages} pages.", location.ToString());
    }

    private static async Task<(RecordIndex, RecordIndexInfo)> IndexFor(CountingStore store, ObjectStoreLocation location, string versionKey, DatasetBuilderDir builder,
        FeatureSpec ySpec, string split, Dictionary<string, ObjectEntry> listing, string indexDir, ObjectStoreOptions settings, bool publish, ILogger logger, CancellationToken ct)
    {
        SplitInfo info = builder.Info.FindSplit(split) ?? throw new DatasetNotFoundException($"Split '{split}' does not exist in {builder.FullName}.", builder.Info.FilePath, split);
        string[] rel = builder.Info.ShardRelativePaths(info);
        var listed = new IndexedShard[rel.Length];
        for (int i = 0; i < rel.Length; i++)
        {
            long expected = info.ShardLengths[i];
            if (listing.TryGetValue(rel[i], out var o))
            {
                if (expected > ShardChecks.MaxRecords(o.Size))
                    throw new DataFormatException(
                        $"s3://{location.Bucket}/{versionKey}{rel[i]}: expected {expected} records (shardLengths[{i}] of split '{split}' in dataset_info.json) but the object holds only " +
                        $"{ShardChecks.MaxRecords(o.Size)} at most ({o.Size} bytes). The shard is truncated or its metadata is wrong.", $"{location.Scheme}://{location.Bucket}/{versionKey}{rel[i]}", null, split);
                listed[i] = new IndexedShard(rel[i], o.Size, o.ETag ?? "", expected);
            }
            else if (expected == 0)
            {
                listed[i] = new IndexedShard(rel[i], 0, "", 0); // an empty shard need not exist
            }
            else
            {
                throw DataHints.NotFound(
                    $"{location.Scheme}://{location.Bucket}/{versionKey}{rel[i]} is missing: shard {i} of split '{split}' of {builder.FullName}, which dataset_info.json lists with {expected} records, is not in the bucket.",
                    [DataHints.Download("upload the dataset's shards again")], $"{location.Scheme}://{location.Bucket}/{versionKey}{rel[i]}", split);
            }
        }
        long maxBytes = RecordIndex.MaxFileBytes(info.NumExamples, rel.Length);
        string path = Path.Combine(indexDir, IndexName(split));
        string where = $"{location.Scheme}://{location.Bucket}/{versionKey}";

        // 1. The local index, when it still describes these objects. A damaged or stale one is rebuilt: it is derived data.
        if (File.Exists(path))
        {
            try
            {
                byte[] bytes = SafeFile.ReadAllBytes(path, maxBytes, "record index");
                RecordIndex local = RecordIndex.Parse(bytes, path, builder.FullName, split, ySpec.Key, rel, info.ShardLengths);
                if (local.Matches(listed))
                {
                    if (publish) await PublishAsync(store, versionKey, split, bytes, ct).ConfigureAwait(false);
                    return (local, new RecordIndexInfo(split, RecordIndexOrigin.LocalFile, local.Offsets.Length, path, publish));
                }
                logger.LogInformation("{Path}: the shards of split {Split} changed since the record index was built (size or ETag); rebuilding it", path, split);
            }
            catch (Exception e) when (e is DataFormatException or IOException)
            {
                logger.LogWarning("{Path}: the record index cannot be used ({Reason}); rebuilding it from the shards", path, e.Message);
            }
        }

        // 2. A published index next to the data: used when it describes these objects; a damaged one is an error (someone
        // published it; scanning would hide that), a stale one is skipped with a warning.
        string pubRel = IndexFolder + "/" + IndexName(split);
        if (settings.Remote.UsePublishedIndex && !publish && listing.TryGetValue(pubRel, out var pub))
        {
            string pubWhere = where + pubRel;
            if (pub.Size > maxBytes)
                throw new DataFormatException($"{pubWhere}: the published record index has {pub.Size} bytes, more than the {maxBytes} an index of this split can have. Republish it (samplers index --publish) or delete it.", pubWhere, null, "record index");
            byte[] bytes = await ReadWholeAsync(store, versionKey + pubRel, pub, pubWhere, maxBytes, settings, ct).ConfigureAwait(false);
            RecordIndex published;
            try
            {
                published = RecordIndex.Parse(bytes, pubWhere, builder.FullName, split, ySpec.Key, rel, info.ShardLengths);
            }
            catch (DataFormatException e)
            {
                throw new DataFormatException($"{e.Message} To ignore published indexes set ObjectStoreOptions.Remote.UsePublishedIndex = false; to fix it run samplers index --publish, or delete the object.", pubWhere, e.Offset, "record index", e);
            }
            if (published.Matches(listed))
            {
                Save(path, bytes);
                return (published, new RecordIndexInfo(split, RecordIndexOrigin.Published, published.Offsets.Length, path, false));
            }
            logger.LogWarning("{Where}: the published record index of split {Split} describes other shard versions (sizes or ETags differ); scanning the shards instead", pubWhere, split);
        }

        // 3. Scan: one streaming pass over every shard.
        RecordIndex scanned = await ScanAsync(store, location, versionKey, builder.FullName, ySpec, split, listed, settings, ct).ConfigureAwait(false);
        byte[] file = scanned.Serialize();
        Save(path, file);
        if (publish) await PublishAsync(store, versionKey, split, file, ct).ConfigureAwait(false);
        return (scanned, new RecordIndexInfo(split, RecordIndexOrigin.Scanned, scanned.Offsets.Length, path, publish));
    }

    private static void Save(string path, byte[] bytes)
    {
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        // A name the product chose in a folder it owns: temp file + rename (a link planted there is replaced, never followed).
        OutputTarget.ReplaceInFolder(path, s => s.Write(bytes));
    }

    private static async Task PublishAsync(IObjectStore store, string versionKey, string split, byte[] bytes, CancellationToken ct)
    {
        string key = versionKey + IndexFolder + "/" + IndexName(split);
        await store.PutAsync(key, bytes, ct).ConfigureAwait(false);
    }

    private static async Task<byte[]> ReadWholeAsync(IObjectStore store, string key, ObjectEntry entry, string where, long maxBytes, ObjectStoreOptions settings, CancellationToken ct)
    {
        if (entry.Size == 0) return [];
        // Resumed like the record reads: a short or cut answer continues from where it stopped, on the listed version.
        return await ResumingRange.ReadAllAsync(store, key, where, 0, checked((int)Math.Min(entry.Size, maxBytes)), string.IsNullOrEmpty(entry.ETag) ? null : entry.ETag,
            settings.Retries, settings.Timeout, null, ct).ConfigureAwait(false);
    }

    private static async Task<RecordIndex> ScanAsync(CountingStore store, ObjectStoreLocation location, string versionKey, string dataset, FeatureSpec ySpec,
        string split, IndexedShard[] listed, ObjectStoreOptions settings, CancellationToken ct)
    {
        var parts = new (long[] Offsets, int[] Lengths, long[] Labels)[listed.Length];
        var po = new ParallelOptions { MaxDegreeOfParallelism = Math.Clamp(settings.Remote.MaxParallelRequests, 1, 8), CancellationToken = ct };
        await Parallel.ForEachAsync(Enumerable.Range(0, listed.Length), po, async (i, token) =>
        {
            IndexedShard s = listed[i];
            if (s.Records == 0 && s.Size == 0) { parts[i] = ([], [], []); return; }
            string key = versionKey + s.RelativeKey;
            string where = $"{location.Scheme}://{location.Bucket}/{key}";
            // One pass over the shard; a short answer or a cut body is resumed from the byte it stopped at (never scanned
            // again from the start), every request naming the listed ETag so that the index describes one version.
            using var body = new ResumingRange(store, key, where, 0, s.Size, s.ETag.Length > 0 ? s.ETag : null, settings.Retries, settings.Timeout, null, token);
            // TfRecordReader reads synchronously: off the caller's thread.
            parts[i] = await Task.Run(() => RecordIndex.ScanShard(body, where, ySpec, s.Records, s.Size, split, i), token).ConfigureAwait(false);
        }).ConfigureAwait(false);
        return new RecordIndex(dataset, split, ySpec.Key, listed,
            parts.SelectMany(p => p.Offsets).ToArray(), parts.SelectMany(p => p.Lengths).ToArray(), parts.SelectMany(p => p.Labels).ToArray());
    }
}

/// <summary>An <see cref="IObjectStore"/> that counts the requests made through it and the body bytes read.</summary>
internal sealed class CountingStore(IObjectStore inner) : IObjectStore
{
    private long _requests, _bytes;

    /// <summary>Requests made (listings, reads, writes).</summary>
    public long Requests => Interlocked.Read(ref _requests);
    /// <summary>Body bytes read.</summary>
    public long Bytes => Interlocked.Read(ref _bytes);

    public Task<ObjectListPage> ListAsync(string prefix, string? delimiter, string? continuationToken, CancellationToken cancellationToken)
    {
        Interlocked.Increment(ref _requests);
        return inner.ListAsync(prefix, delimiter, continuationToken, cancellationToken);
    }

    public async Task<ObjectRead?> ReadAsync(string key, long from, CancellationToken cancellationToken)
    {
        Interlocked.Increment(ref _requests);
        var r = await inner.ReadAsync(key, from, cancellationToken).ConfigureAwait(false);
        return r is null ? null : new ObjectRead(new Counted(r, this), r.From, r.Length, r.TotalLength, r.ETag);
    }

    public async Task<ObjectRead?> ReadRangeAsync(string key, long from, long length, string? expectedETag, CancellationToken cancellationToken)
    {
        Interlocked.Increment(ref _requests);
        var r = await inner.ReadRangeAsync(key, from, length, expectedETag, cancellationToken).ConfigureAwait(false);
        return r is null ? null : new ObjectRead(new Counted(r, this), r.From, r.Length, r.TotalLength, r.ETag);
    }

    public Task<string?> PutAsync(string key, ReadOnlyMemory<byte> body, CancellationToken cancellationToken)
    {
        Interlocked.Increment(ref _requests);
        return inner.PutAsync(key, body, cancellationToken);
    }

    public void Dispose() => inner.Dispose();

    private sealed class Counted(ObjectRead read, CountingStore owner) : ReadOnlyStream
    {
        public override int Read(byte[] buffer, int offset, int count)
        {
            int n = read.Body.Read(buffer, offset, count);
            Interlocked.Add(ref owner._bytes, n);
            return n;
        }
        public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
        {
            int n = await read.Body.ReadAsync(buffer, cancellationToken).ConfigureAwait(false);
            Interlocked.Add(ref owner._bytes, n);
            return n;
        }
        public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
            ReadAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();
        protected override void Dispose(bool disposing)
        {
            if (disposing) read.Dispose();
            base.Dispose(disposing);
        }
    }
}

/// <summary>Turns one record's data into the example the disk load makes of it: the same feature decoding (and image
/// decoder settings) and the same preprocess, so batch bytes are identical.</summary>
internal sealed class RemoteDecoder
{
    private readonly FeatureSpec _x, _y;
    private readonly DType _dtype;
    private readonly int[] _shape;
    private readonly bool _ragged;
    private readonly TfdsRecordPipeline.Fused? _fused;
    private readonly LoaderImageDecoder _images;

    private RemoteDecoder(FeatureSpec x, FeatureSpec y, DType dtype, int[] shape, TfdsRecordPipeline.Fused? fused, LoaderImageDecoder images)
    {
        _x = x; _y = y; _dtype = dtype; _shape = shape; _fused = fused; _images = images;
        _ragged = Array.Exists(shape, d => d < 0);
    }

    /// <summary>The decoder for <paramref name="plan"/>: fused with the preprocess, and with reduced JPEG decoding exactly
    /// when the disk load would fuse (the preprocess declares an identity, or the cache is off).</summary>
    public static RemoteDecoder For(LoadPlan plan)
    {
        TfdsLoadOptions options = plan.Options;
        bool cacheOff = TfdsCacheEntry.OpenCache(options, null) is null;
        bool fuse = plan.Fused is not null && (plan.CachePreprocessed || cacheOff);
        var images = new LoaderImageDecoder(options.MaxImagePixels, fuse && options.ReducedJpegDecode && plan.XSpec.Kind == FeatureKind.Image
            ? Imaging.ReducedJpeg.TargetOf(plan.Fused!.Preprocess) : null);
        return new RemoteDecoder(plan.XSpec, plan.YSpec, plan.DType, plan.Shape, plan.Fused, images);
    }

    /// <summary>The examples' dtype.</summary>
    public DType DType => _fused?.OutputDType ?? _dtype;

    /// <summary>The examples' declared shape (-1 where it varies).</summary>
    public int[] Shape => _fused?.OutputShape ?? _shape;

    /// <summary>Decodes one record; its label must be <paramref name="indexLabel"/>.</summary>
    /// <exception cref="DataFormatException">The record is not a valid Example, or its label differs from the index's.</exception>
    public LoadedExample Decode(ReadOnlySpan<byte> data, RecordLocation location, long indexLabel)
    {
        var example = ExampleDecoder.Parse(data, location);
        var features = example.Features ?? new Protos.Features();
        long label = FeatureDecoder.ReadLabel(_y, features, location);
        if (label != indexLabel)
            throw new DataFormatException($"{location}: the record's label is {label}, the record index says {indexLabel}; the index does not describe this object. Delete the local index (it is rebuilt).", location.FilePath, location.Offset, _y.Key);
        if (_fused is null)
        {
            int[] shape = _ragged ? FeatureDecoder.MeasureShape(_x, features, location, _images) : _shape;
            var bytes = new byte[FeatureDecoder.ByteCount(_x, shape)];
            FeatureDecoder.DecodeInto(_x, features, location, bytes, _images);
            return new LoadedExample(bytes, (int[])shape.Clone());
        }
        int[] exampleShape = _ragged ? FeatureDecoder.MeasureShape(_x, features, location, _images)
            : _images.Reduces ? _images.MeasureShape(_x, FeatureDecoder.GetBytes(_x, features, location).Span, location)
            : _shape;
        var decoded = new byte[FeatureDecoder.ByteCount(_x, exampleShape)];
        FeatureDecoder.DecodeInto(_x, features, location, decoded, _images);
        long elems = 1;
        foreach (int d in _fused.OutputShape) elems *= d;
        var output = new byte[checked((int)(elems * DTypes.SizeOf(_fused.OutputDType)))];
        long after = label;
        try
        {
            _fused.Preprocess.Process(decoded, exampleShape, _dtype, output, ref after);
        }
        catch (Exception e) when (e is not OperationCanceledException)
        {
            throw new InvalidOperationException($"The preprocess failed on {location} (tfds_id {location.TfdsId}, shape [{string.Join(", ", exampleShape)}]): {e.Message}", e);
        }
        if (after != label)
            throw new InvalidOperationException(
                $"{location}: the preprocess changed the label from {label} to {after}; remote access samples from the labels of the record index, read before any example, " +
                "so the preprocess must keep labels (or use ObjectStoreAccess.Copy).");
        return new LoadedExample(output, (int[])_fused.OutputShape.Clone());
    }
}
