module Samplers.Tests.Io.MappedTableTests

open System
open System.IO
open System.Threading.Tasks
open Expecto
open Samplers
open Samplers.Imaging
open Samplers.Tfds
open Samplers.Cache
open Samplers.Tests.TestUtil
open Samplers.Tests.Io.ParquetCacheTests

let private run (t: Task<'a>) = t.GetAwaiter().GetResult()
let private keyFor (dir: string) = CacheKey(dir, "mnist", "", "3.0.1", "train+test", "image", "label")
let private fp (s: string) = SourceFingerprint.FromValue(String.replicate 8 s)

/// Stores `table` as a cache file in a fresh directory and opens it mapped (rowGroupBytes sets the page size, so small
/// values give many segments). The directory is deleted on return: the mapping keeps the inode (POSIX).
let toMappedWith (rowGroupBytes: int64) (table: ExampleTable) =
    use d = new TempDir()
    let cache = ParquetCache(ParquetCacheOptions(Directory = d.Path, RowGroupBytes = rowGroupBytes))
    let key = keyFor d.Path
    let stored = run (cache.StoreAsync(key, fp "ab", table))
    Expect.isTrue stored.Stored stored.Detail
    let r = run (cache.TryLoadAsync(key, fp "ab", TableBacking.Mapped))
    Expect.isTrue r.IsHit r.Detail
    Expect.equal r.Table.Backing TableBacking.Mapped "the table is mapped"
    r.Table

/// The façade suite's backing: many small pages, so rows cross segment boundaries everywhere.
let toMapped (table: ExampleTable) = toMappedWith 36L table

/// A stored cache in `dir`: (cache, key, path).
let private stored (dir: string) (options: ParquetCacheOptions) (table: ExampleTable) =
    let cache = ParquetCache(options)
    let key = keyFor dir
    Expect.isTrue (run (cache.StoreAsync(key, fp "ab", table))).Stored "stored"
    cache, key, cache.GetPath key

let private opts cpb epc = SamplerOptions(ClassesPerBatch = cpb, ExamplesPerClassPerBatch = epc, StepsPerEpoch = 30, Seed = 7UL)

let private batchBytes (s: MultiShotMemorySampler) id =
    use b = s.GenerateBatch id
    b.XBytes.ToArray(), b.Y.ToArray(), b.Indices.ToArray()

/// Loads `path`'s cache mapped with `change` run on it from a hook of the open (`setHook` installs it, null removes it);
/// expects that to have run (`what`) and the load to be a Corrupt miss whose detail contains `saying`.
let private corruptMissWhen (setHook: Action<string> -> unit) (cache: ParquetCache) key (path: string) (change: string -> unit) (what: string) (saying: string) =
    let hooked = ref false
    setHook (Action<string>(fun p -> if p = path then hooked.Value <- true; change p))
    try
        let r = run (cache.TryLoadAsync(key, fp "ab", TableBacking.Mapped))
        Expect.isTrue hooked.Value what
        Expect.equal r.Reason (Nullable CacheMissReason.Corrupt) r.Detail
        Expect.stringContains r.Detail saying "says what happened"
    finally
        setHook null

[<Tests>]
let tests =
    testList "Io.MappedTable" [
        testList "same bytes as memory" [
            for dtype, shape, groupBytes in [ DType.UInt8, [| 28; 28 |], 4096L; DType.Float32, [| 4; 3 |], 100L; DType.Int64, [| 5 |], 1L
                                              DType.Float16, [| 7 |], 1L <<< 20; DType.Bool, [| 9 |], 50L; DType.Int32, [| 0 |], 64L ] do
                testCase $"a {DTypes.Name dtype} table of shape [{String.Join(',', shape)}] with {groupBytes}-byte row groups" <| fun () ->
                    let table = fixedTable dtype shape 53 ExampleTable.DefaultChunkBytes true 5
                    let before = Threading.Interlocked.Read(&MappedCache.PlainLabelGroups)
                    let m = toMappedWith groupBytes table
                    Expect.isGreaterThan (Threading.Interlocked.Read(&MappedCache.PlainLabelGroups)) before "labels read from the mapping, not through Parquet.Net"
                    expectSame m table
                    Expect.isTrue m.HasIds "ids are read on first use"
                    Expect.equal m.PayloadBytes table.PayloadBytes "payload"
                    Expect.isNotNull m.MappedPath "path"
                    if table.ExampleBytes > 0 then
                        let perGroup = max 1L (groupBytes / int64 table.ExampleBytes) |> int
                        Expect.equal m.ChunkCount ((53 + perGroup - 1) / perGroup) "one segment per data page (one page per row group)"
            testCase "an empty table maps to an empty table" <| fun () ->
                let m = toMapped (fixedTable DType.UInt8 [| 2 |] 0 64L false 0)
                Expect.equal m.Count 0 "no rows"
                Expect.equal m.ChunkCount 0 "no segments"
                m.PrefetchRows(ReadOnlySpan [| 0; 1 |])
            testCase "every batch, GenerateBatchInto, GetExamples and GetSlice equal the in-memory table's, byte for byte" <| fun () ->
                let table = fixedTable DType.UInt8 [| 6; 5 |] 400 ExampleTable.DefaultChunkBytes false 2
                let m = toMappedWith 1000L table
                for mode in [ SamplingMode.Independent; SamplingMode.Coverage ] do
                    let o = SamplerOptions(ClassesPerBatch = 4, ExamplesPerClassPerBatch = 3, StepsPerEpoch = 40, Seed = 11UL, Mode = mode, WorldSize = 2, Rank = 1)
                    let a, b = new MultiShotMemorySampler(table, o), new MultiShotMemorySampler(m, o)
                    for e in 0 .. 1 do
                        for id in 0 .. a.Count - 1 do
                            Expect.equal (batchBytes b id) (batchBytes a id) $"{mode} epoch {e} batch {id}"
                            let xa, ya, xb, yb = Array.zeroCreate<byte> 360, Array.zeroCreate<int64> 12, Array.zeroCreate<byte> 360, Array.zeroCreate<int64> 12
                            a.GenerateBatchInto(id, Span xa, Span ya) |> ignore
                            b.GenerateBatchInto(id, Span xb, Span yb) |> ignore
                            Expect.equal (xb, yb) (xa, ya) "GenerateBatchInto"
                        a.OnEpochEnd()
                        b.OnEpochEnd()
                    use sa = a.GetSlice(17, 100)
                    use sb = b.GetSlice(17, 100)
                    Expect.equal (sb.XBytes.ToArray()) (sa.XBytes.ToArray()) "GetSlice"
                    use ea = a.GetExamples(3, 5, 2)
                    use eb = b.GetExamples(3, 5, 2)
                    Expect.equal (eb.XBytes.ToArray()) (ea.XBytes.ToArray()) "GetExamples"
            testCase "read-ahead never changes a batch" <| fun () ->
                let m = toMappedWith 500L (fixedTable DType.UInt8 [| 4; 4 |] 300 ExampleTable.DefaultChunkBytes false 3)
                let off = new MultiShotMemorySampler(m, SamplerOptions(ClassesPerBatch = 3, ExamplesPerClassPerBatch = 2, StepsPerEpoch = 25, Seed = 3UL, ReadAheadBatches = Nullable 0))
                let on = new MultiShotMemorySampler(m, SamplerOptions(ClassesPerBatch = 3, ExamplesPerClassPerBatch = 2, StepsPerEpoch = 25, Seed = 3UL, ReadAheadBatches = Nullable 30))
                Expect.equal (off.ReadAheadBatches, on.ReadAheadBatches) (0, 30) "explicit settings"
                for id in [ 0; 1; 24; 7 ] do Expect.equal (batchBytes on id) (batchBytes off id) $"batch {id}"
                let advised () = if OperatingSystem.IsLinux() then m.Mapped.AdvisedRows else 0L
                let three = new MultiShotMemorySampler(m, SamplerOptions(ClassesPerBatch = 3, ExamplesPerClassPerBatch = 2, StepsPerEpoch = 25, Seed = 3UL, ReadAheadBatches = Nullable 3))
                let before = advised ()
                (three[0]).Dispose()
                let atZero = advised () - before
                (three[5]).Dispose()
                let atFive = advised () - before - atZero
                if OperatingSystem.IsLinux() then
                    Expect.equal (atZero, atFive) (18L, 6L) "batch 0 advises batches 1..3 (3 x 6 rows), later batches the one 3 ahead"
                let beforeInto = advised ()
                three.GenerateBatchInto(6, Span(Array.zeroCreate<byte> 96), Span(Array.zeroCreate<int64> 6)) |> ignore
                if OperatingSystem.IsLinux() then Expect.equal (advised () - beforeInto) 6L "GenerateBatchInto reads ahead too"
                let e = throwsWith<ArgumentOutOfRangeException> (fun () -> new MultiShotMemorySampler(m, SamplerOptions(ClassesPerBatch = 2, ReadAheadBatches = Nullable -1)) |> ignore) "negative"
                Expect.stringContains e.Message "ReadAheadBatches" "names the setting"
                Expect.equal ((new MultiShotMemorySampler(m, opts 2 2)).ReadAheadBatches) 0 "auto: a small file stays in the page cache, no advice"
                let mem = fixedTable DType.UInt8 [| 4; 4 |] 300 ExampleTable.DefaultChunkBytes false 3
                Expect.equal ((new MultiShotMemorySampler(mem, SamplerOptions(ClassesPerBatch = 2, ReadAheadBatches = Nullable 5))).ReadAheadBatches) 0 "memory tables never read ahead"
            testCase "PrefetchRows merges rows on the same pages, ignores rows outside the table, and is a no-op in memory" <| fun () ->
                let table = fixedTable DType.UInt8 [| 100 |] 2000 ExampleTable.DefaultChunkBytes false 1
                let m = toMappedWith (1L <<< 20) table
                let rows = m.Mapped
                if OperatingSystem.IsLinux() then
                    Expect.equal (rows.Prefetch(ReadOnlySpan [| 0; 1; 2; 3 |], m.Count)) 1 "four neighbours on one page: one call"
                    Expect.equal (rows.Prefetch(ReadOnlySpan [| 0; 1000; 1999 |], m.Count)) 3 "far apart: one call each"
                    Expect.equal (rows.Prefetch(ReadOnlySpan [| -1; 2000; Int32.MaxValue |], m.Count)) 0 "outside: nothing"
                m.PrefetchRows(ReadOnlySpan [| -5; 0; 99999 |])
                table.PrefetchRows(ReadOnlySpan [| 0; 1 |])
        ]

        testList "choosing and refusing" [
            testCase "a ragged cache is NotMappable when Mapped is asked, and read into memory with Auto" <| fun () ->
                use d = new TempDir()
                let table = raggedTable 20 ExampleTable.DefaultChunkBytes false 1
                let cache, key, _ = stored d.Path (ParquetCacheOptions(Directory = d.Path)) table
                let r = run (cache.TryLoadAsync(key, fp "ab", TableBacking.Mapped))
                Expect.equal r.Reason (Nullable CacheMissReason.NotMappable) r.Detail
                Expect.stringContains r.Detail "ragged" "says why"
                let a = run (cache.TryLoadAsync(key, fp "ab", TableBacking.Auto))
                Expect.equal a.Table.Backing TableBacking.Memory "Auto falls back to memory"
                expectSame a.Table table
            testCase "a compressed cache is NotMappable when Mapped is asked, and read into memory with Auto" <| fun () ->
                use d = new TempDir()
                let table = fixedTable DType.UInt8 [| 8; 8 |] 30 ExampleTable.DefaultChunkBytes false 1
                let cache, key, _ = stored d.Path (ParquetCacheOptions(Directory = d.Path, Compression = Parquet.CompressionMethod.Snappy)) table
                let r = run (cache.TryLoadAsync(key, fp "ab", TableBacking.Mapped))
                Expect.equal r.Reason (Nullable CacheMissReason.NotMappable) r.Detail
                Expect.stringContains r.Detail "compressed" "says why"
                let a = run (cache.TryLoadAsync(key, fp "ab", TableBacking.Auto))
                Expect.equal a.Table.Backing TableBacking.Memory "Auto falls back to memory"
                expectSame a.Table table
            testCase "Auto maps an uncompressed fixed-shape cache; the default overload still reads into memory" <| fun () ->
                use d = new TempDir()
                let table = fixedTable DType.UInt8 [| 8; 8 |] 30 ExampleTable.DefaultChunkBytes true 1
                let cache, key, _ = stored d.Path (ParquetCacheOptions(Directory = d.Path)) table
                Expect.equal (run (cache.TryLoadAsync(key, fp "ab", TableBacking.Auto))).Table.Backing TableBacking.Mapped "Auto maps"
                Expect.equal (run (cache.TryLoadAsync(key, fp "ab"))).Table.Backing TableBacking.Memory "default: memory"
            testCase "a stale fingerprint or another key misses before anything is mapped" <| fun () ->
                use d = new TempDir()
                let table = fixedTable DType.UInt8 [| 8 |] 30 ExampleTable.DefaultChunkBytes false 1
                let cache, key, _ = stored d.Path (ParquetCacheOptions(Directory = d.Path)) table
                Expect.equal (run (cache.TryLoadAsync(key, fp "cd", TableBacking.Mapped))).Reason (Nullable CacheMissReason.SourceChanged) "fingerprint"
                let other = CacheKey(d.Path, "mnist", "", "3.0.1", "train", "image", "label")
                File.Copy(cache.GetPath key, cache.GetPath other)
                Expect.equal (run (cache.TryLoadAsync(other, fp "ab", TableBacking.Mapped))).Reason (Nullable CacheMissReason.KeyMismatch) "key"
        ]

        testList "gather paths" [
            // A small batch from a one-chunk or mapped table copies by offsets computed once; larger batches, multi-chunk
            // tables and long rows go row by row: every path must give each planned row's own bytes, in order.
            for rowBytes in [ 784; 5000 ] do
                testCase $"rows of {rowBytes} bytes: one-chunk, multi-chunk and mapped tables gather each row's bytes, below and above the small-batch size" <| fun () ->
                    let one = fixedTable DType.UInt8 [| rowBytes |] 700 ExampleTable.DefaultChunkBytes false 5
                    let chunked = fixedTable DType.UInt8 [| rowBytes |] 700 (int64 rowBytes * 64L) false 5
                    let mapped = toMappedWith (int64 rowBytes * 50L) one
                    Expect.isGreaterThan mapped.Mapped.SegmentCount 1 "several pages"
                    let rnd = Random(rowBytes)
                    for rows in [ 1; 20; 320; 512; 513; 700 ] do
                        let idx = Array.init rows (fun _ -> rnd.Next 700)
                        let expected = Array.concat [ for i in idx -> one.GetExample(i).ToArray() ]
                        for table, name in [ one, "one chunk"; chunked, "chunks of 64 rows"; mapped, "mapped" ] do
                            let got = Array.create (rows * rowBytes) 0xEEuy
                            Gather.Rows(table, ReadOnlySpan idx, Span got, 1)
                            Expect.isTrue (got = expected) $"{name}, {rows} rows: each row's bytes in order"
        ]
        testList "split gather" [
            testCase "a gather split over 2 to 7 threads writes the same bytes as one thread, from memory and mapped tables" <| fun () ->
                // Rows of 3000 bytes over many small segments (mapped) and chunks (memory); random indices with repeats.
                let memory = fixedTable DType.UInt8 [| 3000 |] 300 (64L * 1024L) false 3
                let mapped = toMappedWith 20_000L memory
                let rnd = Random(11)
                for table, name in [ memory, "memory"; mapped, "mapped" ] do
                    for rows in [ 2; 7; 64; 301 ] do
                        let idx = Array.init rows (fun _ -> rnd.Next 300)
                        let one = Array.zeroCreate<byte> (rows * 3000)
                        Gather.Rows(table, ReadOnlySpan idx, Span one, 1)
                        Expect.equal one.[0 .. 2999] (table.GetExample(idx[0]).ToArray()) $"{name}: row 0 is example {idx[0]}"
                        for workers in [ 2; 3; 7 ] do
                            let split = Array.create (rows * 3000) 0xEEuy
                            Gather.Rows(table, ReadOnlySpan idx, Span split, workers)
                            Expect.isTrue (split = one) $"{name}, {rows} rows on {workers} threads: same bytes"
            // Alone: other tests' work on the thread pool (e.g. the split gathers below) makes its queues grow, which
            // would be counted here.
            testSequenced <| testCase "a split gather allocates nothing on the caller once warm" (fun () ->
                let memory = fixedTable DType.UInt8 [| 3000 |] 300 (64L * 1024L) false 3
                let mapped = toMappedWith 20_000L memory
                let idx = Array.init 256 (fun i -> i * 7 % 300)
                let dest = Array.zeroCreate<byte> (256 * 3000)
                for _ in 1 .. 20 do Gather.Rows(mapped, ReadOnlySpan idx, Span dest, 2) // pool the job
                // Nothing per gather: 200 gathers may allocate less than one 24-byte object each. Not exactly 0: queueing
                // work to the thread pool can grow its queue (a new segment, about 1.3 KB, on the caller) when its threads
                // are busy, as on a loaded CI machine; that is the pool's, once, not the gather's, per batch.
                let before = GC.GetAllocatedBytesForCurrentThread()
                for _ in 1 .. 200 do Gather.Rows(mapped, ReadOnlySpan idx, Span dest, 2)
                let allocated = GC.GetAllocatedBytesForCurrentThread() - before
                Expect.isLessThan allocated 4096L $"a split gather allocates nothing per batch once warm ({allocated} bytes over 200)")
            testCase "non-temporal stores (batches of 16 MiB or more) write the same bytes as an ordinary copy, at any destination alignment" <| fun () ->
                // Rows of 3001 bytes: every head (0-31 bytes to a 32-byte boundary) and tail length comes up.
                let memory = fixedTable DType.UInt8 [| 3001 |] 300 (64L * 1024L) false 5
                let idx = Array.init 64 (fun i -> i * 37 % 300)
                let plain = Array.zeroCreate<byte> (64 * 3001 + 64)
                let streamed = Array.zeroCreate<byte> (64 * 3001 + 64)
                for offset in 0 .. 33 do
                    Array.fill plain 0 plain.Length 0xEEuy
                    Array.fill streamed 0 streamed.Length 0xEEuy
                    Gather.CopyRun(memory, ReadOnlySpan idx, Span(plain, offset, 64 * 3001), false)
                    Gather.CopyRun(memory, ReadOnlySpan idx, Span(streamed, offset, 64 * 3001), true)
                    Expect.isTrue (streamed = plain) $"destination offset {offset}: same bytes, nothing written outside the batch"
                // Through Gather.Rows: a 17 MB batch streams (where AVX is present), on one thread and split.
                let big = fixedTable DType.UInt8 [| 65_537 |] 300 (1L <<< 20) false 7
                let rows = 260
                Expect.equal (Gather.Streams(big, rows)) System.Runtime.Intrinsics.X86.Avx.IsSupported "17 MB streams where AVX is"
                Expect.isFalse (Gather.Streams(big, 100)) "6.5 MB does not"
                let bigIdx = Array.init rows (fun i -> i * 113 % 300)
                let expected = Array.concat [ for i in bigIdx -> big.GetExample(i).ToArray() ]
                for workers in [ 1; 2; 3 ] do
                    let dest = Array.zeroCreate<byte> (rows * 65_537)
                    Gather.Rows(big, ReadOnlySpan bigIdx, Span dest, workers)
                    Expect.isTrue (dest = expected) $"{workers} thread(s): the rows, back to back"
            testCase "a bad row in a helper's part fails the gather with the error one thread gives" <| fun () ->
                let memory = fixedTable DType.UInt8 [| 3000 |] 300 (64L * 1024L) false 3
                let idx = Array.init 64 (fun i -> if i = 60 then 300 else i)
                let dest = Array.zeroCreate<byte> (64 * 3000)
                let one = Expect.throwsC (fun () -> Gather.Rows(memory, ReadOnlySpan idx, Span dest, 1)) (fun e -> e.GetType())
                let split = Expect.throwsC (fun () -> Gather.Rows(memory, ReadOnlySpan idx, Span dest, 4)) (fun e -> e.GetType())
                Expect.equal split one "the same exception type"
                Expect.isTrue (typeof<ArgumentException>.IsAssignableFrom split) "an argument error"
        ]

        testList "safety" [
            testCase "a cache replaced (temp file + rename) while mapped keeps serving the old bytes; a new open sees the new file" <| fun () ->
                use d = new TempDir()
                let oldT = fixedTable DType.UInt8 [| 16 |] 40 ExampleTable.DefaultChunkBytes false 1
                let newT = fixedTable DType.UInt8 [| 16 |] 40 ExampleTable.DefaultChunkBytes false 2
                let cache, key, _ = stored d.Path (ParquetCacheOptions(Directory = d.Path, RowGroupBytes = 100L)) oldT
                let m = (run (cache.TryLoadAsync(key, fp "ab", TableBacking.Mapped))).Table
                let s = new MultiShotMemorySampler(m, opts 3 2)
                let before = [ for id in 0 .. 9 -> batchBytes s id ]
                Expect.isTrue (run (cache.StoreAsync(key, fp "ab", newT))).Stored "replaced by rename"
                expectSame m oldT
                Expect.equal [ for id in 0 .. 9 -> batchBytes s id ] before "same batches after the replacement"
                expectSame (run (cache.TryLoadAsync(key, fp "ab", TableBacking.Mapped))).Table newT
            testCase "a cache deleted while mapped keeps serving its bytes" <| fun () ->
                use d = new TempDir()
                let t = fixedTable DType.UInt8 [| 16 |] 40 ExampleTable.DefaultChunkBytes true 1
                let cache, key, path = stored d.Path (ParquetCacheOptions(Directory = d.Path)) t
                let m = (run (cache.TryLoadAsync(key, fp "ab", TableBacking.Mapped))).Table
                File.Delete path
                expectSame m t
            // Two ways a mapped table learns of a change in place: a kernel read lease (where granted: here, the file's
            // owner on a local filesystem), and a statx per batch, which is what a table gets when the kernel refuses
            // the lease, e.g. because a process holds the file open for writing when it is mapped (as "statx" does here).
            for check in [ "lease"; "statx" ] do
                let changeWith (path: string) (holder: FileStream) (change: FileStream -> unit) =
                    if isNull holder then using (new FileStream(path, FileMode.Open, FileAccess.ReadWrite, FileShare.ReadWrite ||| FileShare.Delete)) change
                    else change holder; holder.Flush()
                let holdFor (path: string) =
                    if check = "statx" then new FileStream(path, FileMode.Open, FileAccess.ReadWrite, FileShare.ReadWrite ||| FileShare.Delete) else null
                testCase $"({check}) a cache truncated in place while mapped fails the next batch with a clear error, not SIGBUS" <| fun () ->
                    use d = new TempDir()
                    let t = fixedTable DType.UInt8 [| 4096 |] 64 ExampleTable.DefaultChunkBytes false 1
                    let cache, key, path = stored d.Path (ParquetCacheOptions(Directory = d.Path)) t
                    use holder = holdFor path
                    let m = (run (cache.TryLoadAsync(key, fp "ab", TableBacking.Mapped))).Table
                    Expect.equal m.Mapped.ChangeCheck check $"the change check ({FileLease.LastRefusal})"
                    let s = new MultiShotMemorySampler(m, opts 3 2)
                    (s[0]).Dispose()
                    changeWith path holder (fun f -> f.SetLength 100L)
                    let e = throwsWith<DataFormatException> (fun () -> (s[1]).Dispose()) "batch after truncation"
                    Expect.stringContains e.Message (if check = "lease" then "opened it for writing or truncated it" else "shrank") "says what happened"
                    Expect.stringContains e.Message "changed in place while mapped" "says what happened"
                    Expect.stringContains e.Message path "names the file"
                    let e = throwsWith<DataFormatException> (fun () -> s.GenerateBatchInto(2, Span(Array.zeroCreate<byte> (6 * 4096)), Span(Array.zeroCreate<int64> 6)) |> ignore) "Into"
                    Expect.stringContains e.Message "renaming it" "says what to do"
                    m.Dispose()
                // A change in place that keeps the size (or restores it) used to serve other bytes or zeros silently.
                // The file's mtime is first set an hour back, so the write below sets another one whatever the clock's granularity.
                for name, change in
                        [ "overwritten in place (400 x 4096 bytes, same size)",
                          (fun (f: FileStream) -> f.Position <- 50L * 4096L; f.Write(Array.create (400 * 4096) 0xABuy, 0, 400 * 4096))
                          "shrunk then grown back to its old size in place",
                          (fun (f: FileStream) -> let n = f.Length in f.SetLength(n / 2L); f.SetLength n) ] do
                    testCase $"({check}) a cache {name} while mapped fails the next batch with a DataFormatException naming the file" <| fun () ->
                        use d = new TempDir()
                        let t = fixedTable DType.UInt8 [| 4096 |] 500 ExampleTable.DefaultChunkBytes false 1
                        let cache, key, path = stored d.Path (ParquetCacheOptions(Directory = d.Path)) t
                        File.SetLastWriteTimeUtc(path, DateTime.UtcNow.AddHours -1.0)
                        use holder = holdFor path
                        let m = (run (cache.TryLoadAsync(key, fp "ab", TableBacking.Mapped))).Table
                        Expect.equal m.Mapped.ChangeCheck check $"the change check ({FileLease.LastRefusal})"
                        use s = new MultiShotMemorySampler(m, opts 3 2)
                        (s[0]).Dispose()
                        let size = FileInfo(path).Length
                        changeWith path holder change
                        Expect.equal (FileInfo(path).Length) size "the same size as when mapped"
                        let e = throwsWith<DataFormatException> (fun () -> (s[1]).Dispose()) "batch after the change"
                        Expect.stringContains e.Message path "names the file"
                        Expect.stringContains e.Message "changed in place while mapped" "says what happened"
                        Expect.stringContains e.Message "renaming it" "says how writers must replace the file"
                        Expect.stringContains e.Message "reopen the table" "says what to do"
                        throwsWith<DataFormatException> (fun () -> s.GenerateBatchInto(2, Span(Array.zeroCreate<byte> (6 * 4096)), Span(Array.zeroCreate<int64> 6)) |> ignore) "Into"
                        |> ignore
                        m.Dispose()
            testCase "(lease) a write in place that puts the mtime back is caught at the next batch (statx alone would miss it)" <| fun () ->
                use d = new TempDir()
                let t = fixedTable DType.UInt8 [| 4096 |] 500 ExampleTable.DefaultChunkBytes false 1
                let cache, key, path = stored d.Path (ParquetCacheOptions(Directory = d.Path)) t
                // An mtime .NET can put back exactly (it sets times in 100 ns ticks; the filesystem keeps ns).
                let mtime = DateTime.UtcNow.AddHours -1.0
                File.SetLastWriteTimeUtc(path, mtime)
                let m = (run (cache.TryLoadAsync(key, fp "ab", TableBacking.Mapped))).Table
                Expect.equal m.Mapped.ChangeCheck "lease" $"a lease ({FileLease.LastRefusal})"
                use s = new MultiShotMemorySampler(m, opts 3 2)
                (s[0]).Dispose()
                using (new FileStream(path, FileMode.Open, FileAccess.Write, FileShare.ReadWrite ||| FileShare.Delete))
                    (fun f -> f.Position <- 50L * 4096L; f.Write(Array.create 4096 0xABuy, 0, 4096))
                File.SetLastWriteTimeUtc(path, mtime)
                Expect.equal (FileIdentity.Of(m.Mapped.File).Value.MtimeNs) m.Mapped.OpenIdentity.Value.MtimeNs "the mtime is back: statx sees no change"
                let e = throwsWith<DataFormatException> (fun () -> (s[1]).Dispose()) "the next batch"
                Expect.stringContains e.Message "opened it for writing or truncated it" "says what happened"
                m.Dispose()
            testCase "(lease) a writer that opens the cache file while it is being mapped makes the open a Corrupt miss" <| fun () ->
                use d = new TempDir()
                let t = fixedTable DType.UInt8 [| 64 |] 40 ExampleTable.DefaultChunkBytes false 1
                let cache, key, path = stored d.Path (ParquetCacheOptions(Directory = d.Path)) t
                // Opened for writing and closed unchanged, after the lease was taken and before the metadata is read.
                corruptMissWhen (fun h -> MappedCache.BeforeMetadataReads <- h) cache key path
                    (fun p -> using (new FileStream(p, FileMode.Open, FileAccess.ReadWrite, FileShare.ReadWrite ||| FileShare.Delete)) ignore)
                    "the file was opened for writing during the mapped open" "opened the cache file for writing while it was being mapped"
                let again = run (cache.TryLoadAsync(key, fp "ab", TableBacking.Mapped))
                Expect.isTrue again.IsHit $"an open with no writer maps it: {again.Detail}"
                expectSame again.Table t
                again.Table.Dispose()
            testCase "(lease) a writer that opens the file during a gather waits for it: the gather serves the bytes it began with, the next batch is refused" <| fun () ->
                use d = new TempDir()
                let t = fixedTable DType.UInt8 [| 4096 |] 64 ExampleTable.DefaultChunkBytes false 1
                let cache, key, path = stored d.Path (ParquetCacheOptions(Directory = d.Path)) t
                let m = (run (cache.TryLoadAsync(key, fp "ab", TableBacking.Mapped))).Table
                Expect.equal m.Mapped.ChangeCheck "lease" $"a lease ({FileLease.LastRefusal})"
                use s = new MultiShotMemorySampler(m, opts 3 2)
                let expected = batchBytes s 1
                use entered = new Threading.ManualResetEventSlim()
                use go = new Threading.ManualResetEventSlim()
                Gather.InsideMappedGather <- Action<string>(fun p -> if p = path then entered.Set(); go.Wait())
                // Threads of their own, not the pool's: the lease's SIGIO handler runs on the thread pool, and two
                // blocked pool threads on 2 cores would delay it by the pool's thread injection, which would hold the
                // writer back whether or not the break waits for the gather (the property tested here).
                let onThread (f: unit -> 'a) =
                    let result = ref Unchecked.defaultof<'a>
                    let t = Threading.Thread((fun () -> result.Value <- f ()), IsBackground = true)
                    t.Start()
                    t, result
                try
                    let gather, gathered = onThread (fun () -> batchBytes s 1)
                    Expect.isTrue (entered.Wait(TimeSpan.FromSeconds 60.0)) "the gather reached its copy"
                    Gather.InsideMappedGather <- null
                    // Truncating under a gather's copy would be SIGBUS; the lease holds the writer in its open() instead.
                    let writer, _ = onThread (fun () -> using (new FileStream(path, FileMode.Open, FileAccess.Write, FileShare.ReadWrite ||| FileShare.Delete)) (fun f -> f.SetLength 100L))
                    Expect.isFalse (writer.Join 1000) "the writer waits while the gather reads the mapping"
                    go.Set()
                    Expect.isTrue (gather.Join(TimeSpan.FromSeconds 60.0)) "the gather ends"
                    Expect.equal gathered.Value expected "the gather in progress served the bytes it began with"
                    Expect.isTrue (writer.Join(TimeSpan.FromSeconds 60.0)) "the writer goes on once the gather is done"
                    Expect.equal (FileInfo(path).Length) 100L "truncated"
                    let e = throwsWith<DataFormatException> (fun () -> (s[2]).Dispose()) "the next batch"
                    Expect.stringContains e.Message "opened it for writing or truncated it" "says what happened"
                finally
                    Gather.InsideMappedGather <- null
                    go.Set()
                m.Dispose()
            testCase "a cache truncated in place during the payload checksum of a mapped open is a Corrupt miss, not a crash" <| fun () ->
                use d = new TempDir()
                let t = fixedTable DType.UInt8 [| 4096 |] 64 ExampleTable.DefaultChunkBytes false 1
                let cache, key, path = stored d.Path (ParquetCacheOptions(Directory = d.Path)) t
                File.Delete(path + ".verified") // no valid stamp: the open checksums the payload
                corruptMissWhen (fun h -> ParquetCache.BeforePayloadChecksum <- h) cache key path
                    (fun p ->
                        use f = new FileStream(p, FileMode.Open, FileAccess.Write, FileShare.ReadWrite ||| FileShare.Delete)
                        f.SetLength(f.Length / 2L))
                    "the file was truncated between the header checks and the checksum" "truncated in place"
            testCase "a disposed mapped table releases its file and mapping; its rows then fail clearly, never fault" <| fun () ->
                use d = new TempDir()
                let t = fixedTable DType.UInt8 [| 64 |] 40 ExampleTable.DefaultChunkBytes false 1
                let cache, key, path = stored d.Path (ParquetCacheOptions(Directory = d.Path)) t
                let m = (run (cache.TryLoadAsync(key, fp "ab", TableBacking.Mapped))).Table
                let fdsOf () = Directory.GetFiles "/proc/self/fd" |> Array.filter (fun f -> try (FileInfo f).LinkTarget = path with _ -> false) |> Array.length
                let mapsOf () = File.ReadAllLines "/proc/self/maps" |> Array.filter (fun l -> l.EndsWith path) |> Array.length
                Expect.equal (fdsOf ()) 1 "the table holds the file open"
                Expect.isGreaterThan (mapsOf ()) 0 "and mapped"
                m.Dispose()
                Expect.equal (fdsOf ()) 0 "dispose closes the file"
                Expect.equal (mapsOf ()) 0 "and unmaps it"
                let e = throwsWith<ObjectDisposedException> (fun () -> m.GetExample(0).Length |> ignore) "row after dispose"
                Expect.stringContains e.Message path "names the file"
                m.Dispose() // twice is fine
                m.PrefetchRows(ReadOnlySpan [| 0; 1 |]) // read-ahead after dispose: a no-op, not a fault
            testCase "a sampler disposes the table it loaded or made, never the caller's" <| fun () ->
                use d = new TempDir()
                let t = fixedTable DType.UInt8 [| 16 |] 40 ExampleTable.DefaultChunkBytes false 1
                let cache, key, _ = stored d.Path (ParquetCacheOptions(Directory = d.Path)) t
                let m = (run (cache.TryLoadAsync(key, fp "ab", TableBacking.Mapped))).Table
                let s = new MultiShotMemorySampler(m, opts 3 2)
                let held = s[0]
                s.Dispose()
                throwsWith<ObjectDisposedException> (fun () -> (s[1]).Dispose()) "a batch after dispose" |> ignore
                throwsWith<ObjectDisposedException> (fun () -> s.GetSlice(0, 2).Dispose()) "a slice after dispose" |> ignore
                Expect.equal held.Count 6 "a batch built before stays valid"
                held.Dispose()
                expectSame m t // the caller's table: still mapped
                m.Dispose()
            testCase "disposing a mapped table while other threads build batches fails them cleanly (no crash)" <| fun () ->
                use d = new TempDir()
                let t = fixedTable DType.UInt8 [| 4096 |] 64 ExampleTable.DefaultChunkBytes false 1
                let cache, key, _ = stored d.Path (ParquetCacheOptions(Directory = d.Path)) t
                let m = (run (cache.TryLoadAsync(key, fp "ab", TableBacking.Mapped))).Table
                let s = new MultiShotMemorySampler(m, SamplerOptions(ClassesPerBatch = 3, ExamplesPerClassPerBatch = 4, StepsPerEpoch = 100000, Seed = 7UL))
                let stop = ref false
                let outcomes = Collections.Concurrent.ConcurrentBag<string>()
                let workers =
                    [| for w in 0 .. 1 ->
                        Threading.Tasks.Task.Run(fun () ->
                            let mutable id = w
                            while not stop.Value do
                                try
                                    (s[id % 100000]).Dispose(); outcomes.Add "ok"
                                with
                                | :? ObjectDisposedException -> outcomes.Add "disposed"; stop.Value <- true
                                id <- id + 2) |]
                Threading.Thread.Sleep 50
                m.Dispose()
                Expect.isTrue (Threading.Tasks.Task.WaitAll(Array.map (fun (x: Threading.Tasks.Task) -> x) workers, 30000)) "the workers stopped"
                Expect.contains outcomes "disposed" "the workers saw the table go"
            testCase "a wrong value length in a page header region is a Corrupt miss at mapped open" <| fun () ->
                use d = new TempDir()
                let t = fixedTable DType.UInt8 [| 8; 8 |] 40 ExampleTable.DefaultChunkBytes false 1
                let cache, key, path = stored d.Path (ParquetCacheOptions(Directory = d.Path)) t
                let b = File.ReadAllBytes path
                let at = (ReadOnlySpan b).IndexOf(ReadOnlySpan [| 64uy; 0uy; 0uy; 0uy; 17uy; 24uy; 31uy |])
                Expect.isGreaterThan at 0 "found the first value"
                b[at] <- 63uy
                File.WriteAllBytes(path, b)
                let r = run (cache.TryLoadAsync(key, fp "ab", TableBacking.Mapped))
                Expect.equal r.Reason (Nullable CacheMissReason.Corrupt) r.Detail
                Expect.stringContains r.Detail "expected 64" "names the expected length"
            testCase "a file truncated or extended at 30 sizes never maps" <| fun () ->
                use d = new TempDir()
                let t = fixedTable DType.UInt8 [| 8; 8 |] 40 ExampleTable.DefaultChunkBytes true 1
                let cache, key, path = stored d.Path (ParquetCacheOptions(Directory = d.Path, RowGroupBytes = 200L)) t
                let full = File.ReadAllBytes path
                let rnd = Random(5)
                for n in [ 0; 4; full.Length - 1; full.Length - 8 ] @ [ for _ in 1 .. 24 -> rnd.Next(1, full.Length) ] do
                    File.WriteAllBytes(path, full[.. n - 1])
                    let r = run (cache.TryLoadAsync(key, fp "ab", TableBacking.Mapped))
                    if r.IsHit || r.Reason <> Nullable CacheMissReason.Corrupt then failtestf "truncated at %d of %d: %A %s" n full.Length r.Reason r.Detail
                for extra in [ 1; 4096 ] do
                    File.WriteAllBytes(path, Array.append full (Array.zeroCreate extra))
                    let r = run (cache.TryLoadAsync(key, fp "ab", TableBacking.Mapped))
                    Expect.equal r.Reason (Nullable CacheMissReason.Corrupt) $"extended by {extra}: {r.Detail}"
        ]
    ]

/// Pages of unequal sizes (not what our writer makes, but valid Parquet from another writer): rows are found by a
/// binary search over the segments instead of a division.
[<Tests>]
let unevenPages =
    testCase "Io.MappedTable.segments of unequal sizes resolve every row by binary search" <| fun () ->
        use d = new TempDir()
        let path = Path.Combine(d.Path, "segments.bin")
        // Three segments of 3, 5 and 2 rows of 4 bytes, each value after a 4-byte length (pitch 8), at offsets 16, 100, 300.
        let sizes, offsets = [| 3; 5; 2 |], [| 16L; 100L; 300L |]
        let bytes = Array.zeroCreate<byte> 400
        let mutable row = 0
        for s in 0 .. 2 do
            for r in 0 .. sizes[s] - 1 do
                let at = int offsets[s] + r * 8
                bytes[at] <- 4uy
                for k in 0 .. 3 do bytes[at + 4 + k] <- byte (row * 10 + k)
                row <- row + 1
        File.WriteAllBytes(path, bytes)
        let handle = File.OpenHandle(path, FileMode.Open, FileAccess.Read, FileShare.Read)
        let map = IO.MemoryMappedFiles.MemoryMappedFile.CreateFromFile(handle, null, 0L, IO.MemoryMappedFiles.MemoryMappedFileAccess.Read, IO.HandleInheritability.None, true)
        let view = map.CreateViewAccessor(0L, 0L, IO.MemoryMappedFiles.MemoryMappedFileAccess.Read)
        let rows = MappedRows(path, handle, map, view, 400L, FileIdentity.Of handle, [| for o in offsets -> o + 4L |], [| 0; 3; 8; 10 |], 4)
        Expect.equal rows.RowsPerSegment 0 "unequal: no division"
        let table = new ExampleTable(DType.UInt8, [| 4 |], rows, 4, Array.init 10 int64, null, [||])
        for i in 0 .. 9 do
            Expect.equal (table.GetExample(i).ToArray()) [| for k in 0 .. 3 -> byte (i * 10 + k) |] $"row {i}"
        Expect.equal table.ExamplesPerChunk 0 "rows per segment unknown"
        Expect.equal table.ChunkCount 3 "three segments"

/// A mapped row's segment is index / rows per segment, made a multiply (MappedRows.Divide): exact for every dividend
/// in [0, 2^31) and divisor, checked at the edges (0, multiples and their neighbours, int.MaxValue) and on random pairs.
[<Tests>]
let fastDivision =
    testList "Io.MappedTable.segment division" [
        testCase "equals integer division at the edges" <| fun () ->
            for d in [ 1; 2; 3; 5; 7; 10; 255; 256; 257; 1000; 4096; 65535; 65536; 1 <<< 20; 1_000_003; int Int32.MaxValue / 2; Int32.MaxValue - 1; Int32.MaxValue ] do
                let m = MappedRows.DivisorOf d
                for n in [ 0; 1; d - 1; d; d + 1; 2 * (d % (Int32.MaxValue / 2)) ; Int32.MaxValue - 1; Int32.MaxValue; (Int32.MaxValue / d) * d; (Int32.MaxValue / d) * d - 1 ] do
                    if n >= 0 then Expect.equal (MappedRows.Divide(n, m)) (n / d) $"{n} / {d}"
        testProperty "equals integer division on random pairs" <| fun (n: FsCheck.NonNegativeInt) (d: FsCheck.PositiveInt) ->
            MappedRows.Divide(n.Get, MappedRows.DivisorOf d.Get) = n.Get / d.Get
    ]
