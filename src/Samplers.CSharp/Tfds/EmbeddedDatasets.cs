using System.Reflection;
using System.Security.Cryptography;
using Samplers.Cache;

namespace Samplers.Tfds;

/// <summary>
/// Datasets shipped inside the Samplers assembly, so a first program gets batches offline, with nothing to download:
/// <c>synthetic_digits</c>, 4000 procedural 28x28 grey digits in 10 classes (<c>train</c> 3000, <c>test</c> 1000), in
/// TFDS's own layout (docs/EMBEDDED_DATASET.md). The same bytes as the repository's <c>data/synthetic_digits</c>.
/// </summary>
/// <example>
/// <code>
/// using var sampler = await TFDatasetMultiShotMemorySampler.LoadAsync(new TFDatasetSamplerOptions
/// {
///     Load = EmbeddedDatasets.SyntheticDigits() with { Splits = ["train"] },
///     ClassesPerBatch = 10,
/// });
/// </code>
/// </example>
public static class EmbeddedDatasets
{
    /// <summary>The TFDS name of the embedded digits dataset.</summary>
    public const string SyntheticDigitsName = "synthetic_digits";

    private const string ResourcePrefix = "Samplers.EmbeddedData/";
    private static readonly object Gate = new();

    // The resource names and their content hash: the bytes never change in a process, so they are read and hashed once.
    private static readonly Lazy<(string[] Names, string Hash)> Resources = new(() =>
    {
        Assembly asm = typeof(EmbeddedDatasets).Assembly;
        string[] names = asm.GetManifestResourceNames().Where(n => n.StartsWith(ResourcePrefix, StringComparison.Ordinal)).Order(StringComparer.Ordinal).ToArray();
        if (names.Length == 0)
            throw new InvalidOperationException("This Samplers assembly carries no embedded dataset (it was built without data/synthetic_digits).");
        return (names, ContentHash(asm, names));
    });

    /// <summary>
    /// Load options for the embedded <c>synthetic_digits</c> (both splits, no download): its TFRecord files are written
    /// once into a folder of the Samplers cache directory (<paramref name="cacheDir"/>, else <c>SAMPLERS_CACHE_DIR</c>, else
    /// the platform cache folder) named by a hash of their bytes, then read like any TFDS dataset.
    /// </summary>
    /// <param name="cacheDir">Where the files go; null for the default cache directory.</param>
    /// <returns>Options to change with <c>with { ... }</c> (splits, preprocess, cache settings).</returns>
    /// <exception cref="IOException">The files could not be written (the message names the folder).</exception>
    public static TfdsLoadOptions SyntheticDigits(string? cacheDir = null) => new()
    {
        DatasetName = SyntheticDigitsName,
        DataDir = Extract(ParquetCache.ResolveDirectory(cacheDir)),
        CacheDir = cacheDir,
        Download = null,
    };

    // The data directory holding synthetic_digits/<version>/..., written whole into a temporary sibling and renamed into
    // place, so a reader sees all of it or none; a folder named by the content hash is never rewritten.
    internal static string Extract(string cacheRoot)
    {
        Assembly asm = typeof(EmbeddedDatasets).Assembly;
        (string[] names, string hash) = Resources.Value;
        string target = Path.Combine(cacheRoot, "embedded", hash);
        if (Directory.Exists(Path.Combine(target, SyntheticDigitsName))) return target;
        lock (Gate)
        {
            if (Directory.Exists(Path.Combine(target, SyntheticDigitsName))) return target;
            string parent = Path.Combine(cacheRoot, "embedded");
            string temp = Path.Combine(parent, "." + hash + "." + Guid.NewGuid().ToString("N") + ".tmp");
            try
            {
                Directory.CreateDirectory(parent);
                foreach (string name in names)
                {
                    string relative = name[ResourcePrefix.Length..];
                    if (relative.Contains("..", StringComparison.Ordinal) || Path.IsPathRooted(relative))
                        throw new InvalidOperationException($"Embedded resource {name} has an unsafe path.");
                    string path = Path.Combine(temp, relative);
                    Directory.CreateDirectory(Path.GetDirectoryName(path)!);
                    using Stream source = asm.GetManifestResourceStream(name)!;
                    using var file = new FileStream(path, FileMode.CreateNew, FileAccess.Write);
                    source.CopyTo(file);
                    file.Flush(flushToDisk: true);
                }
                try
                {
                    Directory.Move(temp, target);
                }
                catch (IOException) when (Directory.Exists(Path.Combine(target, SyntheticDigitsName)))
                {
                    // Another process extracted the same bytes first: theirs is as good as ours.
                }
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                throw new IOException($"Could not write the embedded dataset {SyntheticDigitsName} under {parent}: {e.Message} " +
                    "Give a writable folder (SyntheticDigits(cacheDir), or the SAMPLERS_CACHE_DIR environment variable).", e);
            }
            finally
            {
                if (Directory.Exists(temp))
                    try { Directory.Delete(temp, recursive: true); } catch (IOException) { } catch (UnauthorizedAccessException) { }
            }
        }
        return target;
    }

    private static string ContentHash(Assembly asm, string[] names)
    {
        using var h = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        foreach (string name in names)
        {
            h.AppendData(System.Text.Encoding.UTF8.GetBytes(name + "\n"));
            using Stream s = asm.GetManifestResourceStream(name)!;
            byte[] buffer = new byte[81920];
            int n;
            while ((n = s.Read(buffer, 0, buffer.Length)) > 0) h.AppendData(buffer, 0, n);
        }
        return Convert.ToHexStringLower(h.GetHashAndReset())[..16];
    }
}
