/// The loader decodes and preprocesses in one pass; a preprocess with a declared identity is cached
/// preprocessed under a key that includes it; reduced-size JPEG decoding; --resize on the CLI.
module Samplers.Tests.Io.FusedLoadTests

open System
open System.IO
open System.Threading
open Expecto
open Samplers
open Samplers.Cache
open Samplers.DatasetGen
open Samplers.Imaging
open Samplers.Tfds
open Samplers.Tests.TestUtil
open Samplers.Tests.Io.LoaderTests

let photos (dir: string) minSide maxSide = SyntheticPhotos.Write(dir, 12, 4, minSide, maxSide, 2) |> ignore

let photoOptions (data: string) (cache: string) (pp: IExamplePreprocessor) =
    TfdsLoadOptions(DatasetName = "synthetic_photos", DataDir = data, CacheDir = cache, Download = null, Preprocess = pp)

let loadO (o: TfdsLoadOptions) = TfdsLoader.LoadAsync(o).GetAwaiter().GetResult()

/// `o with { Preprocess = pp; ReducedJpegDecode = reduced }` (F# has no copy syntax for C# records).
let withPp (pp: IExamplePreprocessor) (reduced: bool) (o: TfdsLoadOptions) =
    TfdsLoadOptions(DatasetName = o.DatasetName, DataDir = o.DataDir, Splits = o.Splits, CacheDir = o.CacheDir, UseCache = o.UseCache,
                    XKey = o.XKey, YKey = o.YKey, MaxDegreeOfParallelism = o.MaxDegreeOfParallelism, ChunkBytes = o.ChunkBytes,
                    Download = o.Download, Preprocess = pp, ReducedJpegDecode = reduced)

let parquetFiles (dir: string) = cacheFiles dir |> Array.filter (fun f -> f.EndsWith ".parquet") |> Array.map Path.GetFileName |> Array.sort

/// A preprocess with a chosen identity: copies the first `n` bytes, adding `bump` to each (so versions can differ in output).
let custom (identity: PreprocessIdentity) (bump: byte) (calls: int ref) =
    { new IExamplePreprocessor with
        member _.OutputDType _ = DType.UInt8
        member _.OutputShape _ = [| 4 |]
        member _.Process(x, _, _, o, _) =
            Interlocked.Increment calls |> ignore
            for i in 0 .. 3 do o[i] <- x[i] + bump
        member _.Identity = identity }

