
namespace Samplers.Cli.Export;

/// <summary>
/// Where an export really writes. A regular file (or a new one) is written through a temporary file beside it and a
/// rename, so a failed export leaves nothing half-written; when the path is a symbolic link the temporary file and the
/// rename happen beside the link's final target, so the link survives and its target receives the data. A FIFO or a
/// character device (<c>/dev/stdout</c>, a pipe, <c>/dev/null</c>) is written directly: renaming over it would replace
/// the pipe or the device node with a regular file. Directories, block devices and sockets are refused.
/// </summary>
internal static class OutputTarget
{
    /// <summary>The path to write (the link target for a symlink) and whether to write it directly (no temp file).</summary>
    /// <exception cref="ArgumentException">The path names a directory, a block device or a socket.</exception>
    public static (string Path, bool Direct) Resolve(string path)
    {
        string full = System.IO.Path.GetFullPath(path);
        FileKindValue kind = FileKind.Of(full); // follows links
        switch (kind)
        {
            case FileKindValue.Fifo or FileKindValue.CharDevice:
                return (full, true);
            case FileKindValue.Directory or FileKindValue.BlockDevice or FileKindValue.Socket:
                throw new ArgumentException(
                    $"The output {full} is {FileKind.Describe(kind)}; an export writes a file (or a FIFO/character device directly). Give a file path.", nameof(path));
        }
        var info = new FileInfo(full);
        if (info.LinkTarget is null) return (full, false);
        // A symlink (possibly dangling): write beside, and rename onto, its final target.
        FileSystemInfo? target = info.ResolveLinkTarget(returnFinalTarget: true);
        return (target?.FullName ?? full, false);
    }

    /// <summary>A temporary name in the folder of <paramref name="target"/> (same file system, so the rename is atomic).</summary>
    public static string TempBeside(string target) =>
        System.IO.Path.Combine(System.IO.Path.GetDirectoryName(target) ?? ".",
            "." + System.IO.Path.GetFileName(target) + "." + Environment.ProcessId.ToString(System.Globalization.CultureInfo.InvariantCulture) + "-" + Guid.NewGuid().ToString("N") + ".tmp");

    /// <summary>Opens a FIFO or device for writing as it is (no truncation, no replacement).</summary>
    public static FileStream OpenDirect(string target) =>
        new(target, FileMode.Open, FileAccess.Write, FileShare.ReadWrite, bufferSize: 1 << 16);

    /// <summary>Deletes a temporary file, ignoring failures (the export's own error is the one to report).</summary>
    public static void DeleteQuietly(string? temp)
    {
        if (temp is null) return;
        try { File.Delete(temp); } catch (IOException) { } catch (UnauthorizedAccessException) { }
    }
}
