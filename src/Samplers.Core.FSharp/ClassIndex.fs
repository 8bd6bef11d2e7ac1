namespace Samplers.Core

open System

/// <summary>
/// Examples grouped by class: the distinct labels in ascending order (class ordinals 0..ClassCount-1)
/// and, for each class, the indices of its examples in the source table, in ascending order.
/// </summary>
/// <remarks>Immutable and thread-safe. Indices always refer to rows of the original table, so
/// filtering and selection never copy example data.</remarks>
[<Sealed>]
type ClassIndex private (classes: int64[], offsets: int[], members: int[]) =
    /// <summary>Builds the index of every label present.</summary>
    /// <exception cref="System.ArgumentException">The label array is empty.</exception>
    static member Build(labels: ReadOnlySpan<int64>) : ClassIndex =
        ignore labels.Length; ignore (ClassIndex([||], [| 0 |], [||])); raise (NotImplementedException())

    /// <summary>Builds the index of the examples whose label is in <paramref name="classList"/> (deduplicated).</summary>
    /// <exception cref="System.ArgumentException">A listed class is absent from the data (the message lists them and the classes present), or nothing remains.</exception>
    static member Build(labels: ReadOnlySpan<int64>, classList: ReadOnlySpan<int64>) : ClassIndex =
        ignore (labels.Length + classList.Length); raise (NotImplementedException())

    /// <summary>Keeps a seed-determined subset of min(total, available) examples of each class, drawn without replacement.</summary>
    /// <remarks>The reference (<c>select_examples</c>) draws with replacement and so duplicates examples; we do not.</remarks>
    member _.Select(seed: uint64, totalExamplesPerClass: int) : ClassIndex =
        ignore seed; ignore totalExamplesPerClass; raise (NotImplementedException())

    /// <summary>Number of classes.</summary>
    member _.ClassCount : int = classes.Length
    /// <summary>Number of indexed examples (after filtering and selection).</summary>
    member _.ExampleCount : int = members.Length
    /// <summary>The distinct labels in ascending order; position = class ordinal.</summary>
    member _.Classes : ReadOnlyMemory<int64> = ReadOnlyMemory(classes)
    /// <summary>The label of class ordinal <paramref name="ordinal"/>.</summary>
    member _.LabelOf(ordinal: int) : int64 = classes[ordinal]
    /// <summary>The ordinal of <paramref name="label"/>, or -1 when absent.</summary>
    member _.OrdinalOf(label: int64) : int = let i = Array.BinarySearch(classes, label) in if i >= 0 then i else -1
    /// <summary>Number of examples of class ordinal <paramref name="ordinal"/>.</summary>
    member _.CountOf(ordinal: int) : int = offsets[ordinal + 1] - offsets[ordinal]
    /// <summary>Indices (rows of the source table) of the examples of class ordinal <paramref name="ordinal"/>, ascending.</summary>
    member _.ExamplesOf(ordinal: int) : ReadOnlySpan<int> = ReadOnlySpan(members, offsets[ordinal], offsets[ordinal + 1] - offsets[ordinal])