let identityTests =
    testList "identity" [
        testCase "built-in preprocesses declare a stable identity; user code and chains with user code do not" <| fun () ->
            let r = ImagePreprocessing.Resize(224, 224)
            Expect.equal (string r.Identity) "resize(224,224,bilinear,antialias=false,float32)#v1" "resize"
            Expect.equal r.Identity (ImagePreprocessing.Resize(224, 224).Identity) "equal by value"
            Expect.notEqual r.Identity (ImagePreprocessing.Resize(224, 224, antialias = true).Identity) "antialias is part of it"
            Expect.equal (string (ImagePreprocessing.CenterCrop(3, 4).Identity)) "center_crop(3,4)#v1" "crop"
            Expect.stringStarts (string (ImagePreprocessing.ResizeWithPad(8, 8).Identity)) "resize_with_pad(8,8," "pad"
            Expect.stringStarts (string (Preprocessing.Normalize([| 0.5f |], [| 2f |]).Identity)) "normalize(mean=[0.5],std=[2]" "normalize"
            Expect.isNotNull (Preprocessing.ToFloat32().Identity) "to float"
            Expect.isNotNull (Preprocessing.ResizeNearest(2, 2).Identity) "nearest copy"
            let chain = ImagePreprocessing.Resize(4, 4).Then(Preprocessing.Normalize([| 0f |], [| 1f |]))
            Expect.equal (string chain.Identity) $"then({ImagePreprocessing.Resize(4, 4).Identity},{Preprocessing.Normalize([| 0f |], [| 1f |]).Identity})#v1" "chain"
            let user = Preprocessing.Create<byte, byte>(ReadOnlySpan [| 1 |], PreprocessAction<byte, byte>(fun x _ o _ -> o[0] <- x[0]))
            Expect.isNull user.Identity "a delegate has none"
            Expect.isNull (ImagePreprocessing.Resize(4, 4).Then(user).Identity) "nor a chain that holds one"

        testCase "PreprocessIdentity refuses an empty name, control characters and a version below 1" <| fun () ->
            throwsWith<ArgumentException> (fun () -> PreprocessIdentity("", 1) |> ignore) "empty" |> ignore
            throwsWith<ArgumentException> (fun () -> PreprocessIdentity("a\u001fb", 1) |> ignore) "separator" |> ignore
            throwsWith<ArgumentOutOfRangeException> (fun () -> PreprocessIdentity("a", 0) |> ignore) "version 0" |> ignore

        testCase "the cache key holds the preprocess; without one it is the key of before (existing files stay valid)" <| fun () ->
            let plain = CacheKey("d", "ds", "", "1.0.0", "train", "image", "label")
            Expect.equal plain.Canonical (String.Join("\u001f", [| "samplers-cache-key-v1"; Path.GetFullPath "d"; "ds"; ""; "1.0.0"; "train"; "image"; "label" |])) "unchanged"
            let keyWith pp = CacheKey("d", "ds", "", "1.0.0", "train", "image", "label", pp)
            let pre = keyWith "resize(2,2,bilinear,antialias=false,uint8)#v1"
            Expect.notEqual pre.Hash plain.Hash "another hash"
            Expect.stringContains pre.FileName "resize_2_2_bilinear_antialias=false_uint8_" "readable file name"
            Expect.notEqual (keyWith "resize(2,2,bilinear,antialias=false,uint8)#v2").FileName pre.FileName "the version too"

        testCase "the cache key names the JPEG decoder when it is not the original one; PNG and non-image keys never change" <| fun () ->
            let plain = CacheKey("d", "ds", "", "1.0.0", "train", "image", "label")
            Expect.equal (CacheKey("d", "ds", "", "1.0.0", "train", "image", "label", "", "")).Canonical plain.Canonical "an empty decoder is the key of before"
            let turbo = CacheKey("d", "ds", "", "1.0.0", "train", "image", "label", "", "jpeg=libturbojpeg-fast-idct")
            Expect.notEqual turbo.Hash plain.Hash "another decoder, another file"
            Expect.stringEnds turbo.Canonical "\u001fdecoder=jpeg=libturbojpeg-fast-idct" "in the canonical key"
            let codec = Samplers.SkiaSharp.SkiaImageCodec()
            let expected = if codec.Backend.StartsWith "libturbojpeg" then "libturbojpeg-fast-idct" else ""
            Expect.equal (codec :> IImageCodec).CacheIdentity expected $"identity of the {codec.Backend} path"
            let image fmt = FeatureSpec("image", FeatureKind.Image, "Image", DType.UInt8, [| -1; -1; 3 |], EncodingFormat = fmt)
            let jpegKey = TfdsCacheEntry.DecoderKey(image "jpeg")
            Expect.equal jpegKey (if expected = "" then "" else "jpeg=" + expected) "a JPEG feature is keyed by the decoder in use"
            Expect.equal (TfdsCacheEntry.DecoderKey(image null)) jpegKey "an undeclared encoding may be JPEG"
            Expect.equal (TfdsCacheEntry.DecoderKey(image "png")) "" "PNG: the library's own lossless decoder"
            Expect.equal (TfdsCacheEntry.DecoderKey(FeatureSpec("label", FeatureKind.ClassLabel, "ClassLabel", DType.Int64, [||]))) "" "not an image"
            Expect.equal (TfdsCacheEntry.DecoderKey null) "" "no feature"
            // And the loader writes its cache under that key (a JPEG dataset).
            use data = new TempDir()
            use cache = new TempDir()
            photos data.Path 20 30
            let o = photoOptions data.Path cache.Path (ImagePreprocessing.Resize(8, 8, output = DType.UInt8))
            let r = loadO o
            let spec = r.Builder.FindFeature "image"
            let key = CacheKey(data.Path, "synthetic_photos", "", "1.0.0", "train,test", "image", "label", TfdsCacheEntry.PreprocessKey(o, spec), jpegKey)
            Expect.equal (Path.GetFileName r.CachePath) key.FileName "the stored file is the key with the decoder"
    ]

