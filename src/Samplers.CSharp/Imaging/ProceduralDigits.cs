namespace Samplers.Imaging;

/// <summary>
/// Draws MNIST-like handwritten-looking digits (white strokes on black, 28x28 grey) for the embedded demo dataset.
/// Pure and reproducible: the same (digit, seed) gives the same pixels on any .NET version and CPU, because the
/// random source is a local SplitMix64 (not <see cref="System.Random"/>) and the geometry uses only IEEE-exact
/// operations (+, -, *, /, sqrt; sine and cosine are evaluated by a fixed polynomial, not <see cref="Math.Sin"/>).
/// </summary>
internal static class ProceduralDigits
{
    /// <summary>Image side in pixels.</summary>
    public const int Size = 28;

    /// <summary>Draws <paramref name="digit"/> with jitter drawn from <paramref name="seed"/> into a new 784-byte array (HWC, C = 1).</summary>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="digit"/> is not 0-9.</exception>
    public static byte[] Draw(int digit, ulong seed)
    {
        var img = new byte[Size * Size];
        Draw(digit, seed, img);
        return img;
    }

    /// <summary>The digit as a grey 8-bit PNG (what the embedded dataset stores), via <see cref="PngEncoder"/>.</summary>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="digit"/> is not 0-9.</exception>
    public static byte[] DrawPng(int digit, ulong seed)
        => PngEncoder.Encode(Draw(digit, seed), Size, Size, PngColorType.Grey);

    /// <summary>Draws into <paramref name="destination"/> (at least 784 bytes; the first 784 are overwritten).</summary>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="digit"/> is not 0-9.</exception>
    /// <exception cref="ArgumentException"><paramref name="destination"/> is shorter than 784 bytes.</exception>
    public static void Draw(int digit, ulong seed, Span<byte> destination)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(digit);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(digit, 9);
        if (destination.Length < Size * Size)
            throw new ArgumentException($"destination holds {destination.Length} bytes, a digit needs {Size * Size}.", nameof(destination));
        var rng = new SplitMix64(seed ^ (0x9E3779B97F4A7C15UL * (ulong)(digit + 1)));

        // Jitter: size, aspect, rotation, shear, position, stroke width, per-vertex wobble.
        double scale = rng.Uniform(0.82, 1.08);
        double aspect = rng.Uniform(0.8, 1.2);
        double angle = rng.Uniform(-0.26, 0.26);
        double shear = rng.Uniform(-0.3, 0.3);
        double tx = rng.Uniform(-2.0, 2.0), ty = rng.Uniform(-1.5, 1.5);
        double halfWidth = rng.Uniform(0.8, 1.6);
        double wobble = rng.Uniform(0.0, 0.035);
        double sin = Sin(angle), cos = Cos(angle);
        double gh = 19.0 * scale, gw = 13.0 * scale * aspect;

        var strokes = Glyph(digit);
        var segs = new List<(double X0, double Y0, double X1, double Y1)>(96);
        foreach (var stroke in strokes)
        {
            double px = 0, py = 0;
            for (int i = 0; i < stroke.Length; i++)
            {
                double gx = stroke[i].X + rng.Uniform(-wobble, wobble), gy = stroke[i].Y + rng.Uniform(-wobble, wobble);
                double x = (gx - 0.5) * gw, y = (gy - 0.5) * gh;
                x += shear * -y; // positive shear leans the top to the right, like slanted handwriting
                double rx = x * cos - y * sin, ry = x * sin + y * cos;
                rx += 14.0 + tx; ry += 14.0 + ty;
                if (i > 0) segs.Add((px, py, rx, ry));
                px = rx; py = ry;
            }
        }

