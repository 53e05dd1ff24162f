namespace CSharpEnvoy.DataPlane.Server;

/// <summary>
/// Gives the heap a burst left behind back to the OS once the process has gone quiet, as tcmalloc's background release
/// does for Envoy. A burst (a load test, thousands of connections opening at once) leaves the GC heap with free space
/// between the objects that survived it; without allocations there is no collection to compact it, so the process
/// would keep that space as resident memory for as long as it stays idle. Every <see cref="Interval"/> a timer compares
/// the bytes allocated since its last tick: when a whole interval was quiet and enough has been allocated since the
/// last release to be worth one, it runs one compacting collection in the GC's aggressive mode, which also decommits
/// the free regions. Nothing runs on the request path; a busy proxy (more than <see cref="QuietBytes"/> allocated per
/// interval, about 10 requests a second) never collects from here. <c>CSENVOY_IDLE_MEMORY_RELEASE=0</c> turns it off.
/// </summary>
internal sealed class IdleMemoryRelease : IDisposable
{
    public static readonly bool Enabled = Environment.GetEnvironmentVariable("CSENVOY_IDLE_MEMORY_RELEASE") != "0";

    /// <summary>How often the allocation counter is read.</summary>
    public static readonly TimeSpan Interval = TimeSpan.FromSeconds(5);
    /// <summary>An interval that allocated less than this is quiet.</summary>
    public const long QuietBytes = 256 * 1024;
    /// <summary>What must have been allocated since the last release before another is worth its pause.</summary>
    public const long MinAllocatedSinceRelease = 16 * 1024 * 1024;

    private readonly ITimer _timer;
    private readonly Func<long> _allocatedBytes;
    private readonly Action _release;
    private long _lastTick;
    private long _lastRelease;

    /// <param name="allocatedBytes">The process's allocation counter; tests pass their own.</param>
    /// <param name="release">The collection; tests pass their own.</param>
    public IdleMemoryRelease(TimeProvider time, Func<long>? allocatedBytes = null, Action? release = null)
    {
        _allocatedBytes = allocatedBytes ?? s_allocatedBytes;
        _release = release ?? s_release;
        _lastTick = _lastRelease = _allocatedBytes();
        _timer = time.CreateTimer(static s => ((IdleMemoryRelease)s!).Tick(), this, Interval, Interval);
    }

    private static readonly Func<long> s_allocatedBytes = static () => GC.GetTotalAllocatedBytes(precise: false);
    private static readonly Action s_release = static () =>
        GC.Collect(GC.MaxGeneration, GCCollectionMode.Aggressive, blocking: true, compacting: true);

    /// <summary>How many releases ran (for tests and /memory).</summary>
    public int Releases { get; private set; }

    private void Tick()
    {
        var allocated = _allocatedBytes();
        var sinceTick = allocated - _lastTick;
        _lastTick = allocated;
        if (sinceTick > QuietBytes || allocated - _lastRelease < MinAllocatedSinceRelease) return;
        _release();
        _lastTick = _lastRelease = _allocatedBytes();
        Releases++;
    }

    public void Dispose() => _timer.Dispose();
}
