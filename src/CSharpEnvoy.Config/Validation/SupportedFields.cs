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

        Area("Addresses");
        Msg("envoy.config.core.v3.Address", "socket_address", "pipe");
        Msg("envoy.config.core.v3.SocketAddress", "address", "port_value", "ipv4_compat");
        Note("envoy.config.core.v3.SocketAddress", "protocol", "TCP only; UDP is refused");
        Msg("envoy.config.core.v3.Pipe", "path", "mode");

        Area("Listeners");
        Msg("envoy.config.listener.v3.Listener", "name", "address", "filter_chains", "stat_prefix");
        Warn("envoy.config.listener.v3.Listener", "traffic_direction", "informational only");
        Warn("envoy.config.listener.v3.Listener", "per_connection_buffer_limit_bytes", "Kestrel's own request buffer limits apply");
        Msg("envoy.config.listener.v3.FilterChain", "filters", "name");
        Msg("envoy.config.listener.v3.Filter", "name", "typed_config");

        Area("HTTP connection manager (envoy.filters.network.http_connection_manager)");
        const string hcm = "envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager";
        Msg(hcm, "codec_type", "stat_prefix", "route_config", "http_filters", "use_remote_address", "xff_num_trusted_hops",
            "skip_xff_append", "via", "generate_request_id", "preserve_external_request_id", "always_set_request_id_in_response",
            "server_name", "server_header_transformation", "upgrade_configs");
        Note(hcm, "http2_protocol_options", "see Http2ProtocolOptions below");
        Msg(hcm + ".UpgradeConfig", "upgrade_type", "enabled");
        Msg("envoy.extensions.filters.network.http_connection_manager.v3.HttpFilter", "name", "typed_config", "is_optional");
        Msg("envoy.extensions.filters.http.router.v3.Router", "suppress_envoy_headers");
        Warn("envoy.extensions.filters.http.router.v3.Router", "dynamic_stats", "dynamic stats are always on");
        Warn("envoy.extensions.filters.http.router.v3.Router", "start_child_span", "tracing is not implemented yet");

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
            "regex_rewrite", "host_rewrite_literal", "auto_host_rewrite", "host_rewrite_header", "timeout", "upgrade_configs");
        Msg(ra + ".UpgradeConfig", "upgrade_type", "enabled");
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

        Area("Clusters");
        const string cl = "envoy.config.cluster.v3.Cluster";
        Msg(cl, "name", "type", "connect_timeout", "lb_policy", "load_assignment", "dns_refresh_rate", "dns_lookup_family",
            "http2_protocol_options", "typed_extension_protocol_options");
        Warn(cl, "per_connection_buffer_limit_bytes", "SocketsHttpHandler's own buffering applies");
        Note(cl, "lb_policy", "ROUND_ROBIN for now; other policies are refused with a clear error");
        Warn(cl, "respect_dns_ttl", "the refresh rate is always dns_refresh_rate");
        Msg("envoy.config.endpoint.v3.ClusterLoadAssignment", "cluster_name", "endpoints");
        Msg("envoy.config.endpoint.v3.LocalityLbEndpoints", "locality", "lb_endpoints");
        Note("envoy.config.endpoint.v3.LocalityLbEndpoints", "priority", "0 only for now; other priorities are refused");
        Msg("envoy.config.endpoint.v3.LbEndpoint", "endpoint");
        Msg("envoy.config.endpoint.v3.Endpoint", "address", "hostname");
        Msg("envoy.extensions.upstreams.http.v3.HttpProtocolOptions", "explicit_http_config", "use_downstream_protocol_config");
        Msg("envoy.extensions.upstreams.http.v3.HttpProtocolOptions.ExplicitHttpConfig", "http_protocol_options", "http2_protocol_options");
        Msg("envoy.extensions.upstreams.http.v3.HttpProtocolOptions.UseDownstreamHttpConfig", "http_protocol_options", "http2_protocol_options");
        Msg("envoy.config.core.v3.Http1ProtocolOptions");
        Msg("envoy.config.core.v3.Http2ProtocolOptions", "max_concurrent_streams", "initial_stream_window_size", "initial_connection_window_size");
        Warn("envoy.config.core.v3.Http2ProtocolOptions", "allow_connect", "extended CONNECT is not implemented");
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
