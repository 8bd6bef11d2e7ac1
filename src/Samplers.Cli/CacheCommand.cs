using System.CommandLine;
using Samplers.Tfds;

namespace Samplers.Cli;

/// <summary><c>samplers cache [dataset] [show|build|verify|clear]</c>: the Parquet cache file of a split selection.</summary>
internal static class CacheCommand
{
    private static readonly string[] Actions = ["show", "build", "verify", "clear"];

    public static Command Build(CliShared s)
    {
        var dataset = CliShared.DatasetArgument();
        var action = new Argument<string>("action") { Description = "show (default), build, verify or clear.", DefaultValueFactory = _ => "show" };
        action.AcceptOnlyFromAmong(Actions);
        return s.Define("cache",
            "Shows, builds, verifies or clears the Parquet cache file of a dataset's split selection (--splits, --x-key, --y-key).\n" +
            "Exit code 2 when verify finds the file absent, stale or damaged.\n\n" +
            "Examples:\n  samplers cache\n  samplers cache verify\n  samplers cache mnist build --splits train,test\n  samplers cache cars196 build --resize 224x224\n  samplers cache mnist verify --json\n  samplers cache mnist clear --cache-dir /data/cache",
            [dataset, action, s.Options.Resize], s.Options.LoadOptions, async (r, c, ct) =>
        {
            string? name = r.GetValue(dataset);
            string what = r.GetValue(action)!;
            // `samplers cache verify`: one word is the action on the embedded dataset (no dataset is named like an action).
            if (name is not null && Actions.Contains(name) && r.GetResult(action) is not { Tokens.Count: > 0 })
                (name, what) = (null, name!);
            var options = s.LoadSettings(r, name);
            TfdsCacheEntry? resolved;
            try
            {
                resolved = TfdsCacheEntry.Resolve(options);
            }
            catch (SamplersDataException) when (name is not null && r.GetResult(action) is not { Tokens.Count: > 0 } && Suggest.Closest(name, Actions) is { } near)
            {
                // `samplers cache verfy`: a mistyped action, not a dataset.
                throw new UsageException($"'{name}' is neither a cache action ({string.Join(", ", Actions)}) nor a dataset found here; did you mean 'samplers cache {near}'?");
            }
            var entry = resolved
                ?? throw new UsageException($"The cache is off ({(options.UseCache ? "SAMPLERS_NO_CACHE is set" : "--no-cache")}); nothing to {what}.");
            int code = Program.ExitOk;
            string status;
            string? reason = null;
            switch (what)
            {
                case "build":
                    var data = await s.LoadAsync(c, options, null, ct).ConfigureAwait(false);
                    status = data.FromCache ? "already built (hit)" : entry.Exists ? "built" : "not stored";
                    reason = data.CacheDetail;
                    if (!entry.Exists) code = Program.ExitData;
                    break;
                case "verify":
                    var v = await entry.VerifyAsync(ct).ConfigureAwait(false);
                    status = v.IsHit ? "valid" : "invalid";
                    reason = v.IsHit ? v.Detail : $"{v.Reason}: {v.Detail}"; // the detail says what was checked (docs/CACHE.md)
                    if (!v.IsHit) code = Program.ExitData;
                    break;
                case "clear":
                    status = entry.Delete() ? "deleted" : "absent (nothing to delete)";
                    break;
                default:
                    status = entry.Exists ? "present" : "absent";
                    break;
            }
            if (c.Json)
                c.WriteJson(new { dataset = entry.Builder.FullName, action = what, status, path = entry.Path, exists = entry.Exists, bytes = entry.Bytes, detail = reason, fingerprint = entry.Fingerprint.Value, key = entry.Key.Canonical.Replace('\u001f', '|') });
            else
            {
                c.Out.WriteLine($"dataset  {entry.Builder.FullName} ({string.Join(",", options.Splits)}; {options.XKey}, {options.YKey})");
                c.Out.WriteLine($"cache    {entry.Path}");
                c.Out.WriteLine($"status   {status}" + (entry.Exists ? $", {entry.Bytes} bytes" : ""));
                if (!string.IsNullOrEmpty(reason)) c.Out.WriteLine($"detail   {reason.TrimStart(';', ' ')}");
            }
            if (code != Program.ExitOk && !c.Json) c.Err.WriteLine(TerminalText.Escape($"samplers: data error: cache {what}: {status}" + (reason is null ? "" : $" ({reason.TrimStart(';', ' ')})")));
            return code;
        });
    }
}
