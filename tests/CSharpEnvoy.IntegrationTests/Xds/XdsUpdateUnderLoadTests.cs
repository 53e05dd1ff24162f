using System.Collections.Concurrent;
using System.Net;
using CSharpEnvoy.IntegrationTests.Infrastructure;
using Google.Protobuf;
using static CSharpEnvoy.IntegrationTests.Xds.AdsTests;
using static CSharpEnvoy.IntegrationTests.Xds.FilesystemXdsTests;
using static CSharpEnvoy.IntegrationTests.Xds.TestControlPlane;

namespace CSharpEnvoy.IntegrationTests.Xds;

/// <summary>Runtime changes without disruption: requests keep flowing while xDS changes listeners, routes, clusters and
/// endpoints under them.</summary>
public sealed class XdsUpdateUnderLoadTests
{
    private const int Changes = 20;
    private const int Clients = 4;
    private const int MaxRequestsPerClient = 3000;

    /// <summary>The snapshot after <paramref name="step"/> changes (0 is the start). Change n (1-based) changes, in turn,
    /// the endpoints, the route, the cluster and the listener, so each of the four flips every fourth change.</summary>
    private static (IMessage[] Snapshot, string ChangedType) Step(int step, int portA, int portB)
    {
        int endpointFlips = (step + 3) / 4, routeFlips = (step + 2) / 4, clusterFlips = (step + 1) / 4, listenerFlips = step / 4;
        var backend = EdsCluster("backend");
        // CDS: a changed cluster is replaced by a new live cluster (same endpoints).
        backend.ConnectTimeout = Google.Protobuf.WellKnownTypes.Duration.FromTimeSpan(TimeSpan.FromMilliseconds(1000 + clusterFlips));
        // EDS: 'backend' and 'other' swap the two live backends.
        var (backendPort, otherPort) = endpointFlips % 2 == 0 ? (portA, portB) : (portB, portA);
        // RDS: the route flips between the clusters.
        var routeCluster = routeFlips % 2 == 0 ? "backend" : "other";
        // LDS: a new connection manager (another server name) swapped in on the same socket.
        var listener = RdsListener("ingress", "routes");
        var hcm = listener.FilterChains[0].Filters[0].TypedConfig.Unpack<Envoy.Extensions.Filters.Network.HttpConnectionManager.V3.HttpConnectionManager>();
        hcm.ServerName = "csenvoy-" + listenerFlips;
        listener.FilterChains[0].Filters[0].TypedConfig = Google.Protobuf.WellKnownTypes.Any.Pack(hcm);
        IMessage[] snapshot = [backend, Cla("backend", backendPort), EdsCluster("other"), Cla("other", otherPort), listener, Routes("routes", routeCluster)];
        var changed = step == 0 ? "" : ((step - 1) % 4) switch { 0 => EndpointType, 1 => RouteType, 2 => ClusterType, _ => ListenerType };
        return (snapshot, changed);
    }

