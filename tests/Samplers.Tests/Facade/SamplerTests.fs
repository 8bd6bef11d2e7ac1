module Samplers.Tests.Facade.SamplerTests

open System
open System.Collections.Concurrent
open System.Threading
open System.Threading.Tasks
open Expecto
open Microsoft.Extensions.Logging
open Samplers
open Samplers.Imaging
open Samplers.Tfds
open Samplers.Core
open Samplers.Tests.TestUtil

// ---------- fixtures ----------

/// Collects formatted log messages, as a test double for ILogger.
type ListLogger() =
    let messages = ConcurrentQueue<LogLevel * string>()
    member _.Messages = messages.ToArray() |> List.ofArray
    member this.Texts(level: LogLevel) = this.Messages |> List.filter (fun (l, _) -> l = level) |> List.map snd
    interface ILogger with
        member _.BeginScope<'TState>(_state: 'TState) : IDisposable = null
        member _.IsEnabled(_level: LogLevel) = true
        member _.Log<'TState>(level: LogLevel, _eventId: EventId, state: 'TState, ex: exn, formatter: Func<'TState, exn, string>) =
            messages.Enqueue((level, formatter.Invoke(state, ex)))

/// A table of int32 examples of shape [3]: example i is [i; label; i * 7 + 1], so every row says where it came from.
/// Class c (label c * 10) has counts[c] examples, interleaved across classes.
let intTable (counts: int list) (chunkBytes: int64) =
    let labels = ResizeArray<int64>()
    let remaining = Array.ofList counts
    while Array.exists (fun n -> n > 0) remaining do
        for c in 0 .. remaining.Length - 1 do
            if remaining[c] > 0 then
                labels.Add(int64 (c * 10))
                remaining[c] <- remaining[c] - 1
    let b = ExampleTableBuilder.Fixed(DType.Int32, ReadOnlySpan [| 3 |], labels.Count, chunkBytes)
    for i in 0 .. labels.Count - 1 do
        let slot = Runtime.InteropServices.MemoryMarshal.Cast<byte, int>(b.Slot i)
        slot[0] <- i
        slot[1] <- int labels[i]
        slot[2] <- i * 7 + 1
        b.SetLabel(i, labels[i])
    b.Build()

let table10x8 () = intTable (List.replicate 10 8) ExampleTable.DefaultChunkBytes

let opts cpb epc = SamplerOptions(ClassesPerBatch = cpb, ExamplesPerClassPerBatch = epc, StepsPerEpoch = 50, Seed = 42UL)

/// The rows of a batch as (x, y, index, ordinal) tuples.
let rowsOf (b: Batch) =
    let x = b.X<int>().ToArray()
    let y = b.Y.ToArray()
    let idx = b.Indices.ToArray()
    let ord = b.ClassOrdinals.ToArray()
    [ for i in 0 .. b.Count - 1 -> (x[3 * i], x[3 * i + 1], x[3 * i + 2]), y[i], idx[i], ord[i] ]

let snapshot (b: Batch) = b.XBytes.ToArray(), b.Y.ToArray()

let take (s: MultiShotMemorySampler) (id: int) =
    use b = s.GenerateBatch id
    snapshot b

/// A stable digest of a batch (FNV-1a, 64 bits) for comparing processes.
let digest (x: byte[], y: int64[]) =
    let mutable h = 14695981039346656037UL
    let mix (v: byte) = h <- (h ^^^ uint64 v) * 1099511628211UL
    for v in x do mix v
    for v in y do for k in 0 .. 7 do mix (byte (v >>> (8 * k)))
    h

/// Child mode: the digests of batches 0..19 of epochs 0 and 1 for a seed, one per line.
let childDigests (args: string[]) =
    let seed = UInt64.Parse args[0]
    let s = new MultiShotMemorySampler(table10x8 (), SamplerOptions(ClassesPerBatch = 4, ExamplesPerClassPerBatch = 3, StepsPerEpoch = 20, Seed = seed))
    for e in 0 .. 1 do
        for b in 0 .. 19 do printfn "%d %d %016x" e b (digest (take s b))
        s.OnEpochEnd()
    0

let localDigests (table: ExampleTable) seed =
    let s = new MultiShotMemorySampler(table, SamplerOptions(ClassesPerBatch = 4, ExamplesPerClassPerBatch = 3, StepsPerEpoch = 20, Seed = seed))
    [ for e in 0 .. 1 do
        for b in 0 .. 19 do yield sprintf "%d %d %016x" e b (digest (take s b))
        s.OnEpochEnd() ]

/// Doubles every batch: the original rows, then a copy with y negated (a stand-in for real augmentations).
type DoublingAugmenter() =
    let calls = ConcurrentQueue<int * bool>()
    member _.Calls = calls.ToArray() |> List.ofArray
    interface IAugmenter with
        member _.Augment(batch, n, warm) =
            calls.Enqueue((n, warm))
            let rows = batch.Count
            let shape = batch.ExampleShape.ToArray()
            let out = BatchPool.Shared.Rent(batch.DType, ReadOnlySpan shape, rows * 2)
            batch.XBytes.CopyTo(out.XBytes)
            batch.XBytes.CopyTo(out.XBytes.Slice(batch.XBytes.Length))
            for i in 0 .. rows - 1 do
                out.Y[i] <- batch.Y[i]
                out.Y[rows + i] <- -batch.Y[i]
                out.Indices[i] <- batch.Indices[i]
                out.ClassOrdinals[i] <- batch.ClassOrdinals[i]
            out

// ---------- tests ----------

