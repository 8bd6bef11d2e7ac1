/// Lazy examples (the reference's load_example_fn): LazyExampleTable, ExampleCache, ImageFolder.
module Samplers.Tests.Facade.LazyTests

open System
open System.IO
open System.Threading
open System.Threading.Tasks
open Expecto
open SkiaSharp
open Samplers
open Samplers.Imaging
open Samplers.Tfds
open Samplers.Tests.TestUtil

/// A w x h picture, class-dependent, encoded as JPEG (RGB or grey) or PNG (RGB).
let private picture (cls: int) (i: int) (w: int) (h: int) (format: string) =
    let px = Array.init (w * h * 3) (fun k ->
        let p, c = k / 3, k % 3
        let x, y = p % w, p / w
        byte ((x * 255 / w * (c + 1) + y * 255 / h + cls * 40 + i * 7) % 256))
    match format with
    | "png" -> PngEncoder.Encode(ReadOnlySpan px, w, h, PngColorType.Rgb, PngEncodeOptions())
    | _ ->
        let grey = format = "grey"
        let info = SKImageInfo(w, h, (if grey then SKColorType.Gray8 else SKColorType.Rgba8888), (if grey then SKAlphaType.Opaque else SKAlphaType.Unpremul))
        use bmp = new SKBitmap(info)
        let buf = if grey then Array.init (w * h) (fun p -> px.[p * 3]) else Array.init (w * h * 4) (fun k -> if k % 4 = 3 then 255uy else px.[(k / 4) * 3 + k % 4])
        Runtime.InteropServices.Marshal.Copy(buf, 0, bmp.GetPixels(), buf.Length)
        use data = bmp.Encode(SKEncodedImageFormat.Jpeg, 90)
        data.ToArray()

/// root/<class>/...: classes created out of order, files of several sizes and formats, one nested folder, a non-image.
let private makeFolder (root: string) =
    let classes = [ "zebra"; "apple"; "Mango" ]
    for ci, cls in List.indexed classes do
        let dir = Path.Combine(root, cls)
        Directory.CreateDirectory(Path.Combine(dir, "sub")) |> ignore
        for i in [ 5; 1; 3; 0; 4; 2 ] do
            let fmt, ext = match (ci + i) % 3 with 0 -> "png", ".png" | 1 -> "grey", ".jpeg" | _ -> "rgb", ".JPG"
            let name = if i = 2 then Path.Combine("sub", $"img{i}{ext}") else $"img{i}{ext}"
            File.WriteAllBytes(Path.Combine(dir, name), picture ci i (12 + 3 * i) (10 + 2 * ci) fmt)
        File.WriteAllText(Path.Combine(dir, "notes.txt"), "not an image")
    root

let private opts seed = SamplerOptions(ClassesPerBatch = 2, ExamplesPerClassPerBatch = 3, StepsPerEpoch = 6, Seed = seed)

let private batchBytes (b: Batch) = b.XBytes.ToArray(), b.Y.ToArray(), b.Indices.ToArray(), b.Shape.ToArray()

let private allBatches (s: MultiShotMemorySampler) epoch =
    [ for id in 0 .. s.Count - 1 -> (use b = s.GenerateBatchAt(epoch, id) in batchBytes b) ]

