using System.Collections.Concurrent;
using System.Net;
using CSharpEnvoy.IntegrationTests.Infrastructure;
using Google.Protobuf;
using static CSharpEnvoy.IntegrationTests.Xds.AdsTests;
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
        var port = Http.BasicProxyTests.FreePort();
        IMessage[] Snapshot(int n)
        {
            var listener = RdsListener("ingress", "routes");
            listener.Address.SocketAddress.PortValue = (uint)port;
            listener.StatPrefix = "ingress_v" + n;
            return [EdsCluster("backend"), Cla("backend", a.Port), listener, Routes("routes", "backend")];
        }
        cp.SetSnapshot("v0", Snapshot(0));
        await using var proxy = await ProxyHarness.StartAsync(Bootstrap(cp.Port));
        using var probe = await ListenerClientAsync(proxy, "ingress");
        await EventuallyAsync(probe, "a");

        var failures = new ConcurrentQueue<string>();
        using var stop = new CancellationTokenSource();
        var counts = new int[Clients];
        var clients = Enumerable.Range(0, Clients).Select(i => Task.Run(async () =>
        {
            while (!stop.IsCancellationRequested && counts[i] < MaxRequestsPerClient)
            {
                counts[i]++;
                // A new handler per request: every request is a new TCP connection to the port.
                using var http = new HttpClient(new SocketsHttpHandler { UseProxy = false }) { BaseAddress = probe.BaseAddress, Timeout = TimeSpan.FromSeconds(10) };
                http.DefaultRequestHeaders.ConnectionClose = true;
                try
                {
                    using var r = await http.GetAsync("/new-connection");
                    if (r.StatusCode != HttpStatusCode.OK) failures.Enqueue($"client {i} request {counts[i]}: {(int)r.StatusCode}");
                }
                catch (Exception ex)
                {
                    failures.Enqueue($"client {i} request {counts[i]}: {ex.GetType().Name}: {ex.Message}");
                }
            }
        })).ToArray();

        for (var n = 1; n <= replacements; n++)
        {
            var before = counts.Sum();
            cp.SetSnapshot("v" + n, Snapshot(n));
            await cp.WaitForAckAsync(ListenerType, "v" + n);
            var deadline = DateTime.UtcNow.AddSeconds(10);
            while (await proxy.StatAsync($"listener.ingress_v{n}.downstream_cx_total") < Clients * 5 && DateTime.UtcNow < deadline) await Task.Delay(5);
            Assert.True(counts.Sum() > before, "clients should keep running");
        }
        stop.Cancel();
        await Task.WhenAll(clients);

        Assert.True(failures.IsEmpty, $"{failures.Count} of {counts.Sum()} requests failed:\n" + string.Join("\n", failures.Take(20)));
        Assert.Equal(replacements, await proxy.StatAsync("listener_manager.listener_modified"));
        Assert.Equal($"127.0.0.1:{port}", proxy.Server.ListenerAddresses["ingress"]);
    }
}
