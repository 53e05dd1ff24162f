using System.Text;

namespace CSharpEnvoy.Config.Validation;

/// <summary>A field csenvoy accepts. <see cref="Warning"/> is set for fields that are accepted but not acted on;
/// the warning is logged at load so nothing is ignored silently.</summary>
internal sealed record FieldSupport(string Message, string Field, string? Note, string? Warning);

/// <summary>
/// The single list of every v3 field csenvoy accepts. <see cref="SupportChecker"/> rejects any other set field,
/// and docs/compatibility.md is generated from this list (a test keeps the two equal).
/// </summary>
internal static class SupportedFields
{
    private static readonly Dictionary<string, FieldSupport> s_fields = new(StringComparer.Ordinal);
    private static readonly List<(string Area, string Message)> s_order = new();
    private static string s_area = "";

    static SupportedFields()
    {
        Area("Bootstrap");
        Msg("envoy.config.bootstrap.v3.Bootstrap", "node", "static_resources", "admin");
        Warn("envoy.config.bootstrap.v3.Bootstrap", "layered_runtime", "runtime layers are accepted, but no runtime key changes behaviour yet");
        Msg("envoy.config.bootstrap.v3.Bootstrap.StaticResources", "listeners", "clusters");
        Msg("envoy.config.bootstrap.v3.Admin", "address");
        Warn("envoy.config.bootstrap.v3.Admin", "access_log_path", "the admin access log is not written yet");
        Warn("envoy.config.bootstrap.v3.Admin", "profile_path", "profiling is not available; the path is not used");
        Msg("envoy.config.core.v3.Node", "id", "cluster", "locality", "metadata");
        Msg("envoy.config.core.v3.Locality", "region", "zone", "sub_zone");

        Area("Stats sinks");
        Msg("envoy.config.bootstrap.v3.Bootstrap", "stats_sinks", "stats_flush_interval");
        Msg("envoy.config.metrics.v3.StatsSink", "name", "typed_config");
        Msg("envoy.config.metrics.v3.StatsdSink", "address", "tcp_cluster_name", "prefix");
        Note("envoy.config.metrics.v3.StatsdSink", "tcp_cluster_name", "refused for now: UDP address only");
        Msg("envoy.config.metrics.v3.DogStatsdSink", "address", "prefix", "max_bytes_per_datagram");

        Area("Addresses");
        Msg("envoy.config.core.v3.Address", "socket_address", "pipe");
        Msg("envoy.config.core.v3.SocketAddress", "address", "port_value", "ipv4_compat");
        Note("envoy.config.core.v3.SocketAddress", "protocol", "TCP only; UDP is refused");
        Msg("envoy.config.core.v3.Pipe", "path", "mode");

        Area("Listeners");
        Msg("envoy.config.listener.v3.Listener", "name", "address", "filter_chains", "stat_prefix");
        Note("envoy.config.listener.v3.Listener", "traffic_direction", "OUTBOUND names trace spans \"egress <host>\" (CLIENT); INBOUND listeners are the ones /drain_listeners?inboundonly stops");
        Warn("envoy.config.listener.v3.Listener", "per_connection_buffer_limit_bytes", "Kestrel's own request buffer limits apply");
        Msg("envoy.config.listener.v3.FilterChain", "filters", "name");
        Msg("envoy.config.listener.v3.Filter", "name", "typed_config");

        Area("HTTP connection manager (envoy.filters.network.http_connection_manager)");
        const string hcm = "envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager";
        Msg(hcm, "codec_type", "stat_prefix", "route_config", "http_filters", "use_remote_address", "xff_num_trusted_hops",
            "skip_xff_append", "via", "generate_request_id", "preserve_external_request_id", "always_set_request_id_in_response",
            "server_name", "server_header_transformation", "upgrade_configs");
        Note(hcm, "http2_protocol_options", "see Http2ProtocolOptions below");
        Note(hcm, "http_protocol_options", "accept_http_10 and default_host_for_http_10 (Http1ProtocolOptions)");
        Note(hcm, "common_http_protocol_options", "idle_timeout, headers_with_underscores_action and max_headers_count");
        Note("envoy.config.core.v3.HttpProtocolOptions", "idle_timeout",
            "connection manager: a downstream connection with no request in flight closes after it (default 1h, 0 for none; per listener, from its first chain's connection manager, as the HTTP/2 limits); cluster HttpProtocolOptions: a pooled upstream connection idle that long closes (default 1h)");
        Note("envoy.config.core.v3.HttpProtocolOptions", "max_requests_per_connection",
            "clusters: a plain-text HTTP/1.1 upstream connection closes after this many requests (counted by csenvoy's HTTP/1.1 codec, so not with CSENVOY_UPSTREAM_HTTP1_CODEC=0; refused on TLS and HTTP/2 clusters, and on connection managers)");
        Note("envoy.config.cluster.v3.Cluster", "max_requests_per_connection", "deprecated: as common_http_protocol_options.max_requests_per_connection, which wins");
        Note("envoy.config.core.v3.HttpProtocolOptions", "max_headers_count",
            "connection manager: the most request headers (default 100, as Envoy); a request with more gets 431 (HTTP/1.1) or is refused (HTTP/2), per listener as the other limits; refused on clusters");
        Note("envoy.extensions.upstreams.http.v3.HttpProtocolOptions", "common_http_protocol_options",
            "idle_timeout; headers_with_underscores_action is accepted and, as in Envoy, has no effect upstream");
        Note(hcm, "normalize_path", "RFC 3986 before routing and filters (the upstream path too): percent-encoded unreserved characters decoded, other percent-encodings upper-cased, characters a path cannot carry percent-encoded, dot segments removed; backslashes are left as they are; default false, as Envoy without runtime overrides");
        Note(hcm, "merge_slashes", "adjacent slashes in the path merged, after normalize_path");
        Note(hcm, "path_with_escaped_slashes_action", "%2F and %5C in the path: KEEP_UNCHANGED (also the default), REJECT_REQUEST (400, downstream_rq_failed_path_normalization), UNESCAPE_AND_REDIRECT (307 to the unescaped path, downstream_rq_redirected_with_normalized_path), UNESCAPE_AND_FORWARD; gRPC requests are refused with INTERNAL instead of redirected");
        Note("envoy.config.core.v3.HttpProtocolOptions", "headers_with_underscores_action",
            "request headers only, as Envoy: REJECT_REQUEST answers HTTP/1.1 with 400 and closes the connection, resets an HTTP/2 stream (DPE); DROP_HEADER removes them; counted in http1./http2.requests_rejected_with_underscores_in_headers and dropped_headers_with_underscores");
        Msg(hcm + ".UpgradeConfig", "upgrade_type", "enabled");
        Msg("envoy.extensions.filters.network.http_connection_manager.v3.HttpFilter", "name", "typed_config", "is_optional");
        Msg("envoy.extensions.filters.http.router.v3.Router", "suppress_envoy_headers");
        Warn("envoy.extensions.filters.http.router.v3.Router", "dynamic_stats", "dynamic stats are always on");

        Area("HTTP filters: fault injection (envoy.filters.http.fault)");
        Msg("envoy.extensions.filters.http.fault.v3.HTTPFault", "delay", "abort", "max_active_faults");
        Msg("envoy.extensions.filters.common.fault.v3.FaultDelay", "fixed_delay", "header_delay", "percentage");
        Msg("envoy.extensions.filters.http.fault.v3.FaultAbort", "http_status", "grpc_status", "header_abort", "percentage");

        Area("HTTP filters: local rate limit (envoy.filters.http.local_ratelimit)");
        const string lrl = "envoy.extensions.filters.http.local_ratelimit.v3.LocalRateLimit";
        Msg(lrl, "stat_prefix", "status", "token_bucket", "filter_enabled", "filter_enforced", "response_headers_to_add");
        Msg("envoy.type.v3.HttpStatus", "code");
        Msg("envoy.type.v3.TokenBucket", "max_tokens", "tokens_per_fill", "fill_interval");
        Note("envoy.extensions.filters.http.router.v3.Router", "start_child_span", "as the connection manager's tracing.spawn_upstream_span");

        Area("Route configuration");
        const string rc = "envoy.config.route.v3.RouteConfiguration";
        Msg(rc, "name", "virtual_hosts", "request_headers_to_add", "request_headers_to_remove", "response_headers_to_add",
            "response_headers_to_remove", "validate_clusters", "ignore_port_in_host_matching", "most_specific_header_mutations_wins");
        const string vh = "envoy.config.route.v3.VirtualHost";
        Msg(vh, "name", "domains", "routes", "request_headers_to_add", "request_headers_to_remove", "response_headers_to_add",
            "response_headers_to_remove", "require_tls");
        const string route = "envoy.config.route.v3.Route";
        Msg(route, "name", "match", "route", "redirect", "direct_response", "request_headers_to_add", "request_headers_to_remove",
            "response_headers_to_add", "response_headers_to_remove");
        Msg("envoy.config.route.v3.RouteMatch", "prefix", "path", "safe_regex", "path_separated_prefix", "case_sensitive",
            "headers", "query_parameters", "grpc");
        const string ra = "envoy.config.route.v3.RouteAction";
        Msg(ra, "cluster", "weighted_clusters", "cluster_header", "cluster_not_found_response_code", "prefix_rewrite",
            "regex_rewrite", "host_rewrite_literal", "auto_host_rewrite", "host_rewrite_header", "timeout", "idle_timeout", "upgrade_configs");
        Msg(ra + ".UpgradeConfig", "upgrade_type", "enabled");
        Note(ra, "hash_policy", "used by RING_HASH and MAGLEV clusters");
        Msg(ra + ".HashPolicy", "header", "cookie", "connection_properties", "query_parameter", "terminal");
        Msg(ra + ".HashPolicy.Header", "header_name");
        Msg(ra + ".HashPolicy.Cookie", "name", "ttl", "path", "attributes");
        Msg(ra + ".HashPolicy.CookieAttribute", "name", "value");
        Msg(ra + ".HashPolicy.ConnectionProperties", "source_ip");
        Msg(ra + ".HashPolicy.QueryParameter", "name");
        Msg("envoy.config.route.v3.WeightedCluster", "clusters", "total_weight");
        Warn("envoy.config.route.v3.WeightedCluster", "runtime_key_prefix", "runtime overrides of weights are not applied; the configured weights are used");
        Msg("envoy.config.route.v3.WeightedCluster.ClusterWeight", "name", "weight", "request_headers_to_add",
            "request_headers_to_remove", "response_headers_to_add", "response_headers_to_remove");
        Msg("envoy.config.route.v3.RedirectAction", "https_redirect", "scheme_redirect", "host_redirect", "port_redirect",
            "path_redirect", "prefix_rewrite", "regex_rewrite", "response_code", "strip_query");
        Msg("envoy.config.route.v3.DirectResponseAction", "status", "body");
        Msg("envoy.config.core.v3.DataSource", "filename", "inline_string", "inline_bytes", "environment_variable");
        Msg("envoy.config.core.v3.HeaderValueOption", "header", "append", "append_action", "keep_empty_value");
        Msg("envoy.config.core.v3.HeaderValue", "key", "value", "raw_value");
        Msg("envoy.config.route.v3.HeaderMatcher", "name", "exact_match", "safe_regex_match", "range_match", "present_match",
            "prefix_match", "suffix_match", "contains_match", "string_match", "invert_match", "treat_missing_header_as_empty");
        Msg("envoy.config.route.v3.QueryParameterMatcher", "name", "string_match", "present_match");
        Msg("envoy.type.matcher.v3.StringMatcher", "exact", "prefix", "suffix", "safe_regex", "contains", "ignore_case");
        Msg("envoy.type.matcher.v3.RegexMatcher", "regex", "google_re2");
        Warn("envoy.type.matcher.v3.RegexMatcher.GoogleRE2", "max_program_size", "program size limits do not apply to the linear-time .NET engine");
        Msg("envoy.type.matcher.v3.RegexMatchAndSubstitute", "pattern", "substitution");
        Msg("envoy.type.v3.Int64Range", "start", "end");

        Area("HTTP filters: per-route configs and rate limit descriptors");
        Msg("envoy.extensions.filters.network.http_connection_manager.v3.HttpFilter", "disabled");
        Note("envoy.config.route.v3.Route", "typed_per_filter_config", "keyed by the HTTP filter's name (then its extension name); the most specific of route, virtual host and route configuration wins");
        Note("envoy.config.route.v3.VirtualHost", "typed_per_filter_config", "as the route's");
        Note("envoy.config.route.v3.RouteConfiguration", "typed_per_filter_config", "as the route's");
        Msg("envoy.config.route.v3.FilterConfig", "config", "is_optional", "disabled");
        Msg("envoy.config.route.v3.VirtualHost", "rate_limits");
        Msg("envoy.config.route.v3.RouteAction", "rate_limits", "include_vh_rate_limits");
        const string rl = "envoy.config.route.v3.RateLimit";
        Msg(rl, "stage", "actions");
        Msg(rl + ".Action", "destination_cluster", "request_headers", "remote_address", "generic_key", "header_value_match");
        Msg(rl + ".Action.DestinationCluster");
        Msg(rl + ".Action.RemoteAddress");
        Msg(rl + ".Action.RequestHeaders", "header_name", "descriptor_key", "skip_if_absent");
        Msg(rl + ".Action.GenericKey", "descriptor_value", "descriptor_key");
        Msg(rl + ".Action.HeaderValueMatch", "descriptor_value", "default_value", "descriptor_key", "expect_match", "headers");
        Msg("envoy.extensions.filters.http.local_ratelimit.v3.LocalRateLimit", "descriptors", "stage", "vh_rate_limits",
            "always_consume_default_token_bucket", "rate_limited_as_resource_exhausted");
        Msg("envoy.extensions.common.ratelimit.v3.LocalRateLimitDescriptor", "entries", "token_bucket");
        Msg("envoy.extensions.common.ratelimit.v3.RateLimitDescriptor.Entry", "key", "value");

        Area("HTTP filters: global rate limit (envoy.filters.http.ratelimit)");
        const string grl = "envoy.extensions.filters.http.ratelimit.v3.RateLimit";
        Msg(grl, "domain", "stage", "request_type", "timeout", "failure_mode_deny", "rate_limited_as_resource_exhausted",
            "rate_limit_service", "enable_x_ratelimit_headers", "disable_x_envoy_ratelimited_header", "rate_limited_status",
            "status_on_error", "response_headers_to_add", "stat_prefix");
        Note("envoy.config.ratelimit.v3.RateLimitServiceConfig", "grpc_service", "envoy_grpc only: the service is called over the named cluster");
        Note("envoy.config.ratelimit.v3.RateLimitServiceConfig", "transport_api_version", "V3 only (as Envoy)");
        Msg("envoy.extensions.filters.http.ratelimit.v3.RateLimitPerRoute", "vh_rate_limits", "domain");

        Area("Timeouts: stream idle, request, max stream duration");
        Msg("envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager", "stream_idle_timeout", "request_timeout");
        Note("envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager", "request_headers_timeout",
            "enforced by Kestrel per listener (the first chain's value): the reply is Kestrel's 408 without a body, the connection is closed and downstream_rq_header_timeout is not counted");
        Note("envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager", "max_request_headers_kb",
            "per listener (the first chain's value): a request whose headers are larger gets 431, over HTTP/1.1 and HTTP/2");
        Msg("envoy.config.route.v3.RouteAction", "max_stream_duration");
        Msg("envoy.config.route.v3.RouteAction.MaxStreamDuration", "max_stream_duration", "grpc_timeout_header_max", "grpc_timeout_header_offset");

        Area("Clusters");
        const string cl = "envoy.config.cluster.v3.Cluster";
        Msg(cl, "name", "type", "connect_timeout", "lb_policy", "load_assignment", "dns_refresh_rate", "dns_lookup_family",
            "http2_protocol_options", "typed_extension_protocol_options");
        Warn(cl, "per_connection_buffer_limit_bytes", "the upstream codecs' own buffering applies (4 KB per HTTP/1.1 connection, growing for larger heads)");
        Note(cl, "lb_policy", "ROUND_ROBIN, LEAST_REQUEST, RANDOM, RING_HASH, MAGLEV; CLUSTER_PROVIDED is refused");
        Msg(cl, "ring_hash_lb_config", "maglev_lb_config", "least_request_lb_config", "round_robin_lb_config", "load_balancing_policy");
        Msg(cl + ".RingHashLbConfig", "minimum_ring_size", "maximum_ring_size");
        Note(cl + ".RingHashLbConfig", "hash_function", "XX_HASH only; MURMUR_HASH_2 is refused");
        Note(cl + ".MaglevLbConfig", "table_size", "a prime up to 5000011");
        Msg(cl + ".LeastRequestLbConfig", "choice_count", "active_request_bias");
        Msg(cl + ".RoundRobinLbConfig");
        Note("envoy.config.core.v3.RuntimeDouble", "default_value", "the value used");
        Warn("envoy.config.core.v3.RuntimeDouble", "runtime_key", "runtime overrides are not applied; default_value is used");
        Note("envoy.config.cluster.v3.LoadBalancingPolicy", "policies", "the first policy csenvoy implements is used; skipped ones are logged");
        Msg("envoy.config.cluster.v3.LoadBalancingPolicy.Policy", "typed_extension_config");
        Msg("envoy.config.core.v3.TypedExtensionConfig", "name", "typed_config");
        const string lbp = "envoy.extensions.load_balancing_policies.";
        Msg(lbp + "round_robin.v3.RoundRobin");
        Msg(lbp + "random.v3.Random");
        Msg(lbp + "least_request.v3.LeastRequest", "choice_count", "active_request_bias", "selection_method");
        Msg(lbp + "ring_hash.v3.RingHash", "minimum_ring_size", "maximum_ring_size", "use_hostname_for_hashing", "consistent_hashing_lb_config");
        Note(lbp + "ring_hash.v3.RingHash", "hash_function", "XX_HASH (and DEFAULT_HASH) only; MURMUR_HASH_2 is refused");
        Msg(lbp + "maglev.v3.Maglev", "consistent_hashing_lb_config");
        Note(lbp + "maglev.v3.Maglev", "table_size", "a prime up to 5000011");
        Msg(lbp + "common.v3.ConsistentHashingLbConfig", "use_hostname_for_hashing");
        Note(lbp + "wrr_locality.v3.WrrLocality", "endpoint_picking_policy",
            "round_robin, least_request or random; localities are balanced by their load_balancing_weight, the child picks within the locality");
        Msg(lbp + "round_robin.v3.RoundRobin", "locality_lb_config");
        Msg(lbp + "random.v3.Random", "locality_lb_config");
        Msg(lbp + "least_request.v3.LeastRequest", "locality_lb_config");
        Msg(lbp + "common.v3.LocalityLbConfig", "zone_aware_lb_config", "locality_weighted_lb_config");
        Msg(lbp + "common.v3.LocalityLbConfig.ZoneAwareLbConfig", "routing_enabled", "min_cluster_size", "fail_traffic_on_panic", "force_local_zone");
        Note(lbp + "common.v3.LocalityLbConfig.ZoneAwareLbConfig", "locality_basis", "HEALTHY_HOSTS_NUM (default) and HEALTHY_HOSTS_WEIGHT; ORCA_LOAD is refused");
        Msg(lbp + "common.v3.LocalityLbConfig.ZoneAwareLbConfig.ForceLocalZone", "min_size");
        Msg(lbp + "common.v3.LocalityLbConfig.LocalityWeightedLbConfig");

        Area("Priorities, localities and zone-aware routing");
        Msg("envoy.config.bootstrap.v3.Bootstrap", "cluster_manager");
        Note("envoy.config.bootstrap.v3.ClusterManager", "local_cluster_name", "a static cluster listing this proxy's fleet with localities; enables zone-aware routing");
        Msg(cl, "common_lb_config");
        Note(cl + ".CommonLbConfig", "healthy_panic_threshold", "rounded to an integer percentage as in Envoy (default 50; 0 disables panic mode)");
        Note(cl + ".CommonLbConfig", "zone_aware_lb_config", "used with lb_policy; typed policies take locality_lb_config instead");
        Note(cl + ".CommonLbConfig", "locality_weighted_lb_config", "round robin, least request and random (refused with ring hash and maglev)");
        Msg(cl + ".CommonLbConfig.ZoneAwareLbConfig", "routing_enabled", "min_cluster_size", "fail_traffic_on_panic");
        Msg(cl + ".CommonLbConfig.LocalityWeightedLbConfig");
        Msg("envoy.type.v3.Percent", "value");
        Msg("envoy.config.endpoint.v3.LocalityLbEndpoints", "priority", "load_balancing_weight");
        Msg("envoy.config.endpoint.v3.ClusterLoadAssignment", "policy");
        Msg("envoy.config.endpoint.v3.ClusterLoadAssignment.Policy", "overprovisioning_factor", "weighted_priority_health");
        Warn(cl, "respect_dns_ttl", "the refresh rate is always dns_refresh_rate");
        Msg("envoy.config.endpoint.v3.ClusterLoadAssignment", "cluster_name", "endpoints");
        Msg("envoy.config.endpoint.v3.LocalityLbEndpoints", "locality", "lb_endpoints");
        Msg("envoy.config.endpoint.v3.LbEndpoint", "endpoint");
        Note("envoy.config.endpoint.v3.LbEndpoint", "load_balancing_weight", "1 or more; used by round robin, least request, ring hash and maglev (random ignores weights, as in Envoy)");
        Msg("envoy.config.endpoint.v3.Endpoint", "address", "hostname");
        Msg("envoy.extensions.upstreams.http.v3.HttpProtocolOptions", "explicit_http_config", "use_downstream_protocol_config");
        Msg("envoy.extensions.upstreams.http.v3.HttpProtocolOptions.ExplicitHttpConfig", "http_protocol_options", "http2_protocol_options");
        Msg("envoy.extensions.upstreams.http.v3.HttpProtocolOptions.UseDownstreamHttpConfig", "http_protocol_options", "http2_protocol_options");
        Note("envoy.config.core.v3.Http1ProtocolOptions", "accept_http_10",
            "connection manager: HTTP/1.0 requests are served (without it they get 426 Upgrade Required, as in Envoy); no effect on clusters, as in Envoy");
        Note("envoy.config.core.v3.Http1ProtocolOptions", "default_host_for_http_10", "connection manager: the host of HTTP/1.0 requests that carry none");
        Msg("envoy.config.core.v3.Http2ProtocolOptions", "max_concurrent_streams", "initial_stream_window_size", "initial_connection_window_size");
        Warn("envoy.config.core.v3.Http2ProtocolOptions", "allow_connect", "extended CONNECT is not implemented");

        Area("Router resilience (retries, mirroring, circuit breakers)");
        Msg("envoy.config.route.v3.RouteAction", "retry_policy", "request_mirror_policies");
        Msg("envoy.config.route.v3.VirtualHost", "retry_policy", "include_request_attempt_count", "include_attempt_count_in_response");
        Note("envoy.config.route.v3.VirtualHost", "per_request_buffer_limit_bytes", "bounds the request body buffered for retries and mirrors (default 1 MiB); larger bodies are neither retried nor mirrored");
        Note("envoy.config.route.v3.Route", "per_request_buffer_limit_bytes", "as the virtual host's; the route's wins");
        const string rp = "envoy.config.route.v3.RetryPolicy";
        Msg(rp, "retry_on", "num_retries", "per_try_timeout", "retriable_status_codes", "retriable_headers", "retry_back_off",
            "host_selection_retry_max_attempts");
        Note(rp, "retry_host_predicate", "envoy.retry_host_predicates.previous_hosts only");
        Msg(rp + ".RetryBackOff", "base_interval", "max_interval");
        Msg("envoy.config.route.v3.RouteAction", "hedge_policy");
        Msg("envoy.config.route.v3.VirtualHost", "hedge_policy");
        const string hp = "envoy.config.route.v3.HedgePolicy";
        Note(hp, "hedge_on_per_try_timeout", "a per-try timeout leaves the try running and sends another (a retry, after the back-off, if one is left); the first response that is not retried wins and the others are reset");
        Note(hp, "initial_requests", "1 only (Envoy does not implement more)");
        Note(hp, "additional_request_chance", "0 only (Envoy does not implement it)");
        Msg(rp + ".RetryHostPredicate", "name", "typed_config");
        Msg("envoy.config.route.v3.RouteAction.RequestMirrorPolicy", "cluster", "cluster_header", "runtime_fraction");
        Warn("envoy.config.route.v3.RouteAction.RequestMirrorPolicy", "trace_sampled", "mirrored requests carry the original trace headers; their sampled flag is not changed");
        Msg("envoy.config.core.v3.RuntimeFractionalPercent", "default_value");
        Warn("envoy.config.core.v3.RuntimeFractionalPercent", "runtime_key", "runtime overrides are not applied; default_value is used");
        Msg("envoy.config.cluster.v3.Cluster", "circuit_breakers");
        Msg("envoy.config.cluster.v3.CircuitBreakers", "thresholds");
        const string th = "envoy.config.cluster.v3.CircuitBreakers.Thresholds";
        Note(th, "priority", "DEFAULT and HIGH (for routes with priority: HIGH); both share the cluster's connection pool, so max_connections counts all connections against each");
        Msg("envoy.config.route.v3.RouteAction", "priority");
        Note(th, "max_connections", "upstream connections of the cluster; also caps the connections per host, requests beyond them wait for one (pending)");
        Note(th, "max_pending_requests", "approximated: an HTTP/1.1 request that finds every allowed connection busy is counted as pending until its response headers arrive");
        Msg(th, "max_requests", "max_retries", "track_remaining");

        Area("TLS (envoy.transport_sockets.tls)");
        Msg("envoy.config.listener.v3.FilterChain", "transport_socket");
        Msg(cl, "transport_socket");
        Msg("envoy.config.core.v3.TransportSocket", "name", "typed_config");
        const string tls = "envoy.extensions.transport_sockets.tls.v3.";
        Msg(tls + "DownstreamTlsContext", "common_tls_context", "require_client_certificate");
        Note(tls + "DownstreamTlsContext", "ocsp_staple_policy", "LENIENT_STAPLING (the default) only; OCSP stapling is not implemented");
        Msg(tls + "UpstreamTlsContext", "common_tls_context", "sni", "auto_sni_san_validation");
        Note(tls + "UpstreamTlsContext", "auto_host_sni", "the endpoint's hostname (DNS clusters, or the endpoint's hostname field); IP literals send no SNI");
        Msg(tls + "CommonTlsContext", "tls_params", "tls_certificates", "validation_context");
        Note(tls + "CommonTlsContext", "alpn_protocols", "h2 and http/1.1; without it a listener negotiates no ALPN (HTTP/1.1, or h2 by preface); upstream ALPN follows the cluster's HTTP protocol");
        Note(tls + "TlsParameters", "tls_minimum_protocol_version", "TLSv1_2 or TLSv1_3 (TLSv1_0/1_1 are refused)");
        Note(tls + "TlsParameters", "tls_maximum_protocol_version", "TLSv1_2 or TLSv1_3");
        Note(tls + "TlsParameters", "cipher_suites", "TLS 1.2 suites by their OpenSSL names, on Linux and macOS; TLS 1.3 suites stay enabled, as in BoringSSL");
        Note(tls + "TlsParameters", "ecdh_curves", "Envoy's default (X25519, P-256) only; .NET cannot restrict curves");
        Msg(tls + "TlsCertificate", "certificate_chain", "private_key", "pkcs12", "password");
        Msg(tls + "CertificateValidationContext", "trusted_ca", "match_typed_subject_alt_names", "match_subject_alt_names",
            "allow_expired_certificate", "trust_chain_verification", "verify_certificate_hash", "verify_certificate_spki");
        Msg(tls + "SubjectAltNameMatcher", "san_type", "matcher");
        Note(tls + "CommonTlsContext", "tls_certificate_sds_secret_configs", "one secret (SDS from ADS, its own api_config_source stream or a watched file; or a static secret by name); new handshakes use a rotated certificate, open connections keep theirs");
        Note(tls + "CommonTlsContext", "validation_context_sds_secret_config", "the validation context from a secret; new handshakes verify with a rotated CA");
        Note(tls + "CommonTlsContext", "combined_validation_context", "the secret's context merged into default_validation_context, as Envoy's MergeFrom (the secret's singular fields win, lists add up)");
        Msg(tls + "CommonTlsContext.CombinedCertificateValidationContext", "default_validation_context", "validation_context_sds_secret_config");
        Note(tls + "SdsSecretConfig", "name", "the secret's name; may be empty with a file source, whose file then holds one unnamed secret");
        Note(tls + "SdsSecretConfig", "sds_config", "ads: {}, api_config_source (SecretDiscoveryService, GRPC or DELTA_GRPC) or path_config_source; without it the name refers to static_resources.secrets");
        Msg(tls + "Secret", "name", "tls_certificate", "validation_context");
        Msg("envoy.config.bootstrap.v3.Bootstrap.StaticResources", "secrets");
        Msg("envoy.extensions.upstreams.http.v3.HttpProtocolOptions", "upstream_http_protocol_options");
        Msg("envoy.config.core.v3.UpstreamHttpProtocolOptions", "auto_sni", "auto_san_validation");

        Area("Access logs");
        Msg(hcm, "access_log");
        const string al = "envoy.config.accesslog.v3.";
        Msg(al + "AccessLog", "name", "filter", "typed_config");
        Msg(al + "AccessLogFilter", "status_code_filter", "duration_filter", "not_health_check_filter", "runtime_filter",
            "and_filter", "or_filter", "header_filter", "response_flag_filter");
        Msg(al + "StatusCodeFilter", "comparison");
        Msg(al + "DurationFilter", "comparison");
        Msg(al + "ComparisonFilter", "op", "value");
        Msg("envoy.config.core.v3.RuntimeUInt32", "default_value");
        Warn("envoy.config.core.v3.RuntimeUInt32", "runtime_key", "runtime overrides are not applied; default_value is used");
        Msg(al + "NotHealthCheckFilter"); // always passes: csenvoy has no health check filter
        Msg(al + "RuntimeFilter", "percent_sampled", "use_independent_randomness");
        Warn(al + "RuntimeFilter", "runtime_key", "runtime overrides are not applied; percent_sampled is used");
        Msg("envoy.type.v3.FractionalPercent", "numerator", "denominator");
        Msg(al + "AndFilter", "filters");
        Msg(al + "OrFilter", "filters");
        Msg(al + "HeaderFilter", "header");
        Msg(al + "ResponseFlagFilter", "flags");
        const string fal = "envoy.extensions.access_loggers.file.v3.FileAccessLog";
        Msg(fal, "path", "log_format");
        Note(fal, "format", "deprecated; a text format");
        Note(fal, "json_format", "deprecated; every value is written as a string");
        Note(fal, "typed_json_format", "deprecated; as log_format.json_format");
        Msg("envoy.extensions.access_loggers.stream.v3.StdoutAccessLog", "log_format");
        Msg("envoy.extensions.access_loggers.stream.v3.StderrAccessLog", "log_format");
        const string sfs = "envoy.config.core.v3.SubstitutionFormatString";
        Msg(sfs, "text_format", "text_format_source", "json_format", "omit_empty_values");
        Note(sfs, "content_type", "local reply formats: the reply's content-type (default text/plain, application/json for json_format); no effect on access logs, as in Envoy");
        Note(hcm, "local_reply_config", "see LocalReplyConfig below");
        Note(hcm, "add_user_agent", "x-envoy-downstream-service-cluster and -node from the node's cluster and id (--service-cluster, --service-node), and that cluster as user-agent when the request has none");
        Note(hcm, "request_id_extension", "envoy.request_id.uuid only (the default)");
        Msg(hcm.Replace("HttpConnectionManager", "RequestIDExtension"), "typed_config");
        Msg("envoy.extensions.request_id.uuid.v3.UuidRequestIdConfig", "pack_trace_reason", "use_request_id_for_trace_sampling");
        Note(hcm, "scheme_header_transformation", "see SchemeHeaderTransformation");
        Note("envoy.config.core.v3.SchemeHeaderTransformation", "scheme_to_overwrite",
            "the scheme requests are taken to have: x-forwarded-proto, route matching on :scheme, redirects; the upstream :scheme stays that of the upstream connection (http, or https with TLS)");
        Note("envoy.config.core.v3.SchemeHeaderTransformation", "match_upstream", "always csenvoy's behaviour: an upstream request's :scheme is that of its connection");
        Note(hcm, "strip_trailing_host_dot", "a trailing dot of the host (before any port) goes before routing and port stripping, and upstream too");
        Note(hcm, "append_x_forwarded_port", "x-forwarded-port: the listener's port, unless a trusted hop (xff_num_trusted_hops) set one");
        Note(hcm, "internal_address_config", "which trusted client addresses make a request internal: cidr_ranges (else RFC 1918, loopback and fc00::/7) and Unix socket peers (unix_sockets)");
        Msg(hcm + ".InternalAddressConfig", "unix_sockets", "cidr_ranges");
        Note(hcm, "strip_any_host_port", "the Host header loses its port before routing (and goes upstream without it)");
        Note(hcm, "strip_matching_host_port", "as strip_any_host_port, only when the port is the listener's; the two exclude each other");
        const string lrc = "envoy.extensions.filters.network.http_connection_manager.v3.";
        Msg(lrc + "LocalReplyConfig", "mappers", "body_format");
        Note(lrc + "ResponseMapper", "filter", "required; any access log filter csenvoy has, evaluated on the reply (its original status)");
        Msg(lrc + "ResponseMapper", "status_code", "body", "body_format_override", "headers_to_add");
        Note(sfs, "json_format_options", "keys are always sorted, as in Envoy");
        Note("envoy.config.core.v3.JsonFormatOptions", "sort_properties", "keys are always sorted, as in Envoy");
        AddXds();
        AddHealthChecking();
        AddObservability();
        AddFilterChainMatching();
        AddClientCertDetails();
        AddRbac();
        AddTcpProxy();
        AddMetadata();
    }

