/// Decode budget: images whose header claims more pixels than the budget, or more than their data can
/// hold, are refused from the header, before any pixel memory is allocated.
module Samplers.Tests.Robustness.HostileImageTests

open System
open System.Buffers.Binary
open System.IO
open System.IO.Compression
open Expecto
open Samplers
open Samplers.Imaging
open Samplers.Tfds
open Samplers.Tests.TestUtil

/// A small real JPEG whose SOF0 height and width are rewritten: the header then claims h x w, the data stays tiny.
let forgedJpeg (h: int) (w: int) =
    let j = Samplers.Tests.Io.ImageTests.jpeg (Array.create (16 * 16) 90uy) 16 16 1 90
    let mutable i = 2
    let mutable found = false
    while not found do
        if j.[i] <> 0xFFuy then failwith "marker walk lost"
        let marker = j.[i + 1]
        let len = int (BinaryPrimitives.ReadUInt16BigEndian(ReadOnlySpan(j, i + 2, 2)))
        if marker = 0xC0uy then
            BinaryPrimitives.WriteUInt16BigEndian(Span(j, i + 5, 2), uint16 h)
            BinaryPrimitives.WriteUInt16BigEndian(Span(j, i + 7, 2), uint16 w)
            found <- true
        else i <- i + 2 + len
    j

/// The 645-byte progressive fixture (16x12, jpegtran -progressive; Fixtures/images/README.md).
let progressiveFixture () =
    File.ReadAllBytes(Path.Combine(repoRoot.Force(), "tests", "Samplers.Tests", "Fixtures", "images", "progressive.jpg"))

/// A 255-byte progressive JPEG claiming h x w: the fixture's header up to its first SOS (SOF2 rewritten), 16 bytes of
/// entropy-coded zeros and EOI; no room for h x w pixels.
let headerOnlyProgressive (h: int) (w: int) =
    let p = progressiveFixture ()
    let mutable i = 2
    let mutable sos = -1
    while sos < 0 do
        let marker = p.[i + 1]
        let len = int (BinaryPrimitives.ReadUInt16BigEndian(ReadOnlySpan(p, i + 2, 2)))
        if marker = 0xC2uy then
            BinaryPrimitives.WriteUInt16BigEndian(Span(p, i + 5, 2), uint16 h)
            BinaryPrimitives.WriteUInt16BigEndian(Span(p, i + 7, 2), uint16 w)
        if marker = 0xDAuy then sos <- i + 2 + len else i <- i + 2 + len
    Array.concat [ p.[.. sos - 1]; Array.zeroCreate 16; [| 0xFFuy; 0xD9uy |] ]

/// One PNG chunk with its CRC.
let chunk (kind: string) (data: byte[]) =
    let t = Text.Encoding.ASCII.GetBytes kind
    let out = Array.zeroCreate<byte> (12 + data.Length)
    BinaryPrimitives.WriteUInt32BigEndian(Span(out, 0, 4), uint32 data.Length)
    Array.blit t 0 out 4 4
    Array.blit data 0 out 8 data.Length
    BinaryPrimitives.WriteUInt32BigEndian(Span(out, 8 + data.Length, 4), IO.Hashing.Crc32.HashToUInt32(ReadOnlySpan(out, 4, 4 + data.Length)))
    out

/// A grey 8-bit PNG whose IHDR claims w x h and whose IDAT holds `rows` real zero rows of that width (deflated).
let forgedPng (w: int) (h: int) (rows: int) =
    let ihdr = Array.zeroCreate<byte> 13
    BinaryPrimitives.WriteInt32BigEndian(Span(ihdr, 0, 4), w)
    BinaryPrimitives.WriteInt32BigEndian(Span(ihdr, 4, 4), h)
    ihdr.[8] <- 8uy
    use ms = new MemoryStream()
    (use z = new ZLibStream(ms, CompressionLevel.SmallestSize, true)
     let row = Array.zeroCreate<byte> (w + 1)
     for _ in 1 .. rows do z.Write(row, 0, row.Length))
    Array.concat [ PngEncoder.Signature.ToArray(); chunk "IHDR" ihdr; chunk "IDAT" (ms.ToArray()); chunk "IEND" [||] ]

let expectRefused (f: unit -> unit) (fragment: string) what =
    let e = throwsWith<DataFormatException> f what
    Expect.stringContains e.Message fragment $"{what}: message"

