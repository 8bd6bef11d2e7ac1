/// Architecture checks over the built product assemblies, read with System.Reflection.Metadata by
/// Architecture/Dependencies.fs: no namespace cycle (with an allow-list of the known cycles, being removed), and the
/// assembly-level dependency rules. The namespace table for docs: `dotnet run --project tests/Samplers.Tests -c
/// Release -- --print-architecture` (Main.fs).
module Samplers.Tests.Architecture.ArchitectureTests

open System
open System.IO
open System.Runtime.InteropServices
open Expecto
open Samplers.Tests.TestUtil
open Samplers.Tests.Architecture.Dependencies

/// The namespace cycles allowed, each as the set of namespaces it joins: none (docs/ARCHITECTURE.md). The check names,
/// for every edge A → B inside a strongly connected component (Tarjan), the shortest cycle through it; the namespace
/// sets of these cycles must equal this list: a cycle not listed fails (a new cycle, or a new edge in an old one), and
/// so does a listed set that is no longer a cycle ("remove it from the allow-list").
let knownCycles : Set<string> list = []

/// Heavy assemblies the main package still references on purpose: none (SkiaSharp is Samplers.SkiaSharp's, TorchSharp
/// Samplers.TorchSharp's). An entry that is no longer referenced fails the test, so the list only shrinks.
let knownHeavyReferences : string list = []

/// The folder of the built test program, which holds every product assembly (ProjectReference).
let binFolder = AppContext.BaseDirectory

/// The product assemblies' namespace graph, read once.
let productGraph =
    lazy (productAssemblies repoRoot.Value binFolder |> List.map readAssembly |> graph isSamplersNamespace)

/// The cycles the check names: for every edge inside a strongly connected component, the shortest cycle through it,
/// as (its namespaces, its description with one example per edge).
let foundCycles (g: Graph) : (Set<string> * string) list =
    [ for c in cycles g do
        for cyc in cyclesOfComponent g c -> Set.ofList cyc, describeCycle g cyc ]
    |> List.distinctBy fst

/// What the cycle check finds wrong: (cycles found but not allowed, with their description; allowed sets that are
/// no longer the namespaces of a cycle found).
let checkCycles (g: Graph) (allowed: Set<string> list) : string list * Set<string> list =
    let found = foundCycles g
    let unexplained = found |> List.filter (fun (s, _) -> not (List.contains s allowed)) |> List.map snd
    let stale = allowed |> List.filter (fun s -> not (found |> List.exists (fun (f, _) -> f = s)))
    unexplained, stale

let private probeAssembly = typeof<Samplers.Tests.Architecture.ProbeCaller.Caller>.Assembly.Location