    private static void AddMetadata()
    {
        Area("Metadata");
        // Opaque data for the filters and policies that read it (SupportChecker does not look inside): accepted so
        // that control planes which tag every resource (Istio's filter_metadata "istio", Envoy Gateway's resource
        // names) are not refused; what reads it in Envoy (subset load balancing, transport_socket_matches, metadata
        // matchers and access-log operators) is refused or absent on its own.
        const string unread = "nothing in csenvoy reads it yet: subset load balancing, transport_socket_matches, metadata_match and the %METADATA%/%UPSTREAM_METADATA% operators are not implemented";
        foreach (var owner in new[]
        {
            "envoy.config.cluster.v3.Cluster", "envoy.config.listener.v3.Listener", "envoy.config.listener.v3.FilterChain",
            "envoy.config.route.v3.RouteConfiguration", "envoy.config.route.v3.VirtualHost", "envoy.config.route.v3.Route",
        })
            Note(owner, "metadata", "accepted and kept (shown in /config_dump; typed entries of unknown types as their type URL and bytes); " + unread);
        foreach (var owner in new[] { "envoy.config.endpoint.v3.LocalityLbEndpoints", "envoy.config.endpoint.v3.LbEndpoint" })
            Note(owner, "metadata", "accepted, not kept (/config_dump?include_eds shows the hosts without it); " + unread);
        Msg("envoy.config.core.v3.Metadata", "filter_metadata", "typed_filter_metadata");
    }

