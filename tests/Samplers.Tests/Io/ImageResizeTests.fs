module Samplers.Tests.Io.ImageResizeTests

// The resize under test follows tf.image.resize's kernels (cached rows, vectorised passes). This file holds a
// second, deliberately simple reading of the same formulas: one output value at a time, straight from the
// definitions in TF's kernels (resize_bilinear_op.cc, resize_nearest_neighbor_op.cc, resize_area_op.cc,
// resize_bicubic_op.cc, scale_and_translate_op.cc + sampling_kernels.h). Nothing here shares code with the library.

open System
open Expecto
open Samplers
open Samplers.Tfds
open Samplers.Imaging
open Samplers.Tests.TestUtil

module Ref =
    let scale (inSize: int) (outSize: int) = float32 inSize / float32 outSize

    /// Source value as float32, (row, col, channel), clamped to the image.
    let at (src: float32[]) (w: int) (c: int) (y: int) (x: int) (k: int) = src.[(y * w + x) * c + k]

    let nearest (src: float32[]) h w c oh ow =
        Array.init (oh * ow * c) (fun i ->
            let y, x, k = i / (ow * c), (i / c) % ow, i % c
            let sy = max 0 (min (int (floor ((float32 y + 0.5f) * scale h oh))) (h - 1))
            let sx = max 0 (min (int (floor ((float32 x + 0.5f) * scale w ow))) (w - 1))
            at src w c sy sx k)

    let bilinear (src: float32[]) h w c oh ow =
        let axis o inSize outSize =
            let v = (float32 o + 0.5f) * scale inSize outSize - 0.5f
            let f = floor v
            max (int f) 0, min (int (ceil v)) (inSize - 1), v - f
        Array.init (oh * ow * c) (fun i ->
            let y, x, k = i / (ow * c), (i / c) % ow, i % c
            let y0, y1, yl = axis y h oh
            let x0, x1, xl = axis x w ow
            let tl, tr = at src w c y0 x0 k, at src w c y0 x1 k
            let bl, br = at src w c y1 x0 k, at src w c y1 x1 k
            let top = tl + (tr - tl) * xl
            let bottom = bl + (br - bl) * xl
            top + (bottom - top) * yl)

    /// Area: every source cell weighted by its overlap with the output cell, divided by the cell's area.
    let area (src: float32[]) h w c oh ow =
        let overlap (lo: float) (hi: float) (i: int) = max 0.0 (min hi (float i + 1.0) - max lo (float i))
        Array.init (oh * ow * c) (fun i ->
            let y, x, k = i / (ow * c), (i / c) % ow, i % c
            let sy, sx = float (scale h oh), float (scale w ow)
            let mutable acc = 0.0
            for yy in 0 .. h - 1 do
                for xx in 0 .. w - 1 do
                    let a = overlap (float y * sy) (float (y + 1) * sy) yy * overlap (float x * sx) (float (x + 1) * sx) xx
                    acc <- acc + a * float (at src w c yy xx k)
            float32 (acc / (sy * sx)))

    /// Keys cubic (a = -0.5) evaluated in double at the table's 1/1024 quantisation of the fraction.
    let keys (a: float) (t: float) =
        let t = abs t
        if t >= 2.0 then 0.0
        elif t >= 1.0 then ((a * t - 5.0 * a) * t + 8.0 * a) * t - 4.0 * a
        else ((a + 2.0) * t - (a + 3.0)) * t * t + 1.0

    let bicubicTaps (o: int) (inSize: int) (outSize: int) =
        let v = (float32 o + 0.5f) * scale inSize outSize - 0.5f
        let loc = int (floor v)
        let q = Math.Round(float (v - float32 loc) * 1024.0, MidpointRounding.ToEven) / 1024.0
        let taps = [| for d in -1 .. 2 -> loc + d, (if loc + d < 0 || loc + d >= inSize then 0.0 else keys -0.5 (float d - q)) |]
        let sum = taps |> Array.sumBy snd
        taps |> Array.map (fun (i, wt) -> max 0 (min i (inSize - 1)), wt / sum)

    let bicubic (src: float32[]) h w c oh ow =
        Array.init (oh * ow * c) (fun i ->
            let y, x, k = i / (ow * c), (i / c) % ow, i % c
            let ty, tx = bicubicTaps y h oh, bicubicTaps x w ow
            let mutable acc = 0.0
            for (yy, wy) in ty do
                for (xx, wx) in tx do acc <- acc + wy * wx * float (at src w c yy xx k)
            float32 acc)

    /// scale_and_translate with a kernel of radius r, widened by 1/scale when downscaling.
    let antialiasTaps (kernel: float -> float) (radius: float) (o: int) (inSize: int) (outSize: int) =
        let inv = float inSize / float outSize
        let ks = max inv 1.0
        let sample = (float o + 0.5) * inv
        let taps = [| for i in 0 .. inSize - 1 do
                        let wt = kernel (abs ((float i + 0.5 - sample) / ks))
                        if wt <> 0.0 && abs (float i + 0.5 - sample) <= radius * ks + 0.5 then yield i, wt |]
        let sum = taps |> Array.sumBy snd
        taps |> Array.map (fun (i, wt) -> i, wt / sum)

    let antialias (kernel: float -> float) radius (src: float32[]) h w c oh ow =
        Array.init (oh * ow * c) (fun i ->
            let y, x, k = i / (ow * c), (i / c) % ow, i % c
            let mutable acc = 0.0
            for (yy, wy) in antialiasTaps kernel radius y h oh do
                for (xx, wx) in antialiasTaps kernel radius x w ow do acc <- acc + wy * wx * float (at src w c yy xx k)
            float32 acc)

    let triangle (t: float) = if t < 1.0 then 1.0 - t else 0.0