[<Tests>]
let tests =
    testList "Architecture" [
        testCase "no namespace cycle" <| fun () ->
            // The check: the namespace graph of every product assembly (an edge A → B when a type counted in A
            // refers to a type of B anywhere: signatures, attributes, IL), its strongly connected components
            // (Tarjan); every edge inside a component must be allowed by knownCycles, and every allowed set must
            // still be a cycle.
            let g = productGraph.Value
            let unexplained, stale = checkCycles g knownCycles
            let all = report g
            if not unexplained.IsEmpty then
                failtestf "New namespace cycle(s), not in knownCycles (tests/Samplers.Tests/Architecture/ArchitectureTests.fs); break them (one example reference per edge):\n%s\n\nAll cycles now:\n%s"
                    (String.Join("\n", unexplained)) all
            if not stale.IsEmpty then
                let names = stale |> List.map (fun s -> "{ " + String.Join(", ", s) + " }")
                failtestf "Allowed namespace cycle(s) no longer exist: %s. Remove it from the allow-list knownCycles in tests/Samplers.Tests/Architecture/ArchitectureTests.fs.\n\nCycles now:\n%s"
                    (String.Join("; ", names)) all

        testCase "the cycle check fails on a new cycle and on a stale allow-list entry" <| fun () ->
            // Not vacuous: the same check against an allow-list missing one known cycle, and with one extra.
            let g = productGraph.Value
            match knownCycles with
            | first :: rest ->
                let unexplained, _ = checkCycles g rest
                Expect.isNonEmpty unexplained $"dropping {first} from the allow-list makes the check fail"
            | [] -> ()
            // A new edge Samplers.Cache → Samplers.Tfds (Tfds uses Cache today) makes a new cycle.
            let example = g.Edges.[("Samplers.Tfds", "Samplers.Cache")]
            let g' = { g with Edges = g.Edges |> Map.add ("Samplers.Cache", "Samplers.Tfds") { example with From = "Samplers.Cache"; To = "Samplers.Tfds" } }
            let unexplained, _ = checkCycles g' knownCycles
            Expect.exists unexplained (fun d -> d.StartsWith "Samplers.Cache → Samplers.Tfds → Samplers.Cache\n    Samplers.Cache → Samplers.Tfds: ")
                $"the new pair is named with its edges: {unexplained}"
            let _, stale = checkCycles g (set [ "Samplers.Core"; "Samplers.Cli" ] :: knownCycles)
            Expect.equal stale [ set [ "Samplers.Core"; "Samplers.Cli" ] ] "an allowed set that is not a cycle is reported"

        testCase "Samplers.Core references only FSharp.Core and the BCL" <| fun () ->
            let core = readAssembly (Path.Combine(binFolder, "Samplers.Core.dll"))
            // The BCL: the assemblies of the shared framework this test runs on.
            let runtime = RuntimeEnvironment.GetRuntimeDirectory()
            let bcl (name: string) = File.Exists(Path.Combine(runtime, name + ".dll"))
            let others = core.AssemblyRefs |> List.filter (fun r -> r <> "FSharp.Core" && not (bcl r))
            Expect.isEmpty others $"""Samplers.Core references {String.Join(", ", core.AssemblyRefs)}"""
            Expect.contains core.AssemblyRefs "FSharp.Core" "the check reads the references (FSharp.Core is one)"

        testCase "Samplers (the main package) references no SkiaSharp and no TorchSharp assembly" <| fun () ->
            let main = readAssembly (Path.Combine(binFolder, "Samplers.dll"))
            let heavy = main.AssemblyRefs |> List.filter (fun r -> r.StartsWith "SkiaSharp" || r.StartsWith "TorchSharp") |> List.sort
            let all = String.Join(", ", main.AssemblyRefs)
            let unexpected = heavy |> List.filter (fun r -> not (List.contains r knownHeavyReferences))
            let stale = knownHeavyReferences |> List.filter (fun r -> not (List.contains r heavy))
            Expect.isEmpty unexpected $"""Samplers references heavy assemblies: {String.Join(", ", unexpected)} (all: {all})"""
            Expect.isEmpty stale $"""Samplers no longer references {String.Join(", ", stale)}: remove it from knownHeavyReferences in tests/Samplers.Tests/Architecture/ArchitectureTests.fs"""

        testCase "every Samplers*.dll of the output is a product, test, tool or bench assembly" <| fun () ->
            // A new project is classified by its folder: src/ (product, checked above), or tests/, tools/, bench/.
            let root = repoRoot.Value
            let products = projectAssemblyNames root "src"
            let others = [ "tests"; "tools"; "bench"; "examples" ] |> List.collect (projectAssemblyNames root)
            let unknown =
                Directory.GetFiles(binFolder, "Samplers*.dll")
                |> Array.map Path.GetFileNameWithoutExtension
                |> Array.filter (fun n -> not (List.contains n products) && not (List.contains n others))
            Expect.isEmpty unknown "assemblies of no project under src/, tests/, tools/, bench/"
            Expect.containsAll products [ "Samplers.Core"; "Samplers.Core.MathNet"; "Samplers"; "Samplers.TorchSharp"; "Samplers.Cli" ] "the product"
            Expect.equal (productAssemblies root binFolder).Length products.Length "every product assembly is built next to the tests"

        testCase "the IL walker sees references that exist only in method bodies" <| fun () ->
            let asm = readAssembly probeAssembly
            let counted (ns: string) = ns.StartsWith "Samplers.Tests.Architecture.Probe"
            let refs =
                asm.References
                |> List.filter (fun r -> r.From.Namespace = "Samplers.Tests.Architecture.ProbeCaller" && r.To.Namespace = "Samplers.Tests.Architecture.ProbeTarget")
            let described = refs |> List.map (fun r -> r.Describe())
            let has (text: string) = Expect.contains described text $"references seen: {described}"
            has "Samplers.Tests.Architecture.ProbeCaller.Caller.Direct calls Samplers.Tests.Architecture.ProbeTarget.Target.twice"
            has "Samplers.Tests.Architecture.ProbeCaller.Caller.Constructs constructs Samplers.Tests.Architecture.ProbeTarget.Counter..ctor"
            has "Samplers.Tests.Architecture.ProbeCaller.Caller.Constructs calls Samplers.Tests.Architecture.ProbeTarget.Counter.Add"
            Expect.all refs (fun r -> r.Verb = "calls" || r.Verb = "constructs") $"only body references: {described}"
            // The closure of InClosure is a compiler-generated type (F# nests it in the file's <StartupCode$...>
            // class, in no namespace): its call counts for the method that makes the closure.
            let viaClosure =
                attributed counted asm
                |> List.filter (fun r -> r.From.Namespace = "Samplers.Tests.Architecture.ProbeCaller" && r.Via <> "")
                |> List.map (fun r -> r.Describe())
            Expect.exists viaClosure (fun d ->
                d.StartsWith "Samplers.Tests.Architecture.ProbeCaller.Caller.InClosure calls Samplers.Tests.Architecture.ProbeTarget.Target.twice (in "
                && d.Contains "InClosure@") $"the closure's call is seen: {viaClosure}"
            let g = graph counted [ asm ]
            Expect.equal (g.Edges |> Map.toList |> List.map fst) [ "Samplers.Tests.Architecture.ProbeCaller", "Samplers.Tests.Architecture.ProbeTarget" ] "one edge"
            Expect.isEmpty (cycles g) "no cycle"

        testCase "Tarjan finds the strongly connected components" <| fun () ->
            let adj = Map [ "a", [ "b" ]; "b", [ "c" ]; "c", [ "a"; "d" ]; "d", [ "e" ]; "e", [ "d" ]; "f", [ "a" ] ]
            let comps = stronglyConnected [ "a"; "b"; "c"; "d"; "e"; "f" ] (fun v -> Map.tryFind v adj |> Option.defaultValue [])
            Expect.equal (comps |> List.filter (fun c -> c.Length > 1)) [ [ "a"; "b"; "c" ]; [ "d"; "e" ] ] "two cycles"
            Expect.equal comps.Length 3 "and f alone"

        testCase "Samplers.Evaluation (retrieval metrics) uses nothing of Samplers above the base layer" <| fun () ->
            // The metrics work on embeddings and labels in memory: no tables, images, cache or TFDS, so any layer
            // (and the TorchSharp bridge) may use them.
            let g = productGraph.Value
            Expect.isTrue (g.Namespaces.ContainsKey "Samplers.Evaluation") "the namespace is seen"
            let uses = successors g "Samplers.Evaluation" |> List.filter (fun ns -> ns <> "Samplers" && not (ns.StartsWith "Samplers.Core"))
            Expect.isEmpty uses $"Samplers.Evaluation depends on {uses}"

        testCase "the product graph is read: every product namespace is seen, with cross-assembly edges" <| fun () ->
            let g = productGraph.Value
            for ns in [ "Samplers"; "Samplers.Core"; "Samplers.Tfds"; "Samplers.Cli"; "Samplers.TorchSharp"; "Samplers.Core.Statistics"; "Samplers.Evaluation" ] do
                Expect.isTrue (g.Namespaces.ContainsKey ns) $"namespace {ns} seen"
            Expect.isTrue (g.EdgesByAssembly |> Map.exists (fun (a, _, _) (asms, _) -> not (asms.Contains a))) "cross-assembly edges recorded"
            Expect.isTrue (g.Edges.ContainsKey("Samplers.Cli", "Samplers [Samplers]")) "the CLI uses the root namespace (split by assembly: Samplers.Core declares types in it too)"
    ]
