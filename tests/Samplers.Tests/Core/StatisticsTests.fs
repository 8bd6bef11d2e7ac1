/// The core's own chi-square p-value (SpecialFunctions.fs), checked against MathNet.Numerics, which the tests keep
/// as the reference implementation (the core no longer depends on it).
module Samplers.Tests.Core.StatisticsTests

open System
open Expecto
open Samplers.Core.Statistics

let private relClose (expected: float) (actual: float) (tolerance: float) =
    if expected = 0.0 then abs actual < 1e-300
    else abs (actual - expected) / abs expected <= tolerance

[<Tests>]
let tests =
    testList "Core.Statistics" [
        testCase "Q(a, x) agrees with MathNet's GammaUpperRegularized over a grid with the far tail" <| fun () ->
            let mutable worst = 0.0
            let mutable checkedCount = 0
            for a in [ 0.5; 1.0; 1.5; 2.0; 3.0; 4.5; 10.0; 49.5; 100.0; 499.5; 1000.0; 4999.5; 50000.0 ] do
                for f in [ 0.001; 0.01; 0.1; 0.5; 0.8; 0.9; 0.99; 1.0; 1.01; 1.1; 1.2; 1.5; 2.0; 3.0; 5.0; 10.0 ] do
                    let x = a * f
                    let expected = MathNet.Numerics.SpecialFunctions.GammaUpperRegularized(a, x)
                    let actual = SpecialFunctions.GammaUpperRegularized(a, x)
                    // Values below 1e-290 are where either side may underflow; compare down to there.
                    if expected > 1e-290 then
                        checkedCount <- checkedCount + 1
                        let rel = abs (actual - expected) / expected
                        worst <- max worst rel
                        if not (relClose expected actual 1e-9) then
                            failtestf "Q(%g, %g): ours %.17g, MathNet %.17g (relative error %.3g)" a x actual expected rel
            Expect.isGreaterThan checkedCount 150 "grid points compared"
            printfn "Q(a, x) vs MathNet: %d points, worst relative error %.3g" checkedCount worst

        testCase "chi-square survival: known values" <| fun () ->
            // df 2: P(X >= x) = exp(-x/2) exactly; df 1 at x = 3.841458820694124 (the 95% quantile): 0.05.
            for x in [ 0.0; 0.3; 1.0; 7.5; 40.0; 600.0 ] do
                Expect.isTrue (relClose (exp (-x / 2.0)) (SpecialFunctions.ChiSquareSurvival(2, x)) 1e-13) $"df 2 at {x}"
            Expect.floatClose Accuracy.high (SpecialFunctions.ChiSquareSurvival(1, 3.841458820694124)) 0.05 "df 1, 95%"
            Expect.equal (SpecialFunctions.ChiSquareSurvival(5, 0.0)) 1.0 "x = 0"

        testCase "Q rejects a <= 0 and x < 0, naming the argument" <| fun () ->
            Expect.throwsT<ArgumentException> (fun () -> SpecialFunctions.GammaUpperRegularized(0.0, 1.0) |> ignore) "a = 0"
            Expect.throwsT<ArgumentException> (fun () -> SpecialFunctions.GammaUpperRegularized(1.0, -1.0) |> ignore) "x < 0"
            Expect.throwsT<ArgumentException> (fun () -> SpecialFunctions.GammaUpperRegularized(Double.NaN, 1.0) |> ignore) "a NaN"

        testCase "ChiSquareUniform: statistic, degrees of freedom and p-value as a named record" <| fun () ->
            let t = BalanceTally.ChiSquareUniform(ReadOnlySpan [| 10L; 20L; 30L |])
            // expected 20 each: (100 + 0 + 100) / 20 = 10, df 2, p = exp(-5)
            Expect.floatClose Accuracy.high t.Statistic 10.0 "statistic"
            Expect.equal t.DegreesOfFreedom 2 "df"
            Expect.floatClose Accuracy.high t.PValue (exp -5.0) "p"
            let one = BalanceTally.ChiSquareUniform(ReadOnlySpan [| 7L |])
            Expect.equal (one.Statistic, one.DegreesOfFreedom, one.PValue) (0.0, 0, 1.0) "one class"
            Expect.throwsT<ArgumentException> (fun () -> BalanceTally.ChiSquareUniform(ReadOnlySpan<int64>.Empty) |> ignore) "no counts"
            Expect.throwsT<ArgumentException> (fun () -> BalanceTally.ChiSquareUniform(ReadOnlySpan [| 1L; -1L |]) |> ignore) "negative"
    ]
