using System.Globalization;
using System.Net;
using Amazon;
using Amazon.Runtime;
using Amazon.Runtime.Credentials;
using Amazon.S3;
using Amazon.S3.Model;
using Samplers.Storage;

[assembly: Samplers.Storage.ObjectStoreProvider(typeof(Samplers.S3.S3ObjectStoreProvider))]

namespace Samplers.S3;

/// <summary>
/// <c>s3://bucket/prefix</c> data directories through AWSSDK.S3. Registered automatically when this assembly is present
/// (<see cref="ObjectStores"/> loads it by name) or explicitly with <c>ObjectStores.Register(new S3ObjectStoreProvider())</c>.
/// </summary>
/// <remarks>
/// <para>Endpoint: <see cref="ObjectStoreOptions.Endpoint"/>, else <c>AWS_ENDPOINT_URL_S3</c>, else <c>AWS_ENDPOINT_URL</c>,
/// else AWS. A custom endpoint (MinIO, Ceph, s3rver, ...) is addressed path-style.</para>
/// <para>Credentials: unsigned when <see cref="ObjectStoreOptions.Anonymous"/>; else the SDK's standard chain
/// (<c>AWS_ACCESS_KEY_ID</c>/<c>AWS_SECRET_ACCESS_KEY</c>[/<c>AWS_SESSION_TOKEN</c>], the shared profile named by
/// <see cref="ObjectStoreOptions.Profile"/> or <c>AWS_PROFILE</c>, SSO, web identity, container and instance roles);
/// when the chain finds nothing the requests go unsigned (a public bucket still works) and a refusal says that no
/// credentials were found. Messages never contain a secret.</para>
/// <para>Retries: the SDK's standard mode (exponential backoff with jitter on 503 SlowDown, 500, throttling and
/// connection errors), <see cref="ObjectStoreOptions.Retries"/> times.</para>
/// </remarks>
public sealed class S3ObjectStoreProvider : IObjectStoreProvider
{
    /// <inheritdoc/>
    public string Scheme => "s3";

    /// <inheritdoc/>
    public IObjectStore Open(ObjectStoreLocation location, ObjectStoreOptions options)
    {
        ArgumentNullException.ThrowIfNull(location);
        ArgumentNullException.ThrowIfNull(options);
        return new S3ObjectStore(location, options);
    }

    /// <inheritdoc/>
    public string EndpointName(ObjectStoreOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        var (endpoint, _) = S3ObjectStore.ResolveEndpoint(options);
        return endpoint is null ? "aws" : endpoint.IsDefaultPort ? endpoint.Host : $"{endpoint.Host}_{endpoint.Port.ToString(CultureInfo.InvariantCulture)}";
    }
}

/// <summary>One bucket through an <see cref="AmazonS3Client"/>; read-only.</summary>
internal sealed class S3ObjectStore : IObjectStore
{
    private readonly AmazonS3Client _client;
    private readonly ObjectStoreLocation _location;
    private readonly string _where;          // endpoint for messages: "AWS (region x)" or the custom URL
    private readonly bool _noCredentials;    // the chain found none: requests go unsigned

