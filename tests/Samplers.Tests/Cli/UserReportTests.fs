/// What a new user hit first: progress with --json, data-error hints, full grid captions, info on a
/// dataset with a split's shard files missing.
module Samplers.Tests.Cli.UserReportTests

open System
open System.IO
open System.Net
open System.Net.Sockets
open System.Text.RegularExpressions
open Expecto
open Samplers
open Samplers.Cli
open Samplers.Imaging
open Samplers.Tfds
open Samplers.Tests.TestUtil
open Samplers.Tests.Cli.CliTests

/// How often `part` occurs in `text` (ordinal, case-insensitive).
let count (text: string) (part: string) = Regex.Matches(text, Regex.Escape part, RegexOptions.IgnoreCase).Count

/// A loopback port nothing listens on: connections to it are refused at once.
let closedPort () =
    let l = new TcpListener(IPAddress.Loopback, 0)
    l.Start()
    let port = (l.LocalEndpoint :?> IPEndPoint).Port
    l.Stop()
    port

// ---------- 1. progress goes to stderr with --json; --quiet silences it ----------

let progressTests =
    testList "progress with --json" [
        testCase "run --json: stdout is the JSON document alone, progress and status lines go to stderr; --quiet empties stderr" <| fun () ->
            withFixture <| fun data ->
                let args = [ "run"; "tiny"; "--data-dir"; data; "--cache-dir"; data + "-cache"; "-c"; "3"; "-s"; "20"; "--json" ]
                let code, out, err = cli args
                Expect.equal code 0 $"exit 0: {err}"
                Expect.equal (lines out).Length 1 "one line on stdout"
                Expect.equal ((json out).GetProperty("batches").GetInt32()) 20 "stdout parses as the report"
                let errs = errLines err
                Expect.contains errs "loading tiny: 0/80" "load progress on stderr"
                Expect.contains errs "loading tiny: 80/80" "load progress to the end"
                Expect.contains errs "sampling: 20/20" "sampling progress on stderr"
                Expect.isTrue (errs |> List.exists (fun l -> l.StartsWith "loaded tiny:1.0.0: 80 examples")) $"the status line: {err}"
                let code, out, err = cli (args @ [ "--quiet" ])
                Expect.equal code 0 "exit 0 with --quiet"
                Expect.equal err "" "nothing on stderr with --quiet"
                Expect.equal ((json out).GetProperty("batches").GetInt32()) 20 "the same report"
                let code, out, err = cli [ "run"; "tiny"; "--data-dir"; data; "--cache-dir"; data + "-cache"; "-s"; "5"; "-q" ]
                Expect.equal (code, err) (0, "") "-q without --json: no progress either"
                Expect.stringContains out "plan digest" "the text report is unchanged"

        testCase "--quiet never hides an error" <| fun () ->
            withFixture <| fun data ->
                let code, out, err = cli [ "run"; "nope"; "--data-dir"; data; "--json"; "--quiet" ]
                Expect.equal code 2 "a data error"
                Expect.stringContains err "samplers: data error: Dataset 'nope' was not found" "the error line on stderr"
                Expect.equal ((json out).GetProperty("exitCode").GetInt32()) 2 "the JSON error on stdout"

        testCase "run --json in a real process: stdout parses as JSON, stderr has the progress lines" <| fun () ->
            withFixture <| fun data ->
                let code, out, err = cliChild [ "run"; "tiny"; "--data-dir"; data; "--cache-dir"; data + "-cache"; "-s"; "20"; "--json" ]
                Expect.equal code 0 $"exit 0: {err}"
                Expect.equal ((json out).GetProperty("datasetSize").GetInt32()) 80 "stdout is the JSON document"
                Expect.stringContains err "loading tiny: 80/80" "load progress on stderr"
                Expect.stringContains err "sampling: 20/20" "sampling progress on stderr"

        testCase "examples/MetricLearning --json: the metrics alone on stdout, progress on stderr; --quiet empties stderr" <| fun () ->
            let config = if AppContext.BaseDirectory.Contains "/Release/" || AppContext.BaseDirectory.Contains "\\Release\\" then "Release" else "Debug"
            let dll = Path.Combine(repoRoot.Value, "examples", "MetricLearning", "bin", config, "net10.0", "MetricLearning.dll")
            if not (File.Exists dll) then
                skiptestf "%s is not built (the solution build makes it: dotnet build examples/MetricLearning -c %s)" dll config
            use t = new TempDir()
            let run extra =
                runDotnet None ([ dll; "--epochs"; "1"; "--steps-per-epoch"; "3"; "--cache-dir"; t.Path; "--json" ] @ extra) 300000 "MetricLearning did not finish within 300 s"
            let code, out, err = run []
            Expect.equal code 0 $"exit 0: {err}"
            Expect.equal (lines out).Length 1 $"one line on stdout: {out}"
            Expect.isTrue ((json out).GetProperty("steps").GetInt32() = 3) "stdout parses as the metrics"
            Expect.stringContains err "loading synthetic_digits" "loading announced on stderr"
            Expect.stringContains err "epoch 1: loss" "the epoch line on stderr"
            Expect.stringContains err "baseline: the same network on uniformly random batches" "the baseline's training announced"
            // The below-raw-pixels note is printed for each evaluation set where it holds (seen-unseen has two), and only there.
            let metrics = json out
            for set in [ "seen_heldout"; "unseen" ] do
                let trained = metrics.GetProperty($"recall_at_1_{set}").GetDouble()
                let raw = metrics.GetProperty($"recall_at_1_{set}_raw_pixels").GetDouble()
                let noted = err.Contains $"note: on {set} the trained embedding"
                Expect.equal noted (trained < raw) $"{set}: trained recall@1 {trained}, raw pixels {raw}, note printed: {noted}"
            let code, out, err = run [ "--quiet" ]
            Expect.equal code 0 $"exit 0 with --quiet: {err}"
            Expect.equal err "" "nothing on stderr with --quiet"
            Expect.equal ((json out).GetProperty("steps").GetInt32()) 3 "the same metrics document"
    ]

