/// The first load of a fixed-shape dataset streams: records are decoded row group by row group straight into the cache
/// file, which is then mapped (docs/MAPPED.md, "Beyond RAM from the first load"). The streamed file is byte for byte the
/// file written from the whole in-memory table; a load that cannot stream and would not fit fails before decoding.
module Samplers.Tests.Io.StreamedLoadTests

open System
open System.IO
open Expecto
open Samplers
open Samplers.Cache
open Samplers.DatasetGen
open Samplers.Imaging
open Samplers.Tfds
open Samplers.Tests.TestUtil
open Samplers.Tests.Io.LoaderTests
open Samplers.Tests.Io.FusedLoadTests

let private withSettings (o: TfdsLoadOptions) (cacheDir: string) (useCache: bool) (table: TableBacking) (degree: int) =
    TfdsLoadOptions(DatasetName = o.DatasetName, DataDir = o.DataDir, Splits = o.Splits, CacheDir = cacheDir, UseCache = useCache,
                    XKey = o.XKey, YKey = o.YKey, MaxDegreeOfParallelism = degree, Download = null, Preprocess = o.Preprocess,
                    ReducedJpegDecode = o.ReducedJpegDecode, Table = table)

let private parquetIn (dir: string) =
    match cacheFiles dir |> Array.filter (fun f -> f.EndsWith ".parquet") with
    | [| one |] -> one
    | files -> failtest $"expected one cache file in {dir}, found {files.Length}"

/// The file the loader streams, against the file StoreAsync writes from the table decoded in memory (cache off), same key.
let private streamedEqualsStored (o: TfdsLoadOptions) (degree: int) what =
    use tmp = new TempDir()
    let streamedDir = Path.Combine(tmp.Path, "streamed")
    let r = loadO (withSettings o streamedDir true TableBacking.Auto degree)
    Expect.isFalse r.FromCache $"{what}: decoded"
    let streamed = File.ReadAllBytes(parquetIn streamedDir)
    let inMemory = (loadO (withSettings o null false TableBacking.Memory degree)).Table
    let storedDir = Path.Combine(tmp.Path, "stored")
    let entry = TfdsCacheEntry.Resolve(withSettings o storedDir true TableBacking.Auto degree)
    let stored = entry.Cache.StoreAsync(entry.Key, entry.Fingerprint, inMemory).GetAwaiter().GetResult()
    Expect.isTrue stored.Stored $"{what}: reference stored"
    Expect.equal (Path.GetFileName stored.Path) (Path.GetFileName(parquetIn streamedDir)) $"{what}: same file name (same key)"
    let reference = File.ReadAllBytes stored.Path
    Expect.equal streamed.Length reference.Length $"{what}: same size"
    Expect.isTrue (streamed = reference) $"{what}: the streamed file is byte for byte the one written from memory"
    sameTable inMemory r.Table $"{what}: the table loaded after streaming"
    r

/// A generated uint8 tensor dataset: `examples` of 64x64x3 (12 KiB) in `shards` shards.
let private tensors (data: string) (name: string) (examples: int) (shards: int) =
    SyntheticLarge.Write(SyntheticOptions(data, examples, 64, 64, 3, 7, Shards = shards, Name = name, Seed = 3UL, Format = SyntheticFormat.Tensor, Test = 5)) |> ignore

let private tensorOptions (data: string) (name: string) (splits: string list) =
    TfdsLoadOptions(DatasetName = name, DataDir = data, Splits = strs splits, Download = null)

let identicalTests =
    testList "identical to the file written from memory" [
        testCase "embedded dataset, train+test in two selections (interleaved shards), 1 and 3 decoders" <| fun () ->
            let o = TfdsLoadOptions(DatasetName = "synthetic_digits", DataDir = embeddedDataDir (), Splits = strs [ "train"; "test" ], Download = null)
            for degree in [ 1; 3 ] do
                let r = streamedEqualsStored o degree $"embedded, {degree} decoders"
                Expect.equal r.Table.Backing TableBacking.Mapped "Auto maps the streamed file"

        testCase "several row groups (1000 x 12 KiB over 5 shards), with skips and two slices of one split" <| fun () ->
            use tmp = new TempDir()
            let data = Path.Combine(tmp.Path, "data")
            tensors data "stream_rows" 1000 5
            // 4 MiB row groups of 341 rows: groups straddle blocks, shards and the two selections.
            streamedEqualsStored (tensorOptions data "stream_rows" [ "train" ]) 0 "whole split" |> ignore
            streamedEqualsStored (tensorOptions data "stream_rows" [ "train[13:70%]"; "train[75%:]"; "test" ]) 2 "slices" |> ignore

        testCase "a preprocess with an identity: the streamed file holds the preprocessed table (ragged JPEGs resized)" <| fun () ->
            use tmp = new TempDir()
            let data = Path.Combine(tmp.Path, "data")
            photos data 20 60
            let o = photoOptions data null (ImagePreprocessing.Resize(12, 10))
            let r = streamedEqualsStored o 0 "resized photos"
            Expect.equal (r.Table.ExampleShape.ToArray()) [| 12; 10; 3 |] "the preprocessed shape"
            Expect.equal r.Table.Backing TableBacking.Mapped "mapped although the decoded images are ragged"
    ]

