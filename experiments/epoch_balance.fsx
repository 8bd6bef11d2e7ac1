// Samples one epoch in each mode and reports class balance and example coverage.
//
//   dotnet build -c Release src/Samplers.Cli
//   dotnet fsi experiments/epoch_balance.fsx                       # the embedded synthetic_digits
//   dotnet fsi experiments/epoch_balance.fsx --dataset mnist --data-dir ~/tensorflow_datasets --classes 10 --examples 4
//   dotnet fsi experiments/epoch_balance.fsx --replay out/epoch_balance/manifest.json   # recompute the digests
//
// Options: --dataset, --data-dir, --cache-dir, --splits (comma-separated), --classes, --examples, --steps, --seed,
// --epoch, --out (default out/epoch_balance). Writes per_class.csv and summary.csv, and manifest.json next to them.
#load "Common.fsx"

open System
open System.IO
open Samplers
open Samplers.Imaging
open Samplers.Tfds
open Samplers.Core
open Samplers.Core.Statistics
open Samplers.Experiments
open Common

let settings = start "epoch_balance" 250 2026UL
let epoch = int (arg "epoch" "0")

let loaded, table = load settings.Dataset settings.DataDir settings.CacheDir settings.Splits
printfn "%s: %d examples, %s" loaded.Builder.FullName table.Count (if loaded.FromCache then "from the cache" else "from TFRecords")

let perClass = Text.StringBuilder("mode,label,name,rows\n")
let summary = Text.StringBuilder("mode,rows,min,max,chi_square,df,p_value,examples_seen,examples_available,coverage,plan_digest\n")
let runs = ResizeArray<ManifestRun>()
let results = Collections.Generic.Dictionary<string, float>()
for mode in modes do
    let sampling = samplingFor settings mode
    let s = sampler table sampling
    let tally = BalanceTally(s.ClassIndex, table.Count)
    use digest = new PlanDigest()
    for b in 0 .. s.Count - 1 do
        let plan = s.Planner.Plan({ Seed = settings.Seed; Epoch = epoch; BatchId = b })
        tally.Add plan
        digest.Add plan
    let r = tally.Summary()
    let d = digest.Finish()
    for o in 0 .. r.Counts.Length - 1 do
        perClass.Append($"{mode},{s.ClassList[o]},{s.ClassNames[o]},{r.Counts[o]}\n") |> ignore
    summary.Append($"{mode},{r.Rows},{r.Min},{r.Max},{inv r.ChiSquare},{r.DegreesOfFreedom},{inv r.PValue},{r.DistinctExamples},{r.AvailableExamples},{inv r.Coverage},{d}\n") |> ignore
    printfn "%-11s rows %d, per class min %d max %d, chi-square %.3f (df %d) p %.4f, examples seen %d of %d (%.1f%%), digest %s"
        (string mode) r.Rows r.Min r.Max r.ChiSquare r.DegreesOfFreedom r.PValue r.DistinctExamples r.AvailableExamples (100.0 * r.Coverage) d
    runs.Add(ManifestRun(Label = string mode, Sampling = sampling, FirstEpoch = epoch, EpochCount = 1, PlanDigest = d))
    results[$"{mode}.pValue"] <- r.PValue
    results[$"{mode}.coverage"] <- r.Coverage
    results[$"{mode}.maxMinusMin"] <- float (r.Max - r.Min)

File.WriteAllText(Path.Combine(settings.OutDir, "per_class.csv"), perClass.ToString())
File.WriteAllText(Path.Combine(settings.OutDir, "summary.csv"), summary.ToString())
saveManifest "epoch_balance" settings loaded.Builder.FullName table runs results
