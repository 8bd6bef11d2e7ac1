module Samplers.Tests.Io.TfRecordTests

open System
open System.IO
open System.IO.Compression
open Expecto
open Samplers
open Samplers.Imaging
open Samplers.Tfds
open Samplers.Tests.TestUtil

let hex (s: string) = Convert.FromHexString(s.Replace(" ", ""))

// Byte vectors of TFDS_FORMAT.md 6.2 and 7.3.
let emptyRecord = hex "00 00 00 00 00 00 00 00 29 03 98 07 d8 ea 82 a2"
let abcRecord = hex "03 00 00 00 00 00 00 00 b0 99 49 0e 61 62 63 6e 57 f1 21"
let labelExample = hex "0a 10 0a 0e 0a 05 6c 61 62 65 6c 12 05 1a 03 0a 01 03"
let labelRecord = hex "12 00 00 00 00 00 00 00 24 1f 64 25 0a 10 0a 0e 0a 05 6c 61 62 65 6c 12 05 1a 03 0a 01 03 43 19 c1 db"

let labelSpec = FeatureSpec("label", FeatureKind.ClassLabel, "", DType.Int64, [||], NumClasses = 10L)

/// Reads every record from a stream, copying the data.
let readAll (reader: TfRecordReader) =
    let out = Collections.Generic.List<int64 * int64 * byte[]>()
    let mutable r = Unchecked.defaultof<TfRecord>
    while reader.TryReadNext(&r) do out.Add((r.Offset, r.Index, r.Data.ToArray()))
    List.ofSeq out

let readBytes (bytes: byte[]) =
    use r = new TfRecordReader(new MemoryStream(bytes), "mem.tfrecord")
    readAll r

/// Reads until the error and returns (records delivered before it, the error).
let readUntilError (bytes: byte[]) =
    use r = new TfRecordReader(new MemoryStream(bytes), "shard.tfrecord")
    let got = Collections.Generic.List<byte[]>()
    let mutable rec' = Unchecked.defaultof<TfRecord>
    let err =
        try
            while r.TryReadNext(&rec') do got.Add(rec'.Data.ToArray())
            None
        with :? DataFormatException as e -> Some e
    List.ofSeq got, err

let expectError (bytes: byte[]) (phrase: string) =
    match readUntilError bytes with
    | _, Some e ->
        Expect.stringContains e.Message phrase "message phrase"
        Expect.stringContains e.Message "shard.tfrecord" "message names the file"
        e
    | got, None -> failtestf "expected an error containing '%s', read %d records" phrase got.Length

let frameAll (records: byte[] list) = records |> List.map TfRecordWriter.Frame |> Array.concat

/// A read-only pass-through over `inner`; the test streams below override only what they change.
[<AbstractClass>]
type ReadOnlyWrapper(inner: Stream) =
    inherit Stream()
    override _.CanRead = true
    override _.CanSeek = inner.CanSeek
    override _.CanWrite = false
    override _.Length = inner.Length
    override _.Position with get () = inner.Position and set v = inner.Position <- v
    override _.Flush() = ()
    override _.Read(buffer: byte[], offset: int, count: int) = inner.Read(buffer, offset, count)
    override _.Seek(o, s) = inner.Seek(o, s)
    override _.SetLength _ = raise (NotSupportedException())
    override _.Write(_, _, _) = raise (NotSupportedException())

/// A stream that returns at most one byte per Read (checks the reader's refill loop).
type OneByteStream(inner: Stream) =
    inherit ReadOnlyWrapper(inner)
    override _.Read(buffer: byte[], offset: int, count: int) = inner.Read(buffer, offset, min count 1)

/// A forward-only stream (no length known).
type ForwardOnlyStream(inner: Stream) =
    inherit ReadOnlyWrapper(inner)
    override _.CanSeek = false
    override _.Length = raise (NotSupportedException())
    override _.Position with get () = raise (NotSupportedException()) and set _ = raise (NotSupportedException())
    override _.Seek(_, _) = raise (NotSupportedException())

