using System.Diagnostics;
using System.Net;
using CSharpEnvoy.IntegrationTests.Infrastructure;
using Envoy.Service.Discovery.V3;
using Google.Protobuf;
using Google.Protobuf.WellKnownTypes;
using static CSharpEnvoy.IntegrationTests.Xds.AdsTests;
using static CSharpEnvoy.IntegrationTests.Xds.FilesystemXdsTests;
using static CSharpEnvoy.IntegrationTests.Xds.TestControlPlane;

namespace CSharpEnvoy.IntegrationTests.Xds;

/// <summary>Envoy's server initialization (Operations: Initialization) against <see cref="TestControlPlane"/>: the cluster
/// manager initializes (CDS, then the EDS warm-up of its clusters) before LDS is requested, and the server goes LIVE once
/// the first listeners warmed.</summary>
public sealed class XdsInitializationTests
{
    private static bool IsFor(IMessage request, string typeUrl) => request switch
    {
        DiscoveryRequest d => d.TypeUrl == typeUrl,
        DeltaDiscoveryRequest d => d.TypeUrl == typeUrl,
        _ => false,
    };

    /// <summary>An ACK: the answer to a response (a nonce) without an error.</summary>
    private static bool IsAckOf(IMessage request, string typeUrl) => IsFor(request, typeUrl) && request switch
    {
        DiscoveryRequest d => d.ResponseNonce.Length > 0 && d.ErrorDetail is null,
        DeltaDiscoveryRequest d => d.ResponseNonce.Length > 0 && d.ErrorDetail is null,
        _ => false,
    };

    private static Envoy.Config.Cluster.V3.Cluster EdsCluster(string name, TimeSpan? initialFetchTimeout)
    {
        var c = AdsTests.EdsCluster(name);
        if (initialFetchTimeout is { } t) c.EdsClusterConfig.EdsConfig.InitialFetchTimeout = Duration.FromTimeSpan(t);
        return c;
    }

