module Samplers.Tests.Core.GoldenTests

open System
open System.IO
open System.Security.Cryptography
open System.Text
open System.Text.Json
open System.Text.Json.Nodes
open Expecto
open Samplers
open Samplers.Imaging
open Samplers.Tfds
open Samplers.Core
open Samplers.Tests.TestUtil

/// The golden file, relative to the test binary (copied there by the fsproj) and to the repository root.
let fileName = $"plans-v{Planner.PlanVersion}.json"
let regenerateVariable = "SAMPLERS_REGENERATE_GOLDEN"
let regenerateCommand =
    $"{regenerateVariable}=1 dotnet run --project tests/Samplers.Tests -- --filter-test-list Core.Golden"

/// 40 rows of 6 classes with uneven sizes (one class has a single example, so replacement is pinned too), rows
/// interleaved by a fixed bijection.
let labels =
    let sizes = [| 12; 9; 7; 5; 1; 6 |]
    let ordered = [| for c in 0 .. sizes.Length - 1 do for _ in 1 .. sizes[c] do int64 ((c + 1) * 10) |]
    Array.init ordered.Length (fun i -> ordered[(i * 17) % ordered.Length])

type Point = { Name: string; Mode: SamplingMode; K: int; Epc: int; Steps: int; Rank: int; World: int; Seed: uint64; Epoch: int; Batch: int }

let private pt name mode k epc steps rank world seed epoch batch =
    { Name = name; Mode = mode; K = k; Epc = epc; Steps = steps; Rank = rank; World = world; Seed = seed; Epoch = epoch; Batch = batch }

let points =
    let I, C = SamplingMode.Independent, SamplingMode.Coverage
    [ pt "independent-3x2-first" I 3 2 10 0 1 0UL 0 0
      pt "independent-3x2-last-batch" I 3 2 10 0 1 42UL 0 9
      pt "independent-all-classes-replacement" I 6 3 10 0 1 1UL 2 4
      pt "independent-1x1-max-seed" I 1 1 1 0 1 UInt64.MaxValue 0 0
      pt "independent-sharded-rank1-of-3" I 4 2 10 1 3 7UL 1 2
      pt "coverage-3x2-first" C 3 2 10 0 1 0UL 0 0
      pt "coverage-4x2-group0-with-swaps" C 4 2 10 0 1 5UL 0 0
      pt "coverage-4x2-last-group-with-extras" C 4 2 10 0 1 5UL 0 1
      pt "coverage-4x3-later-epoch" C 4 3 10 0 1 5UL 3 7
      pt "coverage-6x4-replacement" C 6 4 10 0 1 9UL 1 3
      pt "coverage-sharded-rank2-of-4" C 5 2 12 2 4 11UL 2 1
      pt "coverage-1x5-big-epoch" C 1 5 1000 0 1 3UL 100000 999 ]

let index = lazy (ClassIndex.Build(ReadOnlySpan labels))

let planOf (p: Point) =
    let cfg = PlanConfig(p.K, p.Epc, p.Steps, p.Mode, p.Rank, p.World)
    Planner(cfg, index.Value).Plan({ Seed = p.Seed; Epoch = p.Epoch; BatchId = p.Batch })

/// The members kept by ClassIndex.Select(7, 3), class by class (selection changes plans too, so it is pinned).
let selection () =
    let s = index.Value.Select(7UL, 3)
    [| for c in 0 .. s.ClassCount - 1 -> s.ExamplesOf(c).ToArray() |]

let private ints (xs: int seq) = JsonArray([| for x in xs -> JsonValue.Create x :> JsonNode |])

/// The golden document as the current code computes it.
let compute () : JsonObject =
    let doc = JsonObject()
    doc["planVersion"] <- JsonValue.Create Planner.PlanVersion
    doc["regenerate"] <- JsonValue.Create regenerateCommand
    doc["labels"] <- JsonArray([| for l in labels -> JsonValue.Create l :> JsonNode |])
    let arr = JsonArray()
    for p in points do
        let plan = planOf p
        let o = JsonObject()
        o["name"] <- JsonValue.Create p.Name
        o["mode"] <- JsonValue.Create(string p.Mode)
        o["config"] <- JsonValue.Create $"{p.K}x{p.Epc} steps {p.Steps} rank {p.Rank}/{p.World}"
        o["seed"] <- JsonValue.Create(string p.Seed)
        o["epoch"] <- JsonValue.Create p.Epoch
        o["batchId"] <- JsonValue.Create p.Batch
        o["indices"] <- ints (plan.Indices.ToArray())
        o["classOrdinals"] <- ints (plan.ClassOrdinals.ToArray())
        arr.Add o
    doc["points"] <- arr
    doc["selection-seed7-total3"] <- JsonArray([| for members in selection () -> ints members :> JsonNode |])
    doc

let private options = JsonSerializerOptions(WriteIndented = true)

