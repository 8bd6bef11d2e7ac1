// Shared by the experiment scripts: references, argument parsing, loading, manifests and replay.
// Build first (the scripts reference the built tool's folder, which holds the libraries and every dependency):
//   dotnet build -c Release src/Samplers.Cli
// No `#r "nuget:"`: start-up stays fast and it works offline.
#I "../src/Samplers.Cli/bin/Release/net10.0"
#r "Samplers.Core.dll"
#r "Samplers.dll"
#r "Samplers.Experiments.dll"
#r "Microsoft.Extensions.Logging.Abstractions.dll"
#r "SkiaSharp.dll"
#r "Samplers.SkiaSharp.dll"

open System
open System.Globalization
open System.IO
open System.Runtime.InteropServices
open Samplers
open Samplers.Imaging
open Samplers.Tfds
open Samplers.Core
open Samplers.Experiments

/// The folder the libraries were loaded from (the #I above).
let libraryDir = Path.GetDirectoryName(typeof<MultiShotMemorySampler>.Assembly.Location)

// PNG decodes in managed code. JPEG goes through Samplers.SkiaSharp: fsi does not read the tool's deps.json, so point
// SkiaSharp at its native library and register the codec explicitly (loading it by name needs the deps.json too).
do
    let rid =
        (if RuntimeInformation.IsOSPlatform OSPlatform.Windows then "win"
         elif RuntimeInformation.IsOSPlatform OSPlatform.OSX then "osx"
         else "linux") + "-" + RuntimeInformation.OSArchitecture.ToString().ToLowerInvariant()
    let native = Path.Combine(libraryDir, "runtimes", rid, "native")
    NativeLibrary.SetDllImportResolver(typeof<SkiaSharp.SKImage>.Assembly, DllImportResolver(fun name _ _ ->
        let file =
            Directory.EnumerateFiles(native) |> Seq.tryFind (fun f -> Path.GetFileNameWithoutExtension(f).TrimStart([| 'l'; 'i'; 'b' |]) = name.TrimStart([| 'l'; 'i'; 'b' |]))
        match file with
        | Some f -> NativeLibrary.Load f
        | None -> IntPtr.Zero))
    Samplers.SkiaSharp.SkiaSharpImaging.Register()

/// `--name value` pairs of the script's command line (fsi passes the arguments after the script).
let args = fsi.CommandLineArgs |> Array.skip 1
let arg (name: string) (fallback: string) =
    match Array.tryFindIndex ((=) ("--" + name)) args with
    | Some i when i + 1 < args.Length -> args[i + 1]
    | _ -> fallback
let hasArg (name: string) = Array.contains ("--" + name) args

/// The repository's data/ folder (the embedded dataset) relative to this script.
let embeddedDataDir = Path.GetFullPath(Path.Combine(__SOURCE_DIRECTORY__, "..", "data"))

/// The load settings of a script run: the library's TfdsLoadOptions record (what the façade and the CLI load with).
/// Never downloads: the scripts run on data already on disk.
let loadOptions (dataset: string) (dataDir: string) (cacheDir: string option) (splits: string list) (xKey: string) (yKey: string) =
    TfdsLoadOptions(DatasetName = dataset, DataDir = dataDir, Splits = Array.ofList splits, XKey = xKey, YKey = yKey,
                    CacheDir = Option.toObj cacheDir, UseCache = cacheDir.IsSome, Download = null)

/// Loads through the library's one load route (TfdsLoader.LoadAsync); the table is reused for every sampler of the script.
let loadWith (options: TfdsLoadOptions) =
    let r = Samplers.Tfds.TfdsLoader.LoadAsync(options).GetAwaiter().GetResult()
    r, r.Table

/// Loads a dataset's splits with the default keys (image, label).
let load (dataset: string) (dataDir: string) (cacheDir: string option) (splits: string list) =
    loadWith (loadOptions dataset dataDir cacheDir splits "image" "label")

/// A sampler over an already loaded table with the manifest's sampling settings.
let sampler table (sampling: ManifestSampling) =
    new MultiShotMemorySampler(table, sampling.ApplyTo(SamplerOptions()))

