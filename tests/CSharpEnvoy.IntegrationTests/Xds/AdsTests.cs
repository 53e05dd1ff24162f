using System.Net;
using CSharpEnvoy.Config.Loading;
using CSharpEnvoy.IntegrationTests.Infrastructure;
using Envoy.Service.Discovery.V3;
using Google.Protobuf;
using Google.Protobuf.WellKnownTypes;
using static CSharpEnvoy.IntegrationTests.Xds.TestControlPlane;

namespace CSharpEnvoy.IntegrationTests.Xds;

/// <summary>xDS over ADS against <see cref="TestControlPlane"/>: real traffic driven by LDS, RDS, CDS and EDS.</summary>
public sealed class AdsTests
{
    internal static T Load<T>(string yaml) where T : class, IMessage<T>, new()
    {
        var errors = new ConfigErrors();
        var m = new ProtoYamlLoader().Load<T>(yaml, errors, "test");
        Assert.False(errors.HasErrors, errors.ToString());
        return m!;
    }

    internal static Envoy.Config.Cluster.V3.Cluster EdsCluster(string name) => Load<Envoy.Config.Cluster.V3.Cluster>($$"""
        name: {{name}}
        type: EDS
        connect_timeout: 1s
        eds_cluster_config: { eds_config: { ads: {}, resource_api_version: V3 } }
        """);

    internal static Envoy.Config.Endpoint.V3.ClusterLoadAssignment Cla(string name, params int[] ports)
    {
        var cla = new Envoy.Config.Endpoint.V3.ClusterLoadAssignment { ClusterName = name };
        var lle = new Envoy.Config.Endpoint.V3.LocalityLbEndpoints();
        foreach (var p in ports)
            lle.LbEndpoints.Add(new Envoy.Config.Endpoint.V3.LbEndpoint
            {
                Endpoint = new Envoy.Config.Endpoint.V3.Endpoint
                {
                    Address = new Envoy.Config.Core.V3.Address { SocketAddress = new Envoy.Config.Core.V3.SocketAddress { Address = "127.0.0.1", PortValue = (uint)p } },
                },
            });
        cla.Endpoints.Add(lle);
        return cla;
    }

    internal static Envoy.Config.Listener.V3.Listener RdsListener(string name, string routeName) => Load<Envoy.Config.Listener.V3.Listener>($$"""
        name: {{name}}
        address: { socket_address: { address: 127.0.0.1, port_value: 0 } }
        filter_chains:
        - filters:
          - name: envoy.filters.network.http_connection_manager
            typed_config:
              "@type": type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager
              stat_prefix: ingress
              rds: { route_config_name: {{routeName}}, config_source: { ads: {}, resource_api_version: V3 } }
              http_filters:
              - name: envoy.filters.http.router
                typed_config: { "@type": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router }
        """);

    internal static Envoy.Config.Route.V3.RouteConfiguration Routes(string name, string cluster, string prefix = "/") => Load<Envoy.Config.Route.V3.RouteConfiguration>($$"""
        name: {{name}}
        virtual_hosts:
        - name: vh
          domains: ["*"]
          routes:
          - match: { prefix: "{{prefix}}" }
            route: { cluster: {{cluster}} }
        """);

    internal static string Bootstrap(int controlPlanePort, string apiType = "GRPC", string extra = "") => $$"""
        node: { id: node-1, cluster: test-cluster }
        admin: { address: { socket_address: { address: 127.0.0.1, port_value: 0 } } }
        dynamic_resources:
          ads_config:
            api_type: {{apiType}}
            transport_api_version: V3
            grpc_services: [{ envoy_grpc: { cluster_name: xds_cluster } }]
          cds_config: { ads: {}, resource_api_version: V3 }
          lds_config: { ads: {}, resource_api_version: V3 }
        static_resources:
          clusters:
          - name: xds_cluster
            type: STATIC
            connect_timeout: 1s
            typed_extension_protocol_options:
              envoy.extensions.upstreams.http.v3.HttpProtocolOptions:
                "@type": type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions
                explicit_http_config: { http2_protocol_options: {} }
            load_assignment:
              cluster_name: xds_cluster
              endpoints: [{ lb_endpoints: [{ endpoint: { address: { socket_address: { address: 127.0.0.1, port_value: {{controlPlanePort}} } } } }] }]
        {{extra}}
        """;

