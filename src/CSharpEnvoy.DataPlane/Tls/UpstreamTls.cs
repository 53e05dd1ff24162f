using System.Net.Security;
using System.Security.Cryptography.X509Certificates;
using CSharpEnvoy.Config.Model.Tls;

namespace CSharpEnvoy.DataPlane.Tls;

/// <summary>
/// TLS origination for a cluster: the client options its SocketsHttpHandler uses for every connection. The handler
/// does the handshake itself (so HTTP/2 is negotiated by ALPN and requests carry :scheme https); the server
/// certificate is checked only when a validation context is configured, as in Envoy.
/// </summary>
internal static class UpstreamTls
{
    public static SslClientAuthenticationOptions CreateOptions(UpstreamTlsModel model, SslStats stats)
    {
        var common = model.Common;
        var options = new SslClientAuthenticationOptions
        {
            EnabledSslProtocols = common.Protocols,
            CertificateRevocationCheckMode = X509RevocationMode.NoCheck,
            AllowRenegotiation = false,
        };
        if (DownstreamTls.CreateCipherPolicy(common.CipherSuites) is { } ciphers) options.CipherSuitesPolicy = ciphers;
        if (common.Certificates.Count > 0)
        {
            var c = common.Certificates[0];
            options.ClientCertificateContext = SslStreamCertificateContext.Create(c.Certificate, c.Intermediates, offline: true);
        }
        var validation = common.Validation;
        var autoSan = model.AutoSanValidation;
        options.RemoteCertificateValidationCallback = (sender, cert, chain, _) =>
        {
            var host = autoSan && sender is SslStream s && !string.IsNullOrEmpty(s.TargetHostName) ? s.TargetHostName : null;
            var ok = PeerVerifier.Verify(cert, chain, validation, requireCertificate: validation is not null || host is not null, host, stats);
            // The server's certificate is the last step the client checks: accepting it completes the handshake.
            if (ok) stats.Handshake.Inc();
            return ok;
        };
        return options;
    }
}
