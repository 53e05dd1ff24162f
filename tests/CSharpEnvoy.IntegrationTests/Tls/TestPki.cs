using System.Net;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;

namespace CSharpEnvoy.IntegrationTests.Tls;

/// <summary>
/// Certificates made for a test: a CA, leaves it signs (DNS, IP and SPIFFE URI SANs), and PEM files of them in a
/// temporary directory that is deleted with the instance.
/// </summary>
internal sealed class TestPki : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("csenvoy-tls-").FullName;

    public string Dir => _dir;

    public static X509Certificate2 CreateCa(string name)
    {
        using var key = RSA.Create(2048);
        var req = new CertificateRequest($"CN={name}", key, HashAlgorithmName.SHA256, RSASignaturePadding.Pkcs1);
        req.CertificateExtensions.Add(new X509BasicConstraintsExtension(true, false, 0, true));
        req.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.KeyCertSign | X509KeyUsageFlags.CrlSign, true));
        req.CertificateExtensions.Add(new X509SubjectKeyIdentifierExtension(req.PublicKey, false));
        return req.CreateSelfSigned(DateTimeOffset.UtcNow.AddDays(-1), DateTimeOffset.UtcNow.AddYears(5));
    }

    /// <summary>A leaf signed by <paramref name="ca"/>, usable as server and client certificate.</summary>
    public static X509Certificate2 Issue(X509Certificate2 ca, string cn, string[]? dns = null, string[]? uris = null, bool ecdsa = false,
        DateTimeOffset? notBefore = null, DateTimeOffset? notAfter = null, bool ip = true)
    {
        var san = new SubjectAlternativeNameBuilder();
        foreach (var d in dns ?? Array.Empty<string>()) san.AddDnsName(d);
        foreach (var u in uris ?? Array.Empty<string>()) san.AddUri(new Uri(u));
        if (ip) san.AddIpAddress(IPAddress.Loopback);
        AsymmetricAlgorithm key = ecdsa ? ECDsa.Create(ECCurve.NamedCurves.nistP256) : RSA.Create(2048);
        var req = ecdsa
            ? new CertificateRequest($"CN={cn}", (ECDsa)key, HashAlgorithmName.SHA256)
            : new CertificateRequest($"CN={cn}", (RSA)key, HashAlgorithmName.SHA256, RSASignaturePadding.Pkcs1);
        req.CertificateExtensions.Add(san.Build());
        req.CertificateExtensions.Add(new X509BasicConstraintsExtension(false, false, 0, false));
        req.CertificateExtensions.Add(new X509EnhancedKeyUsageExtension(
            new OidCollection { new Oid("1.3.6.1.5.5.7.3.1"), new Oid("1.3.6.1.5.5.7.3.2") }, false));
        var serial = RandomNumberGenerator.GetBytes(12);
        serial[0] &= 0x7f;
        var nb = notBefore ?? DateTimeOffset.UtcNow.AddDays(-1);
        var na = notAfter ?? DateTimeOffset.UtcNow.AddYears(1);
        if (na > ca.NotAfter) na = ca.NotAfter;
        using var caKey = ca.GetRSAPrivateKey()!;
        using var signed = req.Create(ca.SubjectName, X509SignatureGenerator.CreateForRSA(caKey, RSASignaturePadding.Pkcs1), nb, na, serial);
        var withKey = key is ECDsa ec ? signed.CopyWithPrivateKey(ec) : signed.CopyWithPrivateKey((RSA)key);
        key.Dispose();
        return withKey;
    }

    public static string CertPem(X509Certificate2 cert) => cert.ExportCertificatePem();

    public static string KeyPem(X509Certificate2 cert) =>
        cert.GetRSAPrivateKey() is { } rsa ? rsa.ExportPkcs8PrivateKeyPem() : cert.GetECDsaPrivateKey()!.ExportPkcs8PrivateKeyPem();

    /// <summary>Writes a file into the temporary directory and returns its path.</summary>
    public string Write(string name, string content)
    {
        var path = Path.Combine(_dir, name);
        File.WriteAllText(path, content);
        return path;
    }

    /// <summary>Writes <c>name.crt</c> and <c>name.key</c>; returns both paths.</summary>
    public (string Cert, string Key) WritePair(string name, X509Certificate2 cert) =>
        (Write(name + ".crt", CertPem(cert)), Write(name + ".key", KeyPem(cert)));

    public void Dispose()
    {
        try
        {
            Directory.Delete(_dir, recursive: true);
        }
        catch (IOException)
        {
        }
    }
}
