namespace Samplers.Core

// Sampling primitives over a PhiloxStream: bounded integers (Lemire), k distinct of n (Floyd), draws with
// replacement, Fisher-Yates shuffles and keyed permutations of any n with O(1) access (Feistel + cycle walking).
// None of them allocates: membership checks scan for small k and use a caller-supplied hash table beyond.

open System
open System.Numerics

/// <summary>
/// A keyed pseudo-random permutation of [0, n): position i maps to item <c>Apply(i)</c> in O(1) expected time,
/// and <c>Inverse</c> undoes it. A 6-round Feistel network on the smallest number of bits b covering n (halves of
/// floor(b/2) and ceil(b/2) bits, which swap widths each round), with cycle walking (re-apply until the value falls
/// below n), so it is a bijection on [0, n) for any n and needs fewer than 2 steps on average.
/// </summary>
[<Struct; NoEquality; NoComparison>]
type FeistelPermutation =
    val private n: int
    val private wa: int
    val private wb: int
    val private k0: uint32
    val private k1: uint32
    val private k2: uint32
    val private k3: uint32

    /// <summary>The permutation of [0, <paramref name="n"/>) keyed by the next four words of <paramref name="stream"/>.</summary>
    /// <exception cref="System.ArgumentOutOfRangeException">n is less than 1.</exception>
    new(n: int, stream: byref<PhiloxStream>) =
        if n < 1 then raise (ArgumentOutOfRangeException("n", n, $"n must be at least 1, but was {n}."))
        let bits = if n <= 2 then 1 else 32 - BitOperations.LeadingZeroCount(uint32 (n - 1))
        let a = stream.NextUInt32()
        let b = stream.NextUInt32()
        let c = stream.NextUInt32()
        let d = stream.NextUInt32()
        { n = n; wa = bits / 2; wb = bits - bits / 2; k0 = a; k1 = b; k2 = c; k3 = d }

    /// <summary>The size of the permuted range.</summary>
    member p.Count = p.n

    member inline private p.F(round: int, x: uint32) : uint32 =
        // Round function: key word + round constant, then a murmur3-style finalizer (full avalanche on 32 bits).
        let k = match round &&& 3 with 0 -> p.k0 | 1 -> p.k1 | 2 -> p.k2 | _ -> p.k3
        let mutable h = x * 0x9E3779B1u + k + uint32 round * 0x85EBCA77u
        h <- h ^^^ (h >>> 16)
        h <- h * 0x85EBCA6Bu
        h <- h ^^^ (h >>> 13)
        h <- h * 0xC2B2AE35u
        h <- h ^^^ (h >>> 16)
        h

    member private p.Forward(x: uint32) : uint32 =
        // (left: wa bits, right: wb bits); each round the halves swap roles and widths; 6 rounds restore them.
        let mutable lw = p.wa
        let mutable rw = p.wb
        let mutable l = x >>> rw
        let mutable r = x &&& ((1u <<< rw) - 1u)
        for round in 0 .. 5 do
            let nr = (l ^^^ p.F(round, r)) &&& ((1u <<< lw) - 1u)
            l <- r
            r <- nr
            let t = lw
            lw <- rw
            rw <- t
        (l <<< rw) ||| r

    member private p.Backward(x: uint32) : uint32 =
        let mutable lw = p.wa
        let mutable rw = p.wb
        let mutable l = x >>> rw
        let mutable r = x &&& ((1u <<< rw) - 1u)
        for round in 5 .. -1 .. 0 do
            // Undo: l came from the previous right half, r = previous left xor F(previous right).
            let pl = (r ^^^ p.F(round, l)) &&& ((1u <<< rw) - 1u)
            r <- l
            l <- pl
            let t = lw
            lw <- rw
            rw <- t
        (l <<< rw) ||| r

    /// <summary>The item at position <paramref name="i"/> (i in [0, Count)).</summary>
    member p.Apply(i: int) : int =
        let mutable x = p.Forward(uint32 i)
        while x >= uint32 p.n do x <- p.Forward x
        int x

    /// <summary>The position of item <paramref name="item"/>: <c>Inverse(Apply(i)) = i</c>.</summary>
    member p.Inverse(item: int) : int =
        let mutable x = p.Backward(uint32 item)
        while x >= uint32 p.n do x <- p.Backward x
        int x

