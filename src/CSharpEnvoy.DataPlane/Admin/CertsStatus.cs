using System.Security.Cryptography.X509Certificates;
using CSharpEnvoy.Config.Model.Tls;
using Envoy.Admin.V3;
using Google.Protobuf.WellKnownTypes;

namespace CSharpEnvoy.DataPlane.Admin;

/// <summary>
/// /certs: Envoy's <c>envoy.admin.v3.Certificates</c>, one entry per TLS context in service (each listener filter
/// chain's, then each cluster's): its trusted CAs as <c>ca_cert</c> and its certificates as <c>cert_chain</c>, with
/// path, serial number, SANs, validity and days until expiration.
/// </summary>
internal static class CertsStatus
{
    public static Certificates Build(IEnumerable<TlsContextModel> contexts, DateTimeOffset now)
    {
        var result = new Certificates();
        foreach (var context in contexts)
        {
            var entry = new Certificate();
            if (context.Validation is { } v)
                foreach (var ca in v.TrustedCa) entry.CaCert.Add(Details(ca, v.TrustedCaSource, now));
            foreach (var c in context.Certificates) entry.CertChain.Add(Details(c.Certificate, c.Source, now));
            result.Certificates_.Add(entry);
        }
        return result;
    }

    private static CertificateDetails Details(X509Certificate2 cert, string path, DateTimeOffset now)
    {
        var notAfter = new DateTimeOffset(cert.NotAfter.ToUniversalTime(), TimeSpan.Zero);
        var details = new CertificateDetails
        {
            Path = path,
            SerialNumber = cert.SerialNumber.ToLowerInvariant(),
            // Envoy counts whole days left, 0 once expired.
            DaysUntilExpiration = notAfter <= now ? 0 : (ulong)(notAfter - now).TotalDays,
            ValidFrom = Timestamp.FromDateTimeOffset(new DateTimeOffset(cert.NotBefore.ToUniversalTime(), TimeSpan.Zero)),
            ExpirationTime = Timestamp.FromDateTimeOffset(notAfter),
        };
        foreach (var (type, value) in SubjectAltNames.Read(cert))
        {
            var san = type switch
            {
                SanType.Dns => new SubjectAlternateName { Dns = value },
                SanType.Uri => new SubjectAlternateName { Uri = value },
                SanType.IpAddress => new SubjectAlternateName { IpAddress = value },
                _ => null,
            };
            if (san is not null) details.SubjectAltNames.Add(san);
        }
        return details;
    }
}
