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

/// Whether the loader's JPEG codec (the one registered or discovered: `SkiaImageCodec()`) decodes through the system's
/// libturbojpeg here. It then uses TensorFlow's settings (fast integer IDCT, the Y plane for grey), so `djpeg -dct fast`
/// is its exact reference; the SkiaSharp fallback (accurate IDCT, luma of the RGB for grey) matches plain `djpeg`.
let private turbo = lazy (Samplers.SkiaSharp.SkiaImageCodec().Backend.StartsWith "libturbojpeg")

/// The reference decode for the backend in use: `NAME.ref-fast.EXT` (djpeg -dct fast) or `NAME.ref.EXT` (djpeg).
let private jpegRef (name: string) = if turbo.Force() then name.Replace(".ref", ".ref-fast") else name

let private colourJpeg name reference =
    testCase $"{name}: channels 3 and 4 match djpeg, channels 1 matches djpeg -grayscale" <| fun () ->
        let bytes = file name
        let info = ImageDecoder.Measure(ReadOnlySpan bytes)
        Expect.equal (info.Channels, info.Format) (3, ImageFormat.Jpeg) "native RGB JPEG"
        let _, rgb = readPnm (jpegRef reference)
        let c3 = decodeAs bytes 3
        // libturbojpeg: the same library and settings as djpeg -dct fast, so exact; SkiaSharp: exact for C=3 as measured.
        within (if turbo.Force() then 0 else jpegTolerance) c3 rgb "C=3"
        let c4 = decodeAs bytes 4
        Expect.sequenceEqual (firstChannels 4 3 c4) c3 "C=4 colour = C=3"
        Expect.isTrue (everyFourth c4 |> Array.forall ((=) 255uy)) "C=4 alpha is opaque"
        // TF reads libjpeg's Y plane, as the libturbojpeg path does (exact); the SkiaSharp fallback takes BT.601 luma of
        // the decoded RGB (docs/IMAGE_DECODERS.md).
        let _, y = readPnm (jpegRef "rgb.ref-y.pgm")
        within (if turbo.Force() then 0 else jpegTolerance) (decodeAs bytes 1) y "C=1"

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
            let _, g = readPnm (jpegRef "grey.ref.pgm")
            let c1 = decodeAs bytes 1
            within (if turbo.Force() then 0 else jpegTolerance) c1 g "C=1"
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


