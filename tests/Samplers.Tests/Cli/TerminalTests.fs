/// Exit codes, messages and the terminal: output failures, user errors that were reported as
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

// ---------- 1. output failures ----------

let outputTests =
    testList "output failures" [
        testCase "stdout full with --json: exit 2, one output error on stderr, no second failure writing the JSON error" <| fun () ->
            withFixture <| fun data ->
                use err = new StringWriter()
                let code = cliWith [ "info"; "tiny"; "--data-dir"; data; "--cache-dir"; data + "-cache"; "--json"; "-q" ] (new FullWriter()) err
                Expect.equal code 2 $"exit 2: {err}"
                Expect.equal (errLines (err.ToString())) [ "samplers: output error: cannot write to standard output: No space left on device" ] "reported once, on stderr"

        testCase "stderr full: exit 2, the error on stdout (the stream that still works)" <| fun () ->
            withFixture <| fun data ->
                use out = new StringWriter()
                let code = cliWith [ "info"; "tiny"; "--data-dir"; data; "--cache-dir"; data + "-cache" ] out (new FullWriter())
                Expect.equal code 2 "exit 2"
                Expect.equal (lines (out.ToString()) |> List.filter (fun l -> l.StartsWith "samplers:")) [ "samplers: output error: cannot write to standard error: No space left on device" ] $"once, on stdout: {out}"

        testCase "a parse error with both streams failing: exit 1, nothing thrown" <| fun () ->
            Expect.equal (cliWith [ "plan"; "--nope"; "--json" ] (new FullWriter()) (new FullWriter())) 1 "the usage exit code still tells"

        testCase "real process: >/dev/full, 2>&-, >&-, and a closed pipe give 2, 2, 2 and 141, never an unhandled exception" <| fun () ->
            withFixture <| fun data ->
                let t = tinyArgs data
                let code, _, err = bash $"$SAMPLERS info {t} --json -q >/dev/full"
                Expect.equal code 2 $"/dev/full: {err}"
                Expect.equal (errLines err) [ "samplers: output error: cannot write to standard output: No space left on device" ] "once"
                let code, out, _ = bash $"$SAMPLERS info {t} 2>&-"
                Expect.equal code 2 $"stderr closed: {out}"
                Expect.stringContains out "samplers: output error: cannot write to standard error" "reported on stdout"
                let code, _, err = bash $"$SAMPLERS info {t} -q >&-"
                Expect.equal code 2 $"stdout closed: {err}"
                Expect.equal (errLines err) [ "samplers: output error: cannot write to standard output: it is closed or not writable" ] "no 'Access to the path is denied'"
                let code, out, err = bash $"$SAMPLERS plan {t} -q -s 2000 --epochs 20 | head -n 1; exit ${{PIPESTATUS[0]}}"
                Expect.equal code 141 $"broken pipe: {err}"
                Expect.equal (lines out).Length 1 "head's line"
                Expect.isFalse (err.Contains "Unhandled") "no unhandled exception"
    ]

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
            use s = new MultiShotMemorySampler(table, SamplerOptions(ClassesPerBatch = 2, ExamplesPerClassPerBatch = 2, StepsPerEpoch = 4))
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

// ---------- 5. dataset text printed raw ----------

let evilNames = [| "zero\u001b]0;PWNED\u0007"; "one\u001b[2J"; "two\u009b31m"; "three\bX"; "four\u007f" |]

/// Writes dataset `evil:1.0.0`: the fixture's examples with class names that hold terminal control sequences.
let writeEvil (dataDir: string) =
    let label = FeatureSpec("label", FeatureKind.ClassLabel, "tensorflow_datasets.core.features.class_label_feature.ClassLabel", DType.Int64, [||], NumClasses = 5L, ClassNames = evilNames)
    let w = TfdsDatasetWriter(Path.Combine(dataDir, "evil", "1.0.0"), "evil", "1.0.0", [ imageSpec; label; embSpec ])
    w.WriteSplit("train", [| for i in 0 .. 39 -> exampleBytes i |], 1) |> ignore
    w.Complete()

