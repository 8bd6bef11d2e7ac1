/// Retrieval metrics (Samplers.Evaluation): values worked by hand, ties, k beyond the set, a class seen once, and a
/// comparison with an independent naive implementation on random sets.
module Samplers.Tests.Facade.RetrievalTests

open System
open Expecto
open FsCheck
open FsCheck.FSharp
open Samplers.Evaluation
open Samplers.Tests
open Samplers.Tests.TestUtil

let private l2 = RetrievalOptions(Distance = RetrievalDistance.L2, Ks = [| 1; 5 |])

let private close (actual: float) (expected: float) (what: string) =
    Expect.floatClose Accuracy.veryHigh actual expected what

/// The naive reference: every other row sorted by (distance, index) in full, metrics read off the sorted list.
/// Distances: L2 in float32 (integer coordinates make it exact, so ties are real ties), cosine in float64.
let naive (q: float32[]) (ql: int[]) (r: float32[]) (rl: int[]) (dim: int) (cosine: bool) (leaveOneOut: bool) (ks: int[]) =
    let row (x: float32[]) i = Array.sub x (i * dim) dim
    let dist (a: float32[]) (b: float32[]) =
        if cosine then
            let dot = Array.fold2 (fun s (x: float32) (y: float32) -> s + float x * float y) 0.0 a b
            let na = sqrt (a |> Array.sumBy (fun x -> float x * float x))
            let nb = sqrt (b |> Array.sumBy (fun x -> float x * float x))
            if na = 0.0 || nb = 0.0 then 1.0 else 1.0 - dot / (na * nb)
        else
            float (sqrt (Array.fold2 (fun (s: float32) (x: float32) (y: float32) -> s + (x - y) * (x - y)) 0.0f a b))
    [| for i in 0 .. ql.Length - 1 ->
        let ranked =
            [| for j in 0 .. rl.Length - 1 do if not (leaveOneOut && i = j) then yield (dist (row q i) (row r j), j) |]
            |> Array.sort |> Array.map (fun (_, j) -> rl.[j] = ql.[i])
        let rel = (rl |> Array.filter ((=) ql.[i]) |> Array.length) - (if leaveOneOut then 1 else 0)
        let recall = ks |> Array.map (fun k -> ranked |> Array.truncate k |> Array.exists id)
        let precision = ks |> Array.map (fun k -> let top = Array.truncate k ranked in if top.Length = 0 then 0.0 else float (top |> Array.filter id).Length / float top.Length)
        let rp, ap =
            if rel = 0 then nan, nan
            else
                let top = Array.truncate rel ranked
                let p i = float (top |> Array.truncate i |> Array.filter id).Length / float i
                float (top |> Array.filter id).Length / float rel,
                (top |> Array.mapi (fun i hit -> if hit then p (i + 1) else 0.0) |> Array.sum) / float rel
        ql.[i], recall, precision, rp, ap |]

let private summarise (per: (int * bool[] * float[] * float * float)[]) (k: int) =
    let n = float per.Length
    let withR = per |> Array.filter (fun (_, _, _, _, ap) -> not (Double.IsNaN ap))
    (per |> Array.averageBy (fun (_, r, _, _, _) -> if r.[k] then 1.0 else 0.0)),
    (per |> Array.sumBy (fun (_, _, p, _, _) -> p.[k])) / n,
    (if withR.Length = 0 then nan else withR |> Array.averageBy (fun (_, _, _, rp, _) -> rp)),
    (if withR.Length = 0 then nan else withR |> Array.averageBy (fun (_, _, _, _, ap) -> ap)),
    withR.Length

let private same (a: float) (b: float) = (Double.IsNaN a && Double.IsNaN b) || abs (a - b) <= 1e-9

