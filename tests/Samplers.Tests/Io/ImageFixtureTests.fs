module Samplers.Tests.Io.ImageFixtureTests

// Decodes files written by standard tools (libjpeg-turbo's cjpeg/jpegtran, ImageMagick), not by our own encoder or
// SkiaSharp, and compares pixels with those tools' own decodes (Fixtures/images/README.md says how each was made).

open System
open System.IO
open System.Text
open Expecto
open Samplers
open Samplers.Imaging
open Samplers.Tfds
open Samplers.Tests.TestUtil
open Samplers.Tests.Io.ImageTests

let private dir = lazy (Path.Combine(repoRoot.Force(), "tests", "Samplers.Tests", "Fixtures", "images"))
let private file name = File.ReadAllBytes(Path.Combine(dir.Force(), name))

/// The fixtures are 16 wide and 12 high.
let private W, H = 16, 12

/// Reads a binary PGM (P5) or PPM (P6), maxval 255 (one byte a sample) or 65535 (two, big-endian): (channels, bytes).
let private readPnm name =
    let bytes = file name
    let mutable pos = 0
    let token () =
        while Char.IsWhiteSpace(char bytes.[pos]) do pos <- pos + 1
        let start = pos
        while not (Char.IsWhiteSpace(char bytes.[pos])) do pos <- pos + 1
        Encoding.ASCII.GetString(bytes, start, pos - start)
    let magic = token ()
    let w, h, maxval = int (token ()), int (token ()), int (token ())
    pos <- pos + 1 // the single whitespace byte before the samples
    let c = if magic = "P5" then 1 elif magic = "P6" then 3 else failwithf "%s: not P5/P6 (%s)" name magic
    if (w, h) <> (W, H) || (maxval <> 255 && maxval <> 65535) then failwithf "%s: %dx%d maxval %d" name w h maxval
    let size = if maxval = 255 then 1 else 2
    c, bytes.[pos .. pos + w * h * c * size - 1]

/// Decodes as the loader does for a TFDS `Image(shape=(12, 16, c), dtype=uint8)` feature.
let private decodeAs (bytes: byte[]) (c: int) =
    let spec = FeatureSpec("image", FeatureKind.Image, "tensorflow_datasets.core.features.image_feature.Image", DType.UInt8, [| H; W; c |])
    let dst = Array.zeroCreate<byte> (H * W * c)
    let info = ImageFeatures.Decode(ReadOnlySpan bytes, spec, Span dst, "fixture")
    Expect.equal (info.Height, info.Width, info.Channels) (H, W, c) "decoded shape"
    dst

/// Keeps channels [0, k) of every pixel of `c`-channel samples.
let private firstChannels (c: int) (k: int) (px: byte[]) =
    [| for p in 0 .. px.Length / c - 1 do for i in 0 .. k - 1 -> px.[p * c + i] |]

/// Repeats each grey sample `c` times.
let private replicate (c: int) (g: byte[]) = [| for v in g do for _ in 1 .. c -> v |]

let private maxDiff (a: byte[]) (b: byte[]) =
    Expect.equal a.Length b.Length "sample count"
    Array.fold2 (fun m (x: byte) (y: byte) -> max m (abs (int x - int y))) 0 a b

/// IDCT/upsampling and colour-conversion rounding differ between decoders by a few levels (measured: see
/// docs/IMAGE_DECODERS.md "Colour layouts"); a wrong layout or colour model is off by tens to hundreds.
let private jpegTolerance = 2

let private within (tol: int) (actual: byte[]) (reference: byte[]) what =
    let d = maxDiff actual reference
    Expect.isLessThanOrEqual d tol $"{what}: max |difference| {d} levels against the reference decode"

let private everyFourth (px: byte[]) = [| for p in 0 .. px.Length / 4 - 1 -> px.[p * 4 + 3] |]

let private colourJpeg name reference =
    testCase $"{name}: channels 3 and 4 match djpeg, channels 1 matches djpeg -grayscale" <| fun () ->
        let bytes = file name
        let info = ImageDecoder.Measure(ReadOnlySpan bytes)
        Expect.equal (info.Channels, info.Format) (3, ImageFormat.Jpeg) "native RGB JPEG"
        let _, rgb = readPnm reference
        let c3 = decodeAs bytes 3
        within jpegTolerance c3 rgb "C=3"
        let c4 = decodeAs bytes 4
        Expect.sequenceEqual (firstChannels 4 3 c4) c3 "C=4 colour = C=3"
        Expect.isTrue (everyFourth c4 |> Array.forall ((=) 255uy)) "C=4 alpha is opaque"
        // TF reads libjpeg's Y plane; we take BT.601 luma of the decoded RGB (docs/IMAGE_DECODERS.md).
        let _, y = readPnm "rgb.ref-y.pgm"
        within jpegTolerance (decodeAs bytes 1) y "C=1"

