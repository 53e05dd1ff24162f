using System.Security.Cryptography.X509Certificates;
using CSharpEnvoy.IntegrationTests.Infrastructure;

namespace CSharpEnvoy.IntegrationTests.Tls;

/// <summary>Bad TLS configuration fails the load with the field's path, never at the first handshake.</summary>
public sealed class TlsConfigTests : IDisposable
{
    private const string Ctx = "static_resources.listeners[0].filter_chains[0].transport_socket.typed_config";
    private readonly TestPki _pki = new();
    private readonly X509Certificate2 _ca = TestPki.CreateCa("config ca");

    public void Dispose() => _pki.Dispose();

    private static string[] Errors(string downstreamContext)
    {
        var errors = ProxyHarness.Validate(TlsTestKit.Bootstrap(TlsTestKit.DownstreamSocket(downstreamContext), TlsTestKit.Cluster("127.0.0.1:1")));
        return errors.Errors.Select(e => e.ToString()).ToArray();
    }

    private static string Certs(string chain, string key) => $$"""
        common_tls_context:
          tls_certificates:
          - certificate_chain: {{chain}}
            private_key: {{key}}
        """;

    [Fact]
    public void ValidContext_Loads()
    {
        var (cert, key) = _pki.WritePair("ok", TestPki.Issue(_ca, "ok"));
        Assert.Empty(Errors(Certs($"{{ filename: \"{cert}\" }}", $"{{ filename: \"{key}\" }}")));
    }

    [Fact]
    public void MissingCertificateFile_NamesTheField()
    {
        var (_, key) = _pki.WritePair("ok", TestPki.Issue(_ca, "ok"));
        var error = Assert.Single(Errors(Certs("{ filename: \"/nonexistent/cert.pem\" }", $"{{ filename: \"{key}\" }}")));
        Assert.StartsWith(Ctx + ".common_tls_context.tls_certificates[0].certificate_chain.filename: cannot read '/nonexistent/cert.pem'", error);
    }

    [Fact]
    public void GarbagePem_NamesTheField()
    {
        var (_, key) = _pki.WritePair("ok", TestPki.Issue(_ca, "ok"));
        var error = Assert.Single(Errors(Certs("{ inline_string: \"not a certificate\" }", $"{{ filename: \"{key}\" }}")));
        Assert.Equal(Ctx + ".common_tls_context.tls_certificates[0].certificate_chain: no PEM certificate (-----BEGIN CERTIFICATE-----) found", error);
    }

    [Fact]
    public void GarbageKey_NamesTheField()
    {
        var (cert, _) = _pki.WritePair("ok", TestPki.Issue(_ca, "ok"));
        var error = Assert.Single(Errors(Certs($"{{ filename: \"{cert}\" }}", "{ inline_string: \"garbage\" }")));
        Assert.StartsWith(Ctx + ".common_tls_context.tls_certificates[0].private_key: cannot read a private key", error);
    }

    [Fact]
    public void KeyOfAnotherCertificate_IsRefused()
    {
        var (cert, _) = _pki.WritePair("a", TestPki.Issue(_ca, "a"));
        var (_, otherKey) = _pki.WritePair("b", TestPki.Issue(_ca, "b"));
        var error = Assert.Single(Errors(Certs($"{{ filename: \"{cert}\" }}", $"{{ filename: \"{otherKey}\" }}")));
        Assert.Equal(Ctx + ".common_tls_context.tls_certificates[0].private_key: the private key does not match the certificate in certificate_chain", error);
    }

    [Fact]
    public void NoCertificate_IsRefused()
    {
        var error = Assert.Single(Errors("common_tls_context: { alpn_protocols: [h2] }"));
        Assert.Equal(Ctx + ".common_tls_context.tls_certificates: a TLS listener needs a certificate (tls_certificates or tls_certificate_sds_secret_configs)", error);
    }

