using System.Net;
using CSharpEnvoy.IntegrationTests.Infrastructure;
using static CSharpEnvoy.IntegrationTests.Http.HttpTestUtil;

namespace CSharpEnvoy.IntegrationTests.Http;

/// <summary>
/// The connection manager's request header sanitizing: x-forwarded-for/-proto, x-envoy-internal,
/// x-envoy-external-address, x-request-id and via, with use_remote_address on and off (Envoy's
/// <c>ConnectionManagerUtility::mutateRequestHeaders</c>, "HTTP header manipulation" and "header sanitizing").
/// All clients here connect from 127.0.0.1.
/// </summary>
public sealed class ForwardingHeadersTests
{
    private static async Task<(TestBackend Backend, ProxyHarness Proxy)> StartAsync(string hcmExtra)
    {
        var backend = await TestBackend.StartEchoAsync();
        var proxy = await ProxyHarness.StartAsync(Yaml.Bootstrap(Yaml.RoutesToBackend, Yaml.Cluster("backend", backend.Address), hcmExtra));
        return (backend, proxy);
    }

    [Fact]
    public async Task UseRemoteAddress_LoopbackClientWithoutXff_IsInternal()
    {
        var (backend, proxy) = await StartAsync("use_remote_address: true");
        await using var ownedBackend = backend;
        await using var ownedProxy = proxy;
        using var client = proxy.Client("main");

        using var response = await GetAsync(client, "/", null,
            ("x-forwarded-proto", "https"), ("x-request-id", "client-id-1"), ("x-envoy-ip-tags", "tag1"));

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        // A loopback peer is recorded as the server's own local address (Envoy: config.localAddress()).
        Assert.Equal(EnvoyLocalAddress(), Upstream(response, "x-forwarded-for"));
        // The edge does not trust the client's x-forwarded-proto.
        Assert.Equal("http", Upstream(response, "x-forwarded-proto"));
        Assert.Equal("true", Upstream(response, "x-envoy-internal"));
        Assert.Null(Upstream(response, "x-envoy-external-address"));
        // Internal requests keep their request id and the x-envoy-* headers only trusted from inside.
        Assert.Equal("client-id-1", Upstream(response, "x-request-id"));
        Assert.Equal("tag1", Upstream(response, "x-envoy-ip-tags"));
    }

    [Fact]
    public async Task UseRemoteAddress_ClientWithXff_IsExternal_AndSanitized()
    {
        var (backend, proxy) = await StartAsync("use_remote_address: true");
        await using var ownedBackend = backend;
        await using var ownedProxy = proxy;
        using var client = proxy.Client("main");

        using var response = await GetAsync(client, "/", null,
            ("x-forwarded-for", "203.0.113.7"), ("x-envoy-internal", "true"), ("x-request-id", "client-id-2"),
            ("x-envoy-retry-on", "5xx"), ("x-envoy-max-retries", "9"), ("x-envoy-upstream-rq-timeout-ms", "1"),
            ("x-envoy-external-address", "6.6.6.6"), ("x-envoy-ip-tags", "tag1"));

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("203.0.113.7," + EnvoyLocalAddress(), Upstream(response, "x-forwarded-for"));
        Assert.Null(Upstream(response, "x-envoy-internal"));
        Assert.Equal("127.0.0.1", Upstream(response, "x-envoy-external-address"));
        // An edge request gets a fresh request id.
        var id = Upstream(response, "x-request-id");
        Assert.NotEqual("client-id-2", id);
        Assert.True(Guid.TryParse(id, out _), id);
        // Envoy's cleanInternalHeaders strips these from external requests.
        Assert.Null(Upstream(response, "x-envoy-retry-on"));
        Assert.Null(Upstream(response, "x-envoy-max-retries"));
        Assert.Null(Upstream(response, "x-envoy-upstream-rq-timeout-ms"));
        Assert.Null(Upstream(response, "x-envoy-ip-tags"));
    }

    [Fact]
    public async Task UseRemoteAddress_PreserveExternalRequestId()
    {
        var (backend, proxy) = await StartAsync("use_remote_address: true\npreserve_external_request_id: true");
        await using var ownedBackend = backend;
        await using var ownedProxy = proxy;
        using var client = proxy.Client("main");

        using var response = await GetAsync(client, "/", null, ("x-forwarded-for", "203.0.113.7"), ("x-request-id", "client-id-3"));

        Assert.Equal("client-id-3", Upstream(response, "x-request-id"));
    }

