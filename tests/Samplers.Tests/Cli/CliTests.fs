module Samplers.Tests.Cli.CliTests

open System
open System.Buffers.Binary
open System.IO
open System.IO.Compression
open System.Text
open System.Text.Json
open Expecto
open Samplers
open Samplers.Core
open Samplers.Core.Statistics
open Samplers.Experiments
open Samplers.Cli.Export
open Samplers.Imaging
open Samplers.Tfds
open Samplers.Tests.TestUtil

// ---------- fixtures ----------

let classNames = [| "ant"; "bee"; "cat"; "dog"; "eel" |]

/// Example i of the fixture: label i % 5, a 28x28x1 procedural digit PNG (digit = label, seed = i) as `image`,
/// and a float32 [4] tensor `emb` = [i; label; i / 2; -1] (so exported bytes say where they came from).
let exampleBytes (i: int) =
    let label = i % 5
    ExampleBuilder()
        .AddImage("image", ProceduralDigits.DrawPng(label, uint64 i))
        .AddLabel("label", int64 label)
        .AddFloats("emb", float32 i, float32 label, float32 i / 2.0f, -1.0f)
        .ToByteArray()

let imageSpec = FeatureSpec("image", FeatureKind.Image, "tensorflow_datasets.core.features.image_feature.Image", DType.UInt8, [| 28; 28; 1 |], EncodingFormat = "png")
let labelSpec = FeatureSpec("label", FeatureKind.ClassLabel, "tensorflow_datasets.core.features.class_label_feature.ClassLabel", DType.Int64, [||], NumClasses = 5L, ClassNames = classNames)
let embSpec = FeatureSpec("emb", FeatureKind.Tensor, "tensorflow_datasets.core.features.tensor_feature.Tensor", DType.Float32, [| 4 |])

/// Writes dataset `tiny:1.0.0` (train: examples 0..59 in 2 shards, test: 60..79) under dataDir.
let writeFixture (dataDir: string) =
    let w = TfdsDatasetWriter(Path.Combine(dataDir, "tiny", "1.0.0"), "tiny", "1.0.0", [ imageSpec; labelSpec; embSpec ])
    w.WriteSplit("train", [| for i in 0 .. 59 -> exampleBytes i |], 2) |> ignore
    w.WriteSplit("test", [| for i in 60 .. 79 -> exampleBytes i |], 1) |> ignore
    w.Complete()

/// Runs the CLI in-process: (exit code, stdout, stderr).
let cli (args: string list) =
    use out = new StringWriter()
    use err = new StringWriter()
    let code = Samplers.Cli.Program.Run(Array.ofList args, out, err)
    code, out.ToString(), err.ToString()

let withFixture (f: string -> unit) =
    use t = new TempDir()
    let data = Path.Combine(t.Path, "data")
    writeFixture data
    f data

let json (text: string) = JsonDocument.Parse(text).RootElement

/// Example number of each table row, read back through `export --x-key emb` (emb[0] = i): the CLI loads in TFDS's
/// read order, which interleaves the two train shards.
let rowExamples (data: string) =
    let dir = Path.Combine(Path.GetDirectoryName data, "order-" + Guid.NewGuid().ToString("N"))
    let code = Samplers.Cli.Program.Run([| "export"; "tiny"; "--data-dir"; data; "--cache-dir"; data + "-cache"; "--x-key"; "emb"; "--format"; "npy"; "--out"; dir |], TextWriter.Null, new StringWriter())
    if code <> 0 then failwithf "export for the row order failed: %d" code
    let b = File.ReadAllBytes(Path.Combine(dir, "x.npy"))
    let hlen = int (BinaryPrimitives.ReadUInt16LittleEndian(ReadOnlySpan(b, 8, 2)))
    [| for r in 0 .. 79 -> int (BinaryPrimitives.ReadSingleLittleEndian(ReadOnlySpan(b, 10 + hlen + 16 * r, 4))) |]
let lines (text: string) = text.Split('\n', StringSplitOptions.RemoveEmptyEntries ||| StringSplitOptions.TrimEntries) |> List.ofArray

/// The CLI's own build output (built with the tests as a project dependency), for real child processes.
let cliDll =
    lazy
        (let config = if AppContext.BaseDirectory.Contains("/Release/") || AppContext.BaseDirectory.Contains("\\Release\\") then "Release" else "Debug"
         let p = Path.Combine(repoRoot.Value, "src", "Samplers.Cli", "bin", config, "net10.0", "Samplers.Cli.dll")
         if not (File.Exists p) then failwithf "%s not built" p
         p)

/// Runs `dotnet Samplers.Cli.dll args` as a child process: (exit code, stdout, stderr).
let cliChild (args: string list) =
    runDotnet None (cliDll.Value :: args) 60000 "samplers child did not finish within 60 s"

/// Parses a .npy: (descr, shape, data bytes), checking the magic, version 1.0 and the 64-byte alignment.
let readNpy (bytes: byte[]) =
    Expect.sequenceEqual bytes[0..5] [| 0x93uy; byte 'N'; byte 'U'; byte 'M'; byte 'P'; byte 'Y' |] "npy magic"
    Expect.equal (bytes[6], bytes[7]) (1uy, 0uy) "npy version 1.0"
    let hlen = int (BinaryPrimitives.ReadUInt16LittleEndian(ReadOnlySpan(bytes, 8, 2)))
    Expect.equal ((10 + hlen) % 64) 0 "data starts on a 64-byte boundary"
    let header = Encoding.ASCII.GetString(bytes, 10, hlen)
    Expect.isTrue (header.EndsWith "\n") "header ends with a newline"
    let m = RegularExpressions.Regex.Match(header, @"^\{'descr': '([^']+)', 'fortran_order': False, 'shape': \(([0-9, ]*)\), \} *\n$")
    Expect.isTrue m.Success $"header dict has NumPy's form: {header}"
    let shape = m.Groups[2].Value.Split(',', StringSplitOptions.RemoveEmptyEntries ||| StringSplitOptions.TrimEntries) |> Array.map int64
    m.Groups[1].Value, shape, bytes[10 + hlen ..]

let npzMember (path: string) (name: string) =
    use z = ZipFile.OpenRead path
    let e = z.GetEntry(name + ".npy")
    Expect.isNotNull e $"{name}.npy in the archive"
    use s = e.Open()
    use ms = new MemoryStream()
    s.CopyTo ms
    readNpy (ms.ToArray())

let i64s (b: byte[]) = Array.init (b.Length / 8) (fun i -> BinaryPrimitives.ReadInt64LittleEndian(ReadOnlySpan(b, 8 * i, 8)))
let f32s (b: byte[]) = Array.init (b.Length / 4) (fun i -> BinaryPrimitives.ReadSingleLittleEndian(ReadOnlySpan(b, 4 * i, 4)))

// ---------- library helpers ----------

let smallIndex () = ClassIndex.Build(ReadOnlySpan [| for i in 0 .. 59 -> int64 (i % 6) |])

