/// A mapped open never serves a cache file damaged after it was written (docs/CACHE.md, "Verification stamp"): the
/// open verifies the payload checksum unless the file still has the identity stamped after its last verification.
module Samplers.Tests.Robustness.VerifyStampTests

open System
open System.IO
open System.Threading.Tasks
open Expecto
open Samplers
open Samplers.Imaging
open Samplers.Cache
open Samplers.Tfds
open Samplers.Tests.TestUtil
open Samplers.Tests.Io.ParquetCacheTests
open Samplers.Tests.Robustness.HostileMetadataTests
open Samplers.Tests.Robustness.CacheContentTests

let private run (t: Task<'a>) = t.GetAwaiter().GetResult()
let private keyFor (dir: string) = CacheKey(dir, "mnist", "", "3.0.1", "train+test", "image", "label")
let private fp (s: string) = SourceFingerprint.FromValue(String.replicate 8 s)

/// Stores a 40-row 8x8 table in `dir`: (cache, key, path, table).
let private storedIn (dir: string) =
    let t = fixedTable DType.UInt8 [| 8; 8 |] 40 ExampleTable.DefaultChunkBytes true 1
    let cache = ParquetCache(ParquetCacheOptions(Directory = dir, RowGroupBytes = 200L))
    let key = keyFor dir
    Expect.isTrue (run (cache.StoreAsync(key, fp "ab", t))).Stored "stored"
    cache, key, cache.GetPath key, t

let private openMapped (cache: ParquetCache) (key: CacheKey) (backing: TableBacking) : ExampleTable =
    let r = run (cache.TryLoadAsync(key, fp "ab", backing))
    Expect.isTrue r.IsHit r.Detail
    Expect.equal r.Table.Backing TableBacking.Mapped "mapped"
    r.Table

/// Flips one bit at byte `at`, in place through a FileStream, as another program would (this sets the file's ctime).
let private flipBitAt (path: string) (at: int64) =
    use f = new FileStream(path, FileMode.Open, FileAccess.ReadWrite, FileShare.ReadWrite ||| FileShare.Delete)
    f.Position <- at
    let v = f.ReadByte()
    f.Position <- at
    f.WriteByte(byte (v ^^^ 0x10))

/// Flips a bit inside the first example's bytes (not a page header: the open's structural checks all pass).
let private flipPayloadBit (path: string) =
    let b = File.ReadAllBytes path
    let at = (ReadOnlySpan b).IndexOf(ReadOnlySpan [| 64uy; 0uy; 0uy; 0uy; 17uy; 24uy; 31uy |])
    Expect.isGreaterThan at 0 "found the first value"
    flipBitAt path (int64 (at + 4 + 10))

let private stampedOs = OperatingSystem.IsLinux()

[<Tests>]
let tests =
    testList "Robustness.VerifyStamp" [
        test "the builder stamps the file it wrote; unchanged, a mapped open does not read the payload" {
            use d = new TempDir()
            let cache, key, path, t = storedIn d.Path
            Expect.equal (File.Exists(VerifyStamp.PathOf path)) stampedOs "the builder wrote the stamp (Linux)"
            for _ in 1 .. 2 do
                let m = openMapped cache key TableBacking.Mapped
                Expect.equal m.Mapped.PayloadVerifiedAtOpen (not stampedOs) "stamp matches: no payload read (elsewhere: always verified)"
                expectSame m t
        }
        test "a bit flipped after the build is a Corrupt miss under Mapped and Auto, even with the old mtime put back" {
            use d = new TempDir()
            let cache, key, path, _ = storedIn d.Path
            // A whole-second mtime, so putting it back is exact to the nanosecond (.NET sets times in 100 ns ticks).
            let mtime = DateTime(2020, 1, 1, 0, 0, 0, DateTimeKind.Utc)
            File.SetLastWriteTimeUtc(path, mtime)
            Expect.isTrue (openMapped cache key TableBacking.Mapped).Mapped.PayloadVerifiedAtOpen "the time change made it verify"
            Expect.equal (openMapped cache key TableBacking.Mapped).Mapped.PayloadVerifiedAtOpen (not stampedOs) "then it is stamped"
            flipPayloadBit path
            File.SetLastWriteTimeUtc(path, mtime) // only ctime now tells: userspace cannot set it back
            for backing in [ TableBacking.Mapped; TableBacking.Auto; TableBacking.Memory ] do
                let r = run (cache.TryLoadAsync(key, fp "ab", backing))
                Expect.isFalse r.IsHit $"{backing}: damaged bytes are not served"
                Expect.equal r.Reason (Nullable CacheMissReason.Corrupt) r.Detail
                Expect.stringContains r.Detail "payload checksum" $"{backing}: says why"
                Expect.stringContains r.Detail path "names the file"
        }
        test "a stale stamp (the file replaced by rename: a new inode, same bytes) makes the open verify once, then stamp" {
            use d = new TempDir()
            let cache, key, path, t = storedIn d.Path
            let copy = Path.Combine(d.Path, "copy.tmp")
            File.Copy(path, copy)
            File.Move(copy, path, true)
            let m = openMapped cache key TableBacking.Mapped
            Expect.isTrue m.Mapped.PayloadVerifiedAtOpen "verified: the stamp is of the old inode"
            expectSame m t
            let m2 = openMapped cache key TableBacking.Auto
            Expect.equal m2.Mapped.PayloadVerifiedAtOpen (not stampedOs) "stamped by the verifying open"
        }
        test "no stamp: the first mapped open verifies; a memory load or verify also stamps" {
            use d = new TempDir()
            let cache, key, path, _ = storedIn d.Path
            File.Delete(VerifyStamp.PathOf path)
            Expect.isTrue (openMapped cache key TableBacking.Mapped).Mapped.PayloadVerifiedAtOpen "no stamp: verified"
            Expect.equal (openMapped cache key TableBacking.Mapped).Mapped.PayloadVerifiedAtOpen (not stampedOs) "then stamped"
            File.Delete(VerifyStamp.PathOf path)
            Expect.isTrue (run (cache.VerifyAsync(key, fp "ab"))).IsHit "verify"
            Expect.equal (openMapped cache key TableBacking.Mapped).Mapped.PayloadVerifiedAtOpen (not stampedOs) "verify stamped"
        }
        test "a stamp naming another checksum or identity vouches for nothing" {
            use d = new TempDir()
            let cache, key, path, _ = storedIn d.Path
            let stamp = VerifyStamp.PathOf path
            if stampedOs then
                let text = File.ReadAllText stamp
                File.WriteAllText(stamp, text.Replace("checksum=xxh3-128:", "checksum=xxh3-128:0"))
                Expect.isTrue (openMapped cache key TableBacking.Mapped).Mapped.PayloadVerifiedAtOpen "other checksum"
                let text = File.ReadAllText stamp
                let ino = text.Split('\n') |> Array.find (fun l -> l.StartsWith "inode=")
                File.WriteAllText(stamp, text.Replace(ino, ino + "1"))
                Expect.isTrue (openMapped cache key TableBacking.Mapped).Mapped.PayloadVerifiedAtOpen "other inode"
            File.WriteAllText(stamp, "garbage")
            Expect.isTrue (openMapped cache key TableBacking.Mapped).Mapped.PayloadVerifiedAtOpen "garbage"
        }
        test "the loader rebuilds a damaged cache and serves the source's bytes (Auto and Mapped), then maps the new file unverified" {
            use t = new TempDir()
            let data = Path.Combine(t.Path, "data")
            let cacheDir = Path.Combine(t.Path, "cache")
            copyEmbedded data |> ignore
            let load backing useCache =
                TfdsLoader.LoadAsync(TfdsLoadOptions(DatasetName = "synthetic_digits", DataDir = data, CacheDir = cacheDir, Splits = [| "test" |],
                                                     Table = backing, UseCache = useCache)).GetAwaiter().GetResult()
            let truth = (load TableBacking.Memory false).Table
            for backing in [ TableBacking.Auto; TableBacking.Mapped ] do
                let first = load backing true
                Expect.equal first.Table.Backing TableBacking.Mapped "mapped"
                let path = first.CachePath
                flipBitAt path (FileInfo(path).Length / 2L) // the data column is most of the file
                let r = load backing true
                Expect.isFalse r.FromCache $"{backing}: the damaged file is not a hit ({r.CacheDetail})"
                Expect.stringContains r.CacheDetail "payload checksum" "the miss says why"
                expectSame r.Table truth
                let again = load backing true
                Expect.isTrue again.FromCache "the rebuilt file hits"
                Expect.equal again.Table.Mapped.PayloadVerifiedAtOpen (not stampedOs) "stamped by the rebuild"
                expectSame again.Table truth
        }
        test "cache build writes the stamp and cache clear removes it with the file" {
        use t = new TempDir()
        let data = Path.Combine(t.Path, "data")
        let cacheDir = Path.Combine(t.Path, "cache")
        copyEmbedded data |> ignore
        let args = [ "synthetic_digits"; "--data-dir"; data; "--cache-dir"; cacheDir; "--splits"; "test" ]
        let code, _, err = cliIn ([ "cache"; args.Head; "build" ] @ args.Tail)
        Expect.equal code 0 $"build (stderr {err})"
        let stamps () = Directory.GetFiles(cacheDir, "*" + VerifyStamp.Suffix)
        Expect.equal (stamps ()).Length (if stampedOs then 1 else 0) "one stamp beside the file (Linux)"
        let code, _, err = cliIn ([ "cache"; args.Head; "clear" ] @ args.Tail)
        Expect.equal code 0 $"clear (stderr {err})"
        Expect.isEmpty (stamps ()) "the stamp went with the file"
        Expect.isEmpty (Directory.GetFiles cacheDir) "nothing left"
    }
    ]
