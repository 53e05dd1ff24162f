using System.Runtime.InteropServices;

namespace CSharpEnvoy.LoadGenerator;

/// <summary>
/// ppoll(2) with a nanosecond timeout. .NET's Socket.Select and Socket.Poll round their timeout to whole milliseconds
/// (they call poll), which at 1,000 req/s would send each request up to a millisecond late; ppoll with a timer slack of
/// 1 ns wakes within a few microseconds of the due time without spinning.
/// </summary>
internal static class LinuxPoll
{
    public const short PollIn = 0x1;
    public const short PollOut = 0x4;
    public const short PollErr = 0x8;
    public const short PollHup = 0x10;

    private const int PrSetTimerSlack = 29;
    private const int ScClkTck = 2;

    [StructLayout(LayoutKind.Sequential)]
    public struct PollFd
    {
        public int Fd;
        public short Events;
        public short Revents;
    }

    [StructLayout(LayoutKind.Sequential)]
    private struct TimeSpec
    {
        public long Seconds;
        public long Nanoseconds;
    }

    /// <summary>Waits for events on <paramref name="fds"/> (negative descriptors are ignored) or the timeout.</summary>
    public static int Wait(PollFd[] fds, long timeoutNanoseconds)
    {
        var timeout = new TimeSpec
        {
            Seconds = timeoutNanoseconds / 1_000_000_000,
            Nanoseconds = timeoutNanoseconds % 1_000_000_000,
        };
        // By reference to the first element: the array is pinned and passed as is (an array parameter would be
        // marshalled through a native copy on every call).
        return ppoll(ref MemoryMarshal.GetArrayDataReference(fds), (nuint)fds.Length, ref timeout, IntPtr.Zero);
    }

    /// <summary>
    /// The kernel delays a timed wake-up by up to the thread's timer slack (50 µs by default) to batch wake-ups; the
    /// generator's schedule is in microseconds, so it asks for none.
    /// </summary>
    public static void DisableTimerSlack() => _ = prctl(PrSetTimerSlack, 1, 0, 0, 0);

    /// <summary>Clock ticks per second, the unit of utime and stime in /proc/&lt;pid&gt;/stat.</summary>
    public static long ClockTicksPerSecond() => sysconf(ScClkTck);

    [DllImport("libc")]
    private static extern int ppoll(ref PollFd fds, nuint nfds, ref TimeSpec timeout, IntPtr sigmask);

    [DllImport("libc")]
    private static extern int prctl(int option, ulong arg2, ulong arg3, ulong arg4, ulong arg5);

    [DllImport("libc")]
    private static extern long sysconf(int name);
}
