using System.Diagnostics;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Parquet;

namespace Samplers.Cache;

/// <summary>
/// The Parquet cache of decoded splits. After a TFRecord load the loader calls <see cref="StoreAsync"/>;
/// later loads call <see cref="TryLoadAsync(CacheKey, SourceFingerprint, TableBacking, CacheExpectation?, IProgress{CacheProgress}?, CancellationToken)"/> and read the cache instead of the shards. See docs/CACHE.md.
/// </summary>
/// <remarks>
/// Failures of the cache never fail a load: a bad, stale or unreadable cache file is a miss with a reason (and a
/// warning in the log), and a store into a read-only or full directory returns <c>Stored = false</c> with a warning.
/// Files are published by writing a temporary file in the same directory, flushing it to disk and renaming it over
/// the final name, so a reader sees either the old complete file or the new complete file, never a partial one.
/// </remarks>
internal sealed class ParquetCache
{
    /// <summary>Environment variable naming the cache directory.</summary>
    public const string DirectoryVariable = "SAMPLERS_CACHE_DIR";

    /// <summary>Environment variable that turns caching off when set to <c>1</c> or <c>true</c>.</summary>
    public const string DisableVariable = "SAMPLERS_NO_CACHE";

    /// <summary>Version of the on-disk schema; a file written with another version is rebuilt.</summary>
    public const int SchemaVersion = CacheFormat.SchemaVersion;

    private const string TempSuffix = ".tmp";
    private readonly ParquetCacheOptions _options;
    private readonly ILogger _logger;

    /// <summary>Creates a cache over <see cref="ResolveDirectory"/>(<paramref name="options"/>.Directory).</summary>
    /// <param name="options">Settings; null means the defaults.</param>
    /// <param name="logger">Receives hits, misses (with reasons) and warnings; null means no logging.</param>
    /// <exception cref="ArgumentOutOfRangeException"><see cref="ParquetCacheOptions.RowGroupBytes"/> or <see cref="ParquetCacheOptions.ChunkBytes"/> is not positive.</exception>
    public ParquetCache(ParquetCacheOptions? options = null, ILogger? logger = null)
    {
        _options = options ?? new ParquetCacheOptions();
        ArgumentOutOfRangeException.ThrowIfLessThan(_options.RowGroupBytes, 1L, "options.RowGroupBytes");
        ArgumentOutOfRangeException.ThrowIfLessThan(_options.ChunkBytes, 1L, "options.ChunkBytes");
        _logger = logger ?? NullLogger.Instance;
        string? off = Environment.GetEnvironmentVariable(DisableVariable);
        Enabled = _options.Enabled && !(off is "1" || string.Equals(off, "true", StringComparison.OrdinalIgnoreCase));
        Directory = ResolveDirectory(_options.Directory);
    }

    /// <summary>The cache directory (it may not exist yet).</summary>
    public string Directory { get; }

    /// <summary>False when caching is turned off (by options or <c>SAMPLERS_NO_CACHE</c>).</summary>
    public bool Enabled { get; }

    /// <summary>
    /// The cache directory to use: <paramref name="explicitDirectory"/> when given, else <c>SAMPLERS_CACHE_DIR</c>, else
    /// the platform cache folder plus <c>samplers</c> (<c>$XDG_CACHE_HOME</c> or <c>~/.cache</c> on Linux,
    /// <c>~/Library/Caches</c> on macOS, the local application data folder on Windows).
    /// </summary>
    public static string ResolveDirectory(string? explicitDirectory = null)
    {
        if (!string.IsNullOrEmpty(explicitDirectory)) return Path.GetFullPath(explicitDirectory);
        string? env = Environment.GetEnvironmentVariable(DirectoryVariable);
        if (!string.IsNullOrEmpty(env)) return Path.GetFullPath(env);
        string home = Environment.GetFolderPath(Environment.SpecialFolder.UserProfile);
        string root;
        if (OperatingSystem.IsWindows())
            root = Environment.GetFolderPath(Environment.SpecialFolder.LocalApplicationData);
        else if (OperatingSystem.IsMacOS())
            root = Path.Combine(home, "Library", "Caches");
        else
        {
            string? xdg = Environment.GetEnvironmentVariable("XDG_CACHE_HOME");
            root = !string.IsNullOrEmpty(xdg) && Path.IsPathRooted(xdg) ? xdg : Path.Combine(home, ".cache");
        }
        return Path.Combine(root, "samplers");
    }

