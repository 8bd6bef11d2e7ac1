module Samplers.Tests.Core.PlanContract

open System
open System.Threading.Tasks
open Expecto
open FsCheck.FSharp
open Samplers
open Samplers.Imaging
open Samplers.Tfds
open Samplers.Core
open Samplers.Tests
open Samplers.Tests.TestUtil

/// A random but reproducible planning setup derived from one FsCheck-chosen number.
type Setup = { Labels: int64[]; Index: ClassIndex; Config: PlanConfig; Planner: Planner; Seed: uint64 }

let setup (mode: SamplingMode) (sharded: bool) (seed: uint64) =
    let mutable s = PhiloxStream(seed, Purpose.User, 0, 99UL)
    let classes = 1 + s.NextBounded 12
    // Some classes are smaller than examples-per-class so replacement paths are exercised.
    let counts = Array.init classes (fun _ -> 1 + s.NextBounded 9)
    let labels =
        [| for c in 0 .. classes - 1 do for _ in 1 .. counts[c] do yield int64 (c * 3 + 1) |]
    // Shuffle rows so class members are not contiguous.
    let rows = Array.init labels.Length id
    Sampling.Shuffle(&s, Span rows)
    let labels = rows |> Array.map (fun r -> labels[r])
    let k = 1 + s.NextBounded classes
    let epc = 1 + s.NextBounded 5
    let steps = 1 + s.NextBounded 12
    let ws = if sharded then 1 + s.NextBounded 4 else 1
    let rank = s.NextBounded ws
    let index = ClassIndex.Build(ReadOnlySpan labels)
    let config = PlanConfig(k, epc, steps, mode, rank, ws)
    { Labels = labels; Index = index; Config = config; Planner = Planner(config, index); Seed = seed }

let plansOfEpoch (st: Setup) (epoch: int) =
    [| for b in 0 .. st.Config.BatchesPerRank - 1 -> st.Planner.Plan({ Seed = st.Seed; Epoch = epoch; BatchId = b }) |]

let flat (p: BatchPlan) = Array.append (p.Indices.ToArray()) (p.ClassOrdinals.ToArray())

let checkBatch (st: Setup) (p: BatchPlan) =
    let cfg = st.Config
    Expect.equal p.Count cfg.BatchSize "batch_size rows"
    let ords = p.ClassOrdinals.ToArray()
    let idx = p.Indices.ToArray()
    let slots = Array.init cfg.ClassesPerBatch (fun i -> ords[i * cfg.ExamplesPerClassPerBatch])
    Expect.equal (Array.distinct slots).Length cfg.ClassesPerBatch "classes_per_batch distinct classes"
    for i in 0 .. cfg.ClassesPerBatch - 1 do
        let rows = [| for q in 0 .. cfg.ExamplesPerClassPerBatch - 1 -> i * cfg.ExamplesPerClassPerBatch + q |]
        Expect.isTrue (rows |> Array.forall (fun r -> ords[r] = slots[i])) "rows grouped class by class"
        for r in rows do
            Expect.equal st.Labels[idx[r]] (st.Index.LabelOf ords[r]) "index belongs to the stated class"
            Expect.equal p.Labels.Span[r] (st.Index.LabelOf ords[r]) "label column"
        let have = st.Index.CountOf slots[i]
        if have >= cfg.ExamplesPerClassPerBatch then
            Expect.equal (rows |> Array.map (fun r -> idx[r]) |> Array.distinct).Length rows.Length "no repeated example when the class has enough"
    let expectedReplacement = slots |> Array.filter (fun c -> st.Index.CountOf c < cfg.ExamplesPerClassPerBatch) |> Array.map st.Index.LabelOf
    Expect.sequenceEqual (p.ReplacementLabels.ToArray()) expectedReplacement "replacement classes reported"

