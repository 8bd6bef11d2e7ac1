using System.Buffers.Binary;
using System.Text;
using Samplers.Storage;
using Samplers.Tfds.Protos;

namespace Samplers.Tfds;

/// <summary>One shard as a record index saw it: its key relative to the version folder, size, ETag and record count.</summary>
internal sealed record IndexedShard(string RelativeKey, long Size, string ETag, long Records);

/// <summary>
/// The record index of one split of a dataset in object storage: where every record of every shard starts, its data
/// length and its label (the <c>y_key</c> feature). Built by one streaming pass over each shard's TFRecord framing
/// (both CRCs of every record checked), stored as a small versioned binary file (docs/OBJECT_STORAGE.md, "Record
/// index format"), valid as long as the shards keep the sizes and ETags it records.
/// </summary>
internal sealed class RecordIndex
{
    /// <summary>The file's first 8 bytes.</summary>
    public static ReadOnlySpan<byte> Magic => "SMPLRIDX"u8;

    /// <summary>The format version this code writes and reads.</summary>
    public const uint FormatVersion = 1;

    /// <summary>Bytes per record entry: offset (8), data length (4), label (8).</summary>
    public const int RecordBytes = 20;

    /// <summary>The longest string field (a key, an ETag, a name), in UTF-8 bytes.</summary>
    private const int MaxString = 4096;

    public RecordIndex(string dataset, string split, string yKey, IndexedShard[] shards, long[] offsets, int[] lengths, long[] labels)
    {
        Dataset = dataset; Split = split; YKey = yKey; Shards = shards; Offsets = offsets; Lengths = lengths; Labels = labels;
        ShardStart = new long[shards.Length + 1];
        for (int i = 0; i < shards.Length; i++) ShardStart[i + 1] = ShardStart[i] + shards[i].Records;
        if (ShardStart[^1] != offsets.Length || lengths.Length != offsets.Length || labels.Length != offsets.Length)
            throw new InvalidOperationException("Internal error: a record index whose shard counts and record arrays disagree; please report this.");
    }

    /// <summary>The dataset's full name (<c>name[/config]:version</c>).</summary>
    public string Dataset { get; }
    /// <summary>The split.</summary>
    public string Split { get; }
    /// <summary>The label feature the labels were read from.</summary>
    public string YKey { get; }
    /// <summary>The split's shards in shard order.</summary>
    public IndexedShard[] Shards { get; }
    /// <summary>Position of shard i's first record in the record arrays (one more entry than shards).</summary>
    public long[] ShardStart { get; }
    /// <summary>Byte offset of each record's header in its shard.</summary>
    public long[] Offsets { get; }
    /// <summary>Each record's data length (the framing adds 16 bytes).</summary>
    public int[] Lengths { get; }
    /// <summary>Each record's label.</summary>
    public long[] Labels { get; }

    /// <summary>The largest index file a split of <paramref name="records"/> records in <paramref name="shards"/> shards can have.</summary>
    public static long MaxFileBytes(long records, int shards) => 1024 + 3L * MaxString + shards * (2L * MaxString + 24) + records * RecordBytes + 4;

    /// <summary>Whether the shards recorded are exactly <paramref name="listed"/> (same keys, sizes and ETags, in order).</summary>
    public bool Matches(IReadOnlyList<IndexedShard> listed)
    {
        if (listed.Count != Shards.Length) return false;
        for (int i = 0; i < Shards.Length; i++)
            if (Shards[i].RelativeKey != listed[i].RelativeKey || Shards[i].Size != listed[i].Size || Shards[i].ETag != listed[i].ETag) return false;
        return true;
    }

    /// <summary>The index as its binary file.</summary>
    public byte[] Serialize()
    {
        using var ms = new MemoryStream();
        using (var w = new BinaryWriter(ms, Encoding.UTF8, leaveOpen: true))
        {
            w.Write(Magic);
            w.Write(FormatVersion);
            w.Write(0u); // flags, none defined
            WriteString(w, Dataset);
            WriteString(w, Split);
            WriteString(w, YKey);
            w.Write((uint)Shards.Length);
            foreach (var s in Shards)
            {
                WriteString(w, s.RelativeKey);
                w.Write(s.Size);
                WriteString(w, s.ETag);
                w.Write(s.Records);
            }
            w.Write((long)Offsets.Length);
            for (int i = 0; i < Offsets.Length; i++)
            {
                w.Write(Offsets[i]);
                w.Write((uint)Lengths[i]);
                w.Write(Labels[i]);
            }
        }
        uint crc = Crc32C.Compute(ms.GetBuffer().AsSpan(0, (int)ms.Length));
        Span<byte> tail = stackalloc byte[4];
        BinaryPrimitives.WriteUInt32LittleEndian(tail, crc);
        ms.Write(tail);
        return ms.ToArray();
    }