let options (back: ExampleTable -> ExampleTable) =
    // The suite runs over each backing: `back` turns an in-memory table into the table under test.
    let table10x8 () = back (table10x8 ())
    let intTable counts chunkBytes = back (intTable counts chunkBytes)
    testList "options" [
        testCase "defaults are the reference's" <| fun () ->
            let o = TFDatasetSamplerOptions(Load = TfdsLoadOptions(DatasetName = "mnist"))
            Expect.equal o.ExamplesPerClassPerBatch 2 "examples_per_class_per_batch"
            Expect.equal o.StepsPerEpoch 1000 "steps_per_epoch"
            Expect.equal o.Warmup -1 "warmup"
            Expect.equal o.Load.XKey "image" "x_key"
            Expect.equal o.Load.YKey "label" "y_key"
            Expect.equal (List.ofSeq o.Load.Splits) [ "train"; "test" ] "splits"
            Expect.isNull o.ClassList "class_list"
            Expect.isFalse o.TotalExamplesPerClass.HasValue "total_examples_per_class"
            Expect.equal o.NumAugmentationsPerExample 1 "num_augmentations_per_example (the reference MultiShotMemorySampler leaves the base Sampler's default 1)"
            Expect.isNotNull o.Load.Download "downloading an absent dataset is on by default, as tfds.load"
            Expect.equal o.Mode SamplingMode.Independent "mode"
            Expect.equal (o.Rank, o.WorldSize) (0, 1) "shard"
            Expect.isTrue o.Load.UseCache "cache on"

        testCase "bad counts name the setting" <| fun () ->
            let t = table10x8 ()
            let e = throwsWith<ArgumentOutOfRangeException> (fun () -> new MultiShotMemorySampler(t, opts 0 2) |> ignore) "cpb 0"
            Expect.stringContains e.Message "classesPerBatch" "names the setting"
            let e = throwsWith<ArgumentOutOfRangeException> (fun () -> new MultiShotMemorySampler(t, opts 2 0) |> ignore) "epc 0"
            Expect.stringContains e.Message "examplesPerClassPerBatch" "names the setting"
            let e = throwsWith<ArgumentOutOfRangeException> (fun () -> new MultiShotMemorySampler(t, SamplerOptions(ClassesPerBatch = 2, ExamplesPerClassPerBatch = 2, Seed = 42UL, StepsPerEpoch = 0)) |> ignore) "steps 0"
            Expect.stringContains e.Message "stepsPerEpoch" "names the setting"
            let e = throwsWith<ArgumentOutOfRangeException> (fun () -> new MultiShotMemorySampler(t, SamplerOptions(ClassesPerBatch = 2, ExamplesPerClassPerBatch = 2, StepsPerEpoch = 50, Seed = 42UL, NumAugmentationsPerExample = -1)) |> ignore) "aug -1"
            Expect.stringContains e.Message "NumAugmentationsPerExample" "names the setting"
            let e = throwsWith<ArgumentOutOfRangeException> (fun () -> new MultiShotMemorySampler(t, SamplerOptions(ClassesPerBatch = 2, ExamplesPerClassPerBatch = 2, StepsPerEpoch = 50, Seed = 42UL, TotalExamplesPerClass = Nullable 0)) |> ignore) "total 0"
            Expect.stringContains e.Message "TotalExamplesPerClass" "names the setting"
            let e = throwsWith<ArgumentOutOfRangeException> (fun () -> new MultiShotMemorySampler(t, SamplerOptions(ClassesPerBatch = 2, ExamplesPerClassPerBatch = 2, StepsPerEpoch = 50, Seed = 42UL, Rank = 2, WorldSize = 2)) |> ignore) "rank"
            Expect.stringContains e.Message "rank" "names the setting"

        testCase "null and empty inputs are caller errors" <| fun () ->
            throwsWith<ArgumentNullException> (fun () -> new MultiShotMemorySampler(table10x8 (), (null: SamplerOptions)) |> ignore) "null options" |> ignore
            let empty = back (ExampleTable.From(ReadOnlySpan<int>([||]), ReadOnlySpan [| 3 |], ReadOnlySpan<int64>([||])))
            let e = throwsWith<ArgumentException> (fun () -> new MultiShotMemorySampler(empty, opts 2 2) |> ignore) "empty"
            Expect.stringContains e.Message "no examples" "says why"

        testCase "more classes per batch than classes is an error" <| fun () ->
            let e = throwsWith<ArgumentException> (fun () -> new MultiShotMemorySampler(table10x8 (), opts 11 2) |> ignore) "cpb > classes"
            Expect.stringContains e.Message "exceeds the number of classes" "says why"
    ]

