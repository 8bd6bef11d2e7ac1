
namespace Samplers.Tfds;

/// <summary>Checks of metadata-declared sizes made before the loader allocates anything from them.</summary>
internal static class LoadLimits
{
    /// <summary>
    /// Refuses an <c>x_key</c> feature whose declared fixed shape makes one example larger than a chunk of the table
    /// (e.g. a features.json shape of 10^9 x 10^9): a data error naming the file, not an argument error.
    /// </summary>
    /// <exception cref="DataFormatException">One example cannot fit in one chunk.</exception>
    public static void CheckExampleFits(DatasetBuilderDir builder, FeatureSpec x, DType dtype, int[] shape, long chunkBytes)
    {
        double bytes = DTypes.SizeOf(dtype);
        foreach (int d in shape) if (d > 0) bytes *= d;
        long limit = Math.Min(chunkBytes, Array.MaxLength);
        if (bytes > limit)
        {
            string file = Path.Combine(builder.Path, "features.json");
            throw new DataFormatException(
                $"{file}: feature '{x.Key}' declares shape ({string.Join(", ", shape)}) of {DTypes.Name(dtype)}, so one example takes " +
                $"{bytes:0} bytes, more than one chunk of the table ({limit} bytes). The features.json is damaged or the feature is not meant " +
                "to be loaded whole; re-download the dataset or choose another x_key.", file, null, x.Key);
        }
    }
}