    private static void AddTcpProxy()
    {
        Area("TCP proxy (envoy.filters.network.tcp_proxy)");
        const string t = "envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy";
        Msg(t, "stat_prefix", "cluster", "weighted_clusters", "idle_timeout", "max_connect_attempts");
        Note(t, "access_log", "one entry per connection when it closes: addresses, %CONNECTION_ID%, %START_TIME%, %DURATION%, %BYTES_RECEIVED%/%BYTES_SENT% (downstream), %UPSTREAM_HOST%, %UPSTREAM_CLUSTER%, %UPSTREAM_LOCAL_ADDRESS%, %RESPONSE_FLAGS% (UH, UF, UO, NC); access_log_options (periodic and on-connect flushes) is refused");
        Note(t, "hash_policy", "one entry, source_ip: ring hash and maglev clusters hash the downstream IP");
        Msg("envoy.type.v3.HashPolicy", "source_ip");
        Msg("envoy.type.v3.HashPolicy.SourceIp");
        Msg(t + ".WeightedCluster", "clusters");
        Msg(t + ".WeightedCluster.ClusterWeight", "name", "weight");
    }

    private static void AddRbac()
    {
        Area("RBAC (envoy.filters.http.rbac)");
        Msg("envoy.extensions.filters.http.rbac.v3.RBAC", "rules", "rules_stat_prefix", "shadow_rules", "shadow_rules_stat_prefix");
        Note("envoy.extensions.filters.http.rbac.v3.RBACPerRoute", "rbac", "in typed_per_filter_config: replaces the filter's policies on the route (most specific wins); absent, the filter is off there");
        const string r = "envoy.config.rbac.v3.";
        Note(r + "RBAC", "action", "ALLOW, DENY, and LOG (every request passes)");
        Msg(r + "RBAC", "policies");
        Msg(r + "Policy", "permissions", "principals");
        Msg(r + "Permission", "and_rules", "or_rules", "any", "header", "url_path", "destination_ip", "destination_port",
            "destination_port_range", "not_rule", "requested_server_name");
        Msg(r + "Permission.Set", "rules");
        Msg(r + "Principal", "and_ids", "or_ids", "any", "authenticated", "source_ip", "direct_remote_ip", "remote_ip", "header",
            "url_path", "not_id");
        Msg(r + "Principal.Set", "ids");
        Note(r + "Principal.Authenticated", "principal_name", "matched against the peer certificate's URI SANs, then DNS SANs, then its RFC 2253 subject (Envoy's order)");
        Msg("envoy.type.matcher.v3.PathMatcher", "path");
        Msg("envoy.extensions.filters.network.rbac.v3.RBAC", "rules", "shadow_rules", "shadow_rules_stat_prefix", "stat_prefix");
        Note("envoy.extensions.filters.network.rbac.v3.RBAC", "enforcement_type", "ONE_TIME_ON_FIRST_BYTE only, checked once the connection (and its TLS handshake) is established");
        Note("envoy.extensions.filters.network.rbac.v3.RBAC", "enforce_on_transport_ready", "always the behaviour: the check runs once the TLS handshake is done");
        Msg("envoy.type.v3.Int32Range", "start", "end");
    }

