/// Data directories in object storage (s3://bucket/prefix), mode "copy then cache": against s3rver on loopback (the same
/// plan digest and batch bytes as the local load), and against a scripted loopback server for the failures s3rver
/// cannot be made to show (access refused without credentials, a listing that does not advance, a body cut mid-way).
module Samplers.Tests.Io.ObjectStoreTests

open System
open System.IO
open System.Text
open Expecto
open Samplers
open Samplers.Storage
open Samplers.Tfds
open Samplers.Experiments
open Samplers.Tests.TestUtil
open Samplers.Tests.Io.DownloadTests
open Samplers.Tests.Io.S3Server

let digits () = Path.Combine(repoRoot.Value, "data", "synthetic_digits", "1.0.0")

let samplerOptionsFor (name: string) (dataDir: string) (cache: string) (store: ObjectStoreOptions) =
    TFDatasetSamplerOptions(
        Load = TfdsLoadOptions(DatasetName = name, DataDir = dataDir, CacheDir = cache, Download = null, ObjectStore = store,
                               Splits = [| "train"; "test" |]),
        ClassesPerBatch = 4, ExamplesPerClassPerBatch = 3, StepsPerEpoch = 20, Seed = 7UL)

let private samplerOptions = samplerOptionsFor "synthetic_digits:1.0.0"

/// The plan digest over two epochs and every batch's bytes (x then y) of the first.
let fingerprint (o: TFDatasetSamplerOptions) =
    use s = TFDatasetMultiShotMemorySampler.LoadAsync(o).GetAwaiter().GetResult()
    let digest = s.DigestPlans(0, 2, 0, s.Count)
    let bytes =
        [ for i in 0 .. s.Count - 1 do
            use b = s[i]
            yield Array.append (b.ToArray<byte>()) (b.Y.ToArray() |> Array.collect BitConverter.GetBytes) ]
    digest, bytes

let loadFails (o: TfdsLoadOptions) : exn =
    try
        use _ = TfdsLoader.LoadAsync(o).GetAwaiter().GetResult().Table
        failtest "expected the load to fail"
    with
    | :? AggregateException as a -> a.InnerException
    | e -> e

let oneLine (m: string) = Expect.isFalse (m.Contains '\n') $"one line: {m}"

/// The CLI in a child process with this environment (null removes a variable); (exit code, stdout, stderr).
let cli (args: string list) (env: (string * string) list) =
    let self = Reflection.Assembly.GetEntryAssembly().Location
    let psi = dotnetStartInfo None (self :: "--child" :: "cli" :: args)
    psi.Environment["DOTNET_EnableDiagnostics"] <- "0"
    for (k, v) in env do
        if isNull v then psi.Environment.Remove k |> ignore else psi.Environment[k] <- v
    use p = Diagnostics.Process.Start psi
    collectOutput p 120_000 "the CLI child did not finish within 120 s"

/// No credentials anywhere the SDK looks (environment, shared files, instance metadata).
let noCredentials (home: string) =
    [ "AWS_ACCESS_KEY_ID", null; "AWS_SECRET_ACCESS_KEY", null; "AWS_SESSION_TOKEN", null; "AWS_PROFILE", null
      "AWS_SHARED_CREDENTIALS_FILE", Path.Combine(home, "none-credentials"); "AWS_CONFIG_FILE", Path.Combine(home, "none-config")
      "AWS_EC2_METADATA_DISABLED", "true"; "AWS_ENDPOINT_URL", null; "AWS_ENDPOINT_URL_S3", null; "HOME", home ]

let s3rverOr (f: S3rver -> unit) () =
    match unavailable () with
    | Some why -> skiptestf "s3rver unavailable: %s" why
    | None ->
        use server = new S3rver()
        f server

/// S3's error document.
let private s3Error (code: string) = Encoding.UTF8.GetBytes($"<?xml version=\"1.0\" encoding=\"UTF-8\"?><Error><Code>{code}</Code><Message>refused</Message></Error>")

let private listing (token: string) (prefix: string) =
    Encoding.UTF8.GetBytes(
        $"<?xml version=\"1.0\" encoding=\"UTF-8\"?><ListBucketResult xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"><Name>b</Name><Prefix>p/synthetic_digits/</Prefix>" +
        $"<KeyCount>1</KeyCount><MaxKeys>1</MaxKeys><Delimiter>/</Delimiter><IsTruncated>true</IsTruncated><NextContinuationToken>{token}</NextContinuationToken>" +
        $"<CommonPrefixes><Prefix>{prefix}</Prefix></CommonPrefixes></ListBucketResult>")

