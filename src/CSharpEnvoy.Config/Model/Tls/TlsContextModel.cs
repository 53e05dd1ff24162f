using System.Net;
using System.Net.Security;
using System.Security.Authentication;
using System.Security.Cryptography.X509Certificates;
using CSharpEnvoy.Config.Model.Matchers;

namespace CSharpEnvoy.Config.Model.Tls;

/// <summary>A certificate with its private key, and the rest of its configured chain (intermediates).</summary>
internal sealed record TlsCertificateModel(X509Certificate2 Certificate, X509Certificate2Collection Intermediates)
{
    /// <summary>Where it was read from, as /certs shows it: the file name, or "&lt;inline&gt;".</summary>
    public string Source { get; init; } = "<inline>";
}

internal enum SanType { Email = 1, Dns = 2, Uri = 3, IpAddress = 4 }

/// <summary>One entry of <c>match_typed_subject_alt_names</c>: a SAN of <see cref="Type"/> that the matcher accepts.</summary>
internal sealed record SanMatcherModel(SanType Type, StringMatcherModel Matcher)
{
    public bool Match(SanType type, string value)
    {
        if (type != Type) return false;
        // Envoy: an exact matcher on a DNS SAN follows DNS wildcard rules ("*.example.com" covers "a.example.com").
        if (type == SanType.Dns && Matcher.Kind == StringMatchKind.Exact) return DnsNameMatch(Matcher.Value, value);
        return Matcher.Match(value);
    }

    /// <summary>True when <paramref name="name"/> equals <paramref name="san"/>, or the SAN is a wildcard
    /// ("*.b.c") and the name has exactly one more label in its place.</summary>
    internal static bool DnsNameMatch(string name, string san)
    {
        if (string.Equals(name, san, StringComparison.OrdinalIgnoreCase)) return true;
        if (san.Length < 3 || san[0] != '*' || san[1] != '.') return false;
        var suffix = san.AsSpan(1); // ".b.c"
        if (name.Length <= suffix.Length) return false;
        var label = name.AsSpan(0, name.Length - suffix.Length);
        return label.IndexOf('.') < 0 && name.AsSpan(label.Length).Equals(suffix, StringComparison.OrdinalIgnoreCase);
    }
}

/// <summary>Envoy's <c>CertificateValidationContext</c>: the peer's chain must end at one of <see cref="TrustedCa"/>
/// (only those, never the system store), and when SAN matchers are given one of its SANs must match.</summary>
internal sealed record CertificateValidationModel
{
    /// <summary>Empty when no trusted_ca is configured: the chain is not verified.</summary>
    public required X509Certificate2Collection TrustedCa { get; init; }
    /// <summary>Where <see cref="TrustedCa"/> was read from (file name or "&lt;inline&gt;"), for /certs.</summary>
    public string TrustedCaSource { get; init; } = "<inline>";
    public IReadOnlyList<SanMatcherModel> SanMatchers { get; init; } = Array.Empty<SanMatcherModel>();
    public bool AllowExpired { get; init; }
    /// <summary>trust_chain_verification ACCEPT_UNTRUSTED: chain failures are counted but not fatal.</summary>
    public bool AcceptUntrusted { get; init; }
    /// <summary>verify_certificate_hash: lower-case hex SHA-256 digests of the leaf's DER.</summary>
    public IReadOnlyList<string> CertificateHashes { get; init; } = Array.Empty<string>();
    /// <summary>verify_certificate_spki: base64 SHA-256 digests of the leaf's SubjectPublicKeyInfo.</summary>
    public IReadOnlyList<string> SpkiHashes { get; init; } = Array.Empty<string>();
}

/// <summary>What <c>CommonTlsContext</c> configures, shared by both directions.</summary>
internal sealed record TlsContextModel
{
    public IReadOnlyList<TlsCertificateModel> Certificates { get; init; } = Array.Empty<TlsCertificateModel>();
    public CertificateValidationModel? Validation { get; init; }
    /// <summary>ALPN protocols to offer (upstream) or to accept, in server preference order (downstream).</summary>
    public IReadOnlyList<string> AlpnProtocols { get; init; } = Array.Empty<string>();
    public SslProtocols Protocols { get; init; }
    /// <summary>TLS 1.2 suites from cipher_suites (TLS 1.3 suites are always enabled, as with BoringSSL); null for the default.</summary>
    public IReadOnlyList<TlsCipherSuite>? CipherSuites { get; init; }
    /// <summary><c>tls_certificate_sds_secret_configs</c>: the certificate comes from this secret instead of <see cref="Certificates"/>.</summary>
    public SdsSecretConfigModel? CertificateSecret { get; init; }
    /// <summary><c>validation_context_sds_secret_config</c> (alone or in <c>combined_validation_context</c>): the
    /// validation context comes from this secret, merged over <see cref="DefaultValidation"/> when combined.</summary>
    public SdsSecretConfigModel? ValidationSecret { get; init; }
    /// <summary><c>combined_validation_context.default_validation_context</c>, kept as configured: Envoy merges the
    /// secret's context into it (singular fields of the secret win, lists are concatenated).</summary>
    public Envoy.Extensions.TransportSockets.Tls.V3.CertificateValidationContext? DefaultValidation { get; init; }