/// Presents `inner` as the tail of a file that starts `baseOffset` bytes earlier (64-bit offsets without a huge file).
type FarOffsetStream(inner: Stream, baseOffset: int64) =
    inherit ReadOnlyWrapper(inner)
    override _.CanSeek = true
    override _.Length = baseOffset + inner.Length
    override _.Position with get () = baseOffset + inner.Position and set v = inner.Position <- v - baseOffset
    override _.Seek(o, s) = (match s with SeekOrigin.Begin -> inner.Seek(o - baseOffset, s) | _ -> inner.Seek(o, s)) + baseOffset

/// A seekable stream that claims to be much longer than it is (a file being appended to, or a lying wrapper).
type LyingLengthStream(inner: Stream, claimed: int64) =
    inherit ReadOnlyWrapper(inner)
    override _.CanSeek = true
    override _.Length = claimed

let rnd (seed: int) (n: int) =
    // Test data only: System.Random is fine here (nothing feeds a plan).
    let r = Random(seed)
    let b = Array.zeroCreate<byte> n
    r.NextBytes b
    b

[<Tests>]
let tests =
    testList "Io.TfRecord" [
        testList "CRC-32C" [
            testCase "check value of \"123456789\" is E3069283 and of the empty string 0" <| fun () ->
                Expect.equal (Crc32C.Compute("123456789"B)) 0xE3069283u "check value"
                Expect.equal (Crc32C.Compute(ReadOnlySpan<byte>.Empty)) 0u "empty"
            testCase "mask matches the spec's formula on the empty record's header" <| fun () ->
                // masked CRC of 8 zero bytes is 0x07980329 (TFDS_FORMAT 6.3).
                Expect.equal (Crc32C.ComputeMasked(ReadOnlySpan(Array.zeroCreate<byte> 8))) 0x07980329u "masked zero length"
            testProperty "unmask inverts mask for every value" <| fun (x: uint32) ->
                Crc32C.Unmask(Crc32C.Mask x) = x && Crc32C.Mask(Crc32C.Unmask x) = x
        ]
        testList "framing vectors" [
            testCase "the 16-byte empty record is what the writer frames and the reader decodes" <| fun () ->
                Expect.sequenceEqual (TfRecordWriter.Frame(ReadOnlySpan<byte>.Empty)) emptyRecord "writer bytes"
                match readBytes emptyRecord with
                | [ (0L, 0L, data) ] -> Expect.isEmpty data "no data"
                | other -> failtestf "unexpected %A" other
            testCase "the 19-byte abc record round-trips" <| fun () ->
                Expect.sequenceEqual (TfRecordWriter.Frame(ReadOnlySpan "abc"B)) abcRecord "writer bytes"
                match readBytes abcRecord with
                | [ (0L, 0L, data) ] -> Expect.sequenceEqual data "abc"B "data"
                | other -> failtestf "unexpected %A" other
            testCase "the 34-byte record decodes to label = 3" <| fun () ->
                Expect.sequenceEqual (TfRecordWriter.Frame(ReadOnlySpan labelExample)) labelRecord "writer bytes"
                use r = new TfRecordReader(new MemoryStream(labelRecord), "label.tfrecord")
                let mutable rec' = Unchecked.defaultof<TfRecord>
                Expect.isTrue (r.TryReadNext(&rec')) "one record"
                let ex = ExampleDecoder.Parse(r, rec')
                let label = FeatureDecoder.ReadLabel(labelSpec, ex.Features, RecordLocation.Of(r, rec'))
                Expect.equal label 3L "label"
                Expect.isFalse (r.TryReadNext(&rec')) "then a clean end"
            testCase "records back to back report offsets and indices; an empty file has none" <| fun () ->
                let got = readBytes (Array.concat [ emptyRecord; abcRecord; labelRecord ])
                Expect.equal (got |> List.map (fun (o, i, _) -> o, i)) [ 0L, 0L; 16L, 1L; 35L, 2L ] "offsets"
                Expect.isEmpty (readBytes [||]) "empty file"
        ]
        testList "round trips" [
            testProperty "any records written are read back identically, through a file" <| fun (records: byte[] list) ->
                let records = records |> List.map (fun r -> if isNull r then [||] else r)
                use dir = new TempDir()
                let path = Path.Combine(dir.Path, "x.tfrecord")
                let n = TfRecordWriter.WriteFile(path, records)
                n = int64 records.Length && (TfRecordReader.ReadAllRecords path |> List.ofSeq |> List.map List.ofArray) = (records |> List.map List.ofArray)
            testCase "one byte per Read, and a forward-only stream, give the same records" <| fun () ->
                let records = [ for i in 0 .. 20 -> rnd i (i * 37) ]
                let bytes = frameAll records
                for mk in [ (fun (s: Stream) -> new OneByteStream(s) :> Stream); (fun s -> new ForwardOnlyStream(s) :> Stream) ] do
                    use r = new TfRecordReader(mk (new MemoryStream(bytes)), "s")
                    Expect.equal (readAll r |> List.map (fun (_, _, d) -> d)) records "records"
            testCase "WriteFile leaves neither the file nor a temp file when the records fail midway" <| fun () ->
                use dir = new TempDir()
                let path = Path.Combine(dir.Path, "x.tfrecord")
                let failing = seq { yield [| 1uy |]; yield [| 2uy |]; failwith "generator broke" }
                Expect.throwsT<Exception> (fun () -> TfRecordWriter.WriteFile(path, failing) |> ignore) "propagates"
                Expect.isEmpty (Directory.GetFiles dir.Path) "nothing written"
                // An existing file is replaced only once the new one is complete.
                TfRecordWriter.WriteFile(path, [ [| 9uy |] ]) |> ignore
                Expect.throwsT<Exception> (fun () -> TfRecordWriter.WriteFile(path, failing) |> ignore) "propagates"
                Expect.equal (TfRecordReader.ReadAllRecords path |> List.ofSeq) [ [| 9uy |] ] "old content intact"
                Expect.equal (Directory.GetFiles dir.Path).Length 1 "no temp file"
            testCase "records larger than the read window (3 MiB, then small) round-trip" <| fun () ->
                let records = [ rnd 1 (3 <<< 20); rnd 2 10; rnd 3 ((1 <<< 20) + 5); [||] ]
                use dir = new TempDir()
                let path = Path.Combine(dir.Path, "big.tfrecord")
                TfRecordWriter.WriteFile(path, records) |> ignore
                Expect.equal (TfRecordReader.ReadAllRecords path |> List.ofSeq) records "records"
            testCase "offsets beyond 4 GiB are reported as 64-bit values" <| fun () ->
                let far = 5L * (1L <<< 30) + 3L
                let bytes = Array.concat [ abcRecord; labelRecord; hex "00 00 00 00 00" ]
                use r = new TfRecordReader(new FarOffsetStream(new MemoryStream(bytes), far), "far.tfrecord")
                let mutable rec' = Unchecked.defaultof<TfRecord>
                Expect.isTrue (r.TryReadNext(&rec')) "first"
                Expect.equal rec'.Offset far "first offset"
                Expect.isTrue (r.TryReadNext(&rec')) "second"
                Expect.equal rec'.Offset (far + 19L) "second offset"
                let e = throwsWith<DataFormatException> (fun () -> r.TryReadNext(&rec') |> ignore) "truncated tail"
                Expect.stringContains e.Message $"truncated record at {far + 53L}" "64-bit offset in message"
                Expect.equal e.Offset (Nullable(far + 53L)) "Offset property"
            testCase "Skip reads past records, counting them, and stops at the end" <| fun () ->
                let records = [ for i in 0 .. 9 -> rnd i 5 ]
                use r = new TfRecordReader(new MemoryStream(frameAll records), "s")
                Expect.equal (r.Skip 3L) 3L "skipped"
                let mutable rec' = Unchecked.defaultof<TfRecord>
                Expect.isTrue (r.TryReadNext(&rec')) "next"
                Expect.equal rec'.Index 3L "index after skip"
                Expect.sequenceEqual (rec'.Data.ToArray()) records[3] "data after skip"
                Expect.equal (r.Skip 100L) 6L "only 6 left"
                Expect.throwsT<ArgumentOutOfRangeException> (fun () -> r.Skip -1L |> ignore) "negative count"
        ]
        testList "errors" [
            testCase "a flipped data byte is a corrupted record at its offset" <| fun () ->
                let bytes = Array.copy labelRecord
                bytes[20] <- bytes[20] ^^^ 0x01uy
                let e = expectError bytes "corrupted record at 0"
                Expect.stringContains e.Message "data CRC" "names the data CRC"
                Expect.stringContains e.Message "re-download" "says what to do"
            testCase "a flipped length byte is a corrupted record (header CRC)" <| fun () ->
                let bytes = Array.concat [ abcRecord; abcRecord ]
                bytes[19] <- bytes[19] ^^^ 0x04uy
                let got, _ = readUntilError bytes
                Expect.equal got.Length 1 "first record delivered"
                let e = expectError bytes "corrupted record at 19"
                Expect.stringContains e.Message "length CRC" "names the length CRC"
            testCase "a file ending 5 bytes into a header is truncated at that record" <| fun () ->
                let bytes = Array.concat [ abcRecord; abcRecord[.. 4] ]
                let e = expectError bytes "truncated record at 19"
                Expect.stringContains e.Message "5 bytes into the 12-byte record header" "says where it ends"
            testCase "a file cut inside the data is truncated" <| fun () ->
                let bytes = labelRecord[.. 25]
                expectError bytes "truncated record at 0" |> ignore
            testCase "a valid header declaring 2^40 bytes is truncated, without allocating them" <| fun () ->
                let header = Array.zeroCreate<byte> 12
                Buffers.Binary.BinaryPrimitives.WriteUInt64LittleEndian(Span(header), 1UL <<< 40)
                Buffers.Binary.BinaryPrimitives.WriteUInt32LittleEndian(Span(header, 8, 4), Crc32C.ComputeMasked(ReadOnlySpan(header, 0, 8)))
                let bytes = Array.concat [ abcRecord; header; rnd 7 100 ]
                let before = GC.GetAllocatedBytesForCurrentThread()
                let e = expectError bytes "truncated record at 19"
                let allocated = GC.GetAllocatedBytesForCurrentThread() - before
                Expect.stringContains e.Message "1099511627776 data bytes" "states the declared length"
                Expect.stringContains e.Message "only 100 bytes follow" "states what is there"
                Expect.isLessThan allocated (4L <<< 20) "no large allocation"
            testCase "a hostile length on a forward-only stream fails without a large allocation" <| fun () ->
                let header = Array.zeroCreate<byte> 12
                Buffers.Binary.BinaryPrimitives.WriteUInt64LittleEndian(Span(header), 1UL <<< 30)
                Buffers.Binary.BinaryPrimitives.WriteUInt32LittleEndian(Span(header, 8, 4), Crc32C.ComputeMasked(ReadOnlySpan(header, 0, 8)))
                let before = GC.GetAllocatedBytesForCurrentThread()
                use r = new TfRecordReader(new ForwardOnlyStream(new MemoryStream(Array.append header (rnd 3 1000))), "fwd.tfrecord")
                let mutable rec' = Unchecked.defaultof<TfRecord>
                let e = throwsWith<DataFormatException> (fun () -> r.TryReadNext(&rec') |> ignore) "truncated"
                Expect.stringContains e.Message "truncated record at 0" "truncated"
                Expect.isLessThan (GC.GetAllocatedBytesForCurrentThread() - before) (8L <<< 20) "bounded memory"
            testCase "lengths beyond one array, or beyond the bytes that really arrive, fail without a large allocation" <| fun () ->
                let headerFor (len: uint64) =
                    let h = Array.zeroCreate<byte> 12
                    Buffers.Binary.BinaryPrimitives.WriteUInt64LittleEndian(Span(h), len)
                    Buffers.Binary.BinaryPrimitives.WriteUInt32LittleEndian(Span(h, 8, 4), Crc32C.ComputeMasked(ReadOnlySpan(h, 0, 8)))
                    h
                let before = GC.GetAllocatedBytesForCurrentThread()
                let readLying (len: uint64) =
                    use r = new TfRecordReader(new LyingLengthStream(new MemoryStream(Array.append (headerFor len) (rnd 5 5000)), 1L <<< 40), "lying.tfrecord")
                    let mutable rec' = Unchecked.defaultof<TfRecord>
                    throwsWith<DataFormatException> (fun () -> r.TryReadNext(&rec') |> ignore) $"length {len}"
                let huge = readLying (3UL <<< 30)
                Expect.stringContains huge.Message "more than the" "beyond one array"
                let short = readLying (1UL <<< 30)
                Expect.stringContains short.Message "truncated record at 0" "data never arrives"
                Expect.isLessThan (GC.GetAllocatedBytesForCurrentThread() - before) (8L <<< 20) "bounded memory"
            testCase "a zero-filled tail is corrupted at the tail offset, after the earlier records" <| fun () ->
                let bytes = Array.concat [ abcRecord; labelRecord; Array.zeroCreate 16 ]
                let got, _ = readUntilError bytes
                Expect.equal got.Length 2 "earlier records delivered"
                let e = expectError bytes "corrupted record at 53"
                Expect.stringContains e.Message "zero-filled tail" "explains the zeros"
            testCase "skipped records are still CRC-checked" <| fun () ->
                let bytes = Array.concat [ abcRecord; abcRecord; abcRecord ]
                bytes[19 + 13] <- 0x7Auy
                use r = new TfRecordReader(new MemoryStream(bytes), "shard.tfrecord")
                let e = throwsWith<DataFormatException> (fun () -> r.Skip 2L |> ignore) "skip over a bad record"
                Expect.stringContains e.Message "corrupted record at 19" "offset of the bad skipped record"
            testCase "a gzip-compressed shard is refused" <| fun () ->
                use ms = new MemoryStream()
                do
                    use gz = new GZipStream(ms, CompressionLevel.Fastest, true)
                    let payload = Array.concat [ abcRecord; labelRecord ]
                    gz.Write(payload, 0, payload.Length)
                let e = expectError (ms.ToArray()) "compressed TFRecord not supported"
                Expect.stringContains e.Message "1F 8B" "names the magic"
            testCase "a record whose first bytes happen to be 1F 8B but verify is read normally" <| fun () ->
                // length 0x8B1F: the gzip sniff only applies when the header does not verify.
                let data = rnd 11 0x8B1F
                let got = readBytes (TfRecordWriter.Frame(ReadOnlySpan data))
                Expect.equal (got |> List.map (fun (_, _, d) -> d)) [ data ] "read"
            testCase "bytes that are not an Example name the record index and offset" <| fun () ->
                let bad = TfRecordWriter.Frame(ReadOnlySpan(hex "0f 01 02"))
                use r = new TfRecordReader(new MemoryStream(Array.append abcRecord bad), "shard.tfrecord")
                let mutable rec' = Unchecked.defaultof<TfRecord>
                r.TryReadNext(&rec') |> ignore
                r.TryReadNext(&rec') |> ignore
                let e = throwsWith<DataFormatException> (fun () -> ExampleDecoder.Parse(r, rec') |> ignore) "invalid example"
                Expect.stringContains e.Message "shard.tfrecord: record 1 at byte 19" "file, record index, offset"
                Expect.stringContains e.Message "not a valid tf.train.Example" "what is wrong"
            testCase "a missing file raises FileNotFoundException" <| fun () ->
                use dir = new TempDir()
                Expect.throwsT<FileNotFoundException> (fun () -> new TfRecordReader(Path.Combine(dir.Path, "nope")) |> ignore) "missing"
            testCase "reading after Dispose is a call-order error" <| fun () ->
                let r = new TfRecordReader(new MemoryStream(abcRecord), "s")
                r.Dispose()
                let mutable rec' = Unchecked.defaultof<TfRecord>
                Expect.throwsT<ObjectDisposedException> (fun () -> r.TryReadNext(&rec') |> ignore) "disposed"
        ]
        testList "protobuf" [
            testCase "the committed generated code (Tfds/Protos/Example.g.cs) matches Tfds/Protos/example.proto" <| fun () ->
                // The C# is generated once and committed (no protoc on every restore). A .proto edit without
                // regenerating fails here: every message, field, number, type, label and oneof of the .proto is
                // compared with the descriptor compiled into the generated code, both ways.
                let proto = File.ReadAllText(Path.Combine(repoRoot.Value, "src", "Samplers.CSharp", "Tfds", "Protos", "example.proto"))
                let fieldRe = Text.RegularExpressions.Regex(@"^(repeated\s+)?(map<\s*(\w+)\s*,\s*(\w+)\s*>|\w+)\s+(\w+)\s*=\s*(\d+)\s*;$")
                let declared =
                    let mutable scope : string list = []   // innermost first: a oneof, then its message
                    [ for raw in proto.Split('\n') do
                          let line = (match raw.IndexOf "//" with -1 -> raw | i -> raw[.. i - 1]).Trim()
                          if line.StartsWith "message " then scope <- [ line.Split(' ')[1] ]
                          elif line.StartsWith "oneof " then scope <- ("oneof:" + line.Split(' ')[1]) :: scope
                          elif line = "}" then scope <- (match scope with _ :: rest -> rest | [] -> [])
                          else
                              let m = fieldRe.Match line
                              if m.Success then
                                  let message = List.last scope
                                  let oneof = match scope with o :: _ when o.StartsWith "oneof:" -> o.Substring 6 | _ -> ""
                                  let kind = if m.Groups[3].Success then $"map<{m.Groups[3].Value},{m.Groups[4].Value}>" else m.Groups[2].Value
                                  yield message, m.Groups[5].Value, int m.Groups[6].Value, kind, m.Groups[1].Success, oneof ]
                    |> Set.ofList
                let d = Samplers.Tfds.Protos.ExampleReflection.Descriptor
                let typeName (f: Google.Protobuf.Reflection.FieldDescriptor) =
                    if f.FieldType = Google.Protobuf.Reflection.FieldType.Message then f.MessageType.Name
                    else f.FieldType.ToString().ToLowerInvariant()
                let generated =
                    [ for m in d.MessageTypes do
                          for f in m.Fields.InDeclarationOrder() do
                              let kind =
                                  if f.IsMap then $"map<{typeName (f.MessageType.FindFieldByNumber 1)},{typeName (f.MessageType.FindFieldByNumber 2)}>"
                                  else typeName f
                              let oneof = match f.RealContainingOneof with null -> "" | o -> o.Name
                              yield m.Name, f.Name, f.FieldNumber, kind, f.IsRepeated && not f.IsMap, oneof ]
                    |> Set.ofList
                Expect.isGreaterThanOrEqual declared.Count 6 "the .proto parsed (a parser that finds nothing would compare empty sets)"
                Expect.equal (Set.difference declared generated) Set.empty "declared in the .proto, absent from the generated code"
                Expect.equal (Set.difference generated declared) Set.empty "in the generated code, absent from the .proto"
                Expect.equal d.Package "tensorflow" "package"
                Expect.equal (d.MessageTypes |> Seq.map (fun m -> m.Name) |> Set.ofSeq)
                    (set [ "BytesList"; "FloatList"; "Int64List"; "Feature"; "Features"; "Example" ]) "messages"
            let parse (bytes: byte[]) : Samplers.Tfds.Protos.Example = ExampleDecoder.Parse(ReadOnlySpan bytes, RecordLocation("t", 0L, 0L))
            let example (key: string) (featureBytes: byte[]) =
                // Example{features{feature{key, value}}} built by hand so the encodings are exactly as written.
                let k = Text.Encoding.ASCII.GetBytes key
                let entry = Array.concat [ [| 0x0auy; byte k.Length |]; k; [| 0x12uy; byte featureBytes.Length |]; featureBytes ]
                let features = Array.concat [ [| 0x0auy; byte entry.Length |]; entry ]
                Array.concat [ [| 0x0auy; byte features.Length |]; features ]
            testCase "unpacked Int64List values parse" <| fun () ->
                let ex = parse (example "x" (hex "1a 04 08 03 08 05"))
                Expect.equal (List.ofSeq ex.Features.Feature["x"].Int64List.Value) [ 3L; 5L ] "values"
            testCase "mixed packed and unpacked Int64List values append in order" <| fun () ->
                let ex = parse (example "x" (hex "1a 08 08 01 0a 02 02 03 08 04"))
                Expect.equal (List.ofSeq ex.Features.Feature["x"].Int64List.Value) [ 1L; 2L; 3L; 4L ] "values"
            testCase "-1 as a 10-byte varint is -1" <| fun () ->
                let ex = parse (example "label" (hex "1a 0c 0a 0a ff ff ff ff ff ff ff ff ff 01"))
                Expect.equal (FeatureDecoder.ReadLabel(labelSpec, ex.Features, RecordLocation("t", 0L, 0L))) -1L "label"
            testCase "packed, unpacked and mixed FloatList values parse" <| fun () ->
                let packed = parse (example "f" (hex "12 0a 0a 08 00 00 00 3f 00 00 00 c0"))
                Expect.equal (List.ofSeq packed.Features.Feature["f"].FloatList.Value) [ 0.5f; -2.0f ] "packed"
                let unpacked = parse (example "f" (hex "12 0a 0d 00 00 00 3f 0d 00 00 00 c0"))
                Expect.equal (List.ofSeq unpacked.Features.Feature["f"].FloatList.Value) [ 0.5f; -2.0f ] "unpacked"
                let mixed = parse (example "f" (hex "12 0b 0d 00 00 00 3f 0a 04 00 00 00 c0"))
                Expect.equal (List.ofSeq mixed.Features.Feature["f"].FloatList.Value) [ 0.5f; -2.0f ] "mixed"
            testCase "unknown fields of every wire type in every message are skipped" <| fun () ->
                // unknown varint (field 9), fixed64 (10), length-delimited (11), fixed32 (12) appended to a message.
                let junk = hex "48 96 01 51 01 02 03 04 05 06 07 08 5a 02 aa bb 65 01 02 03 04"
                let wrap (tag: byte) (body: byte[]) = Array.concat [ [| tag; byte body.Length |]; body ]
                let int64List = Array.append (hex "0a 01 03") junk
                let feature = Array.append (wrap 0x1auy int64List) junk
                let entry = Array.concat [ hex "0a 05 6c 61 62 65 6c"; wrap 0x12uy feature; junk ]
                let features = Array.append (wrap 0x0auy entry) junk
                let ex = parse (Array.append (wrap 0x0auy features) junk)
                Expect.equal (FeatureDecoder.ReadLabel(labelSpec, ex.Features, RecordLocation("t", 0L, 0L))) 3L "label"
            testCase "an invalid wire type is a format error" <| fun () ->
                throwsWith<DataFormatException> (fun () -> parse (hex "0f") |> ignore) "wire type 7" |> ignore
            testCase "a length past the end of the message is a format error" <| fun () ->
                throwsWith<DataFormatException> (fun () -> parse (hex "0a 7f 0a") |> ignore) "bad length" |> ignore
        ]
    ]
