using CSharpEnvoy.Config.Loading;
using CSharpEnvoy.Config.Model.Bootstrap;
using CSharpEnvoy.Config.Model.Cluster;
using CSharpEnvoy.Config.Model.Listener;
using CSharpEnvoy.Config.Translation;

namespace CSharpEnvoy.Config.Tests.Loading;

public sealed class BootstrapLoadingTests
{
    private const string Hcm = "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager";

    internal static (BootstrapModel? Model, ConfigErrors Errors) Load(string yaml, string? overlay = null)
    {
        var errors = new ConfigErrors();
        var b = BootstrapTranslator.Parse(yaml, overlay, errors);
        if (b is null || errors.HasErrors) return (null, errors);
        return (BootstrapTranslator.Translate(b, new NodeOverrides(), errors), errors);
    }

    private static string Listener(string hcmBody, string clusters = "") => $$"""
        static_resources:
          listeners:
          - name: l0
            address: { socket_address: { address: 127.0.0.1, port_value: 10000 } }
            filter_chains:
            - filters:
              - name: envoy.filters.network.http_connection_manager
                typed_config:
                  "@type": {{Hcm}}
        {{Indent(hcmBody, 10)}}
          clusters:
        {{Indent(clusters, 2)}}
        """;

    private static string Indent(string s, int n) => string.Join("\n", s.Split('\n').Select(l => l.Length == 0 ? l : new string(' ', n) + l));

    private const string SimpleRoutes = """
        stat_prefix: ingress
        route_config:
          virtual_hosts:
          - name: vh
            domains: ["*"]
            routes:
            - match: { prefix: "/" }
              route: { cluster: backend }
        """;

    private const string Backend = """
        - name: backend
          connect_timeout: 0.25s
          load_assignment:
            cluster_name: backend
            endpoints:
            - lb_endpoints:
              - endpoint: { address: { socket_address: { address: 127.0.0.1, port_value: 8080 } } }
        """;

    private static void AssertError(ConfigErrors errors, string path, string messagePart)
    {
        Assert.True(errors.Errors.Any(e => e.Path == path && e.Message.Contains(messagePart, StringComparison.Ordinal)),
            $"expected an error at '{path}' containing '{messagePart}'; got:\n{errors}");
    }

    [Fact]
    public void Load_SimpleConfig_UsesEnvoyDefaults()
    {
        var (model, errors) = Load(Listener(SimpleRoutes, Backend));

        Assert.False(errors.HasErrors, errors.ToString());
        var cluster = Assert.Single(model!.Clusters);
        Assert.Equal(DiscoveryType.Static, cluster.Type);
        Assert.Equal(LbPolicy.RoundRobin, cluster.LbPolicy);
        Assert.Equal(TimeSpan.FromMilliseconds(250), cluster.ConnectTimeout);
        var hcm = model.Listeners[0].FilterChains[0].HttpConnectionManager!;
        Assert.Equal(CodecType.Auto, hcm.CodecType);
        Assert.Equal("envoy.filters.http.router", Assert.Single(hcm.HttpFilters).Name); // no http_filters → router
        Assert.Equal(TimeSpan.FromSeconds(15), hcm.RouteConfig!.VirtualHostList[0].Routes.GetRoute(0).Route!.Timeout);
    }

