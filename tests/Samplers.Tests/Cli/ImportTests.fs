/// `samplers import idx`, the IDX reader (IdxFile) and importer (IdxTfds) under it, and where --version is honoured.
module Samplers.Tests.Cli.ImportTests

open System
open System.Buffers.Binary
open System.CommandLine
open System.Diagnostics
open System.IO
open System.IO.Compression
open System.Text.Json
open System.Threading
open Expecto
open Samplers
open Samplers.Imaging
open Samplers.Tfds
open Samplers.Tests.TestUtil
open Samplers.Tests.Cli.CliTests

// ---------- IDX files written by the tests ----------

/// An IDX file: magic 00 00 `typ` rank, big-endian sizes, then `data` (any length: tests write wrong ones on purpose).
let idxBytes (typ: byte) (dims: uint32 list) (data: byte[]) =
    let header = Array.zeroCreate<byte> (4 + 4 * dims.Length)
    header[2] <- typ
    header[3] <- byte dims.Length
    dims |> List.iteri (fun i d -> BinaryPrimitives.WriteUInt32BigEndian(Span(header, 4 + 4 * i, 4), d))
    Array.append header data

let gzip (bytes: byte[]) =
    use ms = new MemoryStream()
    (use z = new GZipStream(ms, CompressionLevel.Fastest, leaveOpen = true)
     z.Write(bytes, 0, bytes.Length))
    ms.ToArray()

/// Pixel (item, row, column) of the generated images: distinct per position, all 256 values occur.
let pixel (i: int) (y: int) (x: int) = byte ((i * 131 + y * 17 + x * 7 + (i * y * x) % 251) % 256)

/// `n` images of `h` x `w` (rows top to bottom) and their labels (`label i`).
let images (n: int) (h: int) (w: int) =
    idxBytes 8uy [ uint32 n; uint32 h; uint32 w ] [| for i in 0 .. n - 1 do for y in 0 .. h - 1 do for x in 0 .. w - 1 -> pixel i y x |]
let labelsOf (n: int) (label: int -> int) = idxBytes 8uy [ uint32 n ] [| for i in 0 .. n - 1 -> byte (label i) |]

let write (dir: string) (name: string) (bytes: byte[]) =
    let p = Path.Combine(dir, name)
    File.WriteAllBytes(p, bytes)
    p

let fashionNames = [| "T-shirt/top"; "Trouser"; "Pullover"; "Dress"; "Coat"; "Sandal"; "Shirt"; "Sneaker"; "Bag"; "Ankle boot" |]

/// Loads splits of a dataset through the library's loader (memory table, cache off).
let loadSplits (data: string) (name: string) (splits: string list) =
    let o = TfdsLoadOptions(DatasetName = name, DataDir = data, Splits = ResizeArray splits, UseCache = false, Table = TableBacking.Memory, Download = null)
    TfdsLoader.LoadAsync(o, null, CancellationToken.None).GetAwaiter().GetResult()

/// Every row of the loaded table against the generated pixels and labels, row r = item `item r`.
let expectRows (table: ExampleTable) (n: int) (h: int) (w: int) (label: int -> int) (item: int -> int) =
    Expect.equal table.Count n "one row per IDX item"
    Expect.equal (table.ExampleShape.ToArray()) [| h; w; 1 |] "height x width x 1"
    for r in 0 .. n - 1 do
        let i = item r
        let px = table.GetExample(r)
        for y in 0 .. h - 1 do
            for x in 0 .. w - 1 do
                if px[y * w + x] <> pixel i y x then failtestf "row %d (item %d): pixel (%d, %d) is %d, expected %d" r i y x px[y * w + x] (pixel i y x)
        Expect.equal table.Labels[r] (int64 (label i)) $"row {r}: label of item {i}"

/// Runs `import idx` in-process.
let import (args: string list) = cli ("import" :: "idx" :: args)

/// The DataFormatException `f` throws.
let dataError (f: unit -> unit) =
    try
        f ()
        failtest "no DataFormatException"
    with :? DataFormatException as e -> e

