namespace Samplers.Imaging;

/// <summary>SplitMix64 (Steele, Lea, Flood 2014): tiny, well mixed, and fully specified by its constants. The one
/// copy shared by <see cref="ProceduralDigits"/> and the dataset generator tool (tools/Samplers.DatasetGen), whose
/// output bytes a test compares with the committed data/ folder.</summary>
internal struct SplitMix64(ulong seed)
{
    private ulong _state = seed;

    public ulong Next()
    {
        ulong z = _state += 0x9E3779B97F4A7C15UL;
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
        return z ^ (z >> 31);
    }

    /// <summary>Uniform in [0, 1) with 53 random bits.</summary>
    public double NextDouble() => (Next() >> 11) * (1.0 / (1UL << 53));

    public double Uniform(double lo, double hi) => lo + (hi - lo) * NextDouble();
}
