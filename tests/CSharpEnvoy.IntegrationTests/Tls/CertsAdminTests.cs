using System.Text.Json;
using CSharpEnvoy.IntegrationTests.Infrastructure;

namespace CSharpEnvoy.IntegrationTests.Tls;

/// <summary>Admin /certs: every TLS context's certificates and trusted CAs in Envoy's layout.</summary>
public sealed class CertsAdminTests : IDisposable
{
    private readonly TestPki _pki = new();

    public void Dispose() => _pki.Dispose();

    [Fact]
    public async Task Certs_ListsListenerAndClusterCertificates_WithPathSerialSansAndExpiry()
    {
        var ca = TestPki.CreateCa("certs ca");
        var serverCert = TestPki.Issue(ca, "proxy", dns: ["proxy.example.com"], uris: ["spiffe://mesh.example/proxy"],
            notAfter: DateTimeOffset.UtcNow.AddDays(30).AddHours(1));
        var server = _pki.WritePair("server", serverCert);
        var caPath = _pki.Write("ca.pem", TestPki.CertPem(ca));
        var clientCert = TestPki.Issue(ca, "client", dns: ["client.example.com"], ip: false);
        var listenerTls = TlsTestKit.DownstreamSocket($"""
            common_tls_context:
            {Yaml.Indent(TlsTestKit.CertificateYaml(server), 2)}
            """);
        // The cluster's context: an inline client certificate and the CA from a file.
        var clusterTls = TlsTestKit.UpstreamSocket($$"""
            common_tls_context:
              tls_certificates:
              - certificate_chain: { inline_string: "{{TestPki.CertPem(clientCert).ReplaceLineEndings("\\n")}}" }
                private_key: { inline_string: "{{TestPki.KeyPem(clientCert).ReplaceLineEndings("\\n")}}" }
              validation_context:
                trusted_ca: { filename: "{{caPath}}" }
            """);
        await using var proxy = await ProxyHarness.StartAsync(TlsTestKit.Bootstrap(listenerTls, TlsTestKit.Cluster("127.0.0.1:1", clusterTls)));

        using var admin = proxy.AdminClient();
        using var doc = JsonDocument.Parse(await admin.GetStringAsync("/certs"));
        var certs = doc.RootElement.GetProperty("certificates");
        Assert.Equal(2, certs.GetArrayLength());

        // The listener's chain: its certificate from the file, no CA.
        var listener = certs[0];
        Assert.Equal(0, listener.GetProperty("ca_cert").GetArrayLength());
        var leaf = Assert.Single(listener.GetProperty("cert_chain").EnumerateArray());
        Assert.Equal(server.Cert, leaf.GetProperty("path").GetString());
        Assert.Equal(serverCert.SerialNumber.ToLowerInvariant(), leaf.GetProperty("serial_number").GetString());
        Assert.Equal("30", leaf.GetProperty("days_until_expiration").GetString());
        var sans = leaf.GetProperty("subject_alt_names").EnumerateArray().Select(s => s.EnumerateObject().Single()).Select(p => p.Name + "=" + p.Value.GetString()).ToList();
        Assert.Equal(["dns=proxy.example.com", "uri=spiffe://mesh.example/proxy", "ip_address=127.0.0.1"], sans);
        Assert.StartsWith(serverCert.NotAfter.ToUniversalTime().ToString("yyyy-MM-ddTHH:mm:ss"), leaf.GetProperty("expiration_time").GetString());

        // The cluster's context: the inline client certificate and the CA from its file.
        var cluster = certs[1];
        var clientEntry = Assert.Single(cluster.GetProperty("cert_chain").EnumerateArray());
        Assert.Equal("<inline>", clientEntry.GetProperty("path").GetString());
        Assert.Equal(clientCert.SerialNumber.ToLowerInvariant(), clientEntry.GetProperty("serial_number").GetString());
        var caEntry = Assert.Single(cluster.GetProperty("ca_cert").EnumerateArray());
        Assert.Equal(caPath, caEntry.GetProperty("path").GetString());
        Assert.Equal(ca.SerialNumber.ToLowerInvariant(), caEntry.GetProperty("serial_number").GetString());
    }
}
