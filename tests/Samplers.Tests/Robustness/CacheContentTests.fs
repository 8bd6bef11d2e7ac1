/// `cache verify` compares shard contents: a shard edited in place keeping its size and modification time
/// makes verify fail, while normal loads (which trust size and time, by design) still hit.
module Samplers.Tests.Robustness.CacheContentTests

open System
open System.IO
open Expecto
open Samplers
open Samplers.Imaging
open Samplers.Tfds
open Samplers.Tests.TestUtil
open Samplers.Tests.Robustness.HostileMetadataTests

let cliIn (args: string list) =
    use out = new StringWriter()
    use err = new StringWriter()
    let code = Samplers.Cli.Program.Run(Array.ofList args, out, err)
    code, out.ToString(), err.ToString()

[<Tests>]
let tests =
    testList "Robustness.CacheContent" [
        test "a shard edited in place (same size and time) is served stale by loads but found by cache verify" {
            use t = new TempDir()
            let data = Path.Combine(t.Path, "data")
            let cache = Path.Combine(t.Path, "cache")
            let vdir = copyEmbedded data
            let args = [ "synthetic_digits"; "--data-dir"; data; "--cache-dir"; cache; "--splits"; "test" ]
            let code, _, err = cliIn ([ "cache" ] @ [ args.Head; "build" ] @ args.Tail)
            Expect.equal code 0 $"build (stderr {err})"
            let code, out, err = cliIn ([ "cache" ] @ [ args.Head; "verify" ] @ args.Tail)
            Expect.equal code 0 $"verify of an intact source (stderr {err})"
            Expect.stringContains out "XXH3-64" "verify says it checked the shard contents"
            // Edit one byte in the middle of the shard, keeping its length and modification time.
            let shard = Path.Combine(vdir, "synthetic_digits-test.tfrecord-00000-of-00001")
            let time = File.GetLastWriteTimeUtc shard
            let bytes = File.ReadAllBytes shard
            bytes.[bytes.Length / 2] <- bytes.[bytes.Length / 2] ^^^ 0xFFuy
            File.WriteAllBytes(shard, bytes)
            File.SetLastWriteTimeUtc(shard, time)
            let code, out, err = cliIn ([ "cache" ] @ [ args.Head; "verify" ] @ args.Tail)
            Expect.equal code 2 $"verify finds the edit (stdout {out}; stderr {err})"
            Expect.stringContains (out + err) "shard content changed" "says what changed"
            Expect.stringContains (out + err) "synthetic_digits-test.tfrecord-00000-of-00001" "names the shard"
            // Loads trust size and time (hashing every load would re-read the source): documented in docs/CACHE.md.
            let r = TfdsLoader.LoadAsync(TfdsLoadOptions(DatasetName = "synthetic_digits", DataDir = data, CacheDir = cache, Splits = [| "test" |])).GetAwaiter().GetResult()
            Expect.isTrue r.FromCache "a load still hits the cache"
        }
    ]
