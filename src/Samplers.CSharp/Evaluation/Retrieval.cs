using System.Numerics.Tensors;

namespace Samplers.Evaluation;

/// <summary>How <see cref="Retrieval"/> measures the distance between two embeddings.</summary>
public enum RetrievalDistance
{
    /// <summary><c>1 - a·b / (|a| |b|)</c>; a zero vector has cosine similarity 0 with everything (distance 1).</summary>
    Cosine,

    /// <summary>The Euclidean distance <c>|a - b|</c>.</summary>
    L2,
}

/// <summary>Settings of a <see cref="Retrieval"/> evaluation.</summary>
public sealed record RetrievalOptions
{
    /// <summary>The cut-offs of recall@k and precision@k (default 1 and 5); each at least 1.</summary>
    public IReadOnlyList<int> Ks { get; init; } = [1, 5];

    /// <summary>The distance (default cosine, as the reference's evaluation).</summary>
    public RetrievalDistance Distance { get; init; } = RetrievalDistance.Cosine;

    /// <summary>How many queries are compared with all references at a time (default 64): the evaluation holds
    /// <c>QueryChunk × references</c> distances, so memory stays bounded whatever the number of queries.</summary>
    public int QueryChunk { get; init; } = 64;
}

/// <summary>Retrieval scores of a set of queries (all of them, or one class's).</summary>
/// <remarks>
/// Every query counts in recall@k and precision@k (a query whose class has no reference can only miss). R-precision
/// and MAP@R are means over the <see cref="QueriesWithRelevant"/> queries with R ≥ 1 (a class with a single example,
/// queried against the set itself, has R = 0 and is left out of them), and NaN when there is none.
/// </remarks>
public sealed class RetrievalScores
{
    internal RetrievalScores(int queries, int queriesWithRelevant, int[] ks, double[] recall, double[] precision, double rPrecision, double mapAtR)
    {
        Queries = queries;
        QueriesWithRelevant = queriesWithRelevant;
        Ks = ks;
        RecallAtK = recall;
        PrecisionAtK = precision;
        RPrecision = rPrecision;
        MapAtR = mapAtR;
    }

    /// <summary>The number of queries scored.</summary>
    public int Queries { get; }

    /// <summary>The number of queries with at least one reference of their class (R ≥ 1).</summary>
    public int QueriesWithRelevant { get; }

    /// <summary>The cut-offs, in the order of <see cref="RecallAtK"/> and <see cref="PrecisionAtK"/>.</summary>
    public IReadOnlyList<int> Ks { get; }

    /// <summary>recall@k for each of <see cref="Ks"/>: the share of queries with a reference of their class among
    /// their k nearest.</summary>
    public IReadOnlyList<double> RecallAtK { get; }

    /// <summary>precision@k for each of <see cref="Ks"/>: the mean share of a query's k nearest that have its class
    /// (k is cut to the number of references when there are fewer).</summary>
    public IReadOnlyList<double> PrecisionAtK { get; }

    /// <summary>R-precision: the mean share of a query's R nearest that have its class, R = its class's references.</summary>
    public double RPrecision { get; }

    /// <summary>MAP@R (Musgrave et al. 2020): the mean over queries of <c>(1/R) Σ_{i≤R} P(i)·rel(i)</c>.</summary>
    public double MapAtR { get; }

    /// <summary>recall@<paramref name="k"/>, for a k among <see cref="Ks"/>.</summary>
    /// <exception cref="ArgumentOutOfRangeException">k was not evaluated.</exception>
    public double RecallAt(int k) => RecallAtK[IndexOf(k)];

    /// <summary>precision@<paramref name="k"/>, for a k among <see cref="Ks"/>.</summary>
    /// <exception cref="ArgumentOutOfRangeException">k was not evaluated.</exception>
    public double PrecisionAt(int k) => PrecisionAtK[IndexOf(k)];

    private int IndexOf(int k)
    {
        for (int i = 0; i < Ks.Count; i++) if (Ks[i] == k) return i;
        throw new ArgumentOutOfRangeException(nameof(k), k, $"k = {k} was not evaluated; the evaluated cut-offs are {string.Join(", ", Ks)} (RetrievalOptions.Ks).");
    }
}

