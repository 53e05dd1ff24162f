namespace CSharpEnvoy.Config.Validation;

internal enum ExtensionCategory { AccessLogger, NetworkFilter, HttpFilter, UpstreamProtocolOptions, TransportSocket, LoadBalancingPolicy, StatsSink, HttpFilterPerRoute, Tracer, ListenerFilter, CompressorLibrary, DecompressorLibrary, RequestId }

/// <summary>An extension csenvoy implements: its canonical name, the names Envoy still accepts for it, and its config type.</summary>
internal sealed record ExtensionInfo(ExtensionCategory Category, string Name, string TypeName, string[] Aliases, string Description);

/// <summary>
/// Every extension csenvoy implements. As in Envoy, an extension given with a <c>typed_config</c> is found by the
/// config's type URL; one given by <c>name</c> alone is found by its name (including legacy names such as
/// <c>envoy.router</c>).
/// </summary>
internal static class ExtensionRegistry
{
    public const string HttpConnectionManager = "envoy.filters.network.http_connection_manager";
    public const string Router = "envoy.filters.http.router";
    public const string FaultFilter = "envoy.filters.http.fault";
    public const string LocalRateLimitFilter = "envoy.filters.http.local_ratelimit";
    public const string RateLimitFilter = "envoy.filters.http.ratelimit";
    public const string UpstreamHttpProtocolOptions = "envoy.extensions.upstreams.http.v3.HttpProtocolOptions";
    public const string FileAccessLogger = "envoy.access_loggers.file";
    public const string StatsdSink = "envoy.stat_sinks.statsd";
    public const string DogStatsdSink = "envoy.stat_sinks.dog_statsd";
    public const string StdoutAccessLogger = "envoy.access_loggers.stdout";
    public const string StderrAccessLogger = "envoy.access_loggers.stderr";
    public const string RoundRobinPolicy = "envoy.load_balancing_policies.round_robin";
    public const string LeastRequestPolicy = "envoy.load_balancing_policies.least_request";
    public const string RandomPolicy = "envoy.load_balancing_policies.random";
    public const string RingHashPolicy = "envoy.load_balancing_policies.ring_hash";
    public const string MaglevPolicy = "envoy.load_balancing_policies.maglev";
    public const string WrrLocalityPolicy = "envoy.load_balancing_policies.wrr_locality";
    public const string TlsTransportSocket = "envoy.transport_sockets.tls";
    public const string ZipkinTracer = "envoy.tracers.zipkin";
    public const string HealthCheckFilter = "envoy.filters.http.health_check";
    public const string OpenTelemetryTracer = "envoy.tracers.opentelemetry";
    public const string TlsInspector = "envoy.filters.listener.tls_inspector";
    public const string RbacFilter = "envoy.filters.http.rbac";
    public const string CorsFilter = "envoy.filters.http.cors";
    public const string CsrfFilter = "envoy.filters.http.csrf";
    public const string CompressorFilter = "envoy.filters.http.compressor";
    public const string DecompressorFilter = "envoy.filters.http.decompressor";
    public const string GrpcHttp1BridgeFilter = "envoy.filters.http.grpc_http1_bridge";
    public const string ExtAuthzFilter = "envoy.filters.http.ext_authz";
    public const string GrpcWebFilter = "envoy.filters.http.grpc_web";
    public const string TcpProxy = "envoy.filters.network.tcp_proxy";
    public const string NetworkRbac = "envoy.filters.network.rbac";

