module Samplers.Tests.Facade.ImageAugmentTests

open System
open System.IO
open System.IO.Hashing
open System.Runtime.InteropServices
open Expecto
open Samplers
open Samplers.Cli
open Samplers.Tfds
open Samplers.Core
open Samplers.Imaging
open Samplers.Tests.TestUtil
open Samplers.Tests.Facade.SamplerTests

/// A table of `n` RGB h x w images: smooth colour ramps shifted per example (so crops, flips and hue changes show).
let imageTable (n: int) (h: int) (w: int) (classes: int) =
    let b = ExampleTableBuilder.Fixed(DType.UInt8, ReadOnlySpan [| h; w; 3 |], n)
    for i in 0 .. n - 1 do
        let s = b.Slot(i)
        for y in 0 .. h - 1 do
            for x in 0 .. w - 1 do
                s.[(y * w + x) * 3] <- byte ((x * 255 / w + i * 37) % 256)
                s.[(y * w + x) * 3 + 1] <- byte ((y * 255 / h + i * 11) % 256)
                s.[(y * w + x) * 3 + 2] <- byte (((x + y) * 4 + i * 53) % 256)
        b.SetLabel(i, int64 (i % classes))
    b.Build()

let sampler (aug: IAugmenter) (views: int) (seed: uint64) =
    new MultiShotMemorySampler(imageTable 24 40 48 6,
        SamplerOptions(ClassesPerBatch = 3, ExamplesPerClassPerBatch = 2, StepsPerEpoch = 10, Seed = seed, Augmenter = aug,
                       NumAugmentationsPerExample = views, Warmup = 0))

let floats (b: Batch) = b.ToArray<float32>()

let hash (xs: float32[]) =
    XxHash64.HashToUInt64(ReadOnlySpan(MemoryMarshal.AsBytes(ReadOnlySpan xs).ToArray()))

/// Pinned from a run of this implementation: SimClr(24, 20) on `sampler _ 2 42UL`, batch 3 of epoch 0. A change to any
/// augmentation, the stream layout or a resize kernel changes it; such a change must be deliberate (docs/IMAGES.md).
let goldenSimClr = 17592502591453577436UL

