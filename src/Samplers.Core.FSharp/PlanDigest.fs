namespace Samplers.Core

open System
open System.Buffers.Binary
open System.Security.Cryptography
open Samplers.Core.Internal

/// <summary>
/// One SHA-256 over a sequence of batch plans, so that two runs, two processes or two machines can compare what they
/// sampled in one line (the CLI's <c>plan --digest</c>, the manifests of the experiment scripts).
/// </summary>
/// <remarks>
/// Canonical bytes, all little-endian: the ASCII tag <c>samplers.plan-digest/1</c>, then <see cref="Planner.PlanVersion"/>
/// (int32); then for each plan in the order added: seed (uint64), epoch (int32), rank-local batch id (int32), global
/// batch id (int32), row count (int32), then per row the source index (int32) and the class ordinal (int32). Indices
/// address the rows of the table the class index was built over, so equal digests mean the same rows of the same
/// table order were planned. The digest does not hash the example bytes: pair it with a dataset fingerprint.
/// Not thread-safe: one instance per sequence.
/// </remarks>
[<Sealed>]
type PlanDigest
    /// <summary>An empty digest: the tag and PlanVersion are hashed, no plan yet.</summary>
    () =
    static let tag = "samplers.plan-digest/1"B
    let hash = IncrementalHash.CreateHash HashAlgorithmName.SHA256
    let mutable buffer : byte[] = Array.zeroCreate 256
    let mutable batches = 0L
    let mutable rows = 0L
    let mutable finished = ""
    do
        hash.AppendData tag
        let v = Array.zeroCreate 4
        BinaryPrimitives.WriteInt32LittleEndian(Span v, Planner.PlanVersion)
        hash.AppendData v

    /// <summary>Number of plans added so far.</summary>
    member _.BatchCount = batches

    /// <summary>Number of rows (examples) over all plans added so far.</summary>
    member _.RowCount = rows

    /// <summary>Adds one plan given by its parts (e.g. from a façade <c>Batch</c>: Key, GlobalBatchId, Indices, ClassOrdinals).</summary>
    /// <exception cref="System.ArgumentException">The two spans have different lengths.</exception>
    /// <exception cref="System.InvalidOperationException">The digest was already finished.</exception>
    member _.Add(key: PlanKey, globalBatchId: int, indices: ReadOnlySpan<int>, classOrdinals: ReadOnlySpan<int>) : unit =
        if finished.Length > 0 then
            raise (InvalidOperationException "The digest is finished: Finish() was called. Start a new PlanDigest for another sequence.")
        if indices.Length <> classOrdinals.Length then
            invalidArg "classOrdinals" $"indices ({indices.Length}) and classOrdinals ({classOrdinals.Length}) must have the same length: one class ordinal per row."
        let need = 24 + 8 * indices.Length
        if buffer.Length < need then buffer <- Array.zeroCreate (max need (2 * buffer.Length))
        let b = Span buffer
        BinaryPrimitives.WriteUInt64LittleEndian(b, key.Seed)
        BinaryPrimitives.WriteInt32LittleEndian(b.Slice 8, key.Epoch)
        BinaryPrimitives.WriteInt32LittleEndian(b.Slice 12, key.BatchId)
        BinaryPrimitives.WriteInt32LittleEndian(b.Slice 16, globalBatchId)
        BinaryPrimitives.WriteInt32LittleEndian(b.Slice 20, indices.Length)
        for i in 0 .. indices.Length - 1 do
            BinaryPrimitives.WriteInt32LittleEndian(b.Slice(24 + 8 * i), indices[i])
            BinaryPrimitives.WriteInt32LittleEndian(b.Slice(28 + 8 * i), classOrdinals[i])
        hash.AppendData(buffer, 0, need)
        batches <- batches + 1L
        rows <- rows + int64 indices.Length

    /// <summary>Adds one plan.</summary>
    /// <exception cref="System.InvalidOperationException">The digest was already finished.</exception>
    member this.Add(plan: BatchPlan) : unit =
        if isNull (box plan) then nullArg "plan"
        this.Add(plan.Key, plan.GlobalBatchId, plan.Indices.Span, plan.ClassOrdinals.Span)

    /// <summary>The digest as 64 lower-case hex digits; later calls return the same value.</summary>
    member _.Finish() : string =
        if finished.Length = 0 then
            finished <- Convert.ToHexStringLower(hash.GetHashAndReset())
            hash.Dispose()
        finished

    /// <summary>The digest of the plans of batches [firstBatch, firstBatch + batchCount) of each epoch in
    /// [firstEpoch, firstEpoch + epochCount), epoch by epoch, for <paramref name="seed"/>.</summary>
    /// <exception cref="System.ArgumentOutOfRangeException">A negative start or count, or a batch range beyond BatchesPerRank.</exception>
    static member Compute(planner: Planner, seed: uint64, firstEpoch: int, epochCount: int, firstBatch: int, batchCount: int) : string =
        if isNull (box planner) then nullArg "planner"
        let config = planner.Config
        Guard.nonNegative "firstEpoch" firstEpoch
        Guard.nonNegative "epochCount" epochCount
        Guard.nonNegative "firstBatch" firstBatch
        Guard.nonNegative "batchCount" batchCount
        // Long arithmetic: firstEpoch + epochCount overflows int for the last epochs.
        if int64 firstEpoch + int64 epochCount - 1L > int64 System.Int32.MaxValue then
            Guard.outOfRange "epochCount" epochCount $"such that the last epoch firstEpoch + epochCount - 1 <= {System.Int32.MaxValue} ({firstEpoch} + {epochCount} - 1 > {System.Int32.MaxValue})"
        if int64 firstBatch + int64 batchCount > int64 config.BatchesPerRank then
            Guard.outOfRange "batchCount" batchCount $"such that firstBatch + batchCount <= BatchesPerRank ({firstBatch} + {batchCount} > {config.BatchesPerRank})"
        use d = new PlanDigest()
        let size = config.BatchSize
        let indices = Array.zeroCreate size
        let ordinals = Array.zeroCreate size
        let lastEpoch = int (int64 firstEpoch + int64 epochCount - 1L)
        for e in firstEpoch .. lastEpoch do
            for b in firstBatch .. firstBatch + batchCount - 1 do
                let key = { Seed = seed; Epoch = e; BatchId = b }
                planner.Fill(key, Span indices, Span ordinals)
                d.Add(key, config.GlobalBatchId b, ReadOnlySpan indices, ReadOnlySpan ordinals)
        d.Finish()

    interface IDisposable with
        /// <summary>Releases the hash.</summary>
        member _.Dispose() = hash.Dispose()
