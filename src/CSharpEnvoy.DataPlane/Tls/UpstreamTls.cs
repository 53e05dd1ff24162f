using System.Net;
using System.Net.Security;
using System.Security.Authentication;
using System.Security.Cryptography.X509Certificates;
using CSharpEnvoy.Config.Model.Tls;

namespace CSharpEnvoy.DataPlane.Tls;

/// <summary>
/// TLS origination for a cluster. The handshake runs in the cluster's connect callback (SocketsHttpHandler uses an
/// SslStream the callback returns as is), because the handler alone would always send the Host header as SNI: here
/// the SNI is Envoy's: the <c>sni</c> of the context, the request's host with <c>auto_sni</c>, the endpoint's
/// hostname with <c>auto_host_sni</c>, or none. ALPN follows the cluster's HTTP protocol; the server certificate is
/// checked only when a validation context (or auto SAN validation) is configured, as in Envoy.
/// </summary>
internal sealed class UpstreamTls
{
    private readonly UpstreamTlsModel _model;
    private readonly SslStats _stats;
    private readonly TlsContextSecrets<Material> _material;
    private readonly CipherSuitesPolicy? _ciphers;

    /// <summary>One version of the client certificate and of the validation context.</summary>
    private sealed record Material(SslStreamCertificateContext? ClientCertificate, CertificateValidationModel? Validation);

    /// <param name="factoryPrefix">Envoy's <c>cluster.&lt;name&gt;.client_ssl_socket_factory.</c>, for the SDS stats.</param>
    public UpstreamTls(UpstreamTlsModel model, SslStats stats, SecretManager? secrets = null, Stats.StatsStore? store = null, string factoryPrefix = "")
    {
        _model = model;
        _stats = stats;
        if (model.Common.UsesSecrets && store is null) throw new ArgumentException("SDS secrets need the stats store", nameof(store));
        _material = new TlsContextSecrets<Material>(model.Common, secrets, store!, factoryPrefix, "upstream_context_secrets_not_ready", static (c, v) =>
            new Material(c is null ? null : SslStreamCertificateContext.Create(c.Certificate, c.Intermediates, offline: true), v));
        _ciphers = DownstreamTls.CreateCipherPolicy(model.Common.CipherSuites);
    }

    /// <summary>Envoy's SNI choice for a new connection: auto_sni (the request's host) over auto_host_sni (the
    /// endpoint's hostname) over the configured sni; null sends none.</summary>
    public string? ServerName(HttpRequestMessage? request, string? endpointHostname)
    {
        if (_model.AutoSni && request is not null)
        {
            var host = request.Headers.Host ?? request.RequestUri?.Authority;
            if (!string.IsNullOrEmpty(host)) return StripPort(host);
        }
        if (_model.AutoHostSni && !string.IsNullOrEmpty(endpointHostname) && !IPAddress.TryParse(endpointHostname, out _)) return endpointHostname;
        return _model.Sni;
    }

    /// <summary>Runs the client handshake over <paramref name="transport"/>; throws (AuthenticationException) when it fails.</summary>
    public async ValueTask<SslStream> AuthenticateAsync(Stream transport, string? serverName, bool http2, bool http11, CancellationToken ct)
    {
        var options = ClientOptions(serverName, http2, http11);
        var ssl = new SslStream(transport, leaveInnerStreamOpen: false);
        try
        {
            await ssl.AuthenticateAsClientAsync(options, ct).ConfigureAwait(false);
            return ssl;
        }
        catch
        {
            await ssl.DisposeAsync().ConfigureAwait(false);
            throw;
        }
    }

    /// <summary>The client options of a handshake: SNI, ALPN, client certificate and Envoy's server certificate checks.
    /// Throws while an SDS secret of the context has not arrived (Envoy resets the connection).</summary>
    public SslClientAuthenticationOptions ClientOptions(string? serverName, bool http2, bool http11)
    {
        if (!_material.TryCurrent(out var material)) throw new AuthenticationException("the cluster's TLS secrets have not arrived yet");
        var alpn = new List<SslApplicationProtocol>(2);
        if (http2) alpn.Add(SslApplicationProtocol.Http2);
        if (http11) alpn.Add(SslApplicationProtocol.Http11);
        // Auto SAN validation checks the certificate against the SNI sent (skipped when none is).
        var sanHost = _model.AutoSanValidation ? serverName : null;
        var validation = material.Validation;
        var options = new SslClientAuthenticationOptions
        {
            TargetHost = serverName ?? "",
            EnabledSslProtocols = _model.Common.Protocols,
            CertificateRevocationCheckMode = X509RevocationMode.NoCheck,
            AllowRenegotiation = false,
            ApplicationProtocols = alpn,
            ClientCertificateContext = material.ClientCertificate,
            RemoteCertificateValidationCallback = (_, cert, chain, _) =>
            {
                var ok = PeerVerifier.Verify(cert, chain, validation, requireCertificate: validation is not null || sanHost is not null, sanHost, _stats);
                // The server's certificate is the last step the client checks: accepting it completes the handshake.
                if (ok) _stats.Handshake.Inc();
                return ok;
            },
        };
        if (_ciphers is not null) options.CipherSuitesPolicy = _ciphers;
        return options;
    }

    private static string StripPort(string host)
    {
        if (host.StartsWith('['))
        {
            var end = host.IndexOf(']');
            return end > 0 ? host[1..end] : host;
        }
        var colon = host.LastIndexOf(':');
        return colon > 0 && host.IndexOf(':') == colon ? host[..colon] : host;
    }
}
