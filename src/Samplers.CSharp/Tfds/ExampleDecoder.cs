using Google.Protobuf;
using Samplers.Tfds.Protos;

namespace Samplers.Tfds;

/// <summary>Where a record sits: the file, its index in the file and its byte offset. Used in error messages.</summary>
/// <param name="FilePath">The shard file.</param>
/// <param name="RecordIndex">Zero-based index of the record within the file.</param>
/// <param name="Offset">Byte offset of the record's header in the file.</param>
internal readonly record struct RecordLocation(string FilePath, long RecordIndex, long Offset)
{
    /// <summary>The location for a record returned by a <see cref="TfRecordReader"/>.</summary>
    public static RecordLocation Of(TfRecordReader reader, TfRecord record)
    {
        ArgumentNullException.ThrowIfNull(reader);
        return new RecordLocation(reader.FilePath, record.Index, record.Offset);
    }

    /// <summary>The TFDS id of the record: the file's base name, <c>__</c>, the record index (TFDS_FORMAT.md 9.3).</summary>
    public string TfdsId => Path.GetFileName(FilePath) + "__" + RecordIndex;

    /// <summary><c>path: record i at byte o</c>.</summary>
    public override string ToString() => $"{FilePath}: record {RecordIndex} at byte {Offset}";
}

/// <summary>Parses serialized <c>tf.train.Example</c> messages (TFDS_FORMAT.md 7).</summary>
/// <remarks>
/// Parsing uses the Google.Protobuf code generated from this repository's <c>Protos/example.proto</c>: packed and
/// unpacked repeated numbers (even mixed in one list) are accepted, unknown fields of every wire type are skipped,
/// int64 values are plain two's-complement varints (-1 takes 10 bytes), a repeated map key keeps the last entry.
/// </remarks>
internal static class ExampleDecoder
{
    /// <summary>Parses one record's data into an <see cref="Example"/>.</summary>
    /// <param name="data">The record data.</param>
    /// <param name="location">Where the record comes from, for the error message.</param>
    /// <exception cref="DataFormatException">The bytes are not a valid Example; the message names the file, the
    /// record index and offset.</exception>
    public static Example Parse(ReadOnlySpan<byte> data, RecordLocation location)
    {
        try
        {
            return Example.Parser.ParseFrom(data);
        }
        catch (InvalidProtocolBufferException e)
        {
            throw new DataFormatException(
                $"{location}: the {data.Length} record bytes are not a valid tf.train.Example ({e.Message}); the record's CRC " +
                "was valid, so the file was written with wrong content: regenerate the shard, or check that it is a TFDS TFRecord shard.",
                location.FilePath, location.Offset, null, e);
        }
    }

    /// <summary>Parses one record returned by <paramref name="reader"/>.</summary>
    /// <exception cref="DataFormatException">The bytes are not a valid Example.</exception>
    public static Example Parse(TfRecordReader reader, TfRecord record) => Parse(record.Data.Span, RecordLocation.Of(reader, record));
}
