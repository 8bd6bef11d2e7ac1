module Samplers.Tests.Io.FeaturesTests

open System
open System.IO
open System.Text
open System.Text.Json
open Expecto
open Samplers
open Samplers.Imaging
open Samplers.Tfds
open Samplers.Tests.TestUtil

let loc = RecordLocation("data/x.tfrecord", 7L, 1234L)

let spec key kind dtype (shape: int[]) = FeatureSpec(key, kind, "", dtype, shape)
let tensor key dtype shape = spec key FeatureKind.Tensor dtype shape
let withEncoding (e: TensorEncoding) (s: FeatureSpec) =
    FeatureSpec(s.Key, s.Kind, s.PythonClassName, s.DType, s.Shape, e, s.NumClasses, s.ClassNames, s.EncodingFormat, s.InSequence, s.Optional)

let decode (s: FeatureSpec) (b: ExampleBuilder) = FeatureDecoder.Decode(s, b.ToExample().Features, loc)
let measure (s: FeatureSpec) (b: ExampleBuilder) = FeatureDecoder.MeasureShape(s, b.ToExample().Features, loc)

let floats (d: byte[]) = Array.init (d.Length / 4) (fun i -> BitConverter.ToSingle(d, 4 * i))
let doubles (d: byte[]) = Array.init (d.Length / 8) (fun i -> BitConverter.ToDouble(d, 8 * i))
let int32s (d: byte[]) = Array.init (d.Length / 4) (fun i -> BitConverter.ToInt32(d, 4 * i))
let int16s (d: byte[]) = Array.init (d.Length / 2) (fun i -> BitConverter.ToInt16(d, 2 * i))
let int64s (d: byte[]) = Array.init (d.Length / 8) (fun i -> BitConverter.ToInt64(d, 8 * i))
let halves (d: byte[]) = Array.init (d.Length / 2) (fun i -> BitConverter.ToHalf(d, 2 * i))

let dataError (f: unit -> unit) (phrases: string list) =
    let e = throwsWith<DataFormatException> f "data error"
    for p in phrases do Expect.stringContains e.Message p $"message contains '{p}'"
    e

/// A stand-in for the image decoder: records calls, "decodes" by copying the encoded bytes.
type FakeImages(shape: int[]) =
    member val Measured = 0 with get, set
    interface IEncodedImageDecoder with
        member this.MeasureShape(_, _, _) =
            this.Measured <- this.Measured + 1
            shape
        member _.DecodeInto(_, encoded, destination, _) = encoded.CopyTo destination

let labelSpec = FeatureSpec("label", FeatureKind.ClassLabel, "", DType.Int64, [||], NumClasses = 10L)

