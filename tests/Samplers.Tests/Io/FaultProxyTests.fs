/// Faults as a bucket really behaves: the fault-injecting proxy (tools/Samplers.FaultProxy) itself, then the S3 path
/// (s3rver behind the proxy) under a seeded schedule of 503 SlowDown, connection resets, bodies cut short and short
/// ranges. A failing seeded test names its seed; SAMPLERS_FAULT_SEED=<seed> replays it (docs/OBJECT_STORAGE.md "Faults").
module Samplers.Tests.Io.FaultProxyTests

open System
open System.Diagnostics
open System.IO
open System.Net
open System.Net.Http
open Expecto
open Samplers
open Samplers.FaultProxy
open Samplers.Storage
open Samplers.Tfds
open Samplers.Experiments
open Samplers.Tests.TestUtil
open Samplers.Tests.Io.DownloadTests
open Samplers.Tests.Io.S3Server
open Samplers.Tests.Io.ObjectStoreTests

/// The seed of the seeded tests unless SAMPLERS_FAULT_SEED gives another.
let defaultSeed = 7UL

/// The seed of the seeded tests; SAMPLERS_FAULT_SEED replays another.
let faultSeedOr (fallback: uint64) =
    match Environment.GetEnvironmentVariable "SAMPLERS_FAULT_SEED" with
    | null | "" -> fallback
    | s -> UInt64.Parse s

/// The seed of the seeded copy tests; SAMPLERS_FAULT_SEED replays another.
let faultSeed () = faultSeedOr defaultSeed

let private replay (seed: uint64) (proxy: FaultProxy) =
    let faults = proxy.Injected |> Seq.map string |> String.concat "\n  "
    $"fault seed {seed} (replay: SAMPLERS_FAULT_SEED={seed} dotnet run --project tests/Samplers.Tests -c Release -- --filter-test-case seeded); injected:\n  {faults}"

/// The mixed schedule of the seeded tests.
let seededSchedule seed =
    FaultSchedule(Seed = seed, SlowDown = 0.2, Reset = 0.2, CutShort = 0.2, ShortRange = 0.5, MaxShortRangeBytes = 100_000)

let private client () =
    new HttpClient(new SocketsHttpHandler(MaxConnectionsPerServer = 1, UseProxy = false, PooledConnectionIdleTimeout = TimeSpan.FromMinutes 1.))

/// Reads a response body to its end: (bytes received, the error that ended it early or null).
let private drain (r: HttpResponseMessage) =
    use s = r.Content.ReadAsStream()
    use ms = new MemoryStream()
    let err = try s.CopyTo ms; null with e -> e
    ms.ToArray(), err

let private shard0 = "synthetic_digits-train.tfrecord-00000-of-00002"

/// The records of a TFRecord file in reverse order: a valid shard with the same record count and other bytes.
let reversedRecords (bytes: byte[]) =
    let records = ResizeArray<byte[]>()
    let mutable at = 0
    while at < bytes.Length do
        let len = int (BitConverter.ToUInt64(bytes, at))
        records.Add bytes[at .. at + 16 + len - 1]
        at <- at + 16 + len
    records |> Seq.rev |> Array.concat

// Mode 2 (remote random access): the rows are fetched by ranged reads through a record index built by scanning.
let private shardTarget (r: ProxyRequest) = r.Method = "GET" && r.Target.Contains ".tfrecord-"

let private remoteLoad (dataDir: string) (cache: string) (store: ObjectStoreOptions) =
    TFDatasetSamplerOptions(
        Load = TfdsLoadOptions(DatasetName = "synthetic_digits:1.0.0", DataDir = dataDir, CacheDir = cache, Download = null, ObjectStore = store, Splits = [| "train"; "test" |]),
        ClassesPerBatch = 4, ExamplesPerClassPerBatch = 3, StepsPerEpoch = 20, Seed = 7UL)

/// Mode 2 through an endpoint: read-ahead 2, and an example cache too small for an epoch, so the second epoch reads again.
let private remoteStore (endpoint: string) (retries: int) (readAhead: int) =
    ObjectStoreOptions(Endpoint = endpoint, Anonymous = true, Retries = retries, Access = ObjectStoreAccess.Remote,
                       Remote = RemoteAccessOptions(ReadAheadBatches = readAhead, CacheBytes = 32L * 1024L))

let private batchBytes (b: Batch) = Array.append (b.ToArray<byte>()) (b.Y.ToArray() |> Array.collect BitConverter.GetBytes)

/// The plan digest over two epochs and every batch's bytes of both.
let private twoEpochs (s: TFDatasetMultiShotMemorySampler) =
    s.DigestPlans(0, 2, 0, s.Count), [ for e in 0 .. 1 do
                                          for i in 0 .. s.Count - 1 do
                                              use b = s.GenerateBatchAt(e, i)
                                              yield batchBytes b ]

let private localTwoEpochs (cache: string) =
    use s = TFDatasetMultiShotMemorySampler.LoadAsync(remoteLoad (Path.Combine(repoRoot.Value, "data")) cache null).GetAwaiter().GetResult()
    twoEpochs s

let private openRemote (o: TFDatasetSamplerOptions) = TFDatasetMultiShotMemorySampler.LoadAsync(o).GetAwaiter().GetResult()

