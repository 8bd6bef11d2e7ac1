module Samplers.Tests.Io.LoaderTests

open System
open System.Collections.Generic
open System.IO
open System.Threading
open Expecto
open Samplers
open Samplers.Core
open Samplers.DatasetGen
open Samplers.Imaging
open Samplers.Tfds
open Samplers.Tests.TestUtil

// ---- helpers ----

let strs (xs: string list) = List.toArray xs :> IReadOnlyList<string>

let embeddedDataDir () = Path.Combine(repoRoot.Value, "data")

let embeddedDir () = Path.Combine(embeddedDataDir (), SyntheticDigits.Name, SyntheticDigits.Version)

let trainShard i = $"synthetic_digits-train.tfrecord-0000{i}-of-00002"
let testShard = "synthetic_digits-test.tfrecord-00000-of-00001"

/// Load settings as an F# record, so tests can vary them with `{ o with ... }` (C# records have no F# copy syntax).
type Opt =
    { DatasetName: string; DataDir: string; Splits: IReadOnlyList<string>; CacheDir: string; UseCache: bool
      XKey: string; YKey: string; MaxDegreeOfParallelism: int; ChunkBytes: int64; Download: TfdsDownloadHandler; Table: TableBacking }

let options (dataDir: string) (name: string) (splits: string list) (cacheDir: string) =
    { DatasetName = name; DataDir = dataDir; Splits = strs splits; CacheDir = cacheDir; UseCache = true
      XKey = "image"; YKey = "label"; MaxDegreeOfParallelism = 0; ChunkBytes = ExampleTable.DefaultChunkBytes; Download = null
      Table = TableBacking.Memory }

let toOptions (o: Opt) =
    TfdsLoadOptions(DatasetName = o.DatasetName, DataDir = o.DataDir, Splits = o.Splits, CacheDir = o.CacheDir, UseCache = o.UseCache,
                    XKey = o.XKey, YKey = o.YKey, MaxDegreeOfParallelism = o.MaxDegreeOfParallelism, ChunkBytes = o.ChunkBytes, Download = o.Download,
                    Table = o.Table)

let loadWith (o: Opt) (progress: IProgress<LoadProgress>) (ct: CancellationToken) =
    TfdsLoader.LoadAsync(toOptions o, progress, ct).GetAwaiter().GetResult()

let load (o: Opt) = loadWith o null CancellationToken.None

let syncProgress (f: LoadProgress -> unit) = { new IProgress<LoadProgress> with member _.Report v = f v }

let digitExample (label: int) (seed: uint64) =
    ExampleBuilder().AddImage("image", ProceduralDigits.DrawPng(label, seed)).AddLabel("label", int64 label).ToByteArray()

/// Writes dataset `toy:1.0.0` (image + label as in the embedded dataset, unless other features are given).
let writeToy (dataDir: string) (features: FeatureSpec list) (splits: (string * byte[] list list) list) =
    let vdir = Path.Combine(dataDir, "toy", "1.0.0")
    let w = TfdsDatasetWriter(vdir, "toy", "1.0.0", (features :> seq<FeatureSpec>))
    for (name, shards) in splits do
        let s = ResizeArray<IReadOnlyList<byte[]>>()
        for shard in shards do s.Add(ResizeArray shard :> IReadOnlyList<byte[]>)
        w.WriteSplit(name, (s :> IReadOnlyList<IReadOnlyList<byte[]>>)) |> ignore
    w.Complete()
    vdir

let digitFeatures = [ SyntheticDigits.ImageSpec; SyntheticDigits.LabelSpec ]

let toyDigits n = [ for i in 0 .. n - 1 -> digitExample (i % 10) (uint64 i) ]

let cacheFiles (dir: string) = if Directory.Exists dir then Directory.GetFiles dir else [||]

/// Decodes a record's PNG with StbImageSharp (an independent decoder) and returns (pixels, label).
let rawExample (path: string) (index: int) =
    let records = TfRecordReader.ReadAllRecords path
    let ex = ExampleDecoder.Parse(ReadOnlySpan records[index], RecordLocation(path, int64 index, 0L))
    let png = ex.Features.Feature["image"].BytesList.Value[0].ToByteArray()
    let img = StbImageSharp.ImageResult.FromMemory(png, StbImageSharp.ColorComponents.Grey)
    img.Data, ex.Features.Feature["label"].Int64List.Value[0]

let tableBytes (t: ExampleTable) = [| for i in 0 .. t.Count - 1 -> t.GetExample(i).ToArray() |]

/// Checks that two tables hold the same examples, labels, ids and class names.
let sameTable (a: ExampleTable) (b: ExampleTable) what =
    Expect.equal b.Count a.Count $"{what}: count"
    Expect.equal (b.Labels.ToArray()) (a.Labels.ToArray()) $"{what}: labels"
    Expect.equal [ for i in 0 .. b.Count - 1 -> b.GetId i ] [ for i in 0 .. a.Count - 1 -> a.GetId i ] $"{what}: ids"
    Expect.isTrue (tableBytes a = tableBytes b) $"{what}: example bytes"
    Expect.equal (List.ofSeq b.ClassNames) (List.ofSeq a.ClassNames) $"{what}: class names"

// ---- tests ----