/// The DataFormatException of reading `bytes` as an IDX file of `rank` (plain and gzip-compressed alike).
let refusal (rank: int) (maxBytes: int64) (bytes: byte[]) =
    use t = new TempDir()
    let read gz =
        let p = write t.Path (if gz then "f.gz" else "f") (if gz then gzip bytes else bytes)
        try
            IdxFile.Read(p, rank, "images file", maxBytes) |> ignore
            failtestf "%s was accepted" (if gz then "the gzip file" else "the file")
        with :? DataFormatException as e ->
            Expect.stringContains e.Message p "names the file"
            e.Message
    read false, read true

// ---------- the reader ----------

let readerTests =
    testList "IdxFile" [
        test "reads sizes and items, plain and gzip-compressed alike" {
            use t = new TempDir()
            let bytes = images 3 5 7
            for gz in [ false; true ] do
                let p = write t.Path (if gz then "i.gz" else "i") (if gz then gzip bytes else bytes)
                let f = IdxFile.Read(p, 3)
                Expect.equal (List.ofSeq f.Dimensions) [ 3; 5; 7 ] "sizes"
                Expect.equal (f.Count, f.ItemLength, f.Rank, f.HeaderLength, f.Compressed) (3, 35, 3, 16, gz) "shape"
                for i in 0 .. 2 do
                    Expect.equal (f.Item(i).ToArray()) [| for y in 0 .. 4 do for x in 0 .. 6 -> pixel i y x |] $"item {i}"
        }
        test "the bound on the data is exact: the header's product may equal it, not exceed it" {
            use t = new TempDir()
            let p = write t.Path "i" (images 3 28 28)
            Expect.equal (IdxFile.Read(p, 3, "images file", 3L * 28L * 28L)).Count 3 "at the bound"
            let plain, _ = refusal 3 (3L * 28L * 28L - 1L) (images 3 28 28)
            Expect.stringContains plain "at most 2351 bytes of data in all" "over it"
        }
    ]

// ---------- malformed files: each case names the file, the offset, expected vs found, and what to do ----------