let reproducible =
    testList "reproducible" [
        testCase "the same batch twice, and on 1 thread vs all, is the same to the bit" <| fun () ->
            let a = floats ((sampler (ImageAugmenter.SimClr(24, 20)) 2 42UL).GenerateBatch 3)
            let b = floats ((sampler (ImageAugmenter.SimClr(24, 20)) 2 42UL).GenerateBatch 3)
            let one = ImageAugmenter(24, 20, ImageAugmenter.SimClr(24, 20).Steps, maxDegreeOfParallelism = 1)
            let c = floats ((sampler one 2 42UL).GenerateBatch 3)
            Expect.equal a b "two samplers"
            Expect.equal a c "one thread"
            Expect.equal a.Length (12 * 24 * 20 * 3) "2 views of 6 rows, 24x20x3"
            Expect.isTrue (a |> Array.forall (fun v -> v >= 0f && v <= 1f)) "levels in [0, 1]"

        testCase "golden: one SimCLR batch is pinned" <| fun () ->
            let got = hash (floats ((sampler (ImageAugmenter.SimClr(24, 20)) 2 42UL).GenerateBatch 3))
            Expect.equal got goldenSimClr $"hash of the augmented batch is {got}"

        testCase "seed, batch, row and view each change the draws" <| fun () ->
            let aug = ImageAugmenter.SimClr(24, 20)
            let img = (imageTable 1 40 48 1).GetExample(0).ToArray()
            let view seed epoch batch row v =
                let d = Array.zeroCreate<float32> (24 * 20 * 3)
                aug.AugmentImage(ReadOnlySpan img, 40, 48, 3, Span d, seed, epoch, batch, row, v)
                d
            let base' = view 1UL 0 0 0 0
            Expect.equal (view 1UL 0 0 0 0) base' "pure function"
            for (name, other) in [ "seed", view 2UL 0 0 0 0; "epoch", view 1UL 1 0 0 0; "batch", view 1UL 0 1 0 0; "row", view 1UL 0 0 1 0; "view", view 1UL 0 0 0 1 ] do
                Expect.notEqual other base' $"{name} changes the view"

        testCase "views are grouped view by view, each equal to AugmentImage of its row" <| fun () ->
            let aug = ImageAugmenter.SimClr(16, 16)
            let s = sampler aug 3 7UL
            use plain = (sampler null 0 7UL).GenerateBatch 2
            use b = s.GenerateBatch 2
            Expect.equal b.Count 18 "3 views x 6 rows"
            Expect.equal (b.ExampleShape.ToArray()) [| 16; 16; 3 |] "shape"
            let rows = plain.Count
            let x = b.ToArray<float32>()
            let px = plain.ToArray<byte>()
            for v in 0 .. 2 do
                Expect.equal (b.Y.Slice(v * rows, rows).ToArray()) (plain.Y.ToArray()) $"labels of view {v}"
                Expect.equal (b.Indices.Slice(v * rows, rows).ToArray()) (plain.Indices.ToArray()) $"indices of view {v}"
                for r in 0 .. rows - 1 do
                    let d = Array.zeroCreate<float32> (16 * 16 * 3)
                    aug.AugmentImage(ReadOnlySpan(px, r * 40 * 48 * 3, 40 * 48 * 3), 40, 48, 3, Span d, 7UL, plain.Key.Epoch, plain.GlobalBatchId, r, v)
                    Expect.equal x.[(v * rows + r) * 768 .. (v * rows + r + 1) * 768 - 1] d $"view {v} of row {r}"

        testCase "a crop that runs first converts only its window: grey, RGBA and float32 sources give their RGB uint8 views" <| fun () ->
            // The working image keeps the source as it came until a step needs floats; a leading crop converts only the
            // pixels it keeps. Each layout must give exactly the view of the same picture as RGB uint8.
            let rgb = imageTable 12 40 48 3
            let table (dtype: DType) (c: int) (fill: int -> int -> int -> float32) =
                let b = ExampleTableBuilder.Fixed(dtype, ReadOnlySpan [| 40; 48; c |], 12)
                for i in 0 .. 11 do
                    let src = rgb.GetExample(i).ToArray()
                    let slot = b.Slot(i)
                    for p in 0 .. 40 * 48 - 1 do
                        for k in 0 .. c - 1 do
                            let v = fill (int src.[p * 3]) (int src.[p * 3 + (min k 2)]) k
                            if dtype = DType.UInt8 then slot.[p * c + k] <- byte v
                            else BitConverter.TryWriteBytes(slot.Slice((p * c + k) * 4, 4), v) |> ignore
                    b.SetLabel(i, rgb.Labels.[i])
                b.Build()
            let view (t: ExampleTable) (steps: ImageAugmentation seq) =
                use s = new MultiShotMemorySampler(t, SamplerOptions(ClassesPerBatch = 3, ExamplesPerClassPerBatch = 2, Seed = 9UL, Augmenter = ImageAugmenter(16, 16, steps), NumAugmentationsPerExample = 2, Warmup = 0))
                floats (s.GenerateBatch 1)
            let grey = table DType.UInt8 1 (fun r _ _ -> float32 r)
            let greyAsRgb = table DType.UInt8 3 (fun r _ _ -> float32 r)
            let rgba = table DType.UInt8 4 (fun _ v k -> if k = 3 then 77f else float32 v)
            let f32 = table DType.Float32 3 (fun _ v _ -> float32 v / 255f)
            for (name, steps) in [ "SimCLR", ImageAugmenter.SimClr(16, 16).Steps :> ImageAugmentation seq
                                   "evaluation crop", ImageAugmenter.SimClr(16, 16, isTraining = false).Steps
                                   "flip first (no crop first)", Seq.append [ ImageAugmentation.HorizontalFlip(1.0) ] (ImageAugmenter.SimClr(16, 16).Steps) ] do
                let expected = view rgb steps
                Expect.equal (view rgba steps) expected $"{name}: RGBA drops alpha"
                Expect.equal (view f32 steps) expected $"{name}: float32 levels / 255"
                Expect.equal (view grey steps) (view greyAsRgb steps) $"{name}: grey is replicated"
            // AugmentImage (a span, copied) agrees with the batch path for a grey image.
            let aug = ImageAugmenter.SimClr(16, 16)
            let g = grey.GetExample(0).ToArray()
            let d1 = Array.zeroCreate<float32> (16 * 16 * 3)
            let d3 = Array.zeroCreate<float32> (16 * 16 * 3)
            aug.AugmentImage(ReadOnlySpan g, 40, 48, 1, Span d1, 3UL, 0, 5, 1, 0)
            aug.AugmentImage(ReadOnlySpan(greyAsRgb.GetExample(0).ToArray()), 40, 48, 3, Span d3, 3UL, 0, 5, 1, 0)
            Expect.equal d1 d3 "AugmentImage: grey = its RGB"

        testCase "0 views (the sampler's default) makes one view" <| fun () ->
            use b = (sampler (ImageAugmenter.SimClr(8, 8)) 0 1UL).GenerateBatch 0
            Expect.equal b.Count 6 "one view per row"

        testCase "warmup: the evaluation pipeline when asked, the training one otherwise" <| fun () ->
            let table = imageTable 12 40 48 3
            let mk aug warm = new MultiShotMemorySampler(table, SamplerOptions(ClassesPerBatch = 3, ExamplesPerClassPerBatch = 2, Seed = 5UL, Augmenter = aug, NumAugmentationsPerExample = 2, Warmup = warm))
            use w = (mk (ImageAugmenter.SimClr(16, 16, evalDuringWarmup = true)) 1).GenerateBatch 0
            Expect.isTrue w.IsWarmup "warmup batch"
            let x = w.ToArray<float32>()
            // Evaluation is deterministic: both views of a row are the same central crop.
            Expect.equal x.[0 .. 6 * 768 - 1] x.[6 * 768 .. 12 * 768 - 1] "views equal in warmup"
            use e = (mk (ImageAugmenter.SimClr(16, 16, isTraining = false)) 0).GenerateBatch 0
            Expect.equal (e.ToArray<float32>()) x "warmup = the evaluation augmenter"
            use t = (mk (ImageAugmenter.SimClr(16, 16, evalDuringWarmup = true)) 0).GenerateBatch 0
            let y = t.ToArray<float32>()
            Expect.notEqual y.[0 .. 6 * 768 - 1] y.[6 * 768 .. 12 * 768 - 1] "after warmup, random views differ"
    ]