    [Fact]
    public async Task TwentyChanges_ToListenersRoutesClustersAndEndpoints_LoseNoRequest()
    {
        await using var a = await TestBackend.StartEchoAsync("a");
        await using var b = await TestBackend.StartEchoAsync("b");
        await using var cp = await TestControlPlane.StartAsync();
        cp.SetSnapshot("v0", Step(0, a.Port, b.Port).Snapshot);
        await using var proxy = await ProxyHarness.StartAsync(Bootstrap(cp.Port));
        using var probe = await ListenerClientAsync(proxy, "ingress");
        await EventuallyAsync(probe, "a");
        var address = probe.BaseAddress!;

        var failures = new ConcurrentQueue<string>();
        var seen = new ConcurrentDictionary<string, int>();
        using var stop = new CancellationTokenSource();
        var counts = new int[Clients];
        var clients = Enumerable.Range(0, Clients).Select(i => Task.Run(async () =>
        {
            using var http = new HttpClient(new SocketsHttpHandler { UseProxy = false }) { BaseAddress = address, Timeout = TimeSpan.FromSeconds(10) };
            // Half the clients open a connection per request, so new connections meet every listener version too.
            if (i % 2 == 1) http.DefaultRequestHeaders.ConnectionClose = true;
            while (!stop.IsCancellationRequested && counts[i] < MaxRequestsPerClient)
            {
                counts[i]++;
                try
                {
                    using var r = await http.GetAsync("/load");
                    var backend = r.Headers.TryGetValues("x-backend", out var v) ? v.Single() : "none";
                    if (r.StatusCode != HttpStatusCode.OK || backend is not ("a" or "b"))
                        failures.Enqueue($"client {i} request {counts[i]}: {(int)r.StatusCode} from '{backend}': {await r.Content.ReadAsStringAsync()}");
                    else seen.AddOrUpdate(backend, 1, (_, n) => n + 1);
                }
                catch (Exception ex)
                {
                    failures.Enqueue($"client {i} request {counts[i]}: {ex.GetType().Name}: {ex.Message}");
                }
            }
        })).ToArray();

        for (var step = 0; step < Changes; step++)
        {
            var (snapshot, changed) = Step(step + 1, a.Port, b.Port);
            var version = "v" + (step + 1);
            var before = counts.Sum();
            cp.SetSnapshot(version, snapshot);
            await cp.WaitForAckAsync(changed, version);
            // Let every client get requests through on the new configuration before the next change.
            var deadline = DateTime.UtcNow.AddSeconds(10);
            while (counts.Sum() < before + Clients * 5 && DateTime.UtcNow < deadline) await Task.Delay(5);
        }
        stop.Cancel();
        await Task.WhenAll(clients);

        Assert.True(failures.IsEmpty, $"{failures.Count} of {counts.Sum()} requests failed:\n" + string.Join("\n", failures.Take(20)));
        Assert.True(counts.Sum() >= Changes * Clients * 5, $"only {counts.Sum()} requests ran");
        Assert.True(seen.ContainsKey("a") && seen.ContainsKey("b"), "traffic should have reached both backends");
        Assert.Equal(Changes / 4, await proxy.StatAsync("listener_manager.listener_modified"));
        Assert.Equal(0, await proxy.StatAsync("listener_manager.lds.update_rejected") + await proxy.StatAsync("cluster_manager.cds.update_rejected"));
    }

    [Fact]
    public async Task ListenerReplacedOnItsPort_NewConnectionsAreNeverRefused()
    {
        // A new listener stat_prefix cannot be applied in place: each change starts a new server on the same port while
        // the old one drains. Clients open a new connection for every request all along.
        const int replacements = 6;
        await using var a = await TestBackend.StartEchoAsync("a");
        await using var cp = await TestControlPlane.StartAsync();
        var port = FixedPorts.Next();
        IMessage[] Snapshot(int n) => OnPort(port, "ingress", "ingress_v" + n, a.Port);
        cp.SetSnapshot("v0", Snapshot(0));
        await using var proxy = await ProxyHarness.StartAsync(Bootstrap(cp.Port));
        using var probe = await ListenerClientAsync(proxy, "ingress");
        await EventuallyAsync(probe, "a");

        var load = NewConnectionLoad.Start(probe.BaseAddress!);
        for (var n = 1; n <= replacements; n++)
        {
            var before = load.Count;
            cp.SetSnapshot("v" + n, Snapshot(n));
            await cp.WaitForAckAsync(ListenerType, "v" + n);
            await load.WaitForListenerAsync(proxy, "ingress_v" + n);
            Assert.True(load.Count > before, "clients should keep running");
        }
        await load.StopAsync();

        load.AssertNoFailure();
        Assert.Equal(replacements, await proxy.StatAsync("listener_manager.listener_modified"));
        Assert.Equal($"127.0.0.1:{port}", proxy.Server.ListenerAddresses["ingress"]);
    }

