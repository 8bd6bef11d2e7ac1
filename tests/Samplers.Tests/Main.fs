module Samplers.Tests.Main

open System
open System.IO
open Expecto

[<EntryPoint>]
let main argv =
    let counts = ref (0, 0)
    let onSummary =
        SummaryHandler(fun s -> counts.Value <- (s.passed.Length, s.failed.Length + s.errored.Length))
    let rc = runTestsInAssemblyWithCLIArgs [ Append_Summary_Handler onSummary ] argv
    // Expecto's own summary has another shape; CI reads this exact line. Written raw (no colour codes).
    use out = new StreamWriter(Console.OpenStandardOutput())
    out.Write $"\ntests: {fst counts.Value} passed, {snd counts.Value} failed\n"
    out.Flush()
    rc
