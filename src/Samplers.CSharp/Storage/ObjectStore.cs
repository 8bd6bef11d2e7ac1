using System.Diagnostics.CodeAnalysis;
using System.Reflection;

namespace Samplers.Storage;

/// <summary>
/// A data directory in object storage, written <c>scheme://bucket/prefix</c> (e.g. <c>s3://my-bucket/tensorflow_datasets</c>):
/// the bucket holds a TFDS data directory under the prefix (<c>prefix/name/[config/]version/...</c>).
/// </summary>
/// <param name="Scheme">The lower-case scheme, e.g. <c>s3</c>.</param>
/// <param name="Bucket">The bucket name.</param>
/// <param name="Prefix">The key prefix without leading or trailing slash; empty for the bucket's root.</param>
public sealed record ObjectStoreLocation(string Scheme, string Bucket, string Prefix)
{
    /// <summary>Whether <paramref name="dataDir"/> is written as an object-store location (<c>scheme://...</c> with a
    /// scheme other than <c>file</c>); says nothing about whether it is well formed (see <see cref="Parse"/>).</summary>
    /// <param name="dataDir">A data directory setting.</param>
    public static bool IsRemote([NotNullWhen(true)] string? dataDir)
    {
        if (dataDir is null) return false;
        int sep = dataDir.IndexOf("://", StringComparison.Ordinal);
        if (sep <= 1) return false; // "C://" is not a scheme we take for one: a drive letter is a single character
        for (int i = 0; i < sep; i++)
            if (!char.IsAsciiLetterOrDigit(dataDir[i]) && dataDir[i] is not '+' and not '-' and not '.') return false;
        return !dataDir.AsSpan(0, sep).Equals("file", StringComparison.OrdinalIgnoreCase);
    }

    /// <summary>Parses <c>scheme://bucket[/prefix]</c>.</summary>
    /// <param name="dataDir">The location.</param>
    /// <exception cref="ArgumentException">Not of that form: the message says what was expected.</exception>
    public static ObjectStoreLocation Parse(string dataDir)
    {
        ArgumentNullException.ThrowIfNull(dataDir);
        int sep = dataDir.IndexOf("://", StringComparison.Ordinal);
        if (!IsRemote(dataDir))
            throw new ArgumentException($"'{dataDir}' is not an object-store location; expected scheme://bucket/prefix, e.g. s3://my-bucket/tensorflow_datasets.", nameof(dataDir));
        string scheme = dataDir[..sep].ToLowerInvariant();
        string rest = dataDir[(sep + 3)..];
        if (rest.IndexOfAny(['?', '#', '@']) is int bad and >= 0)
            throw new ArgumentException(
                $"the data directory '{scheme}://...' has a '{rest[bad]}' in it; expected {scheme}://bucket/prefix with neither query, fragment nor credentials " +
                "(credentials come from the environment or a shared profile, never from the location).", nameof(dataDir));
        int slash = rest.IndexOf('/');
        string bucket = slash < 0 ? rest : rest[..slash];
        string prefix = slash < 0 ? "" : rest[(slash + 1)..].Trim('/');
        if (bucket.Length == 0)
            throw new ArgumentException($"the data directory '{dataDir}' names no bucket; expected {scheme}://bucket/prefix, e.g. {scheme}://my-bucket/tensorflow_datasets.", nameof(dataDir));
        if (prefix.Split('/').Any(p => p is "." or ".."))
            throw new ArgumentException($"the data directory '{dataDir}' has a '.' or '..' segment in its prefix; object keys are not paths: give the prefix as stored.", nameof(dataDir));
        return new ObjectStoreLocation(scheme, bucket, prefix);
    }

    /// <summary>The key of <paramref name="relative"/> under the prefix.</summary>
    /// <param name="relative">A path relative to the data directory, with '/' separators.</param>
    public string Key(string relative) => Prefix.Length == 0 ? relative.TrimStart('/') : Prefix + "/" + relative.TrimStart('/');