    /// <summary>The path of the cache file for <paramref name="key"/>.</summary>
    /// <exception cref="ArgumentException">A key field is empty.</exception>
    public string GetPath(CacheKey key)
    {
        ArgumentNullException.ThrowIfNull(key);
        key.Validate();
        return Path.Combine(Directory, key.FileName);
    }

    /// <summary>
    /// Loads the cached table for <paramref name="key"/> if a valid file built from <paramref name="fingerprint"/>
    /// exists; otherwise returns a miss with its reason. Never throws for a bad cache file.
    /// </summary>
    /// <param name="key">Which split selection.</param>
    /// <param name="fingerprint">The current source's fingerprint; a file built from another source is stale.</param>
    /// <param name="expected">Optional dtype/shape/class names the caller expects; a mismatch is a miss.</param>
    /// <param name="progress">Receives <see cref="CachePhase.Checking"/>, <see cref="CachePhase.Reading"/>, then Hit or Miss.</param>
    /// <param name="cancellationToken">Cancels the read.</param>
    /// <exception cref="ArgumentNullException"><paramref name="key"/> or <paramref name="fingerprint"/> is null.</exception>
    /// <exception cref="ArgumentException">A key field is empty.</exception>
    /// <exception cref="OperationCanceledException">The token was cancelled.</exception>
    public Task<CacheLoadResult> TryLoadAsync(CacheKey key, SourceFingerprint fingerprint, CacheExpectation? expected = null,
        IProgress<CacheProgress>? progress = null, CancellationToken cancellationToken = default) =>
        TryLoadAsync(key, fingerprint, TableBacking.Memory, expected, progress, cancellationToken);

    /// <summary>
    /// Like <see cref="TryLoadAsync(CacheKey, SourceFingerprint, CacheExpectation?, IProgress{CacheProgress}?, CancellationToken)"/>,
    /// with the table's backing chosen: <see cref="TableBacking.Mapped"/> maps the file read-only and reads only labels and
    /// page headers (docs/MAPPED.md); a valid file that cannot be mapped (ragged, compressed) is then a miss with
    /// <see cref="CacheMissReason.NotMappable"/>. <see cref="TableBacking.Auto"/> maps when it can, else reads into memory.
    /// </summary>
    /// <remarks>A mapped open checks key, fingerprint, metadata, the file size against every column chunk and every data
    /// page header, but not the payload checksum (it would read every byte); <see cref="VerifyAsync"/> checks that.</remarks>
    /// <exception cref="ArgumentNullException"><paramref name="key"/> or <paramref name="fingerprint"/> is null.</exception>
    /// <exception cref="ArgumentException">A key field is empty.</exception>
    /// <exception cref="OperationCanceledException">The token was cancelled.</exception>
    public Task<CacheLoadResult> TryLoadAsync(CacheKey key, SourceFingerprint fingerprint, TableBacking backing, CacheExpectation? expected = null,
        IProgress<CacheProgress>? progress = null, CancellationToken cancellationToken = default) =>
        LoadCoreAsync(key, fingerprint, backing, expected, progress, checkContent: false, cancellationToken);