    internal static IMessage[] Snapshot(int backendPort, string cluster = "backend") =>
        [EdsCluster(cluster), Cla(cluster, backendPort), RdsListener("ingress", "routes"), Routes("routes", cluster)];

    internal static async Task<HttpClient> ListenerClientAsync(ProxyHarness proxy, string name)
    {
        var deadline = DateTime.UtcNow.AddSeconds(20);
        while (!proxy.Server.ListenerAddresses.ContainsKey(name))
        {
            if (DateTime.UtcNow > deadline) throw new TimeoutException($"listener '{name}' never started");
            await Task.Delay(20);
        }
        return proxy.Client(name);
    }

    internal static async Task<string> BackendOfAsync(HttpClient client, string path = "/")
    {
        using var r = await client.GetAsync(path);
        return r.StatusCode == HttpStatusCode.OK ? r.Headers.GetValues("x-backend").Single() : ((int)r.StatusCode).ToString();
    }

    /// <summary>Polls until requests reach <paramref name="expected"/> (a backend name or a status code).</summary>
    internal static async Task EventuallyAsync(HttpClient client, string expected, string path = "/")
    {
        var deadline = DateTime.UtcNow.AddSeconds(20);
        string last = "";
        while (DateTime.UtcNow < deadline)
        {
            try
            {
                last = await BackendOfAsync(client, path);
                if (last == expected) return;
            }
            catch (HttpRequestException ex)
            {
                last = ex.Message;
            }
            await Task.Delay(50);
        }
        Assert.Fail($"expected '{expected}', last saw '{last}'");
    }

    [Fact]
    public async Task Sotw_LdsRdsCdsEds_DriveRealTraffic_AndEveryTypeIsAcked()
    {
        await using var a = await TestBackend.StartEchoAsync("a");
        await using var cp = await TestControlPlane.StartAsync();
        cp.SetSnapshot("v1", Snapshot(a.Port));
        await using var proxy = await ProxyHarness.StartAsync(Bootstrap(cp.Port), serviceZone: "zone-a");

        foreach (var t in new[] { ClusterType, EndpointType, ListenerType, RouteType })
        {
            var ack = await cp.WaitForAckAsync(t, "v1");
            Assert.NotEmpty(ack.ResponseNonce);
        }
        using var client = await ListenerClientAsync(proxy, "ingress");
        Assert.Equal("a", await BackendOfAsync(client));

        var first = (DiscoveryRequest)cp.Received[0];
        Assert.Equal("node-1", first.Node.Id);
        Assert.Equal("test-cluster", first.Node.Cluster);
        Assert.Equal("zone-a", first.Node.Locality.Zone);
        Assert.Equal("csenvoy", first.Node.UserAgentName);
        Assert.NotEmpty(first.Node.UserAgentVersion);
        Assert.Equal(ClusterType, first.TypeUrl);
        Assert.Empty(first.ResourceNames); // wildcard CDS
        Assert.All(cp.Received.Skip(1), r => Assert.Null(((DiscoveryRequest)r).Node));
        var eds = cp.Received.Cast<DiscoveryRequest>().First(r => r.TypeUrl == EndpointType);
        Assert.Equal(["backend"], eds.ResourceNames);
        var rds = cp.Received.Cast<DiscoveryRequest>().First(r => r.TypeUrl == RouteType);
        Assert.Equal(["routes"], rds.ResourceNames);

        Assert.Equal(1, await proxy.StatAsync("control_plane.connected_state"));
        Assert.Equal(1, await proxy.StatAsync("cluster_manager.cds.update_success"));
        Assert.Equal(1, await proxy.StatAsync("listener_manager.lds.update_success"));
        Assert.Equal(1, await proxy.StatAsync("http.ingress.rds.routes.update_success"));
        Assert.Equal(1, await proxy.StatAsync("cluster.backend.update_success"));

        using var admin = proxy.AdminClient();
        var dump = await admin.GetStringAsync("/config_dump");
        Assert.Contains("dynamic_active_clusters", dump);
        Assert.Contains("dynamic_listeners", dump);
        Assert.Contains("dynamic_route_configs", dump);
        Assert.Contains("\"version_info\": \"v1\"", dump);
    }