let failureTests =
    testList "failures" [
        testCase "a bad record while streaming propagates and leaves neither a cache file nor a temporary file" <| fun () ->
            use tmp = new TempDir()
            let data = Path.Combine(tmp.Path, "data")
            tensors data "stream_bad" 600 3
            let shard = Directory.GetFiles(Path.Combine(data, "stream_bad", "1.0.0"), "*-train.tfrecord-00002-of-00003") |> Array.exactlyOne
            // Flip a byte near the end of the last shard: a CRC error in the second row group, after the first was written.
            let bytes = File.ReadAllBytes shard
            let at = bytes.Length * 9 / 10
            bytes[at] <- bytes[at] ^^^ 0xFFuy
            File.WriteAllBytes(shard, bytes)
            let cache = Path.Combine(tmp.Path, "cache")
            let e = throwsWith<DataFormatException> (fun () -> loadO (withSettings (tensorOptions data "stream_bad" [ "train" ]) cache true TableBacking.Auto 0) |> ignore) "bad shard"
            Expect.stringContains e.Message "corrupted record" "the reader's error, unchanged"
            Expect.isEmpty (cacheFiles cache) "no cache file, no temporary file"
    ]

/// Runs `f` with the memory the loader's check assumes replaced (a global hook: these tests run sequenced).
let private withAvailable (bytes: int64) (f: unit -> unit) =
    LoadMemory.AvailableOverride <- Func<int64>(fun () -> bytes)
    try f () finally LoadMemory.AvailableOverride <- null

let private refused (o: TfdsLoadOptions) (fragments: string list) what =
    let decoded = ref 0L
    let progress = syncProgress (fun p -> if p.Phase = LoadPhase.Decoding then decoded.Value <- max decoded.Value p.ExamplesDone)
    let e = throwsWith<InsufficientMemoryException> (fun () -> TfdsLoader.LoadAsync(o, progress).GetAwaiter().GetResult() |> ignore) what
    for f in fragments do Expect.stringContains e.Message f $"{what}: the message says '{f}'"
    Expect.equal decoded.Value 0L $"{what}: refused before decoding"

let memoryTests =
    testSequenced <| testList "memory check" [
        testCase "a load that cannot stream and would not fit is refused before decoding, saying why and what to do" <| fun () ->
            use tmp = new TempDir()
            let data = Path.Combine(tmp.Path, "data")
            photos data 20 60
            let cache = Path.Combine(tmp.Path, "cache")
            withAvailable 4096L (fun () ->
                refused (photoOptions data cache null) [ "synthetic_photos"; "ragged"; "estimated from the shard sizes"; "ImagePreprocessing.Resize"; "MiB" ] "ragged"
                let user = Preprocessing.Create<byte, byte>(ReadOnlySpan [| 1 |], PreprocessAction<byte, byte>(fun x _ o _ -> o[0] <- x[0]))
                refused (photoOptions data cache user) [ "declares no identity" ] "undeclared preprocess"
                let digits = TfdsLoadOptions(DatasetName = "synthetic_digits", DataDir = embeddedDataDir (), CacheDir = cache, Download = null)
                refused (withSettings digits cache false TableBacking.Auto 0) [ "caching is off"; "turn the cache on" ] "cache off"
                refused (withSettings digits cache true TableBacking.Memory 0) [ "Table is Memory"; "Mapped or Auto" ] "Table = Memory"
                Expect.isEmpty (cacheFiles cache) "nothing written")

        testCase "with the same budget a fixed-shape load streams to the cache and maps it" <| fun () ->
            use cache = new TempDir()
            withAvailable 4096L (fun () ->
                let o = TfdsLoadOptions(DatasetName = "synthetic_digits", DataDir = embeddedDataDir (), CacheDir = cache.Path, Download = null)
                let r = loadO o
                Expect.equal r.Table.Count 4000 "loaded"
                Expect.equal r.Table.Backing TableBacking.Mapped "mapped")

        testCase "the estimate: exact for fixed shapes, plus the preprocess's output when it runs after the load" <| fun () ->
            let digits = TfdsLoadOptions(DatasetName = "synthetic_digits", DataDir = embeddedDataDir (), UseCache = false, Download = null)
            let plan = LoadPlan.ResolveAsync(digits, null, Threading.CancellationToken.None).GetAwaiter().GetResult()
            Expect.equal (LoadMemory.Estimate(plan, false)) (4000L * (784L + 104L)) "examples plus label and id per row"
    ]