    [Fact]
    public async Task UseRemoteAddress_SkipXffAppend()
    {
        var (backend, proxy) = await StartAsync("use_remote_address: true\nskip_xff_append: true");
        await using var ownedBackend = backend;
        await using var ownedProxy = proxy;
        using var client = proxy.Client("main");

        using var withXff = await GetAsync(client, "/", null, ("x-forwarded-for", "203.0.113.7"));
        using var withoutXff = await client.GetAsync("/");

        Assert.Equal("203.0.113.7", Upstream(withXff, "x-forwarded-for"));
        Assert.Equal("127.0.0.1", Upstream(withXff, "x-envoy-external-address"));
        Assert.Null(Upstream(withoutXff, "x-forwarded-for"));
        Assert.Equal("true", Upstream(withoutXff, "x-envoy-internal"));
        Assert.Equal("http", Upstream(withoutXff, "x-forwarded-proto"));
    }

    [Fact]
    public async Task UseRemoteAddress_XffNumTrustedHops_TakesTheClientFromXff()
    {
        var (backend, proxy) = await StartAsync("use_remote_address: true\nxff_num_trusted_hops: 1");
        await using var ownedBackend = backend;
        await using var ownedProxy = proxy;
        using var client = proxy.Client("main");

        using var response = await GetAsync(client, "/", null,
            ("x-forwarded-for", "198.51.100.1, 203.0.113.7"), ("x-forwarded-proto", "https"));
        using var noXff = await client.GetAsync("/");

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("198.51.100.1,203.0.113.7," + EnvoyLocalAddress(), Upstream(response, "x-forwarded-for"));
        // One trusted hop: the client is the last XFF entry, and the trusted hop's x-forwarded-proto stands.
        Assert.Equal("203.0.113.7", Upstream(response, "x-envoy-external-address"));
        Assert.Equal("https", Upstream(response, "x-forwarded-proto"));
        Assert.Equal("http", Upstream(noXff, "x-forwarded-proto"));
        Assert.Equal("true", Upstream(noXff, "x-envoy-internal"));
    }

    [Fact]
    public async Task NoRemoteAddress_TrustsXff_ForInternalStatus()
    {
        var (backend, proxy) = await StartAsync("");
        await using var ownedBackend = backend;
        await using var ownedProxy = proxy;
        using var client = proxy.Client("main");

        using var noXff = await GetAsync(client, "/", null, ("x-envoy-internal", "true"), ("x-forwarded-proto", "https"), ("x-request-id", "keep-1"));
        using var internalXff = await GetAsync(client, "/", null, ("x-forwarded-for", "10.0.0.5"), ("x-envoy-ip-tags", "tag1"));
        using var externalXff = await GetAsync(client, "/", null,
            ("x-forwarded-for", "203.0.113.7"), ("x-request-id", "keep-2"), ("x-envoy-ip-tags", "tag1"), ("x-envoy-retry-on", "5xx"));
        using var twoHops = await GetAsync(client, "/", null, ("x-forwarded-for", "10.0.0.5, 10.0.0.6"));

        // Without use_remote_address Envoy does not touch XFF, keeps a downstream x-forwarded-proto (or sets it).
        Assert.Null(Upstream(noXff, "x-forwarded-for"));
        Assert.Equal("https", Upstream(noXff, "x-forwarded-proto"));
        Assert.Equal("http", Upstream(internalXff, "x-forwarded-proto"));
        // x-envoy-internal is always removed from the downstream request, and set only when XFF holds a single
        // internal address. Without XFF the request is external even though the peer is loopback.
        Assert.Null(Upstream(noXff, "x-envoy-internal"));
        Assert.Equal("keep-1", Upstream(noXff, "x-request-id"));
        Assert.Equal("10.0.0.5", Upstream(internalXff, "x-forwarded-for"));
        Assert.Equal("true", Upstream(internalXff, "x-envoy-internal"));
        Assert.Equal("tag1", Upstream(internalXff, "x-envoy-ip-tags"));
        Assert.Null(Upstream(externalXff, "x-envoy-internal"));
        Assert.Null(Upstream(externalXff, "x-envoy-ip-tags"));
        Assert.Null(Upstream(externalXff, "x-envoy-retry-on"));
        Assert.Null(Upstream(twoHops, "x-envoy-internal"));
        // Not an edge request: no external address, and the request id is kept.
        Assert.Null(Upstream(externalXff, "x-envoy-external-address"));
        Assert.Equal("keep-2", Upstream(externalXff, "x-request-id"));
        Assert.True(Guid.TryParse(Upstream(internalXff, "x-request-id"), out _));
    }