let jpegs =
    testList "jpeg" [
        colourJpeg "rgb.jpg" "rgb.ref.ppm"
        colourJpeg "progressive.jpg" "progressive.ref.ppm"

        testCase "progressive decodes to the same pixels as its baseline source (lossless jpegtran transcode)" <| fun () ->
            Expect.sequenceEqual (decodeAs (file "progressive.jpg") 3) (decodeAs (file "rgb.jpg") 3) "same coefficients, same pixels"

        testCase "progressive passes the data-length check and the pixel budget, which still applies" <| fun () ->
            let bytes = file "progressive.jpg"
            let info = ImageDecoder.Measure(ReadOnlySpan bytes, "p", int64 (W * H))
            Expect.equal (info.Height, info.Width) (H, W) "at the budget exactly"
            let e = expectDataError (fun () -> ImageDecoder.Measure(ReadOnlySpan bytes, "p", int64 (W * H - 1)) |> ignore) "p: JPEG image is 16x12 = 192 pixels"
            Expect.stringContains e.Message "above the budget of 191" "names the budget"

        testCase "greyscale JPEG: native 1 channel; channels 1 matches djpeg, 3 and 4 replicate it" <| fun () ->
            let bytes = file "grey.jpg"
            Expect.equal (ImageDecoder.Measure(ReadOnlySpan bytes).Channels) 1 "native grey"
            let _, g = readPnm "grey.ref.pgm"
            let c1 = decodeAs bytes 1
            within jpegTolerance c1 g "C=1"
            Expect.sequenceEqual (decodeAs bytes 3) (replicate 3 c1) "C=3 replicates grey"
            let c4 = decodeAs bytes 4
            Expect.sequenceEqual (firstChannels 4 3 c4) (replicate 3 c1) "C=4 colour replicates grey"
            Expect.isTrue (everyFourth c4 |> Array.forall ((=) 255uy)) "C=4 alpha is opaque"

        testCase "Adobe CMYK JPEG (ImageMagick): RGB as ImageMagick converts it, close to the RGB source" <| fun () ->
            let bytes = file "cmyk.jpg"
            Expect.equal (ImageDecoder.Measure(ReadOnlySpan bytes).Channels) 3 "CMYK decodes to RGB"
            let _, rgb = readPnm "cmyk.ref.ppm"
            let c3 = decodeAs bytes 3
            within jpegTolerance c3 rgb "C=3 against ImageMagick's CMYK -> sRGB"
            // Not inverted, not channel-swapped: the source picture within JPEG loss (measured: mean 2.2, max 19 levels;
            // an inverted or swapped decode is off by about 100 on average).
            let _, source = readPnm "source.ppm"
            let diffs = Array.map2 (fun (x: byte) (y: byte) -> abs (int x - int y)) c3 source
            Expect.isLessThanOrEqual (Array.averageBy float diffs) 4.0 "mean |difference| to the source picture"
            Expect.isLessThanOrEqual (Array.max diffs) 32 "max |difference| to the source picture"
            let c4 = decodeAs bytes 4
            Expect.sequenceEqual (firstChannels 4 3 c4) c3 "C=4 colour = C=3"
            Expect.isTrue (everyFourth c4 |> Array.forall ((=) 255uy)) "C=4 alpha is opaque"
            within jpegTolerance (decodeAs bytes 1) [| for p in 0 .. W * H - 1 -> byte ((19595 * int c3.[p * 3] + 38470 * int c3.[p * 3 + 1] + 7471 * int c3.[p * 3 + 2] + 32768) >>> 16) |] "C=1 luma"
    ]

/// libpng's png_set_rgb_to_gray(1, 0.299, 0.587) as TensorFlow calls it (15-bit weights, truncated; grey stays).
let private pngLuma (r: byte) (g: byte) (b: byte) =
    if r = g && g = b then r else byte ((9797 * int r + 19234 * int g + 3737 * int b) >>> 15)