/// Peak resident set (VmHWM) and the CLI's exit code, from a child process under a GC heap limit.
let private cliUnderLimit (limit: string) (args: string list) =
    use p = startChild "cli-peak" args [ "DOTNET_GCHeapHardLimit", limit; "DOTNET_EnableDiagnostics", "0" ]
    collectOutput p 120_000 $"the CLI child ({String.Join(' ', args)}) did not finish in 120 s"

let private peakOf (err: string) =
    err.Split('\n') |> Array.tryFind (fun l -> l.StartsWith "VmHWM:") |> Option.defaultValue "VmHWM: ?"

/// The heap limit of the beyond-RAM child: 40 MiB (a streamed build needs about 30 MiB with 2 decoders: docs/MAPPED.md);
/// the dataset decodes to 4.1x that.
let heapLimit = "0x2800000"

let beyondRamTests =
    testList "beyond RAM" [
        testCase "a 172 MB dataset under a 40 MiB heap: cache build and run --table mapped succeed; --no-cache and --table memory are refused" <| fun () ->
            use tmp = new TempDir()
            let data = Path.Combine(tmp.Path, "data")
            let cache = Path.Combine(tmp.Path, "cache")
            // 14 000 x 64x64x3 uint8 = 172 032 000 bytes of decoded pixels (4.1 x 40 MiB), 4 shards read interleaved.
            SyntheticLarge.Write(SyntheticOptions(data, 14000, 64, 64, 3, 50, Shards = 4, Name = "beyond_ram", Seed = 1UL, Format = SyntheticFormat.Tensor)) |> ignore
            let common = [ "beyond_ram"; "--data-dir"; data; "--cache-dir"; cache; "--splits"; "train" ]
            let code, out, err = cliUnderLimit heapLimit ([ "cache" ] @ common @ [ "build" ])
            Expect.equal code 0 $"cache build: exit 0; stdout: {out}; stderr: {err}"
            Expect.stringContains out "status   built" "built"
            printfn "beyond RAM: cache build under 40 MiB heap: %s" (peakOf err)
            let file = parquetIn cache
            Expect.isGreaterThan (FileInfo(file).Length) (4L * 40L * 1024L * 1024L) "the file is over 4x the heap limit"
            let code, out, err = cliUnderLimit heapLimit ([ "run" ] @ common @ [ "--table"; "mapped"; "-c"; "10"; "-e"; "8"; "-s"; "50"; "--seed"; "4"; "--json" ])
            Expect.equal code 0 $"run --table mapped: exit 0; stdout: {out}; stderr: {err}"
            printfn "beyond RAM: run --table mapped under 40 MiB heap: %s" (peakOf err)
            // Then from nothing again: the first load of run streams the cache file itself, and the batches are the same.
            File.Delete file
            let code2, out2, err2 = cliUnderLimit heapLimit ([ "run" ] @ common @ [ "--table"; "mapped"; "-c"; "10"; "-e"; "8"; "-s"; "50"; "--seed"; "4"; "--json" ])
            Expect.equal code2 0 $"first run: exit 0; stdout: {out2}; stderr: {err2}"
            let digest (json: string) = Text.RegularExpressions.Regex.Match(json, "\"planDigest\":\"([0-9a-f]+)\"").Groups[1].Value
            Expect.isNotEmpty (digest out) "run printed its plan digest"
            Expect.equal (digest out2) (digest out) "the same batches as the run from the built cache"
            printfn "beyond RAM: first run --table mapped (streams the cache) under 40 MiB heap: %s" (peakOf err2)
            for args, why in [ [ "--no-cache" ], "caching is off"; [ "--table"; "memory" ], "--table is Memory" ] do
                let code, out, err = cliUnderLimit heapLimit ([ "run" ] @ common @ args @ [ "-c"; "10"; "-e"; "8"; "-s"; "50" ])
                Expect.equal code 2 $"{args}: exit 2, not an out-of-memory crash (3); stdout: {out}; stderr: {err}"
                Expect.stringContains err "not enough memory" $"{args}: the kind"
                Expect.stringContains err why $"{args}: says why"
                Expect.isFalse (err.Contains "internal error") $"{args}: not a bug report"
    ]

/// Child mode: the CLI, then its peak resident set (VmHWM from /proc/self/status) on stderr.
let cliPeakChild (args: string[]) =
    let code = Samplers.Cli.Program.Run(args, Console.Out, Console.Error)
    if File.Exists "/proc/self/status" then
        for line in File.ReadAllLines "/proc/self/status" do
            if line.StartsWith "VmHWM:" || line.StartsWith "VmRSS:" then eprintfn "%s" line
    code

[<Tests>]
let tests = testList "Io.Streamed" [ identicalTests; failureTests; memoryTests; beyondRamTests ]
