using CSharpEnvoy.Config.Loading;
using CSharpEnvoy.Config.Model.Tls;
using CSharpEnvoy.DataPlane.Stats;

namespace CSharpEnvoy.DataPlane.Tls;

/// <summary>
/// The certificate and validation context of one TLS context as a handshake uses them (<typeparamref name="T"/>, built
/// once per version): fixed for a context configured inline, rebuilt when one of its SDS secrets rotates. A handshake
/// compares two references to notice a rotation, so connections already open keep what they negotiated and the next
/// handshake takes the new version (Envoy's ssl_context_update_by_sds).
/// </summary>
internal sealed class TlsContextSecrets<T> where T : class
{
    private readonly TlsContextModel _context;
    private readonly SdsSecretProvider? _certificate;
    private readonly SdsSecretProvider? _validation;
    private readonly Func<TlsCertificateModel?, CertificateValidationModel?, T> _build;
    private readonly Counter? _updatedBySds;
    private readonly Counter? _notReady;
    private volatile State _state;

    private sealed record State(SecretSnapshot? Certificate, SecretSnapshot? Validation, T Value, bool Ready);

    /// <param name="factoryPrefix">Envoy's <c>listener.&lt;addr&gt;.server_ssl_socket_factory.</c> or
    /// <c>cluster.&lt;name&gt;.client_ssl_socket_factory.</c>, for the SDS stats.</param>
    /// <param name="notReadyStat">The counter of handshakes refused while a secret has not arrived:
    /// <c>downstream_context_secrets_not_ready</c> or <c>upstream_context_secrets_not_ready</c>.</param>
    public TlsContextSecrets(TlsContextModel context, SecretManager? secrets, StatsStore stats, string factoryPrefix, string notReadyStat,
        Func<TlsCertificateModel?, CertificateValidationModel?, T> build)
    {
        _context = context;
        _build = build;
        if (context.UsesSecrets)
        {
            if (secrets is null) throw new InvalidOperationException("a TLS context with SDS secrets needs the secret manager");
            if (context.CertificateSecret is { } c) _certificate = secrets.Provider(c);
            if (context.ValidationSecret is { } v) _validation = secrets.Provider(v);
            _updatedBySds = stats.Counter(factoryPrefix, "ssl_context_update_by_sds");
            _notReady = stats.Counter(factoryPrefix, notReadyStat);
        }
        _state = Build(_certificate?.Current, _validation?.Current, null);
    }

    /// <summary>The material for a new handshake; false (counted in <c>*_context_secrets_not_ready</c>) while a
    /// secret has not arrived, and Envoy resets the connection.</summary>
    public bool TryCurrent(out T material)
    {
        var s = _state;
        if (_certificate is not null || _validation is not null)
        {
            var c = _certificate?.Current;
            var v = _validation?.Current;
            if (!ReferenceEquals(c, s.Certificate) || !ReferenceEquals(v, s.Validation))
            {
                // Two handshakes may both rebuild after a rotation; either result is the same version.
                var next = Build(c, v, s);
                _state = next;
                if (!ReferenceEquals(next.Value, s.Value)) _updatedBySds?.Inc();
                s = next;
            }
        }
        material = s.Value;
        if (!s.Ready) _notReady?.Inc();
        return s.Ready;
    }

    private State Build(SecretSnapshot? certificate, SecretSnapshot? validation, State? previous)
    {
        var errors = new ConfigErrors();
        var (cert, v) = SecretManager.Resolve(_context, certificate, validation, errors);
        // A merged validation context that does not hold (e.g. SAN matchers and still no CA) keeps the previous one.
        if (errors.HasErrors && previous is not null) return previous with { Certificate = certificate, Validation = validation };
        var ready = (_context.CertificateSecret is null || cert is not null) && (_context.ValidationSecret is null || v is not null) && !errors.HasErrors;
        return new State(certificate, validation, _build(cert, v), ready);
    }
}