let cacheTests =
    testList "cache" [
        testCase "a declared preprocess is stored preprocessed; the second load reads the small table" <| fun () ->
            use data = new TempDir()
            use cache = new TempDir()
            photos data.Path 40 90
            let o = photoOptions data.Path cache.Path (ImagePreprocessing.Resize(16, 16, output = DType.UInt8))
            let first = loadO o
            Expect.isFalse first.FromCache "decoded"
            Expect.equal (first.Table.ExampleShape.ToArray()) [| 16; 16; 3 |] "resized table"
            Expect.equal (parquetFiles cache.Path).Length 1 "one file: the preprocessed table, not the decoded one"
            Expect.stringContains (Path.GetFileName first.CachePath) "resize_16_16" "its name says so"
            let second = loadO o
            Expect.isTrue second.FromCache "read from the cache"
            sameTable first.Table second.Table "the same table"
            Expect.equal second.Table.DType DType.UInt8 "uint8"
            // The decoded (ragged) table was never cached: a load without the preprocess decodes.
            let raw = loadO (withPp null false o)
            Expect.isFalse raw.FromCache "no decoded cache was written"

        testCase "a ragged JPEG set resized with a declared preprocess can be mapped: the cache file has the fixed output shape" <| fun () ->
            use data = new TempDir()
            use cache = new TempDir()
            photos data.Path 40 90
            let pp = ImagePreprocessing.Resize(16, 16, output = DType.UInt8)
            let o = TfdsLoadOptions(DatasetName = "synthetic_photos", DataDir = data.Path, CacheDir = cache.Path, Download = null, Preprocess = pp, Table = TableBacking.Mapped)
            let first = loadO o
            Expect.equal first.Table.Backing TableBacking.Mapped "reopened mapped after the store"
            let second = loadO o
            Expect.isTrue second.FromCache "from the cache"
            Expect.equal second.Table.Backing TableBacking.Mapped "mapped"
            sameTable (loadO (withPp pp false (TfdsLoadOptions(DatasetName = "synthetic_photos", DataDir = data.Path, UseCache = false, Download = null)))).Table second.Table "the same rows as a one-pass load"
            // Without the declared identity, the cached data is ragged and cannot be mapped.
            let user = Preprocessing.Create<byte, byte>(ReadOnlySpan [| 1 |], PreprocessAction<byte, byte>(fun x _ o _ -> o[0] <- x[0]))
            let e = throwsWith<ArgumentException> (fun () -> loadO (TfdsLoadOptions(DatasetName = "synthetic_photos", DataDir = data.Path, CacheDir = cache.Path, Download = null, Preprocess = user, Table = TableBacking.Mapped)) |> ignore) "ragged"
            Expect.stringContains e.Message "ragged" "says why"

        testCase "identity change: another resize is another key, and the first file still serves the first" <| fun () ->
            use data = new TempDir()
            use cache = new TempDir()
            photos data.Path 40 90
            let a = photoOptions data.Path cache.Path (ImagePreprocessing.Resize(16, 16, output = DType.UInt8))
            loadO a |> ignore
            let b = loadO (withPp (ImagePreprocessing.Resize(12, 16, output = DType.UInt8)) false a)
            Expect.isFalse b.FromCache "another identity misses"
            Expect.equal (b.Table.ExampleShape.ToArray()) [| 12; 16; 3 |] "and is computed"
            let c = loadO (withPp (ImagePreprocessing.Resize(16, 16, output = DType.Float32)) false a)
            Expect.isFalse c.FromCache "the output dtype is part of the identity"
            Expect.isTrue (loadO a).FromCache "the first is still cached"
            Expect.equal (parquetFiles cache.Path).Length 3 "three files"

        testCase "version change: the same name with another version is rebuilt, never served stale" <| fun () ->
            use data = new TempDir()
            use cache = new TempDir()
            writeToy data.Path digitFeatures [ "train", [ toyDigits 20 ] ] |> ignore
            let calls = ref 0
            let o v bump = TfdsLoadOptions(DatasetName = "toy", DataDir = data.Path, CacheDir = cache.Path, Download = null, Splits = strs [ "train" ], Preprocess = custom (PreprocessIdentity("first4", v)) bump calls)
            let v1 = loadO (o 1 0uy)
            Expect.equal calls.Value 20 "computed once per example"
            Expect.isTrue (loadO (o 1 0uy)).FromCache "v1 again: cached"
            Expect.equal calls.Value 20 "not computed again"
            let v2 = loadO (o 2 1uy)
            Expect.isFalse v2.FromCache "v2 misses"
            Expect.equal calls.Value 40 "computed again"
            Expect.equal (v2.Table.GetExample(3).ToArray()) (v1.Table.GetExample(3).ToArray() |> Array.map (fun b -> b + 1uy)) "v2's output"
            Expect.isTrue (loadO (o 2 1uy)).FromCache "v2 cached"

        testCase "source change: a rewritten shard makes the preprocessed cache stale" <| fun () ->
            use data = new TempDir()
            use cache = new TempDir()
            let vdir = writeToy data.Path digitFeatures [ "train", [ toyDigits 20 ] ]
            let o = TfdsLoadOptions(DatasetName = "toy", DataDir = data.Path, CacheDir = cache.Path, Download = null, Splits = strs [ "train" ], Preprocess = Preprocessing.ResizeNearest(4, 4))
            loadO o |> ignore
            Expect.isTrue (loadO o).FromCache "cached"
            let shard = Path.Combine(vdir, "toy-train.tfrecord-00000-of-00001")
            TfRecordWriter.WriteFile(shard, [ for i in 0 .. 19 -> digitExample ((i + 1) % 10) (uint64 i) ]) |> ignore
            File.SetLastWriteTimeUtc(shard, DateTime.UtcNow.AddMinutes 1.0)
            let again = loadO o
            Expect.isFalse again.FromCache "stale: decoded again"
            Expect.stringContains again.CacheDetail "the source changed" "the reason"
            Expect.equal again.Table.Labels[0] 1L "the new data"

        testCase "an undeclared preprocess never writes a preprocessed cache: the decoded data is cached and it runs after every load" <| fun () ->
            use cache = new TempDir()
            let calls = ref 0
            let user = Preprocessing.Create<byte, byte>(ReadOnlySpan [| 2 |], PreprocessAction<byte, byte>(fun x _ o _ -> Interlocked.Increment calls |> ignore; o[0] <- x[400]; o[1] <- x[401]))
            let o = toOptions (options (embeddedDataDir ()) "synthetic_digits" [ "test[:50]" ] cache.Path)
            let first = loadO (withPp user false o)
            Expect.equal (first.Table.ExampleShape.ToArray()) [| 2 |] "preprocessed result"
            Expect.equal calls.Value 50 "once per example"
            let files = parquetFiles cache.Path
            Expect.equal files.Length 1 "one file"
            Expect.isFalse (files[0].Contains "preprocess") "no preprocess in its name"
            let plain = loadO o
            Expect.isTrue plain.FromCache "it is the decoded table's file"
            Expect.equal plain.CachePath first.CachePath "the same path"
            Expect.equal (plain.Table.ExampleShape.ToArray()) [| 28; 28; 1 |] "holding decoded examples"
            let second = loadO (withPp user false o)
            Expect.isTrue second.FromCache "from the decoded cache"
            Expect.equal calls.Value 100 "and preprocessed again"
            sameTable first.Table second.Table "same result"
            Expect.equal (parquetFiles cache.Path).Length 1 "still one file"
    ]