    private static void WriteString(BinaryWriter w, string s)
    {
        byte[] b = Encoding.UTF8.GetBytes(s);
        if (b.Length > MaxString) throw new InvalidOperationException($"'{s[..Math.Min(s.Length, 64)]}...' is longer than the {MaxString} bytes a record index field may hold.");
        w.Write((uint)b.Length);
        w.Write(b);
    }

    /// <summary>Reads an index file's bytes and checks them against what the load expects: format, CRC, dataset, split,
    /// label key, and each shard's key and record count (<paramref name="shardLengths"/>) and the records' framing within
    /// the shard sizes. Whether the shards are still the ones recorded (sizes, ETags) is the caller's check (<see cref="Matches"/>).</summary>
    /// <exception cref="DataFormatException">Not an index of this format, damaged, or of another dataset, split or label;
    /// the message names <paramref name="where"/>, the field and what was expected.</exception>
    public static RecordIndex Parse(byte[] bytes, string where, string dataset, string split, string yKey, IReadOnlyList<string> relativeKeys, IReadOnlyList<long> shardLengths)
    {
        DataFormatException Bad(string what, long at) => new($"{where}: {what} (byte {at}). The record index is damaged or not one; it is rebuilt from the shards when local, or republish it (samplers index --publish).", where, at, "record index");
        if (bytes.Length < Magic.Length + 12 + 4 || !bytes.AsSpan(0, Magic.Length).SequenceEqual(Magic))
            throw Bad($"does not start with the record index magic 'SMPLRIDX' ({bytes.Length} bytes)", 0);
        uint stored = BinaryPrimitives.ReadUInt32LittleEndian(bytes.AsSpan(bytes.Length - 4));
        uint version = BinaryPrimitives.ReadUInt32LittleEndian(bytes.AsSpan(8));
        if (version != FormatVersion)
            throw Bad($"format version {version}, this library reads version {FormatVersion}", 8);
        uint actual = Crc32C.Compute(bytes.AsSpan(0, bytes.Length - 4));
        if (stored != actual) throw Bad($"CRC-32C 0x{stored:X8} stored, 0x{actual:X8} computed over the {bytes.Length - 4} bytes before it", bytes.Length - 4);
        var body = new ReadOnlyMemory<byte>(bytes, 0, bytes.Length - 4);
        int at = 16;
        string ReadString(string field)
        {
            if (at + 4 > body.Length) throw Bad($"ends inside the length of {field}", at);
            uint n = BinaryPrimitives.ReadUInt32LittleEndian(body.Span[at..]);
            if (n > MaxString || at + 4 + n > body.Length) throw Bad($"{field} declares {n} bytes (at most {MaxString}, {body.Length - at - 4} left)", at);
            string s = Encoding.UTF8.GetString(body.Span.Slice(at + 4, (int)n));
            at += 4 + (int)n;
            return s;
        }
        long ReadInt64(string field)
        {
            if (at + 8 > body.Length) throw Bad($"ends inside {field}", at);
            long v = BinaryPrimitives.ReadInt64LittleEndian(body.Span[at..]);
            at += 8;
            return v;
        }
        string ds = ReadString("the dataset name");
        if (ds != dataset) throw Bad($"indexes dataset '{ds}', the load opens '{dataset}'", 16);
        string sp = ReadString("the split");
        if (sp != split) throw Bad($"indexes split '{sp}', expected '{split}'", at);
        string yk = ReadString("the label key");
        if (yk != yKey) throw Bad($"holds the labels of feature '{yk}', the load's y_key is '{yKey}'", at);
        if (at + 4 > body.Length) throw Bad("ends inside the shard count", at);
        uint shardCount = BinaryPrimitives.ReadUInt32LittleEndian(body.Span[at..]);
        at += 4;
        if (shardCount != shardLengths.Count) throw Bad($"has {shardCount} shards, dataset_info.json lists {shardLengths.Count} for split '{split}'", at - 4);
        var shards = new IndexedShard[shardCount];
        long sum = 0;
        for (int i = 0; i < shards.Length; i++)
        {
            string key = ReadString($"shard {i}'s key");
            long size = ReadInt64($"shard {i}'s size");
            string etag = ReadString($"shard {i}'s ETag");
            long records = ReadInt64($"shard {i}'s record count");
            if (key != relativeKeys[i]) throw Bad($"shard {i} is '{key}', expected '{relativeKeys[i]}'", at);
            if (records != shardLengths[i]) throw Bad($"shard {i} ({key}) holds {records} records, shardLengths[{i}] in dataset_info.json is {shardLengths[i]}", at);
            if (size < 0 || records < 0 || records > ShardChecks.MaxRecords(size)) throw Bad($"shard {i} ({key}) claims {records} records in {size} bytes", at);
            shards[i] = new IndexedShard(key, size, etag, records);
            sum += records;
        }
        long total = ReadInt64("the record count");
        if (total != sum) throw Bad($"declares {total} records, its shards hold {sum}", at - 8);
        if ((long)(body.Length - at) != total * RecordBytes) throw Bad($"has {body.Length - at} bytes of records, {total} records need {total * RecordBytes}", at);
        var offsets = new long[total];
        var lengths = new int[total];
        var labels = new long[total];
        long r = 0;
        for (int i = 0; i < shards.Length; i++)
        {
            long next = 0;
            for (long k = 0; k < shards[i].Records; k++, r++)
            {
                var e = body.Span.Slice(at, RecordBytes);
                long off = BinaryPrimitives.ReadInt64LittleEndian(e);
                uint len = BinaryPrimitives.ReadUInt32LittleEndian(e[8..]);
                // Records follow one another exactly: each starts where the previous one's framing ends, and the last ends the shard.
                if (off != next || len > TfRecordReader.MaxRecordBytes || off + 16 + (long)len > shards[i].Size)
                    throw Bad($"record {k} of shard {i} at offset {off} with {len} data bytes does not follow the previous record (expected offset {next}) within the shard's {shards[i].Size} bytes", at);
                offsets[r] = off;
                lengths[r] = (int)len;
                labels[r] = BinaryPrimitives.ReadInt64LittleEndian(e[12..]);
                next = off + 16 + len;
                at += RecordBytes;
            }
            if (next != shards[i].Size) throw Bad($"the records of shard {i} end at byte {next}, the shard has {shards[i].Size}", at);
        }
        return new RecordIndex(ds, sp, yk, shards, offsets, lengths, labels);
    }

