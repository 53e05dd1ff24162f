using CSharpEnvoy.DataPlane.Event;
using CSharpEnvoy.DataPlane.Upstream.Http1;
using CSharpEnvoy.IntegrationTests.Infrastructure;

namespace CSharpEnvoy.IntegrationTests.Event;

/// <summary>
/// An upstream HTTP/1.1 pool keeps its idle connections by dispatcher, as Envoy keeps a pool per worker: a request
/// takes an idle connection of its own dispatcher before one of another's, so its response resumes on the thread that
/// serves the downstream connection; with none of its own idle it takes another's rather than open a connection.
/// </summary>
public sealed class UpstreamPoolAffinityTests
{
    [Fact]
    public async Task ARequest_TakesAnIdleConnectionOfItsOwnDispatcher_ThenAnyOther()
    {
        Assert.True(Dispatcher.Enabled, "epoll dispatchers are what this tests");
        Assert.True(Dispatcher.Count >= 2, "the test process runs at least two dispatchers (TestProcessSetup)");
        await using var backend = await TestBackend.StartEchoAsync();
        await using var proxy = await ProxyHarness.StartAsync(Yaml.Bootstrap(Yaml.RoutesToBackend, Yaml.Cluster("backend", backend.Address)));
        var cluster = proxy.Server.ClusterManager.Get("backend")!;
        var pool = cluster.Http1PoolFor(cluster.PrioritySet.Hosts[0]);
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(10));

        // One connection opened by a request on dispatcher 0, one by a request on dispatcher 1, both busy at once.
        var on0 = await Dispatcher.RunAs(0, () => pool.AcquireAsync(fresh: false, cts.Token));
        var on1 = await Dispatcher.RunAs(1, () => pool.AcquireAsync(fresh: false, cts.Token));
        Assert.NotSame(on0, on1);
        Assert.Equal(0, on0.DispatcherIndex);
        Assert.Equal(1, on1.DispatcherIndex);

        // Released in the other order: one shared queue would now hand dispatcher 0 the connection of dispatcher 1.
        pool.Release(on1, reusable: true);
        pool.Release(on0, reusable: true);
        for (var i = 0; i < 3; i++)
        {
            var again0 = await Dispatcher.RunAs(0, () => pool.AcquireAsync(fresh: false, cts.Token));
            Assert.Same(on0, again0);
            var again1 = await Dispatcher.RunAs(1, () => pool.AcquireAsync(fresh: false, cts.Token));
            Assert.Same(on1, again1);
            pool.Release(again1, reusable: true);
            pool.Release(again0, reusable: true);
        }

        // Dispatcher 1's connection busy: a request on dispatcher 1 takes dispatcher 0's idle one, opening none, and it
        // goes back to dispatcher 0's queue.
        var busy = await Dispatcher.RunAs(1, () => pool.AcquireAsync(fresh: false, cts.Token));
        Assert.Same(on1, busy);
        var borrowed = await Dispatcher.RunAs(1, () => pool.AcquireAsync(fresh: false, cts.Token));
        Assert.Same(on0, borrowed);
        pool.Release(borrowed, reusable: true);
        pool.Release(busy, reusable: true);
        Assert.Same(on0, await Dispatcher.RunAs(0, () => pool.AcquireAsync(fresh: false, cts.Token)));
        Assert.Equal(2, await proxy.StatAsync("cluster.backend.upstream_cx_total"));
    }
}
