using BenchmarkDotNet.Configs;
using BenchmarkDotNet.Jobs;
using BenchmarkDotNet.Running;

namespace Samplers.Bench;

/// <summary>
/// Runs the benchmarks. <c>--quick</c> (used by <c>dotnet fsi build.fsx bench</c>) runs each one briefly;
/// without it BenchmarkDotNet's default job runs. Other arguments go to BenchmarkDotNet (e.g. <c>--filter *Plan*</c>).
/// </summary>
public static class Program
{
    public static void Main(string[] args)
    {
        // Not a BenchmarkDotNet benchmark: one load's peak memory, or the reduced-decode pixel difference (see JpegLoadMeasure).
        if (args.Length > 0 && args[0] == "jpeg-load")
        {
            Environment.ExitCode = JpegLoadMeasure.Run(args);
            return;
        }
        // Not a BenchmarkDotNet benchmark: ours against the numpy anchor and the hardware limit (see AnchorsCommand).
        if (args.Length > 0 && args[0] == "anchors")
        {
            Environment.ExitCode = AnchorsCommand.Run(args[1..]);
            return;
        }
        // Not a BenchmarkDotNet benchmark: the JPEG decoders and PIL, interleaved (see JpegDecodersCommand).
        if (args.Length > 0 && args[0] == "jpeg-decoders")
        {
            Environment.ExitCode = JpegDecodersCommand.Run(args[1..]);
            return;
        }
        // Not a BenchmarkDotNet benchmark: remote random access against a loopback S3 server with added latency (see RemoteCommand).
        if (args.Length > 0 && args[0] == "remote")
        {
            Environment.ExitCode = RemoteCommand.Run(args[1..]);
            return;
        }
        if (args.Length > 0 && args[0] == "mapped")
        {
            Environment.ExitCode = MappedExperiments.Run(args[1..]);
            return;
        }
        // Not a BenchmarkDotNet benchmark: the prefetching loader's throughput against its worker count (see PrefetchScalingCommand).
        if (args.Length > 0 && args[0] == "prefetch-scaling")
        {
            Environment.ExitCode = PrefetchScalingCommand.Run(args[1..]);
            return;
        }
        // Not a BenchmarkDotNet benchmark: a consumer-side measurement of the prefetching loader (see PrefetchWaitCommand).
        if (args.Length > 0 && args[0] == "prefetch-wait")
        {
            PrefetchWaitCommand.Run(args[1..]);
            return;
        }
        bool quick = args.Contains("--quick");
        var rest = args.Where(a => a != "--quick").ToArray();
        IConfig config = DefaultConfig.Instance;
        if (quick)
            config = config.AddJob(Job.ShortRun.WithWarmupCount(1).WithIterationCount(3).WithLaunchCount(1)).WithOptions(ConfigOptions.DisableOptimizationsValidator);
        if (rest.Length == 0) rest = ["--filter", "*"];
        BenchmarkSwitcher.FromAssembly(typeof(Program).Assembly).Run(rest, config);
    }
}
