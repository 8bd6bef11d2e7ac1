namespace Samplers.Core

open System
open System.Buffers

/// <summary>
/// Examples grouped by class: the distinct labels in ascending order (class ordinals 0..ClassCount-1)
/// and, for each class, the indices of its examples in the source table, in ascending order.
/// </summary>
/// <remarks>Immutable and thread-safe. Indices always refer to rows of the original table, so
/// filtering and selection never copy example data.</remarks>
[<Sealed>]
type ClassIndex private (classes: int64[], offsets: int[], members: int[]) =

    static let listed (values: int64 seq) =
        let shown = values |> Seq.truncate 50 |> Seq.map string |> String.concat ", "
        if Seq.length values > 50 then $"[{shown}, ... ({Seq.length values} in all)]" else $"[{shown}]"

    // CSR from labels already mapped to ordinals: a stable counting sort keeps indices ascending within a class.
    static let fromOrdinals (classes: int64[]) (ordinalOf: int -> int) (count: int) =
        let offsets = Array.zeroCreate (classes.Length + 1)
        for i in 0 .. count - 1 do
            let o = ordinalOf i
            offsets[o + 1] <- offsets[o + 1] + 1
        for c in 0 .. classes.Length - 1 do
            offsets[c + 1] <- offsets[c + 1] + offsets[c]
        let members = Array.zeroCreate count
        let next = Array.copy offsets
        for i in 0 .. count - 1 do
            let o = ordinalOf i
            members[next[o]] <- i
            next[o] <- next[o] + 1
        ClassIndex(classes, offsets, members)

    /// <summary>Builds the index of every label present. O(N) when the labels span a range of at most
    /// max(2N, 65536) values (the usual dense 0..C-1 labels), O(N log C) otherwise.</summary>
    /// <exception cref="System.ArgumentException">The label array is empty.</exception>
    static member Build(labels: ReadOnlySpan<int64>) : ClassIndex =
        if labels.IsEmpty then
            invalidArg "labels" "The dataset is empty: there are no labels to index. Check the splits and the class list you loaded."
        let n = labels.Length
        let mutable lo = labels[0]
        let mutable hi = labels[0]
        for v in labels do
            if v < lo then lo <- v
            if v > hi then hi <- v
        let span = uint64 hi - uint64 lo // unsigned difference: no overflow for any pair of int64
        if span < uint64 (max (2L * int64 n) 65536L) && span < (1UL <<< 28) then
            // Dense labels: count per value, number the present values, then a counting sort.
            let r = int span + 1
            let ord = ArrayPool<int>.Shared.Rent r
            try
                Array.Clear(ord, 0, r)
                for v in labels do
                    let j = int (v - lo)
                    ord[j] <- ord[j] + 1
                let mutable c = 0
                for j in 0 .. r - 1 do
                    if ord[j] > 0 then c <- c + 1
                let classes = Array.zeroCreate c
                let offsets = Array.zeroCreate (c + 1)
                c <- 0
                let mutable start = 0
                for j in 0 .. r - 1 do
                    let count = ord[j]
                    if count > 0 then
                        classes[c] <- lo + int64 j
                        offsets[c] <- start
                        // From here on ord[j] is the write cursor of value j: one lookup per row in the scatter.
                        ord[j] <- start
                        start <- start + count
                        c <- c + 1
                offsets[c] <- start
                let members = Array.zeroCreate n
                for i in 0 .. n - 1 do
                    let j = int (labels[i] - lo)
                    let at = ord[j]
                    members[at] <- i
                    ord[j] <- at + 1
                ClassIndex(classes, offsets, members)
            finally
                ArrayPool<int>.Shared.Return ord
        else
            let sorted = labels.ToArray()
            Array.Sort sorted
            let mutable c = 1
            for i in 1 .. n - 1 do
                if sorted[i] <> sorted[i - 1] then
                    sorted[c] <- sorted[i]
                    c <- c + 1
            let classes = Array.sub sorted 0 c
            let ordinals = Array.zeroCreate n
            for i in 0 .. n - 1 do
                ordinals[i] <- Array.BinarySearch(classes, labels[i])
            fromOrdinals classes (fun i -> ordinals[i]) n

    /// <summary>Builds the index of the examples whose label is in <paramref name="classList"/> (deduplicated).</summary>
    /// <exception cref="System.ArgumentException">A listed class is absent from the data (the message lists them and the classes present), or nothing remains.</exception>
    static member Build(labels: ReadOnlySpan<int64>, classList: ReadOnlySpan<int64>) : ClassIndex =
        if classList.IsEmpty then
            invalidArg "classList" "classList is empty, so no example would remain. Pass at least one class, or no class list to use every class present."
        let full = ClassIndex.Build labels
        let wanted = classList.ToArray() |> Array.distinct |> Array.sort
        let missing = wanted |> Array.filter (fun l -> full.OrdinalOf l < 0)
        if missing.Length > 0 then
            invalidArg "classList"
                $"classList contains {missing.Length} class(es) absent from the data: {listed missing}. Classes present: {listed full.ClassesArray}. Remove the absent classes or load the splits that hold them."
        let offsets = Array.zeroCreate (wanted.Length + 1)
        for k in 0 .. wanted.Length - 1 do
            offsets[k + 1] <- offsets[k] + full.CountOf(full.OrdinalOf wanted[k])
        let members = Array.zeroCreate offsets[wanted.Length]
        for k in 0 .. wanted.Length - 1 do
            full.ExamplesOf(full.OrdinalOf wanted[k]).CopyTo(Span(members, offsets[k], offsets[k + 1] - offsets[k]))
        ClassIndex(wanted, offsets, members)

    member internal _.ClassesArray = classes

    /// <summary>Keeps a seed-determined subset of min(total, available) examples of each class, drawn without replacement.</summary>
    /// <remarks>The reference (<c>select_examples</c>) draws with replacement and so duplicates examples; we do not.
    /// The subset of class ordinal c uses the Philox stream (seed, Purpose.Selection, lane 0, stream = the class label
    /// reinterpreted as 64 bits), so it does not depend on which other classes are indexed. Kept indices stay ascending.</remarks>
    /// <exception cref="System.ArgumentOutOfRangeException">totalExamplesPerClass is less than 1.</exception>
    member this.Select(seed: uint64, totalExamplesPerClass: int) : ClassIndex =
        if totalExamplesPerClass < 1 then
            raise (ArgumentOutOfRangeException("totalExamplesPerClass", totalExamplesPerClass, $"totalExamplesPerClass must be at least 1, but was {totalExamplesPerClass}."))
        let newOffsets = Array.zeroCreate (classes.Length + 1)
        for c in 0 .. classes.Length - 1 do
            newOffsets[c + 1] <- newOffsets[c] + min totalExamplesPerClass (this.CountOf c)
        let newMembers = Array.zeroCreate newOffsets[classes.Length]
        let mutable scratch = [||]
        for c in 0 .. classes.Length - 1 do
            let have = this.CountOf c
            let keep = newOffsets[c + 1] - newOffsets[c]
            let dest = Span(newMembers, newOffsets[c], keep)
            if keep = have then this.ExamplesOf(c).CopyTo dest
            else
                let need = Sampling.ScratchLength keep
                if scratch.Length < need then scratch <- Array.zeroCreate need
                let mutable s = PhiloxStream(seed, Purpose.Selection, 0, uint64 classes[c])
                Sampling.Floyd(&s, have, keep, dest, Span scratch)
                dest.Sort()
                let src = this.ExamplesOf c
                for j in 0 .. keep - 1 do dest[j] <- src[dest[j]]
        ClassIndex(classes, newOffsets, newMembers)

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
    /// <summary>Every indexed example (row of the source table) in ascending order: the rows a sampler over this index
    /// draws from, e.g. for exporting a class list or per-class selection.</summary>
    member _.AllExamples() : int[] =
        let all = Array.copy members
        Array.sortInPlace all
        all
    /// <summary>The example at position <paramref name="position"/> of class ordinal <paramref name="ordinal"/> (no span, for hot loops).</summary>
    member _.ExampleAt(ordinal: int, position: int) : int = members[offsets[ordinal] + position]