        double inkGain = rng.Uniform(0.8, 1.0);
        for (int yy = 0; yy < Size; yy++)
        {
            for (int xx = 0; xx < Size; xx++)
            {
                double cx = xx + 0.5, cy = yy + 0.5;
                double best = double.MaxValue;
                foreach (var s in segs)
                {
                    double d = DistanceSquared(cx, cy, s.X0, s.Y0, s.X1, s.Y1);
                    if (d < best) best = d;
                }
                double dist = Math.Sqrt(best);
                double ink = halfWidth + 0.5 - dist; // one-pixel linear ramp gives anti-aliased edges
                ink = ink <= 0 ? 0 : ink >= 1 ? 1 : ink;
                double v = ink * 255.0 * (inkGain - 0.15 * rng.NextDouble());
                if (rng.NextDouble() < 0.02) v += 40.0 + 80.0 * rng.NextDouble(); // sparse specks of noise
                destination[yy * Size + xx] = (byte)(v <= 0 ? 0 : v >= 255 ? 255 : (int)(v + 0.5));
            }
        }
    }

    private static double DistanceSquared(double px, double py, double x0, double y0, double x1, double y1)
    {
        double dx = x1 - x0, dy = y1 - y0;
        double len2 = dx * dx + dy * dy;
        double t = len2 == 0 ? 0 : ((px - x0) * dx + (py - y0) * dy) / len2;
        t = t < 0 ? 0 : t > 1 ? 1 : t;
        double ex = x0 + t * dx - px, ey = y0 + t * dy - py;
        return ex * ex + ey * ey;
    }

    /// <summary>Strokes of a digit as polylines in a unit box (x right, y down).</summary>
    private static (double X, double Y)[][] Glyph(int d) => d switch
    {
        0 => [Arc(0.5, 0.5, 0.4, 0.5, 0, 360, 24)],
        1 => [[(0.28, 0.22), (0.55, 0.0), (0.55, 1.0)]],
        2 => [Concat(Arc(0.5, 0.3, 0.38, 0.3, -165, 25, 12), [(0.1, 1.0), (0.92, 1.0)])],
        3 => [Arc(0.48, 0.26, 0.34, 0.26, -160, 90, 12), Arc(0.48, 0.74, 0.4, 0.26, -90, 160, 12)],
        4 => [[(0.72, 1.0), (0.72, 0.0), (0.05, 0.68), (0.95, 0.68)]],
        5 => [Concat([(0.88, 0.0), (0.24, 0.0), (0.18, 0.46)], Arc(0.48, 0.69, 0.4, 0.31, -125, 155, 14))],
        6 => [Concat([(0.78, 0.02), (0.44, 0.2), (0.2, 0.5)], Arc(0.5, 0.71, 0.32, 0.29, 180, 540, 20))],
        7 => [[(0.08, 0.0), (0.92, 0.0), (0.4, 1.0)]],
        8 => [Arc(0.5, 0.25, 0.3, 0.25, 90, 450, 18), Arc(0.5, 0.74, 0.37, 0.26, -90, 270, 20)],
        9 => [Concat(Arc(0.5, 0.29, 0.34, 0.29, 0, 360, 20), [(0.8, 0.55), (0.66, 1.0)])],
        _ => throw new ArgumentOutOfRangeException(nameof(d)),
    };

    private static (double X, double Y)[] Concat((double X, double Y)[] a, (double X, double Y)[] b) => [.. a, .. b];

    /// <summary>An elliptical arc from degree a0 to a1 (y down, so -90 is the top) in n segments.</summary>
    private static (double X, double Y)[] Arc(double cx, double cy, double rx, double ry, double a0, double a1, int n)
    {
        var pts = new (double X, double Y)[n + 1];
        for (int i = 0; i <= n; i++)
        {
            double a = (a0 + (a1 - a0) * i / n) * (Math.PI / 180.0);
            pts[i] = (cx + rx * Cos(a), cy + ry * Sin(a));
        }
        return pts;
    }

    /// <summary>Sine by range reduction to [-pi, pi] and a fixed Taylor polynomial: same bits on every platform.</summary>
    internal static double Sin(double x)
    {
        const double twoPi = 2.0 * Math.PI;
        x -= twoPi * Math.Floor((x + Math.PI) / twoPi);
        double x2 = x * x, term = x, sum = x;
        for (int k = 1; k <= 12; k++)
        {
            term *= -x2 / ((2 * k) * (2 * k + 1));
            sum += term;
        }
        return sum;
    }

    /// <summary>Cosine as a shifted <see cref="Sin"/>.</summary>
    internal static double Cos(double x) => Sin(x + Math.PI / 2.0);
}
