/// tools/Samplers.DatasetGen `synthetic`: large benchmark datasets written shard by shard, loaded back by TfdsLoader.
module Samplers.Tests.Io.SyntheticGenTests

open System
open System.IO
open Expecto
open Samplers
open Samplers.Imaging
open Samplers.DatasetGen
open Samplers.Tfds
open Samplers.Tests.TestUtil
open Samplers.Tests.Io.LoaderTests

let private parse (args: string list) = SyntheticLarge.Parse(List.toArray args)

let private generateAndLoad (format: string) =
    use tmp = new TempDir()
    let data = Path.Combine(tmp.Path, "data")
    let o = parse [ data; "--examples"; "200"; "--shape"; "8x6x3"; "--classes"; "3"; "--shards"; "3"; "--seed"; "7"
                    "--format"; format; "--name"; "gen_" + format; "--test"; "5" ]
    let vdir = SyntheticLarge.Write o
    let shards = Directory.GetFiles(vdir, "*-train.tfrecord-*") |> Array.map Path.GetFileName |> Array.sort
    Expect.equal shards [| for i in 0 .. 2 -> $"gen_{format}-train.tfrecord-0000{i}-of-00003" |] "three train shards"
    Expect.equal [| for f in Array.sort (Directory.GetFiles(vdir, "*-train.tfrecord-*")) -> (TfRecordReader.ReadAllRecords f).Count |] [| 67; 67; 66 |] "shard lengths"
    let r = load (options data ("gen_" + format) [ "train" ] (Path.Combine(tmp.Path, "cache")))
    let t = r.Table
    Expect.equal t.Count 200 "count"
    Expect.equal (t.ExampleShape.ToArray()) [| 8; 6; 3 |] "shape"
    Expect.equal [| for c in t.ClassCounts() -> c.Label, c.Count |] [| 0L, 67; 1L, 67; 2L, 66 |] "class balance"
    // The loader reads shards interleaved as TFDS does, so compare (label, pixels) pairs as multisets.
    let expected = List.sort [ for i in 0 .. 199 -> int64 (i % 3), Convert.ToHexString(SyntheticLarge.Pixels(8, 6, 3, i % 3, 7UL, i)) ]
    let labels = t.Labels.ToArray()
    let actual = List.sort [ for row in 0 .. t.Count - 1 -> labels[row], Convert.ToHexString(t.GetExample(row).ToArray()) ]
    Expect.equal actual expected "every generated (label, pixels) exactly once"
    let test = load (options data ("gen_" + format) [ "test" ] (Path.Combine(tmp.Path, "cache")))
    Expect.equal test.Table.Count 5 "test split"
    Expect.notEqual (test.Table.GetExample(0).ToArray()) (t.GetExample(0).ToArray()) "test content differs from train"

[<Tests>]
let tests =
    testList "Io.SyntheticGen" [
        testCase "PNG set: 200 examples 8x6x3 in 3 shards loads with its labels, shape, count and balance" <| fun () -> generateAndLoad "png"
        testCase "tensor set: the same through a raw uint8 Tensor feature" <| fun () -> generateAndLoad "tensor"

        testCase "a streamed split enumerates each shard once, in order, and records its lengths" <| fun () ->
            use tmp = new TempDir()
            let w = TfdsDatasetWriter(Path.Combine(tmp.Path, "s", "1.0.0"), "s", "1.0.0", [ SyntheticDigits.ImageSpec; SyntheticDigits.LabelSpec ])
            let asked = ResizeArray<int>()
            let paths = w.WriteSplitStreamed("train", 3, fun s -> asked.Add s; seq { for i in 0 .. s -> [| byte i |] })
            Expect.equal (List.ofSeq asked) [ 0; 1; 2 ] "each shard asked once, in order"
            Expect.equal [ for p in paths -> (TfRecordReader.ReadAllRecords p).Count ] [ 1; 2; 3 ] "records per shard"
            let info = Text.Encoding.UTF8.GetString(w.DatasetInfoJson())
            Expect.stringContains info "\"numBytes\": \"6\"" "bytes counted while streaming"
            Expect.throws (fun () -> w.WriteSplitStreamed("train", 1, fun _ -> Seq.empty) |> ignore) "a split is written once"

        testCase "bad arguments are one-line usage errors naming the option" <| fun () ->
            let msg (args: string list) =
                try parse args |> ignore; failtest $"accepted {args}" with :? ArgumentException as e -> e.Message
            let ok = [ "d"; "--examples"; "10"; "--shape"; "4x4x3"; "--classes"; "2" ]
            Expect.equal (parse ok) (SyntheticOptions("d", 10, 4, 4, 3, 2)) "defaults"
            for args, expected in
                [ [ "--examples"; "10"; "--shape"; "4x4x3"; "--classes"; "2" ], "missing <data dir>"
                  [ "d"; "--shape"; "4x4x3"; "--classes"; "2" ], "missing --examples"
                  [ "d"; "--examples"; "10"; "--classes"; "2" ], "missing --shape"
                  [ "d"; "--examples"; "10"; "--shape"; "4x4x3" ], "missing --classes"
                  ok @ [ "--examples"; "0" ], "--examples: expected an integer >= 1, found '0'"
                  ok @ [ "--shape"; "4x4" ], "--shape: expected HxWxC"
                  ok @ [ "--shape"; "4x4x2" ], "PNG needs 1, 3 or 4 channels"
                  ok @ [ "--format"; "jpeg" ], "--format: expected png or tensor, found 'jpeg'"
                  ok @ [ "--name"; "Bad/Name" ], "--name: expected lower-case"
                  ok @ [ "--seed"; "-1" ], "--seed: expected a non-negative integer"
                  ok @ [ "--bogus"; "1" ], "unknown option '--bogus'"
                  ok @ [ "--shards" ], "--shards needs a value"
                  ok @ [ "extra" ], "unexpected argument 'extra'" ] do
                let m = msg args
                Expect.stringContains m expected $"{args}"
                Expect.isFalse (m.Contains '\n') "one line"
            Expect.equal (parse (ok @ [ "--shape"; "4x4x2"; "--format"; "tensor" ])).Channels 2 "any channel count as a tensor"

        // Sequenced: it swaps Console.Error, which other tests may also write to.
        testSequenced <| testCase "the tool exits 2 on a bad argument, writing nothing" (fun () ->
            use tmp = new TempDir()
            let main = typeof<SyntheticOptions>.Assembly.EntryPoint
            let err = Console.Error
            let captured = new StringWriter()
            Console.SetError captured
            let rc =
                try main.Invoke(null, [| box [| "synthetic"; tmp.Path; "--examples"; "ten"; "--shape"; "4x4x3"; "--classes"; "2" |] |]) :?> int
                finally Console.SetError err
            Expect.equal rc 2 "exit code"
            Expect.stringContains (captured.ToString()) "--examples: expected an integer >= 1, found 'ten'" "message"
            Expect.isEmpty (Directory.GetFileSystemEntries tmp.Path) "nothing written")
    ]