    /// <summary><c>scheme://bucket/prefix</c>.</summary>
    public override string ToString() => $"{Scheme}://{Bucket}" + (Prefix.Length == 0 ? "" : "/" + Prefix);
}

/// <summary>
/// How to reach an object store. Every setting is optional: by default the provider finds the endpoint, region and
/// credentials the way its SDK does (for S3: <c>AWS_ENDPOINT_URL</c>, <c>AWS_REGION</c>, the standard credential chain).
/// </summary>
public sealed record ObjectStoreOptions
{
    /// <summary>The endpoint of an S3-compatible service (e.g. <c>http://127.0.0.1:9000</c>); null uses
    /// <c>AWS_ENDPOINT_URL_S3</c>, else <c>AWS_ENDPOINT_URL</c>, else the provider's (AWS). A custom endpoint is
    /// addressed path-style (<c>endpoint/bucket/key</c>).</summary>
    public string? Endpoint { get; init; }

    /// <summary>The region; null uses <c>AWS_REGION</c> / <c>AWS_DEFAULT_REGION</c> / the profile, else <c>us-east-1</c>.</summary>
    public string? Region { get; init; }

    /// <summary>The shared-credentials profile; null uses <c>AWS_PROFILE</c>, else <c>default</c>.</summary>
    public string? Profile { get; init; }

    /// <summary>True sends unsigned requests (a public bucket) without looking for credentials. When false and the
    /// credential chain finds none, requests are sent unsigned too, and a refusal says that no credentials were found.</summary>
    public bool Anonymous { get; init; }

    /// <summary>How many times the provider retries a throttled (503 SlowDown) or failed request, with backoff and
    /// jitter; a body cut mid-transfer is also resumed this many times.</summary>
    public int Retries { get; init; } = 4;

    /// <summary>The time allowed for one request (headers and each read of its body).</summary>
    public TimeSpan Timeout { get; init; } = TimeSpan.FromSeconds(60);

    /// <summary>Where the local copies of object-store data directories go; null uses <c>remote/</c> under the cache
    /// directory (<see cref="Samplers.Cache.ParquetCache.ResolveDirectory"/>). A copy is keyed by endpoint, bucket and prefix.</summary>
    public string? CopyDir { get; init; }

    /// <summary>How a sampler reaches the dataset's records: <see cref="ObjectStoreAccess.Copy"/> (the default) copies the
    /// requested splits into a local folder first; <see cref="ObjectStoreAccess.Remote"/> reads only the records the
    /// batches need, by ranged reads, through a record index (docs/OBJECT_STORAGE.md, mode 2). Remote access is used by
    /// <c>TFDatasetMultiShotMemorySampler.LoadAsync</c> and its constructors; <c>TfdsLoader.LoadAsync</c>, which builds a
    /// whole table anyway, always copies.</summary>
    public ObjectStoreAccess Access { get; init; } = ObjectStoreAccess.Copy;

    /// <summary>Settings of <see cref="ObjectStoreAccess.Remote"/> (read-ahead, parallel requests, range coalescing, the
    /// decoded-example cache, the record index); ignored when copying.</summary>
    public RemoteAccessOptions Remote { get; init; } = new();
}

/// <summary>How an object-store data directory is read (<see cref="ObjectStoreOptions.Access"/>).</summary>
public enum ObjectStoreAccess
{
    /// <summary>Mode 1: the requested splits' files are copied into a local folder (resumable, verified), then loaded as
    /// any local data directory (and cached as Parquet).</summary>
    Copy = 0,

    /// <summary>Mode 2: a record index (shard, offset, length, label of every record) is built once or loaded, sampling
    /// starts from its labels, and each batch's records are fetched by ranged reads, verified and decoded on demand.</summary>
    Remote = 1,
}

/// <summary>Settings of remote random access (<see cref="ObjectStoreAccess.Remote"/>). The defaults suit a store on the
/// same network or in the same region; over a slow link raise <see cref="ReadAheadBatches"/>.</summary>
public sealed record RemoteAccessOptions
{
    /// <summary>Batches whose records are fetched in the background while the current one is served: serving batch b
    /// requests the records of batches b+1..b+K (the sampler's plan names them) into the example cache. 0 turns read-ahead
    /// off. Default 2.</summary>
    public int ReadAheadBatches { get; init; } = 2;

