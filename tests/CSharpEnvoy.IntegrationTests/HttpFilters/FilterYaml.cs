using CSharpEnvoy.IntegrationTests.Infrastructure;

namespace CSharpEnvoy.IntegrationTests.HttpFilters;

/// <summary>Bootstrap builders for HTTP filter tests: a listener "main" whose connection manager has the given filters
/// before the router, the given virtual hosts, clusters, and (with a log path) an access log of "code flags details".</summary>
internal static class FilterYaml
{
    public const string Fault = "type.googleapis.com/envoy.extensions.filters.http.fault.v3.HTTPFault";
    public const string LocalRateLimit = "type.googleapis.com/envoy.extensions.filters.http.local_ratelimit.v3.LocalRateLimit";
    public const string RateLimit = "type.googleapis.com/envoy.extensions.filters.http.ratelimit.v3.RateLimit";
    public const string RateLimitPerRoute = "type.googleapis.com/envoy.extensions.filters.http.ratelimit.v3.RateLimitPerRoute";
    public const string FilterConfig = "type.googleapis.com/envoy.config.route.v3.FilterConfig";

    public static string Bootstrap(string filters, string virtualHosts, string clusters, string? logPath, string hcmExtra = "", string routeConfigExtra = "") => $$"""
        admin:
          address: { socket_address: { address: 127.0.0.1, port_value: 0 } }
        static_resources:
          listeners:
          - name: main
            address: { socket_address: { address: 127.0.0.1, port_value: 0 } }
            filter_chains:
            - filters:
              - name: envoy.filters.network.http_connection_manager
                typed_config:
                  "@type": type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager
                  stat_prefix: ingress_http
        {{Yaml.Indent(hcmExtra, 10)}}
        {{Yaml.Indent(logPath is null ? "" : AccessLog(logPath), 10)}}
                  route_config:
        {{Yaml.Indent(routeConfigExtra, 12)}}
                    virtual_hosts:
        {{Yaml.Indent(virtualHosts, 12)}}
                  http_filters:
        {{Yaml.Indent(filters, 10)}}
                  - name: envoy.filters.http.router
                    typed_config:
                      "@type": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router
          clusters:
        {{Yaml.Indent(clusters, 2)}}
        """;

    private static string AccessLog(string path) => $$"""
        access_log:
        - name: envoy.access_loggers.file
          typed_config:
            "@type": type.googleapis.com/envoy.extensions.access_loggers.file.v3.FileAccessLog
            path: {{path}}
            log_format: { text_format_source: { inline_string: "%RESPONSE_CODE% %RESPONSE_FLAGS% %RESPONSE_CODE_DETAILS%\n" } }
        """;

    /// <summary>The access log's lines, once <paramref name="count"/> are there (lines are written as requests end).</summary>
    public static async Task<string[]> LogLinesAsync(string path, int count)
    {
        var deadline = DateTime.UtcNow.AddSeconds(10);
        while (true)
        {
            var lines = File.Exists(path) ? File.ReadAllText(path).Split('\n', StringSplitOptions.RemoveEmptyEntries) : [];
            if (lines.Length >= count || DateTime.UtcNow > deadline) return lines;
            await Task.Delay(20);
        }
    }
}