let libraryTests =
    testList "library helpers" [
        testCase "PlanDigest.Compute equals adding the same plans one by one, and changes with the seed" <| fun () ->
            let config = PlanConfig(3, 2, 20)
            let index = smallIndex ()
            use d = new PlanDigest()
            for e in 0 .. 1 do
                for b in 0 .. 19 do d.Add(Planner(config, index).Plan({ Seed = 5UL; Epoch = e; BatchId = b }))
            let oneByOne = d.Finish()
            Expect.equal (PlanDigest.Compute(Planner(config, index), 5UL, 0, 2, 0, 20)) oneByOne "same digest"
            Expect.equal oneByOne.Length 64 "64 hex digits"
            Expect.notEqual (PlanDigest.Compute(Planner(config, index), 6UL, 0, 2, 0, 20)) oneByOne "another seed, another digest"
            Expect.notEqual (PlanDigest.Compute(Planner(config, index), 5UL, 0, 2, 0, 19)) oneByOne "fewer batches, another digest"
        testCase "PlanDigest refuses mismatched spans, a batch range past the epoch, and use after Finish" <| fun () ->
            use d = new PlanDigest()
            let e = throwsWith<ArgumentException> (fun () -> d.Add({ Seed = 0UL; Epoch = 0; BatchId = 0 }, 0, ReadOnlySpan [| 1; 2 |], ReadOnlySpan [| 1 |])) "lengths"
            Expect.stringContains e.Message "same length" "names the rule"
            d.Finish() |> ignore
            let e2 = throwsWith<InvalidOperationException> (fun () -> d.Add({ Seed = 0UL; Epoch = 0; BatchId = 0 }, 0, ReadOnlySpan [| 1 |], ReadOnlySpan [| 1 |])) "finished"
            Expect.stringContains e2.Message "finished" "says why"
            let e3 = throwsWith<ArgumentOutOfRangeException> (fun () -> PlanDigest.Compute(Planner(PlanConfig(2, 2, 10), smallIndex ()), 0UL, 0, 1, 5, 6) |> ignore) "range"
            Expect.stringContains e3.Message "BatchesPerRank" "names the limit"
        testCase "BalanceTally: row counts, visits, coverage, and a chi-square over visits that flags imbalance" <| fun () ->
            let t = BalanceTally(3, 10, 10)
            // Three batches of 2 classes x 2 rows: class 0 visited 3 times, classes 1 and 2 twice... as runs of rows.
            t.Add(ReadOnlySpan [| 0; 1; 2; 3 |], ReadOnlySpan [| 0; 0; 1; 1 |])
            t.Add(ReadOnlySpan [| 4; 5; 0; 1 |], ReadOnlySpan [| 2; 2; 0; 0 |])
            t.Add(ReadOnlySpan [| 0; 6; 3; 3 |], ReadOnlySpan [| 0; 0; 1; 1 |])
            t.Add(ReadOnlySpan [| 7; 7 |], ReadOnlySpan [| 2; 2 |])
            let s = t.Summary()
            Expect.equal s.Counts [| 6L; 4L; 4L |] "rows per class"
            Expect.equal s.Visits [| 3L; 2L; 2L |] "visits per class"
            Expect.equal (s.Min, s.Max, s.Rows, s.DistinctExamples) (4L, 6L, 14L, 8) "min, max, rows, distinct"
            Expect.floatClose Accuracy.high s.Coverage 0.8 "coverage"
            // Visits 3, 2, 2 against 7/3 each: chi-square 2/7 with df 2, so p = exp(-1/7).
            Expect.floatClose Accuracy.high s.ChiSquare (2.0 / 7.0) "chi-square over visits"
            Expect.floatClose Accuracy.high s.PValue (exp (-1.0 / 7.0)) "p-value of chi-square(2)"
            let skewed = BalanceTally.ChiSquareUniform(ReadOnlySpan [| 1000L; 10L; 10L |])
            Expect.isLessThan skewed.PValue 1e-10 "a skewed count has a tiny p-value"
            Expect.equal skewed.DegreesOfFreedom 2 "degrees of freedom"
            let e = throwsWith<ArgumentException> (fun () -> t.Add(ReadOnlySpan [| 10 |], ReadOnlySpan [| 0 |])) "row out of range"
            Expect.stringContains e.Message "outside [0, 10)" "names the range"
        testCase "BalanceTally over Independent plans of a correct sampler does not flag imbalance (fixed seeds)" <| fun () ->
            // 10 classes, 4 per batch, 4 rows each: a row-level test would overstate the evidence fourfold.
            let index = ClassIndex.Build(ReadOnlySpan [| for i in 0 .. 999 -> int64 (i % 10) |])
            let config = PlanConfig(4, 4, 1000)
            for seed in [ 1UL; 7UL; 42UL ] do
                let t = BalanceTally(index, 1000)
                let planner = Planner(config, index)
                for b in 0 .. 999 do t.Add(planner.Plan({ Seed = seed; Epoch = 0; BatchId = b }))
                Expect.isGreaterThan (t.Summary().PValue) 0.001 $"seed {seed}: p-value of a uniform sampler"
        testCase "NpyWriter: a header in NumPy's form for 0-, 1- and 3-d shapes; wrong byte counts are refused" <| fun () ->
            for shape in [ [||]; [| 3L |]; [| 2L; 3L; 4L |] ] do
                use ms = new MemoryStream()
                let n = shape |> Array.fold (*) 1L |> int
                NpyWriter.Write(ms, DType.Int16, ReadOnlySpan shape, ReadOnlySpan(Array.zeroCreate<byte> (2 * n)))
                let descr, got, data = readNpy (ms.ToArray())
                Expect.equal descr "<i2" "descr"
                Expect.equal got shape "shape"
                Expect.equal data.Length (2 * n) "data length"
            use ms = new MemoryStream()
            let w = NpyWriter(ms, DType.Float32, ReadOnlySpan [| 2L |])
            w.Write(ReadOnlySpan(Array.zeroCreate<byte> 4))
            let e = throwsWith<InvalidOperationException> (fun () -> w.Complete()) "short"
            Expect.stringContains e.Message "announced 8 data bytes but 4" "both counts"
            let e2 = throwsWith<ArgumentException> (fun () -> NpyWriter.Descr DType.Bytes |> ignore) "bytes dtype"
            Expect.stringContains e2.Message "no fixed-size NumPy form" "says why"
        testCase "NpyWriter.WriteStrings writes NumPy unicode, UTF-32 little-endian, zero-padded" <| fun () ->
            use ms = new MemoryStream()
            NpyWriter.WriteStrings(ms, [| "ab"; "c"; "" |])
            let descr, shape, data = readNpy (ms.ToArray())
            Expect.equal (descr, shape) ("<U2", [| 3L |]) "descr and shape"
            Expect.equal data (Array.concat [ "a\000\000\000b\000\000\000"B; "c\000\000\000\000\000\000\000"B; Array.zeroCreate 8 ]) "bytes"
        testCase "an abandoned NpzWriter leaves no file, a completed one publishes the archive" <| fun () ->
            use t = new TempDir()
            let path = Path.Combine(t.Path, "a.npz")
            (use w = new NpzWriter(path)
             w.Add("y", fun s -> NpyWriter.Write(s, ReadOnlySpan [| 1L; 2L |])))
            Expect.isEmpty (Directory.GetFiles t.Path) "nothing left behind"
            (use w = new NpzWriter(path)
             w.Add("y", fun s -> NpyWriter.Write(s, ReadOnlySpan [| 1L; 2L |]))
             w.Complete())
            let _, shape, data = npzMember path "y"
            Expect.equal (shape, i64s data) ([| 2L |], [| 1L; 2L |]) "y round-trips"
            Expect.equal (Directory.GetFiles t.Path).Length 1 "only the archive"
        testCase "NumpyExport.SamplerRows and PlannedBatches: the sampler's rows ascending; planned rows in plan order with index, batch, epoch" <| fun () ->
            let table = Samplers.Tests.Facade.SamplerTests.intTable [ 5; 6; 7 ] ExampleTable.DefaultChunkBytes
            let s = new MultiShotMemorySampler(table, SamplerOptions(ClassesPerBatch = 2, ExamplesPerClassPerBatch = 2, StepsPerEpoch = 4, Seed = 3UL, ClassList = [| 0L; 20L |]))
            let rows = (NumpyExport.SamplerRows(s, NumpyExportOptions(Compress = true)))
            Expect.isTrue rows.Compress "keeps the given settings"
            Expect.equal (List.ofSeq rows.Rows) [ for i in 0 .. table.Count - 1 do if table.Labels[i] <> 10L then i ] "rows of classes 0 and 20, ascending"
            let o = NumpyExport.PlannedBatches(s, 1, 1, 3)
            let expected = [ for b in 1 .. 2 do yield! s.Planner.Plan({ Seed = 3UL; Epoch = 1; BatchId = b }).Indices.ToArray() ]
            Expect.equal (List.ofSeq o.Rows) expected "plan order"
            Expect.equal (List.ofArray o.Extra["index"]) (expected |> List.map int64) "index = source row"
            Expect.equal o.Extra["batch"] [| 1L; 1L; 1L; 1L; 2L; 2L; 2L; 2L |] "batch ids"
            Expect.equal o.Extra["epoch"] (Array.create 8 1L) "epoch"
            let e = throwsWith<ArgumentOutOfRangeException> (fun () -> NumpyExport.PlannedBatches(s, 0, 0, s.Count + 1) |> ignore) "past the epoch"
            Expect.stringContains e.Message "endBatch" "names the argument"
        testCase "sampler.Plans and DigestPlans: the planner's plans epoch by epoch, the core digest, the range checked; the epoch counter untouched" <| fun () ->
            let table = Samplers.Tests.Facade.SamplerTests.intTable [ 5; 6; 7; 8 ] ExampleTable.DefaultChunkBytes
            let s = new MultiShotMemorySampler(table, SamplerOptions(ClassesPerBatch = 3, ExamplesPerClassPerBatch = 2, StepsPerEpoch = 9, Seed = 4UL, Mode = SamplingMode.Coverage, Rank = 1, WorldSize = 2))
            let plans = s.Plans(2, 2, 1, 3) |> List.ofSeq
            Expect.equal [ for p in plans -> p.Key.Epoch, p.Key.BatchId ] [ 2, 1; 2, 2; 3, 1; 3, 2 ] "epoch by epoch, rank-local batch ids"
            for p in plans do
                let q = s.Planner.Plan p.Key
                Expect.equal (p.Indices.ToArray(), p.Labels.ToArray(), p.GlobalBatchId) (q.Indices.ToArray(), q.Labels.ToArray(), q.GlobalBatchId) $"plan {p.Key}"
            Expect.equal (s.DigestPlans(2, 2, 1, 3)) (PlanDigest.Compute(s.Planner, 4UL, 2, 2, 1, 2)) "the core's digest"
            use d = new PlanDigest()
            for p in plans do d.Add p
            Expect.equal (s.DigestPlans(2, 2, 1, 3)) (d.Finish()) "the digest of exactly the plans Plans returns"
            // The cancellable overload (its own loop over the planner) gives the same digest; a cancelled token stops it.
            use cts = new Threading.CancellationTokenSource()
            Expect.equal (s.DigestPlans(2, 2, 1, 3, cts.Token)) (s.DigestPlans(2, 2, 1, 3)) "with a token: the same digest"
            Expect.equal (s.DigestPlans(0, 3, 0, s.Count, cts.Token)) (s.DigestPlans(0, 3, 0, s.Count)) "with a token, whole epochs: the same digest"
            cts.Cancel()
            throwsWith<OperationCanceledException> (fun () -> s.DigestPlans(0, 3, 0, s.Count, cts.Token) |> ignore) "cancelled" |> ignore
            Expect.equal s.Epoch 0 "previewing does not advance the epoch"
            for bad in [ (fun () -> s.Plans(0, 1, 0, s.Count + 1) |> ignore); (fun () -> s.Plans(0, 1, 3, 2) |> ignore); (fun () -> s.Plans(-1, 1, 0, 1) |> ignore); (fun () -> s.DigestPlans(0, 0, 0, 1) |> ignore) ] do
                throwsWith<ArgumentOutOfRangeException> bad "refused eagerly" |> ignore
        testCase "sampler.RunEpochs: the tally of every batch served, per class with names, and the digest DigestPlans gives for the same epochs" <| fun () ->
            let table = Samplers.Tests.Facade.SamplerTests.intTable [ 5; 6; 7 ] ExampleTable.DefaultChunkBytes
            let options = SamplerOptions(ClassesPerBatch = 2, ExamplesPerClassPerBatch = 3, StepsPerEpoch = 7, Seed = 9UL)
            let s = new MultiShotMemorySampler(table, options)
            let expectedDigest = s.DigestPlans(0, 3, 0, s.Count)
            let tally = BalanceTally(s.ClassIndex, table.Count)
            for e in 0 .. 2 do
                for p in s.Plans(e, 1, 0, s.Count) do tally.Add p
            let expected = tally.Summary()
            let reported = ResizeArray<int64>()
            let r = s.RunEpochs(3, { new IProgress<int64> with member _.Report v = reported.Add v })
            Expect.equal r.PlanDigest expectedDigest "digest over the three epochs"
            Expect.equal (r.FirstEpoch, r.Epochs, r.Batches) (0, 3, 21L) "epochs and batches"
            Expect.equal s.Epoch 3 "the run advanced the epoch counter as a training loop does"
            Expect.equal [ for c in r.PerClass -> c.Rows ] (List.ofArray expected.Counts) "rows per class"
            Expect.equal [ for c in r.PerClass -> c.Visits ] (List.ofArray expected.Visits) "visits per class"
            Expect.equal [ for c in r.PerClass -> c.Label ] (List.ofSeq s.ClassList) "labels in ordinal order"
            Expect.equal [ for c in r.PerClass -> c.Name ] (List.ofSeq s.ClassNames) "names"
            Expect.equal (r.Balance.PValue, r.Balance.DistinctExamples, r.Balance.Rows) (expected.PValue, expected.DistinctExamples, 126L) "balance statistics"
            Expect.equal (Seq.last reported) 21L "progress ends at the batch count"
            let r2 = s.RunEpochs 1
            Expect.equal r2.PlanDigest (s.DigestPlans(3, 1, 0, s.Count)) "a second run continues at epoch 3"
            throwsWith<ArgumentOutOfRangeException> (fun () -> s.RunEpochs 0 |> ignore) "no epochs" |> ignore
            use cts = new Threading.CancellationTokenSource()
            cts.Cancel()
            throwsWith<OperationCanceledException> (fun () -> s.RunEpochs(1, null, cts.Token) |> ignore) "cancelled" |> ignore
        testCase "PlanText (CLI): CSV lines per row and one table line per batch, from the plan's key" <| fun () ->
            let plan = Planner(PlanConfig(2, 2, 10), smallIndex ()).Plan({ Seed = 5UL; Epoch = 3; BatchId = 4 })
            let idx, lab = plan.Indices.ToArray(), plan.Labels.ToArray()
            Expect.equal Samplers.Cli.PlanText.CsvHeader "epoch,batch,global_batch,row,index,label" "csv header"
            Expect.equal (Samplers.Cli.PlanText.CsvLines plan) [| for i in 0 .. 3 -> $"3,4,4,{i},{idx[i]},{lab[i]}" |] "csv rows"
            Expect.equal Samplers.Cli.PlanText.TableHeader "epoch   batch  global  labels | indices" "table header"
            let labels = String.Join(" ", lab)
            let indices = String.Join(" ", idx)
            Expect.equal (Samplers.Cli.PlanText.TableLine plan) $"    3       4       4  {labels} | {indices}" "table line"
            let wide = Planner(PlanConfig(2, 1, 200000, SamplingMode.Independent, 3, 4), ClassIndex.Build(ReadOnlySpan [| for i in 0 .. 9 -> int64 (i % 3) |])).Plan({ Seed = 1UL; Epoch = 123456; BatchId = 49999 })
            Expect.stringStarts (Samplers.Cli.PlanText.TableLine wide) "123456   49999  199999  " "wide numbers widen their columns"
        testCase "ExperimentManifest round-trips through JSON; a foreign file is a DataFormatException naming the key" <| fun () ->
            use t = new TempDir()
            let m =
                ExperimentManifest(
                    Experiment = "x",
                    Dataset = ManifestDataset(Name = "tiny:1.0.0", Splits = [| "train" |], Fingerprint = "ab", NumExamples = 3L),
                    Runs = [| ManifestRun(Label = "a", Sampling = ManifestSampling(Seed = 7UL, Mode = SamplingMode.Coverage, ClassList = [| 1L; 2L |]), PlanDigest = "cd", EpochCount = 2) |])
            let path = Path.Combine(t.Path, "manifest.json")
            m.Save path
            let back = ExperimentManifest.Load path
            Expect.equal back.Runs[0].Sampling.Seed 7UL "seed"
            Expect.equal back.Runs[0].Sampling.Mode SamplingMode.Coverage "mode"
            Expect.equal (List.ofSeq back.Runs[0].Sampling.ClassList) [ 1L; 2L ] "class list"
            Expect.equal back.Dataset.Fingerprint "ab" "fingerprint"
            Expect.stringContains (File.ReadAllText path) "\"mode\": \"Coverage\"" "mode written by name"
            File.WriteAllText(path, "{\"hello\": 1}")
            let e = throwsWith<DataFormatException> (fun () -> ExperimentManifest.Load path |> ignore) "foreign"
            Expect.stringContains e.Message "'format'" "names the key"
            let e2 = throwsWith<DatasetNotFoundException> (fun () -> ExperimentManifest.Load(Path.Combine(t.Path, "none.json")) |> ignore) "missing"
            Expect.stringContains e2.Message "does not exist" "says so"
    ]