let embeddedTests =
    testList "embedded dataset" [
        testCase "regenerating it writes the committed bytes exactly" <| fun () ->
            use d = new TempDir()
            let fresh = SyntheticDigits.Write d.Path
            let committed = embeddedDir ()
            let names dir = Directory.GetFiles dir |> Array.map Path.GetFileName |> Array.sort
            Expect.equal (names fresh) (names committed) "same files"
            for n in names fresh do
                let a = File.ReadAllBytes(Path.Combine(fresh, n))
                let b = File.ReadAllBytes(Path.Combine(committed, n))
                Expect.isTrue (a = b) $"{n}: same bytes (regenerate with: dotnet run --project tools/Samplers.DatasetGen -- data)"

        testCase "is small, has 10 named classes, 3000 train in 2 shards and 1000 test" <| fun () ->
            let dir = embeddedDir ()
            let bytes = Directory.GetFiles dir |> Array.sumBy (fun f -> FileInfo(f).Length)
            Expect.isLessThan bytes (3L * 1024L * 1024L) "under 3 MB"
            let ds = Catalog.Open(embeddedDataDir (), "synthetic_digits")
            Expect.equal ds.Version "1.0.0" "version"
            Expect.equal (ds.Info.Splits |> Seq.map (fun s -> s.Name, s.ShardLengths) |> List.ofSeq) [ "train", [| 1500L; 1500L |]; "test", [| 1000L |] ] "splits"
            Expect.equal (List.ofSeq (ds.FindFeature "label").ClassNames) [ "zero"; "one"; "two"; "three"; "four"; "five"; "six"; "seven"; "eight"; "nine" ] "names"
            Expect.equal (ds.FindFeature "image").Shape [| 28; 28; 1 |] "image shape"

        testCase "ships inside the assembly: EmbeddedDatasets.SyntheticDigits writes the committed bytes once, atomically, and loads offline" <| fun () ->
            use d = new TempDir()
            let o = EmbeddedDatasets.SyntheticDigits d.Path
            Expect.equal o.DatasetName "synthetic_digits" "name"
            Expect.isNull (box o.Download) "never downloads"
            let version = Path.Combine(o.DataDir, "synthetic_digits", "1.0.0")
            let names dir = Directory.GetFiles dir |> Array.map Path.GetFileName |> Array.sort
            Expect.equal (names version) (names (embeddedDir ())) "the committed files"
            for n in names version do
                Expect.isTrue (File.ReadAllBytes(Path.Combine(version, n)) = File.ReadAllBytes(Path.Combine(embeddedDir (), n))) $"{n}: same bytes"
            let stamp = File.GetLastWriteTimeUtc(Path.Combine(version, "features.json"))
            let again = EmbeddedDatasets.SyntheticDigits d.Path
            Expect.equal again.DataDir o.DataDir "the same folder"
            Expect.equal (File.GetLastWriteTimeUtc(Path.Combine(version, "features.json"))) stamp "not rewritten"
            let leftovers = Directory.GetFileSystemEntries(Path.Combine(d.Path, "embedded")) |> Array.filter (fun e -> Path.GetFileName(e).StartsWith ".")
            Expect.isEmpty leftovers "no temporary folder left behind"
            let load = TfdsLoadOptions(DatasetName = o.DatasetName, DataDir = o.DataDir, CacheDir = o.CacheDir, Download = o.Download, Splits = [| "test" |])
            use s = TFDatasetMultiShotMemorySampler.LoadAsync(TFDatasetSamplerOptions(Load = load, ClassesPerBatch = 10)).Result
            Expect.equal s.NumExamples 1000 "the test split"
            use b = s[0]
            Expect.equal b.Count 20 "a batch"

        testCase "an unwritable cache folder is a clear error naming the folder and the way out" <| fun () ->
            use d = new TempDir()
            let blocker = Path.Combine(d.Path, "file")
            File.WriteAllText(blocker, "not a folder")
            let e = throwsWith<IOException> (fun () -> EmbeddedDatasets.SyntheticDigits blocker |> ignore) "cache root is a file"
            Expect.stringContains e.Message blocker "names the folder"
            Expect.stringContains e.Message "SAMPLERS_CACHE_DIR" "says what to do"
    ]