let malformedTests =
    let ok = images 4 3 2
    testList "malformed" [
        test "first two magic bytes not 00 00" {
            let bad = Array.copy ok
            bad[0] <- 1uy
            let plain, gz = refusal 3 IdxFile.MaxDataBytes bad
            Expect.stringContains plain "at byte 0, expected the IDX magic's first two bytes 00 00, found 01 00; this is not an IDX file" "magic"
            Expect.stringContains gz "at byte 0 of the decompressed data" "offset in the decompressed data"
        }
        test "a PNG given as an IDX file says so" {
            let plain, _ = refusal 3 IdxFile.MaxDataBytes (Array.append [| 0x89uy; 0x50uy; 0x4Euy; 0x47uy |] (Array.zeroCreate 40))
            Expect.stringContains plain "found 89 50 (a PNG file)" "kind"
        }
        test "type byte other than 08" {
            let bad = Array.copy ok
            bad[2] <- 0x0Duy
            let plain, _ = refusal 3 IdxFile.MaxDataBytes bad
            Expect.stringContains plain "at byte 2, expected the type byte 08 (unsigned byte), found 0D (32-bit float); only IDX files of unsigned bytes" "type"
        }
        test "rank byte other than the one needed (labels given as images)" {
            let plain, _ = refusal 3 IdxFile.MaxDataBytes (labelsOf 4 id)
            Expect.stringContains plain "at byte 3, expected the rank byte 03 (N x height x width images), found 01 (rank 1); this looks like a labels file: are the images and labels files swapped?" "rank"
            Expect.isTrue (plain.EndsWith "swapped?") "a question ends the message"
        }
        test "a size of 0" {
            let plain, _ = refusal 3 IdxFile.MaxDataBytes (idxBytes 8uy [ 4u; 0u; 2u ] [||])
            Expect.stringContains plain "at byte 8, expected a size of at least 1 for dimension 1, found 0" "zero"
        }
        test "a size of 2^31 or more" {
            let plain, _ = refusal 3 IdxFile.MaxDataBytes (idxBytes 8uy [ 0xFFFFFFFFu; 1u; 1u ] [||])
            Expect.stringContains plain "at byte 4, expected a size of dimension 0 below 2^31, found 4294967295" "huge size"
        }
        test "sizes whose product exceeds the bound are refused from the header, before allocating" {
            // 100000 x 100000 x 100000 would overflow an int64 product two steps later; the bound stops at the second.
            let plain, gz = refusal 3 IdxFile.MaxDataBytes (idxBytes 8uy [ 100000u; 100000u; 100000u ] [||])
            Expect.stringContains plain "at byte 8, expected at most 1073741824 bytes of data in all, found sizes 100000 x 100000 x ..., more than that" "bound"
            Expect.stringContains gz "of the decompressed data" "gzip too"
        }
        test "an empty file and a header cut short" {
            let empty, _ = refusal 3 IdxFile.MaxDataBytes [||]
            Expect.stringContains empty "at byte 0, expected the 4-byte IDX magic (00 00 08 <rank>), found the end of the data after 0 byte(s)" "empty"
            let cut, _ = refusal 3 IdxFile.MaxDataBytes ok[.. 9]
            Expect.stringContains cut "at byte 10, expected the 4-byte size of dimension 1" "truncated header"
        }
        test "data shorter than the header declares (truncated)" {
            let plain, gz = refusal 3 IdxFile.MaxDataBytes ok[.. ok.Length - 4]
            Expect.stringContains plain "at byte 37, expected 24 bytes of data after the 16-byte header (4 x 3 x 2), found the end of the data after 21 of them; the file is truncated" "truncated"
            Expect.stringContains gz "at byte 37 of the decompressed data" "gzip"
        }
        test "bytes after the data" {
            let plain, gz = refusal 3 IdxFile.MaxDataBytes (Array.append ok [| 1uy; 2uy; 3uy |])
            Expect.stringContains plain "at byte 40, expected the end of the file after 24 bytes of data (4 x 3 x 2), found 3 more byte(s) (the file is 43 bytes)" "trailing"
            Expect.stringContains gz "found 3 more byte(s); the file holds more than its header declares" "trailing, gzip"
        }
        test "damaged gzip data is a data error, not the runtime's InvalidDataException" {
            use t = new TempDir()
            let z = gzip (images 50 28 28)
            z[10] <- 0x07uy // the first deflate block: final, of the reserved type 3
            let p = write t.Path "d.gz" z
            let e = dataError (fun () -> IdxFile.Read(p, 3, "images file") |> ignore)
            Expect.stringContains e.Message "expected a gzip stream, found damaged compressed data" "says what"
            Expect.stringContains e.Message "download it again" "says what to do"
        }
        test "a folder is refused by the open rule" {
            use t = new TempDir()
            let e = dataError (fun () -> IdxFile.Read(t.Path, 3, "images file") |> ignore)
            Expect.stringContains e.Message "not a regular file" "kind"
        }
        test "image and label counts differ: data error naming both files, nothing written" {
            use t = new TempDir()
            let data = Path.Combine(t.Path, "data")
            let code, _, err = import [ "--images"; write t.Path "i" (images 5 3 3); "--labels"; write t.Path "l" (labelsOf 4 id); "--name"; "fashion_mnist"; "--split"; "train"; "--data-dir"; data ]
            Expect.equal code 2 "data error"
            Expect.stringContains err $"""{Path.Combine(t.Path, "i")} holds 5 images but {Path.Combine(t.Path, "l")} holds 4 labels""" "both counts, both files"
            Expect.isFalse (Directory.Exists(Path.Combine(data, "fashion_mnist"))) "nothing written"
        }
        test "a label outside the class names: data error naming the item and offset, nothing written" {
            use t = new TempDir()
            let data = Path.Combine(t.Path, "data")
            let code, _, err = import [ "--images"; write t.Path "i" (images 5 3 3); "--labels"; write t.Path "l" (labelsOf 5 (fun i -> if i = 3 then 10 else i)); "--name"; "fashion_mnist"; "--split"; "train"; "--data-dir"; data ]
            Expect.equal code 2 "data error"
            Expect.stringContains err "label 10 of item 3 (at byte 11) is outside the 10 class names (labels 0 to 9)" "which label, where"
            Expect.isFalse (Directory.Exists(Path.Combine(data, "fashion_mnist"))) "nothing written"
            // An unknown dataset with a names file of 3 names: label 4 is out of range too.
            let names = write t.Path "names.txt" "a\nb\nc\n"B
            let code, _, err = import [ "--images"; write t.Path "i" (images 5 3 3); "--labels"; write t.Path "l" (labelsOf 5 id); "--name"; "abc"; "--split"; "train"; "--data-dir"; data; "--class-names"; names ]
            Expect.equal code 2 "data error"
            Expect.stringContains err "label 3 of item 3 (at byte 11) is outside the 3 class names" "names file"
        }
        test "malformed files through the CLI: exit 2, one line naming the file" {
            use t = new TempDir()
            let bad = Array.copy ok
            bad[2] <- 0x0Cuy
            let p = write t.Path "bad.gz" (gzip bad)
            let code, out, err = import [ "--images"; p; "--labels"; write t.Path "l" (labelsOf 4 id); "--name"; "x"; "--split"; "train"; "--data-dir"; t.Path ]
            Expect.equal (code, out) (2, "") "data error"
            Expect.stringStarts (lines err |> List.last) $"samplers: data error: {p}: the images file is not a valid IDX file: at byte 2 of the decompressed data, expected the type byte 08" "the line"
            Expect.equal (lines err |> List.filter (fun l -> l.StartsWith "samplers:")).Length 1 "one error line"
        }
    ]

