namespace Samplers.Tfds;

/// <summary>Finds the TFDS data directory (TFDS_FORMAT.md 1.1).</summary>
internal static class DataDirectory
{
    /// <summary>The environment variable TFDS reads: <c>TFDS_DATA_DIR</c>.</summary>
    public const string EnvironmentVariable = "TFDS_DATA_DIR";

    /// <summary>
    /// The data directory: <paramref name="explicitDirectory"/> when given, else <c>TFDS_DATA_DIR</c>, else
    /// <c>~/tensorflow_datasets</c>. A leading <c>~</c> is expanded to the user's home directory.
    /// </summary>
    /// <remarks>An empty <c>TFDS_DATA_DIR</c> counts as unset. (Python TFDS takes it literally, meaning the current
    /// directory; we read that as a mistake rather than a wish.) The directory is not checked to exist here.</remarks>
    public static string Resolve(string? explicitDirectory = null) =>
        Resolve(explicitDirectory, Environment.GetEnvironmentVariable(EnvironmentVariable),
            Environment.GetFolderPath(Environment.SpecialFolder.UserProfile));

    /// <summary>The resolution rule with the environment value and home directory passed in (for tests).</summary>
    internal static string Resolve(string? explicitDirectory, string? environmentValue, string home)
    {
        string chosen = !string.IsNullOrEmpty(explicitDirectory) ? explicitDirectory
            : !string.IsNullOrEmpty(environmentValue) ? environmentValue
            : Path.Combine(home, "tensorflow_datasets");
        if (Storage.ObjectStoreLocation.IsRemote(chosen))
            throw new ArgumentException(
                $"the data directory '{chosen}' is in object storage; this operation reads local folders only. Load it through TfdsLoader or the sampler " +
                "(which copy it locally first; docs/OBJECT_STORAGE.md), or give a local data directory.", "options.DataDir");
        if (chosen == "~") chosen = home;
        else if (chosen.StartsWith("~/", StringComparison.Ordinal) || chosen.StartsWith("~" + Path.DirectorySeparatorChar, StringComparison.Ordinal))
            chosen = Path.Combine(home, chosen[2..]);
        return Path.GetFullPath(chosen);
    }
}