/// SHA-256 over every golden plan (used to compare processes).
let planDigest () =
    let text = compute().ToJsonString()
    Convert.ToHexString(SHA256.HashData(Encoding.UTF8.GetBytes text))

/// Child mode "plans": prints the digest of the golden plans computed in a fresh process.
let childPlans (_: string[]) =
    printfn "%s" (planDigest ())
    0

let private goldenPath () = Path.Combine(AppContext.BaseDirectory, "Golden", fileName)

/// Why regenerating must be refused, if it must: when a golden file in `dir` already records `version`. Golden
/// vectors change only together with a new plan version, so a plan change cannot be "fixed" by rewriting them.
let regenerationRefusal (dir: string) (version: int) : string option =
    Directory.GetFiles(dir, "plans-v*.json")
    |> Array.sort
    |> Array.tryPick (fun f ->
        let recorded = int (JsonNode.Parse(File.ReadAllText f)["planVersion"])
        if recorded = version then
            Some $"Refusing to regenerate the golden vectors: {Path.GetFileName f} already records planVersion {recorded}, which is Planner.PlanVersion. Plans may change only with a new plan version: bump Planner.PlanVersion (and add a release note line saying which plans changed), then run {regenerateCommand} again; it writes plans-v<new version>.json."
        else None)

let private regenerate () =
    let dir = Path.Combine(repoRoot.Value, "tests", "Samplers.Tests", "Golden")
    match regenerationRefusal dir Planner.PlanVersion with
    | Some why -> failtest why
    | None ->
        let target = Path.Combine(dir, fileName)
        let tmp = target + ".tmp"
        File.WriteAllText(tmp, compute().ToJsonString(options) + "\n")
        File.Move(tmp, target, true)
        target

[<Tests>]
let tests =
    testSequenced <| testList "Core.Golden" [
        testCase "plans match the committed golden vectors" <| fun () ->
            let path =
                if Environment.GetEnvironmentVariable regenerateVariable = "1" then
                    let target = regenerate ()
                    printfn "golden vectors rewritten: %s (bump Planner.PlanVersion and add a release note line)" target
                    target
                else goldenPath ()
            if not (File.Exists path) then failtestf "golden file %s is missing; regenerate with: %s" path regenerateCommand
            let stored = JsonNode.Parse(File.ReadAllText path).AsObject()
            let now = compute ()
            let byName (doc: JsonObject) = doc["points"].AsArray() |> Seq.map (fun n -> string n["name"], n.ToJsonString()) |> Map.ofSeq
            let storedPoints = byName stored
            for KeyValue(name, current) in byName now do
                match storedPoints.TryFind name with
                | None -> failtestf "golden point '%s' is missing from %s; regenerate with: %s" name fileName regenerateCommand
                | Some old when old <> current ->
                    failtestf "golden point '%s' changed.\nstored:  %s\nnow:     %s\nIf the change is deliberate: bump Planner.PlanVersion, regenerate with: %s, and add a release note line." name old current regenerateCommand
                | Some _ -> ()
            Expect.equal (stored["labels"].ToJsonString()) (now["labels"].ToJsonString()) "label array"
            Expect.equal (stored["selection-seed7-total3"].ToJsonString()) (now["selection-seed7-total3"].ToJsonString())
                $"ClassIndex.Select changed; regenerate with: {regenerateCommand}"

        testCase "golden file version equals Planner.PlanVersion" <| fun () ->
            let stored = JsonNode.Parse(File.ReadAllText(goldenPath ()))
            Expect.equal (int stored["planVersion"]) Planner.PlanVersion "planVersion in the golden file"

        testCase "regenerating is refused while a golden file records the current PlanVersion" <| fun () ->
            let dir = Directory.CreateTempSubdirectory("samplers-golden-").FullName
            try
                File.WriteAllText(Path.Combine(dir, "plans-v1.json"), """{ "planVersion": 1, "points": [] }""")
                match regenerationRefusal dir 1 with
                | Some why ->
                    Expect.stringContains why "plans-v1.json already records planVersion 1" "names the file and version"
                    Expect.stringContains why "bump Planner.PlanVersion" "says what to do"
                | None -> failtest "regeneration over the same version must be refused"
                Expect.isNone (regenerationRefusal dir 2) "a bumped version may write its own file"
                // The committed file records the current version, so the real switch refuses too.
                Expect.isSome (regenerationRefusal (Path.Combine(repoRoot.Value, "tests", "Samplers.Tests", "Golden")) Planner.PlanVersion) "the repository's golden file"
            finally Directory.Delete(dir, true)

        testCase "another process computes the same plans (SHA-256)" <| fun () ->
            let code, out, err = runChild "plans" [] 60000
            Expect.equal code 0 $"child exit code; stderr: {err}"
            Expect.equal (out.Trim()) (planDigest ()) "digest from the child process"
    ]