let fusedTests =
    testList "one pass" [
        testCase "decoding and preprocessing in one pass gives the table of decode-all-then-Apply, for any worker count" <| fun () ->
            use data = new TempDir()
            photos data.Path 30 70
            let pp = ImagePreprocessing.Resize(20, 24, ResizeMethod.Area, output = DType.Float32).Then(Preprocessing.Normalize([| 100f; 110f; 120f |], [| 50f; 60f; 70f |]))
            let raw = loadO (TfdsLoadOptions(DatasetName = "synthetic_photos", DataDir = data.Path, UseCache = false, Download = null))
            Expect.isTrue raw.Table.IsRagged "photos of varying sizes"
            let expected = Preprocessing.Apply(raw.Table, pp)
            for workers in [ 1; 3 ] do
                let fused = loadO (TfdsLoadOptions(DatasetName = "synthetic_photos", DataDir = data.Path, UseCache = false, Download = null, Preprocess = pp, MaxDegreeOfParallelism = workers))
                sameTable expected fused.Table $"{workers} workers"

        testCase "a failing preprocess names the record and its tfds_id; a ragged output is refused before reading" <| fun () ->
            let bad = Preprocessing.Create<byte, byte>(ReadOnlySpan [| 1 |], PreprocessAction<byte, byte>(fun _ _ _ label -> if label = 3L then invalidOp "no threes"))
            let o = TfdsLoadOptions(DatasetName = "synthetic_digits", DataDir = embeddedDataDir (), Splits = strs [ "test[:40]" ], UseCache = false, Download = null, Preprocess = bad)
            let e = throwsWith<InvalidOperationException> (fun () -> loadO o |> ignore) "failing preprocess"
            Expect.stringContains e.Message "tfds_id synthetic_digits-test.tfrecord-00000-of-00001__" "names the example"
            Expect.stringContains e.Message "no threes" "and the cause"
            let ragged = { new IExamplePreprocessor with
                             member _.OutputDType d = d
                             member _.OutputShape s = s.ToArray()
                             member _.Process(_, _, _, _, _) = () }
            use d = new TempDir()
            photos d.Path 30 40
            let e = throwsWith<ArgumentException> (fun () -> loadO (TfdsLoadOptions(DatasetName = "synthetic_photos", DataDir = d.Path, UseCache = false, Download = null, Preprocess = ragged)) |> ignore) "ragged output"
            Expect.stringContains e.Message "fixed shape" "says why"

        testCase "the TFDS sampler takes its preprocess from Load only" <| fun () ->
            let o = TFDatasetSamplerOptions(Load = TfdsLoadOptions(DatasetName = "synthetic_digits", DataDir = embeddedDataDir (), UseCache = false, Download = null), Preprocess = Preprocessing.ToFloat32())
            let e = throwsWith<ArgumentException> (fun () -> TFDatasetMultiShotMemorySampler.LoadAsync(o).GetAwaiter().GetResult() |> ignore) "two places"
            Expect.stringContains e.Message "Load.Preprocess" "names the one place"
    ]

