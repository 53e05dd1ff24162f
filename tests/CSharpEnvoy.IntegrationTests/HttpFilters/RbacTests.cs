using System.Net;
using CSharpEnvoy.IntegrationTests.Infrastructure;
using Microsoft.AspNetCore.Http;
using static CSharpEnvoy.IntegrationTests.Http.HttpTestUtil;

namespace CSharpEnvoy.IntegrationTests.HttpFilters;

/// <summary><c>envoy.filters.http.rbac</c>: ALLOW and DENY policies over request and connection properties, shadow
/// rules that only count, 403 <c>RBAC: access denied</c> and Envoy's stat names.</summary>
public sealed class RbacTests
{
    private const string Type = "type.googleapis.com/envoy.extensions.filters.http.rbac.v3.RBAC";

    private static string Bootstrap(string rbacBody, string backend, string hcmExtra = "") => $$"""
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
                  route_config:
                    virtual_hosts:
                    - name: vh
                      domains: ["*"]
                      routes:
                      - match: { prefix: "/" }
                        route: { cluster: backend }
                  http_filters:
                  - name: envoy.filters.http.rbac
                    typed_config:
                      "@type": {{Type}}
        {{Yaml.Indent(rbacBody, 14)}}
                  - name: envoy.filters.http.router
                    typed_config:
                      "@type": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router
          clusters:
        {{Yaml.Indent(Yaml.Cluster("backend", backend), 2)}}
        """;

    private static async Task<(TestBackend Backend, Func<int> Seen)> CountingBackendAsync()
    {
        var seen = 0;
        var backend = await TestBackend.StartAsync(ctx =>
        {
            Interlocked.Increment(ref seen);
            return ctx.Response.WriteAsync("ok");
        });
        return (backend, () => Volatile.Read(ref seen));
    }

    [Fact]
    public async Task Allow_OnlyMatchingRequestsPass_OthersGet403_AndCount()
    {
        var (backend, seen) = await CountingBackendAsync();
        await using var ownedBackend = backend;
        await using var proxy = await ProxyHarness.StartAsync(Bootstrap("""
            rules:
              action: ALLOW
              policies:
                readers:
                  permissions:
                  - and_rules:
                      rules:
                      - header: { name: ":method", string_match: { exact: GET } }
                      - url_path: { path: { prefix: "/public/" } }
                  principals:
                  - and_ids:
                      ids:
                      - remote_ip: { address_prefix: 127.0.0.0, prefix_len: 8 }
                      - not_id: { header: { name: x-banned, present_match: true } }
            """, backend.Address));
        using var client = proxy.Client("main");

        using (var ok = await client.GetAsync("/public/a?x=/private"))
            Assert.Equal(HttpStatusCode.OK, ok.StatusCode);
        using (var post = await client.PostAsync("/public/a", new StringContent("x")))
        {
            Assert.Equal(HttpStatusCode.Forbidden, post.StatusCode);
            Assert.Equal("RBAC: access denied", await post.Content.ReadAsStringAsync());
        }
        using (var path = await client.GetAsync("/private"))
            Assert.Equal(HttpStatusCode.Forbidden, path.StatusCode);
        using (var banned = await GetAsync(client, "/public/a", null, ("x-banned", "1")))
            Assert.Equal(HttpStatusCode.Forbidden, banned.StatusCode);

        Assert.Equal(1, seen());
        Assert.Equal(1, await proxy.StatAsync("http.ingress_http.rbac.allowed"));
        Assert.Equal(3, await proxy.StatAsync("http.ingress_http.rbac.denied"));
    }

    [Fact]
    public async Task Deny_MatchingRequestsAreRefused_AndShadowRulesOnlyCount_WithTheirPrefixes()
    {
        var (backend, seen) = await CountingBackendAsync();
        await using var ownedBackend = backend;
        await using var proxy = await ProxyHarness.StartAsync(Bootstrap("""
            rules_stat_prefix: "enforced."
            rules:
              action: DENY
              policies:
                no-admin:
                  permissions: [{ url_path: { path: { prefix: "/admin" } } }]
                  principals: [{ any: true }]
            shadow_rules_stat_prefix: "trial."
            shadow_rules:
              action: ALLOW
              policies:
                only-tagged:
                  permissions: [{ any: true }]
                  principals: [{ header: { name: x-tag, string_match: { exact: "yes" } } }]
            """, backend.Address));
        using var client = proxy.Client("main");

        using (var a = await GetAsync(client, "/x", null, ("x-tag", "yes"))) Assert.Equal(HttpStatusCode.OK, a.StatusCode);
        using (var b = await client.GetAsync("/y")) Assert.Equal(HttpStatusCode.OK, b.StatusCode); // shadow-denied, still served
        using (var c = await client.GetAsync("/admin/panel")) Assert.Equal(HttpStatusCode.Forbidden, c.StatusCode);

        Assert.Equal(2, seen());
        Assert.Equal(2, await proxy.StatAsync("http.ingress_http.rbac.enforced.allowed"));
        Assert.Equal(1, await proxy.StatAsync("http.ingress_http.rbac.enforced.denied"));
        Assert.Equal(1, await proxy.StatAsync("http.ingress_http.rbac.trial.shadow_allowed"));
        Assert.Equal(2, await proxy.StatAsync("http.ingress_http.rbac.trial.shadow_denied"));
    }