let batches (back: ExampleTable -> ExampleTable) =
    // The suite runs over each backing: `back` turns an in-memory table into the table under test.
    let table10x8 () = back (table10x8 ())
    let intTable counts chunkBytes = back (intTable counts chunkBytes)
    testList "batches" [
        testCase "a batch is balanced: cpb distinct classes, epc rows each, rows are the planned examples" <| fun () ->
            let t = table10x8 ()
            let s = new MultiShotMemorySampler(t, opts 4 3)
            Expect.equal s.BatchSize 12 "batch size"
            for id in 0 .. s.Count - 1 do
                use b = s[id]
                Expect.equal (b.Shape.ToArray()) [| 12; 3 |] "shape"
                let rows = rowsOf b
                for ((i, lab, k), y, idx, ord) in rows do
                    Expect.equal i idx "row holds its planned example"
                    Expect.equal (int64 lab) y "y is the example's label"
                    Expect.equal k (idx * 7 + 1) "payload intact"
                    Expect.equal (s.ClassList[ord]) y "ordinal names the class"
                let perClass = rows |> List.countBy (fun (_, y, _, _) -> y)
                Expect.equal perClass.Length 4 "4 distinct classes"
                for (_, n) in perClass do Expect.equal n 3 "3 of each"
                let distinct = rows |> List.map (fun (_, _, idx, _) -> idx) |> List.distinct
                Expect.equal distinct.Length 12 "no repeat when classes have enough examples"
                Expect.equal b.GlobalBatchId id "one shard: global id = id"
                Expect.equal b.Key.BatchId id "key"

        testCase "Count is steps per epoch, or this rank's share" <| fun () ->
            let t = table10x8 ()
            Expect.equal ((new MultiShotMemorySampler(t, SamplerOptions(ClassesPerBatch = 2, ExamplesPerClassPerBatch = 2, Seed = 42UL, StepsPerEpoch = 10))).Count) 10 "one shard"
            let shares = [ for r in 0 .. 2 -> (new MultiShotMemorySampler(t, SamplerOptions(ClassesPerBatch = 2, ExamplesPerClassPerBatch = 2, Seed = 42UL, StepsPerEpoch = 10, Rank = r, WorldSize = 3))).Count ]
            Expect.equal shares [ 4; 3; 3 ] "10 batches over 3 ranks"
            let s = new MultiShotMemorySampler(t, SamplerOptions(ClassesPerBatch = 2, ExamplesPerClassPerBatch = 2, Seed = 42UL, StepsPerEpoch = 10, Rank = 1, WorldSize = 3))
            use b = s[2]
            Expect.equal b.GlobalBatchId 7 "local 2 on rank 1 of 3 is global 7"

        testCase "batch ids outside [0, Count) are ArgumentOutOfRangeException" <| fun () ->
            let s = new MultiShotMemorySampler(table10x8 (), opts 2 2)
            for id in [ -1; s.Count; Int32.MaxValue ] do
                let e = throwsWith<ArgumentOutOfRangeException> (fun () -> s[id].Dispose()) $"indexer {id}"
                Expect.stringContains e.Message "batchId must be in [0, Count)" "names the range"
                throwsWith<ArgumentOutOfRangeException> (fun () -> s.GenerateBatch(id).Dispose()) "GenerateBatch" |> ignore
                throwsWith<ArgumentOutOfRangeException> (fun () -> s.GetExamples(id, 2, 2).Dispose()) "GetExamples" |> ignore
                throwsWith<ArgumentOutOfRangeException> (fun () -> s.GenerateBatchInto<int>(id, Span(Array.zeroCreate 12), Span(Array.zeroCreate 4)) |> ignore) "Into" |> ignore
            throwsWith<ArgumentOutOfRangeException> (fun () -> s.GenerateBatchAt(-1, 0).Dispose()) "negative epoch" |> ignore

        testCase "enumeration yields the epoch's batches in order" <| fun () ->
            let s = new MultiShotMemorySampler(table10x8 (), SamplerOptions(ClassesPerBatch = 3, ExamplesPerClassPerBatch = 2, Seed = 42UL, StepsPerEpoch = 7))
            let viaEnum = [ for b in s -> (use b = b in snapshot b) ]
            let viaIndex = [ for i in 0 .. s.Count - 1 -> take s i ]
            Expect.equal viaEnum.Length 7 "Count batches"
            Expect.equal viaEnum viaIndex "same as the indexer"

        testCase "GetExamples truncates to BatchSize, as the reference" <| fun () ->
            let s = new MultiShotMemorySampler(table10x8 (), opts 3 2)
            use b = s.GetExamples(0, 4, 3)
            Expect.equal b.Count 6 "4 x 3 = 12 rows truncated to 6"
            use small = s.GetExamples(0, 2, 1)
            Expect.equal small.Count 2 "2 x 1 rows"
            Expect.equal ((rowsOf small) |> List.map (fun (_, y, _, _) -> y) |> List.distinct |> List.length) 2 "2 classes"
            throwsWith<ArgumentOutOfRangeException> (fun () -> s.GetExamples(0, 11, 1).Dispose()) "too many classes" |> ignore
            throwsWith<ArgumentOutOfRangeException> (fun () -> s.GetExamples(0, 2, 0).Dispose()) "0 per class" |> ignore

        testCase "class_list keeps only the listed classes" <| fun () ->
            let s = new MultiShotMemorySampler(table10x8 (), SamplerOptions(ClassesPerBatch = 2, ExamplesPerClassPerBatch = 2, StepsPerEpoch = 50, Seed = 42UL, ClassList = [| 30L; 50L; 70L; 30L |]))
            Expect.equal (List.ofSeq s.ClassList) [ 30L; 50L; 70L ] "deduplicated, ascending"
            Expect.equal s.NumExamples 24 "3 classes x 8"
            for id in 0 .. s.Count - 1 do
                use b = s[id]
                for y in b.Y.ToArray() do Expect.contains [ 30L; 50L; 70L ] y "only listed classes"
            let e = throwsWith<ArgumentException> (fun () -> new MultiShotMemorySampler(table10x8 (), SamplerOptions(ClassesPerBatch = 2, ExamplesPerClassPerBatch = 2, StepsPerEpoch = 50, Seed = 42UL, ClassList = [| 30L; 31L |])) |> ignore) "absent class"
            Expect.stringContains e.Message "31" "names the absent class"

        testCase "total_examples_per_class keeps min(total, available) distinct examples per class" <| fun () ->
            let t = intTable [ 8; 8; 3; 8 ] ExampleTable.DefaultChunkBytes
            let s = new MultiShotMemorySampler(t, SamplerOptions(ClassesPerBatch = 2, ExamplesPerClassPerBatch = 2, Seed = 42UL, TotalExamplesPerClass = Nullable 5, StepsPerEpoch = 200))
            Expect.equal s.NumExamples (5 + 5 + 3 + 5) "min(5, available) per class"
            use all = s.GetSlice()
            let kept = all.Indices.ToArray() |> Set.ofArray
            Expect.equal kept.Count 18 "no duplicates (the reference draws with replacement; we do not)"
            let used = [ for id in 0 .. s.Count - 1 -> (use b = s[id] in b.Indices.ToArray()) ] |> Array.concat |> Set.ofArray
            Expect.isTrue (Set.isSubset used kept) "batches only use kept examples"
            let s2 = new MultiShotMemorySampler(t, SamplerOptions(ClassesPerBatch = 2, ExamplesPerClassPerBatch = 2, Seed = 42UL, TotalExamplesPerClass = Nullable 5, StepsPerEpoch = 200))
            use all2 = s2.GetSlice()
            Expect.equal (all2.Indices.ToArray()) (all.Indices.ToArray()) "the selection is seeded"

        testCase "GetSlice: table order of the sampled examples, -1 to the end, ranges checked" <| fun () ->
            let t = table10x8 ()
            let s = new MultiShotMemorySampler(t, SamplerOptions(ClassesPerBatch = 2, ExamplesPerClassPerBatch = 2, StepsPerEpoch = 50, Seed = 42UL, ClassList = [| 0L; 90L |]))
            use all = s.GetSlice()
            Expect.equal all.Count 16 "all sampled examples"
            let idx = all.Indices.ToArray()
            Expect.equal idx (Array.sort idx) "table order"
            for (i, y) in Array.zip idx (all.Y.ToArray()) do
                Expect.equal y t.Labels[i] "labels follow"
            use part = s.GetSlice(3, 4)
            Expect.equal (part.Indices.ToArray()) idx[3..6] "begin, size"
            use tail = s.GetSlice(10)
            Expect.equal tail.Count 6 "size -1 = to the end"
            use none = s.GetSlice(16, 0)
            Expect.equal none.Count 0 "empty slice"
            throwsWith<ArgumentOutOfRangeException> (fun () -> s.GetSlice(17).Dispose()) "begin past end" |> ignore
            let e = throwsWith<ArgumentOutOfRangeException> (fun () -> s.GetSlice(10, 7).Dispose()) "too long"
            Expect.stringContains e.Message "size must be" "names size"

        testCase "NumExamples, ExampleShape, DType, ClassNames" <| fun () ->
            let b = ExampleTableBuilder.Fixed(DType.UInt8, ReadOnlySpan [| 2; 2 |], 6)
            for i in 0 .. 5 do b.SetLabel(i, int64 (i % 3))
            b.ClassNames <- [| "zero"; "one"; "two" |]
            let s = new MultiShotMemorySampler(back (b.Build()), SamplerOptions(ClassesPerBatch = 2, ExamplesPerClassPerBatch = 1, StepsPerEpoch = 50, Seed = 42UL, ClassList = [| 1L; 2L |]))
            Expect.equal s.NumExamples 4 "two classes x 2"
            Expect.equal (List.ofSeq s.ExampleShape) [ 2; 2 ] "shape"
            Expect.equal s.DType DType.UInt8 "dtype"
            Expect.equal (List.ofSeq s.ClassNames) [ "one"; "two" ] "names of the sampled classes"
            let s2 = new MultiShotMemorySampler(table10x8 (), opts 2 1)
            Expect.equal s2.ClassNames[1] "10" "labels as text without names"

        testCase "Create from spans (the reference's x, y) and the reference-shaped constructor" <| fun () ->
            let x = Array.init (6 * 4) float32
            let y = [| 0L; 0L; 1L; 1L; 2L; 2L |]
            let s = MultiShotMemorySampler.Create<float32>(ReadOnlySpan x, ReadOnlySpan [| 2; 2 |], ReadOnlySpan y, SamplerOptions(ClassesPerBatch = 3, ExamplesPerClassPerBatch = 2, StepsPerEpoch = 3))
            use b = s[0]
            Expect.equal (b.Shape.ToArray()) [| 6; 2; 2 |] "shape"
            let xs = b.X<float32>().ToArray()
            for r in 0 .. 5 do
                let i = b.Indices[r]
                Expect.equal xs[4 * r .. 4 * r + 3] x[4 * i .. 4 * i + 3] "row = example"
            let s2 = new MultiShotMemorySampler(table10x8 (), 3, 2, 17, warmup = 0)
            Expect.equal (s2.Count, s2.BatchSize, s2.IsWarmup) (17, 6, false) "positional reference shape"

        testCase "AsTensorSpan views X with the batch shape" <| fun () ->
            let s = new MultiShotMemorySampler(table10x8 (), opts 2 2)
            use b = s[0]
            let ts = b.AsTensorSpan<int>()
            Expect.equal (ts.Lengths.ToArray() |> Array.map int) [| 4; 3 |] "lengths"
            Expect.equal ts.FlattenedLength 12n "elements"
            let e = throwsWith<ArgumentException> (fun () -> b.X<float32>().Length |> ignore) "wrong type"
            Expect.stringContains e.Message "use int" "suggests the right type"
    ]

