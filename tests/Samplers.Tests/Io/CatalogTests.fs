module Samplers.Tests.Io.CatalogTests

open System
open System.IO
open Expecto
open Samplers
open Samplers.Imaging
open Samplers.Core
open Samplers.Core.Tfds
open Samplers
open Samplers.Tfds
open Samplers.Tests.TestUtil

// Fixtures: the verbatim mnist 3.0.1 files of TFDS_FORMAT.md 2.3 and 4.2 (citation shortened), written into temp dirs.
let mnistInfo = """{
  "citation": "@article{lecun2010mnist}",
  "description": "The MNIST database of handwritten digits.",
  "downloadSize": "11594722",
  "fileFormat": "tfrecord",
  "location": { "urls": [ "http://yann.lecun.com/exdb/mnist/" ] },
  "moduleName": "tensorflow_datasets.image_classification.mnist",
  "name": "mnist",
  "splits": [
    { "filepathTemplate": "{DATASET}-{SPLIT}.{FILEFORMAT}-{SHARD_X_OF_Y}", "name": "train", "numBytes": "18872042", "shardLengths": [ "60000" ] },
    { "filepathTemplate": "{DATASET}-{SPLIT}.{FILEFORMAT}-{SHARD_X_OF_Y}", "name": "test", "numBytes": "3150056", "shardLengths": [ "10000" ] }
  ],
  "supervisedKeys": { "tuple": { "items": [ { "featureKey": "image" }, { "featureKey": "label" } ] } },
  "version": "3.0.1"
}"""

let mnistFeatures = """{
    "pythonClassName": "tensorflow_datasets.core.features.features_dict.FeaturesDict",
    "featuresDict": {
        "features": {
            "label": {
                "pythonClassName": "tensorflow_datasets.core.features.class_label_feature.ClassLabel",
                "classLabel": { "numClasses": "10" }
            },
            "image": {
                "pythonClassName": "tensorflow_datasets.core.features.image_feature.Image",
                "image": { "shape": { "dimensions": [ "28", "28", "1" ] }, "dtype": "uint8" }
            }
        }
    }
}"""

let write (dir: string) (rel: string) (text: string) =
    let p = Path.Combine(dir, rel)
    Directory.CreateDirectory(Path.GetDirectoryName p) |> ignore
    File.WriteAllText(p, text)

/// A version directory with info, features and empty shard files.
let versionDir (root: string) (rel: string) (info: string) (features: string) (shards: string list) =
    let d = Path.Combine(root, rel)
    Directory.CreateDirectory d |> ignore
    write d "dataset_info.json" info
    if not (isNull features) then write d "features.json" features
    for s in shards do write d s ""
    d

let mnistShards = [ "mnist-train.tfrecord-00000-of-00001"; "mnist-test.tfrecord-00000-of-00001" ]
let mnistDir root = versionDir root "mnist/3.0.1" mnistInfo mnistFeatures mnistShards

let notFound f phrase =
    let e = throwsWith<DatasetNotFoundException> f phrase
    Expect.stringContains e.Message phrase "message phrase"
    e
let badFormat f phrase =
    let e = throwsWith<DataFormatException> f phrase
    Expect.stringContains e.Message phrase "message phrase"
    e

/// Parses a features.json text (no label lookup) and renders each feature for comparison.
let featuresOf (json: string) = FeaturesJson.Parse(json, "features.json", null) |> Seq.map string |> List.ofSeq
let infoOf (json: string) = DatasetInfo.Parse(json, "dataset_info.json")