    [Fact]
    public async Task RemoteIp_FollowsXffWhileDirectRemoteIpIsThePeer()
    {
        var (backend, seen) = await CountingBackendAsync();
        await using var ownedBackend = backend;
        await using var proxy = await ProxyHarness.StartAsync(Bootstrap("""
            rules:
              action: ALLOW
              policies:
                office:
                  permissions: [{ any: true }]
                  principals:
                  - and_ids:
                      ids:
                      - remote_ip: { address_prefix: 10.1.0.0, prefix_len: 16 }
                      - direct_remote_ip: { address_prefix: 127.0.0.1, prefix_len: 32 }
            """, backend.Address));
        using var client = proxy.Client("main");

        using (var office = await GetAsync(client, "/", null, ("x-forwarded-for", "10.1.2.3"))) Assert.Equal(HttpStatusCode.OK, office.StatusCode);
        using (var other = await GetAsync(client, "/", null, ("x-forwarded-for", "10.2.2.3"))) Assert.Equal(HttpStatusCode.Forbidden, other.StatusCode);
        Assert.Equal(1, seen());
    }

    /// <summary>typed_per_filter_config with RBACPerRoute: a route's rbac replaces the filter's policies (with its own
    /// stat prefix); an RBACPerRoute without rbac turns the filter off on that route.</summary>
    [Fact]
    public async Task PerRoute_RbacReplacesTheFilterPolicies_OrTurnsItOff()
    {
        var (backend, seen) = await CountingBackendAsync();
        await using var ownedBackend = backend;
        var routes = """
            - match: { prefix: "/open" }
              route: { cluster: backend }
              typed_per_filter_config:
                envoy.filters.http.rbac:
                  "@type": type.googleapis.com/envoy.extensions.filters.http.rbac.v3.RBACPerRoute
            - match: { prefix: "/admin" }
              route: { cluster: backend }
              typed_per_filter_config:
                envoy.filters.http.rbac:
                  "@type": type.googleapis.com/envoy.extensions.filters.http.rbac.v3.RBACPerRoute
                  rbac:
                    rules_stat_prefix: admin_
                    rules:
                      action: ALLOW
                      policies:
                        admins:
                          permissions: [{ any: true }]
                          principals: [{ header: { name: x-admin, present_match: true } }]
            """;
        var yaml = Bootstrap("rules: { action: ALLOW }", backend.Address);
        // Insert the two routes before the catch-all one, at its indentation.
        var catchAll = yaml.IndexOf("- match: { prefix: \"/\" }", StringComparison.Ordinal);
        var indent = catchAll - yaml.LastIndexOf('\n', catchAll) - 1;
        yaml = yaml.Insert(catchAll, Yaml.Indent(routes, indent).TrimStart() + "\n" + new string(' ', indent));
        Assert.Contains("RBACPerRoute", yaml);
        await using var proxy = await ProxyHarness.StartAsync(yaml);
        using var client = proxy.Client("main");

        using (var other = await client.GetAsync("/x"))
            Assert.Equal(HttpStatusCode.Forbidden, other.StatusCode); // the filter's ALLOW without policies denies all
        using (var open = await client.GetAsync("/open/x"))
            Assert.Equal(HttpStatusCode.OK, open.StatusCode);
        using (var anonymous = await client.GetAsync("/admin/x"))
            Assert.Equal(HttpStatusCode.Forbidden, anonymous.StatusCode);
        using (var admin = await GetAsync(client, "/admin/x", null, ("x-admin", "1")))
            Assert.Equal(HttpStatusCode.OK, admin.StatusCode);

        Assert.Equal(2, seen());
        Assert.Equal(1, await proxy.StatAsync("http.ingress_http.rbac.denied"));
        Assert.Equal(1, await proxy.StatAsync("http.ingress_http.rbac.admin_allowed"));
        Assert.Equal(1, await proxy.StatAsync("http.ingress_http.rbac.admin_denied"));
    }

    [Fact]
    public void UnsupportedRbacFields_AreRefusedWithTheirPath()
    {
        var errors = ProxyHarness.Validate(Bootstrap("""
            rules:
              action: ALLOW
              policies:
                p:
                  permissions: [{ metadata: { filter: x } }]
                  principals: [{ any: true }]
            """, "127.0.0.1:1")).ToString();
        Assert.True(errors.Contains("policies[\"p\"].permissions[0].metadata"), errors);
    }
}