// ---------- commands on a fixture ----------

let commandTests =
    testList "commands on a fixture" [
        testCase "info prints features, splits and per-class counts; --json parses" <| fun () ->
            withFixture <| fun data ->
                let code, out, _ = cli [ "info"; "tiny"; "--data-dir"; data; "--cache-dir"; data + "-cache" ]
                Expect.equal code 0 "exit 0"
                for s in [ "tiny:1.0.0"; "image"; "Image"; "uint8"; "(28, 28, 1)"; "emb"; "float32"; "train"; "test"; "bee" ] do
                    Expect.stringContains out s $"mentions {s}"
                let code, out, err = cli [ "info"; "tiny"; "--data-dir"; data; "--cache-dir"; data + "-cache"; "--json"; "--quiet" ]
                Expect.equal code 0 "exit 0"
                Expect.equal err "" "nothing on stderr with --json --quiet"
                let j = json out
                Expect.equal (j.GetProperty("version").GetString()) "1.0.0" "version"
                let splits = [ for s in j.GetProperty("splits").EnumerateArray() -> s.GetProperty("name").GetString(), s.GetProperty("examples").GetInt64(), s.GetProperty("shards").GetInt32() ]
                Expect.equal splits [ "train", 60L, 2; "test", 20L, 1 ] "splits with sizes"
                let classes = [ for c in j.GetProperty("classes").EnumerateArray() -> c.GetProperty("name").GetString(), c.GetProperty("count").GetInt32() ]
                Expect.equal classes [ for n in classNames -> n, 16 ] "per-class counts over train+test"
                let feats = [ for f in j.GetProperty("features").EnumerateArray() -> f.GetProperty("key").GetString(), f.GetProperty("dtype").GetString() ]
                Expect.equal feats [ "image", "uint8"; "label", "int64"; "emb", "float32" ] "features"
        testCase "plan: JSON lines, CSV and table agree with the planner" <| fun () ->
            withFixture <| fun data ->
                let args = [ "plan"; "tiny"; "--data-dir"; data; "--cache-dir"; data + "-cache"; "-c"; "3"; "-e"; "2"; "-s"; "8"; "--seed"; "11"; "--batches"; "2:6" ]
                let code, out, _ = cli (args @ [ "--json" ])
                Expect.equal code 0 "exit 0"
                let rows = lines out |> List.map json
                Expect.equal rows.Length 4 "one line per batch"
                // The same plans from the library directly, over the labels in the CLI's row order.
                let ex = rowExamples data
                Expect.equal (Array.sort ex) [| 0 .. 79 |] "every example once"
                let table = ExampleTable.From(ReadOnlySpan [| for i in 0 .. 79 -> 0uy |], ReadOnlySpan [| 1 |], ReadOnlySpan [| for r in 0 .. 79 -> int64 (ex[r] % 5) |])
                let s = new MultiShotMemorySampler(table, SamplerOptions(ClassesPerBatch = 3, ExamplesPerClassPerBatch = 2, StepsPerEpoch = 8, Seed = 11UL))
                for r in rows do
                    let b = r.GetProperty("batch").GetInt32()
                    let plan = s.Planner.Plan({ Seed = 11UL; Epoch = 0; BatchId = b })
                    let labels = [| for v in r.GetProperty("labels").EnumerateArray() -> v.GetInt64() |]
                    let indices = [| for v in r.GetProperty("indices").EnumerateArray() -> v.GetInt32() |]
                    Expect.equal labels (plan.Labels.ToArray()) $"labels of batch {b}"
                    Expect.equal indices (plan.Indices.ToArray()) $"indices of batch {b}"
                    Expect.equal (labels |> Array.distinct |> Array.length) 3 "three classes"
                    for i in 0 .. indices.Length - 1 do Expect.equal (int64 (ex[indices[i]] % 5)) labels[i] "index belongs to its class"
                let code, csv, _ = cli (args @ [ "--format"; "csv" ])
                Expect.equal code 0 "csv exit 0"
                let csvLines = lines csv
                Expect.equal csvLines.Head "epoch,batch,global_batch,row,index,label" "csv header"
                Expect.equal csvLines.Length (1 + 4 * 6) "one line per row"
                let code, tableOut, _ = cli args
                Expect.equal code 0 "table exit 0"
                Expect.equal (lines tableOut).Length 5 "header + 4 batches"
        testCase "plan --digest equals the library digest and the digest of run over the same batches" <| fun () ->
            withFixture <| fun data ->
                let common = [ "tiny"; "--data-dir"; data; "--cache-dir"; data + "-cache"; "-c"; "4"; "-e"; "3"; "-s"; "25"; "--seed"; "3"; "--mode"; "coverage" ]
                let code, out, _ = cli ([ "plan" ] @ common @ [ "--epochs"; "2"; "--digest"; "--json" ])
                Expect.equal code 0 "exit 0"
                let planDigest = (json out).GetProperty("digest").GetString()
                let code, out, _ = cli ([ "run" ] @ common @ [ "--epochs"; "2"; "--json" ])
                Expect.equal code 0 "run exit 0"
                let r = json out
                Expect.equal (r.GetProperty("planDigest").GetString()) planDigest "run's digest = plan's digest"
                Expect.equal (r.GetProperty("batchSize").GetInt32()) 12 "batch size"
                Expect.equal (r.GetProperty("rows").GetInt64()) (2L * 25L * 12L) "rows"
                let counts = [ for c in r.GetProperty("perClass").EnumerateArray() -> c.GetProperty("count").GetInt64() ]
                Expect.equal (List.sum counts) 600L "per-class counts sum to the rows"
                // Coverage: class visits within one of each other, so rows within one batch-slot (3).
                Expect.isLessThanOrEqual (List.max counts - List.min counts) 3L "coverage keeps classes balanced"
                Expect.equal (r.GetProperty("datasetSize").GetInt32()) 80 "dataset size"
                Expect.equal (r.GetProperty("examplesSeen").GetInt32()) 80 "600 coverage draws see all 80 examples"
                Expect.isGreaterThan (r.GetProperty("pValue").GetDouble()) 0.5 "balanced counts: large p-value"
                let code, text, _ = cli ([ "plan" ] @ common @ [ "--epochs"; "2"; "--digest" ])
                Expect.equal code 0 "text exit 0"
                Expect.isTrue (text.StartsWith planDigest) "text digest line starts with the digest"
        testCase "run prints the batch size, balance statistics, speed and the digest" <| fun () ->
            withFixture <| fun data ->
                let code, out, err = cli [ "run"; "tiny"; "--data-dir"; data; "--cache-dir"; data + "-cache"; "-c"; "5"; "-e"; "2"; "-s"; "40"; "--splits"; "train" ]
                Expect.equal code 0 $"exit 0: {err}"
                for s in [ "batch size     10 (5 classes x 2 examples per class)"; "per-class rows"; "chi-square"; "p-value"; "examples seen"; "of 60 sampled"; "batches/s"; "plan digest" ] do
                    Expect.stringContains out s $"prints {s}"
                Expect.stringContains err "loading tiny" "plain progress lines on stderr when not a terminal"
        testCase "export .npz: x, y and ids load back with the decoded pixels" <| fun () ->
            withFixture <| fun data ->
                let path = Path.Combine(Path.GetDirectoryName data, "test.npz")
                let code, out, err = cli [ "export"; "tiny"; "--data-dir"; data; "--cache-dir"; data + "-cache"; "--splits"; "test"; "--out"; path; "--json" ]
                Expect.equal code 0 $"exit 0: {err}"
                Expect.equal ((json out).GetProperty("rows").GetInt32()) 20 "rows"
                let descr, shape, x = npzMember path "x"
                Expect.equal (descr, shape) ("|u1", [| 20L; 28L; 28L; 1L |]) "x header"
                for k in 0 .. 19 do
                    let i = 60 + k
                    Expect.sequenceEqual x[k * 784 .. k * 784 + 783] (ProceduralDigits.Draw(i % 5, uint64 i)) $"pixels of example {i}"
                let descr, shape, y = npzMember path "y"
                Expect.equal (descr, shape) ("<i8", [| 20L |]) "y header"
                Expect.equal (i64s y) [| for i in 60 .. 79 -> int64 (i % 5) |] "labels"
                let descr, shape, ids = npzMember path "id"
                Expect.isTrue (descr.StartsWith "<U") "ids are NumPy unicode"
                let width = int (descr.Substring 2)
                let id0 = Encoding.UTF32.GetString(ids, 0, 4 * width).TrimEnd('\000')
                Expect.equal shape [| 20L |] "one id per row"
                Expect.equal id0 "tiny-test.tfrecord-00000-of-00001__0" "TFDS id of the first test example"
        testCase "export --format npy of a float32 feature, and of planned batches with index/batch arrays" <| fun () ->
            withFixture <| fun data ->
                let dir = Path.Combine(Path.GetDirectoryName data, "npy")
                let code, _, err = cli [ "export"; "tiny"; "--data-dir"; data; "--cache-dir"; data + "-cache"; "--x-key"; "emb"; "--format"; "npy"; "--out"; dir; "--class-list"; "1,3" ]
                Expect.equal code 0 $"exit 0: {err}"
                let descr, shape, x = readNpy (File.ReadAllBytes(Path.Combine(dir, "x.npy")))
                Expect.equal (descr, shape) ("<f4", [| 32L; 4L |]) "x header: 16 + 16 examples of classes 1 and 3"
                let v = f32s x
                let ex = rowExamples data
                let expected = [| for r in 0 .. 79 do
                                    let i = ex[r]
                                    if i % 5 = 1 || i % 5 = 3 then yield! [| float32 i; float32 (i % 5); float32 i / 2.0f; -1.0f |] |]
                Expect.equal v expected "float32 values of classes 1 and 3, in table order"
                let path = Path.Combine(Path.GetDirectoryName data, "batches.npz")
                let code, _, err = cli [ "export"; "tiny"; "--data-dir"; data; "--cache-dir"; data + "-cache"; "-c"; "2"; "-e"; "3"; "-s"; "10"; "--seed"; "9"; "--batches"; "0:4"; "--epoch"; "1"; "--out"; path ]
                Expect.equal code 0 $"exit 0: {err}"
                let _, shape, _ = npzMember path "x"
                Expect.equal shape [| 24L; 28L; 28L; 1L |] "4 batches of 6 rows"
                let _, _, idx = npzMember path "index"
                let _, _, y = npzMember path "y"
                let _, _, b = npzMember path "batch"
                let _, _, e = npzMember path "epoch"
                Expect.equal (i64s b) [| for k in 0 .. 3 do yield! Array.create 6 (int64 k) |] "batch ids"
                Expect.equal (i64s e) (Array.create 24 1L) "epoch"
                Expect.equal (i64s y) (i64s idx |> Array.map (fun r -> int64 (ex[int r] % 5))) "labels match the indexed rows"
    ]

