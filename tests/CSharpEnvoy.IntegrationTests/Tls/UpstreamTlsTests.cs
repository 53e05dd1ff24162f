using System.Net;
using System.Security.Cryptography.X509Certificates;
using CSharpEnvoy.IntegrationTests.Infrastructure;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using static CSharpEnvoy.IntegrationTests.Http.HttpTestUtil;

namespace CSharpEnvoy.IntegrationTests.Tls;

/// <summary>
/// TLS origination to a cluster (UpstreamTlsContext) against real Kestrel HTTPS backends: verification against
/// trusted_ca only, no verification without a validation context, client certificates, and h2 by ALPN.
/// </summary>
public sealed class UpstreamTlsTests : IDisposable
{
    private readonly TestPki _pki = new();
    private readonly X509Certificate2 _ca = TestPki.CreateCa("backend ca");
    private readonly X509Certificate2 _otherCa = TestPki.CreateCa("another ca");

    public void Dispose() => _pki.Dispose();

    private async Task<ProxyHarness> StartProxyAsync(TlsBackend backend, string upstreamContext, bool http2 = false)
    {
        var extra = TlsTestKit.UpstreamSocket(upstreamContext) + (http2 ? "\n" + TlsTestKit.Http2Options : "");
        return await ProxyHarness.StartAsync(TlsTestKit.Bootstrap("", TlsTestKit.Cluster(backend.Address, extra)));
    }

    private string TrustedCa(X509Certificate2 ca) => $$"""
        validation_context:
          trusted_ca: { filename: "{{_pki.Write("upstream-ca.pem", TestPki.CertPem(ca))}}" }
        """;

    [Fact]
    public async Task TrustedCa_VerifiesTheBackend_AndForwardsOverTls()
    {
        await using var backend = await TlsBackend.StartAsync(TestPki.Issue(_ca, "backend", dns: ["backend.example.com"]));
        await using var proxy = await StartProxyAsync(backend, $"""
            common_tls_context:
            {Yaml.Indent(TrustedCa(_ca), 2)}
            """);
        using var client = proxy.Client("main");

        using var response = await client.GetAsync("/x");

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("https", Header(response, "x-echo-scheme"));
        Assert.Equal("HTTP/1.1", Header(response, "x-echo-protocol"));
        Assert.True(await TlsTestKit.WaitStatAsync(proxy, "cluster.backend.ssl.handshake", 1) >= 1);
        Assert.Equal(1, await proxy.StatAsync("cluster.backend.upstream_cx_total"));
    }

    [Fact]
    public async Task BackendFromAnotherCa_IsRefused_With503ConnectionFailure()
    {
        await using var backend = await TlsBackend.StartAsync(TestPki.Issue(_otherCa, "backend", dns: ["backend.example.com"]));
        await using var proxy = await StartProxyAsync(backend, $"""
            common_tls_context:
            {Yaml.Indent(TrustedCa(_ca), 2)}
            """);
        using var client = proxy.Client("main");

        using var response = await client.GetAsync("/x");

        Assert.Equal(HttpStatusCode.ServiceUnavailable, response.StatusCode);
        Assert.StartsWith("upstream connect error or disconnect/reset before headers. reset reason: connection failure", await response.Content.ReadAsStringAsync());
        Assert.True(await proxy.StatAsync("cluster.backend.ssl.fail_verify_error") >= 1);
        Assert.Equal(0, await proxy.StatAsync("cluster.backend.ssl.handshake"));
    }

    [Fact]
    public async Task SanMatcher_WrongBackendName_IsRefused()
    {
        await using var backend = await TlsBackend.StartAsync(TestPki.Issue(_ca, "backend", dns: ["backend.example.com"]));
        var ca = _pki.Write("ca.pem", TestPki.CertPem(_ca));
        await using var proxy = await StartProxyAsync(backend, $$"""
            common_tls_context:
              validation_context:
                trusted_ca: { filename: "{{ca}}" }
                match_typed_subject_alt_names: [{ san_type: DNS, matcher: { exact: "payments.example.com" } }]
            """);
        using var client = proxy.Client("main");

        using var response = await client.GetAsync("/x");

        Assert.Equal(HttpStatusCode.ServiceUnavailable, response.StatusCode);
        Assert.True(await proxy.StatAsync("cluster.backend.ssl.fail_verify_san") >= 1);
    }

    [Fact]
    public async Task NoValidationContext_AcceptsAnyServerCertificate_AsEnvoyDoes()
    {
        await using var backend = await TlsBackend.StartAsync(TestPki.Issue(_otherCa, "whoever"));
        await using var proxy = await StartProxyAsync(backend, "common_tls_context: {}");
        using var client = proxy.Client("main");

        using var response = await client.GetAsync("/x");

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
    }

    [Fact]
    public async Task ClientCertificate_IsPresentedToABackendThatRequiresOne()
    {
        var clientCert = TestPki.Issue(_ca, "csenvoy-client", uris: ["spiffe://cluster.local/ns/default/sa/proxy"], ip: false);
        await using var backend = await TlsBackend.StartAsync(TestPki.Issue(_ca, "backend"), requireClientCertFrom: _ca);
        var pair = _pki.WritePair("client", clientCert);
        await using var proxy = await StartProxyAsync(backend, $"""
            common_tls_context:
            {Yaml.Indent(TlsTestKit.CertificateYaml(pair), 2)}
            {Yaml.Indent(TrustedCa(_ca), 2)}
            """);
        using var client = proxy.Client("main");

        using var response = await client.GetAsync("/x");

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("CN=csenvoy-client", Header(response, "x-echo-client-cert"));
    }