let directoryTests =
    testList "data directory" [
        testCase "an explicit directory wins over TFDS_DATA_DIR" <| fun () ->
            Expect.equal (DataDirectory.Resolve("/data/a", "/data/b", "/home/u")) (Path.GetFullPath "/data/a") "explicit"
        testCase "TFDS_DATA_DIR is used when no directory is given" <| fun () ->
            Expect.equal (DataDirectory.Resolve(null, "/data/b", "/home/u")) (Path.GetFullPath "/data/b") "env"
        testCase "an empty TFDS_DATA_DIR counts as unset" <| fun () ->
            Expect.equal (DataDirectory.Resolve(null, "", "/home/u")) (Path.GetFullPath "/home/u/tensorflow_datasets") "default"
        testCase "a leading ~ is the home directory" <| fun () ->
            Expect.equal (DataDirectory.Resolve("~/tfds", null, "/home/u")) (Path.GetFullPath "/home/u/tfds") "tilde"
        testCase "a missing data directory is a clear error" <| fun () ->
            use t = new TempDir()
            let missing = Path.Combine(t.Path, "nope")
            let e = notFound (fun () -> Catalog.Open(missing, "mnist") |> ignore) "does not exist"
            Expect.stringContains e.Message missing "names the directory"
            Expect.stringContains e.Message "TFDS_DATA_DIR" "says what to do"
    ]