let datasetsOverChunks (back: ExampleTable -> ExampleTable) =
    // The suite runs over each backing: `back` turns an in-memory table into the table under test.
    let table10x8 () = back (table10x8 ())
    let intTable counts chunkBytes = back (intTable counts chunkBytes)
    testList "chunks" [
        testCase "a table split into many small chunks (as over 2 GiB) gathers the same rows" <| fun () ->
            let counts = List.replicate 10 8
            let one = intTable counts ExampleTable.DefaultChunkBytes
            let many = intTable counts 36L // 3 examples of 12 bytes per chunk
            Expect.isGreaterThan many.ChunkCount 20 "many chunks"
            let a = new MultiShotMemorySampler(one, opts 5 2)
            let b = new MultiShotMemorySampler(many, opts 5 2)
            for id in 0 .. a.Count - 1 do
                Expect.equal (take b id) (take a id) $"batch {id} identical"
            use sl = b.GetSlice()
            let rows = rowsOf sl
            for ((i, _, k), _, idx, _) in rows do
                Expect.equal (i, k) (idx, idx * 7 + 1) "rows across chunk boundaries"
    ]

let determinism (back: ExampleTable -> ExampleTable) =
    // The suite runs over each backing: `back` turns an in-memory table into the table under test.
    let table10x8 () = back (table10x8 ())
    let intTable counts chunkBytes = back (intTable counts chunkBytes)
    testList "determinism" [
        testCase "same seed, same batches; another seed, other batches" <| fun () ->
            let a = new MultiShotMemorySampler(table10x8 (), opts 4 2)
            let b = new MultiShotMemorySampler(table10x8 (), opts 4 2)
            let c = new MultiShotMemorySampler(table10x8 (), SamplerOptions(ClassesPerBatch = 4, ExamplesPerClassPerBatch = 2, StepsPerEpoch = 50, Seed = 43UL))
            let ba = [ for i in 0 .. 49 -> take a i ]
            Expect.equal [ for i in 0 .. 49 -> take b i ] ba "same seed"
            Expect.notEqual [ for i in 0 .. 49 -> take c i ] ba "another seed"

        testCase "a batch does not depend on what was asked before" <| fun () ->
            let a = new MultiShotMemorySampler(table10x8 (), opts 4 2)
            let first = take a 17
            for i in [ 3; 17; 0; 49; 17 ] do take a i |> ignore
            Expect.equal (take a 17) first "batch 17 again"
            let b = new MultiShotMemorySampler(table10x8 (), opts 4 2)
            Expect.equal (take b 17) first "fresh sampler"

        testCase "epochs differ, and GenerateBatchAt addresses any epoch" <| fun () ->
            let s = new MultiShotMemorySampler(table10x8 (), opts 4 2)
            let e0 = [ for i in 0 .. 9 -> take s i ]
            let at1 = [ for i in 0 .. 9 -> (use b = s.GenerateBatchAt(1, i) in snapshot b) ]
            s.OnEpochEnd()
            Expect.equal s.Epoch 1 "epoch counter"
            let e1 = [ for i in 0 .. 9 -> take s i ]
            Expect.notEqual e1 e0 "a new epoch gives new batches"
            Expect.equal e1 at1 "GenerateBatchAt(1, b) = batch b after one OnEpochEnd"

        testCase "many threads get the same batches as one thread" <| fun () ->
            for mode in [ SamplingMode.Independent; SamplingMode.Coverage ] do
                let s = new MultiShotMemorySampler(table10x8 (), SamplerOptions(ClassesPerBatch = 4, ExamplesPerClassPerBatch = 2, Seed = 42UL, Mode = mode, StepsPerEpoch = 400))
                let sequential = Array.init s.Count (take s)
                for round in 1 .. 3 do
                    let got = Array.zeroCreate s.Count
                    let po = ParallelOptions(MaxDegreeOfParallelism = 8)
                    // Every thread walks the ids in its own order, so requests interleave.
                    Parallel.For(0, 8, po, fun t ->
                        for k in 0 .. s.Count - 1 do
                            let id = (k * 7 + t * 53 + round) % s.Count
                            let snap = take s id
                            got[id] <- snap
                            Expect.equal snap sequential[id] $"{mode} batch {id} on thread {t}") |> ignore
                    Expect.equal got sequential $"{mode} round {round}"

        testCase "another process gets the same batches" <| fun () ->
            let code, out, err = runChild "facade-digests" [ "1234" ] 120000
            Expect.equal code 0 $"child failed: {err}"
            let lines = out.Split('\n', StringSplitOptions.RemoveEmptyEntries) |> Array.map (fun l -> l.Trim()) |> List.ofArray
            Expect.equal lines (localDigests (table10x8 ()) 1234UL) "same digests in both processes"
    ]

