module Samplers.TorchSharp.Tests.TorchTests

open System
open System.IO
open System.Reflection
open System.Text
open Expecto
open TorchSharp
open Samplers
open Samplers.Imaging
open Samplers.Tfds
open Samplers.Core
open Samplers.Build
open Samplers.TorchSharp
open Samplers.Tests.TestUtil

// ---------- the libstdc++ shim fix ----------

let packageRoot () =
    Assembly.GetExecutingAssembly().GetCustomAttributes<AssemblyMetadataAttribute>()
    |> Seq.find (fun a -> a.Key = "NuGetPackageRoot")
    |> fun a -> a.Value

let shippedShim () =
    Path.Combine(packageRoot (), "torchsharp", "0.107.0", "runtimes", "linux-x64", "native", "libLibTorchSharp.so")

let outputShim () =
    Path.Combine(AppContext.BaseDirectory, "runtimes", "linux-x64", "native", "libLibTorchSharp.so")

/// 10 classes x 8 examples of int32 [3]: a table TorchSharp cannot take as it is (no int32 image conversion).
let int32Table () =
    let b = ExampleTableBuilder.Fixed(DType.Int32, ReadOnlySpan [| 3 |], 80, ExampleTable.DefaultChunkBytes)
    for i in 0 .. 79 do
        Runtime.InteropServices.MemoryMarshal.Cast<byte, int>(b.Slot i).Fill i
        b.SetLabel(i, int64 (i % 10))
    b.Build()

/// Whether the ELF asks libstdc++ for this version (its .gnu.version_r lists it).
let contains (elf: byte[]) (version: string) =
    ElfGlibcxxPatch.Requirements(elf, "shim").Contains("libstdc++.so.6:" + version)

let shimTests =
    testList "shim" [
        test "the ELF hash of the version names matches the values the linker wrote" {
            // Values read with objdump -p from the shipped shim's version requirements.
            Expect.equal (ElfGlibcxxPatch.ElfHash "GLIBCXX_3.4.30") 0x0297f840u "3.4.30"
            Expect.equal (ElfGlibcxxPatch.ElfHash "GLIBCXX_3.4.32") 0x0297f842u "3.4.32"
            Expect.equal (ElfGlibcxxPatch.ElfHash "CXXABI_1.3.13") 0x0afd17f3u "CXXABI_1.3.13"
        }

        test "the shipped shim is rewritten in exactly the requirement's name and hash, once" {
            let original = File.ReadAllBytes(shippedShim ())
            Expect.isTrue (contains original "GLIBCXX_3.4.32") "the shipped shim asks for GLIBCXX_3.4.32"
            let patched = Array.copy original
            let mutable detail = ""
            let outcome = ElfGlibcxxPatch.Apply(patched, "shim", &detail)
            Expect.equal outcome GlibcxxPatchOutcome.Patched detail
            Expect.stringContains detail "_ZSt21ios_base_library_initv" "names the only symbol at that version"
            Expect.isFalse (contains patched "GLIBCXX_3.4.32") "no GLIBCXX_3.4.32 left"
            let before = ElfGlibcxxPatch.Requirements(original, "shim") |> List.ofSeq
            let after = ElfGlibcxxPatch.Requirements(patched, "shim") |> List.ofSeq
            Expect.equal after (before |> List.map (fun r -> if r = "libstdc++.so.6:GLIBCXX_3.4.32" then "libstdc++.so.6:GLIBCXX_3.4.30" else r)) "every other requirement unchanged"
            let changed = Seq.zip original patched |> Seq.filter (fun (a, b) -> a <> b) |> Seq.length
            Expect.isLessThanOrEqual changed 5 "one string digit and the hash's bytes; nothing else"
            Expect.equal patched.Length original.Length "same length"
            let again = Array.copy patched
            Expect.equal (ElfGlibcxxPatch.Apply(again, "shim", &detail)) GlibcxxPatchOutcome.NotNeeded "idempotent"
            Expect.equal again patched "a second pass changes nothing"
        }

        test "the build output's copy is patched exactly when this system's libstdc++ lacks GLIBCXX_3.4.32" {
            let mutable where = null
            let has = ElfGlibcxxPatch.SystemHas("GLIBCXX_3.4.32", &where)
            let copy = File.ReadAllBytes(outputShim ())
            let shipped = File.ReadAllBytes(shippedShim ())
            if has = Nullable true then Expect.equal copy shipped "left as shipped"
            else Expect.isFalse (contains copy "GLIBCXX_3.4.32") $"patched (system libstdc++: {where})"
            Expect.isTrue (contains shipped "GLIBCXX_3.4.32") "the NuGet cache's copy is never touched"
        }

        test "a file that is not a 64-bit ELF is refused with a message saying what was found" {
            let mutable detail = ""
            let ex = throwsWith<InvalidDataException> (fun () -> ElfGlibcxxPatch.Apply(Encoding.ASCII.GetBytes("MZ not an elf file at all, padding padding padding padding padding"), "x.so", &detail) |> ignore) "not ELF"
            Expect.stringContains ex.Message "x.so: expected an ELF file" "names file and expectation"
            Expect.stringContains ex.Message "4D 5A" "shows what was found"
        }

        test "a truncated shim is refused naming the offset, and the file on disk stays as it was" {
            use dir = new TempDir()
            let path = Path.Combine(dir.Path, "libLibTorchSharp.so")
            let head = File.ReadAllBytes(shippedShim ()) |> Array.take 4096
            File.WriteAllBytes(path, head)
            let mutable detail = ""
            let ex = throwsWith<InvalidDataException> (fun () -> ElfGlibcxxPatch.ApplyToFile(path, &detail) |> ignore) "truncated"
            Expect.stringContains ex.Message "lies outside the file (4096 bytes)" "says where"
            Expect.equal (File.ReadAllBytes path) head "unchanged"
            Expect.isFalse (File.Exists(path + ".patching")) "no temp file left"
        }
    ]