// ---------- cache and the embedded dataset ----------

let cacheTests =
    testList "cache and the embedded dataset" [
        testCase "cache: show absent, build, show present at the loader's path, verify, damaged verify exits 2, clear" <| fun () ->
            withFixture <| fun data ->
                let args = [ "tiny"; "--data-dir"; data; "--cache-dir"; data + "-cache"; "--splits"; "train" ]
                let code, out, _ = cli ([ "cache" ] @ args @ [ "--json" ])
                Expect.equal code 0 "show exits 0"
                let j = json out
                Expect.equal (j.GetProperty("status").GetString()) "absent" "nothing built yet"
                let path = j.GetProperty("path").GetString()
                let code, out, err = cli ([ "cache" ] @ args @ [ "build"; "--json" ])
                Expect.equal code 0 $"build exits 0: {out} {err}"
                Expect.equal ((json out).GetProperty("status").GetString()) "built" "built"
                Expect.isTrue (File.Exists path) "the file exists where show said"
                // The path the loader itself uses for the same options.
                let loaded =
                    TfdsLoader.LoadAsync(TfdsLoadOptions(DatasetName = "tiny", DataDir = data, CacheDir = data + "-cache", Splits = [| "train" |])).Result
                Expect.isTrue loaded.FromCache "the loader hits the cache the CLI built"
                Expect.equal loaded.CachePath path "TfdsCacheEntry.Path = the loader's cache path"
                let code, out, _ = cli ([ "cache" ] @ args @ [ "verify" ])
                Expect.equal code 0 "verify exits 0"
                Expect.stringContains out "valid" "says valid"
                Expect.stringContains out "60 examples" "counts the examples"
                let bytes = File.ReadAllBytes path
                bytes[bytes.Length / 2] <- bytes[bytes.Length / 2] ^^^ 0xFFuy
                File.WriteAllBytes(path, bytes)
                let code, _, err = cli ([ "cache" ] @ args @ [ "verify" ])
                Expect.equal code 2 "a damaged file fails verify with exit 2"
                Expect.stringContains err "Corrupt" "names the reason"
                let code, out, _ = cli ([ "cache" ] @ args @ [ "clear" ])
                Expect.equal code 0 "clear exits 0"
                Expect.stringContains out "deleted" "says deleted"
                Expect.isFalse (File.Exists path) "gone"
                let code, _, err = cli ([ "cache" ] @ args @ [ "--no-cache" ])
                Expect.equal code 1 "cache with --no-cache is a usage error"
                Expect.stringContains err "cache is off" "says so"
        testCase "info, plan (sharded), export and cache on the embedded dataset" <| fun () ->
            use t = new TempDir()
            let data = Path.Combine(repoRoot.Value, "data")
            let common = [ "synthetic_digits"; "--data-dir"; data; "--cache-dir"; t.Path ]
            let code, out, err = cli ([ "info" ] @ common @ [ "--json" ])
            Expect.equal code 0 $"info exit 0: {err}"
            let j = json out
            Expect.equal [ for c in j.GetProperty("classes").EnumerateArray() -> c.GetProperty("count").GetInt32() ] (List.replicate 10 400) "400 per class"
            Expect.stringContains (j.GetProperty("cache").GetString()) "built now" "info loaded and built the cache"
            let code, out, _ = cli ([ "plan" ] @ common @ [ "-c"; "5"; "--rank"; "1"; "--world-size"; "2"; "-s"; "11"; "--json" ])
            Expect.equal code 0 "plan exit 0"
            let rows = lines out |> List.map json
            Expect.equal rows.Length 5 "rank 1 of 2 gets 5 of 11 batches"
            Expect.equal [ for r in rows -> r.GetProperty("globalBatch").GetInt32() ] [ 1; 3; 5; 7; 9 ] "strided global ids"
            let path = Path.Combine(t.Path, "test10.npz")
            let code, _, err = cli ([ "export" ] @ common @ [ "--splits"; "test[:10]"; "--out"; path ])
            Expect.equal code 0 $"export exit 0: {err}"
            let descr, shape, x = npzMember path "x"
            Expect.equal (descr, shape) ("|u1", [| 10L; 28L; 28L; 1L |]) "ten 28x28x1 uint8 digits"
            Expect.isTrue (Array.exists (fun b -> b <> 0uy) x) "pixels are not all zero"
            let code, out, _ = cli ([ "cache" ] @ common @ [ "verify"; "--json" ])
            Expect.equal code 0 "the cache info built verifies"
            Expect.equal ((json out).GetProperty("status").GetString()) "valid" "valid"
        testCase "run without a dataset uses the embedded synthetic_digits; a second run hits the cache with the same digest" <| fun () ->
            use t = new TempDir()
            let args = [ "run"; "--cache-dir"; t.Path; "-c"; "10"; "-e"; "2"; "-s"; "100"; "--seed"; "1"; "--json" ]
            let code, out, err = cli args
            Expect.equal code 0 $"exit 0: {err}"
            let r = json out
            Expect.equal (r.GetProperty("dataset").GetString()) "synthetic_digits:1.0.0" "the embedded dataset"
            Expect.equal (r.GetProperty("datasetSize").GetInt32()) 4000 "train 3000 + test 1000"
            Expect.equal (r.GetProperty("batchSize").GetInt32()) 20 "10 x 2"
            let names = [ for c in r.GetProperty("perClass").EnumerateArray() -> c.GetProperty("name").GetString() ]
            Expect.equal names [ "zero"; "one"; "two"; "three"; "four"; "five"; "six"; "seven"; "eight"; "nine" ] "class names"
            let counts = [ for c in r.GetProperty("perClass").EnumerateArray() -> c.GetProperty("count").GetInt64() ]
            // 10 classes per batch out of 10: every batch holds every class twice.
            Expect.equal counts (List.replicate 10 200L) "every class in every batch"
            let code, out2, _ = cli args
            Expect.equal code 0 "second run"
            Expect.equal ((json out2).GetProperty("planDigest").GetString()) (r.GetProperty("planDigest").GetString()) "same digest from the cache"
            Expect.equal ((json out2).GetProperty("fingerprint").GetString()) (r.GetProperty("fingerprint").GetString()) "same data from the cache"
        testCase "run --table mapped and --table memory give the same data and digest; auto maps once the cache exists" <| fun () ->
            use t = new TempDir()
            let args = [ "run"; "--cache-dir"; t.Path; "-c"; "5"; "-e"; "3"; "-s"; "50"; "--seed"; "9"; "--json" ]
            let runWith table =
                let code, out, err = cli (args @ [ "--table"; table ])
                Expect.equal code 0 $"--table {table}: {err}"
                let j = json out
                j.GetProperty("table").GetString(), j.GetProperty("planDigest").GetString(), j.GetProperty("fingerprint").GetString()
            let memT, memD, memF = runWith "memory"
            let mapT, mapD, mapF = runWith "mapped"
            let autoT, autoD, autoF = runWith "auto"
            Expect.equal (memT, mapT, autoT) ("memory", "mapped", "mapped") "backings"
            Expect.equal (mapD, mapF) (memD, memF) "mapped: same plans and bytes"
            let check table =
                let code, out, err = cli (args @ [ "--table"; table ])
                Expect.equal code 0 err
                let p = (json out).GetProperty("changeCheck")
                if p.ValueKind = System.Text.Json.JsonValueKind.Null then null else p.GetString()
            Expect.equal (check "mapped") "lease" "a mapped table here (the file's owner, a local filesystem) holds a file lease"
            Expect.isNull (check "memory") "no change check for a memory table"
            // SAMPLERS_NO_FILE_LEASE is read once per process: a child process with it set maps without a lease.
            use p = startChild "cli" (args @ [ "--table"; "mapped" ]) [ "SAMPLERS_NO_FILE_LEASE", "1" ]
            let code, out, err = collectOutput p 120000 "the child did not finish"
            Expect.equal code 0 err
            Expect.equal ((json out).GetProperty("changeCheck").GetString()) "statx" "SAMPLERS_NO_FILE_LEASE=1: statx per batch"
            Expect.equal (autoD, autoF) (memD, memF) "auto: same plans and bytes"
            let code, _, err = cli (args @ [ "--table"; "mapped"; "--no-cache" ])
            Expect.equal code Samplers.Cli.Program.ExitUsage "mapped without the cache is a usage error"
            Expect.stringContains err "caching is off" "says why"
            let code, _, err = cli (args @ [ "--table"; "disk" ])
            Expect.equal code Samplers.Cli.Program.ExitUsage "unknown backing"
            Expect.stringContains err "mapped, memory or auto" "lists the choices"
    ]