// ---------- 2. data-error hints: each once, only those that apply ----------

let hintTests =
    testList "data error hints" [
        testCase "a split typo: the library's message with no hint about --data-dir or --download" <| fun () ->
            withFixture <| fun data ->
                let info = Path.Combine(data, "tiny", "1.0.0", "dataset_info.json")
                let code, _, err = cli [ "run"; "tiny"; "--data-dir"; data; "--cache-dir"; data + "-cache"; "--splits"; "tset" ]
                Expect.equal code 2 "a data error"
                Expect.equal (errLines err)
                    [ $"samplers: data error: Split 'tset' (in spec 'tset') does not exist in tiny:1.0.0 ({info}). Splits present: train, test (names are case-sensitive)." ]
                    "the exact message"

        testCase "a dataset that does not exist in the --data-dir given: check the name or add --download, once each" <| fun () ->
            withFixture <| fun data ->
                let code, _, err = cli [ "run"; "nosuch"; "--data-dir"; data; "--cache-dir"; data + "-cache" ]
                Expect.equal code 2 "a data error"
                Expect.equal (errLines err)
                    [ $"samplers: data error: Dataset 'nosuch' was not found in {data}. Datasets present: tiny. Check the name; or add --download to fetch the dataset." ]
                    "the exact message"
                // info says the same (it opens the catalog without loading).
                let code, _, err2 = cli [ "info"; "nosuch"; "--data-dir"; data; "--no-counts" ]
                Expect.equal (code, err2) (2, err) "info: the same line"

        testCase "a --data-dir that does not exist: no hint to pass --data-dir" <| fun () ->
            use t = new TempDir()
            let missing = Path.Combine(t.Path, "absent")
            let code, _, err = cli [ "run"; "tiny"; "--data-dir"; missing ]
            Expect.equal code 2 "a data error"
            Expect.equal (errLines err) [ $"samplers: data error: The data directory {missing} does not exist. Add --download to fetch the dataset." ] "the exact message"

        testCase "--download of a dataset that is nowhere, bucket unreachable: the download's reason once, no option the user gave" <| fun () ->
            withFixture <| fun data ->
                let port = closedPort ()
                let url = $"http://127.0.0.1:{port}"
                let code, _, err = cli [ "run"; "nosuch"; "--data-dir"; data; "--download"; "--base-url"; url ]
                Expect.equal code 2 "a data error"
                let line = (errLines err).Head
                Expect.equal (errLines err).Length 1 "one line"
                Expect.stringStarts line
                    ($"samplers: data error: Dataset 'nosuch' was not found in {data}. Datasets present: tiny. The download (--download) could not fetch it either: " +
                     $"{url}?prefix=datasets%%2Fnosuch%%2F&delimiter=%%2F: could not reach {url}: ") "the facts"
                Expect.stringEnds line " (not retried: the server never answered). Check the name; or check that --base-url is a reachable mirror of the bucket." "the hints"
                Expect.equal (count line "check the name") 1 "check the name: once"
                Expect.equal (count line "mirror") 1 "the mirror: once"
                Expect.equal (count line "--data-dir") 0 "--data-dir was given"
                Expect.equal (count line "add --download") 0 "--download was given"
                Expect.equal (count line "TfdsLoadOptions") 0 "no library setting names"
                // Without --base-url (the tests' default bucket is a closed loopback port): the mirror hint names the option.
                let code, _, err = cli [ "run"; "nosuch"; "--data-dir"; data; "--download" ]
                Expect.equal code 2 "a data error"
                Expect.stringEnds (errLines err).Head
                    "Check the name; or if there is no network, point --base-url (or SAMPLERS_TFDS_BASE_URL) at a reachable mirror of the bucket." "the hints"

        testCase "the library's combined message (not found, then the download failed) names each hint once" <| fun () ->
            withFixture <| fun data ->
                let port = closedPort ()
                let options = TfdsLoadOptions(DatasetName = "nosuch", DataDir = data, Download = TfdsLoader.DownloadFromBucket($"http://127.0.0.1:{port}"))
                let e = throwsWith<DatasetNotFoundException> (fun () -> TfdsLoader.LoadAsync(options).GetAwaiter().GetResult() |> ignore) "not found"
                let m = e.Message
                Expect.stringStarts m $"Dataset 'nosuch' was not found in {data}. Datasets present: tiny. The download (TfdsLoadOptions.Download) could not fetch it either: " "the facts"
                Expect.stringEnds m
                    ("(not retried: the server never answered). Check the name; or if there is no network, point SAMPLERS_TFDS_BASE_URL at a reachable mirror of the bucket; " +
                     "or copy a prepared dataset into a data directory and pass it as TfdsLoadOptions.DataDir (or TFDS_DATA_DIR); or set TfdsLoadOptions.Download = null to never use the network.")
                    "each hint once"
                for part in [ "no network"; "check the name"; "TfdsLoadOptions.DataDir"; "mirror" ] do
                    Expect.equal (count m part) 1 $"'{part}' once"
                Expect.equal (count m "download the dataset") 0 "no 'download the dataset': the download was just tried"
    ]