/// Replays a manifest: loads its dataset, checks the fingerprint, recomputes every run's digest. Exit code 0 when all match.
let replay (manifestPath: string) (dataDir: string) (cacheDir: string option) =
    let m = ExperimentManifest.Load manifestPath
    if m.PlanVersion <> Planner.PlanVersion then
        eprintfn "manifest plan version %d, this library plans version %d: the digests cannot match" m.PlanVersion Planner.PlanVersion
        1
    else
        // The manifest's keys too: replaying must load the features the run sampled from.
        let loaded, table = loadWith (loadOptions m.Dataset.Name dataDir cacheDir (List.ofSeq m.Dataset.Splits) m.Dataset.XKey m.Dataset.YKey)
        let fingerprint = DatasetFingerprint.Compute table
        if fingerprint <> m.Dataset.Fingerprint then
            eprintfn "dataset fingerprint %s differs from the manifest's %s: not the same data" fingerprint m.Dataset.Fingerprint
            1
        else
            let mutable ok = true
            for run in m.Runs do
                let matches, digest = ExperimentManifest.Verify(run, sampler table run.Sampling).ToTuple()
                printfn "%s %s: %s" (if matches then "reproduced" else "MISMATCH") run.Label digest
                if not matches then
                    eprintfn "  manifest says %s" run.PlanDigest
                    ok <- false
            if ok then 0 else 1

/// Writes the manifest next to the output and prints where.
let writeManifest (outDir: string) (m: ExperimentManifest) =
    let path = Path.Combine(outDir, "manifest.json")
    m.Save path
    printfn "manifest: %s" path
    path

/// The options every script reads (see docs/EXPERIMENTS.md), with the script's own defaults applied.
type Settings =
    { DataDir: string
      CacheDir: string option
      Dataset: string
      Splits: string list
      Classes: int
      Examples: int
      Steps: int
      Seed: uint64
      OutDir: string }

/// Reads the shared options; with `--replay <manifest>` it replays that manifest and exits with its result instead.
/// Creates the output folder (default out/<experiment>).
let start (experiment: string) (defaultSteps: int) (defaultSeed: uint64) =
    let dataDir = arg "data-dir" embeddedDataDir
    let cacheDir = match arg "cache-dir" "" with "" -> None | d -> Some d
    if hasArg "replay" then
        exit (replay (arg "replay" "") dataDir cacheDir)
    let outDir = arg "out" (Path.Combine("out", experiment))
    Directory.CreateDirectory outDir |> ignore
    { DataDir = dataDir
      CacheDir = cacheDir
      Dataset = arg "dataset" "synthetic_digits"
      Splits = (arg "splits" "train,test").Split(',') |> List.ofArray
      Classes = int (arg "classes" "4")
      Examples = int (arg "examples" "4")
      Steps = int (arg "steps" (string defaultSteps))
      Seed = UInt64.Parse(arg "seed" (string defaultSeed), CultureInfo.InvariantCulture)
      OutDir = outDir }

/// The sampler settings of one run in `mode`.
let samplingFor (s: Settings) (mode: SamplingMode) =
    ManifestSampling(ClassesPerBatch = s.Classes, ExamplesPerClassPerBatch = s.Examples, StepsPerEpoch = s.Steps, Seed = s.Seed, Mode = mode)

/// The modes every script compares.
let modes = [ SamplingMode.Independent; SamplingMode.Coverage ]

/// A number for CSV: invariant culture, up to 6 decimals.
let inv (x: float) = x.ToString("0.######", CultureInfo.InvariantCulture)

/// Writes the manifest of a run of `experiment` (dataset name, splits, size and fingerprint; runs; results) into the
/// output folder and prints where.
let saveManifest (experiment: string) (s: Settings) (datasetName: string) (table: Samplers.ExampleTable)
                 (runs: ManifestRun seq) (results: Collections.Generic.Dictionary<string, float>) =
    ExperimentManifest(
        Experiment = experiment,
        Dataset = ManifestDataset(Name = datasetName, Splits = Array.ofList s.Splits, NumExamples = int64 table.Count,
                                  Fingerprint = DatasetFingerprint.Compute table),
        Runs = Array.ofSeq runs,
        Results = results)
    |> writeManifest s.OutDir
    |> ignore