// ---------- download (against the downloader tests' loopback server) ----------

let downloadTests =
    testList "download" [
        testCase "download fetches the dataset from a loopback bucket; info then reads it; a second download is a no-op" <| fun () ->
            use f = new Samplers.Tests.Io.DownloadTests.Fixture()
            let code, out, err = cli [ "download"; "toy:1.0.0"; "--data-dir"; f.Data; "--base-url"; f.Server.Url; "--json" ]
            Expect.equal code 0 $"exit 0: {err}"
            let j = json out
            Expect.equal (j.GetProperty("dataset").GetString()) "toy:1.0.0" "resolved name"
            Expect.isTrue (File.Exists(Path.Combine(j.GetProperty("path").GetString(), "dataset_info.json"))) "installed"
            let code, out, _ = cli [ "info"; "toy"; "--data-dir"; f.Data; "--no-counts"; "--json" ]
            Expect.equal code 0 "info on the downloaded dataset"
            Expect.equal ((json out).GetProperty("splits").GetArrayLength()) 2 "both splits"
            let before = f.Server.Requests.Length
            let code, _, _ = cli [ "download"; "toy:1.0.0"; "--data-dir"; f.Data; "--base-url"; f.Server.Url ]
            Expect.equal code 0 "second download exits 0"
            Expect.isLessThanOrEqual (f.Server.Requests |> List.skip before |> List.filter Samplers.Tests.Io.DownloadTests.isShard |> List.length) 0 "no shard fetched again"
        testCase "run --download fetches an absent dataset first; without --download it is a data error" <| fun () ->
            use f = new Samplers.Tests.Io.DownloadTests.Fixture()
            let args = [ "run"; "toy:1.0.0"; "--data-dir"; f.Data; "--no-cache"; "--x-key"; "x"; "-c"; "3"; "-s"; "10"; "--json" ]
            let code, _, err = cli args
            Expect.equal code 2 "absent: exit 2"
            Expect.stringContains err "not found" "says what is missing"
            let code, out, err = cli (args @ [ "--download"; "--base-url"; f.Server.Url ])
            Expect.equal code 0 $"exit 0 after downloading: {err}"
            Expect.equal ((json out).GetProperty("datasetSize").GetInt32()) 160 "train 120 + test 40"
        testCase "download of a dataset the bucket does not have exits 2 naming it" <| fun () ->
            use f = new Samplers.Tests.Io.DownloadTests.Fixture()
            let code, _, err = cli [ "download"; "nosuch:1.0.0"; "--data-dir"; f.Data; "--base-url"; f.Server.Url; "--retries"; "0" ]
            Expect.equal code 2 "exit 2"
            Expect.stringContains err "nosuch" "names the dataset"
    ]

// ---------- experiment scripts ----------

/// Runs `dotnet fsi script args` in dir: (exit code, stdout, stderr).
let fsi (dir: string) (script: string) (args: string list) =
    runDotnet (Some dir) ("fsi" :: script :: args) 120000 "dotnet fsi did not finish within 120 s"