// ---------- 3. grid captions are whole on narrow tiles ----------

/// A 28x28 uint8 table of n rows, label = row % 10 (so the indices run into the thousands).
let digitsTable (n: int) =
    ExampleTable.From(ReadOnlySpan(Array.init (n * 28 * 28) (fun i -> byte (i % 251))), ReadOnlySpan [| 28; 28; 1 |], ReadOnlySpan [| for i in 0 .. n - 1 -> int64 (i % 10) |])

let digitNames = [| "zero"; "one"; "two"; "three"; "four"; "five"; "six"; "seven"; "eight"; "nine" |]

let gridTests =
    testList "grid captions" [
        testCase "28-pixel tiles: every caption is the whole 'CLASS #index', on two lines inside a widened cell, drawn in full" <| fun () ->
            let s = new MultiShotMemorySampler(digitsTable 9000, SamplerOptions(ClassesPerBatch = 3, ExamplesPerClassPerBatch = 3, Seed = 17UL))
            use b = s.GenerateBatch 4
            let g = BatchGrid.Render(b, digitNames)
            Expect.equal g.Labels.Count 9 "one caption per example"
            let rgb = Array.zeroCreate<byte> (g.Width * g.Height * 3)
            ImageDecoder.Decode(ReadOnlySpan g.Png, Span rgb, 3) |> ignore
            // The same captions drawn by the font alone on a blank canvas: the grid's text pixels must match them exactly.
            let expected = Array.zeroCreate<byte> (g.Width * g.Height * 4)
            for l in g.Labels do
                let r = l.BatchRow
                let text = $"{digitNames[int b.Y[r]]} #{b.Indices[r]}"
                Expect.equal l.Text text "the full caption"
                Expect.equal (String.Join(" ", l.Lines)) text "the lines make up the caption"
                Expect.equal l.Lines.Count 2 "'name #index' is wider than a 28 px tile: two lines"
                Expect.equal l.Width (l.Lines |> Seq.map (fun x -> 6 * x.Length - 1) |> Seq.max) "the longest line's width"
                // The caption stays inside its own cell: left of the next cell's caption in the same grid row.
                for other in g.Labels do
                    if other.GridRow = l.GridRow && other.X > l.X then Expect.isLessThan (l.X + l.Width) other.X "no overlap with the next cell"
                Expect.isLessThanOrEqual (l.X + l.Width) g.Width "inside the image"
                // The images of this example start below the caption.
                for cell in g.Cells do
                    if cell.BatchRow = r then Expect.isGreaterThan cell.Y (l.Y + l.Height) "the caption sits above its images"
                for i in 0 .. l.Lines.Count - 1 do
                    TinyFont.Draw(expected, g.Width, g.Height, l.Lines[i], l.X, l.Y + i * l.LineHeight, Int32.MaxValue, 255uy, 255uy, 255uy)
            for l in g.Labels do
                for y in l.Y .. l.Y + l.Height - 1 do
                    for x in l.X - 1 .. l.X + l.Width do
                        let drawn = rgb[(y * g.Width + x) * 3] > 120uy
                        let ink = expected[(y * g.Width + x) * 4] = 255uy
                        if drawn <> ink then failtest $"caption '{l.Text}' pixel ({x},{y}): drawn {drawn}, font {ink}"

        testCase "captions that fit stay on one line above the images" <| fun () ->
            // Ten examples: captions such as "3 #3" (4 characters, 23 px) fit a 28 px tile.
            let s = new MultiShotMemorySampler(digitsTable 10, SamplerOptions(ClassesPerBatch = 3, ExamplesPerClassPerBatch = 1, Seed = 3UL))
            use b = s.GenerateBatch 0
            let g = BatchGrid.Render(b, [| for i in 0 .. 9 -> string i |])
            for l in g.Labels do
                Expect.equal l.Lines.Count 1 $"'{l.Text}' fits 28 px"
                Expect.isLessThanOrEqual (l.X + l.Width) (l.X + 28) "within the tile"

        testCase "samplers show on the embedded 28-pixel digits: the JSON lists every caption whole, matching the plan" <| fun () ->
            use t = new TempDir()
            let png = Path.Combine(t.Path, "grid.png")
            let common = [ "--cache-dir"; Path.Combine(t.Path, "cache"); "-c"; "3"; "-e"; "3"; "--seed"; "5" ]
            let code, out, err = cli ([ "show"; "--batch"; "2"; "--out"; png; "--json" ] @ common)
            Expect.equal code 0 $"exit 0: {err}"
            let j = json out
            let labels = [ for l in j.GetProperty("labels").EnumerateArray() -> l.GetProperty("text").GetString(), l.GetProperty("x").GetInt32(), l.GetProperty("width").GetInt32() ]
            let code, planOut, err = cli ([ "plan"; "--batches"; "2:3"; "--json" ] @ common)
            Expect.equal code 0 $"plan exit 0: {err}"
            let p = json planOut
            let expected =
                Seq.zip [ for v in p.GetProperty("labels").EnumerateArray() -> v.GetInt64() ] [ for v in p.GetProperty("indices").EnumerateArray() -> v.GetInt32() ]
                |> Seq.map (fun (label, index) -> $"{digitNames[int label]} #{index}") |> Set.ofSeq
            Expect.equal (labels |> List.map (fun (text, _, _) -> text) |> Set.ofList) expected "one whole caption per example of the batch"
            // Columns are as wide as the longest caption line: captions of neighbouring cells never touch.
            let xs = labels |> List.map (fun (_, x, _) -> x) |> List.distinct |> List.sort
            for (_, x, w) in labels do
                match xs |> List.tryFind (fun x2 -> x2 > x) with
                | Some next -> Expect.isLessThan (x + w) next "inside its column"
                | None -> Expect.isLessThanOrEqual (x + w) (j.GetProperty("width").GetInt32()) "inside the image"
    ]