[<Tests>]
let tests =
    testList "Retrieval" [
        test "values worked by hand (L2 on a line, a tie, a class seen once)" {
            // Points (index: position class): 0: 0 A, 1: 1 A, 2: 1.5 B, 3: 3 A, 4: 4 B, 5: 10 C.
            // Query 0 (A): ranked 1A 2B 3A 4B 5C. R = 2. r@1 hit, P@5 = 2/5, R-prec = 1/2, AP@R = P(1)/2 = 0.5.
            // Query 1 (A): ranked 2B(0.5) 0A(1) 3A(2) 4B(3) 5C. R = 2. r@1 miss, P@5 = 2/5, R-prec = 1/2, AP@R = P(2)/2 = 0.25.
            // Query 2 (B): 0 and 3 both at 1.5, index 0 first: 1A(0.5) 0A 3A 4B(2.5) 5C. R = 1. r@1 miss, r@5 hit,
            //   P@5 = 1/5, R-prec = 0, AP@R = 0.
            // Query 3 (A): 4B(1) 2B(1.5) 1A(2) 0A(3) 5C. R = 2. r@1 miss, P@5 = 2/5, R-prec = 0, AP@R = 0.
            // Query 4 (B): 3A(1) 2B(2.5) 1A 0A 5C. R = 1. r@1 miss, r@5 hit, P@5 = 1/5, R-prec = 0, AP@R = 0.
            // Query 5 (C, alone): R = 0. r@1 and r@5 miss, P@5 = 0; left out of R-precision and MAP@R.
            // Overall: r@1 = 1/6, r@5 = 5/6, P@1 = 1/6, P@5 = 1.6/6, R-prec = (0.5 + 0.5)/5 = 0.2, MAP@R = 0.75/5 = 0.15.
            let x = [| 0f; 1f; 1.5f; 3f; 4f; 10f |]
            let y = [| 0; 0; 1; 0; 1; 2 |]
            let r = Retrieval.Evaluate(ReadOnlySpan x, ReadOnlySpan y, 1, l2)
            let o = r.Overall
            Expect.equal (o.Queries, o.QueriesWithRelevant) (6, 5) "6 queries, 5 with R >= 1"
            close (o.RecallAt 1) (1.0 / 6.0) "recall@1"
            close (o.RecallAt 5) (5.0 / 6.0) "recall@5"
            close (o.PrecisionAt 1) (1.0 / 6.0) "precision@1"
            close (o.PrecisionAt 5) (1.6 / 6.0) "precision@5"
            close o.RPrecision 0.2 "R-precision"
            close o.MapAtR 0.15 "MAP@R"
            // Class A (queries 0, 1, 3): r@1 = 1/3, MAP@R = (0.5 + 0.25 + 0)/3.
            let a = r.PerClass.[0]
            close (a.RecallAt 1) (1.0 / 3.0) "class A recall@1"
            close a.MapAtR 0.25 "class A MAP@R"
            let c = r.PerClass.[2]
            Expect.equal (c.Queries, c.QueriesWithRelevant) (1, 0) "class C: one query, none with R >= 1"
            Expect.isTrue (Double.IsNaN c.MapAtR && Double.IsNaN c.RPrecision) "class C has no R-metrics (NaN)"
            Expect.equal (c.RecallAt 5) 0.0 "class C can only miss"
            Expect.equal (List.ofSeq r.PerClass.Keys) [ 0; 1; 2 ] "classes in label order"
        }

        test "ties go to the lower index" {
            // Query 0 at 0 (class 7); two references at distance 1: +1 and -1. Whichever has the lower index is nearest.
            let x = [| 0f; 1f; -1f |]
            let first = Retrieval.Evaluate(ReadOnlySpan x, ReadOnlySpan [| 7; 7; 8 |], 1, l2)
            let second = Retrieval.Evaluate(ReadOnlySpan x, ReadOnlySpan [| 7; 8; 7 |], 1, l2)
            // Only query 0's result differs: with labels 7 7 8 its nearest (index 1) is a 7: hit; with 7 8 7, index 1 is an 8.
            Expect.equal (first.PerClass.[7].RecallAt 1) 1.0 "index 1 (same class) wins the tie"
            Expect.equal (second.PerClass.[7].RecallAt 1) 0.5 "index 1 (other class) wins the tie: query 0 misses, query 2 (nearest 0) hits"
            // Cosine: 2-D vectors (1,0) and (0,1) are equally far from (1,1).
            let e = [| 1f; 1f; 0f; 1f; 1f; 0f |]
            let c = Retrieval.Evaluate(ReadOnlySpan e, ReadOnlySpan [| 1; 2; 1 |], 2, RetrievalOptions(Ks = [| 1 |]))
            Expect.equal (c.PerClass.[1].RecallAt 1) 0.5 "query 0's tie goes to index 1 (class 2): a miss; query 2's nearest is 0: a hit"
        }

        test "k beyond the set is cut to the references there are" {
            // Three points, two of class 0: each query has 2 references. P@10 = same / 2.
            // Query 0: refs 1 (0) and 2 (1): P = 1/2, hit. Query 1: same, P = 1/2, hit. Query 2 (1): refs both class 0: P = 0, miss.
            let r = Retrieval.Evaluate(ReadOnlySpan [| 0f; 1f; 5f |], ReadOnlySpan [| 0; 0; 1 |], 1, RetrievalOptions(Distance = RetrievalDistance.L2, Ks = [| 10 |]))
            close (r.Overall.PrecisionAt 10) (1.0 / 3.0) "precision@10 = (1/2 + 1/2 + 0)/3"
            close (r.Overall.RecallAt 10) (2.0 / 3.0) "recall@10"
            // A single example: no reference at all; it still counts as a (missed) query.
            let one = Retrieval.Evaluate(ReadOnlySpan [| 1f; 2f |], ReadOnlySpan [| 3 |], 2)
            Expect.equal (one.Overall.Queries, one.Overall.RecallAt 1, one.Overall.PrecisionAt 5) (1, 0.0, 0.0) "a lone query misses"
            Expect.isTrue (Double.IsNaN one.Overall.MapAtR) "no query with R >= 1: MAP@R is NaN"
        }

        test "a separate reference set: every reference is a candidate, R counts the references" {
            // Queries at 0 (A) and 10 (B); references 1 (A), 2 (B), 9 (B).
            // Query A: 1A 2B 9B, R = 1: r@1 hit, AP@R = 1. Query B: 9B(1) 2B(8) 1A(9), R = 2: AP = (1 + 1)/2 = 1.
            let r = Retrieval.EvaluateQueries(ReadOnlySpan [| 0f; 10f |], ReadOnlySpan [| 0; 1 |], ReadOnlySpan [| 1f; 2f; 9f |], ReadOnlySpan [| 0; 1; 1 |], 1, l2)
            Expect.equal (r.Overall.RecallAt 1, r.Overall.MapAtR, r.Overall.PrecisionAt 5) (1.0, 1.0, 0.5) "precision@5 cut to 3 refs: (1/3 + 2/3)/2"
        }

        test "bad input is refused with the sizes or the row" {
            let e = throwsWith<ArgumentException> (fun () -> Retrieval.Evaluate(ReadOnlySpan [| 1f; 2f; 3f |], ReadOnlySpan [| 0; 1 |], 2) |> ignore) "sizes"
            Expect.stringContains e.Message "3 floats, but 2 labels × dimension 2 = 4" "expected vs found"
            let e = throwsWith<ArgumentException> (fun () -> Retrieval.Evaluate(ReadOnlySpan [| 1f; nanf |], ReadOnlySpan [| 0; 1 |], 1) |> ignore) "NaN"
            Expect.stringContains e.Message "row 1, column 0" "names the row"
            let e = throwsWith<ArgumentException> (fun () -> Retrieval.Evaluate(ReadOnlySpan [| 1f |], ReadOnlySpan [| 0 |], 1, RetrievalOptions(Ks = [| 0 |])) |> ignore) "k"
            Expect.stringContains e.Message "at least 1" "k >= 1"
            let e = throwsWith<ArgumentOutOfRangeException> (fun () -> Retrieval.Evaluate(ReadOnlySpan [| 1f |], ReadOnlySpan [| 0 |], 1).Overall.RecallAt 3 |> ignore) "k not evaluated"
            Expect.stringContains e.Message "evaluated cut-offs are 1, 5" "names the cut-offs"
        }

        test "quickselect keeps the smallest keys in the total order" {
            let rng = Random(5)
            for _ in 1 .. 200 do
                let n = rng.Next(1, 60)
                let keys = Array.init n (fun i -> Retrieval.Neighbour(float32 (rng.Next(0, 6)), i))
                let count = rng.Next(0, n + 1)
                let a = Array.copy keys
                Retrieval.SelectSmallest(Span a, count)
                let expected = keys |> Array.sortBy (fun k -> k.Distance, k.Index) |> Array.truncate count |> Array.sortBy (fun k -> k.Index)
                Expect.equal (Array.truncate count a |> Array.sortBy (fun k -> k.Index)) expected "the same set"
        }

        let case =
            gen {
                let! n = Gen.choose (1, 40)
                let! cosine = Gen.elements [ false; true ]
                // Cosine in one dimension has only two directions: every distance a rounding-level near-tie.
                let! dim = Gen.choose ((if cosine then 2 else 1), 5)
                let! classes = Gen.choose (1, 8)
                let! split = Gen.elements [ false; true ]
                let! chunk = Gen.choose (1, 9)
                let! ks = Gen.subListOf [ 1; 2; 3; 5; 50 ]
                let ks = if ks.IsEmpty then [ 1 ] else List.ofSeq ks
                // L2: small integer coordinates, so distances are exact and ties are frequent. Cosine: finer values (no near-ties).
                let coord = if cosine then Gen.choose (-1000, 1000) |> Gen.map (fun v -> float32 v / 100f) else Gen.choose (-2, 2) |> Gen.map float32
                let! x = Gen.arrayOfLength (n * dim) coord
                let! y = Gen.arrayOfLength n (Gen.choose (0, classes - 1))
                let! m = Gen.choose (1, 30)
                let! rx = Gen.arrayOfLength (m * dim) coord
                let! ry = Gen.arrayOfLength m (Gen.choose (0, classes - 1))
                return n, dim, x, y, split, (rx, ry), cosine, chunk, Array.ofList ks
            }

        Props.property "matches a naive sort-everything implementation on random sets" 300 (
            Prop.forAll (Arb.fromGen case) (fun (n, dim, x, y, split, (rx, ry), cosine, chunk, ks) ->
                let options = RetrievalOptions(Ks = ks, QueryChunk = chunk, Distance = (if cosine then RetrievalDistance.Cosine else RetrievalDistance.L2))
                let r, per =
                    if split then
                        Retrieval.EvaluateQueries(ReadOnlySpan x, ReadOnlySpan y, ReadOnlySpan rx, ReadOnlySpan ry, dim, options),
                        naive x y rx ry dim cosine false ks
                    else Retrieval.Evaluate(ReadOnlySpan x, ReadOnlySpan y, dim, options), naive x y x y dim cosine true ks
                let check (s: RetrievalScores) (per: _[]) =
                    ks |> Array.mapi (fun t _ ->
                        let recall, precision, rp, map, withR = summarise per t
                        same s.RecallAtK.[t] recall && same s.PrecisionAtK.[t] precision && same s.RPrecision rp && same s.MapAtR map
                        && s.QueriesWithRelevant = withR && s.Queries = per.Length)
                    |> Array.forall id
                let perClassOk =
                    r.PerClass |> Seq.forall (fun kv -> check kv.Value (per |> Array.filter (fun (l, _, _, _, _) -> l = kv.Key)))
                (check r.Overall per && perClassOk)
                |> Prop.classify split "query/reference split"
                |> Prop.classify (not split) "the set against itself"
                |> Prop.classify cosine "cosine"
                |> Prop.classify (not cosine) "L2 (integer coordinates, ties)"
                |> Prop.classify (per |> Array.exists (fun (_, _, _, _, ap) -> Double.IsNaN ap)) "a query with R = 0"
                |> Prop.classify (ks |> Array.exists (fun k -> k > n)) "k beyond the set"))
    ]