    /// <summary>Scans one shard: reads its TFRecord framing once (both CRCs of every record checked), reading only the
    /// label of each Example; the count must equal <paramref name="expected"/> and the bytes must end exactly at the end of the object.</summary>
    /// <exception cref="DataFormatException">A corrupt or truncated record, a label that cannot be read, or another record count.</exception>
    public static (long[] Offsets, int[] Lengths, long[] Labels) ScanShard(Stream body, string where, FeatureSpec ySpec, long expected, long size, string split, int shardIndex)
    {
        var offsets = new List<long>();
        var lengths = new List<int>();
        var labels = new List<long>();
        using var reader = new TfRecordReader(body, where, leaveOpen: true);
        while (reader.TryReadNext(out TfRecord rec))
        {
            if (offsets.Count >= expected)
                throw new DataFormatException(
                    $"{where}: holds more records than dataset_info.json says: shardLengths[{shardIndex}] of split '{split}' is {expected}, but record {rec.Index} starts at byte {rec.Offset}. " +
                    "The shard or its metadata is damaged; prepare the dataset again.", where, rec.Offset, split);
            var location = new RecordLocation(where, rec.Index, rec.Offset);
            offsets.Add(rec.Offset);
            lengths.Add(rec.Data.Length);
            labels.Add(ReadLabel(rec.Data.Span, ySpec, location));
        }
        if (offsets.Count != expected)
            throw new DataFormatException(
                $"{where}: expected {expected} records (shardLengths[{shardIndex}] of split '{split}' in dataset_info.json) but the object contains only {offsets.Count}. " +
                "The shard is truncated or its metadata is wrong; prepare the dataset again.", where, null, split);
        if (reader.NextOffset != size)
            throw new DataFormatException($"{where}: the records end at byte {reader.NextOffset}, but the listing gives the object {size} bytes; it changed while it was read, or the store sent a short body.", where, reader.NextOffset, split);
        return (offsets.ToArray(), lengths.ToArray(), labels.ToArray());
    }

