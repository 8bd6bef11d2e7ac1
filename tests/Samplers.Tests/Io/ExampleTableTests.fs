module Samplers.Tests.Io.ExampleTableTests

open System
open Expecto
open Samplers
open Samplers.Imaging
open Samplers.Tfds
open Samplers.Tests.TestUtil

[<Tests>]
let tests =
    testList "Io.ExampleTable" [
        testCase "fixed examples round-trip through a builder with a tiny chunk size" <| fun () ->
            // 7-byte examples, 16-byte chunks: 2 examples per chunk, 4 chunks for 7 examples.
            let b = ExampleTableBuilder.Fixed(DType.UInt8, ReadOnlySpan [| 7 |], 7, 16L)
            for i in 0 .. 6 do
                let s = b.Slot i
                for j in 0 .. 6 do s[j] <- byte (i * 10 + j)
                b.SetLabel(i, int64 (i % 3))
            let t = b.Build()
            Expect.equal t.Count 7 "count"
            Expect.equal t.ChunkCount 4 "chunks"
            Expect.equal t.ExamplesPerChunk 2 "examples per chunk"
            for i in 0 .. 6 do
                Expect.equal (t.GetExample(i).ToArray()) [| for j in 0 .. 6 -> byte (i * 10 + j) |] $"example {i}"
                Expect.equal t.Labels[i] (int64 (i % 3)) $"label {i}"
            Expect.equal t.PayloadBytes 49L "payload"
        testCase "ragged examples keep their own shapes" <| fun () ->
            let b = ExampleTableBuilder.Ragged(DType.UInt8, ReadOnlySpan [| -1; -1; 1 |], 3, 64L)
            for i in 0 .. 2 do
                let shape = [| i + 1; 2; 1 |]
                let s = b.AllocateRagged(i, ReadOnlySpan shape)
                s.Fill(byte i)
                b.SetLabel(i, int64 i)
            let t = b.Build()
            Expect.isTrue t.IsRagged "ragged"
            Expect.equal (t.GetShape(2).ToArray()) [| 3; 2; 1 |] "shape of example 2"
            Expect.equal (t.GetExample(1).ToArray()) (Array.create 4 1uy) "bytes of example 1"
            Expect.equal t.ExampleBytes -1 "no fixed stride"
        testCase "ragged chunks never exceed a small chunk size, from the first chunk on" <| fun () ->
            // 40-byte chunks, 12-byte examples: 3 per chunk, so 7 examples need 3 chunks.
            let b = ExampleTableBuilder.Ragged(DType.UInt8, ReadOnlySpan [| -1 |], 7, 40L)
            for i in 0 .. 6 do
                let s = b.AllocateRagged(i, ReadOnlySpan [| 12 |])
                s.Fill(byte i)
            let t = b.Build()
            Expect.equal t.ChunkCount 3 "chunks of at most 40 bytes"
            for i in 0 .. 6 do Expect.equal (t.GetExample(i).ToArray()) (Array.create 12 (byte i)) $"example {i}"
        testCase "a ragged shape that contradicts a declared dimension is refused" <| fun () ->
            let b = ExampleTableBuilder.Ragged(DType.UInt8, ReadOnlySpan [| -1; -1; 3 |], 1)
            Expect.throwsT<ArgumentException> (fun () -> b.AllocateRagged(0, ReadOnlySpan [| 2; 2; 1 |]).Length |> ignore) "channel mismatch"
        testCase "From copies typed caller data and checks lengths" <| fun () ->
            let data = [| 1.0f; 2.0f; 3.0f; 4.0f; 5.0f; 6.0f |]
            let t = ExampleTable.From<float32>(ReadOnlySpan data, ReadOnlySpan [| 3 |], ReadOnlySpan [| 0L; 1L |])
            Expect.equal t.DType DType.Float32 "dtype"
            Expect.equal (t.GetExample<float32>(1).ToArray()) [| 4.0f; 5.0f; 6.0f |] "second example"
            Expect.throwsT<ArgumentException> (fun () -> ExampleTable.From<float32>(ReadOnlySpan data, ReadOnlySpan [| 4 |], ReadOnlySpan [| 0L; 1L |]) |> ignore) "length mismatch"
        testCase "ClassCounts: every label ascending with its name (or the number when unnamed) and count" <| fun () ->
            let labels = [| 2L; 0L; 2L; 7L; 2L; 0L |]
            let b = ExampleTableBuilder.Fixed(DType.UInt8, ReadOnlySpan [| 1 |], labels.Length, ExampleTable.DefaultChunkBytes)
            labels |> Array.iteri (fun i l -> b.SetLabel(i, l))
            b.ClassNames <- [| "zero"; "one"; "two" |]
            let counts = b.Build().ClassCounts() |> Seq.map (fun c -> c.Label, c.Name, c.Count) |> List.ofSeq
            Expect.equal counts [ 0L, "zero", 2; 2L, "two", 3; 7L, "7", 1 ] "label, name, count"
        testCase "an index outside the table names the range" <| fun () ->
            let t = ExampleTable.From<byte>(ReadOnlySpan [| 1uy; 2uy |], ReadOnlySpan [| 1 |], ReadOnlySpan [| 0L; 0L |])
            let ex = throwsWith<ArgumentOutOfRangeException> (fun () -> t.GetExample(2).Length |> ignore) "out of range"
            Expect.stringContains ex.Message "[0, 2)" "the message names the valid range"
    ]