    public S3ObjectStore(ObjectStoreLocation location, ObjectStoreOptions options)
    {
        _location = location;
        var (endpoint, from) = ResolveEndpoint(options);
        string region = FirstSet(options.Region, Environment.GetEnvironmentVariable("AWS_REGION"), Environment.GetEnvironmentVariable("AWS_DEFAULT_REGION")) ?? "us-east-1";
        var config = new AmazonS3Config
        {
            // The endpoint is resolved above (option, then the two environment variables), once.
            IgnoreConfiguredEndpointUrls = true,
            MaxErrorRetry = Math.Max(0, options.Retries),
            RetryMode = RequestRetryMode.Standard,
            Timeout = options.Timeout,
            // Only a published record index is ever uploaded (plain PutObject, no checksum trailer); responses are verified by
            // the reader (CRCs, record counts, lengths, ETags).
            RequestChecksumCalculation = RequestChecksumCalculation.WHEN_REQUIRED,
            ResponseChecksumValidation = ResponseChecksumValidation.WHEN_REQUIRED,
        };
        if (endpoint is not null)
        {
            config.ServiceURL = endpoint.ToString();
            config.ForcePathStyle = true;
            config.AuthenticationRegion = region;
            _where = $"{endpoint.GetLeftPart(UriPartial.Authority)} ({from})";
        }
        else
        {
            config.RegionEndpoint = RegionEndpoint.GetBySystemName(region);
            _where = $"AWS S3 (region {region})";
        }
        if (options.Profile is { Length: > 0 } profile) config.Profile = new Profile(profile);
        AWSCredentials credentials;
        if (options.Anonymous)
        {
            credentials = new AnonymousAWSCredentials();
        }
        else
        {
            try
            {
                credentials = DefaultAWSCredentialsIdentityResolver.GetCredentials(config);
            }
            catch (AmazonClientException)
            {
                // No credentials anywhere in the chain: a public bucket is still readable unsigned.
                credentials = new AnonymousAWSCredentials();
                _noCredentials = true;
            }
        }
        _client = new AmazonS3Client(credentials, config);
    }

    /// <summary>The custom endpoint and where it came from; (null, "") for AWS.</summary>
    internal static (Uri? Endpoint, string From) ResolveEndpoint(ObjectStoreOptions options)
    {
        (string? value, string from) = !string.IsNullOrWhiteSpace(options.Endpoint) ? (options.Endpoint, "ObjectStoreOptions.Endpoint")
            : Environment.GetEnvironmentVariable("AWS_ENDPOINT_URL_S3") is { Length: > 0 } s3 ? (s3, "AWS_ENDPOINT_URL_S3")
            : Environment.GetEnvironmentVariable("AWS_ENDPOINT_URL") is { Length: > 0 } any ? (any, "AWS_ENDPOINT_URL")
            : (null, "");
        if (value is null) return (null, "");
        value = value.Trim();
        if (!Uri.TryCreate(value, UriKind.Absolute, out var uri) || (uri.Scheme != Uri.UriSchemeHttp && uri.Scheme != Uri.UriSchemeHttps))
            throw new ArgumentException($"{from}: the endpoint '{Redact(value)}' is not an absolute http:// or https:// URL; expected e.g. http://127.0.0.1:9000.", "options.ObjectStore.Endpoint");
        if (uri.UserInfo.Length > 0 || uri.Query.Length > 0 || uri.Fragment.Length > 0)
            throw new ArgumentException(
                $"{from}: the endpoint '{Redact(value)}' carries user info, a query or a fragment; give the service's address only (credentials come from the environment or a profile).",
                "options.ObjectStore.Endpoint");
        return (uri, from);
    }

    private static string Redact(string url)
    {
        int at = url.IndexOf('@', StringComparison.Ordinal);
        int scheme = url.IndexOf("://", StringComparison.Ordinal);
        return at > 0 && scheme >= 0 && at > scheme ? string.Concat(url.AsSpan(0, scheme + 3), "***", url.AsSpan(at)) : url;
    }

    private static string? FirstSet(params string?[] values) => values.FirstOrDefault(v => !string.IsNullOrWhiteSpace(v))?.Trim();

