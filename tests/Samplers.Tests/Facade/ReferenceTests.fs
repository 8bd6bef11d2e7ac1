/// TensorFlow Similarity's own sampler tests (v0.18, tests/samplers/test_memory_samplers.py, test_tfdataset_samplers.py,
/// the sampler call of tests/integration/test_readme_minimal.py) translated to the façade, then the behaviours of its
/// source (tensorflow_similarity/samplers/*.py) we follow, then the deliberate divergences, each named after the
/// reference behaviour it pins (docs/API.md "Divergences from the reference").
module Samplers.Tests.Facade.ReferenceTests

open System
open System.IO
open Expecto
open Microsoft.Extensions.Logging
open Samplers
open Samplers.Imaging
open Samplers.Tfds
open Samplers.Tests.TestUtil
open Samplers.Tests.Facade.SamplerTests

/// The reference tests' x = [10, 20, 30, 10, 20, 30, 10], y = [1, 2, 3, 1, 2, 3, 1] (one int32 per example).
let referenceXY () =
    ExampleTable.From(ReadOnlySpan [| 10; 20; 30; 10; 20; 30; 10 |], ReadOnlySpan [| 1 |], ReadOnlySpan [| 1L; 2L; 3L; 1L; 2L; 3L; 1L |])

let embeddedDataDir () = Path.Combine(repoRoot.Value, "data")

/// x follows y in every row, as the reference's `if y == 1: assertEqual(x, 10)` loops check.
let expectXFollowsY (b: Batch) =
    let x = b.X<int>().ToArray()
    for i in 0 .. b.Count - 1 do
        Expect.equal (int64 x[i]) (b.Y[i] * 10L) $"row {i}: x = 10 * y"

let translated =
    testList "translated reference tests" [
        testCase "test_multi_shot_memory_sampler: generate_batch(606) holds classes_per_batch classes, with and without replacement" <| fun () ->
            for examplePerClass in [ 2; 20 ] do
                let s = new MultiShotMemorySampler(referenceXY (), SamplerOptions(ClassesPerBatch = 2, ExamplesPerClassPerBatch = examplePerClass))
                use b = s.GenerateBatch 606
                Expect.equal b.Count (2 * examplePerClass) $"batch_size for {examplePerClass}"
                Expect.equal (b.Y.ToArray() |> Array.distinct |> Array.length) 2 "num_classes == class_per_batch"
                expectXFollowsY b

        testCase "test_select_examples: class_list [1, 3] keeps only those classes and x follows y" <| fun () ->
            // The reference's select_examples draws 2 or 20 per class with replacement (len = 2 * n); we keep
            // min(n, available) distinct examples (a divergence, below), so the counts are 2 + 2 and 3 + 2.
            for total, expected in [ 2, 4; 20, 5 ] do
                let s = new MultiShotMemorySampler(referenceXY (), SamplerOptions(ClassesPerBatch = 2, ClassList = [| 1L; 3L |], TotalExamplesPerClass = Nullable total))
                use all = s.GetSlice()
                Expect.equal all.Count expected $"examples kept for total_examples_per_class={total}"
                for y in all.Y.ToArray() do Expect.contains [ 1L; 3L ] y "only listed classes"
                expectXFollowsY all

        testCase "test_msms_get_slice: get_slice(1, 2) gives rows 1 and 2" <| fun () ->
            let x = Array.init 40 (fun i -> i / 10)
            let s = new MultiShotMemorySampler(ExampleTable.From(ReadOnlySpan x, ReadOnlySpan [| 10 |], ReadOnlySpan [| 0L; 1L; 2L; 3L |]), SamplerOptions())
            use sl = s.GetSlice(1, 2)
            Expect.equal (sl.Shape.ToArray()) [| 2; 10 |] "slice_x.shape == (2, 10)"
            Expect.equal sl.Y.Length 2 "slice_y.shape == (2,)"
            let xs = sl.X<int>().ToArray()
            Expect.equal (xs[0], xs[10]) (1, 2) "slice_x[0, 0] == 1, slice_x[1, 0] == 2"
            Expect.equal (sl.Y.ToArray()) [| 1L; 2L |] "slice_y"

        testCase "test_msms_properties: num_examples and example_shape" <| fun () ->
            let b = ExampleTableBuilder.Fixed(DType.Float32, ReadOnlySpan [| 10; 20; 3 |], 4)
            for i in 0 .. 3 do b.SetLabel(i, int64 i)
            let s = new MultiShotMemorySampler(b.Build(), SamplerOptions())
            Expect.equal s.NumExamples 4 "num_examples"
            Expect.equal (List.ofSeq s.ExampleShape) [ 10; 20; 3 ] "example_shape"

        testCase "test_small_class_size: a class smaller than examples_per_class is drawn with replacement and warned about once" <| fun () ->
            let log = ListLogger()
            let t = ExampleTable.From(ReadOnlySpan(Array.zeroCreate<float32> 4), ReadOnlySpan [| 1 |], ReadOnlySpan [| 1L; 1L; 1L; 2L |])
            let s = new MultiShotMemorySampler(t, SamplerOptions(ClassesPerBatch = 2, ExamplesPerClassPerBatch = 3, Logger = log))
            let counts (b: Batch) = b.Y.ToArray() |> Array.countBy id |> Array.sort
            using (s.GenerateBatch 0) (fun b -> Expect.equal (counts b) [| 1L, 3; 2L, 3 |] "classes [1, 2], counts [3, 3]")
            let warnings () = log.Texts LogLevel.Warning |> List.filter (fun m -> m.Contains "Class 2 has 1 examples")
            Expect.equal (warnings ()).Length 1 "the warning names class 2 and its 1 example"
            using (s.GenerateBatch 0) (fun b -> Expect.equal (counts b) [| 1L, 3; 2L, 3 |] "again")
            Expect.equal (warnings ()).Length 1 "a subsequent batch does not warn again"

        testCase "test_tfdataset_samplers: a wrong x_key or y_key is a ValueError (ArgumentException)" <| fun () ->
            for xKey, yKey in [ "error", "label"; "image", "error" ] do
                let e = throwsWith<ArgumentException> (fun () -> new TFDatasetMultiShotMemorySampler("synthetic_digits", 4, xKey, yKey, dataDir = embeddedDataDir (), download = false) |> ignore) $"{xKey}/{yKey}"
                Expect.stringContains e.Message "not found - available features are:" "the reference's message"

        testCase "test_readme_minimal: TFDatasetMultiShotMemorySampler(dataset_name, classes_per_batch=10)" <| fun () ->
            // The README loads mnist; the embedded synthetic_digits has the same shape and 10 classes.
            let s = new TFDatasetMultiShotMemorySampler("synthetic_digits", 10, dataDir = embeddedDataDir ())
            use b = s[0]
            Expect.equal (b.Shape.ToArray()) [| 20; 28; 28; 1 |] "10 classes * 2 examples of 28x28x1"
            Expect.equal (b.Y.ToArray() |> Array.distinct |> Array.length) 10 "10 classes"
    ]