    [Fact]
    public void Load_Leniency_CamelCaseEnumCaseSingleObjectListAndLegacyNames()
    {
        var yaml = """
            staticResources:
              listeners:
                name: l0
                address: { socketAddress: { address: 127.0.0.1, portValue: 10000 } }
                filterChains:
                  filters:
                    name: envoy.http_connection_manager
                    typedConfig:
                      "@type": type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager
                      statPrefix: ingress
                      codecType: http1
                      httpFilters: [{ name: envoy.router }]
                      routeConfig:
                        virtualHosts:
                        - name: vh
                          domains: "*"
                          routes:
                          - match:
                              prefix: "/"
                              headers: [{ name: x-env, exact_match: canary }]
                            route: { cluster: backend }
              clusters:
              - name: backend
                type: strict_dns
                lbPolicy: round_robin
                connectTimeout: 1s
                loadAssignment:
                  clusterName: backend
                  endpoints:
                    lbEndpoints:
                      endpoint: { address: { socketAddress: { address: localhost, portValue: 8080 } } }
            """;

        var (model, errors) = Load(yaml);

        Assert.False(errors.HasErrors, errors.ToString());
        Assert.Equal(DiscoveryType.StrictDns, model!.Clusters[0].Type);
        Assert.Equal(CodecType.Http1, model.Listeners[0].FilterChains[0].HttpConnectionManager!.CodecType);
        Assert.Equal(["*"], model.Listeners[0].FilterChains[0].HttpConnectionManager!.RouteConfig!.VirtualHostList[0].Domains);
    }

    [Fact]
    public void Load_TenThousandClusters_IsNotCutShortByTheYamlParser()
    {
        // ~40 parsing events per cluster: far beyond the YAML library's default bound of 100,000 events.
        var clusters = string.Join("\n", Enumerable.Range(0, 10_000).Select(i => Backend.Replace("backend", i == 0 ? "backend" : $"c{i}")));
        var (model, errors) = Load(Listener(SimpleRoutes, clusters));
        Assert.False(errors.HasErrors, errors.ToString());
        Assert.Equal(10_000, model!.Clusters.Count);
    }

    [Fact]
    public void Load_YamlMergeKeys_Expand()
    {
        var (model, errors) = Load(Listener(SimpleRoutes, """
            - name: backend
              load_assignment: &assignment
                cluster_name: backend
                endpoints:
                - lb_endpoints:
                  - endpoint: { address: { socket_address: { address: 127.0.0.1, port_value: 8080 } } }
            - name: other
              connect_timeout: 3s
              load_assignment:
                <<: *assignment
            """));
        Assert.False(errors.HasErrors, errors.ToString());
        Assert.Equal(8080, model!.Clusters.Single(c => c.Name == "other").Endpoints.Single().Address.Port);
    }

    [Fact]
    public void Load_MalformedYaml_ReportsLineAndColumn()
    {
        var (_, errors) = Load("static_resources:\n  listeners: [ { name: a\n");
        var e = Assert.Single(errors.Errors);
        Assert.Contains("malformed YAML", e.Message);
        Assert.Contains("line", e.Message);
    }

    [Fact]
    public void Load_WrongTypes_NameTheField()
    {
        var yaml = Listener(SimpleRoutes, """
            - name: backend
              connect_timeout: soon
              per_connection_buffer_limit_bytes: lots
              type: NOT_A_TYPE
              load_assignment: { cluster_name: backend }
            """);

        var (_, errors) = Load(yaml);

        AssertError(errors, "static_resources.clusters[0].connect_timeout", "invalid duration 'soon'");
        AssertError(errors, "static_resources.clusters[0].per_connection_buffer_limit_bytes", "expected a non-negative integer");
        AssertError(errors, "static_resources.clusters[0].type", "invalid value 'NOT_A_TYPE' for enum envoy.config.cluster.v3.Cluster.DiscoveryType");
        Assert.Equal(3, errors.Errors.Count); // all of them, not just the first
    }

    [Fact]
    public void Load_UnknownField_NamesItsPath()
    {
        var (_, errors) = Load(Listener(SimpleRoutes + "\nbogus_option: true", Backend));
        AssertError(errors, "static_resources.listeners[0].filter_chains[0].filters[0].typed_config.bogus_option",
            "unknown field 'bogus_option' in envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager");
    }

    [Fact]
    public void Load_UnsupportedHttpFilter_NamesTheFilter()
    {
        var body = SimpleRoutes + """

            http_filters:
            - name: envoy.filters.http.router
            - name: envoy.filters.http.foo
            """;
        var (_, errors) = Load(Listener(body, Backend));
        AssertError(errors, "static_resources.listeners[0].filter_chains[0].filters[0].typed_config.http_filters[1]", "unsupported HTTP filter 'envoy.filters.http.foo'");
        AssertError(errors, "static_resources.listeners[0].filter_chains[0].filters[0].typed_config.http_filters[0]", "the router filter must be the last HTTP filter");
    }

