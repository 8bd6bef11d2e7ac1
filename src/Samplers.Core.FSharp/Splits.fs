// TFDS split-spec arithmetic and read order.
// Spec: docs TFDS_FORMAT.md sections 8 (split strings, ranges, file instructions, even_splits) and 9.1 (the order
// tf.data's deterministic interleave emits records in). Mirrors TFDS `core/splits.py`, `tfrecords_reader.py` and
// `subsplits_utils.py` as described there; no code was copied. Pure: no IO, no clocks, no randomness.
// SpecFormatException sits in namespace Samplers: callers on the common path catch it with only `using Samplers;`.

namespace Samplers

open System

/// <summary>
/// A malformed specification string (a split spec such as <c>train[:10%]</c> or a dataset name such as
/// <c>mnist:3.0.1</c>), or one that does not fit the dataset. The message shows the spec and marks the position.
/// </summary>
type SpecFormatException
    /// <summary>An exception with its <paramref name="message"/>, the whole <paramref name="spec"/> and the
    /// zero-based <paramref name="position"/> of the problem (-1 for the whole spec).</summary>
    (message: string, spec: string, position: int) =
    inherit ArgumentException(message, "spec")
    /// <summary>The whole specification string.</summary>
    member _.Spec = spec
    /// <summary>Zero-based character position of the problem in <see cref="Spec"/> (-1 when it concerns the whole spec).</summary>
    member _.Position = position

namespace Samplers.Core.Tfds

open System
open System.Globalization
open System.Text
open Samplers
open Samplers.Core.Internal

/// <summary>The unit of a slice's bounds.</summary>
type SliceUnit =
    /// <summary>Example indices (<c>train[10:20]</c>).</summary>
    | Absolute = 0
    /// <summary>Percent of the split (<c>train[:10%]</c>).</summary>
    | Percent = 1
    /// <summary>Shard indices (<c>train[:2shard]</c>, <c>train[3shard]</c>).</summary>
    | Shard = 2

/// <summary>How percent bounds become example indices.</summary>
type PercentRounding =
    /// <summary>TFDS <c>closest</c> (the only one the string syntax uses): round(b*N/100) half to even.</summary>
    | Closest = 0
    /// <summary>TFDS <c>pct1_dropremainder</c>: b * trunc(N/100); needs N &gt;= 100.</summary>
    | Pct1DropRemainder = 1

/// <summary>One bound of a slice, as written. <c>IsSet</c> false means the bound was omitted.</summary>
[<Struct>]
type SliceBound =
    { /// <summary>True when the bound was given.</summary>
      IsSet: bool
      /// <summary>True when the value is a whole number (then <c>Integer</c> holds it exactly).</summary>
      IsInteger: bool
      /// <summary>The value when whole.</summary>
      Integer: int64
      /// <summary>The value as a double (fractional percents, TFDS 4.9).</summary>
      Value: float }

    /// <summary>An omitted bound.</summary>
    static member Unset = { IsSet = false; IsInteger = true; Integer = 0L; Value = 0.0 }
    /// <summary>A whole-number bound.</summary>
    static member Of(value: int64) = { IsSet = true; IsInteger = true; Integer = value; Value = float value }
    /// <summary>A fractional bound (percent only).</summary>
    static member OfFraction(value: float) = { IsSet = true; IsInteger = false; Integer = 0L; Value = value }

/// <summary>One <c>+</c>-separated part of a split spec: a split name and an optional slice.</summary>
type SplitPart =
    { /// <summary>The split name (case-sensitive), or <c>all</c>.</summary>
      Split: string
      /// <summary>The unit of the bounds.</summary>
      Unit: SliceUnit
      /// <summary>Start bound (inclusive).</summary>
      From: SliceBound
      /// <summary>End bound (exclusive).</summary>
      To: SliceBound
      /// <summary>Percent rounding.</summary>
      Rounding: PercentRounding
      /// <summary>Position of the part in the spec it was parsed from (for messages).</summary>
      Position: int }

    /// <summary>A whole split.</summary>
    static member Whole(split: string) =
        { Split = split; Unit = SliceUnit.Absolute; From = SliceBound.Unset; To = SliceBound.Unset
          Rounding = PercentRounding.Closest; Position = 0 }

/// <summary>A half-open range [From, To) of example indices in shard-concatenation order.</summary>
[<Struct>]
type SliceRange =
    { /// <summary>First index.</summary>
      From: int64
      /// <summary>One past the last index.</summary>
      To: int64 }
    /// <summary>Number of examples (0 when From &gt;= To).</summary>
    member r.Count = max 0L (r.To - r.From)

