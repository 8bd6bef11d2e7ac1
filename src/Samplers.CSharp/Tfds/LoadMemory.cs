namespace Samplers.Tfds;

/// <summary>
/// Whether a table the loader would build in memory fits the memory this process may use, decided before any record is
/// decoded: a load that cannot stream to the cache file (ragged examples, a preprocess without an identity, caching off,
/// <see cref="TableBacking.Memory"/>) and would not fit fails at once with what to do, not with an out-of-memory error
/// halfway through (docs/MAPPED.md, "Beyond RAM from the first load").
/// </summary>
internal static class LoadMemory
{
    /// <summary>Bytes a row costs beside its example in an in-memory table: the label and the TFDS id string.</summary>
    private const long RowOverhead = 8 + 96;

    /// <summary>Bytes a TFRecord record may hold beside a raw example (framing, CRCs, feature keys, label): the margin by
    /// which a ragged table may be smaller than its shards.</summary>
    private const long RecordOverhead = 256;

    /// <summary>Test hook: replaces the memory the check assumes the process may still use.</summary>
    internal static Func<long>? AvailableOverride;

    /// <summary>Memory the process may still allocate: the GC's limit (<c>DOTNET_GCHeapHardLimit</c>, a container's limit, or
    /// physical memory) less what the heap holds now.</summary>
    public static long Available()
    {
        if (AvailableOverride is { } f) return f();
        long limit = GC.GetGCMemoryInfo().TotalAvailableMemoryBytes;
        return Math.Max(0, limit - GC.GetTotalMemory(forceFullCollection: false));
    }

    /// <summary>The bytes of the in-memory table the load builds (and, with a preprocess that runs after it, of its output
    /// too): exact for fixed shapes; for ragged ones the selected shards' size less a per-record margin, a lower bound for
    /// compressed images and about right for raw tensors.</summary>
    public static long Estimate(LoadPlan plan, bool fused)
    {
        long rows = plan.Total;
        long decoded;
        if (fused && plan.Fused is { } f) decoded = Bytes(f.OutputDType, f.OutputShape) * rows;
        else if (Array.Exists(plan.Shape, d => d < 0)) decoded = Math.Max(0, SelectedShardBytes(plan) - RecordOverhead * rows);
        else decoded = Bytes(plan.DType, plan.Shape) * rows;
        // A preprocess applied after the load builds its output while the decoded table is alive.
        if (!fused && plan.Fused is { } after) decoded += Bytes(after.OutputDType, after.OutputShape) * rows;
        return decoded + RowOverhead * rows;
    }

    /// <summary>Throws when the in-memory table of <paramref name="plan"/> cannot fit.</summary>
    /// <param name="plan">The load.</param>
    /// <param name="fused">Whether the preprocess runs in the decoder (only its output is kept).</param>
    /// <param name="why">Why the load does not stream to the cache file (a clause: "its examples are ragged ...").</param>
    /// <param name="todo">What the user can change (a clause), before the general advice.</param>
    /// <exception cref="InsufficientMemoryException">The estimate exceeds <see cref="Available"/>.</exception>
    public static void CheckFits(LoadPlan plan, bool fused, string why, string todo)
    {
        long need = Estimate(plan, fused);
        long have = Available();
        if (need <= have) return;
        string shape = $"[{string.Join(", ", plan.Shape)}] {DTypes.Name(plan.DType)}";
        throw new InsufficientMemoryException(
            $"{plan.Builder.FullName} [{string.Join(", ", plan.Options.Splits)}]: the load builds its table in memory, which needs about {MiB(need)} MiB " +
            $"({plan.Total} examples of {shape}{(Array.Exists(plan.Shape, d => d < 0) ? ", estimated from the shard sizes" : "")}), " +
            $"more than the {MiB(have)} MiB this process can still allocate (the GC's limit: DOTNET_GCHeapHardLimit, the container's memory limit or the " +
            $"physical memory). It cannot be streamed to the cache file because {why}. Nothing was decoded. To load it: {todo}; or select fewer examples " +
            "(a slice such as \"train[:25%]\"); or give the process more memory.");
    }

    private static string MiB(long bytes) => (bytes / (1024.0 * 1024.0)).ToString("0", System.Globalization.CultureInfo.InvariantCulture);

    private static long Bytes(DType dtype, int[] shape)
    {
        long b = DTypes.SizeOf(dtype);
        foreach (int d in shape) b *= Math.Max(d, 0);
        return b;
    }

    private static long SelectedShardBytes(LoadPlan plan)
    {
        double bytes = 0;
        foreach (var sel in plan.Selections)
            foreach (var ins in sel.Instructions)
            {
                long length = new FileInfo(ins.Path).Length;
                bytes += ins.ShardLength > 0 ? length * ((double)ins.Take / ins.ShardLength) : 0;
            }
        return (long)bytes;
    }
}