    [Theory]
    [InlineData("GRPC", false)]
    [InlineData("DELTA_GRPC", false)]
    [InlineData("GRPC", true)]
    [InlineData("DELTA_GRPC", true)]
    public async Task Lds_IsRequestedOnlyAfterEdsServedTheFirstCdsClusters(string apiType, bool waitForever)
    {
        // initial_fetch_timeout: 0s (Istio, Envoy Gateway) waits for the endpoints without a bound; the default 15 s
        // is far beyond this test either way.
        await using var a = await TestBackend.StartEchoAsync("a");
        await using var cp = await TestControlPlane.StartAsync();
        var cluster = EdsCluster("backend", waitForever ? TimeSpan.Zero : null);
        cp.SetSnapshot("v1", cluster, RdsListener("ingress", "routes"), Routes("routes", "backend"));
        var starting = ProxyHarness.StartAsync(Bootstrap(cp.Port, apiType));
        // CDS was applied (its cluster's EDS is asked for); the cluster warms without endpoints, so the cluster manager is
        // not initialized and LDS not asked for.
        await cp.WaitAsync<IMessage>(r => IsFor(r, EndpointType));
        Assert.DoesNotContain(cp.Received, r => IsFor(r, ListenerType));
        Assert.False(starting.IsCompleted);

        cp.SetSnapshot("v2", cluster, Cla("backend", a.Port), RdsListener("ingress", "routes"), Routes("routes", "backend"));
        await using var proxy = await starting;
        using var client = await ListenerClientAsync(proxy, "ingress");
        Assert.Equal("a", await BackendOfAsync(client));

        var received = cp.Received.ToList();
        var edsAcked = received.FindIndex(r => IsAckOf(r, EndpointType));
        var ldsRequested = received.FindIndex(r => IsFor(r, ListenerType));
        Assert.True(edsAcked >= 0 && ldsRequested > edsAcked, $"EDS acknowledged at {edsAcked}, LDS requested at {ldsRequested}");
        Assert.Equal(0, await proxy.StatAsync("cluster.backend.init_fetch_timeout"));
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task StaticEdsCluster_GetsItsEndpointsBeforeCdsAndLdsAreRequested(bool withCds)
    {
        // Envoy's cluster manager initializes the bootstrap's EDS clusters first; CDS starts after them, LDS after both.
        await using var a = await TestBackend.StartEchoAsync("a");
        await using var cp = await TestControlPlane.StartAsync();
        cp.SetSnapshot("v1", RdsListener("ingress", "routes"), Routes("routes", "backend"));
        var bootstrap = Bootstrap(cp.Port).Replace("  clusters:\n", """
              clusters:
              - name: backend
                type: EDS
                connect_timeout: 1s
                eds_cluster_config: { eds_config: { ads: {}, resource_api_version: V3, initial_fetch_timeout: 0s } }

            """);
        if (!withCds) bootstrap = bootstrap.Replace("  cds_config: { ads: {}, resource_api_version: V3 }\n", "");
        var starting = ProxyHarness.StartAsync(bootstrap);
        await cp.WaitAsync<IMessage>(r => IsFor(r, EndpointType));
        Assert.DoesNotContain(cp.Received, r => IsFor(r, ClusterType) || IsFor(r, ListenerType));
        Assert.False(starting.IsCompleted);

        cp.SetSnapshot("v2", Cla("backend", a.Port), RdsListener("ingress", "routes"), Routes("routes", "backend"));
        await using var proxy = await starting;
        using var client = await ListenerClientAsync(proxy, "ingress");
        Assert.Equal("a", await BackendOfAsync(client));
        var received = cp.Received.ToList();
        var edsAcked = received.FindIndex(r => IsAckOf(r, EndpointType));
        Assert.True(received.FindIndex(r => IsFor(r, ListenerType)) > edsAcked);
        if (withCds) Assert.True(received.FindIndex(r => IsFor(r, ClusterType)) > edsAcked);
        else Assert.DoesNotContain(received, r => IsFor(r, ClusterType));
    }

    [Fact]
    public async Task EdsNeverAnswers_LdsStartsOnceTheClustersInitialFetchTimeoutPassed()
    {
        var timeout = TimeSpan.FromSeconds(2);
        await using var cp = await TestControlPlane.StartAsync();
        cp.SetSnapshot("v1", EdsCluster("backend", timeout), RdsListener("ingress", "routes"), Routes("routes", "backend"));
        var clock = Stopwatch.StartNew();
        await using var proxy = await ProxyHarness.StartAsync(Bootstrap(cp.Port));
        // The start waits for the cluster manager, which waits for the cluster's endpoints up to its timeout.
        Assert.True(clock.Elapsed >= timeout, $"the server started after {clock.Elapsed}, before the EDS initial_fetch_timeout");
        Assert.Equal(1, await proxy.StatAsync("cluster.backend.init_fetch_timeout"));
        await cp.WaitForAckAsync(ListenerType, "v1");

        // The listener serves; the cluster has no endpoints.
        using var client = await ListenerClientAsync(proxy, "ingress");
        Assert.Equal("503", await BackendOfAsync(client));
    }

    [Fact]
    public async Task Ready_IsLiveOnlyOnceTheFirstListenersWarmed()
    {
        // The listener waits for its routes (RDS): the server is up, its admin answers, but it is not LIVE yet.
        await using var a = await TestBackend.StartEchoAsync("a");
        await using var cp = await TestControlPlane.StartAsync();
        cp.SetSnapshot("v1", AdsTests.EdsCluster("backend"), Cla("backend", a.Port), RdsListener("ingress", "routes"));
        await using var proxy = await ProxyHarness.StartAsync(Bootstrap(cp.Port));
        await cp.WaitForAckAsync(ListenerType, "v1");
        using var admin = proxy.AdminClient();
        using (var ready = await admin.GetAsync("/ready"))
        {
            Assert.Equal(HttpStatusCode.ServiceUnavailable, ready.StatusCode);
            Assert.Equal("INITIALIZING\n", await ready.Content.ReadAsStringAsync());
        }
        Assert.Equal(3, await proxy.StatAsync("server.state")); // INITIALIZING
        Assert.Equal(1, await proxy.StatAsync("listener_manager.total_listeners_warming"));

        cp.SetSnapshot("v2", AdsTests.EdsCluster("backend"), Cla("backend", a.Port), RdsListener("ingress", "routes"), Routes("routes", "backend"));
        using var client = await ListenerClientAsync(proxy, "ingress");
        await WaitForStatAsync(proxy, "server.live", 1);
        Assert.Equal("LIVE\n", await admin.GetStringAsync("/ready"));
        Assert.Equal(0, await proxy.StatAsync("server.state"));
        Assert.Equal("a", await BackendOfAsync(client));
    }

    private static bool IsNackOf(IMessage request, string typeUrl) => IsFor(request, typeUrl) && request switch
    {
        DiscoveryRequest d => d.ErrorDetail is not null,
        DeltaDiscoveryRequest d => d.ErrorDetail is not null,
        _ => false,
    };

    [Theory]
    [InlineData("GRPC")]
    [InlineData("DELTA_GRPC")]
    public async Task RejectedFirstEds_EndsTheClustersWarming(string apiType)
    {
        // Envoy's EDS onConfigUpdateFailed: with initial_fetch_timeout 0s only a good assignment would end the wait, so a
        // control plane sending a bad one would hold the server's initialization forever. The cluster starts without
        // endpoints instead, and the next good assignment fills it.
        await using var a = await TestBackend.StartEchoAsync("a");
        await using var cp = await TestControlPlane.StartAsync();
        var cluster = EdsCluster("backend", TimeSpan.Zero);
        var bad = Cla("backend", a.Port);
        bad.Endpoints[0].LbEndpoints[0].Endpoint.Address.SocketAddress.Address = "not-an-ip";
        cp.SetSnapshot("v1", cluster, bad, RdsListener("ingress", "routes"), Routes("routes", "backend"));
        await using var proxy = await ProxyHarness.StartAsync(Bootstrap(cp.Port, apiType)).WaitAsync(TimeSpan.FromSeconds(30));
        Assert.Contains(cp.Received, r => IsNackOf(r, EndpointType));
        Assert.Equal(1, await proxy.StatAsync("cluster.backend.update_rejected"));
        Assert.Equal(0, await proxy.StatAsync("cluster.backend.init_fetch_timeout"));
        Assert.Equal(0, await proxy.StatAsync("cluster_manager.warming_clusters"));
        using var client = await ListenerClientAsync(proxy, "ingress");
        Assert.Equal("503", await BackendOfAsync(client));

        cp.SetSnapshot("v2", cluster, Cla("backend", a.Port), RdsListener("ingress", "routes"), Routes("routes", "backend"));
        await EventuallyAsync(client, "a");
    }

    [Theory]
    [InlineData("GRPC")]
    [InlineData("DELTA_GRPC")]
    public async Task RejectedFirstRds_EndsTheListenersWarming(string apiType)
    {
        // Envoy's RDS onConfigUpdateFailed: the listener starts, answering 404 until a good route configuration arrives.
        await using var a = await TestBackend.StartEchoAsync("a");
        await using var cp = await TestControlPlane.StartAsync();
        var listener = AdsTests.Load<Envoy.Config.Listener.V3.Listener>("""
            name: ingress
            address: { socket_address: { address: 127.0.0.1, port_value: 0 } }
            filter_chains:
            - filters:
              - name: envoy.filters.network.http_connection_manager
                typed_config:
                  "@type": type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager
                  stat_prefix: ingress
                  rds: { route_config_name: routes, config_source: { ads: {}, resource_api_version: V3, initial_fetch_timeout: 0s } }
                  http_filters:
                  - name: envoy.filters.http.router
                    typed_config: { "@type": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router }
            """);
        var badRoutes = AdsTests.Load<Envoy.Config.Route.V3.RouteConfiguration>("""
            name: routes
            virtual_hosts:
            - name: vh
              domains: ["*"]
              routes:
              - match: { safe_regex: { regex: "(unclosed" } }
                route: { cluster: backend }
            """);
        var cluster = AdsTests.EdsCluster("backend");
        cp.SetSnapshot("v1", cluster, Cla("backend", a.Port), listener, badRoutes);
        await using var proxy = await ProxyHarness.StartAsync(Bootstrap(cp.Port, apiType));
        await cp.WaitAsync<IMessage>(r => IsNackOf(r, RouteType));
        using var client = await ListenerClientAsync(proxy, "ingress");
        await WaitForStatAsync(proxy, "server.live", 1);
        Assert.Equal(0, await proxy.StatAsync("listener_manager.total_listeners_warming"));
        Assert.Equal(1, await proxy.StatAsync("http.ingress.rds.routes.update_rejected"));
        Assert.Equal("404", await BackendOfAsync(client));

        cp.SetSnapshot("v2", cluster, Cla("backend", a.Port), listener, Routes("routes", "backend"));
        await EventuallyAsync(client, "a");
    }
}
