/// Issue #18, section 5 ("Exit codes, messages and the terminal"): output failures, user errors that were reported as
/// bugs, epoch ranges that overflowed, messages that blamed the wrong thing, and dataset text printed raw.
module Samplers.Tests.Cli.TerminalTests

open System
open System.IO
open Expecto
open Samplers
open Samplers.Core
open Samplers.Experiments
open Samplers.Tfds
open Samplers.Tests.TestUtil
open Samplers.Tests.Cli.CliTests

/// A writer whose every write fails as writing to /dev/full does.
type FullWriter() =
    inherit TextWriter()
    override _.Encoding = Text.Encoding.UTF8
    override _.Write(_value: char) : unit = raise (IOException "No space left on device")
    override _.Write(_value: string) : unit = raise (IOException "No space left on device")

/// Runs the CLI in-process with the given writers: the exit code (an exception escaping fails the test).
let cliWith (args: string list) (out: TextWriter) (err: TextWriter) = Samplers.Cli.Program.Run(Array.ofList args, out, err)

/// Runs `bash -c script` with $SAMPLERS set to `dotnet <the CLI's dll>`: (exit code, stdout, stderr).
let bash (script: string) =
    let psi = Diagnostics.ProcessStartInfo("bash", RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false)
    psi.ArgumentList.Add "-c"
    psi.ArgumentList.Add script
    psi.Environment["SAMPLERS"] <- $"dotnet {cliDll.Value}"
    use p = Diagnostics.Process.Start psi
    collectOutput p 120000 $"bash -c {script} did not finish within 120 s"

let tinyArgs (data: string) = $"tiny --data-dir {data} --cache-dir {data}-cache"

// ---------- 3. epoch ranges ----------

let rangeTests =
    testList "epoch ranges" [
        testCase "plan --epoch 2147483647 prints that epoch's plan (was only the header)" <| fun () ->
            withFixture <| fun data ->
                let code, out, err = cli [ "plan"; "tiny"; "--data-dir"; data; "--cache-dir"; data + "-cache"; "--epoch"; "2147483647"; "--batches"; "0:1"; "-q" ]
                Expect.equal code 0 $"exit 0: {err}"
                Expect.equal (lines out).Length 2 $"header and one plan: {out}"
                Expect.stringStarts (lines out).[1] "2147483647" "epoch int.MaxValue"

        testCase "plan --epoch 2147483000 --epochs 1000 --digest: a usage error naming both options (was epochs=2147483000..-2147483297)" <| fun () ->
            withFixture <| fun data ->
                let code, out, err = cli [ "plan"; "tiny"; "--data-dir"; data; "--cache-dir"; data + "-cache"; "--epoch"; "2147483000"; "--epochs"; "1000"; "--digest"; "-q" ]
                Expect.equal code 1 $"exit 1: {out}"
                Expect.stringStarts err "samplers: usage error: --epoch 2147483000 with --epochs 1000 ends at epoch 2147483999, past the last epoch 2147483647" "names both options"

        testCase "the library refuses a range past int.MaxValue and serves one that ends there" <| fun () ->
            let table = Samplers.Tests.Facade.SamplerTests.intTable [ 5; 6; 7 ] ExampleTable.DefaultChunkBytes
            let s = MultiShotMemorySampler(table, SamplerOptions(ClassesPerBatch = 2, ExamplesPerClassPerBatch = 2, StepsPerEpoch = 4))
            Expect.equal [ for p in s.Plans(Int32.MaxValue, 1, 0, 1) -> p.Key.Epoch ] [ Int32.MaxValue ] "the last epoch"
            Expect.equal [ for p in s.Plans(Int32.MaxValue - 1, 2, 0, 1) -> p.Key.Epoch ] [ Int32.MaxValue - 1; Int32.MaxValue ] "ending at the last epoch"
            let e = throwsWith<ArgumentOutOfRangeException> (fun () -> s.Plans(2147483000, 1000, 0, 1) |> ignore) "past int.MaxValue"
            Expect.equal e.ParamName "epochs" "names the count"
            throwsWith<ArgumentOutOfRangeException> (fun () -> PlanDigest.Compute(s.Planner, 0UL, 2147483000, 1000, 0, 1) |> ignore) "the core digest too" |> ignore
            Expect.equal (s.DigestPlans(Int32.MaxValue, 1, 0, 1)) (PlanDigest.Compute(s.Planner, 0UL, Int32.MaxValue, 1, 0, 1)) "a digest of the last epoch"
    ]

// ---------- 2. user errors that were reported as bugs; 4. messages that blamed the wrong thing ----------

let userErrorTests =
    testList "user errors" [
        testCase "export --out a socket: a usage error naming --out (was exit 3)" <| fun () ->
            withFixture <| fun data ->
                let sock = Path.Combine(Path.GetDirectoryName data, "s.sock")
                use s = new Net.Sockets.Socket(Net.Sockets.AddressFamily.Unix, Net.Sockets.SocketType.Stream, Net.Sockets.ProtocolType.Unspecified)
                s.Bind(Net.Sockets.UnixDomainSocketEndPoint sock)
                let code, _, err = cli [ "export"; "tiny"; "--data-dir"; data; "--cache-dir"; data + "-cache"; "--out"; sock; "-q" ]
                Expect.equal code 1 $"exit 1: {err}"
                Expect.stringStarts err $"samplers: usage error: --out {sock}: The output {sock} is a socket" "names --out"

        testCase "show with a grid too large: a usage error naming the options, before loading (was exit 3)" <| fun () ->
            withFixture <| fun data ->
                let show extra = cli ([ "show"; "tiny"; "--data-dir"; data; "--cache-dir"; data + "-cache"; "--out"; Path.Combine(data, "g.png"); "-q" ] @ extra)
                let code, _, err = show [ "--views"; "256"; "--view-size"; "4096"; "--augment"; "simclr"; "-c"; "5"; "-e"; "100" ]
                Expect.equal code 1 $"views: {err}"
                Expect.stringContains err "over the limit of 16384 px a side" "states the bound"
                Expect.stringContains err "lower --examples-per-class, --views or --view-size" "names the options"
                let code, _, err = show [ "-c"; "5"; "-e"; "100000" ]
                Expect.equal code 1 $"examples: {err}"
                Expect.stringContains err "lower --examples-per-class" "names the option"
                Expect.isFalse (File.Exists(Path.Combine(data + "-cache"))) "refused before loading (no cache written)"

        testCase "--resize too large names --resize, not the dataset's metadata" <| fun () ->
            withFixture <| fun data ->
                let code, _, err = cli [ "run"; "tiny"; "--data-dir"; data; "--cache-dir"; data + "-cache"; "--resize"; "46341x46341"; "-q" ]
                Expect.equal code 1 $"exit 1: {err}"
                Expect.stringStarts err "samplers: usage error: --resize: 46341x46341 is 2147488281 pixels; the most is 268435456" "names --resize"
                Expect.isFalse (err.Contains "metadata") "does not blame the dataset"

        testCase "-c 2147483647 names both counts and their product, not '--examples-per-class ... was 2'" <| fun () ->
            withFixture <| fun data ->
                let code, _, err = cli [ "plan"; "tiny"; "--data-dir"; data; "-c"; "2147483647"; "-q" ]
                Expect.equal code 1 $"exit 1: {err}"
                Expect.stringStarts err "samplers: usage error: --classes-per-batch 2147483647 x --examples-per-class 2 = 4294967294 examples a batch, more than 2147483647" "the product"
    ]

[<Tests>]
let tests = testList "Cli.Terminal" [ rangeTests; userErrorTests ]