let resizeF (src: byte[]) h w c oh ow m aa =
    let dst = Array.zeroCreate<float32> (oh * ow * c)
    ImageResize.Resize(ReadOnlySpan src, h, w, c, Span dst, oh, ow, m, aa)
    dst

let toF (b: byte[]) = b |> Array.map float32

let pixels seed n = let r = Random(seed: int) in Array.init n (fun _ -> byte (r.Next 256))

let maxDiff (a: float32[]) (b: float32[]) =
    Expect.equal a.Length b.Length "lengths"
    Array.fold2 (fun m (x: float32) y -> max m (abs (float x - float y))) 0.0 a b

/// Sizes covering up- and down-scaling, odd sizes, equal sizes and 1-pixel edges.
let sizes = [ 1; 2; 3; 4; 5; 7; 8; 13 ]
let cases =
    [ for c in [ 1; 3; 4 ] do
        for (h, w, oh, ow) in [ for a in sizes do for b in sizes -> a, b, b, a ] @ [ 9, 6, 4, 3; 4, 3, 9, 6; 1, 1, 5, 3; 7, 11, 1, 1; 375, 500, 224, 224 ] do
          yield c, h, w, oh, ow ]

let agreement =
    testList "agrees with a simple reading of TF's formulas" [
        testCase "nearest and bilinear: bit for bit" <| fun () ->
            for (c, h, w, oh, ow) in cases do
                let src = pixels (h * 31 + w * 7 + c) (h * w * c)
                let f = toF src
                Expect.equal (resizeF src h w c oh ow ResizeMethod.Nearest false) (Ref.nearest f h w c oh ow) $"nearest {h}x{w}x{c} -> {oh}x{ow}"
                Expect.equal (resizeF src h w c oh ow ResizeMethod.Bilinear false) (Ref.bilinear f h w c oh ow) $"bilinear {h}x{w}x{c} -> {oh}x{ow}"

        testCase "area, bicubic and antialias: within 2e-3 levels of exact arithmetic" <| fun () ->
            for (c, h, w, oh, ow) in cases do
                if h * w < 10000 then
                    let src = pixels (h * 131 + w * 17 + c) (h * w * c)
                    let f = toF src
                    let check name m aa (r: float32[]) =
                        let d = maxDiff (resizeF src h w c oh ow m aa) r
                        Expect.isLessThan d 2e-3 $"{name} {h}x{w}x{c} -> {oh}x{ow}: max difference {d}"
                    check "area" ResizeMethod.Area false (Ref.area f h w c oh ow)
                    check "bicubic" ResizeMethod.Bicubic false (Ref.bicubic f h w c oh ow)
                    check "bilinear antialias" ResizeMethod.Bilinear true (Ref.antialias Ref.triangle 1.0 f h w c oh ow)
                    check "bicubic antialias" ResizeMethod.Bicubic true (Ref.antialias (Ref.keys -0.5) 2.0 f h w c oh ow)

        testCase "a constant image stays constant under every method and size" <| fun () ->
            for (c, h, w, oh, ow) in cases do
                let src = Array.create (h * w * c) 77uy
                for m in [ ResizeMethod.Nearest; ResizeMethod.Bilinear; ResizeMethod.Area; ResizeMethod.Bicubic ] do
                    for aa in [ false; true ] do
                        let d = resizeF src h w c oh ow m aa |> Array.map (fun v -> abs (float v - 77.0)) |> Array.max
                        // Area sums up to ~2x2 cells of fractional weights in single precision, as TF does: 77 comes back
                        // as 77 +- 0.0014 at 375x500 -> 224x224 (far below half a level).
                        Expect.isLessThan d 5e-3 $"{m} aa={aa} {h}x{w}x{c} -> {oh}x{ow}"
    ]

