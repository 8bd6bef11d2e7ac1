module Samplers.Tests.Io.ParquetCacheTests

open System
open System.Diagnostics
open System.IO
open System.Threading.Tasks
open Expecto
open Microsoft.Extensions.Logging
open Samplers.Cache
open Samplers
open Samplers.Imaging
open Samplers.Tfds
open Samplers.Tests.TestUtil

let private run (t: Task<'a>) = t.GetAwaiter().GetResult()

/// Deterministic example bytes: every byte depends on (example, position, salt).
let private fill (salt: int) (i: int) (span: Span<byte>) =
    for j in 0 .. span.Length - 1 do span[j] <- byte ((i * 131 + j * 7 + salt * 17) % 251)

let fixedTable (dtype: DType) (shape: int[]) (n: int) (chunkBytes: int64) (withIds: bool) (salt: int) =
    let b = ExampleTableBuilder.Fixed(dtype, ReadOnlySpan shape, n, chunkBytes)
    for i in 0 .. n - 1 do
        fill salt i (b.Slot i)
        b.SetLabel(i, int64 ((i * 7 + salt) % 10))
        if withIds then b.SetId(i, sprintf "ds-train.tfrecord-%05d-of-00004__%d" (i % 4) i)
    b.ClassNames <- [| for c in 0 .. 9 -> sprintf "class-%d" c |]
    b.Build()

let raggedTableScaled (scale: int) (n: int) (chunkBytes: int64) (withIds: bool) (salt: int) =
    let b = ExampleTableBuilder.Ragged(DType.UInt8, ReadOnlySpan [| -1; -1; 3 |], n, chunkBytes)
    for i in 0 .. n - 1 do
        let h, w = scale * (1 + (i * 5 + salt) % 9), 1 + (i * 3) % 7
        fill salt i (b.AllocateRagged(i, ReadOnlySpan [| h; w; 3 |]))
        b.SetLabel(i, int64 (i % 3))
        if withIds then b.SetId(i, sprintf "ragged__%d" i)
    b.ClassNames <- [| "a"; "b"; "c" |]
    b.Build()

let raggedTable n chunkBytes withIds salt = raggedTableScaled 1 n chunkBytes withIds salt

/// Fails unless the two tables hold the same dtype, shapes, bytes, labels, ids and class names.
let expectSame (actual: ExampleTable) (expected: ExampleTable) =
    Expect.equal actual.DType expected.DType "dtype"
    Expect.equal (actual.ExampleShape.ToArray()) (expected.ExampleShape.ToArray()) "declared shape"
    Expect.equal actual.Count expected.Count "count"
    Expect.equal actual.IsRagged expected.IsRagged "layout"
    Expect.equal (actual.Labels.ToArray()) (expected.Labels.ToArray()) "labels"
    Expect.equal actual.HasIds expected.HasIds "has ids"
    Expect.sequenceEqual actual.ClassNames expected.ClassNames "class names"
    for i in 0 .. expected.Count - 1 do
        if not (actual.GetExample(i).SequenceEqual(expected.GetExample i)) then failtestf "example %d bytes differ" i
        if not (actual.GetShape(i).SequenceEqual(expected.GetShape i)) then failtestf "example %d shape differs" i
        if actual.GetId i <> expected.GetId i then failtestf "example %d id %s, expected %s" i (actual.GetId i) (expected.GetId i)

let private keyFor (dir: string) = CacheKey(dir, "mnist", "", "3.0.1", "train+test", "image", "label")
let private fp (s: string) = SourceFingerprint.FromValue(String.replicate 8 s)

let private cacheIn (dir: string) = ParquetCache(ParquetCacheOptions(Directory = Path.Combine(dir, "cache"), RowGroupBytes = 4096L, ChunkBytes = 5000L))

let private roundTrip (table: ExampleTable) =
    use d = new TempDir()
    let cache = cacheIn d.Path
    let key = keyFor d.Path
    let stored = run (cache.StoreAsync(key, fp "ab", table))
    Expect.isTrue stored.Stored stored.Detail
    let r = run (cache.TryLoadAsync(key, fp "ab"))
    Expect.isTrue r.IsHit r.Detail
    expectSame r.Table table
    r.Table

/// A logger that keeps every line.
type ListLogger() =
    let lines = Collections.Concurrent.ConcurrentQueue<LogLevel * string>()
    member _.Lines = lines.ToArray() |> List.ofArray
    interface ILogger with
        member _.BeginScope<'TState>(_state: 'TState) : IDisposable = null
        member _.IsEnabled(_level: LogLevel) = true
        member _.Log<'TState>(level: LogLevel, _id: EventId, state: 'TState, ex: exn, formatter: Func<'TState, exn, string>) =
            lines.Enqueue((level, formatter.Invoke(state, ex)))

/// A progress sink that records reports synchronously (Progress<T> would post them later).
type ListProgress() =
    let items = Collections.Concurrent.ConcurrentQueue<CacheProgress>()
    member _.Items = items.ToArray() |> List.ofArray
    interface IProgress<CacheProgress> with
        member _.Report p = items.Enqueue p

