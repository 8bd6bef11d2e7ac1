/// An S3-compatible server on loopback for the object-storage tests: s3rver (tools/s3rver, installed by .ci/run with
/// `npm ci`), started with the machine's Node.js on 127.0.0.1 at a free port with a temporary data folder, killed
/// (with its process tree) and removed on Dispose.
module Samplers.Tests.Io.S3Server

open System
open System.Diagnostics
open System.IO
open System.Text.RegularExpressions
open System.Threading.Tasks
open Amazon.Runtime
open Amazon.S3
open Amazon.S3.Model
open Samplers.Tests.TestUtil

/// s3rver's fixed account (lib/models/account.js): the only credentials it accepts.
let AccessKey = "S3RVER"
let SecretKey = "S3RVER"

let private script () = Path.Combine(repoRoot.Value, "tools", "s3rver", "node_modules", "s3rver", "bin", "s3rver.js")

let private findNode () =
    (Environment.GetEnvironmentVariable "PATH" |> string).Split(Path.PathSeparator)
    |> Array.map (fun d -> Path.Combine(d, "node"))
    |> Array.tryFind File.Exists

/// Why the server cannot start here, or None. In CI (CI=true) a missing server is a failure, not a skip: .ci/run installs it.
let unavailable () : string option =
    let reason =
        match findNode () with
        | None -> Some "node (Node.js) is not on PATH"
        | Some _ when not (File.Exists(script ())) -> Some "s3rver is not installed (run: cd tools/s3rver && npm ci --ignore-scripts)"
        | Some _ -> None
    match reason with
    | Some r when Environment.GetEnvironmentVariable "CI" = "true" -> failwithf "%s; .ci/run must install it" r
    | r -> r

/// A running s3rver. `Endpoint` is http://127.0.0.1:PORT.
type S3rver() =
    let dir = Path.Combine(Path.GetTempPath(), "samplers-s3rver-" + Guid.NewGuid().ToString("N"))
    do Directory.CreateDirectory dir |> ignore
    let psi = ProcessStartInfo((findNode ()).Value, RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false)
    do for a in [ script (); "-d"; dir; "-a"; "127.0.0.1"; "-p"; "0" ] do psi.ArgumentList.Add a
    let proc = Process.Start psi
    let ready = TaskCompletionSource<int>(TaskCreationOptions.RunContinuationsAsynchronously)
    // Every line is read (s3rver logs each request), so the pipe never fills and blocks the server.
    do proc.OutputDataReceived.Add(fun e ->
        if not (isNull e.Data) then
            let m = Regex.Match(e.Data, @"listening on 127\.0\.0\.1:(\d+)")
            if m.Success then ready.TrySetResult(int m.Groups[1].Value) |> ignore)
    do proc.ErrorDataReceived.Add(fun _ -> ())
    do proc.BeginOutputReadLine(); proc.BeginErrorReadLine()
    do proc.Exited.Add(fun _ -> ready.TrySetException(exn "s3rver exited before it was ready") |> ignore)
    do proc.EnableRaisingEvents <- true
    let port =
        if not (ready.Task.Wait(TimeSpan.FromSeconds 30.)) then
            proc.Kill true
            failwith "s3rver did not report its port within 30 s"
        ready.Task.Result
    let mutable disposed = false

    member _.Endpoint = $"http://127.0.0.1:{port}"
    member _.Port = port
    /// The server's data folder (its on-disk store).
    member _.Directory = dir

    /// A client for filling buckets: signed with s3rver's account, path-style, and without aws-chunked uploads or
    /// checksum trailers (s3rver stores such framing verbatim as the object's bytes).
    member this.Client() =
        let config =
            AmazonS3Config(ServiceURL = this.Endpoint, ForcePathStyle = true, AuthenticationRegion = "us-east-1",
                           RequestChecksumCalculation = RequestChecksumCalculation.WHEN_REQUIRED,
                           ResponseChecksumValidation = ResponseChecksumValidation.WHEN_REQUIRED, IgnoreConfiguredEndpointUrls = true)
        new AmazonS3Client(BasicAWSCredentials(AccessKey, SecretKey), config)

    /// Creates `bucket` and uploads every file under `folder` to `prefix/<relative path>`; returns the keys.
    member this.Upload(bucket: string, prefix: string, folder: string) =
        use c = this.Client()
        c.PutBucketAsync(bucket).GetAwaiter().GetResult() |> ignore
        [ for f in Directory.GetFiles(folder, "*", SearchOption.AllDirectories) do
            let rel = Path.GetRelativePath(folder, f).Replace(Path.DirectorySeparatorChar, '/')
            let key = prefix + "/" + rel
            let req = PutObjectRequest(BucketName = bucket, Key = key, FilePath = f, UseChunkEncoding = false)
            c.PutObjectAsync(req).GetAwaiter().GetResult() |> ignore
            yield key, f ]

    /// The stored bytes of an object.
    member this.Get(bucket: string, key: string) =
        use c = this.Client()
        use r = c.GetObjectAsync(bucket, key).GetAwaiter().GetResult()
        use ms = new MemoryStream()
        r.ResponseStream.CopyTo ms
        ms.ToArray()

    interface IDisposable with
        member _.Dispose() =
            if not disposed then
                disposed <- true
                try proc.Kill true with _ -> ()
                proc.WaitForExit 10_000 |> ignore
                proc.Dispose()
                try Directory.Delete(dir, true) with _ -> ()