    /// <summary>The most ranged reads in flight at once (for one batch and its read-ahead together). Default 8.</summary>
    public int MaxParallelRequests { get; init; } = 8;

    /// <summary>Two wanted records of one shard whose bytes are at most this far apart are fetched by one ranged read
    /// (the gap's bytes are fetched and dropped). 0 merges only adjacent records. Default 16 KiB.</summary>
    public int CoalesceGapBytes { get; init; } = 16 << 10;

    /// <summary>The largest ranged read made by merging records (a single record larger than this is still read whole).
    /// Default 8 MiB.</summary>
    public int MaxRangeBytes { get; init; } = 8 << 20;

    /// <summary>The byte bound of the decoded-example cache (rows not used lately out first). It should hold at least
    /// <see cref="ReadAheadBatches"/> + 1 batches, or read-ahead is fetched for nothing. A quarter of it more may hold
    /// encoded records brought in by whole-block reads of a dense epoch (docs/OBJECT_STORAGE.md). Default 256 MiB.</summary>
    public long CacheBytes { get; init; } = 256L << 20;

    /// <summary>Where the record indexes are kept; null uses the local folder of the data directory under the cache
    /// directory's <c>remote/</c> tree (the folder mode 1 copies into; see <see cref="ObjectStoreOptions.CopyDir"/>).</summary>
    public string? IndexDir { get; init; }

    /// <summary>True (default) loads an index published next to the data in the bucket (<c>samplers index --publish</c>)
    /// when its shards' sizes and ETags match the listing, instead of scanning the shards.</summary>
    public bool UsePublishedIndex { get; init; } = true;
}

/// <summary>One object of a listing.</summary>
/// <param name="Key">The full key.</param>
/// <param name="Size">Its size in bytes.</param>
/// <param name="ETag">Its entity tag, when the store gives one.</param>
public sealed record ObjectEntry(string Key, long Size, string? ETag);

/// <summary>One page of a listing.</summary>
/// <param name="Objects">Objects whose keys start with the prefix (and hold no delimiter after it, when one was given).</param>
/// <param name="CommonPrefixes">With a delimiter: the distinct key prefixes up to and including the next delimiter.</param>
/// <param name="IsTruncated">More pages follow.</param>
/// <param name="NextToken">The token that asks for the next page; null when none.</param>
public sealed record ObjectListPage(IReadOnlyList<ObjectEntry> Objects, IReadOnlyList<string> CommonPrefixes, bool IsTruncated, string? NextToken);

/// <summary>An object's body, from the byte asked for to its end. Disposing it releases the connection.</summary>
public sealed class ObjectRead : IDisposable
{
    /// <summary>Creates the response.</summary>
    /// <param name="body">The bytes from <paramref name="from"/> on; owned by this object.</param>
    /// <param name="from">The first byte of the body within the object.</param>
    /// <param name="length">The body's length as announced.</param>
    /// <param name="totalLength">The object's whole length, when known.</param>
    /// <param name="eTag">The object's entity tag, when the store gives one.</param>
    public ObjectRead(Stream body, long from, long length, long? totalLength, string? eTag)
    {
        ArgumentNullException.ThrowIfNull(body);
        Body = body; From = from; Length = length; TotalLength = totalLength; ETag = eTag;
    }

    /// <summary>A read from past the object's end (416): the object is no longer than <paramref name="totalLength"/>.</summary>
    /// <param name="totalLength">The object's length, when the store said it.</param>
    /// <param name="eTag">The object's entity tag, when the store gives one.</param>
    public static ObjectRead PastEnd(long? totalLength, string? eTag) => new(Stream.Null, 0, 0, totalLength, eTag) { IsPastEnd = true };