let private chain (e: exn) =
    let rec go (e: exn) = seq { if not (isNull e) then yield e; yield! go e.InnerException }
    go e |> Seq.toList

/// The message of the ExampleLoadException among e's causes (the test fails without one), checked to be one line.
let private loadFailureMessage (e: exn) =
    match chain e |> List.tryPick (function :? ExampleLoadException as l -> Some l | _ -> None) with
    | Some l ->
        oneLine l.Message
        l.Message
    | None -> failtestf "expected an ExampleLoadException among the causes of: %O" e

/// The schedule of the seeded mode-2 test: every record is a ranged GET, so lower rates than the copy's (which faults
/// mostly whole-object GETs) keep a two-epoch run to some hundreds of requests. The seeded draw, except that a cut which
/// would pass no byte of a closed range (a short rest, e.g. the last bytes a shortened answer left) is not made: such a
/// cut brings nothing, so it rightly counts against the retries, and which concurrent read meets which occurrence of a
/// shard depends on timing, so five of them on one rest (p = 0.2 each) can exhaust the retries: the test could fail by
/// scheduling alone (it failed once in 32 runs here before this). Every fault it makes now brings bytes or is a 503.
let mode2Schedule seed =
    let draw = FaultSchedule(Seed = seed, SlowDown = 0.08, Reset = 0.08, CutShort = 0.12, ShortRange = 0.25, MaxShortRangeBytes = 100_000)
    let closedLength (r: ProxyRequest) =
        match r.Range with
        | null -> None
        | range ->
            let parts = range.Substring("bytes=".Length).Split('-')
            if parts.Length = 2 && parts[1] <> "" then Some(int64 parts[1] - int64 parts[0] + 1L) else None
    let script (r: ProxyRequest) =
        let f = draw.Decide r
        match f.Kind, closedLength r with
        | (FaultKind.Reset | FaultKind.CutShort), Some n when int64 (f.Fraction * float n) = 0L -> Nullable Fault.None
        | _ -> Nullable f
    FaultSchedule(Seed = seed, SlowDown = 0.08, Reset = 0.08, CutShort = 0.12, ShortRange = 0.25, MaxShortRangeBytes = 100_000, Script = Func<_, _> script)

/// The seed whose mode-2 run is held to meet every kind in both phases (another seed, a replay, only reports them). The
/// scan's faults are a function of the seed alone (each shard is one chain of requests on its target); seed 24 is the
/// first whose scan meets all four kinds (SlowDown, CutShort, ShortRange, Reset over the three shards).
let mode2DefaultSeed = 24UL