    public static TheoryData<string, string> Refused => new()
    {
        { "tls_params: { tls_minimum_protocol_version: TLSv1_0 }",
            ".common_tls_context.tls_params.tls_minimum_protocol_version: TLSv1_0 is not supported; csenvoy speaks TLSv1_2 and TLSv1_3" },
        { "tls_params: { ecdh_curves: [P-384] }",
            ".common_tls_context.tls_params.ecdh_curves: .NET's TLS stack cannot restrict ECDH curves; only Envoy's default list (X25519, P-256) is accepted" },
        { "tls_params: { cipher_suites: [NOT-A-CIPHER] }",
            ".common_tls_context.tls_params.cipher_suites[0]: cipher suite 'NOT-A-CIPHER' is not supported" },
        { "tls_params: { signature_algorithms: [rsa_pss_rsae_sha256] }",
            ".common_tls_context.tls_params.signature_algorithms: field 'signature_algorithms' of envoy.extensions.transport_sockets.tls.v3.TlsParameters is not supported by csenvoy" },
        { "alpn_protocols: [h3]", ".common_tls_context.alpn_protocols[0]: ALPN protocol 'h3' is not supported (h2 and http/1.1 are)" },
        { "validation_context: { match_typed_subject_alt_names: [{ san_type: DNS, matcher: { exact: a } }] }",
            ".common_tls_context.validation_context: SAN-based verification of peer certificates without trusted CA is insecure and not allowed" },
    };

    [Theory]
    [MemberData(nameof(Refused))]
    public void UnsupportedSettings_AreRefused(string commonExtra, string expected)
    {
        var (cert, key) = _pki.WritePair("ok", TestPki.Issue(_ca, "ok"));
        var ctx = Certs($"{{ filename: \"{cert}\" }}", $"{{ filename: \"{key}\" }}") + "\n  " + commonExtra;
        var error = Assert.Single(Errors(ctx));
        Assert.StartsWith(Ctx + expected, error);
    }

    [Theory]
    [InlineData("ocsp_staple_policy: MUST_STAPLE", ".ocsp_staple_policy: ocsp_staple_policy MUST_STAPLE is not supported")]
    [InlineData("disable_stateless_session_resumption: true", ".disable_stateless_session_resumption: field 'disable_stateless_session_resumption' of envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext is not supported")]
    [InlineData("require_sni: true", ".require_sni: field 'require_sni' of envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext is not supported")]
    public void UnsupportedDownstreamSettings_AreRefused(string extra, string expected)
    {
        var (cert, key) = _pki.WritePair("ok", TestPki.Issue(_ca, "ok"));
        var error = Assert.Single(Errors(extra + "\n" + Certs($"{{ filename: \"{cert}\" }}", $"{{ filename: \"{key}\" }}")));
        Assert.StartsWith(Ctx + expected, error);
    }

    [Fact]
    public void UpstreamSni_LoadsWithoutWarning_AndAutoSanValidationWithoutAutoSniWarns()
    {
        var errors = ProxyHarness.Validate(TlsTestKit.Bootstrap("", TlsTestKit.Cluster("127.0.0.1:1", TlsTestKit.UpstreamSocket("sni: api.example.com"))));
        Assert.False(errors.HasErrors, errors.ToString());
        Assert.Empty(errors.Warnings);

        errors = ProxyHarness.Validate(TlsTestKit.Bootstrap("", TlsTestKit.Cluster("127.0.0.1:1", TlsTestKit.UpstreamSocket("sni: api.example.com") + """

            typed_extension_protocol_options:
              envoy.extensions.upstreams.http.v3.HttpProtocolOptions:
                "@type": type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions
                upstream_http_protocol_options: { auto_san_validation: true }
                explicit_http_config: { http_protocol_options: {} }
            """)));
        Assert.False(errors.HasErrors, errors.ToString());
        Assert.Contains(errors.Warnings, w => w.Message.Contains("auto_san_validation has no effect without auto_sni"));
    }

    [Fact]
    public void WrongContextType_IsRefused()
    {
        var errors = ProxyHarness.Validate(TlsTestKit.Bootstrap("", TlsTestKit.Cluster("127.0.0.1:1", """
            transport_socket:
              name: envoy.transport_sockets.tls
              typed_config:
                "@type": type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext
            """)));
        Assert.Equal(
            "static_resources.clusters[0].transport_socket: transport socket type 'type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext' does not fit here; use UpstreamTlsContext",
            Assert.Single(errors.Errors).ToString());
    }
}