    /// <summary>The bytes.</summary>
    public Stream Body { get; }
    /// <summary>The first byte of <see cref="Body"/> within the object.</summary>
    public long From { get; }
    /// <summary>The body's announced length.</summary>
    public long Length { get; }
    /// <summary>The object's whole length, when known.</summary>
    public long? TotalLength { get; }
    /// <summary>The object's entity tag (changes when the object is replaced), when known.</summary>
    public string? ETag { get; }
    /// <summary>The read started at or past the object's end (HTTP 416); <see cref="Body"/> is empty.</summary>
    public bool IsPastEnd { get; private init; }

    /// <inheritdoc/>
    public void Dispose() => Body.Dispose();
}

/// <summary>
/// Access to one bucket of an object store, implemented by a provider package (<c>Samplers.S3</c>). Reads only, except
/// <see cref="PutAsync"/>, which is called only when the user asks to publish a record index. Thread-safe.
/// </summary>
/// <remarks>Errors: a final failure (no such bucket, access refused, a throttling or server error that outlasted the
/// provider's retries) is a <see cref="DownloadException"/> whose message names the location and the setting to fix
/// and never contains a secret; a body cut mid-transfer surfaces as an <see cref="IOException"/> from its stream (the
/// caller resumes).</remarks>
public interface IObjectStore : IDisposable
{
    /// <summary>One page of the keys starting with <paramref name="prefix"/>, in ascending key order.</summary>
    /// <param name="prefix">The key prefix.</param>
    /// <param name="delimiter">Groups keys into common prefixes at this string after the prefix; null for none.</param>
    /// <param name="continuationToken">The previous page's <see cref="ObjectListPage.NextToken"/>; null for the first page.</param>
    /// <param name="cancellationToken">Cancels the request.</param>
    Task<ObjectListPage> ListAsync(string prefix, string? delimiter, string? continuationToken, CancellationToken cancellationToken);

    /// <summary>The object's bytes from <paramref name="from"/> to its end; null when there is no such key.</summary>
    /// <param name="key">The full key.</param>
    /// <param name="from">The first byte wanted (0 for the whole object).</param>
    /// <param name="cancellationToken">Cancels the request.</param>
    Task<ObjectRead?> ReadAsync(string key, long from, CancellationToken cancellationToken);

    /// <summary>Bytes [<paramref name="from"/>, <paramref name="from"/> + <paramref name="length"/>) of the object, only
    /// while it is still the version <paramref name="expectedETag"/> names; null when there is no such key.</summary>
    /// <param name="key">The full key.</param>
    /// <param name="from">The first byte wanted.</param>
    /// <param name="length">How many bytes (at least 1).</param>
    /// <param name="expectedETag">The ETag the object must still have (from a listing); null to take any version.</param>
    /// <param name="cancellationToken">Cancels the request.</param>
    /// <exception cref="ObjectChangedException">The object's ETag is no longer <paramref name="expectedETag"/>: it was
    /// replaced; nothing of the new version is returned.</exception>
    /// <remarks>The default implementation reads from <paramref name="from"/> with <see cref="ReadAsync"/>, checks the
    /// returned ETag, and ends the body after <paramref name="length"/> bytes; providers send a real range (and a
    /// precondition on the ETag) instead.</remarks>
    async Task<ObjectRead?> ReadRangeAsync(string key, long from, long length, string? expectedETag, CancellationToken cancellationToken)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(from);
        ArgumentOutOfRangeException.ThrowIfLessThan(length, 1);
        ObjectRead? read = await ReadAsync(key, from, cancellationToken).ConfigureAwait(false);
        if (read is null) return null;
        if (expectedETag is not null && read.ETag is not null && read.ETag != expectedETag)
        {
            read.Dispose();
            throw new ObjectChangedException(key, expectedETag, read.ETag);
        }
        long available = read.IsPastEnd ? 0 : read.Length;
        return new ObjectRead(new BoundedStream(read, Math.Min(length, available)), from, Math.Min(length, available), read.TotalLength, read.ETag);
    }

    /// <summary>Stores <paramref name="body"/> under <paramref name="key"/> (replacing any object there). Only called when
    /// the user asked for a write (<c>samplers index --publish</c>); the default implementation refuses.</summary>
    /// <param name="key">The full key.</param>
    /// <param name="body">The object's bytes.</param>
    /// <param name="cancellationToken">Cancels the request.</param>
    /// <returns>The new object's ETag, when the store gives one.</returns>
    /// <exception cref="NotSupportedException">The provider cannot write.</exception>
    Task<string?> PutAsync(string key, ReadOnlyMemory<byte> body, CancellationToken cancellationToken) =>
        throw new NotSupportedException($"This object store ({GetType().Name}) cannot write objects; publishing needs a provider that implements IObjectStore.PutAsync.");

    /// <summary>The first <c>limit</c> bytes of a response, for the default <see cref="ReadRangeAsync"/>.</summary>
    private sealed class BoundedStream(ObjectRead inner, long limit) : ReadOnlyStream
    {
        private long _left = limit;
        public override int Read(byte[] buffer, int offset, int count)
        {
            if (_left <= 0) return 0;
            int n = inner.Body.Read(buffer, offset, (int)Math.Min(count, _left));
            _left -= n;
            return n;
        }
        public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
        {
            if (_left <= 0) return 0;
            int n = await inner.Body.ReadAsync(buffer[..(int)Math.Min(buffer.Length, _left)], cancellationToken).ConfigureAwait(false);
            _left -= n;
            return n;
        }
        protected override void Dispose(bool disposing)
        {
            if (disposing) inner.Dispose();
            base.Dispose(disposing);
        }
    }
}