/// An augmenter that records what it is given and returns the batch unchanged.
type RecordingAugmenter() =
    let calls = Collections.Concurrent.ConcurrentQueue<int * bool>()
    member _.Calls = List.ofSeq calls
    interface IAugmenter with
        member _.Augment(batch, n, warm) =
            calls.Enqueue((n, warm))
            batch

let source =
    testList "reference source behaviours" [
        testCase "num_augmentations_per_example: the base Sampler's default 1 (since v0.17) reaches the augmenter" <| fun () ->
            Expect.equal (SamplerOptions().NumAugmentationsPerExample) 1 "default"
            let aug = RecordingAugmenter()
            let s = new MultiShotMemorySampler(table10x8 (), SamplerOptions(ClassesPerBatch = 2, Augmenter = aug))
            (s[0]).Dispose()
            Expect.equal aug.Calls [ 1, true ] "augmenter(x, y, 1, is_warmup)"

        testCase "the construction message: 'with {0 if augmenter is None else n} augmentations'" <| fun () ->
            let message (augmenter: IAugmenter) (n: int option) =
                let log = ListLogger()
                let o = SamplerOptions(ClassesPerBatch = 3, ExamplesPerClassPerBatch = 2, Augmenter = augmenter, Logger = log)
                new MultiShotMemorySampler(table10x8 (), (match n with Some n -> SamplerOptions(ClassesPerBatch = 3, ExamplesPerClassPerBatch = 2, Augmenter = augmenter, Logger = log, NumAugmentationsPerExample = n) | None -> o)) |> ignore
                log.Texts LogLevel.Information
            let text n = [ $"The initial batch size is 6 (3 classes * 2 examples per class) with {n} augmentations" ]
            Expect.equal (message null None) (text 0) "no augmenter: 0"
            Expect.equal (message (RecordingAugmenter()) None) (text 1) "an augmenter, default n: 1"
            Expect.equal (message (RecordingAugmenter()) (Some 4)) (text 4) "n = 4"
            Expect.equal (message null (Some 4)) (text 0) "n without an augmenter: 0"

        testCase "MultiShotMemorySampler.get_slice applies no augmenter" <| fun () ->
            let aug = RecordingAugmenter()
            let s = new MultiShotMemorySampler(table10x8 (), SamplerOptions(ClassesPerBatch = 2, Augmenter = Augmenters.FromFunc(AugmentFunc(fun b n w -> (aug :> IAugmenter).Augment(b, n, w) |> ignore; failwith "get_slice must not augment"))))
            use sl = s.GetSlice(0, 5)
            Expect.equal sl.Count 5 "the slice as it is"
            Expect.isEmpty aug.Calls "augmenter not called"

        testCase "class_list=[] means every class (if not class_list)" <| fun () ->
            let all = new MultiShotMemorySampler(table10x8 (), opts 2 2)
            let empty = new MultiShotMemorySampler(table10x8 (), SamplerOptions(ClassesPerBatch = 2, ExamplesPerClassPerBatch = 2, StepsPerEpoch = 50, Seed = 42UL, ClassList = [||]))
            Expect.equal (List.ofSeq empty.ClassList) (List.ofSeq all.ClassList) "all ten classes"
            Expect.equal (take empty 7) (take all 7) "the same batches as class_list=None"

        testCase "splits may be one string as well as a list" <| fun () ->
            let one = new TFDatasetMultiShotMemorySampler("synthetic_digits", 2, "image", "label", "test", dataDir = embeddedDataDir (), download = false)
            let list = new TFDatasetMultiShotMemorySampler("synthetic_digits", 2, splits = [| "test" |], dataDir = embeddedDataDir (), download = false)
            Expect.equal one.NumExamples 1000 "the test split"
            Expect.equal (List.ofSeq one.DatasetOptions.Load.Splits) [ "test" ] "one entry"
            Expect.equal (take one 3) (take list 3) "same as [\"test\"]"
    ]