    private async Task<CacheLoadResult> LoadCoreAsync(CacheKey key, SourceFingerprint fingerprint, TableBacking backing, CacheExpectation? expected,
        IProgress<CacheProgress>? progress, bool checkContent, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(key);
        ArgumentNullException.ThrowIfNull(fingerprint);
        key.Validate();
        if (!Enabled)
            return Miss(progress, "", CacheMissReason.Disabled, "caching is turned off", LogLevel.Debug);
        string path = GetPath(key);
        if (!File.Exists(path))
            return Miss(progress, path, CacheMissReason.NotFound, $"{path}: no cache file yet; loading from the source", LogLevel.Information);
        var sw = Stopwatch.StartNew();
        progress?.Report(new CacheProgress(CachePhase.Checking, path, 0, 0));
        try
        {
            // One handle for every reader: they all see the same version of the file even if a writer renames a new one over it.
            // A mapped table keeps it open for its whole life (so it keeps that version too).
            // Through SafeFile: a FIFO at the cache path would block the open (a device would never end); it is refused
            // (a miss, Unreadable) and the rebuilt cache replaces it by rename.
            Microsoft.Win32.SafeHandles.SafeFileHandle handle = SafeFile.OpenHandle(path, SafeFile.Unbounded, "cache file", FileOptions.RandomAccess);
            CacheLoadResult? miss = null;
            var contentNote = checkContent ? new System.Runtime.CompilerServices.StrongBox<string>("no shard contents") : null;
            ExampleTable? table = null;
            try
            {
                (miss, table) = await ReadCheckedAsync(() => new PlainPageReader.HandleStream(handle), handle, path, key, fingerprint, expected,
                    Environment.ProcessorCount, progress, backing, cancellationToken, contentNote).ConfigureAwait(false);
            }
            finally
            {
                if (table?.Backing != TableBacking.Mapped) handle.Dispose();
            }
            if (miss is not null) return Report(progress, miss);
            ExampleTable hit = table!;
            if (checkContent)
                return new CacheLoadResult(hit, null, path, $"{path}: valid: {hit.Count} examples; checked the metadata, the row counts, the payload checksum (XXH3-128), " +
                    $"the source fingerprint (shard paths, sizes and times; dataset_info.json and features.json bytes) and {contentNote!.Value}");
            progress?.Report(new CacheProgress(CachePhase.Hit, path, hit.Count, hit.Count));
            _logger.LogInformation("Cache hit: {Path} ({Count} examples, {Bytes} payload bytes, {Backing}) in {Ms} ms", path, hit.Count, hit.PayloadBytes, hit.Backing, sw.ElapsedMilliseconds);
            return new CacheLoadResult(hit, null, path, $"{path}: cache hit, {hit.Count} examples");
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
            throw;
        }
        catch (Exception e) when (e is FileNotFoundException or DirectoryNotFoundException)
        {
            // Deleted between the existence check and the open (e.g. by `cache clear`).
            return Miss(progress, path, CacheMissReason.NotFound, $"{path}: no cache file ({e.Message}); loading from the source", LogLevel.Information);
        }
        catch (DataFormatException e) when (FileKind.Of(path) is var kind && !FileKind.IsReadable(kind))
        {
            return Miss(progress, path, CacheMissReason.Unreadable, $"{e.Message} Loading from the source.", LogLevel.Warning);
        }
        catch (Exception e) when (e is UnauthorizedAccessException || (e is IOException && e is not EndOfStreamException && File.Exists(path) && !CanOpen(path)))
        {
            return Miss(progress, path, CacheMissReason.Unreadable, $"{path}: cannot read the cache file ({e.Message}); loading from the source", LogLevel.Warning);
        }
        catch (Exception e)
        {
            // Anything a damaged or foreign file can make the Parquet reader throw lands here: it is a rebuild, not an error.
            return Miss(progress, path, CacheMissReason.Corrupt, $"{path}: the cache file is corrupt or not a samplers cache ({e.GetType().Name}: {e.Message}); rebuilding it from the source", LogLevel.Warning);
        }
    }

    /// <summary>Re-checks the cache file of <paramref name="key"/> against the current source: reads it fully and
    /// verifies metadata, row counts and the payload checksum. Returns the same result as a load would.</summary>
    /// <exception cref="ArgumentNullException"><paramref name="key"/> or <paramref name="fingerprint"/> is null.</exception>
    /// <remarks>Unlike a load, verify also reads every shard and compares its XXH3 with the hash recorded when the
    /// cache was built, so a shard edited in place (same size and time) makes the file invalid.</remarks>
    public Task<CacheLoadResult> VerifyAsync(CacheKey key, SourceFingerprint fingerprint, CacheExpectation? expected = null, CancellationToken cancellationToken = default) =>
        LoadCoreAsync(key, fingerprint, TableBacking.Memory, expected, null, checkContent: true, cancellationToken);


    /// <summary>Reads a cache file from any stream, with every check of <see cref="TryLoadAsync(CacheKey, SourceFingerprint, TableBacking, CacheExpectation?, IProgress{CacheProgress}?, CancellationToken)"/> (for tests and tools).</summary>
    internal async Task<CacheLoadResult> TryLoadFromStreamAsync(Stream stream, string name, CacheKey key, SourceFingerprint fingerprint, CancellationToken cancellationToken = default)
    {
        try
        {
            (CacheLoadResult? miss, ExampleTable? table) = await ReadCheckedAsync(() => new NonClosingStream(stream), null, name, key, fingerprint, null, 1, null, TableBacking.Memory, cancellationToken).ConfigureAwait(false);
            return miss ?? new CacheLoadResult(table, null, name, "hit");
        }
        catch (Exception e) when (e is not OperationCanceledException)
        {
            return new CacheLoadResult(null, CacheMissReason.Corrupt, name, $"{name}: corrupt ({e.Message})");
        }
    }