let loadTests =
    testList "load" [
        testCase "the embedded dataset: train then test, TFDS read order, ids, labels and pixels" <| fun () ->
            use cache = new TempDir()
            let r = load (options (embeddedDataDir ()) "synthetic_digits" [ "train"; "test" ] cache.Path)
            let t = r.Table
            Expect.equal t.Count 4000 "count"
            Expect.equal t.DType DType.UInt8 "dtype"
            Expect.equal (t.ExampleShape.ToArray()) [| 28; 28; 1 |] "shape"
            Expect.isFalse t.IsRagged "fixed"
            Expect.equal (List.ofSeq r.ClassNames) (List.ofSeq SyntheticDigits.ClassNames) "class names"
            Expect.isFalse r.FromCache "first load decodes"
            Expect.equal r.XSpec.Key "image" "x spec"
            Expect.equal r.YSpec.Key "label" "y spec"
            Expect.equal r.Builder.FullName "synthetic_digits:1.0.0" "builder"
            // Two train shards interleave in blocks of 16 (TFDS_FORMAT.md 9.1); test follows train.
            Expect.equal (t.GetId 0) (trainShard 0 + "__0") "row 0"
            Expect.equal (t.GetId 15) (trainShard 0 + "__15") "row 15"
            Expect.equal (t.GetId 16) (trainShard 1 + "__0") "row 16"
            Expect.equal (t.GetId 32) (trainShard 0 + "__16") "row 32"
            Expect.equal (t.GetId 2999) (trainShard 1 + "__1499") "last train row"
            Expect.equal (t.GetId 3000) (testShard + "__0") "first test row"
            Expect.equal (t.GetId 3999) (testShard + "__999") "last row"
            let counts = t.Labels.ToArray() |> Array.countBy id |> Array.sort
            Expect.equal counts [| for c in 0L .. 9L -> c, 400 |] "300 train + 100 test per class"
            for (row, shard, index) in [ 0, trainShard 0, 0; 16, trainShard 1, 0; 31, trainShard 1, 15; 47, trainShard 0, 31; 2999, trainShard 1, 1499; 3500, testShard, 500 ] do
                let pixels, label = rawExample (Path.Combine(embeddedDir (), shard)) index
                Expect.equal (t.Labels[row]) label $"row {row} label"
                Expect.isTrue (t.GetExample(row).ToArray() = pixels) $"row {row} pixels equal StbImageSharp's decode"

        testCase "each split entry is its own dataset: a '+' interleaves, a list concatenates" <| fun () ->
            use cache = new TempDir()
            let listed = load (options (embeddedDataDir ()) "synthetic_digits" [ "test[:20]"; "train[:20]" ] cache.Path)
            Expect.equal [ for i in 0 .. 39 -> listed.Table.GetId i ]
                         ([ for i in 0 .. 19 -> testShard + $"__{i}" ] @ [ for i in 0 .. 19 -> trainShard 0 + $"__{i}" ]) "test then train"
            let plus = load (options (embeddedDataDir ()) "synthetic_digits" [ "test[:20]+train[:20]" ] cache.Path)
            Expect.equal (plus.Table.GetId 16) (trainShard 0 + "__0") "interleaved: block of 16 test, then train"
            Expect.equal plus.Selections.Count 1 "one selection"
            Expect.equal listed.Selections.Count 2 "two selections"

        testCase "shards of 40 and 20 records come out in TFDS's order (TFDS_FORMAT.md 9.2), an empty shard costs nothing" <| fun () ->
            use data = new TempDir()
            writeToy data.Path digitFeatures [ "train", [ toyDigits 40; toyDigits 20; [] ] ] |> ignore
            let r = load { options data.Path "toy" [ "train" ] null with UseCache = false }
            let a = "toy-train.tfrecord-00000-of-00003__"
            let b = "toy-train.tfrecord-00001-of-00003__"
            let expected =
                [ for i in 0 .. 15 -> a + string i ] @ [ for i in 0 .. 15 -> b + string i ] @ [ for i in 16 .. 31 -> a + string i ]
                @ [ for i in 16 .. 19 -> b + string i ] @ [ for i in 32 .. 39 -> a + string i ]
            Expect.equal [ for i in 0 .. r.Table.Count - 1 -> r.Table.GetId i ] expected "(A,0..15) (B,0..15) (A,16..31) (B,16..19) (A,32..39)"
            let labels = r.Table.Labels.ToArray()
            Expect.equal labels[16] 0L "row 16 is B's record 0 (label 0)"
            Expect.equal labels[32] 6L "row 32 is A's record 16 (label 6)"

        testCase "slices select the documented rows" <| fun () ->
            let r = load { options (embeddedDataDir ()) "synthetic_digits" [ "train[:10%]"; "test[-5:]" ] null with UseCache = false }
            Expect.equal r.Table.Count 305 "300 + 5"
            Expect.equal (r.Table.GetId 300) (testShard + "__995") "test[-5:] starts at 995"
            Expect.isNull r.CachePath "no cache"

        testCase "the same table whatever the number of threads, and with small chunks" <| fun () ->
            let o = { options (embeddedDataDir ()) "synthetic_digits" [ "train[:700]"; "test[:300]" ] null with UseCache = false }
            let one = (load { o with MaxDegreeOfParallelism = 1 }).Table
            let four = (load { o with MaxDegreeOfParallelism = 4 }).Table
            let chunked = (load { o with ChunkBytes = 784L * 100L }).Table
            sameTable one four "1 vs 4 threads"
            sameTable one chunked "chunked"
            Expect.equal chunked.ChunkCount 10 "1000 examples in chunks of 100"

        testCase "progress reports phases, examples and bytes up to the totals" <| fun () ->
            let reports = System.Collections.Concurrent.ConcurrentQueue<LoadProgress>()
            let o = { options (embeddedDataDir ()) "synthetic_digits" [ "train"; "test" ] null with UseCache = false }
            loadWith o (syncProgress reports.Enqueue) CancellationToken.None |> ignore
            let all = List.ofSeq reports
            Expect.equal (List.head all).Phase LoadPhase.Resolving "first"
            Expect.equal (List.last all).Phase LoadPhase.Done "last"
            let decoding = all |> List.filter (fun p -> p.Phase = LoadPhase.Decoding)
            Expect.isGreaterThan decoding.Length 2 "several decoding reports"
            Expect.equal (decoding |> List.map (fun p -> p.ExamplesDone) |> List.max) 4000L "examples done reaches the total"
            Expect.isTrue (decoding |> List.forall (fun p -> p.ExamplesTotal = 4000L)) "total known"
            let bytesTotal = Directory.GetFiles(embeddedDir (), "*.tfrecord*") |> Array.sumBy (fun f -> FileInfo(f).Length)
            Expect.equal (decoding |> List.head).BytesTotal bytesTotal "bytes total = the shards"
            Expect.equal (decoding |> List.map (fun p -> p.BytesRead) |> List.max) bytesTotal "every shard byte read by the end"
            Expect.isGreaterThan (decoding |> List.filter (fun p -> p.BytesRead > 0L && p.BytesRead < bytesTotal)).Length 0 "bytes reported as they are read"
    ]

