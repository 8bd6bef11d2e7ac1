namespace Samplers.Core

open System
open System.Buffers
open Samplers
open Samplers.Core.Internal

/// <summary>
/// The "balanced cover stream" behind Coverage mode: an endless sequence of groups of g distinct items of [0, n)
/// (g &lt;= n) in which, at every round end, each item has occurred a number of times within one of every other,
/// and group G is computed in O(g) without looking at earlier groups. See docs/DETERMINISM.md.
/// </summary>
/// <remarks>Round m = G / R (R = ceil(n / g) groups, e = R*g - n extra slots) is a keyed permutation pi_m of the items:
/// group j takes positions [j*g, (j+1)*g); the last group takes the last g - e positions plus e extras, which are
/// consecutive positions (mod n) of a permutation sigma_b that changes every L = n / gcd(n, e) rounds. An extra that
/// collides with a pi item of the last group swaps that item with the next non-extra item from the start of pi_m.</remarks>
[<AbstractClass; Sealed>]
type internal CoverStream =
    static member private Gcd(a: int, b: int) = if b = 0 then a else CoverStream.Gcd(b, a % b)

    /// <summary>(R, e, L): groups per round, extra slots per round, rounds per extras block.</summary>
    static member Shape(n: int, g: int) : struct (int * int * int) =
        let r = (n + g - 1) / g
        let e = int (int64 r * int64 g - int64 n)
        let l = if e = 0 then 1 else n / CoverStream.Gcd(n, e)
        struct (r, e, l)

    /// <summary>Scratch ints Group may need: g for the last group plus a hash table for large e.</summary>
    static member ScratchLength(n: int, g: int) : int =
        let struct (_, e, _) = CoverStream.Shape(n, g)
        if e = 0 then 0 else g + Sampling.ScratchLength e

    static member private Extras(seed: uint64, purpose: Purpose, lane: int, n: int, e: int, l: int, m: uint64, dest: Span<int>) =
        let b = m / uint64 l
        let t0 = (m % uint64 l) * uint64 e
        let mutable s = PhiloxStream(seed, purpose, lane, b)
        let sigma = FeistelPermutation(n, &s)
        for i in 0 .. e - 1 do
            dest[i] <- sigma.Apply(int ((t0 + uint64 i) % uint64 n))

    static member private InSet(set: ReadOnlySpan<int>, table: ReadOnlySpan<int>, v: int) =
        if table.IsEmpty then set.Contains v else Sampling.Contains(table, v)

    /// <summary>Writes group <paramref name="group"/> (g distinct items) into destination[0..g).</summary>
    static member Group(seed: uint64, permPurpose: Purpose, extrasPurpose: Purpose, lane: int, n: int, g: int, group: uint64, destination: Span<int>, scratch: Span<int>) : unit =
        let struct (r, e, l) = CoverStream.Shape(n, g)
        let m = group / uint64 r
        let j = int (group % uint64 r)
        let mutable s = PhiloxStream(seed, permPurpose, lane, m)
        let pi = FeistelPermutation(n, &s)
        if e = 0 || (j <> 0 && j <> r - 1) then
            let start = j * g
            for i in 0 .. g - 1 do destination[i] <- pi.Apply(start + i)
        else
            // The last group: pi's last g - e items, then the e extras.
            let last = if j = r - 1 then destination.Slice(0, g) else scratch.Slice(0, g)
            let keep = g - e
            let start = (r - 1) * g
            for i in 0 .. keep - 1 do last[i] <- pi.Apply(start + i)
            let extras = last.Slice(keep, e)
            CoverStream.Extras(seed, extrasPurpose, lane, n, e, l, m, extras)
            let tableLength = Sampling.ScratchLength e
            let table = if tableLength = 0 then Span<int>.Empty else scratch.Slice(g, tableLength)
            if tableLength > 0 then
                table.Clear()
                for i in 0 .. e - 1 do Sampling.Insert(table, extras[i]) |> ignore
            if j = 0 then
                for i in 0 .. g - 1 do destination[i] <- pi.Apply i
            // Each collision swaps with the next non-extra item from the start of pi (always inside group 0).
            let mutable pos = 0
            for i in 0 .. keep - 1 do
                let x = last[i]
                if CoverStream.InSet(Span<int>.op_Implicit extras, Span<int>.op_Implicit table, x) then
                    let mutable y = pi.Apply pos
                    while CoverStream.InSet(Span<int>.op_Implicit extras, Span<int>.op_Implicit table, y) do
                        pos <- pos + 1
                        y <- pi.Apply pos
                    if j = 0 then destination[pos] <- x else last[i] <- y
                    pos <- pos + 1

    /// <summary>The extras permutation in force for group <paramref name="group"/> (only meaningful when e &gt; 0).</summary>
    static member ExtrasPermutation(seed: uint64, extrasPurpose: Purpose, lane: int, n: int, g: int, group: uint64) : FeistelPermutation =
        let struct (r, _, l) = CoverStream.Shape(n, g)
        let m = group / uint64 r
        let mutable s = PhiloxStream(seed, extrasPurpose, lane, m / uint64 l)
        FeistelPermutation(n, &s)

    /// <summary>How many times <paramref name="item"/> occurred before group <paramref name="group"/>, given that it
    /// appears in that group at slot <paramref name="slot"/>. O(1): one inverse of <paramref name="sigma"/>, the
    /// group's ExtrasPermutation (ignored when e = 0).</summary>
    static member OccurrencesBefore(sigma: inref<FeistelPermutation>, n: int, g: int, group: uint64, item: int, slot: int) : uint64 =
        let struct (r, e, l) = CoverStream.Shape(n, g)
        let m = group / uint64 r
        if e = 0 then m
        else
            let b = m / uint64 l
            let t = (m % uint64 l) * uint64 e
            let p = uint64 (sigma.Inverse item)
            let perBlock = uint64 l * uint64 e / uint64 n
            let extrasBefore = b * perBlock + t / uint64 n + (if t % uint64 n > p then 1UL else 0UL)
            // An extra's own pi occurrence came earlier in the same round.
            let isExtraSlot = int (group % uint64 r) = r - 1 && slot >= g - e
            m + extrasBefore + (if isExtraSlot then 1UL else 0UL)

