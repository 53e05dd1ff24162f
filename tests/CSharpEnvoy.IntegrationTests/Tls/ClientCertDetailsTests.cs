using System.Net;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using CSharpEnvoy.IntegrationTests.Infrastructure;
using static CSharpEnvoy.IntegrationTests.Http.HttpTestUtil;

namespace CSharpEnvoy.IntegrationTests.Tls;

/// <summary>
/// <c>forward_client_cert_details</c> and <c>set_current_client_cert_details</c>: the <c>x-forwarded-client-cert</c>
/// header the upstream sees, element by element in Envoy's format and order.
/// </summary>
public sealed class ClientCertDetailsTests : IDisposable
{
    private const string Incoming = "By=spiffe://upstream/proxy;Hash=00ff";
    private readonly TestPki _pki = new();
    private readonly X509Certificate2 _ca = TestPki.CreateCa("xfcc ca");
    private readonly X509Certificate2 _server;
    private readonly X509Certificate2 _client;

    public ClientCertDetailsTests()
    {
        _server = TestPki.Issue(_ca, "gateway", dns: ["gateway.example.com"], uris: ["spiffe://cluster.local/ns/b/sa/gateway"]);
        _client = TestPki.Issue(_ca, "\"client,one\"", dns: ["client.example.com", "alt.example.com"], uris: ["spiffe://cluster.local/ns/a/sa/sidecar"]);
    }

    public void Dispose() => _pki.Dispose();

    private async Task<(TestBackend, ProxyHarness)> StartAsync(string mode, string details)
    {
        var ca = _pki.Write("ca.pem", TestPki.CertPem(_ca));
        var context = $$"""
            common_tls_context:
            {{Yaml.Indent(TlsTestKit.CertificateYaml(_pki.WritePair("server", _server)), 2)}}
              validation_context: { trusted_ca: { filename: "{{ca}}" } }
            """;
        var backend = await TestBackend.StartEchoAsync();
        var hcm = $"forward_client_cert_details: {mode}\nset_current_client_cert_details: {details}";
        var proxy = await ProxyHarness.StartAsync(TlsTestKit.Bootstrap(TlsTestKit.DownstreamSocket(context), TlsTestKit.Cluster(backend.Address), hcmExtra: hcm));
        return (backend, proxy);
    }

    private string Hash => Convert.ToHexStringLower(SHA256.HashData(_client.RawData));

    private static string UrlPem(X509Certificate2 c) =>
        (c.ExportCertificatePem() + "\n").Replace("\n", "%0A").Replace(" ", "%20").Replace("+", "%2B").Replace("/", "%2F").Replace("=", "%3D");

    [Theory]
    [InlineData("SANITIZE", null)]
    [InlineData("FORWARD_ONLY", Incoming)]
    [InlineData("ALWAYS_FORWARD_ONLY", Incoming)]
    [InlineData("APPEND_FORWARD", Incoming + ",{0}")]
    [InlineData("SANITIZE_SET", "{0}")]
    public async Task Modes_WithAClientCertificate(string mode, string? expected)
    {
        var (backend, proxy) = await StartAsync(mode, "{ subject: true, uri: true, dns: true }");
        await using var ownedBackend = backend;
        await using var ownedProxy = proxy;
        using var client = TlsTestKit.Client(proxy, _ca, _client);

        using var response = await GetAsync(client, "/", null, ("x-forwarded-client-cert", Incoming));

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        var element = $"By=spiffe://cluster.local/ns/b/sa/gateway;Hash={Hash};Subject=\"CN=client\\,one\";URI=spiffe://cluster.local/ns/a/sa/sidecar;DNS=client.example.com;DNS=alt.example.com";
        Assert.Equal(expected is null ? null : string.Format(expected, element), Upstream(response, "x-forwarded-client-cert"));
    }

    [Fact]
    public async Task CertAndChain_AreUrlEncodedPem_BeforeSubject_AndUriKeyStaysWhenEmpty()
    {
        var (backend, proxy) = await StartAsync("SANITIZE_SET", "{ cert: true, chain: true, subject: true, uri: true }");
        await using var ownedBackend = backend;
        await using var ownedProxy = proxy;
        var noUri = TestPki.Issue(_ca, "plain client", dns: ["p.example.com"]);
        using var client = TlsTestKit.Client(proxy, _ca, noUri);

        using var response = await GetAsync(client, "/");

        var pem = UrlPem(noUri);
        Assert.StartsWith("-----BEGIN%20CERTIFICATE-----%0A", pem);
        Assert.Equal($"By=spiffe://cluster.local/ns/b/sa/gateway;Hash={Convert.ToHexStringLower(SHA256.HashData(noUri.RawData))};Cert=\"{pem}\";Chain=\"{pem}\";Subject=\"CN=plain client\";URI=",
            Upstream(response, "x-forwarded-client-cert"));
    }

    [Theory]
    [InlineData("FORWARD_ONLY", null)]
    [InlineData("APPEND_FORWARD", null)]
    [InlineData("ALWAYS_FORWARD_ONLY", Incoming)]
    public async Task WithoutAClientCertificate_OnlyAlwaysForwardOnlyKeepsTheHeader(string mode, string? expected)
    {
        var (backend, proxy) = await StartAsync(mode, "{ subject: true }");
        await using var ownedBackend = backend;
        await using var ownedProxy = proxy;
        using var client = TlsTestKit.Client(proxy, _ca);

        using var response = await GetAsync(client, "/", null, ("x-forwarded-client-cert", Incoming));

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal(expected, Upstream(response, "x-forwarded-client-cert"));
    }
}
