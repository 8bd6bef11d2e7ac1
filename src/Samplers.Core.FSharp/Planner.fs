namespace Samplers.Core

open System
open Samplers.Core.Internal

/// <summary>How the batches of an epoch are drawn.</summary>
type SamplingMode =
    /// <summary>Every batch is an independent uniform draw (the reference's semantics).</summary>
    | Independent = 0
    /// <summary>Classes are visited in shuffled rounds (counts within one of each other); within a class, no example repeats before all were used.</summary>
    | Coverage = 1

/// <summary>Immutable, validated configuration of batch plans.</summary>
/// <remarks>Python names: <c>classes_per_batch</c>, <c>examples_per_class_per_batch</c>, <c>steps_per_epoch</c>.
/// <c>Rank</c>/<c>WorldSize</c> shard every epoch's batches for data-parallel training.</remarks>
[<Sealed>]
type PlanConfig(classesPerBatch: int, examplesPerClassPerBatch: int, stepsPerEpoch: int, mode: SamplingMode, rank: int, worldSize: int) =
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
[<Sealed>]
type BatchPlan(key: PlanKey, globalBatchId: int, indices: int[], classOrdinals: int[], labels: int64[], replacementLabels: int64[]) =
    /// <summary>The key the plan was computed for.</summary>
    member _.Key = key
    /// <summary>The epoch-global batch id (after sharding).</summary>
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
    member _.PlanVersion = 1

/// <summary>Batch plans as pure functions of (configuration, class index, seed, epoch, batch id).</summary>
and [<AbstractClass; Sealed>] Planner =
    /// <summary>Version of the plan algorithms; bumped whenever any plan changes (golden vectors pin it).</summary>
    static member PlanVersion = 1

    /// <summary>Checks that <paramref name="config"/> can plan over <paramref name="index"/>.</summary>
    /// <exception cref="System.ArgumentException">classesPerBatch exceeds the number of classes.</exception>
    static member Validate(config: PlanConfig, index: ClassIndex) : unit =
        ignore config; ignore index; raise (NotImplementedException())

    /// <summary>The plan of batch <c>key.BatchId</c> (allocates; see Fill for the allocation-free form).</summary>
    /// <exception cref="System.ArgumentOutOfRangeException">BatchId outside [0, BatchesPerRank) or negative epoch.</exception>
    static member Plan(config: PlanConfig, index: ClassIndex, key: PlanKey) : BatchPlan =
        ignore config; ignore index; ignore key; raise (NotImplementedException())

    /// <summary>Writes the example indices of the batch into <paramref name="indices"/> and the class ordinal of each row into <paramref name="classOrdinals"/>; returns the number of rows (BatchSize). Allocates nothing.</summary>
    /// <exception cref="System.ArgumentException">A destination is shorter than BatchSize.</exception>
    static member Fill(config: PlanConfig, index: ClassIndex, key: PlanKey, indices: Span<int>, classOrdinals: Span<int>) : int =
        ignore config; ignore index; ignore key; ignore (indices.Length + classOrdinals.Length); raise (NotImplementedException())

    /// <summary>The reference's <c>get_examples(batch_id, num_classes, examples_per_class)</c>: like Plan with other counts, truncated to config.BatchSize rows.</summary>
    static member PlanExamples(config: PlanConfig, index: ClassIndex, key: PlanKey, numClasses: int, examplesPerClass: int) : BatchPlan =
        ignore config; ignore index; ignore key; ignore numClasses; ignore examplesPerClass; raise (NotImplementedException())