    public static readonly IReadOnlyList<ExtensionInfo> All = new[]
    {
        new ExtensionInfo(ExtensionCategory.StatsSink, StatsdSink, "envoy.config.metrics.v3.StatsdSink",
            new[] { "envoy.statsd" }, "StatsD over UDP: counters as deltas, gauges, histogram values as timers"),
        new ExtensionInfo(ExtensionCategory.StatsSink, DogStatsdSink, "envoy.config.metrics.v3.DogStatsdSink",
            new[] { "envoy.dog_statsd" }, "DogStatsD over UDP: tag-extracted names with |#tags"),
        new ExtensionInfo(ExtensionCategory.NetworkFilter, HttpConnectionManager,
            "envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager",
            new[] { "envoy.http_connection_manager" }, "HTTP/1.1, HTTP/2 and gRPC proxying"),
        new ExtensionInfo(ExtensionCategory.HttpFilter, Router, "envoy.extensions.filters.http.router.v3.Router",
            new[] { "envoy.router" }, "forwards to the routed cluster; always last"),
        new ExtensionInfo(ExtensionCategory.HttpFilter, FaultFilter, "envoy.extensions.filters.http.fault.v3.HTTPFault",
            new[] { "envoy.fault" }, "fault injection: fixed or header-controlled delays and aborts, max_active_faults"),
        new ExtensionInfo(ExtensionCategory.HttpFilter, LocalRateLimitFilter, "envoy.extensions.filters.http.local_ratelimit.v3.LocalRateLimit",
            Array.Empty<string>(), "token buckets per filter, per route (typed_per_filter_config) and per descriptor; 429 local_rate_limited"),
        new ExtensionInfo(ExtensionCategory.HttpFilter, RateLimitFilter, "envoy.extensions.filters.http.ratelimit.v3.RateLimit",
            new[] { "envoy.rate_limit" }, "global rate limiting: asks envoy.service.ratelimit.v3.RateLimitService over gRPC with descriptors from rate_limits actions"),
        // typed_per_filter_config types that are not also a filter's own config type (PerFilterConfigTranslator).
        new ExtensionInfo(ExtensionCategory.HttpFilterPerRoute, "envoy.config.route.v3.FilterConfig", "envoy.config.route.v3.FilterConfig",
            Array.Empty<string>(), "typed_per_filter_config wrapper: the filter's per-route config, is_optional, disabled"),
        new ExtensionInfo(ExtensionCategory.HttpFilterPerRoute, RateLimitFilter, "envoy.extensions.filters.http.ratelimit.v3.RateLimitPerRoute",
            Array.Empty<string>(), "per-route domain and virtual host rate limit option of the global rate limit filter"),
        new ExtensionInfo(ExtensionCategory.HttpFilterPerRoute, RbacFilter, "envoy.extensions.filters.http.rbac.v3.RBACPerRoute",
            Array.Empty<string>(), "per-route RBAC: its rbac replaces the filter's policies on the route; without one the filter is off there"),
        new ExtensionInfo(ExtensionCategory.UpstreamProtocolOptions, UpstreamHttpProtocolOptions,
            "envoy.extensions.upstreams.http.v3.HttpProtocolOptions", Array.Empty<string>(), "upstream HTTP/1.1 or HTTP/2 selection"),
        new ExtensionInfo(ExtensionCategory.AccessLogger, FileAccessLogger, "envoy.extensions.access_loggers.file.v3.FileAccessLog",
            new[] { "envoy.file_access_log" }, "access log lines appended to a file (or /dev/stdout), buffered and flushed in the background"),
        new ExtensionInfo(ExtensionCategory.AccessLogger, StdoutAccessLogger, "envoy.extensions.access_loggers.stream.v3.StdoutAccessLog",
            Array.Empty<string>(), "access log lines to standard output"),
        new ExtensionInfo(ExtensionCategory.AccessLogger, StderrAccessLogger, "envoy.extensions.access_loggers.stream.v3.StderrAccessLog",
            Array.Empty<string>(), "access log lines to standard error"),
        new ExtensionInfo(ExtensionCategory.LoadBalancingPolicy, RoundRobinPolicy,
            "envoy.extensions.load_balancing_policies.round_robin.v3.RoundRobin", Array.Empty<string>(), "round robin; EDF-smoothed when host weights differ"),
        new ExtensionInfo(ExtensionCategory.LoadBalancingPolicy, LeastRequestPolicy,
            "envoy.extensions.load_balancing_policies.least_request.v3.LeastRequest", Array.Empty<string>(), "power of N choices on active requests; weighted EDF when weights differ"),
        new ExtensionInfo(ExtensionCategory.LoadBalancingPolicy, RandomPolicy,
            "envoy.extensions.load_balancing_policies.random.v3.Random", Array.Empty<string>(), "uniform random host"),
        new ExtensionInfo(ExtensionCategory.LoadBalancingPolicy, RingHashPolicy,
            "envoy.extensions.load_balancing_policies.ring_hash.v3.RingHash", Array.Empty<string>(), "consistent hashing on a ketama ring (xxHash64)"),
        new ExtensionInfo(ExtensionCategory.LoadBalancingPolicy, MaglevPolicy,
            "envoy.extensions.load_balancing_policies.maglev.v3.Maglev", Array.Empty<string>(), "consistent hashing with a Maglev table"),
        new ExtensionInfo(ExtensionCategory.LoadBalancingPolicy, WrrLocalityPolicy,
            "envoy.extensions.load_balancing_policies.wrr_locality.v3.WrrLocality", Array.Empty<string>(),
            "locality-weighted balancing (LocalityLbEndpoints.load_balancing_weight); its endpoint_picking_policy (round_robin, least_request, random) picks within the locality"),
        new ExtensionInfo(ExtensionCategory.TransportSocket, TlsTransportSocket,
            "envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext", Array.Empty<string>(), "TLS termination on a listener's filter chain"),
        new ExtensionInfo(ExtensionCategory.TransportSocket, TlsTransportSocket,
            "envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext", Array.Empty<string>(), "TLS origination to a cluster's hosts"),
        new ExtensionInfo(ExtensionCategory.HttpFilter, HealthCheckFilter, "envoy.extensions.filters.http.health_check.v3.HealthCheck",
            new[] { "envoy.health_check" }, "answers health check requests: 200, or 503 once /healthcheck/fail was called"),
        new ExtensionInfo(ExtensionCategory.Tracer, ZipkinTracer, "envoy.config.trace.v3.ZipkinConfig",
            new[] { "envoy.zipkin" }, "B3 propagation; Zipkin v2 JSON spans POSTed to a collector cluster in batches"),
        new ExtensionInfo(ExtensionCategory.Tracer, OpenTelemetryTracer, "envoy.config.trace.v3.OpenTelemetryConfig",
            Array.Empty<string>(), "W3C traceparent/tracestate propagation; spans exported over OTLP/gRPC to a cluster in batches"),
        // Filter chains and TLS (issue 6)
        new ExtensionInfo(ExtensionCategory.ListenerFilter, TlsInspector, "envoy.extensions.filters.listener.tls_inspector.v3.TlsInspector",
            new[] { "envoy.listener.tls_inspector" }, "peeks the ClientHello: transport protocol tls/raw_buffer, SNI and ALPN for filter_chain_match"),
        new ExtensionInfo(ExtensionCategory.NetworkFilter, TcpProxy, "envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy",
            new[] { "envoy.tcp_proxy" }, "TCP proxying to a cluster's hosts (its load balancer and health), TLS passthrough by SNI"),
        new ExtensionInfo(ExtensionCategory.NetworkFilter, NetworkRbac, "envoy.extensions.filters.network.rbac.v3.RBAC",
            Array.Empty<string>(), "connection-level RBAC before the terminal filter; a denied connection is closed"),
        new ExtensionInfo(ExtensionCategory.HttpFilter, RbacFilter, "envoy.extensions.filters.http.rbac.v3.RBAC",
            Array.Empty<string>(), "role based access control: ALLOW/DENY/LOG policies, shadow rules; 403 RBAC: access denied"),
        new ExtensionInfo(ExtensionCategory.HttpFilter, CorsFilter, "envoy.extensions.filters.http.cors.v3.Cors",
            new[] { "envoy.cors" }, "CORS: answers preflights and adds access-control-* headers to responses by the routes' CorsPolicy"),
        new ExtensionInfo(ExtensionCategory.HttpFilterPerRoute, CorsFilter, "envoy.extensions.filters.http.cors.v3.CorsPolicy",
            Array.Empty<string>(), "the CORS policy of a route, virtual host or route configuration; each setting from the most specific level that has it"),
        new ExtensionInfo(ExtensionCategory.HttpFilter, CsrfFilter, "envoy.extensions.filters.http.csrf.v3.CsrfPolicy",
            new[] { "envoy.csrf" }, "CSRF: POST, PUT, DELETE and PATCH requests whose source origin (Origin, else Referer) is not the request's host or an additional origin get 403 Invalid origin"),
        new ExtensionInfo(ExtensionCategory.HttpFilter, CompressorFilter, "envoy.extensions.filters.http.compressor.v3.Compressor",
            Array.Empty<string>(), "compresses response bodies (and request bodies with request_direction_config) by accept-encoding, content type and length"),
        new ExtensionInfo(ExtensionCategory.HttpFilterPerRoute, CompressorFilter, "envoy.extensions.filters.http.compressor.v3.CompressorPerRoute",
            Array.Empty<string>(), "per-route compressor: disabled, or response compression forced on with its own accept-encoding removal and library"),
        new ExtensionInfo(ExtensionCategory.HttpFilter, DecompressorFilter, "envoy.extensions.filters.http.decompressor.v3.Decompressor",
            Array.Empty<string>(), "decompresses request and response bodies whose first content-encoding is the library's; advertises it in accept-encoding"),
        new ExtensionInfo(ExtensionCategory.HttpFilter, GrpcHttp1BridgeFilter, "envoy.extensions.filters.http.grpc_http1_bridge.v3.Config",
            new[] { "envoy.grpc_http1_bridge" }, "HTTP/1.1 callers of unary gRPC: the response is buffered and its grpc-status/grpc-message trailers become headers (non-zero status: 503)"),
        new ExtensionInfo(ExtensionCategory.HttpFilter, ExtAuthzFilter, "envoy.extensions.filters.http.ext_authz.v3.ExtAuthz",
            new[] { "envoy.ext_authz" }, "external authorization: each request is checked by a gRPC (envoy.service.auth.v3.Authorization) or HTTP service; denied requests get its reply"),
        new ExtensionInfo(ExtensionCategory.HttpFilterPerRoute, ExtAuthzFilter, "envoy.extensions.filters.http.ext_authz.v3.ExtAuthzPerRoute",
            Array.Empty<string>(), "per-route external authorization: disabled, or context extensions and body buffering"),
        new ExtensionInfo(ExtensionCategory.HttpFilter, GrpcWebFilter, "envoy.extensions.filters.http.grpc_web.v3.GrpcWeb",
            new[] { "envoy.grpc_web" }, "gRPC-Web (binary and text) to gRPC: trailers as the body's last frame; non-gRPC replies as grpc-status/grpc-message"),
        new ExtensionInfo(ExtensionCategory.RequestId, "envoy.request_id.uuid", "envoy.extensions.request_id.uuid.v3.UuidRequestIdConfig",
            Array.Empty<string>(), "UUID x-request-id (the default): trace reason packed into the id, sampling by its hash"),
        new ExtensionInfo(ExtensionCategory.CompressorLibrary, "envoy.compression.gzip.compressor", "envoy.extensions.compression.gzip.compressor.v3.Gzip",
            Array.Empty<string>(), "gzip (content-encoding gzip): compression level and strategy"),
        new ExtensionInfo(ExtensionCategory.CompressorLibrary, "envoy.compression.brotli.compressor", "envoy.extensions.compression.brotli.compressor.v3.Brotli",
            Array.Empty<string>(), "brotli (content-encoding br): quality and window"),
        new ExtensionInfo(ExtensionCategory.CompressorLibrary, "envoy.compression.zstd.compressor", "envoy.extensions.compression.zstd.compressor.v3.Zstd",
            Array.Empty<string>(), "zstd (content-encoding zstd): level, strategy, checksum, dictionary"),
        new ExtensionInfo(ExtensionCategory.DecompressorLibrary, "envoy.compression.zstd.decompressor", "envoy.extensions.compression.zstd.decompressor.v3.Zstd",
            Array.Empty<string>(), "zstd: one dictionary; output at most 100 times the input"),
        new ExtensionInfo(ExtensionCategory.DecompressorLibrary, "envoy.compression.gzip.decompressor", "envoy.extensions.compression.gzip.decompressor.v3.Gzip",
            Array.Empty<string>(), "gzip: max_inflate_ratio guards against compression bombs"),
        new ExtensionInfo(ExtensionCategory.DecompressorLibrary, "envoy.compression.brotli.decompressor", "envoy.extensions.compression.brotli.decompressor.v3.Brotli",
            Array.Empty<string>(), "brotli: output at most 100 times the input"),
    };

