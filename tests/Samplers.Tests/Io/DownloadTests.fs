module Samplers.Tests.Io.DownloadTests

// The downloader against a loopback HTTP server (127.0.0.1, a free port) that serves a bucket-shaped tree written by
// TfdsDatasetWriter, and misbehaves on request: cut responses, wrong bytes, wrong lengths, 404/403/5xx, slow replies,
// HTML pages. No test touches the real internet.

open System
open System.Collections.Concurrent
open System.IO
open System.Net
open System.Net.Sockets
open System.Text
open System.Threading
open System.Threading.Tasks
open Expecto
open Samplers
open Samplers.Imaging
open Samplers.Tfds
open Samplers.Tests.TestUtil

// ---------------------------------------------------------------------------------------------------------------
// A minimal HTTP/1.1 server: one request per connection (Connection: close), GET only.

/// A request the server received: the path (URL-decoded, without the leading '/'), the query and the Range header.
type Req = { Path: string; Query: string; Range: string }

/// What the server does with a request.
type Reply =
    /// Serve the file under the root; honour `Range: bytes=N-` with 206.
    | Serve
    /// Serve the file under the root but answer a Range request with the whole file (200).
    | ServeIgnoringRange
    /// An empty response with this status.
    | Status of int
    /// Announce the whole file (or the requested range), send only this many body bytes, then close.
    | Cut of int
    /// 200 with this content type and body.
    | Body of string * byte[]
    /// This status with this content type and body (an S3 error document).
    | StatusBody of int * string * byte[]
    /// Announce this many extra bytes in Content-Length, send the real file, then close.
    | LongerLength of int
    /// Serve normally with these extra headers.
    | WithHeaders of (string * string) list
    /// Wait, then reply.
    | Delay of int * Reply
    /// Send the headers of a full response and a few bytes, then stall this long before sending the rest.
    | Stall of int
    /// Send the headers of a full response, then one body byte every this many milliseconds.
    | Trickle of int
    /// 200 without Content-Length, then the file over and over until the client hangs up.
    | Endless

type Server(root: string) =
    let listener = new TcpListener(IPAddress.Loopback, 0)
    do listener.Start()
    let port = (listener.LocalEndpoint :?> IPEndPoint).Port
    let requests = ConcurrentQueue<Req>()
    let counts = ConcurrentDictionary<string, int>()
    let cts = new CancellationTokenSource()
    let mutable behave : Req -> int -> Reply = fun _ _ -> Serve

    let readHead (s: NetworkStream) = task {
        let buf = Collections.Generic.List<byte>()
        let one = Array.zeroCreate<byte> 1
        let mutable fin = false
        while not fin do
            let! n = s.ReadAsync(one, 0, 1)
            if n = 0 then fin <- true
            else
                buf.Add one[0]
                let c = buf.Count
                if c >= 4 && buf[c - 4] = 13uy && buf[c - 3] = 10uy && buf[c - 2] = 13uy && buf[c - 1] = 10uy then fin <- true
        return Encoding.ASCII.GetString(buf.ToArray()) }

    let header (status: int) (reason: string) (extra: (string * string) list) =
        let sb = StringBuilder()
        sb.Append($"HTTP/1.1 {status} {reason}\r\nConnection: close\r\n") |> ignore
        for (k, v) in extra do sb.Append($"{k}: {v}\r\n") |> ignore
        sb.Append("\r\n") |> ignore
        Encoding.ASCII.GetBytes(sb.ToString())

    let rec reply (s: NetworkStream) (req: Req) (r: Reply) : Task = task {
        let file = Path.Combine(root, req.Path.Replace('/', Path.DirectorySeparatorChar))
        let octet = "Content-Type", "application/octet-stream"
        let fileReply (honourRange: bool) (extra: (string * string) list) (send: byte[] -> int64 -> int64 -> Task) = task {
            if req.Path = "" || not (File.Exists file) then
                do! s.WriteAsync(header 404 "Not Found" [ "Content-Length", "0" ])
            else
                let bytes = File.ReadAllBytes file
                let total = int64 bytes.Length
                // "bytes=N-" or "bytes=N-M" (the fault proxy shortens ranges to the latter).
                let from, last =
                    if honourRange && req.Range.StartsWith "bytes=" then
                        match req.Range.Substring(6).Split('-') with
                        | [| a; "" |] -> Int64.Parse a, total - 1L
                        | [| a; b |] -> Int64.Parse a, min (Int64.Parse b) (total - 1L)
                        | _ -> 0L, total - 1L
                    else 0L, total - 1L
                if from >= total && from > 0L then
                    do! s.WriteAsync(header 416 "Range Not Satisfiable" [ "Content-Length", "0"; "Content-Range", $"bytes */{total}" ])
                elif from > 0L || req.Range.StartsWith "bytes=0-" && honourRange then
                    do! s.WriteAsync(header 206 "Partial Content" ([ octet; "Content-Length", string (last + 1L - from); "Content-Range", $"bytes {from}-{last}/{total}" ] @ extra))
                    do! send bytes from (last + 1L)
                else
                    do! s.WriteAsync(header 200 "OK" ([ octet; "Content-Length", string total ] @ extra))
                    do! send bytes 0L total }
        let sendAll (b: byte[]) (f: int64) (t: int64) = s.WriteAsync(b, int f, int (t - f))
        match r with
        | Serve -> do! fileReply true [] sendAll
        | ServeIgnoringRange -> do! fileReply false [] sendAll
        | WithHeaders h -> do! fileReply true h sendAll
        | Cut n -> do! fileReply true [] (fun b f t -> s.WriteAsync(b, int f, int (min (int64 n) (t - f))))
        | Status code ->
            do! s.WriteAsync(header code (if code = 404 then "Not Found" else "Status") [ "Content-Length", "0" ])
        | Body (ctype, body) ->
            do! s.WriteAsync(header 200 "OK" [ "Content-Type", ctype; "Content-Length", string body.Length ])
            do! s.WriteAsync(body)
        | StatusBody (code, ctype, body) ->
            do! s.WriteAsync(header code "Status" [ "Content-Type", ctype; "Content-Length", string body.Length ])
            do! s.WriteAsync(body)
        | LongerLength extra ->
            let bytes = File.ReadAllBytes file
            do! s.WriteAsync(header 200 "OK" [ octet; "Content-Length", string (bytes.Length + extra) ])
            do! s.WriteAsync(bytes)
        | Delay (ms, inner) ->
            do! Task.Delay(ms, cts.Token)
            do! reply s req inner
        | Trickle ms ->
            do! fileReply true [] (fun b f t -> task {
                let mutable i = f
                while i < t && not cts.IsCancellationRequested do
                    do! s.WriteAsync(b, int i, 1)
                    do! s.FlushAsync()
                    do! Task.Delay(ms, cts.Token)
                    i <- i + 1L })
        | Endless ->
            let bytes = File.ReadAllBytes file
            do! s.WriteAsync(header 200 "OK" [ "Content-Type", "application/octet-stream" ])
            while not cts.IsCancellationRequested do
                do! s.WriteAsync(bytes, 0, bytes.Length)
        | Stall ms ->
            do! fileReply true [] (fun b f t -> task {
                do! s.WriteAsync(b, int f, 10)
                do! s.FlushAsync()
                do! Task.Delay(ms, cts.Token)
                do! s.WriteAsync(b, int f + 10, int (t - f) - 10) }) }

    let handle (client: TcpClient) = task {
        try
            use client = client
            use s = client.GetStream()
            let! head = readHead s
            let lines = head.Split("\r\n")
            let target = lines[0].Split(' ')[1]
            let q = target.IndexOf '?'
            let path = Uri.UnescapeDataString(if q >= 0 then target.Substring(1, q - 1) else target.Substring 1)
            let query = if q >= 0 then Uri.UnescapeDataString(target.Substring(q + 1)) else ""
            let range =
                lines |> Array.tryPick (fun l -> if l.StartsWith("Range:", StringComparison.OrdinalIgnoreCase) then Some (l.Substring(6).Trim()) else None)
            let req = { Path = path; Query = query; Range = defaultArg range "" }
            requests.Enqueue req
            let key = path + "?" + query
            let n = counts.AddOrUpdate(key, 1, fun _ c -> c + 1)
            do! reply s req (behave req n)
            do! s.FlushAsync()
            client.Client.Shutdown SocketShutdown.Send
        with _ -> () }

    let loop =
        task {
            try
                while not cts.IsCancellationRequested do
                    let! c = listener.AcceptTcpClientAsync(cts.Token)
                    handle c |> ignore
            with _ -> () }

    /// The base URL, e.g. http://127.0.0.1:41234.
    member _.Url = $"http://127.0.0.1:{port}"
    /// The requests received so far, in arrival order.
    member _.Requests = List.ofSeq requests
    /// Requests for this path (e.g. a shard's path under the root).
    member _.RequestsFor(path: string) = requests |> Seq.filter (fun r -> r.Path = path) |> List.ofSeq
    /// Sets the behaviour: the request and how many times (1, 2, ...) its path+query has been asked for.
    member _.Behave with set (f: Req -> int -> Reply) = behave <- f
    interface IDisposable with
        member _.Dispose() =
            cts.Cancel()
            listener.Stop()