let noControls (text: string) what =
    let bad = text |> Seq.filter (fun c -> c <> '\n' && Char.IsControl c) |> Seq.map (fun c -> $"U+{int c:X4}") |> List.ofSeq
    Expect.isEmpty bad $"{what}: no control characters but line feeds: {text}"

let escapeTests =
    testList "escaping" [
        testCase "info and run print class names with their control characters escaped; --json round-trips them escaped by the JSON writer" <| fun () ->
            use t = new TempDir()
            let data = Path.Combine(t.Path, "data")
            writeEvil data
            let args cmd = [ cmd; "evil"; "--data-dir"; data; "--cache-dir"; data + "-cache"; "--splits"; "train"; "-q" ]
            let code, out, err = cli (args "info")
            Expect.equal code 0 $"info: {err}"
            noControls out "info"
            Expect.stringContains out "zero\\x1b]0;PWNED\\x07" "the title sequence, visible"
            Expect.stringContains out "one\\x1b[2J" "the clear-screen sequence, visible"
            Expect.stringContains out "two\\x9b31m" "a C1 CSI"
            Expect.stringContains out "three\\x08X" "a backspace"
            Expect.stringContains out "four\\x7f" "DEL"
            let code, out, err = cli (args "run" @ [ "-s"; "5" ])
            Expect.equal code 0 $"run: {err}"
            noControls out "run"
            Expect.stringContains out "one\\x1b[2J" "run's per-class table"
            let code, out, _ = cli (args "info" @ [ "--json" ])
            Expect.equal code 0 "info --json"
            noControls out "info --json"
            let names = [ for c in (json out).GetProperty("classes").EnumerateArray() -> c.GetProperty("name").GetString() ]
            Expect.equal names (List.ofArray evilNames) "the JSON holds the names exactly"

        testCase "--verbose: the library's log lines and the stack trace are escaped like every other text from the data" <| fun () ->
            use t = new TempDir()
            let data = Path.Combine(t.Path, "data")
            writeEvil data
            // The log lines quote the cache path: a cache folder named with a title sequence and a bell.
            let cache = Path.Combine(t.Path, "c\u001b]0;PWNED\u0007")
            let code, _, err = cli [ "run"; "evil"; "--data-dir"; data; "--cache-dir"; cache; "--splits"; "train"; "-s"; "5"; "--verbose" ]
            Expect.equal code 0 $"run: {err}"
            Expect.stringContains err "information: Cache stored" "a log line"
            Expect.stringContains err "c\\x1b]0;PWNED\\x07" "the path, escaped"
            noControls err "run --verbose, stderr"
            // A data error with --verbose: the message and the trace after it quote the class names of the labels file.
            let labels = Path.Combine(data, "evil", "1.0.0", "label.labels.txt")
            File.WriteAllText(labels, String.Join("\n", Array.append evilNames[0..3] [| evilNames[0] |]) + "\n")
            let code, _, err = cli [ "run"; "evil"; "--data-dir"; data; "--cache-dir"; cache; "--splits"; "train"; "--verbose" ]
            Expect.equal code 2 $"a duplicated class name is a data error: {err}"
            Expect.stringContains err "zero\\x1b]0;PWNED\\x07' appears twice" "the message names the class, escaped"
            Expect.stringContains err "   at " "the stack trace is printed"
            noControls err "data error with --verbose, stderr"

        testCase "TerminalText.Escape: C0, DEL and C1 as \\xHH; line feeds kept only when asked" <| fun () ->
            Expect.equal (Samplers.Cli.TerminalText.Escape "a\u001bb\u007f\u0085\t\n") "a\\x1bb\\x7f\\x85\\x09\\x0a" "all escaped"
            Expect.equal (Samplers.Cli.TerminalText.Escape("a\u001b\n", keepLineBreaks = true)) "a\\x1b\n" "line feed kept"
            Expect.equal (Samplers.Cli.TerminalText.Escape "plain é ✓") "plain é ✓" "printable text untouched"
    ]

[<Tests>]
let tests = testList "Cli.Terminal" [ outputTests; rangeTests; userErrorTests; escapeTests ]
