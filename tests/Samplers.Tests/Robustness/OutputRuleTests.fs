/// The one output rule (docs/ROBUSTNESS.md, "Output rule") beyond `export --out`: `show --out` follows it (a symlink
/// is written through, a FIFO written directly, a directory or socket refused as a usage error naming --out), a
/// symlink planted inside an `export --format npy` folder is replaced rather than written through, and the TFDS writer
/// refuses a dataset name or version that would leave the data directory.
module Samplers.Tests.Robustness.OutputRuleTests

open System
open System.IO
open System.Net.Sockets
open System.Threading.Tasks
open Expecto
open Samplers
open Samplers.Imaging
open Samplers.Tfds
open Samplers.Cli.Export
open Samplers.Tests.TestUtil
open Samplers.Tests.Cli.CliTests
open Samplers.Tests.Robustness.ExportTargetTests

let private pngSignature = [| 0x89uy; 0x50uy; 0x4Euy; 0x47uy; 0x0Duy; 0x0Auy; 0x1Auy; 0x0Auy |]
let private isPng (bytes: byte[]) = bytes.Length > 8 && bytes.[0..7] = pngSignature

/// `show` of the fixture into `out`: (exit code, stdout, stderr).
let private show (data: string) (out: string) =
    cli [ "show"; "tiny"; "--data-dir"; data; "--cache-dir"; data + "-cache"; "-c"; "2"; "-e"; "2"; "--out"; out ]

/// A tiny image folder (two classes of one PNG each).
let private imageFolder (root: string) =
    for cls in [ "a"; "b" ] do
        let dir = Path.Combine(root, cls)
        Directory.CreateDirectory dir |> ignore
        File.WriteAllBytes(Path.Combine(dir, "0.png"), PngEncoder.Encode(ReadOnlySpan(Array.create (4 * 4 * 3) 7uy), 4, 4, PngColorType.Rgb, PngEncodeOptions()))
    ImageFolder.Scan root

[<Tests>]
let tests =
    testList "Robustness.OutputRule" [
        testCase "show --out through a symlink writes the PNG into the target; the link stays a link" <| fun () ->
            withFixture <| fun data ->
                let dir = Path.GetDirectoryName data
                let real = Path.Combine(dir, "real.png")
                File.WriteAllText(real, "old")
                let link = Path.Combine(dir, "link.png")
                File.CreateSymbolicLink(link, real) |> ignore
                let code, _, err = show data link
                Expect.equal code 0 $"exit 0: {err}"
                Expect.isTrue (isSymlink link) "the link is still a link"
                Expect.isTrue (isPng (File.ReadAllBytes real)) "the target holds the PNG"
                Expect.equal (leftovers dir [ "data"; "data-cache"; "real.png"; "link.png" ]) [] "no temporary file"

        testCase "show --out a FIFO writes the PNG into the pipe; the FIFO stays a FIFO" <| fun () ->
            withFixture <| fun data ->
                let dir = Path.GetDirectoryName data
                let fifo = Path.Combine(dir, "grid.png")
                mkfifo fifo
                let reader = Task.Run(fun () -> File.ReadAllBytes fifo)
                let code, _, err = show data fifo
                Expect.equal code 0 $"exit 0: {err}"
                Expect.isTrue (reader.Wait 30_000) "the reader finished"
                Expect.isTrue (isPng reader.Result) "the reader got the PNG"
                Expect.equal (FileKind.Of fifo) FileKindValue.Fifo "still a FIFO"
                Expect.equal (leftovers dir [ "data"; "data-cache"; "grid.png" ]) [] "no temporary file"

        testCase "show --out a directory or a socket is a usage error naming --out, before anything is written" <| fun () ->
            withFixture <| fun data ->
                let dir = Path.Combine(Path.GetDirectoryName data, "a-folder")
                Directory.CreateDirectory dir |> ignore
                let code, _, err = show data dir
                Expect.equal code 1 $"usage error: {err}"
                Expect.stringContains err "--out" "names the option"
                Expect.stringContains err "is a directory" "says what the path is"
                Expect.isEmpty (Directory.GetFileSystemEntries dir) "nothing written into the folder"
                let sock = Path.Combine(Path.GetDirectoryName data, "s.png")
                use s = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified)
                s.Bind(UnixDomainSocketEndPoint sock)
                let code, _, err = show data sock
                Expect.equal code 1 $"usage error: {err}"
                Expect.stringContains err "--out" "names the option"
                Expect.equal (FileKind.Of sock) FileKindValue.Socket "the socket stays"

        test "a symlink planted in an .npy output folder is replaced; its target stays untouched" {
            use t = new TempDir()
            let victim = Path.Combine(t.Path, "victim.txt")
            File.WriteAllText(victim, "precious")
            let dir = Path.Combine(t.Path, "out")
            Directory.CreateDirectory dir |> ignore
            let planted = Path.Combine(dir, "y.npy")
            File.CreateSymbolicLink(planted, victim) |> ignore
            NumpyExport.Write(table (), dir, NumpyExportOptions(Folder = true)) |> ignore
            Expect.equal (File.ReadAllText victim) "precious" "the link's target is untouched"
            Expect.isFalse (isSymlink planted) "the link was replaced by the exported file"
            Expect.equal (File.ReadAllBytes planted).[1..5] "NUMPY"B "y.npy is the exported array"
            Expect.equal (leftovers dir [ "x.npy"; "y.npy" ]) [] "no temporary file"
        }

        test "the TFDS writer refuses a name or version that leaves the data directory, naming the parameter" {
            use t = new TempDir()
            let folder = imageFolder (Path.Combine(t.Path, "images"))
            let data = Path.Combine(t.Path, "deep", "data")
            let e = throwsWith<ArgumentException> (fun () -> folder.WriteTfds(data, "../../escaped") |> ignore) "name"
            Expect.equal e.ParamName "name" "names the name"
            let e = throwsWith<ArgumentException> (fun () -> folder.WriteTfds(data, "ok", "../../../v") |> ignore) "version"
            Expect.equal e.ParamName "version" "names the version"
            let features = [ DatasetFeature.Nested imageSpec ]
            let e = throwsWith<ArgumentException> (fun () -> TfdsDatasetWriter(Path.Combine(data, "x", "1.0.0"), "a/../../b", "1.0.0", features) |> ignore) "writer name"
            Expect.equal e.ParamName "name" "the writer names the name"
            let e = throwsWith<ArgumentException> (fun () -> TfdsDatasetWriter(Path.Combine(data, "x", "1.0.0"), "x", "..", features) |> ignore) "writer version"
            Expect.equal e.ParamName "version" "the writer names the version"
            Expect.equal (Directory.GetFileSystemEntries t.Path |> Array.map Path.GetFileName |> Array.sort) [| "images" |] "nothing written anywhere"
            // The names the loader accepts still write.
            let vdir = folder.WriteTfds(data, "my_images", "1.2.3")
            Expect.equal vdir (Path.Combine(data, "my_images", "1.2.3")) "inside the data directory"
            let w = TfdsDatasetWriter(Path.Combine(data, "x", "1.0.0"), "x", "1.0.0", features)
            let e = throwsWith<ArgumentException> (fun () -> w.WriteSplit("../../s", [| [||] |], 1) |> ignore) "split"
            Expect.equal e.ParamName "split" "the writer names the split"
        }
    ]
