using System.Collections;
using System.Globalization;

namespace Samplers;

/// <summary>
/// The class names "0".."N-1" of a ClassLabel without a labels file, made on demand: <c>numClasses</c> comes from
/// metadata, so a list of N strings made up front would let a hostile count (10^8) take gigabytes before any data is
/// read. Immutable and thread-safe.
/// </summary>
internal sealed class NumberedClassNames : IReadOnlyList<string>
{
    /// <summary>Names "0".."<paramref name="count"/>-1".</summary>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="count"/> is negative.</exception>
    public NumberedClassNames(int count)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(count);
        Count = count;
    }

    /// <summary>Number of classes.</summary>
    public int Count { get; }

    /// <summary>The name of class <paramref name="index"/>: the index in decimal.</summary>
    public string this[int index] => (uint)index < (uint)Count
        ? index.ToString(CultureInfo.InvariantCulture)
        : throw new ArgumentOutOfRangeException(nameof(index), index, $"index must be in [0, {Count}).");

    /// <summary>The names in order.</summary>
    public IEnumerator<string> GetEnumerator()
    {
        for (int i = 0; i < Count; i++) yield return i.ToString(CultureInfo.InvariantCulture);
    }

    IEnumerator IEnumerable.GetEnumerator() => GetEnumerator();
}