/// A seekable stream that returns at most one byte per read, as slow network streams may.
type OneByteStream(inner: Stream) =
    inherit Stream()
    override _.CanRead = true
    override _.CanSeek = true
    override _.CanWrite = false
    override _.Length = inner.Length
    override _.Position with get () = inner.Position and set v = inner.Position <- v
    override _.Flush() = ()
    override _.Read(buffer: byte[], offset: int, count: int) = inner.Read(buffer, offset, min count 1)
    override _.Read(buffer: Span<byte>) = inner.Read(buffer.Slice(0, min buffer.Length 1))
    override this.ReadAsync(buffer: Memory<byte>, _ct) = ValueTask<int>(this.Read(buffer.Span))
    override this.ReadAsync(buffer: byte[], offset: int, count: int, _ct) = Task.FromResult(this.Read(buffer, offset, count))
    override _.Seek(o, origin) = inner.Seek(o, origin)
    override _.SetLength _ = raise (NotSupportedException())
    override _.Write(_: byte[], _: int, _: int) = raise (NotSupportedException())

let private expectMiss (r: CacheLoadResult) (reason: CacheMissReason) (phrase: string) =
    Expect.isFalse r.IsHit $"expected a miss ({reason}), got a hit"
    Expect.equal r.Reason (Nullable reason) $"miss reason; detail: {r.Detail}"
    Expect.stringContains r.Detail phrase "detail names the cause"

/// Stores a valid cache, applies `damage` to the file bytes, and checks the load is a Corrupt miss, then a rebuild hits.
let private damaged (damage: byte[] -> byte[]) (phrase: string) =
    use d = new TempDir()
    let cache = cacheIn d.Path
    let key = keyFor d.Path
    let table = fixedTable DType.UInt8 [| 8; 8 |] 40 ExampleTable.DefaultChunkBytes true 1
    Expect.isTrue (run (cache.StoreAsync(key, fp "ab", table))).Stored "stored"
    let path = cache.GetPath key
    File.WriteAllBytes(path, damage (File.ReadAllBytes path))
    let r = run (cache.TryLoadAsync(key, fp "ab"))
    expectMiss r CacheMissReason.Corrupt phrase
    Expect.isTrue (run (cache.StoreAsync(key, fp "ab", table))).Stored "rebuilt"
    expectSame (run (cache.TryLoadAsync(key, fp "ab"))).Table table

// ---- child processes ----

let private killTable variant = fixedTable DType.UInt8 [| 28; 28 |] 3000 ExampleTable.DefaultChunkBytes true variant

/// Child mode "cache-writer dir": stores tables A and B (fingerprints "a"/"b") for one key, alternating, until killed.
/// Prints "ready" once, then "stored" after every completed store (the parent waits for one on some trials).
let writerChild (args: string[]) =
    let dir = args[0]
    let cache = ParquetCache(ParquetCacheOptions(Directory = dir, RowGroupBytes = 256L * 1024L))
    let key = keyFor dir
    let a, b = killTable 1, killTable 2
    Console.Out.WriteLine "ready"
    Console.Out.Flush()
    let mutable i = 0
    while true do
        let r = run (cache.StoreAsync(key, (if i % 2 = 0 then fp "a" else fp "b"), (if i % 2 = 0 then a else b)))
        if not r.Stored then eprintfn "%s" r.Detail
        else
            Console.Out.WriteLine "stored"
            Console.Out.Flush()
        i <- i + 1
    0

/// Child mode "cache-store dir times": stores table A `times` times; exit code 0 when every store succeeded.
let storeChild (args: string[]) =
    let dir, times = args[0], int args[1]
    let cache = ParquetCache(ParquetCacheOptions(Directory = dir, RowGroupBytes = 256L * 1024L))
    let a = killTable 1
    let mutable failures = 0
    for _ in 1 .. times do
        let r = run (cache.StoreAsync(keyFor dir, fp "a", a))
        if not r.Stored then
            eprintfn "%s" r.Detail
            failures <- failures + 1
    failures

/// True when a file can be created in `dir` (false for a read-only directory, unless the process may ignore modes).
let private canWrite (dir: string) =
    let probe = Path.Combine(dir, "probe")
    try
        File.WriteAllText(probe, "")
        File.Delete probe
        true
    with _ -> false

/// Child mode "cache-store-ro dir": stores a small table into the read-only cache directory `dir`. Prints "writable"
/// (exit 5) when the directory can be written after all, else "stored=True|False" and the store's detail (exit 0).
let readOnlyStoreChild (args: string[]) =
    let dir = args[0]
    if canWrite dir then
        Console.Out.WriteLine "writable"
        5
    else
        let cache = ParquetCache(ParquetCacheOptions(Directory = dir))
        let s = run (cache.StoreAsync(keyFor dir, fp "ab", fixedTable DType.UInt8 [| 3 |] 5 64L false 0))
        Console.Out.WriteLine $"stored={s.Stored}"
        Console.Out.WriteLine s.Detail
        0

