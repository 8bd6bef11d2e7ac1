module Samplers.Tests.Core.SamplingTests

open System
open Expecto
open FsCheck.FSharp
open Samplers.Core
open Samplers.Tests
open Samplers.Tests.TestUtil

/// Pearson's chi-square of counts against a uniform expectation.
let private chiSquare (counts: int[]) =
    let expected = float (Array.sum counts) / float counts.Length
    counts |> Array.sumBy (fun c -> (float c - expected) ** 2.0 / expected)

/// The bound a correct sampler exceeds with probability 1e-6 (fixed seeds: the tests cannot flake).
let private chiSquareLimit (df: int) = MathNet.Numerics.Distributions.ChiSquared.InvCDF(float df, 1.0 - 1e-6)

/// (seed, n, k) with n up to 5000 and k on both sides of Sampling.ScanLimit, including 0 and n.
let private floydCase =
    gen {
        let! seed = Props.uint64Spread
        let! n = Props.intSpread 1 5000
        let! k = Gen.frequency [ 2, Gen.choose (0, min n Sampling.ScanLimit); 2, Gen.choose (0, n); 1, Gen.elements [ 0; n ] ]
        return seed, n, k
    }

/// n up to 5000, with powers of two and their neighbours (where the Feistel bit width changes) mixed in.
let private feistelCase =
    gen {
        let! seed = Props.uint64Spread
        let! n = Gen.frequency [ 3, Props.intSpread 1 5000
                                 1, Gen.elements [ for b in 0 .. 12 do for d in [ -1; 0; 1 ] do if (1 <<< b) + d >= 1 then (1 <<< b) + d ] ]
        return seed, n
    }

