module Samplers.Tests.Core.SplitsTests

open System
open Expecto
open FsCheck
open FsCheck.FSharp
open Samplers
open Samplers.Imaging
open Samplers.Tfds
open Samplers.Core
open Samplers.Core.Tfds
open Samplers.Tests
open Samplers.Tests.TestUtil

/// Splits like mnist: test 10,000 and train 60,000, one shard each.
let mnist = [| { Name = "train"; ShardLengths = [| 60000L |] }; { Name = "test"; ShardLengths = [| 10000L |] } |]

/// The single range a one-part spec selects in split `name` of `splits`.
let rangeOf (splits: SplitShards[]) (spec: string) =
    let part = (Splits.Parse spec)[0]
    let s = splits |> Array.find (fun s -> s.Name = part.Split)
    let r = Splits.Range(part, s.ShardLengths, spec)
    (r.From, r.To)

let specError (f: unit -> unit) (phrase: string) =
    let e = throwsWith<SpecFormatException> f phrase
    Expect.stringContains e.Message phrase "message phrase"
    e

/// (spec, test range, train range) rows of TFDS_FORMAT.md 8.4.
let table84 = [
    "X", (0L, 10000L), (0L, 60000L)
    "X[:10%]", (0L, 1000L), (0L, 6000L)
    "X[10%:20%]", (1000L, 2000L), (6000L, 12000L)
    "X[33%:67%]", (3300L, 6700L), (19800L, 40200L)
    "X[:-5%]", (0L, 9500L), (0L, 57000L)
    "X[-1%:]", (9900L, 10000L), (59400L, 60000L)
    "X[:100]", (0L, 100L), (0L, 100L)
    "X[-100:]", (9900L, 10000L), (59900L, 60000L)
    "X[100:-100]", (100L, 9900L), (100L, 59900L)
    "X[:33.3%]", (0L, 3330L), (0L, 19980L)
    "X[:12.5%]", (0L, 1250L), (0L, 7500L)
    "X[1_000:2_000]", (1000L, 2000L), (1000L, 2000L)
]

/// Expands instructions + read order into (split, shard record index) pairs, record by record.
let emitted (instructions: FileInstruction[]) (blocks: ReadBlock[]) =
    [| for b in blocks do
         let i = instructions[b.Instruction]
         for k in 0 .. b.Count - 1 -> (i.Split, i.ShardIndex, i.Skip + b.Start + int64 k) |]

/// Runs of consecutive records as (instruction, first, last) for compact comparisons.
let runs (blocks: ReadBlock[]) = blocks |> Array.map (fun b -> (b.Instruction, b.Start, b.Start + int64 b.Count - 1L)) |> List.ofArray

let parseTests =
    testList "parsing" [
        testCase "a whole split, a sum, and whitespace around '+' parse" <| fun () ->
            let parts = Splits.Parse "train + test[:10%]"
            Expect.equal (parts |> Array.map (fun p -> p.Split)) [| "train"; "test" |] "names"
            Expect.equal parts[1].Unit SliceUnit.Percent "unit"
            Expect.isFalse parts[0].From.IsSet "whole split has no bounds"
        testCase "a single shard selects [k, k+1) shards" <| fun () ->
            let p = (Splits.Parse "train[3shard]")[0]
            Expect.equal (p.Unit, p.From.Integer, p.To.Integer) (SliceUnit.Shard, 3L, 4L) "shard 3"
        testCase "unit comes from the first bound that has one" <| fun () ->
            let p = (Splits.Parse "train[:50%]")[0]
            Expect.equal p.Unit SliceUnit.Percent "to-bound unit"
        // Malformed specs: each error shows the spec and the position.
        for spec, pos, phrase in [
            "train[5]", 6, "single index is only allowed with 'shard'"
            "train[:]", 6, "empty slice"
            " train", 0, "unexpected whitespace"
            "train[10%:2000]", 10, "outside [-100, 100]"
            "train[101%:]", 6, "outside [-100, 100]"
            "all[:10%]", 3, "'all' cannot be sliced"
            "train[1__0:]", 7, "unexpected character '_'"
            "train[:10]x", 10, "expected ']'"
            "train+", 6, "expected a split name after '+'"
            "train[a:b]", 6, "unexpected character 'a'"
            "train[:1.5]", 8, "fractional bound is only allowed with '%'"
            "train[1:2:3]", 9, "one ':'"
            "train test", 6, "unexpected character 't'"
            "tr@in", 2, "after split name"
            "train[10%:20shard]", 10, "different units"
            "", -1, "empty split spec"
        ] do
            testCase $"'{spec}' is refused at position {pos}" <| fun () ->
                let e = specError (fun () -> Splits.Parse spec |> ignore) phrase
                Expect.equal e.Position pos "position"
                Expect.stringContains e.Message $"'{spec}'" "message shows the spec"
                if pos >= 0 then Expect.stringContains e.Message $"(position {pos})" "message shows the position"
                Expect.isTrue (box e :? ArgumentException) "a caller mistake is an ArgumentException"
    ]

