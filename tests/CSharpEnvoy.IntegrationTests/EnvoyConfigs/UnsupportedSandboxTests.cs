using CSharpEnvoy.IntegrationTests.Infrastructure;

namespace CSharpEnvoy.IntegrationTests.EnvoyConfigs;

/// <summary>
/// Sandbox configs that use features csenvoy does not have yet. Each file is validated exactly as it is, and the
/// test pins every error: its path and its message. When a feature lands, the matching test fails and the config
/// moves to <see cref="RunnableSandboxTests"/>.
/// </summary>
public sealed class UnsupportedSandboxTests
{
    private const string HcmType = "envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager";
    private const string ClusterType = "envoy.config.cluster.v3.Cluster";
    private const string RouteType = "envoy.config.route.v3.Route";
    private const string LayeredRuntimeWarning = "layered_runtime: runtime layers are accepted, but no runtime key changes behaviour yet";

    // ----- hallmark configs, spelled out in full -----

    [Theory]
    [InlineData("cors/frontend/envoy.yaml")]
    [InlineData("cors/backend/envoy.yaml")]
    [InlineData("csrf/samesite/envoy.yaml")]
    public void CorsAndCsrfSandboxes_Load(string file)
    {
        // The CORS and CSRF filters and their per-route policies are implemented; the runtime keys of
        // filter_enabled and shadow_enabled are warned about (their default values apply).
        AssertErrors(file);
    }

    [Fact]
    public void CompressionSandboxes_Load_WithTheZlibAndRuntimeSettingsWarnedAbout()
    {
        // The compressor and decompressor filters with their gzip, brotli and zstd libraries are implemented.
        AssertErrors("gzip/envoy.yaml");
        AssertErrors("brotli/envoy.yaml");
        AssertErrors("zstd/envoy.yaml");
        // So are the gRPC HTTP/1.1 bridge and add_user_agent.
        AssertErrors("grpc-bridge/client/envoy-proxy.yaml");
        // And external authorization, over gRPC and HTTP.
        AssertErrors("ext_authz/config/grpc-service/v3.yaml");
        AssertErrors("ext_authz/config/http-service.yaml");
        AssertErrors("ext_authz/config/opa-service/v3.yaml");
        var gzip = (string listener) => $"static_resources.listeners[{listener}].filter_chains[0].filters[0].typed_config.http_filters[0].typed_config.compressor_library.typed_config.";
        Assert.Contains(ProxyHarness.Validate(EnvoyConfigCorpus.Read("gzip/envoy.yaml")).Warnings.Select(w => w.ToString()),
            w => w.StartsWith(gzip("0") + "memory_level: accepted and range-checked", StringComparison.Ordinal));
        Assert.Contains(ProxyHarness.Validate(EnvoyConfigCorpus.Read("gzip/envoy.yaml")).Warnings.Select(w => w.ToString()),
            w => w == Hcm(0) + ".http_filters[1].typed_config.response_direction_config.common_config.enabled.runtime_key: runtime overrides are not applied; default_value is used");
    }

    [Theory]
    [InlineData("tls/envoy-https-passthrough.yaml")]
    [InlineData("tls-inspector/envoy.yaml")]
    [InlineData("websocket/envoy-wss-passthrough.yaml")]
    public void TcpProxyAndTlsInspectorSandboxes_Load(string file)
    {
        // tcp_proxy, tls_inspector and filter_chain_match are implemented: these sandboxes now load.
        AssertErrors(file);
    }

    [Fact]
    public void FaultInjection_FaultFilter_Loads_RuntimeWarns()
    {
        // The fault and local rate limit filters are implemented: these sandboxes now load.
        AssertErrors("fault-injection/envoy.yaml");
        AssertWarnings("fault-injection/envoy.yaml", LayeredRuntimeWarning);
        AssertErrors("local_ratelimit/envoy.yaml");
    }

    [Fact]
    public void LoadReportingService_LoadStatsConfigIsRefused()
    {
        AssertErrors("load-reporting-service/envoy.yaml",
            "cluster_manager.load_stats_config: field 'load_stats_config' of envoy.config.bootstrap.v3.ClusterManager is not supported by csenvoy (see docs/compatibility.md)");
    }

    // ----- the rest of the corpus, built from the same message shapes -----