let ops =
    testList "operations" [
        testCase "flip, greyscale, solarise by hand" <| fun () ->
            let img = [| 0.1f; 0.2f; 0.3f;  0.4f; 0.5f; 0.6f |]
            ImageOps.FlipLeftRight(Span img, 1, 2, 3)
            Expect.equal img [| 0.4f; 0.5f; 0.6f;  0.1f; 0.2f; 0.3f |] "columns swapped"
            let g = [| 1f; 0f; 0f |]
            ImageOps.ToGrayscale(Span g)
            Expect.equal g [| 0.2989f; 0.2989f; 0.2989f |] "TF's luma weights"
            let s = [| 0.2f; 0.5f; 0.9f |]
            ImageOps.Solarize(Span s, 0.5f)
            Expect.equal s [| 0.2f; 0.5f; 1f - 0.9f |] "x < t kept, else 1 - x"

        testCase "hue rotates primaries by thirds; saturation 0 greys to the max" <| fun () ->
            let red = [| 1f; 0f; 0f;  0.8f; 0.2f; 0.2f |]
            ImageOps.AdjustHue(Span red, 1f / 3f)
            Expect.sequenceEqual (red |> Array.map (fun v -> MathF.Round(v, 5))) [| 0f; 1f; 0f;  0.2f; 0.8f; 0.2f |] "red -> green"
            let back = [| 0f; 1f; 0f |]
            ImageOps.AdjustHue(Span back, -1f / 3f)
            Expect.sequenceEqual (back |> Array.map (fun v -> MathF.Round(v, 5))) [| 1f; 0f; 0f |] "and back, wrapping below 0"
            let c = [| 0.9f; 0.3f; 0.6f |]
            ImageOps.AdjustSaturation(Span c, 0f)
            Expect.equal c [| 0.9f; 0.9f; 0.9f |] "s = 0 leaves v in every channel"
            let same = [| 0.9f; 0.3f; 0.6f |]
            ImageOps.AdjustSaturation(Span same, 1f)
            Expect.sequenceEqual (same |> Array.map (fun v -> MathF.Round(v, 5))) [| 0.9f; 0.3f; 0.6f |] "factor 1 is the identity"

        testCase "contrast keeps each channel's mean; blur keeps a constant interior and darkens zero-padded edges" <| fun () ->
            let img = [| 0.1f; 0.5f;  0.3f; 0.7f;  0.5f; 0.9f |] // 1x3, 2 channels
            ImageOps.AdjustContrast(Span img, 1, 3, 2, 2f)
            Expect.sequenceEqual (img |> Array.map (fun v -> MathF.Round(v, 5))) [| -0.1f; 0.3f;  0.3f; 0.7f;  0.7f; 1.1f |] "(x - mean) * 2 + mean"
            let flat = Array.create (9 * 9) 0.5f
            ImageOps.GaussianBlur(Span flat, 9, 9, 1, 3, 1f)
            Expect.floatClose Accuracy.high (float flat.[4 * 9 + 4]) 0.5 "interior unchanged"
            Expect.isLessThan (float flat.[0]) 0.5 "corner sees zero padding"

        testCase "random resized crop boxes keep TF's constraints" <| fun () ->
            let mutable rng = PhiloxStream(3UL, Purpose.Augmentation, 0, 0UL)
            let mutable whole = 0
            for _ in 1 .. 2000 do
                let struct (y, x, h, w) = ImageAugmentation.SampleDistortedBoundingBox(&rng, 375, 500, 0.1f, 0.75f, 4f / 3f, 0.08f, 1f, 100)
                Expect.isTrue (y >= 0 && x >= 0 && y + h <= 375 && x + w <= 500) $"inside: {y},{x},{h},{w}"
                let area = float (h * w) / (375.0 * 500.0)
                Expect.isTrue (area >= 0.1 && area <= 1.0) $"area fraction {area}"
                if h = 375 && w = 500 then whole <- whole + 1
                else
                    let aspect = float w / float h
                    Expect.isTrue (aspect > 0.70 && aspect < 1.40) $"aspect {aspect}"
            Expect.isLessThan whole 200 "the whole-image fallback is rare"

        testCase "bad inputs are refused with what was expected" <| fun () ->
            throwsWith<ArgumentOutOfRangeException> (fun () -> ImageAugmentation.HorizontalFlip(1.5) |> ignore) "[0, 1]" |> ignore
            throwsWith<ArgumentOutOfRangeException> (fun () -> ImageAugmentation.RandomResizedCrop(8, 8, minArea = 0.5, maxArea = 0.2) |> ignore) "area range" |> ignore
            throwsWith<ArgumentException> (fun () -> ImageAugmenter.SimClr(8, 8, version = "v3") |> ignore) "v3" |> ignore
            let ints = new MultiShotMemorySampler(table10x8 (), SamplerOptions(ClassesPerBatch = 2, Augmenter = ImageAugmenter.SimClr(8, 8)))
            throwsWith<ArgumentException> (fun () -> ints.GenerateBatch 0 |> ignore) "int32" |> ignore
            let s = sampler (ImageAugmenter.SimClr(8, 8)) 257 1UL
            throwsWith<ArgumentOutOfRangeException> (fun () -> s.GenerateBatch 0 |> ignore) "256" |> ignore
            throwsWith<ArgumentOutOfRangeException> (fun () -> ImageAugmentation.RandomResizedCrop(8, 8, minAspect = 2.0, maxAspect = 1.0) |> ignore) "aspect range" |> ignore
            throwsWith<ArgumentOutOfRangeException> (fun () -> ImageAugmentation.GaussianBlur(5, minSigma = 0.0) |> ignore) "sigma range" |> ignore
            throwsWith<ArgumentOutOfRangeException> (fun () -> ImageAugmentation.GaussianBlur(-1) |> ignore) "kernelSize" |> ignore
            throwsWith<ArgumentOutOfRangeException> (fun () -> ImageAugmentation.ColorJitter(hue = 0.7) |> ignore) "hue at most 0.5" |> ignore
            throwsWith<ArgumentOutOfRangeException> (fun () -> ImageAugmentation.CenterCropResize(8, 8, 0.0) |> ignore) "cropProportion" |> ignore
            throwsWith<ArgumentOutOfRangeException> (fun () -> ImageOps.GaussianBlur(Span(Array.zeroCreate<float32> 4), 2, 2, 1, 3, 0f)) "sigma must be positive" |> ignore
            // A batch of [2, 2, 2] examples is not an image batch (2 channels).
            let vectors = new MultiShotMemorySampler(ExampleTable.From(ReadOnlySpan(Array.zeroCreate<byte> 32), ReadOnlySpan [| 2; 2; 2 |], ReadOnlySpan [| 0L; 1L; 0L; 1L |]),
                                                 SamplerOptions(ClassesPerBatch = 2, Augmenter = ImageAugmenter.SimClr(8, 8)))
            throwsWith<ArgumentException> (fun () -> vectors.GenerateBatch 0 |> ignore) "C = 1, 3 or 4" |> ignore
            let aug = ImageAugmenter.SimClr(8, 8)
            let img = Array.zeroCreate<byte> 48
            throwsWith<ArgumentException> (fun () -> aug.AugmentImage(ReadOnlySpan img, 4, 4, 2, Span(Array.zeroCreate<float32> 192), 0UL, 0, 0, 0, 0)) "C = 1, 3 or 4" |> ignore
            throwsWith<ArgumentException> (fun () -> aug.AugmentImage(ReadOnlySpan img, 4, 4, 3, Span(Array.zeroCreate<float32> 10), 0UL, 0, 0, 0, 0)) "192 floats" |> ignore
            throwsWith<ArgumentOutOfRangeException> (fun () -> aug.AugmentImage(ReadOnlySpan img, 4, 4, 3, Span(Array.zeroCreate<float32> 192), 0UL, 1 <<< 24, 0, 0, 0)) "2^24" |> ignore
            throwsWith<ArgumentOutOfRangeException> (fun () -> aug.AugmentImage(ReadOnlySpan img, 4, 4, 3, Span(Array.zeroCreate<float32> 192), 0UL, 0, 0, 0, 256)) "[0, 256)" |> ignore
    ]