// ---------- tensors ----------

/// A table of uint8 images of shape [h; w; c]: pixel (i, y, x, ch) = (i * 31 + y * 7 + x * 3 + ch * 101) % 256.
let rgbTable n h w c classes =
    let b = ExampleTableBuilder.Fixed(DType.UInt8, ReadOnlySpan [| h; w; c |], n, ExampleTable.DefaultChunkBytes)
    for i in 0 .. n - 1 do
        let slot = b.Slot i
        for y in 0 .. h - 1 do
            for x in 0 .. w - 1 do
                for ch in 0 .. c - 1 do
                    slot[(y * w + x) * c + ch] <- byte ((i * 31 + y * 7 + x * 3 + ch * 101) % 256)
        b.SetLabel(i, int64 (i % classes))
    b.Build()

let rgbSampler steps =
    new MultiShotMemorySampler(rgbTable 40 5 4 3 4, SamplerOptions(ClassesPerBatch = 2, ExamplesPerClassPerBatch = 3, StepsPerEpoch = steps, Seed = 9UL))

/// Checks X[n, c, y, x] = (B[n, y, x, c] * scale - mean[c]) / std[c] and Y = labels, element by element.
let expectChw (batch: Batch) (t: TensorBatch) (scale: float32) (mean: float32[]) (std: float32[]) =
    let shape = batch.Shape.ToArray()
    let n, h, w, c = shape[0], shape[1], shape[2], shape[3]
    Expect.equal (t.X.shape) [| int64 n; int64 c; int64 h; int64 w |] "CHW shape"
    Expect.equal t.X.dtype torch.ScalarType.Float32 "float32"
    Expect.equal t.Y.dtype torch.ScalarType.Int64 "int64 labels"
    let xs = t.X.data<float32>().ToArray()
    let src = batch.XBytes.ToArray()
    for i in 0 .. n - 1 do
        for ch in 0 .. c - 1 do
            for y in 0 .. h - 1 do
                for x in 0 .. w - 1 do
                    let expected = (float32 src[((i * h + y) * w + x) * c + ch] * scale - mean[ch]) / std[ch]
                    let got = xs[((i * c + ch) * h + y) * w + x]
                    if abs (got - expected) > 1e-5f * max 1f (abs expected) then
                        failtestf "X[%d, %d, %d, %d] = %g, expected %g" i ch y x got expected
    Expect.equal (t.Y.data<int64>().ToArray()) (batch.Y.ToArray()) "labels"