/// Child mode "cache-dir": prints ParquetCache.ResolveDirectory() (environment given by the parent).
let resolveChild (_: string[]) =
    Console.Out.WriteLine(ParquetCache.ResolveDirectory())
    0

[<Tests>]
let tests =
    testList "Io.ParquetCache" [
        testList "round trip" [
            testCase "a fixed uint8 table with ids spanning several chunks and row groups comes back byte-identical" <| fun () ->
                let t = roundTrip (fixedTable DType.UInt8 [| 28; 28 |] 50 (784L * 3L) true 3)
                Expect.isGreaterThan t.ChunkCount 1 "the loaded table spans several chunks"
            for dtype, shape in [ DType.Float32, [| 4; 3 |]; DType.Int64, [| 5 |]; DType.UInt16, [| 2; 2; 2 |]; DType.Float16, [| 7 |]
                                  DType.Float64, [| 3 |]; DType.Bool, [| 9 |]; DType.Int8, [| 1 |]; DType.Int32, [| 0 |] ] do
                testCase $"a fixed {DTypes.Name dtype} table of shape {shape.Length}-d without ids comes back byte-identical" <| fun () ->
                    roundTrip (fixedTable dtype shape 37 64L false 5) |> ignore
            testCase "uncompressed fixed tables are read by the page fast path" <| fun () ->
                let before = Threading.Interlocked.Read(&PlainPageReader.FastGroups)
                roundTrip (fixedTable DType.UInt8 [| 28; 28 |] 50 (784L * 3L) true 3) |> ignore
                Expect.isGreaterThan (Threading.Interlocked.Read(&PlainPageReader.FastGroups)) before "fast path used"
            for compression in [ Parquet.CompressionMethod.Snappy; Parquet.CompressionMethod.Zstd ] do
                testCase $"a {compression}-compressed cache (read by Parquet.Net, not the fast path) comes back byte-identical" <| fun () ->
                    use d = new TempDir()
                    let cache = ParquetCache(ParquetCacheOptions(Directory = d.Path, Compression = compression, RowGroupBytes = 4096L))
                    let key = keyFor d.Path
                    let table = fixedTable DType.UInt8 [| 28; 28 |] 50 ExampleTable.DefaultChunkBytes true 8
                    Expect.isTrue (run (cache.StoreAsync(key, fp "ab", table))).Stored "stored"
                    let r = run (cache.TryLoadAsync(key, fp "ab"))
                    Expect.isTrue r.IsHit r.Detail
                    expectSame r.Table table
            testCase "a ragged table with ids spanning several chunks comes back byte-identical" <| fun () ->
                // The ragged builder's first chunk is 1 MiB whatever the chunk size, so use > 1 MiB of examples.
                let t = roundTrip (raggedTableScaled 40 1000 512L true 4)
                Expect.isTrue t.IsRagged "ragged"
                Expect.isGreaterThan t.ChunkCount 1 "several chunks"
            testCase "a ragged table without ids comes back byte-identical" <| fun () ->
                roundTrip (raggedTable 31 ExampleTable.DefaultChunkBytes false 6) |> ignore
            testCase "an empty table comes back empty" <| fun () ->
                roundTrip (fixedTable DType.UInt8 [| 2 |] 0 64L false 0) |> ignore
            testCase "a one-byte-per-read stream loads the same table" <| fun () ->
                use d = new TempDir()
                let cache = cacheIn d.Path
                let key = keyFor d.Path
                let table = raggedTable 25 ExampleTable.DefaultChunkBytes true 2
                Expect.isTrue (run (cache.StoreAsync(key, fp "ab", table))).Stored "stored"
                use fs = File.OpenRead(cache.GetPath key)
                use slow = new OneByteStream(fs)
                let r = run (cache.TryLoadFromStreamAsync(slow, "slow", key, fp "ab"))
                Expect.isTrue r.IsHit r.Detail
                expectSame r.Table table
        ]

        testList "invalidation" [
            testCase "no file is a NotFound miss, and disabled caching misses and stores nothing" <| fun () ->
                use d = new TempDir()
                let key = keyFor d.Path
                expectMiss (run ((cacheIn d.Path).TryLoadAsync(key, fp "ab"))) CacheMissReason.NotFound "no cache file"
                let off = ParquetCache(ParquetCacheOptions(Directory = d.Path, Enabled = false))
                let s = run (off.StoreAsync(key, fp "ab", fixedTable DType.UInt8 [| 1 |] 3 64L false 0))
                Expect.isFalse s.Stored "nothing stored"
                Expect.isEmpty (Directory.GetFiles d.Path) "no file written"
                expectMiss (run (off.TryLoadAsync(key, fp "ab"))) CacheMissReason.Disabled "turned off"
            testCase "a changed shard size, shard time, shard list, dataset_info.json or features.json changes the fingerprint and misses" <| fun () ->
                use d = new TempDir()
                let shard n = Path.Combine(d.Path, sprintf "mnist-train.tfrecord-0000%d-of-00002" n)
                for n in 0 .. 1 do File.WriteAllBytes(shard n, Array.create 100 (byte n))
                let info, feats = Path.Combine(d.Path, "dataset_info.json"), Path.Combine(d.Path, "features.json")
                File.WriteAllText(info, "{\"name\": \"mnist\"}")
                File.WriteAllText(feats, "{}")
                let compute () = SourceFingerprint.Compute([ shard 0; shard 1 ], info, feats)
                let cache = cacheIn d.Path
                let key = keyFor d.Path
                let table = fixedTable DType.UInt8 [| 4 |] 10 64L false 0
                let f0 = compute ()
                Expect.equal (compute ()) f0 "the fingerprint is stable"
                Expect.isTrue (run (cache.StoreAsync(key, f0, table))).Stored "stored"
                Expect.isTrue (run (cache.TryLoadAsync(key, compute ()))).IsHit "unchanged source hits"
                let changes : (string * (unit -> unit)) list = [
                    "shard size", (fun () -> File.AppendAllText(shard 1, "x"))
                    "shard time", (fun () -> File.SetLastWriteTimeUtc(shard 0, DateTime(2001, 1, 1, 0, 0, 0, DateTimeKind.Utc)))
                    "dataset_info.json", (fun () -> File.WriteAllText(info, "{\"name\": \"mnist\", \"v\": 2}"))
                    "features.json", (fun () -> File.WriteAllText(feats, "{ }")) ]
                for what, change in changes do
                    change ()
                    let f = compute ()
                    expectMiss (run (cache.TryLoadAsync(key, f))) CacheMissReason.SourceChanged "source changed"
                    Expect.isTrue (run (cache.StoreAsync(key, f, table))).Stored $"rebuilt after {what}"
                    Expect.isTrue (run (cache.TryLoadAsync(key, f))).IsHit $"hit after rebuilding for {what}"
                let fewer = SourceFingerprint.Compute([ shard 0 ], info, feats)
                expectMiss (run (cache.TryLoadAsync(key, fewer))) CacheMissReason.SourceChanged "source changed"
            testCase "a shard reached through a symbolic link is fingerprinted by its target: a changed or re-pointed target misses" <| fun () ->
                use d = new TempDir()
                let target n = Path.Combine(d.Path, sprintf "store-%d.bin" n)
                File.WriteAllBytes(target 0, Array.create 100 0uy)
                File.WriteAllBytes(target 1, Array.create 300 1uy)
                let link = Path.Combine(d.Path, "mnist-train.tfrecord-00000-of-00001")
                File.CreateSymbolicLink(link, target 0) |> ignore
                let compute () = SourceFingerprint.Compute([ link ], null, null)
                let f0 = compute ()
                Expect.equal (compute ()) f0 "stable while nothing changes"
                // The link itself stays as it is (same size, same time): only what it points at changes.
                File.AppendAllText(target 0, "more bytes")
                let f1 = compute ()
                Expect.notEqual f1.Value f0.Value "a grown target changes the fingerprint"
                File.Delete link
                File.CreateSymbolicLink(link, target 1) |> ignore
                File.SetLastWriteTimeUtc(target 1, File.GetLastWriteTimeUtc(target 0))
                Expect.notEqual (compute ()).Value f1.Value "a link re-pointed to another file changes the fingerprint"
            testCase "a missing shard is a DatasetNotFoundException naming the file" <| fun () ->
                use d = new TempDir()
                let missing = Path.Combine(d.Path, "nope.tfrecord")
                let e = throwsWith<DatasetNotFoundException> (fun () -> SourceFingerprint.Compute([ missing ], null, null) |> ignore) "missing shard"
                Expect.stringContains e.Message "shard not found" "message"
                Expect.equal e.FilePath missing "file path"
            testCase "another cache schema version misses with SchemaVersionChanged" <| fun () ->
                use d = new TempDir()
                let cache = cacheIn d.Path
                let key = keyFor d.Path
                let table = fixedTable DType.UInt8 [| 3 |] 5 64L false 0
                Expect.isTrue (run (cache.StoreAsync(key, fp "ab", table))).Stored "stored"
                let path = cache.GetPath key
                let bytes = File.ReadAllBytes path
                // Patch the one-character value that follows the schema-version key in the footer: same length, valid thrift.
                let name = Text.Encoding.ASCII.GetBytes "samplers.cache.schema_version"
                let at = (ReadOnlySpan bytes).IndexOf(ReadOnlySpan name) + name.Length
                let v = Array.IndexOf(bytes, byte '1', at)
                Expect.isLessThan (v - at) 4 "the value follows the key"
                bytes[v] <- byte '7'
                File.WriteAllBytes(path, bytes)
                expectMiss (run (cache.TryLoadAsync(key, fp "ab"))) CacheMissReason.SchemaVersionChanged "schema version 7"
            testCase "a file of another key at this key's path misses with KeyMismatch" <| fun () ->
                use d = new TempDir()
                let cache = cacheIn d.Path
                let key, other = keyFor d.Path, CacheKey(d.Path, "mnist", "", "3.0.1", "train", "image", "label")
                Expect.notEqual (cache.GetPath key) (cache.GetPath other) "different keys, different files"
                Expect.isTrue (run (cache.StoreAsync(other, fp "ab", fixedTable DType.UInt8 [| 3 |] 5 64L false 0))).Stored "stored"
                File.Copy(cache.GetPath other, cache.GetPath key)
                expectMiss (run (cache.TryLoadAsync(key, fp "ab"))) CacheMissReason.KeyMismatch "another key"
            testCase "a dtype, shape or class-name mismatch with the expectation misses with MetadataMismatch" <| fun () ->
                use d = new TempDir()
                let cache = cacheIn d.Path
                let key = keyFor d.Path
                let table = fixedTable DType.UInt8 [| 3; 2 |] 5 64L false 0
                Expect.isTrue (run (cache.StoreAsync(key, fp "ab", table))).Stored "stored"
                let ok = CacheExpectation(Nullable DType.UInt8, [| 3; 2 |], table.ClassNames)
                Expect.isTrue (run (cache.TryLoadAsync(key, fp "ab", ok))).IsHit "matching expectation hits"
                for e, phrase in [ CacheExpectation(DType = Nullable DType.Float32), "dtype uint8"
                                   CacheExpectation(Shape = [| 6 |]), "shape [3, 2]"
                                   CacheExpectation(ClassNames = [| "x" |]), "class names" ] do
                    expectMiss (run (cache.TryLoadAsync(key, fp "ab", e))) CacheMissReason.MetadataMismatch phrase
        ]

        testList "damaged files" [
            testCase "a flipped payload byte is caught by the checksum" <| fun () ->
                damaged (fun b ->
                    let data = Text.Encoding.ASCII.GetBytes "ds-train"
                    let firstId = (ReadOnlySpan b).IndexOf(ReadOnlySpan data)
                    // Examples follow the id column; flip one byte well inside them.
                    let i = firstId + (b.Length - firstId) / 3
                    b[i] <- b[i] ^^^ 0x55uy
                    b) "checksum"
            testCase "a wrong value length in a data page is caught by the page reader" <| fun () ->
                damaged (fun b ->
                    // Example 0 of the 8x8 table: length prefix 64 (LE) then bytes 17, 24, 31 (see `fill`, salt 1).
                    let at = (ReadOnlySpan b).IndexOf(ReadOnlySpan [| 64uy; 0uy; 0uy; 0uy; 17uy; 24uy; 31uy |])
                    Expect.isGreaterThan at 0 "found the first value"
                    b[at] <- 63uy
                    b) "has 63 bytes, expected 64"
            testCase "a file truncated at any of 60 offsets is a Corrupt miss, never a hit or an exception" <| fun () ->
                use d = new TempDir()
                let cache = cacheIn d.Path
                let key = keyFor d.Path
                let table = fixedTable DType.UInt8 [| 8; 8 |] 40 ExampleTable.DefaultChunkBytes true 1
                Expect.isTrue (run (cache.StoreAsync(key, fp "ab", table))).Stored "stored"
                let path = cache.GetPath key
                let full = File.ReadAllBytes path
                let rnd = Random(42)
                let offsets = [ 0; 1; 3; 4; 5; full.Length - 1; full.Length - 4; full.Length - 8; full.Length - 9 ] @ [ for _ in 1 .. 51 -> rnd.Next(1, full.Length) ]
                for n in offsets do
                    File.WriteAllBytes(path, full[.. n - 1])
                    let r = run (cache.TryLoadAsync(key, fp "ab"))
                    if r.IsHit || r.Reason <> Nullable CacheMissReason.Corrupt then failtestf "truncated at %d of %d: %A %s" n full.Length r.Reason r.Detail
            testCase "a text file at the cache path is a Corrupt miss" <| fun () ->
                damaged (fun _ -> Text.Encoding.UTF8.GetBytes "this is not parquet at all\n") "corrupt"
            testCase "random bytes between PAR1 magics are a Corrupt miss" <| fun () ->
                damaged (fun _ ->
                    let r = Random(7)
                    let b = Array.zeroCreate<byte> 5000
                    r.NextBytes b
                    let magic = "PAR1"B
                    magic.CopyTo(b, 0); magic.CopyTo(b, b.Length - 4)
                    b) "corrupt"
            testCase "a foreign Parquet file (no samplers metadata) is a Corrupt miss naming the missing key" <| fun () ->
                damaged (fun _ ->
                    use ms = new MemoryStream()
                    let f = Parquet.Schema.DataField<int64>("label")
                    (task {
                        let! w = Parquet.ParquetWriter.CreateAsync(Parquet.Schema.ParquetSchema(f), ms, null, false, Threading.CancellationToken.None)
                        use g = w.CreateRowGroup()
                        do! g.WriteAsync<int64>(f, ReadOnlyMemory [| 1L; 2L |], Nullable(), null, Threading.CancellationToken.None)
                        g.CompleteValidate()
                        do! w.DisposeAsync()
                    }).Wait()
                    ms.ToArray()) "metadata key 'samplers.cache.schema_version' is missing"
            testCase "bad cache files are logged as warnings and reported as a Miss phase with the reason" <| fun () ->
                use d = new TempDir()
                let log = ListLogger()
                let cache = ParquetCache(ParquetCacheOptions(Directory = d.Path), log)
                let key = keyFor d.Path
                let progress = ListProgress()
                File.WriteAllText(cache.GetPath key, "junk")
                let r = run (cache.TryLoadAsync(key, fp "ab", null, progress))
                Expect.equal r.Reason (Nullable CacheMissReason.Corrupt) "corrupt"
                Expect.exists log.Lines (fun (l, m) -> l = LogLevel.Warning && m.Contains "Cache miss (Corrupt)") "warning logged"
                Expect.exists progress.Items (fun p -> p.Phase = CachePhase.Miss && p.Reason = Nullable CacheMissReason.Corrupt) "miss reported"
                let table = fixedTable DType.UInt8 [| 3 |] 5 64L false 0
                Expect.isTrue (run (cache.StoreAsync(key, fp "ab", table, progress))).Stored "stored"
                let hit = run (cache.TryLoadAsync(key, fp "ab", null, progress))
                Expect.isTrue hit.IsHit "hit"
                Expect.exists log.Lines (fun (l, m) -> l = LogLevel.Information && m.StartsWith "Cache hit") "hit logged"
                let phases = progress.Items |> List.map (fun p -> p.Phase) |> List.distinct
                for ph in [ CachePhase.Writing; CachePhase.Stored; CachePhase.Checking; CachePhase.Reading; CachePhase.Hit ] do
                    Expect.contains phases ph $"phase {ph} reported"
                let v = run (cache.VerifyAsync(key, fp "ab"))
                Expect.isTrue v.IsHit "verify passes on a good file"
                expectMiss (run (cache.VerifyAsync(key, fp "cd"))) CacheMissReason.SourceChanged "source changed"
        ]

        testList "directories and temporary files" [
            testCase "a cache directory under a regular file degrades to no cache with a warning" <| fun () ->
                use d = new TempDir()
                let blocker = Path.Combine(d.Path, "plain-file")
                File.WriteAllText(blocker, "x")
                let log = ListLogger()
                let cache = ParquetCache(ParquetCacheOptions(Directory = Path.Combine(blocker, "cache")), log)
                let key = keyFor d.Path
                let s = run (cache.StoreAsync(key, fp "ab", fixedTable DType.UInt8 [| 3 |] 5 64L false 0))
                Expect.isFalse s.Stored "not stored"
                Expect.stringContains s.Detail "could not write the cache" "detail"
                Expect.exists log.Lines (fun (l, _) -> l = LogLevel.Warning) "warning logged"
                expectMiss (run (cache.TryLoadAsync(key, fp "ab"))) CacheMissReason.NotFound "no cache file"
            testCase "a read-only cache directory degrades to no cache (as root too, without the capability to ignore modes)" <| fun () ->
                use d = new TempDir()
                let dir = Path.Combine(d.Path, "ro")
                Directory.CreateDirectory dir |> ignore
                File.SetUnixFileMode(dir, UnixFileMode.UserRead ||| UnixFileMode.UserExecute)
                try
                    // Root ignores the mode (CAP_DAC_OVERRIDE), and CI runs as root: there the store runs in a child
                    // whose bounding set lacks that capability (util-linux setpriv), so the mode holds again.
                    let root = canWrite dir
                    let psi = dotnetStartInfo None [ Reflection.Assembly.GetEntryAssembly().Location; "--child"; "cache-store-ro"; dir ]
                    if root then
                        let setpriv = [ "/usr/bin/setpriv"; "/bin/setpriv"; "/usr/sbin/setpriv" ] |> List.tryFind File.Exists
                        match setpriv with
                        | None when Environment.GetEnvironmentVariable "CI" = "true" ->
                            failtest "running as root without setpriv (util-linux): cannot deny writes to test the read-only cache"
                        | None -> skiptest "running as root without setpriv (util-linux): cannot deny writes to a root process"
                        | Some exe ->
                            let args = List.ofSeq psi.ArgumentList
                            psi.FileName <- exe
                            psi.ArgumentList.Clear()
                            for a in [ "--bounding-set=-dac_override,-dac_read_search"; "--"; "dotnet" ] @ args do psi.ArgumentList.Add a
                    use p = Diagnostics.Process.Start psi
                    let code, out, err = collectOutput p 60_000 "the read-only store child did not finish within 60 s"
                    Expect.equal code 0 $"child exit code (stdout: {out}, stderr: {err})"
                    Expect.stringStarts out "stored=False" "not stored"
                    Expect.stringContains out dir "the detail names the directory"
                finally
                    File.SetUnixFileMode(dir, UnixFileMode.UserRead ||| UnixFileMode.UserWrite ||| UnixFileMode.UserExecute)
            testCase "stale temporary files are removed, fresh ones kept, and none is ever read as the cache" <| fun () ->
                use d = new TempDir()
                let cache = ParquetCache(ParquetCacheOptions(Directory = d.Path))
                let key = keyFor d.Path
                let table = fixedTable DType.UInt8 [| 3 |] 5 64L false 0
                // A complete file under a temporary name must not count as the cache.
                Expect.isTrue (run (cache.StoreAsync(key, fp "ab", table))).Stored "stored"
                let old = Path.Combine(d.Path, $".{key.FileName}.999-old.tmp")
                let fresh = Path.Combine(d.Path, $".{key.FileName}.999-new.tmp")
                File.Move(cache.GetPath key, old)
                File.Copy(old, fresh)
                File.SetLastWriteTimeUtc(old, DateTime.UtcNow.AddHours -2.0)
                expectMiss (run (cache.TryLoadAsync(key, fp "ab"))) CacheMissReason.NotFound "no cache file"
                Expect.equal (cache.CleanStaleTempFiles()) 1 "one stale file removed"
                Expect.isFalse (File.Exists old) "stale removed"
                Expect.isTrue (File.Exists fresh) "fresh kept"
                Expect.isTrue (run (cache.StoreAsync(key, fp "ab", table))).Stored "stored"
                Expect.equal (Directory.GetFiles(d.Path, "*.tmp").Length) 1 "a store leaves no temporary file of its own"
            testCase "during tests the default cache and data directories are temporary folders, never the user's" <| fun () ->
                // Main points them at a folder of its own (TestEnvironment.isolate); a run that would touch the
                // user's ~/.cache/samplers or ~/tensorflow_datasets fails here instead.
                let temp = Path.GetFullPath(Path.GetTempPath())
                let home = Environment.GetFolderPath Environment.SpecialFolder.UserProfile
                for what, dir in [ "cache", ParquetCache.ResolveDirectory(); "TFDS data", Samplers.Tfds.DataDirectory.Resolve() ] do
                    let full = Path.GetFullPath dir
                    Expect.isTrue (full.StartsWith(temp, StringComparison.Ordinal))
                        $"the default {what} directory {full} is under the temporary folder {temp}"
                    if not (temp.StartsWith(home, StringComparison.Ordinal)) then
                        Expect.isFalse (full.StartsWith(home + string Path.DirectorySeparatorChar, StringComparison.Ordinal))
                            $"the default {what} directory {full} is not under the home folder {home}"
            testCase "the directory comes from the argument, else SAMPLERS_CACHE_DIR, else XDG_CACHE_HOME/samplers" <| fun () ->
                use d = new TempDir()
                Expect.equal (ParquetCache.ResolveDirectory(d.Path)) d.Path "explicit wins"
                let ask env =
                    use p = startChild "cache-dir" [] env
                    let out = p.StandardOutput.ReadToEnd().Trim()
                    p.WaitForExit()
                    out
                let envDir, xdg = Path.Combine(d.Path, "env"), Path.Combine(d.Path, "xdg")
                Expect.equal (ask [ "SAMPLERS_CACHE_DIR", envDir; "XDG_CACHE_HOME", xdg ]) envDir "environment variable"
                if OperatingSystem.IsLinux() then
                    Expect.equal (ask [ "SAMPLERS_CACHE_DIR", ""; "XDG_CACHE_HOME", xdg ]) (Path.Combine(xdg, "samplers")) "XDG cache home"
        ]

        testList "keys and arguments" [
            testCase "file names are readable and differ by key" <| fun () ->
                let k = CacheKey("data", "mnist", "", "3.0.1", "train+test", "image", "label")
                Expect.isMatch k.FileName "^mnist-3\\.0\\.1-train\\+test-image-label-[0-9a-f]{12}\\.parquet$" "readable name"
                let k2 = CacheKey("other", "mnist", "", "3.0.1", "train+test", "image", "label")
                Expect.notEqual k2.FileName k.FileName "the data directory changes the name"
                let k3 = CacheKey("data", "mnist", "cfg", "3.0.1", "train[:50%]", "image", "label")
                Expect.stringStarts k3.FileName "mnist-cfg-3.0.1-train__50__-image-label-" "config and a cleaned split spec"
            testCase "null and empty arguments are rejected with the parameter named" <| fun () ->
                use d = new TempDir()
                let cache = cacheIn d.Path
                throwsWith<ArgumentNullException> (fun () -> cache.TryLoadAsync(Unchecked.defaultof<CacheKey>, fp "ab") |> run |> ignore) "null key" |> ignore
                throwsWith<ArgumentNullException> (fun () -> cache.StoreAsync(keyFor d.Path, fp "ab", null) |> run |> ignore) "null table" |> ignore
                let e = throwsWith<ArgumentException> (fun () -> cache.GetPath(CacheKey(d.Path, "", "", "3.0.1", "train", "image", "label")) |> ignore) "empty dataset"
                Expect.stringContains e.Message "CacheKey.Dataset" "names the field"
                throwsWith<ArgumentOutOfRangeException> (fun () -> ParquetCache(ParquetCacheOptions(RowGroupBytes = 0L)) |> ignore) "row group size" |> ignore
        ]

        testList "interop" [
            testCase "ParquetSharp (Arrow's C++ reader) reads the columns and metadata" <| fun () ->
                use d = new TempDir()
                let cache = cacheIn d.Path
                let key = keyFor d.Path
                let table = fixedTable DType.UInt8 [| 28; 28 |] 30 ExampleTable.DefaultChunkBytes true 9
                Expect.isTrue (run (cache.StoreAsync(key, fp "ab", table))).Stored "stored"
                use r = new ParquetSharp.ParquetFileReader(cache.GetPath key)
                let meta = r.FileMetaData.KeyValueMetadata
                Expect.equal meta["samplers.cache.dtype"] "uint8" "dtype"
                Expect.equal meta["samplers.cache.shape"] "[28,28]" "shape"
                Expect.equal meta["samplers.cache.schema_version"] "1" "schema version"
                let names = [ for i in 0 .. r.FileMetaData.NumColumns - 1 -> r.FileMetaData.Schema.Column(i).Name ]
                Expect.equal names [ "index"; "label"; "id"; "data" ] "columns"
                let mutable row = 0
                for g in 0 .. r.FileMetaData.NumRowGroups - 1 do
                    use rg = r.RowGroup g
                    let n = int rg.MetaData.NumRows
                    use ix = rg.Column(0).LogicalReader<int64>()
                    use lab = rg.Column(1).LogicalReader<int64>()
                    use ids = rg.Column(2).LogicalReader<string>()
                    use data = rg.Column(3).LogicalReader<byte[]>()
                    let ix, lab, ids, data = ix.ReadAll n, lab.ReadAll n, ids.ReadAll n, data.ReadAll n
                    for i in 0 .. n - 1 do
                        Expect.equal ix[i] (int64 (row + i)) "index"
                        Expect.equal lab[i] table.Labels[row + i] "label"
                        Expect.equal ids[i] (table.GetId(row + i)) "id"
                        Expect.equal data[i] (table.GetExample(row + i).ToArray()) "bytes"
                    row <- row + n
                Expect.equal row table.Count "every row read"
        ]

        testSequenced <| testList "processes" [
            testCase "writers killed at random moments never leave a file that loads wrong data" <| fun () ->
                use d = new TempDir()
                let dir = Path.Combine(d.Path, "c")
                let cache = ParquetCache(ParquetCacheOptions(Directory = dir))
                let key = keyFor dir
                let a, b = killTable 1, killTable 2
                let rnd = Random(2024)
                let sw = Stopwatch.StartNew()
                let mutable trials, hits, misses = 0, 0, 0
                // The clock only bounds how long the test runs (at least 6 trials, then until 20 s or 40 trials); nothing
                // asserts a speed. Every third trial first waits for a completed store, so hits happen however slow
                // the machine is; the kill moments stay random (0-250 ms after start, or after that first store).
                while trials < 6 || (sw.Elapsed < TimeSpan.FromSeconds 20.0 && trials < 40) do
                    use p = startChild "cache-writer" [ dir ] []
                    let line = p.StandardOutput.ReadLine()
                    Expect.equal line "ready" "child started"
                    if trials % 3 = 2 then
                        // 60 s only turns a child that never completes a store (e.g. every store failing) into a
                        // failure instead of a hang; a store of these tables takes milliseconds.
                        let next = p.StandardOutput.ReadLineAsync()
                        if not (next.Wait(TimeSpan.FromSeconds 60.0)) then
                            p.Kill true
                            failtestf "trial %d: the writer completed no store within 60 s" trials
                        Expect.equal next.Result "stored" "the child completed a store"
                    Threading.Thread.Sleep(rnd.Next(0, 250))
                    p.Kill true
                    p.WaitForExit()
                    trials <- trials + 1
                    for f, t in [ fp "a", a; fp "b", b ] do
                        let r = run (cache.TryLoadAsync(key, f))
                        if r.IsHit then
                            hits <- hits + 1
                            expectSame r.Table t
                        else
                            misses <- misses + 1
                            match r.Reason.Value with
                            | CacheMissReason.NotFound | CacheMissReason.SourceChanged -> ()
                            | other -> failtestf "trial %d: a killed writer left a bad file: %A %s" trials other r.Detail
                eprintfn "kill test: %d trials, %d hits, %d misses, %d temporary files left by killed writers, %.1f s" trials hits misses (Directory.GetFiles(dir, "*.tmp").Length) sw.Elapsed.TotalSeconds
                Expect.isGreaterThan hits 0 "some trials found a complete file (the test saw real writes)"
            testCase "two processes building the same cache at once both succeed and the result is valid" <| fun () ->
                use d = new TempDir()
                let dir = Path.Combine(d.Path, "c")
                let ps = [ for _ in 1 .. 2 -> startChild "cache-store" [ dir; "6" ] [] ]
                for p in ps do
                    let err = p.StandardError.ReadToEnd()
                    p.WaitForExit()
                    Expect.equal p.ExitCode 0 $"every store succeeded: {err}"
                    p.Dispose()
                let r = run (ParquetCache(ParquetCacheOptions(Directory = dir)).TryLoadAsync(keyFor dir, fp "a"))
                Expect.isTrue r.IsHit r.Detail
                expectSame r.Table (killTable 1)
                Expect.isEmpty (Directory.GetFiles(dir, "*.tmp")) "no temporary files left"
        ]
    ]
