/// One settings record per concern and one load route, a misspelled dataset name failing at once, and the
/// epoch/warmup state read as one.
module Samplers.Tests.Facade.SettingsTests

open System
open System.Collections.Generic
open System.IO
open System.Net
open System.Net.Sockets
open System.Reflection
open System.Threading
open System.Threading.Tasks
open Expecto
open Microsoft.Extensions.Logging
open Samplers
open Samplers.Imaging
open Samplers.Core
open Samplers.Experiments
open Samplers.Tfds
open Samplers.Tests.TestUtil
open Samplers.Tests.Facade.SamplerTests

// ---------- reflection helpers ----------

let settable (t: Type) =
    t.GetProperties(BindingFlags.Public ||| BindingFlags.Instance)
    |> Array.filter (fun p -> p.CanWrite && p.SetMethod.IsPublic && p.GetIndexParameters().Length = 0)
    |> Array.sortBy (fun p -> p.Name)

let noDownload = TfdsDownloadHandler(fun _ _ _ -> Task.CompletedTask)

/// A value of `t` different from any default this library uses, per property name (so a dropped field shows).
let distinctValue (p: PropertyInfo) : obj =
    let t = p.PropertyType
    if t = typeof<string> then box ("v-" + p.Name)
    elif t = typeof<bool> then box true
    elif t = typeof<int> then box 7
    elif t = typeof<int64> then box 12345L
    elif t = typeof<uint64> then box 99UL
    elif t = typeof<Nullable<int>> then box (Nullable 5)
    elif t = typeof<IReadOnlyList<string>> then box [| "a-" + p.Name; "b" |]
    elif t = typeof<IReadOnlyList<int64>> then box [| 3L; 1L |]
    elif t = typeof<SamplingMode> then box SamplingMode.Coverage
    elif t = typeof<TableBacking> then box TableBacking.Mapped
    elif t = typeof<ILogger> then box (ListLogger())
    elif t = typeof<TfdsDownloadHandler> then box noDownload
    elif t = typeof<IExamplePreprocessor> then box (Preprocessing.ToFloat32())
    elif t = typeof<IAugmenter> then box (Augmenters.FromFunc(AugmentFunc(fun b _ _ -> b)))
    elif t = typeof<BatchPool> then box (new BatchPool())
    elif t = typeof<Samplers.Storage.ObjectStoreOptions> then box (Samplers.Storage.ObjectStoreOptions(Endpoint = "http://127.0.0.1:1", Anonymous = true))
    else failwithf "no test value for %s : %s; add one here" p.Name t.Name

/// For bool settings the distinct value is the opposite of the default of a fresh instance.
let setAll (instance: obj) =
    for p in settable (instance.GetType()) do
        let v =
            if p.PropertyType = typeof<bool> then box (not (unbox<bool> (p.GetValue instance)))
            else distinctValue p
        p.SetValue(instance, v)
    instance

let expectSameSettings (expected: obj) (actual: obj) (except: string list) (route: string) =
    for p in settable (expected.GetType()) do
        if not (List.contains p.Name except) then
            let e, a = p.GetValue expected, p.GetValue actual
            let same =
                match e, a with
                | (:? System.Collections.IEnumerable as xs), (:? System.Collections.IEnumerable as ys) when not (e :? string) ->
                    List.ofSeq (Seq.cast<obj> xs) = List.ofSeq (Seq.cast<obj> ys)
                | _ -> obj.Equals(e, a)
            Expect.isTrue same $"{route}: {p.Name} was {e}, arrived as {a}"

// ---------- one settings record ----------

