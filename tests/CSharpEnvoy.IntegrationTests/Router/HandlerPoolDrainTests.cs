using System.Net;
using CSharpEnvoy.IntegrationTests.Infrastructure;
using CSharpEnvoy.IntegrationTests.Xds;
using Google.Protobuf;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.Extensions.Logging;
using static CSharpEnvoy.IntegrationTests.Xds.AdsTests;
using static CSharpEnvoy.IntegrationTests.Xds.TestControlPlane;

namespace CSharpEnvoy.IntegrationTests.Router;

/// <summary>
/// The SocketsHttpHandler path's pools (here HTTP/2 clusters) drain per host as the HTTP/1.1 codec's do: a host that
/// leaves the cluster (EDS) has its idle connection closed at once and a busy one once its request is done, while the
/// other hosts keep theirs; a cluster CDS removes or replaces closes its connections too.
/// </summary>
public sealed class HandlerPoolDrainTests
{
    private static readonly TimeSpan s_wait = TimeSpan.FromSeconds(20);

    /// <summary>An h2c Kestrel upstream answering <c>x-backend: name</c>, counting the connections it accepted and
    /// releasing <see cref="Closed"/> as each one ends. Requests wait for <see cref="Release"/> while
    /// <see cref="Hold"/> is set.</summary>
    private sealed class H2Upstream : IAsyncDisposable
    {
        private readonly WebApplication _app;
        private int _connections;

        private H2Upstream(WebApplication app) => _app = app;

        public int Port { get; private set; }
        public int Connections => Volatile.Read(ref _connections);
        public SemaphoreSlim Closed { get; } = new(0);
        public volatile bool Hold;
        public TaskCompletionSource Arrived { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);
        public TaskCompletionSource Release { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public static async Task<H2Upstream> StartAsync(string name)
        {
            var builder = WebApplication.CreateSlimBuilder();
            builder.Logging.ClearProviders();
            H2Upstream? self = null;
            builder.WebHost.ConfigureKestrel(k => k.Listen(IPAddress.Loopback, 0, lo =>
            {
                lo.Protocols = HttpProtocols.Http2;
                lo.Use(next => async connection =>
                {
                    Interlocked.Increment(ref self!._connections);
                    try
                    {
                        await next(connection);
                    }
                    finally
                    {
                        self.Closed.Release();
                    }
                });
            }));
            var app = builder.Build();
            self = new H2Upstream(app);
            app.Run(async ctx =>
            {
                if (self.Hold)
                {
                    self.Arrived.TrySetResult();
                    await self.Release.Task;
                }
                ctx.Response.Headers["x-backend"] = name;
                await ctx.Response.WriteAsync("ok");
            });
            await app.StartAsync();
            self.Port = new Uri(app.Urls.First()).Port;
            return self;
        }

        public async ValueTask DisposeAsync()
        {
            Release.TrySetResult();
            await _app.DisposeAsync();
            Closed.Dispose();
        }
    }

    private static Envoy.Config.Cluster.V3.Cluster Cluster(string connectTimeout = "1s") => Load<Envoy.Config.Cluster.V3.Cluster>($$"""
        name: backend
        type: EDS
        connect_timeout: {{connectTimeout}}
        eds_cluster_config: { eds_config: { ads: {}, resource_api_version: V3 } }
        typed_extension_protocol_options:
          envoy.extensions.upstreams.http.v3.HttpProtocolOptions:
            "@type": type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions
            explicit_http_config: { http2_protocol_options: {} }
        """);

    private static IMessage[] Snapshot(Envoy.Config.Cluster.V3.Cluster cluster, params int[] ports) =>
        [cluster, Cla("backend", ports), RdsListener("ingress", "routes"), Routes("routes", "backend")];

