using Samplers.Data;
using Samplers.Imaging;
using Samplers.Tfds;

namespace Samplers.Cli;

/// <summary>A loaded dataset as the commands see it.</summary>
internal sealed record LoadedDataset(DatasetBuilderDir Dir, ExampleTable Table, bool FromCache, string? CachePath);

/// <summary>
/// The one place the CLI loads data. INTERIM: until the loader (TfdsLoader) lands, this reads the TFRecord shards
/// sequentially through the record layer (fixed-shape features only, no cache); it is replaced by the loader call.
/// </summary>
internal static class DatasetLoading
{
    public static Task<LoadedDataset> LoadAsync(TFDatasetSamplerOptions options, IProgress<(long Done, long Total)>? progress, CancellationToken ct)
    {
        var dir = Catalog.Open(options.DataDir, options.DatasetName);
        var x = dir.FindFeature(options.XKey) ?? throw MissingKey(dir, "x_key", options.XKey);
        var y = dir.FindFeature(options.YKey) ?? throw MissingKey(dir, "y_key", options.YKey);
        if (!x.IsFixedShape)
            throw new DataFormatException($"Feature '{x.Key}' has shape ({string.Join(", ", x.Shape)}) with unknown dimensions; this build of the tool loads fixed-shape features only.", dir.Info.FilePath, null, x.Key);
        var selections = options.Splits.Select(dir.Select).ToArray();
        long total = selections.Sum(s => s.NumExamples);
        var builder = ExampleTableBuilder.Fixed(x.DType, x.Shape, checked((int)total));
        if (y.ClassNames is { } names) builder.ClassNames = names;
        int row = 0;
        foreach (var sel in selections)
        {
            foreach (var block in sel.ReadOrder)
            {
                ct.ThrowIfCancellationRequested();
                var ins = sel.Instructions[block.Instruction];
                using var reader = new TfRecordReader(ins.Path);
                reader.Skip(ins.Skip + block.Start);
                for (int i = 0; i < block.Count; i++)
                {
                    if (!reader.TryReadNext(out var record))
                        throw new DataFormatException($"{ins.Path}: ended after {reader.NextIndex} records; dataset_info.json says {ins.ShardLength}. Re-download the dataset.", ins.Path, reader.NextOffset);
                    var location = RecordLocation.Of(reader, record);
                    var example = ExampleDecoder.Parse(reader, record);
                    var slot = builder.Slot(row);
                    if (x.Kind == FeatureKind.Image)
                        ImageDecoder.DecodeFeature(FeatureDecoder.GetBytes(x, example.Features, location).Span, x, slot, location.TfdsId);
                    else
                        FeatureDecoder.DecodeInto(x, example.Features, location, slot);
                    builder.SetLabel(row, FeatureDecoder.ReadLabel(y, example.Features, location));
                    builder.SetId(row, location.TfdsId);
                    row++;
                }
                progress?.Report((row, total));
            }
        }
        return Task.FromResult(new LoadedDataset(dir, builder.Build(), false, null));
    }

    private static DataFormatException MissingKey(DatasetBuilderDir dir, string which, string key) =>
        new($"{which} '{key}' not found - available features are: {string.Join("; ", dir.Features.Select(f => f.ToString()))}. Pass --{(which == "x_key" ? "x-key" : "y-key")} with one of them.",
            dir.Info.FilePath, null, key);
}