/// <summary>Immutable, validated configuration of batch plans.</summary>
/// <remarks>Python names: <c>classes_per_batch</c>, <c>examples_per_class_per_batch</c>, <c>steps_per_epoch</c>.
/// <c>Rank</c>/<c>WorldSize</c> shard every epoch's batches for data-parallel training.</remarks>
[<Sealed>]
type PlanConfig
    /// <summary>A configuration; every count is checked here, once.</summary>
    /// <exception cref="System.ArgumentOutOfRangeException">A count below 1, rank outside [0, worldSize), an unknown mode,
    /// or classesPerBatch * examplesPerClassPerBatch beyond Int32.</exception>
    (classesPerBatch: int, examplesPerClassPerBatch: int, stepsPerEpoch: int, mode: SamplingMode, rank: int, worldSize: int) =
    do
        Guard.positive "classesPerBatch" classesPerBatch
        Guard.positive "examplesPerClassPerBatch" examplesPerClassPerBatch
        Guard.positive "stepsPerEpoch" stepsPerEpoch
        Guard.positive "worldSize" worldSize
        if rank < 0 || rank >= worldSize then
            Guard.outOfRange "rank" rank $"in [0, worldSize) = [0, {worldSize})"
        if mode <> SamplingMode.Independent && mode <> SamplingMode.Coverage then
            Guard.outOfRange "mode" mode "Independent or Coverage"
        if int64 classesPerBatch * int64 examplesPerClassPerBatch > int64 Int32.MaxValue then
            Guard.outOfRange "examplesPerClassPerBatch" examplesPerClassPerBatch "such that classesPerBatch * examplesPerClassPerBatch fits in an Int32"

    /// <summary>Independent mode, one shard.</summary>
    new(classesPerBatch, examplesPerClassPerBatch, stepsPerEpoch) =
        PlanConfig(classesPerBatch, examplesPerClassPerBatch, stepsPerEpoch, SamplingMode.Independent, 0, 1)

    /// <summary>Distinct classes per batch (<c>classes_per_batch</c>).</summary>
    member _.ClassesPerBatch = classesPerBatch
    /// <summary>Examples of each class per batch (<c>examples_per_class_per_batch</c>).</summary>
    member _.ExamplesPerClassPerBatch = examplesPerClassPerBatch
    /// <summary>Batches per epoch over all ranks (<c>steps_per_epoch</c>).</summary>
    member _.StepsPerEpoch = stepsPerEpoch
    /// <summary>The sampling mode.</summary>
    member _.Mode = mode
    /// <summary>This shard's rank, in [0, WorldSize).</summary>
    member _.Rank = rank
    /// <summary>Number of shards.</summary>
    member _.WorldSize = worldSize
    /// <summary><c>ClassesPerBatch * ExamplesPerClassPerBatch</c>: the rows of every batch.</summary>
    member _.BatchSize = classesPerBatch * examplesPerClassPerBatch
    /// <summary>How many of each epoch's batches belong to this rank: the global ids b with b mod WorldSize = Rank.</summary>
    member _.BatchesPerRank = (stepsPerEpoch - rank + worldSize - 1) / worldSize
    /// <summary>The epoch-global batch id of this rank's local batch <paramref name="localBatchId"/> (strided: local * WorldSize + Rank).</summary>
    member _.GlobalBatchId(localBatchId: int) = localBatchId * worldSize + rank
    /// <summary>A copy with another mode.</summary>
    member _.WithMode(newMode: SamplingMode) = PlanConfig(classesPerBatch, examplesPerClassPerBatch, stepsPerEpoch, newMode, rank, worldSize)
    /// <summary>A copy with another shard.</summary>
    member _.WithShard(newRank: int, newWorldSize: int) = PlanConfig(classesPerBatch, examplesPerClassPerBatch, stepsPerEpoch, mode, newRank, newWorldSize)
    /// <inheritdoc/>
    override _.ToString() =
        $"{classesPerBatch}x{examplesPerClassPerBatch}, {stepsPerEpoch} steps, {mode}, rank {rank}/{worldSize}"

