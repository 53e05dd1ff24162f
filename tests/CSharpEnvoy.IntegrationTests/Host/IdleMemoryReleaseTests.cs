using CSharpEnvoy.DataPlane.Server;
using CSharpEnvoy.IntegrationTests.Infrastructure;

namespace CSharpEnvoy.IntegrationTests.Host;

/// <summary>When the idle release collects: after a quiet interval that follows enough allocation, never while busy,
/// and not again until enough has been allocated since (driven by a manual clock and counter).</summary>
public sealed class IdleMemoryReleaseTests
{
    private long _allocated;
    private int _collections;
    private readonly ManualTimeProvider _time = new();

    private IdleMemoryRelease Start() => new(_time, () => _allocated, () => _collections++);

    private void Tick(long allocatedDuringInterval)
    {
        _allocated += allocatedDuringInterval;
        _time.Advance(IdleMemoryRelease.Interval);
    }

    [Fact]
    public void Burst_ThenQuietInterval_ReleasesOnce()
    {
        using var release = Start();
        Tick(64L << 20);     // the burst: busy, no collection
        Assert.Equal(0, _collections);
        Tick(10_000);        // quiet: collect
        Assert.Equal(1, _collections);
        Tick(10_000);        // still quiet, nothing allocated since: no second collection
        Tick(0);
        Assert.Equal(1, _collections);
        Assert.Equal(1, release.Releases);
    }

    [Fact]
    public void SteadyLoad_NeverReleases()
    {
        using var release = Start();
        for (var i = 0; i < 20; i++) Tick(IdleMemoryRelease.QuietBytes + 1);
        Assert.Equal(0, _collections);
    }

    [Fact]
    public void LightTraffic_ReleasesOnlyAfterEnoughAllocation()
    {
        using var release = Start();
        var perTick = IdleMemoryRelease.QuietBytes / 2;
        var ticks = (int)(IdleMemoryRelease.MinAllocatedSinceRelease / perTick);
        for (var i = 0; i < ticks - 1; i++) Tick(perTick);
        Assert.Equal(0, _collections);
        Tick(perTick);       // the allocation since start reaches the threshold in a quiet interval
        Assert.Equal(1, _collections);
        for (var i = 0; i < ticks - 1; i++) Tick(perTick);
        Assert.Equal(1, _collections);
        Tick(perTick);
        Assert.Equal(2, _collections);
    }

    [Fact]
    public void Disposed_StopsTicking()
    {
        var release = Start();
        release.Dispose();
        Tick(64L << 20);
        Tick(0);
        Assert.Equal(0, _collections);
    }
}
