/// The open rule and the output rule for the readers and writers beyond the CLI (docs/ROBUSTNESS.md, "Opening files",
/// "Output rule"): a TFRecord file, an experiment manifest or a fingerprinted shard that is a FIFO or a device is
/// refused at once, naming it; the library's writers of a path the caller names (PngEncoder.WriteFile,
/// ExperimentManifest.Save, TfRecordWriter.WriteFile) write through a symlink, into a FIFO, and refuse a directory or a
/// socket; the names the downloader chooses in its own folders (a part file, a JSON file's temporary name, the lock
/// file) never have a planted symlink written through.
module Samplers.Tests.Robustness.OpenWriteRuleTests

open System
open System.IO
open System.Net.Sockets
open System.Threading.Tasks
open Expecto
open Samplers
open Samplers.Cache
open Samplers.Imaging
open Samplers.Tfds
open Samplers.Experiments
open Samplers.Tests.TestUtil
open Samplers.Tests.Robustness.ExportTargetTests
open Samplers.Tests.Io.DownloadTests

let private linkToZero (path: string) = File.CreateSymbolicLink(path, "/dev/zero") |> ignore

/// Runs f, which must end by itself within 15 s (a refusal is expected); if it is stuck opening the FIFO, opens the
/// FIFO for writing so the blocked open returns and the test run goes on, then fails.
let private promptly (fifo: string) (f: unit -> unit) : exn =
    let t = Task.Run<exn>(fun () -> try f (); null with e -> e)
    if not (t.Wait 15_000) then
        (use _w = new FileStream(fifo, FileMode.Open, FileAccess.Write) in ())
        t.Wait 15_000 |> ignore
        failtestf "%s: the open blocked (no answer in 15 s)" fifo
    t.Result

let private expectRefusal (e: exn) (fragments: string list) what =
    match e with
    | :? DataFormatException as d -> for f in fragments do Expect.stringContains d.Message f what
    | null -> failtestf "%s: accepted" what
    | other -> failtestf "%s: expected a DataFormatException, got %s: %s" what (other.GetType().Name) other.Message

let private pngBytes () = PngEncoder.Encode(ReadOnlySpan(Array.create (2 * 2 * 3) 9uy), 2, 2, PngColorType.Rgb, PngEncodeOptions())
let private isPng (bytes: byte[]) = bytes.Length > 8 && bytes.[1..3] = "PNG"B

let private manifest () =
    ExperimentManifest(
        Experiment = "x",
        Dataset = ManifestDataset(Name = "tiny:1.0.0", Splits = [| "train" |], Fingerprint = "ab", NumExamples = 3L),
        Runs = [| ManifestRun(Label = "a", Sampling = ManifestSampling(Seed = 7UL, Mode = SamplingMode.Coverage), PlanDigest = "cd", EpochCount = 1) |])

/// The library writers of a path the caller names, each with a check of what it wrote.
let private writers : (string * (string -> unit) * (byte[] -> bool)) list =
    [ "PngEncoder.WriteFile", (fun p -> PngEncoder.WriteFile(p, pngBytes ())), isPng
      "ExperimentManifest.Save", (fun p -> manifest().Save p), (fun b -> Text.Encoding.UTF8.GetString(b).Contains ExperimentManifest.FormatTag)
      "TfRecordWriter.WriteFile", (fun p -> TfRecordWriter.WriteFile(p, [ [| 1uy; 2uy |] ]) |> ignore), (fun b -> b = TfRecordWriter.Frame(ReadOnlySpan [| 1uy; 2uy |])) ]

/// A block device to aim a writer at, if this machine shows one.
let private blockDevice () =
    try Directory.GetFiles "/dev" |> Array.tryFind (fun p -> FileKind.Of p = FileKindValue.BlockDevice) with _ -> None