    /// <summary>The label of one serialized Example, reading only its <paramref name="ySpec"/> feature: the Example's
    /// fields are walked by their wire types and only the map entry whose key is the label key is parsed (the last one
    /// wins, as in a full parse). Anything the walk does not expect falls back to the full parse, so the result and the
    /// errors are always the loader's.</summary>
    public static long ReadLabel(ReadOnlySpan<byte> example, FeatureSpec ySpec, RecordLocation location)
    {
        byte[] key = Encoding.UTF8.GetBytes(ySpec.Key);
        if (TryFindFeature(example, key, out int start, out int length, out bool found))
        {
            var features = new Features();
            if (found)
            {
                Feature f;
                try { f = Feature.Parser.ParseFrom(example.Slice(start, length)); }
                catch (Google.Protobuf.InvalidProtocolBufferException) { return FullParseLabel(example, ySpec, location); }
                features.Feature[ySpec.Key] = f;
            }
            return FeatureDecoder.ReadLabel(ySpec, features, location);
        }
        return FullParseLabel(example, ySpec, location);
    }

    private static long FullParseLabel(ReadOnlySpan<byte> example, FeatureSpec ySpec, RecordLocation location)
    {
        var parsed = ExampleDecoder.Parse(example, location);
        return FeatureDecoder.ReadLabel(ySpec, parsed.Features ?? new Features(), location);
    }

    // Example { Features features = 1; }  Features { map<string, Feature> feature = 1; }  entry { string key = 1; Feature value = 2; }
    private static bool TryFindFeature(ReadOnlySpan<byte> example, ReadOnlySpan<byte> key, out int start, out int length, out bool found)
    {
        start = 0; length = 0; found = false;
        int pos = 0;
        while (pos < example.Length)
        {
            if (!TryField(example, ref pos, out int field, out int wire, out int fs, out int fl)) return false;
            if (field != 1 || wire != 2) continue;
            // One Features message: walk its map entries.
            var features = example.Slice(fs, fl);
            int p = 0;
            while (p < features.Length)
            {
                if (!TryField(features, ref p, out int ef, out int ew, out int es, out int el)) return false;
                if (ef != 1 || ew != 2) continue;
                var entry = features.Slice(es, el);
                int q = 0;
                bool keyMatches = false, hasValue = false;
                int vs = 0, vl = 0;
                while (q < entry.Length)
                {
                    if (!TryField(entry, ref q, out int f, out int w, out int s, out int l)) return false;
                    if (f == 1 && w == 2) keyMatches = entry.Slice(s, l).SequenceEqual(key);
                    else if (f == 2 && w == 2) { hasValue = true; vs = s; vl = l; }
                    else if (f is 1 or 2) return false; // a wire type the map does not use: let the full parse judge
                }
                if (keyMatches)
                {
                    // A map entry without a value is an empty Feature: let the full parse handle that edge.
                    if (!hasValue) return false;
                    found = true;
                    start = fs + es + vs;
                    length = vl;
                }
            }
        }
        return true;
    }

    // One field: its number and wire type; for length-delimited fields the payload's start and length. False on anything malformed or a group.
    private static bool TryField(ReadOnlySpan<byte> buf, ref int pos, out int field, out int wire, out int start, out int length)
    {
        field = 0; wire = 0; start = 0; length = 0;
        if (!TryVarint(buf, ref pos, out ulong tag)) return false;
        field = (int)(tag >> 3);
        wire = (int)(tag & 7);
        if (field == 0 || tag >> 3 > int.MaxValue) return false;
        switch (wire)
        {
            case 0:
                return TryVarint(buf, ref pos, out _);
            case 1:
                if (pos + 8 > buf.Length) return false;
                pos += 8;
                return true;
            case 2:
                if (!TryVarint(buf, ref pos, out ulong n) || n > (ulong)(buf.Length - pos)) return false;
                start = pos; length = (int)n;
                pos += (int)n;
                return true;
            case 5:
                if (pos + 4 > buf.Length) return false;
                pos += 4;
                return true;
            default:
                return false;
        }
    }

    private static bool TryVarint(ReadOnlySpan<byte> buf, ref int pos, out ulong value)
    {
        value = 0;
        for (int shift = 0; shift < 64; shift += 7)
        {
            if (pos >= buf.Length) return false;
            byte b = buf[pos++];
            value |= (ulong)(b & 0x7F) << shift;
            if ((b & 0x80) == 0) return true;
        }
        return false;
    }
}