let handWorked =
    testList "values worked by hand" [
        testCase "bilinear 2x2 -> 4x4 (half-pixel centres, clamped edges)" <| fun () ->
            let got = resizeF [| 0uy; 10uy; 20uy; 30uy |] 2 2 1 4 4 ResizeMethod.Bilinear false
            Expect.equal got [| 0f; 2.5f; 7.5f; 10f;  5f; 7.5f; 12.5f; 15f;  15f; 17.5f; 22.5f; 25f;  20f; 22.5f; 27.5f; 30f |] "TF's known answer"

        testCase "1x4 -> 1x2: bilinear and area average pairs, nearest takes the right of each pair" <| fun () ->
            let src = [| 10uy; 20uy; 30uy; 40uy |]
            Expect.equal (resizeF src 1 4 1 1 2 ResizeMethod.Bilinear false) [| 15f; 35f |] "bilinear samples at 0.5 and 2.5"
            Expect.equal (resizeF src 1 4 1 1 2 ResizeMethod.Area false) [| 15f; 35f |] "area"
            Expect.equal (resizeF src 1 4 1 1 2 ResizeMethod.Nearest false) [| 20f; 40f |] "nearest floor((o + 0.5) * 2)"
            // 3 -> 2: nearest floor(0.75) = 0, floor(2.25) = 2; area 1.5 source pixels per output.
            Expect.equal (resizeF [| 10uy; 20uy; 30uy |] 1 3 1 1 2 ResizeMethod.Nearest false) [| 10f; 30f |] "nearest 3 -> 2"
            let a = resizeF [| 10uy; 20uy; 30uy |] 1 3 1 1 2 ResizeMethod.Area false
            Expect.floatClose Accuracy.high (float a.[0]) ((10.0 + 0.5 * 20.0) / 1.5) "area left"
            Expect.floatClose Accuracy.high (float a.[1]) ((0.5 * 20.0 + 30.0) / 1.5) "area right"

        testCase "antialiased bilinear 1x4 -> 1x2 of [0, 0, 4, 4] is [4/7, 24/7]" <| fun () ->
            // Triangle widened 2x: sample 1.0 sees sources 0,1,2 at distances 0.25,0.25,0.75 -> 3/7, 3/7, 1/7.
            let got = resizeF [| 0uy; 0uy; 4uy; 4uy |] 1 4 1 1 2 ResizeMethod.Bilinear true
            Expect.floatClose Accuracy.high (float got.[0]) (4.0 / 7.0) "left"
            Expect.floatClose Accuracy.high (float got.[1]) (24.0 / 7.0) "right"

        testCase "bicubic 1x4 -> 1x8 keeps the ends and overshoots a step" <| fun () ->
            let got = resizeF [| 0uy; 0uy; 100uy; 100uy |] 1 4 1 1 8 ResizeMethod.Bicubic false
            Expect.isLessThan (float got.[2]) 0.0 "undershoot before the step (Keys a = -0.5)"
            Expect.isGreaterThan (float got.[5]) 100.0 "overshoot after it"
            Expect.floatClose Accuracy.medium (float got.[0]) 0.0 "left end"
            Expect.floatClose Accuracy.medium (float got.[7]) 100.0 "right end"

        testCase "uint8 output rounds half to even and saturates" <| fun () ->
            let dst = Array.zeroCreate<byte> 7
            ImageResize.RoundToByte(ReadOnlySpan [| 0.5f; 1.5f; 2.5f; -3f; 300f; 254.5f; Single.NaN |], Span dst)
            Expect.equal dst [| 0uy; 2uy; 2uy; 0uy; 255uy; 254uy; 0uy |] "tf.saturate_cast(tf.round(x))"

        testCase "uint8 rounding: vector path equals MathF.Round(ToEven) + clamp on every level and half-level" <| fun () ->
            let src = Array.init 2000 (fun i -> float32 (i - 600) * 0.25f)
            let dst = Array.zeroCreate<byte> src.Length
            ImageResize.RoundToByte(ReadOnlySpan src, Span dst)
            let expected = src |> Array.map (fun v -> byte (max 0.0f (min 255.0f (MathF.Round(v, MidpointRounding.ToEven)))))
            Expect.equal dst expected "every value from -150 to 350 in quarter steps"

        testCase "bad sizes and spans are refused with the numbers" <| fun () ->
            throwsWith<ArgumentException> (fun () -> resizeF [| 1uy |] 1 1 1 0 1 ResizeMethod.Bilinear false |> ignore) "0x1" |> ignore
            throwsWith<ArgumentException> (fun () ->
                ImageResize.Resize(ReadOnlySpan [| 1uy; 2uy |], 1, 1, 1, Span(Array.zeroCreate<float32> 1), 1, 1)) "holds 2" |> ignore
            throwsWith<ArgumentException> (fun () ->
                ImageResize.Resize(ReadOnlySpan [| 1us |], 1, 1, 1, Span(Array.zeroCreate<float32> 1), 1, 1)) "UInt16" |> ignore
    ]