let scriptTests =
    testList "experiment scripts" [
        testCase "epoch_balance.fsx writes a manifest; --replay reproduces its digests, a tampered digest fails" <| fun () ->
            withFixture <| fun data ->
                // Copies of the scripts whose #I points at this build's tool folder instead of the Release one.
                let dir = Path.Combine(Path.GetDirectoryName data, "experiments")
                Directory.CreateDirectory dir |> ignore
                let src = Path.Combine(repoRoot.Value, "experiments")
                let common = File.ReadAllText(Path.Combine(src, "Common.fsx"))
                let releaseRef = "#I \"../src/Samplers.Cli/bin/Release/net10.0\""
                Expect.stringContains common releaseRef "Common.fsx references the Release build of the tool"
                File.WriteAllText(Path.Combine(dir, "Common.fsx"), common.Replace(releaseRef, $"#I @\"{Path.GetDirectoryName cliDll.Value}\""))
                File.Copy(Path.Combine(src, "epoch_balance.fsx"), Path.Combine(dir, "epoch_balance.fsx"))
                let out = Path.Combine(dir, "out")
                let code, stdout, stderr = fsi dir "epoch_balance.fsx" [ "--dataset"; "tiny"; "--data-dir"; data; "--out"; out; "--classes"; "3"; "--steps"; "30" ]
                Expect.equal code 0 $"script exits 0: {stdout} {stderr}"
                let manifestPath = Path.Combine(out, "manifest.json")
                let m = ExperimentManifest.Load manifestPath
                Expect.equal m.Experiment "epoch_balance" "experiment name"
                Expect.equal [ for r in m.Runs -> r.Label ] [ "Independent"; "Coverage" ] "one run per mode"
                Expect.equal m.Dataset.Name "tiny:1.0.0" "dataset version"
                Expect.isTrue (File.Exists(Path.Combine(out, "summary.csv"))) "summary written next to the manifest"
                let code, stdout, stderr = fsi dir "epoch_balance.fsx" [ "--replay"; manifestPath; "--data-dir"; data ]
                Expect.equal code 0 $"replay exits 0: {stdout} {stderr}"
                for r in m.Runs do Expect.stringContains stdout $"reproduced {r.Label}: {r.PlanDigest}" $"{r.Label} digest reproduced"
                File.WriteAllText(manifestPath, File.ReadAllText(manifestPath).Replace(m.Runs[1].PlanDigest, String('0', 64)))
                let code, stdout, _ = fsi dir "epoch_balance.fsx" [ "--replay"; manifestPath; "--data-dir"; data ]
                Expect.equal code 1 "a wrong digest fails the replay"
                Expect.stringContains stdout "MISMATCH Coverage" "names the run"
    ]

// ---------- errors and exit codes ----------

let errorTests =
    testList "errors and exit codes" [
        testCase "a missing dataset is a data error (exit 2) with one readable line" <| fun () ->
            withFixture <| fun data ->
                let code, _, err = cli [ "info"; "nope"; "--data-dir"; data; "--cache-dir"; data + "-cache" ]
                Expect.equal code 2 "exit 2"
                Expect.stringContains err "data error: Dataset 'nope' was not found" "names the dataset"
                Expect.stringContains err "tiny" "lists what is present"
                Expect.isFalse (err.Contains "   at ") "no stack trace without --verbose"
                let code, _, err = cli [ "info"; "nope"; "--data-dir"; data; "--cache-dir"; data + "-cache"; "--verbose" ]
                Expect.equal code 2 "exit 2 with --verbose"
                Expect.stringContains err "   at " "stack trace with --verbose"
        testCase "a missing split is a data error (exit 2), a missing x_key a usage error (exit 1), both naming what exists" <| fun () ->
            withFixture <| fun data ->
                let code, _, err = cli [ "plan"; "tiny"; "--data-dir"; data; "--cache-dir"; data + "-cache"; "--splits"; "validation" ]
                Expect.equal code 2 "exit 2"
                Expect.stringContains err "Split 'validation'" "names the split"
                let code, out, _ = cli [ "plan"; "tiny"; "--data-dir"; data; "--cache-dir"; data + "-cache"; "--x-key"; "pixels"; "--json" ]
                Expect.equal code 1 "a wrong key is a usage error: exit 1"
                let j = json out
                Expect.equal (j.GetProperty("exitCode").GetInt32()) 1 "JSON error carries the exit code"
                Expect.stringContains (j.GetProperty("error").GetString()) "available features are" "lists the features"
        testCase "usage errors exit 1: unknown option, bad mode, bad range, too many classes" <| fun () ->
            withFixture <| fun data ->
                let code, _, _ = cli [ "plan"; "tiny"; "--data-dir"; data; "--cache-dir"; data + "-cache"; "--bogus" ]
                Expect.equal code 1 "unknown option"
                let code, _, err = cli [ "plan"; "tiny"; "--data-dir"; data; "--cache-dir"; data + "-cache"; "--mode"; "roundrobin" ]
                Expect.equal code 1 "bad mode"
                Expect.stringContains err "independent or coverage" "lists the modes"
                let code, _, err = cli [ "plan"; "tiny"; "--data-dir"; data; "--cache-dir"; data + "-cache"; "-s"; "10"; "--batches"; "5:20" ]
                Expect.equal code 1 "range beyond the epoch"
                Expect.stringContains err "[0, 10]" "gives the valid range"
                let code, _, err = cli [ "run"; "tiny"; "--data-dir"; data; "--cache-dir"; data + "-cache"; "-c"; "6" ]
                Expect.equal code 1 "more classes per batch than classes"
                Expect.stringContains err "exceeds the number of classes (5)" "both counts"
                let code, _, _ = cli [ "export"; "tiny"; "--data-dir"; data; "--cache-dir"; data + "-cache" ]
                Expect.equal code 1 "export without --out"
                let code, _, _ = cli [ "frobnicate" ]
                Expect.equal code 1 "unknown command"
        testCase "--help on every command shows examples" <| fun () ->
            for c in [ "info"; "plan"; "run"; "export"; "cache"; "download" ] do
                let code, out, _ = cli [ c; "--help" ]
                Expect.equal code 0 $"{c} --help exits 0"
                Expect.stringContains out "Examples:" $"{c} --help has examples"
                Expect.stringContains out $"samplers {c}" $"{c} --help shows a {c} command line"
                Expect.isTrue (out.IndexOf "Examples:" > out.IndexOf "Options:") $"{c} --help: the examples come after the options"
            let code, out, _ = cli [ "--help" ]
            Expect.equal code 0 "samplers --help exits 0"
            Expect.equal (out.Split("Examples:").Length) 2 "one examples block: the command list shows summaries only"
    ]

// ---------- conventional manners ----------

/// The stderr lines, without trailing blanks.
let errLines (err: string) = err.Split('\n') |> Array.map (fun l -> l.TrimEnd '\r') |> Array.filter (fun l -> l <> "") |> List.ofArray

