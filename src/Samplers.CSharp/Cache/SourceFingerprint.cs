using System.Globalization;
using System.Security.Cryptography;
using System.Text;

namespace Samplers.Cache;

/// <summary>
/// A SHA-256 fingerprint of the source a cache was built from: every shard's full path, size and last-write time, and
/// the content of <c>dataset_info.json</c> and <c>features.json</c>. Any change to these makes a cache stale.
/// </summary>
/// <remarks>
/// Shard contents are not part of the fingerprint (that would cost a full read of the source on every load); size and
/// modification time are what build tools use for the same trade-off. The JSON files are small, so their bytes are
/// hashed. A shard edited in place keeping its size and time is caught by <c>cache verify</c>, which compares the
/// XXH3 of every shard with the one recorded when the cache was built (<see cref="ContentHashes"/>).
/// </remarks>
internal sealed class SourceFingerprint : IEquatable<SourceFingerprint>
{
    private SourceFingerprint(string value, string[]? shardPaths = null)
    {
        Value = value;
        ShardPaths = shardPaths ?? [];
    }

    /// <summary>The shards this fingerprint was computed from (empty when read back from a value): their contents are
    /// hashed into the cache metadata at build time and compared by <see cref="ParquetCache.VerifyAsync"/>.</summary>
    internal string[] ShardPaths { get; }

    /// <summary>One line per shard: file name, length and the XXH3-64 of its bytes, as recorded in a cache file.</summary>
    internal string[] ContentHashes() => ShardPaths.Select(ContentHash).ToArray();

    /// <summary>"&lt;file name&gt;\t&lt;length&gt;\txxh3:&lt;hex&gt;" of one shard; XXH3 reads several GB/s, so this costs about
    /// one sequential read of the file.</summary>
    internal static string ContentHash(string path)
    {
        var h = new System.IO.Hashing.XxHash3();
        long length = 0;
        // Through SafeFile: a FIFO at a shard's path would block the hash, /dev/zero would never end (streamed: kind only).
        using (var fs = SafeFile.OpenRead(path, "shard", SafeFile.Unbounded, bufferSize: 1 << 20, FileOptions.SequentialScan))
        {
            byte[] buf = System.Buffers.ArrayPool<byte>.Shared.Rent(1 << 20);
            try
            {
                int n;
                while ((n = fs.Read(buf, 0, buf.Length)) > 0) { h.Append(buf.AsSpan(0, n)); length += n; }
            }
            finally { System.Buffers.ArrayPool<byte>.Shared.Return(buf); }
        }
        return string.Create(CultureInfo.InvariantCulture, $"{Path.GetFileName(path)}\t{length}\txxh3:{h.GetCurrentHashAsUInt64():x16}");
    }

    /// <summary>The fingerprint as lower-case hex of a SHA-256 digest.</summary>
    public string Value { get; }

    /// <summary>Wraps a fingerprint read back from somewhere (e.g. a cache file's metadata).</summary>
    /// <exception cref="ArgumentException"><paramref name="value"/> is empty.</exception>
    public static SourceFingerprint FromValue(string value)
    {
        ArgumentException.ThrowIfNullOrEmpty(value);
        return new SourceFingerprint(value);
    }

    /// <summary>Computes the fingerprint of a source.</summary>
    /// <param name="shardPaths">The TFRecord shards, in load order (order matters: it is the order of the examples).</param>
    /// <param name="datasetInfoJson">Path of <c>dataset_info.json</c>, or null when there is none.</param>
    /// <param name="featuresJson">Path of <c>features.json</c>, or null when there is none.</param>
    /// <exception cref="ArgumentNullException"><paramref name="shardPaths"/> is null.</exception>
    /// <exception cref="DatasetNotFoundException">A named file does not exist.</exception>
    /// <exception cref="DataFormatException">A JSON file is not a regular file (a FIFO, a device) or is over 64 MiB.</exception>
    public static SourceFingerprint Compute(IEnumerable<string> shardPaths, string? datasetInfoJson, string? featuresJson)
    {
        ArgumentNullException.ThrowIfNull(shardPaths);
        var shards = new List<string>();
        using var sha = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        void Line(string s) => sha.AppendData(Encoding.UTF8.GetBytes(s + "\n"));
        Line("samplers-source-fingerprint-v1");
        foreach (string shard in shardPaths)
        {
            var fi = new FileInfo(shard);
            if (!fi.Exists)
                throw new DatasetNotFoundException($"{fi.FullName}: shard not found while fingerprinting the source; re-download or re-prepare the dataset.", fi.FullName);
            // A link's own size and time say nothing about its target, so a link is fingerprinted by the file it leads
            // to (its path too: a link re-pointed elsewhere is another source). Plain files keep the v1 line unchanged.
            string line = string.Create(CultureInfo.InvariantCulture, $"shard\t{fi.FullName}\t{fi.Length}\t{fi.LastWriteTimeUtc.Ticks}");
            if (fi.LinkTarget is not null && fi.ResolveLinkTarget(returnFinalTarget: true) is FileInfo target)
                line = string.Create(CultureInfo.InvariantCulture, $"shard\t{fi.FullName}\t->\t{target.FullName}\t{target.Length}\t{target.LastWriteTimeUtc.Ticks}");
            Line(line);
            shards.Add(fi.FullName);
        }
        Line("dataset_info.json\t" + HashFile(datasetInfoJson));
        Line("features.json\t" + HashFile(featuresJson));
        return new SourceFingerprint(Convert.ToHexStringLower(sha.GetHashAndReset()), shards.ToArray());
    }

    private static string HashFile(string? path)
    {
        if (path is null) return "absent";
        if (!File.Exists(path))
            throw new DatasetNotFoundException($"{Path.GetFullPath(path)}: not found while fingerprinting the source; pass null when the dataset has no such file.", Path.GetFullPath(path));
        // A metadata file, hashed whole: the same kind checks and bound as when it is parsed (TfdsJson).
        return Convert.ToHexStringLower(SHA256.HashData(SafeFile.ReadAllBytes(path, SafeFile.MaxMetadataBytes, Path.GetFileName(path))));
    }

    /// <inheritdoc/>
    public bool Equals(SourceFingerprint? other) => other is not null && string.Equals(Value, other.Value, StringComparison.Ordinal);

    /// <inheritdoc/>
    public override bool Equals(object? obj) => Equals(obj as SourceFingerprint);

    /// <inheritdoc/>
    public override int GetHashCode() => StringComparer.Ordinal.GetHashCode(Value);

    /// <inheritdoc/>
    public override string ToString() => Value;
}