let cacheTests =
    testList "cache" [
        testCase "a second load reads the cache and gives the same table" <| fun () ->
            use cache = new TempDir()
            let o = options (embeddedDataDir ()) "synthetic_digits" [ "train"; "test" ] cache.Path
            let first = load o
            Expect.isFalse first.FromCache "first from TFRecords"
            Expect.isTrue (File.Exists first.CachePath) "cache file written"
            Expect.stringContains first.CacheDetail "stored" "detail says stored"
            let second = load o
            Expect.isTrue second.FromCache "second from the cache"
            Expect.equal second.CachePath first.CachePath "same file"
            sameTable first.Table second.Table "cache round trip"

        testCase "Table: Mapped and Auto map from the first store on, Memory never; all give the same table" <| fun () ->
            use cache = new TempDir()
            let o = options (embeddedDataDir ()) "synthetic_digits" [ "test" ] cache.Path
            let first = load { o with Table = TableBacking.Auto }
            Expect.isFalse first.FromCache "decoded"
            Expect.equal first.Table.Backing TableBacking.Mapped "reopened mapped after the store"
            let mem = load o
            Expect.isTrue mem.FromCache "hit"
            Expect.equal mem.Table.Backing TableBacking.Memory "Memory"
            let mapped = load { o with Table = TableBacking.Mapped }
            Expect.equal mapped.Table.Backing TableBacking.Mapped "Mapped"
            sameTable mapped.Table mem.Table "same table"
            sameTable first.Table mem.Table "same table on the first load"
            Expect.equal (first.Table.GetId 5) (mem.Table.GetId 5) "ids"

        testCase "Table = Mapped refuses ragged data and a disabled cache before loading; the sampler's Auto reads into memory when a preprocess must run" <| fun () ->
            use cache = new TempDir()
            let o = { options (embeddedDataDir ()) "synthetic_digits" [ "test[:50]" ] cache.Path with Table = TableBacking.Mapped }
            let e = throwsWith<ArgumentException> (fun () -> load { o with UseCache = false } |> ignore) "no cache"
            Expect.stringContains e.Message "caching is off" "says why"
            Expect.isEmpty (cacheFiles cache.Path) "nothing loaded or written"
            use data = new TempDir()
            let spec = FeatureSpec("image", FeatureKind.Image, "tensorflow_datasets.core.features.image_feature.Image", DType.UInt8, [| -1; -1; 1 |], EncodingFormat = "png")
            writeToy data.Path [ spec; SyntheticDigits.LabelSpec ] [ "train", [ toyDigits 4 ] ] |> ignore
            let e = throwsWith<ArgumentException> (fun () -> load { options data.Path "toy" [ "train" ] cache.Path with Table = TableBacking.Mapped } |> ignore) "ragged"
            Expect.stringContains e.Message "ragged" "says why"
            Expect.stringContains e.Message "ResizeNearest" "says what to do"
            let load0 = TfdsLoadOptions(DatasetName = "synthetic_digits", DataDir = embeddedDataDir (), CacheDir = cache.Path, Splits = strs [ "test[:50]" ])
            let so = TFDatasetSamplerOptions(Load = load0, ClassesPerBatch = 2)
            Expect.equal (TFDatasetMultiShotMemorySampler.EffectiveLoadOptions so).Table TableBacking.Auto "Auto by default"
            let user = Preprocessing.Create<byte, byte>(ReadOnlySpan [| 1 |], PreprocessAction<byte, byte>(fun x _ o _ -> o[0] <- x[0]))
            let withPre (l: TfdsLoadOptions) pp table =
                TfdsLoadOptions(DatasetName = l.DatasetName, DataDir = l.DataDir, CacheDir = l.CacheDir, Splits = l.Splits, Preprocess = pp, Table = table)
            let pre = TFDatasetSamplerOptions(Load = withPre load0 user TableBacking.Auto, ClassesPerBatch = 2)
            Expect.equal (TFDatasetMultiShotMemorySampler.EffectiveLoadOptions pre).Table TableBacking.Memory "an undeclared preprocess must run after the load: memory"
            let declared = TFDatasetSamplerOptions(Load = withPre load0 (Preprocessing.ToFloat32()) TableBacking.Auto, ClassesPerBatch = 2)
            Expect.equal (TFDatasetMultiShotMemorySampler.EffectiveLoadOptions declared).Table TableBacking.Auto "a declared one is cached preprocessed: Auto stays"
            let preMapped = TFDatasetSamplerOptions(Load = withPre load0 user TableBacking.Mapped)
            Expect.equal (TFDatasetMultiShotMemorySampler.EffectiveLoadOptions preMapped).Table TableBacking.Mapped "explicit Mapped is kept"
            let s = TFDatasetMultiShotMemorySampler.LoadAsync(so).GetAwaiter().GetResult()
            Expect.equal s.Table.Backing TableBacking.Mapped "the façade maps by default"

        testCase "the key covers the split list, its order and the keys" <| fun () ->
            use cache = new TempDir()
            let o = options (embeddedDataDir ()) "synthetic_digits" [ "train[:50]"; "test[:50]" ] cache.Path
            load o |> ignore
            let swapped = load { o with Splits = strs [ "test[:50]"; "train[:50]" ] }
            Expect.isFalse swapped.FromCache "another order is another key"
            Expect.equal (swapped.Table.GetId 0) (testShard + "__0") "and loads test first"
            let joined = load { o with Splits = strs [ "train[:50]+test[:50]" ] }
            Expect.isFalse joined.FromCache "an interleaved spec is another key"
            let same = load { o with XKey = "image" }
            Expect.isTrue same.FromCache "the same list hits"
            Expect.equal (cacheFiles cache.Path |> Array.filter (fun f -> f.EndsWith ".parquet")).Length 3 "three files"

        testCase "a changed shard makes the cache stale and the load decodes again" <| fun () ->
            use data = new TempDir()
            use cache = new TempDir()
            let vdir = writeToy data.Path digitFeatures [ "train", [ toyDigits 30 ] ]
            let o = options data.Path "toy" [ "train" ] cache.Path
            load o |> ignore
            let shard = Path.Combine(vdir, "toy-train.tfrecord-00000-of-00001")
            TfRecordWriter.WriteFile(shard, [ for i in 0 .. 29 -> digitExample ((i + 1) % 10) (uint64 i) ]) |> ignore
            File.SetLastWriteTimeUtc(shard, DateTime.UtcNow.AddMinutes 1.0)
            let again = load o
            Expect.isFalse again.FromCache "stale cache is not used"
            Expect.equal again.Table.Labels[0] 1L "new data"

        testCase "a store failure only warns: the load succeeds without a cache" <| fun () ->
            use d = new TempDir()
            let notADir = Path.Combine(d.Path, "file")
            File.WriteAllText(notADir, "x")
            let r = load (options (embeddedDataDir ()) "synthetic_digits" [ "test[:40]" ] notADir)
            Expect.equal r.Table.Count 40 "loaded"
            Expect.isFalse r.FromCache "decoded"
            Expect.stringContains r.CacheDetail "could not write" "detail says why"

        testCase "cancellation while decoding or while storing leaves no cache file" <| fun () ->
            for phase in [ LoadPhase.Decoding; LoadPhase.StoringCache ] do
                use cache = new TempDir()
                use cts = new CancellationTokenSource()
                // Decoding: after the first batches are done, so the reader and decoders are mid-flight.
                let progress = syncProgress (fun p -> if p.Phase = phase && (phase <> LoadPhase.Decoding || p.ExamplesDone > 0L) then cts.Cancel())
                let o = options (embeddedDataDir ()) "synthetic_digits" [ "train"; "test" ] cache.Path
                throwsWith<OperationCanceledException> (fun () -> loadWith o progress cts.Token |> ignore) $"cancelled in {phase}" |> ignore
                Expect.isEmpty (cacheFiles cache.Path) $"no file at all after cancellation in {phase}"
                let after = load o
                Expect.isFalse after.FromCache $"{phase}: the next load decodes"
    ]