    private static void AddClientCertDetails()
    {
        Area("Client certificate details (x-forwarded-client-cert)");
        const string hcm = "envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager";
        Msg(hcm, "forward_client_cert_details", "set_current_client_cert_details");
        Msg(hcm + ".SetCurrentClientCertDetails", "subject", "cert", "chain", "dns", "uri");
    }

    private static void AddFilterChainMatching()
    {
        Area("Filter chain matching and listener filters");
        const string l = "envoy.config.listener.v3.Listener";
        Msg(l, "default_filter_chain", "listener_filters", "listener_filters_timeout", "continue_on_listener_filters_timeout");
        Msg("envoy.config.listener.v3.FilterChain", "filter_chain_match");
        Msg("envoy.config.listener.v3.FilterChainMatch", "destination_port", "prefix_ranges", "server_names", "transport_protocol",
            "application_protocols", "direct_source_prefix_ranges", "source_type", "source_prefix_ranges", "source_ports");
        Msg("envoy.config.core.v3.CidrRange", "address_prefix", "prefix_len");
        Msg("envoy.config.listener.v3.ListenerFilter", "name", "typed_config");
        const string ti = "envoy.extensions.filters.listener.tls_inspector.v3.TlsInspector";
        Msg(ti, "max_client_hello_size");
        Warn(ti, "initial_read_buffer_size", "the ClientHello is read in whatever chunks arrive; the size is not used");
    }