[<Tests>]
let tests =
    testList "Core.Sampling" [
        testCase "Lemire step is exactly uniform for every bound over all 8-bit and 12-bit words" <| fun () ->
            for bits in [ 8; 12 ] do
                let words = 1 <<< bits
                for bound in 1 .. words do
                    let counts = Array.zeroCreate bound
                    let mutable rejected = 0
                    for w in 0 .. words - 1 do
                        let v = Sampling.LemireStep(bits, uint32 bound, uint64 w)
                        if v < 0L then rejected <- rejected + 1
                        else counts[int v] <- counts[int v] + 1
                    let expected = words / bound
                    if counts |> Array.exists (fun c -> c <> expected) then
                        failtestf "bits %d bound %d: counts not all %d" bits bound expected
                    Expect.equal rejected (words % bound) $"bits {bits} bound {bound}: rejects exactly 2^w mod bound"

        testCase "32-bit NextBounded agrees with the Lemire step on the same words" <| fun () ->
            // 1431655766 and 1610612737 reject about 1/3 and 1/4 of all words (2^32 mod bound is that large), so a
            // NextBounded that skipped the rejection would disagree within a few draws; for small bounds a rejection
            // has probability below 2^-29 and would never be seen.
            for bound in [ 1; 2; 3; 7; 1000; 1 <<< 30; 1431655766; 1610612737; Int32.MaxValue ] do
                let mutable a = PhiloxStream(9UL, Purpose.User, 1, uint64 bound)
                let mutable b = PhiloxStream(9UL, Purpose.User, 1, uint64 bound)
                for _ in 1 .. 1000 do
                    let got = a.NextBounded bound
                    let mutable v = Sampling.LemireStep(32, uint32 bound, uint64 (b.NextUInt32()))
                    while v < 0L do v <- Sampling.LemireStep(32, uint32 bound, uint64 (b.NextUInt32()))
                    Expect.equal (int64 got) v $"bound {bound}"

        Props.property "Floyd gives k distinct values of [0, n), n up to 5000, both membership paths" 300 (
            Prop.forAll (Arb.fromGen floydCase) (fun (seed, n, k) ->
                let dest = Array.zeroCreate k
                let scratch = Array.zeroCreate (Sampling.ScratchLength k)
                let mutable s = PhiloxStream(seed, Purpose.User, 0, 0UL)
                Sampling.Floyd(&s, n, k, Span dest, Span scratch)
                let ok = (dest |> Array.distinct |> Array.length) = k && dest |> Array.forall (fun v -> v >= 0 && v < n)
                ok
                |> Prop.classify (k <= Sampling.ScanLimit) "k <= 12 (scan)"
                |> Prop.classify (k > Sampling.ScanLimit) "k > 12 (hash table)"
                |> Prop.classify (k = n) "k = n"
                |> Prop.collect (Props.decade "n" (int64 n))))

        testCase "Floyd (scan and hash-table paths) matches a plain reference Floyd on the same words" <| fun () ->
            for (n, k) in [ (50, 10); (500, 12); (500, 13); (500, 40); (100000, 5000); (64, 64) ] do
                let mutable a = PhiloxStream(5UL, Purpose.User, 0, uint64 k)
                let got = Array.zeroCreate k
                Sampling.Floyd(&a, n, k, Span got, Span(Array.zeroCreate (Sampling.ScratchLength k)))
                let mutable b = PhiloxStream(5UL, Purpose.User, 0, uint64 k)
                let set = Collections.Generic.HashSet<int>()
                let expected = ResizeArray()
                for j in n - k .. n - 1 do
                    let t = b.NextBounded(j + 1)
                    let v = if set.Add t then t else (set.Add j |> ignore; j)
                    expected.Add v
                Expect.sequenceEqual got expected $"n {n} k {k}"

        testCase "Floyd rejects k > n and a short scratch" <| fun () ->
            let e = throwsWith<ArgumentOutOfRangeException> (fun () -> let mutable s = PhiloxStream(1UL, Purpose.User, 0, 0UL) in Sampling.Floyd(&s, 3, 4, Span(Array.zeroCreate 4), Span.Empty)) "k > n"
            Expect.stringContains e.Message "[0, 3]" "message"
            let e = throwsWith<ArgumentOutOfRangeException> (fun () -> let mutable s = PhiloxStream(1UL, Purpose.User, 0, 0UL) in Sampling.Floyd(&s, 300, 100, Span(Array.zeroCreate 100), Span.Empty)) "scratch"
            Expect.stringContains e.Message "scratch must hold" "message"

        testCase "Floyd + shuffle: every ordered 2-sample of 4 equally likely (chi-square, fixed seeds)" <| fun () ->
            let counts = Array.zeroCreate 16
            let trials = 24000
            for t in 0 .. trials - 1 do
                let mutable s = PhiloxStream(uint64 t, Purpose.User, 0, 11UL)
                let d = Array.zeroCreate 2
                Sampling.Floyd(&s, 4, 2, Span d, Span.Empty)
                Sampling.Shuffle(&s, Span d)
                counts[d[0] * 4 + d[1]] <- counts[d[0] * 4 + d[1]] + 1
            let cells = [ for a in 0 .. 3 do for b in 0 .. 3 do if a <> b then counts[a * 4 + b] ]
            Expect.isLessThan (chiSquare (Array.ofList cells)) (chiSquareLimit 11) "chi-square of ordered pairs"

        Props.property "Feistel permutation is a bijection with a working inverse, n up to 5000" 300 (
            Prop.forAll (Arb.fromGen feistelCase) (fun (seed, n) ->
                let mutable s = PhiloxStream(seed, Purpose.User, 0, 0UL)
                let p = FeistelPermutation(n, &s)
                let image = Array.init n p.Apply
                let bits = if n <= 2 then 1 else 32 - Numerics.BitOperations.LeadingZeroCount(uint32 (n - 1))
                let ok = (Array.sort image = Array.init n id) && (Array.init n (fun i -> p.Inverse image[i]) = Array.init n id)
                ok
                |> Prop.classify (bits % 2 = 1) "odd bit width (halves of unequal width)"
                |> Prop.classify (n > 1 && n &&& (n - 1) = 0) "n a power of two"
                |> Prop.collect (Props.decade "n" (int64 n))))

        testCase "Feistel permutation of a large range is computed pointwise" <| fun () ->
            let mutable s = PhiloxStream(1UL, Purpose.User, 0, 0UL)
            let p = FeistelPermutation(Int32.MaxValue, &s)
            for i in [ 0; 1; 12345; Int32.MaxValue - 1 ] do
                let v = p.Apply i
                Expect.isTrue (v >= 0 && v < Int32.MaxValue) "in range"
                Expect.equal (p.Inverse v) i "inverse"

        testCase "with-replacement draws stay in range and repeat" <| fun () ->
            let mutable s = PhiloxStream(1UL, Purpose.User, 0, 0UL)
            let d = Array.zeroCreate 50
            Sampling.WithReplacement(&s, 3, Span d)
            Expect.isTrue (d |> Array.forall (fun v -> v >= 0 && v < 3)) "range"
            Expect.isLessThan (Array.length (Array.distinct d)) 4 "repeats"

        testCase "with-replacement draws are uniform over all n values (chi-square, fixed seeds)" <| fun () ->
            // 200 draws per value on average; a sampler that never draws one of the n values (e.g. draws from n - 1)
            // has a statistic of at least 200 * n / (n - 1) - ... far above the bound for every n here.
            for n in [ 2; 3; 7; 10; 64; 1000 ] do
                for seed in [ 1UL; 2UL ] do
                    let mutable s = PhiloxStream(seed, Purpose.User, 3, uint64 n)
                    let d = Array.zeroCreate (200 * n)
                    Sampling.WithReplacement(&s, n, Span d)
                    let counts = Array.zeroCreate n
                    for v in d do counts[v] <- counts[v] + 1
                    Expect.isTrue (Array.forall (fun c -> c > 0) counts) $"n {n} seed {seed}: every value drawn"
                    Expect.isLessThan (chiSquare counts) (chiSquareLimit (n - 1)) $"n {n} seed {seed}: chi-square against uniform"
    ]
