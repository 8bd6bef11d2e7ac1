/// Download faults: a trickling server is abandoned by the minimum-rate rule, an endless body stops at the
/// size the metadata allows, a part file that failed validation is never resumed, a lying Content-Length gets a clear
/// message, and a successful download leaves nothing beside the dataset.
module Samplers.Tests.Robustness.DownloadFaultTests

open System
open System.IO
open System.Text
open System.Threading.Tasks
open Expecto
open Samplers
open Samplers.Imaging
open Samplers.Tfds
open Samplers.Tests.TestUtil
open Samplers.Tests.Io.DownloadTests

/// Every file and folder under dir, relative, sorted.
let tree (dir: string) =
    Directory.GetFileSystemEntries(dir, "*", SearchOption.AllDirectories) |> Array.map (fun p -> Path.GetRelativePath(dir, p)) |> Array.sort |> List.ofArray

[<Tests>]
let tests =
    testList "Robustness.DownloadFaults" [
        test "a one-byte-per-second server with timeout 3 s and 1 retry is given up within 20 s (DownloadException)" {
            use f = new Fixture()
            f.Server.Behave <- fun r _ -> if r.Path = test0 then Trickle 1000 else Serve
            let req = TfdsDownloadOptions("toy:1.0.0", DataDir = f.Data, BaseUrl = f.Server.Url, Timeout = TimeSpan.FromSeconds 3.0, Retries = 1,
                                      RetryDelay = TimeSpan.FromMilliseconds 5.0, MaxDegreeOfParallelism = 3)
            let run = Task.Run(fun () -> try download req |> ignore; None with e -> Some e)
            // A functional deadline, not a speed target: without the rule the transfer never ends.
            Expect.isTrue (run.Wait(TimeSpan.FromSeconds 20.0)) "gave up within 20 s"
            match run.Result with
            | Some (:? DownloadException as e) ->
                expectContains e.Message "below the minimum of 1024 bytes/s"
                expectContains e.Message "after 2 attempts"
            | other -> failtestf "expected a DownloadException, got %A" other
            expectNoVersionDir f
        }

        test "a fast server passes the rate rule" {
            use f = new Fixture()
            let req = TfdsDownloadOptions("toy:1.0.0", DataDir = f.Data, BaseUrl = f.Server.Url, Timeout = TimeSpan.FromMilliseconds 50.0,
                                      RetryDelay = TimeSpan.FromMilliseconds 5.0, MinBytesPerSecond = 1024L)
            download req |> ignore
        }

        test "an endless body stops at the size the metadata allows; nothing is kept" {
            use f = new Fixture()
            f.Server.Behave <- fun r _ -> if r.Path = test0 then Endless else Serve
            let e = failsWith<DownloadException> (f.Request("toy:1.0.0")) "endless body"
            expectContains e.Message "more than the"
            expectContains e.Message test0
            let parts = Directory.GetFiles(f.Data, "*.part", SearchOption.AllDirectories)
            Expect.isEmpty parts "the oversized part file was deleted"
            expectNoVersionDir f
        }

        test "an HTML reply stored as a part file is not resumed by the next run" {
            use f = new Fixture()
            let page = Encoding.ASCII.GetBytes("<!DOCTYPE html><html><head><title>Portal</title></head><body>Please log in to continue to the bucket.</body></html>")
            f.Server.Behave <- fun r _ -> if r.Path = test0 then Body("application/octet-stream", page) else Serve
            failsWith<DownloadException> (f.Request("toy:1.0.0")) "html" |> ignore
            f.Server.Behave <- fun _ _ -> Serve
            let dir = download (f.Request("toy:1.0.0"))
            Expect.isTrue (File.Exists(Path.Combine(dir, "toy-test.tfrecord-00000-of-00001"))) "the second run recovers"
            let ranged = f.Server.RequestsFor test0 |> List.filter (fun r -> r.Range <> "")
            Expect.isEmpty ranged "no resume from the page's bytes"
        }

        test "a Content-Length longer than the object gets a message about wrong lengths, not a bare 416" {
            use f = new Fixture()
            let size = FileInfo(Path.Combine(f.Bucket, test0)).Length
            // Every full GET announces 10 bytes more than it sends; a resume gets an honest 416 (bytes */size).
            f.Server.Behave <- fun r _ -> if r.Path = test0 && r.Range = "" then LongerLength 10 else Serve
            let e = failsWith<DownloadException> (f.Request("toy:1.0.0", retries = 1)) "lying length"
            expectContains e.Message $"announced a file of {size + 10L} bytes"
            expectContains e.Message "reports wrong lengths"
            Expect.isEmpty (Directory.GetFiles(f.Data, "*.part", SearchOption.AllDirectories)) "no part file kept"
        }

        test "after a successful download the dataset folder holds only the version directory" {
            use f = new Fixture()
            download (f.Request("toy:1.0.0")) |> ignore
            Expect.equal (Directory.GetFileSystemEntries(Path.Combine(f.Data, "toy")) |> Array.map Path.GetFileName |> List.ofArray) [ "1.0.0" ] "no lock file or temporary folder"
            Expect.isEmpty (tree f.Data |> List.filter (fun p -> p.EndsWith ".part" || p.EndsWith ".tmp" || p.Contains "incomplete")) "no leftovers"
            // A second call (the version exists) leaves nothing either.
            download (f.Request("toy:1.0.0")) |> ignore
            Expect.equal (Directory.GetFileSystemEntries(Path.Combine(f.Data, "toy")) |> Array.map Path.GetFileName |> List.ofArray) [ "1.0.0" ] "still only the version"
        }
    ]