let folder =
    testList "image folder" [
        testCase "classes are the sorted sub-folders, labels their index, files in path order, non-images skipped" <| fun () ->
            use t = new TempDir()
            let f = ImageFolder.Scan(makeFolder t.Path)
            Expect.equal (List.ofSeq f.ClassNames) [ "Mango"; "apple"; "zebra" ] "ordinal sort (upper case first)"
            Expect.equal f.Count 18 "6 images per class, .txt skipped, nested and upper-case extensions kept"
            Expect.equal (f.Labels.ToArray()) (Array.init 18 (fun i -> int64 (i / 6))) "labels = class index, grouped"
            let rel = f.Files |> Seq.map (fun p -> Path.GetRelativePath(t.Path, p).Replace('\\', '/')) |> List.ofSeq
            let stems = rel.[0..5] |> List.map (fun r -> Path.ChangeExtension(r, null))
            Expect.equal stems [ "Mango/img0"; "Mango/img1"; "Mango/img3"; "Mango/img4"; "Mango/img5"; "Mango/sub/img2" ] "ordinal path order, nested files included"
            Expect.isTrue (rel.[6].StartsWith "apple/") "then the next class"

        testCase "a missing folder or one without images is a DatasetNotFoundException naming it" <| fun () ->
            use t = new TempDir()
            let missing = Path.Combine(t.Path, "nope")
            Expect.throwsT<DatasetNotFoundException> (fun () -> ImageFolder.Scan(missing) |> ignore) "missing"
            let e2 = try ImageFolder.Scan(t.Path) |> ignore; None with :? DatasetNotFoundException as e -> Some e
            Expect.isSome e2 "empty"
            Expect.stringContains e2.Value.Message t.Path "names the folder"

        testCase "lazy and eager samplers give byte-identical batches, slices and GenerateBatchInto for one seed" <| fun () ->
            use t = new TempDir()
            let f = ImageFolder.Scan(makeFolder t.Path)
            let resize = ImagePreprocessing.Resize(8, 9, output = DType.UInt8)
            let eager = new MultiShotMemorySampler(f.Load(resize), opts 11UL)
            let lazyT = f.ToLazyTable(resize, ExampleCache(maxCount = 4))
            let lazyS = MultiShotMemorySampler.CreateLazy(lazyT, opts 11UL)
            Expect.equal (lazyS.ExampleShape |> List.ofSeq) [ 8; 9; 3 ] "shape from the preprocess"
            Expect.equal (List.ofSeq lazyS.ClassNames) (List.ofSeq eager.ClassNames) "class names"
            for epoch in 0 .. 1 do
                Expect.equal (allBatches lazyS epoch) (allBatches eager epoch) $"epoch {epoch}"
            (use a = lazyS.GetSlice(3, 7) in use b = eager.GetSlice(3, 7) in Expect.equal (batchBytes a) (batchBytes b) "slice")
            let xa, ya = Array.zeroCreate<byte> (6 * 8 * 9 * 3), Array.zeroCreate<int64> 6
            let xb, yb = Array.zeroCreate<byte> (6 * 8 * 9 * 3), Array.zeroCreate<int64> 6
            lazyS.GenerateBatchInto(2, Span xa, Span ya) |> ignore
            eager.GenerateBatchInto(2, Span xb, Span yb) |> ignore
            Expect.equal (xa, ya) (xb, yb) "GenerateBatchInto"
            Expect.isGreaterThan lazyT.Cache.Hits 0L "the cache served repeats"
            // The sampler's preprocess on a ragged lazy table (per batch) = the eager sampler's (once, up front).
            let p = SamplerOptions(ClassesPerBatch = 3, ExamplesPerClassPerBatch = 2, StepsPerEpoch = 4, Seed = 5UL, Preprocess = resize)
            // Without any resize, mixed sizes are a RaggedBatchException naming the table rows, as for an eager table.
            let raw = MultiShotMemorySampler.CreateLazy(f.ToLazyTable(), SamplerOptions(ClassesPerBatch = 3, ExamplesPerClassPerBatch = 2, StepsPerEpoch = 4, Seed = 5UL))
            let re = try (use _b = raw.[0] in None) with :? RaggedBatchException as e -> Some e
            let plan = raw.Planner.Plan({ Samplers.Core.PlanKey.Seed = 5UL; Epoch = 0; BatchId = 0 })
            Expect.stringContains re.Value.Message $"example {plan.Indices.Span.[0]})" "names the table row, not the batch position"
            let eager2 = new MultiShotMemorySampler(f.Load(), p)
            let lazy2 = MultiShotMemorySampler.CreateLazy(f.ToLazyTable(), p)
            Expect.equal (allBatches lazy2 0) (allBatches eager2 0) "options.Preprocess"

        testCase "the folder written as TFDS loads back (TfdsLoader, Parquet cache) with the same examples" <| fun () ->
            use t = new TempDir()
            let f = ImageFolder.Scan(makeFolder (Path.Combine(t.Path, "images")))
            let data = Path.Combine(t.Path, "data")
            let vdir = f.WriteTfds(data, "my_images")
            Expect.isTrue (File.Exists(Path.Combine(vdir, "dataset_info.json"))) "TFDS layout"
            let eager = f.Load()
            for attempt in 1 .. 2 do // the second load comes from the Parquet cache
                let r =
                    TfdsLoader.LoadAsync(TfdsLoadOptions(DatasetName = "my_images", DataDir = data, CacheDir = Path.Combine(t.Path, "cache"), Splits = [| "train" |], Download = null)).Result
                let tbl = r.Table
                Expect.equal tbl.Count eager.Count $"count ({attempt})"
                Expect.equal (List.ofSeq tbl.ClassNames) (List.ofSeq f.ClassNames) "class names"
                for i in 0 .. eager.Count - 1 do
                    Expect.equal (tbl.Labels.[i]) (eager.Labels.[i]) $"label {i}"
                    Expect.equal (tbl.GetShape(i).ToArray()) (eager.GetShape(i).ToArray()) $"shape {i}"
                    Expect.isTrue (tbl.GetExample(i).SequenceEqual(eager.GetExample(i))) $"pixels {i} ({attempt})"
    ]

