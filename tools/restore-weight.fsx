// The download weight of a cold restore, from the lock files: every package (id, version) that the committed
// packages.lock.json files name, with the size of its .nupkg (what a cold restore downloads) and of its extracted
// folder, read from the global packages folder (NUGET_PACKAGES, else ~/.nuget/packages) after a restore.
// Usage: dotnet fsi tools/restore-weight.fsx [lock files...]   (default: every packages.lock.json of the repo)
// docs/API.md "Packages" quotes its output.
open System
open System.IO
open System.Text.Json

let root = Path.GetFullPath(Path.Combine(__SOURCE_DIRECTORY__, ".."))
let packagesDir =
    match Environment.GetEnvironmentVariable "NUGET_PACKAGES" with
    | null | "" -> Path.Combine(Environment.GetFolderPath Environment.SpecialFolder.UserProfile, ".nuget", "packages")
    | d -> d

let lockFiles =
    match fsi.CommandLineArgs |> Array.skip 1 |> List.ofArray with
    | [] ->
        Directory.EnumerateFiles(root, "packages.lock.json", SearchOption.AllDirectories)
        |> Seq.filter (fun f -> not (f.Contains "/obj/" || f.Contains "/bin/"))
        |> List.ofSeq
    | files -> files

/// (lower-case id, version) of every package a lock file names, in every target (portable and RID-specific).
let packagesOf (file: string) =
    use doc = JsonDocument.Parse(File.ReadAllText file)
    [ for target in doc.RootElement.GetProperty("dependencies").EnumerateObject() do
          for dep in target.Value.EnumerateObject() do
              let v = dep.Value
              if v.GetProperty("type").GetString() <> "Project" then
                  match v.TryGetProperty "resolved" with
                  | true, r -> yield dep.Name.ToLowerInvariant(), r.GetString()
                  | _ -> () ]

let folderBytes (dir: string) =
    if Directory.Exists dir then
        Directory.EnumerateFiles(dir, "*", SearchOption.AllDirectories) |> Seq.sumBy (fun f -> FileInfo(f).Length)
    else 0L

let packages = lockFiles |> List.collect packagesOf |> List.distinct
let rows =
    [ for id, version in packages ->
          let dir = Path.Combine(packagesDir, id, version)
          let nupkg = Path.Combine(dir, $"{id}.{version}.nupkg")
          id, version, (if File.Exists nupkg then FileInfo(nupkg).Length else -1L), folderBytes dir ]
    |> List.sortByDescending (fun (_, _, n, _) -> n)

let mb (b: int64) = float b / 1e6
for id, version, n, d in rows |> List.truncate 15 do
    printfn "%-55s %-12s %8.1f MB download %8.1f MB on disk" id version (mb n) (mb d)
let missing = rows |> List.filter (fun (_, _, n, _) -> n < 0L)
for id, version, _, _ in missing do eprintfn "not in %s: %s %s (restore first)" packagesDir id version
printfn "%d lock files, %d packages: %.1f MB to download, %.1f MB on disk"
    lockFiles.Length rows.Length (rows |> List.sumBy (fun (_, _, n, _) -> max n 0L) |> mb) (rows |> List.sumBy (fun (_, _, _, d) -> d) |> mb)
