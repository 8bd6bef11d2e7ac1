using Samplers.Data;

namespace Samplers;

/// <summary>
/// The reference's <c>TFDatasetMultiShotMemorySampler</c>: a <see cref="MultiShotMemorySampler"/> over a TFDS dataset
/// loaded from its TFRecord files (or the Parquet cache). This class only records what was loaded; loading itself
/// (an async factory and the reference-shaped constructor) is added with the loader.
/// </summary>
public class TFDatasetMultiShotMemorySampler : MultiShotMemorySampler
{
    /// <summary>Hands a loaded table to the sampler (used by the loader). <paramref name="preprocessed"/> true means the loader
    /// already applied <see cref="SamplerOptions.Preprocess"/> (with its cancellation token), so it is not applied again.</summary>
    internal TFDatasetMultiShotMemorySampler(ExampleTable loaded, TFDatasetSamplerOptions options, bool preprocessed)
        : base(loaded, options, applyPreprocess: !preprocessed)
    {
        DatasetOptions = options;
    }

    /// <summary>What was loaded and how.</summary>
    public TFDatasetSamplerOptions DatasetOptions { get; }

    /// <summary>The dataset name (<c>dataset_name</c>).</summary>
    public string DatasetName => DatasetOptions.DatasetName;
}