/// The two JPEG paths of Samplers.SkiaSharp called directly: the system's libturbojpeg (when installed; CI installs
/// libturbojpeg0) and the SkiaSharp fallback, whatever the process-wide choice is.
let jpegPaths =
    let native = lazy (Samplers.SkiaSharp.SkiaImageCodec.WithTurboJpegNames(Samplers.SkiaSharp.TurboJpeg.DefaultNames))
    let fallback = lazy (Samplers.SkiaSharp.SkiaImageCodec.WithoutTurboJpeg())
    let needNative () =
        if not (native.Force().Backend.StartsWith "libturbojpeg") then
            skiptest "libturbojpeg is not installed (Debian/Ubuntu: apt-get install libturbojpeg0)"
        native.Force()
    let run (codec: Samplers.SkiaSharp.SkiaImageCodec) (bytes: byte[]) h w c =
        let dst = Array.zeroCreate<byte> (h * w * c)
        codec.Decode(ReadOnlySpan bytes, h, w, c, Span dst, "test.jpg record 7")
        dst
    let stats (a: byte[]) (b: byte[]) =
        let d = Array.map2 (fun (x: byte) (y: byte) -> abs (int x - int y)) a b
        Array.averageBy float d, Array.max d
    /// A photo-like picture (gradients, a hard-edged disc, noise) as a q90 4:2:0 JPEG written by SkiaSharp.
    let photo w h =
        let rnd = Random(5)
        let px = smoothRgb w h |> Array.map (fun v -> byte (Math.Clamp(int v + rnd.Next(-12, 13), 0, 255)))
        jpeg px w h 3 90
    testList "jpeg paths" [
        testCase "libturbojpeg: every channel count exactly as djpeg -dct fast (TensorFlow's settings; C=1 is the Y plane)" <| fun () ->
            let codec = needNative ()
            for name, reference in [ "rgb.jpg", "rgb.ref-fast.ppm"; "progressive.jpg", "progressive.ref-fast.ppm" ] do
                let _, rgb = readPnm reference
                let _, y = readPnm "rgb.ref-fast-y.pgm"
                Expect.sequenceEqual (run codec (file name) H W 3) rgb $"{name} C=3"
                Expect.sequenceEqual (run codec (file name) H W 1) y $"{name} C=1"
                Expect.sequenceEqual (run codec (file name) H W 2) [| for v in y do yield v; yield 255uy |] $"{name} C=2"
                Expect.sequenceEqual (run codec (file name) H W 4) [| for p in 0 .. W * H - 1 do yield! rgb.[3 * p .. 3 * p + 2]; yield 255uy |] $"{name} C=4"
            let _, g = readPnm "grey.ref-fast.pgm"
            Expect.sequenceEqual (run codec (file "grey.jpg") H W 1) g "grey C=1"
            Expect.sequenceEqual (run codec (file "grey.jpg") H W 3) (replicate 3 g) "grey C=3"
            let mutable h, w, c = 0, 0, 0
            codec.Measure(ReadOnlySpan (file "grey.jpg"), null, &h, &w, &c)
            Expect.equal (h, w, c) (H, W, 1) "grey measures as one channel"
            codec.Measure(ReadOnlySpan (file "rgb.jpg"), null, &h, &w, &c)
            Expect.equal (h, w, c) (H, W, 3) "colour measures as three"

        testCase "SkiaSharp fallback: C=3 exactly as djpeg (accurate IDCT), C=1 within 2 of its Y plane" <| fun () ->
            let codec = fallback.Force()
            Expect.equal codec.Backend "SkiaSharp" "backend"
            let _, rgb = readPnm "rgb.ref.ppm"
            Expect.sequenceEqual (run codec (file "rgb.jpg") H W 3) rgb "C=3"
            let _, y = readPnm "rgb.ref-y.pgm"
            within 2 (run codec (file "rgb.jpg") H W 1) y "C=1"

        testCase "without the library (a name that does not exist) the codec falls back to SkiaSharp, same pixels" <| fun () ->
            let missing = Samplers.SkiaSharp.SkiaImageCodec.WithTurboJpegNames("libsamplers-no-such-turbojpeg.so.9")
            Expect.equal missing.Backend "SkiaSharp" "backend"
            for name in [ "rgb.jpg"; "progressive.jpg"; "grey.jpg"; "cmyk.jpg" ] do
                for c in [ 1; 3; 4 ] do
                    Expect.sequenceEqual (run missing (file name) H W c) (run (fallback.Force()) (file name) H W c) $"{name} C={c}"

        testCase "CMYK JPEGs go through SkiaSharp on the libturbojpeg codec too (libjpeg-turbo has no CMYK -> RGB)" <| fun () ->
            let codec = needNative ()
            for c in [ 1; 3; 4 ] do
                Expect.sequenceEqual (run codec (file "cmyk.jpg") H W c) (run (fallback.Force()) (file "cmyk.jpg") H W c) $"C={c}"

        testCase "the two paths agree on a photo-like JPEG at full size and DCT-scaled 1/2, 1/4, 1/8 (mean <= 1.5, max <= 10 levels)" <| fun () ->
            // Measured on this picture: C=3 mean 0.99 / max 4 at full size (IFAST vs ISLOW), 0.67 / 2 at 1/2 (the chroma
            // IDCT still differs), identical at 1/4 and 1/8; C=1 (the Y plane against luma of the RGB) mean 0.50 / max 7
            // at full size. The benchmark images: C=3 mean 0.99 / max 4 (500x375), 0.68 / 4 (1024x768 at 1/2). A swapped
            // channel order or a wrong scale is off by tens of levels.
            let codec = needNative ()
            let w, h = 203, 151
            let j = photo w h
            let mutable rh, rw = 0, 0
            let scaled = [ for minimum in [ 70; 35; 15 ] do
                             let ok = codec.TryGetReducedSize(ReadOnlySpan j, minimum, minimum, &rh, &rw)
                             let mutable fh, fw = 0, 0
                             let fok = fallback.Force().TryGetReducedSize(ReadOnlySpan j, minimum, minimum, &fh, &fw)
                             Expect.equal (ok, rh, rw) (fok, fh, fw) $"same reduced size for a minimum of {minimum}"
                             yield rh, rw ]
            Expect.equal scaled [ (76, 102); (38, 51); (19, 26) ] "1/2, 1/4, 1/8, rounded up as libjpeg does"
            let measured = [ for sh, sw in (h, w) :: scaled do
                               for c in [ 1; 3 ] do
                                   let mean, mx = stats (run codec j sh sw c) (run (fallback.Force()) j sh sw c)
                                   yield $"{sw}x{sh} C={c}", mean, mx ]
            let all = measured |> List.map (fun (n, m, x) -> $"{n}: mean {m:F3} max {x}") |> String.concat "; "
            for _, mean, mx in measured do
                Expect.isLessThanOrEqual mean 1.5 all
                Expect.isLessThanOrEqual mx 10 all

        testCase "a corrupt JPEG is refused by both paths naming the source, and the decoder still works afterwards" <| fun () ->
            let j = photo 64 48
            // A codec of its own: its decompressor pool is not shared with tests running alongside, so a broken
            // decompressor put back into it would be the one the next call gets.
            let own = Samplers.SkiaSharp.SkiaImageCodec.WithTurboJpegNames(Samplers.SkiaSharp.TurboJpeg.DefaultNames)
            for codec in [ fallback.Force(); own ] do
                // Several rounds: a failed call must not leave a decompressor in a state that spoils the next file.
                for _ in 1 .. 5 do
                    let e = expectDataError (fun () -> run codec j.[.. j.Length / 2] 48 64 3 |> ignore) "corrupt or truncated"
                    Expect.stringStarts e.Message "test.jpg record 7: " $"{codec.Backend}: names the source first"
                    Expect.equal e.FilePath "test.jpg record 7" "FilePath"
                    let mutable h, w, c = 0, 0, 0
                    // Cut after the SOI (libjpeg reads it as tables only) and just before the SOS marker (a header
                    // error: TurboJPEG then leaves its decompressor unusable, so it must not be reused).
                    let sos = Seq.findIndex id (Seq.init (j.Length - 1) (fun i -> j.[i] = 0xFFuy && j.[i + 1] = 0xDAuy))
                    for cut in [ j.[.. 3]; j.[.. sos - 1] ] do
                        expectDataError (fun () -> codec.Measure(ReadOnlySpan cut, "test.jpg record 7", &h, &w, &c)) "JPEG header" |> ignore
                    codec.Measure(ReadOnlySpan j, "test.jpg record 7", &h, &w, &c)
                    Expect.equal (h, w, c) (48, 64, 3) $"{codec.Backend}: a good file measures after a failure"
                    let mean, _ = stats (run codec j 48 64 3) (run (fallback.Force()) j 48 64 3)
                    Expect.isLessThanOrEqual mean 1.5 $"{codec.Backend}: a good file decodes after a failure"
    ]

[<Tests>]
let tests = testList "Io.ImageFixtures" [ jpegs; jpegPaths; pngs; pngSuite ]