/// <summary>The result of a <see cref="Retrieval"/> evaluation: all queries, and each query class.</summary>
public sealed class RetrievalReport
{
    internal RetrievalReport(RetrievalScores overall, IReadOnlyDictionary<int, RetrievalScores> perClass)
    {
        Overall = overall;
        PerClass = perClass;
    }

    /// <summary>The scores over all queries.</summary>
    public RetrievalScores Overall { get; }

    /// <summary>The scores of each query class (the queries with that label), by label.</summary>
    public IReadOnlyDictionary<int, RetrievalScores> PerClass { get; }
}

/// <summary>
/// Exact nearest-neighbour retrieval metrics over an embedding set, as metric-learning papers report them (TensorFlow
/// Similarity's <c>evaluate_retrieval</c>, PyTorch Metric Learning's <c>AccuracyCalculator</c>): recall@k,
/// precision@k, R-precision and MAP@R.
/// </summary>
/// <remarks>
/// <para>Embeddings are row-major float32 (<c>rows × dimension</c>) with one int label per row. <see cref="Evaluate(ReadOnlySpan{float}, ReadOnlySpan{int}, int, RetrievalOptions?)"/>
/// queries the set with each of its own rows, leaving the query itself out of its references; <see cref="EvaluateQueries"/>
/// queries a separate reference set (all of it). Brute force: every query is compared with every reference, in
/// chunks of <see cref="RetrievalOptions.QueryChunk"/> queries, with SIMD dot products and distances
/// (<see cref="TensorPrimitives"/>).</para>
/// <para>Neighbours are ranked by distance, then by reference index: of two references at the same distance, the one
/// with the lower row index is nearer. The ranking is therefore a total order and the result does not depend on the
/// selection algorithm or the chunk size. The distances are float32 SIMD reductions, so on another CPU (another vector
/// width) a near-tie may break the other way.</para>
/// <para>For a query with R references of its class, MAP@R = <c>(1/R) Σ_{i=1..R} P(i)·rel(i)</c>, where rel(i) is 1
/// when the i-th nearest reference has the query's class and P(i) is the share of the i nearest that do;
/// R-precision = (number of the R nearest with the query's class) / R.</para>
/// </remarks>
public static class Retrieval
{
    /// <summary>Scores the set against itself: each row is a query, and every other row a reference.</summary>
    /// <param name="embeddings">Row-major <c>labels.Length × dimension</c> floats; no NaN.</param>
    /// <param name="labels">One label per row.</param>
    /// <param name="dimension">The embedding dimension (≥ 1).</param>
    /// <param name="options">Cut-offs, distance and chunk size; null for the defaults.</param>
    /// <exception cref="ArgumentException">The sizes do not fit, a value is NaN or infinite, or an option is out of range (the message says which).</exception>
    public static RetrievalReport Evaluate(ReadOnlySpan<float> embeddings, ReadOnlySpan<int> labels, int dimension, RetrievalOptions? options = null)
        => Run(embeddings, labels, embeddings, labels, dimension, options ?? new RetrievalOptions(), leaveOneOut: true);

    /// <summary>Scores <paramref name="queries"/> against a separate reference set (every reference is a candidate).</summary>
    /// <param name="queries">Row-major <c>queryLabels.Length × dimension</c> floats.</param>
    /// <param name="queryLabels">One label per query.</param>
    /// <param name="references">Row-major <c>referenceLabels.Length × dimension</c> floats.</param>
    /// <param name="referenceLabels">One label per reference.</param>
    /// <param name="dimension">The embedding dimension (≥ 1).</param>
    /// <param name="options">Cut-offs, distance and chunk size; null for the defaults.</param>
    /// <exception cref="ArgumentException">The sizes do not fit, a value is NaN or infinite, or an option is out of range.</exception>
    public static RetrievalReport EvaluateQueries(ReadOnlySpan<float> queries, ReadOnlySpan<int> queryLabels, ReadOnlySpan<float> references,
        ReadOnlySpan<int> referenceLabels, int dimension, RetrievalOptions? options = null)
        => Run(queries, queryLabels, references, referenceLabels, dimension, options ?? new RetrievalOptions(), leaveOneOut: false);

