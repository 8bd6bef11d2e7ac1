/// Child-process modes of the test executable: tests that need a second process (determinism across processes,
/// a writer killed mid-write, two concurrent builders) start this same program with `--child <name> args...`
/// (TestUtil.runChild). This file compiles after the test files so that it can name their mode functions.
module Samplers.Tests.Children

/// The child modes; each returns the process exit code. Add an entry per mode.
let modes : (string * (string[] -> int)) list = [
    "echo", (fun args -> printfn "%s" (String.concat " " args); 0)
    "cache-writer", Samplers.Tests.Io.ParquetCacheTests.writerChild
    "cache-store", Samplers.Tests.Io.ParquetCacheTests.storeChild
    "cache-dir", Samplers.Tests.Io.ParquetCacheTests.resolveChild
    "cache-store-ro", Samplers.Tests.Io.ParquetCacheTests.readOnlyStoreChild
    "image-no-native", Samplers.Tests.Io.ImageTests.noNativeChild
    "image-no-codec", Samplers.Tests.Io.ImageTests.noCodecChild
    "image-discover", Samplers.Tests.Io.ImageTests.discoverChild
    "facade-digests", Samplers.Tests.Facade.SamplerTests.childDigests
    "file-kind", Samplers.Tests.Robustness.FileKindTests.child
    "plans", Samplers.Tests.Core.GoldenTests.childPlans
    "download", Samplers.Tests.Io.DownloadTests.childDownload
    "facade-default-download", Samplers.Tests.Io.LoaderTests.childDefaultDownload
    // The real CLI entry point in a child (e.g. under DOTNET_GCHeapHardLimit): the exit code is the CLI's.
    "cli", (fun args -> Samplers.Cli.Program.Run(args, System.Console.Out, System.Console.Error))
    // The same, then the process's peak resident set (VmHWM) on stderr.
    "cli-peak", Samplers.Tests.Io.StreamedLoadTests.cliPeakChild
]