// ---------- 4. info on a dataset with a split's shard files missing ----------

let infoTests =
    testList "info with missing shards" [
        testCase "info lists the splits present and missing with the expected files, counts the rest, exits 0" <| fun () ->
            withFixture <| fun data ->
                let dir = Path.Combine(data, "tiny", "1.0.0")
                let testShard = Path.Combine(dir, "tiny-test.tfrecord-00000-of-00001")
                Expect.isTrue (File.Exists testShard) "the fixture's test shard"
                File.Delete testShard
                let args = [ "info"; "tiny"; "--data-dir"; data; "--cache-dir"; data + "-cache" ]
                let code, out, err = cli args
                Expect.equal code 0 $"exit 0 while the metadata is readable: {err}"
                let outLines = lines out
                Expect.isTrue (outLines |> List.exists (fun l -> Regex.IsMatch(l, @"^train\s+60\s+2\s+\d+\s+present$"))) $"train present: {out}"
                Expect.isTrue (outLines |> List.exists (fun l -> Regex.IsMatch(l, @"^test\s+20\s+1\s+\d+\s+missing 1 of 1 shard files$"))) $"test missing: {out}"
                Expect.contains outLines $"missing files (fetch them with 'samplers download tiny:1.0.0 --splits test --data-dir {data}', or prepare the dataset again)" "what to do"
                Expect.isTrue (outLines |> List.exists (fun l -> Regex.IsMatch(l, @"^test\s+" + Regex.Escape testShard + "$"))) "the expected file"
                Expect.contains outLines "classes in train (y_key label); not counted: test (shard files missing)" "what was counted"
                for n in classNames do
                    Expect.isTrue (outLines |> List.exists (fun l -> Regex.IsMatch(l, $@"^\d\s+{n}\s+12$"))) $"{n}: 12 in train"
                let code, out, _ = cli (args @ [ "--json"; "-q" ])
                Expect.equal code 0 "exit 0 with --json"
                let j = json out
                let splits = [ for s in j.GetProperty("splits").EnumerateArray() -> s.GetProperty("name").GetString(), s.GetProperty("present").GetBoolean(), [ for f in s.GetProperty("missingFiles").EnumerateArray() -> f.GetString() ] ]
                Expect.equal splits [ "train", true, []; "test", false, [ testShard ] ] "present and missing, with the files"
                Expect.equal [ for s in j.GetProperty("loadedSplits").EnumerateArray() -> s.GetString() ] [ "train" ] "loaded"
                Expect.equal [ for s in j.GetProperty("skippedSplits").EnumerateArray() -> s.GetString() ] [ "test" ] "skipped"
                Expect.equal [ for c in j.GetProperty("classes").EnumerateArray() -> c.GetProperty("count").GetInt32() ] [ 12; 12; 12; 12; 12 ] "train's counts"
                // Only the missing split asked for: nothing to count, still exit 0; --no-counts lists the files too.
                let code, out, _ = cli (args @ [ "--splits"; "test" ])
                Expect.equal code 0 "exit 0"
                Expect.contains (lines out) "classes   not counted: test (shard files missing)" "says why there are no counts"
                let code, out, _ = cli (args @ [ "--no-counts" ])
                Expect.equal code 0 "exit 0 with --no-counts"
                Expect.stringContains out testShard "the missing file listed"
                // Loading the missing split is still a data error.
                let code, _, err = cli [ "run"; "tiny"; "--data-dir"; data; "--cache-dir"; data + "-cache" ]
                Expect.equal code 2 "run: a data error"
                Expect.stringContains err $"Shard file {testShard} is missing" "names the file"
                Expect.stringEnds (errLines err).Head "The download or preparation was incomplete. Add --download to fetch the dataset." "the tool's hint"

        testCase "info with one of two train shards missing reports 1 of 2 and counts test" <| fun () ->
            withFixture <| fun data ->
                let dir = Path.Combine(data, "tiny", "1.0.0")
                let shard = Path.Combine(dir, "tiny-train.tfrecord-00001-of-00002")
                File.Delete shard
                let code, out, err = cli [ "info"; "tiny"; "--data-dir"; data; "--cache-dir"; data + "-cache" ]
                Expect.equal code 0 $"exit 0: {err}"
                Expect.isTrue (lines out |> List.exists (fun l -> Regex.IsMatch(l, @"^train\s+60\s+2\s+\d+\s+missing 1 of 2 shard files$"))) $"train: {out}"
                Expect.contains (lines out) "classes in test (y_key label); not counted: train (shard files missing)" "test counted"
    ]

[<Tests>]
let tests = testList "Cli.UserReport" [ progressTests; hintTests; gridTests; infoTests ]