    [Fact]
    public async Task Sotw_LdsIsRequestedOnlyOnceCdsWasAnswered_AndEdsAfterTheCdsAck()
    {
        // Envoy's initialization: LDS starts after the cluster manager is initialized, so a listener whose inline
        // routes name a CDS cluster is never validated against an empty cluster map.
        await using var a = await TestBackend.StartEchoAsync("a");
        await using var cp = await TestControlPlane.StartAsync();
        cp.SetSnapshot("v1", Snapshot(a.Port));
        await using var proxy = await ProxyHarness.StartAsync(Bootstrap(cp.Port));
        await cp.WaitForAckAsync(ListenerType, "v1");

        var received = cp.Received.Cast<DiscoveryRequest>().ToList();
        var cdsAnswered = received.FindIndex(r => r.TypeUrl == ClusterType && r.ResponseNonce.Length > 0);
        var ldsRequested = received.FindIndex(r => r.TypeUrl == ListenerType);
        Assert.True(cdsAnswered >= 0 && ldsRequested > cdsAnswered, $"CDS answered at {cdsAnswered}, LDS requested at {ldsRequested}");
        // As Envoy pauses EDS while it applies CDS: the new cluster's EDS subscription follows the CDS ACK.
        var edsRequested = received.FindIndex(r => r.TypeUrl == EndpointType);
        Assert.True(edsRequested > cdsAnswered, $"CDS answered at {cdsAnswered}, EDS requested at {edsRequested}");
    }

    [Fact]
    public async Task Sotw_ResponseNonceIsEchoedAndAckCarriesNewVersion()
    {
        await using var a = await TestBackend.StartEchoAsync("a");
        await using var cp = await TestControlPlane.StartAsync();
        cp.SetSnapshot("v1", Snapshot(a.Port));
        await using var proxy = await ProxyHarness.StartAsync(Bootstrap(cp.Port));
        var ack1 = await cp.WaitForAckAsync(ClusterType, "v1");
        cp.SetSnapshot("v2", Snapshot(a.Port));
        var ack2 = await cp.WaitForAckAsync(ClusterType, "v2");
        Assert.NotEqual(ack1.ResponseNonce, ack2.ResponseNonce);
        Assert.True(long.Parse(ack2.ResponseNonce) > long.Parse(ack1.ResponseNonce));
    }

    [Fact]
    public async Task Sotw_InvalidRoute_IsNacked_AndTrafficStaysOnTheOldConfig()
    {
        await using var a = await TestBackend.StartEchoAsync("a");
        await using var b = await TestBackend.StartEchoAsync("b");
        await using var cp = await TestControlPlane.StartAsync();
        cp.SetSnapshot("v1", Snapshot(a.Port));
        await using var proxy = await ProxyHarness.StartAsync(Bootstrap(cp.Port));
        using var client = await ListenerClientAsync(proxy, "ingress");
        await EventuallyAsync(client, "a");

        var bad = Load<Envoy.Config.Route.V3.RouteConfiguration>("""
            name: routes
            virtual_hosts:
            - name: vh
              domains: ["*"]
              routes:
              - match: { safe_regex: { regex: "([" } }
                route: { cluster: backend2 }
            """);
        cp.SetSnapshot("v2", EdsCluster("backend"), Cla("backend", a.Port), EdsCluster("backend2"), Cla("backend2", b.Port), RdsListener("ingress", "routes"), bad);
        var nack = await cp.WaitForNackAsync(RouteType);
        Assert.Equal("v1", nack.VersionInfo); // the previous accepted version
        Assert.NotEmpty(nack.ResponseNonce);
        Assert.Equal(3, nack.ErrorDetail.Code);
        Assert.StartsWith("routes.", nack.ErrorDetail.Message);
        await cp.WaitForAckAsync(ClusterType, "v2"); // other types of the same snapshot are fine

        for (var i = 0; i < 5; i++) Assert.Equal("a", await BackendOfAsync(client));
        Assert.Equal(1, await proxy.StatAsync("http.ingress.rds.routes.update_rejected"));
        using var admin = proxy.AdminClient();
        var dump = await admin.GetStringAsync("/config_dump");
        Assert.Contains("\"version_info\": \"v1\"", dump);

        // A fixed route is accepted afterwards.
        cp.SetSnapshot("v3", EdsCluster("backend"), Cla("backend", a.Port), EdsCluster("backend2"), Cla("backend2", b.Port), RdsListener("ingress", "routes"), Routes("routes", "backend2"));
        await cp.WaitForAckAsync(RouteType, "v3");
        await EventuallyAsync(client, "b");
    }