let settings =
    testList "one settings record" [
        testCase "every TfdsLoadOptions setting reaches the loader through TFDatasetSamplerOptions.Load" <| fun () ->
            let load = setAll (TfdsLoadOptions(DatasetName = "x")) :?> TfdsLoadOptions
            let o = TFDatasetSamplerOptions(Load = load)
            expectSameSettings load (TFDatasetMultiShotMemorySampler.EffectiveLoadOptions o) [] "façade"
            // The one fallback: a null load logger takes the sampler's.
            let log = ListLogger()
            let o2 = TFDatasetSamplerOptions(Load = TfdsLoadOptions(DatasetName = "x", Logger = null), Logger = log)
            Expect.isTrue (obj.ReferenceEquals(TFDatasetMultiShotMemorySampler.EffectiveLoadOptions(o2).Logger, log)) "logger fallback"

        testCase "TFDatasetSamplerOptions declares no setting of its own besides Load" <| fun () ->
            let own = settable typeof<TFDatasetSamplerOptions> |> Array.filter (fun p -> p.DeclaringType = typeof<TFDatasetSamplerOptions>) |> Array.map (fun p -> p.Name)
            Expect.equal own [| "Load" |] "loading settings live on TfdsLoadOptions only"

        testCase "every plan setting of SamplerOptions round-trips through ManifestSampling; the others are named here" <| fun () ->
            // Settings that do not change a plan, so a manifest does not record them. A new SamplerOptions setting must be
            // added to ManifestSampling (From and ApplyTo) or to this list.
            let notPlan = [ "Augmenter"; "Logger"; "NumAugmentationsPerExample"; "Pool"; "Preprocess"; "ReadAheadBatches"; "Warmup" ]
            let manifest = settable typeof<ManifestSampling> |> Array.map (fun p -> p.Name) |> Set.ofArray
            let options = settable typeof<SamplerOptions> |> Array.map (fun p -> p.Name) |> Set.ofArray
            Expect.equal manifest (options - Set.ofList notPlan) "ManifestSampling = the plan settings of SamplerOptions"
            let o = setAll (SamplerOptions()) :?> SamplerOptions
            let m = ManifestSampling.From o
            let back = m.ApplyTo(SamplerOptions())
            expectSameSettings o back notPlan "From then ApplyTo"
            let m2 = setAll (ManifestSampling()) :?> ManifestSampling
            expectSameSettings m2 (ManifestSampling.From(m2.ApplyTo(SamplerOptions()))) [] "ApplyTo then From"

        testCase "the CLI maps each loading option onto TfdsLoadOptions and leaves the others at the library default" <| fun () ->
            let common = Samplers.Cli.CommonOptions()
            let cmd = System.CommandLine.RootCommand()
            for o in common.LoadOptions do cmd.Options.Add o
            let parse (args: string list) = common.ToLoadOptions(cmd.Parse(Array.ofList args), "ds")
            let defaults = TfdsLoadOptions(DatasetName = "ds")
            let plain = parse []
            // Not exposed by the CLI, so the library's defaults; the CLI downloads only with --download.
            expectSameSettings defaults plain [ "Download" ] "CLI without options"
            Expect.isNull plain.Download "no download without --download"
            let given = parse [ "--data-dir"; "d"; "--cache-dir"; "c"; "--no-cache"; "--splits"; "train[:5],test"; "--x-key"; "emb"; "--y-key"; "y"; "--download"; "--table"; "memory"; "--max-image-pixels"; "1000"; "--s3-endpoint"; "http://127.0.0.1:9000"; "--s3-anonymous" ]
            let expected = TfdsLoadOptions(DatasetName = "ds", DataDir = "d", CacheDir = "c", UseCache = false, Splits = [| "train[:5]"; "test" |], XKey = "emb", YKey = "y", Table = TableBacking.Memory, MaxImagePixels = 1000L,
                                           ObjectStore = Samplers.Storage.ObjectStoreOptions(Endpoint = "http://127.0.0.1:9000", Anonymous = true))
            expectSameSettings expected given [ "Download" ] "CLI with every loading option"
            Expect.isNotNull given.Download "--download"
            // A setting the CLI does not map must be one it deliberately leaves at the default: naming them here makes a
            // new TfdsLoadOptions setting a visible decision for the CLI too.
            let mapped = [ "CacheDir"; "DataDir"; "DatasetName"; "Download"; "MaxImagePixels"; "ObjectStore"; "Preprocess"; "Splits"; "Table"; "UseCache"; "XKey"; "YKey" ]
            // ReducedJpegDecode is library-only for now (its pixels are not TF's: docs/IMAGES.md).
            let leftAtDefault = [ "ChunkBytes"; "Logger"; "MaxDegreeOfParallelism"; "ReducedJpegDecode" ]
            Expect.equal (settable typeof<TfdsLoadOptions> |> Array.map (fun p -> p.Name) |> List.ofArray) (List.sort (mapped @ leftAtDefault)) "every setting is mapped or left at the default"
            let full = common.ToOptions(cmd.Parse([| "--data-dir"; "d" |]), "ds")
            Expect.equal full.Load.DataDir "d" "ToOptions holds the same load options"
    ]