    private async Task<(CacheLoadResult?, ExampleTable?)> ReadCheckedAsync(Func<Stream> open, Microsoft.Win32.SafeHandles.SafeFileHandle? file, string path, CacheKey key, SourceFingerprint fingerprint,
        CacheExpectation? expected, int parallelism, IProgress<CacheProgress>? progress, TableBacking backing, CancellationToken cancellationToken, System.Runtime.CompilerServices.StrongBox<string>? contentNote = null)
    {
        CacheFormat.Header header;
        int groups;
        long[] rows;
        Stream first = open();
        await using (first.ConfigureAwait(false))
        {
            await using ParquetReader reader = await ParquetReader.CreateAsync(first, null, false, cancellationToken).ConfigureAwait(false);
            header = CacheFormat.ReadHeader(reader.CustomMetadata, path);
            if (header.SchemaVersion != SchemaVersion)
                return (Miss(null, path, CacheMissReason.SchemaVersionChanged, $"{path}: cache schema version {header.SchemaVersion}, this library writes {SchemaVersion}; rebuilding", LogLevel.Information), null);
            if (header.Key != key.Canonical)
                return (Miss(null, path, CacheMissReason.KeyMismatch, $"{path}: the file was built for another key ({header.Key.Replace('\u001f', '|')}); rebuilding", LogLevel.Warning), null);
            if (header.Fingerprint != fingerprint.Value)
                return (Miss(null, path, CacheMissReason.SourceChanged, $"{path}: the source changed since the cache was built (fingerprint {Short(header.Fingerprint)}, now {Short(fingerprint.Value)}); rebuilding", LogLevel.Information), null);
            if (contentNote is not null && ContentMismatch(header, fingerprint, path, contentNote) is CacheLoadResult changed)
                return (changed, null);
            if (expected is not null && Mismatch(header, expected) is string what)
                return (Miss(null, path, CacheMissReason.MetadataMismatch, $"{path}: {what}; rebuilding", LogLevel.Information), null);
            groups = reader.RowGroupCount;
            rows = new long[groups];
            long total = 0;
            for (int g = 0; g < groups; g++) { rows[g] = reader.RowGroups[g].RowCount; total += rows[g]; }
            if (total != header.Count)
                throw new DataFormatException($"{path}: the row groups hold {total} rows, the metadata says {header.Count}.", path, key: CacheFormat.MetaCount);
            if (backing != TableBacking.Memory && file is not null)
            {
                try
                {
                    ExampleTable mapped = await MappedCache.OpenAsync(reader, file, header, rows, path, cancellationToken).ConfigureAwait(false);
                    if (mapped.PayloadBytes != header.PayloadBytes)
                        throw new DataFormatException($"{path}: the examples hold {mapped.PayloadBytes} bytes, the metadata says {header.PayloadBytes}.", path, key: CacheFormat.MetaPayloadBytes);
                    // The open handle's identity (statx, so about the inode just mapped; taken by the open, before it read
                    // anything through the mapping, and the one every batch compares with) against the stamp of the last
                    // verification: equal, the bytes are those that were verified; else the payload is verified once, here.
                    FileIdentity? id = mapped.Mapped!.OpenIdentity;
                    if (!VerifyStamp.Matches(path, id, header.Checksum))
                    {
                        mapped.Mapped!.PayloadVerifiedAtOpen = true;
                        _logger.LogInformation("Cache {Path}: no valid verification stamp (new, changed or never stamped); verifying the payload checksum of {Bytes} bytes once", path, header.PayloadBytes);
                        try
                        {
                            BeforePayloadChecksum?.Invoke(path);
                            VerifyChecksum(mapped, header, path);
                        }
                        catch
                        {
                            mapped.Dispose(); // unmap now, not at finalisation
                            throw;
                        }
                        Stamp(path, file, id, header.Checksum);
                    }
                    return (null, mapped);
                }
                catch (MappedCache.NotMappableException e) when (backing == TableBacking.Mapped)
                {
                    return (Miss(null, path, CacheMissReason.NotMappable, $"{path}: the cache file cannot be mapped: {e.Message}; read it into memory (TableBacking.Memory or Auto)", LogLevel.Information), null);
                }
                catch (MappedCache.NotMappableException e)
                {
                    _logger.LogDebug("Cache {Path} cannot be mapped ({Why}); reading it into memory", path, e.Message);
                }
            }
        }
        FileIdentity? before = file is null ? null : FileIdentity.Of(file);
        ExampleTable table = await CacheFormat.ReadTableAsync(open, file, header, groups, rows, parallelism, _options.ChunkBytes, progress, path, cancellationToken).ConfigureAwait(false);
        if (table.PayloadBytes != header.PayloadBytes)
            throw new DataFormatException($"{path}: the examples hold {table.PayloadBytes} bytes, the metadata says {header.PayloadBytes}.", path, key: CacheFormat.MetaPayloadBytes);
        VerifyChecksum(table, header, path);
        if (file is not null && !VerifyStamp.Matches(path, before, header.Checksum)) Stamp(path, file, before, header.Checksum);
        return (null, table);
    }

