using System.Net;
using System.Text.Json;
using CSharpEnvoy.IntegrationTests.Infrastructure;
using Google.Protobuf;
using Google.Protobuf.WellKnownTypes;
using static CSharpEnvoy.IntegrationTests.Xds.AdsTests;
using static CSharpEnvoy.IntegrationTests.Xds.TestControlPlane;

namespace CSharpEnvoy.IntegrationTests.Xds;

/// <summary>Control planes tag resources with <c>metadata</c> (Istio on every cluster and endpoint): it is accepted,
/// kept for /config_dump, and does not stop the update.</summary>
public sealed class XdsMetadataTests
{
    private static Envoy.Config.Core.V3.Metadata IstioMetadata(string json)
    {
        var m = new Envoy.Config.Core.V3.Metadata();
        m.FilterMetadata.Add("istio", Struct.Parser.ParseJson(json));
        // A typed entry of a type csenvoy has never heard of: data, not config.
        m.TypedFilterMetadata.Add("com.example.tags", new Any { TypeUrl = "type.googleapis.com/com.example.Tags", Value = ByteString.CopyFromUtf8("\n\u0003abc") });
        return m;
    }

    [Theory]
    [InlineData("GRPC")]
    [InlineData("DELTA_GRPC")]
    public async Task MetadataOnEveryResource_IsAccepted_TrafficFlows_AndConfigDumpShowsIt(string apiType)
    {
        await using var a = await TestBackend.StartEchoAsync("a");
        await using var cp = await TestControlPlane.StartAsync();
        var cluster = EdsCluster("backend");
        cluster.Metadata = IstioMetadata("""{ "services": [{ "host": "reviews.default.svc.cluster.local", "name": "reviews" }] }""");
        var cla = Cla("backend", a.Port);
        cla.Endpoints[0].Metadata = IstioMetadata("""{ "zone": "a" }""");
        cla.Endpoints[0].LbEndpoints[0].Metadata = IstioMetadata("""{ "workload": "reviews-v1;default;reviews;v1;Kubernetes" }""");
        cla.Endpoints[0].LbEndpoints[0].Metadata.FilterMetadata.Add("envoy.transport_socket_match", Struct.Parser.ParseJson("""{ "tlsMode": "istio" }"""));
        var listener = RdsListener("ingress", "routes");
        listener.Metadata = IstioMetadata("""{ "kind": "listener" }""");
        listener.FilterChains[0].Metadata = IstioMetadata("""{ "kind": "chain" }""");
        var routes = Routes("routes", "backend");
        routes.Metadata = IstioMetadata("""{ "kind": "route_configuration" }""");
        routes.VirtualHosts[0].Metadata = IstioMetadata("""{ "kind": "virtual_host" }""");
        routes.VirtualHosts[0].Routes[0].Metadata = IstioMetadata("""{ "kind": "route" }""");
        cp.SetSnapshot("v1", cluster, cla, listener, routes);

        await using var proxy = await ProxyHarness.StartAsync(Bootstrap(cp.Port, apiType));
        using var client = await ListenerClientAsync(proxy, "ingress");
        await EventuallyAsync(client, "a");
        Assert.DoesNotContain(cp.Received.OfType<Envoy.Service.Discovery.V3.DiscoveryRequest>(), r => r.ErrorDetail is not null);
        Assert.DoesNotContain(cp.Received.OfType<Envoy.Service.Discovery.V3.DeltaDiscoveryRequest>(), r => r.ErrorDetail is not null);

        using var admin = proxy.AdminClient();
        using var dump = await admin.GetAsync("/config_dump");
        var body = await dump.Content.ReadAsStringAsync();
        Assert.True(dump.StatusCode == HttpStatusCode.OK, $"{(int)dump.StatusCode}: {body}");
        var clusters = JsonDocument.Parse(body).RootElement.GetProperty("configs").EnumerateArray()
            .Single(c => c.GetProperty("@type").GetString()!.EndsWith("ClustersConfigDump", StringComparison.Ordinal));
        var dumped = clusters.GetProperty("dynamic_active_clusters")[0].GetProperty("cluster");
        Assert.Equal("reviews", dumped.GetProperty("metadata").GetProperty("filter_metadata").GetProperty("istio")
            .GetProperty("services")[0].GetProperty("name").GetString());
        // The typed entry of an unknown type is shown by its type URL and bytes (the JSON formatter cannot open it).
        var tags = dumped.GetProperty("metadata").GetProperty("typed_filter_metadata").GetProperty("com.example.tags");
        Assert.Equal("type.googleapis.com/google.protobuf.Struct", tags.GetProperty("@type").GetString());
        Assert.Equal("type.googleapis.com/com.example.Tags", tags.GetProperty("value").GetProperty("unknown_type").GetString());
        Assert.Contains("route_configuration", body);
    }

    [Fact]
    public void Bootstrap_AcceptsMetadataWhereEnvoyHasIt()
    {
        var errors = ProxyHarness.Validate("""
            static_resources:
              listeners:
              - name: l
                metadata: { filter_metadata: { team: { owner: payments } } }
                address: { socket_address: { address: 127.0.0.1, port_value: 0 } }
                filter_chains:
                - metadata: { filter_metadata: { team: { chain: main } } }
                  filters:
                  - name: envoy.filters.network.http_connection_manager
                    typed_config:
                      "@type": type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager
                      stat_prefix: x
                      route_config:
                        metadata: { filter_metadata: { team: { rc: main } } }
                        virtual_hosts:
                        - name: v
                          domains: ["*"]
                          metadata: { filter_metadata: { team: { vh: v } } }
                          routes:
                          - match: { prefix: "/" }
                            metadata: { filter_metadata: { team: { route: all } } }
                            route: { cluster: c }
                      http_filters:
                      - name: envoy.filters.http.router
                        typed_config: { "@type": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router }
              clusters:
              - name: c
                metadata: { filter_metadata: { team: { cluster: c } } }
                load_assignment:
                  cluster_name: c
                  endpoints:
                  - metadata: { filter_metadata: { team: { locality: l } } }
                    lb_endpoints:
                    - metadata: { filter_metadata: { team: { endpoint: e } } }
                      endpoint: { address: { socket_address: { address: 127.0.0.1, port_value: 8080 } } }
            """);
        Assert.False(errors.HasErrors, errors.ToString());
        Assert.Empty(errors.Warnings);
    }
}