    [Theory]
    [InlineData("GRPC")]
    [InlineData("DELTA_GRPC")]
    public async Task ListenerRenamedOnItsPort_InOneUpdate_TakesOverTheSocket_NoConnectionIsRefused(string apiType)
    {
        // One LDS update removes the listener on the port and adds another name on the same address (state of the
        // world: the response names only the new one; delta: removed + added): the new listener takes over the socket.
        const int renames = 4;
        await using var a = await TestBackend.StartEchoAsync("a");
        await using var cp = await TestControlPlane.StartAsync();
        var port = FixedPorts.Next();
        cp.SetSnapshot("v0", OnPort(port, "l0", "l0", a.Port));
        await using var proxy = await ProxyHarness.StartAsync(Bootstrap(cp.Port, apiType));
        using var probe = await ListenerClientAsync(proxy, "l0");
        await EventuallyAsync(probe, "a");

        var load = NewConnectionLoad.Start(probe.BaseAddress!);
        for (var n = 1; n <= renames; n++)
        {
            cp.SetSnapshot("v" + n, OnPort(port, "l" + n, "l" + n, a.Port));
            await load.WaitForListenerAsync(proxy, "l" + n);
        }
        await load.StopAsync();

        load.AssertNoFailure();
        Assert.Equal(renames + 1, await proxy.StatAsync("listener_manager.listener_added"));
        Assert.Equal(renames, await proxy.StatAsync("listener_manager.listener_removed"));
        Assert.Equal(0, await proxy.StatAsync("listener_manager.listener_create_failure"));
        Assert.Equal(0, await proxy.StatAsync("listener_manager.lds.update_rejected"));
        Assert.Equal($"127.0.0.1:{port}", proxy.Server.ListenerAddresses["l" + renames]);
        Assert.False(proxy.Server.ListenerAddresses.ContainsKey("l" + (renames - 1)));
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public async Task ListenerMovesAway_AndANewOneTakesItsPort_InOneUpdate_InEitherOrder(bool newcomerFirst)
    {
        // "a" leaves port P for Q while "b" arrives on P in the same response: whichever comes first in the response,
        // "b" serves P on a's socket (never refused, never "address in use") and "a" binds Q.
        await using var backend = await TestBackend.StartEchoAsync("a");
        await using var cp = await TestControlPlane.StartAsync();
        var p = FixedPorts.Next();
        var q = FixedPorts.Next();
        cp.SetSnapshot("v0", OnPort(p, "a", "a_p", backend.Port));
        await using var proxy = await ProxyHarness.StartAsync(Bootstrap(cp.Port));
        using var probe = await ListenerClientAsync(proxy, "a");
        await EventuallyAsync(probe, "a");

        var load = NewConnectionLoad.Start(probe.BaseAddress!);
        var moved = OnPort(q, "a", "a_q", backend.Port);
        var newcomer = (Envoy.Config.Listener.V3.Listener)OnPort(p, "b", "b_p", backend.Port)[2];
        var listeners = newcomerFirst ? new IMessage[] { newcomer, moved[2] } : [moved[2], newcomer];
        cp.SetSnapshot("v1", [moved[0], moved[1], .. listeners, moved[3]]);
        await cp.WaitForAckAsync(ListenerType, "v1");
        await load.WaitForListenerAsync(proxy, "b_p");
        await load.StopAsync();

        load.AssertNoFailure();
        Assert.Equal($"127.0.0.1:{p}", proxy.Server.ListenerAddresses["b"]);
        Assert.Equal($"127.0.0.1:{q}", proxy.Server.ListenerAddresses["a"]);
        using var onQ = proxy.Client("a");
        Assert.Equal("a", await BackendOfAsync(onQ));
        Assert.Equal(0, await proxy.StatAsync("listener_manager.listener_create_failure"));
        Assert.Equal(1, await proxy.StatAsync("listener_manager.listener_modified"));
        Assert.Equal(2, await proxy.StatAsync("listener_manager.listener_added"));
    }

    [Fact]
    public async Task ListenerMovedToAnotherPort_OldPortStopsAccepting_ItsOpenRequestDrains_NewPortServes()
    {
        var release = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        await using var backend = await TestBackend.StartAsync(async ctx =>
        {
            if (ctx.Request.Path == "/slow") await release.Task;
            ctx.Response.Headers["x-backend"] = "a";
        });
        await using var cp = await TestControlPlane.StartAsync();
        var p = FixedPorts.Next();
        var q = FixedPorts.Next();
        cp.SetSnapshot("v0", OnPort(p, "a", "a_p", backend.Port));
        await using var proxy = await ProxyHarness.StartAsync(Bootstrap(cp.Port));
        using var onP = await ListenerClientAsync(proxy, "a");
        await EventuallyAsync(onP, "a");
        var inFlight = onP.GetAsync("/slow");
        await WaitForStatAsync(proxy, "cluster.backend.upstream_rq_active", 1);

        cp.SetSnapshot("v1", OnPort(q, "a", "a_q", backend.Port));
        await cp.WaitForAckAsync(ListenerType, "v1");
        Assert.Equal($"127.0.0.1:{q}", proxy.Server.ListenerAddresses["a"]);
        using var onQ = proxy.Client("a");
        Assert.Equal("a", await BackendOfAsync(onQ));
        // The old listener stops accepting at once (Envoy closes a draining listener's socket); its open request goes on.
        var deadline = DateTime.UtcNow.AddSeconds(10);
        while (await ConnectsAsync(p))
        {
            Assert.True(DateTime.UtcNow < deadline, $"port {p} still accepts connections");
            await Task.Delay(20);
        }
        Assert.False(inFlight.IsCompleted);
        Assert.Equal(1, await proxy.StatAsync("listener_manager.total_listeners_draining"));

        release.SetResult();
        using var drained = await inFlight;
        Assert.Equal(HttpStatusCode.OK, drained.StatusCode);
        Assert.True(drained.Headers.ConnectionClose, "a draining listener asks HTTP/1 clients to close");
        await WaitForStatAsync(proxy, "listener.a_q.downstream_cx_total", 1);
        deadline = DateTime.UtcNow.AddSeconds(10);
        while (await proxy.StatAsync("listener_manager.total_listeners_draining") != 0)
        {
            Assert.True(DateTime.UtcNow < deadline, "the old listener should finish draining once its request is done");
            await Task.Delay(20);
        }
        Assert.Equal(1, await proxy.StatAsync("listener_manager.listener_modified"));
    }

    private static async Task<bool> ConnectsAsync(int port)
    {
        using var tcp = new System.Net.Sockets.TcpClient();
        try
        {
            await tcp.ConnectAsync(IPAddress.Loopback, port);
            return true;
        }
        catch (System.Net.Sockets.SocketException)
        {
            return false;
        }
    }

    /// <summary>Cluster, endpoints, an RDS listener <paramref name="name"/> on <paramref name="port"/> with its own
    /// stat_prefix, and its routes (in that order).</summary>
    private static IMessage[] OnPort(int port, string name, string statPrefix, int backendPort)
    {
        var listener = RdsListener(name, "routes");
        listener.Address.SocketAddress.PortValue = (uint)port;
        listener.StatPrefix = statPrefix;
        return [EdsCluster("backend"), Cla("backend", backendPort), listener, Routes("routes", "backend")];
    }

    /// <summary><see cref="Clients"/> clients that open a new TCP connection for every request until stopped.</summary>
    private sealed class NewConnectionLoad
    {
        private readonly ConcurrentQueue<string> _failures = new();
        private readonly int[] _counts = new int[Clients];
        private readonly CancellationTokenSource _stop = new();
        private Task[] _clients = [];

        public int Count => _counts.Sum();

        public static NewConnectionLoad Start(Uri address)
        {
            var load = new NewConnectionLoad();
            load._clients = Enumerable.Range(0, Clients).Select(i => Task.Run(() => load.RunAsync(i, address))).ToArray();
            return load;
        }

        private async Task RunAsync(int i, Uri address)
        {
            while (!_stop.IsCancellationRequested && _counts[i] < MaxRequestsPerClient)
            {
                _counts[i]++;
                // A new handler per request: every request is a new TCP connection to the port.
                using var http = new HttpClient(new SocketsHttpHandler { UseProxy = false }) { BaseAddress = address, Timeout = TimeSpan.FromSeconds(10) };
                http.DefaultRequestHeaders.ConnectionClose = true;
                try
                {
                    using var r = await http.GetAsync("/new-connection");
                    if (r.StatusCode != HttpStatusCode.OK) _failures.Enqueue($"client {i} request {_counts[i]}: {(int)r.StatusCode}");
                }
                catch (Exception ex)
                {
                    _failures.Enqueue($"client {i} request {_counts[i]}: {ex.GetType().Name}: {ex.Message}");
                }
            }
        }

        /// <summary>Waits until the listener with <paramref name="statPrefix"/> accepted a few connections of every client.</summary>
        public async Task WaitForListenerAsync(ProxyHarness proxy, string statPrefix)
        {
            var deadline = DateTime.UtcNow.AddSeconds(20);
            while (await proxy.StatAsync($"listener.{statPrefix}.downstream_cx_total") < Clients * 5)
            {
                Assert.True(DateTime.UtcNow < deadline, $"listener '{statPrefix}' took no traffic; failures: {string.Join("\n", _failures.Take(5))}");
                await Task.Delay(5);
            }
        }

        public async Task StopAsync()
        {
            _stop.Cancel();
            await Task.WhenAll(_clients);
        }

        public void AssertNoFailure() =>
            Assert.True(_failures.IsEmpty, $"{_failures.Count} of {Count} requests failed:\n" + string.Join("\n", _failures.Take(20)));
    }
}