let resolveTests =
    testList "name and version resolution" [
        testCase "mnist resolves to its only version, with features and class names" <| fun () ->
            use t = new TempDir()
            let d = mnistDir t.Path
            let b = Catalog.Open(t.Path, "mnist")
            Expect.equal (b.Version, b.Path, b.FullName) ("3.0.1", d, "mnist:3.0.1") "resolved"
            Expect.equal (b.Info.Splits |> Seq.map (fun s -> s.Name, s.NumExamples) |> List.ofSeq) [ "train", 60000L; "test", 10000L ] "splits"
            Expect.equal (b.Info.SupervisedKeys |> List.ofSeq) [ "image"; "label" ] "supervised keys"
            Expect.equal (b.Features |> Seq.map string |> List.ofSeq) [ "label: ClassLabel int64 ()"; "image: Image uint8 (28, 28, 1)" ] "features"
            Expect.equal (b.FindFeature("label").ClassNames |> List.ofSeq) [ for i in 0 .. 9 -> string i ] "names 0..9 without a labels file"
            Expect.equal (b.ShardPaths "test") [| Path.Combine(d, "mnist-test.tfrecord-00000-of-00001") |] "shard path"
        testCase "Catalog.Versions and Configs list what is prepared beside a builder; hidden and incomplete folders are not configs" <| fun () ->
            use t = new TempDir()
            versionDir t.Path "mnist/3.0.1" mnistInfo mnistFeatures mnistShards |> ignore
            versionDir t.Path "mnist/3.0.0" (mnistInfo.Replace("3.0.1", "3.0.0")) mnistFeatures mnistShards |> ignore
            Directory.CreateDirectory(Path.Combine(t.Path, "mnist", "3.0.2.incompleteAB12")) |> ignore
            Directory.CreateDirectory(Path.Combine(t.Path, "mnist", ".config")) |> ignore
            let b = Catalog.Open(t.Path, "mnist")
            Expect.equal (set (Catalog.Versions b)) (set [ "3.0.0"; "3.0.1" ]) "both versions, not the incomplete one"
            Expect.isEmpty (Catalog.Configs b) "no configs"
        testCase "MNIST:3.0.1 (CamelCase, exact version) resolves" <| fun () ->
            use t = new TempDir()
            mnistDir t.Path |> ignore
            Expect.equal (Catalog.Open(t.Path, "MNIST:3.0.1")).Version "3.0.1" "version"
        testCase "an unknown dataset lists the datasets present" <| fun () ->
            use t = new TempDir()
            mnistDir t.Path |> ignore
            Directory.CreateDirectory(Path.Combine(t.Path, "cifar10")) |> ignore
            let e = notFound (fun () -> Catalog.Open(t.Path, "fashion_mnist") |> ignore) "Dataset 'fashion_mnist' was not found"
            Expect.stringContains e.Message "cifar10, mnist" "lists datasets"
        testCase "the highest valid version directory wins; temp dirs and files are ignored" <| fun () ->
            use t = new TempDir()
            for v in [ "3.0.0"; "3.0.9"; "3.0.10"; "03.0.1"; "3.0.1.incompleteAB12CD" ] do
                versionDir t.Path ("mnist/" + v) (mnistInfo.Replace("\"3.0.1\"", $"\"{v}\"")) mnistFeatures [] |> ignore
            write t.Path "mnist/4.0.0" "a file, not a directory"
            Expect.equal (Catalog.Open(t.Path, "mnist")).Version "3.0.10" "highest"
            Expect.equal (Catalog.Open(t.Path, "mnist:3.0.*")).Version "3.0.10" "3.0.*"
            Expect.equal (Catalog.Open(t.Path, "mnist:3.*.*")).Version "3.0.10" "3.*.*"
            Expect.equal (Catalog.Open(t.Path, "mnist:3.0.9")).Version "3.0.9" "exact"
            let e = notFound (fun () -> Catalog.Open(t.Path, "mnist:2.*.*") |> ignore) "Version 2.*.* of 'mnist' was not found"
            Expect.stringContains e.Message "3.0.10, 3.0.9, 3.0.0" "lists versions"
            notFound (fun () -> Catalog.Open(t.Path, "mnist:3.0.5") |> ignore) "Version 3.0.5" |> ignore
            notFound (fun () -> Catalog.Open(t.Path, "mnist:4.0.0") |> ignore) "Versions present: 3.0.10" |> ignore
        testCase "the highest version lacking features.json fails, with no fallback" <| fun () ->
            use t = new TempDir()
            mnistDir t.Path |> ignore
            versionDir t.Path "mnist/3.0.2" (mnistInfo.Replace("\"3.0.1\"", "\"3.0.2\"")) null [] |> ignore
            let e = notFound (fun () -> Catalog.Open(t.Path, "mnist") |> ignore) "TFDS <= 3.2.1"
            Expect.stringContains e.Message (Path.Combine(t.Path, "mnist", "3.0.2", "features.json")) "names the file"
        testCase "a version directory without dataset_info.json is incomplete" <| fun () ->
            use t = new TempDir()
            mnistDir t.Path |> ignore
            Directory.CreateDirectory(Path.Combine(t.Path, "mnist", "3.0.2")) |> ignore
            let e = notFound (fun () -> Catalog.Open(t.Path, "mnist") |> ignore) "incomplete version directory"
            Expect.stringContains e.Message "does not fall back" "explains"
        testCase "configs without a default config ask for the config" <| fun () ->
            use t = new TempDir()
            let info = mnistInfo.Replace("\"name\": \"mnist\"", "\"name\": \"imagenette\", \"configName\": \"320px-v2\"").Replace("\"3.0.1\"", "\"1.0.0\"")
            versionDir t.Path "imagenette/320px-v2/1.0.0" info mnistFeatures [] |> ignore
            Directory.CreateDirectory(Path.Combine(t.Path, "imagenette", "full-size-v2")) |> ignore
            let e = notFound (fun () -> Catalog.Open(t.Path, "imagenette") |> ignore) "give the config in the name"
            Expect.stringContains e.Message "320px-v2, full-size-v2" "lists configs"
            Expect.equal (Catalog.Open(t.Path, "imagenette/320px-v2")).FullName "imagenette/320px-v2:1.0.0" "explicit config"
            let e2 = notFound (fun () -> Catalog.Open(t.Path, "imagenette/160px") |> ignore) "Config '160px'"
            Expect.stringContains e2.Message "Configs present: 320px-v2, full-size-v2" "lists configs"
            write t.Path "imagenette/.config/metadata.json" """{"default_config_name": "320px-v2"}"""
            Expect.equal (Catalog.Open(t.Path, "imagenette")).Config "320px-v2" "default from .config/metadata.json"
        testCase "dataset_info.json version or configName disagreeing with the directory is an error" <| fun () ->
            use t = new TempDir()
            versionDir t.Path "mnist/3.0.2" mnistInfo mnistFeatures [] |> ignore
            let e = badFormat (fun () -> Catalog.Open(t.Path, "mnist") |> ignore) "key 'version' is '3.0.1'"
            Expect.stringContains e.Message "named '3.0.2'" "found vs expected"
            use t2 = new TempDir()
            versionDir t2.Path "mnist/3.0.1" (mnistInfo.Replace("\"name\": \"mnist\"", "\"name\": \"mnist\", \"configName\": \"x\"")) mnistFeatures [] |> ignore
            badFormat (fun () -> Catalog.Open(t2.Path, "mnist") |> ignore) "key 'configName' is 'x'" |> ignore
        testCase "shard names use the JSON name, not the directory name" <| fun () ->
            use t = new TempDir()
            let d = versionDir t.Path "my_mnist/3.0.1" mnistInfo mnistFeatures mnistShards
            let b = Catalog.Open(t.Path, "my_mnist")
            Expect.equal (b.ShardPaths "train") [| Path.Combine(d, "mnist-train.tfrecord-00000-of-00001") |] "json name"
        testCase "a malformed name is an ArgumentException showing the position" <| fun () ->
            use t = new TempDir()
            let e = throwsWith<SpecFormatException> (fun () -> Catalog.Open(t.Path, "mnist:3.0") |> ignore) "bad version"
            Expect.stringContains e.Message "(position 6)" "position"
    ]