let pooling (back: ExampleTable -> ExampleTable) =
    // The suite runs over each backing: `back` turns an in-memory table into the table under test.
    let table10x8 () = back (table10x8 ())
    let intTable counts chunkBytes = back (intTable counts chunkBytes)
    testList "pooling" [
        testCase "steady state: a batch built and disposed allocates nothing (indexer, GetExamples aside)" <| fun () ->
            let s = new MultiShotMemorySampler(table10x8 (), SamplerOptions(ClassesPerBatch = 4, ExamplesPerClassPerBatch = 2, Seed = 42UL, StepsPerEpoch = 64))
            let x = Array.zeroCreate<int> (8 * 3)
            let y = Array.zeroCreate<int64> 8
            // Warm the pool and every code path (JIT, static lambdas) first.
            for i in 0 .. 63 do
                (s[i]).Dispose()
                s.GenerateBatchInto(i, Span x, Span y) |> ignore
                (s.GetSlice(i % 10, 8)).Dispose()
            let before = GC.GetAllocatedBytesForCurrentThread()
            for i in 0 .. 63 do
                (s[i]).Dispose()
                s.GenerateBatchInto(i, Span x, Span y) |> ignore
                (s.GetSlice(i % 10, 8)).Dispose()
            Expect.equal (GC.GetAllocatedBytesForCurrentThread() - before) 0L "bytes allocated by 192 batches"
        testCase "held batches never share buffers with later ones" <| fun () ->
            let s = new MultiShotMemorySampler(table10x8 (), SamplerOptions(ClassesPerBatch = 4, ExamplesPerClassPerBatch = 2, Seed = 42UL, StepsPerEpoch = 64))
            let expected = Array.init 64 (take s)
            // Warm the pool, then hold many batches from many threads at once.
            let held = ConcurrentBag<int * Batch>()
            Parallel.For(0, 64, fun i -> held.Add((i, s[i]))) |> ignore
            for (i, b) in held do Expect.equal (snapshot b) expected[i] $"batch {i} intact while others were made"
            let arrays =
                held |> Seq.map (fun (_, b) ->
                    let ok, seg = Runtime.InteropServices.MemoryMarshal.TryGetArray(Memory<byte>.op_Implicit b.XMemory : ReadOnlyMemory<byte>)
                    Expect.isTrue ok "array-backed"
                    seg.Array) |> Seq.distinctBy LanguagePrimitives.PhysicalHash |> Seq.length
            Expect.equal arrays 64 "64 held batches, 64 distinct buffers"
            for (_, b) in held do b.Dispose()

        testCase "Dispose is idempotent, even through copies, and a disposed handle throws" <| fun () ->
            let pool = new BatchPool()
            let s = new MultiShotMemorySampler(table10x8 (), SamplerOptions(ClassesPerBatch = 2, ExamplesPerClassPerBatch = 2, StepsPerEpoch = 50, Seed = 42UL, Pool = pool))
            let b = s[0]
            let copy = b
            Expect.equal pool.Available 0 "rented"
            b.Dispose()
            Expect.equal pool.Available 1 "returned once"
            b.Dispose()
            copy.Dispose()
            Expect.equal pool.Available 1 "still once"
            Expect.isTrue b.IsDisposed "disposed"
            let e = throwsWith<ObjectDisposedException> (fun () -> b.Count |> ignore) "use after dispose"
            Expect.stringContains e.Message "disposed" "says so"
            let next = s[1]
            Expect.equal pool.Available 0 "storage reused"
            copy.Dispose()
            Expect.isFalse next.IsDisposed "a stale handle cannot return the new rental"
            Expect.equal pool.Available 0 "not returned by the stale handle"
            next.Dispose()
            Expect.isTrue (Unchecked.defaultof<Batch>).IsDisposed "default handle"
            (Unchecked.defaultof<Batch>).Dispose()

        testCase "GenerateBatchInto writes the same batch into caller buffers" <| fun () ->
            let s = new MultiShotMemorySampler(table10x8 (), opts 4 2)
            let x = Array.zeroCreate<int> 24
            let y = Array.zeroCreate<int64> 8
            for id in [ 0; 5; 49 ] do
                let n = s.GenerateBatchInto(id, Span x, Span y)
                Expect.equal n 8 "rows"
                use b = s[id]
                Expect.equal x (b.X<int>().ToArray()) "x"
                Expect.equal y (b.Y.ToArray()) "y"
            let e = throwsWith<ArgumentException> (fun () -> s.GenerateBatchInto(0, Span(Array.zeroCreate<int> 23), Span y) |> ignore) "x too short"
            Expect.stringContains e.Message "needs 24" "gives the need"
            let e = throwsWith<ArgumentException> (fun () -> s.GenerateBatchInto(0, Span x, Span(Array.zeroCreate<int64> 7)) |> ignore) "y too short"
            Expect.stringContains e.Message "has 8 rows" "gives the need"
            throwsWith<ArgumentException> (fun () -> s.GenerateBatchInto(0, Span(Array.zeroCreate<float32> 24), Span y) |> ignore) "wrong type" |> ignore
            let big = new MultiShotMemorySampler(intTable (List.replicate 30 40) ExampleTable.DefaultChunkBytes, opts 30 20)
            let bx = Array.zeroCreate<int> (600 * 3)
            let by = Array.zeroCreate<int64> 600
            Expect.equal (big.GenerateBatchInto(3, Span bx, Span by)) 600 "large batches use rented plan buffers"
            use bb = big[3]
            Expect.equal bx (bb.X<int>().ToArray()) "large x"
            let withAug = new MultiShotMemorySampler(table10x8 (), SamplerOptions(ClassesPerBatch = 4, ExamplesPerClassPerBatch = 2, StepsPerEpoch = 50, Seed = 42UL, Augmenter = DoublingAugmenter()))
            let e = throwsWith<InvalidOperationException> (fun () -> withAug.GenerateBatchInto(0, Span x, Span y) |> ignore) "augmenter"
            Expect.stringContains e.Message "use GenerateBatch" "says what to do"

        testCase "BatchPool.Rent gives a clean batch of the asked shape" <| fun () ->
            use b = (new BatchPool()).Rent(DType.Float32, ReadOnlySpan [| 2; 3 |], 5)
            Expect.equal (b.Shape.ToArray()) [| 5; 2; 3 |] "shape"
            Expect.equal b.XBytes.Length (5 * 6 * 4) "bytes"
            Expect.equal (b.Indices.ToArray()) (Array.create 5 -1) "no source rows"
            Expect.equal (b.Y.ToArray()) (Array.zeroCreate 5) "labels zero"
            throwsWith<ArgumentOutOfRangeException> (fun () -> (new BatchPool()).Rent(DType.UInt8, ReadOnlySpan [| -1 |], 1).Dispose()) "negative dim" |> ignore
    ]