let errors =
    testList "errors" [
        testCase "a corrupt file fails only the batches that need it, names the file and row, and is not cached" <| fun () ->
            use t = new TempDir()
            let root = makeFolder t.Path
            let f0 = ImageFolder.Scan(root)
            let bad = f0.Files.[7]
            File.WriteAllBytes(bad, Array.init 300 (fun i -> byte i)) // not an image
            let f = ImageFolder.Scan(root)
            let lazyT = f.ToLazyTable(ImagePreprocessing.Resize(6, 6, output = DType.UInt8))
            let s = MultiShotMemorySampler.CreateLazy(lazyT, SamplerOptions(ClassesPerBatch = 2, ExamplesPerClassPerBatch = 4, StepsPerEpoch = 12, Seed = 2UL))
            let mutable ok, failed = 0, 0
            for id in 0 .. s.Count - 1 do
                try
                    use b = s.[id]
                    Expect.isFalse (b.Indices.ToArray() |> Array.contains 7) "a batch with row 7 cannot succeed"
                    ok <- ok + 1
                with :? ExampleLoadException as e ->
                    failed <- failed + 1
                    Expect.equal e.Row 7 "row"
                    Expect.stringContains e.Message bad "names the file"
                    Expect.stringContains e.Message "Row 7" "names the row"
                    Expect.equal e.FilePath bad "FilePath"
                    Expect.isTrue (e :> exn :? SamplersDataException) "SamplersDataException family"
                    let mutable cached = Unchecked.defaultof<LoadedExample>
                    Expect.isFalse (lazyT.Cache.TryGet(7, &cached)) "the failure is not cached"
            Expect.isGreaterThan ok 0 "other batches work"
            Expect.isGreaterThan failed 0 "some batch needs the bad row"
            // Eager load and the TFDS writer report the same file; the writer writes nothing.
            let el = try f.Load() |> ignore; None with :? ExampleLoadException as e -> Some e
            Expect.stringContains el.Value.Message bad "eager load names the file"
            let data = Path.Combine(t.Path, "out")
            let ew = try f.WriteTfds(data, "x") |> ignore; None with :? ExampleLoadException as e -> Some e
            Expect.stringContains ew.Value.Message bad "writer names the file"
            Expect.isFalse (Directory.Exists(Path.Combine(data, "x"))) "nothing written"

        testCase "a loader returning the wrong shape or size, or throwing, is an ExampleLoadException naming the key" <| fun () ->
            let keys = [| "k0"; "k1"; "k2" |]
            let load (k: string) =
                match k with
                | "k0" -> LoadedExample(Array.zeroCreate 4, [| 2; 2 |])
                | "k1" -> LoadedExample(Array.zeroCreate 5, [| 2; 2 |])
                | _ -> raise (IOException "disk on fire")
            let lt = LazyExampleTable.Create(keys, ReadOnlySpan [| 0L; 1L; 1L |], DType.UInt8, ReadOnlySpan [| 2; 2 |], Func<_, _> load)
            Expect.equal (lt.Load(0).Data.Length) 4 "good row"
            let e1 = try lt.Load(1) |> ignore; None with :? ExampleLoadException as e -> Some e
            Expect.stringContains e1.Value.Message "k1" "key"
            Expect.stringContains e1.Value.Message "needs 4" "size"
            let e2 = try lt.Load(2) |> ignore; None with :? ExampleLoadException as e -> Some e
            Expect.stringContains e2.Value.Message "disk on fire" "inner message"
            Expect.equal e2.Value.Key "k2" "Key"
            let wrong = LazyExampleTable.Create(keys, ReadOnlySpan [| 0L; 1L; 1L |], DType.UInt8, ReadOnlySpan [| 3; 2 |], Func<_, _> load)
            let e3 = try wrong.Load(0) |> ignore; None with :? ExampleLoadException as e -> Some e
            Expect.stringContains e3.Value.Message "does not fit the declared shape [3, 2]" "shape"
    ]