    public async Task<ObjectListPage> ListAsync(string prefix, string? delimiter, string? continuationToken, CancellationToken cancellationToken)
    {
        var request = new ListObjectsV2Request { BucketName = _location.Bucket, Prefix = prefix, Delimiter = delimiter, ContinuationToken = continuationToken };
        ListObjectsV2Response response;
        try
        {
            response = await _client.ListObjectsV2Async(request, cancellationToken).ConfigureAwait(false);
        }
        catch (Exception e) when (e is AmazonServiceException or AmazonClientException or HttpRequestException)
        {
            throw Fail(e, $"{Show(prefix)} (listing)");
        }
        catch (Exception e) when (e is FormatException or InvalidOperationException or System.Xml.XmlException)
        {
            throw new DownloadException($"{Show(prefix)} (listing): {_where} sent an answer the S3 client cannot read ({e.GetType().Name}: {e.Message.TrimEnd('.')}); check the endpoint (--s3-endpoint, AWS_ENDPOINT_URL).", Show(prefix), null, e);
        }
        var objects = (response.S3Objects ?? []).Select(o => new ObjectEntry(o.Key, o.Size ?? 0, o.ETag)).ToList();
        return new ObjectListPage(objects, response.CommonPrefixes ?? [], response.IsTruncated == true, response.NextContinuationToken);
    }