let arithmeticTests =
    testList "ranges (TFDS_FORMAT 8.4)" [
        for spec, testR, trainR in table84 do
            testCase $"{spec} on test and train" <| fun () ->
                Expect.equal (rangeOf mnist (spec.Replace("X", "test"))) testR "test (N = 10,000)"
                Expect.equal (rangeOf mnist (spec.Replace("X", "train"))) trainR "train (N = 60,000)"
        testCase "test[:10001] is outside the split, train[:10001] is fine" <| fun () ->
            specError (fun () -> rangeOf mnist "test[:10001]" |> ignore) "incompatible with 10000 examples" |> ignore
            Expect.equal (rangeOf mnist "train[:10001]") (0L, 10001L) "train"
        testCase "X[50:10] is empty, and alone it corresponds to no data" <| fun () ->
            Expect.equal (rangeOf mnist "test[50:10]") (50L, 10L) "empty range"
            specError (fun () -> Splits.Resolve("test[50:10]", mnist) |> ignore) "corresponds to no data" |> ignore
        testCase "test[:50%]+train[50:] gives test [0,5000) then train [50,60000)" <| fun () ->
            let ins = Splits.Resolve("test[:50%]+train[50:]", mnist)
            Expect.equal (ins |> Array.map (fun i -> i.Split, i.Skip, i.Take)) [| ("test", 0L, 5000L); ("train", 50L, 59950L) |] "instructions"
            Expect.equal (ins |> Array.sumBy (fun i -> i.Take)) 64950L "64,950 examples"
            let order = emitted ins (ReadOrder.Plan(ins, false))
            Expect.equal order[0..15] [| for k in 0L .. 15L -> ("test", 0, k) |] "test 0..15 first"
            Expect.equal order[16..31] [| for k in 50L .. 65L -> ("train", 0, k) |] "then train 50..65"
        testCase "an unknown split is refused listing the splits" <| fun () ->
            let e = specError (fun () -> Splits.Resolve("Train", mnist) |> ignore) "Unknown split 'Train'"
            Expect.stringContains e.Message "train, test" "lists the splits"
        testCase "all expands to every split in order" <| fun () ->
            let ins = Splits.Resolve("all", mnist)
            Expect.equal (ins |> Array.map (fun i -> i.Split)) [| "train"; "test" |] "train then test"
        for n, pct, expected in [ 5L, 10L, 0L; 5L, 30L, 2L; 5L, 50L, 2L; 10L, 25L, 2L; 10L, 35L, 4L; 1001L, 50L, 500L; 1003L, 50L, 502L; 10050L, 33L, 3316L ] do
            testCase $"closest rounding: {pct}%% of {n} is {expected} (half to even)" <| fun () ->
                Expect.equal (Splits.PercentToIndex(SliceBound.Of pct, n, PercentRounding.Closest)) expected "closest"
                let s = [| { Name = "x"; ShardLengths = [| n |] } |]
                Expect.equal (rangeOf s $"x[:{pct}%%]") (0L, expected) "through the spec syntax"
        testCase "pct1_dropremainder: 33% of 10050 is 3300; 1% of 60000 is 600; needs 100 examples" <| fun () ->
            Expect.equal (Splits.PercentToIndex(SliceBound.Of 33L, 10050L, PercentRounding.Pct1DropRemainder)) 3300L "10050"
            Expect.equal (Splits.PercentToIndex(SliceBound.Of 1L, 60000L, PercentRounding.Pct1DropRemainder)) 600L "60000"
            throwsWith<ArgumentException> (fun () -> Splits.PercentToIndex(SliceBound.Of 1L, 99L, PercentRounding.Pct1DropRemainder) |> ignore) "N < 100"
            |> fun e -> Expect.stringContains e.Message "at least 100 examples" "message"
        testCase "tf_flowers-like train[:80%] over 2 shards of 1835" <| fun () ->
            let s = [| { Name = "train"; ShardLengths = [| 1835L; 1835L |] } |]
            let ins = Splits.Resolve("train[:80%]", s)
            Expect.equal (ins |> Array.map (fun i -> i.ShardIndex, i.Skip, i.Take)) [| (0, 0L, 1835L); (1, 0L, 1101L) |] "instructions"
        testCase "shard slices: [:0shard] is all shards, [-1shard] the last, [1:]shard-style bounds" <| fun () ->
            let s = [| { Name = "t"; ShardLengths = [| 10L; 0L; 20L; 5L |] } |]
            Expect.equal (rangeOf s "t[:0shard]") (0L, 35L) "all"
            Expect.equal (rangeOf s "t[-1shard]") (30L, 35L) "last shard"
            Expect.equal (rangeOf s "t[2shard:]") (10L, 35L) "from shard 2"
            specError (fun () -> rangeOf s "t[5shard]" |> ignore) "outside its 4 shard(s)" |> ignore
        testCase "zero-length shards are skipped in instructions" <| fun () ->
            let s = [| { Name = "t"; ShardLengths = [| 10L; 0L; 20L |] } |]
            let ins = Splits.Resolve("t[5:15]", s)
            Expect.equal (ins |> Array.map (fun i -> i.ShardIndex, i.Skip, i.Take)) [| (0, 5L, 5L); (2, 0L, 5L) |] "instructions"
    ]

