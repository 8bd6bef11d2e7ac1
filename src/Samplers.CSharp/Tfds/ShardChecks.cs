
namespace Samplers.Tfds;

/// <summary>
/// Checks made on a shard before any of it is read or any memory is sized from its metadata: the path must name a
/// regular file (a FIFO would block the reader, a device would feed it endless bytes), and <c>shardLengths</c> may
/// not claim more records than the file can physically hold.
/// </summary>
internal static class ShardChecks
{
    /// <summary>The smallest TFRecord record: 8 length bytes, 4 length-CRC bytes, no data, 4 data-CRC bytes.</summary>
    public const int MinRecordBytes = 16;

    /// <summary>The most records a file of <paramref name="bytes"/> bytes can hold.</summary>
    public static long MaxRecords(long bytes) => bytes / MinRecordBytes;

    /// <summary>Refuses a shard path that is not a regular file.</summary>
    /// <exception cref="DataFormatException">The path is a FIFO, device, socket or directory.</exception>
    public static void RequireRegular(string path, string what)
    {
        FileKindValue kind = FileKind.Of(path);
        if (!FileKind.IsReadable(kind))
            throw new DataFormatException(
                $"{path}: {what} is {FileKind.Describe(kind)}, not a regular file; reading it could block or never end. " +
                "Replace it with the real file (re-download the dataset).", path, 0);
    }

    /// <summary>Checks every shard of the selections with <see cref="RequirePlausibleLength"/>.</summary>
    public static void RequirePlausibleLengths(IEnumerable<SplitSelection> selections, string infoPath)
    {
        foreach (var sel in selections)
            foreach (var ins in sel.Instructions) RequirePlausibleLength(ins, infoPath);
    }

    /// <summary>
    /// Refuses a shard whose <c>shardLengths</c> entry claims more records than its size allows (16 bytes per record
    /// at least), before the loader sizes anything from that count.
    /// </summary>
    /// <exception cref="DataFormatException">The count cannot fit in the file.</exception>
    public static void RequirePlausibleLength(ShardInstruction ins, string infoPath)
    {
        long size = FileKind.LengthOf(ins.Path);
        long most = MaxRecords(size);
        if (ins.ShardLength > most)
            throw new DataFormatException(
                $"{ins.Path}: expected {ins.ShardLength} records (shardLengths[{ins.ShardIndex}] of split '{ins.Split}' in {infoPath}) " +
                $"but the file holds only {most} at most ({size} bytes, at least {MinRecordBytes} bytes per record). " +
                "The shard is truncated or its metadata is wrong; download the dataset again.",
                ins.Path, null, $"splits[{ins.Split}].shardLengths[{ins.ShardIndex}]");
    }
}
