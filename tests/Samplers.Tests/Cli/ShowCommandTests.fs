module Samplers.Tests.Cli.ShowCommandTests

open System
open System.IO
open Expecto
open Samplers.Imaging
open Samplers.Tests.Cli.CliTests

[<Tests>]
let tests =
    testList "Cli.Show" [
        testCase "show writes a PNG grid of the batch and its views; --json reports it" <| fun () ->
            withFixture <| fun data ->
                let png = Path.Combine(Path.GetDirectoryName data, "grid.png")
                let code, out, err = cli [ "show"; "tiny"; "--data-dir"; data; "--cache-dir"; data + "-cache"; "-c"; "3"; "-e"; "2"; "--batch"; "4"
                                           "--augment"; "simclr"; "--views"; "2"; "--view-size"; "20"; "--out"; png; "--json" ]
                Expect.equal code 0 $"exit 0: {err}"
                let j = json out
                Expect.equal (j.GetProperty("classes").GetInt32()) 3 "3 classes"
                Expect.equal (j.GetProperty("examples").GetInt32()) 6 "6 examples"
                Expect.equal (j.GetProperty("views").GetInt32()) 2 "2 views"
                let bytes = File.ReadAllBytes png
                let info = ImageDecoder.Measure(ReadOnlySpan bytes)
                Expect.equal (info.Width, info.Height) (j.GetProperty("width").GetInt32(), j.GetProperty("height").GetInt32()) "the PNG has the reported size"
                // 3 rows of (label band + 28 px) and 2 cells of 28 + 2 x 20 px, with margins.
                Expect.isGreaterThan info.Width (2 * (28 + 2 * 20)) "cells side by side"
                Expect.isGreaterThan info.Height (3 * 28) "a row per class"

        testCase "show refuses a bad augmenter, size or batch id with the allowed values" <| fun () ->
            withFixture <| fun data ->
                let png = Path.Combine(Path.GetDirectoryName data, "bad.png")
                let run extra = cli ([ "show"; "tiny"; "--data-dir"; data; "--cache-dir"; data + "-cache"; "--out"; png ] @ extra)
                let code, _, err = run [ "--augment"; "byol" ]
                Expect.equal code 1 "usage error"
                Expect.stringContains err "use simclr" "names the choice"
                let code, _, err = run [ "--resize"; "12" ]
                Expect.equal code 1 "usage error"
                Expect.stringContains err "HEIGHTxWIDTH" "names the format"
                let code, _, err = run [ "--batch"; "5000" ]
                Expect.equal code 1 "usage error"
                Expect.stringContains err "--batch must be in [0, 1000)" "names the range"
                let code, _, err = run [ "--views"; "0" ]
                Expect.equal code 1 "usage error"
                Expect.stringContains err "--views must be in [1, 256]" "names the range"
                let code, _, err = run [ "--view-size"; "4" ]
                Expect.equal code 1 "usage error"
                Expect.stringContains err "--view-size must be in [8, 4096]" "names the range"
                Expect.isFalse (File.Exists png) "nothing written"

        testCase "show on a dataset of varying image sizes asks for --resize" <| fun () ->
            use t = new Samplers.Tests.TestUtil.TempDir()
            Samplers.DatasetGen.SyntheticPhotos.Write(t.Path, 8, 2, 20, 40) |> ignore
            let png = Path.Combine(t.Path, "g.png")
            let code, _, err = cli [ "show"; "synthetic_photos"; "--data-dir"; t.Path; "--cache-dir"; Path.Combine(t.Path, "c"); "--out"; png ]
            Expect.equal code 1 "usage error"
            Expect.stringContains err "--resize HEIGHTxWIDTH" "says what to pass"
            let code, out, err = cli [ "show"; "synthetic_photos"; "--data-dir"; t.Path; "--cache-dir"; Path.Combine(t.Path, "c"); "--resize"; "24x32"; "--out"; png ]
            Expect.equal code 0 $"exit 0: {err}"
            Expect.stringContains out "2 classes, 4 examples" "the default 2 x 2 batch"
    ]
