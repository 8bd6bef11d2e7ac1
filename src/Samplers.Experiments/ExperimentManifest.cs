using System.Buffers.Binary;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using System.Text.Json.Serialization;
using Samplers.Core;

namespace Samplers.Experiments;

/// <summary>What was sampled from: enough to load the same data again and to check that it is the same.</summary>
public sealed record ManifestDataset
{
    /// <summary>The dataset as resolved (<c>name[/config]:version</c>).</summary>
    public required string Name { get; init; }
    /// <summary>The split specs loaded and concatenated in order.</summary>
    public required IReadOnlyList<string> Splits { get; init; }
    /// <summary>The example feature (<c>x_key</c>).</summary>
    public string XKey { get; init; } = "image";
    /// <summary>The label feature (<c>y_key</c>).</summary>
    public string YKey { get; init; } = "label";
    /// <summary>Examples loaded.</summary>
    public long NumExamples { get; init; }
    /// <summary>The content fingerprint (<see cref="DatasetFingerprint.Compute"/>) of the loaded table.</summary>
    public required string Fingerprint { get; init; }
}

/// <summary>The sampler settings of a run (the plan-relevant part of <see cref="SamplerOptions"/>).</summary>
public sealed record ManifestSampling
{
    /// <summary><see cref="SamplerOptions.ClassesPerBatch"/>.</summary>
    public int ClassesPerBatch { get; init; } = 2;
    /// <summary><see cref="SamplerOptions.ExamplesPerClassPerBatch"/>.</summary>
    public int ExamplesPerClassPerBatch { get; init; } = 2;
    /// <summary><see cref="SamplerOptions.StepsPerEpoch"/>.</summary>
    public int StepsPerEpoch { get; init; } = 1000;
    /// <summary><see cref="SamplerOptions.ClassList"/>.</summary>
    public IReadOnlyList<long>? ClassList { get; init; }
    /// <summary><see cref="SamplerOptions.TotalExamplesPerClass"/>.</summary>
    public int? TotalExamplesPerClass { get; init; }
    /// <summary><see cref="SamplerOptions.Seed"/>.</summary>
    public ulong Seed { get; init; }
    /// <summary><see cref="SamplerOptions.Mode"/>.</summary>
    [JsonConverter(typeof(JsonStringEnumConverter<SamplingMode>))]
    public SamplingMode Mode { get; init; }
    /// <summary><see cref="SamplerOptions.Rank"/>.</summary>
    public int Rank { get; init; }
    /// <summary><see cref="SamplerOptions.WorldSize"/>.</summary>
    public int WorldSize { get; init; } = 1;

    /// <summary>The settings of <paramref name="options"/>.</summary>
    public static ManifestSampling From(SamplerOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        return new ManifestSampling
        {
            ClassesPerBatch = options.ClassesPerBatch, ExamplesPerClassPerBatch = options.ExamplesPerClassPerBatch,
            StepsPerEpoch = options.StepsPerEpoch, ClassList = options.ClassList?.ToArray(), TotalExamplesPerClass = options.TotalExamplesPerClass,
            Seed = options.Seed, Mode = options.Mode, Rank = options.Rank, WorldSize = options.WorldSize,
        };
    }

    /// <summary>These settings applied to <paramref name="options"/> (the rest of it kept).</summary>
    public T ApplyTo<T>(T options) where T : SamplerOptions
    {
        ArgumentNullException.ThrowIfNull(options);
        return options with
        {
            ClassesPerBatch = ClassesPerBatch, ExamplesPerClassPerBatch = ExamplesPerClassPerBatch, StepsPerEpoch = StepsPerEpoch,
            ClassList = ClassList, TotalExamplesPerClass = TotalExamplesPerClass, Seed = Seed, Mode = Mode, Rank = Rank, WorldSize = WorldSize,
        };
    }
}

/// <summary>One sampled range of an experiment and the digest of its plans.</summary>
public sealed record ManifestRun
{
    /// <summary>A label for the run (e.g. the mode).</summary>
    public required string Label { get; init; }
    /// <summary>The sampler settings.</summary>
    public required ManifestSampling Sampling { get; init; }
    /// <summary>First epoch sampled.</summary>
    public int FirstEpoch { get; init; }
    /// <summary>Epochs sampled (each of this rank's batches 0 .. Count-1).</summary>
    public int EpochCount { get; init; } = 1;
    /// <summary>The <see cref="PlanDigest"/> of every batch plan of the run, epoch by epoch.</summary>
    public required string PlanDigest { get; init; }
}

/// <summary>
/// The record an experiment writes next to its output: configuration, seed, library and dataset versions, dataset
/// fingerprint and plan digests. Loading the same dataset and recomputing each run's digest
/// (<see cref="ComputeDigest"/>) must give the recorded value; <see cref="Verify"/> does it for a sampler.
/// </summary>
public sealed record ExperimentManifest
{
    /// <summary>The format tag written in every manifest.</summary>
    public const string FormatTag = "samplers.experiment-manifest/1";

    private static readonly JsonSerializerOptions Json = new()
    {
        WriteIndented = true,
        PropertyNamingPolicy = JsonNamingPolicy.CamelCase,
        DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull,
    };