let tensorTests =
    testList "tensors" [
        test "a uint8 HWC batch becomes float32 CHW / 255 and int64 labels, element by element" {
            let s = rgbSampler 5
            use pool = new TensorBatchPool()
            use b = s[2]
            use t = pool.Convert b
            expectChw b t (1f / 255f) [| 0f; 0f; 0f |] [| 1f; 1f; 1f |]
            Expect.equal t.Key b.Key "the plan's key travels along"
        }

        test "a per-channel normalisation is fused into the same copy" {
            let s = rgbSampler 5
            let conv = TensorConversion(Mean = [| 0.5f; 0.25f; 0.1f |], Std = [| 0.2f; 0.5f; 2f |])
            use pool = new TensorBatchPool(conv)
            use b = s[0]
            use t = pool.Convert b
            expectChw b t (1f / 255f) [| 0.5f; 0.25f; 0.1f |] [| 0.2f; 0.5f; 2f |]
        }

        test "the channels-first copy equals a scalar reference bit for bit: random sizes, odd widths, vector and scalar kernels, one thread or split" {
            // Property over random cases: the reference rounds x * scale, then adds bias (what the copy has always done).
            let rnd = Random(20261206)
            for case in 1 .. 60 do
                let n = rnd.Next(1, 4)
                let h = rnd.Next(1, 12)
                let w = if case % 2 = 0 then 2 * rnd.Next(1, 20) + 1 else rnd.Next(1, 40)
                let c = rnd.Next(2, 5)
                let floatInput = case % 5 = 0
                let scale = Array.init c (fun _ -> float32 (rnd.NextDouble() * 0.02 + 0.001))
                let bias = Array.init c (fun _ -> float32 (rnd.NextDouble() * 4.0 - 2.0))
                use batch = BatchPool.Shared.Rent((if floatInput then DType.Float32 else DType.UInt8), ReadOnlySpan [| h; w; c |], n)
                let values = Array.init (n * h * w * c) (fun _ -> if floatInput then float32 (rnd.Next(-1000, 1000)) / 7f else float32 (rnd.Next 256))
                if floatInput then ReadOnlySpan(values).CopyTo(Runtime.InteropServices.MemoryMarshal.Cast<byte, float32>(batch.XBytes))
                else ReadOnlySpan(values |> Array.map byte).CopyTo(batch.XBytes)
                let source i = values[i]
                let p = h * w
                let expected = Array.zeroCreate<float32> (n * p * c)
                for e in 0 .. n - 1 do
                    for ch in 0 .. c - 1 do
                        for q in 0 .. p - 1 do
                            expected[e * p * c + ch * p + q] <- source (e * p * c + q * c + ch) * scale[ch] + bias[ch]
                let bits (xs: float32[]) = xs |> Array.map BitConverter.SingleToInt32Bits
                let dtype = if floatInput then "float32" else "uint8"
                for vectors in [ true; false ] do
                    for perWorker in [ BatchCopy.BytesPerWorker; 64L ] do
                        let got = Array.create (n * p * c) nanf
                        BatchCopy.ToFloat32(batch, Span got, ReadOnlySpan scale, ReadOnlySpan bias, true, vectors, perWorker)
                        Expect.equal (bits got) (bits expected) $"case {case}: {n} x {h}x{w}x{c} {dtype}, vectors {vectors}, split above {perWorker} B"
        }

        test "grayscale batches longer than one vector take the vector path and stay exact" {
            let table = rgbTable 40 7 9 1 4
            let s = new MultiShotMemorySampler(table, SamplerOptions(ClassesPerBatch = 2, ExamplesPerClassPerBatch = 3, StepsPerEpoch = 3, Seed = 1UL))
            use pool = new TensorBatchPool()
            use b = s[1]
            use t = pool.Convert b
            expectChw b t (1f / 255f) [| 0f |] [| 1f |]
        }

        test "channels-last kept when asked, float32 input with scale 1" {
            let s = rgbSampler 5
            let conv = TensorConversion(ChannelsFirst = false, Scale = 2f)
            use pool = new TensorBatchPool(conv)
            use b = s[0]
            use t = pool.Convert b
            Expect.equal t.X.shape (b.Shape.ToArray() |> Array.map int64) "NHWC kept"
            let expected = b.XBytes.ToArray() |> Array.map (fun v -> float32 v * 2f)
            Expect.equal (t.X.data<float32>().ToArray()) expected "x * 2"
        }

        test "bad conversions are refused with a message" {
            let s = rgbSampler 5
            use pool = new TensorBatchPool(TensorConversion(Mean = [| 0.1f; 0.2f |]))
            use b = s[0]
            let ex = throwsWith<ArgumentException> (fun () -> pool.Convert b |> ignore) "2 means for 3 channels"
            Expect.stringContains ex.Message "Mean has 2 values, but the examples have 3 channels" "says what and why"
            use pool2 = new TensorBatchPool(TensorConversion(Std = [| 0f |]))
            throwsWith<ArgumentException> (fun () -> pool2.Convert b |> ignore) "zero std" |> ignore
            let ints = new MultiShotMemorySampler(int32Table (), SamplerOptions(StepsPerEpoch = 2))
            use ib = ints[0]
            use plain = new TensorBatchPool()
            let ex = throwsWith<NotSupportedException> (fun () -> plain.Convert ib |> ignore) "int32 data"
            Expect.stringContains ex.Message "int32" "names the dtype"
        }

        test "the tensor loader yields the sampler's batches in order with 0 and 2 workers, allocating no tensors in steady state" {
            let keysWith workers =
                let s = rgbSampler 10
                use loader = TensorLoader.Create(s, PrefetchOptions(Workers = workers, Depth = 3, Epochs = 3))
                let keys =
                    [ for t in loader do
                        use t = t
                        yield t.Key, t.Y.data<int64>().ToArray(), t.X.sum().item<float32>() ]
                keys, TensorLoader.PoolOf(loader).Created
            let reference =
                let s = rgbSampler 10
                use pool = new TensorBatchPool()
                [ for _ in 1 .. 3 do
                    for i in 0 .. s.Count - 1 do
                        use b = s[i]
                        use t = pool.Convert b
                        yield t.Key, t.Y.data<int64>().ToArray(), t.X.sum().item<float32>()
                    s.OnEpochEnd() ]
            for workers in [ 0; 2 ] do
                let keys, created = keysWith workers
                Expect.equal keys reference $"{workers} workers: same keys, labels and pixel sums as the indexer"
                Expect.isLessThanOrEqual created (int64 (3 + workers + 1)) $"{workers} workers: 30 batches from at most depth + workers + 1 tensor pairs"
        }

        test "a consumer that keeps a tensor batch past the next ones still reads its own data" {
            let s = rgbSampler 10
            use loader = TensorLoader.Create(s, PrefetchOptions(Workers = 2, Depth = 2, Epochs = 1))
            let e = (loader :> seq<TensorBatch>).GetEnumerator()
            Expect.isTrue (e.MoveNext()) "batch 0"
            let kept = e.Current // not disposed: it stays the consumer's
            let mutable later = 0
            while e.MoveNext() do
                later <- later + 1
                e.Current.Dispose()
            e.Dispose()
            Expect.equal later 9 "nine more batches went through the pool"
            let check = rgbSampler 10
            use b0 = check[0]
            expectChw b0 kept (1f / 255f) [| 0f; 0f; 0f |] [| 1f; 1f; 1f |]
            kept.Dispose()
            throwsWith<ObjectDisposedException> (fun () -> kept.X |> ignore) "a disposed tensor batch" |> ignore
        }

        test "tensors made inside a training step's dispose scope outlive the scope" {
            let s = rgbSampler 4
            use loader = TensorLoader.Create(s, PrefetchOptions(Workers = 0, Epochs = 1))
            let e = (loader :> seq<TensorBatch>).GetEnumerator()
            let mutable x : torch.Tensor = null
            do
                use _scope = torch.NewDisposeScope()
                Expect.isTrue (e.MoveNext()) "first"
                x <- e.Current.X
                (x * 2.0f).sum() |> ignore
            Expect.isFalse x.IsInvalid "the loader's tensor survived the scope"
            Expect.isGreaterThan (x.sum().item<float32>()) 0f "and still reads"
            e.Current.Dispose()
            e.Dispose()
        }
    ]

