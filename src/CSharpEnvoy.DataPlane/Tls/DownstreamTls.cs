using System.Net.Security;
using System.Security.Cryptography.X509Certificates;
using CSharpEnvoy.Config.Model.Tls;
using CSharpEnvoy.DataPlane.Stats;
using Microsoft.AspNetCore.Connections;
using Microsoft.AspNetCore.Connections.Features;
using Microsoft.AspNetCore.Server.Kestrel.Https;

namespace CSharpEnvoy.DataPlane.Tls;

/// <summary>
/// TLS termination for one listener (its filter chain's DownstreamTlsContext) on Kestrel's HTTPS middleware: the
/// server certificate, versions, ciphers and ALPN come from the config, and client certificates are verified by
/// <see cref="PeerVerifier"/> against trusted_ca only. A failed handshake closes that connection and counts a stat.
/// </summary>
internal sealed class DownstreamTls
{
    private readonly DownstreamTlsModel _model;
    private readonly TlsContextSecrets<Material> _material;
    private readonly CipherSuitesPolicy? _ciphers;
    private readonly List<SslApplicationProtocol> _alpn;

    /// <summary>What one version of the context's certificate and validation context gives a handshake.</summary>
    /// <param name="LocalUriSans">The URI SANs of the listener's own certificate (the <c>By=</c> of x-forwarded-client-cert).</param>
    private sealed record Material(SslStreamCertificateContext? Certificate, CertificateValidationModel? Validation, IReadOnlyList<string> LocalUriSans);

    /// <param name="statPrefix">The listener's stat prefix (<c>listener.&lt;addr&gt;.</c>).</param>
    public DownstreamTls(DownstreamTlsModel model, StatsStore stats, string statPrefix, SecretManager? secrets = null)
    {
        _model = model;
        Stats = new SslStats(stats, statPrefix + "ssl.");
        var common = model.Common;
        _material = new TlsContextSecrets<Material>(common, secrets, stats, statPrefix + "server_ssl_socket_factory.",
            "downstream_context_secrets_not_ready", CreateMaterial);
        _ciphers = CreateCipherPolicy(common.CipherSuites);
        _alpn = new List<SslApplicationProtocol>();
        foreach (var p in common.AlpnProtocols) _alpn.Add(p == "h2" ? SslApplicationProtocol.Http2 : SslApplicationProtocol.Http11);
    }

    private static Material CreateMaterial(TlsCertificateModel? cert, CertificateValidationModel? validation)
    {
        if (cert is null) return new Material(null, validation, Array.Empty<string>());
        // Like Envoy, name the trusted CAs in the CertificateRequest so clients pick a matching certificate.
        SslCertificateTrust? trust = validation is { TrustedCa.Count: > 0 } && OperatingSystem.IsLinux()
            ? SslCertificateTrust.CreateForX509Collection(validation.TrustedCa, sendTrustInHandshake: true)
            : null;
        var context = SslStreamCertificateContext.Create(cert.Certificate, cert.Intermediates, offline: true, trust);
        var uris = new List<string>();
        foreach (var (type, value) in SubjectAltNames.Read(cert.Certificate)) if (type == SanType.Uri) uris.Add(value);
        return new Material(context, validation, uris);
    }

    public SslStats Stats { get; }

    /// <summary>Asks for a client certificate when one is required or can be verified (Envoy requests one whenever
    /// a validation context is configured).</summary>
    private bool RequestClientCertificate => _model.RequireClientCertificate || _model.Common.Validation is not null || _model.Common.ValidationSecret is not null;