    [Fact]
    public async Task Sotw_InvalidCluster_IsNacked_WithResourceNamedErrors()
    {
        await using var a = await TestBackend.StartEchoAsync("a");
        await using var cp = await TestControlPlane.StartAsync();
        cp.SetSnapshot("v1", Snapshot(a.Port));
        await using var proxy = await ProxyHarness.StartAsync(Bootstrap(cp.Port));
        using var client = await ListenerClientAsync(proxy, "ingress");
        await EventuallyAsync(client, "a");

        var bad = EdsCluster("backend");
        bad.Type = Envoy.Config.Cluster.V3.Cluster.Types.DiscoveryType.OriginalDst;
        cp.SetSnapshot("v2", bad, Cla("backend", a.Port), RdsListener("ingress", "routes"), Routes("routes", "backend"));
        var nack = await cp.WaitForNackAsync(ClusterType);
        Assert.Equal("v1", nack.VersionInfo);
        Assert.Contains("backend.type", nack.ErrorDetail.Message);
        Assert.Equal("a", await BackendOfAsync(client));
        Assert.Equal(1, await proxy.StatAsync("cluster_manager.cds.update_rejected"));
        using var admin = proxy.AdminClient();
        Assert.Contains("error_state", await admin.GetStringAsync("/config_dump"));
    }

    [Fact]
    public async Task Sotw_GarbageResource_IsNacked_NeverCrashes()
    {
        await using var a = await TestBackend.StartEchoAsync("a");
        await using var cp = await TestControlPlane.StartAsync();
        cp.SetSnapshot("v1", Snapshot(a.Port));
        await using var proxy = await ProxyHarness.StartAsync(Bootstrap(cp.Port));
        using var client = await ListenerClientAsync(proxy, "ingress");
        await EventuallyAsync(client, "a");

        cp.SetResources(ClusterType, "garbage", [("x", new Any { TypeUrl = "type.googleapis.com/no.such.Type", Value = ByteString.CopyFromUtf8("\u0001\u0002junk") })]);
        var nack = await cp.WaitForNackAsync(ClusterType);
        Assert.Contains("unexpected type 'type.googleapis.com/no.such.Type'", nack.ErrorDetail.Message);
        cp.SetResources(ClusterType, "garbage2", [("x", new Any { TypeUrl = ClusterType, Value = ByteString.CopyFrom(0xff, 0xff, 0xff) })]);
        await cp.WaitAsync<DiscoveryRequest>(r => r.TypeUrl == ClusterType && r.ErrorDetail?.Message.Contains("cannot decode") == true);
        Assert.Equal("a", await BackendOfAsync(client));
    }

