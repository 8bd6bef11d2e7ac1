/// Property tests with explicit generators and a visible case distribution.
/// Why: FsCheck's default generators grow with the test size (about 100), so `n0 % 2000` never exceeded 101, seeds
/// stayed in [0, 100] and split cut points below 100 while splits have thousands of records. These generators cover
/// the ranges the properties claim, and every property classifies its cases (Prop.classify / Prop.collect), printing
/// one line per property with the share of each class, so a reader sees what was covered.
module Samplers.Tests.Props

open System
open Expecto
open FsCheck
open FsCheck.FSharp

/// A 64-bit value whose bit length is uniform over 0..64 (0, small, 2^32-ish and full-width seeds all occur),
/// uniform among the values of that length.
let uint64Spread : Gen<uint64> =
    gen {
        let! bits = Gen.choose (0, 64)
        let! a = Gen.choose (0, 0xFFFF)
        let! b = Gen.choose (0, 0xFFFF)
        let! c = Gen.choose (0, 0xFFFF)
        let! d = Gen.choose (0, 0xFFFF)
        let v = (uint64 a <<< 48) ||| (uint64 b <<< 32) ||| (uint64 c <<< 16) ||| uint64 d
        return
            if bits = 0 then 0UL
            elif bits = 64 then v ||| (1UL <<< 63)
            else (v &&& ((1UL <<< bits) - 1UL)) ||| (1UL <<< (bits - 1))
    }

/// An int in [lo, hi] whose magnitude is spread: a quarter of the cases within 20 of lo, the rest uniform.
let intSpread (lo: int) (hi: int) : Gen<int> =
    Gen.frequency [ 1, Gen.choose (lo, min hi (lo + 20)); 3, Gen.choose (lo, hi) ]

/// The bucket of a seed's bit length, for Prop.collect.
let seedBits (s: uint64) =
    let bits = 64 - Numerics.BitOperations.LeadingZeroCount s
    if bits = 0 then "seed 0"
    elif bits <= 16 then "seed 1-16 bits"
    elif bits <= 32 then "seed 17-32 bits"
    elif bits <= 48 then "seed 33-48 bits"
    else "seed 49-64 bits"

/// A decade bucket of a positive count, for Prop.collect ("n 1-9", "n 10-99", ...).
let decade (name: string) (n: int64) =
    let rec go lo = if n < lo * 10L then $"{name} {lo}-{lo * 10L - 1L}" else go (lo * 10L)
    if n <= 0L then $"{name} {n}" else go 1L

/// Per label: the share of cases that carried it. FsCheck reports each combination of labels with its percentage
/// (rounded down); one figure per label reads better, so the combinations are summed (hence "about").
let private distribution (data: TestData) =
    data.Stamps
    |> Seq.collect (fun (percent, labels) -> labels |> Seq.map (fun l -> l.Trim('"'), percent))
    |> Seq.groupBy fst
    |> Seq.map (fun (label, xs) -> label, Seq.sumBy snd xs)
    |> Seq.sortBy fst
    |> Seq.map (fun (label, percent) -> $"{label} ~{percent}%%")
    |> String.concat ", "

let private runner (name: string) =
    { new IRunner with
        member _.OnStartFixture _ = ()
        member _.OnArguments(_, _, _) = ()
        member _.OnShrink(_, _) = ()
        member _.OnFinished(_, result) =
            match result with
            | TestResult.Passed (data, _) ->
                Console.Out.Write($"property '{name}': {data.NumberOfTests} cases: {distribution data}\n")
            | _ -> failtest (Runner.onFinishedToString name result) }

/// A test that checks `prop` on `cases` generated cases; it fails with FsCheck's report (arguments, shrunk
/// arguments and the seed to replay) and on success prints the distribution of the cases' classes.
let property (name: string) (cases: int) (prop: Property) : Test =
    testCase name <| fun () ->
        Check.One(Config.Quick.WithMaxTest(cases).WithRunner(runner name), prop)

/// As <see cref="property"/>, printing <paramref name="shownAs"/> (e.g. with the mode of a shared contract) instead of the test name.
let propertyShownAs (shownAs: string) (name: string) (cases: int) (prop: Property) : Test =
    testCase name <| fun () ->
        Check.One(Config.Quick.WithMaxTest(cases).WithRunner(runner shownAs), prop)