    private static void AddHealthChecking()
    {
        Area("Health checking and outlier detection");
        const string cl = "envoy.config.cluster.v3.Cluster";
        Note(cl, "health_checks", "one health checker per cluster (as Envoy): HTTP, TCP or gRPC");
        Note(cl, "ignore_health_on_host_removal", "EDS and STRICT_DNS clusters with health_checks: without it (the default) a host the update removed stays, flagged pending_dynamic_removal and taking traffic, until its health check fails; with it the host goes at once");
        Msg(cl, "outlier_detection");
        const string hc = "envoy.config.core.v3.HealthCheck";
        Msg(hc, "timeout", "interval", "initial_jitter", "interval_jitter", "interval_jitter_percent", "unhealthy_threshold",
            "healthy_threshold", "reuse_connection", "http_health_check", "tcp_health_check", "grpc_health_check",
            "no_traffic_interval", "no_traffic_healthy_interval", "unhealthy_interval", "unhealthy_edge_interval", "healthy_edge_interval");
        Warn(hc, "always_log_health_check_failures", "there is no health check event log yet");
        Warn(hc, "always_log_health_check_success", "there is no health check event log yet");
        Msg(hc + ".HttpHealthCheck", "host", "path", "request_headers_to_add", "request_headers_to_remove", "expected_statuses",
            "retriable_statuses", "method");
        Note(hc + ".HttpHealthCheck", "codec_client_type", "HTTP1 or HTTP2 (h2c prior knowledge); HTTP3 is refused");
        Msg(hc + ".TcpHealthCheck", "send", "receive");
        Msg(hc + ".Payload", "text", "binary");
        Msg(hc + ".GrpcHealthCheck", "service_name", "authority", "initial_metadata");
        Note("envoy.config.endpoint.v3.LbEndpoint", "health_status", "UNKNOWN and HEALTHY take traffic; UNHEALTHY, DRAINING and TIMEOUT are excluded (/failed_eds_health); DEGRADED hosts (/degraded_eds_health) take traffic only when too few hosts are healthy");
        Msg("envoy.config.endpoint.v3.Endpoint", "health_check_config");
        Msg("envoy.config.endpoint.v3.Endpoint.HealthCheckConfig", "disable_active_health_check");
        Note("envoy.config.endpoint.v3.Endpoint.HealthCheckConfig", "port_value", "active health checks of the endpoint connect to this port");
        Note("envoy.config.endpoint.v3.Endpoint.HealthCheckConfig", "hostname", "the Host of the endpoint's HTTP and gRPC health checks (overrides the checker's host/authority)");
        const string od = "envoy.config.cluster.v3.OutlierDetection";
        Msg(od, "consecutive_5xx", "interval", "base_ejection_time", "max_ejection_percent", "enforcing_consecutive_5xx",
            "enforcing_success_rate", "success_rate_minimum_hosts", "success_rate_request_volume", "success_rate_stdev_factor",
            "consecutive_gateway_failure", "enforcing_consecutive_gateway_failure", "split_external_local_origin_errors",
            "consecutive_local_origin_failure", "enforcing_consecutive_local_origin_failure", "enforcing_local_origin_success_rate",
            "failure_percentage_threshold", "enforcing_failure_percentage", "enforcing_failure_percentage_local_origin",
            "failure_percentage_minimum_hosts", "failure_percentage_request_volume", "max_ejection_time", "max_ejection_time_jitter",
            "successful_active_health_check_uneject_host", "always_eject_one_host");
    }