let infoTests =
    testList "dataset_info.json" [
        testCase "int64 as numbers, snake_case keys, unknown keys ignored" <| fun () ->
            let i = infoOf """{"name": "x", "version": "1.0.0", "file_format": "tfrecord", "brandNewField": {"a": [1]},
                              "disable_shuffling": true,
                              "splits": [{"name": "train", "shard_lengths": [3, "4"], "num_bytes": 10, "filepath_template": "{SPLIT}/{SHARD_INDEX}.rec"}]}"""
            Expect.equal (List.ofArray i.Splits[0].ShardLengths) [ 3L; 4L ] "lengths"
            Expect.equal (i.Splits[0].NumBytes, i.DisableShuffling) (10L, true) "numBytes, disableShuffling"
            Expect.equal (i.ShardRelativePaths i.Splits[0] |> List.ofArray) [ "train/00000.rec"; "train/00001.rec" ] "template"
        testCase "missing template and fileFormat take the defaults" <| fun () ->
            let i = infoOf """{"name": "x", "splits": [{"name": "test", "shardLengths": ["5"]}]}"""
            Expect.equal i.FileFormat "tfrecord" "format"
            Expect.equal (i.ShardRelativePaths i.Splits[0]) [| "x-test.tfrecord-00000-of-00001" |] "default template"
        testCase "a legacy numShards split is a clear legacy-dataset error" <| fun () ->
            let e = badFormat (fun () -> infoOf """{"name": "x", "splits": [{"name": "train", "numShards": "2", "statistics": {"numExamples": "60000"}}]}""" |> ignore) "legacy dataset"
            Expect.stringContains e.Message "numShards = 2" "found"
            Expect.equal e.Key "splits[0].numShards" "key"
        testCase "100000 shards format with width 6; 3 shards with width 5" <| fun () ->
            let i = infoOf """{"name": "x", "splits": [{"name": "train", "shardLengths": ["1"]}]}"""
            Expect.equal (i.FormatTemplate(i.Splits[0], 0, 100000)) "x-train.tfrecord-000000-of-100000" "width 6"
            Expect.equal (i.FormatTemplate(i.Splits[0], 2, 3)) "x-train.tfrecord-00002-of-00003" "width 5"
        testCase "an unknown placeholder or a '%' in the template is refused" <| fun () ->
            let i = infoOf """{"name": "x", "splits": [{"name": "t", "shardLengths": ["1"], "filepathTemplate": "{DATASET}-{SHARD}"},
                                                        {"name": "u", "shardLengths": ["1"], "filepathTemplate": "{DATASET}-%s"}]}"""
            badFormat (fun () -> i.ShardRelativePaths i.Splits[0] |> ignore) "unknown placeholder {SHARD}" |> ignore
            badFormat (fun () -> i.ShardRelativePaths i.Splits[1] |> ignore) "'%'" |> ignore
        testCase "shard paths are sorted and paired with shardLengths in index order" <| fun () ->
            let i = infoOf """{"name": "x", "splits": [{"name": "t", "shardLengths": ["1", "2", "3"], "filepathTemplate": "{SPLIT}-{SHARD_X_OF_Y}"}]}"""
            Expect.equal (i.ShardRelativePaths i.Splits[0]) [| "t-00000-of-00003"; "t-00001-of-00003"; "t-00002-of-00003" |] "index order"
        testCase "array_record, parquet and riegeli are refused naming the supported format" <| fun () ->
            for fmt in [ "array_record"; "parquet"; "riegeli" ] do
                use t = new TempDir()
                versionDir t.Path "mnist/3.0.1" (mnistInfo.Replace("\"fileFormat\": \"tfrecord\"", $"\"fileFormat\": \"{fmt}\"")) mnistFeatures [] |> ignore
                let e = badFormat (fun () -> Catalog.Open(t.Path, "mnist") |> ignore) $"'fileFormat' is '{fmt}'"
                Expect.stringContains e.Message "supported formats: tfrecord" "supported"
        testCase "malformed dataset_info.json reports the JSON position" <| fun () ->
            use t = new TempDir()
            versionDir t.Path "mnist/3.0.1" "{\n  \"name\": \"mnist\",\n  \"version\" \"3.0.1\"\n}" mnistFeatures [] |> ignore
            let e = badFormat (fun () -> Catalog.Open(t.Path, "mnist") |> ignore) "is not valid JSON (line 3"
            Expect.stringContains e.Message "dataset_info.json" "names the file"
        testCase "a missing dataset_info.json names the file" <| fun () ->
            use t = new TempDir()
            let p = Path.Combine(t.Path, "dataset_info.json")
            let e = notFound (fun () -> DatasetInfo.Load p |> ignore) "dataset_info.json is missing"
            Expect.equal e.FilePath p "file path"
        testCase "null arguments are refused naming the parameter" <| fun () ->
            let e = throwsWith<ArgumentNullException> (fun () -> Catalog.Open(null, null) |> ignore) "null name"
            Expect.equal e.ParamName "name" "parameter"
            let e2 = throwsWith<ArgumentNullException> (fun () -> Splits.Parse null |> ignore) "null spec"
            Expect.equal e2.ParamName "spec" "parameter"
        testCase "a key of the wrong type names the key, expected and found" <| fun () ->
            let e = badFormat (fun () -> infoOf """{"name": "x", "splits": [{"name": "t", "shardLengths": ["a"]}]}""" |> ignore) "splits[0].shardLengths[0]"
            Expect.stringContains e.Message "found \"a\"" "found"
        testCase "legacy supervisedKeys input/output" <| fun () ->
            let i = infoOf """{"name": "x", "supervisedKeys": {"input": "image", "output": "label"}}"""
            Expect.equal (List.ofSeq i.SupervisedKeys) [ "image"; "label" ] "keys"
    ]

