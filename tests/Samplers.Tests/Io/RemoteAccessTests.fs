/// Object-store data directories in mode 2, remote random access (ObjectStoreAccess.Remote), against s3rver on loopback:
/// the same plan digest and batch bytes as the local-disk load, the record index built once and reused, rebuilt when an
/// object changes or the index file is damaged, published and loaded by a second host, ranged reads coalesced and
/// bounded, read-ahead, and a replaced object failing clearly instead of serving other bytes.
module Samplers.Tests.Io.RemoteAccessTests

open System
open System.IO
open Expecto
open Samplers
open Samplers.Storage
open Samplers.Tfds
open Samplers.Experiments
open Samplers.Tests.TestUtil
open Samplers.Tests.Io.S3Server

let private dataRoot () = Path.Combine(repoRoot.Value, "data")
let private digits () = Path.Combine(dataRoot (), "synthetic_digits", "1.0.0")
let private prefix = "tfds/data/synthetic_digits/1.0.0"

let private options (dataDir: string) (cache: string) (splits: string[]) (store: ObjectStoreOptions) =
    TFDatasetSamplerOptions(
        Load = TfdsLoadOptions(DatasetName = "synthetic_digits:1.0.0", DataDir = dataDir, CacheDir = cache, Download = null, ObjectStore = store, Splits = splits),
        ClassesPerBatch = 4, ExamplesPerClassPerBatch = 3, StepsPerEpoch = 20, Seed = 7UL)

let private remote (server: S3rver) (ra: RemoteAccessOptions) =
    ObjectStoreOptions(Endpoint = server.Endpoint, Anonymous = true, Access = ObjectStoreAccess.Remote, Remote = ra)

let private open' (o: TFDatasetSamplerOptions) = TFDatasetMultiShotMemorySampler.LoadAsync(o).GetAwaiter().GetResult()

let private batchBytes (b: Batch) = Array.append (b.ToArray<byte>()) (b.Y.ToArray() |> Array.collect BitConverter.GetBytes)

/// The plan digest over two epochs and every batch's bytes of the first epoch.
let private fingerprintOf (s: TFDatasetMultiShotMemorySampler) =
    let digest = s.DigestPlans(0, 2, 0, s.Count)
    let bytes = [ for i in 0 .. s.Count - 1 do
                    use b = s[i]
                    yield batchBytes b ]
    digest, bytes

let private localFingerprint (cache: string) (splits: string[]) =
    use s = open' (options (dataRoot ()) cache splits null)
    fingerprintOf s

let private s3rverOr (f: S3rver -> unit) () =
    match unavailable () with
    | Some why -> skiptestf "s3rver unavailable: %s" why
    | None ->
        use server = new S3rver()
        f server

let private rec' (e: exn) =
    let rec go (e: exn) = seq { if not (isNull e) then yield e; yield! go e.InnerException }
    go e |> Seq.toList

/// The local index files under a cache dir.
let private indexFiles (cache: string) = Directory.GetFiles(cache, "*.sidx", SearchOption.AllDirectories)

/// The distinct rows the plans of batches [a, b) of epoch 0 name.
let private rowsOf (s: MultiShotMemorySampler) (a: int) (b: int) =
    s.Plans(0, 1, a, b) |> Seq.collect (fun p -> p.Indices.ToArray()) |> Seq.distinct |> Seq.toArray

/// The CLI in a child process (own environment additions); (exit code, stdout, stderr).
let private cli (args: string list) (env: (string * string) list) =
    let self = Reflection.Assembly.GetEntryAssembly().Location
    let psi = dotnetStartInfo None (self :: "--child" :: "cli" :: args)
    psi.Environment["DOTNET_EnableDiagnostics"] <- "0"
    for (k, v) in env do psi.Environment[k] <- v
    for k in [ "RANK"; "WORLD_SIZE" ] do if not (List.exists (fun (n, _) -> n = k) env) then psi.Environment.Remove k |> ignore
    use p = Diagnostics.Process.Start psi
    collectOutput p 120_000 "the CLI child did not finish within 120 s"

let private json (text: string) = Text.Json.JsonDocument.Parse(text: string)

