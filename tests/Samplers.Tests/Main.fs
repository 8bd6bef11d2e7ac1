module Samplers.Tests.Main

open System
open System.IO
open Expecto
open Samplers.Tests.TestUtil

/// Plain output (no colour codes, no spinner) when the output is not a terminal or under CI, unless asked for.
let private plainArgs (argv: string list) =
    let plain =
        Console.IsOutputRedirected || Environment.GetEnvironmentVariable "CI" = "true"
        || not (isNull (Environment.GetEnvironmentVariable "NO_COLOR"))
    [ if plain && not (List.contains "--colours" argv) then yield! [ "--colours"; "0" ]
      if plain && not (List.contains "--no-spinner" argv) then yield "--no-spinner" ]

/// Forwards text to `inner` without ANSI escape sequences (Expecto still writes a colour reset at `--colours 0`).
type private PlainWriter(inner: TextWriter) as this =
    inherit TextWriter()
    let mutable inEscape = false
    override _.Encoding = inner.Encoding
    override _.Write(c: char) =
        if inEscape then
            // CSI sequences end with a letter (ESC [ ... m/D/h/l).
            if Char.IsLetter c then inEscape <- false
        elif c = '\u001b' then inEscape <- true
        else inner.Write c
    override _.Write(s: string) =
        if not (isNull s) then
            for c in s do this.Write c
    override _.Flush() = inner.Flush()

[<EntryPoint>]
let main argv =
  // Tests never use the network: anything that would fall back to TFDS's public bucket goes to a closed
  // loopback port instead and fails fast. Tests that serve a bucket pass its URL explicitly.
  if isNull (Environment.GetEnvironmentVariable "SAMPLERS_TFDS_BASE_URL") then
    Environment.SetEnvironmentVariable("SAMPLERS_TFDS_BASE_URL", "http://127.0.0.1:9")
  match List.ofArray argv with
  | [ "--print-architecture" ] ->
    // The namespace dependency table for docs/ARCHITECTURE.md, then the cycles (Architecture/Dependencies.fs).
    let g = Architecture.ArchitectureTests.productGraph.Value
    Console.Out.Write(Architecture.Dependencies.report g)
    0
  | "--child" :: name :: rest ->
    match List.tryFind (fun (n, _) -> n = name) Children.modes with
    | Some(_, f) -> f (Array.ofList rest)
    | None -> eprintfn "unknown child mode %s" name; 64
  | args ->
    // Tests write only under temporary folders: the library's default cache and data folders point into one
    // made for this run (children inherit it), removed at the end.
    let root = TestEnvironment.isolate ()
    if not (plainArgs args).IsEmpty then
        Console.SetOut(new PlainWriter(Console.Out))
    try
        let mutable summary = None
        let onSummary = SummaryHandler(fun s -> summary <- Some s)
        let rc = runTestsInAssemblyWithCLIArgs [ Append_Summary_Handler onSummary ] (Array.ofList (plainArgs args @ args))
        // Short and plain: the failures by name (Expecto printed each with its message above), then one line that
        // CI reads. Written raw (no colour codes). `--summary` still prints Expecto's full list.
        use out = new StreamWriter(Console.OpenStandardOutput())
        let passed, failed, skipped =
            match summary with
            | Some s ->
                for name, _ in s.failed @ s.errored do
                    out.Write $"failed: {String.Join('.', name.name)}\n"
                s.passed.Length, s.failed.Length + s.errored.Length, s.ignored.Length
            | None -> 0, 0, 0
        out.Write $"\ntests: {passed} passed, {failed} failed, {skipped} skipped\n"
        out.Flush()
        rc
    finally
        match root with
        | Some r -> try Directory.Delete(r, true) with _ -> ()
        | None -> ()
