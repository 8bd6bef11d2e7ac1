/// Hostile metadata: counts and shapes in dataset_info.json / features.json that would size memory, and
/// shard paths that are not regular files. Each CLI case runs in a child process with a 256 MiB GC heap limit, so a
/// preallocation from an untrusted count ends in an OutOfMemoryException (exit 3) instead of a clear data error (2).
module Samplers.Tests.Robustness.HostileMetadataTests

open System
open System.IO
open System.Text.RegularExpressions
open Expecto
open Samplers
open Samplers.Imaging
open Samplers.Tfds
open Samplers.Tests.TestUtil

/// The embedded dataset's version folder, copied into dataDir; returns the copy's version folder.
let copyEmbedded (dataDir: string) =
    let src = Path.Combine(repoRoot.Value, "data", "synthetic_digits", "1.0.0")
    let dst = Path.Combine(dataDir, "synthetic_digits", "1.0.0")
    Directory.CreateDirectory dst |> ignore
    for f in Directory.GetFiles src do File.Copy(f, Path.Combine(dst, Path.GetFileName f))
    dst

/// Replaces the shardLengths array of split `split` in dataset_info.json by `lengths` (JSON text of the array).
let setShardLengths (vdir: string) (split: string) (lengths: string) =
    let p = Path.Combine(vdir, "dataset_info.json")
    let text = File.ReadAllText p
    let pattern = "(\"name\": \"" + split + "\",\\s*\"numBytes\": \"\\d+\",\\s*\"shardLengths\": )\\[[^\\]]*\\]"
    let changed = Regex.Replace(text, pattern, "${1}" + lengths)
    if changed = text then failwithf "shardLengths of %s not found in %s" split p
    File.WriteAllText(p, changed)

/// Applies a textual edit to features.json.
let editFeatures (vdir: string) (oldText: string) (newText: string) =
    let p = Path.Combine(vdir, "features.json")
    let text = File.ReadAllText p
    if not (text.Contains oldText) then failwithf "%s not found in %s" oldText p
    File.WriteAllText(p, text.Replace(oldText, newText))

/// The heap limit of every hostile-metadata child: 256 MiB, ample for the 4000-example embedded dataset.
let heapLimit = "0x10000000"

/// Runs the CLI in a child process under the heap limit: (exit code, stdout, stderr).
let cliLimited (args: string list) =
    use p = startChild "cli" args [ "DOTNET_GCHeapHardLimit", heapLimit; "SAMPLERS_CACHE_DIR", Path.Combine(Path.GetTempPath(), "unused-cache") ]
    collectOutput p 120_000 $"the CLI child ({String.Join(' ', args)}) did not finish in 120 s"

/// Expects a data error (exit 2) whose message holds every fragment.
let expectDataError (code: int, out: string, err: string) (fragments: string list) what =
    Expect.equal code 2 $"{what}: exit code 2 (a data error); stdout: {out}; stderr: {err}"
    for f in fragments do Expect.stringContains err f $"{what}: the message names {f}"

let withHostile (mutate: string -> unit) (f: string -> string -> unit) =
    use t = new TempDir()
    let data = Path.Combine(t.Path, "data")
    let vdir = copyEmbedded data
    mutate vdir
    f data vdir