let photos =
    testList "synthetic photos end to end" [
        testCase "variable-size RGB and grey JPEGs load, resize and augment (README example)" <| fun () ->
            use dir = new TempDir()
            let vdir = Samplers.DatasetGen.SyntheticPhotos.Write(dir.Path, 24, 8, 40, 120, 2)
            Expect.isTrue (File.Exists(Path.Combine(vdir, "features.json"))) "TFDS layout"
            // The generator really makes both layouts and many sizes.
            let greys =
                [ for i in 0 .. 39 ->
                    let mutable g = false
                    let j = Samplers.DatasetGen.SyntheticPhotos.Jpeg(i % 8, uint64 i, 40, 120, &g)
                    let info = ImageDecoder.Measure(ReadOnlySpan j)
                    g, info.Channels, info.Width, info.Height ]
            Expect.isTrue (greys |> List.exists (fun (g, c, _, _) -> g && c = 1)) "some grey JPEGs"
            Expect.isTrue (greys |> List.exists (fun (g, c, _, _) -> not g && c = 3)) "some RGB JPEGs"
            Expect.isGreaterThan (greys |> List.map (fun (_, _, w, h) -> w, h) |> List.distinct |> List.length) 30 "varied sizes"
            let sampler =
                TFDatasetMultiShotMemorySampler.LoadAsync(
                    TFDatasetSamplerOptions(
                        Load = TfdsLoadOptions(DatasetName = "synthetic_photos", DataDir = dir.Path, CacheDir = Path.Combine(dir.Path, "cache"), Download = null,
                                               Preprocess = ImagePreprocessing.Resize(64, 64, output = DType.UInt8)),
                        ClassesPerBatch = 4, ExamplesPerClassPerBatch = 2, Seed = 3UL,
                        Augmenter = ImageAugmenter.SimClr(32, 32), NumAugmentationsPerExample = 2)).GetAwaiter().GetResult()
            Expect.equal sampler.NumExamples 32 "train + test"
            Expect.equal (Seq.toArray sampler.ExampleShape) [| 64; 64; 3 |] "resized table"
            Expect.equal (sampler.ClassNames |> Seq.toList) (Samplers.DatasetGen.SyntheticPhotos.ClassNames |> Seq.toList) "class names"
            use b = sampler.[0]
            Expect.equal (b.Shape.ToArray()) [| 16; 32; 32; 3 |] "2 views of 8 rows"
            Expect.equal (b.Y.Slice(0, 8).ToArray()) (b.Y.Slice(8, 8).ToArray()) "views grouped"
    ]