[<Tests>]
let tests =
    testSequenced <| testList "RemoteAccess" [
        testCase "s3rver: remote access gives the local load's plan digest (2 epochs) and batch bytes; the index is built once and reused; reads are coalesced and within 1.2x the records' bytes" <| s3rverOr (fun server ->
            server.Upload("digits", prefix, digits ()) |> ignore
            use cache = new TempDir()
            let splits = [| "train"; "test" |]
            let localDigest, localBytes = localFingerprint (Path.Combine(cache.Path, "local")) splits
            let o = options "s3://digits/tfds/data" (Path.Combine(cache.Path, "remote")) splits (remote server (RemoteAccessOptions(ReadAheadBatches = 0)))
            do
                use s = open' o
                let t = s.RemoteTable
                Expect.isNotNull t "a remote table"
                Expect.isNull s.LoadResult "no eager load"
                Expect.isTrue (t.Indexes |> Seq.forall (fun i -> i.Origin = RecordIndexOrigin.Scanned)) "first open scans"
                Expect.equal t.RecordsFetched 0L "sampling starts without reading an example"
                let digest, bytes = fingerprintOf s
                Expect.equal digest localDigest "plan digest"
                Expect.equal bytes.Length localBytes.Length "batches"
                for i in 0 .. bytes.Length - 1 do Expect.sequenceEqual bytes[i] localBytes[i] $"batch {i} bytes"
                // One epoch: every distinct row fetched once, with fewer requests than rows, within 1.2x the records' bytes.
                let distinct = rowsOf s 0 s.Count
                Expect.equal t.RecordsFetched (int64 distinct.Length) "each needed record fetched once"
                let ratio = float t.BytesFetched / float t.RecordBytesFetched
                printfn "remote epoch (gap %d B): %d records, %d requests, %d bytes fetched, %d record bytes, ratio %.3f; all records %d bytes"
                    (RemoteAccessOptions().CoalesceGapBytes) t.RecordsFetched t.Requests t.BytesFetched t.RecordBytesFetched ratio t.RecordBytesTotal
                Expect.isLessThanOrEqual ratio 1.2 "bytes fetched within 1.2x the records' bytes"
                // Neighbouring records (a slice is consecutive in read order) are fetched by merged ranges.
                let r0, n0, b0 = t.Requests, t.RecordsFetched, t.BytesFetched
                do
                    use _ = s.GetSlice(0, 200)
                    ()
                let requests, records = t.Requests - r0, t.RecordsFetched - n0
                printfn "slice of 200 rows: %d new records in %d requests, %d bytes" records requests (t.BytesFetched - b0)
                Expect.isLessThan (requests * 4L) records "coalesced: far fewer requests than records"
            // Second open: the local index is reused, no shard is read.
            use again = open' o
            let t = again.RemoteTable
            Expect.isTrue (t.Indexes |> Seq.forall (fun i -> i.Origin = RecordIndexOrigin.LocalFile)) "second open reuses the index"
            Expect.equal t.OpenBytes 0L "no body read while opening"
            Expect.equal t.OpenRequests 1L "one listing"
            Expect.equal (again.DigestPlans(0, 2, 0, again.Count)) localDigest "same digest")

        testCase "s3rver: an epoch whose batches need most records is read in whole blocks (few requests, within 1.2x of its records' bytes), with the local load's batch bytes" <| s3rverOr (fun server ->
            server.Upload("digits", prefix, digits ()) |> ignore
            use cache = new TempDir()
            let splits = [| "train" |]
            // 1000 batches of 4x3 draw 12,000 rows from the 3,000 of train: the epoch needs nearly every record.
            let dense (o: TFDatasetSamplerOptions) = TFDatasetSamplerOptions(Load = o.Load, ClassesPerBatch = 4, ExamplesPerClassPerBatch = 3, StepsPerEpoch = 1000, Seed = 7UL)
            let localBytes =
                use s = open' (dense (options (dataRoot ()) (Path.Combine(cache.Path, "local")) splits null))
                [ for i in 0 .. 59 do
                    use b = s[i]
                    yield batchBytes b ]
            use s = open' (dense (options "s3://digits/tfds/data" (Path.Combine(cache.Path, "remote")) splits (remote server (RemoteAccessOptions(ReadAheadBatches = 2)))))
            let t = s.RemoteTable
            for i in 0 .. 59 do
                use b = s[i]
                Expect.sequenceEqual (batchBytes b) localBytes[i] $"batch {i} bytes"
            t.WaitForReadAheadAsync().GetAwaiter().GetResult()
            let needed = rowsOf s 0 s.Count
            let neededBytes = needed |> Array.sumBy (fun r -> t.RecordBytesOf r)
            printfn "dense epoch: %d of %d rows needed (%d bytes); after 60 batches: %d block reads, %d requests, %d bytes fetched (%.3f of the epoch's records' bytes)"
                needed.Length t.Count neededBytes t.BlockReads t.Requests t.BytesFetched (float t.BytesFetched / float neededBytes)
            Expect.isGreaterThan t.BlockReads 0L "whole blocks are read"
            Expect.isLessThan t.Requests 60L "fewer requests than batches (one per record would be about 700)"
            Expect.isLessThanOrEqual (float t.BytesFetched) (1.2 * float neededBytes) "within 1.2x of the records this epoch's batches contain")

        testCase "s3rver: a sliced, interleaved split spec gives the local load's rows in the same order" <| s3rverOr (fun server ->
            server.Upload("digits", prefix, digits ()) |> ignore
            use cache = new TempDir()
            let splits = [| "train[10%:70%]+test[:40%]"; "test[50%:]" |]
            let localDigest, localBytes = localFingerprint (Path.Combine(cache.Path, "local")) splits
            use s = open' (options "s3://digits/tfds/data" (Path.Combine(cache.Path, "remote")) splits (remote server (RemoteAccessOptions())))
            let digest, bytes = fingerprintOf s
            Expect.equal digest localDigest "plan digest"
            for i in 0 .. bytes.Length - 1 do Expect.sequenceEqual bytes[i] localBytes[i] $"batch {i} bytes")

        testCase "s3rver: an object replaced mid-run fails the batches that need it with an error naming the object, never other bytes; the next open rebuilds the index" <| s3rverOr (fun server ->
            server.Upload("digits", prefix, digits ()) |> ignore
            use cache = new TempDir()
            let splits = [| "train"; "test" |]
            let _, localBytes = localFingerprint (Path.Combine(cache.Path, "local")) splits
            let o = options "s3://digits/tfds/data" (Path.Combine(cache.Path, "remote")) splits (remote server (RemoteAccessOptions(ReadAheadBatches = 0)))
            let shard = "synthetic_digits-train.tfrecord-00000-of-00002"
            do
                use s = open' o
                do
                    use b0 = s[0]
                    Expect.sequenceEqual (batchBytes b0) localBytes[0] "batch 0 before the change"
                // The same records in reverse order: same size and count, another ETag.
                let records = TfRecordReader.ReadAllRecords(Path.Combine(digits (), shard))
                let changed = Path.Combine(cache.Path, shard)
                do
                    use f = File.Create changed
                    use w = new TfRecordWriter(f)
                    for r in List.rev (List.ofSeq records) do w.Write(ReadOnlySpan r)
                use c = server.Client()
                c.PutObjectAsync(Amazon.S3.Model.PutObjectRequest(BucketName = "digits", Key = prefix + "/" + shard, FilePath = changed, UseChunkEncoding = false)).GetAwaiter().GetResult() |> ignore
                let mutable failures = 0
                for i in 1 .. s.Count - 1 do
                    try
                        use b = s[i]
                        Expect.sequenceEqual (batchBytes b) localBytes[i] $"batch {i}: a batch that succeeds has the original bytes"
                    with e ->
                        let changedErr = rec' e |> List.tryPick (function :? ObjectChangedException as c -> Some c | _ -> None)
                        Expect.isSome changedErr $"batch {i} fails with ObjectChangedException: {e}"
                        Expect.stringContains changedErr.Value.Message shard "names the object"
                        failures <- failures + 1
                Expect.isGreaterThan failures 0 "batches needing the replaced shard fail"
            use again = open' o
            let origins = again.RemoteTable.Indexes |> Seq.map (fun i -> i.Split, i.Origin) |> Map.ofSeq
            Expect.equal origins["train"] RecordIndexOrigin.Scanned "the changed split's index is rebuilt"
            Expect.equal origins["test"] RecordIndexOrigin.LocalFile "the unchanged split's index is reused"
            use b = again[0]
            Expect.isGreaterThan b.Count 0 "batches load after the rebuild")

        testCase "s3rver: a damaged, truncated or other-version local index file is rebuilt from the shards" <| s3rverOr (fun server ->
            server.Upload("digits", prefix, digits ()) |> ignore
            use cache = new TempDir()
            let splits = [| "train" |]
            let localDigest, _ = localFingerprint (Path.Combine(cache.Path, "local")) splits
            let o = options "s3://digits/tfds/data" (Path.Combine(cache.Path, "remote")) splits (remote server (RemoteAccessOptions()))
            do
                use s = open' o
                ()
            let file = indexFiles (Path.Combine(cache.Path, "remote")) |> Array.exactlyOne
            let good = File.ReadAllBytes file
            let damage (name: string) (bytes: byte[]) =
                File.WriteAllBytes(file, bytes)
                use s = open' o
                Expect.equal (s.RemoteTable.Indexes |> Seq.exactlyOne).Origin RecordIndexOrigin.Scanned $"{name}: rebuilt"
                Expect.equal (s.DigestPlans(0, 2, 0, s.Count)) localDigest $"{name}: digest"
                Expect.sequenceEqual (File.ReadAllBytes file) good $"{name}: the rebuilt file equals the first"
            let flipped = Array.copy good
            flipped[good.Length / 2] <- flipped[good.Length / 2] ^^^ 0x40uy
            damage "a flipped byte" flipped
            damage "truncated" good[.. good.Length - 30]
            let version = Array.copy good
            version[8] <- 2uy
            damage "format version 2" version
            damage "empty" [||])

        testCase "s3rver: read-ahead fetches the next batches' records into the cache in the background; 0 turns it off" <| s3rverOr (fun server ->
            server.Upload("digits", prefix, digits ()) |> ignore
            use cache = new TempDir()
            let run (k: int) =
                use s = open' (options "s3://digits/tfds/data" (Path.Combine(cache.Path, $"k{k}")) [| "train"; "test" |] (remote server (RemoteAccessOptions(ReadAheadBatches = k))))
                let t = s.RemoteTable
                do
                    use _ = s[0]
                    ()
                t.WaitForReadAheadAsync().GetAwaiter().GetResult()
                let next = rowsOf s 1 3
                next |> Array.filter (fun r -> t.Cache.Contains r) |> Array.length, next.Length, t.ReadAheadsStarted
            let held, wanted, started = run 2
            Expect.equal held wanted "with read-ahead 2 the rows of batches 1 and 2 are cached after batch 0"
            Expect.isGreaterThan started 0L "read-ahead started"
            let held0, _, started0 = run 0
            Expect.equal started0 0L "no read-ahead"
            Expect.isLessThan held0 wanted "without read-ahead batches 1 and 2 are not all cached")

        testCase "s3rver: an index published next to the data is loaded by a second host without scanning" <| s3rverOr (fun server ->
            server.Upload("digits", prefix, digits ()) |> ignore
            use cache = new TempDir()
            let splits = [| "train"; "test" |]
            let o cacheDir = options "s3://digits/tfds/data" (Path.Combine(cache.Path, cacheDir)) splits (remote server (RemoteAccessOptions()))
            let load = TFDatasetMultiShotMemorySampler.EffectiveLoadOptions(o "host1")
            do
                use t = RemoteDataset.OpenAsync(load, true, null, Threading.CancellationToken.None).GetAwaiter().GetResult()
                Expect.isTrue (t.Indexes |> Seq.forall (fun i -> i.Published)) "published"
            let published = server.Get("digits", prefix + "/samplers-index/train.sidx")
            Expect.sequenceEqual published (File.ReadAllBytes(indexFiles (Path.Combine(cache.Path, "host1")) |> Array.find (fun f -> f.EndsWith "train.sidx"))) "the bucket holds the index file"
            let localDigest, _ = localFingerprint (Path.Combine(cache.Path, "local")) splits
            use s = open' (o "host2")
            let t = s.RemoteTable
            Expect.isTrue (t.Indexes |> Seq.forall (fun i -> i.Origin = RecordIndexOrigin.Published)) "second host loads the published index"
            let shardBytes = Directory.GetFiles(digits (), "*.tfrecord-*") |> Array.sumBy (fun f -> FileInfo(f).Length)
            Expect.isLessThan t.OpenBytes (shardBytes / 4L) "no shard scanned: only the small index files are read"
            Expect.equal (s.DigestPlans(0, 2, 0, s.Count)) localDigest "digest"
            // A damaged published index is an error naming it (someone published it), never silently scanned around.
            let damaged = Array.copy published
            damaged[damaged.Length / 2] <- damaged[damaged.Length / 2] ^^^ 0x01uy
            use c = server.Client()
            c.PutObjectAsync(Amazon.S3.Model.PutObjectRequest(BucketName = "digits", Key = prefix + "/samplers-index/train.sidx", InputStream = new MemoryStream(damaged), UseChunkEncoding = false)).GetAwaiter().GetResult() |> ignore
            let e = throwsWith<DataFormatException> (fun () -> use _ = open' (o "host3") in ()) "damaged published index"
            Expect.stringContains e.Message "samplers-index/train.sidx" "names the object"
            Expect.stringContains e.Message "CRC-32C" "says what failed"
            Expect.stringContains e.Message "UsePublishedIndex" "says how to ignore it")

        testCase "s3rver through the CLI: info with --s3-access remote reads the metadata and the index, not the shards, and counts the classes as the local info does" <| s3rverOr (fun server ->
            server.Upload("digits", prefix, digits ()) |> ignore
            use cache = new TempDir()
            let store = [ "--data-dir"; "s3://digits/tfds/data"; "--s3-endpoint"; server.Endpoint; "--s3-anonymous"; "--s3-access"; "remote" ]
            let classesOf (out: string) =
                let root = (json out).RootElement
                [ for k in root.GetProperty("classes").EnumerateArray() -> k.GetProperty("label").GetInt64(), k.GetProperty("count").GetInt32() ]
            let code, out, err = cli [ "info"; "synthetic_digits:1.0.0"; "--splits"; "train,test"; "--json"; "--quiet"; "--data-dir"; dataRoot (); "--no-cache" ] []
            Expect.equal code 0 $"local info: {err}"
            let local = classesOf out
            let info (extra: string list) =
                let code, out, err = cli ([ "info"; "synthetic_digits:1.0.0"; "--splits"; "train,test"; "--json"; "--quiet"; "--cache-dir"; cache.Path ] @ store @ extra) []
                Expect.equal code 0 $"remote info: {err}"
                (json out).RootElement
            let first = info []
            Expect.equal (classesOf (first.GetRawText())) local "the same per-class counts as from disk"
            Expect.stringContains (first.GetProperty("cache").GetString()) "record index: train scanned, test scanned" "the index was built by scanning (first open)"
            Expect.isTrue (first.GetProperty("splits").EnumerateArray() |> Seq.forall (fun sp -> sp.GetProperty("present").GetBoolean())) "every split present"
            Expect.isEmpty (Directory.GetFiles(cache.Path, "*.tfrecord*", SearchOption.AllDirectories)) "no shard was copied"
            let again = info [ "--no-counts" ]
            Expect.stringContains (again.GetProperty("cache").GetString()) "record index: train localfile, test localfile" "the second info reuses the local index"
            Expect.equal (again.GetProperty("classes").ValueKind) Text.Json.JsonValueKind.Null "--no-counts: no counts"
            // Without --s3-access remote, info would have to copy the data: a usage error saying what to add.
            let code, _, err = cli [ "info"; "synthetic_digits:1.0.0"; "--quiet"; "--data-dir"; "s3://digits/tfds/data"; "--s3-endpoint"; server.Endpoint; "--s3-anonymous" ] []
            Expect.equal code 1 $"copy mode: a usage error ({err})"
            Expect.stringContains err "--s3-access remote" "says what to add")

        testCase "s3rver through the CLI: index --publish writes the index; ranks from RANK/WORLD_SIZE each fetch only their own batches' records, and their batches together are the single-process plan" <| s3rverOr (fun server ->
            server.Upload("digits", prefix, digits ()) |> ignore
            use cache = new TempDir()
            let store = [ "--data-dir"; "s3://digits/tfds/data"; "--s3-endpoint"; server.Endpoint; "--s3-anonymous" ]
            let code, out, err = cli ([ "index"; "synthetic_digits:1.0.0"; "--splits"; "train,test"; "--publish"; "--json"; "--quiet"; "--cache-dir"; Path.Combine(cache.Path, "publisher") ] @ store) []
            Expect.equal code 0 $"index: {err}"
            let doc = json out
            Expect.isTrue (doc.RootElement.GetProperty("indexes").EnumerateArray() |> Seq.forall (fun i -> i.GetProperty("published").GetBoolean())) "published"
            Expect.isGreaterThan (server.Get("digits", prefix + "/samplers-index/test.sidx")).Length 0 "the test split's index is in the bucket"
            let sampling = [ "synthetic_digits:1.0.0"; "--splits"; "train,test"; "-c"; "4"; "-e"; "3"; "-s"; "20"; "--seed"; "7"; "--s3-access"; "remote"; "--quiet" ] @ store
            let plans (rank: int option) =
                let env = match rank with Some r -> [ "RANK", string r; "WORLD_SIZE", "2" ] | None -> []
                let dir = Path.Combine(cache.Path, (match rank with Some r -> $"rank{r}" | None -> "single"))
                let code, out, err = cli ([ "plan"; "--format"; "jsonl"; "--cache-dir"; dir ] @ sampling) env
                Expect.equal code 0 $"plan {rank}: {err}"
                [ for line in out.Split('\n', StringSplitOptions.RemoveEmptyEntries) do
                    let e = (json line).RootElement
                    yield e.GetProperty("globalBatch").GetInt32(), [ for i in e.GetProperty("indices").EnumerateArray() -> i.GetInt32() ] ]
            let single = plans None |> Map.ofList
            let ranks = [ for r in 0 .. 1 -> r, plans (Some r) ]
            let union = ranks |> List.collect snd |> Map.ofList
            Expect.equal union single "the ranks' batches together are the single-process plan"
            for (r, own) in ranks do
                Expect.isTrue (own |> List.forall (fun (g, _) -> g % 2 = r)) $"rank {r} holds the global batches b with b mod 2 = {r}"
                let code, out, err = cli ([ "run"; "--json"; "--cache-dir"; Path.Combine(cache.Path, $"rank{r}") ] @ sampling) [ "RANK", string r; "WORLD_SIZE", "2" ]
                Expect.equal code 0 $"run rank {r}: {err}"
                let root = (json out).RootElement
                Expect.equal (root.GetProperty("rank").GetInt32()) r "rank from RANK"
                Expect.equal (root.GetProperty("worldSize").GetInt32()) 2 "world size from WORLD_SIZE"
                let remoteStats = root.GetProperty("remote")
                let distinct = own |> List.collect snd |> List.distinct |> List.length
                let fetched = remoteStats.GetProperty("recordsFetched").GetInt64()
                printfn "rank %d: %d batches, %d distinct rows, %d records fetched in %d requests, %d bytes (all records %d bytes); opening %d requests, %d bytes"
                    r own.Length distinct fetched (remoteStats.GetProperty("requests").GetInt64()) (remoteStats.GetProperty("bytesFetched").GetInt64())
                    (remoteStats.GetProperty("recordBytesTotal").GetInt64()) (remoteStats.GetProperty("openRequests").GetInt64()) (remoteStats.GetProperty("openBytes").GetInt64())
                // Every row of its own batches, plus at most the read-ahead (2 batches of 12 rows, default) into its next epoch's batches.
                Expect.isGreaterThanOrEqual fetched (int64 distinct) $"rank {r} fetched every row of its batches"
                Expect.isLessThanOrEqual fetched (int64 (distinct + 2 * 12)) $"rank {r} fetches only its own batches' records (and the read-ahead)"
                let all = union |> Map.toList |> List.collect snd |> List.distinct |> List.length
                Expect.isLessThan fetched (int64 all) $"rank {r} fetched fewer records than the ranks' batches hold together")
    ]