[<Tests>]
let tests =
    testSequenced <| testList "ObjectStore" [
        testCase "locations: s3://bucket/prefix parses; local paths are not remote; malformed ones name what is expected" <| fun () ->
            let l = ObjectStoreLocation.Parse "s3://my-bucket/tf/datasets/"
            Expect.equal (l.Scheme, l.Bucket, l.Prefix) ("s3", "my-bucket", "tf/datasets") "parts"
            Expect.equal (l.Key "mnist/3.0.1/dataset_info.json") "tf/datasets/mnist/3.0.1/dataset_info.json" "key"
            Expect.equal ((ObjectStoreLocation.Parse "S3://b").Key "x") "x" "root prefix"
            for local in [ "/data/tfds"; "~/tensorflow_datasets"; "C:\\data"; "file:///data"; "relative/dir" ] do
                Expect.isFalse (ObjectStoreLocation.IsRemote local) local
            for bad, phrase in [ "s3://", "names no bucket"; "s3://b/p?versionId=1", "query"; "s3://key:secret@b/p", "credentials"; "s3://b/../x", "'..'" ] do
                let e = throwsWith<ArgumentException> (fun () -> ObjectStoreLocation.Parse bad |> ignore) bad
                Expect.stringContains e.Message phrase bad
                Expect.isFalse (e.Message.Contains "secret") "the secret is not shown"

        testCase "without a provider an s3:// data directory fails with one line naming the package to add" <| fun () ->
            ObjectStores.Reset(discover = false)
            try
                use cache = new TempDir()
                let e = loadFails (samplerOptions "s3://b/p" cache.Path null).Load
                Expect.isTrue (e :? ArgumentException) $"{e}"
                Expect.stringContains e.Message "Add the package Samplers.S3" "names the package"
                Expect.stringContains e.Message "s3://b/p" "names the location"
                oneLine (e.Message.Split(" (Parameter")[0])
            finally
                ObjectStores.Reset(discover = true)

        testCase "a local-only operation refuses an s3:// data directory instead of reading a folder named s3:" <| fun () ->
            let e = throwsWith<ArgumentException> (fun () -> Catalog.Open("s3://b/p", "synthetic_digits") |> ignore) "catalog"
            Expect.stringContains e.Message "object storage" "says why"

        testCase "s3rver: the stored bytes equal the source; the load from the bucket gives the local load's plan digest and batch bytes; the copy is then used offline" <| s3rverOr (fun server ->
            let keys = server.Upload("digits", "tfds/data/synthetic_digits/1.0.0", digits ())
            Expect.equal keys.Length 6 "six files"
            for key, file in keys do
                Expect.sequenceEqual (server.Get("digits", key)) (File.ReadAllBytes file) $"stored bytes of {key}"
            use cache = new TempDir()
            let store = ObjectStoreOptions(Endpoint = server.Endpoint, Anonymous = true)
            let localDigest, localBytes = fingerprint (samplerOptions (Path.Combine(repoRoot.Value, "data")) (Path.Combine(cache.Path, "local")) null)
            let remote = samplerOptions "s3://digits/tfds/data" (Path.Combine(cache.Path, "remote")) store
            let remoteDigest, remoteBytes = fingerprint remote
            Expect.equal remoteDigest localDigest "plan digest"
            Expect.equal remoteBytes.Length localBytes.Length "batches"
            for i in 0 .. localBytes.Length - 1 do Expect.sequenceEqual remoteBytes[i] localBytes[i] $"batch {i} bytes"
            // The copy: every file, verified, nothing left half-written (no .part, no lock, no temporary folder).
            let copy = Path.Combine(cache.Path, "remote", "remote", "s3", $"127.0.0.1_{server.Port}", "digits", "tfds", "data", "synthetic_digits", "1.0.0")
            for _, file in keys do Expect.sequenceEqual (File.ReadAllBytes(Path.Combine(copy, Path.GetFileName file))) (File.ReadAllBytes file) $"copy of {file}"
            let leftovers = Directory.GetFileSystemEntries(Path.GetDirectoryName copy) |> Array.filter (fun p -> Path.GetFileName p <> "1.0.0")
            Expect.isEmpty leftovers "nothing beside the version folder"
            // A complete copy needs no store: the same load with the server gone still works, and gives the same digest.
            (server :> IDisposable).Dispose()
            let offlineDigest, _ = fingerprint (samplerOptions "s3://digits/tfds/data" (Path.Combine(cache.Path, "remote-again")) (ObjectStoreOptions(Endpoint = store.Endpoint, Anonymous = true, CopyDir = Path.Combine(cache.Path, "remote", "remote"))))
            Expect.equal offlineDigest localDigest "offline digest")

        testCase "s3rver: a bucket that does not exist fails with one line naming the bucket and the settings" <| s3rverOr (fun server ->
            use cache = new TempDir()
            let e = loadFails (samplerOptions "s3://no-such-bucket/p" cache.Path (ObjectStoreOptions(Endpoint = server.Endpoint, Anonymous = true))).Load
            Expect.isTrue (e :? DownloadException) $"{e}"
            Expect.stringContains e.Message "the bucket 'no-such-bucket' does not exist" "names the bucket"
            Expect.stringContains e.Message "--data-dir" "names the setting"
            oneLine e.Message)

        testCase "s3rver through the CLI: signed with the right credentials it loads; with wrong ones it fails in one line naming the settings, never the secret" <| s3rverOr (fun server ->
            server.Upload("digits", "p/synthetic_digits/1.0.0", digits ()) |> ignore
            use home = new TempDir()
            let args cache = [ "plan"; "synthetic_digits:1.0.0"; "--data-dir"; "s3://digits/p"; "--s3-endpoint"; server.Endpoint; "--cache-dir"; cache; "-c"; "2"; "--digest"; "--quiet" ]
            let env key secret = noCredentials home.Path @ [ "AWS_ACCESS_KEY_ID", key; "AWS_SECRET_ACCESS_KEY", secret ]
            let code, out, err = cli (args (Path.Combine(home.Path, "c1"))) (env AccessKey SecretKey)
            Expect.equal code 0 $"signed load: {err}"
            Expect.isNonEmpty (out.Trim()) "a digest"
            let secret = "wJalrXUtnFEMI-K7MDENG-bPxRfiCYEXAMPLEKEY"
            let code, out, err = cli (args (Path.Combine(home.Path, "c2"))) (env "AKIDWRONG" secret)
            Expect.equal code 2 $"data error: {out} {err}"
            let lines = err.Trim().Split('\n')
            Expect.equal lines.Length 1 $"one line: {err}"
            Expect.stringContains err "refused access (403 InvalidAccessKeyId)" "the refusal"
            Expect.stringContains err "AWS_ACCESS_KEY_ID" "names the setting"
            Expect.isFalse (err.Contains secret || out.Contains secret) "the secret is never shown")

        testCase "no credentials found: requests go unsigned, and a refusal says so in one line naming the settings" <| fun () ->
            use server = new Server(Path.GetTempPath())
            server.Behave <- fun _ _ -> StatusBody(403, "application/xml", s3Error "AccessDenied")
            use home = new TempDir()
            let code, out, err =
                cli [ "plan"; "synthetic_digits:1.0.0"; "--data-dir"; "s3://private/p"; "--s3-endpoint"; server.Url; "--cache-dir"; home.Path; "--quiet" ] (noCredentials home.Path)
            Expect.equal code 2 $"data error: {out} {err}"
            Expect.equal (err.Trim().Split('\n').Length) 1 $"one line: {err}"
            Expect.stringContains err "no credentials were found" "says why"
            Expect.stringContains err "AWS_ACCESS_KEY_ID" "names the settings"
            Expect.isTrue (server.Requests |> List.forall (fun r -> r.Path.StartsWith "private/" || r.Path = "private")) "path-style requests"

        testCase "a listing that says it is truncated but does not advance fails at the second page" <| fun () ->
            use server = new Server(Path.GetTempPath())
            server.Behave <- fun r _ ->
                if r.Query.Contains "list-type=2" then Body("application/xml", listing "same-token" "p/synthetic_digits/1.0.0/")
                else Status 404
            use cache = new TempDir()
            let e = loadFails (samplerOptionsFor "synthetic_digits" "s3://b/p" cache.Path (ObjectStoreOptions(Endpoint = server.Url, Anonymous = true))).Load
            Expect.isTrue (e :? DownloadException) $"{e}"
            Expect.stringContains e.Message "does not advance" "the fault"
            Expect.stringContains e.Message "repeated" "what did not advance"
            Expect.stringContains e.Message "give an exact version" "what to do"
            let lists = server.Requests |> List.filter (fun r -> r.Query.Contains "list-type=2")
            Expect.equal lists.Length 2 "stopped at the second page"

        testCase "links planted at a part file and its ETag record are replaced, never written through; the copy still equals the bucket" <| fun () ->
            use root = new TempDir()
            let version = Path.Combine(root.Path, "b", "p", "synthetic_digits", "1.0.0")
            Directory.CreateDirectory version |> ignore
            for f in Directory.GetFiles(digits ()) do File.Copy(f, Path.Combine(version, Path.GetFileName f))
            use server = new Server(root.Path)
            use cache = new TempDir()
            let store = ObjectStoreOptions(Endpoint = server.Url, Anonymous = true, CopyDir = Path.Combine(cache.Path, "copy"))
            let o = samplerOptions "s3://b/p" (Path.Combine(cache.Path, "c1")) store
            let digest, bytes = fingerprint o
            // Where the copy went; then start again from a download in progress whose part files are links to victims.
            let copied = Directory.GetDirectories(Path.Combine(cache.Path, "copy"), "1.0.0", SearchOption.AllDirectories) |> Array.exactlyOne
            Directory.Delete(copied, true)
            let temp = copied + ".incomplete-download"
            Directory.CreateDirectory temp |> ignore
            // Shard 0: a part file linked to a victim, with an ETag record that matches what the server sends (this test
            // server sends none, so an empty record): a resume would append the object's bytes to the victim.
            let shard0 = "synthetic_digits-train.tfrecord-00000-of-00002"
            let victimPart = Path.Combine(cache.Path, "victim-part")
            let emptyTag = Path.Combine(cache.Path, "victim-empty-etag")
            File.WriteAllText(victimPart, "keep me")
            File.WriteAllText(emptyTag, "")
            File.CreateSymbolicLink(Path.Combine(temp, shard0 + ".part"), victimPart) |> ignore
            File.CreateSymbolicLink(Path.Combine(temp, shard0 + ".etag.part"), emptyTag) |> ignore
            // Shard 1: only the ETag record is a link: a fresh fetch would write the ETag through it.
            let shard1 = "synthetic_digits-train.tfrecord-00001-of-00002"
            let victimTag = Path.Combine(cache.Path, "victim-etag")
            File.WriteAllText(victimTag, "keep me too")
            File.CreateSymbolicLink(Path.Combine(temp, shard1 + ".etag.part"), victimTag) |> ignore
            let digest2, bytes2 = fingerprint (samplerOptions "s3://b/p" (Path.Combine(cache.Path, "c2")) store)
            Expect.equal (File.ReadAllText victimPart) "keep me" "the part file's link target is untouched"
            Expect.equal (File.ReadAllText emptyTag) "" "the first ETag record's link target is untouched"
            Expect.equal (File.ReadAllText victimTag) "keep me too" "the second ETag record's link target is untouched"
            Expect.equal digest2 digest "plan digest"
            Expect.equal bytes2 bytes "batch bytes"
        testCase "a body cut mid-transfer is resumed from its part file with a range; an object replaced meanwhile is fetched again whole" <| fun () ->
            use root = new TempDir()
            let version = Path.Combine(root.Path, "b", "p", "synthetic_digits", "1.0.0")
            Directory.CreateDirectory version |> ignore
            for f in Directory.GetFiles(digits ()) do File.Copy(f, Path.Combine(version, Path.GetFileName f))
            use server = new Server(root.Path)
            let shard = "b/p/synthetic_digits/1.0.0/synthetic_digits-train.tfrecord-00000-of-00002"
            let other = "b/p/synthetic_digits/1.0.0/synthetic_digits-train.tfrecord-00001-of-00002"
            // S3 gives a single-part object's MD5 as its ETag, and the SDK checks a whole body against it.
            let md5 = Security.Cryptography.MD5.HashData(File.ReadAllBytes(Path.Combine(root.Path, other))) |> Convert.ToHexString
            server.Behave <- fun r n ->
                if r.Path = shard && n = 1 then Cut 5000
                // Cut sends no ETag; the later answers carry one: the object the part file came from is not the one served now.
                elif r.Path = other && n = 1 then Cut 3000
                elif r.Path = other then WithHeaders [ "ETag", $"\"{md5.ToLowerInvariant()}\"" ]
                else Serve
            use cache = new TempDir()
            let o = samplerOptions "s3://b/p" cache.Path (ObjectStoreOptions(Endpoint = server.Url, Anonymous = true))
            let remoteDigest, remoteBytes = fingerprint o
            let localDigest, localBytes = fingerprint (samplerOptions (Path.Combine(repoRoot.Value, "data")) (Path.Combine(cache.Path, "local")) null)
            Expect.equal remoteDigest localDigest "plan digest"
            Expect.equal remoteBytes localBytes "batch bytes"
            let shardRanges = server.RequestsFor shard |> List.map (fun r -> r.Range)
            Expect.equal shardRanges [ ""; "bytes=5000-" ] "resumed where the cut left it"
            // The other shard's first attempt carried no ETag and its resume one: another object, so fetched whole.
            let otherRanges = server.RequestsFor other |> List.map (fun r -> r.Range)
            Expect.equal otherRanges [ ""; "bytes=3000-"; "" ] "restarted from 0 when the ETag changed"
    ]