let reducedTests =
    testList "reduced JPEG decode" [
        testCase "ScaleFor picks the smallest DCT scale still at least the target, and nothing below 2x" <| fun () ->
            let jpeg, _ = SyntheticPhotos.Jpeg(1, 7UL, 200, 200)
            let info = ImageDecoder.Measure(ReadOnlySpan jpeg)
            Expect.equal (info.Height, info.Width) (200, 200) "a 200x200 photo"
            Expect.equal (ReducedJpeg.ScaleFor(ReadOnlySpan jpeg, info, 24, 24)) (Nullable(struct (25, 25))) "1/8"
            Expect.equal (ReducedJpeg.ScaleFor(ReadOnlySpan jpeg, info, 26, 40)) (Nullable(struct (50, 50))) "1/4"
            Expect.equal (ReducedJpeg.ScaleFor(ReadOnlySpan jpeg, info, 90, 100)) (Nullable(struct (100, 100))) "1/2"
            Expect.isFalse (ReducedJpeg.ScaleFor(ReadOnlySpan jpeg, info, 101, 50)).HasValue "less than 2x: full decode"

        testCase "on: large JPEGs decode reduced (close to, not equal to, the full decode) under their own cache key; off by default" <| fun () ->
            use data = new TempDir()
            use cache = new TempDir()
            photos data.Path 100 200
            let pp = ImagePreprocessing.Resize(24, 24, output = DType.Float32)
            let full = loadO (photoOptions data.Path cache.Path pp)
            let reduced = loadO (photoOptions data.Path cache.Path pp |> withPp pp true)
            Expect.isFalse reduced.FromCache "another key"
            Expect.notEqual reduced.CachePath full.CachePath "the key says reduced"
            let entry = TfdsCacheEntry.Resolve(photoOptions data.Path cache.Path pp |> withPp pp true)
            Expect.stringEnds entry.Key.Preprocess ";jpeg=reduced" "in the preprocess field"
            let mutable maxDiff, sum, n = 0.0f, 0.0, 0
            for i in 0 .. full.Table.Count - 1 do
                let a, b = full.Table.GetExample<float32>(i).ToArray(), reduced.Table.GetExample<float32>(i).ToArray()
                for k in 0 .. a.Length - 1 do
                    let d = abs (a[k] - b[k])
                    maxDiff <- max maxDiff d
                    sum <- sum + float d
                    n <- n + 1
            Expect.isGreaterThan maxDiff 0.0f "not the same pixels"
            Expect.isLessThan (sum / float n) 3.0 "mean difference under 3 levels"
            Expect.isTrue (loadO (photoOptions data.Path cache.Path pp |> withPp pp true)).FromCache "cached under its key"
            // Images less than twice the target decode in full: the same table.
            use small = new TempDir()
            photos small.Path 30 47
            let p2 = ImagePreprocessing.Resize(24, 24, output = DType.UInt8)
            let a = loadO (TfdsLoadOptions(DatasetName = "synthetic_photos", DataDir = small.Path, UseCache = false, Download = null, Preprocess = p2))
            let b = loadO (TfdsLoadOptions(DatasetName = "synthetic_photos", DataDir = small.Path, UseCache = false, Download = null, Preprocess = p2, ReducedJpegDecode = true))
            sameTable a.Table b.Table "below 2x nothing changes"
    ]

