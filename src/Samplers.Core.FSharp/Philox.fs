namespace Samplers.Core

// Philox4x32-10 (Salmon, Moraes, Dror, Shaw, "Parallel random numbers: as easy as 1, 2, 3", SC'11).
// Counter-based: every 128-bit output block is a pure function of (key, counter), so any draw of any batch can be
// computed directly, in any order, on any thread. Checked against the Random123 known-answer vectors in the tests.
// The key/counter layout used by the planner is documented in docs/DETERMINISM.md.

open System

/// <summary>What a stream of random words is used for. The values are frozen: they are part of the counter of every
/// draw, so changing one changes plans (and needs a PlanVersion bump).</summary>
type Purpose =
    /// <summary>Free for callers (e.g. augmentation, or the MathNet adapter in Samplers.Core.MathNet); never used by plans.</summary>
    | User = 0
    /// <summary>Independent mode: the classes of a batch.</summary>
    | ClassChoice = 1
    /// <summary>Independent mode: the examples of one class slot of a batch.</summary>
    | ExampleChoice = 2
    /// <summary>Coverage mode: the per-round permutation of the classes.</summary>
    | ClassPermutation = 3
    /// <summary>Coverage mode: the permutation that supplies a class round's extra slots.</summary>
    | ClassExtras = 4
    /// <summary>Coverage mode: the per-round permutation of one class's examples.</summary>
    | ExamplePermutation = 5
    /// <summary>Coverage mode: the permutation that supplies the extra slots of one class's example rounds.</summary>
    | ExampleExtras = 6
    /// <summary>Coverage mode: with-replacement draws for a class with fewer examples than requested.</summary>
    | ExampleReplacement = 7
    /// <summary>ClassIndex.Select: the kept subset of each class (total_examples_per_class).</summary>
    | Selection = 8
    /// <summary>Image augmenters: every random choice for one view of one row of a batch (never used by plans).</summary>
    | Augmentation = 9