// ---------- importing ----------

let importTests =
    testList "import" [
        test "train then test of fashion_mnist: TFDS's files and features; every pixel, label and the order through the loader" {
            use t = new TempDir()
            let data = Path.Combine(t.Path, "data")
            // 5 x 7 (not square), so a height/width mix-up shows.
            let trainLabel i = (i * 7) % 10
            let testLabel i = 9 - i % 10
            let code, out, err =
                import [ "--images"; write t.Path "train-images-idx3-ubyte.gz" (gzip (images 37 5 7)); "--labels"; write t.Path "train-labels-idx1-ubyte.gz" (gzip (labelsOf 37 trainLabel))
                         "--name"; "fashion_mnist:3.0.1"; "--split"; "train"; "--data-dir"; data ]
            Expect.equal code 0 err
            Expect.stringContains out "imported  fashion_mnist:3.0.1 split train: 37 images 5x7, 10 classes" "summary"
            let code, out, err =
                import [ "--images"; write t.Path "t10k-images-idx3-ubyte" (images 11 5 7); "--labels"; write t.Path "t10k-labels-idx1-ubyte" (labelsOf 11 testLabel)
                         "--name"; "fashion_mnist"; "--split"; "test"; "--data-dir"; data; "--json" ]
            Expect.equal code 0 err
            let j = json out
            Expect.equal (j.GetProperty("dataset").GetString()) "fashion_mnist:3.0.1" "TFDS's version by default"
            Expect.equal [ for s in j.GetProperty("splits").EnumerateArray() -> s.GetProperty("name").GetString(), s.GetProperty("examples").GetInt64() ] [ "train", 37L; "test", 11L ] "both splits, train first"
            let vdir = Path.Combine(data, "fashion_mnist", "3.0.1")
            Expect.equal (Directory.GetFiles vdir |> Array.map Path.GetFileName |> Array.sort)
                [| "dataset_info.json"; "fashion_mnist-test.tfrecord-00000-of-00001"; "fashion_mnist-train.tfrecord-00000-of-00001"; "features.json"; "label.labels.txt" |] "TFDS's files, no temporary left"
            Expect.equal (File.ReadAllText(Path.Combine(vdir, "label.labels.txt"))) (String.Join("", fashionNames |> Array.map (fun n -> n + "\n"))) "TFDS's names"
            let info = json (File.ReadAllText(Path.Combine(vdir, "dataset_info.json")))
            Expect.equal (info.GetProperty("name").GetString(), info.GetProperty("version").GetString()) ("fashion_mnist", "3.0.1") "name, version"
            Expect.equal [ for s in info.GetProperty("splits").EnumerateArray() -> s.GetProperty("name").GetString(), [ for l in s.GetProperty("shardLengths").EnumerateArray() -> l.GetString() ] ]
                [ "train", [ "37" ]; "test", [ "11" ] ] "shard lengths as int64 strings"
            let feats = (json (File.ReadAllText(Path.Combine(vdir, "features.json")))).GetProperty("featuresDict").GetProperty("features")
            let image = feats.GetProperty("image")
            Expect.equal (image.GetProperty("pythonClassName").GetString()) "tensorflow_datasets.core.features.image_feature.Image" "Image"
            Expect.equal [ for d in image.GetProperty("image").GetProperty("shape").GetProperty("dimensions").EnumerateArray() -> d.GetString() ] [ "5"; "7"; "1" ] "H, W, 1"
            Expect.equal (image.GetProperty("image").GetProperty("dtype").GetString()) "uint8" "uint8"
            Expect.isFalse (image.GetProperty("image").TryGetProperty("encodingFormat") |> fst) "no encodingFormat, as TFDS's mnist.py"
            Expect.equal (feats.GetProperty("label").GetProperty("classLabel").GetProperty("numClasses").GetString()) "10" "ClassLabel of 10"
            // Through the loader: every pixel and label, in the IDX order.
            let train = loadSplits data "fashion_mnist:3.0.1" [ "train" ]
            expectRows train.Table 37 5 7 trainLabel id
            Expect.equal (List.ofSeq train.ClassNames) (List.ofArray fashionNames) "class names"
            let test = loadSplits data "fashion_mnist" [ "test" ]
            expectRows test.Table 11 5 7 testLabel id
            Expect.equal (train.Table.GetId(0)) "fashion_mnist-train.tfrecord-00000-of-00001__0" "TFDS id"
        }
        test "mnist: names 0..9 and no labels file, as TFDS's mnist" {
            use t = new TempDir()
            let data = Path.Combine(t.Path, "data")
            let code, _, err = import [ "--images"; write t.Path "i" (images 12 4 4); "--labels"; write t.Path "l" (labelsOf 12 (fun i -> i % 10)); "--name"; "mnist"; "--split"; "test"; "--data-dir"; data ]
            Expect.equal code 0 err
            let vdir = Path.Combine(data, "mnist", "3.0.1")
            Expect.isFalse (File.Exists(Path.Combine(vdir, "label.labels.txt"))) "no labels file"
            let r = loadSplits data "mnist" [ "test" ]
            Expect.equal (List.ofSeq r.ClassNames) [ for i in 0 .. 9 -> string i ] "0..9"
            expectRows r.Table 12 4 4 (fun i -> i % 10) id
        }
        test "several shards: every row is the IDX item its TFDS id names" {
            use t = new TempDir()
            let data = Path.Combine(t.Path, "data")
            let code, out, err = import [ "--images"; write t.Path "i" (images 20 3 4); "--labels"; write t.Path "l" (labelsOf 20 (fun i -> i % 3)); "--name"; "three:2.0.0"; "--split"; "train"; "--data-dir"; data; "--shards"; "3" ]
            Expect.equal code 0 err
            Expect.stringContains out "three-train.tfrecord-00000-of-00003, three-train.tfrecord-00001-of-00003, three-train.tfrecord-00002-of-00003" "shards"
            let r = loadSplits data "three" [ "train" ]
            Expect.equal (List.ofSeq r.ClassNames) [ "0"; "1"; "2" ] "an unknown dataset: 0..max label"
            // 20 over 3 shards: 7, 7, 6, written in order.
            let item (row: int) =
                let id = r.Table.GetId(row)
                let shard = int (id.Substring(id.IndexOf("-of-") - 5, 5))
                let k = int (id.Substring(id.LastIndexOf("__") + 2))
                [| 0; 7; 14 |][shard] + k
            expectRows r.Table 20 3 4 (fun i -> i % 3) item
            Expect.equal ([ for row in 0 .. 19 -> item row ] |> List.sort) [ 0 .. 19 ] "each item once"
        }
        test "--class-names for an unknown dataset, and the next split keeps them" {
            use t = new TempDir()
            let data = Path.Combine(t.Path, "data")
            let names = write t.Path "names.txt" "cat\ndog\n\nemu\n"B
            let code, _, err = import [ "--images"; write t.Path "i" (images 6 2 2); "--labels"; write t.Path "l" (labelsOf 6 (fun i -> i % 3)); "--name"; "pets"; "--split"; "train"; "--data-dir"; data; "--class-names"; names ]
            Expect.equal code 0 err
            // The test split has label 0 only, and no --class-names: the dataset's names are kept.
            let code, _, err = import [ "--images"; write t.Path "i2" (images 2 2 2); "--labels"; write t.Path "l2" (labelsOf 2 (fun _ -> 0)); "--name"; "pets:1.0.0"; "--split"; "test"; "--data-dir"; data ]
            Expect.equal code 0 err
            let r = loadSplits data "pets" [ "train"; "test" ]
            Expect.equal (List.ofSeq r.ClassNames) [ "cat"; "dog"; "emu" ] "names"
            Expect.equal r.Table.Count 8 "both splits"
        }
        test "a split already in the dataset is a usage error naming --split; the dataset is unchanged" {
            use t = new TempDir()
            let data = Path.Combine(t.Path, "data")
            let args = [ "--images"; write t.Path "i" (images 3 2 2); "--labels"; write t.Path "l" (labelsOf 3 id); "--name"; "fashion_mnist"; "--split"; "train"; "--data-dir"; data ]
            let code, _, err = import args
            Expect.equal code 0 err
            let info = Path.Combine(data, "fashion_mnist", "3.0.1", "dataset_info.json")
            let before = File.ReadAllBytes info
            let code, _, err = import args
            Expect.equal code 1 "usage error"
            Expect.stringContains err "samplers: usage error: --split: Split 'train' is already in" "names --split"
            Expect.stringContains err "Delete the folder" "what to do"
            Expect.equal (File.ReadAllBytes info) before "unchanged"
        }
        test "a split of other features than the dataset's is a data error naming features.json" {
            use t = new TempDir()
            let data = Path.Combine(t.Path, "data")
            let code, _, err = import [ "--images"; write t.Path "i" (images 3 2 2); "--labels"; write t.Path "l" (labelsOf 3 id); "--name"; "fashion_mnist"; "--split"; "train"; "--data-dir"; data ]
            Expect.equal code 0 err
            let code, _, err = import [ "--images"; write t.Path "i2" (images 3 4 4); "--labels"; write t.Path "l2" (labelsOf 3 id); "--name"; "fashion_mnist"; "--split"; "test"; "--data-dir"; data ]
            Expect.equal code 2 "data error"
            Expect.stringContains err (Path.Combine(data, "fashion_mnist", "3.0.1", "features.json") + ": feature 'image' of fashion_mnist:3.0.1 already in the folder is Image uint8 (2, 2, 1), but this import's is Image uint8 (4, 4, 1)") "what differs"
            Expect.isFalse (File.Exists(Path.Combine(data, "fashion_mnist", "3.0.1", "fashion_mnist-test.tfrecord-00000-of-00001"))) "no test shard"
        }
        test "usage errors: --name with a config or a wildcard, a bad split name, --shards 0, a missing option" {
            use t = new TempDir()
            let files = [ "--images"; write t.Path "i" (images 3 2 2); "--labels"; write t.Path "l" (labelsOf 3 id); "--data-dir"; t.Path ]
            for (args, text) in
                [ [ "--name"; "a/b"; "--split"; "train" ], "--name a/b: import writes datasets without configs"
                  [ "--name"; "a:1.*.*"; "--split"; "train" ], "--name a:1.*.*: the version to write must be exact"
                  [ "--name"; "1a"; "--split"; "train" ], "--name: "
                  [ "--name"; "a"; "--split"; "../x" ], "--split: Split name '../x' would name a folder"
                  [ "--name"; "a"; "--split"; "train"; "--shards"; "0" ], "--shards must be at least 1" ] do
                let code, _, err = import (files @ args)
                Expect.equal code 1 $"usage error for {args}"
                Expect.stringContains err text "names the option"
            let code, _, err = import [ "--images"; "x"; "--name"; "a"; "--split"; "train" ]
            Expect.equal code 1 "--labels missing"
            Expect.stringContains err "--labels" "names it"
            Expect.isEmpty (Directory.GetDirectories t.Path) "nothing written"
        }
        test "import --help ends with examples" {
            let code, out, _ = cli [ "import"; "idx"; "--help" ]
            Expect.equal code 0 "help"
            Expect.stringContains out "--class-names" "options"
            Expect.stringContains out "Examples:\n  samplers import idx --images train-images-idx3-ubyte.gz" "examples"
        }
    ]

