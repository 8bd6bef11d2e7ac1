using System.Buffers.Binary;
using System.Globalization;
using System.Runtime.InteropServices;
using Microsoft.Win32.SafeHandles;

namespace Samplers.Cache;

/// <summary>
/// The verification stamp of a cache file (docs/CACHE.md, "Verification stamp"): the identity of the file as it was when
/// its payload checksum last matched, kept in a sidecar <c>&lt;file&gt;.verified</c>. A mapped open whose open handle still
/// has that identity skips the O(bytes) checksum; any other open (no stamp, another identity) verifies the payload once.
/// </summary>
/// <remarks>
/// The identity is (device, inode, size, mtime ns, ctime ns) from <c>statx</c> on the open handle, so the check is about
/// the very inode that gets mapped. ctime is what makes it hold: every write, truncation, rename or metadata change sets
/// it to "now" and no userspace call can set it back (mtime can be, with <c>utimensat</c>). Damage that changes none of
/// these (below the filesystem, such as media bit rot) is left to <see cref="ParquetCache.VerifyAsync"/>. Only Linux has
/// a stamp; elsewhere <see cref="FileIdentity.Of"/> answers null and every mapped open verifies the payload.
/// </remarks>
internal static class VerifyStamp
{
    /// <summary>The sidecar's name suffix.</summary>
    internal const string Suffix = ".verified";

    private const string Magic = "samplers-verified-v1";

    /// <summary>The sidecar path of cache file <paramref name="path"/>.</summary>
    internal static string PathOf(string path) => path + Suffix;

    /// <summary>True when the stamp beside <paramref name="path"/> records exactly <paramref name="now"/> and <paramref name="checksum"/>
    /// (the file's metadata checksum, so a stamp of another build never vouches for this one). Any read problem is false.</summary>
    internal static bool Matches(string path, FileIdentity? now, string checksum)
    {
        if (now is null) return false;
        try
        {
            // Through SafeFile: a stamp that is a FIFO would block the open, one linked to /dev/zero would be read without
            // end. Such a stamp (like a missing or foreign one) vouches for nothing: the open verifies the payload, and the
            // stamp written after that replaces it by rename.
            string text = SafeFile.ReadAllText(PathOf(path), SafeFile.MaxStampBytes, "verification stamp");
            return text == Format(now.Value, checksum);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or DataFormatException)
        {
            return false;
        }
    }

    /// <summary>Records that the file <paramref name="path"/>, with identity <paramref name="id"/> (taken from the handle
    /// whose bytes were checked), matched <paramref name="checksum"/>: temp file + rename, so a reader sees an old stamp or
    /// a new one. Returns false (and writes nothing) when the directory is not writable: opens then keep verifying.</summary>
    internal static bool Write(string path, FileIdentity id, string checksum)
    {
        string dir = Path.GetDirectoryName(path) ?? ".";
        // Named like the cache's own temporary files, so ParquetCache.CleanStaleTempFiles removes those of killed writers.
        string temp = Path.Combine(dir, $".{Path.GetFileName(path)}{Suffix}.{Environment.ProcessId}-{Guid.NewGuid():N}.tmp");
        try
        {
            // CreateNew (O_EXCL): a file or a symbolic link planted at the temporary name is an error, never written through.
            using (FileStream f = OutputTarget.CreateTemp(temp))
                f.Write(System.Text.Encoding.UTF8.GetBytes(Format(id, checksum)));
            File.Move(temp, PathOf(path), overwrite: true);
            return true;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            try { File.Delete(temp); } catch (IOException) { } catch (UnauthorizedAccessException) { }
            return false;
        }
    }

    /// <summary>Deletes the stamp of <paramref name="path"/> if there is one (after a miss made the file unusable).</summary>
    internal static void Delete(string path)
    {
        try { File.Delete(PathOf(path)); } catch (IOException) { } catch (UnauthorizedAccessException) { }
    }

    private static string Format(FileIdentity id, string checksum) => string.Create(CultureInfo.InvariantCulture,
        $"{Magic}\ndevice={id.Device}\ninode={id.Inode}\nsize={id.Size}\nmtime_ns={id.MtimeNs}\nctime_ns={id.CtimeNs}\nchecksum={checksum}\n");
}
