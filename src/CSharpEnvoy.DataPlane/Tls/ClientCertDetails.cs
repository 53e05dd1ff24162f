using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using System.Text;
using CSharpEnvoy.Config.Model.Listener;
using CSharpEnvoy.Config.Model.Tls;
using Microsoft.AspNetCore.Http;

namespace CSharpEnvoy.DataPlane.Tls;

/// <summary>
/// The verified peer certificate of a TLS connection and what the connection's details look like in Envoy's
/// <c>x-forwarded-client-cert</c> element (computed once per connection and setting, then reused by its requests).
/// Set as a connection feature when the handshake completes with a client certificate.
/// </summary>
internal sealed class PeerCertificateInfo(X509Certificate2 leaf, X509Certificate2Collection presented, IReadOnlyList<string> localUriSans)
{
    private ClientCertDetailsFields _cachedFields = (ClientCertDetailsFields)(-1);
    private string? _cached;
    private List<(SanType Type, string Value)>? _sans;

    public X509Certificate2 Leaf { get; } = leaf;

    /// <summary>The peer's SANs (read once per connection; RBAC and the header both use them).</summary>
    public List<(SanType Type, string Value)> Sans => _sans ??= SubjectAltNames.Read(Leaf);

    /// <summary>The subject as OpenSSL prints it in RFC 2253 form (what Envoy writes and matches).</summary>
    public string Subject => _subject ??= ClientCertDetails.Rfc2253(Leaf.SubjectName);
    private string? _subject;

    /// <summary>This connection's element of the header: By, Hash, then the chosen fields in Envoy's order
    /// (Cert, Chain, Subject, URI, DNS), joined by ';'.</summary>
    public string Element(ClientCertDetailsFields fields)
    {
        if (_cachedFields == fields && _cached is not null) return _cached;
        var parts = new List<string>();
        foreach (var uri in localUriSans) parts.Add("By=" + uri);
        parts.Add("Hash=" + Convert.ToHexStringLower(SHA256.HashData(Leaf.RawData)));
        if ((fields & ClientCertDetailsFields.Cert) != 0) parts.Add("Cert=\"" + ClientCertDetails.UrlEncodedPem(Leaf) + "\"");
        if ((fields & ClientCertDetailsFields.Chain) != 0)
        {
            var sb = new StringBuilder(ClientCertDetails.UrlEncodedPem(Leaf));
            foreach (var c in presented) sb.Append(ClientCertDetails.UrlEncodedPem(c));
            parts.Add("Chain=\"" + sb + "\"");
        }
        // Subject and URI keys appear even when empty; DNS only for each DNS SAN.
        if ((fields & ClientCertDetailsFields.Subject) != 0) parts.Add("Subject=\"" + Subject + "\"");
        if ((fields & ClientCertDetailsFields.Uri) != 0)
        {
            var any = false;
            foreach (var (t, v) in Sans)
                if (t == SanType.Uri) { parts.Add("URI=" + v); any = true; }
            if (!any) parts.Add("URI=");
        }
        if ((fields & ClientCertDetailsFields.Dns) != 0)
            foreach (var (t, v) in Sans)
                if (t == SanType.Dns) parts.Add("DNS=" + v);
        _cached = string.Join(';', parts);
        _cachedFields = fields;
        return _cached;
    }
}

/// <summary>
/// Envoy's <c>forward_client_cert_details</c> handling of <c>x-forwarded-client-cert</c>
/// (<c>ConnectionManagerUtility::mutateXfccRequestHeader</c>): ALWAYS_FORWARD_ONLY passes it untouched; SANITIZE, and
/// every mode on a connection without a client certificate, removes it; FORWARD_ONLY passes it; APPEND_FORWARD appends
/// this connection's element after a comma; SANITIZE_SET replaces it with the element.
/// </summary>
internal static class ClientCertDetails
{
    public const string Header = "x-forwarded-client-cert";

    public static void Mutate(HttpContext context, IHeaderDictionary headers, HttpConnectionManagerModel model)
    {
        var mode = model.ForwardClientCert;
        if (mode == ForwardClientCertDetails.AlwaysForwardOnly) return;
        var peer = context.Features.Get<PeerCertificateInfo>();
        if (mode == ForwardClientCertDetails.Sanitize || peer is null)
        {
            headers.Remove(Header);
            return;
        }
        if (mode == ForwardClientCertDetails.ForwardOnly) return;
        var element = peer.Element(model.SetCurrentClientCertDetails);
        var existing = headers[Header];
        headers[Header] = mode == ForwardClientCertDetails.AppendForward && existing.Count > 0 ? existing.ToString() + "," + element : element;
    }

    /// <summary>PEM as OpenSSL writes it (64-character lines, trailing newline), with Envoy's five replacements.</summary>
    internal static string UrlEncodedPem(X509Certificate2 cert)
    {
        var pem = cert.ExportCertificatePem() + "\n";
        return pem.Replace("\n", "%0A").Replace(" ", "%20").Replace("+", "%2B").Replace("/", "%2F").Replace("=", "%3D");
    }

    /// <summary>A distinguished name in RFC 2253 order and escaping, with OpenSSL's short attribute names.</summary>
    internal static string Rfc2253(X500DistinguishedName name)
    {
        var sb = new StringBuilder();
        foreach (var rdn in name.EnumerateRelativeDistinguishedNames(reversed: true))
        {
            if (sb.Length > 0) sb.Append(rdn.HasMultipleElements ? "+" : ",");
            var oid = rdn.GetSingleElementType();
            sb.Append(ShortName(oid.Value)).Append('=');
            Escape(sb, rdn.GetSingleElementValue() ?? "");
        }
        return sb.ToString();
    }

    private static string ShortName(string? oid) => oid switch
    {
        "2.5.4.3" => "CN",
        "2.5.4.6" => "C",
        "2.5.4.7" => "L",
        "2.5.4.8" => "ST",
        "2.5.4.9" => "street",
        "2.5.4.10" => "O",
        "2.5.4.11" => "OU",
        "2.5.4.5" => "serialNumber",
        "0.9.2342.19200300.100.1.25" => "DC",
        "0.9.2342.19200300.100.1.1" => "UID",
        "1.2.840.113549.1.9.1" => "emailAddress",
        _ => oid ?? "",
    };

    private static void Escape(StringBuilder sb, string value)
    {
        for (var i = 0; i < value.Length; i++)
        {
            var c = value[i];
            if (c is ',' or '+' or '"' or '\\' or '<' or '>' or ';' || (i == 0 && c is '#' or ' ') || (i == value.Length - 1 && c == ' '))
                sb.Append('\\');
            sb.Append(c);
        }
    }
}
