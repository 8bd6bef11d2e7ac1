namespace Samplers.Cli;

/// <summary>"Did you mean ...": the closest known name to a mistyped one.</summary>
internal static class Suggest
{
    /// <summary>The candidate closest to <paramref name="typed"/>: a candidate it is a prefix of or that is a prefix of it
    /// (--epoch / --epochs), else the smallest edit distance (transpositions count once: rnu / run) if at most a third of
    /// the name; null when nothing is close.</summary>
    public static string? Closest(string typed, IEnumerable<string> candidates)
    {
        string? best = null;
        int bestScore = int.MaxValue;
        foreach (string c in candidates.Distinct())
        {
            int score;
            if (string.Equals(c, typed, StringComparison.OrdinalIgnoreCase)) score = 0;
            else if (Bare(typed).Length >= 2 && (c.StartsWith(typed, StringComparison.OrdinalIgnoreCase) || typed.StartsWith(c, StringComparison.OrdinalIgnoreCase)) && Bare(c).Length >= 2)
                score = 1 + Math.Abs(c.Length - typed.Length);
            else
            {
                int d = Distance(typed.ToLowerInvariant(), c.ToLowerInvariant());
                if (d > Math.Max(1, Bare(typed).Length / 3)) continue;
                score = 1 + d;
            }
            if (score < bestScore) { bestScore = score; best = c; }
        }
        return best;
    }

    private static string Bare(string name) => name.TrimStart('-');

    /// <summary>Optimal string alignment distance (Levenshtein plus adjacent transpositions).</summary>
    internal static int Distance(string a, string b)
    {
        var d = new int[a.Length + 1, b.Length + 1];
        for (int i = 0; i <= a.Length; i++) d[i, 0] = i;
        for (int j = 0; j <= b.Length; j++) d[0, j] = j;
        for (int i = 1; i <= a.Length; i++)
            for (int j = 1; j <= b.Length; j++)
            {
                int cost = a[i - 1] == b[j - 1] ? 0 : 1;
                d[i, j] = Math.Min(Math.Min(d[i - 1, j] + 1, d[i, j - 1] + 1), d[i - 1, j - 1] + cost);
                if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1]) d[i, j] = Math.Min(d[i, j], d[i - 2, j - 2] + 1);
            }
        return d[a.Length, b.Length];
    }
}
