module Samplers.Tests.Core.PhiloxTests

open System
open Expecto
open Samplers.Core
open Samplers.Core.Statistics
open Samplers.Tests.TestUtil

let private hex (s: string) = s.Split(' ', StringSplitOptions.RemoveEmptyEntries) |> Array.map (fun w -> Convert.ToUInt32(w, 16))

// Known answers from the Random123 kat_vectors file (checked against the copy quoted in DEShawResearch/fs123,
// core123/ut/ut_philox.cpp): counter (4 words), key (2 words) -> output (4 words).
let private kat10 =
    [ "00000000 00000000 00000000 00000000", "00000000 00000000", "6627e8d5 e169c58d bc57ac4c 9b00dbd8"
      "ffffffff ffffffff ffffffff ffffffff", "ffffffff ffffffff", "408f276d 41c83b0e a20bc7c6 6d5451fd"
      "243f6a88 85a308d3 13198a2e 03707344", "a4093822 299f31d0", "d16cfe09 94fdcceb 5001e420 24126ea1" ]
let private kat7 =
    [ "00000000 00000000 00000000 00000000", "00000000 00000000", "5f6fb709 0d893f64 4f121f81 4f730a48"
      "ffffffff ffffffff ffffffff ffffffff", "ffffffff ffffffff", "5207ddc2 45165e59 4d8ee751 8c52f662"
      "243f6a88 85a308d3 13198a2e 03707344", "a4093822 299f31d0", "4dfccaba 190a87f0 c47362ba b6b5242a" ]

[<Tests>]
let tests =
    testList "Core.Philox" [
        for (c, k, expected) in kat10 do
            testCase $"Philox4x32-10 known answer ctr {c}" <| fun () ->
                let out = Array.zeroCreate 4
                Philox.Block(ReadOnlySpan(hex c), ReadOnlySpan(hex k), Span out)
                Expect.sequenceEqual out (hex expected) "Random123 kat_vectors philox4x32_10"
        for (c, k, expected) in kat7 do
            testCase $"Philox4x32-7 known answer ctr {c}" <| fun () ->
                let c = hex c
                let k = hex k
                let struct (a, b, d, e) = Philox.Rounds(7, k[0], k[1], c[0], c[1], c[2], c[3])
                Expect.sequenceEqual [| a; b; d; e |] (hex expected) "Random123 kat_vectors philox4x32_7 (checks the round loop independently of the count)"

        testCase "stream words follow the documented key/counter layout" <| fun () ->
            let seed = 0x0123456789ABCDEFUL
            let mutable s = PhiloxStream(seed, Purpose.ExampleChoice, 0x00ABCDEF, 0x1122334455667788UL)
            let words = Array.init 9 (fun _ -> s.NextUInt32())
            for block in 0u .. 2u do
                let out = Array.zeroCreate 4
                let ctr = [| block; (2u <<< 24) ||| 0x00ABCDEFu; 0x55667788u; 0x11223344u |]
                Philox.Block(ReadOnlySpan ctr, ReadOnlySpan [| 0x89ABCDEFu; 0x01234567u |], Span out)
                for w in 0 .. 3 do
                    let i = int block * 4 + w
                    if i < words.Length then Expect.equal words[i] out[w] $"word {i}"

        testCase "streams with different purpose, lane or stream differ" <| fun () ->
            let first (p, lane, st) = let mutable s = PhiloxStream(7UL, p, lane, st) in s.NextUInt32()
            let a = first (Purpose.ClassChoice, 0, 0UL)
            Expect.notEqual a (first (Purpose.ExampleChoice, 0, 0UL)) "purpose"
            Expect.notEqual a (first (Purpose.ClassChoice, 1, 0UL)) "lane"
            Expect.notEqual a (first (Purpose.ClassChoice, 0, 1UL)) "stream"

        testCase "lane outside 24 bits is rejected" <| fun () ->
            let e = throwsWith<ArgumentOutOfRangeException> (fun () -> PhiloxStream(1UL, Purpose.User, 0x1000000, 0UL) |> ignore) "lane"
            Expect.stringContains e.Message "24 bits" "message"

        testCase "Block rejects a short key" <| fun () ->
            let e = throwsWith<ArgumentException> (fun () -> Philox.Block(ReadOnlySpan(Array.zeroCreate<uint32> 4), ReadOnlySpan(Array.zeroCreate<uint32> 1), Span(Array.zeroCreate<uint32> 4))) "key"
            Expect.stringContains e.Message "2 words" "message"

        testCase "NextDouble is in [0, 1) and NextBounded in range" <| fun () ->
            let mutable s = PhiloxStream(3UL, Purpose.User, 0, 0UL)
            for _ in 1 .. 10000 do
                let d = s.NextDouble()
                Expect.isTrue (d >= 0.0 && d < 1.0) "double"
                let b = s.NextBounded 7
                Expect.isTrue (b >= 0 && b < 7) "bounded"

        testCase "PhiloxRandomSource is reproducible and drives MathNet distributions" <| fun () ->
            let draw () =
                let src = PhiloxRandomSource(42UL, 5UL)
                let normal = MathNet.Numerics.Distributions.Normal(0.0, 1.0, src)
                Array.init 100 (fun _ -> normal.Sample())
            Expect.sequenceEqual (draw ()) (draw ()) "same seed and stream, same samples"
            let src = PhiloxRandomSource(42UL, 5UL)
            let mutable s = PhiloxStream(42UL, Purpose.User, 0, 5UL)
            Expect.equal (src.NextDouble()) (s.NextDouble()) "NextDouble reads the Philox stream"
    ]
