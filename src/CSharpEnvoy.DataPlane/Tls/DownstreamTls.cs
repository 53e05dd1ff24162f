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
    private readonly SslStreamCertificateContext _certificate;
    private readonly CipherSuitesPolicy? _ciphers;
    private readonly List<SslApplicationProtocol> _alpn;
    /// <summary>The URI SANs of the listener's own certificate (the <c>By=</c> of x-forwarded-client-cert).</summary>
    private readonly IReadOnlyList<string> _localUriSans;

    public DownstreamTls(DownstreamTlsModel model, StatsStore stats, string statPrefix)
    {
        _model = model;
        Stats = new SslStats(stats, statPrefix);
        var common = model.Common;
        var cert = common.Certificates[0];
        var validation = common.Validation;
        // Like Envoy, name the trusted CAs in the CertificateRequest so clients pick a matching certificate.
        SslCertificateTrust? trust = validation is { TrustedCa.Count: > 0 } && OperatingSystem.IsLinux()
            ? SslCertificateTrust.CreateForX509Collection(validation.TrustedCa, sendTrustInHandshake: true)
            : null;
        _certificate = SslStreamCertificateContext.Create(cert.Certificate, cert.Intermediates, offline: true, trust);
        _ciphers = CreateCipherPolicy(common.CipherSuites);
        var uris = new List<string>();
        foreach (var (type, value) in SubjectAltNames.Read(cert.Certificate)) if (type == SanType.Uri) uris.Add(value);
        _localUriSans = uris;
        _alpn = new List<SslApplicationProtocol>();
        foreach (var p in common.AlpnProtocols) _alpn.Add(p == "h2" ? SslApplicationProtocol.Http2 : SslApplicationProtocol.Http11);
    }

    public SslStats Stats { get; }

    /// <summary>Asks for a client certificate when one is required or can be verified (Envoy requests one whenever
    /// a validation context is configured).</summary>
    private bool RequestClientCertificate => _model.RequireClientCertificate || _model.Common.Validation is not null;

    /// <summary>The handshake settings for one connection (its chain was chosen before the handshake).</summary>
    public SslServerAuthenticationOptions CreateOptions(ConnectionContext connection)
    {
        var state = connection.Features.Get<TlsConnectionState>();
        var options = new SslServerAuthenticationOptions
        {
            ServerCertificateContext = _certificate,
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
                var ok = PeerVerifier.Verify(cert, chain, _model.Common.Validation, _model.RequireClientCertificate, null, Stats);
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
        if (context.Features.Get<TlsConnectionState>() is { } state) state.Established = true;
        var handshake = context.Features.Get<ITlsHandshakeFeature>();
        if (handshake is not null) Stats.HandshakeDone(handshake.Protocol);
        else Stats.Handshake.Inc();
        var peer = context.Features.Get<Microsoft.AspNetCore.Http.Features.ITlsConnectionFeature>()?.ClientCertificate;
        if (peer is null) Stats.NoCertificate.Inc();
        else context.Features.Set(new PeerCertificateInfo(peer, context.Features.Get<TlsConnectionState>()?.Presented ?? [], _localUriSans));
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
    }
}
