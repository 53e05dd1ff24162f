using CSharpEnvoy.IntegrationTests.Infrastructure;
using CSharpEnvoy.IntegrationTests.Xds;
using Google.Protobuf;
using static CSharpEnvoy.IntegrationTests.Xds.AdsTests;
using static CSharpEnvoy.IntegrationTests.Xds.TestControlPlane;

namespace CSharpEnvoy.IntegrationTests.Router;

/// <summary>
/// The upstream HTTP/1.1 codec's pools drain when their host leaves the cluster (EDS) or their cluster leaves the
/// cluster map (CDS), as Envoy's do: an idle kept-alive connection closes at once, a busy one after its request, and no
/// new request goes to the removed host.
/// </summary>
public sealed class Http1PoolDrainTests
{
    private static readonly TimeSpan s_wait = TimeSpan.FromSeconds(20);

    /// <summary>An upstream answering every request on a kept-alive connection with <c>x-backend: name</c>;
    /// <paramref name="closed"/> is released each time the proxy closes one of its connections (a read returns 0).
    /// <paramref name="onRequest"/> runs before each response.</summary>
    private static RawUpstream KeepAlive(string name, SemaphoreSlim closed, Func<Task>? onRequest = null) => RawUpstream.Start(async c =>
    {
        while (await c.ReadRequestAsync() is not null)
        {
            if (onRequest is not null) await onRequest();
            await c.WriteAsync($"HTTP/1.1 200 OK\r\nx-backend: {name}\r\nContent-Length: 2\r\n\r\nok");
        }
        closed.Release();
    });

    /// <summary>An upstream like <see cref="KeepAlive"/> whose requests wait for <paramref name="release"/>;
    /// <paramref name="arrived"/> completes when the first one has come in.</summary>
    private static RawUpstream Holding(string name, SemaphoreSlim closed, out TaskCompletionSource arrived, out TaskCompletionSource release)
    {
        var first = arrived = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var gate = release = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        return KeepAlive(name, closed, () =>
        {
            first.TrySetResult();
            return gate.Task;
        });
    }

    private static IMessage[] Snapshot(Envoy.Config.Cluster.V3.Cluster cluster, int port) =>
        [cluster, Cla("backend", port), RdsListener("ingress", "routes"), Routes("routes", "backend")];

    private static Envoy.Config.Cluster.V3.Cluster Cluster(string extra = "", string connectTimeout = "1s") => Load<Envoy.Config.Cluster.V3.Cluster>($$"""
        name: backend
        type: EDS
        connect_timeout: {{connectTimeout}}
        eds_cluster_config: { eds_config: { ads: {}, resource_api_version: V3 } }
        {{extra}}
        """);

    private static async Task WaitForStatAsync(ProxyHarness proxy, string name, long value)
    {
        var deadline = DateTime.UtcNow + s_wait;
        long last;
        while ((last = await proxy.StatAsync(name)) != value)
        {
            if (DateTime.UtcNow > deadline) Assert.Fail($"{name} stayed {last}, expected {value}");
            await Task.Delay(20);
        }
    }

