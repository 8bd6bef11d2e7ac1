using System.Globalization;

namespace Samplers.TorchSharp;

/// <summary>
/// The data-parallel position of this process as <c>torchrun</c> sets it: <c>RANK</c>, <c>WORLD_SIZE</c>, <c>LOCAL_RANK</c>.
/// </summary>
/// <param name="Rank">This process's rank, in [0, WorldSize).</param>
/// <param name="WorldSize">Number of processes.</param>
/// <param name="LocalRank">This process's rank on its machine (which GPU to use).</param>
public sealed record DistributedEnvironment(int Rank, int WorldSize, int LocalRank)
{
    /// <summary>One process: rank 0 of 1.</summary>
    public static DistributedEnvironment Single { get; } = new(0, 1, 0);

    /// <summary>Reads <c>RANK</c>, <c>WORLD_SIZE</c> and <c>LOCAL_RANK</c>; when none is set, <see cref="Single"/>.</summary>
    /// <exception cref="FormatException">A variable is not a whole number, a count is out of range, or only some are set (the message names the variable, its value and what was expected).</exception>
    public static DistributedEnvironment FromEnvironment() =>
        From(Environment.GetEnvironmentVariable("RANK"), Environment.GetEnvironmentVariable("WORLD_SIZE"), Environment.GetEnvironmentVariable("LOCAL_RANK"));

    /// <summary>Parses the three values as <see cref="FromEnvironment"/> does (null = not set).</summary>
    /// <exception cref="FormatException">See <see cref="FromEnvironment"/>.</exception>
    public static DistributedEnvironment From(string? rank, string? worldSize, string? localRank)
    {
        if (rank is null && worldSize is null && localRank is null) return Single;
        if (rank is null || worldSize is null)
            throw new FormatException($"RANK and WORLD_SIZE must be set together (as torchrun does), but RANK is {Show(rank)} and WORLD_SIZE is {Show(worldSize)}.");
        int w = Parse("WORLD_SIZE", worldSize, 1);
        int r = Parse("RANK", rank, 0);
        if (r >= w) throw new FormatException($"RANK must be in [0, WORLD_SIZE) = [0, {w}), but was {r}.");
        int l = localRank is null ? r : Parse("LOCAL_RANK", localRank, 0);
        return new DistributedEnvironment(r, w, l);
    }

    /// <summary><paramref name="options"/> with this process's <see cref="SamplerOptions.Rank"/> and <see cref="SamplerOptions.WorldSize"/>
    /// (the same record type comes back, e.g. TFDS options stay TFDS options).</summary>
    public T Apply<T>(T options) where T : SamplerOptions
    {
        ArgumentNullException.ThrowIfNull(options);
        return (T)(options with { Rank = Rank, WorldSize = WorldSize });
    }

    private static int Parse(string name, string value, int min)
    {
        if (!int.TryParse(value.Trim(), NumberStyles.None, CultureInfo.InvariantCulture, out int v) || v < min)
            throw new FormatException($"{name} must be a whole number >= {min}, but was {Show(value)}.");
        return v;
    }

    private static string Show(string? v) => v is null ? "not set" : $"'{v}'";
}