let evenSplitTests =
    testList "even_splits (TFDS_FORMAT 8.5)" [
        let sizes (rs: SliceRange[]) = rs |> Array.map (fun r -> (r.From, r.To))
        testCase "10,000 in 3" <| fun () ->
            Expect.equal (sizes (Splits.EvenSplits({ From = 0L; To = 10000L }, 3, false))) [| (0L, 3334L); (3334L, 6667L); (6667L, 10000L) |] "ranges"
        testCase "10,000 in 3, drop remainder" <| fun () ->
            Expect.equal (sizes (Splits.EvenSplits({ From = 0L; To = 10000L }, 3, true))) [| (0L, 3333L); (3333L, 6666L); (6666L, 9999L) |] "ranges"
        testCase "60,000 in 3" <| fun () ->
            Expect.equal (sizes (Splits.EvenSplits({ From = 0L; To = 60000L }, 3, false))) [| (0L, 20000L); (20000L, 40000L); (40000L, 60000L) |] "ranges"
        testCase "11 in 3 has sizes 4, 4, 3; offsets follow the input range" <| fun () ->
            Expect.equal (Splits.EvenSplits({ From = 100L; To = 111L }, 3, false) |> Array.map (fun r -> r.Count)) [| 4L; 4L; 3L |] "sizes"
            Expect.equal ((Splits.EvenSplits({ From = 100L; To = 111L }, 3, false)).[0].From) 100L "starts at the range start"
        testCase "n < 1 and n > examples are refused" <| fun () ->
            throwsWith<ArgumentOutOfRangeException> (fun () -> Splits.EvenSplits({ From = 0L; To = 5L }, 0, false) |> ignore) "n = 0" |> ignore
            let e = throwsWith<ArgumentException> (fun () -> Splits.EvenSplits({ From = 0L; To = 2L }, 3, false) |> ignore) "n > M"
            Expect.stringContains e.Message "Cannot split 2 examples into 3" "message"
    ]