    /// <summary>Test hook: runs on a mapped open right before the payload checksum (lets tests change the file there).</summary>
    internal static Action<string>? BeforePayloadChecksum;

    private static void VerifyChecksum(ExampleTable table, CacheFormat.Header header, string path)
    {
        string checksum = CacheFormat.Checksum(table);
        if (checksum != header.Checksum)
            throw new DataFormatException($"{path}: payload checksum {checksum}, the metadata says {header.Checksum}: the file was damaged after it was written. " +
                "It is rebuilt from the source; if this recurs, check the disk (samplers cache verify checks every cache file).", path, key: CacheFormat.MetaChecksum);
    }

    // Stamps the file as verified, if it still has the identity it had before its bytes were read (else it changed
    // during the check, and the next open verifies again). Failing to write the stamp only costs that next open a check.
    private void Stamp(string path, Microsoft.Win32.SafeHandles.SafeFileHandle file, FileIdentity? before, string checksum)
    {
        if (before is not FileIdentity id || FileIdentity.Of(file) != id) return;
        if (!VerifyStamp.Write(path, id, checksum)) _logger.LogDebug("Cache {Path}: could not write the verification stamp; the next mapped open verifies again", path);
    }

    /// <summary>Compares the shards' current XXH3 with the hashes recorded at build time; a miss when one differs.</summary>
    private CacheLoadResult? ContentMismatch(CacheFormat.Header header, SourceFingerprint fingerprint, string path, System.Runtime.CompilerServices.StrongBox<string> note)
    {
        if (header.ShardHashes is null)
        {
            note.Value = "no shard contents (this file was built before shard hashes were recorded; rebuild it to have them checked)";
            return null;
        }
        string[] now = fingerprint.ContentHashes();
        for (int i = 0; i < Math.Max(now.Length, header.ShardHashes.Length); i++)
        {
            string? was = i < header.ShardHashes.Length ? header.ShardHashes[i] : null;
            string? cur = i < now.Length ? now[i] : null;
            if (was == cur) continue;
            return Miss(null, path, CacheMissReason.SourceChanged,
                $"{path}: shard content changed since the cache was built: recorded '{(was ?? "(none)").Replace('\t', ' ')}', now '{(cur ?? "(none)").Replace('\t', ' ')}' " +
                "(the shard was modified in place, keeping its size and time). Rebuild the cache (samplers cache <dataset> build) after checking the shard.", LogLevel.Warning);
        }
        note.Value = $"the content (XXH3-64) of all {now.Length} shard(s)";
        return null;
    }

    private static string? Mismatch(CacheFormat.Header h, CacheExpectation e)
    {
        if (e.DType is DType d && d != h.DType) return $"dtype {DTypes.Name(h.DType)} in the cache, {DTypes.Name(d)} expected";
        if (e.Shape is int[] s && !s.AsSpan().SequenceEqual(h.Shape)) return $"shape [{string.Join(", ", h.Shape)}] in the cache, [{string.Join(", ", s)}] expected";
        if (e.ClassNames is { } n && !n.SequenceEqual(h.ClassNames)) return $"{h.ClassNames.Length} class names in the cache differ from the {n.Count} expected";
        return null;
    }

