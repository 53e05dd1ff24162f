using System.Net;
using System.Net.Security;
using System.Net.Sockets;
using System.Security.Cryptography.X509Certificates;
using System.Text;
using CSharpEnvoy.IntegrationTests.Infrastructure;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using static CSharpEnvoy.IntegrationTests.Http.HttpTestUtil;

namespace CSharpEnvoy.IntegrationTests.Tls;

/// <summary>
/// TLS termination on a listener (DownstreamTlsContext): HTTP/1.1 and h2 by ALPN, x-forwarded-proto https, and
/// client certificate verification against trusted_ca only, with Envoy's <c>listener.&lt;addr&gt;.ssl.*</c> stats.
/// </summary>
public sealed class DownstreamTlsTests : IDisposable
{
    private readonly TestPki _pki = new();
    private readonly X509Certificate2 _ca = TestPki.CreateCa("csenvoy test ca");
    private readonly X509Certificate2 _otherCa = TestPki.CreateCa("some other ca");

    public void Dispose() => _pki.Dispose();

    private string ServerContext(string extra = "", string alpn = "alpn_protocols: [h2, http/1.1]", bool ecdsa = false)
    {
        var server = _pki.WritePair("server", TestPki.Issue(_ca, "proxy", dns: ["proxy.example.com"], ecdsa: ecdsa));
        return $"""
            common_tls_context:
              {alpn}
            {Yaml.Indent(TlsTestKit.CertificateYaml(server), 2)}
            {extra}
            """;
    }

    private string MtlsContext()
    {
        var ca = _pki.Write("ca.pem", TestPki.CertPem(_ca));
        var server = _pki.WritePair("server", TestPki.Issue(_ca, "proxy", dns: ["proxy.example.com"]));
        return $$"""
            require_client_certificate: true
            common_tls_context:
              alpn_protocols: [h2, http/1.1]
            {{Yaml.Indent(TlsTestKit.CertificateYaml(server), 2)}}
              validation_context:
                trusted_ca: { filename: "{{ca}}" }
                match_typed_subject_alt_names:
                - san_type: URI
                  matcher: { prefix: "spiffe://cluster.local/ns/default/" }
                - san_type: DNS
                  matcher: { exact: "client.example.com" }
            """;
    }

    private async Task<(TestBackend, ProxyHarness)> StartAsync(string context)
    {
        var backend = await TestBackend.StartEchoAsync();
        var proxy = await ProxyHarness.StartAsync(TlsTestKit.Bootstrap(TlsTestKit.DownstreamSocket(context), TlsTestKit.Cluster(backend.Address)));
        return (backend, proxy);
    }

    // Listener stats are named by the configured address (port 0 here), as the other listener stats are.
    private static string Ssl(ProxyHarness proxy, string stat) => $"listener.127.0.0.1_0.ssl.{stat}";

    [Theory]
    [InlineData(false, false)]
    [InlineData(true, false)]
    [InlineData(false, true)]
    public async Task HttpsListener_ServesHttp1AndH2ByAlpn_WithForwardedProtoHttps(bool http2, bool ecdsa)
    {
        var (backend, proxy) = await StartAsync(ServerContext(ecdsa: ecdsa));
        await using var ownedBackend = backend;
        await using var ownedProxy = proxy;
        using var client = TlsTestKit.Client(proxy, _ca, http2: http2);

        using var response = await client.GetAsync("/hello");

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal(http2 ? new Version(2, 0) : new Version(1, 1), response.Version);
        Assert.Equal("https", Upstream(response, "x-forwarded-proto"));
        Assert.Equal(1, await TlsTestKit.WaitStatAsync(proxy, Ssl(proxy, "handshake"), 1));
        Assert.Equal(1, await proxy.StatAsync(Ssl(proxy, "no_certificate")));
        Assert.Equal(1, await proxy.StatAsync(http2 ? "http.ingress_http.downstream_cx_http2_total" : "http.ingress_http.downstream_cx_http1_total"));
    }

