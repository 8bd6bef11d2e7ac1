using System.Diagnostics;
using System.Globalization;
using Samplers.SkiaSharp;

namespace Samplers.Bench;

/// <summary>
/// <c>dotnet run -c Release --project bench/Samplers.Bench -- jpeg-decoders [--rounds R] [--reps N] [--python PATH]
/// [--no-anchor]</c>: the JPEG decoder comparison of <see cref="JpegDecoderBenchmarks"/> with PIL added (the anchors'
/// Python worker, bench/anchors/anchors.py, stage <c>jpeg</c>), interleaved round by round so load changes hit every
/// decoder alike. Prints, per image, each decoder's median per-image time over the rounds (best sample in brackets)
/// and its ratio to PIL's, then the pixel agreement of each decoder (PIL's too) with libturbojpeg's IFAST and ISLOW
/// output.
/// </summary>
internal static class JpegDecodersCommand
{
    private static readonly CultureInfo Inv = CultureInfo.InvariantCulture;

    public static int Run(string[] args)
    {
        int rounds = 15, reps = 40;
        string python = "python3";
        bool anchor = true;
        for (int i = 0; i < args.Length; i++)
        {
            switch (args[i])
            {
                case "--rounds": rounds = int.Parse(args[++i], Inv); break;
                case "--reps": reps = int.Parse(args[++i], Inv); break;
                case "--python": python = args[++i]; break;
                case "--no-anchor": anchor = false; break;
                default: Console.Error.WriteLine("usage: jpeg-decoders [--rounds R] [--reps N] [--python PATH] [--no-anchor]"); return 2;
            }
        }
        string dir = Path.Combine(Path.GetTempPath(), "samplers-jpeg-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(dir);
        Process? py = null;
        using var c = new JpegCandidates();
        try
        {
            Console.WriteLine($"# {Environment.ProcessorCount} cores, load average {AnchorsCommand.LoadAverage()}, {DateTime.UtcNow:yyyy-MM-dd HH:mm} UTC");
            Console.WriteLine($"# product codec backend: {new SkiaImageCodec().Backend}");
            var images = new (string Name, byte[] Jpeg, int Scale, string Path)[]
            {
                ("500x375 q90, full", c.Small, 1, Path.Combine(dir, "small.jpg")),
                ("1024x768 q90, 1/2 (512x384)", c.Large, 2, Path.Combine(dir, "large.jpg")),
            };
            foreach (var im in images) File.WriteAllBytes(im.Path, im.Jpeg);
            if (anchor) py = AnchorsCommand.StartPython(python, dir);

            var decoders = new (string Name, Action<byte[], int> Run)[]
            {
                ("SkiaSharp (RGBA, drop alpha)", c.Skia),
                ("NetVips", c.Vips),
                ("OpenCvSharp4 imdecode", c.OpenCv),
                ("libturbojpeg ISLOW", (j, s) => c.Turbo(j, s, TurboJpeg.FlagAccurateDct)),
                ("libturbojpeg IFAST", (j, s) => c.Turbo(j, s, TurboJpeg.FlagFastDct)),
                ("SkiaImageCodec.Decode (product)", c.Product),
            };
            string[] pil = ["PIL open+draft+load", "PIL + np.asarray"];
            var times = new Dictionary<(int, string), List<(double Median, double Best)>>();
            void Add(int img, string name, (double, double) t)
            {
                if (!times.TryGetValue((img, name), out var l)) times[(img, name)] = l = [];
                l.Add(t);
            }
            for (int r = 0; r < rounds; r++)
            {
                for (int i = 0; i < images.Length; i++)
                {
                    var im = images[i];
                    foreach (var d in decoders) Add(i, d.Name, AnchorsCommand.Time(() => d.Run(im.Jpeg, im.Scale), reps));
                    if (py is null) continue;
                    Add(i, pil[0], AnchorsCommand.AskPython(py, "jpeg", reps, $"{im.Path} {im.Scale} 0"));
                    Add(i, pil[1], AnchorsCommand.AskPython(py, "jpeg", reps, $"{im.Path} {im.Scale} 1"));
                }
            }
            Console.WriteLine($"# {rounds} rounds x {reps} decodes per decoder and image; load average at the end {AnchorsCommand.LoadAverage()}");
            for (int i = 0; i < images.Length; i++)
            {
                Console.WriteLine();
                Console.WriteLine($"{images[i].Name} -> RGB | median (best) | / PIL load");
                Console.WriteLine("--- | --- | ---");
                double pilMedian = times.TryGetValue((i, pil[0]), out var p) ? Summary(p).Median : double.NaN;
                foreach (string name in decoders.Select(d => d.Name).Concat(py is null ? [] : pil))
                {
                    var (m, b) = Summary(times[(i, name)]);
                    Console.WriteLine($"{name} | {AnchorsCommand.Ms(m)} ({AnchorsCommand.Ms(b)}) | {m / pilMedian:0.00}");
                }
            }
            Console.WriteLine();
            Console.WriteLine(c.Agreement());
            if (py is not null)
            {
                foreach (var im in images)
                {
                    string dump = im.Path + ".rgb";
                    AnchorsCommand.AskPython(py, "jpeg", 1, $"{im.Path} {im.Scale} 1 {dump}");
                    byte[] pilPx = File.ReadAllBytes(dump);
                    var (h, w) = JpegCandidates.Size(im.Jpeg, im.Scale);
                    foreach (var (refName, flags) in new[] { ("tj-IFAST", TurboJpeg.FlagFastDct), ("tj-ISLOW", TurboJpeg.FlagAccurateDct) })
                    {
                        c.Turbo(im.Jpeg, im.Scale, flags);
                        Console.WriteLine($"JPEG-AGREEMENT {im.Name} PIL vs {refName}: {JpegCandidates.Diff(pilPx, c.Dst.AsSpan(0, h * w * 3))}");
                    }
                }
            }
            return 0;
        }
        finally
        {
            if (py is not null)
            {
                try { py.StandardInput.WriteLine("quit"); py.StandardInput.Close(); if (!py.WaitForExit(30_000)) py.Kill(true); } catch (InvalidOperationException) { }
                py.Dispose();
            }
            try { Directory.Delete(dir, true); } catch (IOException) { }
        }
    }

    private static (double Median, double Best) Summary(List<(double Median, double Best)> xs)
    {
        var m = xs.Select(x => x.Median).OrderBy(x => x).ToArray();
        return (m[m.Length / 2], xs.Min(x => x.Best));
    }
}
