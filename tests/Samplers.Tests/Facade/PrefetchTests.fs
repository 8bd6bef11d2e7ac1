module Samplers.Tests.Facade.PrefetchTests

open System
open System.Collections.Concurrent
open System.Threading
open System.Threading.Tasks
open Expecto
open Samplers
open Samplers.Imaging
open Samplers.Tfds
open Samplers.Core
open Samplers.Tests.TestUtil
open Samplers.Tests.Facade.SamplerTests

/// A loader whose transform and release count every batch, so a test can check that nothing is leaked:
/// made = handed out + released, and the consumer disposes what it was handed.
type Counted(sampler: MultiShotMemorySampler, options: PrefetchOptions) =
    let mutable made = 0
    let mutable released = 0
    let mutable alive = 0
    let mutable maxAlive = 0
    let bump () =
        let a = Interlocked.Increment(&alive)
        let mutable m = Volatile.Read(&maxAlive)
        while a > m && Interlocked.CompareExchange(&maxAlive, a, m) <> m do
            m <- Volatile.Read(&maxAlive)
    let loader =
        new PrefetchLoader<Batch>(sampler, options,
            (fun b -> Interlocked.Increment(&made) |> ignore; bump (); b),
            (fun b -> Interlocked.Increment(&released) |> ignore; Interlocked.Decrement(&alive) |> ignore; b.Dispose()))
    member _.Loader = loader
    member _.Made = Volatile.Read(&made)
    member _.Released = Volatile.Read(&released)
    member _.MaxAlive = Volatile.Read(&maxAlive)
    /// The consumer is done with a batch it was handed.
    member _.Done(b: Batch) = Interlocked.Decrement(&alive) |> ignore; b.Dispose()

/// Identity of a batch: key, global id, rows, labels and X bytes.
let fingerprint (b: Batch) =
    b.Key, b.GlobalBatchId, b.Indices.ToArray(), b.Y.ToArray(), b.XBytes.ToArray(), b.IsWarmup

let samplerWith (o: SamplerOptions) = new MultiShotMemorySampler(table10x8 (), o)

/// Options with classes x examples per batch, steps per epoch, seed 42, and an optional augmenter and warmup.
let optsWith cpb epc steps (aug: IAugmenter) warmup =
    SamplerOptions(ClassesPerBatch = cpb, ExamplesPerClassPerBatch = epc, StepsPerEpoch = steps, Seed = 42UL, Augmenter = aug, Warmup = warmup)

let steps n = optsWith 2 2 n null -1

/// What the indexer gives for `epochs` epochs (calling OnEpochEnd after each), from a fresh sampler.
let indexerSequence (o: SamplerOptions) epochs =
    let s = samplerWith o
    [ for _ in 1 .. epochs do
        for i in 0 .. s.Count - 1 do
            use b = s[i]
            yield fingerprint b
        s.OnEpochEnd() ]

let drain (c: Counted) =
    [ for b in c.Loader do
        yield fingerprint b
        c.Done b ]

let digestOf (items: (PlanKey * int * int[] * int64[] * byte[] * bool) list) =
    use d = new PlanDigest()
    for (key, gid, idx, _, _, _) in items do d.Add(key, gid, ReadOnlySpan idx, ReadOnlySpan(Array.create idx.Length 0))
    d.Finish()

