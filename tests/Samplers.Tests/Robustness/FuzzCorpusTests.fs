/// CI replay of the fuzz corpus: every file committed under tools/Samplers.Fuzz/corpus/<target> runs
/// through its target in-process; a finding (any exception other than a documented data refusal) fails the test.
module Samplers.Tests.Robustness.FuzzCorpusTests

open System.IO
open Expecto
open Samplers.Fuzz
open Samplers.Tests.TestUtil

let corpus target = Path.Combine(repoRoot.Value, "tools", "Samplers.Fuzz", "corpus", target)

[<Tests>]
let tests =
    testList "Robustness.FuzzCorpus" [
        for target in FuzzTargets.Names do
            test $"the {target} corpus replays without a finding" {
                let files = Directory.GetFiles(corpus target) |> Array.sort
                Expect.isNonEmpty files $"the {target} corpus has inputs"
                try
                    for f in files do
                        try FuzzTargets.Run(target, System.ReadOnlySpan(File.ReadAllBytes f))
                        with e -> failtestf "%s: %s: %s" (Path.GetFileName f) (e.GetType().Name) e.Message
                finally
                    FuzzTargets.DeleteScratch target
            }
        test "the targets refuse an unknown name" {
            Expect.throwsT<System.ArgumentException> (fun () -> FuzzTargets.Run("nope", System.ReadOnlySpan<byte>.Empty)) "unknown target"
        }
    ]
