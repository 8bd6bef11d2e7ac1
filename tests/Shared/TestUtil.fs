/// Helpers shared by the test files.
module Samplers.Tests.TestUtil

open System
open System.IO

/// A fresh, empty temporary directory, deleted when disposed.
type TempDir() =
    let path = Path.Combine(Path.GetTempPath(), "samplers-tests-" + Guid.NewGuid().ToString("N"))
    do Directory.CreateDirectory path |> ignore
    /// The directory's full path.
    member _.Path = path
    interface IDisposable with
        member _.Dispose() =
            try
                if Directory.Exists path then
                    // Read-only folders made by tests must be writable again before deletion. Links are not followed:
                    // a test's symlink loop (a/loop -> ..) would make the listing endless.
                    let options = EnumerationOptions(RecurseSubdirectories = true, AttributesToSkip = FileAttributes.ReparsePoint)
                    for d in Directory.EnumerateDirectories(path, "*", options) do
                        try File.SetAttributes(d, FileAttributes.Normal) with _ -> ()
                    Directory.Delete(path, true)
            with _ -> ()

/// The test run's own home for the user-level folders the library defaults to (Parquet cache, TFDS data directory),
/// so no test reads or writes the user's real ~/.cache/samplers or ~/tensorflow_datasets.
module TestEnvironment =
    /// The variables pointed at the run's temporary folder when unset: the cache (SAMPLERS_CACHE_DIR, and
    /// XDG_CACHE_HOME for code that resolves the platform folder) and the TFDS data directory.
    let variables = [ "SAMPLERS_CACHE_DIR", "cache"; "XDG_CACHE_HOME", "xdg-cache"; "TFDS_DATA_DIR", "tensorflow_datasets" ]

    /// Points every unset variable of <c>variables</c> at a folder under a fresh temporary directory, which it
    /// returns (None when all were set by the caller: then nothing needs cleaning up). Child processes inherit them.
    let isolate () : string option =
        let unset = variables |> List.filter (fun (v, _) -> String.IsNullOrEmpty(Environment.GetEnvironmentVariable v))
        if unset.IsEmpty then None
        else
            let root = Path.Combine(Path.GetTempPath(), "samplers-tests-run-" + Guid.NewGuid().ToString("N"))
            for v, sub in unset do
                let dir = Path.Combine(root, sub)
                Directory.CreateDirectory dir |> ignore
                Environment.SetEnvironmentVariable(v, dir)
            Some root

/// The repository root (the folder holding Samplers.sln), found from the test binary's location.
let repoRoot =
    lazy
        (let rec up (d: DirectoryInfo) =
            if isNull d then failwith "Samplers.sln not found above the test binary"
            elif File.Exists(Path.Combine(d.FullName, "Samplers.sln")) then d.FullName
            else up d.Parent
         up (DirectoryInfo AppContext.BaseDirectory))

/// Runs f, expects an exception of type 'E (or a subtype) and returns it, so tests can check its message.
let throwsWith<'E when 'E :> exn> (f: unit -> unit) (message: string) : 'E =
    let outcome =
        try
            f ()
            Error "nothing was thrown"
        with
        | :? 'E as e -> Ok e
        | e -> Error $"got {e.GetType().Name}: {e.Message}"
    match outcome with
    | Ok e -> e
    | Error what -> Expecto.Tests.failtestf "%s: expected %s, %s" message typeof<'E>.Name what

/// `dotnet args` with stdout and stderr redirected, started in `dir` when given.
let dotnetStartInfo (dir: string option) (args: string list) =
    let psi = System.Diagnostics.ProcessStartInfo("dotnet", RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false)
    dir |> Option.iter (fun d -> psi.WorkingDirectory <- d)
    for a in args do psi.ArgumentList.Add a
    psi

/// Reads a started process's redirected output to the end: (exit code, stdout, stderr); after timeoutMs it kills
/// the process and fails with `onTimeout`.
let collectOutput (p: System.Diagnostics.Process) (timeoutMs: int) (onTimeout: string) =
    let out = p.StandardOutput.ReadToEndAsync()
    let err = p.StandardError.ReadToEndAsync()
    if not (p.WaitForExit timeoutMs) then
        p.Kill true
        failwith onTimeout
    p.ExitCode, out.Result, err.Result

/// Runs `dotnet args` (in `dir` when given): (exit code, stdout, stderr); fails with `onTimeout` after timeoutMs.
let runDotnet (dir: string option) (args: string list) (timeoutMs: int) (onTimeout: string) =
    use p = System.Diagnostics.Process.Start(dotnetStartInfo dir args)
    collectOutput p timeoutMs onTimeout

/// Starts this test program as a child process in mode `name` (see Children.fs) with extra environment
/// variables; stdout and stderr are redirected. The caller owns (and disposes) the process.
let startChild (name: string) (args: string list) (env: (string * string) list) =
    let self = System.Reflection.Assembly.GetEntryAssembly().Location
    let psi = dotnetStartInfo None (self :: "--child" :: name :: args)
    for (k, v) in env do psi.Environment[k] <- v
    System.Diagnostics.Process.Start psi

/// Runs this test program as a child process in mode `name` (see Children.fs) and returns
/// (exit code, stdout, stderr); kills it and fails after timeoutMs.
let runChild (name: string) (args: string list) (timeoutMs: int) =
    use p = startChild name args []
    collectOutput p timeoutMs $"child {name} did not finish within {timeoutMs} ms"