    [Fact]
    public async Task EdsRemovingAHost_ClosesItsIdleConnection_AndTheNextRequestGoesToTheNewHost()
    {
        using var aClosed = new SemaphoreSlim(0);
        using var bClosed = new SemaphoreSlim(0);
        await using var a = KeepAlive("a", aClosed);
        await using var b = KeepAlive("b", bClosed);
        await using var cp = await TestControlPlane.StartAsync();
        cp.SetSnapshot("v1", Snapshot(Cluster(), a.Port));
        await using var proxy = await ProxyHarness.StartAsync(Bootstrap(cp.Port));
        using var client = await ListenerClientAsync(proxy, "ingress");
        Assert.Equal("a", await BackendOfAsync(client));
        Assert.Equal("a", await BackendOfAsync(client));
        Assert.Equal(1, a.Connections); // kept alive in the pool

        cp.SetSnapshot("v2", Snapshot(Cluster(), b.Port));
        await cp.WaitForAckAsync(EndpointType, "v2");

        Assert.True(await aClosed.WaitAsync(s_wait), "the removed host's idle connection stayed open");
        Assert.Equal("b", await BackendOfAsync(client));
        Assert.Equal(1, a.Connections);
        Assert.Equal(2, await proxy.StatAsync("cluster.backend.upstream_cx_total"));
        Assert.Equal(1, await proxy.StatAsync("cluster.backend.upstream_cx_destroy"));
        Assert.Equal(1, await proxy.StatAsync("cluster.backend.upstream_cx_active"));
        using var admin = proxy.AdminClient();
        var hosts = await admin.GetStringAsync("/clusters");
        Assert.Contains($"backend::{b.Address}::cx_active::1\n", hosts);
        Assert.DoesNotContain(a.Address, hosts);
    }

    [Fact]
    public async Task EdsChangingAHostsWeight_KeepsItsConnection()
    {
        // Envoy's in-place host update: a canary shift by EDS weights does not reconnect.
        using var aClosed = new SemaphoreSlim(0);
        await using var a = KeepAlive("a", aClosed);
        await using var cp = await TestControlPlane.StartAsync();
        cp.SetSnapshot("v1", Snapshot(Cluster(), a.Port));
        await using var proxy = await ProxyHarness.StartAsync(Bootstrap(cp.Port));
        using var client = await ListenerClientAsync(proxy, "ingress");
        Assert.Equal("a", await BackendOfAsync(client));
        var changes = await proxy.StatAsync("cluster.backend.membership_change");

        var reweighted = Cla("backend", a.Port);
        reweighted.Endpoints[0].LbEndpoints[0].LoadBalancingWeight = 7;
        cp.SetSnapshot("v2", Cluster(), reweighted, RdsListener("ingress", "routes"), Routes("routes", "backend"));
        await cp.WaitForAckAsync(EndpointType, "v2");
        using var admin = proxy.AdminClient();
        Assert.Contains($"backend::{a.Address}::weight::7\n", await admin.GetStringAsync("/clusters"));

        Assert.Equal("a", await BackendOfAsync(client));
        Assert.Equal(1, a.Connections); // the same kept-alive connection
        Assert.Equal(0, aClosed.CurrentCount);
        Assert.Equal(0, await proxy.StatAsync("cluster.backend.upstream_cx_destroy"));
        Assert.Equal(changes, await proxy.StatAsync("cluster.backend.membership_change"));
    }

    [Fact]
    public async Task RequestInFlightToARemovedHost_Completes_ThenItsConnectionCloses()
    {
        using var aClosed = new SemaphoreSlim(0);
        using var bClosed = new SemaphoreSlim(0);
        await using var a = Holding("a", aClosed, out var arrived, out var release);
        await using var b = KeepAlive("b", bClosed);
        await using var cp = await TestControlPlane.StartAsync();
        cp.SetSnapshot("v1", Snapshot(Cluster(), a.Port));
        await using var proxy = await ProxyHarness.StartAsync(Bootstrap(cp.Port));
        using var client = await ListenerClientAsync(proxy, "ingress");
        using var other = proxy.Client("ingress");
        var inFlight = BackendOfAsync(client);
        await arrived.Task.WaitAsync(s_wait);

        cp.SetSnapshot("v2", Snapshot(Cluster(), b.Port));
        await cp.WaitForAckAsync(EndpointType, "v2");
        Assert.Equal("b", await BackendOfAsync(other)); // no new request goes to the removed host
        Assert.False(inFlight.IsCompleted);

        release.SetResult();
        Assert.Equal("a", await inFlight.WaitAsync(s_wait));
        Assert.True(await aClosed.WaitAsync(s_wait), "the removed host's connection went back to the pool after its request");
        Assert.Equal(1, a.Connections);
        Assert.Single(a.Requests);
        Assert.Equal(1, await proxy.StatAsync("cluster.backend.upstream_cx_destroy"));
        Assert.Equal(1, await proxy.StatAsync("cluster.backend.upstream_cx_active"));
    }