let legacyMnistFeatures = """{"type": "tensorflow_datasets.core.features.features_dict.FeaturesDict", "content": {
    "image": {"type": "tensorflow_datasets.core.features.image_feature.Image", "content": {"shape": [28, 28, 1], "dtype": "uint8", "encoding_format": null, "use_colormap": false}},
    "label": {"type": "tensorflow_datasets.core.features.class_label_feature.ClassLabel", "content": {"num_classes": 10}}}}"""

let featuresTests =
    testList "features.json" [
        testCase "legacy type/content form and proto form give the same schema" <| fun () ->
            Expect.equal (featuresOf legacyMnistFeatures |> List.sort) (featuresOf mnistFeatures |> List.sort) "same"
        testCase "legacy proto_cls content as a JSON string is parsed again" <| fun () ->
            let j = """{"type": "tensorflow_datasets.core.features.features_dict.FeaturesDict", "content": {
                "label": {"type": "tensorflow_datasets.core.features.class_label_feature.ClassLabel", "proto_cls": "tensorflow_datasets.ClassLabel", "content": "{\"numClasses\": \"3\"}"}}}"""
            Expect.equal (featuresOf j) [ "label: ClassLabel int64 ()" ] "parsed"
        testCase "jsonFeature holds legacy content" <| fun () ->
            let j = """{"pythonClassName": "tensorflow_datasets.core.features.features_dict.FeaturesDict", "featuresDict": {"features": {
                "box": {"pythonClassName": "tensorflow_datasets.core.features.bounding_boxes.BBoxFeature", "jsonFeature": {"json": "{}"}}}}}"""
            Expect.equal (featuresOf j) [ "box: BoundingBox float32 (4)" ] "bbox"
        testCase "a Sequence of a dict, dynamic tensors, text, scalar and bbox flatten to the right keys and shapes" <| fun () ->
            let j = """{"pythonClassName": "tensorflow_datasets.core.features.features_dict.FeaturesDict", "featuresDict": {"features": {
                "objects": {"pythonClassName": "tensorflow_datasets.core.features.sequence_feature.Sequence", "sequence": {"feature":
                    {"pythonClassName": "tensorflow_datasets.core.features.features_dict.FeaturesDict", "featuresDict": {"features": {
                        "bbox": {"pythonClassName": "tensorflow_datasets.core.features.bounding_boxes.BBoxFeature", "boundingBox": {"shape": {"dimensions": ["4"]}, "dtype": "float32"}},
                        "label": {"pythonClassName": "tensorflow_datasets.core.features.class_label_feature.ClassLabel", "classLabel": {"numClasses": "2"}}}}}}},
                "depth": {"pythonClassName": "tensorflow_datasets.core.features.tensor_feature.Tensor", "tensor": {"shape": {"dimensions": ["-1", "-1"]}, "dtype": "float16", "encoding": "zlib"}},
                "image/filename": {"pythonClassName": "tensorflow_datasets.core.features.text_feature.Text", "text": {}},
                "flag": {"pythonClassName": "tensorflow_datasets.core.features.feature.Tensor", "tensor": {"shape": {}, "dtype": "bool", "encoding": "none"}}}}}"""
            let specs = FeaturesJson.Parse(j, "features.json", null)
            Expect.equal (specs |> Seq.map string |> List.ofSeq)
                [ "objects/bbox: BoundingBox float32 (-1, 4)"; "objects/label: ClassLabel int64 (-1)"
                  "depth: Tensor float16 (-1, -1)"; "image/filename: Text string ()"; "flag: Tensor bool ()" ] "flat specs"
            Expect.isTrue specs[0].InSequence "in sequence"
            Expect.equal specs[2].Encoding TensorEncoding.Zlib "encoding"
        testCase "an unknown pythonClassName is refused naming class and path" <| fun () ->
            let j = """{"pythonClassName": "tensorflow_datasets.core.features.features_dict.FeaturesDict", "featuresDict": {"features": {
                "clip": {"pythonClassName": "my_project.features.Spectrogram", "tensor": {}}}}}"""
            let e = badFormat (fun () -> featuresOf j |> ignore) "feature 'clip' has class my_project.features.Spectrogram"
            Expect.stringContains e.Message "Supported classes" "lists supported"
            let v = """{"pythonClassName": "tensorflow_datasets.core.features.features_dict.FeaturesDict", "featuresDict": {"features": {
                "v": {"pythonClassName": "tensorflow_datasets.core.features.video_feature.Video", "video": {}}}}}"""
            badFormat (fun () -> featuresOf v |> ignore) "Video features are out of scope" |> ignore
        testCase "a Sequence of a Sequence, an unknown dtype, and a parse-impossible Tensor shape are refused" <| fun () ->
            let seqSeq = """{"type": "tensorflow_datasets.core.features.sequence_feature.Sequence", "content": {"length": null, "feature":
                {"type": "tensorflow_datasets.core.features.sequence_feature.Sequence", "content": {"length": null, "feature":
                  {"type": "tensorflow_datasets.core.features.text_feature.Text", "content": {}}}}}}"""
            badFormat (fun () -> featuresOf seqSeq |> ignore) "ragged" |> ignore
            let cplx = """{"type": "tensorflow_datasets.core.features.tensor_feature.Tensor", "content": {"shape": [], "dtype": "complex64"}}"""
            badFormat (fun () -> featuresOf cplx |> ignore) "dtype 'complex64'" |> ignore
            let mid = """{"type": "tensorflow_datasets.core.features.tensor_feature.Tensor", "content": {"shape": [3, null], "dtype": "int32", "encoding": "none"}}"""
            badFormat (fun () -> featuresOf mid |> ignore) "cannot be parsed" |> ignore
        testCase "features.json absent is refused explaining TFDS <= 3.2.1" <| fun () ->
            use t = new TempDir()
            let e = notFound (fun () -> FeaturesJson.Load t.Path |> ignore) "TFDS <= 3.2.1"
            Expect.stringContains e.Message "features.json" "names the file"
        testCase "malformed features.json reports the JSON position" <| fun () ->
            use t = new TempDir()
            write t.Path "features.json" "{\"pythonClassName\": }"
            badFormat (fun () -> FeaturesJson.Load t.Path |> ignore) "features.json is not valid JSON (line 1" |> ignore
        testCase "a feature object of neither form names the keys found" <| fun () ->
            badFormat (fun () -> featuresOf """{"what": 1}""" |> ignore) "found keys what" |> ignore
    ]