// ---------- one load route; a misspelled name ----------

let closedPortUrl () =
    let l = new TcpListener(IPAddress.Loopback, 0)
    l.Start()
    let p = (l.LocalEndpoint :?> IPEndPoint).Port
    l.Stop()
    $"http://127.0.0.1:{p}"

let misspelled =
    testList "a misspelled dataset name" [
        testCase "with a local data directory: fails at once, listing the datasets there and naming library settings" <| fun () ->
            use data = new TempDir()
            Samplers.Tests.Io.LoaderTests.writeToy data.Path Samplers.Tests.Io.LoaderTests.digitFeatures [ "train", [ Samplers.Tests.Io.LoaderTests.toyDigits 4 ] ] |> ignore
            use bucket = new TempDir()
            use server = new Samplers.Tests.Io.DownloadTests.Server(bucket.Path)
            for name, download, what in
                [ "toyy", TfdsLoader.DownloadFromBucket(server.Url), "bucket answers 404"
                  "toyy:1.0.0", TfdsLoader.DownloadFromBucket(server.Url), "exact version, 404"
                  "toyy", TfdsLoader.DownloadFromBucket(closedPortUrl ()), "bucket unreachable"
                  "toyy", null, "download off" ] do
                let before = server.Requests.Length
                let o = TfdsLoadOptions(DatasetName = name, DataDir = data.Path, UseCache = false, Download = download)
                let e = throwsWith<DatasetNotFoundException> (fun () -> TfdsLoader.LoadAsync(o).GetAwaiter().GetResult() |> ignore) what
                Expect.stringContains e.Message "Datasets present: toy" $"{what}: lists what is there"
                Expect.isFalse (e.Message.Contains "--") $"{what}: names no CLI flag: {e.Message}"
                if not (isNull download) then
                    Expect.stringContains e.Message "TfdsLoadOptions" $"{what}: names library settings"
                    Expect.isNotNull e.InnerException $"{what}: the download's error inside"
                    Expect.isLessThanOrEqual (server.Requests.Length - before) 1 $"{what}: one request, no retry"
            Expect.isFalse (Directory.Exists(Path.Combine(data.Path, "toyy"))) "nothing made for the misspelled name"

        testCase "the façade's default download follows the same route (the sampler options hold the load options)" <| fun () ->
            use data = new TempDir()
            Samplers.Tests.Io.LoaderTests.writeToy data.Path Samplers.Tests.Io.LoaderTests.digitFeatures [ "train", [ Samplers.Tests.Io.LoaderTests.toyDigits 4 ] ] |> ignore
            let o = TFDatasetSamplerOptions(Load = TfdsLoadOptions(DatasetName = "toyy", DataDir = data.Path, UseCache = false, Download = TfdsLoader.DownloadFromBucket(closedPortUrl ())))
            let e = throwsWith<DatasetNotFoundException> (fun () -> TFDatasetMultiShotMemorySampler.LoadAsync(o).GetAwaiter().GetResult() |> ignore) "façade"
            Expect.stringContains e.Message "Datasets present: toy" "lists what is there"

        testCase "the CLI adds its own flags to the library's message" <| fun () ->
            use data = new TempDir()
            Samplers.Tests.Io.LoaderTests.writeToy data.Path Samplers.Tests.Io.LoaderTests.digitFeatures [ "train", [ Samplers.Tests.Io.LoaderTests.toyDigits 4 ] ] |> ignore
            use err = new StringWriter()
            let code = Samplers.Cli.Program.Run([| "run"; "toyy"; "--data-dir"; data.Path; "--no-cache" |], TextWriter.Null, err)
            Expect.equal code Samplers.Cli.Program.ExitData "a data error"
            Expect.stringContains (err.ToString()) "Datasets present: toy" "the library's listing"
            Expect.stringContains (err.ToString()) "--download" "the CLI's hint"
    ]

