using System.Runtime.InteropServices;
using Microsoft.Win32.SafeHandles;

namespace Samplers;

/// <summary>
/// A Linux read lease (<c>fcntl(F_SETLEASE, F_RDLCK)</c>) on a mapped cache file: the kernel tells this process, with
/// <c>SIGIO</c>, when any process opens the file for writing or truncates it, and holds that writer back until the lease
/// is given up. The handler marks the lease broken, waits for the gathers in progress to finish, then gives it up; so a
/// batch's change check is a memory read, and no write or truncation can land while a gather reads the mapping
/// (docs/MAPPED.md, "Safety").
/// </summary>
/// <remarks>
/// Taken only where the kernel grants it: Linux, the file's owner (or <c>CAP_LEASE</c>), a local filesystem, leases on
/// (<c>/proc/sys/fs/leases-enable</c>), and no process holding the file open for writing. Elsewhere <see cref="TryTake"/>
/// returns null and the table checks the file with <c>statx</c> per batch instead. The kernel gives the holder
/// <c>/proc/sys/fs/lease-break-time</c> seconds (45 by default) to give the lease up before it breaks it by force; a
/// gather longer than that loses the guarantee against SIGBUS for that batch.
/// <para>One process-wide <c>SIGIO</c> registration (<see cref="PosixSignalRegistration"/>) serves every lease; it
/// cancels the signal's default action (termination), checks each lease with <c>F_GETLEASE</c> (the kernel reports a
/// lease being broken as <c>F_UNLCK</c>) and leaves the others alone, so a <c>SIGIO</c> meant for something else costs
/// one system call per open table. .NET runs the handler on the thread pool: a starved pool delays the writer until the
/// pool adds a thread (batches are never delayed). Set <see cref="DisableVariable"/> to 1 to keep this process's <c>SIGIO</c> untouched
/// (every mapped table then checks with <c>statx</c>).</para>
/// </remarks>
internal sealed class FileLease
{
    /// <summary>Environment variable: 1 turns leases off for this process (per-batch <c>statx</c> instead).</summary>
    internal const string DisableVariable = "SAMPLERS_NO_FILE_LEASE";

    /// <summary>False when <see cref="DisableVariable"/> is 1 in this process's environment (read once).</summary>
    internal static readonly bool Enabled = Environment.GetEnvironmentVariable(DisableVariable) != "1";

    private static readonly object Gate = new();
    private static readonly List<FileLease> Held = new();
    private static PosixSignalRegistration? _registration;

    private readonly SafeFileHandle _file;
    private int _broken;   // 1 once a writer was announced (never reset: the table is refused from then on)
    private int _released;

    private FileLease(SafeFileHandle file) => _file = file;

    /// <summary>Why the last <see cref="TryTake"/> in this process got no lease (errno), or null; for diagnostics and tests.</summary>
    internal static string? LastRefusal { get; private set; }

    /// <summary>The gathers reading the file's mapping now (counted by the table, <see cref="MappedRows.Enter"/>): a break
    /// waits for them before it lets the writer go.</summary>
    internal MappingGathers Gathers { get; } = new();

    /// <summary>True once another process (or this one) opened the file for writing or truncated it.</summary>
    internal bool Broken => Volatile.Read(ref _broken) != 0;

    /// <summary>A read lease on <paramref name="file"/> (opened read-only), or null where the kernel refuses one.</summary>
    internal static FileLease? TryTake(SafeFileHandle file)
    {
        if (!OperatingSystem.IsLinux() || !Enabled) { LastRefusal = "off"; return null; }
        var lease = new FileLease(file);
        lock (Gate)
        {
            // The handler must be in place before the lease: a writer may open the file the moment it is granted.
            try
            {
                _registration ??= PosixSignalRegistration.Create((PosixSignal)SigIo, OnSignal);
            }
            catch (Exception e) when (e is PlatformNotSupportedException or IOException or ArgumentOutOfRangeException)
            {
                LastRefusal = "SIGIO cannot be handled here: " + e.Message;
                return null;
            }
            bool added = false;
            try
            {
                file.DangerousAddRef(ref added);
                if (fcntl((int)file.DangerousGetHandle(), FSetLease, FRdLck) != 0)
                {
                    // EAGAIN: open for writing somewhere; EACCES: not the owner; EINVAL: a filesystem without leases.
                    LastRefusal = "errno " + Marshal.GetLastPInvokeError();
                    return null;
                }
            }
            catch (Exception e) when (e is DllNotFoundException or EntryPointNotFoundException)
            {
                LastRefusal = "no fcntl";
                return null;
            }
            finally
            {
                if (added) file.DangerousRelease();
            }
            Held.Add(lease);
        }
        LastRefusal = null;
        return lease;
    }

    /// <summary>Gives the lease up (the table is disposed); closing the file would too.</summary>
    internal void Release()
    {
        if (Interlocked.Exchange(ref _released, 1) != 0) return;
        lock (Gate) Held.Remove(this);
        Call(FSetLease, FUnlck);
    }

    private static void OnSignal(PosixSignalContext context)
    {
        context.Cancel = true; // SIGIO's default action ends the process
        FileLease[] held;
        lock (Gate) held = Held.ToArray();
        foreach (FileLease lease in held)
            if (lease.Call(FGetLease, 0) == FUnlck) lease.Break();
    }

    // A writer waits in open() or truncate() until the lease is given up: first refuse new gathers, then let the ones
    // reading the mapping finish, then let the writer go.
    private void Break()
    {
        Interlocked.Exchange(ref _broken, 1);
        var spin = new SpinWait();
        while (Volatile.Read(ref Gathers.Count) > 0) spin.SpinOnce();
        Release();
    }

    // fcntl on the handle, or -1 if it is already closed.
    private int Call(int command, int argument)
    {
        bool added = false;
        try
        {
            _file.DangerousAddRef(ref added);
            return fcntl((int)_file.DangerousGetHandle(), command, argument);
        }
        catch (ObjectDisposedException)
        {
            return -1;
        }
        finally
        {
            if (added) _file.DangerousRelease();
        }
    }

    private const int SigIo = 29; // SIGIO (= SIGPOLL) on every Linux architecture .NET runs on
    private const int FSetLease = 1024, FGetLease = 1025, FRdLck = 0, FUnlck = 2;

    [DllImport("libc", EntryPoint = "fcntl", SetLastError = true)]
    private static extern int fcntl(int fd, int command, int argument);
}

/// <summary>How many gathers are reading a mapping now (a counter shared by a mapped table and its lease).</summary>
internal sealed class MappingGathers
{
    /// <summary>The count, changed with <see cref="Interlocked"/> only.</summary>
    internal int Count;
}