[<Tests>]
let tests =
    testList "Robustness.OpenWriteRule" [
        testCase "TfRecordReader on a FIFO is refused at once, naming the file (it blocked in open before)" <| fun () ->
            use t = new TempDir()
            let fifo = Path.Combine(t.Path, "shard.tfrecord")
            mkfifo fifo
            let e = promptly fifo (fun () -> use r = new TfRecordReader(fifo) in r.TryReadNext() |> ignore)
            expectRefusal e [ fifo; "the TFRecord file is a named pipe (FIFO), not a regular file" ] "FIFO shard"

        testCase "TfRecordReader on a link to /dev/zero is refused as a device" <| fun () ->
            use t = new TempDir()
            let z = Path.Combine(t.Path, "zero.tfrecord")
            linkToZero z
            let e = try (use r = new TfRecordReader(z) in r.TryReadNext() |> ignore); null with e -> e
            expectRefusal e [ z; "the TFRecord file is a character device, not a regular file" ] "/dev/zero shard"

        testCase "a shard that is a FIFO is refused at once when its content is hashed" <| fun () ->
            use t = new TempDir()
            let fifo = Path.Combine(t.Path, "s.tfrecord")
            mkfifo fifo
            let e = promptly fifo (fun () -> SourceFingerprint.ContentHash fifo |> ignore)
            expectRefusal e [ fifo; "the shard is a named pipe (FIFO)" ] "FIFO content hash"

        testCase "an experiment manifest that is a FIFO is refused at once; one over 16 MiB before it is read" <| fun () ->
            use t = new TempDir()
            let fifo = Path.Combine(t.Path, "manifest.json")
            mkfifo fifo
            let e = promptly fifo (fun () -> ExperimentManifest.Load fifo |> ignore)
            expectRefusal e [ fifo; "the experiment manifest is a named pipe (FIFO), not a regular file" ] "FIFO manifest"
            let big = Path.Combine(t.Path, "big.json")
            (use f = new FileStream(big, FileMode.Create) in f.SetLength(100L <<< 20))
            let e = try ExperimentManifest.Load big |> ignore; null with e -> e
            expectRefusal e [ big; "the experiment manifest is 104857600 bytes, over the bound of 16777216 bytes" ] "large manifest"

        testCase "library writers of a caller's path refuse a directory and a socket (ArgumentException naming path)" <| fun () ->
            for name, write, _ in writers do
                use t = new TempDir()
                let dir = Path.Combine(t.Path, "a-folder")
                Directory.CreateDirectory dir |> ignore
                let e = throwsWith<ArgumentException> (fun () -> write dir) $"{name}: directory"
                Expect.equal e.ParamName "path" $"{name}: names the parameter"
                Expect.stringContains e.Message "is a directory" $"{name}: says what it is"
                Expect.isEmpty (Directory.GetFileSystemEntries dir) $"{name}: nothing written into the folder"
                Expect.equal (leftovers t.Path [ "a-folder" ]) [] $"{name}: no temporary file"
                let sock = Path.Combine(t.Path, "s.sock")
                use s = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified)
                s.Bind(UnixDomainSocketEndPoint sock)
                let e = throwsWith<ArgumentException> (fun () -> write sock) $"{name}: socket"
                Expect.stringContains e.Message "is a socket" $"{name}: says what it is"
                Expect.equal (FileKind.Of sock) FileKindValue.Socket $"{name}: the socket stays"
                match blockDevice () with
                | Some dev ->
                    let e = throwsWith<ArgumentException> (fun () -> write dev) $"{name}: block device"
                    Expect.stringContains e.Message "is a block device" $"{name}: says what it is"
                | None -> () // no block device visible here (a container): Resolve's rule is shared with the socket case

        testCase "library writers of a caller's path write through a symlink (the link stays) and into a FIFO (it stays)" <| fun () ->
            for name, write, check in writers do
                use t = new TempDir()
                let real = Path.Combine(t.Path, "real.out")
                File.WriteAllText(real, "old")
                let link = Path.Combine(t.Path, "link.out")
                File.CreateSymbolicLink(link, real) |> ignore
                write link
                Expect.isTrue (isSymlink link) $"{name}: the link is still a link"
                Expect.isTrue (check (File.ReadAllBytes real)) $"{name}: the target holds the output"
                Expect.equal (leftovers t.Path [ "real.out"; "link.out" ]) [] $"{name}: no temporary file"
                let fifo = Path.Combine(t.Path, "pipe.out")
                mkfifo fifo
                let reader = Task.Run(fun () -> File.ReadAllBytes fifo)
                write fifo
                Expect.isTrue (reader.Wait 30_000) $"{name}: the reader finished"
                Expect.isTrue (check reader.Result) $"{name}: the reader got the output"
                Expect.equal (FileKind.Of fifo) FileKindValue.Fifo $"{name}: still a FIFO"
                Expect.equal (leftovers t.Path [ "real.out"; "link.out"; "pipe.out" ]) [] $"{name}: no temporary file"

        test "the downloader never writes through links planted at the names it chooses (part file, JSON temp name, lock)" {
            use f = new Fixture()
            use v = new TempDir()
            let victimPart, victimJson = Path.Combine(v.Path, "victim-part.txt"), Path.Combine(v.Path, "victim-json.txt")
            File.WriteAllText(victimPart, "precious")
            File.WriteAllText(victimJson, "precious")
            let lockVictim = Path.Combine(v.Path, "made-by-lock")
            let temp = Path.Combine(f.Data, "toy", "1.0.0" + TfdsDownloader.TemporarySuffix)
            Directory.CreateDirectory temp |> ignore
            File.CreateSymbolicLink(Path.Combine(temp, "toy-test.tfrecord-00000-of-00001.part"), victimPart) |> ignore
            File.CreateSymbolicLink(Path.Combine(temp, "features.json.tmp"), victimJson) |> ignore
            File.CreateSymbolicLink(temp + ".lock", lockVictim) |> ignore
            let dir = try download (f.Request "toy:1.0.0") with e -> e.Message
            let problems =
                [ if File.ReadAllText victimPart <> "precious" then "the part file's link target was written"
                  if File.ReadAllText victimJson <> "precious" then "the JSON temporary name's link target was written"
                  if File.Exists lockVictim then "the dangling lock link created its target" ]
            Expect.equal problems [] "no link planted at a chosen name is written through"
            let shard = Path.Combine(dir, "toy-test.tfrecord-00000-of-00001")
            Expect.isTrue (File.Exists shard && not (isSymlink shard)) $"the shard downloaded as a file ({dir})"
            Expect.isFalse (isSymlink (Path.Combine(dir, "features.json"))) "features.json is the downloaded file"
        }
    ]