    [Fact]
    public async Task RequestWaitingForAConnectionToARemovedHost_IsServed_ThenTheConnectionCloses()
    {
        // max_connections 1: the second request waits in the pool for the first one's connection when A is removed.
        using var aClosed = new SemaphoreSlim(0);
        using var bClosed = new SemaphoreSlim(0);
        await using var a = Holding("a", aClosed, out var arrived, out var release);
        await using var b = KeepAlive("b", bClosed);
        var cluster = Cluster("circuit_breakers: { thresholds: [{ max_connections: 1 }] }");
        await using var cp = await TestControlPlane.StartAsync();
        cp.SetSnapshot("v1", Snapshot(cluster, a.Port));
        await using var proxy = await ProxyHarness.StartAsync(Bootstrap(cp.Port));
        using var client = await ListenerClientAsync(proxy, "ingress");
        using var second = proxy.Client("ingress");
        var first = BackendOfAsync(client);
        await arrived.Task.WaitAsync(s_wait);
        var queued = BackendOfAsync(second);
        await WaitForStatAsync(proxy, "cluster.backend.upstream_rq_total", 2); // it chose A

        cp.SetSnapshot("v2", Snapshot(cluster, b.Port));
        await cp.WaitForAckAsync(EndpointType, "v2");
        release.SetResult();

        Assert.Equal("a", await first.WaitAsync(s_wait));
        Assert.Equal("a", await queued.WaitAsync(s_wait));
        Assert.True(await aClosed.WaitAsync(s_wait), "the removed host's connection went back to the pool");
        Assert.Equal(1, a.Connections); // handed over, not closed and reopened
        Assert.Equal(2, a.Requests.Count);
        Assert.Equal(1, await proxy.StatAsync("cluster.backend.upstream_cx_destroy"));
        Assert.Equal(0, await proxy.StatAsync("cluster.backend.upstream_cx_active"));
    }

    [Fact]
    public async Task CdsReplacingOrRemovingTheCluster_ClosesItsIdleConnections()
    {
        using var aClosed = new SemaphoreSlim(0);
        await using var a = KeepAlive("a", aClosed);
        await using var cp = await TestControlPlane.StartAsync();
        cp.SetSnapshot("v1", Snapshot(Cluster(), a.Port));
        await using var proxy = await ProxyHarness.StartAsync(Bootstrap(cp.Port));
        using var client = await ListenerClientAsync(proxy, "ingress");
        Assert.Equal("a", await BackendOfAsync(client));

        // A changed cluster is a new cluster with new hosts and pools: the old one's connection closes now.
        cp.SetSnapshot("v2", Snapshot(Cluster(connectTimeout: "2s"), a.Port));
        await cp.WaitForAckAsync(ClusterType, "v2");
        Assert.True(await aClosed.WaitAsync(s_wait), "the replaced cluster's idle connection stayed open");
        Assert.Equal("a", await BackendOfAsync(client));
        Assert.Equal(2, a.Connections);
        Assert.Equal(1, await proxy.StatAsync("cluster.backend.upstream_cx_destroy"));
        Assert.Equal(1, await proxy.StatAsync("cluster.backend.upstream_cx_active"));

        // Removed: its connection closes too.
        cp.SetSnapshot("v3", RdsListener("ingress", "routes"), Routes("routes", "backend"));
        await cp.WaitForAckAsync(ClusterType, "v3");
        Assert.True(await aClosed.WaitAsync(s_wait), "the removed cluster's idle connection stayed open");
        Assert.Equal(2, a.Connections);
    }
}