let errorTests =
    testList "errors" [
        testCase "a missing x_key or y_key lists the available features with their types" <| fun () ->
            let o = { options (embeddedDataDir ()) "synthetic_digits" [ "test" ] null with UseCache = false }
            let e = throwsWith<ArgumentException> (fun () -> load { o with XKey = "pixels" } |> ignore) "x"
            Expect.stringContains e.Message "x_key 'pixels' not found - available features are: image: Image uint8 (28, 28, 1), label: ClassLabel int64 ()" "x message"
            let e = throwsWith<ArgumentException> (fun () -> load { o with YKey = "digit" } |> ignore) "y"
            Expect.stringContains e.Message "y_key 'digit' not found - available features are: image: Image" "y message"
            let e = throwsWith<ArgumentException> (fun () -> load { o with YKey = "image" } |> ignore) "image as y"
            Expect.stringContains e.Message "labels must be a scalar ClassLabel or integer Tensor" "wrong kind of y"

        testCase "bad options are ArgumentExceptions naming the setting" <| fun () ->
            let o = options (embeddedDataDir ()) "synthetic_digits" [] null
            let e = throwsWith<ArgumentException> (fun () -> load o |> ignore) "no splits"
            Expect.stringContains e.Message "options.Splits is empty" "message"
            let e = throwsWith<ArgumentException> (fun () -> load { o with Splits = strs [ "train"; " " ] } |> ignore) "blank split"
            Expect.stringContains e.Message "options.Splits[1] is empty" "message"

        testCase "the catalog's errors surface unchanged" <| fun () ->
            let o = { options (embeddedDataDir ()) "synthetic_digits" [ "test" ] null with UseCache = false }
            let e = throwsWith<DatasetNotFoundException> (fun () -> load { o with DatasetName = "no_such_set" } |> ignore) "dataset"
            Expect.stringContains e.Message "no_such_set" "names the dataset"
            let e = throwsWith<DatasetNotFoundException> (fun () -> load { o with Splits = strs [ "validation" ] } |> ignore) "split"
            Expect.stringContains e.Message "Split 'validation'" "names the split"
            let e = throwsWith<SpecFormatException> (fun () -> load { o with Splits = strs [ "test[:5" ] } |> ignore) "spec"
            Expect.stringContains e.Message "test[:5" "shows the spec"
            let e = throwsWith<SpecFormatException> (fun () -> load { o with DatasetName = "synthetic_digits:1.0" } |> ignore) "name"
            Expect.stringContains e.Message "synthetic_digits:1.0" "shows the name"

        testCase "a feature key missing in one record names the key, file and record" <| fun () ->
            use data = new TempDir()
            let records = toyDigits 6 |> List.mapi (fun i r -> if i = 3 then ExampleBuilder().AddImage("image", ProceduralDigits.DrawPng(3, 3UL)).ToByteArray() else r)
            writeToy data.Path digitFeatures [ "train", [ records ] ] |> ignore
            let e = throwsWith<DataFormatException> (fun () -> load { options data.Path "toy" [ "train" ] null with UseCache = false } |> ignore) "missing key"
            Expect.stringContains e.Message "toy-train.tfrecord-00000-of-00001: record 3" "file and record"
            Expect.stringContains e.Message "feature 'label'" "key"
            Expect.stringContains e.Message "is missing from the Example" "what"
            Expect.equal e.Key "label" "Key property"

        testCase "an image that fails to decode names the file and the record's tfds_id" <| fun () ->
            use data = new TempDir()
            use cache = new TempDir()
            let png = ProceduralDigits.DrawPng(2, 2UL)
            png[png.Length - 20] <- png[png.Length - 20] ^^^ 0xFFuy // inside IDAT: its CRC no longer matches
            let records = toyDigits 5 |> List.mapi (fun i r -> if i = 2 then ExampleBuilder().AddImage("image", png).AddLabel("label", 2L).ToByteArray() else r)
            writeToy data.Path digitFeatures [ "train", [ records ] ] |> ignore
            let e = throwsWith<DataFormatException> (fun () -> load (options data.Path "toy" [ "train" ] cache.Path) |> ignore) "bad image"
            Expect.stringContains e.Message "toy-train.tfrecord-00000-of-00001: record 2" "file and record"
            Expect.stringContains e.Message "tfds_id toy-train.tfrecord-00000-of-00001__2" "tfds_id"
            Expect.isEmpty (cacheFiles cache.Path) "nothing cached after a failed load"

        testCase "dtype or shape differing from features.json is an error naming the record" <| fun () ->
            use data = new TempDir()
            let floatLabel = ExampleBuilder().AddImage("image", ProceduralDigits.DrawPng(1, 1UL)).AddFloats("label", 1.0f).ToByteArray()
            writeToy data.Path digitFeatures [ "train", [ toyDigits 2 @ [ floatLabel ] ] ] |> ignore
            let e = throwsWith<DataFormatException> (fun () -> load { options data.Path "toy" [ "train" ] null with UseCache = false } |> ignore) "dtype"
            Expect.stringContains e.Message "record 2" "record"
            Expect.stringContains e.Message "expected int64_list, found float_list" "kinds"
            use data2 = new TempDir()
            let small = ExampleBuilder().AddImage("image", PngEncoder.Encode(ReadOnlySpan(Array.zeroCreate<byte> 400), 20, 20, PngColorType.Grey)).AddLabel("label", 0L).ToByteArray()
            writeToy data2.Path digitFeatures [ "train", [ [ small ] @ toyDigits 2 ] ] |> ignore
            let e = throwsWith<DataFormatException> (fun () -> load { options data2.Path "toy" [ "train" ] null with UseCache = false } |> ignore) "shape"
            Expect.stringContains e.Message "record 0" "record"
            Expect.stringContains e.Message "image is 20x20 (HxW) but the feature declares" "sizes"

        testCase "a shard holding fewer or more records than shardLengths is a cardinality error" <| fun () ->
            for (n, phrase) in [ 9, "contains only 9"; 11, "holds more records than dataset_info.json says" ] do
                use data = new TempDir()
                use cache = new TempDir()
                let vdir = writeToy data.Path digitFeatures [ "train", [ toyDigits 10 ] ]
                let shard = Path.Combine(vdir, "toy-train.tfrecord-00000-of-00001")
                TfRecordWriter.WriteFile(shard, toyDigits n) |> ignore
                let e = throwsWith<DataFormatException> (fun () -> load (options data.Path "toy" [ "train" ] cache.Path) |> ignore) $"{n} records"
                Expect.stringContains e.Message phrase $"{n}: message"
                Expect.stringContains e.Message "shardLengths[0]" $"{n}: names the metadata"
                Expect.equal e.FilePath shard $"{n}: FilePath"
                Expect.isEmpty (cacheFiles cache.Path) $"{n}: nothing cached"
            // A slice that stops before the end cannot see extra records and does not fail (as TFDS).
            use data = new TempDir()
            let vdir = writeToy data.Path digitFeatures [ "train", [ toyDigits 10 ] ]
            TfRecordWriter.WriteFile(Path.Combine(vdir, "toy-train.tfrecord-00000-of-00001"), toyDigits 11) |> ignore
            Expect.equal (load { options data.Path "toy" [ "train[:5]" ] null with UseCache = false }).Table.Count 5 "slice"
    ]

