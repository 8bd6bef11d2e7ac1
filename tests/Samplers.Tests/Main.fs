module Samplers.Tests.Main

open System
open System.IO
open Expecto

[<EntryPoint>]
let main argv =
  // Tests never use the network: anything that would fall back to TFDS's public bucket goes to a closed
  // loopback port instead and fails fast. Tests that serve a bucket pass its URL explicitly.
  if isNull (Environment.GetEnvironmentVariable "SAMPLERS_TFDS_BASE_URL") then
    Environment.SetEnvironmentVariable("SAMPLERS_TFDS_BASE_URL", "http://127.0.0.1:9")
  match List.ofArray argv with
  | "--child" :: name :: rest ->
    match List.tryFind (fun (n, _) -> n = name) Children.modes with
    | Some(_, f) -> f (Array.ofList rest)
    | None -> eprintfn "unknown child mode %s" name; 64
  | _ ->
    let counts = ref (0, 0)
    let onSummary =
        SummaryHandler(fun s -> counts.Value <- (s.passed.Length, s.failed.Length + s.errored.Length))
    let rc = runTestsInAssemblyWithCLIArgs [ Append_Summary_Handler onSummary ] argv
    // Expecto's own summary has another shape; CI reads this exact line. Written raw (no colour codes).
    use out = new StreamWriter(Console.OpenStandardOutput())
    out.Write $"\ntests: {fst counts.Value} passed, {snd counts.Value} failed\n"
    out.Flush()
    rc