    [Fact]
    public void Load_UnknownTypeUrl_IsReported()
    {
        var body = SimpleRoutes + """

            http_filters:
            - name: my.filter
              typed_config: { "@type": type.googleapis.com/acme.filters.v1.Magic, level: 3 }
            - name: envoy.filters.http.router
            """;
        var (_, errors) = Load(Listener(body, Backend));
        AssertError(errors, "static_resources.listeners[0].filter_chains[0].filters[0].typed_config.http_filters[0]",
            "unsupported HTTP filter 'my.filter' (type 'type.googleapis.com/acme.filters.v1.Magic')");
    }

    [Fact]
    public void Load_UnsupportedKnownField_IsRejectedNotIgnored()
    {
        var yaml = Listener(SimpleRoutes, Backend + "\n  close_connections_on_host_health_failure: true");
        var (_, errors) = Load(yaml);
        AssertError(errors, "static_resources.clusters[0].close_connections_on_host_health_failure", "field 'close_connections_on_host_health_failure' of envoy.config.cluster.v3.Cluster is not supported");
    }

    [Fact]
    public void Load_RouteToMissingCluster_FailsValidateClusters()
    {
        var (_, errors) = Load(Listener(SimpleRoutes));
        AssertError(errors, "static_resources.listeners[0].filter_chains[0].filters[0].typed_config.route_config.virtual_hosts[0].routes[0].route.cluster",
            "unknown cluster 'backend'");
    }

    [Fact]
    public void Load_ValidateClustersFalse_AllowsMissingCluster()
    {
        var body = SimpleRoutes.Replace("route_config:\n", "route_config:\n  validate_clusters: false\n");
        var (model, errors) = Load(Listener(body));
        Assert.False(errors.HasErrors, errors.ToString());
        Assert.NotNull(model);
    }

    [Fact]
    public void Load_InvalidRegex_NamesPatternAndPath()
    {
        var body = SimpleRoutes.Replace("- match: { prefix: \"/\" }", "- match: { safe_regex: { regex: \"/api/([a-z\" } }");
        var (_, errors) = Load(Listener(body, Backend));
        AssertError(errors, "static_resources.listeners[0].filter_chains[0].filters[0].typed_config.route_config.virtual_hosts[0].routes[0].match.safe_regex.regex",
            "/api/([a-z");
    }

    [Fact]
    public void Load_DuplicateListenerNamesAndAddresses_AreErrors()
    {
        var yaml = $$"""
            static_resources:
              listeners:
              - name: same
                address: { socket_address: { address: 127.0.0.1, port_value: 10000 } }
                filter_chains: [{ filters: [{ name: envoy.filters.network.http_connection_manager, typed_config: { "@type": "{{Hcm}}", stat_prefix: a, route_config: {} } }] }]
              - name: same
                address: { socket_address: { address: 127.0.0.1, port_value: 10001 } }
                filter_chains: [{ filters: [{ name: envoy.filters.network.http_connection_manager, typed_config: { "@type": "{{Hcm}}", stat_prefix: a, route_config: {} } }] }]
              - name: other
                address: { socket_address: { address: 127.0.0.1, port_value: 10000 } }
                filter_chains: [{ filters: [{ name: envoy.filters.network.http_connection_manager, typed_config: { "@type": "{{Hcm}}", stat_prefix: a, route_config: {} } }] }]
            """;
        var (_, errors) = Load(yaml);
        AssertError(errors, "static_resources.listeners[1].name", "duplicate listener name");
        AssertError(errors, "static_resources.listeners[2].address", "duplicate listener address 127.0.0.1:10000");
    }

    [Fact]
    public void Load_OneofConflict_IsAnError()
    {
        var body = SimpleRoutes.Replace("- match: { prefix: \"/\" }", "- match: { prefix: \"/\", path: \"/x\" }");
        var (_, errors) = Load(Listener(body, Backend));
        Assert.Contains(errors.Errors, e => e.Message.Contains("same oneof 'path_specifier'"));
    }