let featureTests =
    testList "features" [
        testCase "images of varying sizes are stored ragged with their own shapes" <| fun () ->
            use data = new TempDir()
            let spec = FeatureSpec("image", FeatureKind.Image, "tensorflow_datasets.core.features.image_feature.Image", DType.UInt8, [| -1; -1; 1 |], EncodingFormat = "png")
            let sizes = [ 3, 4; 5, 2; 4, 4; 2, 7 ]
            let records =
                sizes |> List.mapi (fun i (h, w) ->
                    let px = Array.init (h * w) (fun k -> byte (i * 50 + k))
                    ExampleBuilder().AddImage("image", PngEncoder.Encode(ReadOnlySpan px, w, h, PngColorType.Grey)).AddLabel("label", int64 (i % 2)).ToByteArray())
            writeToy data.Path [ spec; SyntheticDigits.LabelSpec ] [ "train", [ records ] ] |> ignore
            use cache = new TempDir()
            let o = options data.Path "toy" [ "train" ] cache.Path
            let r = load o
            Expect.isTrue r.Table.IsRagged "ragged"
            for i, (h, w) in List.indexed sizes do
                Expect.equal (r.Table.GetShape(i).ToArray()) [| h; w; 1 |] $"shape {i}"
                Expect.equal (r.Table.GetExample(i).ToArray()) (Array.init (h * w) (fun k -> byte (i * 50 + k))) $"pixels {i}"
            sameTable r.Table (load o).Table "ragged through the cache"

        testCase "x_key may be a Tensor and y_key an integer Tensor" <| fun () ->
            use data = new TempDir()
            let emb = FeatureSpec("emb", FeatureKind.Tensor, "tensorflow_datasets.core.features.tensor_feature.Tensor", DType.Float32, [| 3 |])
            let cls = FeatureSpec("cls", FeatureKind.Tensor, "tensorflow_datasets.core.features.tensor_feature.Tensor", DType.Int32, [||])
            let records = [ for i in 0 .. 4 -> ExampleBuilder().AddTensor(emb, [| float32 i; 0.5f; -1.0f |]).AddTensor(cls, [| i % 2 |]).ToByteArray() ]
            writeToy data.Path [ emb; cls ] [ "train", [ records ] ] |> ignore
            let r = load { options data.Path "toy" [ "train" ] null with UseCache = false; XKey = "emb"; YKey = "cls" }
            Expect.equal r.Table.DType DType.Float32 "dtype"
            Expect.equal (r.Table.GetExample<float32>(3).ToArray()) [| 3.0f; 0.5f; -1.0f |] "values"
            Expect.equal (r.Table.Labels.ToArray()) [| 0L; 1L; 0L; 1L; 0L |] "labels"
            Expect.isEmpty r.ClassNames "no class names for a Tensor label"

        testCase "the download hook is called when the dataset is absent, then the load proceeds" <| fun () ->
            use data = new TempDir()
            let mutable calls = 0
            let hook = TfdsDownloadHandler(fun req _ _ ->
                calls <- calls + 1
                Expect.equal req.DatasetName "toy" "request names the dataset"
                Expect.equal req.DataDir (Path.GetFullPath data.Path) "request names the data dir"
                writeToy req.DataDir digitFeatures [ "train", [ toyDigits 12 ] ] |> ignore
                Threading.Tasks.Task.CompletedTask)
            let o = { options data.Path "toy" [ "train" ] null with UseCache = false }
            throwsWith<DatasetNotFoundException> (fun () -> load o |> ignore) "without the hook" |> ignore
            let r = load { o with Download = hook }
            Expect.equal calls 1 "called once"
            Expect.equal r.Table.Count 12 "loaded"
            load { o with Download = hook } |> ignore
            Expect.equal calls 1 "not called when present"

        testCase "the download hook also runs for a missing shard, but not for a split the dataset lacks" <| fun () ->
            use data = new TempDir()
            let vdir = writeToy data.Path digitFeatures [ "train", [ toyDigits 8; toyDigits 8 ] ]
            let shard = Path.Combine(vdir, "toy-train.tfrecord-00001-of-00002")
            let saved = File.ReadAllBytes shard
            File.Delete shard
            let mutable calls = 0
            let hook = TfdsDownloadHandler(fun req _ _ ->
                calls <- calls + 1
                Expect.equal (List.ofSeq req.Splits) [ "train" ] "request carries the splits"
                Expect.stringContains req.NotFound.Message "is missing" "the catalog's error"
                File.WriteAllBytes(shard, saved)
                Threading.Tasks.Task.CompletedTask)
            let o = { options data.Path "toy" [ "train" ] null with UseCache = false; Download = hook }
            Expect.equal (load o).Table.Count 16 "loaded after the hook restored the shard"
            Expect.equal calls 1 "called once"
            let e = throwsWith<DatasetNotFoundException> (fun () -> load { o with Splits = strs [ "validation" ] } |> ignore) "unknown split"
            Expect.stringContains e.Message "Split 'validation'" "the catalog's error"
            Expect.equal calls 1 "no download for a split name the dataset lacks"

        testCase "DownloadFromBucket fetches the requested splits from a bucket, then the sampler loads them" <| fun () ->
            use bucket = new TempDir()
            use data = new TempDir()
            use cache = new TempDir()
            let served = Path.Combine(bucket.Path, "datasets", "synthetic_digits", "1.0.0")
            Directory.CreateDirectory served |> ignore
            for f in Directory.GetFiles(embeddedDir ()) do File.Copy(f, Path.Combine(served, Path.GetFileName f))
            use server = new Samplers.Tests.Io.DownloadTests.Server(bucket.Path)
            let reports = System.Collections.Concurrent.ConcurrentQueue<LoadProgress>()
            let o = TFDatasetSamplerOptions(Load = TfdsLoadOptions(DatasetName = "synthetic_digits:1.0.0", DataDir = data.Path, CacheDir = cache.Path, Splits = strs [ "test" ],
                                                                            Download = TfdsLoader.DownloadFromBucket(server.Url)), ClassesPerBatch = 3)
            let s = TFDatasetMultiShotMemorySampler.LoadAsync(o, syncProgress reports.Enqueue).GetAwaiter().GetResult()
            Expect.equal s.NumExamples 1000 "test split"
            let paths = server.Requests |> List.map (fun r -> r.Path)
            Expect.contains paths ("datasets/synthetic_digits/1.0.0/" + testShard) "fetched the test shard"
            Expect.isFalse (paths |> List.exists (fun p -> p.Contains "-train.")) "no train shard fetched"
            Expect.isTrue (reports |> Seq.exists (fun p -> p.Phase = LoadPhase.Downloading && p.BytesRead > 0L)) "download progress forwarded"
            let again = TFDatasetMultiShotMemorySampler.LoadAsync(o).GetAwaiter().GetResult()
            Expect.isTrue again.LoadResult.FromCache "second load: local copy and cache"
            Expect.equal server.Requests.Length (List.length paths) "no network the second time"

        testCase "the façade downloads an absent dataset by default, from SAMPLERS_TFDS_BASE_URL" <| fun () ->
            use bucket = new TempDir()
            use data = new TempDir()
            use cache = new TempDir()
            let served = Path.Combine(bucket.Path, "datasets", "synthetic_digits", "1.0.0")
            Directory.CreateDirectory served |> ignore
            for f in Directory.GetFiles(embeddedDir ()) do File.Copy(f, Path.Combine(served, Path.GetFileName f))
            use server = new Samplers.Tests.Io.DownloadTests.Server(bucket.Path)
            // A child process, so the environment variable cannot reach tests running in parallel here.
            use p = startChild "facade-default-download" [ data.Path; cache.Path ] [ "SAMPLERS_TFDS_BASE_URL", server.Url ]
            let out = p.StandardOutput.ReadToEndAsync()
            let err = p.StandardError.ReadToEndAsync()
            if not (p.WaitForExit 120000) then p.Kill true; failtest "child did not finish in 120 s"
            Expect.equal p.ExitCode 0 $"child failed: {err.Result}"
            Expect.equal (out.Result.Trim()) "1000" "the test split, downloaded then loaded"
            Expect.isTrue (server.Requests |> List.exists (fun r -> r.Path.EndsWith testShard)) "the shard came from the loopback bucket"

        testCase "Download = null never touches the network: an absent dataset is an error" <| fun () ->
            use data = new TempDir()
            let o = TFDatasetSamplerOptions(Load = TfdsLoadOptions(DatasetName = "synthetic_digits:1.0.0", DataDir = data.Path, UseCache = false, Download = null))
            let e = throwsWith<DatasetNotFoundException> (fun () -> TFDatasetMultiShotMemorySampler.LoadAsync(o).GetAwaiter().GetResult() |> ignore) "absent"
            Expect.stringContains e.Message "synthetic_digits" "names the dataset"
    ]

