/// Every file the product reads is checked for kind and size before it is read (docs/ROBUSTNESS.md, "Opening files"):
/// a FIFO, a device or an oversized file as a labels file, a verification stamp, a cache file or an image is refused
/// (or, for the stamp, ignored) with a message naming it, never a hang or a read without end; and an image folder's
/// listing does not follow a symbolic link back up. Every case that could hang runs in a child process with a timeout.
module Samplers.Tests.Robustness.FileKindTests

open System
open System.IO
open System.Threading.Tasks
open Expecto
open Samplers
open Samplers.Cache
open Samplers.Imaging
open Samplers.Tfds
open Samplers.Tests.TestUtil
open Samplers.Tests.Io.ParquetCacheTests
open Samplers.Tests.Robustness.HostileMetadataTests

let private mkfifo (path: string) =
    if File.Exists path then File.Delete path
    use mk = Diagnostics.Process.Start("mkfifo", path)
    mk.WaitForExit()
    Expect.equal mk.ExitCode 0 "mkfifo"

let private linkToZero (path: string) =
    if File.Exists path then File.Delete path
    File.CreateSymbolicLink(path, "/dev/zero") |> ignore

/// A sparse file of `bytes` bytes (no disk blocks).
let private sparse (path: string) (bytes: int64) =
    use f = new FileStream(path, FileMode.Create, FileAccess.Write)
    f.SetLength bytes