    /// <summary>The handshake settings for one connection (its chain was chosen before the handshake). Throws, which
    /// resets the connection, while an SDS secret of the context has not arrived.</summary>
    public SslServerAuthenticationOptions CreateOptions(ConnectionContext connection)
    {
        var state = connection.Features.Get<TlsConnectionState>();
        if (!_material.TryCurrent(out var material)) throw new InvalidOperationException("the listener's TLS secrets have not arrived yet");
        if (state is not null) state.LocalUriSans = material.LocalUriSans;
        var validation = material.Validation;
        var options = new SslServerAuthenticationOptions
        {
            ServerCertificateContext = material.Certificate,
            EnabledSslProtocols = _model.Common.Protocols,
            // An empty list (not null) keeps Kestrel from adding its own ALPN: no alpn_protocols means no ALPN in Envoy.
            ApplicationProtocols = _alpn,
            ClientCertificateRequired = RequestClientCertificate,
            CertificateRevocationCheckMode = X509RevocationMode.NoCheck,
            AllowRenegotiation = false,
        };
        if (_ciphers is not null) options.CipherSuitesPolicy = _ciphers;
        if (RequestClientCertificate)
        {
            options.RemoteCertificateValidationCallback = (_, cert, chain, _) =>
            {
                var ok = PeerVerifier.Verify(cert, chain, validation, _model.RequireClientCertificate, null, Stats);
                if (!ok && state is not null) state.VerifyFailed = true;
                if (ok && state is not null && chain is not null) state.Presented = Presented(cert, chain);
                return ok;
            };
        }
        return options;
    }

    /// <summary>Runs the rest of the connection (handshake included) and counts a failed handshake that was not
    /// already counted as a verification failure as <c>ssl.connection_error</c>, as Envoy does.</summary>
    public async Task RunAsync(ConnectionContext context, ConnectionDelegate next)
    {
        var state = new TlsConnectionState();
        context.Features.Set(state);
        try
        {
            await next(context).ConfigureAwait(false);
        }
        finally
        {
            if (!state.Established && !state.VerifyFailed) Stats.ConnectionError.Inc();
        }
    }

    /// <summary>Called once the handshake is done, before HTTP starts.</summary>
    public void OnEstablished(ConnectionContext context)
    {
        var state = context.Features.Get<TlsConnectionState>();
        if (state is not null) state.Established = true;
        var handshake = context.Features.Get<ITlsHandshakeFeature>();
        if (handshake is not null) Stats.HandshakeDone(handshake.Protocol);
        else Stats.Handshake.Inc();
        var peer = context.Features.Get<Microsoft.AspNetCore.Http.Features.ITlsConnectionFeature>()?.ClientCertificate;
        if (peer is null) Stats.NoCertificate.Inc();
        else context.Features.Set(new PeerCertificateInfo(peer, state?.Presented ?? [], state?.LocalUriSans ?? Array.Empty<string>()));
    }

    /// <summary>The certificates the peer sent besides its leaf (SslStream puts them in the chain's extra store).</summary>
    private static X509Certificate2Collection Presented(X509Certificate? leaf, X509Chain chain)
    {
        var result = new X509Certificate2Collection();
        foreach (var c in chain.ChainPolicy.ExtraStore)
            if (leaf is null || !c.RawDataMemory.Span.SequenceEqual(leaf.GetRawCertData())) result.Add(c);
        return result;
    }

    internal static CipherSuitesPolicy? CreateCipherPolicy(IReadOnlyList<TlsCipherSuite>? suites)
    {
        if (suites is null) return null;
        // BoringSSL keeps its TLS 1.3 suites whatever cipher_suites says; OpenSSL would drop TLS 1.3 without them.
        var all = new List<TlsCipherSuite>
        {
            TlsCipherSuite.TLS_AES_128_GCM_SHA256, TlsCipherSuite.TLS_AES_256_GCM_SHA384, TlsCipherSuite.TLS_CHACHA20_POLY1305_SHA256,
        };
        all.AddRange(suites);
#pragma warning disable CA1416 // the translator refuses cipher_suites where CipherSuitesPolicy is unsupported
        return new CipherSuitesPolicy(all);
#pragma warning restore CA1416
    }

    /// <summary>Per-connection handshake outcome, shared by the outer middleware and the verification callback.</summary>
    private sealed class TlsConnectionState
    {
        public bool Established { get; set; }
        public bool VerifyFailed { get; set; }
        public X509Certificate2Collection? Presented { get; set; }
        /// <summary>The URI SANs of the certificate this handshake served.</summary>
        public IReadOnlyList<string>? LocalUriSans { get; set; }
    }
}