let fixedSizeTests =
    testList "reduced JPEG decode, fixed size" [
        testCase "a declared fixed size is decoded reduced too, and a JPEG of another size is still reported" <| fun () ->
            use data = new TempDir()
            let spec = FeatureSpec("image", FeatureKind.Image, "tensorflow_datasets.core.features.image_feature.Image", DType.UInt8, [| 200; 200; 3 |], EncodingFormat = "jpeg")
            let records = [ for i in 0 .. 5 -> ExampleBuilder().AddImage("image", fst (SyntheticPhotos.Jpeg(i % 3, uint64 i, 200, 200))).AddLabel("label", int64 (i % 3)).ToByteArray() ]
            writeToy data.Path [ spec; SyntheticDigits.LabelSpec ] [ "train", [ records ] ] |> ignore
            let o reduced = TfdsLoadOptions(DatasetName = "toy", DataDir = data.Path, Splits = strs [ "train" ], UseCache = false, Download = null,
                                            Preprocess = ImagePreprocessing.Resize(24, 24, output = DType.Float32), ReducedJpegDecode = reduced)
            let full, red = loadO (o false), loadO (o true)
            Expect.equal (red.Table.ExampleShape.ToArray()) [| 24; 24; 3 |] "output shape"
            let a = [| for i in 0 .. 5 -> full.Table.GetExample<float32>(i).ToArray() |] |> Array.concat
            let b = [| for i in 0 .. 5 -> red.Table.GetExample<float32>(i).ToArray() |] |> Array.concat
            Expect.notEqual a b "decoded at 1/8"
            Expect.isLessThan (Array.map2 (fun (x: float32) y -> float (abs (x - y))) a b |> Array.average) 3.0 "close"
            use bad = new TempDir()
            let wrong = [ ExampleBuilder().AddImage("image", fst (SyntheticPhotos.Jpeg(0, 1UL, 100, 100))).AddLabel("label", 0L).ToByteArray() ]
            writeToy bad.Path [ spec; SyntheticDigits.LabelSpec ] [ "train", [ wrong ] ] |> ignore
            let e = throwsWith<DataFormatException> (fun () -> loadO (TfdsLoadOptions(DatasetName = "toy", DataDir = bad.Path, Splits = strs [ "train" ], UseCache = false, Download = null, Preprocess = ImagePreprocessing.Resize(24, 24), ReducedJpegDecode = true)) |> ignore) "wrong size"
            Expect.stringContains e.Message "declares 200x200" "the declared-size error of a full decode"
    ]

let cliTests =
    testList "CLI --resize" [
        testCase "cache build --resize stores the resized table; run and export --resize read it" <| fun () ->
            use data = new TempDir()
            photos data.Path 30 60
            let cache = Path.Combine(data.Path, "cache")
            let cli = Samplers.Tests.Cli.CliTests.cli
            let common = [ "synthetic_photos"; "--data-dir"; data.Path; "--cache-dir"; cache; "--resize"; "16x20" ]
            let code, out, err = cli ([ "cache" ] @ common @ [ "build" ])
            Expect.equal code 0 $"built: {err}"
            Expect.stringContains out "resize_16_20" "the resized cache file"
            let code, out, _ = cli ([ "cache" ] @ common @ [ "build" ])
            Expect.equal code 0 "again"
            Expect.stringContains out "already built (hit)" "a hit"
            let code, _, err = cli ([ "run" ] @ common @ [ "-c"; "2"; "-e"; "2"; "-s"; "3" ])
            Expect.equal code 0 $"run: {err}"
            let npz = Path.Combine(data.Path, "out.npz")
            let code, _, err = cli ([ "export" ] @ common @ [ "--out"; npz; "-c"; "2"; "-e"; "2"; "-s"; "2" ])
            Expect.equal code 0 $"export: {err}"
            Expect.isTrue (File.Exists npz) "exported"
            Expect.equal (parquetFiles cache).Length 1 "one cache file for all three"
            let code, _, err = cli ([ "run" ] @ [ "synthetic_photos"; "--data-dir"; data.Path; "--resize"; "16" ])
            Expect.equal code 1 "usage error"
            Expect.stringContains err "HEIGHTxWIDTH" "names the format"
    ]

[<Tests>]
let tests = testList "Io.FusedLoad" [ identityTests; cacheTests; fusedTests; reducedTests; fixedSizeTests; cliTests ]
