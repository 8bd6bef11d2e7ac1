/// `export --out` safety: symlinks are written through, FIFOs and devices are written directly and never
/// replaced, a failed export leaves no temporary file, and a ragged-by-declaration table of equal shapes exports.
module Samplers.Tests.Robustness.ExportTargetTests

open System
open System.IO
open System.IO.Compression
open System.Threading.Tasks
open Expecto
open Samplers
open Samplers.Imaging
open Samplers.Tfds
open Samplers.Cli.Export
open Samplers.Tests.TestUtil

let table () =
    ExampleTable.From<byte>(ReadOnlySpan [| 1uy .. 12uy |], ReadOnlySpan [| 2; 2 |], ReadOnlySpan [| 0L; 1L; 0L |])

let members (bytes: byte[]) =
    use z = new ZipArchive(new MemoryStream(bytes), ZipArchiveMode.Read)
    [ for e in z.Entries -> e.FullName ] |> List.sort

let mkfifo (path: string) =
    use p = Diagnostics.Process.Start("mkfifo", path)
    p.WaitForExit()
    Expect.equal p.ExitCode 0 "mkfifo"

let isSymlink (path: string) = not (isNull (FileInfo(path).LinkTarget))

/// Files left in a folder besides the given names (temporary files would show here).
let leftovers (dir: string) (expected: string list) =
    Directory.GetFileSystemEntries dir |> Array.map Path.GetFileName |> Array.filter (fun n -> not (List.contains n expected)) |> List.ofArray

/// An archive whose member write fails half-way (as on a full disk).
let failingExport (out: string) =
    try
        use w = new NpzWriter(out)
        w.Add("x", fun s -> s.Write([| 1uy |], 0, 1); failwith "disk full (simulated)")
        w.Complete()
    with _ -> ()