[<Tests>]
let tests =
    testList "Robustness.HostileImages" [
        test "a sub-kilobyte JPEG claiming 30000x30000 is refused from its header by the default budget" {
            let j = forgedJpeg 30000 30000
            Expect.isLessThan j.Length 1000 "the forged file is tiny"
            expectRefused (fun () -> ImageDecoder.Measure(ReadOnlySpan j, "forged.jpg") |> ignore) "above the budget of 89478485 pixels" "30000x30000 JPEG"
            let dst = Array.zeroCreate<byte> 16
            expectRefused (fun () -> ImageDecoder.Decode(ReadOnlySpan j, Span dst, 1) |> ignore) "above the budget" "Decode checks too"
        }

        test "with a larger budget the same JPEG is refused because its data ends before its pixels" {
            let j = forgedJpeg 30000 30000
            expectRefused (fun () -> ImageDecoder.Measure(ReadOnlySpan j, "forged.jpg", 10_000_000_000L) |> ignore) "scan data is" "short JPEG"
        }

        test "a JPEG header of 65000x65000 is a data error (the loader's 'exceeds the largest array' case)" {
            let j = forgedJpeg 65000 65000
            expectRefused (fun () -> ImageDecoder.Measure(ReadOnlySpan j, "forged.jpg") |> ignore) "65000x65000" "65000 JPEG"
        }

        test "a progressive JPEG cut short (300, 400, 600, 640 of its 645 bytes) is refused, naming the source" {
            let p = progressiveFixture ()
            Expect.equal p.Length 645 "the fixture"
            for cut in [ 300; 400; 600; 640 ] do
                let j = p.[.. cut - 1]
                let e = throwsWith<DataFormatException> (fun () -> ImageDecoder.Measure(ReadOnlySpan j, $"cut{cut}.jpg") |> ignore) $"cut at {cut}"
                Expect.stringContains e.Message $"cut{cut}.jpg: progressive JPEG (16x12) is truncated" $"cut at {cut}: message"
                let dst = Array.zeroCreate<byte> (16 * 12 * 3)
                expectRefused (fun () -> ImageDecoder.Decode(ReadOnlySpan j, Span dst, 3, source = $"cut{cut}.jpg") |> ignore) "is truncated" $"Decode of the cut at {cut}"
            // The whole file still decodes (pixels: Io.ImageFixtures).
            let dst = Array.zeroCreate<byte> (16 * 12 * 3)
            ImageDecoder.Decode(ReadOnlySpan p, Span dst, 3, source = "whole.jpg") |> ignore
        }

        test "the SkiaSharp codec called directly refuses a progressive JPEG cut short too (full size and DCT-scaled)" {
            let codec = Samplers.SkiaSharp.SkiaImageCodec()
            let p = progressiveFixture ()
            for cut in [ 300; 400; 600; 640 ] do
                let j = p.[.. cut - 1]
                let dst = Array.zeroCreate<byte> (16 * 12 * 4)
                let e = throwsWith<DataFormatException> (fun () -> codec.Decode(ReadOnlySpan j, 12, 16, 3, Span dst, $"cut{cut}.jpg")) $"Decode of the cut at {cut}"
                Expect.stringContains e.Message $"cut{cut}.jpg: progressive JPEG (16x12) is truncated" $"cut at {cut}: message"
                let e = throwsWith<DataFormatException> (fun () -> codec.Decode(ReadOnlySpan j, 6, 8, 4, Span dst, $"cut{cut}.jpg")) $"scaled Decode of the cut at {cut}"
                Expect.stringContains e.Message "is truncated" $"cut at {cut}, scaled: message"
            let e = throwsWith<DataFormatException> (fun () -> Samplers.Imaging.ImageCodecs.CheckJpegData(ReadOnlySpan p.[.. 399], 12, 16, "c.jpg")) "the public check"
            Expect.stringContains e.Message "c.jpg: progressive JPEG (16x12) is truncated" "the public check's message"
            // The whole file still decodes through the codec.
            let dst = Array.zeroCreate<byte> (16 * 12 * 3)
            codec.Decode(ReadOnlySpan p, 12, 16, 3, Span dst, "whole.jpg")
            Samplers.Imaging.ImageCodecs.CheckJpegData(ReadOnlySpan p, 12, 16, "whole.jpg")
        }

        test "a 255-byte progressive JPEG claiming 9000x9000 is refused from its header, before any pixel buffer" {
            let j = headerOnlyProgressive 9000 9000
            Expect.equal j.Length 255 "header-only file"
            let e = throwsWith<DataFormatException> (fun () -> ImageDecoder.Measure(ReadOnlySpan j, "bomb.jpg") |> ignore) "9000x9000 progressive"
            Expect.stringContains e.Message "bomb.jpg: JPEG claims 9000x9000 pixels but its scan data is 16 bytes" "names the size and the data"
            Expect.stringContains e.Message "less than the 9941 bytes any progressive" "names the bound"
            // Decode refuses from the header: a 1-byte destination would be an ArgumentException had it got further.
            let dst = Array.zeroCreate<byte> 1
            expectRefused (fun () -> ImageDecoder.Decode(ReadOnlySpan j, Span dst, 3, source = "bomb.jpg") |> ignore) "9000x9000" "Decode"
            // The same header at the fixture's size passes the length check (16 bytes hold 192 pixels' DC codes).
            let small = headerOnlyProgressive 12 16
            Expect.equal (ImageDecoder.Measure(ReadOnlySpan small, "small.jpg").Width) 16 "within the bound"
        }

        test "a genuine JPEG and PNG still measure and decode" {
            let j = Samplers.Tests.Io.ImageTests.jpeg (Array.create (40 * 30) 90uy) 40 30 1 90
            Expect.equal (ImageDecoder.Measure(ReadOnlySpan j).Width) 40 "jpeg"
            let png = forgedPng 300 200 200
            let info = ImageDecoder.Measure(ReadOnlySpan png)
            Expect.equal (info.Width, info.Height) (300, 200) "a complete PNG passes"
            let dst = Array.zeroCreate<byte> (300 * 200)
            ImageDecoder.Decode(ReadOnlySpan png, Span dst, 1) |> ignore
        }

        test "a PNG whose IDAT is far too small for its IHDR is refused before decoding" {
            let png = forgedPng 5000 5000 1
            expectRefused (fun () -> ImageDecoder.Measure(ReadOnlySpan png, "short.png") |> ignore) "bytes of image data" "short PNG"
        }

        test "a PNG above the default budget is refused from its header" {
            let png = forgedPng 10000 10000 1
            expectRefused (fun () -> ImageDecoder.Measure(ReadOnlySpan png, "big.png") |> ignore) "10000x10000 = 100000000 pixels" "big PNG"
        }

        test "the budget is the caller's: 784 pixels pass a 784 budget and fail a 783 one" {
            let png = forgedPng 28 28 28
            ImageDecoder.Measure(ReadOnlySpan png, "ok.png", 784L) |> ignore
            expectRefused (fun () -> ImageDecoder.Measure(ReadOnlySpan png, "ok.png", 783L) |> ignore) "budget of 783" "783"
        }

        test "the loader applies TfdsLoadOptions.MaxImagePixels and names the record" {
            use data = new TempDir()
            let spec = FeatureSpec("image", FeatureKind.Image, "tensorflow_datasets.core.features.image_feature.Image", DType.UInt8, [| -1; -1; 1 |], EncodingFormat = "png")
            let records = [ for i in 0 .. 3 -> ExampleBuilder().AddImage("image", forgedPng 28 28 28).AddLabel("label", int64 (i % 2)).ToByteArray() ]
            Samplers.Tests.Io.LoaderTests.writeToy data.Path [ spec; Samplers.DatasetGen.SyntheticDigits.LabelSpec ] [ "train", [ records ] ] |> ignore
            let opts small = TfdsLoadOptions(DatasetName = "toy", DataDir = data.Path, Splits = [| "train" |], UseCache = false, MaxImagePixels = small)
            Expect.equal (TfdsLoader.LoadAsync(opts 784L).GetAwaiter().GetResult().Table.Count) 4 "within budget"
            let e = throwsWith<DataFormatException> (fun () -> TfdsLoader.LoadAsync(opts 100L).GetAwaiter().GetResult() |> ignore) "over budget"
            Expect.stringContains e.Message "toy-train.tfrecord" "names the shard"
            Expect.stringContains e.Message "budget of 100" "names the budget"
        }

        test "a ragged dataset with a forged 30000x30000 JPEG is exit 2 under a heap limit, not an OOM or invented pixels" {
            use data = new TempDir()
            let spec = FeatureSpec("image", FeatureKind.Image, "tensorflow_datasets.core.features.image_feature.Image", DType.UInt8, [| -1; -1; 1 |], EncodingFormat = "jpeg")
            let good = Samplers.Tests.Io.ImageTests.jpeg (Array.create (16 * 16) 90uy) 16 16 1 90
            let records = [ for i in 0 .. 3 -> ExampleBuilder().AddImage("image", (if i = 2 then forgedJpeg 30000 30000 else good)).AddLabel("label", int64 (i % 2)).ToByteArray() ]
            Samplers.Tests.Io.LoaderTests.writeToy data.Path [ spec; Samplers.DatasetGen.SyntheticDigits.LabelSpec ] [ "train", [ records ] ] |> ignore
            let code, out, err = Samplers.Tests.Robustness.HostileMetadataTests.cliLimited [ "plan"; "toy"; "--data-dir"; data.Path; "--splits"; "train"; "--no-cache"; "--digest"; "-c"; "2"; "-e"; "1" ]
            Expect.equal code 2 $"exit 2 (stdout {out}; stderr {err})"
            Expect.stringContains err "__2" "names the record's tfds_id"
            Expect.stringContains err "above the budget" "says why"
        }
    ]