let cache =
    testList "cache" [
        testCase "the cache keeps its byte and count bounds and drops a row not used since the last sweep first" <| fun () ->
            let c = ExampleCache(maxBytes = 100L, maxCount = 3)
            let ex n = LoadedExample(Array.zeroCreate n, [| n |])
            c.Add(0, ex 40); c.Add(1, ex 40)
            let mutable got = Unchecked.defaultof<LoadedExample>
            Expect.isTrue (c.TryGet(0, &got)) "0 present"
            c.Add(2, ex 40) // 120 > 100: evicts 1 (0 was used more recently)
            Expect.isFalse (c.TryGet(1, &got)) "1 evicted"
            Expect.isTrue (c.TryGet(0, &got)) "0 kept"
            Expect.isLessThanOrEqual c.Bytes 100L "byte bound"
            c.Add(3, ex 10); c.Add(4, ex 10)
            Expect.isLessThanOrEqual c.Count 3 "count bound"
            c.Add(5, ex 101)
            Expect.isFalse (c.TryGet(5, &got)) "an example over the byte bound is not kept"
            Expect.isGreaterThan c.Evictions 0L "evictions counted"

        testCase "rows in use survive a long run of new rows; Clear empties the cache; a negative row is refused" <| fun () ->
            // Room for 10 rows of 8 bytes; rows 0 and 1 are looked up between every two adds of new rows.
            let c = ExampleCache(maxBytes = 80L)
            let ex () = LoadedExample(Array.zeroCreate 8, [| 8 |])
            let mutable got = Unchecked.defaultof<LoadedExample>
            c.Add(0, ex ()); c.Add(1, ex ())
            for row in 2 .. 2000 do
                c.Add(row, ex ())
                Expect.isTrue (c.TryGet(0, &got) && c.TryGet(1, &got)) $"rows 0 and 1 held after adding row {row}"
                Expect.isLessThanOrEqual c.Bytes 80L "byte bound"
            Expect.equal c.Count 10 "full"
            Expect.equal c.Evictions 1991L "each add past the tenth row dropped one row, never 0 or 1"
            Expect.isTrue (c.TryGet(2000, &got)) "the newest row is held"
            Expect.isFalse (c.TryGet(1990, &got)) "an old unused row is not"
            // A row number far beyond the others is fine (the row map grows).
            c.Add(1_000_000, ex ())
            Expect.isTrue (c.TryGet(1_000_000, &got)) "a large row number"
            c.Clear()
            Expect.equal (c.Count, c.Bytes) (0, 0L) "Clear empties it"
            Expect.isFalse (c.TryGet(0, &got)) "nothing held after Clear"
            c.Add(3, ex ())
            Expect.isTrue (c.TryGet(3, &got)) "usable after Clear"
            Expect.throwsT<ArgumentOutOfRangeException> (fun () -> c.Add(-1, ex ())) "rows are a table's row numbers"

        testCase "a lazy sampler loads each row once while it fits, and respects the bound when it does not" <| fun () ->
            let n = 40
            let calls = Array.zeroCreate<int> n
            let load (k: int) =
                Interlocked.Increment(&calls.[k]) |> ignore
                LoadedExample(Array.init 16 (fun i -> byte (k + i)), [| 4; 4 |])
            let labels = Array.init n (fun i -> int64 (i % 5))
            let run (c: ExampleCache) =
                Array.Clear calls
                let lt = LazyExampleTable.Create(Array.init n id, ReadOnlySpan labels, DType.UInt8, ReadOnlySpan [| 4; 4 |], Func<_, _> load, cache = c)
                let s = MultiShotMemorySampler.CreateLazy(lt, SamplerOptions(ClassesPerBatch = 2, ExamplesPerClassPerBatch = 4, StepsPerEpoch = 30, Seed = 9UL))
                for e in 0 .. 2 do allBatches s e |> ignore
                lt
            let big = run (ExampleCache())
            Expect.isTrue (calls |> Array.forall (fun k -> k <= 1)) "each row loaded at most once"
            Expect.equal big.Cache.Misses (int64 (Array.sum calls)) "one miss counted per load (a batch's lookup and its load's do not both count)"
            let small = run (ExampleCache(maxBytes = 16L * 5L))
            Expect.isLessThanOrEqual small.Cache.Bytes 80L "byte bound"
            Expect.isLessThanOrEqual small.Cache.Count 5 "5 examples fit"
            Expect.isGreaterThan (Array.sum calls) n "evicted rows are loaded again"
            let none = run ExampleCache.None
            Expect.equal none.Cache.Count 0 "no cache keeps nothing"
            let e = try run big.Cache |> ignore; None with :? ArgumentException as e -> Some e
            Expect.stringContains e.Value.Message "already serves another lazy table" "one cache per table"
    ]