    [Fact]
    public async Task EdsRemovingAHost_ClosesItsConnection_AndTheOtherHostKeepsItsOwn()
    {
        await using var a = await H2Upstream.StartAsync("a");
        await using var b = await H2Upstream.StartAsync("b");
        await using var cp = await TestControlPlane.StartAsync();
        cp.SetSnapshot("v1", Snapshot(Cluster(), a.Port, b.Port));
        await using var proxy = await ProxyHarness.StartAsync(Bootstrap(cp.Port));
        using var client = await ListenerClientAsync(proxy, "ingress");
        var seen = new HashSet<string>();
        for (var i = 0; i < 4; i++) seen.Add(await BackendOfAsync(client)); // round robin: both hosts
        Assert.Equal(["a", "b"], seen.Order());
        Assert.Equal(1, a.Connections);
        Assert.Equal(1, b.Connections);

        cp.SetSnapshot("v2", Snapshot(Cluster(), b.Port));
        await cp.WaitForAckAsync(EndpointType, "v2");

        Assert.True(await a.Closed.WaitAsync(s_wait), "the removed host's idle connection stayed open");
        Assert.Equal("b", await BackendOfAsync(client));
        Assert.Equal("b", await BackendOfAsync(client));
        Assert.Equal(1, b.Connections); // the kept host's connection was not touched
        Assert.Equal(0, b.Closed.CurrentCount);
        Assert.Equal(1, await proxy.StatAsync("cluster.backend.upstream_cx_destroy"));
        Assert.Equal(1, await proxy.StatAsync("cluster.backend.upstream_cx_active"));
    }

    [Fact]
    public async Task RequestInFlightToARemovedHost_Completes_ThenItsConnectionCloses()
    {
        await using var a = await H2Upstream.StartAsync("a");
        await using var b = await H2Upstream.StartAsync("b");
        a.Hold = true;
        await using var cp = await TestControlPlane.StartAsync();
        cp.SetSnapshot("v1", Snapshot(Cluster(), a.Port));
        await using var proxy = await ProxyHarness.StartAsync(Bootstrap(cp.Port));
        using var client = await ListenerClientAsync(proxy, "ingress");
        using var other = proxy.Client("ingress");
        var inFlight = BackendOfAsync(client);
        await a.Arrived.Task.WaitAsync(s_wait);

        cp.SetSnapshot("v2", Snapshot(Cluster(), b.Port));
        await cp.WaitForAckAsync(EndpointType, "v2");
        Assert.Equal("b", await BackendOfAsync(other)); // no new request goes to the removed host
        Assert.False(inFlight.IsCompleted);
        Assert.Equal(0, a.Closed.CurrentCount); // the request in flight keeps its connection

        a.Release.SetResult();
        Assert.Equal("a", await inFlight.WaitAsync(s_wait));
        Assert.True(await a.Closed.WaitAsync(s_wait), "the removed host's connection stayed open after its request");
        Assert.Equal(1, a.Connections);
        Assert.Equal(1, await proxy.StatAsync("cluster.backend.upstream_cx_destroy"));
        Assert.Equal(1, await proxy.StatAsync("cluster.backend.upstream_cx_active"));
    }

    [Fact]
    public async Task CdsReplacingOrRemovingTheCluster_ClosesItsConnections()
    {
        await using var a = await H2Upstream.StartAsync("a");
        await using var cp = await TestControlPlane.StartAsync();
        cp.SetSnapshot("v1", Snapshot(Cluster(), a.Port));
        await using var proxy = await ProxyHarness.StartAsync(Bootstrap(cp.Port));
        using var client = await ListenerClientAsync(proxy, "ingress");
        Assert.Equal("a", await BackendOfAsync(client));

        // A changed cluster is a new cluster with new hosts and pools: the old one's connection closes now, not
        // after the drain time.
        cp.SetSnapshot("v2", Snapshot(Cluster(connectTimeout: "2s"), a.Port));
        await cp.WaitForAckAsync(ClusterType, "v2");
        Assert.True(await a.Closed.WaitAsync(s_wait), "the replaced cluster's idle connection stayed open");
        Assert.Equal("a", await BackendOfAsync(client));
        Assert.Equal(2, a.Connections);

        cp.SetSnapshot("v3", RdsListener("ingress", "routes"), Routes("routes", "backend"));
        await cp.WaitForAckAsync(ClusterType, "v3");
        Assert.True(await a.Closed.WaitAsync(s_wait), "the removed cluster's idle connection stayed open");
        Assert.Equal(2, a.Connections);
    }
}
