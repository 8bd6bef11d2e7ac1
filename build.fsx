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

/// The README's test commands, on the Release build: the main suite, then the TorchSharp bridge's own.
let test (HaveBuilt()) =
    run "dotnet" "run --project tests/Samplers.Tests -c Release --no-build"
    run "dotnet" "run --project tests/Samplers.TorchSharp.Tests -c Release --no-build"
    HaveTested()

/// Quick mode (default): every benchmark briefly. `--full`: BenchmarkDotNet's default job.
let bench (HaveBuilt()) (args: string list) =
    let full = List.contains "--full" args
    let rest = args |> List.filter (fun a -> a <> "--full") |> String.concat " "
    let mode = if full then "" else "--quick"
    run "dotnet" $"run --project bench/Samplers.Bench -c Release --no-build -- {mode} {rest}"

/// Runs a command and returns its standard output (fails like `run`).
let capture (cmd: string) (args: string) =
    let psi = ProcessStartInfo(cmd, args, WorkingDirectory = root, UseShellExecute = false, RedirectStandardOutput = true)
    use p = Process.Start psi
    let out = p.StandardOutput.ReadToEnd()
    p.WaitForExit()
    if p.ExitCode <> 0 then
        eprintfn "'%s %s' failed with exit code %d:\n%s" cmd args p.ExitCode out
        exit p.ExitCode
    out

/// Every project under src/ that packs, with whether it is a tool. MSBuild answers (IsPackable, PackAsTool), so a
/// new library is packed without editing this list, and a project opts out with <IsPackable>false</IsPackable>.
let packableProjects () =
    Directory.GetDirectories(Path.Combine(root, "src"))
    |> Array.sort
    |> Array.collect (fun d -> Array.append (Directory.GetFiles(d, "*.csproj")) (Directory.GetFiles(d, "*.fsproj")))
    |> Array.choose (fun proj ->
        let json = capture "dotnet" $"msbuild \"{proj}\" -getProperty:IsPackable -getProperty:PackAsTool"
        use doc = System.Text.Json.JsonDocument.Parse json
        let prop (name: string) = doc.RootElement.GetProperty("Properties").GetProperty(name).GetString()
        let rel = Path.GetRelativePath(root, proj)
        if prop "IsPackable" = "false" then None else Some(rel, prop "PackAsTool" = "true"))
    |> Array.toList

/// The libraries (with .snupkg symbols), then the tools as RID-specific packages: a small pointer package plus one
/// package per platform, each with only its native SkiaSharp library (docs/API.md "Packages"). The tool's RID mode
/// restores and builds for each platform, so it is not --no-build.
let pack (HaveBuilt()) =
    let out = Path.Combine(root, "artifacts", "packages")
    let projects = packableProjects ()
    printfn "packing: %s" (projects |> List.map fst |> String.concat ", ")
    for p, _ in projects |> List.filter (snd >> not) do
        run "dotnet" $"pack {p} -c Release --no-build -o \"{out}\""
    for p, _ in projects |> List.filter snd do
        run "dotnet" $"pack {p} -c Release -p:SamplersRidTools=true -o \"{out}\""
        // The RID-mode restore replaced the tool's project.assets.json: restore the portable graph again for later builds.
        run "dotnet" $"restore {p}"

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