let grid =
    testList "batch grid" [
        testCase "a PNG grid: one row per class, each example then its views, pixels exact, labels drawn" <| fun () ->
            use plain = (sampler null 0 11UL).GenerateBatch 1
            use views = (sampler (ImageAugmenter.SimClr(16, 16)) 2 11UL).GenerateBatch 1
            let names = [| "zero"; "one"; "two"; "three"; "four"; "five" |]
            let g = BatchGrid.Render(plain, names, views)
            let info = ImageDecoder.Measure(ReadOnlySpan g.Png)
            Expect.equal (info.Width, info.Height) (g.Width, g.Height) "size"
            let rgb = Array.zeroCreate<byte> (g.Width * g.Height * 3)
            ImageDecoder.Decode(ReadOnlySpan g.Png, Span rgb, 3) |> ignore
            let at x y k = rgb.[(y * g.Width + x) * 3 + k]
            Expect.equal g.Cells.Count 18 "6 examples + 12 views"
            Expect.equal (g.Cells |> Seq.map (fun c -> c.GridRow) |> Seq.distinct |> Seq.length) 3 "3 classes, 3 rows"
            let src = plain.ToArray<byte>()
            let vf = views.ToArray<float32>()
            for cell in g.Cells do
                let r = cell.BatchRow
                Expect.equal cell.SourceIndex plain.Indices.[r] "source index"
                // every row of the grid holds one class
                let rowClasses = g.Cells |> Seq.filter (fun c -> c.GridRow = cell.GridRow) |> Seq.map (fun c -> plain.ClassOrdinals.[c.BatchRow]) |> Seq.distinct
                Expect.equal (Seq.length rowClasses) 1 "one class per grid row"
                for y in 0 .. cell.Height - 1 do
                    for x in 0 .. cell.Width - 1 do
                        for k in 0 .. 2 do
                            let expected =
                                if cell.View < 0 then src.[((r * 40 + y) * 48 + x) * 3 + k]
                                else BatchGrid.Level(vf.[(((cell.View * 6 + r) * 16 + y) * 16 + x) * 3 + k], true)
                            if at (cell.X + x) (cell.Y + y) k <> expected then
                                failtest $"cell (row {r}, view {cell.View}) pixel ({x},{y},{k}): {at (cell.X + x) (cell.Y + y) k} <> {expected}"
            // The label band above the first cell has light (text) pixels on the dark background.
            let c0 = g.Cells.[0]
            let lit = [ for y in c0.Y - 15 .. c0.Y - 1 do for x in c0.X .. c0.X + 40 -> at x y 0 ] |> List.filter (fun v -> v > 120uy) |> List.length
            Expect.isGreaterThan lit 5 "text is drawn"

        testCase "grid errors name the mismatch" <| fun () ->
            use plain = (sampler null 0 11UL).GenerateBatch 1
            use other = (sampler (ImageAugmenter.SimClr(8, 8)) 1 12UL).GenerateBatch 1
            throwsWith<ArgumentException> (fun () -> BatchGrid.Render(plain, null, other) |> ignore) "augmenter's output" |> ignore
            let ints = new MultiShotMemorySampler(table10x8 (), SamplerOptions(ClassesPerBatch = 2))
            use b = ints.GenerateBatch 0
            throwsWith<ArgumentException> (fun () -> BatchGrid.Render(b) |> ignore) "int32" |> ignore
            use five = (sampler null 0 11UL).GetSlice(0, 5)
            throwsWith<ArgumentException> (fun () -> BatchGrid.Render(plain, null, five) |> ignore) "not a whole number of views" |> ignore

        testCase "WritePng writes the file atomically" <| fun () ->
            use d = new TempDir()
            use plain = (sampler null 0 11UL).GenerateBatch 1
            let path = Path.Combine(d.Path, "grid.png")
            let g = BatchGrid.RenderWithViews(plain, ImageAugmenter.SimClr(16, 16), 2)
            BatchGrid.WritePng(path, g)
            Expect.equal (File.ReadAllBytes path) g.Png "bytes"
            Expect.equal g.Cells.Count 18 "the batch is rendered with 2 views of its own rows"
            Expect.isFalse plain.IsDisposed "the caller's batch stays the caller's"
            Expect.equal (Directory.GetFiles d.Path).Length 1 "no temp file left"
    ]

[<Tests>]
let tests = testList "Facade.ImageAugment" [ reproducible; ops; photos; grid ]
