/// SIGINT and SIGTERM stop every command: the CLI (a real child process, `dotnet Samplers.Cli.dll`) ends with 130 or 143
/// and one line, `samplers: cancelled: stopped by SIGINT`, without a stack trace and without leaving a temporary file or
/// a half-written cache; in-process, the signal's cancellation reaches the long loops of `plan` (`--digest` included).
module Samplers.Tests.Robustness.SignalTests

open System
open System.Collections.Concurrent
open System.Diagnostics
open System.IO
open System.Runtime.InteropServices
open System.Threading
open Expecto
open Samplers.DatasetGen
open Samplers.Tests.TestUtil
open Samplers.Tests.Io.DownloadTests

module private Native =
    [<DllImport("libc", SetLastError = true)>]
    extern int kill(int pid, int signal)

let SIGINT = 2
let SIGTERM = 15

/// `dotnet Samplers.Cli.dll args` in `dir`, with DOTNET_EnableDiagnostics=0; stdout and stderr collected line by line.
/// Disposing kills it (and its children) if it is still running.
type CliProcess(dir: string, args: string list) =
    let psi = dotnetStartInfo (Some dir) (Samplers.Tests.Cli.CliTests.cliDll.Value :: args)
    do psi.Environment["DOTNET_EnableDiagnostics"] <- "0"
    let p = new Process(StartInfo = psi)
    let err = ConcurrentQueue<string>()
    let out = ConcurrentQueue<string>()
    do p.ErrorDataReceived.Add(fun e -> if not (isNull e.Data) then err.Enqueue e.Data)
    do p.OutputDataReceived.Add(fun e -> if not (isNull e.Data) then out.Enqueue e.Data)
    do p.Start() |> ignore
    do p.BeginErrorReadLine()
    do p.BeginOutputReadLine()
    member _.Process = p
    member _.Stderr = List.ofSeq err
    member _.Stdout = List.ofSeq out
    /// Waits (polling) until `cond` holds or the process ended; false after timeoutMs.
    member _.WaitUntil (cond: unit -> bool) (timeoutMs: int) =
        let sw = Stopwatch.StartNew()
        while not (cond ()) && not p.HasExited && sw.ElapsedMilliseconds < int64 timeoutMs do Thread.Sleep 20
        cond ()
    member _.Signal(signal: int) =
        if Native.kill(p.Id, signal) <> 0 then failwithf "kill(%d, %d) failed: errno %d" p.Id signal (Marshal.GetLastPInvokeError())
    /// Waits for the exit (and the end of the redirected output); false when it is still running after timeoutMs.
    member _.WaitExit(timeoutMs: int) =
        if p.WaitForExit timeoutMs then
            p.WaitForExit() // drains the asynchronous readers
            true
        else false
    interface IDisposable with
        member _.Dispose() =
            try
                if not p.HasExited then
                    p.Kill true
                    p.WaitForExit 10_000 |> ignore
            with _ -> ()
            p.Dispose()

let signalName signal = if signal = SIGINT then "SIGINT" else "SIGTERM"
let exitCode signal = if signal = SIGINT then 130 else 143

/// The ending every signalled run must have: the code, one "cancelled" line naming the signal, no stack trace.
let expectCancelled (p: CliProcess) (signal: int) =
    // A functional bound, not a speed target: without the handling a trickling download or a long build never ends.
    Expect.isTrue (p.WaitExit 30_000) $"the CLI ended within 30 s of {signalName signal}"
    let err = p.Stderr
    Expect.equal p.Process.ExitCode (exitCode signal) $"exit code after {signalName signal}; stderr: {err}"
    Expect.equal (err |> List.filter (fun l -> l.Contains "cancelled")) [ $"samplers: cancelled: stopped by {signalName signal}" ] "one 'cancelled' line"
    Expect.isFalse (err |> List.exists (fun l -> l.TrimStart().StartsWith "at ")) $"no stack trace: {err}"

/// Files whose names say they are temporary (the cache writer's `.name.pid-guid.tmp`, export's temp files).
let tempFiles (dir: string) =
    if not (Directory.Exists dir) then []
    else
        Directory.GetFiles(dir, "*", SearchOption.AllDirectories)
        |> Array.filter (fun f -> f.EndsWith ".tmp" || Path.GetFileName(f).StartsWith ".")
        |> List.ofArray