// ---------- the TFDS rules on the feature spec, once ----------

let spec kind dtype (shape: int list) = FeatureSpec("f", kind, "tfds." + string kind, dtype, Array.ofList shape)
let specWith kind dtype (shape: int list) (encoding: TensorEncoding) (inSequence: bool) =
    FeatureSpec("f", kind, "tfds." + string kind, dtype, Array.ofList shape, Encoding = encoding, InSequence = inSequence)

let featureRules =
    testList "feature spec rules" [
        testCase "IsLabel: scalar ClassLabel or integer/bool Tensor as a plain list; the loader and the decoder agree" <| fun () ->
            let cases =
                [ spec FeatureKind.ClassLabel DType.Int64 [], true
                  spec FeatureKind.Tensor DType.Int32 [], true
                  spec FeatureKind.Tensor DType.Bool [], true
                  spec FeatureKind.Tensor DType.UInt8 [], true
                  spec FeatureKind.Tensor DType.Float32 [], false
                  spec FeatureKind.Tensor DType.Bytes [], false
                  spec FeatureKind.Tensor DType.Int64 [ 2 ], false
                  specWith FeatureKind.Tensor DType.Int64 [] TensorEncoding.Bytes false, false
                  specWith FeatureKind.ClassLabel DType.Int64 [] TensorEncoding.None true, false
                  spec FeatureKind.Image DType.UInt8 [ 2; 2; 1 ], false ]
            let features = Samplers.Tfds.Protos.Features()
            let f = Samplers.Tfds.Protos.Feature(Int64List = Samplers.Tfds.Protos.Int64List())
            f.Int64List.Value.Add 4L
            features.Feature.Add("f", f)
            for s, expected in cases do
                Expect.equal s.IsLabel expected $"{s}"
                // The decoder applies the same rule: a non-label spec is refused before reading.
                let read () = FeatureDecoder.ReadLabel(s, features, RecordLocation("x", 0L, 0L)) |> ignore
                if expected then read () else throwsWith<ArgumentException> read $"decoder refuses {s}" |> ignore

        testCase "IsNumeric, StorageDType, StorageShape" <| fun () ->
            Expect.isTrue (spec FeatureKind.Image DType.UInt8 [ -1; -1; 3 ]).IsNumeric "image"
            Expect.isTrue (spec FeatureKind.Tensor DType.Float32 [ 4 ]).IsNumeric "float tensor"
            Expect.isFalse (spec FeatureKind.Tensor DType.Bytes []).IsNumeric "bytes tensor"
            Expect.isFalse (spec FeatureKind.Text DType.Bytes []).IsNumeric "text"
            Expect.equal (spec FeatureKind.BoundingBox DType.Float32 []).StorageShape [| 4 |] "a bbox is 4 floats"
            Expect.equal (specWith FeatureKind.BoundingBox DType.Float32 [] TensorEncoding.None true).StorageShape [| -1; 4 |] "a sequence of them"
            Expect.equal (spec FeatureKind.Tensor DType.Int16 [ 3; 2 ]).StorageShape [| 3; 2 |] "others keep their shape"
            Expect.equal (spec FeatureKind.ClassLabel DType.Int64 []).StorageDType DType.Int64 "ClassLabel int64"
            Expect.equal (spec FeatureKind.BoundingBox DType.Float32 []).StorageDType DType.Float32 "BBox float32"
            Expect.equal (spec FeatureKind.Tensor DType.UInt16 []).StorageDType DType.UInt16 "Tensor keeps its dtype"
            Expect.equal (FeatureDecoder.ByteCount(spec FeatureKind.ClassLabel DType.Int64 [], ReadOnlySpan [||])) 8 "byte count from StorageDType"
            Expect.equal (FeatureDecoder.ByteCount(spec FeatureKind.Text DType.Bytes [], ReadOnlySpan [| 5 |])) 5 "text is bytes"
    ]

// ---------- the epoch and the warmup flag as one state ----------