/// <summary>Allocation-free sampling primitives over a <see cref="PhiloxStream"/>.</summary>
[<AbstractClass; Sealed>]
type Sampling =
    /// <summary>Up to this many chosen values, membership is checked by scanning; beyond, by a hash table in scratch.</summary>
    static member ScanLimit = 12

    /// <summary>The scratch length Floyd needs for k values: 0 up to <see cref="ScanLimit"/>, else a power of two >= 2k.</summary>
    static member ScratchLength(k: int) : int =
        if k <= Sampling.ScanLimit then 0 else int (BitOperations.RoundUpToPowerOf2(uint32 (2 * k)))

    /// <summary>One step of Lemire's method on a <paramref name="bits"/>-bit word <paramref name="word"/> for range
    /// [0, <paramref name="bound"/>): the value, or -1 when the word must be rejected. Exposed so tests can count
    /// every word of a reduced width and check exact uniformity.</summary>
    static member internal LemireStep(bits: int, bound: uint32, word: uint64) : int64 =
        let full = 1UL <<< bits
        let m = word * uint64 bound
        let low = m &&& (full - 1UL)
        if low < uint64 bound && low < (full - uint64 bound) % uint64 bound then -1L
        else int64 (m >>> bits)

    /// <summary>Adds v to an open-addressing set (power-of-two table, v + 1 stored, 0 = empty); false when already present.</summary>
    static member internal Insert(table: Span<int>, v: int) : bool =
        let mask = table.Length - 1
        let shift = 32 - BitOperations.Log2(uint32 table.Length)
        let mutable slot = int ((uint32 v * 0x9E3779B1u) >>> shift) &&& mask
        let mutable result = 0 // 0 pending, 1 inserted, 2 present
        while result = 0 do
            let cur = table[slot]
            if cur = 0 then
                table[slot] <- v + 1
                result <- 1
            elif cur = v + 1 then result <- 2
            else slot <- (slot + 1) &&& mask
        result = 1

    /// <summary>True when v is in the set built by Insert.</summary>
    static member internal Contains(table: ReadOnlySpan<int>, v: int) : bool =
        let mask = table.Length - 1
        let shift = 32 - BitOperations.Log2(uint32 table.Length)
        let mutable slot = int ((uint32 v * 0x9E3779B1u) >>> shift) &&& mask
        let mutable result = 0
        while result = 0 do
            let cur = table[slot]
            if cur = 0 then result <- 2
            elif cur = v + 1 then result <- 1
            else slot <- (slot + 1) &&& mask
        result = 1

    /// <summary>Writes <paramref name="k"/> distinct values of [0, <paramref name="n"/>) into
    /// <paramref name="destination"/>[0..k) (Floyd's algorithm: O(k) draws, time and memory). The set is uniform;
    /// the order is not (shuffle for a uniform order).</summary>
    /// <remarks><paramref name="scratch"/> needs at least <see cref="ScratchLength"/>(k) ints; it is a hash table when k exceeds ScanLimit.</remarks>
    /// <exception cref="System.ArgumentOutOfRangeException">k outside [0, n], or a span too short.</exception>
    static member Floyd(stream: byref<PhiloxStream>, n: int, k: int, destination: Span<int>, scratch: Span<int>) : unit =
        if k < 0 || k > n then raise (ArgumentOutOfRangeException("k", k, $"k must be in [0, n] = [0, {n}], but was {k}."))
        if destination.Length < k then raise (ArgumentOutOfRangeException("destination", destination.Length, $"destination must hold k = {k} values, but holds {destination.Length}."))
        let need = Sampling.ScratchLength k
        if scratch.Length < need then raise (ArgumentOutOfRangeException("scratch", scratch.Length, $"scratch must hold {need} ints for k = {k}, but holds {scratch.Length}."))
        if need = 0 then
            let mutable count = 0
            for j in n - k .. n - 1 do
                let t = stream.NextBounded(j + 1)
                let mutable found = false
                let mutable q = 0
                while not found && q < count do
                    if destination[q] = t then found <- true
                    q <- q + 1
                destination[count] <- (if found then j else t)
                count <- count + 1
        else
            // Open addressing, value + 1 stored (0 = empty); size >= 2k keeps probes short.
            let table = scratch.Slice(0, need)
            table.Clear()
            let mutable count = 0
            for j in n - k .. n - 1 do
                let t = stream.NextBounded(j + 1)
                if Sampling.Insert(table, t) then destination[count] <- t
                else
                    Sampling.Insert(table, j) |> ignore
                    destination[count] <- j
                count <- count + 1

    /// <summary>Shuffles <paramref name="values"/> in place (Fisher-Yates, uniform over all orders).</summary>
    static member Shuffle(stream: byref<PhiloxStream>, values: Span<int>) : unit =
        for i in values.Length - 1 .. -1 .. 1 do
            let j = stream.NextBounded(i + 1)
            let t = values[i]
            values[i] <- values[j]
            values[j] <- t

    /// <summary>Fills <paramref name="destination"/> with independent uniform values of [0, <paramref name="n"/>) (with replacement).</summary>
    static member WithReplacement(stream: byref<PhiloxStream>, n: int, destination: Span<int>) : unit =
        for i in 0 .. destination.Length - 1 do
            destination[i] <- stream.NextBounded n
