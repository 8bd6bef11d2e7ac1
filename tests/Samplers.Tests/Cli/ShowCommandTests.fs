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
                Expect.isFalse (File.Exists png) "nothing written"
    ]