let logging (back: ExampleTable -> ExampleTable) =
    // The suite runs over each backing: `back` turns an in-memory table into the table under test.
    let table10x8 () = back (table10x8 ())
    let intTable counts chunkBytes = back (intTable counts chunkBytes)
    testList "logging and warmup" [
        testCase "the batch-size message goes to the logger" <| fun () ->
            let log = ListLogger()
            new MultiShotMemorySampler(table10x8 (), SamplerOptions(ClassesPerBatch = 3, ExamplesPerClassPerBatch = 2, StepsPerEpoch = 50, Seed = 42UL, Logger = log)) |> ignore
            Expect.equal (log.Texts LogLevel.Information) [ "The initial batch size is 6 (3 classes * 2 examples per class) with 0 augmentations" ] "reference text"

        testCase "a class with too few examples warns once, and is drawn with replacement" <| fun () ->
            let log = ListLogger()
            let t = intTable [ 8; 8; 2 ] ExampleTable.DefaultChunkBytes
            let s = new MultiShotMemorySampler(t, SamplerOptions(ClassesPerBatch = 3, ExamplesPerClassPerBatch = 4, StepsPerEpoch = 50, Seed = 42UL, Logger = log))
            let smallExamples = [ for i in 0 .. t.Count - 1 do if t.Labels[i] = 20L then yield i ] |> Set.ofList
            let used = Collections.Generic.HashSet<int>()
            for id in 0 .. s.Count - 1 do
                use b = s[id]
                let small = rowsOf b |> List.filter (fun (_, y, _, _) -> y = 20L)
                Expect.equal small.Length 4 "4 rows of the small class"
                for (_, _, i, _) in small do
                    Expect.contains smallExamples i "drawn from its 2 examples"
                    used.Add i |> ignore
            Expect.equal used.Count 2 "both examples appear over 50 batches"
            let warnings = log.Texts LogLevel.Warning
            Expect.equal warnings.Length 1 "one warning"
            Expect.stringContains warnings.Head "Class 20 has 2 examples" "names the class"
            Expect.stringContains warnings.Head "with replacement" "says what happens"

        testCase "warmup follows the reference: default -1 is on during epoch 0 only" <| fun () ->
            let seqOf warmup =
                let log = ListLogger()
                let s = new MultiShotMemorySampler(table10x8 (), SamplerOptions(ClassesPerBatch = 2, ExamplesPerClassPerBatch = 2, StepsPerEpoch = 50, Seed = 42UL, Warmup = warmup, Logger = log))
                let states = [ for _ in 0 .. 4 -> (let w = s.IsWarmup in s.OnEpochEnd(); w) ]
                states, log.Texts LogLevel.Information |> List.filter ((=) "Warmup complete") |> List.length
            Expect.equal (seqOf -1) ([ true; false; false; false; false ], 1) "default -1"
            Expect.equal (seqOf 0) ([ false; false; false; false; false ], 0) "0: never"
            Expect.equal (seqOf 1) ([ true; false; false; false; false ], 1) "1"
            Expect.equal (seqOf 3) ([ true; true; true; false; false ], 1) "3"
    ]