    private static RetrievalReport Run(ReadOnlySpan<float> q, ReadOnlySpan<int> qLabels, ReadOnlySpan<float> r, ReadOnlySpan<int> rLabels,
        int dim, RetrievalOptions options, bool leaveOneOut)
    {
        if (dim < 1) throw new ArgumentException($"The embedding dimension must be at least 1, but was {dim}.", nameof(dim));
        CheckShape(q, qLabels.Length, dim, leaveOneOut ? "embeddings" : "queries");
        CheckShape(r, rLabels.Length, dim, "references");
        if (options.Ks is null || options.Ks.Count == 0) throw new ArgumentException("RetrievalOptions.Ks must name at least one cut-off k.", nameof(options));
        int[] ks = [.. options.Ks];
        foreach (int k in ks) if (k < 1) throw new ArgumentException($"Every cut-off k must be at least 1, but RetrievalOptions.Ks holds {k}.", nameof(options));
        if (options.QueryChunk < 1) throw new ArgumentException($"RetrievalOptions.QueryChunk must be at least 1, but was {options.QueryChunk}.", nameof(options));

        int nq = qLabels.Length, nr = rLabels.Length;
        bool cosine = options.Distance == RetrievalDistance.Cosine;
        float[] qInv = cosine ? InverseNorms(q, nq, dim) : [];
        float[] rInv = cosine ? (leaveOneOut ? qInv : InverseNorms(r, nr, dim)) : [];

        // R of each query = the references of its class (minus itself when the set queries itself).
        var classCount = new Dictionary<int, int>();
        foreach (int l in rLabels) classCount[l] = classCount.GetValueOrDefault(l) + 1;

        int maxK = ks.Max();
        int chunk = Math.Min(options.QueryChunk, Math.Max(1, nq));
        var dist = new float[chunk * (long)nr <= int.MaxValue ? chunk * nr : throw new ArgumentException($"QueryChunk {chunk} × {nr} references is too many distances for one chunk; lower RetrievalOptions.QueryChunk.", nameof(options))];
        var keys = new Neighbour[nr];
        var perQuery = new QueryScore[nq];
        for (int start = 0; start < nq; start += chunk)
        {
            int m = Math.Min(chunk, nq - start);
            // References outside, queries inside: each reference row is read once per chunk.
            for (int j = 0; j < nr; j++)
            {
                ReadOnlySpan<float> rj = r.Slice(j * dim, dim);
                for (int i = 0; i < m; i++)
                {
                    ReadOnlySpan<float> qi = q.Slice((start + i) * dim, dim);
                    dist[i * nr + j] = cosine
                        ? 1f - TensorPrimitives.Dot(qi, rj) * qInv[start + i] * rInv[j]
                        : TensorPrimitives.Distance(qi, rj);
                }
            }
            for (int i = 0; i < m; i++)
            {
                int query = start + i;
                int label = qLabels[query];
                int count = 0;
                for (int j = 0; j < nr; j++)
                {
                    if (leaveOneOut && j == query) continue;
                    keys[count++] = new Neighbour(dist[i * nr + j], j);
                }
                int relevant = classCount.GetValueOrDefault(label) - (leaveOneOut ? 1 : 0);
                int depth = Math.Min(count, Math.Max(maxK, relevant));
                Span<Neighbour> top = keys.AsSpan(0, count);
                SelectSmallest(top, depth);
                top[..depth].Sort();
                perQuery[query] = Score(top[..depth], rLabels, label, relevant, ks);
            }
        }

        var overall = Aggregate(perQuery, ks, _ => true);
        var perClass = new SortedDictionary<int, RetrievalScores>();
        foreach (int label in qLabels.ToArray().Distinct().Order())
            perClass[label] = Aggregate(perQuery, ks, s => s.Label == label);
        return new RetrievalReport(overall, perClass);
    }

    private static void CheckShape(ReadOnlySpan<float> x, int rows, int dim, string name)
    {
        if ((long)rows * dim != x.Length)
            throw new ArgumentException($"The {name} hold {x.Length} floats, but {rows} labels × dimension {dim} = {(long)rows * dim} were expected.", name);
        for (int i = 0; i < x.Length; i++)
            if (!float.IsFinite(x[i])) throw new ArgumentException($"The {name} hold {x[i]} at row {i / dim}, column {i % dim}; embeddings must be finite.", name);
    }