    public static TheoryData<string, string[]> MoreConfigs() => new()
    {
        { "cache/envoy.yaml", new[] { HttpFilter(Hcm(0), 0, "envoy.filters.http.cache", "envoy.extensions.filters.http.cache.v3.CacheConfig") } },
        { "datadog-tracing/envoy.yaml", Tracer(listeners: 1, "datadog", "DatadogConfig") },
        // The double-proxy and tls-sni sandboxes generate their certificates at run time; the corpus has none.
        { "double-proxy/envoy-backend.yaml", new[]
            {
                Unreadable(DownstreamTls(0) + ".common_tls_context.tls_certificates[0].certificate_chain", "certs/servercert.pem"),
                Unreadable(DownstreamTls(0) + ".common_tls_context.tls_certificates[0].private_key", "certs/serverkey.pem"),
                Unreadable(DownstreamTls(0) + ".common_tls_context.validation_context.trusted_ca", "certs/cacert.pem"),
            } },
        { "double-proxy/envoy-frontend.yaml", new[]
            {
                Unreadable(UpstreamTls + ".common_tls_context.tls_certificates[0].certificate_chain", "certs/clientcert.pem"),
                Unreadable(UpstreamTls + ".common_tls_context.tls_certificates[0].private_key", "certs/clientkey.pem"),
                Unreadable(UpstreamTls + ".common_tls_context.validation_context.trusted_ca", "certs/cacert.pem"),
            } },
        { "golang-http/envoy.yaml", new[] { HttpFilter(Hcm(0), 0, "envoy.filters.http.golang", "envoy.extensions.filters.http.golang.v3alpha.Config") } },
        // The tracing sandboxes with tracers csenvoy does not have (the zipkin, jaeger and opentelemetry ones load:
        // RunnableSandboxTests): a front proxy and two service envoys (one with an egress listener too).
        { "skywalking/envoy-front-proxy.yaml", Tracer(listeners: 1, "skywalking", "SkyWalkingConfig") },
        { "skywalking/envoy-1.yaml", Tracer(listeners: 2, "skywalking", "SkyWalkingConfig") },
        { "skywalking/envoy-2.yaml", Tracer(listeners: 1, "skywalking", "SkyWalkingConfig") },
        { "kafka/envoy.yaml", new[]
            {
                NetworkFilter(0, 0, "envoy.filters.network.kafka_broker", "envoy.extensions.filters.network.kafka_broker.v3.KafkaBroker"),
            } },
        { "kafka-mesh/envoy.yaml", new[]
            {
                NetworkFilter(0, 0, "envoy.filters.network.kafka_broker", "envoy.extensions.filters.network.kafka_broker.v3.KafkaBroker"),
                NetworkFilter(0, 1, "envoy.filters.network.kafka_mesh", "envoy.extensions.filters.network.kafka_mesh.v3alpha.KafkaMesh"),
            } },
        { "lua/envoy.yaml", new[]
            {
                PerFilter(VirtualHost(0) + ".routes[0]", "lua_filter_with_custom_name_1", "envoy.extensions.filters.http.lua.v3.LuaPerRoute"),
                HttpFilter(Hcm(0), 0, "lua_filter_with_custom_name_0", "envoy.extensions.filters.http.lua.v3.Lua"),
                HttpFilter(Hcm(0), 1, "lua_filter_with_custom_name_1", "envoy.extensions.filters.http.lua.v3.Lua"),
            } },
        { "lua-cluster-specifier/envoy.yaml", new[]
            {
                Field(VirtualHost(0) + ".routes[0].route", "inline_cluster_specifier_plugin", "envoy.config.route.v3.RouteAction"),
            } },
        { "mysql/envoy.yaml", new[]
            {
                NetworkFilter(0, 0, "envoy.filters.network.mysql_proxy", "envoy.extensions.filters.network.mysql_proxy.v3.MySQLProxy"),
            } },
        { "postgres/envoy.yaml", new[]
            {
                NetworkFilter(0, 0, "envoy.filters.network.postgres_proxy", "envoy.extensions.filters.network.postgres_proxy.v3alpha.PostgresProxy"),
            } },
        { "single-page-app/envoy.yml", new[]
            {
                HttpFilter(Hcm(0), 0, "envoy.filters.http.oauth2", "envoy.extensions.filters.http.oauth2.v3.OAuth2"),
                HttpFilter(Hcm(1), 0, "envoy.filters.http.oauth2", "envoy.extensions.filters.http.oauth2.v3.OAuth2"),
            } },
        { "tls-sni/envoy.yaml", new[]
            {
                Unreadable(DownstreamTls(0) + ".common_tls_context.tls_certificates[0].certificate_chain", "certs/domain1.crt.pem"),
                Unreadable(DownstreamTls(0) + ".common_tls_context.tls_certificates[0].private_key", "certs/domain1.key.pem"),
                Unreadable(DownstreamTls(0, chain: 1) + ".common_tls_context.tls_certificates[0].certificate_chain", "certs/domain2.crt.pem"),
                Unreadable(DownstreamTls(0, chain: 1) + ".common_tls_context.tls_certificates[0].private_key", "certs/domain2.key.pem"),
            } },
        { "wasm-cc/envoy.yaml", new[]
            {
                Field("static_resources.clusters[1].typed_extension_protocol_options[\"envoy.extensions.upstreams.http.v3.HttpProtocolOptions\"]",
                    "http_filters", "envoy.extensions.upstreams.http.v3.HttpProtocolOptions"),
                HttpFilter(Hcm(0), 0, "envoy.filters.http.wasm", "envoy.extensions.filters.http.wasm.v3.Wasm"),
            } },
    };