/// A logger that, on "Warmup complete", waits until `gate` is set (bounded), so batches requested meanwhile see the
/// moment between the epoch's increment and the end of OnEpochEnd.
type GatedLogger(gate: ManualResetEventSlim) =
    interface ILogger with
        member _.BeginScope<'TState>(_state: 'TState) : IDisposable = null
        member _.IsEnabled(_level: LogLevel) = true
        member _.Log<'TState>(_level: LogLevel, _eventId: EventId, state: 'TState, ex: exn, formatter: Func<'TState, exn, string>) =
            if formatter.Invoke(state, ex) = "Warmup complete" then gate.Wait(TimeSpan.FromSeconds 30.0) |> ignore

let warmupState =
    testList "epoch and warmup" [
        testCase "a batch requested while OnEpochEnd logs 'Warmup complete' has the warmup flag of its epoch" <| fun () ->
            // Before the fix OnEpochEnd raised the epoch, logged, then cleared the flag: a batch in between had epoch 1 and
            // IsWarmup true. The gate holds OnEpochEnd inside the log call until such a batch exists.
            use gate = new ManualResetEventSlim(false)
            let s = new MultiShotMemorySampler(table10x8 (), SamplerOptions(ClassesPerBatch = 2, ExamplesPerClassPerBatch = 2, StepsPerEpoch = 50, Warmup = 1, Logger = GatedLogger(gate)))
            let ender = Task.Run(fun () -> s.OnEpochEnd())
            let mutable seen = None
            let mutable tries = 0
            while seen.IsNone && tries < 10_000_000 do
                tries <- tries + 1
                use b = s.GenerateBatch 0
                if b.Key.Epoch = 1 then seen <- Some b.IsWarmup
            gate.Set()
            ender.Wait()
            Expect.equal seen (Some false) "epoch 1 is past warmup 1"
            Expect.isFalse s.IsWarmup "after"

        testCase "IsWarmup agrees with the epoch of every batch while another thread ends epochs" <| fun () ->
            let warmup = 40
            let s = new MultiShotMemorySampler(table10x8 (), SamplerOptions(ClassesPerBatch = 2, ExamplesPerClassPerBatch = 2, StepsPerEpoch = 50, Warmup = warmup))
            let epochs = 80
            let mutable stop = 0
            let bad = Collections.Concurrent.ConcurrentQueue<int * bool>()
            let workers =
                [ for w in 0 .. 3 ->
                    Task.Run(fun () ->
                        let mutable n = 0
                        // Bounded: at most 200 000 batches per worker, fewer once the epochs are done.
                        while Volatile.Read(&stop) = 0 && n < 200_000 do
                            use b = s.GenerateBatch(n % 50)
                            if b.IsWarmup <> (b.Key.Epoch < warmup) then bad.Enqueue((b.Key.Epoch, b.IsWarmup))
                            if s.IsWarmupAt(b.Key.Epoch) <> b.IsWarmup then bad.Enqueue((b.Key.Epoch, b.IsWarmup))
                            n <- n + 1) ]
            for _ in 1 .. epochs do
                s.OnEpochEnd()
                Thread.Yield() |> ignore
            Volatile.Write(&stop, 1)
            Task.WaitAll(Array.ofList workers)
            Expect.isEmpty (List.ofSeq bad) "every batch's IsWarmup matches its epoch"
            Expect.equal s.Epoch epochs "every OnEpochEnd counted"
            Expect.isFalse s.IsWarmup "warmup over"

        testCase "'Warmup complete' is logged exactly once when many threads end epochs" <| fun () ->
            let log = ListLogger()
            let s = new MultiShotMemorySampler(table10x8 (), SamplerOptions(ClassesPerBatch = 2, ExamplesPerClassPerBatch = 2, StepsPerEpoch = 50, Warmup = 5, Logger = log))
            Parallel.For(0, 64, fun _ -> s.OnEpochEnd()) |> ignore
            Expect.equal s.Epoch 64 "64 epochs"
            Expect.equal (log.Texts LogLevel.Information |> List.filter ((=) "Warmup complete")).Length 1 "once"
    ]

[<Tests>]
let tests = testList "Facade.Settings" [ settings; misspelled; featureRules; warmupState ]