let decoding =
    testList "decoding" [
        testCase "ClassLabel decodes to int64 and -1 passes" <| fun () ->
            for v in [ 3L; -1L; 0L ] do
                let ex = ExampleBuilder().AddLabel("label", v).ToExample()
                Expect.equal (FeatureDecoder.ReadLabel(labelSpec, ex.Features, loc)) v "ReadLabel"
                Expect.equal (int64s (decode labelSpec (ExampleBuilder().AddLabel("label", v))).Data) [| v |] "Decode"
        testCase "an extra key in the Example is ignored" <| fun () ->
            let b = ExampleBuilder().AddLabel("label", 4L).AddText("unrelated", "x").AddFloats("other", 1.0f)
            Expect.equal (FeatureDecoder.ReadLabel(labelSpec, b.ToExample().Features, loc)) 4L "label"
        testCase "integer dtypes truncate as C casts do, uint64 reinterprets, bool is value <> 0" <| fun () ->
            let one dtype (v: int64) = (decode (tensor "x" dtype [||]) (ExampleBuilder().AddInt64s("x", [| v |]))).Data
            Expect.equal (one DType.Int8 300L) [| 44uy |] "int8 wraps"
            Expect.equal (one DType.UInt8 -1L) [| 255uy |] "uint8 wraps"
            Expect.equal (BitConverter.ToUInt64(one DType.UInt64 -1L, 0)) UInt64.MaxValue "uint64 bit pattern"
            Expect.equal (BitConverter.ToInt32(one DType.Int32 0x1_0000_0005L, 0)) 5 "int32 truncates"
            Expect.equal (BitConverter.ToUInt16(one DType.UInt16 70000L, 0)) 4464us "uint16 wraps"
            Expect.equal (BitConverter.ToInt16(one DType.Int16 -2L, 0)) -2s "int16"
            Expect.equal (BitConverter.ToUInt32(one DType.UInt32 -1L, 0)) UInt32.MaxValue "uint32 wraps"
            let bools = decode (tensor "b" DType.Bool [| 4 |]) (ExampleBuilder().AddInt64s("b", 0L, 2L, -1L, 1L))
            Expect.equal bools.Data [| 0uy; 1uy; 1uy; 1uy |] "bool"
        testCase "float32 (2, 3), float64 widened from float32, float16 rounded to nearest even" <| fun () ->
            let f32 = decode (tensor "f" DType.Float32 [| 2; 3 |]) (ExampleBuilder().AddFloats("f", 1f, 2f, 3f, 4f, 5f, -6.5f))
            Expect.equal f32.Shape [| 2; 3 |] "shape"
            Expect.equal (floats f32.Data) [| 1f; 2f; 3f; 4f; 5f; -6.5f |] "values"
            let f64 = decode (tensor "d" DType.Float64 [||]) (ExampleBuilder().AddFloats("d", 0.1f))
            Expect.equal (doubles f64.Data) [| float 0.1f |] "float64 keeps the float32 value, not 0.1"
            Expect.notEqual (doubles f64.Data).[0] 0.1 "precision was lost at write time"
            // 1 + 2^-11 is halfway between 1 and 1 + 2^-10: ties go to the even one (1.0); 1 + 3*2^-11 goes up to 1 + 2^-9.
            let h = decode (tensor "h" DType.Float16 [| 2 |]) (ExampleBuilder().AddFloats("h", 1f + 0.00048828125f, 1f + 3f * 0.00048828125f))
            Expect.equal (halves h.Data) [| Half.One; Half.op_Explicit (1.0f + 0.001953125f) |] "float16 ties to even"
        testCase "a tensor built by ExampleBuilder in each encoding decodes to the same values" <| fun () ->
            let values = [| 1; -2; 3; 400000; 5; -6 |]
            for enc in [ TensorEncoding.None; TensorEncoding.Bytes; TensorEncoding.Zlib ] do
                let s = tensor "t" DType.Int32 [| 2; 3 |] |> withEncoding enc
                let got = decode s (ExampleBuilder().AddTensor(s, values))
                Expect.equal got.Shape [| 2; 3 |] $"{enc} shape"
                Expect.equal (int32s got.Data) values $"{enc} values"
        testProperty "int64, int32, uint8, bool and float32 tensors round-trip in every encoding" <| fun (values: int64[]) (pick: byte) ->
            let values = if isNull values then [||] else values
            let n = values.Length
            let enc = [| TensorEncoding.None; TensorEncoding.Bytes; TensorEncoding.Zlib |].[int pick % 3]
            let check dtype (arr: Array) (expected: byte[]) =
                // Declared (-1): the count is inferred from the data, so every length is a valid example.
                let s = tensor "v" dtype [| -1 |] |> withEncoding enc
                let got = decode s (ExampleBuilder().AddTensor(s, arr, [| n |]))
                got.Shape = [| n |] && got.Data = expected
            let le (f: 'T -> byte[]) (xs: 'T[]) = xs |> Array.collect f
            check DType.Int64 values (le (fun (v: int64) -> BitConverter.GetBytes v) values)
            && check DType.Int32 (values |> Array.map int32) (le (fun (v: int32) -> BitConverter.GetBytes v) (values |> Array.map int32))
            && check DType.UInt8 (values |> Array.map byte) (values |> Array.map byte)
            && check DType.Bool (values |> Array.map (fun v -> v <> 0L)) (values |> Array.map (fun v -> if v <> 0L then 1uy else 0uy))
            && check DType.Float32 (values |> Array.map float32) (le (fun (v: float32) -> BitConverter.GetBytes v) (values |> Array.map float32))
        testCase "encoding bytes: float16 (2, 3) is little-endian halves" <| fun () ->
            let s = tensor "h" DType.Float16 [| 2; 3 |] |> withEncoding TensorEncoding.Bytes
            let values = [| Half.op_Explicit 0.5f; Half.op_Explicit -1f; Half.MaxValue; Half.Epsilon; Half.Zero; Half.op_Explicit 3.25f |]
            let ex = ExampleBuilder().AddTensor(s, values).ToExample()
            let raw = ex.Features.Feature["h"].BytesList.Value[0].ToByteArray()
            Expect.equal raw.Length 12 "6 x 2 bytes stored"
            Expect.equal raw[0..1] [| 0x00uy; 0x38uy |] "0.5 as LE half"
            Expect.equal (halves (FeatureDecoder.Decode(s, ex.Features, loc)).Data) values "values"
        testCase "encoding zlib: uint8 is stored as a zlib stream and inflated" <| fun () ->
            let s = tensor "z" DType.UInt8 [| 4; 4 |] |> withEncoding TensorEncoding.Zlib
            let values = Array.init 16 byte
            let ex = ExampleBuilder().AddTensor(s, values).ToExample()
            Expect.equal (ex.Features.Feature["z"].BytesList.Value[0].[0]) 0x78uy "zlib header"
            Expect.equal (FeatureDecoder.Decode(s, ex.Features, loc)).Data values "values"
        testCase "a (-1, -1) tensor is read through <key>/shape and <key>/value" <| fun () ->
            let s = tensor "m" DType.Int32 [| -1; -1 |] |> withEncoding TensorEncoding.Bytes
            let b = ExampleBuilder().AddTensor(s, [| 1; 2; 3; 4; 5; 6 |], [| 3; 2 |])
            let keys = b.ToExample().Features.Feature.Keys |> Seq.sort |> List.ofSeq
            Expect.equal keys [ "m/shape"; "m/value" ] "stored keys"
            Expect.equal (measure s b) [| 3; 2 |] "measured shape"
            Expect.equal (int32s (decode s b).Data) [| 1; 2; 3; 4; 5; 6 |] "values"
            let z = s |> withEncoding TensorEncoding.Zlib
            let got = decode z (ExampleBuilder().AddTensor(z, [| 7; 8 |], [| 1; 2 |]))
            Expect.equal (got.Shape, int32s got.Data) ([| 1; 2 |], [| 7; 8 |]) "zlib dynamic"
        testCase "a first-dimension-unknown tensor infers rows; a missing key is zero rows" <| fun () ->
            let s = tensor "r" DType.Float32 [| -1; 3 |]
            let got = decode s (ExampleBuilder().AddFloats("r", 1f, 2f, 3f, 4f, 5f, 6f))
            Expect.equal got.Shape [| 2; 3 |] "two rows"
            let empty = decode s (ExampleBuilder().AddLabel("label", 1L))
            Expect.equal (empty.Shape, empty.Data.Length) ([| 0; 3 |], 0) "zero rows"
            let bytesEnc = tensor "q" DType.Int16 [| -1; 2 |] |> withEncoding TensorEncoding.Bytes
            let q = decode bytesEnc (ExampleBuilder().AddTensor(bytesEnc, [| 1s; 2s; 3s; 4s; 5s; 6s |], [| 3; 2 |]))
            Expect.equal (q.Shape, int16s q.Data) ([| 3; 2 |], [| 1s; 2s; 3s; 4s; 5s; 6s |]) "bytes encoding infers rows"
            dataError (fun () -> decode s (ExampleBuilder().AddFloats("r", 1f, 2f, 3f, 4f, 5f)) |> ignore)
                [ "expected a multiple of 3 values"; "found 5 values" ] |> ignore
        testCase "an optional tensor missing from the Example takes the dtype's minimum" <| fun () ->
            let s = FeatureSpec("o", FeatureKind.Tensor, "", DType.Int32, [| 2 |], Optional = true)
            Expect.equal (int32s (decode s (ExampleBuilder().AddLabel("label", 1L))).Data) [| Int32.MinValue; Int32.MinValue |] "minimum"
        testCase "Text is raw bytes; a top-level key containing / resolves" <| fun () ->
            let s = spec "image/filename" FeatureKind.Text DType.Bytes [||]
            let b = ExampleBuilder().AddText("image/filename", "héllo.jpg")
            let got = decode s b
            Expect.equal got.Data (Encoding.UTF8.GetBytes "héllo.jpg") "bytes, not decoded"
            Expect.equal got.Shape [| 10 |] "shape is the byte count"
            Expect.equal (FeatureDecoder.GetBytes(s, b.ToExample().Features, loc).ToArray()) got.Data "GetBytes"
        testCase "BBox is float32 (4); three floats are a count error" <| fun () ->
            let s = FeatureSpec("objects/bbox", FeatureKind.BoundingBox, "", DType.Float32, [| 4 |])
            let got = decode s (ExampleBuilder().AddBoundingBox("objects/bbox", 0.1f, 0.2f, 0.3f, 0.4f))
            Expect.equal (floats got.Data) [| 0.1f; 0.2f; 0.3f; 0.4f |] "bbox"
            dataError (fun () -> decode s (ExampleBuilder().AddFloats("objects/bbox", 0.1f, 0.2f, 0.3f)) |> ignore)
                [ "'objects/bbox'"; "expected 4 values"; "found 3 values" ] |> ignore
        testCase "a nested key a/b is read by its flat key" <| fun () ->
            let s = tensor "a/b" DType.Int64 [||]
            Expect.equal (int64s (decode s (ExampleBuilder().AddInt64s("a/b", 9L))).Data) [| 9L |] "nested"
        testCase "a ClassLabel inside a Sequence has a leading varying dimension" <| fun () ->
            let s = FeatureSpec("objects/label", FeatureKind.ClassLabel, "", DType.Int64, [| -1 |], InSequence = true, NumClasses = 5L)
            let got = decode s (ExampleBuilder().AddInt64s("objects/label", 1L, 4L, -1L))
            Expect.equal (got.Shape, int64s got.Data) ([| 3 |], [| 1L; 4L; -1L |]) "labels"
        testCase "an Image goes to the image decoder: measured only when its shape varies" <| fun () ->
            let fixedSpec = spec "image" FeatureKind.Image DType.UInt8 [| 2; 2; 1 |]
            let fake = FakeImages([| 2; 2; 1 |])
            let b = ExampleBuilder().AddImage("image", [| 1uy; 2uy; 3uy; 4uy |])
            let got = FeatureDecoder.Decode(fixedSpec, b.ToExample().Features, loc, fake)
            Expect.equal (got.Shape, got.Data, fake.Measured) ([| 2; 2; 1 |], [| 1uy; 2uy; 3uy; 4uy |], 0) "fixed"
            let varying = spec "image" FeatureKind.Image DType.UInt8 [| -1; -1; 1 |]
            Expect.equal (FeatureDecoder.MeasureShape(varying, b.ToExample().Features, loc, fake)) [| 2; 2; 1 |] "measured"
            Expect.equal fake.Measured 1 "decoder asked"
            Expect.throwsT<ArgumentNullException> (fun () -> FeatureDecoder.DecodeInto(fixedSpec, b.ToExample().Features, loc, Span(Array.zeroCreate 4), null) |> ignore) "no decoder"
    ]