/// A property over seeds from the whole 64-bit range (Props.uint64Spread); every seed derives a whole setup, so the
/// cases are classified by the setup's features as well as by the seed's size.
let private seedProperty (mode: SamplingMode) (sharded: bool) (name: string) (body: uint64 -> 'T) : Test =
    let shown = $"""{mode}{if sharded then " sharded" else ""}: {name}"""
    Props.propertyShownAs shown name 60 (
        Prop.forAll (Arb.fromGen Props.uint64Spread) (fun seed ->
            let st = setup mode sharded seed
            let small = [| for c in 0 .. st.Index.ClassCount - 1 -> st.Index.CountOf c < st.Config.ExamplesPerClassPerBatch |]
            body seed
            |> Prop.classify (Array.contains true small) "a class drawn with replacement"
            |> Prop.classify (st.Config.ClassesPerBatch = st.Index.ClassCount) "every class in each batch"
            |> Prop.classify (st.Config.WorldSize > 1) "sharded"
            |> Prop.collect (Props.seedBits seed)))

/// The contract every sampling mode (and a sharded setup) must meet.
let planContract (mode: SamplingMode) (sharded: bool) : Test =
    let name = $"""{mode}{if sharded then " sharded" else ""}"""
    testList name [
        seedProperty mode sharded "every batch is well-formed" <| fun (seed: uint64) ->
            let st = setup mode sharded seed
            for e in 0 .. 1 do for p in plansOfEpoch st e do checkBatch st p

        seedProperty mode sharded "same inputs, same plan, whatever the call order or thread" <| fun (seed: uint64) ->
            let st = setup mode sharded seed
            let n = st.Config.BatchesPerRank
            let key b = { Seed = st.Seed; Epoch = 3; BatchId = b }
            let forward = Array.init n (fun b -> flat (st.Planner.Plan(key b)))
            let backward = Array.init n (fun b -> n - 1 - b) |> Array.map (fun b -> b, flat (st.Planner.Plan(key b))) |> Array.sortBy fst |> Array.map snd
            let parallel' = Array.zeroCreate n
            Parallel.For(0, n * 4, fun i -> parallel'[i % n] <- flat (st.Planner.Plan(key (i % n)))) |> ignore
            forward = backward && forward = parallel'

        seedProperty mode sharded "Fill equals Plan and needs only BatchSize-long buffers" <| fun (seed: uint64) ->
            let st = setup mode sharded seed
            let b = st.Config.BatchesPerRank - 1
            if b >= 0 then
                let key = { Seed = st.Seed; Epoch = 1; BatchId = b }
                let idx = Array.create st.Config.BatchSize -1
                let ords = Array.create st.Config.BatchSize -1
                st.Planner.Fill(key, Span idx, Span ords)
                let p = st.Planner.Plan(key)
                Expect.equal p.Count st.Config.BatchSize "rows"
                Expect.sequenceEqual idx (p.Indices.ToArray()) "indices"
                Expect.sequenceEqual ords (p.ClassOrdinals.ToArray()) "ordinals"
    ]

let coverageInvariants =
    testList "Coverage invariants" [
        seedProperty SamplingMode.Coverage false "class counts within one at every round end, across epochs" <| fun (seed: uint64) ->
            let st = setup SamplingMode.Coverage false seed
            let c = st.Config
            let rounds = (st.Index.ClassCount + c.ClassesPerBatch - 1) / c.ClassesPerBatch
            let counts = Array.zeroCreate st.Index.ClassCount
            let mutable g = 0
            for e in 0 .. 5 do
                for p in plansOfEpoch st e do
                    let ords = p.ClassOrdinals.ToArray()
                    for i in 0 .. c.ClassesPerBatch - 1 do
                        let o = ords[i * c.ExamplesPerClassPerBatch]
                        counts[o] <- counts[o] + 1
                    g <- g + 1
                    if g % rounds = 0 then
                        Expect.isLessThanOrEqual (Array.max counts - Array.min counts) 1 $"after {g} batches: {counts}"

        seedProperty SamplingMode.Coverage false "within a class, every example is used once per round before any repeats" <| fun (seed: uint64) ->
            let st = setup SamplingMode.Coverage false seed
            let c = st.Config
            let epc = c.ExamplesPerClassPerBatch
            // The groups each class received, in batch order.
            let groups = Array.init st.Index.ClassCount (fun _ -> ResizeArray<int[]>())
            for e in 0 .. 7 do
                for p in plansOfEpoch st e do
                    let ords = p.ClassOrdinals.ToArray()
                    let idx = p.Indices.ToArray()
                    for i in 0 .. c.ClassesPerBatch - 1 do
                        groups[ords[i * epc]].Add(idx[i * epc .. i * epc + epc - 1])
            for o in 0 .. st.Index.ClassCount - 1 do
                let n = st.Index.CountOf o
                if n >= epc then
                    let r = (n + epc - 1) / epc
                    let all = st.Index.ExamplesOf(o).ToArray() |> Array.sort
                    let complete = groups[o].Count / r
                    for m in 0 .. complete - 1 do
                        let round = [| for j in 0 .. r - 1 -> groups[o][m * r + j] |]
                        // Only the round's last group may repeat, and it completes the round.
                        let beforeLast = Array.concat round[.. r - 2]
                        Expect.equal (Array.distinct beforeLast).Length beforeLast.Length $"class {o} round {m}: no repeat before the last group"
                        Expect.sequenceEqual (Array.concat round |> Array.distinct |> Array.sort) all $"class {o} round {m}: every example used"
    ]

let coverStreamGrid =
    testCase "cover stream over a grid of (n, g): distinct groups, balanced counts, each round covers all items" <| fun () ->
        for n in 1 .. 23 do
            for g in 1 .. n do
                let r = (n + g - 1) / g
                let e = r * g - n
                let scratch = Array.zeroCreate (CoverStream.ScratchLength(n, g))
                let counts = Array.zeroCreate n
                let rounds = 3 * (if e = 0 then 1 else n) // several extras blocks
                for m in 0 .. rounds - 1 do
                    let seenInRound = Collections.Generic.HashSet<int>()
                    for j in 0 .. r - 1 do
                        let group = uint64 (m * r + j)
                        let dest = Array.zeroCreate g
                        CoverStream.Group(77UL, Purpose.ClassPermutation, Purpose.ClassExtras, 0, n, g, group, Span dest, Span scratch)
                        if (Array.distinct dest).Length <> g then failtestf "n %d g %d group %d: repeated item %A" n g group dest
                        let sigma = CoverStream.ExtrasPermutation(77UL, Purpose.ClassExtras, 0, n, g, group)
                        for slot in 0 .. g - 1 do
                            let before = CoverStream.OccurrencesBefore(&sigma, n, g, group, dest[slot], slot)
                            if before <> uint64 counts[dest[slot]] then
                                failtestf "n %d g %d group %d item %d: OccurrencesBefore %d, counted %d" n g group dest[slot] before counts[dest[slot]]
                        for x in dest do
                            counts[x] <- counts[x] + 1
                            seenInRound.Add x |> ignore
                    if seenInRound.Count <> n then failtestf "n %d g %d round %d covers %d items" n g m seenInRound.Count
                    if Array.max counts - Array.min counts > 1 then failtestf "n %d g %d after round %d: counts %A" n g m counts

let shardingComplete =
    Props.property "sharding: ranks' batches are disjoint, complete and equal the unsharded plans" 60 (
      Prop.forAll (Arb.fromGen (Gen.zip Props.uint64Spread (Gen.elements [ false; true ]))) (fun (seed, modeBit) ->
        let mode = if modeBit then SamplingMode.Coverage else SamplingMode.Independent
        let st = setup mode true seed
        let whole = st.Config.WithShard(0, 1)
        let ws = 1 + int (seed % 4UL)
        let seen = Collections.Generic.Dictionary<int, int[]>()
        for r in 0 .. ws - 1 do
            let cfg = st.Config.WithShard(r, ws)
            for b in 0 .. cfg.BatchesPerRank - 1 do
                let p = Planner(cfg, st.Index).Plan({ Seed = st.Seed; Epoch = 2; BatchId = b })
                Expect.isFalse (seen.ContainsKey p.GlobalBatchId) "disjoint"
                seen[p.GlobalBatchId] <- flat p
        Expect.equal seen.Count whole.StepsPerEpoch "complete"
        for KeyValue(g, f) in seen do
            Expect.sequenceEqual f (flat (Planner(whole, st.Index).Plan({ Seed = st.Seed; Epoch = 2; BatchId = g }))) $"global batch {g}"
        ()
        |> Prop.collect $"world size {ws}"
        |> Prop.classify modeBit "Coverage"
        |> Prop.classify (not modeBit) "Independent"
        |> Prop.collect (Props.seedBits seed)))

let private chiSquareLimit df = MathNet.Numerics.Distributions.ChiSquared.InvCDF(float df, 1.0 - 1e-6)

let goodnessOfFit =
    testList "chi-square" [
        // Fixed seeds: each test is deterministic; the 1e-6 level bounds the chance that a correct sampler could
        // ever have produced a failing seed list. Counting every slot of a batch drawn without replacement has a
        // smaller variance than a multinomial, so the chi-square bound is conservative.
        for seed in [ 1UL; 2UL; 3UL ] do
            testCase $"Independent: classes are chosen uniformly (seed {seed})" <| fun () ->
                let labels = Array.init 200 (fun i -> int64 (i % 10))
                let ix = ClassIndex.Build(ReadOnlySpan labels)
                let cfg = PlanConfig(3, 2, 4000)
                let all = Array.zeroCreate 10
                let first = Array.zeroCreate 10
                for b in 0 .. 3999 do
                    let p = Planner(cfg, ix).Plan({ Seed = seed; Epoch = 0; BatchId = b })
                    let o = p.ClassOrdinals.ToArray()
                    for i in 0 .. 2 do all[o[i * 2]] <- all[o[i * 2]] + 1
                    first[o[0]] <- first[o[0]] + 1
                let chi (counts: int[]) =
                    let expected = float (Array.sum counts) / float counts.Length
                    counts |> Array.sumBy (fun c -> (float c - expected) ** 2.0 / expected)
                Expect.isLessThan (chi all) (chiSquareLimit 9) "every slot"
                Expect.isLessThan (chi first) (chiSquareLimit 9) "first slot (order is uniform too)"

            testCase $"Independent: examples within a class are chosen uniformly (seed {seed})" <| fun () ->
                let labels = Array.init 70 (fun i -> int64 (i % 2))
                let ix = ClassIndex.Build(ReadOnlySpan labels)
                let cfg = PlanConfig(1, 4, 5000)
                let counts = Collections.Generic.Dictionary<int, int>()
                for b in 0 .. 4999 do
                    let p = Planner(cfg, ix).Plan({ Seed = seed; Epoch = 1; BatchId = b })
                    if p.Labels.Span[0] = 0L then
                        for r in p.Indices.ToArray() do counts[r] <- (match counts.TryGetValue r with | true, v -> v + 1 | _ -> 1)
                Expect.equal counts.Count 35 "every example of class 0 drawn"
                let total = counts.Values |> Seq.sum
                let expected = float total / 35.0
                let chi = counts.Values |> Seq.sumBy (fun c -> (float c - expected) ** 2.0 / expected)
                Expect.isLessThan chi (chiSquareLimit 34) "examples"
    ]

let errors =
    let labels = Array.init 30 (fun i -> int64 (i % 5))
    let ix = ClassIndex.Build(ReadOnlySpan labels)
    let plan (cfg: PlanConfig) epoch b = Planner(cfg, ix).Plan({ Seed = 1UL; Epoch = epoch; BatchId = b }) |> ignore
    testList "errors" [
        testCase "classes_per_batch > number of classes gives both numbers" <| fun () ->
            let e = throwsWith<ArgumentException> (fun () -> plan (PlanConfig(6, 2, 10)) 0 0) "too many classes"
            Expect.stringContains e.Message "classesPerBatch (6) exceeds the number of classes (5)" "message"
        testCase "classes_per_batch < 1" <| fun () ->
            let e = throwsWith<ArgumentOutOfRangeException> (fun () -> PlanConfig(0, 2, 10) |> ignore) "k"
            Expect.stringContains e.Message "classesPerBatch must be at least 1" "message"
        testCase "examples_per_class_per_batch < 1" <| fun () ->
            let e = throwsWith<ArgumentOutOfRangeException> (fun () -> PlanConfig(1, 0, 10) |> ignore) "epc"
            Expect.stringContains e.Message "examplesPerClassPerBatch must be at least 1" "message"
        testCase "steps_per_epoch < 1" <| fun () ->
            let e = throwsWith<ArgumentOutOfRangeException> (fun () -> PlanConfig(1, 1, 0) |> ignore) "steps"
            Expect.stringContains e.Message "stepsPerEpoch must be at least 1" "message"
        testCase "empty dataset" <| fun () ->
            let e = throwsWith<ArgumentException> (fun () -> ClassIndex.Build(ReadOnlySpan<int64>.Empty) |> ignore) "empty"
            Expect.stringContains e.Message "dataset is empty" "message"
        testCase "negative batch id" <| fun () ->
            let e = throwsWith<ArgumentOutOfRangeException> (fun () -> plan (PlanConfig(2, 2, 10)) 0 -1) "batch"
            Expect.stringContains e.Message "key.BatchId must be in [0, BatchesPerRank) = [0, 10)" "message"
        testCase "batch id >= BatchesPerRank" <| fun () ->
            let e = throwsWith<ArgumentOutOfRangeException> (fun () -> plan (PlanConfig(2, 2, 10, SamplingMode.Independent, 1, 4)) 0 3) "batch"
            Expect.stringContains e.Message "[0, 3)" "message"
            Expect.stringContains e.Message "but was 3" "message"
        testCase "negative epoch" <| fun () ->
            let e = throwsWith<ArgumentOutOfRangeException> (fun () -> plan (PlanConfig(2, 2, 10)) -1 0) "epoch"
            Expect.stringContains e.Message "key.Epoch must be 0 or more" "message"
        testCase "rank outside [0, worldSize)" <| fun () ->
            let e = throwsWith<ArgumentOutOfRangeException> (fun () -> PlanConfig(2, 2, 10, SamplingMode.Independent, 4, 4) |> ignore) "rank"
            Expect.stringContains e.Message "rank must be in [0, worldSize) = [0, 4)" "message"
        testCase "Fill into a short buffer" <| fun () ->
            let e = throwsWith<ArgumentException> (fun () -> Planner(PlanConfig(2, 2, 10), ix).Fill({ Seed = 1UL; Epoch = 0; BatchId = 0 }, Span(Array.zeroCreate 3), Span(Array.zeroCreate 4)) |> ignore) "short"
            Expect.stringContains e.Message "indices must hold BatchSize = 4 ints, but holds 3" "message"
    ]

let others =
    testList "other" [
        testCase "PlanExamples truncates to config.BatchSize and matches Plan of the other counts" <| fun () ->
            let labels = Array.init 60 (fun i -> int64 (i % 6))
            let ix = ClassIndex.Build(ReadOnlySpan labels)
            let cfg = PlanConfig(2, 2, 10)
            let key = { Seed = 5UL; Epoch = 0; BatchId = 3 }
            let p = Planner(cfg, ix).PlanExamples(key, 3, 3)
            Expect.equal p.Count 4 "truncated to 2x2"
            let full = Planner(PlanConfig(3, 3, 10), ix).Plan(key)
            Expect.sequenceEqual (p.Indices.ToArray()) (full.Indices.Slice(0, 4).ToArray()) "prefix of the full plan"
            Expect.equal (Planner(cfg, ix).PlanExamples(key, 1, 2)).Count 2 "fewer rows than BatchSize stay"

        testCase "Fill allocates nothing once warm (both modes, with and without scratch)" <| fun () ->
            let labels = Array.init 100000 (fun i -> int64 (i % 1000))
            let ix = ClassIndex.Build(ReadOnlySpan labels)
            for cfg in [ PlanConfig(10, 2, 100); PlanConfig(100, 4, 100, SamplingMode.Coverage, 0, 1); PlanConfig(7, 3, 100, SamplingMode.Coverage, 0, 1); PlanConfig(64, 40, 100) ] do
                let idx = Array.zeroCreate cfg.BatchSize
                let ords = Array.zeroCreate cfg.BatchSize
                let planner = Planner(cfg, ix)
                for b in 0 .. 99 do planner.Fill({ Seed = 1UL; Epoch = 0; BatchId = b }, Span idx, Span ords)
                let before = GC.GetAllocatedBytesForCurrentThread()
                for b in 0 .. 99 do planner.Fill({ Seed = 1UL; Epoch = 1; BatchId = b }, Span idx, Span ords)
                Expect.equal (GC.GetAllocatedBytesForCurrentThread() - before) 0L $"bytes allocated by 100 Fill calls, {cfg}"

        testCase "BatchPlan.PlanVersion agrees with Planner.PlanVersion" <| fun () ->
            let ix = ClassIndex.Build(ReadOnlySpan [| 1L; 2L |])
            Expect.equal (Planner(PlanConfig(1, 1, 1), ix).Plan({ Seed = 0UL; Epoch = 0; BatchId = 0 })).PlanVersion Planner.PlanVersion "versions"
    ]

[<Tests>]
let tests =
    testList "Core.PlanContract" [
        planContract SamplingMode.Independent false
        planContract SamplingMode.Coverage false
        planContract SamplingMode.Independent true
        planContract SamplingMode.Coverage true
        coverageInvariants
        coverStreamGrid
        shardingComplete
        goodnessOfFit
        errors
        others
    ]
