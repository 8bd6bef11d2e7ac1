// Build script: `dotnet fsi build.fsx <target>`. Plain F#, no `#r "nuget:"` (fast start, works offline).
// Targets: build | test | bench [--full] [benchmark args] | pack | ci. Each target takes the proof tokens
// of the targets it needs, so the types keep the order right (FsCheck's build.fsx does the same).
open System
open System.Diagnostics
open System.IO

let root = __SOURCE_DIRECTORY__

let run (cmd: string) (args: string) =
    printfn "> %s %s" cmd args
    let psi = ProcessStartInfo(cmd, args, WorkingDirectory = root, UseShellExecute = false)
    use p = Process.Start psi
    p.WaitForExit()
    if p.ExitCode <> 0 then
        eprintfn "'%s %s' failed with exit code %d" cmd args p.ExitCode
        exit p.ExitCode

type HaveRestored = private HaveRestored of unit
type HaveBuilt = private HaveBuilt of unit
type HaveTested = private HaveTested of unit

let restore () =
    run "dotnet" "restore Samplers.sln"
    HaveRestored()

let build (HaveRestored()) =
    run "dotnet" "build Samplers.sln -c Release --no-restore"
    HaveBuilt()

/// The README's test command, on the Release build.
let test (HaveBuilt()) =
    run "dotnet" "run --project tests/Samplers.Tests -c Release --no-build"
    HaveTested()

/// Quick mode (default): every benchmark briefly. `--full`: BenchmarkDotNet's default job.
let bench (HaveBuilt()) (args: string list) =
    let full = List.contains "--full" args
    let rest = args |> List.filter (fun a -> a <> "--full") |> String.concat " "
    let mode = if full then "" else "--quick"
    run "dotnet" $"run --project bench/Samplers.Bench -c Release --no-build -- {mode} {rest}"

/// The libraries (with .snupkg symbols), then the tool as RID-specific packages: a small pointer package plus one
/// package per platform, each with only its native SkiaSharp library (docs/API.md "Packages"). The tool's RID mode
/// restores and builds for each platform, so it is not --no-build.
let pack (HaveBuilt()) =
    let out = Path.Combine(root, "artifacts", "packages")
    for p in [ "src/Samplers.Core.FSharp"; "src/Samplers.Core.MathNet"; "src/Samplers.CSharp"; "src/Samplers.SkiaSharp" ] do
        run "dotnet" $"pack {p} -c Release --no-build -o \"{out}\""
    run "dotnet" $"pack src/Samplers.Cli -c Release -p:SamplersRidTools=true -o \"{out}\""
    // The RID-mode restore replaced the tool's project.assets.json: restore the portable graph again for later builds.
    run "dotnet" "restore src/Samplers.Cli"

let args = fsi.CommandLineArgs |> Array.toList |> List.tail
match args with
| [ "build" ] -> restore () |> build |> ignore
| [ "test" ] -> restore () |> build |> test |> ignore
| "bench" :: rest -> bench (restore () |> build) rest
| [ "pack" ] -> restore () |> build |> pack
| [ "ci" ] ->
    let built = restore () |> build
    test built |> ignore
    pack built
| _ ->
    eprintfn "usage: dotnet fsi build.fsx <build | test | bench [--full] [args] | pack | ci>"
    exit 1