    [Theory]
    [MemberData(nameof(MoreConfigs))]
    public void Config_IsRefused_WithExactlyTheseErrors(string file, string[] expected) => AssertErrors(file, expected);

    // ----- helpers -----

    /// <summary>Validates the corpus file as it is and compares all errors ("path: message"), order aside. A missing
    /// file's error is compared without the OS's reason, which names the working directory.</summary>
    internal static void AssertErrors(string file, params string[] expected)
    {
        var errors = ProxyHarness.Validate(EnvoyConfigCorpus.Read(file));
        var actual = errors.Errors.Select(e => s_unreadableReason.Replace(e.ToString(), "$1"));
        Assert.Equal(expected.Order(StringComparer.Ordinal), actual.Order(StringComparer.Ordinal));
    }

    private static readonly System.Text.RegularExpressions.Regex s_unreadableReason = new("^(.*: cannot read '[^']*'): .*$");

    /// <summary>The TLS context of listener <paramref name="listener"/>'s filter chain, and of the first cluster.</summary>
    private static string DownstreamTls(int listener, int chain = 0) => $"static_resources.listeners[{listener}].filter_chains[{chain}].transport_socket.typed_config";

    private const string UpstreamTls = "static_resources.clusters[0].transport_socket.typed_config";

    /// <summary>A data source file that does not exist (the error names the file field).</summary>
    private static string Unreadable(string dataSource, string file) => $"{dataSource}.filename: cannot read '{file}'";

    private static void AssertWarnings(string file, params string[] expected)
    {
        var errors = ProxyHarness.Validate(EnvoyConfigCorpus.Read(file));
        Assert.Equal(expected.Order(StringComparer.Ordinal), errors.Warnings.Select(e => e.ToString()).Order(StringComparer.Ordinal));
    }

    /// <summary>The HTTP connection manager's config of listener <paramref name="listener"/> (first chain, first filter).</summary>
    private static string Hcm(int listener) => $"static_resources.listeners[{listener}].filter_chains[0].filters[0].typed_config";

    private static string VirtualHost(int index, int listener = 0) => $"{Hcm(listener)}.route_config.virtual_hosts[{index}]";

    /// <summary>The support checker's message for a set field csenvoy does not implement.</summary>
    private static string Field(string owner, string field, string messageType) =>
        $"{(owner.Length == 0 ? field : owner + "." + field)}: field '{field}' of {messageType} is not supported by csenvoy (see docs/compatibility.md)";

    /// <summary>The error for a typed_per_filter_config entry of a type no csenvoy filter takes.</summary>
    private static string PerFilter(string owner, string name, string type) =>
        $"{owner}.typed_per_filter_config[\"{name}\"]: unsupported per-filter config type 'type.googleapis.com/{type}' (see docs/compatibility.md)";

    private static string HttpFilter(string hcm, int index, string name, string type) =>
        $"{hcm}.http_filters[{index}]: unsupported HTTP filter '{name}' (type 'type.googleapis.com/{type}')";

    private static string NetworkFilter(int listener, int index, string name, string type, int chain = 0) =>
        $"static_resources.listeners[{listener}].filter_chains[{chain}].filters[{index}]: unsupported network filter '{name}' (type 'type.googleapis.com/{type}')";

    /// <summary>Each listener's connection manager traces with a tracer csenvoy does not implement.</summary>
    private static string[] Tracer(int listeners, string name, string type)
    {
        var errors = new List<string>();
        for (var l = 0; l < listeners; l++)
            errors.Add($"{Hcm(l)}.tracing.provider: unsupported tracer 'envoy.tracers.{name}' (type 'type.googleapis.com/envoy.config.trace.v3.{type}')");
        return errors.ToArray();
    }
}