let errors =
    testList "errors" [
        testCase "a feature key missing in one record names the key, the file and the record" <| fun () ->
            let e = dataError (fun () -> decode labelSpec (ExampleBuilder().AddImage("image", [| 1uy |])) |> ignore)
                        [ "'label'"; "data/x.tfrecord"; "record 7"; "features.json has a key the data lacks"; "Keys present: image" ]
            Expect.equal e.Key "label" "Key property"
            Expect.equal e.FilePath "data/x.tfrecord" "FilePath property"
            dataError (fun () -> FeatureDecoder.ReadLabel(labelSpec, ExampleBuilder().ToExample().Features, loc) |> ignore) [ "'label'"; "(none)" ] |> ignore
        testCase "a wrong list kind says expected and found" <| fun () ->
            dataError (fun () -> decode labelSpec (ExampleBuilder().AddFloats("label", 3f)) |> ignore)
                [ "expected int64_list"; "found float_list" ] |> ignore
            dataError (fun () -> decode (tensor "f" DType.Float32 [||]) (ExampleBuilder().AddInt64s("f", 3L)) |> ignore)
                [ "expected float_list"; "found int64_list" ] |> ignore
        testCase "a wrong value count (dtype or shape differing from features.json) says expected and found" <| fun () ->
            let s = tensor "pixels" DType.UInt8 [| 28; 28; 1 |]
            dataError (fun () -> decode s (ExampleBuilder().AddInt64s("pixels", Array.zeroCreate 783)) |> ignore)
                [ "expected 784 values"; "found 783 values"; "(28, 28, 1)" ] |> ignore
            dataError (fun () -> decode labelSpec (ExampleBuilder().AddInt64s("label", 1L, 2L)) |> ignore)
                [ "expected 1 value"; "found 2" ] |> ignore
            let b = tensor "b" DType.Float32 [| 2; 3 |] |> withEncoding TensorEncoding.Bytes
            dataError (fun () -> decode b (ExampleBuilder().AddBytes("b", Array.zeroCreate<byte> 20)) |> ignore)
                [ "expected 24 bytes"; "found 20 bytes" ] |> ignore
            let z = tensor "z" DType.UInt8 [| 4 |] |> withEncoding TensorEncoding.Zlib
            let five = ExampleBuilder().AddTensor(tensor "z" DType.UInt8 [| 5 |] |> withEncoding TensorEncoding.Zlib, Array.zeroCreate<byte> 5)
            dataError (fun () -> decode z five |> ignore) [ "expected 4 bytes after zlib" ] |> ignore
        testCase "bytes that do not inflate are a format error" <| fun () ->
            let z = tensor "z" DType.UInt8 [| 4 |] |> withEncoding TensorEncoding.Zlib
            dataError (fun () -> decode z (ExampleBuilder().AddBytes("z", [| 1uy; 2uy; 3uy; 4uy |])) |> ignore) [ "does not inflate" ] |> ignore
        testCase "a stored dynamic shape that contradicts a declared dimension is an error" <| fun () ->
            let s = tensor "m" DType.UInt8 [| -1; -1; 3 |] |> withEncoding TensorEncoding.Bytes
            let b = ExampleBuilder().AddInt64s("m/shape", 1L, 2L, 4L).AddBytes("m/value", Array.zeroCreate<byte> 8)
            dataError (fun () -> measure s b |> ignore) [ "'m/shape'"; "(1, 2, 4)"; "(-1, -1, 3)" ] |> ignore
            dataError (fun () -> measure s (ExampleBuilder().AddBytes("m/value", Array.empty<byte>)) |> ignore) [ "'m/shape'"; "missing" ] |> ignore
        testCase "a destination of the wrong length is a caller error" <| fun () ->
            let s = tensor "f" DType.Float32 [| 2 |]
            let f = ExampleBuilder().AddFloats("f", 1f, 2f).ToExample().Features
            Expect.throwsT<ArgumentException> (fun () -> FeatureDecoder.DecodeInto(s, f, loc, Span(Array.zeroCreate 7)) |> ignore) "7 bytes"
        testCase "shapes TFDS cannot parse and non-label features as labels are refused" <| fun () ->
            let f = ExampleBuilder().AddFloats("x", 1f).ToExample().Features
            Expect.throwsT<NotSupportedException> (fun () -> FeatureDecoder.MeasureShape(tensor "x" DType.Float32 [| 3; -1 |], f, loc) |> ignore) "(3, -1) with encoding none"
            Expect.throwsT<ArgumentException> (fun () -> FeatureDecoder.ReadLabel(tensor "x" DType.Float32 [||], f, loc) |> ignore) "float label"
        testCase "ExampleBuilder checks element type and count" <| fun () ->
            let s = tensor "t" DType.Int32 [| 2 |]
            Expect.throwsT<ArgumentException> (fun () -> ExampleBuilder().AddTensor(s, [| 1L; 2L |]) |> ignore) "long[] for int32"
            Expect.throwsT<ArgumentException> (fun () -> ExampleBuilder().AddTensor(s, [| 1; 2; 3 |]) |> ignore) "3 values for (2)"
            Expect.throwsT<ArgumentException> (fun () -> ExampleBuilder().AddTensor(tensor "t" DType.Int32 [| -1 |], [| 1 |]) |> ignore) "no shape for (-1)"
    ]

