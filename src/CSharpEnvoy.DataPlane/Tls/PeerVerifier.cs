using System.Security.Authentication;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using CSharpEnvoy.Config.Model.Tls;
using CSharpEnvoy.DataPlane.Stats;

namespace CSharpEnvoy.DataPlane.Tls;

/// <summary>Envoy's SSL stats under a scope (<c>listener.&lt;addr&gt;.ssl.</c> or <c>cluster.&lt;name&gt;.ssl.</c>).</summary>
internal sealed class SslStats
{
    private readonly StatsStore _store;
    private readonly string _prefix;

    public SslStats(StatsStore store, string prefix)
    {
        _store = store;
        _prefix = prefix;
        Handshake = store.Counter(prefix, "handshake");
        ConnectionError = store.Counter(prefix, "connection_error");
        NoCertificate = store.Counter(prefix, "no_certificate");
        FailVerifyNoCert = store.Counter(prefix, "fail_verify_no_cert");
        FailVerifyError = store.Counter(prefix, "fail_verify_error");
        FailVerifySan = store.Counter(prefix, "fail_verify_san");
        FailVerifyCertHash = store.Counter(prefix, "fail_verify_cert_hash");
    }

    public Counter Handshake { get; }
    public Counter ConnectionError { get; }
    public Counter NoCertificate { get; }
    public Counter FailVerifyNoCert { get; }
    public Counter FailVerifyError { get; }
    public Counter FailVerifySan { get; }
    public Counter FailVerifyCertHash { get; }

    /// <summary>Counts a successful handshake, with Envoy's per-version counter.</summary>
    public void HandshakeDone(SslProtocols protocol)
    {
        Handshake.Inc();
        var version = protocol switch
        {
            SslProtocols.Tls13 => "TLSv1.3",
            SslProtocols.Tls12 => "TLSv1.2",
            _ => null,
        };
        if (version is not null) _store.Counter(_prefix + "versions." + version).Inc();
    }
}

/// <summary>
/// Verifies a peer certificate the way Envoy's default validator does: the chain against trusted_ca only (a custom
/// root store, never the system's), then the SAN matchers, then certificate pinning; each failure counts its stat.
/// </summary>
internal static class PeerVerifier
{
    /// <param name="presented">The chain SslStream built; its extra store holds the intermediates the peer sent.</param>
    /// <param name="autoSanHost">With auto_san_validation, a DNS name the certificate must cover.</param>
    public static bool Verify(X509Certificate? certificate, X509Chain? presented, CertificateValidationModel? v, bool requireCertificate,
        string? autoSanHost, SslStats stats)
    {
        if (certificate is null)
        {
            if (!requireCertificate) return true;
            stats.FailVerifyNoCert.Inc();
            return false;
        }
        if (v is null && autoSanHost is null) return true;
        var leaf = certificate as X509Certificate2 ?? X509CertificateLoader.LoadCertificate(certificate.GetRawCertData());

        if (v is { TrustedCa.Count: > 0 } && !ChainIsTrusted(leaf, presented, v) && !v.AcceptUntrusted)
        {
            stats.FailVerifyError.Inc();
            return false;
        }

        if (v is { SanMatchers.Count: > 0 } || autoSanHost is not null)
        {
            var sans = SubjectAltNames.Read(leaf);
            if ((v is { SanMatchers.Count: > 0 } && !AnySanMatches(sans, v.SanMatchers)) ||
                (autoSanHost is not null && !sans.Exists(s => s.Type == SanType.Dns && SanMatcherModel.DnsNameMatch(autoSanHost, s.Value))))
            {
                stats.FailVerifySan.Inc();
                return false;
            }
        }

        if (v is not null && (v.CertificateHashes.Count > 0 || v.SpkiHashes.Count > 0))
        {
            var hash = Convert.ToHexStringLower(SHA256.HashData(leaf.RawData));
            var spki = Convert.ToBase64String(SHA256.HashData(leaf.PublicKey.ExportSubjectPublicKeyInfo()));
            var pinned = false;
            foreach (var h in v.CertificateHashes) pinned |= h == hash;
            foreach (var s in v.SpkiHashes) pinned |= s == spki;
            if (!pinned)
            {
                stats.FailVerifyCertHash.Inc();
                return false;
            }
        }
        return true;
    }

    private static bool AnySanMatches(List<(SanType Type, string Value)> sans, IReadOnlyList<SanMatcherModel> matchers)
    {
        foreach (var m in matchers)
            foreach (var (type, value) in sans)
                if (m.Match(type, value)) return true;
        return false;
    }

    private static bool ChainIsTrusted(X509Certificate2 leaf, X509Chain? presented, CertificateValidationModel v)
    {
        using var chain = new X509Chain();
        var policy = chain.ChainPolicy;
        policy.TrustMode = X509ChainTrustMode.CustomRootTrust;
        policy.CustomTrustStore.AddRange(v.TrustedCa);
        policy.RevocationMode = X509RevocationMode.NoCheck; // CRLs are not configured (crl is refused)
        policy.DisableCertificateDownloads = true;
        if (v.AllowExpired) policy.VerificationFlags |= X509VerificationFlags.IgnoreNotTimeValid | X509VerificationFlags.IgnoreCtlNotTimeValid;
        if (presented is not null)
        {
            policy.ExtraStore.AddRange(presented.ChainPolicy.ExtraStore);
            foreach (var e in presented.ChainElements)
                if (!e.Certificate.RawDataMemory.Span.SequenceEqual(leaf.RawDataMemory.Span)) policy.ExtraStore.Add(e.Certificate);
        }
        try
        {
            return chain.Build(leaf);
        }
        catch (CryptographicException)
        {
            return false;
        }
    }
}