    private static float[] InverseNorms(ReadOnlySpan<float> x, int rows, int dim)
    {
        var inv = new float[rows];
        for (int i = 0; i < rows; i++)
        {
            float n = TensorPrimitives.Norm(x.Slice(i * dim, dim));
            inv[i] = n > 0 ? 1f / n : 0f; // a zero vector: similarity 0 with everything
        }
        return inv;
    }

    private static QueryScore Score(ReadOnlySpan<Neighbour> ranked, ReadOnlySpan<int> rLabels, int label, int relevant, int[] ks)
    {
        var hit = new bool[ks.Length];
        var precision = new double[ks.Length];
        for (int t = 0; t < ks.Length; t++)
        {
            int kEff = Math.Min(ks[t], ranked.Length);
            int same = 0;
            for (int i = 0; i < kEff; i++) if (rLabels[ranked[i].Index] == label) same++;
            hit[t] = same > 0;
            precision[t] = kEff == 0 ? 0 : (double)same / kEff;
        }
        double rPrecision = double.NaN, ap = double.NaN;
        if (relevant > 0)
        {
            int same = 0;
            double sum = 0;
            for (int i = 0; i < relevant; i++)
            {
                if (rLabels[ranked[i].Index] != label) continue;
                same++;
                sum += (double)same / (i + 1); // P(i+1), counted where rel(i+1) = 1
            }
            rPrecision = (double)same / relevant;
            ap = sum / relevant;
        }
        return new QueryScore(label, hit, precision, rPrecision, ap);
    }

    private static RetrievalScores Aggregate(QueryScore[] all, int[] ks, Func<QueryScore, bool> include)
    {
        var recall = new double[ks.Length];
        var precision = new double[ks.Length];
        int n = 0, withR = 0;
        double rp = 0, map = 0;
        foreach (QueryScore s in all)
        {
            if (!include(s)) continue;
            n++;
            for (int t = 0; t < ks.Length; t++)
            {
                if (s.Hit[t]) recall[t]++;
                precision[t] += s.Precision[t];
            }
            if (!double.IsNaN(s.AveragePrecisionAtR))
            {
                withR++;
                rp += s.RPrecision;
                map += s.AveragePrecisionAtR;
            }
        }
        for (int t = 0; t < ks.Length; t++)
        {
            recall[t] = n == 0 ? double.NaN : recall[t] / n;
            precision[t] = n == 0 ? double.NaN : precision[t] / n;
        }
        return new RetrievalScores(n, withR, [.. ks], recall, precision, withR == 0 ? double.NaN : rp / withR, withR == 0 ? double.NaN : map / withR);
    }

    // Moves the `count` smallest keys (in the total order) to the front, in no particular order (quickselect with a
    // median-of-three pivot; the order is total, so the set selected is unique).
    internal static void SelectSmallest(Span<Neighbour> a, int count)
    {
        int lo = 0, hi = a.Length - 1;
        if (count <= 0 || count >= a.Length) return;
        while (hi > lo)
        {
            int mid = lo + (hi - lo) / 2;
            if (a[mid].CompareTo(a[lo]) < 0) (a[mid], a[lo]) = (a[lo], a[mid]);
            if (a[hi].CompareTo(a[lo]) < 0) (a[hi], a[lo]) = (a[lo], a[hi]);
            if (a[hi].CompareTo(a[mid]) < 0) (a[hi], a[mid]) = (a[mid], a[hi]);
            Neighbour pivot = a[mid];
            int i = lo, j = hi;
            while (i <= j)
            {
                while (a[i].CompareTo(pivot) < 0) i++;
                while (a[j].CompareTo(pivot) > 0) j--;
                if (i <= j)
                {
                    (a[i], a[j]) = (a[j], a[i]);
                    i++;
                    j--;
                }
            }
            // [lo, j] ≤ pivot ≤ [i, hi]; keep the side holding position count - 1.
            if (count - 1 <= j) hi = j;
            else if (count - 1 >= i) lo = i;
            else return;
        }
    }

    internal readonly record struct Neighbour(float Distance, int Index) : IComparable<Neighbour>
    {
        public int CompareTo(Neighbour other)
        {
            int c = Distance.CompareTo(other.Distance);
            return c != 0 ? c : Index.CompareTo(other.Index);
        }
    }

    private sealed record QueryScore(int Label, bool[] Hit, double[] Precision, double RPrecision, double AveragePrecisionAtR);
}