let readJson (path: string) = JsonDocument.Parse(File.ReadAllBytes path).RootElement

let writer =
    testList "dataset writer" [
        testCase "writes shards by the template, JSON in proto form, labels, and records that decode" <| fun () ->
            use dir = new TempDir()
            let vdir = Path.Combine(dir.Path, "toy", "1.0.0")
            let image = FeatureSpec("image", FeatureKind.Image, "", DType.UInt8, [| 2; 2; 1 |], EncodingFormat = "png")
            let label = FeatureSpec("label", FeatureKind.ClassLabel, "", DType.Int64, [||], NumClasses = 3L, ClassNames = [| "cat"; "dog"; "eel" |])
            let emb = tensor "meta/emb" DType.Float16 [| 3 |] |> withEncoding TensorEncoding.Zlib
            let w = TfdsDatasetWriter(vdir, "toy", "1.0.0", [ DatasetFeature.Nested image; DatasetFeature.Nested label; DatasetFeature.Nested emb ],
                                      SupervisedKeys = Nullable<struct (string * string)>(struct ("image", "label")))
            let mk i =
                ExampleBuilder().AddImage("image", Array.create 4 (byte i)).AddLabel("label", int64 (i % 3))
                    .AddTensor(emb, [| Half.op_Explicit (float32 i); Half.One; Half.Zero |]).ToByteArray()
            let train = w.WriteSplit("train", [ for i in 0 .. 9 -> mk i ], 3)
            let test = w.WriteSplit("test", [ for i in 10 .. 13 -> mk i ])
            w.Complete()
            Expect.equal (train |> Seq.map Path.GetFileName |> List.ofSeq)
                [ "toy-train.tfrecord-00000-of-00003"; "toy-train.tfrecord-00001-of-00003"; "toy-train.tfrecord-00002-of-00003" ] "train shards"
            Expect.equal (test |> Seq.map Path.GetFileName |> List.ofSeq) [ "toy-test.tfrecord-00000-of-00001" ] "test shard"
            let lengths = train |> Seq.map (fun p -> (TfRecordReader.ReadAllRecords p).Count) |> List.ofSeq
            Expect.equal lengths [ 4; 3; 3 ] "records distributed in order"
            // Read every train record back and decode it.
            let fake = FakeImages([| 2; 2; 1 |])
            let mutable i = 0
            for p in train do
                use r = new TfRecordReader(p)
                let mutable rec' = Unchecked.defaultof<TfRecord>
                while r.TryReadNext(&rec') do
                    let ex = ExampleDecoder.Parse(r, rec')
                    let at = RecordLocation.Of(r, rec')
                    Expect.equal (FeatureDecoder.ReadLabel(label, ex.Features, at)) (int64 (i % 3)) "label"
                    Expect.equal (FeatureDecoder.Decode(image, ex.Features, at, fake)).Data (Array.create 4 (byte i)) "image bytes"
                    Expect.equal (halves (FeatureDecoder.Decode(emb, ex.Features, at)).Data) [| Half.op_Explicit (float32 i); Half.One; Half.Zero |] "tensor"
                    i <- i + 1
            Expect.equal i 10 "all train records"
            let info = readJson (Path.Combine(vdir, "dataset_info.json"))
            Expect.equal (info.GetProperty("name").GetString()) "toy" "name"
            Expect.equal (info.GetProperty("version").GetString()) "1.0.0" "version"
            Expect.equal (info.GetProperty("fileFormat").GetString()) "tfrecord" "fileFormat"
            let splits = info.GetProperty("splits").EnumerateArray() |> List.ofSeq
            Expect.equal (splits |> List.map (fun s -> s.GetProperty("name").GetString())) [ "train"; "test" ] "split order"
            let shardLengths = splits[0].GetProperty("shardLengths").EnumerateArray() |> Seq.map (fun e -> e.ValueKind, e.GetString()) |> List.ofSeq
            Expect.equal shardLengths [ JsonValueKind.String, "4"; JsonValueKind.String, "3"; JsonValueKind.String, "3" ] "int64 as strings"
            Expect.equal (splits[0].GetProperty("filepathTemplate").GetString()) TfdsDatasetWriter.DefaultTemplate "template"
            Expect.equal (splits[0].GetProperty("numBytes").ValueKind) JsonValueKind.String "numBytes as a string"
            let items = info.GetProperty("supervisedKeys").GetProperty("tuple").GetProperty("items").EnumerateArray() |> Seq.map (fun e -> e.GetProperty("featureKey").GetString()) |> List.ofSeq
            Expect.equal items [ "image"; "label" ] "supervised keys"
            let feats = readJson (Path.Combine(vdir, "features.json"))
            Expect.stringContains (feats.GetProperty("pythonClassName").GetString()) "FeaturesDict" "top is a FeaturesDict"
            let members = feats.GetProperty("featuresDict").GetProperty("features")
            Expect.equal (members.GetProperty("label").GetProperty("classLabel").GetProperty("numClasses").GetString()) "3" "numClasses as a string"
            let dims = members.GetProperty("image").GetProperty("image").GetProperty("shape").GetProperty("dimensions").EnumerateArray() |> Seq.map (fun e -> e.GetString()) |> List.ofSeq
            Expect.equal dims [ "2"; "2"; "1" ] "image dims as strings"
            let embJson = members.GetProperty("meta").GetProperty("featuresDict").GetProperty("features").GetProperty("emb").GetProperty("tensor")
            Expect.equal (embJson.GetProperty("encoding").GetString(), embJson.GetProperty("dtype").GetString()) ("zlib", "float16") "nested tensor"
            Expect.equal (File.ReadAllText(Path.Combine(vdir, "label.labels.txt"))) "cat\ndog\neel\n" "labels file"
            let leftovers = Directory.GetFiles(vdir) |> Array.filter (fun f -> f.EndsWith ".tmp")
            Expect.isEmpty leftovers "no temporary files left"
        testCase "a top-level key with / stays one member; a sequenced feature is a Sequence of a FeaturesDict" <| fun () ->
            use dir = new TempDir()
            let fname = spec "image/filename" FeatureKind.Text DType.Bytes [||]
            let objLabel = FeatureSpec("objects/label", FeatureKind.ClassLabel, "", DType.Int64, [| -1 |], InSequence = true, NumClasses = 2L, ClassNames = [| "a"; "b" |])
            let w = TfdsDatasetWriter(dir.Path, "birds", "1.0.0", [ DatasetFeature.TopLevel fname; DatasetFeature.Nested objLabel ])
            w.Complete()
            let members = (readJson (Path.Combine(dir.Path, "features.json"))).GetProperty("featuresDict").GetProperty("features")
            Expect.isTrue (members.TryGetProperty("image/filename") |> fst) "key with / at top level"
            let seq = members.GetProperty("objects")
            Expect.stringContains (seq.GetProperty("pythonClassName").GetString()) "Sequence" "objects is a Sequence"
            let inner = seq.GetProperty("sequence").GetProperty("feature").GetProperty("featuresDict").GetProperty("features").GetProperty("label")
            Expect.equal (inner.GetProperty("classLabel").GetProperty("numClasses").GetString()) "2" "label inside"
            Expect.isTrue (File.Exists(Path.Combine(dir.Path, "objects-label.labels.txt"))) "labels file named by the path"
        testCase "the older dataset_info form omits filepathTemplate and fileFormat but keeps the default names" <| fun () ->
            use dir = new TempDir()
            let w = TfdsDatasetWriter(dir.Path, "old", "2.0.0", [ labelSpec ], FilepathTemplate = null, FileFormat = null, ConfigName = "cfg")
            let shards = w.WriteSplit("train", [ for i in 0 .. 4 -> ExampleBuilder().AddLabel("label", int64 i).ToByteArray() ], 2)
            w.Complete()
            Expect.equal (shards |> Seq.map Path.GetFileName |> List.ofSeq) [ "old-train.tfrecord-00000-of-00002"; "old-train.tfrecord-00001-of-00002" ] "default names"
            let info = readJson (Path.Combine(dir.Path, "dataset_info.json"))
            Expect.isFalse (info.TryGetProperty("fileFormat") |> fst) "no fileFormat"
            Expect.isFalse (info.GetProperty("splits").[0].TryGetProperty("filepathTemplate") |> fst) "no filepathTemplate"
            Expect.equal (info.GetProperty("configName").GetString()) "cfg" "configName"
            Expect.isFalse (File.Exists(Path.Combine(dir.Path, "label.labels.txt"))) "no labels file without names"
        testCase "shard names use width max(5, digits); unknown placeholders are refused" <| fun () ->
            Expect.equal (TfdsDatasetWriter.ShardName(TfdsDatasetWriter.DefaultTemplate, "d", "train", "tfrecord", 7, 100000)) "d-train.tfrecord-000007-of-100000" "width 6"
            Expect.equal (TfdsDatasetWriter.ShardName("{SPLIT}/{SHARD_INDEX}.{NUM_SHARDS}", "d", "x", "tfrecord", 0, 1)) "x/00000.00001" "other placeholders"
            Expect.throwsT<ArgumentException> (fun () -> TfdsDatasetWriter.ShardName("{WHAT}", "d", "x", "tfrecord", 0, 1) |> ignore) "unknown placeholder"
        testCase "call-order and argument mistakes are refused" <| fun () ->
            use dir = new TempDir()
            let w = TfdsDatasetWriter(dir.Path, "d", "1.0.0", [ labelSpec ])
            w.WriteSplit("train", [ [| 1uy |] ]) |> ignore
            Expect.throwsT<InvalidOperationException> (fun () -> w.WriteSplit("train", [ [| 1uy |] ]) |> ignore) "split twice"
            Expect.throwsT<ArgumentOutOfRangeException> (fun () -> w.WriteSplit("test", [ [| 1uy |] ], 0) |> ignore) "zero shards"
            w.Complete()
            Expect.throwsT<InvalidOperationException> (fun () -> w.WriteSplit("test", [ [| 1uy |] ]) |> ignore) "after Complete"
            Expect.throwsT<ArgumentException> (fun () -> TfdsDatasetWriter(dir.Path, "d", "1.0.0", [ DatasetFeature(labelSpec, [| "other" |]) ]) |> ignore) "path/key mismatch"
    ]

[<Tests>]
let tests = testList "Io.Features" [ decoding; errors; writer ]
