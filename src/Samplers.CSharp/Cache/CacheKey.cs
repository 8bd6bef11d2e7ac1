using System.Security.Cryptography;
using System.Text;

namespace Samplers.Cache;

/// <summary>
/// Identifies one cache file: a split selection of one dataset version read with one (x_key, y_key) pair.
/// Two keys that differ in any field name different files.
/// </summary>
/// <param name="DataDirectory">The TFDS data directory the shards come from (normalised to a full path).</param>
/// <param name="Dataset">Dataset name, e.g. <c>mnist</c>.</param>
/// <param name="Config">Builder config name; empty when the dataset has none.</param>
/// <param name="Version">Dataset version, e.g. <c>3.0.1</c>.</param>
/// <param name="Split">The normalised split spec, e.g. <c>train+test</c> or <c>train[:50%]</c>.</param>
/// <param name="XKey">The feature key of the examples, e.g. <c>image</c>.</param>
/// <param name="YKey">The feature key of the labels, e.g. <c>label</c>.</param>
/// <param name="Preprocess">Empty for the decoded data; else what produced the stored table from it: a declared
/// <see cref="PreprocessIdentity"/> (and decode settings that change its output), e.g.
/// <c>resize(224,224,bilinear,antialias=false,uint8)#v1</c>.</param>
/// <param name="Decoder">Empty, or the decoder whose output the table holds when it is not the original one (e.g.
/// <c>jpeg=libturbojpeg-fast-idct</c>): see <see cref="Imaging.IImageCodec.CacheIdentity"/>.</param>
internal sealed record CacheKey(string DataDirectory, string Dataset, string Config, string Version, string Split, string XKey, string YKey, string Preprocess = "",
    string Decoder = "")
{
    /// <summary>
    /// The key as one unambiguous string (fields separated by U+001F, the data directory as a full path); stored in the
    /// cache file's metadata and compared on load, so a hash collision in the file name can never serve wrong data.
    /// </summary>
    /// <remarks>Without a preprocess and a decoder the string is what it was before they were keyed, so existing cache
    /// files stay valid.</remarks>
    public string Canonical
    {
        get
        {
            string plain = string.Join('\u001f', "samplers-cache-key-v1", NormalizeDirectory(DataDirectory), Dataset, Config, Version, Split, XKey, YKey);
            if (!string.IsNullOrEmpty(Preprocess)) plain = string.Concat(plain, "\u001fpreprocess=", Preprocess);
            return string.IsNullOrEmpty(Decoder) ? plain : string.Concat(plain, "\u001fdecoder=", Decoder);
        }
    }

    /// <summary>SHA-256 of <see cref="Canonical"/> as lower-case hex (stable across processes and machines).</summary>
    public string Hash => Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(Canonical)));

    /// <summary>
    /// The readable file name, e.g. <c>mnist-3.0.1-train+test-image-label-1a2b3c4d5e6f.parquet</c>: the parts a person
    /// recognises, then 12 hex digits of <see cref="Hash"/> that keep keys differing only in the directory apart.
    /// </summary>
    public string FileName
    {
        get
        {
            var sb = new StringBuilder();
            sb.Append(Clean(Dataset, 40));
            if (Config.Length > 0) sb.Append('-').Append(Clean(Config, 40));
            sb.Append('-').Append(Clean(Version, 20)).Append('-').Append(Clean(Split, 60))
              .Append('-').Append(Clean(XKey, 30)).Append('-').Append(Clean(YKey, 30));
            if (!string.IsNullOrEmpty(Preprocess)) sb.Append('-').Append(Clean(Preprocess, 48));
            sb              .Append('-').Append(Hash.AsSpan(0, 12)).Append(".parquet");
            return sb.ToString();
        }
    }

    /// <summary>Checks that every field is usable.</summary>
    /// <exception cref="ArgumentException">A field is null or empty (only <see cref="Config"/> may be empty).</exception>
    public void Validate()
    {
        Require(DataDirectory, nameof(DataDirectory));
        Require(Dataset, nameof(Dataset));
        ArgumentNullException.ThrowIfNull(Config, nameof(Config));
        Require(Version, nameof(Version));
        Require(Split, nameof(Split));
        Require(XKey, nameof(XKey));
        Require(YKey, nameof(YKey));
        ArgumentNullException.ThrowIfNull(Preprocess, nameof(Preprocess));
        ArgumentNullException.ThrowIfNull(Decoder, nameof(Decoder));
    }

    private static void Require(string? value, string name)
    {
        if (string.IsNullOrEmpty(value))
            throw new ArgumentException($"CacheKey.{name} must not be empty; pass the value the loader resolved.", name);
    }

    private static string NormalizeDirectory(string dir) =>
        Path.TrimEndingDirectorySeparator(Path.GetFullPath(dir));

    // Keeps file names portable: letters, digits and . + _ = stay; anything else (slashes, brackets, %, :) becomes '_'.
    private static string Clean(string s, int max)
    {
        var sb = new StringBuilder(Math.Min(s.Length, max));
        foreach (char c in s)
        {
            if (sb.Length == max) break;
            sb.Append(char.IsAsciiLetterOrDigit(c) || c is '.' or '+' or '_' or '=' ? c : '_');
        }
        return sb.Length == 0 ? "_" : sb.ToString();
    }
}
