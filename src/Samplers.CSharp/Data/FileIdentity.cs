using System.Buffers.Binary;
using System.Runtime.InteropServices;
using Microsoft.Win32.SafeHandles;

namespace Samplers;

/// <summary>(device, inode, size, mtime ns, ctime ns) of an open file, from <c>statx</c> on its handle: what a mapped table
/// compares before each batch and what the cache's verification stamp records. A filesystem fact, so it sits with the
/// tables (the cache above uses it; the tables never name the cache).</summary>
internal readonly record struct FileIdentity(ulong Device, ulong Inode, long Size, long MtimeNs, long CtimeNs)
{
    /// <summary>The identity of the open <paramref name="handle"/>, or null where it cannot be known (not Linux, statx failed).</summary>
    internal static unsafe FileIdentity? Of(SafeFileHandle handle)
    {
        if (!OperatingSystem.IsLinux() || handle.IsInvalid || handle.IsClosed) return null;
        byte* buf = stackalloc byte[256];
        new Span<byte>(buf, 256).Clear();
        bool added = false;
        try
        {
            handle.DangerousAddRef(ref added);
            int fd = (int)handle.DangerousGetHandle();
            byte empty = 0;
            // statx(fd, "", AT_EMPTY_PATH, STATX_BASIC_STATS): its struct has one layout on every Linux architecture, unlike stat's.
            if (statx(fd, &empty, AtEmptyPath, StatxBasicStats, buf) != 0) return null;
        }
        catch (Exception e) when (e is DllNotFoundException or EntryPointNotFoundException)
        {
            return null; // a libc without statx (glibc before 2.28): no stamps, every mapped open verifies
        }
        finally
        {
            if (added) handle.DangerousRelease();
        }
        var s = new ReadOnlySpan<byte>(buf, 256);
        uint mask = BinaryPrimitives.ReadUInt32LittleEndian(s);
        const uint needed = 0x200 /* SIZE */ | 0x100 /* INO */ | 0x40 /* MTIME */ | 0x80 /* CTIME */;
        if ((mask & needed) != needed) return null;
        static long Ns(ReadOnlySpan<byte> t) => BinaryPrimitives.ReadInt64LittleEndian(t) * 1_000_000_000L + BinaryPrimitives.ReadUInt32LittleEndian(t[8..]);
        ulong dev = ((ulong)BinaryPrimitives.ReadUInt32LittleEndian(s[136..]) << 32) | BinaryPrimitives.ReadUInt32LittleEndian(s[140..]);
        return new FileIdentity(dev, BinaryPrimitives.ReadUInt64LittleEndian(s[32..]), BinaryPrimitives.ReadInt64LittleEndian(s[40..]),
            Ns(s[112..]), Ns(s[96..]));
    }

    private const int AtEmptyPath = 0x1000;
    private const uint StatxBasicStats = 0x7ff;

    [DllImport("libc", EntryPoint = "statx", SetLastError = true)]
    private static extern unsafe int statx(int dirfd, byte* path, int flags, uint mask, byte* buffer);
}