    /// <summary>Always <see cref="FormatTag"/>.</summary>
    public string Format { get; init; } = FormatTag;
    /// <summary>The experiment (script) name.</summary>
    public required string Experiment { get; init; }
    /// <summary>The Samplers library version that wrote it.</summary>
    public string LibraryVersion { get; init; } = typeof(ExperimentManifest).Assembly.GetName().Version?.ToString(3) ?? "0.0.0";
    /// <summary><see cref="Planner.PlanVersion"/> when written; a different value means the digests cannot match.</summary>
    public int PlanVersion { get; init; } = Planner.PlanVersion;
    /// <summary>When it was written (UTC); not part of what must reproduce.</summary>
    public DateTimeOffset CreatedUtc { get; init; } = DateTimeOffset.UtcNow;
    /// <summary>The data.</summary>
    public required ManifestDataset Dataset { get; init; }
    /// <summary>The runs and their digests.</summary>
    public required IReadOnlyList<ManifestRun> Runs { get; init; }
    /// <summary>Free-form results (numbers the experiment reported), for the reader; never checked.</summary>
    public IReadOnlyDictionary<string, double>? Results { get; init; }

    /// <summary>The manifest as indented JSON.</summary>
    public string ToJson() => JsonSerializer.Serialize(this, Json);

    /// <summary>Writes the manifest by the output rule for a path the caller names (docs/ROBUSTNESS.md, "Output rule"): a
    /// temporary file beside it and a rename, so a failed write leaves the old manifest whole; through a symbolic link
    /// (the link stays, its target receives the manifest); directly into a FIFO or character device.</summary>
    /// <exception cref="ArgumentException"><paramref name="path"/> is empty, a directory, a block device or a socket.</exception>
    public void Save(string path)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        byte[] bytes = new UTF8Encoding(false).GetBytes(ToJson() + "\n");
        OutputTarget.WriteUserPath(path, s => s.Write(bytes));
    }

    /// <summary>The largest manifest read: 16 MiB (a real one is a few KB; its runs and results are a few hundred bytes each).</summary>
    internal const long MaxBytes = 16L << 20;

    /// <summary>Reads a manifest.</summary>
    /// <exception cref="DatasetNotFoundException">The file does not exist.</exception>
    /// <exception cref="DataFormatException">The file is not a manifest of this format, or a required key is missing (the
    /// message names it); or it is not a regular file (a FIFO, a device), or larger than 16 MiB.</exception>
    public static ExperimentManifest Load(string path)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        if (!File.Exists(path)) throw new DatasetNotFoundException($"Manifest {path} does not exist; pass the manifest.json an experiment wrote.", path);
        // Through SafeFile: a FIFO would block the read, /dev/zero would never end, a huge file would be read whole.
        string text = SafeFile.ReadAllText(path, MaxBytes, "experiment manifest");
        ExperimentManifest? m;
        try
        {
            using (var doc = JsonDocument.Parse(text))
            {
                if (doc.RootElement.ValueKind != JsonValueKind.Object || !doc.RootElement.TryGetProperty("format", out var f) || f.GetString() != FormatTag)
                    throw new DataFormatException($"{path}: key 'format' is missing or not '{FormatTag}': this is not an experiment manifest of this format.", path, null, "format");
            }
            m = JsonSerializer.Deserialize<ExperimentManifest>(text, Json);
        }
        catch (JsonException e)
        {
            throw new DataFormatException($"{path}: not a valid manifest ({e.Message}); the JSON path names the bad key. Regenerate it by running the experiment again.", path, e.BytePositionInLine, e.Path, e);
        }
        if (m is null) throw new DataFormatException($"{path}: the manifest is empty (JSON null).", path);
        return m;
    }

    /// <summary>The digest of every plan of epochs [firstEpoch, firstEpoch + epochCount) of <paramref name="sampler"/>
    /// (this rank's batches 0 .. Count-1), with the sampler's seed.</summary>
    public static string ComputeDigest(MultiShotMemorySampler sampler, int firstEpoch, int epochCount)
    {
        ArgumentNullException.ThrowIfNull(sampler);
        return Samplers.Core.PlanDigest.Compute(sampler.Planner, sampler.Seed, firstEpoch, epochCount, 0, sampler.Count);
    }

    /// <summary>Recomputes <paramref name="run"/>'s digest with <paramref name="sampler"/> (built with the run's settings
    /// over this manifest's data) and returns it with whether it matches the recorded one.</summary>
    public static (bool Matches, string Digest) Verify(ManifestRun run, MultiShotMemorySampler sampler)
    {
        ArgumentNullException.ThrowIfNull(run);
        string digest = ComputeDigest(sampler, run.FirstEpoch, run.EpochCount);
        return (digest == run.PlanDigest, digest);
    }
}

/// <summary>A content fingerprint of loaded data, portable across machines (unlike the cache's source fingerprint,
/// which hashes file paths and times).</summary>
public static class DatasetFingerprint
{
    /// <summary>SHA-256 (lower-case hex) over the dtype, example shape(s), every example's bytes and label in table order,
    /// and the class names.</summary>
    public static string Compute(ExampleTable table)
    {
        ArgumentNullException.ThrowIfNull(table);
        using var h = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        h.AppendData("samplers.dataset-fingerprint/1"u8);
        byte[] b = new byte[8];
        void I64(long v) { BinaryPrimitives.WriteInt64LittleEndian(b, v); h.AppendData(b); }
        I64((long)table.DType);
        I64(table.Count);
        I64(table.ExampleShape.Length);
        foreach (int d in table.ExampleShape) I64(d);
        for (int i = 0; i < table.Count; i++)
        {
            if (table.IsRagged)
            {
                var s = table.GetShape(i);
                I64(s.Length);
                foreach (int d in s) I64(d);
            }
            h.AppendData(table.GetExample(i));
            I64(table.Labels[i]);
        }
        I64(table.ClassNames.Count);
        foreach (string name in table.ClassNames)
        {
            byte[] utf8 = Encoding.UTF8.GetBytes(name);
            I64(utf8.Length);
            h.AppendData(utf8);
        }
        return Convert.ToHexStringLower(h.GetHashAndReset());
    }
}