/// Child mode "facade-default-download": args dataDir cacheDir. Loads synthetic_digits with the façade's DEFAULT download
/// setting; the parent points SAMPLERS_TFDS_BASE_URL at a loopback bucket. Prints the number of examples.
let childDefaultDownload (args: string[]) =
    try
        let o = TFDatasetSamplerOptions(Load = TfdsLoadOptions(DatasetName = "synthetic_digits:1.0.0", DataDir = args[0], CacheDir = args[1], Splits = strs [ "test" ]), ClassesPerBatch = 3)
        let s = TFDatasetMultiShotMemorySampler.LoadAsync(o).GetAwaiter().GetResult()
        printfn "%d" s.NumExamples
        0
    with e ->
        eprintfn "%O" e
        1

let facadeTests =
    testList "sampler" [
        testCase "LoadAsync on the embedded dataset gives balanced, reproducible batches" <| fun () ->
            use cache = new TempDir()
            let o = TFDatasetSamplerOptions(Load = TfdsLoadOptions(DatasetName = "synthetic_digits", DataDir = embeddedDataDir (), CacheDir = cache.Path), ClassesPerBatch = 4, ExamplesPerClassPerBatch = 3, Seed = 11UL)
            let s = TFDatasetMultiShotMemorySampler.LoadAsync(o).GetAwaiter().GetResult()
            Expect.equal s.NumExamples 4000 "examples"
            Expect.equal (List.ofSeq s.ClassNames) (List.ofSeq SyntheticDigits.ClassNames) "class names"
            Expect.isFalse s.LoadResult.FromCache "decoded"
            use b = s.GenerateBatch 5
            Expect.equal (b.Shape.ToArray()) [| 12; 28; 28; 1 |] "batch shape"
            Expect.equal (b.Y.ToArray() |> Array.distinct |> Array.length) 4 "four classes"
            let again = TFDatasetMultiShotMemorySampler.LoadAsync(o).GetAwaiter().GetResult()
            Expect.isTrue again.LoadResult.FromCache "second from the cache"
            use b2 = again.GenerateBatch 5
            Expect.equal (b2.Indices.ToArray()) (b.Indices.ToArray()) "same plan"
            Expect.isTrue (b2.XBytes.ToArray() = b.XBytes.ToArray()) "same bytes"

        testCase "the reference-shaped constructor loads the same data and applies the preprocess" <| fun () ->
            use cache = new TempDir()
            let s = new TFDatasetMultiShotMemorySampler("synthetic_digits", 2, splits = strs [ "test" ], preprocessFn = Preprocessing.ToFloat32(), seed = 3UL, dataDir = embeddedDataDir ())
            Expect.equal s.NumExamples 1000 "test only"
            Expect.equal s.DType DType.Float32 "preprocessed once to float32"
            Expect.isNotNull s.LoadResult "load result kept"
            Expect.equal s.LoadResult.Table.DType DType.Float32 "the loader applied the preprocess (Load.Preprocess)"
            use b = s.GenerateBatch 0
            let x = b.X<float32>().ToArray()
            Expect.isTrue (x |> Array.forall (fun v -> v >= 0.0f && v <= 1.0f)) "scaled"
            Expect.isTrue (x |> Array.exists (fun v -> v > 0.5f)) "ink"

        testCase "a ragged dataset fails at batch time with advice to resize, and works with ResizeNearest" <| fun () ->
            use data = new TempDir()
            let spec = FeatureSpec("image", FeatureKind.Image, "tensorflow_datasets.core.features.image_feature.Image", DType.UInt8, [| -1; -1; 1 |], EncodingFormat = "png")
            let records =
                [ for i in 0 .. 11 ->
                    let side = 4 + i % 3
                    ExampleBuilder().AddImage("image", PngEncoder.Encode(ReadOnlySpan(Array.create (side * side) (byte i)), side, side, PngColorType.Grey)).AddLabel("label", int64 (i % 3)).ToByteArray() ]
            writeToy data.Path [ spec; SyntheticDigits.LabelSpec ] [ "train", [ records ] ] |> ignore
            let o = TFDatasetSamplerOptions(Load = TfdsLoadOptions(DatasetName = "toy", DataDir = data.Path, Splits = strs [ "train" ], UseCache = false), ClassesPerBatch = 3, ExamplesPerClassPerBatch = 4)
            let s = TFDatasetMultiShotMemorySampler.LoadAsync(o).GetAwaiter().GetResult()
            let e = throwsWith<RaggedBatchException> (fun () -> (s.GenerateBatch 0).Dispose()) "mixed shapes"
            Expect.stringContains e.Message "resize" "suggests resizing"
            let resized = TFDatasetMultiShotMemorySampler.LoadAsync(TFDatasetSamplerOptions(Load = TfdsLoadOptions(DatasetName = "toy", DataDir = data.Path, Splits = strs [ "train" ], UseCache = false, Preprocess = Preprocessing.ResizeNearest(5, 5)), ClassesPerBatch = 3, ExamplesPerClassPerBatch = 4)).GetAwaiter().GetResult()
            use b = resized.GenerateBatch 0
            Expect.equal (b.Shape.ToArray()) [| 12; 5; 5; 1 |] "resized batch"

        testCase "LoadAsync honours cancellation and x_key errors" <| fun () ->
            use cts = new CancellationTokenSource()
            cts.Cancel()
            let o = TFDatasetSamplerOptions(Load = TfdsLoadOptions(DatasetName = "synthetic_digits", DataDir = embeddedDataDir (), UseCache = false))
            throwsWith<OperationCanceledException> (fun () -> TFDatasetMultiShotMemorySampler.LoadAsync(o, null, cts.Token).GetAwaiter().GetResult() |> ignore) "cancelled" |> ignore
            let e = throwsWith<ArgumentException> (fun () -> TFDatasetMultiShotMemorySampler.LoadAsync(TFDatasetSamplerOptions(Load = TfdsLoadOptions(DatasetName = "synthetic_digits", DataDir = embeddedDataDir (), UseCache = false, XKey = "img"))).GetAwaiter().GetResult() |> ignore) "x_key"
            Expect.stringContains e.Message "x_key 'img' not found - available features are:" "message"
    ]

[<Tests>]
let tests = testList "Io.Loader" [ embeddedTests; loadTests; cacheTests; errorTests; featureTests; facadeTests ]