/// <summary>An object was replaced while it was being read by parts (its ETag changed since the listing or index that
/// located the bytes): nothing of the new version was used. Reopen the data directory (the record index is then checked
/// against the new listing and rebuilt), or restore the object.</summary>
public sealed class ObjectChangedException : SamplersDataException
{
    /// <summary>Creates the exception for <paramref name="key"/>.</summary>
    /// <param name="key">The object's key (or full location).</param>
    /// <param name="expectedETag">The ETag the reader expected.</param>
    /// <param name="actualETag">The ETag found, when the store said it.</param>
    public ObjectChangedException(string key, string expectedETag, string? actualETag)
        : base($"{key}: the object changed while the dataset was being read (ETag {expectedETag} expected, {(actualETag is null ? "a different version" : actualETag)} found); " +
               "no byte of the new version was used. Open the data directory again (the record index is then rebuilt for the new objects), or restore the object.",
               key, null, "ETag", null)
    {
        ObjectKey = key; ExpectedETag = expectedETag; ActualETag = actualETag;
    }

    /// <summary>The object (its key or full location).</summary>
    public string ObjectKey { get; }
    /// <summary>The ETag that was expected.</summary>
    public string ExpectedETag { get; }
    /// <summary>The ETag found, when known.</summary>
    public string? ActualETag { get; }
}

/// <summary>Opens <see cref="IObjectStore"/>s for one URL scheme. A provider package marks its implementation with
/// <see cref="ObjectStoreProviderAttribute"/>, so that <see cref="ObjectStores"/> finds it by loading the assembly.</summary>
public interface IObjectStoreProvider
{
    /// <summary>The scheme served, lower case (e.g. <c>s3</c>).</summary>
    string Scheme { get; }

    /// <summary>A client for <paramref name="location"/>'s bucket.</summary>
    /// <param name="location">The bucket and prefix.</param>
    /// <param name="options">Endpoint, region, credentials, retries.</param>
    /// <exception cref="ArgumentException">A bad setting (e.g. a malformed endpoint): the message names it.</exception>
    IObjectStore Open(ObjectStoreLocation location, ObjectStoreOptions options);

    /// <summary>A short, secret-free name of where <paramref name="options"/> lead (e.g. the endpoint's host and port),
    /// used to keep the local copies of different services apart.</summary>
    /// <param name="options">The settings.</param>
    string EndpointName(ObjectStoreOptions options);
}