    [Fact]
    public async Task WithoutClientCertificate_ABackendRequiringOne_Fails()
    {
        await using var backend = await TlsBackend.StartAsync(TestPki.Issue(_ca, "backend"), requireClientCertFrom: _ca);
        await using var proxy = await StartProxyAsync(backend, "common_tls_context: {}");
        using var client = proxy.Client("main");

        using var response = await client.GetAsync("/x");

        Assert.Equal(HttpStatusCode.ServiceUnavailable, response.StatusCode);
    }

    [Fact]
    public async Task Http2Cluster_NegotiatesH2ByAlpn()
    {
        await using var backend = await TlsBackend.StartAsync(TestPki.Issue(_ca, "backend"), HttpProtocols.Http2);
        await using var proxy = await StartProxyAsync(backend, $"""
            common_tls_context:
              alpn_protocols: [h2]
            {Yaml.Indent(TrustedCa(_ca), 2)}
            """, http2: true);
        using var client = proxy.Client("main");

        using var response = await client.GetAsync("/x");

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("HTTP/2", Header(response, "x-echo-protocol"));
        Assert.Equal("https", Header(response, "x-echo-scheme"));
        // Counted by what ALPN chose.
        Assert.Equal(1, await proxy.StatAsync("cluster.backend.upstream_cx_http2_total"));
        Assert.Equal(0, await proxy.StatAsync("cluster.backend.upstream_cx_http1_total"));
    }

    [Fact]
    public async Task TlsBothSides_H2DownstreamAndUpstream()
    {
        await using var backend = await TlsBackend.StartAsync(TestPki.Issue(_ca, "backend"), HttpProtocols.Http2);
        var server = _pki.WritePair("proxy", TestPki.Issue(_ca, "proxy"));
        var yaml = TlsTestKit.Bootstrap(
            TlsTestKit.DownstreamSocket($"""
                common_tls_context:
                  alpn_protocols: [h2, http/1.1]
                {Yaml.Indent(TlsTestKit.CertificateYaml(server), 2)}
                """),
            TlsTestKit.Cluster(backend.Address, TlsTestKit.UpstreamSocket($"""
                common_tls_context:
                {Yaml.Indent(TrustedCa(_ca), 2)}
                """) + "\n" + TlsTestKit.Http2Options));
        await using var proxy = await ProxyHarness.StartAsync(yaml);
        using var client = TlsTestKit.Client(proxy, _ca, http2: true);

        using var response = await client.GetAsync("/both");

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal(new Version(2, 0), response.Version);
        Assert.Equal("HTTP/2", Header(response, "x-echo-protocol"));
        Assert.Equal("https", Upstream(response, "x-forwarded-proto"));
    }

    private const string AutoSniOptions = """
        typed_extension_protocol_options:
          envoy.extensions.upstreams.http.v3.HttpProtocolOptions:
            "@type": type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions
            upstream_http_protocol_options: { auto_sni: true, auto_san_validation: true }
            explicit_http_config: { http_protocol_options: {} }
        """;

    [Theory]
    [InlineData("sni: api.example.com", "api.example.com")]
    [InlineData("{}", "")] // Envoy sends no SNI unless sni or auto_sni says so (Kestrel reports none as "")
    public async Task Sni_IsTheConfiguredName_NotTheRequestHost(string context, string expected)
    {
        await using var backend = await TlsBackend.StartAsync(TestPki.Issue(_ca, "backend", dns: ["api.example.com"]));
        await using var proxy = await StartProxyAsync(backend, $"common_tls_context: {{}}\n{(context == "{}" ? "" : context)}");
        using var client = proxy.Client("main");

        using var response = await GetAsync(client, "/x", host: "shop.example.org");

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal(expected, backend.LastSni);
        Assert.Equal("shop.example.org", Upstream(response, "host"));
    }

    [Fact]
    public async Task AutoSni_SendsTheRequestHost_AndAutoSanValidationChecksIt()
    {
        await using var backend = await TlsBackend.StartAsync(TestPki.Issue(_ca, "backend", dns: ["*.example.com"]));
        var ca = _pki.Write("ca.pem", TestPki.CertPem(_ca));
        var extra = TlsTestKit.UpstreamSocket($$"""
            sni: ignored.example.com
            common_tls_context:
              validation_context: { trusted_ca: { filename: "{{ca}}" } }
            """) + "\n" + AutoSniOptions;
        await using var proxy = await ProxyHarness.StartAsync(TlsTestKit.Bootstrap("", TlsTestKit.Cluster(backend.Address, extra)));
        using var client = proxy.Client("main");

        using (var ok = await GetAsync(client, "/x", host: "shop.example.com:8080"))
        {
            Assert.Equal(HttpStatusCode.OK, ok.StatusCode);
            Assert.Equal("shop.example.com", backend.LastSni);
        }

        // A host the certificate does not cover fails auto SAN validation.
        using var refused = await GetAsync(client, "/x", host: "shop.example.org");
        Assert.Equal(HttpStatusCode.ServiceUnavailable, refused.StatusCode);
        Assert.True(await proxy.StatAsync("cluster.backend.ssl.fail_verify_san") >= 1);
    }
}
