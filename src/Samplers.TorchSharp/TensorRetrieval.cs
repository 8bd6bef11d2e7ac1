using Samplers.Evaluation;
using TorchSharp;
using static TorchSharp.torch;

namespace Samplers.TorchSharp;

/// <summary>Retrieval metrics (<see cref="Retrieval"/>) over embeddings held as tensors: the tensors are copied to the
/// CPU as float32 and int32 and scored by the managed implementation.</summary>
public static class TensorRetrieval
{
    /// <summary>Scores the set against itself (each row a query, every other row a reference); see <see cref="Retrieval.Evaluate(ReadOnlySpan{float}, ReadOnlySpan{int}, int, RetrievalOptions?)"/>.</summary>
    /// <param name="embeddings">[n, dim] (any float dtype, any device).</param>
    /// <param name="labels">[n] integer labels (within the int32 range).</param>
    /// <param name="options">Cut-offs, distance and chunk size; null for the defaults.</param>
    /// <exception cref="ArgumentException">The shapes do not fit, or a label is outside the int32 range.</exception>
    public static RetrievalReport Evaluate(Tensor embeddings, Tensor labels, RetrievalOptions? options = null)
    {
        (float[] e, int[] y, int dim) = ToArrays(embeddings, labels, nameof(embeddings));
        return Retrieval.Evaluate(e, y, dim, options);
    }

    /// <summary>Scores queries against a separate reference set; see <see cref="Retrieval.EvaluateQueries"/>.</summary>
    /// <param name="queries">[nq, dim].</param>
    /// <param name="queryLabels">[nq] integer labels.</param>
    /// <param name="references">[nr, dim].</param>
    /// <param name="referenceLabels">[nr] integer labels.</param>
    /// <param name="options">Cut-offs, distance and chunk size; null for the defaults.</param>
    /// <exception cref="ArgumentException">The shapes do not fit, or a label is outside the int32 range.</exception>
    public static RetrievalReport EvaluateQueries(Tensor queries, Tensor queryLabels, Tensor references, Tensor referenceLabels, RetrievalOptions? options = null)
    {
        (float[] q, int[] qy, int dim) = ToArrays(queries, queryLabels, nameof(queries));
        (float[] r, int[] ry, int rdim) = ToArrays(references, referenceLabels, nameof(references));
        if (rdim != dim) throw new ArgumentException($"The queries have dimension {dim} but the references {rdim}.", nameof(references));
        return Retrieval.EvaluateQueries(q, qy, r, ry, dim, options);
    }

    private static (float[] E, int[] Y, int Dim) ToArrays(Tensor embeddings, Tensor labels, string name)
    {
        ArgumentNullException.ThrowIfNull(embeddings);
        ArgumentNullException.ThrowIfNull(labels);
        if (embeddings.dim() != 2 || labels.dim() != 1 || labels.shape[0] != embeddings.shape[0])
            throw new ArgumentException($"Expected {name} [n, dim] and labels [n], but got [{string.Join(", ", embeddings.shape)}] and [{string.Join(", ", labels.shape)}].", name);
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        float[] e = embeddings.detach().to(ScalarType.Float32).cpu().contiguous().data<float>().ToArray();
        long[] y64 = labels.to(ScalarType.Int64).cpu().contiguous().data<long>().ToArray();
        var y = new int[y64.Length];
        for (int i = 0; i < y.Length; i++)
            y[i] = y64[i] is >= int.MinValue and <= int.MaxValue ? (int)y64[i] : throw new ArgumentException($"Label {y64[i]} at row {i} is outside the int32 range.", nameof(labels));
        return (e, y, (int)embeddings.shape[1]);
    }
}
