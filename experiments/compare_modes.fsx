// Independent vs Coverage over many epochs: per epoch, how many distinct examples each mode shows, how often the
// most repeated example repeats, and how even the class counts are; plus the cumulative coverage.
//
//   dotnet build -c Release src/Samplers.Cli
//   dotnet fsi experiments/compare_modes.fsx                          # the embedded synthetic_digits, 20 epochs
//   dotnet fsi experiments/compare_modes.fsx --epochs 50 --classes 8 --examples 4 --steps 100
//   dotnet fsi experiments/compare_modes.fsx --replay out/compare_modes/manifest.json
//
// Options: --dataset, --data-dir, --cache-dir, --splits, --classes, --examples, --steps, --seed, --epochs,
// --out (default out/compare_modes). Writes per_epoch.csv and manifest.json.
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

let settings = start "compare_modes" 100 7UL
let epochs = int (arg "epochs" "20")

let loaded, table = load settings.Dataset settings.DataDir settings.CacheDir settings.Splits
printfn "%s: %d examples; %d epochs of %d batches of %d x %d" loaded.Builder.FullName table.Count epochs settings.Steps settings.Classes settings.Examples

let csv = Text.StringBuilder("mode,epoch,rows,distinct_in_epoch,max_repeats,class_min,class_max,p_value,cumulative_coverage\n")
let runs = ResizeArray<ManifestRun>()
let results = Collections.Generic.Dictionary<string, float>()
for mode in modes do
    let sampling = samplingFor settings mode
    let s = sampler table sampling
    let overall = BalanceTally(s.ClassIndex, table.Count)
    use digest = new PlanDigest()
    let mutable worstSpread = 0L
    let mutable worstRepeat = 0
    for e in 0 .. epochs - 1 do
        let tally = BalanceTally(s.ClassIndex, table.Count)
        let uses = Collections.Generic.Dictionary<int, int>()
        for b in 0 .. s.Count - 1 do
            let plan = s.Planner.Plan({ Seed = settings.Seed; Epoch = e; BatchId = b })
            tally.Add plan
            overall.Add plan
            digest.Add plan
            for i in plan.Indices.ToArray() do
                uses[i] <- (match uses.TryGetValue i with | true, n -> n + 1 | _ -> 1)
        let r = tally.Summary()
        let maxRepeats = uses.Values |> Seq.max
        worstSpread <- max worstSpread (r.Max - r.Min)
        worstRepeat <- max worstRepeat maxRepeats
        csv.Append($"{mode},{e},{r.Rows},{r.DistinctExamples},{maxRepeats},{r.Min},{r.Max},{inv r.PValue},{inv (overall.Summary().Coverage)}\n") |> ignore
    let all = overall.Summary()
    let d = digest.Finish()
    printfn "%-11s worst per-epoch class spread %d, worst repeats of one example in an epoch %d, coverage after %d epochs %.1f%%, digest %s"
        (string mode) worstSpread worstRepeat epochs (100.0 * all.Coverage) d
    runs.Add(ManifestRun(Label = string mode, Sampling = sampling, FirstEpoch = 0, EpochCount = epochs, PlanDigest = d))
    results[$"{mode}.worstClassSpread"] <- float worstSpread
    results[$"{mode}.worstRepeats"] <- float worstRepeat
    results[$"{mode}.coverage"] <- all.Coverage

File.WriteAllText(Path.Combine(settings.OutDir, "per_epoch.csv"), csv.ToString())
saveManifest "compare_modes" settings loaded.Builder.FullName table runs results