let pngs =
    testList "png" [
        testCase "RGBA PNG: exact for channels 4, alpha dropped for 3, libpng luma for 1" <| fun () ->
            let bytes = file "rgba.png"
            Expect.equal (ImageDecoder.Measure(ReadOnlySpan bytes).Channels) 4 "native RGBA"
            let reference = file "rgba.ref.rgba"
            Expect.isTrue (everyFourth reference |> Array.distinct |> Array.length > 8) "the fixture has a real alpha ramp"
            Expect.sequenceEqual (decodeAs bytes 4) reference "C=4 exact (unpremultiplied)"
            Expect.sequenceEqual (decodeAs bytes 3) (firstChannels 4 3 reference) "C=3 exact"
            Expect.sequenceEqual (decodeAs bytes 1) [| for p in 0 .. W * H - 1 -> pngLuma reference.[p * 4] reference.[p * 4 + 1] reference.[p * 4 + 2] |] "C=1"

        testCase "grey+alpha PNG: native 2 channels; 1 grey, 2 grey+alpha, 3 grey x3, 4 grey x3 + alpha, all exact" <| fun () ->
            let bytes = file "grey-alpha.png"
            Expect.equal (ImageDecoder.Measure(ReadOnlySpan bytes).Channels) 2 "native grey+alpha"
            let reference = file "grey-alpha.ref.rgba"
            let grey = [| for p in 0 .. W * H - 1 -> reference.[p * 4] |]
            let alpha = everyFourth reference
            Expect.isTrue (alpha |> Array.distinct |> Array.length > 8) "the fixture has a real alpha ramp"
            Expect.sequenceEqual (decodeAs bytes 1) grey "C=1"
            Expect.sequenceEqual (decodeAs bytes 2) [| for p in 0 .. W * H - 1 do yield grey.[p]; yield alpha.[p] |] "C=2"
            Expect.sequenceEqual (decodeAs bytes 3) (replicate 3 grey) "C=3"
            Expect.sequenceEqual (decodeAs bytes 4) reference "C=4"

        testCase "16-bit RGB PNG: uint16 exact, uint8 the high byte, alpha opaque for channels 4" <| fun () ->
            let bytes = file "rgb16.png"
            let info = ImageDecoder.Measure(ReadOnlySpan bytes)
            Expect.equal (info.Channels, info.BitDepth) (3, 16) "native 16-bit RGB"
            let _, raw = readPnm "rgb16.ref.ppm"
            let reference = [| for i in 0 .. raw.Length / 2 - 1 -> (uint16 raw.[2 * i] <<< 8) ||| uint16 raw.[2 * i + 1] |]
            Expect.isTrue (reference |> Array.exists (fun v -> (v &&& 0xFFus) <> (v >>> 8))) "samples are not 8-bit values widened"
            let d16 = Array.zeroCreate<uint16> (W * H * 4)
            ImageDecoder.Decode16(ReadOnlySpan bytes, Span d16, 4) |> ignore
            Expect.sequenceEqual [| for p in 0 .. W * H - 1 do for k in 0 .. 2 -> d16.[p * 4 + k] |] reference "uint16 C=4 colour"
            Expect.isTrue ([| for p in 0 .. W * H - 1 -> d16.[p * 4 + 3] |] |> Array.forall ((=) 65535us)) "uint16 alpha"
            Expect.sequenceEqual (decodeAs bytes 3) (reference |> Array.map (fun v -> byte (v >>> 8))) "uint8 C=3 high byte"
    ]

/// Fixtures/images/png: 13x11 PNGs written by make.py (1/2/4-bit grey, Adam7 at every depth, grey and RGB colour
/// keys, palettes with a short tRNS, every filter type, two IDAT chunks each) and Pillow's decode of each into the
/// modes named by the reference files' extensions. Every channel count with a reference must match it exactly.
let pngSuite =
    let folder = lazy (Path.Combine(dir.Force(), "png"))
    let channels = dict [ "L", 1; "LA", 2; "RGB", 3; "RGBA", 4 ]
    testList "png suite (Pillow references)" [
        testCase "the suite covers every case it names" <| fun () ->
            let names = Directory.GetFiles(folder.Force(), "*.png") |> Array.map Path.GetFileNameWithoutExtension |> Set.ofArray
            for n in [ "grey1"; "grey2"; "grey4"; "grey1-adam7"; "grey8-trns"; "grey2-trns-adam7"; "rgb8-trns"; "rgb8-adam7"; "palette2-trns"; "palette4-trns"; "palette8-trns" ] do
                Expect.isTrue (names.Contains n) $"{n}.png present"
        for png in Directory.GetFiles(Path.Combine(repoRoot.Force(), "tests", "Samplers.Tests", "Fixtures", "images", "png"), "*.png") |> Array.sort do
            let name = Path.GetFileNameWithoutExtension png
            testCase name <| fun () ->
                let bytes = File.ReadAllBytes png
                let info = ImageDecoder.Measure(ReadOnlySpan bytes)
                Expect.equal (info.Height, info.Width) (11, 13) "size"
                let refs = Directory.GetFiles(folder.Force(), name + ".*") |> Array.filter (fun f -> not (f.EndsWith ".png"))
                Expect.isNonEmpty refs "has references"
                for r in refs do
                    let mode = Path.GetExtension(r).TrimStart '.'
                    let c = channels.[mode]
                    let dst = Array.zeroCreate<byte> (11 * 13 * c)
                    ImageDecoder.Decode(ReadOnlySpan bytes, Span dst, c) |> ignore
                    Expect.sequenceEqual dst (File.ReadAllBytes r) $"{name} as {mode} (C={c})"
        testCase "a colour key gives alpha 0 exactly where the sample equals it (grey8-trns)" <| fun () ->
            let la = File.ReadAllBytes(Path.Combine(folder.Force(), "grey8-trns.LA"))
            let clear = [| for p in 0 .. la.Length / 2 - 1 do if la.[2 * p + 1] = 0uy then yield p |]
            Expect.isNonEmpty clear "the key occurs"
            Expect.isTrue (clear |> Array.forall (fun p -> la.[2 * p] = la.[0])) "only the key value is transparent"
    ]

[<Tests>]
let tests = testList "Io.ImageFixtures" [ jpegs; pngs; pngSuite ]
