using Samplers.Core.Tfds;

namespace Samplers.Tfds;

/// <summary>Read records [Skip, Skip+Take) of one shard file.</summary>
/// <param name="Path">Full path of the shard file.</param>
/// <param name="Split">The split the shard belongs to.</param>
/// <param name="ShardIndex">Position of the shard in the split (its <c>shardLengths</c> index).</param>
/// <param name="Skip">Records to skip (still read and CRC-checked, as TensorFlow does).</param>
/// <param name="Take">Records to deliver after skipping.</param>
/// <param name="ShardLength">Records the whole shard holds according to <c>shardLengths</c>.</param>
internal sealed record ShardInstruction(string Path, string Split, int ShardIndex, long Skip, long Take, long ShardLength)
{
    /// <summary>The <c>tfds_id</c> of the shard's record <paramref name="recordIndex"/> (counted from the file start): <c>&lt;file name&gt;__&lt;index&gt;</c>.</summary>
    public string TfdsId(long recordIndex) => System.IO.Path.GetFileName(Path) + "__" + recordIndex.ToString(System.Globalization.CultureInfo.InvariantCulture);
}

/// <summary>
/// The records a split spec selects: file instructions in spec order (index numbering follows shard concatenation)
/// and the order <c>tfds.load(shuffle_files=False)</c> emits them in.
/// </summary>
public sealed class SplitSelection
{
    private readonly Lazy<ReadBlock[]> _readOrder;

    /// <summary>The read order is planned on first use: its size follows the record counts of <c>shardLengths</c>,
    /// which the loader checks against the shard sizes first (a hostile count must not allocate here).</summary>
    internal SplitSelection(string spec, ShardInstruction[] instructions, Func<ReadBlock[]> readOrder, bool disableShuffling)
    {
        Spec = spec; Instructions = instructions; DisableShuffling = disableShuffling;
        _readOrder = new Lazy<ReadBlock[]>(readOrder, LazyThreadSafetyMode.ExecutionAndPublication);
        NumExamples = instructions.Sum(i => i.Take);
    }

    /// <summary>The split spec this was made from.</summary>
    public string Spec { get; }
    /// <summary>File instructions in spec order.</summary>
    internal IReadOnlyList<ShardInstruction> Instructions { get; }
    /// <summary>
    /// TFDS's emission order as runs of records: block b delivers records
    /// <c>Instructions[b.Instruction].Skip + b.Start</c> .. <c>+ b.Count - 1</c> of that shard.
    /// </summary>
    public IReadOnlyList<ReadBlock> ReadOrder => _readOrder.Value;
    /// <summary>True when the dataset asks for strictly sequential reading (interleave cycle 1).</summary>
    public bool DisableShuffling { get; }
    /// <summary>Total records selected: the sum of the takes.</summary>
    public long NumExamples { get; }
}