let divergences =
    testList "deliberate divergences" [
        testCase "get_slice() with size=-1: every example here; the reference's x[begin:begin-1] drops the last" <| fun () ->
            let s = new MultiShotMemorySampler(referenceXY (), SamplerOptions())
            use all = s.GetSlice()
            Expect.equal all.Count 7 "n rows, not n - 1"
            use tail = s.GetSlice(5)
            Expect.equal tail.Count 2 "from begin to the end"

        testCase "a slice past the end throws here; the reference silently cuts it" <| fun () ->
            let s = new MultiShotMemorySampler(referenceXY (), SamplerOptions())
            let e = throwsWith<ArgumentOutOfRangeException> (fun () -> s.GetSlice(5, 3).Dispose()) "past the end"
            Expect.stringContains e.Message "[0, 2]" "names the allowed sizes"
            throwsWith<ArgumentOutOfRangeException> (fun () -> s.GetSlice(8).Dispose()) "begin past the end" |> ignore

        testCase "batch ids are checked against [0, Count); the reference accepts any id" <| fun () ->
            let s = new MultiShotMemorySampler(referenceXY (), SamplerOptions(StepsPerEpoch = 10))
            for id in [ -1; 10; 606 ] do
                let e = throwsWith<ArgumentOutOfRangeException> (fun () -> (s.GenerateBatch id).Dispose()) $"id {id}"
                Expect.stringContains e.Message "[0, 10)" "names the range"

        testCase "the same batch id gives the same batch; the reference draws anew from the global random" <| fun () ->
            let s = new MultiShotMemorySampler(table10x8 (), opts 3 2)
            Expect.equal (take s 4) (take s 4) "same call, same batch"

        testCase "total_examples_per_class draws without replacement; the reference's select_examples duplicates" <| fun () ->
            let s = new MultiShotMemorySampler(referenceXY (), SamplerOptions(TotalExamplesPerClass = Nullable 20))
            use all = s.GetSlice()
            let idx = all.Indices.ToArray()
            Expect.equal idx.Length 7 "each example once"
            Expect.equal (Array.distinct idx).Length idx.Length "no duplicates"
    ]

[<Tests>]
let tests = testList "Facade.Reference" [ translated; source; divergences ]