// ---------------------------------------------------------------------------------------------------------------
// The served dataset: "toy" 1.0.0, a named ClassLabel and a float tensor; train in 2 shards, test in 1.

let features =
    [ FeatureSpec("label", FeatureKind.ClassLabel, "", DType.Int64, [||], NumClasses = 3L, ClassNames = [| "cat"; "dog"; "emu" |])
      FeatureSpec("x", FeatureKind.Tensor, "", DType.Float32, [| 64 |]) ]

let example (i: int) =
    ExampleBuilder().AddLabel("label", int64 (i % 3)).AddFloats("x", Array.init 64 (fun k -> float32 (i * 64 + k))).ToByteArray()

let trainRecords = List.init 120 example
let testRecords = List.init 40 (fun i -> example (1000 + i))

/// Writes the bucket tree under `root`: datasets/<name>/<version>/...; returns the version folder.
let writeBucket (root: string) (name: string) (version: string) (configure: TfdsDatasetWriter -> TfdsDatasetWriter) =
    let dir = Path.Combine(root, "datasets", name, version)
    let w = configure (TfdsDatasetWriter(dir, name, version, features))
    w.WriteSplit("train", ResizeArray trainRecords, 2) |> ignore
    w.WriteSplit("test", ResizeArray testRecords, 1) |> ignore
    w.Complete()
    dir

let rel name version file = $"datasets/{name}/{version}/{file}"
let train0 = rel "toy" "1.0.0" "toy-train.tfrecord-00000-of-00002"
let train1 = rel "toy" "1.0.0" "toy-train.tfrecord-00001-of-00002"
let test0 = rel "toy" "1.0.0" "toy-test.tfrecord-00000-of-00001"

/// A bucket with toy 1.0.0, a server over it and a fresh data directory.
type Fixture() =
    let bucket = new TempDir()
    let data = new TempDir()
    let version = writeBucket bucket.Path "toy" "1.0.0" id
    let server = new Server(bucket.Path)
    member _.Bucket = bucket.Path
    member _.VersionSource = version
    member _.Data = data.Path
    member _.Server = server
    /// A request against this fixture's server and data directory (3 attempts, 5 ms backoff, 5 s timeout, 3 at once).
    member _.Request(name: string, ?splits: string[], ?maxParallel: int, ?timeoutMs: float, ?retries: int, ?baseUrl: string) =
        TfdsDownloadOptions(name, DataDir = data.Path, BaseUrl = defaultArg baseUrl server.Url, Retries = defaultArg retries 2,
                        RetryDelay = TimeSpan.FromMilliseconds 5.0, Timeout = TimeSpan.FromMilliseconds(defaultArg timeoutMs 5000.0),
                        MaxDegreeOfParallelism = defaultArg maxParallel 3, Splits = Option.toObj splits)
    interface IDisposable with
        member _.Dispose() =
            (server :> IDisposable).Dispose()
            (bucket :> IDisposable).Dispose()
            (data :> IDisposable).Dispose()

let download (req: TfdsDownloadOptions) = TfdsDownloader.DownloadAsync(req).GetAwaiter().GetResult()

/// Runs the download and returns the exception of type 'E it raises.
let failsWith<'E when 'E :> exn> (req: TfdsDownloadOptions) (what: string) : 'E =
    throwsWith<'E> (fun () -> download req |> ignore) what

/// The recorded progress reports (synchronous, unlike Progress<T>).
type Recorder() =
    let items = ConcurrentQueue<DownloadProgress>()
    member _.Items = List.ofSeq items
    interface IProgress<DownloadProgress> with
        member _.Report v = items.Enqueue v