/// <summary>Addresses one batch: the seed, the epoch and this rank's local batch id.</summary>
[<Struct>]
type PlanKey =
    { /// <summary>The experiment seed (64 bits; it keys the Philox generator).</summary>
      Seed: uint64
      /// <summary>The epoch, 0 or more.</summary>
      Epoch: int
      /// <summary>The rank-local batch id, in [0, PlanConfig.BatchesPerRank).</summary>
      BatchId: int }

/// <summary>The plan of one batch: which examples, of which classes.</summary>
/// <remarks>Made by <see cref="Planner.Plan"/> and <see cref="Planner.PlanExamples"/>; immutable.</remarks>
[<Sealed>]
type BatchPlan internal (key: PlanKey, globalBatchId: int, indices: int[], classOrdinals: int[], labels: int64[], replacementLabels: int64[]) =
    /// <summary>The key the plan was computed for.</summary>
    member _.Key = key
    /// <summary>The epoch-global batch id (after sharding): <see cref="PlanConfig.GlobalBatchId"/> of Key.BatchId.</summary>
    member _.GlobalBatchId = globalBatchId
    /// <summary>Row i of the batch is example <c>Indices[i]</c> of the source table.</summary>
    member _.Indices : ReadOnlyMemory<int> = ReadOnlyMemory(indices)
    /// <summary>The class ordinal (in the ClassIndex) of each row.</summary>
    member _.ClassOrdinals : ReadOnlyMemory<int> = ReadOnlyMemory(classOrdinals)
    /// <summary>The label of each row.</summary>
    member _.Labels : ReadOnlyMemory<int64> = ReadOnlyMemory(labels)
    /// <summary>Labels of the classes that had fewer examples than requested and were drawn with replacement.</summary>
    member _.ReplacementLabels : ReadOnlyMemory<int64> = ReadOnlyMemory(replacementLabels)
    /// <summary>Number of rows.</summary>
    member _.Count = indices.Length
    /// <summary>The plan algorithm version (see <see cref="Planner.PlanVersion"/>).</summary>
    member _.PlanVersion = Planner.PlanVersion