[<Tests>]
let tests =
    testList "Facade.Prefetch" [
        test "the order is the indexer's, epoch after epoch, with 0, 1, 2 and 8 workers" {
            let o = optsWith 3 2 7 null -1
            let expected = indexerSequence o 3
            for workers in [ 0; 1; 2; 8 ] do
                let s = samplerWith o
                let c = Counted(s, PrefetchOptions(Workers = workers, Depth = 3, Epochs = 3))
                let got = drain c
                Expect.equal got.Length 21 $"{workers} workers: 3 epochs of 7"
                Expect.isTrue (got = expected) $"{workers} workers: same batches in the same order as the indexer"
                Expect.equal (digestOf got) (digestOf expected) $"{workers} workers: same digest"
                Expect.equal s.Epoch 3 $"{workers} workers: OnEpochEnd after each epoch, as the consumer sees it"
                Expect.equal c.Made 21 "each batch made once"
                Expect.equal c.Released 0 "nothing left over on a full run"
        }

        test "async enumeration gives the same sequence" {
            let o = steps 5
            let expected = indexerSequence o 2
            let s = samplerWith o
            let c = Counted(s, PrefetchOptions(Workers = 2, Depth = 2, Epochs = 2))
            let got = ResizeArray()
            let run () =
                task {
                    let e = c.Loader.GetAsyncEnumerator()
                    let mutable go = true
                    while go do
                        let! more = e.MoveNextAsync()
                        if more then
                            got.Add(fingerprint e.Current)
                            c.Done e.Current
                        else go <- false
                    do! e.DisposeAsync()
                }
            run().Wait()
            Expect.isTrue (List.ofSeq got = expected) "same batches, same order"
        }

        test "warmup: each batch is made with its own epoch's warmup state, also when made ahead" {
            let seen = ConcurrentBag<int * bool>()
            let aug = Augmenters.FromFunc(fun b _ warm -> seen.Add((b.Key.Epoch, warm)); b)
            let o = optsWith 2 2 4 aug 2
            let s = samplerWith o
            let c = Counted(s, PrefetchOptions(Workers = 2, Depth = 8, Epochs = 4))
            let got = drain c
            Expect.equal (got |> List.map (fun (k, _, _, _, _, w) -> k.Epoch, w) |> List.distinct) [ 0, true; 1, true; 2, false; 3, false ] "warm in epochs 0-1"
            Expect.equal (seen |> Seq.distinct |> Seq.sort |> List.ofSeq) [ 0, true; 1, true; 2, false; 3, false ] "the augmenter was told the same"
            Expect.isFalse s.IsWarmup "warmup ended"
        }

        test "memory stays bounded: the loader holds at most depth batches, the consumer its own" {
            let o = steps 40
            for workers, depth in [ 1, 1; 2, 3; 4, 2 ] do
                let c = Counted(samplerWith o, PrefetchOptions(Workers = workers, Depth = depth, Epochs = 1))
                for b in c.Loader do
                    Thread.Sleep 1
                    c.Done b
                Expect.isLessThanOrEqual c.MaxAlive (depth + 1) $"{workers} workers, depth {depth}: at most depth made ahead + the one consumed"
        }

        test "cancellation stops the run with OperationCanceledException and leaks nothing" {
            let s = samplerWith (steps 1000)
            let c = Counted(s, PrefetchOptions(Workers = 2, Depth = 4, Epochs = 1))
            use cts = new CancellationTokenSource()
            let mutable handed = 0
            throwsWith<OperationCanceledException> (fun () ->
                for b in c.Loader.Enumerate cts.Token do
                    handed <- handed + 1
                    c.Done b
                    if handed = 10 then cts.Cancel()) "cancelled" |> ignore
            Expect.equal handed 10 "stopped right after the cancel"
            let made = c.Made
            Thread.Sleep 50
            Expect.equal c.Made made "workers stopped"
            Expect.equal (c.Made - handed) c.Released "every batch made but not handed out was released"
            Expect.isLessThan c.Made 1000 "the run did not go on"
        }

        test "async cancellation too" {
            let s = samplerWith (steps 1000)
            let c = Counted(s, PrefetchOptions(Workers = 1, Depth = 2, Epochs = 1))
            use cts = new CancellationTokenSource()
            let mutable handed = 0
            let run () =
                task {
                    let e = c.Loader.GetAsyncEnumerator(cts.Token)
                    try
                        let mutable go = true
                        while go do
                            let! more = e.MoveNextAsync()
                            if more then
                                handed <- handed + 1
                                c.Done e.Current
                                if handed = 5 then cts.Cancel()
                            else go <- false
                    finally
                        e.DisposeAsync().AsTask().Wait()
                }
            let ex = throwsWith<AggregateException> (fun () -> run().Wait()) "cancelled"
            Expect.isTrue (ex.InnerException :? OperationCanceledException) "cancelled"
            Expect.equal (c.Made - handed) c.Released "nothing leaked"
        }

        test "a worker's exception surfaces at the consumer naming the epoch and batch id, after the batches before it" {
            let aug = Augmenters.FromFunc(fun b _ _ -> if b.Key.Epoch = 1 && b.Key.BatchId = 3 then failwith "bad pixels" else b)
            for workers in [ 0; 1; 3 ] do
                let s = samplerWith (optsWith 2 2 6 aug -1)
                let c = Counted(s, PrefetchOptions(Workers = workers, Depth = 4, Epochs = 3))
                let mutable handed = 0
                let ex =
                    throwsWith<BatchLoadException> (fun () ->
                        for b in c.Loader do
                            handed <- handed + 1
                            c.Done b) "fails"
                Expect.equal (ex.Epoch, ex.BatchId) (1, 3) "names the batch"
                Expect.stringContains ex.Message "batch 3 of epoch 1" "the message too"
                Expect.equal ex.InnerException.Message "bad pixels" "the cause is inside"
                Expect.equal handed 9 $"{workers} workers: the 6 + 3 batches before it were delivered"
                Expect.equal (c.Made - handed) c.Released $"{workers} workers: everything made after it was released (made {c.Made}, handed {handed}, released {c.Released})"
        }

        test "disposing the loader stops its workers and releases what they made" {
            let s = samplerWith (steps 1000)
            let c = Counted(s, PrefetchOptions(Workers = 2, Depth = 6, Epochs = 1))
            let e = c.Loader.GetEnumerator()
            Expect.isTrue (e.MoveNext()) "first batch"
            c.Done e.Current
            Thread.Sleep 50 // let the workers fill the ring
            c.Loader.Dispose()
            let made = c.Made
            Thread.Sleep 30
            Expect.equal c.Made made "no batch made after Dispose"
            Expect.equal (c.Made - 1) c.Released "all but the handed-out one released"
            throwsWith<ObjectDisposedException> (fun () -> c.Loader.GetEnumerator() |> ignore) "" |> ignore
            e.Dispose()
        }

        test "disposing from another thread wakes a consumer that waits" {
            use gate = new ManualResetEventSlim(false)
            // Batch 1 cannot be made until the test opens the gate, so the consumer must be woken by the disposal.
            let slow = Augmenters.FromFunc(fun b _ _ -> (if b.Key.BatchId = 1 then gate.Wait(5000) |> ignore); b)
            let s = samplerWith (optsWith 2 2 10 slow -1)
            let c = Counted(s, PrefetchOptions(Workers = 1, Depth = 2, Epochs = 1))
            let e = c.Loader.GetEnumerator()
            Expect.isTrue (e.MoveNext()) "first"
            c.Done e.Current
            let disposer = Thread(fun () -> Thread.Sleep 50; c.Loader.Dispose())
            disposer.Start()
            let ex = throwsWith<Exception> (fun () -> e.MoveNext() |> ignore) "the waiting consumer is released"
            Expect.isTrue (ex :? OperationCanceledException || ex :? ObjectDisposedException) $"cancelled or disposed, got {ex.GetType().Name}"
            gate.Set()
            disposer.Join()
            e.Dispose()
            Expect.equal (c.Made - 1) c.Released "nothing leaked"
        }

        test "one run at a time; a finished run frees the loader for the next epoch" {
            let s = samplerWith (steps 3)
            let c = Counted(s, PrefetchOptions(Workers = 1, Depth = 2, Epochs = 1))
            let e = c.Loader.GetEnumerator()
            throwsWith<InvalidOperationException> (fun () -> c.Loader.GetEnumerator() |> ignore) "already running" |> ignore
            e.Dispose()
            let first = drain c
            let second = drain c
            Expect.equal (first |> List.map (fun (k, _, _, _, _, _) -> k.Epoch) |> List.distinct) [ 0 ] "first run: epoch 0"
            Expect.equal (second |> List.map (fun (k, _, _, _, _, _) -> k.Epoch) |> List.distinct) [ 1 ] "second run: epoch 1"
            Expect.equal c.Loader.Delivered 6L "delivered count"
        }

        test "endless runs go on until the consumer stops" {
            let s = samplerWith (steps 3)
            use loader = PrefetchLoader.Create(s, PrefetchOptions(Workers = 2, Epochs = Nullable()))
            let keys = loader |> Seq.take 10 |> Seq.map (fun b -> use b = b in b.Key.Epoch, b.Key.BatchId) |> List.ofSeq
            Expect.equal keys [ 0, 0; 0, 1; 0, 2; 1, 0; 1, 1; 1, 2; 2, 0; 2, 1; 2, 2; 3, 0 ] "epoch after epoch"
        }

        test "settings are checked" {
            let s = samplerWith (steps 10)
            throwsWith<ArgumentOutOfRangeException> (fun () -> PrefetchLoader.Create(s, PrefetchOptions(Workers = -1)) |> ignore) "options.Workers" |> ignore
            throwsWith<ArgumentOutOfRangeException> (fun () -> PrefetchLoader.Create(s, PrefetchOptions(Depth = 0)) |> ignore) "options.Depth" |> ignore
            throwsWith<ArgumentOutOfRangeException> (fun () -> PrefetchLoader.Create(s, PrefetchOptions(Epochs = -1)) |> ignore) "options.Epochs" |> ignore
            throwsWith<ArgumentNullException> (fun () -> PrefetchLoader.Create(null, PrefetchOptions()) |> ignore) "sampler" |> ignore
        }
    ]