    [Fact]
    public async Task RequestId_GeneratedWhenAbsent_AndAlwaysSetInResponse()
    {
        var (backend, proxy) = await StartAsync("always_set_request_id_in_response: true");
        await using var ownedBackend = backend;
        await using var ownedProxy = proxy;
        using var client = proxy.Client("main");

        using var generated = await client.GetAsync("/");
        using var given = await GetAsync(client, "/", null, ("x-request-id", "given-id"));

        var id = Upstream(generated, "x-request-id");
        Assert.True(Guid.TryParse(id, out _), id);
        Assert.Equal(id, Header(generated, "x-request-id"));
        Assert.Equal("given-id", Upstream(given, "x-request-id"));
        Assert.Equal("given-id", Header(given, "x-request-id"));
    }

    [Fact]
    public async Task RequestId_NotGenerated_WhenGenerateRequestIdIsFalse()
    {
        var (backend, proxy) = await StartAsync("generate_request_id: false");
        await using var ownedBackend = backend;
        await using var ownedProxy = proxy;
        using var client = proxy.Client("main");

        using var absent = await client.GetAsync("/");
        using var given = await GetAsync(client, "/", null, ("x-request-id", "given-id"));

        Assert.Null(Upstream(absent, "x-request-id"));
        Assert.Null(Header(absent, "x-request-id"));
        Assert.Equal("given-id", Upstream(given, "x-request-id"));
    }

    [Fact]
    public async Task Via_IsAppendedToRequestAndResponse()
    {
        var (backend, proxy) = await StartAsync("via: csenvoy-test");
        await using var ownedBackend = backend;
        await using var ownedProxy = proxy;
        using var client = proxy.Client("main");

        using var plain = await client.GetAsync("/");
        using var chained = await GetAsync(client, "/", null, ("via", "1.1 client-proxy"));

        Assert.Equal("csenvoy-test", Upstream(plain, "via"));
        Assert.Equal("1.1 client-proxy,csenvoy-test", Upstream(chained, "via"));
        Assert.Equal("csenvoy-test", Header(plain, "via"));
    }

    [Fact]
    public async Task AddUserAgent_NamesTheDownstreamServiceCluster_AndNode_AndFillsAMissingUserAgent()
    {
        await using var backend = await TestBackend.StartEchoAsync();
        var yaml = "node: { id: sidecar-7, cluster: checkout }\n" +
            Yaml.Bootstrap(Yaml.RoutesToBackend, Yaml.Cluster("backend", backend.Address), "add_user_agent: true\nuse_remote_address: true");
        await using var proxy = await ProxyHarness.StartAsync(yaml);
        using var client = proxy.Client("main");

        // An internal caller's own values are replaced; a user-agent is kept.
        using (var response = await GetAsync(client, "/", null, ("user-agent", "curl/8"), ("x-envoy-downstream-service-cluster", "spoofed")))
        {
            Assert.Equal("checkout", Upstream(response, "x-envoy-downstream-service-cluster"));
            Assert.Equal("sidecar-7", Upstream(response, "x-envoy-downstream-service-node"));
            Assert.Equal("curl/8", Upstream(response, "user-agent"));
        }
        using (var response = await GetAsync(client, "/", null))
            Assert.Equal("checkout", Upstream(response, "user-agent"));

        // Without add_user_agent an edge request loses what the caller claimed.
        await using var plain = await ProxyHarness.StartAsync("node: { id: sidecar-7, cluster: checkout }\n" +
            Yaml.Bootstrap(Yaml.RoutesToBackend, Yaml.Cluster("backend", backend.Address), "use_remote_address: true"));
        using var plainClient = plain.Client("main");
        using var edge = await GetAsync(plainClient, "/", null, ("x-forwarded-for", "203.0.113.7"), ("x-envoy-downstream-service-cluster", "spoofed"));
        Assert.Null(Upstream(edge, "x-envoy-downstream-service-cluster"));
        Assert.Null(Upstream(edge, "x-envoy-downstream-service-node"));
    }