/// <summary>The Philox4x32-10 block function.</summary>
[<AbstractClass; Sealed>]
type Philox =
    static member inline internal MulHi(a: uint32, b: uint32) = uint32 ((uint64 a * uint64 b) >>> 32)

    /// <summary>Philox4x32 with <paramref name="rounds"/> rounds (10 is the standard; 7 is only for known-answer checks).</summary>
    static member internal Rounds(rounds: int, k0: uint32, k1: uint32, c0: uint32, c1: uint32, c2: uint32, c3: uint32) : struct (uint32 * uint32 * uint32 * uint32) =
        let mutable k0 = k0
        let mutable k1 = k1
        let mutable x0 = c0
        let mutable x1 = c1
        let mutable x2 = c2
        let mutable x3 = c3
        for r in 0 .. rounds - 1 do
            if r > 0 then
                // Key schedule: Weyl sequence with the golden-ratio and sqrt(3)-1 constants.
                k0 <- k0 + 0x9E3779B9u
                k1 <- k1 + 0xBB67AE85u
            let p0 = uint64 0xD2511F53u * uint64 x0
            let p1 = uint64 0xCD9E8D57u * uint64 x2
            let y0 = uint32 (p1 >>> 32) ^^^ x1 ^^^ k0
            let y1 = uint32 p1
            let y2 = uint32 (p0 >>> 32) ^^^ x3 ^^^ k1
            let y3 = uint32 p0
            x0 <- y0; x1 <- y1; x2 <- y2; x3 <- y3
        struct (x0, x1, x2, x3)

    /// <summary>Philox4x32-10, unrolled (the hot path of every draw).</summary>
    static member internal Ten(k0: uint32, k1: uint32, c0: uint32, c1: uint32, c2: uint32, c3: uint32) : struct (uint32 * uint32 * uint32 * uint32) =
        let mutable x0 = c0
        let mutable x1 = c1
        let mutable x2 = c2
        let mutable x3 = c3
        let mutable p0 = 0UL
        let mutable p1 = 0UL
        p0 <- uint64 0xD2511F53u * uint64 x0
        p1 <- uint64 0xCD9E8D57u * uint64 x2
        x0 <- uint32 (p1 >>> 32) ^^^ x1 ^^^ k0
        x2 <- uint32 (p0 >>> 32) ^^^ x3 ^^^ k1
        x1 <- uint32 p1
        x3 <- uint32 p0
        p0 <- uint64 0xD2511F53u * uint64 x0
        p1 <- uint64 0xCD9E8D57u * uint64 x2
        x0 <- uint32 (p1 >>> 32) ^^^ x1 ^^^ (k0 + 0x9e3779b9u)
        x2 <- uint32 (p0 >>> 32) ^^^ x3 ^^^ (k1 + 0xbb67ae85u)
        x1 <- uint32 p1
        x3 <- uint32 p0
        p0 <- uint64 0xD2511F53u * uint64 x0
        p1 <- uint64 0xCD9E8D57u * uint64 x2
        x0 <- uint32 (p1 >>> 32) ^^^ x1 ^^^ (k0 + 0x3c6ef372u)
        x2 <- uint32 (p0 >>> 32) ^^^ x3 ^^^ (k1 + 0x76cf5d0au)
        x1 <- uint32 p1
        x3 <- uint32 p0
        p0 <- uint64 0xD2511F53u * uint64 x0
        p1 <- uint64 0xCD9E8D57u * uint64 x2
        x0 <- uint32 (p1 >>> 32) ^^^ x1 ^^^ (k0 + 0xdaa66d2bu)
        x2 <- uint32 (p0 >>> 32) ^^^ x3 ^^^ (k1 + 0x32370b8fu)
        x1 <- uint32 p1
        x3 <- uint32 p0
        p0 <- uint64 0xD2511F53u * uint64 x0
        p1 <- uint64 0xCD9E8D57u * uint64 x2
        x0 <- uint32 (p1 >>> 32) ^^^ x1 ^^^ (k0 + 0x78dde6e4u)
        x2 <- uint32 (p0 >>> 32) ^^^ x3 ^^^ (k1 + 0xed9eba14u)
        x1 <- uint32 p1
        x3 <- uint32 p0
        p0 <- uint64 0xD2511F53u * uint64 x0
        p1 <- uint64 0xCD9E8D57u * uint64 x2
        x0 <- uint32 (p1 >>> 32) ^^^ x1 ^^^ (k0 + 0x1715609du)
        x2 <- uint32 (p0 >>> 32) ^^^ x3 ^^^ (k1 + 0xa9066899u)
        x1 <- uint32 p1
        x3 <- uint32 p0
        p0 <- uint64 0xD2511F53u * uint64 x0
        p1 <- uint64 0xCD9E8D57u * uint64 x2
        x0 <- uint32 (p1 >>> 32) ^^^ x1 ^^^ (k0 + 0xb54cda56u)
        x2 <- uint32 (p0 >>> 32) ^^^ x3 ^^^ (k1 + 0x646e171eu)
        x1 <- uint32 p1
        x3 <- uint32 p0
        p0 <- uint64 0xD2511F53u * uint64 x0
        p1 <- uint64 0xCD9E8D57u * uint64 x2
        x0 <- uint32 (p1 >>> 32) ^^^ x1 ^^^ (k0 + 0x5384540fu)
        x2 <- uint32 (p0 >>> 32) ^^^ x3 ^^^ (k1 + 0x1fd5c5a3u)
        x1 <- uint32 p1
        x3 <- uint32 p0
        p0 <- uint64 0xD2511F53u * uint64 x0
        p1 <- uint64 0xCD9E8D57u * uint64 x2
        x0 <- uint32 (p1 >>> 32) ^^^ x1 ^^^ (k0 + 0xf1bbcdc8u)
        x2 <- uint32 (p0 >>> 32) ^^^ x3 ^^^ (k1 + 0xdb3d7428u)
        x1 <- uint32 p1
        x3 <- uint32 p0
        p0 <- uint64 0xD2511F53u * uint64 x0
        p1 <- uint64 0xCD9E8D57u * uint64 x2
        x0 <- uint32 (p1 >>> 32) ^^^ x1 ^^^ (k0 + 0x8ff34781u)
        x2 <- uint32 (p0 >>> 32) ^^^ x3 ^^^ (k1 + 0x96a522adu)
        x1 <- uint32 p1
        x3 <- uint32 p0
        struct (x0, x1, x2, x3)

    /// <summary>Encrypts the 128-bit <paramref name="counter"/> (4 words) under the 64-bit <paramref name="key"/>
    /// (2 words) and writes the 4 output words into <paramref name="output"/>.</summary>
    /// <exception cref="System.ArgumentException">A span has the wrong length.</exception>
    static member Block(counter: ReadOnlySpan<uint32>, key: ReadOnlySpan<uint32>, output: Span<uint32>) : unit =
        if counter.Length <> 4 then invalidArg "counter" $"counter must hold 4 words, but held {counter.Length}."
        if key.Length <> 2 then invalidArg "key" $"key must hold 2 words, but held {key.Length}."
        if output.Length < 4 then invalidArg "output" $"output must hold at least 4 words, but held {output.Length}."
        let struct (a, b, c, d) = Philox.Ten(key[0], key[1], counter[0], counter[1], counter[2], counter[3])
        output[0] <- a; output[1] <- b; output[2] <- c; output[3] <- d