[<Tests>]
let tests =
    testList "Robustness.HostileMetadata" [
        for count in [ "2000000000"; "200000000" ] do
            test $"shardLengths {count} for a 1000-record shard is exit 2 'expected N records ... holds only M', not an OOM" {
                withHostile (fun v -> setShardLengths v "test" $"[\"{count}\"]") (fun data _ ->
                    let r = cliLimited [ "info"; "synthetic_digits"; "--data-dir"; data; "--splits"; "test"; "--no-cache" ]
                    expectDataError r [ $"expected {count} records"; "holds only"; "dataset_info.json"; "split 'test'"; "download the dataset again" ] "huge shardLengths")
            }

        test "numClasses 100000000 without a labels file loads within the heap limit" {
            withHostile (fun v ->
                File.Delete(Path.Combine(v, "label.labels.txt"))
                editFeatures v "\"numClasses\": \"10\"" "\"numClasses\": \"100000000\"") (fun data _ ->
                let code, out, err = cliLimited [ "info"; "synthetic_digits"; "--data-dir"; data; "--splits"; "test"; "--no-cache" ]
                Expect.equal code 0 $"info succeeds (stderr: {err})"
                Expect.stringContains out "100000000" "the class count is shown")
        }

        test "shardLengths summing past 2^63 is exit 2 naming dataset_info.json and the split; another split still loads" {
            withHostile (fun v -> setShardLengths v "test" "[\"9223372036854775807\", \"1\"]") (fun data _ ->
                let r = cliLimited [ "plan"; "synthetic_digits"; "--data-dir"; data; "--splits"; "test"; "--no-cache"; "--digest" ]
                expectDataError r [ "dataset_info.json"; "split 'test'"; "9223372036854775807"; "Re-download" ] "overflowing shardLengths"
                let code, _, err = cliLimited [ "plan"; "synthetic_digits"; "--data-dir"; data; "--splits"; "train"; "--no-cache"; "--digest" ]
                Expect.equal code 0 $"the train split is intact and loads (stderr: {err})")
        }

        test "empty shardLengths is exit 2 naming dataset_info.json and the split ('corresponds to no data' in the library)" {
            withHostile (fun v -> setShardLengths v "test" "[]") (fun data _ ->
                let r = cliLimited [ "plan"; "synthetic_digits"; "--data-dir"; data; "--splits"; "test"; "--no-cache"; "--digest" ]
                expectDataError r [ "dataset_info.json"; "'test'" ] "empty shardLengths"
                let dir = Catalog.Open(data, "synthetic_digits")
                let e = throwsWith<DataFormatException> (fun () -> dir.Select "test" |> ignore) "library"
                Expect.stringContains e.Message "corresponds to no data" "the library's wording"
                Expect.stringContains e.Message "dataset_info.json" "names the file")
        }

        test "a features.json shape of 1e9 x 1e9 is exit 2 naming features.json, not an OOM or a usage error" {
            withHostile (fun v -> editFeatures v "\"28\",\n              \"28\"," "\"1000000000\",\n              \"1000000000\",") (fun data _ ->
                let r = cliLimited [ "plan"; "synthetic_digits"; "--data-dir"; data; "--splits"; "test"; "--no-cache"; "--digest" ]
                expectDataError r [ "features.json"; "'image'"; "1000000000" ] "huge shape")
        }

        test "an Image declaring 5 channels is exit 2 naming features.json" {
            withHostile (fun v -> editFeatures v "\"1\"\n            ]" "\"5\"\n            ]") (fun data _ ->
                let r = cliLimited [ "plan"; "synthetic_digits"; "--data-dir"; data; "--splits"; "test"; "--no-cache"; "--digest" ]
                expectDataError r [ "features.json"; "5 channels"; "'image'" ] "5 channels")
        }

        test "a shard that is a FIFO is refused (exit 2), not read forever" {
            withHostile ignore (fun data vdir ->
                let shard = Path.Combine(vdir, "synthetic_digits-test.tfrecord-00000-of-00001")
                File.Delete shard
                use mk = Diagnostics.Process.Start("mkfifo", shard)
                mk.WaitForExit()
                Expect.equal mk.ExitCode 0 "mkfifo"
                let r = cliLimited [ "plan"; "synthetic_digits"; "--data-dir"; data; "--splits"; "test"; "--no-cache"; "--digest" ]
                expectDataError r [ shard; "named pipe (FIFO)"; "not a regular file" ] "FIFO shard")
        }

        test "a dataset_info.json that is a FIFO is refused, not read forever" {
            withHostile ignore (fun data vdir ->
                let info = Path.Combine(vdir, "dataset_info.json")
                File.Delete info
                use mk = Diagnostics.Process.Start("mkfifo", info)
                mk.WaitForExit()
                let r = cliLimited [ "plan"; "synthetic_digits"; "--data-dir"; data; "--splits"; "test"; "--no-cache"; "--digest" ]
                expectDataError r [ info; "named pipe (FIFO)" ] "FIFO dataset_info.json")
        }

        test "a symlink to a regular shard is still read" {
            withHostile ignore (fun data vdir ->
                let shard = Path.Combine(vdir, "synthetic_digits-test.tfrecord-00000-of-00001")
                let moved = Path.Combine(Path.GetDirectoryName(vdir: string), "elsewhere.tfrecord")
                File.Move(shard, moved)
                File.CreateSymbolicLink(shard, moved) |> ignore
                let code, _, err = cliLimited [ "plan"; "synthetic_digits"; "--data-dir"; data; "--splits"; "test"; "--no-cache"; "--digest" ]
                Expect.equal code 0 $"a symlinked shard loads (stderr: {err})")
        }

        test "config '..' is refused as a malformed name, not opened outside the dataset" {
            withHostile ignore (fun data _ ->
                let e = throwsWith<ArgumentException> (fun () -> Catalog.Open(data, "synthetic_digits/..") |> ignore) "config .."
                Expect.stringContains e.Message "'..'" "the message quotes the config")
        }

        test "a default config '..' in .config/metadata.json is a data error" {
            withHostile ignore (fun data _ ->
                let meta = Path.Combine(data, "synthetic_digits", ".config")
                Directory.CreateDirectory meta |> ignore
                File.WriteAllText(Path.Combine(meta, "metadata.json"), "{\"defaultConfigName\": \"..\"}")
                let e = throwsWith<DataFormatException> (fun () -> Catalog.Open(data, "synthetic_digits") |> ignore) "default config .."
                Expect.stringContains e.Message "metadata.json" "names the file")
        }
    ]