    private static void AddObservability()
    {
        Area("Stats configuration");
        Msg("envoy.config.bootstrap.v3.Bootstrap", "stats_config");
        Msg("envoy.config.metrics.v3.StatsConfig", "stats_tags", "use_all_default_tags", "stats_matcher");
        Msg("envoy.config.metrics.v3.TagSpecifier", "tag_name", "regex", "fixed_value");
        Msg("envoy.config.metrics.v3.StatsMatcher", "reject_all", "exclusion_list", "inclusion_list");
        Msg("envoy.type.matcher.v3.ListStringMatcher", "patterns");

        Area("Tracing (envoy.tracers.zipkin, envoy.tracers.opentelemetry)");
        const string hcm = "envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager";
        Msg(hcm, "tracing");
        Msg(hcm + ".Tracing", "provider", "client_sampling", "random_sampling", "overall_sampling", "custom_tags", "max_path_tag_length",
            "spawn_upstream_span");
        Warn(hcm + ".Tracing", "verbose", "spans carry no per-event annotations");
        Msg("envoy.config.trace.v3.Tracing.Http", "name", "typed_config");
        Msg("envoy.type.v3.Percent", "value");
        Msg("envoy.type.tracing.v3.CustomTag", "tag", "literal", "request_header", "environment");
        Msg("envoy.type.tracing.v3.CustomTag.Literal", "value");
        Msg("envoy.type.tracing.v3.CustomTag.Header", "name", "default_value");
        Msg("envoy.type.tracing.v3.CustomTag.Environment", "name", "default_value");
        Msg("envoy.config.trace.v3.ZipkinConfig", "collector_cluster", "collector_endpoint", "trace_id_128bit", "shared_span_context",
            "collector_hostname");
        Note("envoy.config.trace.v3.ZipkinConfig", "collector_endpoint_version", "HTTP_JSON (Zipkin v2 JSON) only");
        Msg("envoy.config.trace.v3.OpenTelemetryConfig", "grpc_service", "service_name");
        Msg("envoy.config.route.v3.Route", "decorator");
        Note("envoy.config.listener.v3.Listener", "access_log", "one line per downstream connection when it closes (no request operators)");
        Msg("envoy.config.route.v3.VirtualHost", "virtual_clusters");
        Msg("envoy.config.route.v3.VirtualCluster", "name", "headers");

        Area("HTTP filters: CORS (envoy.filters.http.cors)");
        Msg("envoy.extensions.filters.http.cors.v3.Cors");
        Msg("envoy.extensions.filters.http.cors.v3.CorsPolicy", "allow_origin_string_match", "allow_methods", "allow_headers",
            "expose_headers", "max_age", "allow_credentials", "filter_enabled", "shadow_enabled", "allow_private_network_access",
            "forward_not_matching_preflights");
        Note("envoy.config.route.v3.VirtualHost", "cors", "deprecated: the CORS filter's policy where no level has one in typed_per_filter_config");
        Note("envoy.config.route.v3.RouteAction", "cors", "deprecated: as the virtual host's, before it");
        Msg("envoy.config.route.v3.CorsPolicy", "allow_origin_string_match", "allow_methods", "allow_headers", "expose_headers",
            "max_age", "allow_credentials", "filter_enabled", "shadow_enabled", "allow_private_network_access",
            "forward_not_matching_preflights");

        Area("HTTP filters: CSRF (envoy.filters.http.csrf)");
        Msg("envoy.extensions.filters.http.csrf.v3.CsrfPolicy", "filter_enabled", "shadow_enabled", "additional_origins");

        Area("HTTP filters: compressor and decompressor (envoy.filters.http.compressor, envoy.filters.http.decompressor)");
        const string comp = "envoy.extensions.filters.http.compressor.v3.";
        Msg(comp + "Compressor", "compressor_library", "request_direction_config", "response_direction_config", "choose_first");
        Note(comp + "Compressor", "content_length", "deprecated: the response's min_content_length when response_direction_config is not set");
        Note(comp + "Compressor", "content_type", "deprecated: the response's content types when response_direction_config is not set");
        Note(comp + "Compressor", "disable_on_etag_header", "deprecated: as response_direction_config's");
        Note(comp + "Compressor", "remove_accept_encoding_header", "deprecated: as response_direction_config's");
        Note(comp + "Compressor", "runtime_enabled", "deprecated: whether responses are compressed, when response_direction_config is not set");
        Msg(comp + "Compressor.CommonDirectionConfig", "enabled", "min_content_length", "content_type");
        Msg(comp + "Compressor.RequestDirectionConfig", "common_config");
        Msg(comp + "Compressor.ResponseDirectionConfig", "common_config", "disable_on_etag_header", "remove_accept_encoding_header",
            "uncompressible_response_codes");
        Msg(comp + "CompressorPerRoute", "disabled", "overrides");
        Msg(comp + "CompressorOverrides", "response_direction_config", "compressor_library");
        Msg(comp + "ResponseDirectionOverrides", "remove_accept_encoding_header");
        Msg("envoy.config.core.v3.RuntimeFeatureFlag", "default_value");
        Warn("envoy.config.core.v3.RuntimeFeatureFlag", "runtime_key", "runtime overrides are not applied; default_value is used");
        const string decomp = "envoy.extensions.filters.http.decompressor.v3.";
        Msg(decomp + "Decompressor", "decompressor_library", "request_direction_config", "response_direction_config");
        Msg(decomp + "Decompressor.CommonDirectionConfig", "enabled", "ignore_no_transform_header");
        Msg(decomp + "Decompressor.RequestDirectionConfig", "common_config", "advertise_accept_encoding");
        Msg(decomp + "Decompressor.ResponseDirectionConfig", "common_config");
        const string gzipC = "envoy.extensions.compression.gzip.compressor.v3.Gzip";
        Msg(gzipC, "compression_level", "compression_strategy", "chunk_size");
        Warn(gzipC, "memory_level", "accepted and range-checked; .NET's zlib binding always uses memory level 8 (the output is valid gzip, its size may differ from Envoy's)");
        Warn(gzipC, "window_bits", "accepted and range-checked; .NET's zlib binding always uses a 32 KiB window (the output is valid gzip, its size may differ from Envoy's)");
        const string brotliC = "envoy.extensions.compression.brotli.compressor.v3.Brotli";
        Msg(brotliC, "quality", "window_bits", "chunk_size");
        Warn(brotliC, "encoder_mode", "accepted; .NET's brotli encoder has no mode setting (generic is used)");
        Warn(brotliC, "input_block_bits", "accepted and range-checked; .NET's brotli encoder chooses its own input block size");
        Warn(brotliC, "disable_literal_context_modeling", "accepted; .NET's brotli encoder has no such setting");
        Msg("envoy.extensions.compression.zstd.compressor.v3.Zstd", "compression_level", "enable_checksum", "strategy", "dictionary", "chunk_size");
        Note("envoy.extensions.compression.zstd.decompressor.v3.Zstd", "dictionaries", "one dictionary (more are refused)");
        Msg("envoy.extensions.compression.zstd.decompressor.v3.Zstd", "chunk_size");
        Msg("envoy.extensions.compression.gzip.decompressor.v3.Gzip", "window_bits", "chunk_size", "max_inflate_ratio");
        Msg("envoy.extensions.compression.brotli.decompressor.v3.Brotli", "chunk_size");
        Warn("envoy.extensions.compression.brotli.decompressor.v3.Brotli", "disable_ring_buffer_reallocation", "accepted; .NET's brotli decoder has no such setting");

        Area("HTTP filters: gRPC HTTP/1.1 bridge (envoy.filters.http.grpc_http1_bridge)");
        Msg("envoy.extensions.filters.http.grpc_http1_bridge.v3.Config", "upgrade_protobuf_to_grpc", "ignore_query_parameters");

        Area("HTTP filters: external authorization (envoy.filters.http.ext_authz)");
        const string ea = "envoy.extensions.filters.http.ext_authz.v3.";
        Msg(ea + "ExtAuthz", "grpc_service", "http_service", "failure_mode_allow", "failure_mode_allow_header_add", "with_request_body",
            "status_on_error", "filter_enabled", "deny_at_disable", "include_peer_certificate", "stat_prefix", "allowed_headers", "disallowed_headers");
        Note(ea + "ExtAuthz", "transport_api_version", "AUTO or V3 (V2 is refused)");
        Note(ea + "ExtAuthz", "charge_cluster_response_stats", "a denial's status is counted on the route's cluster (upstream_rq_<code>, <N>xx, completed); default true");
        Note(ea + "ExtAuthz", "clear_route_cache", "the route is matched again after the check changed request headers");
        Msg(ea + "BufferSettings", "max_request_bytes", "allow_partial_message", "pack_as_bytes");
        Msg(ea + "HttpService", "server_uri", "path_prefix", "authorization_request", "authorization_response");
        Note(ea + "AuthorizationRequest", "allowed_headers", "deprecated: as ExtAuthz.allowed_headers");
        Msg(ea + "AuthorizationRequest", "headers_to_add");
        Msg(ea + "AuthorizationResponse", "allowed_upstream_headers", "allowed_upstream_headers_to_append", "allowed_client_headers",
            "allowed_client_headers_on_success");
        Msg(ea + "ExtAuthzPerRoute", "disabled", "check_settings");
        Msg(ea + "CheckSettings", "context_extensions", "disable_request_body_buffering", "with_request_body");
        Msg("envoy.config.core.v3.HttpUri", "uri", "cluster", "timeout");

        Area("HTTP filters: gRPC-Web (envoy.filters.http.grpc_web)");
        Msg("envoy.extensions.filters.http.grpc_web.v3.GrpcWeb");

        Area("HTTP filters: health check (envoy.filters.http.health_check)");
        Msg("envoy.extensions.filters.http.health_check.v3.HealthCheck", "pass_through_mode", "headers");
        Msg("envoy.config.route.v3.Decorator", "operation", "propagate");
    }