    /// <summary>
    /// Writes <paramref name="table"/> as the cache of <paramref name="key"/>: to a temporary file in the cache directory,
    /// flushed to disk, then renamed over the final name. Never throws for IO problems: a read-only, missing or full
    /// directory gives <c>Stored = false</c> and a warning. Also deletes stale temporary files of killed writers.
    /// </summary>
    /// <param name="key">Which split selection.</param>
    /// <param name="fingerprint">The fingerprint of the source <paramref name="table"/> was loaded from.</param>
    /// <param name="table">The decoded examples, before any preprocessing.</param>
    /// <param name="progress">Receives <see cref="CachePhase.Writing"/>, then Stored or StoreFailed.</param>
    /// <param name="cancellationToken">Cancels the write (the temporary file is removed).</param>
    /// <exception cref="ArgumentNullException">An argument is null.</exception>
    /// <exception cref="ArgumentException">A key field is empty.</exception>
    /// <exception cref="OperationCanceledException">The token was cancelled.</exception>
    public async Task<CacheStoreResult> StoreAsync(CacheKey key, SourceFingerprint fingerprint, ExampleTable table,
        IProgress<CacheProgress>? progress = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(key);
        ArgumentNullException.ThrowIfNull(fingerprint);
        ArgumentNullException.ThrowIfNull(table);
        key.Validate();
        if (!Enabled) return new CacheStoreResult(false, "", "caching is turned off");
        string path = GetPath(key);
        string temp = Path.Combine(Directory, $".{key.FileName}.{Environment.ProcessId}-{Guid.NewGuid():N}{TempSuffix}");
        var sw = Stopwatch.StartNew();
        try
        {
            System.IO.Directory.CreateDirectory(Directory);
            CleanStaleTempFiles();
            // CreateNew (O_EXCL): a file or a symbolic link already at the temporary name is an error, never written through.
            // FileShare.Delete: the file is renamed while this handle is open (Windows refuses that otherwise).
            var fs = new FileStream(temp, FileMode.CreateNew, FileAccess.Write, FileShare.Delete, 1 << 20, FileOptions.None);
            string checksum;
            long bytes;
            await using (fs.ConfigureAwait(false))
            {
                checksum = await CacheFormat.WriteAsync(fs, key, fingerprint, table, _options, progress, path, cancellationToken).ConfigureAwait(false);
                fs.Flush(flushToDisk: true);
                bytes = Publish(fs, temp, path, checksum);
            }
            progress?.Report(new CacheProgress(CachePhase.Stored, path, table.Count, table.Count));
            _logger.LogInformation("Cache stored: {Path} ({Count} examples, {Bytes} bytes) in {Ms} ms", path, table.Count, bytes, sw.ElapsedMilliseconds);
            return new CacheStoreResult(true, path, "stored", bytes);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException || (e is OperationCanceledException && cancellationToken.IsCancellationRequested))
        {
            TryDelete(temp);
            if (e is OperationCanceledException) throw;
            string detail = $"{path}: could not write the cache ({e.GetType().Name}: {e.Message}); continuing without a cache. Set {DirectoryVariable} to a writable folder or turn caching off.";
            _logger.LogWarning("{Detail}", detail);
            progress?.Report(new CacheProgress(CachePhase.StoreFailed, path, 0, table.Count));
            return new CacheStoreResult(false, path, detail);
        }
        catch
        {
            TryDelete(temp);
            throw;
        }
    }

    // Renames the complete, flushed temporary file over the final name and stamps it as verified; returns its size. The
    // writing handle is held across the rename (no second open by path): the stamp then records the inode this writer
    // wrote (the rename sets its ctime), even if another writer renames its own file over the name in between.
    private static long Publish(FileStream written, string temp, string path, string checksum)
    {
        long bytes = written.Length;
        File.Move(temp, path, overwrite: true);
        if (FileIdentity.Of(written.SafeFileHandle) is FileIdentity id && id.Size == bytes)
            VerifyStamp.Write(path, id, checksum);
        return bytes;
    }