    [Fact]
    public void Load_ConfigYamlOverlay_MergesLikeEnvoy()
    {
        // Envoy merges --config-yaml with proto MergeFrom: scalars replaced, lists appended.
        var overlay = """
            static_resources:
              clusters:
              - name: extra
                load_assignment: { cluster_name: extra }
            node: { id: from-overlay }
            """;
        var (model, errors) = Load(Listener(SimpleRoutes, Backend), overlay);
        Assert.False(errors.HasErrors, errors.ToString());
        Assert.Equal(["backend", "extra"], model!.Clusters.Select(c => c.Name));
        Assert.Equal("from-overlay", model.Node.Id);
    }

    [Fact]
    public void Load_JsonBootstrap_Works()
    {
        var json = """
            {"static_resources": {"clusters": [{"name": "c", "connect_timeout": "2s", "type": "LOGICAL_DNS",
              "load_assignment": {"cluster_name": "c", "endpoints": [{"lb_endpoints": [{"endpoint": {"address": {"socket_address": {"address": "example.com", "port_value": 443}}}}]}]}}]}}
            """;
        var (model, errors) = Load(json);
        Assert.False(errors.HasErrors, errors.ToString());
        Assert.Equal(DiscoveryType.LogicalDns, model!.Clusters[0].Type);
        Assert.Equal(TimeSpan.FromSeconds(2), model.Clusters[0].ConnectTimeout);
    }

    [Fact]
    public void Load_StaticClusterWithHostName_IsAnError()
    {
        var (_, errors) = Load(Listener(SimpleRoutes, Backend.Replace("127.0.0.1", "backend.local")));
        AssertError(errors, "static_resources.clusters[0].load_assignment.endpoints[0].lb_endpoints[0].endpoint.address.socket_address.address",
            "a STATIC cluster needs IP addresses");
    }

    [Fact]
    public void Load_AcceptedButInertField_IsWarnedNotSilent()
    {
        var yaml = Listener(SimpleRoutes, Backend) + "\nlayered_runtime: { layers: [{ name: static, static_layer: {} }] }";
        var (model, errors) = Load(yaml);
        Assert.NotNull(model);
        Assert.Contains(errors.Warnings, w => w.Path == "layered_runtime");
    }

    [Fact]
    public void Load_SafeRegexRouteAndBareQueryMatcher_Translate()
    {
        var body = SimpleRoutes.Replace("- match: { prefix: \"/\" }", "- match: { safe_regex: { regex: \"/api/v[0-9]+/.*\" }, query_parameters: [{ name: debug }] }");
        var (model, errors) = Load(Listener(body, Backend));
        Assert.False(errors.HasErrors, errors.ToString());
        var match = model!.Listeners[0].FilterChains[0].HttpConnectionManager!.RouteConfig!.VirtualHostList[0].Routes.GetMatch(0);
        Assert.NotNull(match.PathRegex);
        Assert.True(match.MatchesPath("/api/v2/users"));
        Assert.False(match.MatchesPath("/api/vX/users"));
        Assert.Single(match.QueryParameters);
    }

    [Theory]
    [InlineData("0.25s", 0, 250_000_000)]
    [InlineData("15s", 15, 0)]
    [InlineData("1.000000001s", 1, 1)]
    [InlineData("-2.5s", -2, -500_000_000)]
    public void TryParseDuration_Proto3JsonForms(string text, long seconds, int nanos)
    {
        Assert.True(ProtoYamlLoader.TryParseDuration(text, out var d));
        Assert.Equal(seconds, d.Seconds);
        Assert.Equal(nanos, d.Nanos);
    }

    [Theory]
    [InlineData("1")]
    [InlineData("1m")]
    [InlineData("s")]
    [InlineData("1.0000000001s")]
    public void TryParseDuration_RejectsNonProtoForms(string text) => Assert.False(ProtoYamlLoader.TryParseDuration(text, out _));
}