    public static ExtensionInfo? FindByName(ExtensionCategory category, string name)
    {
        foreach (var e in All)
        {
            if (e.Category != category) continue;
            if (e.Name == name) return e;
            foreach (var a in e.Aliases) if (a == name) return e;
        }
        return null;
    }

    public static ExtensionInfo? FindByType(ExtensionCategory category, string typeUrlOrName)
    {
        var slash = typeUrlOrName.LastIndexOf('/');
        var type = slash >= 0 ? typeUrlOrName[(slash + 1)..] : typeUrlOrName;
        foreach (var e in All)
            if (e.Category == category && e.TypeName == type) return e;
        return null;
    }

    public static bool IsSupportedType(string typeUrl)
    {
        var slash = typeUrl.LastIndexOf('/');
        var type = slash >= 0 ? typeUrl[(slash + 1)..] : typeUrl;
        foreach (var e in All) if (e.TypeName == type) return true;
        return Array.IndexOf(s_xdsResourceTypes, type) >= 0;
    }

    /// <summary>The resources a filesystem xDS file (a DiscoveryResponse) carries in its <c>Any</c>s.</summary>
    private static readonly string[] s_xdsResourceTypes =
    [
        "envoy.config.cluster.v3.Cluster", "envoy.config.endpoint.v3.ClusterLoadAssignment",
        "envoy.config.listener.v3.Listener", "envoy.config.route.v3.RouteConfiguration",
        "envoy.extensions.transport_sockets.tls.v3.Secret",
    ];
}
