namespace Samplers;

/// <summary>
/// A batch would mix examples of different shapes (a ragged table without a resizing preprocess). A batch is one
/// tensor and needs one shape.
/// </summary>
public sealed class RaggedBatchException : SamplersDataException
{
    /// <summary>Creates the exception.</summary>
    public RaggedBatchException(string message, long? offset = null) : base(message, null, offset, null) { }
}
