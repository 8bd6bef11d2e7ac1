using System.Net;
using System.Net.Sockets;
using System.Text;
using BenchmarkDotNet.Attributes;
using Samplers.Tfds;

namespace Samplers.Bench;

/// <summary>
/// Download throughput over loopback: a 32 MiB dataset (4 shards of 8 MiB, 10 KB records) served by a minimal
/// HTTP/1.1 server on 127.0.0.1. <c>TfdsDownloader.DownloadAsync</c> (metadata, parallel fetch, CRC + record-count
/// verification, rename) against a plain <c>HttpClient</c> GET of the same shards to files with no checks (the
/// ceiling over HTTP). MB/s = <see cref="TotalBytes"/> / median.
/// </summary>
[MemoryDiagnoser]
[MedianColumn]
public class DownloadBenchmarks
{
    private string _bucket = "";
    private string _dataRoot = "";
    private string[] _shardPaths = [];
    private LoopbackServer? _server;
    private HttpClient? _http;
    private int _run;

    /// <summary>Files fetched at once.</summary>
    [Params(1, 4)]
    public int MaxDegreeOfParallelism { get; set; }

    /// <summary>Shard bytes served.</summary>
    public long TotalBytes { get; private set; }

    [GlobalSetup]
    public void Setup()
    {
        string root = Path.Combine(Path.GetTempPath(), $"samplers-bench-download-{Environment.ProcessId}");
        _bucket = Path.Combine(root, "bucket");
        _dataRoot = Path.Combine(root, "data");
        string dir = Path.Combine(_bucket, "datasets", "toy", "1.0.0");
        var x = new FeatureSpec("x", FeatureKind.Tensor, "", DType.UInt8, [10_000], TensorEncoding.Bytes);
        var label = new FeatureSpec("label", FeatureKind.ClassLabel, "", DType.Int64, [], NumClasses: 10);
        var w = new TfdsDatasetWriter(dir, "toy", "1.0.0", [x, label]);
        var payload = new byte[10_000];
        for (int i = 0; i < payload.Length; i++) payload[i] = (byte)(i * 31 + 7);
        var examples = new List<byte[]>();
        for (int i = 0; i < 3200; i++)
            examples.Add(new ExampleBuilder().AddBytes("x", payload).AddLabel("label", i % 10).ToByteArray());
        _shardPaths = w.WriteSplit("train", examples, 4).ToArray();
        w.Complete();
        TotalBytes = _shardPaths.Sum(p => new FileInfo(p).Length);
        _server = new LoopbackServer(_bucket);
        _http = new HttpClient();
        Console.WriteLine($"// served: {TotalBytes} shard bytes in {_shardPaths.Length} shards at {_server.Url}");
    }

    [GlobalCleanup]
    public void Cleanup()
    {
        _server?.Dispose();
        _http?.Dispose();
        try { Directory.Delete(Path.GetDirectoryName(_bucket)!, recursive: true); } catch (IOException) { }
    }

    private string FreshDataDir()
    {
        string d = Path.Combine(_dataRoot, (_run++).ToString(System.Globalization.CultureInfo.InvariantCulture));
        if (Directory.Exists(d)) Directory.Delete(d, recursive: true);
        return d;
    }

    [IterationCleanup]
    public void IterationCleanup()
    {
        try { if (Directory.Exists(_dataRoot)) Directory.Delete(_dataRoot, recursive: true); } catch (IOException) { }
    }

    [Benchmark(Description = "DownloadAsync (verify + rename)")]
    public string Download() =>
        TfdsDownloader.DownloadAsync(new TfdsDownloadOptions("toy:1.0.0") { DataDir = FreshDataDir(), BaseUrl = _server!.Url, MaxDegreeOfParallelism = MaxDegreeOfParallelism })
            .GetAwaiter().GetResult();

    [Benchmark(Baseline = true, Description = "plain GET to files (no checks)")]
    public long PlainGet()
    {
        string d = FreshDataDir();
        Directory.CreateDirectory(d);
        long total = 0;
        Parallel.ForEach(_shardPaths, new ParallelOptions { MaxDegreeOfParallelism = MaxDegreeOfParallelism }, p =>
        {
            string rel = Path.GetRelativePath(_bucket, p).Replace('\\', '/');
            using var body = _http!.GetStreamAsync(_server!.Url + "/" + rel).GetAwaiter().GetResult();
            using var f = File.Create(Path.Combine(d, Path.GetFileName(p)));
            body.CopyTo(f);
            Interlocked.Add(ref total, f.Length);
        });
        return total;
    }

    /// <summary>Serves files under a root: GET only, 200 with Content-Length, one request per connection.</summary>
    private sealed class LoopbackServer : IDisposable
    {
        private readonly TcpListener _listener = new(IPAddress.Loopback, 0);
        private readonly string _root;
        private readonly CancellationTokenSource _cts = new();

        public LoopbackServer(string root)
        {
            _root = root;
            _listener.Start();
            Url = $"http://127.0.0.1:{((IPEndPoint)_listener.LocalEndpoint).Port}";
            _ = Task.Run(LoopAsync);
        }

        public string Url { get; }

        private async Task LoopAsync()
        {
            try
            {
                while (!_cts.IsCancellationRequested)
                {
                    var client = await _listener.AcceptTcpClientAsync(_cts.Token);
                    _ = Task.Run(() => HandleAsync(client));
                }
            }
            catch (OperationCanceledException) { }
            catch (SocketException) { }
        }

        private async Task HandleAsync(TcpClient client)
        {
            using (client)
            await using (var s = client.GetStream())
            {
                var head = new StringBuilder();
                var one = new byte[1];
                while (!head.ToString().EndsWith("\r\n\r\n", StringComparison.Ordinal) && await s.ReadAsync(one) == 1) head.Append((char)one[0]);
                string target = head.ToString().Split(' ')[1];
                string path = Path.Combine(_root, Uri.UnescapeDataString(target.TrimStart('/')));
                if (target.Contains('?') || !File.Exists(path))
                {
                    await s.WriteAsync("HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"u8.ToArray());
                    return;
                }
                await using var f = File.OpenRead(path);
                await s.WriteAsync(Encoding.ASCII.GetBytes($"HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\nContent-Length: {f.Length}\r\nConnection: close\r\n\r\n"));
                await f.CopyToAsync(s);
            }
        }

        public void Dispose()
        {
            _cts.Cancel();
            _listener.Stop();
        }
    }
}