/// <summary>A split's name and the record count of each of its shards, in shard (file-sort) order.</summary>
type SplitShards =
    { /// <summary>Split name.</summary>
      Name: string
      /// <summary>Records per shard.</summary>
      ShardLengths: int64[] }

/// <summary>Read the records [Skip, Skip+Take) of one shard of one split.</summary>
type FileInstruction =
    { /// <summary>The split.</summary>
      Split: string
      /// <summary>Position of the shard in the split's shard list.</summary>
      ShardIndex: int
      /// <summary>Records to skip at the start of the shard.</summary>
      Skip: int64
      /// <summary>Records to read after skipping.</summary>
      Take: int64
      /// <summary>The shard's full record count (from <c>shardLengths</c>).</summary>
      ShardLength: int64 }

/// <summary>A run of consecutive records from one instruction in the read order.</summary>
[<Struct>]
type ReadBlock =
    { /// <summary>Index into the instruction array.</summary>
      Instruction: int
      /// <summary>First record, counted from the instruction's first taken record (add Skip for the shard index).</summary>
      Start: int64
      /// <summary>Number of records.</summary>
      Count: int }

module internal SpecText =
    /// The spec with a caret under `position`, for messages.
    let caret (spec: string) (position: int) =
        if position < 0 then $"'{spec}'"
        else $"'{spec}'\n  {spec}\n  {String(' ', position)}^ (position {position})"

    let fail (spec: string) (position: int) (what: string) : 'T =
        raise (SpecFormatException($"{what} in {caret spec position}", spec, position))