    [Fact]
    public async Task NoAlpnConfigured_H2ByPrefaceStillWorks_AndHttp1IsDefault()
    {
        var (backend, proxy) = await StartAsync(ServerContext(alpn: ""));
        await using var ownedBackend = backend;
        await using var ownedProxy = proxy;

        // No ALPN: the client falls back to HTTP/1.1.
        using (var client = TlsTestKit.Client(proxy, _ca))
        {
            using var response = await client.GetAsync("/");
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
            Assert.Equal(new Version(1, 1), response.Version);
        }

        // A raw TLS connection without ALPN that starts with the HTTP/2 preface is served as HTTP/2 (Envoy's AUTO codec).
        using var tcp = new TcpClient();
        await tcp.ConnectAsync(IPEndPoint.Parse(proxy.ListenerAddress("main")));
        await using var ssl = new SslStream(tcp.GetStream());
        await ssl.AuthenticateAsClientAsync(new SslClientAuthenticationOptions { TargetHost = "proxy.example.com", RemoteCertificateValidationCallback = (_, _, _, _) => true });
        Assert.Equal(default, ssl.NegotiatedApplicationProtocol);
        await ssl.WriteAsync("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"u8.ToArray());
        await ssl.WriteAsync(new byte[] { 0, 0, 0, 4, 0, 0, 0, 0, 0 }); // empty SETTINGS
        var frame = new byte[9];
        await ssl.ReadExactlyAsync(frame);
        Assert.Equal(4, frame[3]); // the server's SETTINGS frame
        Assert.Equal(1, await TlsTestKit.WaitStatAsync(proxy, "http.ingress_http.downstream_cx_http2_total", 1));
    }

    [Fact]
    public async Task PlaintextRequestToTlsPort_Fails_AndCountsConnectionError()
    {
        var (backend, proxy) = await StartAsync(ServerContext());
        await using var ownedBackend = backend;
        await using var ownedProxy = proxy;
        using var plain = proxy.Client("main");

        await Assert.ThrowsAnyAsync<HttpRequestException>(() => plain.GetAsync("/"));

        Assert.InRange(await TlsTestKit.WaitStatAsync(proxy, Ssl(proxy, "connection_error"), 1), 1, 10);
        Assert.Equal(0, await proxy.StatAsync(Ssl(proxy, "handshake")));
    }

    [Fact]
    public async Task Mtls_RightCertificate_IsAccepted()
    {
        var (backend, proxy) = await StartAsync(MtlsContext());
        await using var ownedBackend = backend;
        await using var ownedProxy = proxy;
        var cert = TestPki.Issue(_ca, "client", uris: ["spiffe://cluster.local/ns/default/sa/frontend"], ip: false);
        using var client = TlsTestKit.Client(proxy, _ca, cert, http2: true);

        using var response = await client.GetAsync("/");

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal(1, await TlsTestKit.WaitStatAsync(proxy, Ssl(proxy, "handshake"), 1));
        Assert.Equal(0, await proxy.StatAsync(Ssl(proxy, "no_certificate")));
    }

    [Fact]
    public async Task Mtls_DnsSanMatcher_AcceptsTheOtherAlternative()
    {
        var (backend, proxy) = await StartAsync(MtlsContext());
        await using var ownedBackend = backend;
        await using var ownedProxy = proxy;
        using var client = TlsTestKit.Client(proxy, _ca, TestPki.Issue(_ca, "client", dns: ["client.example.com"], ip: false));

        using var response = await client.GetAsync("/");

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
    }

    public static TheoryData<string, string> RejectedClients => new()
    {
        { "none", "fail_verify_no_cert" },
        { "other-ca", "fail_verify_error" },
        { "expired", "fail_verify_error" },
        { "wrong-san", "fail_verify_san" },
    };