/// <summary>
/// A stream of 32-bit random words: word w is word (w mod 4) of the Philox4x32-10 block with
/// key = (seed low 32, seed high 32) and counter = (w / 4, purpose &lt;&lt; 24 | lane, stream low 32, stream high 32).
/// </summary>
/// <remarks>A mutable struct: keep it in a local (<c>let mutable</c>) or pass it by reference; copying it forks the stream.</remarks>
[<Struct; NoEquality; NoComparison>]
type PhiloxStream =
    val mutable private k0: uint32
    val mutable private k1: uint32
    val mutable private c1: uint32
    val mutable private c2: uint32
    val mutable private c3: uint32
    val mutable private block: uint32
    val mutable private pos: int
    val mutable private w0: uint32
    val mutable private w1: uint32
    val mutable private w2: uint32
    val mutable private w3: uint32

    /// <summary>The stream (seed, purpose, lane, stream), positioned at word 0.</summary>
    /// <exception cref="System.ArgumentOutOfRangeException">lane is outside [0, 2^24).</exception>
    new(seed: uint64, purpose: Purpose, lane: int, stream: uint64) =
        if lane < 0 || lane > 0xFFFFFF then
            raise (ArgumentOutOfRangeException("lane", lane, $"lane must be in [0, 16777215] (24 bits), but was {lane}."))
        { k0 = uint32 seed; k1 = uint32 (seed >>> 32)
          c1 = (uint32 (byte purpose) <<< 24) ||| uint32 lane
          c2 = uint32 stream; c3 = uint32 (stream >>> 32)
          block = 0u; pos = 4; w0 = 0u; w1 = 0u; w2 = 0u; w3 = 0u }

    /// <summary>The next 32-bit word.</summary>
    member s.NextUInt32() : uint32 =
        if s.pos = 4 then
            let struct (a, b, c, d) = Philox.Ten(s.k0, s.k1, s.block, s.c1, s.c2, s.c3)
            s.w0 <- a; s.w1 <- b; s.w2 <- c; s.w3 <- d
            s.block <- s.block + 1u
            s.pos <- 0
        let p = s.pos
        s.pos <- p + 1
        match p with
        | 0 -> s.w0
        | 1 -> s.w1
        | 2 -> s.w2
        | _ -> s.w3

    /// <summary>A uniform integer in [0, <paramref name="bound"/>), without modulo bias (Lemire's multiply-and-reject, integer arithmetic only).</summary>
    /// <exception cref="System.ArgumentOutOfRangeException">bound is less than 1.</exception>
    member s.NextBounded(bound: int) : int =
        if bound < 1 then raise (ArgumentOutOfRangeException("bound", bound, $"bound must be at least 1, but was {bound}."))
        let b = uint64 bound
        let mutable m = uint64 (s.NextUInt32()) * b
        if uint32 m < uint32 bound then
            // Threshold 2^32 mod bound: low words below it belong to an incomplete final stripe and are rejected.
            let t = (0x1_0000_0000UL - b) % b
            while (m &&& 0xFFFFFFFFUL) < t do
                m <- uint64 (s.NextUInt32()) * b
        int (m >>> 32)

    /// <summary>A uniform double in [0, 1) with 53 random bits.</summary>
    member s.NextDouble() : float =
        let a = uint64 (s.NextUInt32() >>> 5)
        let b = uint64 (s.NextUInt32() >>> 6)
        float ((a <<< 26) ||| b) * (1.0 / 9007199254740992.0)