let dictOf (members: string) = """{"pythonClassName": "tensorflow_datasets.core.features.features_dict.FeaturesDict", "featuresDict": {"features": {""" + members + "}}}"
let labelFeatures (key: string) (inner: string) = dictOf ("\"" + key + "\": " + inner)
let classLabel (n: int) = """{"pythonClassName": "tensorflow_datasets.core.features.class_label_feature.ClassLabel", "classLabel": {"numClasses": """ + string n + "}}"

let labelTests =
    testList "class names" [
        testCase "a labels file with CRLF and blank lines gives trimmed names" <| fun () ->
            use t = new TempDir()
            write t.Path "label.labels.txt" "cat\r\ndog\r\n\r\n  bird \r\n"
            write t.Path "features.json" (labelFeatures "label" (classLabel 3))
            Expect.equal ((FeaturesJson.Load t.Path).[0].ClassNames |> List.ofSeq) [ "cat"; "dog"; "bird" ] "names"
        testCase "a key with '/' and a label inside a Sequence name their files image.label and objects-label" <| fun () ->
            use t = new TempDir()
            write t.Path "image.label.labels.txt" "a\nb\n"
            write t.Path "objects-label.labels.txt" "x\ny\nz\n"
            let seq = """{"pythonClassName": "tensorflow_datasets.core.features.sequence_feature.Sequence", "sequence": {"feature": """ + dictOf ("\"label\": " + classLabel 3) + "}}"
            write t.Path "features.json" (dictOf ("\"image/label\": " + classLabel 2 + ", \"objects\": " + seq))
            let specs = FeaturesJson.Load t.Path
            Expect.equal (specs |> Seq.map (fun s -> s.Key, List.ofSeq s.ClassNames) |> List.ofSeq) [ "image/label", [ "a"; "b" ]; "objects/label", [ "x"; "y"; "z" ] ] "names"
            Expect.equal (FeaturesJson.LabelsFileName [| "a"; "b"; "c" |]) "a-b-c.labels.txt" "a-b-c"
        testCase "a labels file with the wrong count is an error naming both counts" <| fun () ->
            use t = new TempDir()
            write t.Path "label.labels.txt" "cat\ndog\n"
            write t.Path "features.json" (labelFeatures "label" (classLabel 3))
            let e = badFormat (fun () -> FeaturesJson.Load t.Path |> ignore) "has 2 class names, but features.json declares numClasses = 3"
            Expect.stringContains e.Message "label.labels.txt" "names the file"
        testCase "duplicate class names are an error" <| fun () ->
            use t = new TempDir()
            write t.Path "label.labels.txt" "cat\ndog\ncat\n"
            write t.Path "features.json" (labelFeatures "label" (classLabel 3))
            badFormat (fun () -> FeaturesJson.Load t.Path |> ignore) "class name 'cat' appears twice" |> ignore
    ]

