namespace Samplers;

/// <summary>
/// The one output rule (docs/ROBUSTNESS.md, "Output rule") for every file the product writes; what differs is only who
/// named the path. A path the user names (<see cref="Resolve"/>: <c>export --out</c>, <c>show --out</c>,
/// <c>PngEncoder.WriteFile</c>, <c>ExperimentManifest.Save</c>): a regular file (or a new one) is written through a
/// temporary file beside it and a rename, so a failed write leaves nothing half-written; when the path is a symbolic
/// link the temporary file and the rename happen beside the link's final target, so the link survives and its target
/// receives the data. A FIFO or a character device (<c>/dev/stdout</c>, a pipe, <c>/dev/null</c>) is written directly:
/// renaming over it would replace the pipe or the device node with a regular file. Directories, block devices and
/// sockets are refused. A name the product chooses inside a folder (<see cref="ResolveInFolder"/>,
/// <see cref="ReplaceInFolder"/>) is never followed when it is a symbolic link: the link is replaced, its target left
/// untouched. Temporary files are always created with <see cref="FileMode.CreateNew"/> (<c>O_EXCL</c>), which refuses
/// an existing file or a symbolic link planted at the temporary name instead of writing through it.
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
                    $"The output {full} is {FileKind.Describe(kind)}; the output is written as a file (or a FIFO/character device, directly). Give a file path.", nameof(path));
        }
        var info = new FileInfo(full);
        if (info.LinkTarget is null) return (full, false);
        // A symlink (possibly dangling): write beside, and rename onto, its final target.
        FileSystemInfo? target = info.ResolveLinkTarget(returnFinalTarget: true);
        return (target?.FullName ?? full, false);
    }

    /// <summary>The same rule for a file the product names inside an output folder the user named (not the file): a
    /// FIFO or character device is still written directly, but a symbolic link is not followed; the temporary file and
    /// the rename happen in the folder and replace the link itself, so a link planted in the folder
    /// (<c>y.npy -&gt; ~/.bashrc</c>) never gets its target overwritten.</summary>
    /// <exception cref="ArgumentException">The path names a directory, a block device or a socket.</exception>
    public static (string Path, bool Direct) ResolveInFolder(string path)
    {
        string full = System.IO.Path.GetFullPath(path);
        if (new FileInfo(full).LinkTarget is not null) return (full, false); // replace the link, whatever it points to
        return Resolve(full);
    }

    /// <summary>Writes a path the user named by the rule (<see cref="Resolve"/>, then <see cref="Write"/>).</summary>
    /// <exception cref="ArgumentException">The path names a directory, a block device or a socket.</exception>
    public static void WriteUserPath(string path, Action<Stream> write)
    {
        var (target, direct) = Resolve(path);
        Write(target, direct, write);
    }

    /// <summary>Writes a name the product chose inside a folder it owns (a cache stamp, a downloaded JSON file): always a
    /// temporary file in that folder and a rename onto the name, so whatever is there (a planted symbolic link, a FIFO)
    /// is replaced, never written through or into.</summary>
    public static void ReplaceInFolder(string path, Action<Stream> write) =>
        Write(System.IO.Path.GetFullPath(path), direct: false, write);

    /// <summary>Writes one file by the rule: <paramref name="write"/> fills a temporary file beside
    /// <paramref name="target"/>, which is flushed and renamed over it, or, when <paramref name="direct"/>, writes the
    /// FIFO or device as it is. On failure the temporary file is deleted and the exception rethrown.</summary>
    public static void Write(string target, bool direct, Action<Stream> write)
    {
        ArgumentNullException.ThrowIfNull(write);
        if (direct)
        {
            using var d = OpenDirect(target);
            write(d);
            d.Flush();
            return;
        }
        string temp = TempBeside(target);
        FileStream? f = null;
        try
        {
            f = CreateTemp(temp);
            write(f);
            f.Flush(flushToDisk: true);
            f.Dispose();
            f = null;
            File.Move(temp, target, overwrite: true);
        }
        catch
        {
            try { f?.Dispose(); } catch (IOException) { }
            DeleteQuietly(temp);
            throw;
        }
    }

    /// <summary>A temporary name in the folder of <paramref name="target"/> (same file system, so the rename is atomic).</summary>
    public static string TempBeside(string target) =>
        System.IO.Path.Combine(System.IO.Path.GetDirectoryName(target) ?? ".",
            "." + System.IO.Path.GetFileName(target) + "." + Environment.ProcessId.ToString(System.Globalization.CultureInfo.InvariantCulture) + "-" + Guid.NewGuid().ToString("N") + ".tmp");

    /// <summary>Creates a temporary file that must not exist yet (<c>O_EXCL</c>: a file or a symbolic link already at the
    /// name is an error, never opened).</summary>
    public static FileStream CreateTemp(string temp, int bufferSize = 4096) =>
        new(temp, FileMode.CreateNew, FileAccess.Write, FileShare.None, bufferSize);

    /// <summary>Opens a FIFO or device for writing as it is (no truncation, no replacement).</summary>
    public static FileStream OpenDirect(string target) =>
        new(target, FileMode.Open, FileAccess.Write, FileShare.ReadWrite, bufferSize: 1 << 16);

    /// <summary>Deletes a temporary file, ignoring failures (the writer's own error is the one to report).</summary>
    public static void DeleteQuietly(string? temp)
    {
        if (temp is null) return;
        try { File.Delete(temp); } catch (IOException) { } catch (UnauthorizedAccessException) { }
    }
}