let contracts (back: ExampleTable -> ExampleTable) =
    // The suite runs over each backing: `back` turns an in-memory table into the table under test.
    let table10x8 () = back (table10x8 ())
    let intTable counts chunkBytes = back (intTable counts chunkBytes)
    testList "preprocess and augmenter" [
        testCase "the augmenter gets the batch, num_augmentations_per_example and is_warmup, and may change the size" <| fun () ->
            let aug = DoublingAugmenter()
            let s = new MultiShotMemorySampler(table10x8 (), SamplerOptions(ClassesPerBatch = 3, ExamplesPerClassPerBatch = 2, StepsPerEpoch = 50, Seed = 42UL, Augmenter = aug, NumAugmentationsPerExample = 2))
            let plain = new MultiShotMemorySampler(table10x8 (), opts 3 2)
            use b = s[4]
            Expect.equal b.Count 12 "doubled"
            let x, y = snapshot b
            let px, py = take plain 4
            Expect.equal x (Array.append px px) "x of the augmented batch"
            Expect.equal y (Array.append py (Array.map (~-) py)) "y of the augmented batch"
            s.OnEpochEnd()
            (s[0]).Dispose()
            use sl = s.GetSlice(0, 5)
            Expect.equal sl.Count 5 "slices are not augmented (as the reference's MultiShotMemorySampler.get_slice)"
            Expect.equal aug.Calls [ (2, true); (2, false) ] "arguments"
            use ex = s.GetExamples(0, 3, 2)
            Expect.equal ex.Count 6 "GetExamples is not augmented (as the reference)"

        testCase "the input batch is disposed when the augmenter returns another" <| fun () ->
            let pool = new BatchPool()
            let mutable input = Unchecked.defaultof<Batch>
            let aug = Augmenters.FromFunc(AugmentFunc(fun b _ _ -> input <- b; BatchPool.Shared.Rent(b.DType, b.ExampleShape, 1)))
            let s = new MultiShotMemorySampler(table10x8 (), SamplerOptions(ClassesPerBatch = 2, ExamplesPerClassPerBatch = 2, StepsPerEpoch = 50, Seed = 42UL, Augmenter = aug, Pool = pool))
            use out = s[0]
            Expect.isTrue input.IsDisposed "input returned"
            Expect.equal pool.Available 1 "to the sampler's pool"
            Expect.equal out.Count 1 "the augmenter's batch"
            let inPlace = Augmenters.FromFunc(AugmentFunc(fun b _ _ -> b.Y.Fill 7L; b))
            let s2 = new MultiShotMemorySampler(table10x8 (), SamplerOptions(ClassesPerBatch = 2, ExamplesPerClassPerBatch = 2, StepsPerEpoch = 50, Seed = 42UL, Augmenter = inPlace))
            use b2 = s2[0]
            Expect.equal (b2.Y.ToArray()) (Array.create 4 7L) "in place"
            let failing = Augmenters.FromFunc(AugmentFunc(fun _ _ _ -> failwith "boom"))
            let pool3 = new BatchPool()
            let s3 = new MultiShotMemorySampler(table10x8 (), SamplerOptions(ClassesPerBatch = 2, ExamplesPerClassPerBatch = 2, StepsPerEpoch = 50, Seed = 42UL, Augmenter = failing, Pool = pool3))
            throwsWith<Exception> (fun () -> s3[0].Dispose()) "augmenter throws" |> ignore
            Expect.equal pool3.Available 1 "the input went back to the pool"

        testCase "preprocess runs once per example, may change dtype, shape and label" <| fun () ->
            let calls = ref 0
            let p =
                Preprocessing.Create<int, float32>(ReadOnlySpan [| 2 |], PreprocessAction<int, float32>(fun x _ o label ->
                    Interlocked.Increment calls |> ignore
                    o[0] <- float32 x[0]
                    o[1] <- float32 x[2]
                    label <- label / 10L))
            let t = table10x8 ()
            let s = new MultiShotMemorySampler(t, SamplerOptions(ClassesPerBatch = 3, ExamplesPerClassPerBatch = 2, StepsPerEpoch = 50, Seed = 42UL, Preprocess = p))
            Expect.equal calls.Value t.Count "once per example"
            Expect.equal s.DType DType.Float32 "dtype changed"
            Expect.equal (List.ofSeq s.ExampleShape) [ 2 ] "shape changed"
            Expect.equal (List.ofSeq s.ClassList) [ 0L .. 9L ] "labels changed"
            use b = s[0]
            let x = b.X<float32>().ToArray()
            for r in 0 .. b.Count - 1 do
                let i = b.Indices[r]
                Expect.equal (x[2 * r], x[2 * r + 1]) (float32 i, float32 (i * 7 + 1)) "row preprocessed"
                Expect.equal b.Y[r] (t.Labels[i] / 10L) "label preprocessed"
            Expect.equal calls.Value t.Count "batches do not preprocess again"

        testCase "the TFDS sampler takes a loaded table, preprocessed by the loader or not" <| fun () ->
            let calls = ref 0
            let p = Preprocessing.Create<int, int>(ReadOnlySpan [| 3 |], PreprocessAction<int, int>(fun x _ o _ -> Interlocked.Increment calls |> ignore; x.CopyTo o))
            let o = TFDatasetSamplerOptions(Load = TfdsLoadOptions(DatasetName = "mnist"), ClassesPerBatch = 2, Preprocess = p)
            let t = table10x8 ()
            let raw = new TFDatasetMultiShotMemorySampler(t, o, false)
            Expect.equal calls.Value t.Count "applied once when the loader did not"
            let loaded = new TFDatasetMultiShotMemorySampler(raw.Table, o, true)
            Expect.equal calls.Value t.Count "not applied again"
            Expect.equal loaded.DatasetName "mnist" "name kept"
            Expect.equal (take loaded 3) (take raw 3) "same batches"

        testCase "ToFloat32 scales bytes; a failing preprocess names the example" <| fun () ->
            let t = back (ExampleTable.From(ReadOnlySpan [| 0uy; 255uy; 51uy; 102uy |], ReadOnlySpan [| 2 |], ReadOnlySpan [| 0L; 1L |]))
            let out = Preprocessing.Apply(t, Preprocessing.ToFloat32())
            Expect.equal (out.GetExample<float32>(0).ToArray()) [| 0f; 1f |] "example 0"
            Expect.floatClose Accuracy.high (float (out.GetExample<float32>(1)[1])) 0.4 "example 1"
            let bad = Preprocessing.Create<byte, byte>(ReadOnlySpan [| 2 |], PreprocessAction<byte, byte>(fun x _ _ _ -> if x[0] = 51uy then invalidOp "cannot"))
            let e = throwsWith<InvalidOperationException> (fun () -> Preprocessing.Apply(t, bad) |> ignore) "failing preprocess"
            Expect.stringContains e.Message "example 1" "names the example"
            let e = throwsWith<ArgumentException> (fun () -> Preprocessing.Apply(intTable [ 2 ] 1024L, Preprocessing.ToFloat32()) |> ignore) "wrong dtype"
            Expect.stringContains e.Message "uint8" "says what it takes"

        testCase "a ragged table fails with advice to resize, and works after ResizeNearest" <| fun () ->
            let b = ExampleTableBuilder.Ragged(DType.UInt8, ReadOnlySpan [| -1; -1 |], 8)
            for i in 0 .. 7 do
                let side = if i % 2 = 0 then 2 else 4
                b.AllocateRagged(i, ReadOnlySpan [| side; side |]).Fill(byte i)
                b.SetLabel(i, int64 (i % 4))
            let t = b.Build()
            let s = new MultiShotMemorySampler(t, opts 4 2)
            let failures =
                [ for id in 0 .. s.Count - 1 ->
                    try (s[id]).Dispose(); None
                    with :? RaggedBatchException as e -> Some e ]
            let e = failures |> List.choose id |> List.tryHead
            Expect.isSome e "some batch mixes 2x2 and 4x4 examples"
            Expect.stringContains e.Value.Message "ResizeNearest" "suggests a resizing preprocess"
            Expect.stringContains e.Value.Message "mixes example shapes" "says what is wrong"
            let r = new MultiShotMemorySampler(t, SamplerOptions(ClassesPerBatch = 4, ExamplesPerClassPerBatch = 2, StepsPerEpoch = 50, Seed = 42UL, Preprocess = Preprocessing.ResizeNearest(3, 3)))
            use rb = r[0]
            Expect.equal (rb.Shape.ToArray()) [| 8; 3; 3 |] "resized"
            let x = rb.XBytes.ToArray()
            for row in 0 .. 7 do
                Expect.equal x[9 * row .. 9 * row + 8] (Array.create 9 (byte rb.Indices[row])) "pixels of its example"
    ]

let suite back = [ options back; batches back; datasetsOverChunks back; determinism back; pooling back; logging back; contracts back ]

/// The whole façade suite, over in-memory tables, then again over the same tables memory-mapped from a cache file
/// (Io.MappedTableTests.toMapped: many small pages, so rows cross segment boundaries). Ragged tables stay in memory:
/// mapping needs fixed shapes.
[<Tests>]
let tests = testList "Facade.Sampler" (suite id @ [ testList "mapped" (suite Samplers.Tests.Io.MappedTableTests.toMapped) ])