let selectionTests =
    testList "split selection" [
        testCase "train[:10%]+test gives full paths, skip/take and the interleaved order" <| fun () ->
            use t = new TempDir()
            let d = mnistDir t.Path
            let sel = (Catalog.Open(t.Path, "mnist")).Select "train[:10%]+test"
            Expect.equal (sel.Instructions |> Seq.map (fun i -> Path.GetFileName i.Path, i.Skip, i.Take, i.ShardLength) |> List.ofSeq)
                [ "mnist-train.tfrecord-00000-of-00001", 0L, 6000L, 60000L; "mnist-test.tfrecord-00000-of-00001", 0L, 10000L, 10000L ] "instructions"
            Expect.equal sel.Instructions[0].Path (Path.Combine(d, "mnist-train.tfrecord-00000-of-00001")) "full path"
            Expect.equal sel.NumExamples 16000L "total"
            Expect.equal (sel.ReadOrder |> Seq.take 3 |> Seq.map (fun b -> b.Instruction, b.Start, b.Count) |> List.ofSeq) [ 0, 0L, 16; 1, 0L, 16; 0, 16L, 16 ] "interleaved"
            Expect.equal (sel.Instructions[1].TfdsId 45L) "mnist-test.tfrecord-00000-of-00001__45" "tfds_id"
        testCase "an absent split lists the splits present" <| fun () ->
            use t = new TempDir()
            mnistDir t.Path |> ignore
            let e = notFound (fun () -> (Catalog.Open(t.Path, "mnist")).Select "validation" |> ignore) "Split 'validation'"
            Expect.stringContains e.Message "Splits present: train, test" "lists splits"
        testCase "a bad split spec shows the spec and position" <| fun () ->
            use t = new TempDir()
            mnistDir t.Path |> ignore
            let e = throwsWith<SpecFormatException> (fun () -> (Catalog.Open(t.Path, "mnist")).Select "train[5]" |> ignore) "bad spec"
            Expect.stringContains e.Message "'train[5]'" "spec"
            Expect.equal e.Position 6 "position"
        testCase "a missing shard is reported with its full path before anything is read" <| fun () ->
            use t = new TempDir()
            let info = mnistInfo.Replace("\"shardLengths\": [ \"60000\" ]", "\"shardLengths\": [ \"30000\", \"0\", \"30000\" ]")
            let d = versionDir t.Path "mnist/3.0.1" info mnistFeatures [ "mnist-train.tfrecord-00000-of-00003" ]
            let b = Catalog.Open(t.Path, "mnist")
            Expect.equal (b.Select "train[:10]").Instructions.Count 1 "only the first shard is needed for [:10]"
            let e = notFound (fun () -> b.Select "train" |> ignore) "is missing"
            Expect.stringContains e.Message (Path.Combine(d, "mnist-train.tfrecord-00002-of-00003")) "full path of the missing shard"
            Expect.isFalse (e.Message.Contains "00001-of-00003") "the zero-length shard need not exist"
        testCase "disableShuffling gives shard-by-shard order" <| fun () ->
            use t = new TempDir()
            let info = mnistInfo.Replace("\"shardLengths\": [ \"60000\" ]", "\"shardLengths\": [ \"20\", \"20\" ]").Replace("\"version\": \"3.0.1\"", "\"version\": \"3.0.1\", \"disableShuffling\": true")
            versionDir t.Path "mnist/3.0.1" info mnistFeatures [ "mnist-train.tfrecord-00000-of-00002"; "mnist-train.tfrecord-00001-of-00002" ] |> ignore
            let sel = (Catalog.Open(t.Path, "mnist")).Select "train"
            Expect.isTrue sel.DisableShuffling "flag"
            Expect.equal (sel.ReadOrder |> Seq.map (fun b -> b.Instruction, b.Start, b.Count) |> List.ofSeq) [ 0, 0L, 16; 0, 16L, 4; 1, 0L, 16; 1, 16L, 4 ] "sequential"
        testCase "a gzip-compressed or Parquet shard is refused" <| fun () ->
            use t = new TempDir()
            let d = mnistDir t.Path
            File.WriteAllBytes(Path.Combine(d, "mnist-test.tfrecord-00000-of-00001"), [| 0x1Fuy; 0x8Buy; 8uy; 0uy |])
            File.WriteAllBytes(Path.Combine(d, "mnist-train.tfrecord-00000-of-00001"), "PAR1xxxx"B)
            let b = Catalog.Open(t.Path, "mnist")
            badFormat (fun () -> b.Select "test" |> ignore) "compressed TFRecord not supported" |> ignore
            badFormat (fun () -> b.Select "train" |> ignore) "is a Parquet file" |> ignore
    ]

[<Tests>]
let tests = testList "Io.Catalog" [ directoryTests; resolveTests; infoTests; featuresTests; labelTests; selectionTests ]