/// <summary>Marks an assembly that provides an <see cref="IObjectStoreProvider"/> (see <see cref="ObjectStores"/>).</summary>
/// <param name="providerType">A public type implementing <see cref="IObjectStoreProvider"/> with a public parameterless constructor.</param>
[AttributeUsage(AttributeTargets.Assembly, AllowMultiple = true)]
public sealed class ObjectStoreProviderAttribute([DynamicallyAccessedMembers(DynamicallyAccessedMemberTypes.PublicParameterlessConstructor)] Type providerType) : Attribute
{
    /// <summary>The provider type.</summary>
    [DynamicallyAccessedMembers(DynamicallyAccessedMemberTypes.PublicParameterlessConstructor)]
    public Type ProviderType { get; } = providerType;
}

/// <summary>
/// The object-store providers. The main package has none and depends on no cloud SDK: the first object-store data
/// directory makes the registry load the provider assembly for its scheme by name (<c>Samplers.S3</c> for <c>s3://</c>,
/// present when the application references that package) and register what it declares with
/// <see cref="ObjectStoreProviderAttribute"/>. Trimmed or AOT applications register explicitly. Thread-safe.
/// </summary>
public static class ObjectStores
{
    private static readonly Lock Gate = new();
    private static IObjectStoreProvider[] _providers = [];
    private static readonly HashSet<string> Discovered = new(StringComparer.Ordinal);

    /// <summary>The package (and assembly) that serves <paramref name="scheme"/>.</summary>
    internal static string PackageFor(string scheme) => scheme == "s3" ? "Samplers.S3" : "Samplers." + scheme.ToUpperInvariant();

    /// <summary>Makes <paramref name="provider"/> available in the process; a later one for the same scheme is asked first.</summary>
    /// <param name="provider">The provider.</param>
    public static void Register(IObjectStoreProvider provider)
    {
        ArgumentNullException.ThrowIfNull(provider);
        lock (Gate)
        {
            if (Array.IndexOf(_providers, provider) >= 0) return;
            _providers = [provider, .. _providers];
        }
    }

    /// <summary>The provider for <paramref name="scheme"/>, loading its package's assembly once when none is registered.</summary>
    /// <exception cref="ArgumentException">None: the message names the package to add (for <paramref name="what"/>).</exception>
    internal static IObjectStoreProvider Find(string scheme, string what)
    {
        if (Match(Volatile.Read(ref _providers), scheme) is { } p) return p;
        Discover(scheme);
        return Match(Volatile.Read(ref _providers), scheme) ?? throw new ArgumentException(
            $"{what} is in object storage ({scheme}://), but no provider for {scheme}:// is present: the Samplers package reads local folders only. " +
            $"Add the package {PackageFor(scheme)} (dotnet add package {PackageFor(scheme)}) or register an IObjectStoreProvider with ObjectStores.Register.", "options.DataDir");
    }

    private static IObjectStoreProvider? Match(IObjectStoreProvider[] providers, string scheme)
    {
        foreach (var p in providers)
            if (string.Equals(p.Scheme, scheme, StringComparison.OrdinalIgnoreCase)) return p;
        return null;
    }

    [UnconditionalSuppressMessage("Trimming", "IL2026", Justification = "Loading by name is best-effort; trimmed apps register explicitly.")]
    private static void Discover(string scheme)
    {
        lock (Gate)
        {
            if (!Discovered.Add(scheme)) return;
            Assembly assembly;
            try
            {
                assembly = Assembly.Load(new AssemblyName(PackageFor(scheme)));
            }
            catch (Exception e) when (e is FileNotFoundException or FileLoadException or BadImageFormatException or NotSupportedException or PlatformNotSupportedException)
            {
                return;
            }
            foreach (var mark in assembly.GetCustomAttributes<ObjectStoreProviderAttribute>())
                if (Activator.CreateInstance(mark.ProviderType) is IObjectStoreProvider provider)
                    _providers = [.. _providers, provider];
        }
    }

    /// <summary>Tests: forgets every provider; with <paramref name="discover"/> false no assembly is loaded by name either.</summary>
    internal static void Reset(bool discover)
    {
        lock (Gate)
        {
            _providers = [];
            Discovered.Clear();
            if (!discover) Discovered.Add("s3");
        }
    }
}