    [Theory]
    [MemberData(nameof(RejectedClients))]
    public async Task Mtls_BadClientCertificate_IsRefused(string kind, string stat)
    {
        var (backend, proxy) = await StartAsync(MtlsContext());
        await using var ownedBackend = backend;
        await using var ownedProxy = proxy;
        const string goodUri = "spiffe://cluster.local/ns/default/sa/frontend";
        X509Certificate2? cert = kind switch
        {
            "other-ca" => TestPki.Issue(_otherCa, "client", uris: [goodUri], ip: false),
            "expired" => TestPki.Issue(_ca, "client", uris: [goodUri], ip: false,
                notBefore: DateTimeOffset.UtcNow.AddDays(-30), notAfter: DateTimeOffset.UtcNow.AddDays(-1)),
            "wrong-san" => TestPki.Issue(_ca, "client", uris: ["spiffe://cluster.local/ns/other/sa/frontend"], dns: ["evil.example.com"], ip: false),
            _ => null,
        };
        using var client = TlsTestKit.Client(proxy, _ca, cert);

        await Assert.ThrowsAnyAsync<HttpRequestException>(() => client.GetAsync("/"));

        // The client's handler may retry a failed connection a few times; each attempt is refused and counted.
        Assert.InRange(await TlsTestKit.WaitStatAsync(proxy, Ssl(proxy, stat), 1), 1, 10);
        Assert.Equal(0, await proxy.StatAsync(Ssl(proxy, "handshake")));
        // Verification failures are not connection errors (Envoy's accounting).
        await Task.Delay(100);
        Assert.Equal(0, await proxy.StatAsync(Ssl(proxy, "connection_error")));
        Assert.Equal(0, await proxy.StatAsync("cluster.backend.upstream_rq_total"));
    }

    [Fact]
    public async Task TlsVersionPinnedTo13_RefusesTls12Client()
    {
        var (backend, proxy) = await StartAsync(ServerContext("""
              tls_params: { tls_minimum_protocol_version: TLSv1_3, tls_maximum_protocol_version: TLSv1_3 }
            """));
        await using var ownedBackend = backend;
        await using var ownedProxy = proxy;

        using var tcp = new TcpClient();
        await tcp.ConnectAsync(IPEndPoint.Parse(proxy.ListenerAddress("main")));
        await using var ssl = new SslStream(tcp.GetStream());
        await Assert.ThrowsAnyAsync<Exception>(() => ssl.AuthenticateAsClientAsync(new SslClientAuthenticationOptions
        {
            TargetHost = "proxy.example.com",
            EnabledSslProtocols = System.Security.Authentication.SslProtocols.Tls12,
            RemoteCertificateValidationCallback = (_, _, _, _) => true,
        }));

        using var client = TlsTestKit.Client(proxy, _ca);
        using var response = await client.GetAsync("/");
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
    }

    [Fact]
    public async Task CipherSuites_Tls12OnlyListener_NegotiatesAConfiguredSuite()
    {
        var (backend, proxy) = await StartAsync(ServerContext("""
              tls_params:
                tls_maximum_protocol_version: TLSv1_2
                cipher_suites: ["[ECDHE-RSA-AES256-GCM-SHA384|ECDHE-RSA-CHACHA20-POLY1305]"]
            """));
        await using var ownedBackend = backend;
        await using var ownedProxy = proxy;

        using var tcp = new TcpClient();
        await tcp.ConnectAsync(IPEndPoint.Parse(proxy.ListenerAddress("main")));
        await using var ssl = new SslStream(tcp.GetStream());
        await ssl.AuthenticateAsClientAsync(new SslClientAuthenticationOptions
        {
            TargetHost = "proxy.example.com",
            RemoteCertificateValidationCallback = (_, _, _, _) => true,
        });
        Assert.Equal(System.Security.Authentication.SslProtocols.Tls12, ssl.SslProtocol);
        Assert.Contains(ssl.NegotiatedCipherSuite, new[] { TlsCipherSuite.TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384, TlsCipherSuite.TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256 });
        await ssl.WriteAsync(Encoding.ASCII.GetBytes("GET / HTTP/1.1\r\nHost: x\r\n\r\n"));
        Assert.StartsWith("HTTP/1.1 200", await ReadResponseHeadAsync(ssl, CancellationToken.None));
    }
}