    private static void AddXds()
    {
        Area("xDS (dynamic resources: ADS, per-type streams, files)");
        Msg("envoy.config.bootstrap.v3.Bootstrap", "dynamic_resources");
        Msg("envoy.config.bootstrap.v3.Bootstrap.DynamicResources", "ads_config", "lds_config", "cds_config");
        const string acs = "envoy.config.core.v3.ApiConfigSource";
        Note(acs, "api_type", "GRPC (state of the world) or DELTA_GRPC (incremental); AGGREGATED_GRPC/AGGREGATED_DELTA_GRPC on ads_config only; REST is refused");
        Note(acs, "transport_api_version", "V3 only");
        Note(acs, "grpc_services", "exactly one, with envoy_grpc naming a static cluster (h2c or Unix socket endpoint)");
        Note(acs, "set_node_on_first_message_only", "always the behaviour: the node is sent on the first request of each stream");
        Note(acs, "rate_limit_settings", "a token bucket over the stream's discovery requests (defaults: 100 tokens, 10 per second); a request finding it empty waits for the next token and counts control_plane.rate_limit_enforced");
        Msg("envoy.config.core.v3.RateLimitSettings", "max_tokens", "fill_rate");
        Msg("envoy.config.core.v3.GrpcService", "envoy_grpc");
        Warn("envoy.config.core.v3.GrpcService", "timeout", "the deadline of ext_authz checks; xDS streams and the other gRPC services (rate limit, tracing) apply none");
        Msg("envoy.config.core.v3.GrpcService.EnvoyGrpc", "cluster_name");
        const string cs = "envoy.config.core.v3.ConfigSource";
        Note(cs, "ads", "resources come over the bootstrap's ads_config stream");
        Note(cs, "api_config_source", "a stream of its own to the per-type service (ListenerDiscoveryService, ClusterDiscoveryService, RouteDiscoveryService, EndpointDiscoveryService, SecretDiscoveryService), one per cluster, transport and type");
        Note(cs, "path_config_source", "filesystem xDS: the file holds a DiscoveryResponse (YAML/JSON, binary if it ends in .pb), read again when a file is moved onto it");
        Note(cs, "path", "deprecated form of path_config_source.path");
        Note(cs, "initial_fetch_timeout", "default 15s; 0 waits forever");
        Note(cs, "resource_api_version", "V3 only");
        Msg("envoy.config.core.v3.AggregatedConfigSource");
        Msg("envoy.config.core.v3.PathConfigSource", "path");
        Note("envoy.config.core.v3.PathConfigSource", "watched_directory", "any move in that directory reloads the file (symlink swaps as Kubernetes ConfigMaps do)");
        Msg("envoy.config.core.v3.WatchedDirectory", "path");
        Msg("envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager", "rds");
        Msg("envoy.extensions.filters.network.http_connection_manager.v3.Rds", "config_source", "route_config_name");
        Note("envoy.config.cluster.v3.Cluster", "eds_cluster_config", "type: EDS clusters; eds_config from ADS, a per-type stream or a file");
        Msg("envoy.config.cluster.v3.Cluster.EdsClusterConfig", "eds_config", "service_name");
    }

