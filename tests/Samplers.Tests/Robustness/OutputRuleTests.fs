/// The output rule: the TFDS writer refuses a dataset name or version that would leave the data directory.
module Samplers.Tests.Robustness.OutputRuleTests

open System
open System.IO
open Expecto
open Samplers
open Samplers.Imaging
open Samplers.Tfds
open Samplers.Tests.TestUtil
open Samplers.Tests.Cli.CliTests

/// A tiny image folder (two classes of one PNG each).
let private imageFolder (root: string) =
    for cls in [ "a"; "b" ] do
        let dir = Path.Combine(root, cls)
        Directory.CreateDirectory dir |> ignore
        File.WriteAllBytes(Path.Combine(dir, "0.png"), PngEncoder.Encode(ReadOnlySpan(Array.create (4 * 4 * 3) 7uy), 4, 4, PngColorType.Rgb, PngEncodeOptions()))
    ImageFolder.Scan root

[<Tests>]
let tests =
    testList "Robustness.OutputRule" [
        test "the TFDS writer refuses a name or version that leaves the data directory, naming the parameter" {
            use t = new TempDir()
            let folder = imageFolder (Path.Combine(t.Path, "images"))
            let data = Path.Combine(t.Path, "deep", "data")
            let e = throwsWith<ArgumentException> (fun () -> folder.WriteTfds(data, "../../escaped") |> ignore) "name"
            Expect.equal e.ParamName "name" "names the name"
            let e = throwsWith<ArgumentException> (fun () -> folder.WriteTfds(data, "ok", "../../../v") |> ignore) "version"
            Expect.equal e.ParamName "version" "names the version"
            let features = [ DatasetFeature.Nested imageSpec ]
            let e = throwsWith<ArgumentException> (fun () -> TfdsDatasetWriter(Path.Combine(data, "x", "1.0.0"), "a/../../b", "1.0.0", features) |> ignore) "writer name"
            Expect.equal e.ParamName "name" "the writer names the name"
            let e = throwsWith<ArgumentException> (fun () -> TfdsDatasetWriter(Path.Combine(data, "x", "1.0.0"), "x", "..", features) |> ignore) "writer version"
            Expect.equal e.ParamName "version" "the writer names the version"
            Expect.equal (Directory.GetFileSystemEntries t.Path |> Array.map Path.GetFileName |> Array.sort) [| "images" |] "nothing written anywhere"
            // The names the loader accepts still write.
            let vdir = folder.WriteTfds(data, "my_images", "1.2.3")
            Expect.equal vdir (Path.Combine(data, "my_images", "1.2.3")) "inside the data directory"
            let w = TfdsDatasetWriter(Path.Combine(data, "x", "1.0.0"), "x", "1.0.0", features)
            let e = throwsWith<ArgumentException> (fun () -> w.WriteSplit("../../s", [| [||] |], 1) |> ignore) "split"
            Expect.equal e.ParamName "split" "the writer names the split"
        }
    ]