let mannerTests =
    testList "manners" [
        testCase "a mistyped command is one line with a suggestion and a hint, not the whole help" <| fun () ->
            let code, out, err = cli [ "rnu" ]
            Expect.equal code 1 "usage: exit 1"
            Expect.equal out "" "nothing on stdout"
            Expect.equal (errLines err) [ "samplers: unknown command 'rnu'; did you mean 'run'? see 'samplers --help'" ] "one line"
            let code, _, err = cli [ "xyzzy" ]
            Expect.equal code 1 "exit 1"
            Expect.equal (errLines err) [ "samplers: unknown command 'xyzzy'; see 'samplers --help'" ] "no far-fetched suggestion"
            let code, _, err = cli []
            Expect.equal code 1 "no command: exit 1"
            Expect.equal (errLines err).Length 1 "one line"
            Expect.stringContains err "info, plan, run, export, cache, download" "lists the commands"
        testCase "an unknown option is never taken as the <dataset>; it is named with the closest option" <| fun () ->
            for args in [ [ "run"; "--epoch"; "3" ]; [ "run"; "--epoch=3" ]; [ "run"; "--epoch"; "3"; "tiny" ] ] do
                let code, out, err = cli args
                Expect.equal code 1 $"{args}: exit 1"
                Expect.equal out "" "nothing on stdout"
                Expect.equal (errLines err) [ "samplers: unknown option '--epoch' for 'samplers run'; did you mean --epochs? see 'samplers run --help'" ] $"{args}: one line naming the option"
            let code, _, err = cli [ "plan"; "--clases-per-batch"; "3" ]
            Expect.equal code 1 "exit 1"
            Expect.stringContains err "unknown option '--clases-per-batch' for 'samplers plan'; did you mean --classes-per-batch?" "edit distance"
            let code, _, err = cli [ "run"; "-C"; "3" ]
            Expect.equal code 1 "exit 1"
            Expect.stringContains err "unknown option '-C' for 'samplers run'; did you mean -c?" "a short option in another case"
            let code, _, err = cli [ "run"; "-x" ]
            Expect.equal code 1 "exit 1"
            Expect.equal (errLines err) [ "samplers: unknown option '-x' for 'samplers run'; see 'samplers run --help'" ] "no guess for a letter"
            let code, _, err = cli [ "info"; "1abc"; "--no-counts" ]
            Expect.equal code 1 "a malformed dataset name: exit 1"
            Expect.stringContains err "samplers: usage error: <dataset>: a dataset name starts with a letter" "named as the <dataset> argument"
            Expect.isFalse (err.Contains "--splits") "not as --splits (the same error type serves split specs)"
            let code, _, err = cli [ "info"; "tiny"; "extra" ]
            Expect.equal code 1 "a second positional argument"
            Expect.stringContains err "unexpected argument 'extra' for 'samplers info'" "names it"
            // A negative number is a value, not an option: the option's own check answers.
            let code, _, err = cli [ "plan"; "--epoch"; "-1" ]
            Expect.equal code 1 "exit 1"
            Expect.stringContains err "--epoch must be 0 or more, but was -1" "the value reached the command"
        testCase "--max-image-pixels: below 1 is a usage error before loading; a budget below the images' size is a data error naming it" <| fun () ->
            let code, _, err = cli [ "run"; "--max-image-pixels"; "0" ]
            Expect.equal code 1 "exit 1"
            Expect.stringContains err "--max-image-pixels must be at least 1, but was 0" "names the option"
            use cache = new TempDir()
            // The embedded digits are 28x28 = 784 pixels: a budget of 100 refuses the first image decoded.
            let code, _, err = cli [ "run"; "--max-image-pixels"; "100"; "--cache-dir"; cache.Path; "--no-cache"; "-s"; "1" ]
            Expect.equal code 2 $"exit 2 (data), stderr: {err}"
            Expect.stringContains err "above the budget of 100 pixels" "names the budget"
            Expect.stringContains err "raise the budget (--max-image-pixels)" "tells the option to change, not the C# property"
            let code, _, err = cli [ "run"; "--max-image-pixels"; "784"; "--cache-dir"; cache.Path; "--no-cache"; "-s"; "1" ]
            Expect.equal code 0 $"a budget of exactly 28x28 loads, stderr: {err}"
        testCase "parser errors speak in options and values: a bad number, a value not among the choices" <| fun () ->
            let code, _, err = cli [ "run"; "--seed"; "abc" ]
            Expect.equal code 1 "exit 1"
            Expect.equal (errLines err) [ "samplers: usage error: --seed: 'abc' is not a whole number from 0 to 18446744073709551615; see 'samplers run --help'" ] "one line"
            let code, _, err = cli [ "plan"; "--format"; "cvs" ]
            Expect.equal code 1 "exit 1"
            Expect.stringContains err "--format: 'cvs' is not one of table, jsonl, csv; did you mean 'csv'?" "choices and a suggestion"
            Expect.equal (errLines err).Length 1 "one line"
            let code, out, _ = cli [ "run"; "--seed"; "abc"; "--json" ]
            Expect.equal code 1 "exit 1 with --json"
            Expect.equal ((json out).GetProperty("exitCode").GetInt32()) 1 "the JSON error carries the exit code"
        testCase "library argument errors name the CLI options, not C# properties" <| fun () ->
            withFixture <| fun data ->
                let common = [ "tiny"; "--data-dir"; data; "--cache-dir"; data + "-cache" ]
                let cases =
                    [ [ "--x-key"; "pixels" ], "--x-key 'pixels' not found", [ "XKey"; "x_key" ]
                      [ "-c"; "0" ], "--classes-per-batch must be at least 1, but was 0", [ "classesPerBatch" ]
                      [ "-s"; "0" ], "--steps-per-epoch must be at least 1", [ "stepsPerEpoch" ]
                      [ "--rank"; "5"; "--world-size"; "2" ], "--rank must be in [0, --world-size) = [0, 2), but was 5", [ "worldSize"; "Actual value" ]
                      [ "--class-list"; "1,99" ], "--class-list contains 1 class(es) absent from the data: [99]", [ "classList" ]
                      [ "--total-examples-per-class"; "0" ], "--total-examples-per-class must be at least 1", [ "TotalExamplesPerClass" ] ]
                for extra, expected, absent in cases do
                    let code, _, err = cli ([ "run" ] @ common @ extra)
                    Expect.equal code 1 $"{extra}: exit 1"
                    Expect.stringContains err expected $"{extra}: names the option"
                    Expect.stringContains err "see 'samplers run --help'" $"{extra}: hint"
                    for a in absent do Expect.isFalse (err.Contains a) $"{extra}: no '{a}' in {err}"
        testCase "-c beyond the class count is refused before loading, from the label feature's class count or the class list" <| fun () ->
            withFixture <| fun data ->
                let common = [ "tiny"; "--data-dir"; data; "--cache-dir"; data + "-cache" ]
                let code, _, err = cli ([ "run" ] @ common @ [ "-c"; "6" ])
                Expect.equal code 1 "exit 1"
                Expect.stringContains err "--classes-per-batch (6) exceeds the number of classes (5) of 'label' in tiny:1.0.0" "both counts, the option"
                Expect.isFalse (err.Contains "loading") "nothing was loaded"
                Expect.isFalse (Directory.Exists(data + "-cache")) "no cache was built"
                let code, _, err = cli ([ "plan" ] @ common @ [ "-c"; "3"; "--class-list"; "1,2,2" ])
                Expect.equal code 1 "exit 1"
                Expect.stringContains err "--classes-per-batch (3) exceeds the 2 classes of --class-list" "the listed classes"
                Expect.isFalse (err.Contains "loading") "nothing was loaded"
                // A split holding fewer classes than features.json declares is only known after loading: still named.
                let code, _, err = cli ([ "run" ] @ common @ [ "-c"; "3"; "--splits"; "train[:2]" ])
                Expect.equal code 1 "exit 1 after loading"
                Expect.stringContains err "--classes-per-batch (3) exceeds the number of classes (2)" "the option, after loading"
        testCase "export --out in a folder that does not exist names the user's path and fails before loading" <| fun () ->
            withFixture <| fun data ->
                let target = Path.Combine(Path.GetDirectoryName data, "no-such-folder", "x.npz")
                let code, _, err = cli [ "export"; "tiny"; "--data-dir"; data; "--cache-dir"; data + "-cache"; "--out"; target ]
                Expect.equal code 1 "exit 1"
                Expect.stringContains err $"--out {target}: the folder {Path.GetDirectoryName target} does not exist" "the user's path"
                Expect.isFalse (err.Contains "loading") "nothing was loaded"
                Expect.isFalse (err.Contains ".tmp") "no temporary name"
                let code, _, err = cli [ "export"; "tiny"; "--data-dir"; data; "--out"; data ]
                Expect.equal code 1 "a folder as the .npz"
                Expect.stringContains err "is a folder" "says so"
        testCase "download --timeout beyond what timers accept names the option and fetches nothing" <| fun () ->
            use f = new Samplers.Tests.Io.DownloadTests.Fixture()
            for t in [ "3000000"; "0"; "-1" ] do
                let code, _, err = cli [ "download"; "toy:1.0.0"; "--data-dir"; f.Data; "--base-url"; f.Server.Url; "--timeout"; t ]
                Expect.equal code 1 $"--timeout {t}: exit 1"
                Expect.stringContains err $"--timeout must be more than 0 and at most 2147483 seconds (about 24 days), but was {t}" "names the option and the limit"
            let code, _, err = cli [ "download"; "toy:1.0.0"; "--data-dir"; f.Data; "--base-url"; f.Server.Url; "--retries"; "-2" ]
            Expect.equal code 1 "negative retries"
            Expect.stringContains err "--retries must be 0 or more" "names the option"
            Expect.isEmpty f.Server.Requests "no request was made"
        testCase "download --base-url with credentials is a usage error naming --base-url, without the secret, fetching nothing" <| fun () ->
            use f = new Samplers.Tests.Io.DownloadTests.Fixture()
            let url = f.Server.Url.Replace("http://", "http://user:s3cr3t@")
            let code, out, err = cli [ "download"; "toy:1.0.0"; "--data-dir"; f.Data; "--base-url"; url ]
            Expect.equal code 1 "exit 1"
            Expect.stringContains err "the base URL (--base-url)" "names the option"
            Expect.stringContains err (f.Server.Url.Replace("http://", "http://***@")) "the URL with its user info masked"
            Expect.isFalse ((out + err).Contains "s3cr3t") "no secret printed"
            Expect.isEmpty f.Server.Requests "no request was made"
        testCase "the --splits caret diagram prints on its own lines, the caret under the fault" <| fun () ->
            withFixture <| fun data ->
                let code, _, err = cli [ "plan"; "tiny"; "--data-dir"; data; "--cache-dir"; data + "-cache"; "--splits"; "train[:abc]" ]
                Expect.equal code 1 "exit 1"
                let ls = errLines err |> Array.ofList
                Expect.isTrue (ls[0].StartsWith "samplers: usage error: --splits: unexpected character 'a'") $"first line: {ls[0]}"
                let specLine = ls |> Array.findIndex (fun l -> l.Trim() = "train[:abc]")
                let caret = ls[specLine + 1]
                Expect.equal (caret.IndexOf '^') (ls[specLine].IndexOf "train[:abc]" + 7) "caret under the 'a'"
                Expect.equal ls[ls.Length - 1] "see 'samplers plan --help'" "the hint on its own line"
        testCase "info, plan, export and cache default to the embedded dataset; info --no-counts reads only metadata" <| fun () ->
            use t = new TempDir()
            let cache = [ "--cache-dir"; t.Path ]
            let code, out, err = cli ([ "info"; "--no-counts"; "--json" ] @ cache)
            Expect.equal code 0 $"info exit 0: {err}"
            let j = json out
            Expect.equal (j.GetProperty("dataset").GetString()) "synthetic_digits:1.0.0" "the embedded dataset"
            Expect.stringStarts (j.GetProperty("cache").GetString()) "absent" "nothing built by --no-counts"
            let code, out, _ = cli ([ "plan"; "-c"; "3"; "--batches"; "0:2"; "--json" ] @ cache)
            Expect.equal code 0 "plan exit 0"
            Expect.equal (lines out).Length 2 "two batches"
            let path = Path.Combine(t.Path, "five.npz")
            let code, _, err = cli ([ "export"; "--splits"; "test[:5]"; "--out"; path ] @ cache)
            Expect.equal code 0 $"export exit 0: {err}"
            let _, shape, _ = npzMember path "x"
            Expect.equal shape [| 5L; 28L; 28L; 1L |] "five digits"
            let code, out, _ = cli ([ "cache"; "build"; "--json" ] @ cache)
            Expect.equal code 0 "cache build"
            Expect.equal ((json out).GetProperty("dataset").GetString()) "synthetic_digits:1.0.0" "of the embedded dataset"
            let code, out, _ = cli ([ "cache"; "verify"; "--json" ] @ cache)
            Expect.equal code 0 "cache verify: the action alone"
            Expect.equal ((json out).GetProperty("status").GetString()) "valid" "valid"
            let code, _, err = cli ([ "cache"; "verfy"; "--data-dir"; t.Path ] @ cache)
            Expect.equal code 1 "a mistyped action is a usage error"
            Expect.stringContains err "'verfy' is neither a cache action (show, build, verify, clear) nor a dataset found here; did you mean 'samplers cache verify'?" "suggests the action"
        testCase "info --download downloads an absent dataset; without it, nothing is fetched" <| fun () ->
            use f = new Samplers.Tests.Io.DownloadTests.Fixture()
            let args = [ "info"; "toy:1.0.0"; "--data-dir"; f.Data; "--base-url"; f.Server.Url; "--no-counts"; "--json" ]
            let code, _, err = cli args
            Expect.equal code 2 "absent: exit 2"
            Expect.stringContains err "not found" "says what is missing"
            Expect.stringContains err "add --download to fetch the dataset" "the tool's flag, as when loading"
            Expect.isEmpty f.Server.Requests "no request without --download"
            let code, out, err = cli (args @ [ "--download" ])
            Expect.equal code 0 $"exit 0: {err}"
            Expect.equal ((json out).GetProperty("version").GetString()) "1.0.0" "the downloaded version"
            Expect.isNonEmpty (f.Server.Requests |> List.filter Samplers.Tests.Io.DownloadTests.isShard) "shards were fetched"
            let code, out, err = cli [ "info"; "toy:1.0.0"; "--data-dir"; f.Data; "--no-cache"; "--x-key"; "x"; "--json" ]
            Expect.equal code 0 $"counts after the download: {err}"
            Expect.equal ((json out).GetProperty("classes").GetArrayLength()) 3 "classes counted"
        testCase "data the loader refuses is a data error (exit 2) naming the dataset, not a usage error" <| fun () ->
            use t = new TempDir()
            let data = Path.Combine(t.Path, "data")
            // features.json declares 5 channels, which no image decoder produces.
            let fiveChannels = FeatureSpec("image", FeatureKind.Image, "tensorflow_datasets.core.features.image_feature.Image", DType.UInt8, [| 28; 28; 5 |], EncodingFormat = "png")
            let w = TfdsDatasetWriter(Path.Combine(data, "five", "1.0.0"), "five", "1.0.0", [ fiveChannels; labelSpec ])
            w.WriteSplit("train", [| for i in 0 .. 9 -> exampleBytes i |], 1) |> ignore
            w.Complete()
            let code, _, err = cli [ "run"; "five"; "--data-dir"; data; "--no-cache"; "--splits"; "train" ]
            Expect.equal code 2 $"exit 2: {err}"
            // The library refuses the declaration itself when it reads features.json, naming the file.
            Expect.stringContains err "samplers: data error: " "a data error"
            let versionDir = Path.Combine(data, "five", "1.0.0")
            Expect.stringContains err (Path.Combine(versionDir, "features.json")) "names the file to check"
            Expect.isFalse (err.Contains "(Parameter '") "no C# parameter tail"
            Expect.stringContains err "channels" "the loader's reason"
            Expect.isFalse (err.Contains "usage error") "not a usage error"
        testCase "a split that dataset_info.json lists without shards is a data error naming the file, before loading" <| fun () ->
            withFixture <| fun data ->
                let info = Path.Combine(data, "tiny", "1.0.0", "dataset_info.json")
                let node = Nodes.JsonNode.Parse(File.ReadAllText info)
                for sp in node["splits"].AsArray() do
                    if sp["name"].GetValue<string>() = "test" then sp["shardLengths"] <- Nodes.JsonArray()
                File.WriteAllText(info, node.ToJsonString())
                let code, _, err = cli [ "run"; "tiny"; "--data-dir"; data; "--cache-dir"; data + "-cache" ]
                Expect.equal code 2 $"exit 2: {err}"
                Expect.stringContains err $"samplers: data error: Split 'test' of tiny:1.0.0 lists no shards (shardLengths is empty in {info})" "names the split and the file"
                Expect.stringContains err "choose other --splits" "what to do"
                Expect.isFalse (err.Contains "loading") "before loading"
                let code, _, err = cli [ "run"; "tiny"; "--data-dir"; data; "--cache-dir"; data + "-cache"; "--splits"; "train[5:5]" ]
                Expect.equal code 1 $"an empty slice of a full split is the user's spec: exit 1: {err}"
                Expect.stringContains err "--splits" "names the option"
                let code, _, _ = cli [ "run"; "tiny"; "--data-dir"; data; "--cache-dir"; data + "-cache"; "--splits"; "train"; "-s"; "5" ]
                Expect.equal code 0 "the other split still loads"
        testCase "the error policy: data 2, file 2, usage 1, an unexpected exception 3 asking for a report" <| fun () ->
            let classify (e: exn) = let f = Samplers.Cli.ErrorPolicy.Classify e in f.ExitCode, f.Kind
            Expect.equal (classify (DataFormatException "bad")) (2, "data error") "data family"
            Expect.equal (classify (DatasetNotFoundException "absent")) (2, "data error") "subclass"
            Expect.equal (classify (IOException "disk")) (2, "file error") "IO"
            Expect.equal (classify (ArgumentOutOfRangeException("options.StepsPerEpoch", "x"))) (1, "usage error") "an option's argument error"
            Expect.equal (classify (InvalidOperationException "state")) (3, "internal error") "a library bug, not a usage error"
            Expect.equal (classify (ArgumentException("indices must hold 4 ints", "indices"))) (3, "internal error") "an argument error naming no option"
            Expect.equal (classify (NullReferenceException())) (3, "internal error") "anything else"
            use out = new StringWriter()
            use err = new StringWriter()
            let c = Samplers.Cli.CliContext(out, err, false, false, false, "samplers run")
            let code = Samplers.Cli.ErrorPolicy.Report(c, InvalidOperationException "the pool was drained twice")
            Expect.equal code 3 "exit 3"
            let text = err.ToString()
            Expect.stringContains text "samplers: internal error: System.InvalidOperationException: the pool was drained twice" "type and message"
            Expect.stringContains text "please report" "asks for a report"
            Expect.isFalse (text.Contains "usage error") "not a usage error"
        testCase "Suggest.Closest: prefixes, transpositions, nothing far-fetched" <| fun () ->
            let opts = [ "--epochs"; "--seed"; "--splits"; "--steps-per-epoch" ]
            Expect.equal (Samplers.Cli.Suggest.Closest("--epoch", opts)) "--epochs" "prefix"
            Expect.equal (Samplers.Cli.Suggest.Closest("--sede", opts)) "--seed" "transposition"
            Expect.equal (Samplers.Cli.Suggest.Closest("rnu", [ "run"; "info" ])) "run" "command"
            Expect.isNull (Samplers.Cli.Suggest.Closest("--frobnicate", opts)) "nothing close"
    ]

