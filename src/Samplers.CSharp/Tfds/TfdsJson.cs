using System.Globalization;
using System.Text.Json;

namespace Samplers.Tfds;

/// <summary>
/// Reading the proto3-JSON files TFDS writes: camelCase or snake_case keys, int64 as strings or numbers, unknown
/// keys ignored. Every failure names the file and the key path.
/// </summary>
internal static class TfdsJson
{
    /// <summary>The largest metadata file read (dataset_info.json, features.json, .config/metadata.json): 64 MiB.</summary>
    public const long MaxMetadataBytes = SafeFile.MaxMetadataBytes;

    /// <summary>Parses a JSON file; a syntax error becomes a <see cref="DataFormatException"/> with line and byte position.</summary>
    public static JsonDocument ParseFile(string path, string what)
    {
        // Metadata files are small: through SafeFile, a FIFO (the read would block), a device (it would never end) or a
        // huge file (read whole) is refused, by stat before the open and by fstat on the opened handle.
        byte[] bytes;
        try { bytes = SafeFile.ReadAllBytes(path, MaxMetadataBytes, what); }
        catch (FileNotFoundException e) { throw new DatasetNotFoundException($"{path}: {what} is missing.", path, null, e); }
        return Parse(bytes, path, what);
    }

    /// <summary>Parses JSON text held in memory (e.g. a JSON string inside another file).</summary>
    public static JsonDocument Parse(ReadOnlyMemory<byte> bytes, string path, string what)
    {
        try
        {
            return JsonDocument.Parse(bytes, new JsonDocumentOptions { CommentHandling = JsonCommentHandling.Disallow });
        }
        catch (JsonException e)
        {
            throw new DataFormatException(
                $"{path}: {what} is not valid JSON (line {(e.LineNumber ?? 0) + 1}, byte {(e.BytePositionInLine ?? 0) + 1} of that line): {e.Message} " +
                "The file is damaged or was not written by TFDS; re-download or re-prepare the dataset.",
                path, e.BytePositionInLine, null, e);
        }
    }

    /// <summary>snake_case form of a lowerCamelCase key.</summary>
    public static string Snake(string camel)
    {
        var sb = new System.Text.StringBuilder(camel.Length + 4);
        foreach (char c in camel)
        {
            if (char.IsAsciiLetterUpper(c)) { sb.Append('_').Append(char.ToLowerInvariant(c)); }
            else sb.Append(c);
        }
        return sb.ToString();
    }

    /// <summary>The member <paramref name="camelKey"/> (or its snake_case spelling) when present and not null.</summary>
    public static bool TryGet(JsonElement obj, string camelKey, out JsonElement value)
    {
        if (obj.ValueKind == JsonValueKind.Object
            && (obj.TryGetProperty(camelKey, out value) || obj.TryGetProperty(Snake(camelKey), out value))
            && value.ValueKind != JsonValueKind.Null)
            return true;
        value = default;
        return false;
    }

    /// <summary>A string member, or <paramref name="fallback"/> when absent.</summary>
    public static string GetString(JsonElement obj, string key, string fallback, string path, string where)
    {
        if (!TryGet(obj, key, out var v)) return fallback;
        if (v.ValueKind != JsonValueKind.String)
            throw Bad(path, $"{where}.{key}", "a string", v);
        return v.GetString() ?? fallback;
    }

    /// <summary>A bool member, or false when absent.</summary>
    public static bool GetBool(JsonElement obj, string key, string path, string where)
    {
        if (!TryGet(obj, key, out var v)) return false;
        return v.ValueKind switch
        {
            JsonValueKind.True => true,
            JsonValueKind.False => false,
            _ => throw Bad(path, $"{where}.{key}", "true or false", v),
        };
    }

    /// <summary>An int64 member written as a JSON string or number, or <paramref name="fallback"/> when absent.</summary>
    public static long GetInt64(JsonElement obj, string key, long fallback, string path, string where)
    {
        if (!TryGet(obj, key, out var v)) return fallback;
        return ToInt64(v, path, $"{where}.{key}");
    }

    /// <summary>An int64 value written as a JSON string or number.</summary>
    public static long ToInt64(JsonElement v, string path, string where)
    {
        if (v.ValueKind == JsonValueKind.Number && v.TryGetInt64(out long n)) return n;
        if (v.ValueKind == JsonValueKind.String
            && long.TryParse(v.GetString(), NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out n)) return n;
        throw Bad(path, where, "an integer (a JSON number or a string of digits)", v);
    }

    /// <summary>An error naming the file, the key path, what was expected and what was found.</summary>
    public static DataFormatException Bad(string path, string where, string expected, JsonElement found) =>
        new($"{path}: key '{where}' should be {expected}, but found {Show(found)}. The file is damaged or from an unsupported TFDS version; re-download or re-prepare the dataset.",
            path, null, where);

    /// <summary>A short rendering of a JSON value for messages.</summary>
    public static string Show(JsonElement v)
    {
        string raw = v.ValueKind == JsonValueKind.Undefined ? "nothing" : v.GetRawText();
        return raw.Length > 80 ? raw[..77] + "..." : raw;
    }
}