    [Fact]
    public async Task Sotw_EdsChange_MovesTraffic_AndClusterAndListenerRemovalApply()
    {
        await using var a = await TestBackend.StartEchoAsync("a");
        await using var b = await TestBackend.StartEchoAsync("b");
        await using var cp = await TestControlPlane.StartAsync();
        cp.SetSnapshot("v1", Snapshot(a.Port));
        await using var proxy = await ProxyHarness.StartAsync(Bootstrap(cp.Port));
        using var client = await ListenerClientAsync(proxy, "ingress");
        await EventuallyAsync(client, "a");
        var clusterBefore = proxy.Server.ClusterManager.Get("backend");

        cp.SetSnapshot("v2", EdsCluster("backend"), Cla("backend", b.Port), RdsListener("ingress", "routes"), Routes("routes", "backend"));
        await cp.WaitForAckAsync(EndpointType, "v2");
        await EventuallyAsync(client, "b");
        // Only the endpoints changed: the same live cluster (and connection pool) serves.
        Assert.Same(clusterBefore, proxy.Server.ClusterManager.Get("backend"));

        // The cluster goes away: the route now points at nothing (503, no healthy upstream / cluster not found).
        cp.SetSnapshot("v3", RdsListener("ingress", "routes"), Routes("routes", "backend"));
        await cp.WaitForAckAsync(ClusterType, "v3");
        Assert.Null(proxy.Server.ClusterManager.Get("backend"));
        await EventuallyAsync(client, "503");

        // The listener goes away: it stops accepting.
        cp.SetSnapshot("v4", Routes("routes", "backend"));
        await cp.WaitForAckAsync(ListenerType, "v4");
        Assert.False(proxy.Server.ListenerAddresses.ContainsKey("ingress"));
        var deadline = DateTime.UtcNow.AddSeconds(10);
        while (true)
        {
            using var fresh = new HttpClient(new SocketsHttpHandler { UseProxy = false, PooledConnectionLifetime = TimeSpan.Zero }) { BaseAddress = client.BaseAddress };
            try
            {
                await fresh.GetAsync("/");
            }
            catch (HttpRequestException)
            {
                break;
            }
            Assert.True(DateTime.UtcNow < deadline, "the removed listener still accepts connections");
            await Task.Delay(50);
        }
        Assert.Equal(1, await proxy.StatAsync("listener_manager.listener_removed"));
    }

    [Fact]
    public async Task Sotw_ControlPlaneRestart_KeepsServing_ThenReconnectsAndResubscribes()
    {
        await using var a = await TestBackend.StartEchoAsync("a");
        await using var b = await TestBackend.StartEchoAsync("b");
        await using var cp = await TestControlPlane.StartAsync();
        cp.SetSnapshot("v1", Snapshot(a.Port));
        await using var proxy = await ProxyHarness.StartAsync(Bootstrap(cp.Port));
        using var client = await ListenerClientAsync(proxy, "ingress");
        await EventuallyAsync(client, "a");

        await cp.StopAsync();
        var deadline = DateTime.UtcNow.AddSeconds(10);
        while (await proxy.StatAsync("control_plane.connected_state") != 0 && DateTime.UtcNow < deadline) await Task.Delay(50);
        Assert.Equal(0, await proxy.StatAsync("control_plane.connected_state"));
        for (var i = 0; i < 3; i++) Assert.Equal("a", await BackendOfAsync(client)); // last good config keeps serving

        var countBefore = cp.Received.Count;
        await cp.RestartAsync();
        cp.SetSnapshot("v2", EdsCluster("backend"), Cla("backend", b.Port), RdsListener("ingress", "routes"), Routes("routes", "backend"));
        // The new stream re-subscribes with the last accepted version, then ACKs the new one.
        var resub = await cp.WaitAsync<DiscoveryRequest>(r => r.TypeUrl == ClusterType && r.ResponseNonce.Length == 0 && r.VersionInfo == "v1", TimeSpan.FromSeconds(40));
        Assert.NotNull(resub.Node);
        await cp.WaitForAckAsync(EndpointType, "v2", TimeSpan.FromSeconds(40));
        await EventuallyAsync(client, "b");
        Assert.True(cp.Received.Count > countBefore);
    }