/// <summary>Parsing and arithmetic of TFDS split specs (TFDS_FORMAT.md 8).</summary>
[<AbstractClass; Sealed>]
type Splits =
    static member private ParseValue(spec: string, start: int, stop: int, allowFraction: bool) : SliceBound =
        // value := "-"? digits with single '_' between digits (Python int()); '.' only in percents (TFDS 4.9).
        let mutable i = start
        let negative = i < stop && spec[i] = '-'
        if negative then i <- i + 1
        if i >= stop then SpecText.fail spec i "expected digits"
        let sb = StringBuilder()
        let mutable seenDot = false
        let mutable prev = ' '
        while i < stop do
            let c = spec[i]
            if Char.IsAsciiDigit c then sb.Append c |> ignore
            elif c = '_' && Char.IsAsciiDigit prev && i + 1 < stop && Char.IsAsciiDigit spec[i + 1] then ()
            elif c = '.' && allowFraction && not seenDot && Char.IsAsciiDigit prev && i + 1 < stop && Char.IsAsciiDigit spec[i + 1] then
                seenDot <- true
                sb.Append c |> ignore
            elif c = '.' && not allowFraction then
                SpecText.fail spec i "a fractional bound is only allowed with '%'"
            else SpecText.fail spec i $"unexpected character '{c}' in a slice bound (expected digits, optionally '-' first)"
            prev <- c
            i <- i + 1
        let text = sb.ToString()
        if seenDot then
            let v = Double.Parse(text, CultureInfo.InvariantCulture)
            SliceBound.OfFraction(if negative then -v else v)
        else
            match Int64.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture) with
            | true, v -> SliceBound.Of(if negative then -v else v)
            | _ -> SpecText.fail spec start "slice bound is too large"

    /// Parses one bound in [start, stop): returns (bound, unit or -1 when none).
    static member private ParseBound(spec: string, start: int, stop: int) : struct (SliceBound * int) =
        if start = stop then struct (SliceBound.Unset, -1)
        elif spec[stop - 1] = '%' then struct (Splits.ParseValue(spec, start, stop - 1, true), int SliceUnit.Percent)
        elif stop - start >= 5 && String.CompareOrdinal(spec, stop - 5, "shard", 0, 5) = 0 then
            struct (Splits.ParseValue(spec, start, stop - 5, false), int SliceUnit.Shard)
        else struct (Splits.ParseValue(spec, start, stop, false), -1)

    static member private ParsePart(spec: string, start: int, stop: int) : SplitPart =
        let mutable i = start
        while i < stop && (Char.IsAsciiLetterOrDigit spec[i] || spec[i] = '_' || spec[i] = '-') do
            i <- i + 1
        if i = start then SpecText.fail spec start "expected a split name ([A-Za-z0-9_-]+)"
        let name = spec.Substring(start, i - start)
        if i = stop then SplitPart.Whole(name) |> fun p -> { p with Position = start }
        else
            if spec[i] <> '[' then SpecText.fail spec i $"unexpected character '{spec[i]}' after split name '{name}' (expected '[' or '+')"
            if spec[stop - 1] <> ']' then SpecText.fail spec (stop - 1) "expected ']' at the end of the slice"
            if name = "all" then SpecText.fail spec i "'all' cannot be sliced; slice the splits one by one"
            let open' = i + 1
            let close = stop - 1
            let colon = spec.IndexOf(':', open', close - open')
            if colon < 0 then
                // single shard: value "shard"
                let struct (b, u) = Splits.ParseBound(spec, open', close)
                if not b.IsSet then SpecText.fail spec open' "empty slice '[]'"
                if u <> int SliceUnit.Shard then
                    SpecText.fail spec open' "a single index is only allowed with 'shard' (write [a:b] for a range)"
                let toB = SliceBound.Of(b.Integer + 1L)
                { Split = name; Unit = SliceUnit.Shard; From = b; To = toB; Rounding = PercentRounding.Closest; Position = start }
            else
                if spec.IndexOf(':', colon + 1, close - colon - 1) >= 0 then
                    SpecText.fail spec (spec.IndexOf(':', colon + 1, close - colon - 1)) "a slice has one ':'"
                let struct (f, fu) = Splits.ParseBound(spec, open', colon)
                let struct (t, tu) = Splits.ParseBound(spec, colon + 1, close)
                if not f.IsSet && not t.IsSet then SpecText.fail spec open' "empty slice '[:]' (drop the brackets to take the whole split)"
                if fu >= 0 && tu >= 0 && fu <> tu then SpecText.fail spec (colon + 1) "the two bounds have different units"
                let unit = if fu >= 0 then enum<SliceUnit> fu elif tu >= 0 then enum<SliceUnit> tu else SliceUnit.Absolute
                let check (b: SliceBound) pos =
                    if b.IsSet then
                        if unit = SliceUnit.Percent && (b.Value < -100.0 || b.Value > 100.0) then
                            SpecText.fail spec pos $"percent bound {b.Value.ToString(CultureInfo.InvariantCulture)} is outside [-100, 100]"
                        if unit <> SliceUnit.Percent && not b.IsInteger then
                            SpecText.fail spec pos "a fractional bound is only allowed with '%'"
                check f open'
                check t (colon + 1)
                { Split = name; Unit = unit; From = f; To = t; Rounding = PercentRounding.Closest; Position = start }

    /// <summary>Parses a split spec (<c>train</c>, <c>train+test</c>, <c>train[:10%]</c>, <c>train[10:20]</c>,
    /// <c>test[-100:]</c>, <c>train[:50%]+test</c>, <c>train[2shard]</c>) into its parts, in order.</summary>
    /// <exception cref="SpecFormatException">The spec is malformed; the message shows it and marks the position.</exception>
    static member Parse(spec: string) : SplitPart[] =
        if isNull (box spec) then nullArg "spec"
        if spec.Length = 0 then SpecText.fail spec -1 "empty split spec"
        let parts = ResizeArray<SplitPart>()
        let mutable i = 0
        while i <= spec.Length do
            // part extends to the next '+' outside brackets, then optional whitespace around '+'
            let mutable j = i
            let mutable depth = 0
            while j < spec.Length && not (spec[j] = '+' && depth = 0) && not (depth = 0 && Char.IsWhiteSpace spec[j]) do
                if spec[j] = '[' then depth <- depth + 1
                elif spec[j] = ']' then depth <- depth - 1
                j <- j + 1
            if j = i then SpecText.fail spec i (if i < spec.Length && Char.IsWhiteSpace spec[i] then "unexpected whitespace" else "expected a split name")
            parts.Add(Splits.ParsePart(spec, i, j))
            // separator
            let mutable k = j
            while k < spec.Length && Char.IsWhiteSpace spec[k] do k <- k + 1
            if k = spec.Length then
                if k > j then SpecText.fail spec j "unexpected whitespace at the end"
                i <- spec.Length + 1
            elif spec[k] <> '+' then SpecText.fail spec k $"unexpected character '{spec[k]}' (expected '+')"
            else
                k <- k + 1
                while k < spec.Length && Char.IsWhiteSpace spec[k] do k <- k + 1
                if k = spec.Length then SpecText.fail spec k "expected a split name after '+'"
                i <- k
        parts.ToArray()

    /// <summary>A percent bound as an example index (before negative wrap-around), TFDS <c>closest</c> or <c>pct1_dropremainder</c>.</summary>
    /// <exception cref="System.ArgumentException">pct1_dropremainder on fewer than 100 examples.</exception>
    static member PercentToIndex(bound: SliceBound, numExamples: int64, rounding: PercentRounding) : int64 =
        match rounding with
        | PercentRounding.Pct1DropRemainder ->
            if numExamples < 100L then
                invalidArg "numExamples" $"pct1_dropremainder rounding needs at least 100 examples, but the split has {numExamples}; use closest rounding."
            if not bound.IsInteger then invalidArg "bound" "pct1_dropremainder rounding needs whole percents."
            bound.Integer * (numExamples / 100L)
        | _ ->
            // As Python: an int product is exact, then true division by 100; a float percent multiplies as doubles.
            let x = if bound.IsInteger then float (bound.Integer * numExamples) / 100.0 else bound.Value * float numExamples / 100.0
            int64 (Math.Round(x, MidpointRounding.ToEven))

    /// <summary>The absolute range [from, to) a part selects in a split with these shard lengths (TFDS_FORMAT.md 8.2).
    /// An empty range (From &gt;= To) is returned as is.</summary>
    /// <param name="part">The part; its <c>Split</c> is only used in messages.</param>
    /// <param name="shardLengths">Records per shard of the split.</param>
    /// <param name="spec">The whole spec, for messages (may be empty).</param>
    /// <exception cref="SpecFormatException">A bound lies outside the split.</exception>
    static member Range(part: SplitPart, shardLengths: int64[], spec: string) : SliceRange =
        if isNull (box shardLengths) then nullArg "shardLengths"
        let spec = if isNull (box spec) then part.Split else spec
        let n = Array.sum shardLengths
        let shards = shardLengths.Length
        let prefix k = Array.sum shardLengths[0 .. k - 1]
        let where = SpecText.caret spec part.Position
        let outside () : 'T =
            raise (SpecFormatException($"Requested slice of split '{part.Split}' is incompatible with {n} examples ({shards} shard(s)) in {where}", spec, part.Position))
        let struct (f, t) =
            match part.Unit with
            | SliceUnit.Shard ->
                let f = if part.From.IsSet then part.From.Integer else 0L
                let t = if part.To.IsSet then part.To.Integer else int64 shards
                if abs f > int64 shards || abs t > int64 shards then
                    raise (SpecFormatException($"Requested shard slice of split '{part.Split}' is outside its {shards} shard(s) in {where}", spec, part.Position))
                let f = if f < 0L then f + int64 shards else f
                let t = if t <= 0L then t + int64 shards else t
                struct (prefix (int f), prefix (int t))
            | SliceUnit.Percent ->
                let f = if part.From.IsSet then Splits.PercentToIndex(part.From, n, part.Rounding) else 0L
                let t = if part.To.IsSet then Splits.PercentToIndex(part.To, n, part.Rounding) else n
                struct (f, t)
            | _ ->
                struct ((if part.From.IsSet then part.From.Integer else 0L), (if part.To.IsSet then part.To.Integer else n))
        if abs f > n || abs t > n then outside ()
        let f = if f < 0L then f + n else f
        let t = if t < 0L then t + n else t
        { From = f; To = t }

    /// <summary>File instructions for a range of a split (TFDS_FORMAT.md 8.3): zero-length shards are skipped and only
    /// shards overlapping the range are listed.</summary>
    static member Instructions(split: string, shardLengths: int64[], range: SliceRange) : FileInstruction[] =
        if isNull (box shardLengths) then nullArg "shardLengths"
        let result = ResizeArray()
        let mutable s = 0L
        for i in 0 .. shardLengths.Length - 1 do
            let len = shardLengths[i]
            if len > 0L then
                let e = s + len
                if range.From < e && range.To > s then
                    let skip = max 0L (range.From - s)
                    let take = min range.To e - s - skip
                    if take > 0L then
                        result.Add { Split = split; ShardIndex = i; Skip = skip; Take = take; ShardLength = len }
                s <- e
        result.ToArray()

    /// <summary>Parses a split spec and turns it into one ordered list of file instructions over the given splits
    /// (<c>all</c> expands to every split in the given order).</summary>
    /// <param name="spec">The split spec.</param>
    /// <param name="splits">The dataset's splits in <c>dataset_info.json</c> order.</param>
    /// <exception cref="SpecFormatException">Malformed spec, unknown split (the message lists the splits), a bound
    /// outside its split, or a spec that selects no data.</exception>
    static member Resolve(spec: string, splits: SplitShards[]) : FileInstruction[] =
        if isNull (box splits) then nullArg "splits"
        let parts = Splits.Parse spec
        let names = splits |> Array.map (fun s -> s.Name)
        let result = ResizeArray()
        for p in parts do
            let expanded =
                if p.Split = "all" then splits |> Array.map (fun s -> { SplitPart.Whole(s.Name) with Position = p.Position })
                else [| p |]
            for q in expanded do
                match splits |> Array.tryFind (fun s -> s.Name = q.Split) with
                | None ->
                    let listed = String.Join(", ", names)
                    raise (SpecFormatException($"Unknown split '{q.Split}' (split names are case-sensitive; the dataset has: {listed}) in {SpecText.caret spec q.Position}", spec, q.Position))
                | Some s ->
                    let r = Splits.Range(q, s.ShardLengths, spec)
                    result.AddRange(Splits.Instructions(s.Name, s.ShardLengths, r))
        if result.Count = 0 then
            raise (SpecFormatException($"Split spec corresponds to no data: {SpecText.caret spec -1}", spec, -1))
        result.ToArray()

    /// <summary>TFDS <c>even_splits</c> (current form) of one range into <paramref name="n"/> consecutive sub-ranges:
    /// the first (Count mod n) get one extra example, or the remainder is dropped.</summary>
    /// <exception cref="System.ArgumentOutOfRangeException">n &lt; 1, or more parts than examples.</exception>
    static member EvenSplits(range: SliceRange, n: int, dropRemainder: bool) : SliceRange[] =
        if n < 1 then Guard.outOfRange "n" n "at least 1"
        let m = range.Count
        if int64 n > m then invalidArg "n" $"Cannot split {m} examples into {n} non-empty parts."
        let q = m / int64 n
        let r = m % int64 n
        Array.init n (fun i ->
            let i = int64 i
            if dropRemainder then { From = range.From + q * i; To = range.From + q * (i + 1L) }
            else { From = range.From + q * i + min i r; To = range.From + q * (i + 1L) + min (i + 1L) r })

/// <summary>The order <c>tfds.load(..., shuffle_files=False)</c> emits records in (TFDS_FORMAT.md 9.1): one
/// deterministic tf.data interleave over the file instructions.</summary>
[<AbstractClass; Sealed>]
type ReadOrder =
    /// <summary>TFDS's interleave cycle length: 16, or 1 when <c>disableShuffling</c> is set.</summary>
    static member CycleLength(disableShuffling: bool) = if disableShuffling then 1 else 16
    /// <summary>TFDS's interleave block length (16).</summary>
    static member BlockLength = 16

    /// <summary>The interleave of inputs of the given lengths as runs of records, in emission order.</summary>
    /// <param name="takes">Records of each input (the instructions' Take).</param>
    /// <param name="cycleLength">Inputs open at once (C).</param>
    /// <param name="blockLength">Records taken from an input per turn (B).</param>
    /// <remarks>An input that ends exactly at a block boundary is noticed on its next turn, which then emits nothing
    /// (as tf.data does); an emptied slot takes the next input only on its own next turn.</remarks>
    static member Interleave(takes: int64[], cycleLength: int, blockLength: int) : ReadBlock[] =
        if isNull (box takes) then nullArg "takes"
        Guard.positive "cycleLength" cycleLength
        Guard.positive "blockLength" blockLength
        let slotInput = Array.create cycleLength -1
        let slotPos = Array.zeroCreate<int64> cycleLength
        let mutable next = 0
        let mutable openCount = 0
        let blocks = ResizeArray()
        while openCount > 0 || next < takes.Length do
            for i in 0 .. cycleLength - 1 do
                let mutable go = true
                if slotInput[i] < 0 then
                    if next < takes.Length then
                        slotInput[i] <- next; slotPos[i] <- 0L; next <- next + 1; openCount <- openCount + 1
                    else go <- false
                if go then
                    let k = slotInput[i]
                    let remaining = takes[k] - slotPos[i]
                    let count = int (min (int64 blockLength) remaining)
                    if count > 0 then
                        blocks.Add { Instruction = k; Start = slotPos[i]; Count = count }
                        slotPos[i] <- slotPos[i] + int64 count
                    if count < blockLength then
                        slotInput[i] <- -1; openCount <- openCount - 1
        blocks.ToArray()

    /// <summary>The TFDS read order for these instructions, with TFDS's cycle and block lengths.</summary>
    static member Plan(instructions: FileInstruction[], disableShuffling: bool) : ReadBlock[] =
        if isNull (box instructions) then nullArg "instructions"
        ReadOrder.Interleave(instructions |> Array.map (fun i -> i.Take), ReadOrder.CycleLength disableShuffling, ReadOrder.BlockLength)