    [Fact]
    public async Task AppendXForwardedPort_SetsTheListenersPort_UnlessATrustedHopDid()
    {
        var (backend, proxy) = await StartAsync("use_remote_address: true\nappend_x_forwarded_port: true");
        await using var ownedBackend = backend;
        await using var ownedProxy = proxy;
        using var client = proxy.Client("main");
        var port = proxy.ListenerUri("main").Port.ToString(System.Globalization.CultureInfo.InvariantCulture);

        using (var r = await GetAsync(client, "/", null))
            Assert.Equal(port, Upstream(r, "x-forwarded-port"));
        // No trusted hops: the client's value is overwritten.
        using (var r = await GetAsync(client, "/", null, ("x-forwarded-port", "1")))
            Assert.Equal(port, Upstream(r, "x-forwarded-port"));

        var (backend2, trusted) = await StartAsync("use_remote_address: true\nxff_num_trusted_hops: 1\nappend_x_forwarded_port: true");
        await using var ownedBackend2 = backend2;
        await using var ownedTrusted = trusted;
        using var trustedClient = trusted.Client("main");
        using (var r = await GetAsync(trustedClient, "/", null, ("x-forwarded-for", "203.0.113.9"), ("x-forwarded-port", "443")))
            Assert.Equal("443", Upstream(r, "x-forwarded-port"));
    }

    [Fact]
    public async Task InternalAddressConfig_DecidesWhichClientsAreInternal()
    {
        // Loopback is internal by default; with its own ranges, only those are.
        var (backend, proxy) = await StartAsync("use_remote_address: true\ninternal_address_config: { cidr_ranges: [{ address_prefix: 10.0.0.0, prefix_len: 8 }] }");
        await using var ownedBackend = backend;
        await using var ownedProxy = proxy;
        using var client = proxy.Client("main");
        using (var r = await GetAsync(client, "/", null))
        {
            Assert.Null(Upstream(r, "x-envoy-internal"));
            Assert.NotNull(Upstream(r, "x-envoy-external-address"));
        }

        var (backend2, loopback) = await StartAsync("use_remote_address: true\ninternal_address_config: { cidr_ranges: [{ address_prefix: 127.0.0.0, prefix_len: 8 }] }");
        await using var ownedBackend2 = backend2;
        await using var ownedLoopback = loopback;
        using var loopbackClient = loopback.Client("main");
        using (var r = await GetAsync(loopbackClient, "/", null))
            Assert.Equal("true", Upstream(r, "x-envoy-internal"));
    }

    [Fact]
    public async Task SchemeToOverwrite_SetsXForwardedProto_WhateverTheConnectionOrTheClientSaid()
    {
        var (backend, proxy) = await StartAsync("use_remote_address: true\nxff_num_trusted_hops: 1\nscheme_header_transformation: { scheme_to_overwrite: https }");
        await using var ownedBackend = backend;
        await using var ownedProxy = proxy;
        using var client = proxy.Client("main");
        using (var r = await GetAsync(client, "/", null))
            Assert.Equal("https", Upstream(r, "x-forwarded-proto"));
        // Even a trusted hop's value gives way.
        using (var r = await GetAsync(client, "/", null, ("x-forwarded-for", "203.0.113.9"), ("x-forwarded-proto", "http")))
            Assert.Equal("https", Upstream(r, "x-forwarded-proto"));
        Assert.Contains(ProxyHarness.Validate(Yaml.Bootstrap(Yaml.RoutesToBackend, Yaml.Cluster("backend", "127.0.0.1:1"),
            "scheme_header_transformation: { scheme_to_overwrite: ftp }")).Errors.Select(e => e.ToString()),
            e => e.EndsWith("scheme_header_transformation.scheme_to_overwrite: scheme_to_overwrite must be \"http\" or \"https\", not 'ftp'", StringComparison.Ordinal));
    }
}