/// <summary>
/// Batch plans of one configuration over one class index, as pure functions of (seed, epoch, batch id). The pair is
/// checked once, here; each batch then only checks its key.
/// </summary>
/// <remarks>Immutable and thread-safe: plan any batch from any thread in any order.</remarks>
and [<Sealed>] Planner
    /// <summary>The planner of <paramref name="config"/> over <paramref name="index"/>, checked once here.</summary>
    /// <exception cref="System.ArgumentNullException">config or index is null.</exception>
    /// <exception cref="System.ArgumentException">classesPerBatch exceeds the number of classes, or the index has more
    /// than <see cref="Planner.MaxClasses"/> classes.</exception>
    (config: PlanConfig, index: ClassIndex) =
    do
        if isNull (box config) then nullArg "config"
        if isNull (box index) then nullArg "index"
        if config.ClassesPerBatch > index.ClassCount then
            invalidArg "config"
                $"classesPerBatch ({config.ClassesPerBatch}) exceeds the number of classes ({index.ClassCount}). Lower classes_per_batch or include more classes."
        if index.ClassCount > 0xFFFFFF then
            invalidArg "index" $"The index has {index.ClassCount} classes; plans support at most {0xFFFFFF}. Filter the classes with a class list."

    // Scratch a batch needs (Floyd's hash table, the cover stream's last group), fixed by (config, index).
    let scratchNeed =
        let k = config.ClassesPerBatch
        let epc = config.ExamplesPerClassPerBatch
        if config.Mode = SamplingMode.Independent then
            max (Sampling.ScratchLength k) (Sampling.ScratchLength epc)
        else
            // Any class's example stream needs at most epc + a table for e < epc.
            let examples = if epc > 1 then epc + Sampling.ScratchLength epc else 0
            max (CoverStream.ScratchLength(index.ClassCount, k)) examples

    let checkKey (key: PlanKey) =
        if key.Epoch < 0 then
            raise (ArgumentOutOfRangeException("key", key.Epoch, $"key.Epoch must be 0 or more, but was {key.Epoch}."))
        if key.BatchId < 0 || key.BatchId >= config.BatchesPerRank then
            raise (ArgumentOutOfRangeException("key", key.BatchId,
                    $"key.BatchId must be in [0, BatchesPerRank) = [0, {config.BatchesPerRank}) for {config}, but was {key.BatchId}."))

    let fillIndependent (key: PlanKey, globalBatch: int, indices: Span<int>, classOrdinals: Span<int>, scratch: Span<int>) =
        let k = config.ClassesPerBatch
        let epc = config.ExamplesPerClassPerBatch
        let stream = (uint64 key.Epoch <<< 32) ||| uint64 globalBatch
        let mutable s = PhiloxStream(key.Seed, Purpose.ClassChoice, 0, stream)
        // Like random.sample: a uniform set (Floyd) in a uniform order (shuffle).
        let chosen = classOrdinals.Slice(0, k)
        Sampling.Floyd(&s, index.ClassCount, k, chosen, scratch)
        Sampling.Shuffle(&s, chosen)
        // Expand back to front: slot i's rows start at i*epc >= i, so unread slots are never overwritten.
        for i in k - 1 .. -1 .. 0 do
            let c = classOrdinals[i]
            let rows = indices.Slice(i * epc, epc)
            let have = index.CountOf c
            let mutable es = PhiloxStream(key.Seed, Purpose.ExampleChoice, i, stream)
            if have >= epc then
                Sampling.Floyd(&es, have, epc, rows, scratch)
                Sampling.Shuffle(&es, rows)
            else
                Sampling.WithReplacement(&es, have, rows)
            for q in 0 .. epc - 1 do rows[q] <- index.ExampleAt(c, rows[q])
            classOrdinals.Slice(i * epc, epc).Fill c

    let fillCoverage (key: PlanKey, globalBatch: int, indices: Span<int>, classOrdinals: Span<int>, scratch: Span<int>) =
        let k = config.ClassesPerBatch
        let epc = config.ExamplesPerClassPerBatch
        let n = index.ClassCount
        let group = uint64 key.Epoch * uint64 config.StepsPerEpoch + uint64 globalBatch
        CoverStream.Group(key.Seed, Purpose.ClassPermutation, Purpose.ClassExtras, 0, n, k, group, classOrdinals.Slice(0, k), scratch)
        let struct (_, e, _) = CoverStream.Shape(n, k)
        // One extras permutation serves every slot of the batch (all slots share the round).
        let sigma = if e = 0 then Unchecked.defaultof<FeistelPermutation> else CoverStream.ExtrasPermutation(key.Seed, Purpose.ClassExtras, 0, n, k, group)
        for i in k - 1 .. -1 .. 0 do
            let c = classOrdinals[i]
            let occurrence = CoverStream.OccurrencesBefore(&sigma, n, k, group, c, i)
            let rows = indices.Slice(i * epc, epc)
            let have = index.CountOf c
            if have >= epc then
                CoverStream.Group(key.Seed, Purpose.ExamplePermutation, Purpose.ExampleExtras, c, have, epc, occurrence, rows, scratch)
            else
                let mutable es = PhiloxStream(key.Seed, Purpose.ExampleReplacement, c, occurrence)
                Sampling.WithReplacement(&es, have, rows)
            for q in 0 .. epc - 1 do rows[q] <- index.ExampleAt(c, rows[q])
            classOrdinals.Slice(i * epc, epc).Fill c

    /// <summary>Version of the plan algorithms; bumped whenever any plan changes (golden vectors pin it).</summary>
    static member PlanVersion = 1

    /// <summary>Most classes a plan can address: class ordinals and batch slots go into the 24-bit lane of the Philox counter.</summary>
    static member MaxClasses = 0xFFFFFF

    /// <summary>The configuration plans are made for.</summary>
    member _.Config = config

    /// <summary>The class index plans draw from.</summary>
    member _.Index = index

    /// <summary>Writes the example indices of batch <c>key.BatchId</c> into <paramref name="indices"/>[0..BatchSize) and
    /// the class ordinal of each row into <paramref name="classOrdinals"/>[0..BatchSize). Allocates nothing.</summary>
    /// <remarks>Every plan has exactly <see cref="PlanConfig.BatchSize"/> rows, grouped class by class
    /// (ExamplesPerClassPerBatch rows per class). Large batches borrow scratch from ArrayPool.Shared, which allocates
    /// nothing once warm.</remarks>
    /// <exception cref="System.ArgumentException">A destination is shorter than BatchSize.</exception>
    /// <exception cref="System.ArgumentOutOfRangeException">BatchId outside [0, BatchesPerRank) or negative epoch.</exception>
    member this.Fill(key: PlanKey, indices: Span<int>, classOrdinals: Span<int>) : unit =
        this.FillGlobal(key, indices, classOrdinals) |> ignore

    /// Fill, returning the epoch-global batch id it planned (computed once, here, for Fill and Plan).
    member private _.FillGlobal(key: PlanKey, indices: Span<int>, classOrdinals: Span<int>) : int =
        checkKey key
        let size = config.BatchSize
        if indices.Length < size then
            invalidArg "indices" $"indices must hold BatchSize = {size} ints, but holds {indices.Length}."
        if classOrdinals.Length < size then
            invalidArg "classOrdinals" $"classOrdinals must hold BatchSize = {size} ints, but holds {classOrdinals.Length}."
        let globalBatch = config.GlobalBatchId key.BatchId
        let rented = if scratchNeed > 0 then ArrayPool<int>.Shared.Rent scratchNeed else Array.Empty<int>()
        try
            let scratch = if scratchNeed > 0 then Span(rented, 0, scratchNeed) else Span<int>.Empty
            if config.Mode = SamplingMode.Independent then fillIndependent (key, globalBatch, indices, classOrdinals, scratch)
            else fillCoverage (key, globalBatch, indices, classOrdinals, scratch)
        finally
            if scratchNeed > 0 then ArrayPool<int>.Shared.Return rented
        globalBatch

    /// <summary>The plan of batch <c>key.BatchId</c> (allocates; see Fill for the allocation-free form).</summary>
    /// <exception cref="System.ArgumentOutOfRangeException">BatchId outside [0, BatchesPerRank) or negative epoch.</exception>
    member this.Plan(key: PlanKey) : BatchPlan =
        let size = config.BatchSize
        let indices = Array.zeroCreate size
        let ordinals = Array.zeroCreate size
        let globalBatch = this.FillGlobal(key, Span indices, Span ordinals)
        let labels = ordinals |> Array.map index.LabelOf
        let epc = config.ExamplesPerClassPerBatch
        let replacement =
            [| for i in 0 .. config.ClassesPerBatch - 1 do
                 let c = ordinals[i * epc]
                 if index.CountOf c < epc then yield index.LabelOf c |]
        BatchPlan(key, globalBatch, indices, ordinals, labels, replacement)

    /// <summary>The reference's <c>get_examples(batch_id, num_classes, examples_per_class)</c>: the plan of a configuration
    /// with these counts (same steps, mode and shard), truncated to Config.BatchSize rows.</summary>
    /// <exception cref="System.ArgumentOutOfRangeException">numClasses or examplesPerClass below 1; BatchId or epoch out of range.</exception>
    /// <exception cref="System.ArgumentException">numClasses exceeds the number of classes.</exception>
    member _.PlanExamples(key: PlanKey, numClasses: int, examplesPerClass: int) : BatchPlan =
        let other = Planner(PlanConfig(numClasses, examplesPerClass, config.StepsPerEpoch, config.Mode, config.Rank, config.WorldSize), index)
        let full = other.Plan key
        let rows = min full.Count config.BatchSize
        if rows = full.Count then full
        else
            let ordinals = full.ClassOrdinals.Slice(0, rows).ToArray()
            let present = ordinals |> Array.distinct |> Array.map index.LabelOf
            let replacement = full.ReplacementLabels.ToArray() |> Array.filter (fun l -> Array.contains l present)
            BatchPlan(key, full.GlobalBatchId, full.Indices.Slice(0, rows).ToArray(), ordinals, full.Labels.Slice(0, rows).ToArray(), replacement)