/// A cache build of a generated dataset (2000 raw 128x128x3 examples, about 98 MB: long enough to be signalled in the
/// middle on any machine), signalled once the first progress line shows that loading started.
let buildAndSignal (signal: int) =
    use t = new TempDir()
    let data = Path.Combine(t.Path, "data")
    SyntheticLarge.Write(SyntheticOptions(data, 2000, 128, 128, 3, 10, Shards = 4, Format = SyntheticFormat.Tensor)) |> ignore
    // A signal that lands after the build finished proves nothing: then the run is repeated (at most 3 times).
    let rec attempt n =
        let cache = Path.Combine(t.Path, $"cache{n}")
        use p = new CliProcess(t.Path, [ "cache"; "synthetic_large"; "build"; "--data-dir"; data; "--cache-dir"; cache; "--splits"; "train" ])
        Expect.isTrue (p.WaitUntil (fun () -> p.Stderr |> List.exists (fun l -> l.StartsWith "loading synthetic_large:")) 60_000) $"loading started: {p.Stderr}"
        p.Signal signal
        Expect.isTrue (p.WaitExit 30_000) $"the CLI ended within 30 s of {signalName signal}"
        if p.Process.ExitCode = 0 && n < 3 then attempt (n + 1)
        else
            expectCancelled p signal
            Expect.isEmpty (tempFiles cache) "no temporary file in the cache folder"
            // A cache file, if the signal came after its rename, is complete: it verifies.
            let parquet = if Directory.Exists cache then Directory.GetFiles(cache, "*.parquet") else [||]
            if parquet.Length > 0 then
                let code, _, err = Samplers.Tests.Cli.CliTests.cli [ "cache"; "synthetic_large"; "verify"; "--data-dir"; data; "--cache-dir"; cache; "--splits"; "train" ]
                Expect.equal code 0 $"a cache file left behind verifies: {err}"
    attempt 1

/// A download whose shards trickle one byte every 200 ms (it would take hours), signalled once a shard was requested.
let downloadAndSignal (signal: int) =
    use f = new Fixture()
    f.Server.Behave <- fun r _ -> if isShard r then Trickle 200 else Serve
    use p = new CliProcess(f.Data, [ "download"; "toy:1.0.0"; "--data-dir"; f.Data; "--base-url"; f.Server.Url ])
    Expect.isTrue (p.WaitUntil (fun () -> f.Server.Requests |> List.exists isShard) 60_000) $"a shard was requested: {p.Stderr}"
    p.Signal signal
    expectCancelled p signal
    expectNoVersionDir f
    Expect.isEmpty (tempFiles f.Data) "no temporary file"
    // The incomplete download folder keeps its part files for a resume (docs/DOWNLOAD.md): the next run completes and
    // leaves nothing but the version folder.
    f.Server.Behave <- fun _ _ -> Serve
    let code, _, err = Samplers.Tests.Cli.CliTests.cli [ "download"; "toy:1.0.0"; "--data-dir"; f.Data; "--base-url"; f.Server.Url; "-q" ]
    Expect.equal code 0 $"the next download completes: {err}"
    let left = Directory.GetFileSystemEntries(f.Data, "*", SearchOption.AllDirectories) |> Array.filter (fun x -> x.EndsWith ".part" || x.EndsWith ".lock" || x.Contains ".incomplete-download")
    Expect.isEmpty left "no .part, .lock or .incomplete-download after the complete run"
    for file in Directory.GetFiles(f.VersionSource) do
        Expect.sequenceEqual (File.ReadAllBytes(Path.Combine(f.Data, "toy", "1.0.0", Path.GetFileName file))) (File.ReadAllBytes file) $"{Path.GetFileName file} equals the source"

/// A stderr that raises the signal on the run's Termination when a line starting with `trigger` is written (the
/// "loaded ..." status line comes after loading, right before the command's own loop).
type SignalOnLine(termination: Samplers.Cli.Termination, trigger: string, signal: int) =
    inherit StringWriter()
    override this.WriteLine(value: string) =
        base.WriteLine value
        if not (isNull value) && value.StartsWith trigger then termination.Raise signal