    public static FieldSupport? Lookup(string fullFieldName) => s_fields.GetValueOrDefault(fullFieldName);

    public static IReadOnlyCollection<FieldSupport> All => s_fields.Values;

    private static void Area(string name) => s_area = name;

    private static void Msg(string message, params string[] fields)
    {
        Order(message);
        foreach (var f in fields) s_fields[message + "." + f] = new FieldSupport(message, f, null, null);
    }

    private static void Note(string message, string field, string note)
    {
        Order(message);
        s_fields[message + "." + field] = new FieldSupport(message, field, note, null);
    }

    private static void Warn(string message, string field, string warning)
    {
        Order(message);
        s_fields[message + "." + field] = new FieldSupport(message, field, null, warning);
    }

    private static void Order(string message)
    {
        foreach (var (_, m) in s_order) if (m == message) return;
        s_order.Add((s_area, message));
    }

    /// <summary>The markdown tables of docs/compatibility.md's field section.</summary>
    public static string ToMarkdown()
    {
        var sb = new StringBuilder();
        var area = "";
        foreach (var (a, message) in s_order)
        {
            if (a != area)
            {
                area = a;
                sb.Append("\n### ").Append(a).Append("\n\n| message | field | status |\n|---|---|---|\n");
            }
            var any = false;
            foreach (var f in s_fields.Values)
            {
                if (f.Message != message) continue;
                any = true;
                var status = f.Warning is not null ? "accepted, warns: " + f.Warning : f.Note ?? "supported";
                sb.Append("| `").Append(message).Append("` | `").Append(f.Field).Append("` | ").Append(status).Append(" |\n");
            }
            if (!any) sb.Append("| `").Append(message).Append("` | (no fields) | supported, empty only |\n");
        }
        return sb.ToString();
    }
}
