using System.Net;
using CSharpEnvoy.IntegrationTests.Infrastructure;
using static CSharpEnvoy.IntegrationTests.Http.HttpTestUtil;

namespace CSharpEnvoy.IntegrationTests.Http;

/// <summary>RouteAction path rewrites (prefix_rewrite, regex_rewrite) and Host rewrites (host_rewrite_literal,
/// auto_host_rewrite, host_rewrite_header) as the upstream sees them.</summary>
public sealed class RewriteTests
{
    [Fact]
    public async Task PrefixAndRegexRewrites_SetXEnvoyOriginalPath()
    {
        await using var backend = await TestBackend.StartEchoAsync();
        var vhosts = """
            - name: vh
              domains: ["*"]
              routes:
              - match: { prefix: "/api/" }
                route: { cluster: backend, prefix_rewrite: "/v2/" }
              - match: { prefix: "/strip/" }
                route: { cluster: backend, prefix_rewrite: "/" }
              - match: { prefix: "/users/" }
                route:
                  cluster: backend
                  regex_rewrite:
                    pattern: { regex: "^/users/([^/]+)/posts/([0-9]+)$" }
                    substitution: "/u/\\1/p/\\2"
              - match: { prefix: "/" }
                route: { cluster: backend }
            """;
        await using var proxy = await ProxyHarness.StartAsync(Yaml.Bootstrap(vhosts, Yaml.Cluster("backend", backend.Address)));
        using var client = proxy.Client("main");

        using var prefix = await client.GetAsync("/api/users?limit=5");
        using var strip = await client.GetAsync("/strip/a/b");
        using var regex = await client.GetAsync("/users/alice/posts/42?q=1");
        using var plain = await client.GetAsync("/other");

        Assert.Equal("/v2/users?limit=5", Header(prefix, "x-echo-path"));
        Assert.Equal("/api/users?limit=5", Upstream(prefix, "x-envoy-original-path"));
        Assert.Equal("/a/b", Header(strip, "x-echo-path"));
        Assert.Equal("/strip/a/b", Upstream(strip, "x-envoy-original-path"));
        // Capture groups substitute; the query string is kept.
        Assert.Equal("/u/alice/p/42?q=1", Header(regex, "x-echo-path"));
        Assert.Equal("/users/alice/posts/42?q=1", Upstream(regex, "x-envoy-original-path"));
        Assert.Equal("/other", Header(plain, "x-echo-path"));
        Assert.Null(Upstream(plain, "x-envoy-original-path"));
    }

    [Fact]
    public async Task PrefixRewrite_WithSuppressEnvoyHeaders_HasNoOriginalPath()
    {
        await using var backend = await TestBackend.StartEchoAsync();
        var vhosts = """
            - name: vh
              domains: ["*"]
              routes:
              - match: { prefix: "/api" }
                route: { cluster: backend, prefix_rewrite: "/internal" }
            """;
        var yaml = Yaml.Bootstrap(vhosts, Yaml.Cluster("backend", backend.Address)).Replace(
            "\"@type\": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router",
            "\"@type\": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router\n              suppress_envoy_headers: true");
        Assert.Contains("suppress_envoy_headers: true", yaml);
        await using var proxy = await ProxyHarness.StartAsync(yaml);
        using var client = proxy.Client("main");

        using var response = await client.GetAsync("/api/x");

        Assert.Equal("/internal/x", Header(response, "x-echo-path"));
        Assert.Null(Upstream(response, "x-envoy-original-path"));
    }

    [Fact]
    public async Task HostRewriteLiteral_AndHostRewriteHeader()
    {
        await using var backend = await TestBackend.StartEchoAsync();
        var vhosts = """
            - name: vh
              domains: ["*"]
              routes:
              - match: { prefix: "/literal" }
                route: { cluster: backend, host_rewrite_literal: "rewritten.example" }
              - match: { prefix: "/header" }
                route: { cluster: backend, host_rewrite_header: "X-Target-Host" }
            """;
        await using var proxy = await ProxyHarness.StartAsync(Yaml.Bootstrap(vhosts, Yaml.Cluster("backend", backend.Address)));
        using var client = proxy.Client("main");

        using var literal = await GetAsync(client, "/literal", "original.example");
        using var fromHeader = await GetAsync(client, "/header", "original.example", ("x-target-host", "from-header.example:8443"));
        using var headerMissing = await GetAsync(client, "/header", "original.example");

        Assert.Equal("rewritten.example", Header(literal, "x-echo-host"));
        Assert.Equal("from-header.example:8443", Header(fromHeader, "x-echo-host"));
        // No (or an empty) header: the Host is left intact.
        Assert.Equal("original.example", Header(headerMissing, "x-echo-host"));
    }

    [Fact]
    public async Task AutoHostRewrite_StrictDnsCluster_SendsTheDnsName()
    {
        await using var backend = await TestBackend.StartEchoAsync();
        var vhosts = """
            - name: vh
              domains: ["*"]
              routes:
              - match: { prefix: "/dns" }
                route: { cluster: dns, auto_host_rewrite: true }
              - match: { prefix: "/static-named" }
                route: { cluster: static_named, auto_host_rewrite: true }
              - match: { prefix: "/static" }
                route: { cluster: static, auto_host_rewrite: true }
            """;
        var clusters = $"""
            - name: dns
              connect_timeout: 1s
              type: STRICT_DNS
              dns_lookup_family: V4_ONLY
              load_assignment:
                cluster_name: dns
                endpoints:
                - lb_endpoints:
                  - endpoint: {"{"} address: {"{"} socket_address: {"{"} address: localhost, port_value: {backend.Port} {"}"} {"}"} {"}"}
            - name: static_named
              connect_timeout: 1s
              type: STATIC
              load_assignment:
                cluster_name: static_named
                endpoints:
                - lb_endpoints:
                  - endpoint:
                      hostname: named.internal
                      address: {"{"} socket_address: {"{"} address: 127.0.0.1, port_value: {backend.Port} {"}"} {"}"}
            {Yaml.Cluster("static", backend.Address)}
            """;
        await using var proxy = await ProxyHarness.StartAsync(Yaml.Bootstrap(vhosts, clusters));
        using var client = proxy.Client("main");

        using var dns = await GetAsync(client, "/dns", "original.example");
        using var named = await GetAsync(client, "/static-named", "original.example");
        using var staticHost = await GetAsync(client, "/static", "original.example");

        Assert.Equal(HttpStatusCode.OK, dns.StatusCode);
        // Envoy sets :authority to the host's hostname (the DNS name, no port).
        Assert.Equal("localhost", Header(dns, "x-echo-host"));
        Assert.Equal("named.internal", Header(named, "x-echo-host"));
        // "Setting this to true with other cluster types has no effect": a static host without hostname keeps the Host.
        Assert.Equal("original.example", Header(staticHost, "x-echo-host"));
    }
}