// ---------- the real Fashion-MNIST test split, when Debian's dataset-fashion-mnist is installed ----------

let debianDir = "/usr/share/datasets/fashion-mnist"

/// The decompressed bytes of a file of the package, read independently of IdxFile.
let gunzip (path: string) =
    use z = new GZipStream(File.OpenRead path, CompressionMode.Decompress)
    use ms = new MemoryStream()
    z.CopyTo ms
    ms.ToArray()

let packageTests =
    testList "fashion-mnist package" [
        test "the real test split: every pixel and label against the IDX bytes" {
            let imagesFile = Path.Combine(debianDir, "t10k-images-idx3-ubyte.gz")
            let labelsFile = Path.Combine(debianDir, "t10k-labels-idx1-ubyte.gz")
            if not (File.Exists imagesFile && File.Exists labelsFile) then
                skiptestf "Debian's dataset-fashion-mnist is not installed (%s; apt-get install dataset-fashion-mnist, about 30 MB)" imagesFile
            use t = new TempDir()
            let data = Path.Combine(t.Path, "data")
            let code, _, err = import [ "--images"; imagesFile; "--labels"; labelsFile; "--name"; "fashion_mnist:3.0.1"; "--split"; "test"; "--data-dir"; data ]
            Expect.equal code 0 err
            let raw = gunzip imagesFile
            let rawLabels = gunzip labelsFile
            Expect.equal (raw.Length, rawLabels.Length) (16 + 10000 * 784, 8 + 10000) "the package's files"
            let r = loadSplits data "fashion_mnist" [ "test" ]
            Expect.equal r.Table.Count 10000 "10000 examples"
            for row in 0 .. 9999 do
                if not (r.Table.GetExample(row).SequenceEqual(ReadOnlySpan(raw, 16 + row * 784, 784))) then failtestf "row %d: pixels differ from the IDX bytes" row
                if r.Table.Labels[row] <> int64 rawLabels[8 + row] then failtestf "row %d: label %d, IDX %d" row r.Table.Labels[row] rawLabels[8 + row]
            Expect.equal (List.ofSeq r.ClassNames) (List.ofArray fashionNames) "TFDS's names"
            Expect.equal (Array.countBy id rawLabels[8..] |> Array.sort) [| for c in 0uy .. 9uy -> c, 1000 |] "1000 of each class"
        }
    ]