[<Tests>]
let tests =
    testList "Robustness.ExportTargets" [
        test "a symlink --out is written through: the link stays, its target gets the archive" {
            use t = new TempDir()
            let real = Path.Combine(t.Path, "real.npz")
            File.WriteAllText(real, "old")
            let link = Path.Combine(t.Path, "link.npz")
            File.CreateSymbolicLink(link, real) |> ignore
            NumpyExport.Write(table (), link) |> ignore
            Expect.isTrue (isSymlink link) "the link is still a link"
            Expect.equal (members (File.ReadAllBytes real)) [ "x.npy"; "y.npy" ] "the target holds the archive"
            Expect.equal (leftovers t.Path [ "real.npz"; "link.npz" ]) [] "no temporary file"
        }

        test "a dangling symlink --out creates its target" {
            use t = new TempDir()
            let real = Path.Combine(t.Path, "new.npz")
            let link = Path.Combine(t.Path, "link.npz")
            File.CreateSymbolicLink(link, real) |> ignore
            NumpyExport.Write(table (), link) |> ignore
            Expect.isTrue (isSymlink link) "the link is still a link"
            Expect.equal (members (File.ReadAllBytes real)) [ "x.npy"; "y.npy" ] "the target was created"
        }

        test "a FIFO --out is written directly: the reader gets the whole archive and the FIFO stays" {
            use t = new TempDir()
            let fifo = Path.Combine(t.Path, "out.npz")
            mkfifo fifo
            let reader = Task.Run(fun () -> File.ReadAllBytes fifo)
            NumpyExport.Write(table (), fifo) |> ignore
            Expect.isTrue (reader.Wait 30_000) "the reader finished"
            Expect.equal (members reader.Result) [ "x.npy"; "y.npy" ] "the reader got a complete archive"
            Expect.equal (FileKind.Of fifo) FileKindValue.Fifo "still a FIFO"
            Expect.equal (leftovers t.Path [ "out.npz" ]) [] "no temporary file"
        }

        test "a .npy folder whose x.npy is a FIFO gets it written directly" {
            use t = new TempDir()
            let dir = Path.Combine(t.Path, "out")
            Directory.CreateDirectory dir |> ignore
            let fifo = Path.Combine(dir, "x.npy")
            mkfifo fifo
            let reader = Task.Run(fun () -> File.ReadAllBytes fifo)
            NumpyExport.Write(table (), dir, NumpyExportOptions(Folder = true)) |> ignore
            Expect.isTrue (reader.Wait 30_000) "the reader finished"
            Expect.equal reader.Result.[1..5] "NUMPY"B "an .npy stream"
            Expect.equal (FileKind.Of fifo) FileKindValue.Fifo "still a FIFO"
        }

        test "a character device --out is written, not replaced (/dev/null)" {
            NumpyExport.Write(table (), "/dev/null") |> ignore
            Expect.equal (FileKind.Of "/dev/null") FileKindValue.CharDevice "still a device"
        }

        test "a full device fails with an IOException and is not replaced (/dev/full)" {
            if File.Exists "/dev/full" then
                Expect.throwsT<IOException> (fun () -> NumpyExport.Write(table (), "/dev/full") |> ignore) "ENOSPC surfaces"
                Expect.equal (FileKind.Of "/dev/full") FileKindValue.CharDevice "still a device"
        }

        test "a directory --out for an .npz is refused clearly" {
            use t = new TempDir()
            let e = throwsWith<ArgumentException> (fun () -> NumpyExport.Write(table (), t.Path) |> ignore) "directory"
            Expect.stringContains e.Message "is a directory" "says what the path is"
        }

        test "a failed member write leaves no temporary file, and an existing target is untouched" {
            use t = new TempDir()
            let out = Path.Combine(t.Path, "out.npz")
            File.WriteAllText(out, "previous")
            failingExport out
            Expect.equal (File.ReadAllText out) "previous" "the old file is untouched"
            Expect.equal (leftovers t.Path [ "out.npz" ]) [] "no temporary file"
            Expect.throwsT<IOException> (fun () -> NpzWriter.WriteFile(Path.Combine(t.Path, "y.npy"), fun s -> raise (IOException "no space"))) "WriteFile rethrows"
            Expect.equal (leftovers t.Path [ "out.npz" ]) [] "WriteFile left no temporary file"
        }

        test "a ragged table whose rows all have one shape exports with that shape" {
            let b = ExampleTableBuilder.Ragged(DType.UInt8, ReadOnlySpan [| -1; -1 |], 3)
            for i in 0 .. 2 do
                let span = b.AllocateRagged(i, ReadOnlySpan [| 2; 3 |])
                span.Fill(byte i)
                b.SetLabel(i, int64 i)
            let tbl = b.Build()
            use t = new TempDir()
            let dir = Path.Combine(t.Path, "out")
            NumpyExport.Write(tbl, dir, NumpyExportOptions(Folder = true)) |> ignore
            let header = Text.Encoding.ASCII.GetString(File.ReadAllBytes(Path.Combine(dir, "x.npy")), 10, 60)
            Expect.stringContains header "'shape': (3, 2, 3)" "the common shape is used"
        }

        test "an .npy shape whose byte size overflows int64 is an ArgumentException (fuzz finding, npy-header)" {
            use ms = new MemoryStream()
            let e = throwsWith<ArgumentException> (fun () -> NpyWriter(ms, DType.Float64, ReadOnlySpan [| 1L <<< 40; 1L <<< 40 |]) |> ignore) "overflow"
            Expect.stringContains e.Message "2^63-1 bytes" "says why"
            Expect.equal ms.Length 0L "nothing written"
        }

        test "a ragged table with differing rows names two of them" {
            let b = ExampleTableBuilder.Ragged(DType.UInt8, ReadOnlySpan [| -1 |], 2)
            b.AllocateRagged(0, ReadOnlySpan [| 2 |]).Clear()
            b.AllocateRagged(1, ReadOnlySpan [| 3 |]).Clear()
            use t = new TempDir()
            let e = throwsWith<DataFormatException> (fun () -> NumpyExport.Write(b.Build(), Path.Combine(t.Path, "o.npz")) |> ignore) "ragged"
            Expect.stringContains e.Message "row 0 is (2) but row 1 is (3)" "names the rows"
        }
    ]