/// `plan` in-process with a Termination whose signal comes right after loading: the command must stop (exit 130/143,
/// one line) rather than finish its millions of plans (exit 0 after several seconds).
let planInProcess (extra: string list) (signal: int) =
    use t = new TempDir()
    let exits = ConcurrentQueue<int>()
    use termination = new Samplers.Cli.Termination(grace = Nullable(TimeSpan.FromMinutes 5.0), exit = Action<int>(exits.Enqueue))
    use err = new SignalOnLine(termination, "loaded ", signal)
    let args = [ "plan"; "--cache-dir"; t.Path; "--epochs"; "3000" ] @ extra
    let code = Samplers.Cli.Program.Run(Array.ofList args, TextWriter.Null, err, termination = termination)
    Expect.equal code (exitCode signal) $"exit code; stderr: {err}"
    Expect.stringContains (err.ToString()) $"samplers: cancelled: stopped by {signalName signal}" "the one line"
    Expect.isEmpty exits "the command stopped by itself (no forced exit)"

/// `export` in-process, signalled right after loading: nothing is written (no .npz, no temporary file beside it).
let exportInProcess (format: string) (signal: int) =
    use t = new TempDir()
    let exits = ConcurrentQueue<int>()
    use termination = new Samplers.Cli.Termination(grace = Nullable(TimeSpan.FromMinutes 5.0), exit = Action<int>(exits.Enqueue))
    use err = new SignalOnLine(termination, "loaded ", signal)
    let out = Path.Combine(t.Path, "out", "x." + format)
    Directory.CreateDirectory(Path.GetDirectoryName out) |> ignore
    let args = [ "export"; "--cache-dir"; Path.Combine(t.Path, "cache"); "--format"; format; "--out"; out ]
    let code = Samplers.Cli.Program.Run(Array.ofList args, TextWriter.Null, err, termination = termination)
    Expect.equal code (exitCode signal) $"exit code; stderr: {err}"
    let left = Directory.GetFileSystemEntries(Path.GetDirectoryName out, "*", SearchOption.AllDirectories)
    if format = "npz" then Expect.isEmpty left "nothing written beside the .npz"
    else Expect.isEmpty left $"no folder, no member file, no temporary file: {left}"
    Expect.isEmpty exits "the command stopped by itself"

[<Tests>]
let tests =
    testList "Robustness.Signals" [
        testCase "SIGTERM during a cache build: exit 143, one line, no temporary file, a cache file left verifies" <| fun () -> buildAndSignal SIGTERM
        testCase "SIGINT during a cache build: exit 130, one line, no temporary file, a cache file left verifies" <| fun () -> buildAndSignal SIGINT
        testCase "SIGTERM during a trickling download: exit 143, no version folder, no temporary file; the next run completes" <| fun () -> downloadAndSignal SIGTERM
        testCase "SIGINT during a trickling download: exit 130, no version folder, no temporary file; the next run completes" <| fun () -> downloadAndSignal SIGINT
        testCase "in-process: the signal stops plan --digest over 3000 epochs (the digest loop sees the token)" <| fun () -> planInProcess [ "--digest" ] SIGTERM
        testCase "in-process: the signal stops plan over 3000 epochs" <| fun () -> planInProcess [] SIGINT
        testCase "in-process: the signal stops export (.npz): nothing written" <| fun () -> exportInProcess "npz" SIGTERM
        testCase "in-process: the signal stops export (npy folder): no member written" <| fun () -> exportInProcess "npy" SIGINT
        testCase "in-process: a second signal forces the exit with the same code" <| fun () ->
            let exits = ConcurrentQueue<int>()
            use err = new StringWriter()
            use termination = new Samplers.Cli.Termination(err, Nullable(TimeSpan.FromMinutes 5.0), Action<int>(exits.Enqueue))
            termination.Raise SIGINT
            Expect.isTrue (termination.Token.WaitHandle.WaitOne 10_000) "the first signal cancels the token"
            Expect.isEmpty exits "the first signal does not end the process"
            termination.Raise SIGTERM
            Expect.equal (List.ofSeq exits) [ 130 ] "the second signal ends it at once, with the first signal's code"
            Expect.stringContains (err.ToString()) "samplers: cancelled (SIGINT)" "says why"
        testCase "in-process: a command still running after the grace period is ended with the signal's code" <| fun () ->
            let exits = ConcurrentQueue<int>()
            use termination = new Samplers.Cli.Termination(TextWriter.Null, Nullable(TimeSpan.FromMilliseconds 50.0), Action<int>(exits.Enqueue))
            termination.Raise SIGTERM
            let sw = Stopwatch.StartNew()
            while exits.IsEmpty && sw.Elapsed < TimeSpan.FromSeconds 30.0 do Thread.Sleep 10
            Expect.equal (List.ofSeq exits) [ 143 ] "forced exit with 143"
    ]
