/// Child-process modes of the test executable: tests that need a second process (determinism across processes,
/// a writer killed mid-write, two concurrent builders) start this same program with `--child <name> args...`.
module Samplers.Tests.Children

/// The child modes; each returns the process exit code. Add an entry per mode.
let modes : (string * (string[] -> int)) list = [
    "echo", (fun args -> printfn "%s" (String.concat " " args); 0)
    "download", Samplers.Tests.Io.DownloadTests.childDownload
]

/// Starts this test program as a child process in mode `name` and returns (exit code, stdout, stderr).
let run (name: string) (args: string list) (timeoutMs: int) =
    let self = System.Reflection.Assembly.GetEntryAssembly().Location
    let psi = System.Diagnostics.ProcessStartInfo("dotnet", RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false)
    for a in self :: "--child" :: name :: args do psi.ArgumentList.Add a
    use p = System.Diagnostics.Process.Start psi
    let out = p.StandardOutput.ReadToEndAsync()
    let err = p.StandardError.ReadToEndAsync()
    if not (p.WaitForExit timeoutMs) then
        p.Kill true
        failwithf "child %s did not finish within %d ms" name timeoutMs
    p.ExitCode, out.Result, err.Result