    /// <summary>
    /// Writes the cache of <paramref name="key"/> from a table that is never whole in memory: <paramref name="produce"/>
    /// receives a <see cref="CacheStreamWriter"/> for <paramref name="count"/> examples of the fixed <paramref name="shape"/>,
    /// writes every row group in order and calls <see cref="CacheStreamWriter.CompleteAsync"/>. Published like
    /// <see cref="StoreAsync"/>: a temporary file in the cache directory, flushed, renamed over the final name, stamped; a
    /// failure or a kill at any point leaves no partial file under the final name.
    /// </summary>
    /// <returns><c>Stored = false</c> (and no call of <paramref name="produce"/>) when the directory or the temporary file
    /// cannot be created; <c>Stored = false</c> when writing the file fails (read-only, full disk): the caller then loads
    /// another way. An exception thrown by <paramref name="produce"/> itself (a bad record, cancellation) deletes the
    /// temporary file and propagates unchanged.</returns>
    /// <exception cref="ArgumentException">A key field is empty, or the shape is ragged.</exception>
    /// <exception cref="OperationCanceledException">The token was cancelled.</exception>
    public async Task<CacheStoreResult> StoreStreamingAsync(CacheKey key, SourceFingerprint fingerprint, DType dtype, int[] shape, int count,
        IReadOnlyList<string> classNames, Func<CacheStreamWriter, CancellationToken, Task> produce, IProgress<CacheProgress>? progress = null,
        CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(key);
        ArgumentNullException.ThrowIfNull(fingerprint);
        ArgumentNullException.ThrowIfNull(shape);
        ArgumentNullException.ThrowIfNull(classNames);
        ArgumentNullException.ThrowIfNull(produce);
        key.Validate();
        if (!Enabled) return new CacheStoreResult(false, "", "caching is turned off");
        string path = GetPath(key);
        string temp = Path.Combine(Directory, $".{key.FileName}.{Environment.ProcessId}-{Guid.NewGuid():N}{TempSuffix}");
        var sw = Stopwatch.StartNew();
        FileStream fs;
        try
        {
            System.IO.Directory.CreateDirectory(Directory);
            CleanStaleTempFiles();
            // As in StoreAsync: CreateNew never writes through something at the temporary name; FileShare.Delete lets the
            // open file be renamed.
            fs = new FileStream(temp, FileMode.CreateNew, FileAccess.Write, FileShare.Delete, 1 << 20, FileOptions.None);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            TryDelete(temp);
            return StoreFailed(progress, path, e, count);
        }
        bool published = false, producing = false;
        try
        {
            // Every write to the file goes through this stream, which marks its failures (CacheWriteException), so a
            // failing cache write is told apart from a failing shard read inside produce (the load's own error).
            var marked = new WriteMarkingStream(fs);
            CacheStreamWriter writer = await CacheStreamWriter.CreateAsync(marked, key, fingerprint, dtype, shape, count, classNames, _options, path, progress,
                cancellationToken).ConfigureAwait(false);
            producing = true;
            await produce(writer, cancellationToken).ConfigureAwait(false);
            producing = false;
            string checksum = writer.Checksum ?? throw new InvalidOperationException("Internal error: the streamed cache file was not completed; please report this.");
            fs.Flush(flushToDisk: true);
            long bytes = Publish(fs, temp, path, checksum);
            await fs.DisposeAsync().ConfigureAwait(false);
            published = true;
            progress?.Report(new CacheProgress(CachePhase.Stored, path, count, count));
            _logger.LogInformation("Cache stored (streamed): {Path} ({Count} examples, {Bytes} bytes) in {Ms} ms", path, count, bytes, sw.ElapsedMilliseconds);
            return new CacheStoreResult(true, path, "stored", bytes);
        }
        catch (Exception e) when (e is CacheWriteException || (!producing && e is IOException or UnauthorizedAccessException))
        {
            return StoreFailed(progress, path, e is CacheWriteException ? e.InnerException! : e, count);
        }
        finally
        {
            if (!published)
            {
                // The file is abandoned: closing it must not replace the error that ended the write (a full disk fails the flush too).
                try { fs.Dispose(); } catch (Exception e) when (e is IOException or UnauthorizedAccessException) { }
                TryDelete(temp);
            }
        }
    }

    private CacheStoreResult StoreFailed(IProgress<CacheProgress>? progress, string path, Exception e, long count)
    {
        string detail = $"{path}: could not write the cache ({e.GetType().Name}: {e.Message}); continuing without a cache. Set {DirectoryVariable} to a writable folder or turn caching off.";
        _logger.LogWarning("{Detail}", detail);
        progress?.Report(new CacheProgress(CachePhase.StoreFailed, path, 0, count));
        return new CacheStoreResult(false, path, detail);
    }

    /// <summary>A failed write to a cache file being streamed (the inner exception says why).</summary>
    internal sealed class CacheWriteException(Exception inner) : IOException(inner.Message, inner);