// ---------- --version ----------

let versionTests =
    testList "--version" [
        test "alone at the root: the tool's version, exit 0" {
            let code, out, err = cli [ "--version" ]
            Expect.equal (code, err) (0, "") "ok"
            Expect.isMatch (out.Trim()) @"^\d+\.\d+\.\d+" "a version"
        }
        test "anywhere else: a usage error naming it, never the version" {
            let version = (let _, out, _ = cli [ "--version" ] in out.Trim())
            for args, text in
                [ [ "--version"; "--json" ], "samplers: usage error: --version takes no other arguments; run 'samplers --version' alone"
                  [ "--version"; "run" ], "--version takes no other arguments"
                  [ "run"; "--version" ], "samplers: unknown option '--version' for 'samplers run'"
                  [ "info"; "x"; "--version" ], "samplers: unknown option '--version' for 'samplers info'"
                  [ "import"; "idx"; "--version"; "3" ], "samplers: unknown option '--version' for 'samplers import idx'" ] do
                let code, out, err = cli args
                Expect.equal code 1 $"usage error for {args}"
                Expect.stringContains err text $"names --version for {args}"
                Expect.isFalse (out.Contains version) $"no version printed for {args}"
        }
        test "a command's own --version option is that command's" {
            // No command of the tool has one; the rule is checked on a command tree that does.
            let root = RootCommand()
            let sub = Command("pkg")
            let own = Option<string>("--version")
            sub.Add own
            root.Add sub
            let args = [| "pkg"; "--version"; "1.2.3" |]
            let parsed = root.Parse args
            Expect.isNone (Option.ofObj (Samplers.Cli.CliApp.VersionProblem(root, parsed, args))) "not the root's"
            Expect.isNone (Option.ofObj (Samplers.Cli.CliApp.ParseProblem parsed)) "parses"
            Expect.equal (parsed.GetValue own) "1.2.3" "the command's value"
            let rootArgs = [| "--version"; "pkg" |]
            Expect.isSome (Option.ofObj (Samplers.Cli.CliApp.VersionProblem(root, root.Parse rootArgs, rootArgs))) "the root's, not alone"
        }
    ]

[<Tests>]
let tests = testList "Cli.Import" [ readerTests; malformedTests; importTests; packageTests; versionTests ]