let readSplit (dir: DatasetBuilderDir) (split: string) =
    dir.ShardPaths split |> Seq.collect TfRecordReader.ReadAllRecords |> List.ofSeq

let expectNoVersionDir (f: Fixture) =
    Expect.isFalse (Directory.Exists(Path.Combine(f.Data, "toy", "1.0.0"))) "no version directory after a failed download"

let expectContains (text: string) (phrase: string) =
    Expect.stringContains text phrase $"message should contain '{phrase}'"

let isShard (r: Req) = r.Path.Contains ".tfrecord-"

// ---------------------------------------------------------------------------------------------------------------
// Child mode: two processes downloading the same dataset at once.

/// args: dataDir baseUrl; prints the version directory.
let childDownload (args: string[]) =
    try
        let req = TfdsDownloadOptions("toy:1.0.0", DataDir = args[0], BaseUrl = args[1], RetryDelay = TimeSpan.FromMilliseconds 5.0, MaxDegreeOfParallelism = 2)
        printfn "%s" (download req)
        0
    with e ->
        eprintfn "%O" e
        1

// ---------------------------------------------------------------------------------------------------------------

[<Tests>]
let tests =
    testList "Io.Download" [
        testCase "full download: metadata first, every shard once, then the catalog and the reader load it" <| fun () ->
            use f = new Fixture()
            let progress = Recorder()
            let dir = TfdsDownloader.DownloadAsync(f.Request("toy:1.0.0"), progress).GetAwaiter().GetResult()
            Expect.equal dir (Path.Combine(f.Data, "toy", "1.0.0")) "returns the version directory"
            let reqs = f.Server.Requests
            Expect.equal (reqs |> List.take 2 |> List.map (fun r -> r.Path)) [ rel "toy" "1.0.0" "dataset_info.json"; rel "toy" "1.0.0" "features.json" ] "metadata first"
            Expect.equal (reqs |> List.filter isShard |> List.map (fun r -> r.Path) |> List.sort) (List.sort [ train0; train1; test0 ]) "each shard exactly once"
            Expect.equal (reqs |> List.filter (fun r -> r.Path.EndsWith ".labels.txt") |> List.map (fun r -> r.Path)) [ rel "toy" "1.0.0" "label.labels.txt" ] "the labels file"
            Expect.equal reqs.Length 6 "nothing else"
            let opened = Catalog.Open(f.Data, "toy:1.0.0")
            Expect.equal (readSplit opened "train") trainRecords "train records"
            Expect.equal (readSplit opened "test") testRecords "test records"
            Expect.equal (List.ofSeq (opened.FindFeature("label").ClassNames)) [ "cat"; "dog"; "emu" ] "label names"
            let sel = opened.Select "train[:50%]+test"
            Expect.equal sel.NumExamples 100L "selection over the downloaded shards (60 + 40)"
            let leftovers = Directory.GetDirectories(Path.Combine(f.Data, "toy")) |> Array.map Path.GetFileName
            Expect.equal leftovers [| "1.0.0" |] "no temporary folder left"
            Expect.isEmpty (Directory.GetFiles(dir, "*.part")) "no part files"
            let last = List.last progress.Items
            let shardBytes = Directory.GetFiles dir |> Array.filter (fun p -> p.Contains ".tfrecord-" || p.EndsWith ".labels.txt") |> Array.sumBy (fun p -> FileInfo(p).Length)
            Expect.equal (last.FilesDone, last.FilesTotal) (6, 6) "files done = total (2 metadata + 1 labels + 3 shards)"
            Expect.equal last.BytesDone shardBytes "bytes done = labels + shard bytes"
            Expect.equal last.BytesExpected shardBytes "bytes expected = announced sizes"

        testCase "a second download of a complete version makes no request" <| fun () ->
            use f = new Fixture()
            download (f.Request("toy:1.0.0")) |> ignore
            let before = f.Server.Requests.Length
            download (f.Request("toy:1.0.0")) |> ignore
            Expect.equal f.Server.Requests.Length before "no new request"

        testCase "requested splits: only their shards; EnsureAvailableAsync adds a missing split later and then stays offline" <| fun () ->
            use f = new Fixture()
            download (f.Request("toy:1.0.0", splits = [| "test[:10]" |])) |> ignore
            Expect.equal (f.Server.Requests |> List.filter isShard |> List.map (fun r -> r.Path)) [ test0 ] "only the test shard"
            let opened = Catalog.Open(f.Data, "toy:1.0.0")
            Expect.equal (readSplit opened "test") testRecords "test loads"
            let d = TfdsDownloader.EnsureAvailableAsync(f.Request("toy:1.0.0", splits = [| "train" |])).GetAwaiter().GetResult()
            Expect.equal (f.Server.Requests |> List.filter isShard |> List.map (fun r -> r.Path) |> List.sort) (List.sort [ test0; train0; train1 ]) "train shards added"
            Expect.equal (readSplit d "train") trainRecords "train loads"
            let before = f.Server.Requests.Length
            let again = TfdsDownloader.EnsureAvailableAsync(f.Request("toy", splits = [| "train"; "test" |])).GetAwaiter().GetResult()
            Expect.equal again.Version "1.0.0" "local copy found"
            Expect.equal f.Server.Requests.Length before "no request when everything is local"

        testCase "EnsureAvailableAsync downloads an absent dataset and returns it opened" <| fun () ->
            use f = new Fixture()
            let d = TfdsDownloader.EnsureAvailableAsync(f.Request("toy:1.0.0")).GetAwaiter().GetResult()
            Expect.equal d.FullName "toy:1.0.0" "opened"
            Expect.equal (readSplit d "test") testRecords "records"

        testCase "a response cut mid-file is resumed with a Range request" <| fun () ->
            use f = new Fixture()
            let size = FileInfo(Path.Combine(f.Bucket, train1)).Length
            let half = int size / 2
            f.Server.Behave <- fun r n -> if r.Path = train1 && n = 1 then Cut half else Serve
            let d = download (f.Request("toy:1.0.0"))
            let reqs = f.Server.RequestsFor train1
            Expect.equal (reqs |> List.map (fun r -> r.Range)) [ ""; $"bytes={half}-" ] "second attempt asks for the rest"
            Expect.equal (TfRecordReader.ReadAllRecords(Path.Combine(d, "toy-train.tfrecord-00001-of-00002")) |> List.ofSeq) (List.skip 60 trainRecords) "the file is whole"

        testCase "a server that answers a Range request with 200 restarts the file" <| fun () ->
            use f = new Fixture()
            f.Server.Behave <- fun r n -> if r.Path = train0 && n = 1 then Cut 100 elif r.Path = train0 then ServeIgnoringRange else Serve
            let d = download (f.Request("toy:1.0.0"))
            Expect.equal (List.item 1 (f.Server.RequestsFor train0)).Range "bytes=100-" "asked to resume"
            Expect.equal (readSplit (Catalog.Open(f.Data, "toy:1.0.0")) "train") trainRecords "records intact"
            ignore d

        testCase "wrong bytes: a shard whose CRC fails is retried, then refused; no version directory" <| fun () ->
            use f = new Fixture()
            let bad = File.ReadAllBytes(Path.Combine(f.Bucket, test0))
            bad[40] <- bad[40] ^^^ 0xFFuy
            f.Server.Behave <- fun r _ -> if r.Path = test0 then Body("application/octet-stream", bad) else Serve
            let e = failsWith<DataFormatException> (f.Request("toy:1.0.0")) "corrupt shard"
            expectContains e.Message "corrupted record"
            expectContains e.Message (f.Server.Url + "/" + test0)
            expectContains e.Message "after 3 attempts"
            Expect.equal (f.Server.RequestsFor test0).Length 3 "retried"
            expectNoVersionDir f

        testCase "wrong length: a Content-Length longer than the body is an error naming both lengths" <| fun () ->
            use f = new Fixture()
            let size = FileInfo(Path.Combine(f.Bucket, test0)).Length
            f.Server.Behave <- fun r _ -> if r.Path = test0 then LongerLength 10 else Serve
            let e = failsWith<DownloadException> (f.Request("toy:1.0.0")) "short body"
            expectContains e.Message $"of {size + 10L} bytes"
            expectContains e.Message test0
            expectNoVersionDir f

        testCase "wrong length: a shard cut short but served consistently fails record verification" <| fun () ->
            use f = new Fixture()
            let full = File.ReadAllBytes(Path.Combine(f.Bucket, test0))
            f.Server.Behave <- fun r _ -> if r.Path = test0 then Body("application/octet-stream", full[.. full.Length - 8]) else Serve
            let e = failsWith<DataFormatException> (f.Request("toy:1.0.0")) "truncated shard"
            expectContains e.Message "truncated record"
            expectNoVersionDir f

        testCase "a shard with a record more than shardLengths fails the count check" <| fun () ->
            use f = new Fixture()
            let extra = Array.append (File.ReadAllBytes(Path.Combine(f.Bucket, test0))) (TfRecordWriter.Frame(ReadOnlySpan(example 5)))
            f.Server.Behave <- fun r _ -> if r.Path = test0 then Body("application/octet-stream", extra) else Serve
            let e = failsWith<DataFormatException> (f.Request("toy:1.0.0")) "record count"
            expectContains e.Message "holds 41 records, but dataset_info.json lists 40"
            expectNoVersionDir f

        testCase "404 on dataset_info.json: not published, naming the URL" <| fun () ->
            use f = new Fixture()
            let e = failsWith<DatasetNotFoundException> (f.Request("toy:2.0.0")) "unpublished version"
            expectContains e.Message (f.Server.Url + "/datasets/toy/2.0.0/dataset_info.json")
            expectContains e.Message "is not published"
            Expect.isFalse (Directory.Exists(Path.Combine(f.Data, "toy", "2.0.0"))) "nothing made"

        testCase "404 on a shard: an error naming the shard's URL and split" <| fun () ->
            use f = new Fixture()
            File.Delete(Path.Combine(f.Bucket, train1))
            let e = failsWith<DownloadException> (f.Request("toy:1.0.0")) "missing shard"
            expectContains e.Message (f.Server.Url + "/" + train1)
            expectContains e.Message "split 'train'"
            Expect.equal e.StatusCode (Nullable HttpStatusCode.NotFound) "status"
            expectNoVersionDir f

        testCase "404 on a labels file is normal: names default to 0..N-1" <| fun () ->
            use f = new Fixture()
            File.Delete(Path.Combine(f.VersionSource, "label.labels.txt"))
            let d = download (f.Request("toy:1.0.0"))
            let opened = Catalog.Open(f.Data, "toy:1.0.0")
            Expect.equal (List.ofSeq (opened.FindFeature("label").ClassNames)) [ "0"; "1"; "2" ] "default names"
            Expect.isFalse (File.Exists(Path.Combine(d, "label.labels.txt"))) "no labels file"

        testCase "a labels file with the wrong number of names is refused, and fetched again next time" <| fun () ->
            use f = new Fixture()
            f.Server.Behave <- fun r n -> if r.Path.EndsWith "label.labels.txt" && n = 1 then Body("text/plain", "cat\ndog\n"B) else Serve
            let e = failsWith<DataFormatException> (f.Request("toy:1.0.0")) "two names for three classes"
            expectContains e.Message "has 2 class names, but features.json declares numClasses = 3"
            expectNoVersionDir f
            download (f.Request("toy:1.0.0")) |> ignore
            Expect.equal (List.ofSeq (Catalog.Open(f.Data, "toy:1.0.0").FindFeature("label").ClassNames)) [ "cat"; "dog"; "emu" ] "good names after the retry"

        testCase "404 on features.json: refused as a TFDS <= 3.2.1 version" <| fun () ->
            use f = new Fixture()
            File.Delete(Path.Combine(f.VersionSource, "features.json"))
            let e = failsWith<DatasetNotFoundException> (f.Request("toy:1.0.0")) "no features.json"
            expectContains e.Message "TFDS <= 3.2.1"
            expectContains e.Message "features.json"

        testCase "500 then 200: retried with backoff and succeeds" <| fun () ->
            use f = new Fixture()
            f.Server.Behave <- fun r n -> if (r.Path.EndsWith "dataset_info.json" || r.Path = train0) && n = 1 then Status 500 else Serve
            download (f.Request("toy:1.0.0")) |> ignore
            Expect.equal (f.Server.RequestsFor(rel "toy" "1.0.0" "dataset_info.json")).Length 2 "dataset_info retried once"
            Expect.equal (f.Server.RequestsFor train0).Length 2 "shard retried once"

        testCase "503 every time: gives up after the retries with the status" <| fun () ->
            use f = new Fixture()
            f.Server.Behave <- fun _ _ -> Status 503
            let e = failsWith<DownloadException> (f.Request("toy:1.0.0", retries = 1)) "server down"
            Expect.equal e.StatusCode (Nullable HttpStatusCode.ServiceUnavailable) "status"
            expectContains e.Message "503"
            expectContains e.Message "after 2 attempts"
            Expect.equal f.Server.Requests.Length 2 "1 + Retries requests"

        testCase "403: refused at once (no retry), suggesting a prepared copy" <| fun () ->
            use f = new Fixture()
            f.Server.Behave <- fun _ _ -> Status 403
            let e = failsWith<DownloadException> (f.Request("toy:1.0.0")) "forbidden"
            expectContains e.Message "403"
            expectContains e.Message "TfdsLoadOptions.DataDir"
            Expect.equal f.Server.Requests.Length 1 "no retry"

        testCase "slow headers past the timeout: retried, then a timeout error" <| fun () ->
            use f = new Fixture()
            f.Server.Behave <- fun _ _ -> Delay(60_000, Serve)
            let sw = Diagnostics.Stopwatch.StartNew()
            let e = failsWith<DownloadException> (f.Request("toy:1.0.0", timeoutMs = 200.0, retries = 1)) "slow"
            expectContains e.Message "no response within the timeout of 0.2 s"
            // Not a speed check: waiting for the server would take 2 x 60 s; honouring the 0.2 s timeout takes well
            // under a second, so 20 s separates the two on any machine, however loaded.
            Expect.isLessThan sw.ElapsedMilliseconds 20_000L "did not wait for the slow server"
            Expect.equal f.Server.Requests.Length 2 "retried once"

        testCase "a body that stalls past the timeout is resumed on the next attempt" <| fun () ->
            use f = new Fixture()
            // The stall (60 s) is far beyond the timeout (2 s), and the timeout far beyond a normal reply on a loaded
            // machine, so the only way to pass is the timeout firing on the stalled body and the resume.
            f.Server.Behave <- fun r n -> if r.Path = test0 && n = 1 then Stall 60_000 else Serve
            let d = download (f.Request("toy:1.0.0", timeoutMs = 2000.0))
            Expect.equal ((f.Server.RequestsFor test0) |> List.map (fun r -> r.Range)) [ ""; "bytes=10-" ] "resumed after the 10 bytes received"
            Expect.equal (readSplit (Catalog.Open(f.Data, "toy:1.0.0")) "test") testRecords "records"
            ignore d

        testCase "an HTML page (Content-Type text/html) is refused, naming the base URL" <| fun () ->
            use f = new Fixture()
            f.Server.Behave <- fun _ _ -> Body("text/html; charset=utf-8", "<html><body>Sign in</body></html>"B)
            let e = failsWith<DownloadException> (f.Request("toy:1.0.0")) "portal"
            expectContains e.Message "HTML page"
            expectContains e.Message TfdsDownloader.BaseUrlEnvironmentVariable
            expectContains e.Message f.Server.Url

        testCase "a JSON file whose body starts with '<' is refused as HTML" <| fun () ->
            use f = new Fixture()
            f.Server.Behave <- fun _ _ -> Body("application/json", "\n<!DOCTYPE html><p>error</p>"B)
            let e = failsWith<DownloadException> (f.Request("toy:1.0.0")) "html body"
            expectContains e.Message "body starts with '<!doctype html>"

        testCase "no network: names the base URL and suggests a data directory (a library setting) and SAMPLERS_TFDS_BASE_URL" <| fun () ->
            use f = new Fixture()
            let closed =
                let l = new TcpListener(IPAddress.Loopback, 0)
                l.Start()
                let p = (l.LocalEndpoint :?> IPEndPoint).Port
                l.Stop()
                $"http://127.0.0.1:{p}"
            let e = failsWith<DownloadException> (f.Request("toy:1.0.0", baseUrl = closed, retries = 1)) "refused"
            expectContains e.Message $"could not reach {closed}"
            expectContains e.Message "TfdsLoadOptions.DataDir"
            expectContains e.Message "SAMPLERS_TFDS_BASE_URL"
            Expect.isNull (box e.StatusCode) "no status"

        testCase "a server that never answered is not retried: an absent network fails at once" <| fun () ->
            use f = new Fixture()
            let closed =
                let l = new TcpListener(IPAddress.Loopback, 0)
                l.Start()
                let p = (l.LocalEndpoint :?> IPEndPoint).Port
                l.Stop()
                $"http://127.0.0.1:{p}"
            // An hour between attempts: were a refused connection retried, the call would wait, and the (generous) token
            // below would end it with OperationCanceledException instead of the DownloadException expected.
            let req = TfdsDownloadOptions("toy:1.0.0", DataDir = f.Data, BaseUrl = closed, Retries = 4, RetryDelay = TimeSpan.FromHours 1.0)
            use cts = new CancellationTokenSource(TimeSpan.FromSeconds 60.0)
            let e = throwsWith<DownloadException> (fun () -> TfdsDownloader.DownloadAsync(req, null, cts.Token).GetAwaiter().GetResult() |> ignore) "refused"
            expectContains e.Message "not retried"
            Expect.isFalse (e.Message.Contains "gave up after") "no retry loop"

        testCase "published checksums (x-goog-hash) are checked" <| fun () ->
            use f = new Fixture()
            let crcOf (path: string) =
                let b = Array.zeroCreate<byte> 4
                Buffers.Binary.BinaryPrimitives.WriteUInt32BigEndian(b.AsSpan(), Crc32C.Compute(ReadOnlySpan(File.ReadAllBytes path)))
                Convert.ToBase64String b
            let good = crcOf (Path.Combine(f.Bucket, test0))
            f.Server.Behave <- fun r _ -> if r.Path = test0 then WithHeaders [ "x-goog-hash", $"crc32c={good},md5=ignored==" ] else Serve
            download (f.Request("toy:1.0.0")) |> ignore
            use g = new Fixture()
            g.Server.Behave <- fun r _ -> if r.Path = test0 then WithHeaders [ "x-goog-hash", "crc32c=AAAAAA==" ] else Serve
            let e = failsWith<DataFormatException> (g.Request("toy:1.0.0")) "bad checksum"
            expectContains e.Message "x-goog-hash"
            expectContains e.Message $"CRC-32C is {good}"

        testCase "a dataset in another file format is refused before any shard is fetched" <| fun () ->
            use bucket = new TempDir()
            use data = new TempDir()
            let dir = Path.Combine(bucket.Path, "datasets", "toy", "1.0.0")
            let w = TfdsDatasetWriter(dir, "toy", "1.0.0", features, FileFormat = "array_record")
            w.WriteSplit("train", ResizeArray trainRecords, 1) |> ignore
            w.Complete()
            use server = new Server(bucket.Path)
            let e = failsWith<DataFormatException> (TfdsDownloadOptions("toy:1.0.0", DataDir = data.Path, BaseUrl = server.Url)) "array_record"
            expectContains e.Message "ArrayRecord not supported"
            Expect.isEmpty (server.Requests |> List.filter isShard) "no shard requested"

        testCase "a split the dataset lacks: the message lists the splits" <| fun () ->
            use f = new Fixture()
            let e = failsWith<DatasetNotFoundException> (f.Request("toy:1.0.0", splits = [| "validation" |])) "no split"
            expectContains e.Message "Split 'validation' does not exist"
            expectContains e.Message "train, test"

        testCase "cancellation leaves no version directory; the next download resumes the partial file" <| fun () ->
            use f = new Fixture()
            use cts = new CancellationTokenSource()
            // The test shard sends 10 bytes and stalls; the caller cancels while it waits.
            f.Server.Behave <- fun r n ->
                if r.Path = test0 && n = 1 then
                    cts.CancelAfter 300
                    Stall 60_000
                else Serve
            let t = TfdsDownloader.DownloadAsync(f.Request("toy:1.0.0"), null, cts.Token)
            let sw = Diagnostics.Stopwatch.StartNew()
            throwsWith<OperationCanceledException> (fun () -> t.GetAwaiter().GetResult() |> ignore) "cancelled" |> ignore
            // Not a speed check: ignoring the token would wait out the 60 s stall (the download timeout is 5 s, and a
            // timeout is a DownloadException, not a cancellation); 20 s separates the two on any machine.
            Expect.isLessThan sw.ElapsedMilliseconds 20_000L "stopped promptly"
            expectNoVersionDir f
            let part = Path.Combine(f.Data, "toy", "1.0.0" + TfdsDownloader.TemporarySuffix, "toy-test.tfrecord-00000-of-00001.part")
            Expect.equal (FileInfo(part).Length) 10L "the 10 bytes received are kept"
            let before = (f.Server.RequestsFor train0).Length
            download (f.Request("toy:1.0.0")) |> ignore
            Expect.equal (List.last (f.Server.RequestsFor test0)).Range "bytes=10-" "resumed from the part file"
            Expect.equal (f.Server.RequestsFor train0).Length before "finished shards are not fetched again"
            Expect.equal (readSplit (Catalog.Open(f.Data, "toy:1.0.0")) "test") testRecords "records"
            Expect.isFalse (Directory.Exists(Path.Combine(f.Data, "toy", "1.0.0" + TfdsDownloader.TemporarySuffix))) "temporary folder gone"

        testCase "a stale part file that does not match is detected, deleted and fetched again whole" <| fun () ->
            use f = new Fixture()
            let temp = Path.Combine(f.Data, "toy", "1.0.0" + TfdsDownloader.TemporarySuffix)
            Directory.CreateDirectory temp |> ignore
            File.WriteAllBytes(Path.Combine(temp, "toy-test.tfrecord-00000-of-00001.part"), Array.create 100 0xFFuy)
            download (f.Request("toy:1.0.0")) |> ignore
            Expect.equal ((f.Server.RequestsFor test0) |> List.map (fun r -> r.Range)) [ "bytes=100-"; "" ] "resumed, failed verification, restarted"
            Expect.equal (readSplit (Catalog.Open(f.Data, "toy:1.0.0")) "test") testRecords "records"

        testCase "two downloads of the same version at once in one process: both succeed, each file fetched once" <| fun () ->
            use f = new Fixture()
            f.Server.Behave <- fun _ _ -> Delay(30, Serve)
            let a = TfdsDownloader.DownloadAsync(f.Request("toy:1.0.0"))
            let b = TfdsDownloader.DownloadAsync(f.Request("toy:1.0.0"))
            let results = Task.WhenAll(a, b).GetAwaiter().GetResult()
            Expect.equal results[0] results[1] "same directory"
            Expect.equal (f.Server.RequestsFor test0).Length 1 "the second waited and found the first's result"
            Expect.equal (readSplit (Catalog.Open(f.Data, "toy:1.0.0")) "train") trainRecords "records"

        testCase "two processes downloading the same dataset at once both succeed" <| fun () ->
            use f = new Fixture()
            // The first dataset_info.json answer waits 1.5 s, so both processes are running while the first downloads.
            f.Server.Behave <- fun r n -> if r.Path.EndsWith "dataset_info.json" && n = 1 then Delay(1500, Serve) else Serve
            let run () = Task.Run(fun () -> runChild "download" [ f.Data; f.Server.Url ] 60_000)
            let results = Task.WhenAll(run (), run ()).GetAwaiter().GetResult()
            for (code, out, err) in results do
                Expect.equal code 0 $"child succeeded: {err}"
                Expect.equal (out.Trim()) (Path.Combine(f.Data, "toy", "1.0.0")) "child printed the version directory"
            Expect.equal (readSplit (Catalog.Open(f.Data, "toy:1.0.0")) "test") testRecords "records"
            Expect.equal (Directory.GetDirectories(Path.Combine(f.Data, "toy")) |> Array.map Path.GetFileName) [| "1.0.0" |] "no temporary folder"
            Expect.equal (f.Server.RequestsFor test0).Length 1 "the second process waited for the lock and found the first's result"
            Expect.equal (f.Server.RequestsFor(rel "toy" "1.0.0" "dataset_info.json")).Length 1 "metadata fetched once"

        testCase "without a version the bucket is listed (paged) and the highest version taken" <| fun () ->
            use f = new Fixture()
            let page1 = """<?xml version="1.0" encoding="UTF-8"?><ListBucketResult xmlns="http://doc.s3.amazonaws.com/2006-03-01"><Name>b</Name><Prefix>datasets/toy/</Prefix><IsTruncated>true</IsTruncated><NextMarker>datasets/toy/0.9.0/</NextMarker><CommonPrefixes><Prefix>datasets/toy/0.9.0/</Prefix></CommonPrefixes></ListBucketResult>"""
            let page2 = """<?xml version="1.0" encoding="UTF-8"?><ListBucketResult xmlns="http://doc.s3.amazonaws.com/2006-03-01"><Name>b</Name><IsTruncated>false</IsTruncated><CommonPrefixes><Prefix>datasets/toy/1.0.0/</Prefix></CommonPrefixes><CommonPrefixes><Prefix>datasets/toy/2.0.0.incompleteAB12CD/</Prefix></CommonPrefixes><Contents><Key>datasets/toy/diffs/x</Key></Contents></ListBucketResult>"""
            f.Server.Behave <- fun r _ ->
                if r.Path = "" && r.Query.Contains "prefix=datasets/toy/" then
                    Body("application/xml", Encoding.UTF8.GetBytes(if r.Query.Contains "marker=" then page2 else page1))
                else Serve
            let dir = download (f.Request("toy"))
            Expect.equal (Path.GetFileName dir) "1.0.0" "highest valid version"
            let listings = f.Server.Requests |> List.filter (fun r -> r.Path = "")
            Expect.equal (listings |> List.map (fun r -> r.Query.Contains "marker=datasets/toy/0.9.0/")) [ false; true ] "second page from NextMarker"
            let e = failsWith<DatasetNotFoundException> (f.Request("toy:3.*.*")) "no match"
            expectContains e.Message "Versions published: 1.0.0, 0.9.0"

        testCase "listing: a truncated page whose marker does not advance fails at the second request" <| fun () ->
            use f = new Fixture()
            let stuck = """<?xml version="1.0" encoding="UTF-8"?><ListBucketResult><IsTruncated>true</IsTruncated><NextMarker>datasets/toy/0.9.0/</NextMarker><CommonPrefixes><Prefix>datasets/toy/0.9.0/</Prefix></CommonPrefixes></ListBucketResult>"""
            f.Server.Behave <- fun r _ -> if r.Path = "" then Body("application/xml", Encoding.UTF8.GetBytes stuck) else Serve
            let e = failsWith<DownloadException> (f.Request("toy")) "stuck marker"
            expectContains e.Message "does not advance past 'datasets/toy/0.9.0/'"
            Expect.equal (f.Server.Requests |> List.filter (fun r -> r.Path = "")).Length 2 "two listing requests, not the page cap"
            expectNoVersionDir f

        testCase "listing: a page above 16 MiB is refused" <| fun () ->
            use f = new Fixture()
            let big = Array.create (int TfdsDownloader.MaxListingPageBytes + 1) (byte ' ')
            let head = Encoding.UTF8.GetBytes "<ListBucketResult>"
            Array.blit head 0 big 0 head.Length
            f.Server.Behave <- fun r _ -> if r.Path = "" then Body("application/xml", big) else Serve
            let e = failsWith<DownloadException> (f.Request("toy")) "oversized page"
            expectContains e.Message "more than the 16777216 bytes a bucket listing page may have"
            expectNoVersionDir f

        testCase "listing: pages under 16 MiB each whose sum passes 64 MiB are refused at the total (about 70 MiB moved)" <| fun () ->
            use f = new Fixture()
            // Page k answers the marker of page k - 1 with the next marker; each is 15 MiB of XML (whitespace between the
            // elements); the ninth would end the listing with a version, so without the total bound the download succeeds.
            let pageBytes = 15 <<< 20
            let page (k: int) (last: bool) =
                let truncated = if last then "false" else "true"
                let entry = if last then "1.0.0" else $"0.0.{k}"
                let xml =
                    $"<?xml version=\"1.0\" encoding=\"UTF-8\"?><ListBucketResult><IsTruncated>{truncated}</IsTruncated>" +
                    $"<NextMarker>datasets/toy/{k:D4}/</NextMarker><CommonPrefixes><Prefix>datasets/toy/{entry}/</Prefix></CommonPrefixes>"
                let body = Array.create pageBytes (byte ' ')
                let head = Encoding.UTF8.GetBytes xml
                let tail = Encoding.UTF8.GetBytes "</ListBucketResult>"
                Array.blit head 0 body 0 head.Length
                Array.blit tail 0 body (pageBytes - tail.Length) tail.Length
                body
            f.Server.Behave <- fun r _ ->
                if r.Path <> "" then Serve
                else
                    let m = RegularExpressions.Regex.Match(r.Query, @"marker=datasets/toy/(\d{4})/")
                    let k = if m.Success then int m.Groups[1].Value + 1 else 1
                    Body("application/xml", page k (k >= 9))
            let e = failsWith<DownloadException> (f.Request("toy")) "listing over the total"
            expectContains e.Message "at most 67108864 bytes over all its pages"
            expectContains e.Message "the 4 pages before took 62914560"
            let listings = f.Server.Requests |> List.filter (fun r -> r.Path = "")
            Expect.equal listings.Length 5 "four pages read, the fifth refused by its length"
            Expect.isFalse (f.Server.Requests |> List.exists isShard) "nothing downloaded"
            expectNoVersionDir f

        testCase "credentials in the base URL are refused up front, naming the option, without the secret" <| fun () ->
            use f = new Fixture()
            let url = f.Server.Url.Replace("http://", "http://user:s3cr3t@")
            let e = throwsWith<ArgumentException> (fun () -> download (f.Request("toy:1.0.0", baseUrl = url)) |> ignore) "credentials"
            expectContains e.Message "the base URL (TfdsDownloadOptions.BaseUrl)"
            expectContains e.Message (f.Server.Url.Replace("http://", "http://***@"))
            Expect.isFalse (e.Message.Contains "s3cr3t") "no secret in the message"
            Expect.isFalse (e.Message.Contains "user:") "no user name in the message"
            Expect.isEmpty f.Server.Requests "nothing was requested"
            // Other refusals of a URL with credentials do not print them either.
            let e = throwsWith<ArgumentException> (fun () -> TfdsDownloader.ResolveBaseUrl "ftp://user:s3cr3t@host/b" |> ignore) "bad scheme"
            Expect.isFalse (e.Message.Contains "s3cr3t") "no secret (scheme refusal)"
            expectContains e.Message "ftp://***@host/b"
            Expect.equal (TfdsDownloader.RedactUserInfo "https://a:b@c.example:8080/x@y?q=@") "https://***@c.example:8080/x@y?q=@" "only the authority's user info"
            Expect.equal (TfdsDownloader.RedactUserInfo "https://c.example/x@y") "https://c.example/x@y" "an @ in the path is not user info"

        testCase "listing: configs are pointed out; a bucket that cannot be listed or answers non-XML asks for a version" <| fun () ->
            use f = new Fixture()
            let configs = """<ListBucketResult><CommonPrefixes><Prefix>datasets/cfgds/full/</Prefix></CommonPrefixes><CommonPrefixes><Prefix>datasets/cfgds/small/</Prefix></CommonPrefixes></ListBucketResult>"""
            f.Server.Behave <- fun r _ ->
                if r.Query.Contains "prefix=datasets/cfgds/" then Body("application/xml", Encoding.UTF8.GetBytes configs)
                elif r.Query.Contains "prefix=datasets/nolist/" then Status 404
                elif r.Query.Contains "prefix=datasets/json/" then Body("application/json", "{}"B)
                else Serve
            let e = failsWith<DatasetNotFoundException> (f.Request("cfgds")) "configs"
            expectContains e.Message "look like configs: full, small; give one, e.g. 'cfgds/full'"
            let e = failsWith<DownloadException> (f.Request("nolist")) "no listing"
            expectContains e.Message "cannot be listed"
            expectContains e.Message "exact version (name:x.y.z)"
            let e = failsWith<DataFormatException> (f.Request("json:1.*.*")) "not xml"
            expectContains e.Message "not valid XML"

        testCase "a dataset with a config lands in <name>/<config>/<version>" <| fun () ->
            use bucket = new TempDir()
            use data = new TempDir()
            let dir = Path.Combine(bucket.Path, "datasets", "toy", "small", "1.0.0")
            let w = TfdsDatasetWriter(dir, "toy", "1.0.0", features, ConfigName = "small")
            w.WriteSplit("test", ResizeArray testRecords, 1) |> ignore
            w.Complete()
            use server = new Server(bucket.Path)
            let d = download (TfdsDownloadOptions("toy/small:1.0.0", DataDir = data.Path, BaseUrl = server.Url))
            Expect.equal d (Path.Combine(data.Path, "toy", "small", "1.0.0")) "config folder"
            Expect.equal (readSplit (Catalog.Open(data.Path, "toy/small:1.0.0")) "test") testRecords "records"
            // The config's metadata served for the config-less name: configName disagrees with the request.
            let info = File.ReadAllBytes(Path.Combine(dir, "dataset_info.json"))
            server.Behave <- fun r _ -> if r.Path = "datasets/toy/1.0.0/dataset_info.json" then Body("application/json", info) else Serve
            let e = failsWith<DataFormatException> (TfdsDownloadOptions("toy:1.0.0", DataDir = data.Path, BaseUrl = server.Url)) "config mismatch"
            expectContains e.Message "key 'configName' is 'small', but the config requested is '(none)'"

        testCase "metadata that disagrees with the request (version) is refused" <| fun () ->
            use f = new Fixture()
            let info = File.ReadAllText(Path.Combine(f.VersionSource, "dataset_info.json")).Replace("\"version\": \"1.0.0\"", "\"version\": \"1.0.1\"")
            f.Server.Behave <- fun r _ -> if r.Path.EndsWith "dataset_info.json" then Body("application/json", Encoding.UTF8.GetBytes info) else Serve
            let e = failsWith<DataFormatException> (f.Request("toy:1.0.0")) "version mismatch"
            expectContains e.Message "key 'version' is '1.0.1', but version 1.0.0 was requested"
            Expect.isEmpty (f.Server.Requests |> List.filter isShard) "no shard requested"

        testCase "an existing version directory without dataset_info.json is reported, not overwritten" <| fun () ->
            use f = new Fixture()
            Directory.CreateDirectory(Path.Combine(f.Data, "toy", "1.0.0")) |> ignore
            let e = failsWith<DatasetNotFoundException> (f.Request("toy:1.0.0")) "incomplete dir"
            expectContains e.Message "has no dataset_info.json"

        testSequenced <| testList "arguments" [
            testCase "bad requests are ArgumentExceptions naming the setting" <| fun () ->
                throwsWith<ArgumentNullException> (fun () -> TfdsDownloader.DownloadAsync(null).GetAwaiter().GetResult() |> ignore) "null" |> ignore
                use data = new TempDir()
                let r name = TfdsDownloadOptions(name, BaseUrl = "http://127.0.0.1:9", DataDir = data.Path)
                let e = failsWith<ArgumentOutOfRangeException> (TfdsDownloadOptions("toy:1.0.0", MaxDegreeOfParallelism = 0)) "parallel"
                expectContains e.ParamName "MaxDegreeOfParallelism"
                failsWith<ArgumentOutOfRangeException> (TfdsDownloadOptions("toy:1.0.0", Timeout = TimeSpan.Zero)) "timeout" |> ignore
                failsWith<ArgumentOutOfRangeException> (TfdsDownloadOptions("toy:1.0.0", Retries = -1)) "retries" |> ignore
                let e = failsWith<ArgumentException> (TfdsDownloadOptions("toy:1.0.0", BaseUrl = "ftp://example.invalid/x")) "scheme"
                expectContains e.Message "not an absolute http:// or https:// URL"
                failsWith<ArgumentException> (r "toy:1.0") "malformed name" |> ignore
                let e = failsWith<ArgumentException> (TfdsDownloadOptions("toy:1.0.0", BaseUrl = "http://127.0.0.1:9", Splits = [| "train[" |])) "malformed split"
                ignore e
            testCase "base URL: argument, then SAMPLERS_TFDS_BASE_URL, then the public bucket" <| fun () ->
                let saved = Environment.GetEnvironmentVariable TfdsDownloader.BaseUrlEnvironmentVariable
                try
                    Environment.SetEnvironmentVariable(TfdsDownloader.BaseUrlEnvironmentVariable, null)
                    Expect.equal (TfdsDownloader.ResolveBaseUrl null) TfdsDownloader.DefaultBaseUrl "default"
                    Environment.SetEnvironmentVariable(TfdsDownloader.BaseUrlEnvironmentVariable, "http://mirror.example/tfds/")
                    Expect.equal (TfdsDownloader.ResolveBaseUrl null) "http://mirror.example/tfds" "environment, no trailing slash"
                    Expect.equal (TfdsDownloader.ResolveBaseUrl "https://other.example/b") "https://other.example/b" "argument wins"
                    Environment.SetEnvironmentVariable(TfdsDownloader.BaseUrlEnvironmentVariable, "not a url")
                    let e = throwsWith<ArgumentException> (fun () -> TfdsDownloader.ResolveBaseUrl null |> ignore) "bad env"
                    expectContains e.Message TfdsDownloader.BaseUrlEnvironmentVariable
                finally
                    Environment.SetEnvironmentVariable(TfdsDownloader.BaseUrlEnvironmentVariable, saved)
        ]
    ]
