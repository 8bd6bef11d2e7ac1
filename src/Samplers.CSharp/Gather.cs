using Samplers.Data;

namespace Samplers;

/// <summary>
/// A batch would mix examples of different shapes (a ragged table without a resizing preprocess). A batch is one
/// tensor and needs one shape.
/// </summary>
public class RaggedBatchException : SamplersDataException
{
    /// <summary>Creates the exception.</summary>
    public RaggedBatchException(string message, long? offset = null) : base(message, null, offset, null) { }
}

/// <summary>Copies table rows into contiguous batch memory. The hot path of every batch.</summary>
internal static class Gather
{
    /// <summary>The bytes a batch of <paramref name="indices"/> needs, and its example shape (written to <paramref name="shape"/>).</summary>
    /// <exception cref="RaggedBatchException">Two rows have different shapes.</exception>
    internal static long Measure(ExampleTable table, ReadOnlySpan<int> indices, Span<int> shape, string what)
    {
        if (!table.IsRagged)
        {
            table.ExampleShape.CopyTo(shape);
            return (long)table.ExampleBytes * indices.Length;
        }
        if (indices.IsEmpty)
        {
            // No rows: the declared shape with 0 where ragged keeps the batch a valid empty tensor.
            ReadOnlySpan<int> declared = table.ExampleShape;
            for (int d = 0; d < declared.Length; d++) shape[d] = Math.Max(0, declared[d]);
            return 0;
        }
        ReadOnlySpan<int> first = table.GetShape(indices[0]);
        for (int i = 1; i < indices.Length; i++)
        {
            ReadOnlySpan<int> s = table.GetShape(indices[i]);
            if (!s.SequenceEqual(first))
                throw new RaggedBatchException(
                    $"{what} mixes example shapes [{string.Join(", ", first.ToArray())}] (row 0, example {indices[0]}) and [{string.Join(", ", s.ToArray())}] (row {i}, example {indices[i]}); " +
                    $"a batch is one tensor and needs one shape. The data is ragged (declared shape [{string.Join(", ", table.ExampleShape.ToArray())}]): " +
                    "pass a preprocess that resizes every example to one shape, e.g. Preprocess = Preprocessing.ResizeNearest(h, w).", i);
        }
        first.CopyTo(shape);
        return (long)table.GetExample(indices[0]).Length * indices.Length;
    }

    /// <summary>Copies the rows <paramref name="indices"/> back to back into <paramref name="destination"/> (which Measure sized).</summary>
    internal static void Rows(ExampleTable table, ReadOnlySpan<int> indices, Span<byte> destination)
    {
        int at = 0;
        for (int i = 0; i < indices.Length; i++)
        {
            ReadOnlySpan<byte> row = table.GetExample(indices[i]);
            row.CopyTo(destination.Slice(at, row.Length));
            at += row.Length;
        }
    }

    /// <summary>The labels of the rows.</summary>
    internal static void Labels(ExampleTable table, ReadOnlySpan<int> indices, Span<long> destination)
    {
        ReadOnlySpan<long> labels = table.Labels;
        for (int i = 0; i < indices.Length; i++) destination[i] = labels[indices[i]];
    }
}