let readOrderTests =
    testList "read order (TFDS_FORMAT 9.2)" [
        testCase "A = 40, B = 20" <| fun () ->
            Expect.equal (runs (ReadOrder.Interleave([| 40L; 20L |], 16, 16))) [ (0, 0L, 15L); (1, 0L, 15L); (0, 16L, 31L); (1, 16L, 19L); (0, 32L, 39L) ] "order"
        testCase "18 shards of 20" <| fun () ->
            let expected =
                [ for k in 0 .. 15 -> (k, 0L, 15L) ] @ [ for k in 0 .. 15 -> (k, 16L, 19L) ]
                @ [ (16, 0L, 15L); (17, 0L, 15L); (16, 16L, 19L); (17, 16L, 19L) ]
            Expect.equal (runs (ReadOrder.Interleave(Array.create 18 20L, 16, 16))) expected "order"
        testCase "mnist train+test alternates 625 times, then train alone" <| fun () ->
            let ins = Splits.Resolve("train+test", mnist)
            let blocks = ReadOrder.Plan(ins, false)
            let expected =
                [ for j in 0L .. 624L do
                    yield (0, j * 16L, j * 16L + 15L)
                    yield (1, j * 16L, j * 16L + 15L) ]
                @ [ for j in 625L .. 3749L -> (0, j * 16L, j * 16L + 15L) ]
            Expect.equal (runs blocks) expected "order"
            Expect.equal (List.item 1249 (runs blocks)) (1, 9984L, 9999L) "last test block"
        testCase "C = 2, B = 3, lengths 5, 0, 6: the empty input costs a turn" <| fun () ->
            let e = ReadOrder.Interleave([| 5L; 0L; 6L |], 2, 3) |> Array.collect (fun b -> Array.init b.Count (fun k -> (b.Instruction, b.Start + int64 k)))
            Expect.equal e (Array.append [| for k in 0L .. 4L -> (0, k) |] [| for k in 0L .. 5L -> (2, k) |]) "order"
        testCase "an input ending exactly at a block boundary is noticed on its next turn, which emits nothing" <| fun () ->
            // C = 2, B = 2, lengths 2, 5, 2: slot 0 spends turn 2 discovering input 0 is done, so input 2 starts on turn 3.
            Expect.equal (runs (ReadOrder.Interleave([| 2L; 5L; 2L |], 2, 2))) [ (0, 0L, 1L); (1, 0L, 1L); (1, 2L, 3L); (2, 0L, 1L); (1, 4L, 4L) ] "order"
        testCase "tf_flowers train[:80%]: 68 full pairs, then a short pair, then shard 0 alone" <| fun () ->
            let s = [| { Name = "train"; ShardLengths = [| 1835L; 1835L |] } |]
            let ins = Splits.Resolve("train[:80%]", s)
            let r = runs (ReadOrder.Plan(ins, false))
            let expected =
                [ for j in 0L .. 67L do yield (0, j * 16L, j * 16L + 15L); yield (1, j * 16L, j * 16L + 15L) ]
                @ [ (0, 1088L, 1103L); (1, 1088L, 1100L) ]
                @ [ for j in 69L .. 114L -> (0, j * 16L, min (j * 16L + 15L) 1834L) ]
            Expect.equal r expected "order"
        testCase "disableShuffling reads shard by shard" <| fun () ->
            let s = [| { Name = "t"; ShardLengths = [| 20L; 20L; 3L |] } |]
            let ins = Splits.Resolve("t", s)
            let e = emitted ins (ReadOrder.Plan(ins, true))
            Expect.equal e [| for sh, n in [ 0, 20L; 1, 20L; 2, 3L ] do for k in 0L .. n - 1L -> ("t", sh, k) |] "sequential"
            Expect.equal (ReadOrder.CycleLength true, ReadOrder.CycleLength false) (1, 16) "cycle lengths"
        testCase "bad cycle or block lengths are refused" <| fun () ->
            throwsWith<ArgumentOutOfRangeException> (fun () -> ReadOrder.Interleave([| 1L |], 0, 16) |> ignore) "cycle 0" |> ignore
            throwsWith<ArgumentOutOfRangeException> (fun () -> ReadOrder.Interleave([| 1L |], 16, 0) |> ignore) "block 0" |> ignore
    ]

/// Shard lengths as TFDS datasets have them: 1 to 20 shards of 0 to 3000 records (empty shards mixed in), at least
/// one record in all.
let shardLengths (maxShards: int) (maxRecords: int) : Gen<int64[]> =
    gen {
        let! count = Gen.choose (1, maxShards)
        let! lens = Gen.arrayOfLength count (Gen.frequency [ 1, Gen.constant 0; 1, Gen.choose (1, 20); 4, Gen.choose (0, maxRecords) ])
        let lens = lens |> Array.map int64
        return if Array.sum lens = 0L then Array.append lens [| 1L |] else lens
    }

