namespace CSharpEnvoy.IntegrationTests.Infrastructure;

/// <summary>Builders for the bootstrap fragments most tests share.</summary>
public static class Yaml
{
    /// <summary>One virtual host for every domain with one route sending everything to the cluster "backend".</summary>
    public const string RoutesToBackend = """
        - name: vh
          domains: ["*"]
          routes:
          - match: { prefix: "/" }
            route: { cluster: backend }
        """;

    /// <summary>A bootstrap with admin on port 0, one listener "main" on port 0 with the given route config body
    /// (indented as the value of route_config), plus clusters.</summary>
    public static string Bootstrap(string virtualHosts, string clusters = "", string hcmExtra = "", string codec = "AUTO") => $$"""
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
                  codec_type: {{codec}}
        {{Indent(hcmExtra, 10)}}
                  route_config:
                    name: local_route
                    virtual_hosts:
        {{Indent(virtualHosts, 12)}}
                  http_filters:
                  - name: envoy.filters.http.router
                    typed_config:
                      "@type": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router
          clusters:
        {{Indent(clusters, 2)}}
        """;

    /// <summary>A STATIC cluster with the given endpoints ("127.0.0.1:1234").</summary>
    public static string Cluster(string name, params string[] endpoints) => Cluster(name, http2: false, endpoints);

    public static string Cluster(string name, bool http2, params string[] endpoints)
    {
        var eps = string.Join("\n", endpoints.Select(e =>
        {
            var i = e.LastIndexOf(':');
            return $"      - endpoint: {{ address: {{ socket_address: {{ address: {e[..i]}, port_value: {e[(i + 1)..]} }} }} }}";
        }));
        var h2 = http2 ? """

              typed_extension_protocol_options:
                envoy.extensions.upstreams.http.v3.HttpProtocolOptions:
                  "@type": type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions
                  explicit_http_config: { http2_protocol_options: {} }
            """ : "";
        return $"""
            - name: {name}
              connect_timeout: 1s
              type: STATIC{h2}
              load_assignment:
                cluster_name: {name}
                endpoints:
                - lb_endpoints:
            {eps}
            """;
    }

    public static string Indent(string text, int spaces)
    {
        if (string.IsNullOrEmpty(text)) return "";
        var pad = new string(' ', spaces);
        return string.Join("\n", text.Split('\n').Select(l => l.Length == 0 ? l : pad + l));
    }
}