[<Tests>]
let tests =
    testSequenced <| testList "FaultProxy" [
        testCase "the seeded schedule: the same seed gives the same faults whatever the order; kinds only where they apply" <| fun () ->
            let requests =
                [ for i in 1 .. 3000 ->
                    let m = if i % 10 = 0 then "PUT" else "GET"
                    ProxyRequest(m, $"/b/key{i % 97}?x-id=GetObject", (if i % 3 = 0 then "bytes=100-" else null), 1 + i / 97) ]
            let mk seed = FaultSchedule(Seed = seed, SlowDown = 0.1, Reset = 0.1, CutShort = 0.1, ShortRange = 0.2)
            let s = mk 42UL
            let a = requests |> List.map s.Decide
            Expect.equal (List.rev requests |> List.map s.Decide |> List.rev) a "same decisions in any order"
            Expect.equal (requests |> List.map (mk 42UL).Decide) a "a new schedule with the seed"
            Expect.notEqual (requests |> List.map (mk 43UL).Decide) a "another seed, other faults"
            let count k = a |> List.filter (fun f -> f.Kind = k) |> List.length
            // 3000 draws: each share within 3 points of its probability (a deterministic check: the seed is fixed).
            Expect.isTrue (abs (float (count FaultKind.SlowDown) / 3000. - 0.1) < 0.03) $"SlowDown share {count FaultKind.SlowDown}"
            for r, f in List.zip requests a do
                if r.Method <> "GET" then Expect.isTrue (f.Kind = FaultKind.None || f.Kind = FaultKind.SlowDown) $"no body fault on {r}"
                if isNull r.Range then Expect.notEqual f.Kind FaultKind.ShortRange $"no short range without a range: {r}"
                Expect.isTrue (f.Fraction >= 0. && f.Fraction < 1.) "fraction in [0, 1)"
            Expect.isTrue (count FaultKind.ShortRange > 0 && count FaultKind.Reset > 0 && count FaultKind.CutShort > 0) "every kind drawn"

        testCase "scripted faults happen as scheduled: 503 SlowDown, a reset and a cut mid-body, a short 206; keep-alive across them" <| fun () ->
            use root = new TempDir()
            let data = Array.init 200_000 (fun i -> byte ((i * 7919) % 251))
            File.WriteAllBytes(Path.Combine(root.Path, "f.bin"), data)
            use server = new Server(root.Path)
            let script (r: ProxyRequest) =
                match r.Occurrence with
                | 1 -> Nullable(Fault(FaultKind.SlowDown, 0.))
                | 2 -> Nullable(Fault(FaultKind.Reset, 0.5))
                | 3 -> Nullable(Fault(FaultKind.CutShort, 0.25))
                | 4 -> Nullable(Fault(FaultKind.ShortRange, 0.1))
                | _ -> Nullable()
            use proxy = FaultProxy.Start(Uri server.Url, FaultSchedule(Script = Func<_, _> script, MaxShortRangeBytes = 65_536))
            use http = client ()
            let get (range: string) =
                let m = new HttpRequestMessage(HttpMethod.Get, Uri(proxy.Uri, "/f.bin"))
                if not (isNull range) then m.Headers.Range <- Headers.RangeHeaderValue.Parse range
                http.Send(m, HttpCompletionOption.ResponseHeadersRead)
            use r1 = get null
            Expect.equal r1.StatusCode HttpStatusCode.ServiceUnavailable "503"
            let body1, _ = drain r1
            Expect.stringContains (Text.Encoding.UTF8.GetString body1) "<Code>SlowDown</Code>" "S3's error document"
            use r2 = get null
            Expect.equal r2.Content.Headers.ContentLength (Nullable 200_000L) "announces the whole body"
            let got2, err2 = drain r2
            Expect.isNotNull err2 "the reset ends the body with an error"
            Expect.isLessThanOrEqual got2.Length 100_000 "at most half arrived"
            use r3 = get null
            let got3, err3 = drain r3
            Expect.isNotNull err3 "the cut ends the body early"
            Expect.equal got3.Length 50_000 "a normal close delivers what was sent: a quarter"
            Expect.sequenceEqual got3 data[.. 49_999] "the bytes that arrived are the object's"
            use r4 = get "bytes=1000-"
            Expect.equal r4.StatusCode HttpStatusCode.PartialContent "206"
            let k = 1 + int (0.1 * 65_536.)
            Expect.equal (string r4.Content.Headers.ContentRange) $"bytes 1000-{1000 + k - 1}/200000" "a correct Content-Range for the shorter range"
            let got4, err4 = drain r4
            Expect.isNull err4 "a complete short answer"
            Expect.sequenceEqual got4 data[1000 .. 1000 + k - 1] "the bytes of the shorter range"
            for _ in 1 .. 3 do
                use r = get null
                let got, err = drain r
                Expect.isNull err "clean"
                Expect.sequenceEqual got data "forwarded untouched"
            let c = proxy.Counters
            Expect.equal (c.SlowDowns, c.Resets, c.CutShorts, c.ShortRanges) (1L, 1L, 1L, 1L) $"one of each: {c}"
            Expect.equal (c.Requests, c.Forwarded) (7L, 6L) "the 503 is not forwarded"
            // The 503 keeps its connection; the reset and the cut end theirs; the rest share one, although this upstream
            // closes after every answer.
            Expect.equal c.Connections 3L $"keep-alive: {c}"
            Expect.equal c.UpstreamConnections 6L "one upstream connection per forwarded request (this upstream closes)"
            Expect.equal (proxy.Injected |> Seq.map (fun f -> f.Kind) |> List.ofSeq) [ FaultKind.SlowDown; FaultKind.Reset; FaultKind.CutShort; FaultKind.ShortRange ] "the log"
            Expect.equal (server.Requests |> List.map (fun r -> r.Range)) [ ""; ""; "bytes=1000-" + string (1000 + k - 1); ""; ""; "" ] "what the upstream saw"
    
        testCase "seeded: a bucket load through the proxy (503s, resets, cuts, short ranges) gives the local plan digest and batch bytes; each kind was injected" <| s3rverOr (fun server ->
            server.Upload("digits", "tfds/data/synthetic_digits/1.0.0", digits ()) |> ignore
            let seed = faultSeed ()
            use cache = new TempDir()
            let localDigest, localBytes = fingerprint (samplerOptionsFor "synthetic_digits:1.0.0" (Path.Combine(repoRoot.Value, "data")) (Path.Combine(cache.Path, "local")) null)
            // The same load through a proxy that injects nothing: the reference for the figures printed below.
            let cleanClock = Stopwatch.StartNew()
            let cleanCounters =
                use clean = FaultProxy.Start(Uri server.Endpoint, FaultSchedule.Clean)
                fingerprint (samplerOptionsFor "synthetic_digits" "s3://digits/tfds/data" (Path.Combine(cache.Path, "clean")) (ObjectStoreOptions(Endpoint = string clean.Uri, Anonymous = true))) |> ignore
                clean.Counters
            cleanClock.Stop()
            eprintfn "no faults: %O; %d ms" cleanCounters cleanClock.ElapsedMilliseconds
            use proxy = FaultProxy.Start(Uri server.Endpoint, seededSchedule seed)
            // Without a version: the prefix is listed (ListObjectsV2) through the proxy too.
            let store = ObjectStoreOptions(Endpoint = string proxy.Uri, Anonymous = true)
            let clock = Stopwatch.StartNew()
            let remoteDigest, remoteBytes =
                try fingerprint (samplerOptionsFor "synthetic_digits" "s3://digits/tfds/data" (Path.Combine(cache.Path, "remote")) store)
                with e -> failtestf "%s\n%s" e.Message (replay seed proxy)
            clock.Stop()
            let c = proxy.Counters
            eprintfn "fault seed %d: %O; %d ms" seed c clock.ElapsedMilliseconds
            Expect.equal remoteDigest localDigest (replay seed proxy)
            Expect.equal remoteBytes localBytes (replay seed proxy)
            // The default seed is one whose run meets every kind (a load is some 10-30 requests, so not every seed does);
            // another seed (a replay) is held to the same bytes, and its kinds are only reported.
            if seed = defaultSeed then
                Expect.isGreaterThan c.SlowDowns 0L $"a 503 was injected: {replay seed proxy}"
                Expect.isGreaterThan c.Resets 0L $"a reset was injected: {replay seed proxy}"
                Expect.isGreaterThan c.CutShorts 0L $"a cut was injected: {replay seed proxy}"
                Expect.isGreaterThan c.ShortRanges 0L $"a short range was injected: {replay seed proxy}"
            Expect.isLessThan c.UpstreamConnections c.Forwarded "the upstream connection is kept alive between requests")

        testCase "503 SlowDown on ListObjectsV2 and GetObject is retried by the SDK (standard mode): two per request, and the load still matches" <| s3rverOr (fun server ->
            server.Upload("digits", "tfds/data/synthetic_digits/1.0.0", digits ()) |> ignore
            let script (r: ProxyRequest) = if r.Occurrence <= 2 then Nullable(Fault(FaultKind.SlowDown, 0.)) else Nullable()
            use proxy = FaultProxy.Start(Uri server.Endpoint, FaultSchedule(Script = Func<_, _> script))
            use cache = new TempDir()
            let localDigest, _ = fingerprint (samplerOptionsFor "synthetic_digits:1.0.0" (Path.Combine(repoRoot.Value, "data")) (Path.Combine(cache.Path, "local")) null)
            let clock = Stopwatch.StartNew()
            let digest, _ = fingerprint (samplerOptionsFor "synthetic_digits" "s3://digits/tfds/data" (Path.Combine(cache.Path, "remote")) (ObjectStoreOptions(Endpoint = string proxy.Uri, Anonymous = true)))
            clock.Stop()
            Expect.equal digest localDigest "plan digest"
            let seen = proxy.Seen
            let targets = seen |> Seq.map (fun r -> r.Method + " " + r.Target) |> Seq.distinct |> List.ofSeq
            Expect.isTrue (targets |> List.exists (fun t -> t.Contains "list-type=2")) $"a listing went through: {targets}"
            Expect.isTrue (targets |> List.exists (fun t -> t.Contains shard0)) "a shard went through"
            for t in targets do
                let n = seen |> Seq.filter (fun r -> r.Method + " " + r.Target = t) |> Seq.length
                Expect.equal n 3 $"{t}: two 503s, then the answer"
            eprintfn "two 503s per request: %d requests, %d SlowDowns, %d ms" (Seq.length seen) proxy.Counters.SlowDowns clock.ElapsedMilliseconds)

        testCase "503 SlowDown past the retries: the CLI exits 2 with the one-line 503 error after 1 + Retries attempts" <| s3rverOr (fun server ->
            server.Upload("digits", "p/synthetic_digits/1.0.0", digits ()) |> ignore
            use proxy = FaultProxy.Start(Uri server.Endpoint, FaultSchedule(Seed = faultSeed (), SlowDown = 1.0))
            use home = new TempDir()
            let clock = Stopwatch.StartNew()
            let code, out, err =
                cli [ "plan"; "synthetic_digits:1.0.0"; "--data-dir"; "s3://digits/p"; "--s3-endpoint"; string proxy.Uri; "--s3-anonymous"
                      "--cache-dir"; Path.Combine(home.Path, "c"); "--quiet" ] (noCredentials home.Path)
            clock.Stop()
            Expect.equal code 2 $"data error: {out} {err}"
            Expect.equal (err.Trim().Split('\n').Length) 1 $"one line: {err}"
            Expect.stringContains err "answered 503 SlowDown after the retries (ObjectStoreOptions.Retries); try again later" "the 503 line"
            Expect.stringContains err "s3://digits/p/synthetic_digits/1.0.0/" "names the object"
            let c = proxy.Counters
            Expect.equal (c.Requests, c.SlowDowns, c.Forwarded) (5L, 5L, 0L) $"the first request, tried 1 + 4 times: {c}"
            eprintfn "503 past the retries: %d attempts in %d ms (CLI child included)" c.Requests clock.ElapsedMilliseconds)

        testCase "seeded mode 2: the index scan and two epochs of ranged record reads (read-ahead on) through 503s, resets, cuts and short ranges give the local plan digest and batch bytes" <| s3rverOr (fun server ->
            server.Upload("digits", "tfds/data/synthetic_digits/1.0.0", digits ()) |> ignore
            let seed = faultSeedOr mode2DefaultSeed
            use cache = new TempDir()
            let localDigest, localBytes = localTwoEpochs (Path.Combine(cache.Path, "local"))
            let cleanClock = Stopwatch.StartNew()
            let cleanCounters =
                use clean = FaultProxy.Start(Uri server.Endpoint, FaultSchedule.Clean)
                use s = openRemote (remoteLoad "s3://digits/tfds/data" (Path.Combine(cache.Path, "clean")) (remoteStore (string clean.Uri) 4 2))
                twoEpochs s |> ignore
                clean.Counters
            cleanClock.Stop()
            eprintfn "mode 2, no faults: %O; %d ms" cleanCounters cleanClock.ElapsedMilliseconds
            use proxy = FaultProxy.Start(Uri server.Endpoint, mode2Schedule seed)
            let kinds (faults: InjectedFault seq) k = faults |> Seq.filter (fun f -> shardTarget f.Request && f.Kind = k) |> Seq.length
            let clock = Stopwatch.StartNew()
            use s =
                try openRemote (remoteLoad "s3://digits/tfds/data" (Path.Combine(cache.Path, "remote")) (remoteStore (string proxy.Uri) 4 2))
                with e -> failtestf "open: %s\n%s" e.Message (replay seed proxy)
            let openTime = clock.ElapsedMilliseconds
            let atOpen = proxy.Injected |> Seq.toArray
            let openCounters = proxy.Counters
            Expect.isTrue (s.RemoteTable.Indexes |> Seq.forall (fun i -> i.Origin = RecordIndexOrigin.Scanned)) "the first open scans"
            let digest, bytes =
                try twoEpochs s
                with e -> failtestf "batches: %s\n%s" e.Message (replay seed proxy)
            clock.Stop()
            s.RemoteTable.WaitForReadAheadAsync().GetAwaiter().GetResult()
            let c = proxy.Counters
            let later = proxy.Injected |> Seq.skip atOpen.Length |> Seq.toArray
            let t = s.RemoteTable
            let summary (f: InjectedFault[]) =
                String.Join(", ", [ for k in [ FaultKind.SlowDown; FaultKind.Reset; FaultKind.CutShort; FaultKind.ShortRange ] -> $"{k} {kinds f k}" ])
            eprintfn "mode 2, fault seed %d: open %O, faults on shards %s, %d ms; batches (2 epochs): %d requests, faults %s, %d record reads (%d records); total %O; %d ms"
                seed openCounters (summary atOpen) openTime (c.Requests - openCounters.Requests) (summary later) t.Requests t.RecordsFetched c clock.ElapsedMilliseconds
            Expect.equal digest localDigest (replay seed proxy)
            Expect.equal bytes.Length localBytes.Length "batches"
            for i in 0 .. bytes.Length - 1 do Expect.sequenceEqual bytes[i] localBytes[i] $"batch {i} bytes; {replay seed proxy}"
            Expect.isGreaterThan t.RecordsFetched (int64 (s.Count * 12)) "the second epoch read records again (small cache)"
            if seed = mode2DefaultSeed then
                for k in [ FaultKind.SlowDown; FaultKind.Reset; FaultKind.CutShort; FaultKind.ShortRange ] do
                    Expect.isGreaterThan (kinds atOpen k) 0 $"the scan met {k}: {replay seed proxy}"
                    Expect.isGreaterThan (kinds later k) 0 $"the record reads met {k}: {replay seed proxy}")

        testCase "mode 2 scan: cuts beyond the retries that each bring bytes resume the shard where it stopped, never from its start" <| s3rverOr (fun server ->
            server.Upload("digits", "tfds/data/synthetic_digits/1.0.0", digits ()) |> ignore
            let script (r: ProxyRequest) =
                if shardTarget r && r.Occurrence <= 7 then Nullable(Fault((if r.Occurrence % 2 = 0 then FaultKind.Reset else FaultKind.CutShort), 0.4)) else Nullable()
            use proxy = FaultProxy.Start(Uri server.Endpoint, FaultSchedule(Script = Func<_, _> script))
            use cache = new TempDir()
            let localDigest, localBytes = localTwoEpochs (Path.Combine(cache.Path, "local"))
            use s =
                try openRemote (remoteLoad "s3://digits/tfds/data" (Path.Combine(cache.Path, "remote")) (remoteStore (string proxy.Uri) 4 2))
                with e -> failtestf "%s\ninjected:\n  %s" e.Message (proxy.Injected |> Seq.map string |> String.concat "\n  ")
            let scans = proxy.Seen |> Seq.filter shardTarget |> Seq.toArray
            Expect.isTrue (scans |> Array.forall (fun r -> not (isNull r.Range))) "every shard read is ranged (If-Match on the listed ETag)"
            Expect.isFalse (scans |> Array.exists (fun r -> r.Occurrence > 1 && r.Range.StartsWith "bytes=0-")) "a resume never starts the shard again"
            Expect.isGreaterThanOrEqual proxy.Counters.Injected 14L $"seven cuts per shard: {proxy.Counters}"
            let digest, bytes = twoEpochs s
            Expect.equal digest localDigest "plan digest"
            Expect.equal bytes localBytes "batch bytes")

        testCase "mode 2 record reads: 206s shorter than asked and cut bodies continue with a range for the rest; the batches are the local ones" <| s3rverOr (fun server ->
            server.Upload("digits", "tfds/data/synthetic_digits/1.0.0", digits ()) |> ignore
            let mutable records = false
            // A cut of half the body brings nothing when one byte is left; such answers rightly count against the retries,
            // and which read meets every third occurrence of a shard depends on timing (the reads run concurrently). So a
            // one-byte rest is never cut here: every fault brings bytes, and the test cannot fail by scheduling.
            let rangeLength (r: ProxyRequest) =
                match r.Range with
                | null -> Int64.MaxValue
                | range ->
                    let parts = range.Substring("bytes=".Length).Split('-')
                    if parts.Length = 2 && parts[1] <> "" then int64 parts[1] - int64 parts[0] + 1L else Int64.MaxValue
            let script (r: ProxyRequest) =
                if records && shardTarget r then
                    Nullable(if r.Occurrence % 3 = 0 && rangeLength r >= 2L then Fault(FaultKind.CutShort, 0.5) else Fault(FaultKind.ShortRange, 0.99))
                else Nullable()
            use proxy = FaultProxy.Start(Uri server.Endpoint, FaultSchedule(Script = Func<_, _> script, MaxShortRangeBytes = 100_000))
            use cache = new TempDir()
            let localDigest, localBytes = localTwoEpochs (Path.Combine(cache.Path, "local"))
            use s = openRemote (remoteLoad "s3://digits/tfds/data" (Path.Combine(cache.Path, "remote")) (remoteStore (string proxy.Uri) 4 2))
            records <- true
            let digest, bytes =
                try twoEpochs s
                with e -> failtestf "%s\ninjected (first 20):\n  %s" e.Message (proxy.Injected |> Seq.truncate 20 |> Seq.map string |> String.concat "\n  ")
            Expect.equal digest localDigest "plan digest"
            Expect.equal bytes.Length localBytes.Length "batches"
            for i in 0 .. bytes.Length - 1 do Expect.sequenceEqual bytes[i] localBytes[i] $"batch {i} bytes"
            let c = proxy.Counters
            Expect.isGreaterThan c.ShortRanges 100L $"short ranges: {c}"
            Expect.isGreaterThan c.CutShorts 50L $"cuts: {c}"
            eprintfn "mode 2, every record read short or cut: %O; %d record reads" c s.RemoteTable.Requests)

        testCase "mode 2: cuts and short answers that bring bytes are free only up to a bound; past it they count and the read fails naming the object and ObjectStoreOptions.Retries" <| s3rverOr (fun server ->
            server.Upload("digits", "tfds/data/synthetic_digits/1.0.0", digits ()) |> ignore
            let mutable records = None
            let script (r: ProxyRequest) = match records with Some f when shardTarget r -> Nullable(f) | _ -> Nullable()
            use proxy = FaultProxy.Start(Uri server.Endpoint, FaultSchedule(Script = Func<_, _> script))
            use cache = new TempDir()
            use s = openRemote (remoteLoad "s3://digits/tfds/data" (Path.Combine(cache.Path, "remote")) (remoteStore (string proxy.Uri) 2 0))
            let saved = Samplers.Tfds.ObjectStoreSource.MaxFreeResumes
            Samplers.Tfds.ObjectStoreSource.MaxFreeResumes <- 3
            try
                // Halving cuts, then 206s of one byte each: 3 free resumes, then 3 counted answers (1 + Retries).
                for fault in [ Fault(FaultKind.CutShort, 0.5); Fault(FaultKind.ShortRange, 0.) ] do
                    records <- Some fault
                    let before = proxy.Counters.Requests
                    let e = try (use _ = s.GetExamples(0, 1, 1) in failtest "expected the read to fail") with e -> e
                    let m = loadFailureMessage e
                    Expect.stringContains m ".tfrecord-" $"{fault.Kind}: names the object"
                    Expect.stringContains m "gave up after 3 failed answers (ObjectStoreOptions.Retries is 2)" $"{fault.Kind}: the setting"
                    Expect.equal (proxy.Counters.Requests - before) 6L $"{fault.Kind}: requests for the record"
            finally
                Samplers.Tfds.ObjectStoreSource.MaxFreeResumes <- saved)

        testCase "mode 2: 503 on every ranged record read past the retries fails the batch with the one-line 503 error naming the object and ObjectStoreOptions.Retries; once the 503s stop, batches work" <| s3rverOr (fun server ->
            server.Upload("digits", "tfds/data/synthetic_digits/1.0.0", digits ()) |> ignore
            let mutable throttled = false
            let script (r: ProxyRequest) = if throttled && shardTarget r then Nullable(Fault(FaultKind.SlowDown, 0.)) else Nullable()
            use proxy = FaultProxy.Start(Uri server.Endpoint, FaultSchedule(Script = Func<_, _> script))
            use cache = new TempDir()
            let _, localBytes = localTwoEpochs (Path.Combine(cache.Path, "local"))
            use s = openRemote (remoteLoad "s3://digits/tfds/data" (Path.Combine(cache.Path, "remote")) (remoteStore (string proxy.Uri) 1 0))
            throttled <- true
            let clock = Stopwatch.StartNew()
            let e = try (use b = s.GenerateBatchAt(0, 0) in failtestf "expected batch 0 to fail, got %d rows" b.Count) with e -> e
            clock.Stop()
            let m = loadFailureMessage e
            Expect.stringContains m "s3://digits/tfds/data/synthetic_digits/1.0.0/synthetic_digits-" "names the object"
            Expect.stringContains m "answered 503 SlowDown after the retries (ObjectStoreOptions.Retries); try again later" "the 503 line and the setting"
            Expect.isGreaterThan proxy.Counters.SlowDowns 1L "503s"
            Expect.equal proxy.Counters.Forwarded (proxy.Counters.Requests - proxy.Counters.SlowDowns) "no ranged read was answered"
            eprintfn "mode 2, 503 on every record read, Retries 1: batch 0 failed after %d ms; %O" clock.ElapsedMilliseconds proxy.Counters
            throttled <- false
            for i in [ 1; 0 ] do
                use b = s.GenerateBatchAt(0, i)
                Expect.sequenceEqual (batchBytes b) localBytes[i] $"batch {i} once the 503s stopped")

        testCase "an object replaced between a cut and its resume: the copy holds the new object whole, never a mix" <| s3rverOr (fun server ->
            server.Upload("digits", "p/synthetic_digits/1.0.0", digits ()) |> ignore
            let original = File.ReadAllBytes(Path.Combine(digits (), shard0))
            let replacement = reversedRecords original
            Expect.notEqual replacement original "another object of the same length and record count"
            let replace () =
                use c = server.Client()
                let req = Amazon.S3.Model.PutObjectRequest(BucketName = "digits", Key = "p/synthetic_digits/1.0.0/" + shard0, InputStream = new MemoryStream(replacement), UseChunkEncoding = false)
                c.PutObjectAsync(req).GetAwaiter().GetResult() |> ignore
            let script (r: ProxyRequest) =
                if r.Method = "GET" && r.Target.Contains shard0 then
                    match r.Occurrence with
                    | 1 -> Nullable(Fault(FaultKind.Reset, 0.5))
                    | 2 -> replace (); Nullable()
                    | _ -> Nullable()
                else Nullable()
            use proxy = FaultProxy.Start(Uri server.Endpoint, FaultSchedule(Script = Func<_, _> script))
            use cache = new TempDir()
            let store = ObjectStoreOptions(Endpoint = string proxy.Uri, Anonymous = true, CopyDir = Path.Combine(cache.Path, "copy"))
            use s = TFDatasetMultiShotMemorySampler.LoadAsync(samplerOptionsFor "synthetic_digits:1.0.0" "s3://digits/p" (Path.Combine(cache.Path, "c")) store).GetAwaiter().GetResult()
            let copied = Directory.GetDirectories(Path.Combine(cache.Path, "copy"), "1.0.0", SearchOption.AllDirectories) |> Array.exactlyOne
            Expect.sequenceEqual (File.ReadAllBytes(Path.Combine(copied, shard0))) replacement "the new object, whole"
            let ranges = proxy.Seen |> Seq.filter (fun r -> r.Target.Contains shard0) |> Seq.map (fun r -> r.Range) |> List.ofSeq
            Expect.equal ranges.Length 3 $"cut, resume (new ETag), again from 0: {ranges}"
            Expect.isNull ranges[0] "first from 0"
            Expect.stringStarts ranges[1] "bytes=" "then a resume"
            Expect.isNull ranges[2] "then from 0 again")

        testCase "cuts beyond the retries and 206s shorter than asked complete when each answer brings bytes (metadata and shards)" <| s3rverOr (fun server ->
            server.Upload("digits", "p/synthetic_digits/1.0.0", digits ()) |> ignore
            let shard1 = "synthetic_digits-train.tfrecord-00001-of-00002"
            let script (r: ProxyRequest) =
                if r.Method <> "GET" then Nullable()
                elif r.Target.EndsWith "dataset_info.json" && r.Occurrence <= 7 then Nullable(Fault(FaultKind.CutShort, 0.5))
                elif r.Target.Contains shard0 && r.Occurrence <= 7 then Nullable(Fault(FaultKind.CutShort, 0.3))
                elif r.Target.Contains shard1 && isNull r.Range then Nullable(Fault(FaultKind.Reset, 0.2))
                elif r.Target.Contains shard1 then Nullable(Fault(FaultKind.ShortRange, 0.99))
                else Nullable()
            use proxy = FaultProxy.Start(Uri server.Endpoint, FaultSchedule(Script = Func<_, _> script, MaxShortRangeBytes = 100_000))
            use cache = new TempDir()
            let localDigest, localBytes = fingerprint (samplerOptionsFor "synthetic_digits:1.0.0" (Path.Combine(repoRoot.Value, "data")) (Path.Combine(cache.Path, "local")) null)
            let digest, bytes =
                try fingerprint (samplerOptionsFor "synthetic_digits:1.0.0" "s3://digits/p" (Path.Combine(cache.Path, "remote")) (ObjectStoreOptions(Endpoint = string proxy.Uri, Anonymous = true)))
                with e -> failtestf "%s\ninjected:\n  %s" e.Message (proxy.Injected |> Seq.map string |> String.concat "\n  ")
            Expect.equal digest localDigest "plan digest"
            Expect.equal bytes localBytes "batch bytes"
            let c = proxy.Counters
            Expect.isGreaterThanOrEqual c.CutShorts 14L $"seven cuts each for the metadata file and a shard: {c}"
            Expect.isGreaterThanOrEqual c.ShortRanges 4L $"shard 1 came in short ranges: {c}"
            Expect.equal (proxy.Seen |> Seq.filter (fun r -> r.Target.Contains shard1 && isNull r.Range) |> Seq.length) 1 "shard 1 was never started again")
    
        testCase "cuts that bring bytes are free only up to a bound: past it they count, and the retries end the copy with an error" <| s3rverOr (fun server ->
            server.Upload("digits", "p/synthetic_digits/1.0.0", digits ()) |> ignore
            let script (r: ProxyRequest) =
                if r.Method = "GET" && r.Target.EndsWith "dataset_info.json" then Nullable(Fault(FaultKind.CutShort, 0.5)) else Nullable()
            use proxy = FaultProxy.Start(Uri server.Endpoint, FaultSchedule(Script = Func<_, _> script))
            use cache = new TempDir()
            let saved = Samplers.Tfds.ObjectStoreSource.MaxFreeResumes
            Samplers.Tfds.ObjectStoreSource.MaxFreeResumes <- 3
            try
                let e = loadFails (samplerOptionsFor "synthetic_digits:1.0.0" "s3://digits/p" cache.Path (ObjectStoreOptions(Endpoint = string proxy.Uri, Anonymous = true, Retries = 2))).Load
                Expect.isTrue (e :? DownloadException) $"{e}"
                Expect.stringContains e.Message "dataset_info.json" "names the object"
                Expect.stringContains e.Message "gave up after 3 failed attempts" "the retries"
                oneLine e.Message
                // Halving cuts: 3 free resumes, then 3 counted ones (1 + Retries).
                Expect.equal (proxy.Seen |> Seq.filter (fun r -> r.Target.EndsWith "dataset_info.json") |> Seq.length) 6 "requests for the file"
            finally
                Samplers.Tfds.ObjectStoreSource.MaxFreeResumes <- saved)

        testCase "mode 2: a body that goes silent mid-way is given up after ObjectStoreOptions.Timeout and resumed (the batch is the local one); silence on every answer fails the batch naming the object and the timeout" <| s3rverOr (fun server ->
            server.Upload("digits", "tfds/data/synthetic_digits/1.0.0", digits ()) |> ignore
            // Armed after the open (whose index scan read every shard): each shard's first record read stalls half-way
            // (every one, once stallAll is set).
            let mutable armed = false
            let mutable stallAll = false
            let stalledOnce = Collections.Concurrent.ConcurrentDictionary<string, bool>()
            let script (r: ProxyRequest) =
                if armed && shardTarget r && (stallAll || stalledOnce.TryAdd(r.Target, true)) then Nullable(Fault(FaultKind.Stall, 0.5)) else Nullable()
            use proxy = FaultProxy.Start(Uri server.Endpoint, FaultSchedule(Script = Func<_, _> script))
            use cache = new TempDir()
            let _, localBytes = localTwoEpochs (Path.Combine(cache.Path, "local"))
            // The timeout is far beyond a normal answer on a loaded machine and far below the stall (endless), so the only
            // way to pass is the timeout firing on the silent body and the read resuming.
            let store = ObjectStoreOptions(Endpoint = string proxy.Uri, Anonymous = true, Retries = 1, Timeout = TimeSpan.FromSeconds 2.,
                                           Access = ObjectStoreAccess.Remote, Remote = RemoteAccessOptions(ReadAheadBatches = 0))
            let load () = openRemote (remoteLoad "s3://digits/tfds/data" (Path.Combine(cache.Path, "remote")) store)
            // Were the timeout not to fire, a batch would wait forever: bound each, so that fails the test instead of hanging it.
            let within (what: string) (f: unit -> 'a) =
                let t = Threading.Tasks.Task.Run(fun () -> f ())
                if not (t.Wait(TimeSpan.FromSeconds 120.)) then failtestf "%s did not end within 120 s: the timeout did not fire" what
                t.Result
            use s = load ()
            armed <- true
            let b0 = within "batch 0" (fun () -> use b = s.GenerateBatchAt(0, 0) in batchBytes b)
            Expect.sequenceEqual b0 localBytes[0] "batch 0: the local bytes, read through the stalls"
            let c = proxy.Counters
            Expect.isGreaterThan c.Stalls 0L $"bodies went silent: {c}"
            Expect.isTrue (proxy.Injected |> Seq.forall (fun f -> f.Kind = FaultKind.Stall)) "only stalls"
            // Every answer silent: 1 + Retries answers time out, then the batch fails naming the object and the setting.
            stallAll <- true
            use fresh = load () // the local index is reused: the open reads no shard
            let e = try within "the failing batch" (fun () -> use _ = fresh.GenerateBatchAt(0, 1) in failtest "expected the batch to fail") with e -> e
            let m = loadFailureMessage e
            Expect.stringContains m ".tfrecord-" "names the object"
            Expect.stringContains m "stopped sending for longer than the timeout of 2 s (ObjectStoreOptions.Timeout)" "names the setting"
            Expect.stringContains m "gave up after 2 failed answers (ObjectStoreOptions.Retries is 1)" "the retries")
    ]