let distributedTests =
    testList "distributed environment" [
        test "torchrun's variables set rank and world size; none means one process" {
            Expect.equal (DistributedEnvironment.From(null, null, null)) DistributedEnvironment.Single "unset"
            Expect.equal (DistributedEnvironment.From("1", "4", "1")) (DistributedEnvironment(1, 4, 1)) "set"
            Expect.equal (DistributedEnvironment.From("3", "4", null)) (DistributedEnvironment(3, 4, 3)) "LOCAL_RANK defaults to RANK"
            let o = DistributedEnvironment(2, 3, 0).Apply(SamplerOptions(StepsPerEpoch = 9))
            Expect.equal (o.Rank, o.WorldSize, o.StepsPerEpoch) (2, 3, 9) "applied to options"
        }

        test "bad values name the variable, the value and what was expected" {
            let ex = throwsWith<FormatException> (fun () -> DistributedEnvironment.From("x", "2", null) |> ignore) "RANK x"
            Expect.stringContains ex.Message "RANK must be a whole number >= 0, but was 'x'" "message"
            let ex = throwsWith<FormatException> (fun () -> DistributedEnvironment.From("2", "2", null) |> ignore) "RANK 2 of 2"
            Expect.stringContains ex.Message "RANK must be in [0, WORLD_SIZE) = [0, 2), but was 2" "message"
            let ex = throwsWith<FormatException> (fun () -> DistributedEnvironment.From("0", null, null) |> ignore) "half set"
            Expect.stringContains ex.Message "WORLD_SIZE is not set" "message"
            throwsWith<FormatException> (fun () -> DistributedEnvironment.From("0", "0", null) |> ignore) "world 0" |> ignore
        }
    ]