    /// <summary>Forwards to the temporary file and wraps its IO failures in <see cref="CacheWriteException"/>.</summary>
    private sealed class WriteMarkingStream(FileStream inner) : Stream
    {
        public override bool CanRead => false;
        public override bool CanSeek => inner.CanSeek;
        public override bool CanWrite => true;
        public override long Length => inner.Length;
        public override long Position { get => inner.Position; set => inner.Position = value; }
        public override int Read(byte[] buffer, int offset, int count) => throw new NotSupportedException();
        public override long Seek(long offset, SeekOrigin origin) => inner.Seek(offset, origin);
        public override void SetLength(long value) => Mark(() => inner.SetLength(value));
        public override void Flush() => Mark(inner.Flush);
        public override Task FlushAsync(CancellationToken cancellationToken)
        {
            Flush();
            return Task.CompletedTask;
        }
        public override void Write(byte[] buffer, int offset, int count) => Mark(() => inner.Write(buffer, offset, count));
        public override void Write(ReadOnlySpan<byte> buffer)
        {
            try { inner.Write(buffer); }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException) { throw new CacheWriteException(e); }
        }
        // Writes complete synchronously (into the file's buffer, then the page cache), so the streaming writer stays on its
        // own thread (see TfdsRecordPipeline.StreamAsync).
        public override Task WriteAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken)
        {
            cancellationToken.ThrowIfCancellationRequested();
            Write(buffer.AsSpan(offset, count));
            return Task.CompletedTask;
        }
        public override ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken = default)
        {
            cancellationToken.ThrowIfCancellationRequested();
            Write(buffer.Span);
            return ValueTask.CompletedTask;
        }
        protected override void Dispose(bool disposing) { } // the owner disposes the file

        private static void Mark(Action a)
        {
            try { a(); }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException) { throw new CacheWriteException(e); }
        }

    }

    /// <summary>Deletes temporary files left by killed writers that are older than <see cref="ParquetCacheOptions.StaleTempAge"/>;
    /// returns how many were deleted. Younger ones may belong to a writer still running and are kept.</summary>
    public int CleanStaleTempFiles()
    {
        if (!System.IO.Directory.Exists(Directory)) return 0;
        int deleted = 0;
        DateTime cutoff = DateTime.UtcNow - _options.StaleTempAge;
        try
        {
            foreach (string f in System.IO.Directory.EnumerateFiles(Directory, ".*.parquet.*" + TempSuffix))
            {
                try
                {
                    if (File.GetLastWriteTimeUtc(f) < cutoff) { File.Delete(f); deleted++; }
                }
                catch (IOException) { } // another process removed or holds it: nothing to do
                catch (UnauthorizedAccessException) { }
            }
        }
        catch (IOException) { }
        catch (UnauthorizedAccessException) { }
        if (deleted > 0) _logger.LogInformation("Cache: removed {Count} stale temporary files from {Dir}", deleted, Directory);
        return deleted;
    }

    private CacheLoadResult Miss(IProgress<CacheProgress>? progress, string path, CacheMissReason reason, string detail, LogLevel level)
    {
        _logger.Log(level, "Cache miss ({Reason}): {Detail}", reason, detail);
        return Report(progress, new CacheLoadResult(null, reason, path, detail));
    }

    private static CacheLoadResult Report(IProgress<CacheProgress>? progress, CacheLoadResult r)
    {
        progress?.Report(new CacheProgress(CachePhase.Miss, r.Path, 0, 0, r.Reason));
        return r;
    }

    private static bool CanOpen(string path)
    {
        // Through SafeFile: this probe runs after a failure, when the path may have become a FIFO (an open would block).
        try { using Microsoft.Win32.SafeHandles.SafeFileHandle _ = SafeFile.OpenHandle(path, SafeFile.Unbounded, "cache file"); return true; }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or DataFormatException) { return false; }
    }

    private static void TryDelete(string path)
    {
        try { File.Delete(path); } catch (IOException) { } catch (UnauthorizedAccessException) { }
    }

    private static string Short(string hex) => hex.Length > 12 ? hex[..12] : hex;

    /// <summary>Lets several readers share one caller-owned stream in sequence without closing it.</summary>
    private sealed class NonClosingStream(Stream inner) : Stream
    {
        public override bool CanRead => inner.CanRead;
        public override bool CanSeek => inner.CanSeek;
        public override bool CanWrite => false;
        public override long Length => inner.Length;
        public override long Position { get => inner.Position; set => inner.Position = value; }
        public override void Flush() { }
        public override int Read(byte[] buffer, int offset, int count) => inner.Read(buffer, offset, count);
        public override int Read(Span<byte> buffer) => inner.Read(buffer);
        public override ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default) => inner.ReadAsync(buffer, cancellationToken);
        public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) => inner.ReadAsync(buffer, offset, count, cancellationToken);
        public override long Seek(long offset, SeekOrigin origin) => inner.Seek(offset, origin);
        public override void SetLength(long value) => throw new NotSupportedException();
        public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();
    }
}
