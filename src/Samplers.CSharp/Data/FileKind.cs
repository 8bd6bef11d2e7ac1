using System.Runtime.InteropServices;

namespace Samplers;

/// <summary>What a path names, after following symbolic links.</summary>
internal enum FileKindValue
{
    /// <summary>Nothing exists there.</summary>
    Missing,
    /// <summary>A regular file.</summary>
    Regular,
    /// <summary>A directory.</summary>
    Directory,
    /// <summary>A named pipe (FIFO): opening it for reading blocks until a writer appears.</summary>
    Fifo,
    /// <summary>A character device such as <c>/dev/null</c> or <c>/dev/full</c>.</summary>
    CharDevice,
    /// <summary>A block device.</summary>
    BlockDevice,
    /// <summary>A Unix socket.</summary>
    Socket,
    /// <summary>Exists, but the type could not be determined (treated as regular).</summary>
    Unknown,
}

/// <summary>
/// The file type of a path. .NET's <see cref="FileInfo"/> reports FIFOs and devices as "Normal" files of length 0,
/// so a reader that opened one would block (a FIFO) or read endless bytes (<c>/dev/zero</c>); this asks the runtime's
/// own native shim (the <c>stat</c> behind <see cref="FileInfo"/>) for the mode bits instead.
/// </summary>
internal static partial class FileKind
{
    // The runtime's portable FileStatus: int32 Flags, int32 Mode, ... (pal_io.h). Only Mode is read; the buffer is
    // larger than the struct so a future field cannot overrun it.
    private const int StatBufferBytes = 256;
    private const int ModeTypeMask = 0xF000, ModeFifo = 0x1000, ModeChar = 0x2000, ModeDir = 0x4000, ModeBlock = 0x6000, ModeRegular = 0x8000, ModeSocket = 0xC000;
    private static bool s_nativeMissing;

    [LibraryImport("libSystem.Native", EntryPoint = "SystemNative_Stat", StringMarshalling = StringMarshalling.Utf8)]
    private static unsafe partial int SystemNativeStat(string path, byte* status);

    [LibraryImport("libSystem.Native", EntryPoint = "SystemNative_FStat")]
    private static unsafe partial int SystemNativeFStat(IntPtr fd, byte* status);

    /// <summary>The kind of <paramref name="path"/> (symbolic links followed).</summary>
    public static FileKindValue Of(string path)
    {
        if (Directory.Exists(path)) return FileKindValue.Directory;
        if (!File.Exists(path)) return FileKindValue.Missing;
        if (OperatingSystem.IsWindows() || s_nativeMissing) return FileKindValue.Unknown;
        try
        {
            int mode;
            unsafe
            {
                byte* buf = stackalloc byte[StatBufferBytes];
                if (SystemNativeStat(path, buf) != 0) return FileKindValue.Unknown;
                mode = *(int*)(buf + 4);
            }
            return FromMode(mode);
        }
        catch (Exception e) when (e is DllNotFoundException or EntryPointNotFoundException)
        {
            s_nativeMissing = true;
            return FileKindValue.Unknown;
        }
    }

    /// <summary>The kind of the file an open <paramref name="handle"/> refers to (<c>fstat</c>): the path may have been
    /// replaced between a check on it and the open.</summary>
    public static FileKindValue OfHandle(Microsoft.Win32.SafeHandles.SafeFileHandle handle)
    {
        ArgumentNullException.ThrowIfNull(handle);
        if (OperatingSystem.IsWindows() || s_nativeMissing || handle.IsInvalid || handle.IsClosed) return FileKindValue.Unknown;
        bool added = false;
        try
        {
            handle.DangerousAddRef(ref added);
            int mode;
            unsafe
            {
                byte* buf = stackalloc byte[StatBufferBytes];
                if (SystemNativeFStat(handle.DangerousGetHandle(), buf) != 0) return FileKindValue.Unknown;
                mode = *(int*)(buf + 4);
            }
            return FromMode(mode);
        }
        catch (Exception e) when (e is DllNotFoundException or EntryPointNotFoundException)
        {
            s_nativeMissing = true;
            return FileKindValue.Unknown;
        }
        finally
        {
            if (added) handle.DangerousRelease();
        }
    }

    private static FileKindValue FromMode(int mode) => (mode & ModeTypeMask) switch
    {
        ModeRegular => FileKindValue.Regular,
        ModeDir => FileKindValue.Directory,
        ModeFifo => FileKindValue.Fifo,
        ModeChar => FileKindValue.CharDevice,
        ModeBlock => FileKindValue.BlockDevice,
        ModeSocket => FileKindValue.Socket,
        _ => FileKindValue.Unknown,
    };

    /// <summary>The length of the file <paramref name="path"/> names, following symbolic links (<see cref="FileInfo.Length"/>
    /// of a link is the link's own size).</summary>
    public static long LengthOf(string path)
    {
        var info = new FileInfo(path);
        if (info.LinkTarget is not null && info.ResolveLinkTarget(returnFinalTarget: true) is FileInfo target) return target.Length;
        return info.Length;
    }

    /// <summary>A short phrase for messages: "a named pipe (FIFO)", "a character device", ...</summary>
    public static string Describe(FileKindValue kind) => kind switch
    {
        FileKindValue.Missing => "missing",
        FileKindValue.Regular => "a regular file",
        FileKindValue.Directory => "a directory",
        FileKindValue.Fifo => "a named pipe (FIFO)",
        FileKindValue.CharDevice => "a character device",
        FileKindValue.BlockDevice => "a block device",
        FileKindValue.Socket => "a socket",
        _ => "a file of unknown type",
    };

    /// <summary>True for kinds a reader may open like a regular file (regular, or undeterminable).</summary>
    public static bool IsReadable(FileKindValue kind) => kind is FileKindValue.Regular or FileKindValue.Unknown;
}