// ---------- real processes ----------

let processTests =
    testList "child processes" [
        testCase "plan --digest is identical in two processes and equal to the in-process digest" <| fun () ->
            withFixture <| fun data ->
                let args = [ "plan"; "tiny"; "--data-dir"; data; "--cache-dir"; data + "-cache"; "-c"; "3"; "-e"; "2"; "-s"; "30"; "--seed"; "123456789"; "--epochs"; "2"; "--digest" ]
                let c1, o1, e1 = cliChild args
                let c2, o2, _ = cliChild args
                Expect.equal (c1, c2) (0, 0) $"both exit 0: {e1}"
                Expect.equal o1 o2 "same digest line"
                let _, o3, _ = cli args
                Expect.equal (o1.Trim()) (o3.Trim()) "same as in-process"
        testCase "a data error exits 2 from a real process, with the message on stderr" <| fun () ->
            withFixture <| fun data ->
                let code, out, err = cliChild [ "run"; "nope"; "--data-dir"; data; "--cache-dir"; data + "-cache" ]
                Expect.equal code 2 "exit 2"
                Expect.equal out "" "nothing on stdout"
                Expect.stringContains err "Dataset 'nope' was not found" "one readable message"
    ]

[<Tests>]
let tests = testList "Cli.Cli" [ libraryTests; commandTests; cacheTests; downloadTests; scriptTests; errorTests; mannerTests; processTests ]