let private run (t: Task<'a>) = t.GetAwaiter().GetResult()

/// Child mode "file-kind <case> <dir>": one case against files under dir; prints what happened, exit 0.
let child (args: string[]) =
    let case, dir = args[0], args[1]
    let store () =
        let cache = ParquetCache(ParquetCacheOptions(Directory = dir, RowGroupBytes = 200L))
        let key = CacheKey(dir, "mnist", "", "3.0.1", "train", "image", "label")
        let fp = SourceFingerprint.FromValue "abababababababab"
        let t = fixedTable DType.UInt8 [| 8; 8 |] 40 ExampleTable.DefaultChunkBytes true 1
        if not (run (cache.StoreAsync(key, fp, t))).Stored then failwith "not stored"
        cache, key, fp, cache.GetPath key
    match case with
    | "stamp-fifo" | "stamp-zero" | "stamp-large" ->
        let cache, key, fp, path = store ()
        let stamp = VerifyStamp.PathOf path
        match case with
        | "stamp-fifo" -> mkfifo stamp
        | "stamp-zero" -> linkToZero stamp
        | _ -> sparse stamp (100L <<< 20)
        try SafeFile.ReadAllText(stamp, SafeFile.MaxStampBytes, "verification stamp") |> ignore
        with :? DataFormatException as e -> printfn "direct: %s" e.Message
        let r = run (cache.TryLoadAsync(key, fp, TableBacking.Mapped))
        printfn "hit=%b verified=%b" r.IsHit (r.IsHit && r.Table.Mapped.PayloadVerifiedAtOpen)
        printfn "stamp-regular=%b" (FileKind.Of stamp = FileKindValue.Regular)
    | "cache-fifo-auto" | "cache-fifo-memory" ->
        let cache, key, fp, path = store ()
        mkfifo path
        let backing = if case.EndsWith "auto" then TableBacking.Auto else TableBacking.Memory
        let r = run (cache.TryLoadAsync(key, fp, backing))
        printfn "hit=%b reason=%A" r.IsHit r.Reason
        printfn "detail: %s" r.Detail
    | "image-fifo" | "image-zero" ->
        let a = Path.Combine(dir, "a")
        Directory.CreateDirectory a |> ignore
        let img = Path.Combine(a, "2.jpg")
        if case = "image-fifo" then mkfifo img else linkToZero img
        let folder = ImageFolder.Scan dir
        try ImageFolder.DecodeFile img |> ignore; printfn "decoded"
        with :? DataFormatException as e -> printfn "decode: %s" e.Message
        try folder.WriteTfds(Path.Combine(dir, "out"), "x") |> ignore; printfn "written"
        with :? ExampleLoadException as e -> printfn "write: %s" e.Message
    | "image-loop" ->
        let a = Path.Combine(dir, "a")
        Directory.CreateDirectory(Path.Combine(a, "sub")) |> ignore
        File.WriteAllBytes(Path.Combine(a, "1.png"), [| 1uy |])
        File.WriteAllBytes(Path.Combine(a, "sub", "2.png"), [| 1uy |])
        Directory.CreateSymbolicLink(Path.Combine(a, "loop"), "..") |> ignore
        Directory.CreateSymbolicLink(Path.Combine(a, "sub", "up"), Path.Combine(a)) |> ignore
        let folder = ImageFolder.Scan dir
        printfn "classes=%s files=%d" (String.Join(",", folder.ClassNames)) folder.Count
    | "fingerprint-zero" ->
        // features.json linked to /dev/zero: hashed whole into the source fingerprint (before SafeFile: without end).
        let shard = Path.Combine(dir, "s.tfrecord")
        TfRecordWriter.WriteFile(shard, [ [| 1uy |] ]) |> ignore
        let features = Path.Combine(dir, "features.json")
        linkToZero features
        try SourceFingerprint.Compute([ shard ], null, features) |> ignore; printfn "computed"
        with :? DataFormatException as e -> printfn "fingerprint: %s" e.Message
    | "content-hash-zero" ->
        // A shard linked to /dev/zero, hashed by `cache verify` (streamed: before SafeFile, without end).
        let shard = Path.Combine(dir, "s.tfrecord")
        linkToZero shard
        try SourceFingerprint.ContentHash shard |> ignore; printfn "hashed"
        with :? DataFormatException as e -> printfn "hash: %s" e.Message
    | "manifest-zero" ->
        let m = Path.Combine(dir, "manifest.json")
        linkToZero m
        try Samplers.Experiments.ExperimentManifest.Load m |> ignore; printfn "loaded"
        with :? DataFormatException as e -> printfn "manifest: %s" e.Message
    | "mapped-truncate" ->
        // A cache file truncated to 16 KiB after the mapped open read its footer, before it read the labels and page headers (an
        // in-place writer racing the open). Reading those through a mapping made before the truncation touches pages
        // past the new end of the file: SIGBUS, the process dies. Read through the handle, it is a Corrupt miss.
        let cache = ParquetCache(ParquetCacheOptions(Directory = dir, RowGroupBytes = 4096L))
        let key = CacheKey(dir, "mnist", "", "3.0.1", "train", "image", "label")
        let fp = SourceFingerprint.FromValue "abababababababab"
        // 28x28 rows in 4 KiB row groups: 5 rows a group, all of distinct labels, so the labels are PLAIN pages that
        // the open reads itself (a dictionary-encoded group would go through Parquet.Net and its handle first).
        use t = fixedTable DType.UInt8 [| 28; 28 |] 400 ExampleTable.DefaultChunkBytes false 1
        if not (run (cache.StoreAsync(key, fp, t))).Stored then failwith "not stored"
        let path = cache.GetPath key
        printfn "size=%d" (FileInfo(path).Length)
        MappedCache.BeforeMetadataReads <- Action<string>(fun p ->
            use f = new FileStream(p, FileMode.Open, FileAccess.Write, FileShare.ReadWrite ||| FileShare.Delete)
            // At a page boundary, so the pages after it are wholly past the end (a partial last page reads as zeros).
            f.SetLength(4L * int64 Environment.SystemPageSize))
        let plain = Threading.Interlocked.Read(&MappedCache.PlainLabelGroups)
        let r = run (cache.TryLoadAsync(key, fp, TableBacking.Mapped))
        MappedCache.BeforeMetadataReads <- null
        printfn "hit=%b reason=%A" r.IsHit r.Reason
        // Proves the control: the same open without the truncation reads PLAIN labels itself.
        let fresh = ParquetCache(ParquetCacheOptions(Directory = Path.Combine(dir, "control"), RowGroupBytes = 4096L))
        if not (run (fresh.StoreAsync(key, fp, t))).Stored then failwith "not stored"
        let r2 = run (fresh.TryLoadAsync(key, fp, TableBacking.Mapped))
        use _table = r2.Table
        printfn "control hit=%b plain-label-groups=%b" r2.IsHit (Threading.Interlocked.Read(&MappedCache.PlainLabelGroups) > plain)
        printfn "detail: %s" r.Detail
    | c -> failwithf "unknown case %s" c
    0

/// Runs a child case with a 60 s timeout (a hang on the old code is a failure, not a hung test run).
let private childCase (case: string) (dir: string) =
    use p = startChild "file-kind" [ case; dir ] [ "DOTNET_GCHeapHardLimit", heapLimit ]
    let code, out, err = collectOutput p 60_000 $"the file-kind child ({case}) did not finish in 60 s"
    Expect.equal code 0 $"{case}: exit 0; stdout: {out}; stderr: {err}"
    out

/// `info` through the CLI child (catalog, features.json, labels file) with a 60 s timeout.
let private info (data: string) =
    use p = startChild "cli" [ "info"; "synthetic_digits"; "--data-dir"; data; "--no-cache" ] [ "DOTNET_GCHeapHardLimit", heapLimit ]
    collectOutput p 60_000 "the CLI child (info) did not finish in 60 s"

[<Tests>]
let tests =
    testList "Robustness.FileKind" [
        testCase "a FIFO as the labels file is refused, naming it (no hang)" <| fun () ->
            withHostile (fun vdir -> mkfifo (Path.Combine(vdir, "label.labels.txt"))) (fun data _ ->
                expectDataError (info data) [ "label.labels.txt"; "labels file is a named pipe (FIFO), not a regular file" ] "FIFO labels")
        testCase "a labels file linked to /dev/zero is refused as a device" <| fun () ->
            withHostile (fun vdir -> linkToZero (Path.Combine(vdir, "label.labels.txt"))) (fun data _ ->
                expectDataError (info data) [ "label.labels.txt"; "is a character device, not a regular file" ] "/dev/zero labels")
        testCase "a labels file over 64 MiB is refused before it is read, naming its size and the bound" <| fun () ->
            withHostile (fun vdir -> sparse (Path.Combine(vdir, "label.labels.txt")) (100L <<< 20)) (fun data _ ->
                expectDataError (info data) [ "label.labels.txt"; "104857600 bytes"; "the labels file is 104857600 bytes, over the bound of 67108864 bytes" ] "large labels")
        testCase "a verification stamp that is a FIFO is ignored: the open verifies, the stamp is replaced" <| fun () ->
            use d = new TempDir()
            let out = childCase "stamp-fifo" d.Path
            if OperatingSystem.IsLinux() then
                Expect.stringContains out "hit=true verified=true" "verified at open"
                Expect.stringContains out "stamp-regular=true" "replaced by a real stamp"
        testCase "a verification stamp linked to /dev/zero is ignored at once" <| fun () ->
            use d = new TempDir()
            let out = childCase "stamp-zero" d.Path
            if OperatingSystem.IsLinux() then Expect.stringContains out "hit=true verified=true" "verified at open"
            Expect.stringContains out "verification stamp is a character device, not a regular file" "direct refusal"
        testCase "a verification stamp over 64 KiB is ignored, refused with the bound" <| fun () ->
            use d = new TempDir()
            let out = childCase "stamp-large" d.Path
            if OperatingSystem.IsLinux() then Expect.stringContains out "hit=true verified=true" "verified at open"
            Expect.stringContains out "the verification stamp is 104857600 bytes, over the bound of 65536 bytes" "direct refusal with the bound"
        testCase "a FIFO at the cache path is an Unreadable miss (auto and memory), no hang" <| fun () ->
            for case in [ "cache-fifo-auto"; "cache-fifo-memory" ] do
                use d = new TempDir()
                let out = childCase case d.Path
                Expect.stringContains out "hit=false reason=Unreadable" case
                Expect.stringContains out "cache file is a named pipe (FIFO), not a regular file" case
        testCase "a FIFO as an image in an image folder is refused, naming it (decode and WriteTfds)" <| fun () ->
            use d = new TempDir()
            let out = childCase "image-fifo" d.Path
            Expect.stringContains out "decode: " "decode refused"
            Expect.stringContains out "2.jpg: the image file is a named pipe (FIFO), not a regular file" "names the file and its kind"
            Expect.stringContains out "write: " "WriteTfds refused"
        testCase "/dev/zero named 2.jpg in an image folder is refused" <| fun () ->
            use d = new TempDir()
            let out = childCase "image-zero" d.Path
            Expect.stringContains out "2.jpg: the image file is a character device, not a regular file" "names the file and its kind"
            Expect.stringContains out "write: " "WriteTfds refused"
        testCase "an image larger than 512 MiB is refused before it is read" <| fun () ->
            use d = new TempDir()
            let img = Path.Combine(d.Path, "big.png")
            sparse img (600L <<< 20)
            let e = throwsWith<DataFormatException> (fun () -> ImageFolder.DecodeFile img |> ignore) "big image"
            Expect.stringContains e.Message "the image file is 629145600 bytes, over the bound of 536870912 bytes" "size and bound"
        testCase "a features.json linked to /dev/zero is refused when the source is fingerprinted (no read without end)" <| fun () ->
            use d = new TempDir()
            let out = childCase "fingerprint-zero" d.Path
            Expect.stringContains out "features.json: the features.json is a character device, not a regular file" "names the file and its kind"
        testCase "a shard linked to /dev/zero is refused when its content is hashed (cache verify)" <| fun () ->
            use d = new TempDir()
            let out = childCase "content-hash-zero" d.Path
            Expect.stringContains out "s.tfrecord: the shard is a character device, not a regular file" "names the file and its kind"
        testCase "an experiment manifest linked to /dev/zero is refused (no read without end)" <| fun () ->
            use d = new TempDir()
            let out = childCase "manifest-zero" d.Path
            Expect.stringContains out "manifest.json: the experiment manifest is a character device, not a regular file" "names the file and its kind"
        testCase "a cache file truncated during the mapped open (after the footer, before labels and page headers) is a Corrupt miss, not SIGBUS" <| fun () ->
            use d = new TempDir()
            let out = childCase "mapped-truncate" d.Path
            // The file must span several pages, so that the truncation leaves whole mapped pages past the end.
            let size = out.Split('\n') |> Array.find (fun l -> l.StartsWith "size=") |> fun l -> int64 (l.Substring 5)
            Expect.isGreaterThan size (3L * int64 Environment.SystemPageSize) "a file of several pages"
            Expect.stringContains out "control hit=true plain-label-groups=true" "untruncated, the open reads PLAIN labels itself"
            Expect.stringContains out "hit=false reason=Corrupt" "a miss, the process alive"
            Expect.stringContains out "truncated" "says the file was truncated"
        testCase "an image folder's listing does not follow directory links (a loop ends at once)" <| fun () ->
            use d = new TempDir()
            let out = childCase "image-loop" d.Path
            Expect.stringContains out "classes=a files=2" "the two real files, links skipped"
    ]