/// Two cut points in [0, n], anywhere in the split (not only below FsCheck's default size of 100).
let private cuts (n: int64) =
    Gen.frequency [ 3, Gen.choose (0, int n); 1, Gen.elements [ 0; int n ] ] |> Gen.two

let propertyTests =
    testList "properties" [
        Props.property "absolute slices [:a] [a:b] [b:] partition a split, record by record" 60 (
            let case = gen { let! lens = shardLengths 20 3000 in let! x, y = cuts (Array.sum lens) in return lens, x, y }
            Prop.forAll (Arb.fromGen case) (fun (lens, x, y) ->
                let n = Array.sum lens
                let a, b = int64 (min x y), int64 (max x y)
                let pieces = [ $"s[:{a}]"; $"s[{a}:{b}]"; $"s[{b}:]" ]
                let records =
                    pieces |> List.collect (fun spec ->
                        let part = (Splits.Parse spec)[0]
                        Splits.Instructions("s", lens, Splits.Range(part, lens, spec))
                        |> Array.toList |> List.collect (fun i -> [ for k in 0L .. i.Take - 1L -> (i.ShardIndex, i.Skip + k) ]))
                let whole = [ for i in 0 .. lens.Length - 1 do for k in 0L .. lens[i] - 1L -> (i, k) ]
                let ok = records = whole
                ok
                |> Prop.collect (Props.decade "records" n)
                |> Prop.classify (a > 100L) "a cut beyond 100"
                |> Prop.classify (a = b) "empty middle slice"
                |> Prop.classify (lens |> Array.exists ((=) 0L)) "an empty shard"))

        Props.property "percent slices of consecutive bounds tile the split" 200 (
            let case = gen { let! lens = shardLengths 20 3000 in let! cuts = Gen.listOf (Gen.choose (0, 100)) in return lens, cuts }
            Prop.forAll (Arb.fromGen case) (fun (lens, cuts) ->
                let n = Array.sum lens
                let bounds = Array.concat [ [| 0 |]; Array.ofList cuts; [| 100 |] ] |> Array.distinct |> Array.sort
                let ranges =
                    bounds |> Array.pairwise |> Array.map (fun (p, q) ->
                        let spec = $"s[{p}%%:{q}%%]"
                        let r = Splits.Range((Splits.Parse spec)[0], lens, spec)
                        (r.From, r.To))
                let ok =
                    fst ranges[0] = 0L && snd ranges[ranges.Length - 1] = n
                    && (ranges |> Array.pairwise |> Array.forall (fun ((_, t), (f, _)) -> t = f))
                    && (ranges |> Array.forall (fun (f, t) -> f <= t))
                ok
                |> Prop.collect (Props.decade "records" n)
                |> Prop.collect (Props.decade "slices" (int64 (bounds.Length - 1)))))

        Props.property "the read order emits every selected record exactly once" 60 (
            let case = gen { let! lens = shardLengths 40 600 in let! c = Gen.choose (1, 20) in return lens, c }
            Prop.forAll (Arb.fromGen case) (fun (lens, cycle) ->
                let takes = lens |> Array.map (fun l -> l * 3L)
                let blocks = ReadOrder.Interleave(takes, cycle, 16)
                let got = blocks |> Array.collect (fun b -> Array.init b.Count (fun k -> (b.Instruction, b.Start + int64 k))) |> Array.sort
                let want = [| for i in 0 .. takes.Length - 1 do for k in 0L .. takes[i] - 1L -> (i, k) |]
                let ok = got = want
                ok
                |> Prop.classify (takes.Length > cycle) "more inputs than the cycle length"
                |> Prop.classify (takes |> Array.exists (fun t -> t > 0L && t % 16L = 0L)) "an input ending on a block boundary"
                |> Prop.collect (Props.decade "records" (Array.sum takes))))

        Props.property "even_splits cover the range without gaps" 300 (
            let case = gen { let! n = Props.intSpread 1 64 in let! m = Props.intSpread 0 200000 in let! drop = Gen.elements [ false; true ] in return n, m, drop }
            Prop.forAll (Arb.fromGen case) (fun (n, m0, drop) ->
                let m = int64 m0 + int64 n
                let rs = Splits.EvenSplits({ From = 7L; To = 7L + m }, n, drop)
                let ok =
                    rs[0].From = 7L && (rs |> Array.pairwise |> Array.forall (fun (a, b) -> a.To = b.From))
                    && (if drop then rs[n - 1].To = 7L + m - m % int64 n else rs[n - 1].To = 7L + m)
                    && (rs |> Array.forall (fun r -> r.Count = m / int64 n || r.Count = m / int64 n + 1L))
                ok
                |> Prop.classify (m % int64 n = 0L) "divides evenly"
                |> Prop.classify drop "drop remainder"
                |> Prop.collect (Props.decade "examples" m)))
    ]

