namespace Samplers.Tfds;

/// <summary>
/// Settings of the TFDS-loading sampler (<c>TFDatasetMultiShotMemorySampler</c>): what to load (<see cref="Load"/>, the
/// loader's own settings record), then every <see cref="SamplerOptions"/> setting.
/// </summary>
/// <remarks>Each setting is declared once: loading settings live on <see cref="TfdsLoadOptions"/> (so
/// <see cref="TfdsLoader.LoadAsync"/>, this sampler, the CLI and the experiment scripts read the same record),
/// sampling settings on <see cref="SamplerOptions"/>. Progress and cancellation are arguments of the loading call, not settings.</remarks>
public record TFDatasetSamplerOptions : SamplerOptions
{
    /// <summary>What to load and how (<c>dataset_name</c>, <c>x_key</c>, <c>y_key</c>, <c>splits</c>, then ours: data and
    /// cache directories, downloading, parallelism, chunk size). When <see cref="TfdsLoadOptions.Logger"/> is
    /// null the load logs to <see cref="SamplerOptions.Logger"/>.</summary>
    /// <example><c>new TFDatasetSamplerOptions { Load = new TfdsLoadOptions { DatasetName = "mnist" }, ClassesPerBatch = 10 }</c></example>
    public required TfdsLoadOptions Load { get; init; }
}
