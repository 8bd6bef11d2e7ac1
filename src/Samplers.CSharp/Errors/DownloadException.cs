using System.Net;

namespace Samplers;

/// <summary>
/// A download that failed at the HTTP or network level: a 403/404, a server error that outlasted the retries, a
/// timeout, a server that answers with an HTML page, a body of the wrong length, or no connection at all. The
/// message names the URL and says what to do. Files that arrive but fail verification raise
/// <see cref="DataFormatException"/> instead; a dataset or version the bucket does not publish raises
/// <see cref="DatasetNotFoundException"/>.
/// </summary>
public sealed class DownloadException : SamplersDataException
{
    /// <summary>Creates the exception.</summary>
    public DownloadException(string message, string url, HttpStatusCode? statusCode = null, Exception? inner = null)
        : base(message, url, null, null, inner)
    {
        Url = url;
        StatusCode = statusCode;
    }

    /// <summary>The URL that failed.</summary>
    public string Url { get; }

    /// <summary>The HTTP status of the last response, when there was one.</summary>
    public HttpStatusCode? StatusCode { get; }
}
