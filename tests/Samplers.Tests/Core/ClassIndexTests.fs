module Samplers.Tests.Core.ClassIndexTests

open System
open Expecto
open Samplers.Core
open Samplers.Tests.TestUtil

let private build (labels: int64[]) = ClassIndex.Build(ReadOnlySpan labels)

let private check (labels: int64[]) (ix: ClassIndex) =
    let classes = labels |> Array.distinct |> Array.sort
    Expect.sequenceEqual (ix.Classes.ToArray()) classes "sorted distinct classes"
    for c in 0 .. ix.ClassCount - 1 do
        let expected = [| for i in 0 .. labels.Length - 1 do if labels[i] = classes[c] then i |]
        Expect.sequenceEqual (ix.ExamplesOf(c).ToArray()) expected $"members of class {classes[c]}"
        Expect.equal (ix.OrdinalOf classes[c]) c "OrdinalOf"

[<Tests>]
let tests =
    testList "Core.ClassIndex" [
        testPropertyWithConfig { FsCheckConfig.defaultConfig with maxTest = 100 } "dense and sparse labels index correctly" <| fun (xs: int16[]) (sparse: bool) ->
            let labels = if xs.Length = 0 then [| 0L |] else xs |> Array.map (fun v -> if sparse then int64 v * 1_000_000_007L else int64 v)
            check labels (build labels)
            true

        testCase "int64 extremes use the sparse path" <| fun () ->
            let labels = [| Int64.MaxValue; Int64.MinValue; 0L; Int64.MaxValue |]
            check labels (build labels)

        testCase "empty dataset is an error" <| fun () ->
            let e = throwsWith<ArgumentException> (fun () -> build [||] |> ignore) "empty"
            Expect.stringContains e.Message "dataset is empty" "message"

        testCase "AllExamples lists every indexed row once, ascending, after a class list and a selection" <| fun () ->
            let labels = [| 3L; 1L; 2L; 3L; 1L; 5L; 3L; 1L |]
            Expect.equal ((build labels).AllExamples()) [| 0 .. 7 |] "every row"
            let ix = ClassIndex.Build(ReadOnlySpan labels, ReadOnlySpan [| 3L; 1L |]).Select(9UL, 2)
            let all = ix.AllExamples()
            let expected = [| for o in 0 .. ix.ClassCount - 1 do yield! ix.ExamplesOf(o).ToArray() |] |> Array.sort
            Expect.equal all expected "the selected rows, sorted"
            Expect.equal all.Length 4 "2 classes x 2 kept"
            Expect.isTrue (all |> Array.forall (fun i -> labels[i] = 3L || labels[i] = 1L)) "only listed classes"

        testCase "class list filters and deduplicates" <| fun () ->
            let labels = [| 3L; 1L; 2L; 3L; 1L; 5L |]
            let ix = ClassIndex.Build(ReadOnlySpan labels, ReadOnlySpan [| 3L; 1L; 3L |])
            Expect.sequenceEqual (ix.Classes.ToArray()) [| 1L; 3L |] "classes"
            Expect.sequenceEqual (ix.ExamplesOf(1).ToArray()) [| 0; 3 |] "class 3 rows"
            Expect.equal ix.ExampleCount 4 "examples"

        testCase "class list with absent classes names them and the classes present" <| fun () ->
            let labels = [| 3L; 1L; 2L |]
            let e = throwsWith<ArgumentException> (fun () -> ClassIndex.Build(ReadOnlySpan labels, ReadOnlySpan [| 9L; 1L; 7L |]) |> ignore) "absent"
            Expect.stringContains e.Message "absent from the data: [7, 9]" "missing listed"
            Expect.stringContains e.Message "Classes present: [1, 2, 3]" "present listed"

        testCase "empty class list is an error" <| fun () ->
            let e = throwsWith<ArgumentException> (fun () -> ClassIndex.Build(ReadOnlySpan [| 1L |], ReadOnlySpan<int64>.Empty) |> ignore) "empty list"
            Expect.stringContains e.Message "classList is empty" "message"

        testCase "Select keeps min(total, available) distinct examples per class, seed-determined" <| fun () ->
            let labels = Array.init 1000 (fun i -> int64 (i % 7) + (if i % 7 = 6 && i > 20 then 1L else 0L))
            let ix = build labels
            let a = ix.Select(11UL, 40)
            let b = ix.Select(11UL, 40)
            let c = ix.Select(12UL, 40)
            for k in 0 .. ix.ClassCount - 1 do
                let rows = a.ExamplesOf(k).ToArray()
                Expect.equal rows.Length (min 40 (ix.CountOf k)) $"count of class {k}"
                Expect.equal (Array.distinct rows).Length rows.Length "no duplicates (the reference would duplicate)"
                Expect.isTrue (rows |> Array.forall (fun r -> labels[r] = ix.LabelOf k)) "rows belong to the class"
                Expect.sequenceEqual rows (Array.sort rows) "ascending"
                Expect.sequenceEqual rows (b.ExamplesOf(k).ToArray()) "same seed, same subset"
            Expect.isFalse (Seq.forall (fun k -> a.ExamplesOf(k).ToArray() = c.ExamplesOf(k).ToArray()) [ 0 .. ix.ClassCount - 1 ]) "another seed, another subset"

        testCase "Select rejects total < 1" <| fun () ->
            let e = throwsWith<ArgumentOutOfRangeException> (fun () -> (build [| 1L |]).Select(1UL, 0) |> ignore) "total"
            Expect.stringContains e.Message "at least 1" "message"
    ]
