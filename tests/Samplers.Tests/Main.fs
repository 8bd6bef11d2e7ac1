module Samplers.Tests.Main

open System

[<EntryPoint>]
let main argv =
    match List.ofArray argv with
    | [ "--print-architecture" ] ->
        // The namespace dependency table for docs/ARCHITECTURE.md, then the cycles (Architecture/Dependencies.fs).
        let g = Architecture.ArchitectureTests.productGraph.Value
        Console.Out.Write(Architecture.Dependencies.report g)
        0
    | _ -> Samplers.Tests.Runner.run Samplers.Tests.Children.modes argv
