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
/// Read access to one bucket of an object store, implemented by a provider package (<c>Samplers.S3</c>). Only reads:
/// nothing is ever written to the bucket. Thread-safe.
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
