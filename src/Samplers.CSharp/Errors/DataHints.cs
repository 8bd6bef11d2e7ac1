namespace Samplers;

/// <summary>What a hint of a data error asks the user to do. A message combining several errors (a dataset not found,
/// then a download that failed too) keeps one hint of each kind, and a front end (the CLI) re-words them in its own
/// options and drops those that do not apply (never "pass --data-dir" when it was passed).</summary>
internal enum HintKind
{
    /// <summary>Check the dataset's name (or version).</summary>
    CheckName,
    /// <summary>Point the data directory (TfdsLoadOptions.DataDir, TFDS_DATA_DIR) at a prepared copy.</summary>
    DataDir,
    /// <summary>Download the dataset (or its missing files).</summary>
    Download,
    /// <summary>The bucket is unreachable: use a reachable mirror.</summary>
    Mirror,
    /// <summary>Turn the download off (TfdsLoadOptions.Download = null).</summary>
    NoDownload,
}

/// <summary>One hint: its kind and the library's wording, a clause without the final period ("check the name").</summary>
internal sealed record DataHint(HintKind Kind, string Text);

/// <summary>Composes a data error's message from its facts and hints, one hint per kind, so combined errors never repeat
/// advice; the parts stay on the exception (<see cref="SamplersDataException.Facts"/>, <see cref="SamplersDataException.Hints"/>)
/// for a front end to re-word.</summary>
internal static class DataHints
{
    public static DataHint CheckName(string text = "check the name") => new(HintKind.CheckName, text);
    public static DataHint DataDir(string text) => new(HintKind.DataDir, text);
    public static DataHint Download(string text) => new(HintKind.Download, text);
    public static DataHint Mirror(string text) => new(HintKind.Mirror, text);
    public static DataHint NoDownload(string text) => new(HintKind.NoDownload, text);

    /// <summary>The hints in order, the first of each kind kept.</summary>
    public static IReadOnlyList<DataHint> Distinct(IEnumerable<DataHint> hints)
    {
        var seen = new HashSet<HintKind>();
        return hints.Where(h => seen.Add(h.Kind)).ToArray();
    }

    /// <summary>Facts, then the hints' clauses (one per kind) as one sentence: "Check the name; or download the dataset."</summary>
    public static string Compose(string facts, IEnumerable<DataHint> hints) => Compose(facts, Distinct(hints).Select(h => h.Text));

    /// <summary>Facts, then the clauses as one sentence.</summary>
    public static string Compose(string facts, IEnumerable<string> clauses)
    {
        var texts = clauses.Where(t => t.Length > 0).ToArray();
        if (texts.Length == 0) return facts;
        string sentence = string.Join("; or ", texts);
        return facts.TrimEnd() + " " + char.ToUpperInvariant(sentence[0]) + sentence[1..] + ".";
    }

    /// <summary>A <see cref="DatasetNotFoundException"/> whose message is <paramref name="facts"/> and the hints.</summary>
    public static DatasetNotFoundException NotFound(string facts, IEnumerable<DataHint> hints, string? filePath = null, string? key = null, Exception? inner = null)
    {
        var list = Distinct(hints);
        return new DatasetNotFoundException(Compose(facts, list), filePath, key, inner) { Facts = facts, Hints = list };
    }

    /// <summary>A <see cref="DownloadException"/> whose message is <paramref name="facts"/> and the hints.</summary>
    public static DownloadException DownloadFailed(string facts, IEnumerable<DataHint> hints, string url, System.Net.HttpStatusCode? status = null, Exception? inner = null)
    {
        var list = Distinct(hints);
        return new DownloadException(Compose(facts, list), url, status, inner) { Facts = facts, Hints = list };
    }

    /// <summary>The facts of <paramref name="e"/> (its whole message when it was not composed from hints).</summary>
    public static string FactsOf(Exception e) => e is SamplersDataException { Facts: { } f } ? f : e.Message;

    /// <summary>The hints of <paramref name="e"/> (none when it was not composed from hints).</summary>
    public static IReadOnlyList<DataHint> HintsOf(Exception e) => e is SamplersDataException d ? d.Hints : [];
}