    public async Task<ObjectRead?> ReadAsync(string key, long from, CancellationToken cancellationToken)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(from);
        var request = new GetObjectRequest { BucketName = _location.Bucket, Key = key };
        if (from > 0) request.ByteRange = new ByteRange($"bytes={from.ToString(CultureInfo.InvariantCulture)}-");
        GetObjectResponse response;
        try
        {
            response = await _client.GetObjectAsync(request, cancellationToken).ConfigureAwait(false);
        }
        catch (AmazonS3Exception e) when (e.StatusCode == HttpStatusCode.NotFound && e.ErrorCode is "NoSuchKey" or null or "")
        {
            return null;
        }
        catch (AmazonS3Exception e) when (e.StatusCode == HttpStatusCode.RequestedRangeNotSatisfiable)
        {
            return ObjectRead.PastEnd(null, null);
        }
        catch (Exception e) when (e is AmazonServiceException or AmazonClientException or HttpRequestException)
        {
            throw Fail(e, Show(key));
        }
        catch (Exception e) when (e is FormatException or InvalidOperationException or System.Xml.XmlException)
        {
            // The SDK could not read the answer (a malformed header or document): the service is not S3-compatible here.
            throw new DownloadException($"{Show(key)}: {_where} sent an answer the S3 client cannot read ({e.GetType().Name}: {e.Message.TrimEnd('.')}); check the endpoint (--s3-endpoint, AWS_ENDPOINT_URL).", Show(key), null, e);
        }
        long length = response.ContentLength;
        long? total = null;
        long start = 0;
        if (from > 0)
        {
            // "bytes first-last/total"; a store that ignores the range sends the whole object (200, no Content-Range).
            if (!TryParseContentRange(response.ContentRange, out start, out total))
            {
                response.Dispose();
                throw new DownloadException(
                    $"{Show(key)}: asked for the bytes from {from}, but {_where} answered without a usable Content-Range ('{response.ContentRange}'); the service does not support ranged reads.",
                    Show(key), response.HttpStatusCode);
            }
            if (start != from)
            {
                response.Dispose();
                throw new DownloadException($"{Show(key)}: asked for the bytes from {from}, but {_where} sent a range starting at {start}.", Show(key), response.HttpStatusCode);
            }
        }
        else
        {
            total = length;
        }
        return new ObjectRead(new OwningStream(response), start, length, total, response.ETag);
    }

    /// <summary>A real ranged read: <c>Range: bytes=from-(from+length-1)</c> with <c>If-Match</c> on the expected ETag; the
    /// answer's ETag and Content-Range are checked too (a store that ignores the precondition cannot slip another version through).</summary>
    public async Task<ObjectRead?> ReadRangeAsync(string key, long from, long length, string? expectedETag, CancellationToken cancellationToken)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(from);
        ArgumentOutOfRangeException.ThrowIfLessThan(length, 1);
        long last = checked(from + length - 1);
        var request = new GetObjectRequest
        {
            BucketName = _location.Bucket, Key = key,
            ByteRange = new ByteRange($"bytes={from.ToString(CultureInfo.InvariantCulture)}-{last.ToString(CultureInfo.InvariantCulture)}"),
        };
        if (expectedETag is not null) request.EtagToMatch = expectedETag;
        GetObjectResponse response;
        try
        {
            response = await _client.GetObjectAsync(request, cancellationToken).ConfigureAwait(false);
        }
        catch (AmazonS3Exception e) when (e.StatusCode == HttpStatusCode.NotFound && e.ErrorCode is "NoSuchKey" or null or "")
        {
            return null;
        }
        catch (AmazonS3Exception e) when (e.StatusCode == HttpStatusCode.PreconditionFailed && expectedETag is not null)
        {
            throw new ObjectChangedException(Show(key), expectedETag, null);
        }
        catch (AmazonS3Exception e) when (e.StatusCode == HttpStatusCode.RequestedRangeNotSatisfiable)
        {
            return ObjectRead.PastEnd(null, null);
        }
        catch (Exception e) when (e is AmazonServiceException or AmazonClientException or HttpRequestException)
        {
            throw Fail(e, Show(key));
        }
        catch (Exception e) when (e is FormatException or InvalidOperationException or System.Xml.XmlException)
        {
            throw new DownloadException($"{Show(key)}: {_where} sent an answer the S3 client cannot read ({e.GetType().Name}: {e.Message.TrimEnd('.')}); check the endpoint (--s3-endpoint, AWS_ENDPOINT_URL).", Show(key), null, e);
        }
        if (expectedETag is not null && response.ETag is { } tag && tag != expectedETag)
        {
            response.Dispose();
            throw new ObjectChangedException(Show(key), expectedETag, tag);
        }
        if (!TryParseContentRange(response.ContentRange, out long start, out long? total) || start != from || response.ContentLength > length)
        {
            string got = response.ContentRange ?? "none";
            response.Dispose();
            throw new DownloadException(
                $"{Show(key)}: asked for bytes {from}-{last}, but {_where} answered with Content-Range '{got}'; the service does not support ranged reads as S3 does.",
                Show(key), response.HttpStatusCode);
        }
        return new ObjectRead(new OwningStream(response), start, response.ContentLength, total, response.ETag);
    }

    /// <summary>One PutObject, unchunked (no aws-chunked framing: some S3-compatible services store it verbatim) and with
    /// no extra checksum header unless the service requires one.</summary>
    public async Task<string?> PutAsync(string key, ReadOnlyMemory<byte> body, CancellationToken cancellationToken)
    {
        var request = new PutObjectRequest
        {
            BucketName = _location.Bucket, Key = key, InputStream = new MemoryStream(body.ToArray(), writable: false),
            UseChunkEncoding = false, ContentType = "application/octet-stream",
        };
        try
        {
            var response = await _client.PutObjectAsync(request, cancellationToken).ConfigureAwait(false);
            return response.ETag;
        }
        catch (Exception e) when (e is AmazonServiceException or AmazonClientException or HttpRequestException)
        {
            throw Fail(e, $"{Show(key)} (writing)");
        }
    }

    private static bool TryParseContentRange(string? value, out long start, out long? total)
    {
        start = 0; total = null;
        if (value is null || !value.StartsWith("bytes ", StringComparison.OrdinalIgnoreCase)) return false;
        string rest = value[6..];
        int dash = rest.IndexOf('-'), slash = rest.IndexOf('/');
        if (dash <= 0 || slash <= dash) return false;
        if (!long.TryParse(rest.AsSpan(0, dash), NumberStyles.None, CultureInfo.InvariantCulture, out start)) return false;
        if (long.TryParse(rest.AsSpan(slash + 1), NumberStyles.None, CultureInfo.InvariantCulture, out long t)) total = t;
        return true;
    }

    private string Show(string key) => $"s3://{_location.Bucket}/{key}";

    /// <summary>The one-line error for a failed request: what failed, why, and the setting to change. No secret:
    /// only the service's error code and status, never its message (which can echo request details).</summary>
    private DownloadException Fail(Exception e, string what)
    {
        var service = e as AmazonServiceException ?? e.InnerException as AmazonServiceException;
        HttpStatusCode? status = service is null || service.StatusCode == 0 ? null : service.StatusCode;
        string code = service?.ErrorCode ?? "";
        string bucket = _location.Bucket;
        string message = code switch
        {
            "NoSuchBucket" =>
                $"{what}: the bucket '{bucket}' does not exist at {_where}. Check the bucket name in the data directory (--data-dir / TfdsLoadOptions.DataDir) and the endpoint (--s3-endpoint, AWS_ENDPOINT_URL).",
            "AccessDenied" or "InvalidAccessKeyId" or "SignatureDoesNotMatch" or "InvalidToken" or "ExpiredToken" or "AllAccessDisabled" or "AuthorizationHeaderMalformed"
                or _ when status is HttpStatusCode.Forbidden or HttpStatusCode.Unauthorized =>
                _noCredentials
                    ? $"{what}: {_where} refused access ({Status(status, code)}) and no credentials were found, so the request was sent unsigned. Set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or AWS_PROFILE (a profile in ~/.aws/credentials), for an identity that may read s3://{bucket}."
                    : $"{what}: {_where} refused access ({Status(status, code)}){(code is "InvalidAccessKeyId" or "SignatureDoesNotMatch" ? ": the credentials are not valid there" : "")}. Check the credentials (AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, or AWS_PROFILE) and that they may read s3://{bucket}; for a public bucket use anonymous access (--s3-anonymous / ObjectStoreOptions.Anonymous).",
            "PermanentRedirect" or "AuthorizationQueryParametersError" or "IllegalLocationConstraintException" =>
                $"{what}: the bucket '{bucket}' is in another region than {_where} ({Status(status, code)}). Set AWS_REGION (or ObjectStoreOptions.Region) to the bucket's region.",
            _ when service is null || status is null =>
                $"{what}: could not reach {_where}: {Unwrap(e)}. Check the endpoint (--s3-endpoint, AWS_ENDPOINT_URL) and the network.",
            _ => $"{what}: {_where} answered {Status(status, code)}{((int?)status >= 500 || status == HttpStatusCode.TooManyRequests ? " after the retries (ObjectStoreOptions.Retries); try again later" : "")}.",
        };
        return new DownloadException(message, what, status, e);
    }

    private static string Status(HttpStatusCode? status, string code) =>
        (status is { } s ? ((int)s).ToString(CultureInfo.InvariantCulture) + " " : "") + (code.Length > 0 ? code : status?.ToString() ?? "no status");

    private static string Unwrap(Exception e)
    {
        while (e.InnerException is not null && e is AmazonClientException or AmazonServiceException) e = e.InnerException;
        return e.Message.TrimEnd('.');
    }

    public void Dispose() => _client.Dispose();

    /// <summary>The response body; disposing it disposes the response (and releases the connection).</summary>
    private sealed class OwningStream(GetObjectResponse response) : Stream
    {
        private readonly Stream _inner = response.ResponseStream;
        public override bool CanRead => true;
        public override bool CanSeek => false;
        public override bool CanWrite => false;
        public override long Length => throw new NotSupportedException();
        public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }
        public override void Flush() { }
        // The SDK's own checks on the body (e.g. the MD5 a single-part object's ETag gives) fail inside a read: that is a
        // damaged transfer, reported as the IOException the reader resumes or retries after.
        public override int Read(byte[] buffer, int offset, int count)
        {
            try { return _inner.Read(buffer, offset, count); }
            catch (AmazonClientException e) { throw new IOException($"the S3 client refused the body: {e.Message}", e); }
        }
        public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
        {
            try { return await _inner.ReadAsync(buffer, cancellationToken).ConfigureAwait(false); }
            catch (AmazonClientException e) { throw new IOException($"the S3 client refused the body: {e.Message}", e); }
        }
        public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
            ReadAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();
        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
        public override void SetLength(long value) => throw new NotSupportedException();
        public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();
        protected override void Dispose(bool disposing)
        {
            if (disposing) response.Dispose();
            base.Dispose(disposing);
        }
    }
}
