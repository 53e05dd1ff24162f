using System.Runtime.InteropServices;

namespace CSharpEnvoy.DataPlane.Event;

/// <summary>The few libc calls the dispatcher needs: Linux epoll. Sockets themselves stay .NET <c>Socket</c>s, used in
/// non-blocking mode with their synchronous calls (one <c>recv</c>/<c>send</c> each, no engine of their own).</summary>
internal static unsafe partial class Epoll
{
    public const uint EPOLLIN = 0x001, EPOLLOUT = 0x004, EPOLLERR = 0x008, EPOLLHUP = 0x010, EPOLLRDHUP = 0x2000, EPOLLET = 1u << 31;
    public const int EPOLL_CTL_ADD = 1, EPOLL_CTL_DEL = 2;
    private const int EPOLL_CLOEXEC = 0x80000;
    public const int EINTR = 4;

    /// <summary>epoll_event is packed (12 bytes) on x86-64 and naturally aligned (16 bytes) elsewhere.</summary>
    public static readonly int EventSize = RuntimeInformation.ProcessArchitecture == Architecture.X64 ? 12 : 16;
    private static readonly int DataOffset = EventSize == 12 ? 4 : 8;

    /// <summary>Whether this platform has what the dispatcher needs: Linux on x64 or arm64, and a libc that loads
    /// and creates an epoll instance (checked once).</summary>
    public static bool IsSupported { get; } = Probe();

    private static bool Probe()
    {
        if (!OperatingSystem.IsLinux() || RuntimeInformation.ProcessArchitecture is not (Architecture.X64 or Architecture.Arm64)) return false;
        try
        {
            // "libc" is glibc's libc.so.6 (or musl's libc): the name the runtime maps it to is not mapped everywhere.
            NativeLibrary.SetDllImportResolver(typeof(Epoll).Assembly, static (name, assembly, path) =>
                name == "libc" && (NativeLibrary.TryLoad("libc.so.6", out var handle) || NativeLibrary.TryLoad("libc.so", out handle)) ? handle : IntPtr.Zero);
        }
        catch (InvalidOperationException)
        {
            // A resolver is already set for this assembly: its choice stands.
        }
        try
        {
            var fd = epoll_create1(EPOLL_CLOEXEC);
            if (fd < 0) return false;
            close(fd);
            return true;
        }
        catch (Exception e) when (e is DllNotFoundException or EntryPointNotFoundException)
        {
            return false;
        }
    }

    [LibraryImport("libc", SetLastError = true)]
    private static partial int epoll_create1(int flags);

    [LibraryImport("libc", SetLastError = true)]
    private static partial int epoll_ctl(int epfd, int op, int fd, byte* ev);

    [LibraryImport("libc", SetLastError = true)]
    private static partial int epoll_wait(int epfd, byte* events, int maxevents, int timeout);

    [LibraryImport("libc")]
    private static partial int close(int fd);

    public static int Create()
    {
        var fd = epoll_create1(EPOLL_CLOEXEC);
        if (fd < 0) throw new System.ComponentModel.Win32Exception(Marshal.GetLastPInvokeError(), "epoll_create1");
        return fd;
    }

    /// <summary>Adds <paramref name="fd"/> edge-triggered for reads and writes; 0 or the errno.</summary>
    public static int Add(int epfd, int fd, ulong data)
    {
        var ev = stackalloc byte[16];
        *(uint*)ev = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET;
        *(ulong*)(ev + DataOffset) = data;
        return epoll_ctl(epfd, EPOLL_CTL_ADD, fd, ev) == 0 ? 0 : Marshal.GetLastPInvokeError();
    }

    public static void Remove(int epfd, int fd)
    {
        var ev = stackalloc byte[16]; // ignored, but kernels before 2.6.9 wanted it non-null
        epoll_ctl(epfd, EPOLL_CTL_DEL, fd, ev);
    }

    /// <summary>Waits for events; the count, or -errno.</summary>
    public static int Wait(int epfd, byte* events, int max, int timeoutMs)
    {
        var n = epoll_wait(epfd, events, max, timeoutMs);
        return n >= 0 ? n : -Marshal.GetLastPInvokeError();
    }

    public static uint EventsAt(byte* events, int i) => *(uint*)(events + i * EventSize);
    public static ulong DataAt(byte* events, int i) => *(ulong*)(events + i * EventSize + DataOffset);
}
