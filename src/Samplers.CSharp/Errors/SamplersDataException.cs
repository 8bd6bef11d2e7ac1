namespace Samplers;

/// <summary>
/// Bad or missing input data: a file, record, key or value that is not what was expected. The message says where
/// (file, offset or key), what was expected, what was found, and what to do. The CLI maps it to exit code 2.
/// </summary>
public class SamplersDataException : Exception
{
    /// <summary>Creates the exception.</summary>
    public SamplersDataException(string message, string? filePath = null, long? offset = null, string? key = null, Exception? inner = null)
        : base(message, inner)
    {
        FilePath = filePath; Offset = offset; Key = key;
    }

    /// <summary>The file concerned, when there is one.</summary>
    public string? FilePath { get; }

    /// <summary>The byte offset (or record index, as the message says) concerned, when known.</summary>
    public long? Offset { get; }

    /// <summary>The feature key, JSON key or setting concerned, when known.</summary>
    public string? Key { get; }

    /// <summary>The message without its hints, when it was composed from facts and hints (<see cref="DataHints"/>); else null.</summary>
    internal string? Facts { get; init; }

    /// <summary>The hints the message ends with (one per kind), when it was composed from facts and hints; else empty.</summary>
    internal IReadOnlyList<DataHint> Hints { get; init; } = [];
}

/// <summary>A dataset, config, version, split or data directory that does not exist; the message lists what does.</summary>
public sealed class DatasetNotFoundException : SamplersDataException
{
    /// <summary>Creates the exception.</summary>
    public DatasetNotFoundException(string message, string? filePath = null, string? key = null, Exception? inner = null)
        : base(message, filePath, null, key, inner) { }
}

/// <summary>A file whose bytes or structure are not of the expected format (corrupt record, malformed JSON, undecodable image, ...).</summary>
public class DataFormatException : SamplersDataException
{
    /// <summary>Creates the exception.</summary>
    public DataFormatException(string message, string? filePath = null, long? offset = null, string? key = null, Exception? inner = null)
        : base(message, filePath, offset, key, inner) { }
}