let table (pixels: byte[][]) (shapes: int[][]) =
    let b = ExampleTableBuilder.Ragged(DType.UInt8, ReadOnlySpan [| -1; -1; 3 |], pixels.Length)
    for i in 0 .. pixels.Length - 1 do
        pixels.[i].CopyTo(b.AllocateRagged(i, ReadOnlySpan shapes.[i]))
        b.SetLabel(i, int64 i)
    b.Build()

let preprocessors =
    testList "preprocessors" [
        testCase "Resize makes a ragged uint8 table a fixed float32 or uint8 one" <| fun () ->
            let shapes = [| [| 5; 7; 3 |]; [| 9; 4; 3 |] |]
            let px = shapes |> Array.mapi (fun i s -> pixels i (s.[0] * s.[1] * 3))
            let t = table px shapes
            let f = Preprocessing.Apply(t, ImagePreprocessing.Resize(4, 6))
            Expect.equal f.DType DType.Float32 "float32 by default"
            Expect.equal (f.ExampleShape.ToArray()) [| 4; 6; 3 |] "shape"
            for i in 0 .. 1 do
                Expect.equal (f.GetExample<float32>(i).ToArray()) (Ref.bilinear (toF px.[i]) shapes.[i].[0] shapes.[i].[1] 3 4 6) $"example {i}"
            let u = Preprocessing.Apply(t, ImagePreprocessing.Resize(4, 6, ResizeMethod.Bicubic, output = DType.UInt8))
            Expect.equal u.DType DType.UInt8 "uint8"
            let expected = Array.zeroCreate<byte> (4 * 6 * 3)
            ImageResize.RoundToByte(ReadOnlySpan(resizeF px.[1] 9 4 3 4 6 ResizeMethod.Bicubic false), Span expected)
            Expect.equal (u.GetExample(1).ToArray()) expected "rounded bicubic"
            let n = Preprocessing.Apply(t, ImagePreprocessing.Resize(3, 3, ResizeMethod.Nearest, output = DType.UInt8))
            Expect.equal (n.GetExample(0).ToArray()) (Ref.nearest (toF px.[0]) 5 7 3 3 3 |> Array.map byte) "nearest copies bytes"

        testCase "CenterCrop crops and pads like resize_with_crop_or_pad" <| fun () ->
            let src = Array.init 25 byte
            let t = ExampleTable.From(ReadOnlySpan src, ReadOnlySpan [| 5; 5 |], ReadOnlySpan [| 0L |])
            let c = Preprocessing.Apply(t, ImagePreprocessing.CenterCrop(3, 2))
            // rows offset (5-3)/2 = 1, columns offset (5-2)/2 = 1
            Expect.equal (c.GetExample(0).ToArray()) [| 6uy; 7uy; 11uy; 12uy; 16uy; 17uy |] "crop"
            let small = ExampleTable.From(ReadOnlySpan [| 1uy; 2uy; 3uy; 4uy |], ReadOnlySpan [| 2; 2 |], ReadOnlySpan [| 0L |])
            let p = Preprocessing.Apply(small, ImagePreprocessing.CenterCrop(4, 3))
            // pad rows (4-2)/2 = 1, pad columns (3-2)/2 = 0
            Expect.equal (p.GetExample(0).ToArray()) [| 0uy; 0uy; 0uy;  1uy; 2uy; 0uy;  3uy; 4uy; 0uy;  0uy; 0uy; 0uy |] "pad"

        testCase "ResizeWithPad keeps the aspect ratio and centres the image" <| fun () ->
            // 4 high x 2 wide into 4x4: ratio max(2/4, 4/4) = 1 -> 4x2, padding (4-2)/2 = 1 column each side.
            let src = [| 10uy; 20uy; 30uy; 40uy; 50uy; 60uy; 70uy; 80uy |]
            let t = ExampleTable.From(ReadOnlySpan src, ReadOnlySpan [| 4; 2 |], ReadOnlySpan [| 0L |])
            let p = Preprocessing.Apply(t, ImagePreprocessing.ResizeWithPad(4, 4))
            Expect.equal (p.GetExample<float32>(0).ToArray())
                [| 0f; 10f; 20f; 0f;  0f; 30f; 40f; 0f;  0f; 50f; 60f; 0f;  0f; 70f; 80f; 0f |] "centred, zero padded"
            // 2 high x 8 wide into 4x4: ratio 2 -> 1x4, rows padding floor((4-1)/2) = 1.
            let wide = ExampleTable.From(ReadOnlySpan(Array.init 16 (fun i -> byte (i * 10))), ReadOnlySpan [| 2; 8 |], ReadOnlySpan [| 0L |])
            let q = Preprocessing.Apply(wide, ImagePreprocessing.ResizeWithPad(4, 4)).GetExample<float32>(0).ToArray()
            Expect.equal q.[0..3] [| 0f; 0f; 0f; 0f |] "top padding row"
            Expect.equal q.[4..7] (Ref.bilinear (Array.init 16 (fun i -> float32 (i * 10))) 2 8 1 1 4) "the resized row"
            Expect.equal q.[8..15] (Array.zeroCreate 8) "bottom padding"

        testCase "Normalize per channel, chained after Resize" <| fun () ->
            let src = [| 0uy; 128uy; 255uy; 255uy; 0uy; 51uy |]
            let t = ExampleTable.From(ReadOnlySpan src, ReadOnlySpan [| 1; 2; 3 |], ReadOnlySpan [| 0L |])
            let p = ImagePreprocessing.Resize(1, 2, ResizeMethod.Nearest, output = DType.UInt8).Then(Preprocessing.Normalize([| 0.5f; 0f; 0.2f |], [| 0.5f; 1f; 0.1f |], 1f / 255f))
            let got = Preprocessing.Apply(t, p).GetExample<float32>(0).ToArray()
            let expected = src |> Array.mapi (fun i v -> (float32 v * (1f / 255f) - [| 0.5f; 0f; 0.2f |].[i % 3]) / [| 0.5f; 1f; 0.1f |].[i % 3])
            Expect.equal got expected "(x * scale - mean[c]) / std[c]"
            Expect.equal (string p) "resize(1,2,nearest,antialias=false,uint8)|normalize(mean=[0.5,0,0.2],std=[0.5,1,0.1],scale=0.003921569)" "a stable description"

        testCase "bad arguments name what is wrong" <| fun () ->
            throwsWith<ArgumentOutOfRangeException> (fun () -> ImagePreprocessing.Resize(0, 4) |> ignore) "height" |> ignore
            throwsWith<ArgumentOutOfRangeException> (fun () -> ImagePreprocessing.Resize(4, 4, output = DType.Int32) |> ignore) "int32" |> ignore
            throwsWith<ArgumentException> (fun () -> Preprocessing.Normalize([| 1f |], [| 0f |]) |> ignore) "positive" |> ignore
            throwsWith<ArgumentException> (fun () -> Preprocessing.Normalize([| 1f; 2f |], [| 1f |]) |> ignore) "same" |> ignore
            let t16 = ExampleTable.From(ReadOnlySpan [| 1us |], ReadOnlySpan [| 1; 1 |], ReadOnlySpan [| 0L |])
            throwsWith<ArgumentException> (fun () -> Preprocessing.Apply(t16, ImagePreprocessing.Resize(2, 2)) |> ignore) "uint16" |> ignore
            throwsWith<ArgumentOutOfRangeException> (fun () -> ImagePreprocessing.CenterCrop(3, 0) |> ignore) "width" |> ignore
            throwsWith<ArgumentOutOfRangeException> (fun () -> ImagePreprocessing.ResizeWithPad(0, 3) |> ignore) "height" |> ignore
            throwsWith<ArgumentException> (fun () -> ImageResize.RoundToByte(ReadOnlySpan [| 1f |], Span(Array.zeroCreate<byte> 2))) "holds 2" |> ignore
            let rgb = ExampleTable.From(ReadOnlySpan(Array.zeroCreate<byte> 12), ReadOnlySpan [| 2; 2; 3 |], ReadOnlySpan [| 0L |])
            throwsWith<ArgumentException> (fun () -> Preprocessing.Apply(rgb, Preprocessing.Normalize([| 0f; 0f |], [| 1f; 1f |])) |> ignore) "2 channel means" |> ignore
            let flat = ExampleTable.From(ReadOnlySpan [| 1uy |], ReadOnlySpan [| 1 |], ReadOnlySpan [| 0L |])
            throwsWith<ArgumentException> (fun () -> Preprocessing.Apply(flat, ImagePreprocessing.Resize(2, 2)) |> ignore) "[H, W]" |> ignore
    ]

[<Tests>]
let tests = testList "Io.ImageResize" [ agreement; handWorked; preprocessors ]