let concurrency =
    testList "concurrency" [
        testCase "several threads on the indexer of a lazy sampler (small cache, async loader) get the eager batches" <| fun () ->
            use t = new TempDir()
            let f = ImageFolder.Scan(makeFolder t.Path)
            let resize = ImagePreprocessing.Resize(7, 7, output = DType.UInt8)
            let o = SamplerOptions(ClassesPerBatch = 3, ExamplesPerClassPerBatch = 2, StepsPerEpoch = 10, Seed = 4UL)
            let expected = allBatches (new MultiShotMemorySampler(f.Load(resize), o)) 0 |> Array.ofList
            let asyncLoad (p: string) (ct: CancellationToken) =
                ValueTask<LoadedExample>(task {
                    do! Task.Yield()
                    return ImageFolder.DecodeFile(p, 3, resize) })
            let lt = LazyExampleTable.CreateAsync(f.Files, f.Labels, DType.UInt8, ReadOnlySpan [| 7; 7; 3 |], Func<_, _, _> asyncLoad, f.ClassNames, ExampleCache(maxCount = 3))
            let s = MultiShotMemorySampler.CreateLazy(lt, o)
            let results =
                [| for th in 0 .. 3 -> Task.Run(fun () ->
                    [ for rep in 0 .. 2 do
                        for k in 0 .. s.Count - 1 do
                            let id = (k * (th + 1) + rep) % s.Count
                            use b = s.[id]
                            yield id, batchBytes b ]) |]
            Task.WaitAll(results |> Array.map (fun t -> t :> Task))
            for r in results do
                for id, got in r.Result do Expect.equal got expected.[id] $"batch {id}"
            // The async path gives the same rows as the sync one.
            let rows = [| 3; 0; 3; 17 |]
            let a = lt.LoadRowsAsync(rows).Result
            let b = lt.LoadRows(ReadOnlySpan rows)
            for i in 0 .. 3 do Expect.isTrue (a.GetExample(i).SequenceEqual(b.GetExample(i))) $"row {i}"
            Expect.equal (a.Labels.ToArray()) [| 0L; 0L; 0L; 2L |] "labels"
    ]

[<Tests>]
let tests = testList "Facade.Lazy" [ folder; errors; cache; concurrency ]