let nameTests =
    testList "dataset names and versions (TFDS_FORMAT 1.3, 1.4)" [
        for text, name, config, version in [
            "mnist", "mnist", "", ""
            "mnist:3.0.1", "mnist", "", "3.0.1"
            "mnist:3.*.*", "mnist", "", "3.*.*"
            "imagenette/320px-v2", "imagenette", "320px-v2", ""
            "imagenette/full-size-v2:1.0.0", "imagenette", "full-size-v2", "1.0.0"
            "cifar10:3.0.*", "cifar10", "", "3.0.*"
            "OxfordFlowers102", "oxford_flowers102", "", ""
            "MNIST", "mnist", "", ""
        ] do
            testCase $"'{text}' parses" <| fun () ->
                let n = DatasetNames.Parse text
                Expect.equal (n.Name, n.Config, n.Version) (name, config, version) "parts"
        for text, pos, phrase in [
            "mnist:3.0", 6, "three parts"
            "mnist:3.x.1", 6, "three parts"
            "mnist:03a.0.1", 6, "three parts"
            "huggingface:mnist", 0, "community namespaces"
            "mnist/a=1", 7, "keyword arguments"
            "mnist:3.0.1/extra", 11, "after the version"
            "1mnist", 0, "starts with a letter"
            "mnist/", 6, "expected a config"
            "mnist!", 5, "unexpected character '!'"
        ] do
            testCase $"'{text}' is refused at position {pos}" <| fun () ->
                let e = specError (fun () -> DatasetNames.Parse text |> ignore) phrase
                Expect.equal e.Position pos "position"
                Expect.stringContains e.Message text "message shows the name"
        testCase "version selection: the highest valid version wins" <| fun () ->
            let dirs = [| "3.0.0"; "3.0.9"; "3.0.10"; "03.0.1"; "3.0.1.incompleteAB12CD"; "latest"; "3.0" |]
            Expect.equal (DatasetNames.SelectHighest(dirs, "")) "3.0.10" "highest"
            Expect.equal (DatasetNames.SelectHighest(dirs, "3.0.*")) "3.0.10" "3.0.*"
            Expect.equal (DatasetNames.SelectHighest(dirs, "3.*.*")) "3.0.10" "3.*.*"
            Expect.equal (DatasetNames.SelectHighest(dirs, "2.*.*")) "" "2.*.* not found"
            Expect.equal (DatasetNames.SelectHighest(dirs, "3.0.5")) "" "exact 3.0.5 not found"
            Expect.equal (DatasetNames.ValidVersions dirs) [| "3.0.10"; "3.0.9"; "3.0.0" |] "valid versions, highest first"
        testCase "DatasetVersion.TryParse is an out parameter (C# 'out'; F# returns a pair) and resets it on failure" <| fun () ->
            match DatasetVersion.TryParse "3.0.10" with
            | true, v -> Expect.equal v { Major = 3; Minor = 0; Patch = 10 } "parsed"
            | false, _ -> failtest "3.0.10 is a version"
            let mutable v = { Major = 9; Minor = 9; Patch = 9 }
            Expect.isFalse (DatasetVersion.TryParse("3.0", &v)) "two parts"
            Expect.equal v Unchecked.defaultof<DatasetVersion> "reset, as .NET's TryParse does"
            Expect.isFalse (DatasetVersion.TryParse(null, &v)) "null"
            let p = typeof<DatasetVersion>.GetMethod("TryParse").GetParameters()[1]
            Expect.isTrue (p.IsOut && p.ParameterType.IsByRef) "an out parameter in IL"
    ]

[<Tests>]
let tests = testList "Core.Splits" [ parseTests; arithmeticTests; evenSplitTests; readOrderTests; propertyTests; nameTests ]