    /// <summary>True when a certificate or validation context comes from a secret.</summary>
    public bool UsesSecrets => CertificateSecret is not null || ValidationSecret is not null;
}

/// <summary>An <c>SdsSecretConfig</c>: a secret by name from <see cref="Source"/>, or with no source one of the
/// bootstrap's <c>static_resources.secrets</c>.</summary>
internal sealed record SdsSecretConfigModel(string Name, Xds.ConfigSourceModel? Source)
{
    /// <summary>Configs with the same key share one secret provider (and its subscription), as in Envoy.</summary>
    public string Key => (Source?.Key ?? "static") + "|" + Name;
}

/// <summary>A validated <c>Secret</c> resource: a certificate with its key, or a validation context.</summary>
internal sealed record SecretModel(string Name, TlsCertificateModel? Certificate, CertificateValidationModel? Validation)
{
    /// <summary>The resource as received, for merging into a default validation context and for /config_dump.</summary>
    public required Envoy.Extensions.TransportSockets.Tls.V3.Secret Source { get; init; }
}

/// <summary>A listener filter chain's <c>DownstreamTlsContext</c>.</summary>
internal sealed record DownstreamTlsModel(TlsContextModel Common, bool RequireClientCertificate);

/// <summary>A cluster's <c>UpstreamTlsContext</c>, with the cluster's auto_sni / auto_san_validation options.</summary>
internal sealed record UpstreamTlsModel(TlsContextModel Common)
{
    public string? Sni { get; init; }
    /// <summary>The cluster's <c>upstream_http_protocol_options.auto_sni</c>: SNI from the upstream request's host.</summary>
    public bool AutoSni { get; init; }
    /// <summary><c>auto_host_sni</c>: SNI from the endpoint's hostname.</summary>
    public bool AutoHostSni { get; init; }
    /// <summary>Verify the server certificate's SANs against the auto_sni name (auto_san_validation / auto_sni_san_validation).</summary>
    public bool AutoSanValidation { get; init; }
}

/// <summary>The SANs of a certificate, by type, in the string forms Envoy matches against.</summary>
internal static class SubjectAltNames
{
    public static List<(SanType Type, string Value)> Read(X509Certificate2 cert)
    {
        var result = new List<(SanType, string)>();
        foreach (var ext in cert.Extensions)
        {
            if (ext.Oid?.Value != "2.5.29.17") continue;
            try
            {
                var reader = new System.Formats.Asn1.AsnReader(ext.RawData, System.Formats.Asn1.AsnEncodingRules.DER);
                var seq = reader.ReadSequence();
                while (seq.HasData)
                {
                    var tag = seq.PeekTag();
                    if (tag.TagClass != System.Formats.Asn1.TagClass.ContextSpecific)
                    {
                        seq.ReadEncodedValue();
                        continue;
                    }
                    switch (tag.TagValue)
                    {
                        case 1:
                            result.Add((SanType.Email, seq.ReadCharacterString(System.Formats.Asn1.UniversalTagNumber.IA5String, tag)));
                            break;
                        case 2:
                            result.Add((SanType.Dns, seq.ReadCharacterString(System.Formats.Asn1.UniversalTagNumber.IA5String, tag)));
                            break;
                        case 6:
                            result.Add((SanType.Uri, seq.ReadCharacterString(System.Formats.Asn1.UniversalTagNumber.IA5String, tag)));
                            break;
                        case 7:
                            var bytes = seq.ReadOctetString(tag);
                            if (bytes.Length is 4 or 16) result.Add((SanType.IpAddress, new IPAddress(bytes).ToString()));
                            break;
                        default:
                            seq.ReadEncodedValue();
                            break;
                    }
                }
            }
            catch (System.Formats.Asn1.AsnContentException)
            {
                // A malformed SAN extension matches nothing.
            }
        }
        return result;
    }
}