// ---------- the loss ----------

/// Four unit vectors in 2-D, labels [0; 0; 1; 1]: e0 = (1, 0), e1 = (0.6, 0.8), e2 = (0, 1), e3 = (-0.6, 0.8).
/// Cosine distances d = 1 - cos: d01 = 0.4, d02 = 1, d03 = 1.6, d12 = 0.2, d13 = 0.72, d23 = 0.2.
let fourPoints () =
    torch.tensor([| 1f; 0f; 0.6f; 0.8f; 0f; 1f; -0.6f; 0.8f |]).reshape(4L, 2L), torch.tensor([| 0L; 0L; 1L; 1L |])

let lossTests =
    testList "multi-similarity loss" [
        test "per-anchor values worked by hand" {
            // Anchor 0: positive d01 = 0.4; nearest negative d02 = 1.0, so positives must exceed 1.0 - 0.1 = 0.9: none kept -> 0.
            // Anchor 1: positive d10 = 0.4 > min(0.2, 0.72) - 0.1 = 0.1, kept; negatives below 0.4 + 0.1 = 0.5: d12 = 0.2 only.
            //   log(1 + exp(2 (0.4 - 0.5))) / 2 + log(1 + exp(-40 (0.2 - 0.5))) / 40
            //   = log(1 + e^-0.2) / 2 + log(1 + e^12) / 40 = 0.2990694347 + 0.3000001536 = 0.5990695883
            // Anchor 2: positive d23 = 0.2 > min(1.0, 0.2) - 0.1 = 0.1, kept; negatives below 0.3: d21 = 0.2.
            //   log(1 + e^-0.6) / 2 + log(1 + e^12) / 40 = 0.2187439752 + 0.3000001536 = 0.5187441288
            // Anchor 3: positive d32 = 0.2; nearest negative d31 = 0.72, so positives must exceed 0.62: none -> 0.
            let e, y = fourPoints ()
            let loss = MultiSimilarityLoss()
            let per = loss.PerAnchor(e, y).data<float32>().ToArray()
            let expected = [| 0f; 0.5990695883f; 0.5187441288f; 0f |]
            for i in 0 .. 3 do
                Expect.floatClose { absolute = 2e-6; relative = 1e-5 } (float per[i]) (float expected[i]) $"anchor {i}"
            Expect.floatClose { absolute = 2e-6; relative = 1e-5 } (float (loss.Forward(e, y).item<float32>())) 0.2794534293 "mean over the 4 anchors"
        }

        test "an anchor never counts as its own positive (a close negative within epsilon), worked by hand" {
            // e0 = (1, 0) and e2 = (0, 1) of class 0; e1 = (0.95, sqrt(1 - 0.95^2)) of class 1, so d01 = 0.05, d02 = 1,
            // d12 = 1 - 0.3122498999 = 0.6877501001.
            // Anchor 0: positive d02 = 1 > 0.05 - 0.1, kept; negative d01 = 0.05 < 1 + 0.1, kept.
            //   log(1 + e^(2 (1 - 0.5))) / 2 + log(1 + e^(-40 (0.05 - 0.5))) / 40 = 0.6566308438 + 0.4500000004 = 1.1066308441
            // Anchor 1: its class has no other member: no positive, 0 (counting itself, d = 0 > -0.05, would make it count).
            // Anchor 2: positive d20 = 1 > 0.6877501 - 0.1, kept; negative d21 = 0.6877501 < 1.1, kept.
            //   0.6566308438 + log(1 + e^(-40 (0.6877501 - 0.5))) / 40 = 0.6566308438 + 0.0000136857 = 0.6566445295
            let e = torch.tensor([| 1f; 0f; 0.95f; 0.31224989992f; 0f; 1f |]).reshape(3L, 2L)
            let y = torch.tensor([| 0L; 1L; 0L |])
            let per = MultiSimilarityLoss().PerAnchor(e, y).data<float32>().ToArray()
            let expected = [| 1.1066308441f; 0f; 0.6566445295f |]
            for i in 0 .. 2 do
                Expect.floatClose { absolute = 2e-6; relative = 1e-5 } (float per[i]) (float expected[i]) $"anchor {i}"
        }

        test "the reference's defaults" {
            let l = MultiSimilarityLoss()
            Expect.equal (l.Alpha, l.Beta, l.Epsilon, l.Lambda, l.Center) (2.0, 40.0, 0.1, 0.5, 1.0) "alpha, beta, epsilon, lambda, center"
        }

        test "a batch of one class has no negatives, so no anchor counts" {
            let e, _ = fourPoints ()
            let per = MultiSimilarityLoss().PerAnchor(e, torch.tensor([| 3L; 3L; 3L; 3L |])).data<float32>().ToArray()
            Expect.equal per [| 0f; 0f; 0f; 0f |] "all zero"
        }

        test "reordering the batch reorders the per-anchor losses" {
            let e, y = fourPoints ()
            let order = torch.tensor([| 2L; 0L; 3L; 1L |])
            let loss = MultiSimilarityLoss()
            let a = loss.PerAnchor(e, y).index_select(0, order).data<float32>().ToArray()
            let b = loss.PerAnchor(e.index_select(0, order), y.index_select(0, order)).data<float32>().ToArray()
            Expect.equal b a "same values, permuted"
        }

        test "gradient steps on free embeddings lower the loss" {
            torch.manual_seed 3L |> ignore
            let raw = torch.randn([| 12L; 8L |]).requires_grad_(true)
            let y = torch.tensor([| 0L; 0L; 0L; 1L; 1L; 1L; 2L; 2L; 2L; 3L; 3L; 3L |])
            let loss = MultiSimilarityLoss()
            let value () = loss.Forward(torch.nn.functional.normalize(raw, p = 2.0, dim = 1L), y)
            let first = value().item<float32>()
            for _ in 1 .. 50 do
                let l = value ()
                raw.grad |> Option.ofObj |> Option.iter (fun g -> g.zero_() |> ignore)
                l.backward()
                use _ = torch.no_grad()
                let step : torch.Tensor = raw.grad * 0.5f
                raw.sub_(step) |> ignore
            let last = value().item<float32>()
            Expect.isGreaterThan first 0.1f "a random start has a loss"
            Expect.isLessThan last (first * 0.5f) $"loss fell from {first} to {last}"
        }

        test "shapes that do not fit are refused" {
            let e, _ = fourPoints ()
            let ex = throwsWith<ArgumentException> (fun () -> MultiSimilarityLoss().Forward(e, torch.tensor([| 0L; 1L |])) |> ignore) "3 labels"
            Expect.stringContains ex.Message "embeddings [4, 2] and labels [2]" "gives both shapes"
        }
    ]

[<Tests>]
let tests = testList "Torch" [ shimTests; tensorTests; distributedTests; lossTests ]
