namespace Samplers.Core.Statistics

// The MathNet.Numerics adapter: its own assembly, so the planner's assembly (Samplers.Core) depends on nothing but
// FSharp.Core, and only callers who want MathNet distributions take MathNet.

open Samplers.Core
open MathNet.Numerics.Random

/// <summary>
/// A MathNet.Numerics <c>RandomSource</c> over a <see cref="PhiloxStream"/>, so MathNet distributions can draw from
/// a reproducible, counter-based source (e.g. for augmentation). Not thread-safe (threadSafe = false): use one per thread.
/// </summary>
/// <remarks>The raw words are covered by our determinism promise; how MathNet turns them into integers or
/// distribution samples is MathNet's code and may change between its versions, so it is outside the promise.
/// Plans never use this class.</remarks>
[<Sealed>]
type PhiloxRandomSource
    /// <summary>A source over the Philox stream (seed, purpose, lane, stream); see <see cref="PhiloxStream"/>.</summary>
    /// <exception cref="System.ArgumentOutOfRangeException">lane is outside [0, 2^24).</exception>
    (seed: uint64, purpose: Purpose, lane: int, stream: uint64) =
    inherit RandomSource(false)
    let mutable s = PhiloxStream(seed, purpose, lane, stream)

    /// <summary>A source for a caller stream: purpose User, lane 0.</summary>
    new(seed: uint64, stream: uint64) = PhiloxRandomSource(seed, Purpose.User, 0, stream)

    /// <summary>A double in [0, 1) from 53 bits of two words.</summary>
    override _.DoSample() = s.NextDouble()
    /// <summary>A non-negative int from the top 31 bits of one word.</summary>
    override _.DoSampleInteger() = int (s.NextUInt32() >>> 1)
