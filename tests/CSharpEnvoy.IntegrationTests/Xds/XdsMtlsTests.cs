using System.Security.Cryptography.X509Certificates;
using CSharpEnvoy.IntegrationTests.Infrastructure;
using CSharpEnvoy.IntegrationTests.Tls;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Server.Kestrel.Https;
using static CSharpEnvoy.IntegrationTests.Xds.AdsTests;
using static CSharpEnvoy.IntegrationTests.Xds.TestControlPlane;

namespace CSharpEnvoy.IntegrationTests.Xds;

/// <summary>ADS over mTLS: the xds cluster's UpstreamTlsContext presents a client certificate to a control plane that
/// requires one (Envoy Gateway's setup).</summary>
public sealed class XdsMtlsTests : IDisposable
{
    private readonly TestPki _pki = new();
    private readonly X509Certificate2 _ca = TestPki.CreateCa("xds test ca");

    public void Dispose() => _pki.Dispose();

    private async Task<TestControlPlane> StartTlsControlPlaneAsync()
    {
        var server = TestPki.Issue(_ca, "control-plane", dns: ["xds.test"]);
        var ca = _ca;
        return await TestControlPlane.StartAsync(lo => lo.UseHttps(server, o =>
        {
            o.ClientCertificateMode = ClientCertificateMode.RequireCertificate;
            o.ClientCertificateValidation = (cert, _, _) => cert.Issuer == ca.Subject;
        }));
    }

    private string TlsBootstrap(int port, bool withClientCert)
    {
        var (cert, key) = _pki.WritePair("client", TestPki.Issue(_ca, "csenvoy-client"));
        var caFile = _pki.Write("ca.pem", TestPki.CertPem(_ca));
        var clientCert = withClientCert ? $$"""tls_certificates: [{ certificate_chain: { filename: "{{cert}}" }, private_key: { filename: "{{key}}" } }],""" : "";
        return Bootstrap(port).Replace("""
                    explicit_http_config: { http2_protocol_options: {} }
            """, $$"""
                    explicit_http_config: { http2_protocol_options: {} }
                transport_socket:
                  name: envoy.transport_sockets.tls
                  typed_config:
                    "@type": type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext
                    sni: xds.test
                    common_tls_context: { {{clientCert}} alpn_protocols: [h2], validation_context: { trusted_ca: { filename: "{{caFile}}" }, match_typed_subject_alt_names: [{ san_type: DNS, matcher: { exact: xds.test } }] } }
            """);
    }

    [Fact]
    public async Task Ads_OverMutualTls_DrivesTraffic()
    {
        await using var a = await TestBackend.StartEchoAsync("a");
        await using var cp = await StartTlsControlPlaneAsync();
        cp.SetSnapshot("v1", Snapshot(a.Port));
        await using var proxy = await ProxyHarness.StartAsync(TlsBootstrap(cp.Port, withClientCert: true));
        await cp.WaitForAckAsync(ClusterType, "v1");
        using var client = await ListenerClientAsync(proxy, "ingress");
        Assert.Equal("a", await BackendOfAsync(client));
        Assert.Equal(1, await proxy.StatAsync("control_plane.connected_state"));
        Assert.True(await proxy.StatAsync("cluster.xds_cluster.ssl.handshake") >= 1);
    }

    [Fact]
    public async Task Ads_WithoutClientCertificate_IsRefused_AndNeverConnects()
    {
        await using var cp = await StartTlsControlPlaneAsync();
        cp.SetSnapshot("v1", Snapshot(1));
        var yaml = TlsBootstrap(cp.Port, withClientCert: false).Replace("cds_config: { ads: {}, resource_api_version: V3 }",
            "cds_config: { ads: {}, resource_api_version: V3, initial_fetch_timeout: 0.5s }").Replace("lds_config: { ads: {}, resource_api_version: V3 }",
            "lds_config: { ads: {}, resource_api_version: V3, initial_fetch_timeout: 0.5s }");
        await using var proxy = await ProxyHarness.StartAsync(yaml);
        Assert.Empty(cp.Received);
        Assert.Equal(0, await proxy.StatAsync("control_plane.connected_state"));
    }
}