    [Fact]
    public async Task Delta_DrivesTraffic_AndReconnectSendsInitialResourceVersions()
    {
        await using var a = await TestBackend.StartEchoAsync("a");
        await using var b = await TestBackend.StartEchoAsync("b");
        await using var cp = await TestControlPlane.StartAsync();
        cp.SetSnapshot("v1", Snapshot(a.Port));
        await using var proxy = await ProxyHarness.StartAsync(Bootstrap(cp.Port, "DELTA_GRPC"));
        using var client = await ListenerClientAsync(proxy, "ingress");
        await EventuallyAsync(client, "a");
        var first = (DeltaDiscoveryRequest)cp.Received[0];
        Assert.Equal("csenvoy", first.Node.UserAgentName);
        Assert.Contains(cp.Received.OfType<DeltaDiscoveryRequest>(), r => r.TypeUrl == EndpointType && r.ResourceNamesSubscribe.Contains("backend"));

        // An EDS change is sent as just that resource.
        cp.SetSnapshot("v2", EdsCluster("backend"), Cla("backend", b.Port), RdsListener("ingress", "routes"), Routes("routes", "backend"));
        await EventuallyAsync(client, "b");

        var streams = cp.StreamsOpened;
        cp.DropStreams();
        var resub = await cp.WaitAsync<DeltaDiscoveryRequest>(r => r.TypeUrl == ClusterType && r.InitialResourceVersions.Count > 0, TimeSpan.FromSeconds(40));
        Assert.Equal("v2", resub.InitialResourceVersions["backend"]);
        Assert.True(cp.StreamsOpened > streams);
        var eds = await cp.WaitAsync<DeltaDiscoveryRequest>(r => r.TypeUrl == EndpointType && r.InitialResourceVersions.Count > 0, TimeSpan.FromSeconds(40));
        Assert.Equal("v2", eds.InitialResourceVersions["backend"]);
        Assert.Equal("b", await BackendOfAsync(client));

        // Delta NACK: an invalid cluster changes nothing.
        var bad = EdsCluster("backend");
        bad.LbPolicy = Envoy.Config.Cluster.V3.Cluster.Types.LbPolicy.ClusterProvided;
        cp.SetSnapshot("v3", bad, Cla("backend", b.Port), RdsListener("ingress", "routes"), Routes("routes", "backend"));
        var nack = await cp.WaitAsync<DeltaDiscoveryRequest>(r => r.TypeUrl == ClusterType && r.ErrorDetail is not null);
        Assert.Contains("backend", nack.ErrorDetail.Message);
        Assert.Equal("b", await BackendOfAsync(client));
    }

    [Fact]
    public void Bootstrap_RefusesConfigSourcesThatCannotDeliver()
    {
        var errors = ProxyHarness.Validate(Bootstrap(1234).Replace("cds_config: { ads: {}, resource_api_version: V3 }",
            "cds_config: { path_config_source: { path: \"\" } }"));
        Assert.Contains(errors.Errors, e => e.Path == "dynamic_resources.cds_config.path_config_source.path" && e.Message.Contains("required"));
        errors = ProxyHarness.Validate(Bootstrap(1234).Replace("cds_config: { ads: {}, resource_api_version: V3 }",
            "cds_config: { api_config_source: { api_type: REST, grpc_services: [{ envoy_grpc: { cluster_name: xds_cluster } }] } }"));
        Assert.Contains(errors.Errors, e => e.Path == "dynamic_resources.cds_config.api_config_source.api_type" && e.Message.Contains("per-type"));
        errors = ProxyHarness.Validate(Bootstrap(1234).Replace("cds_config: { ads: {}, resource_api_version: V3 }",
            "cds_config: { api_config_source: { api_type: GRPC, grpc_services: [{ envoy_grpc: { cluster_name: nowhere } }] } }"));
        Assert.Contains(errors.Errors, e => e.Message.Contains("unknown static cluster 'nowhere'"));
        errors = ProxyHarness.Validate(Bootstrap(1234).Replace("cds_config: { ads: {}, resource_api_version: V3 }", "cds_config: { self: {} }"));
        Assert.Contains(errors.Errors, e => e.Path == "dynamic_resources.cds_config.self");
        errors = ProxyHarness.Validate(Bootstrap(1234, "REST"));
        Assert.Contains(errors.Errors, e => e.Path == "dynamic_resources.ads_config.api_type");
        errors = ProxyHarness.Validate(Bootstrap(1234).Replace("cluster_name: xds_cluster }", "cluster_name: nope }"));
        Assert.Contains(errors.Errors, e => e.Message.Contains("unknown static cluster 'nope'"));
    }
}

/// <summary>Envoy's dynamic-config-cp sandbox bootstrap (ADS to a go-control-plane) is accepted as it is.</summary>
public sealed class AdsSandboxTests
{
    [Fact]
    public void DynamicConfigCp_Bootstrap_Loads()
    {
        var errors = ProxyHarness.Validate(CSharpEnvoy.IntegrationTests.EnvoyConfigs.EnvoyConfigCorpus.Read("dynamic-config-cp/envoy.yaml"));
        Assert.False(errors.HasErrors, errors.ToString());
    }
}
