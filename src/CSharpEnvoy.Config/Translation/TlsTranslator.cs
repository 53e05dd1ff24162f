using System.Net.Security;
using System.Security.Authentication;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using CSharpEnvoy.Config.Loading;
using CSharpEnvoy.Config.Model.Matchers;
using CSharpEnvoy.Config.Model.Tls;
using CSharpEnvoy.Config.Validation;
using Envoy.Config.Core.V3;
using Envoy.Extensions.TransportSockets.Tls.V3;

namespace CSharpEnvoy.Config.Translation;

/// <summary>
/// Validates <c>envoy.transport_sockets.tls</c> transport sockets and loads their certificates and keys, so a bad
/// file, a garbage PEM or a key that does not match its certificate fails the load with the field's path.
/// </summary>
internal static class TlsTranslator
{
    /// <summary>A filter chain's transport socket. Null for none, or when it is invalid (errors are added).</summary>
    public static DownstreamTlsModel? TranslateDownstream(TransportSocket? ts, string path, ConfigErrors errors)
    {
        var ctxPath = path + ".typed_config";
        if (!Resolve(ts, path, "DownstreamTlsContext", errors)) return null;
        var d = ts!.TypedConfig.Unpack<DownstreamTlsContext>();
        if (d.OcspStaplePolicy != DownstreamTlsContext.Types.OcspStaplePolicy.LenientStapling)
            errors.Add(ctxPath + ".ocsp_staple_policy", $"ocsp_staple_policy {ProtoEnum.Name(d.OcspStaplePolicy)} is not supported; OCSP stapling is not implemented (LENIENT_STAPLING, the default, is accepted)");
        var common = TranslateCommon(d.CommonTlsContext, ctxPath + ".common_tls_context", isServer: true, errors);
        if (common is null) return null;
        if (common.Certificates.Count == 0 && common.CertificateSecret is null)
            errors.Add(ctxPath + ".common_tls_context.tls_certificates", "a TLS listener needs a certificate (tls_certificates or tls_certificate_sds_secret_configs)");
        else if (common.Certificates.Count > 1)
            errors.Add(ctxPath + ".common_tls_context.tls_certificates", "several certificates per filter chain (selection by key type or SNI) are not supported yet; configure one");
        return new DownstreamTlsModel(common, d.RequireClientCertificate ?? false);
    }

    /// <summary>A cluster's transport socket; <paramref name="autoSanValidation"/> comes from its
    /// upstream_http_protocol_options.</summary>
    public static UpstreamTlsModel? TranslateUpstream(TransportSocket? ts, string path, bool autoSanValidation, ConfigErrors errors, bool autoSni = false)
    {
        var ctxPath = path + ".typed_config";
        if (!Resolve(ts, path, "UpstreamTlsContext", errors)) return null;
        var u = ts!.TypedConfig.Unpack<UpstreamTlsContext>();
        var common = TranslateCommon(u.CommonTlsContext, ctxPath + ".common_tls_context", isServer: false, errors);
        if (common is null) return null;
        if (common.Certificates.Count > 1)
            errors.Add(ctxPath + ".common_tls_context.tls_certificates", "an upstream TLS context takes at most one client certificate");
        if (u.Sni.Length > 255) errors.Add(ctxPath + ".sni", "sni is longer than 255 characters");
        // auto_sni_san_validation checks whatever SNI is sent; the cluster's auto_san_validation only the auto_sni one.
        var autoSan = u.AutoSniSanValidation || (autoSanValidation && autoSni);
        if (autoSanValidation && !autoSni)
            errors.Warn(path, "auto_san_validation has no effect without auto_sni (upstream_http_protocol_options)");
        return new UpstreamTlsModel(common)
        {
            Sni = string.IsNullOrEmpty(u.Sni) ? null : u.Sni,
            AutoSni = autoSni,
            AutoHostSni = u.AutoHostSni,
            AutoSanValidation = autoSan,
        };
    }

    private static bool Resolve(TransportSocket? ts, string path, string expected, ConfigErrors errors)
    {
        if (ts is null) return false;
        var type = ts.TypedConfig?.TypeUrl ?? "";
        if (type.Length == 0)
        {
            errors.Add(path, string.IsNullOrEmpty(ts.Name)
                ? "a transport socket needs a name or a typed_config"
                : ts.Name == ExtensionRegistry.TlsTransportSocket
                    ? $"transport socket '{ts.Name}' needs a typed_config ({expected})"
                    : $"unsupported transport socket '{ts.Name}'");
            return false;
        }
        var slash = type.LastIndexOf('/');
        var name = slash >= 0 ? type[(slash + 1)..] : type;
        if (name != "envoy.extensions.transport_sockets.tls.v3." + expected)
        {
            errors.Add(path, ExtensionRegistry.IsSupportedType(type)
                ? $"transport socket type '{type}' does not fit here; use {expected}"
                : $"unsupported transport socket '{ts.Name}' (type '{type}')");
            return false;
        }
        return true;
    }

    private static TlsContextModel? TranslateCommon(CommonTlsContext? c, string path, bool isServer, ConfigErrors errors)
    {
        c ??= new CommonTlsContext();
        var before = errors.Errors.Count;

        var certs = new List<TlsCertificateModel>();
        for (var i = 0; i < c.TlsCertificates.Count; i++)
        {
            var cert = LoadCertificate(c.TlsCertificates[i], $"{path}.tls_certificates[{i}]", errors);
            if (cert is not null) certs.Add(cert);
        }

        SdsSecretConfigModel? certSecret = null;
        if (c.TlsCertificateSdsSecretConfigs.Count > 0)
        {
            var sPath = path + ".tls_certificate_sds_secret_configs";
            if (c.TlsCertificates.Count > 0)
                errors.Add(sPath, "tls_certificates and tls_certificate_sds_secret_configs cannot both be set; configure one certificate");
            else if (c.TlsCertificateSdsSecretConfigs.Count > 1)
                errors.Add(sPath, "several certificates per context (selection by key type or SNI) are not supported yet; configure one secret");
            else certSecret = TranslateSdsSecretConfig(c.TlsCertificateSdsSecretConfigs[0], sPath + "[0]", errors);
        }

        CertificateValidationModel? validation = null;
        SdsSecretConfigModel? validationSecret = null;
        CertificateValidationContext? defaultValidation = null;
        switch (c.ValidationContextTypeCase)
        {
            case CommonTlsContext.ValidationContextTypeOneofCase.ValidationContext:
                validation = TranslateValidation(c.ValidationContext, path + ".validation_context", errors);
                break;
            case CommonTlsContext.ValidationContextTypeOneofCase.ValidationContextSdsSecretConfig:
                validationSecret = TranslateSdsSecretConfig(c.ValidationContextSdsSecretConfig, path + ".validation_context_sds_secret_config", errors);
                break;
            case CommonTlsContext.ValidationContextTypeOneofCase.CombinedValidationContext:
            {
                var cPath = path + ".combined_validation_context";
                var combined = c.CombinedValidationContext;
                if (combined.DefaultValidationContext is null) errors.Add(cPath + ".default_validation_context", "default_validation_context is required");
                // Checked alone for its own errors (files, matchers); the trusted CA may come with the secret.
                else if (TranslateValidation(combined.DefaultValidationContext, cPath + ".default_validation_context", errors, partial: true) is not null)
                    defaultValidation = combined.DefaultValidationContext;
                if (combined.ValidationContextSdsSecretConfig is null)
                    errors.Add(cPath + ".validation_context_sds_secret_config", "validation_context_sds_secret_config is required");
                else validationSecret = TranslateSdsSecretConfig(combined.ValidationContextSdsSecretConfig, cPath + ".validation_context_sds_secret_config", errors);
                break;
            }
            case CommonTlsContext.ValidationContextTypeOneofCase.None:
                break;
            default:
                // Certificate providers are refused by the support checker with their path.
                break;
        }

        var alpn = new List<string>();
        for (var i = 0; i < c.AlpnProtocols.Count; i++)
        {
            var p = c.AlpnProtocols[i];
            if (p is "h2" or "http/1.1") alpn.Add(p);
            else errors.Add($"{path}.alpn_protocols[{i}]", $"ALPN protocol '{p}' is not supported (h2 and http/1.1 are)");
        }

        var p0 = c.TlsParams ?? new TlsParameters();
        var ppath = path + ".tls_params";
        var min = Version(p0.TlsMinimumProtocolVersion, ppath + ".tls_minimum_protocol_version", errors) ?? SslProtocols.Tls12;
        // Envoy's defaults: TLS 1.2 at least; at most TLS 1.3 for servers and TLS 1.2 for clients.
        var max = Version(p0.TlsMaximumProtocolVersion, ppath + ".tls_maximum_protocol_version", errors) ?? (isServer ? SslProtocols.Tls13 : SslProtocols.Tls12);
        if (min > max)
            errors.Add(ppath, "tls_minimum_protocol_version is greater than tls_maximum_protocol_version");
        var protocols = min == max ? min : SslProtocols.Tls12 | SslProtocols.Tls13;

        List<TlsCipherSuite>? suites = null;
        if (p0.CipherSuites.Count > 0)
        {
            if (!OperatingSystem.IsLinux() && !OperatingSystem.IsMacOS())
                errors.Add(ppath + ".cipher_suites", "cipher_suites needs OpenSSL (Linux or macOS); .NET cannot restrict cipher suites on this platform");
            suites = new List<TlsCipherSuite>();
            for (var i = 0; i < p0.CipherSuites.Count; i++)
            {
                // BoringSSL's "[A|B]" equal-preference groups: the members keep their listed order here.
                foreach (var raw in p0.CipherSuites[i].Trim('[', ']').Split('|'))
                {
                    var name = raw.Trim();
                    if (s_cipherSuites.TryGetValue(name, out var s)) suites.Add(s);
                    else errors.Add($"{ppath}.cipher_suites[{i}]", $"cipher suite '{name}' is not supported (supported: {string.Join(", ", s_cipherSuites.Keys)})");
                }
            }
        }
        if (p0.EcdhCurves.Count > 0 && !IsDefaultCurves(p0.EcdhCurves))
            errors.Add(ppath + ".ecdh_curves", ".NET's TLS stack cannot restrict ECDH curves; only Envoy's default list (X25519, P-256) is accepted");

        if (errors.Errors.Count != before) return null;
        return new TlsContextModel
        {
            Certificates = certs,
            Validation = validation,
            AlpnProtocols = alpn,
            Protocols = protocols,
            CipherSuites = suites,
            CertificateSecret = certSecret,
            ValidationSecret = validationSecret,
            DefaultValidation = defaultValidation,
        };
    }

    /// <summary>An <c>SdsSecretConfig</c>: without <c>sds_config</c> it names one of the bootstrap's static secrets.</summary>
    private static SdsSecretConfigModel? TranslateSdsSecretConfig(SdsSecretConfig s, string path, ConfigErrors errors)
    {
        Model.Xds.ConfigSourceModel? source = null;
        if (s.SdsConfig is not null)
        {
            source = XdsTranslator.TranslateConfigSource(s.SdsConfig, path + ".sds_config", errors);
            // A file holds the one secret it names, so a file source may leave the name out (as Envoy's examples do).
            if (s.Name.Length == 0 && source.Kind != Model.Xds.ConfigSourceKind.Path)
                errors.Add(path + ".name", "name is required (the secret to fetch)");
        }
        else if (s.Name.Length == 0) errors.Add(path + ".name", "name is required (a static secret, or give sds_config)");
        return new SdsSecretConfigModel(s.Name, source);
    }

    /// <summary>A <c>Secret</c> resource (SDS or <c>static_resources.secrets</c>): a TLS certificate or a validation
    /// context; session ticket keys and generic secrets are refused. Null (with errors) when invalid.</summary>
    public static SecretModel? TranslateSecret(Secret secret, string path, ConfigErrors errors)
    {
        switch (secret.TypeCase)
        {
            case Secret.TypeOneofCase.TlsCertificate:
            {
                var cert = LoadCertificate(secret.TlsCertificate, path + ".tls_certificate", errors);
                return cert is null ? null : new SecretModel(secret.Name, cert, null) { Source = secret };
            }
            case Secret.TypeOneofCase.ValidationContext:
            {
                // Its trusted CA may be missing when it is merged into a combined context's default.
                var v = TranslateValidation(secret.ValidationContext, path + ".validation_context", errors, partial: true);
                return v is null ? null : new SecretModel(secret.Name, null, v) { Source = secret };
            }
            case Secret.TypeOneofCase.SessionTicketKeys:
                errors.Add(path + ".session_ticket_keys", "session ticket keys are not supported (.NET's TLS stack manages its own tickets)");
                return null;
            case Secret.TypeOneofCase.GenericSecret:
                errors.Add(path + ".generic_secret", "generic secrets are not supported (no csenvoy extension consumes them)");
                return null;
            default:
                errors.Add(path, "a secret needs tls_certificate or validation_context");
                return null;
        }
    }

    /// <summary>The validation context a combined context uses: the secret's merged into the default (Envoy's
    /// MergeFrom: the secret's singular fields win, lists are concatenated), translated with the full checks.</summary>
    public static CertificateValidationModel? MergeValidation(CertificateValidationContext? defaults, CertificateValidationContext dynamic, string path, ConfigErrors errors)
    {
        var merged = defaults?.Clone() ?? new CertificateValidationContext();
        merged.MergeFrom(dynamic);
        return TranslateValidation(merged, path, errors);
    }

    private static bool IsDefaultCurves(IList<string> curves)
    {
        foreach (var c in curves) if (c is not ("X25519" or "P-256")) return false;
        return true;
    }

    private static SslProtocols? Version(TlsParameters.Types.TlsProtocol v, string path, ConfigErrors errors)
    {
        switch (v)
        {
            case TlsParameters.Types.TlsProtocol.TlsAuto: return null;
            case TlsParameters.Types.TlsProtocol.Tlsv12: return SslProtocols.Tls12;
            case TlsParameters.Types.TlsProtocol.Tlsv13: return SslProtocols.Tls13;
            default:
                errors.Add(path, $"{ProtoEnum.Name(v)} is not supported; csenvoy speaks TLSv1_2 and TLSv1_3");
                return null;
        }
    }

    private static TlsCertificateModel? LoadCertificate(TlsCertificate t, string path, ConfigErrors errors)
    {
        if (t.Pkcs12 is not null)
        {
            if (t.CertificateChain is not null || t.PrivateKey is not null)
            {
                errors.Add(path, "pkcs12 cannot be combined with certificate_chain or private_key");
                return null;
            }
            return LoadPkcs12(t, path, errors);
        }
        if (t.CertificateChain is null)
        {
            errors.Add(path + ".certificate_chain", "certificate_chain is required");
            return null;
        }
        if (t.PrivateKey is null)
        {
            errors.Add(path + ".private_key", "private_key is required");
            return null;
        }
        var chainBytes = RouteTranslator.DataSourceBytes(t.CertificateChain, path + ".certificate_chain", errors);
        var keyBytes = RouteTranslator.DataSourceBytes(t.PrivateKey, path + ".private_key", errors);
        string? password = null;
        if (t.Password is not null)
        {
            var pw = RouteTranslator.DataSourceBytes(t.Password, path + ".password", errors);
            if (pw is null) return null;
            password = System.Text.Encoding.UTF8.GetString(pw);
        }
        if (chainBytes is null || keyBytes is null) return null;

        var chain = ReadPem(chainBytes, path + ".certificate_chain", errors);
        if (chain is null) return null;
        var leaf = chain[0];
        var keyPem = System.Text.Encoding.UTF8.GetString(keyBytes);
        X509Certificate2 withKey;
        try
        {
            if (leaf.GetRSAPublicKey() is { } rsaPub)
            {
                rsaPub.Dispose();
                var rsa = RSA.Create();
                ImportKey(rsa, keyPem, password);
                withKey = leaf.CopyWithPrivateKey(rsa);
            }
            else if (leaf.GetECDsaPublicKey() is { } ecPub)
            {
                ecPub.Dispose();
                var ec = ECDsa.Create();
                ImportKey(ec, keyPem, password);
                withKey = leaf.CopyWithPrivateKey(ec);
            }
            else
            {
                errors.Add(path + ".certificate_chain", $"unsupported key algorithm '{leaf.PublicKey.Oid.FriendlyName ?? leaf.PublicKey.Oid.Value}' (RSA and ECDSA are supported)");
                return null;
            }
        }
        catch (ArgumentException ex)
        {
            // ImportFromPem: no usable PEM key; CopyWithPrivateKey: the key is not the certificate's.
            errors.Add(path + ".private_key", ex.Message.Contains("match", StringComparison.OrdinalIgnoreCase)
                ? "the private key does not match the certificate in certificate_chain"
                : $"cannot read a private key for the certificate's {(leaf.GetRSAPublicKey() is null ? "ECDSA" : "RSA")} key: {ex.Message}");
            return null;
        }
        catch (CryptographicException ex)
        {
            errors.Add(path + ".private_key", $"cannot read a private key: {ex.Message}");
            return null;
        }
        if (leaf.NotAfter < DateTime.Now)
            errors.Warn(path + ".certificate_chain", $"the certificate '{leaf.Subject}' expired on {leaf.NotAfter:u}");
        var intermediates = new X509Certificate2Collection();
        for (var i = 1; i < chain.Count; i++) intermediates.Add(chain[i]);
        return new TlsCertificateModel(Persistable(withKey), intermediates) { Source = SourceName(t.CertificateChain) };
    }

    private static void ImportKey(AsymmetricAlgorithm key, string pem, string? password)
    {
        if (password is not null && pem.Contains("ENCRYPTED PRIVATE KEY", StringComparison.Ordinal)) key.ImportFromEncryptedPem(pem, password);
        else key.ImportFromPem(pem);
    }

    /// <summary>A data source as Envoy's /certs names it: its file name, else "&lt;inline&gt;".</summary>
    private static string SourceName(Envoy.Config.Core.V3.DataSource? source) =>
        source?.SpecifierCase == Envoy.Config.Core.V3.DataSource.SpecifierOneofCase.Filename ? source.Filename : "<inline>";

    private static TlsCertificateModel? LoadPkcs12(TlsCertificate t, string path, ConfigErrors errors)
    {
        var bytes = RouteTranslator.DataSourceBytes(t.Pkcs12, path + ".pkcs12", errors);
        string? password = null;
        if (t.Password is not null)
        {
            var pw = RouteTranslator.DataSourceBytes(t.Password, path + ".password", errors);
            if (pw is null) return null;
            password = System.Text.Encoding.UTF8.GetString(pw);
        }
        if (bytes is null) return null;
        try
        {
            var all = X509CertificateLoader.LoadPkcs12Collection(bytes, password);
            X509Certificate2? leaf = null;
            var rest = new X509Certificate2Collection();
            foreach (var c in all)
            {
                if (leaf is null && c.HasPrivateKey) leaf = c;
                else rest.Add(c);
            }
            if (leaf is null)
            {
                errors.Add(path + ".pkcs12", "the PKCS#12 bundle has no certificate with a private key");
                return null;
            }
            return new TlsCertificateModel(leaf, rest) { Source = SourceName(t.Pkcs12) };
        }
        catch (CryptographicException ex)
        {
            errors.Add(path + ".pkcs12", $"cannot read the PKCS#12 bundle: {ex.Message}");
            return null;
        }
    }

    /// <summary>Windows' TLS stack cannot use an ephemeral (in-memory only) key; round-trip it through PKCS#12 there.</summary>
    private static X509Certificate2 Persistable(X509Certificate2 cert) =>
        OperatingSystem.IsWindows() ? X509CertificateLoader.LoadPkcs12(cert.Export(X509ContentType.Pkcs12), null) : cert;

    private static X509Certificate2Collection? ReadPem(byte[] bytes, string path, ConfigErrors errors)
    {
        var certs = new X509Certificate2Collection();
        try
        {
            certs.ImportFromPem(System.Text.Encoding.UTF8.GetString(bytes));
        }
        catch (CryptographicException ex)
        {
            errors.Add(path, $"cannot read a PEM certificate: {ex.Message}");
            return null;
        }
        if (certs.Count == 0)
        {
            errors.Add(path, "no PEM certificate (-----BEGIN CERTIFICATE-----) found");
            return null;
        }
        return certs;
    }

    /// <param name="partial">A context that may still be merged with another (SDS): no "SAN matchers need a trusted CA" check.</param>
    private static CertificateValidationModel? TranslateValidation(CertificateValidationContext v, string path, ConfigErrors errors, bool partial = false)
    {
        var trusted = new X509Certificate2Collection();
        if (v.TrustedCa is not null)
        {
            var bytes = RouteTranslator.DataSourceBytes(v.TrustedCa, path + ".trusted_ca", errors);
            if (bytes is null) return null;
            var cas = ReadPem(bytes, path + ".trusted_ca", errors);
            if (cas is null) return null;
            trusted = cas;
        }

        var sans = new List<SanMatcherModel>();
        for (var i = 0; i < v.MatchTypedSubjectAltNames.Count; i++)
        {
            var m = v.MatchTypedSubjectAltNames[i];
            var mPath = $"{path}.match_typed_subject_alt_names[{i}]";
            SanType? type = m.SanType switch
            {
                SubjectAltNameMatcher.Types.SanType.Dns => SanType.Dns,
                SubjectAltNameMatcher.Types.SanType.Uri => SanType.Uri,
                SubjectAltNameMatcher.Types.SanType.Email => SanType.Email,
                SubjectAltNameMatcher.Types.SanType.IpAddress => SanType.IpAddress,
                _ => null,
            };
            if (type is null)
            {
                errors.Add(mPath + ".san_type", m.SanType == SubjectAltNameMatcher.Types.SanType.Unspecified
                    ? "san_type is required (DNS, URI, EMAIL or IP_ADDRESS)"
                    : $"san_type {ProtoEnum.Name(m.SanType)} is not supported (DNS, URI, EMAIL and IP_ADDRESS are)");
                continue;
            }
            if (m.Matcher is null)
            {
                errors.Add(mPath + ".matcher", "matcher is required");
                continue;
            }
            var sm = RouteTranslator.StringMatcher(m.Matcher, mPath + ".matcher", errors);
            if (sm is not null) sans.Add(new SanMatcherModel(type.Value, sm));
        }
        // The deprecated form matches any of the DNS, URI, email and IP SANs.
#pragma warning disable CS0612 // deprecated in the API, still accepted by Envoy
        var legacy = v.MatchSubjectAltNames;
#pragma warning restore CS0612
        for (var i = 0; i < legacy.Count; i++)
        {
            var sm = RouteTranslator.StringMatcher(legacy[i], $"{path}.match_subject_alt_names[{i}]", errors);
            if (sm is null) continue;
            foreach (var t in new[] { SanType.Dns, SanType.Uri, SanType.Email, SanType.IpAddress }) sans.Add(new SanMatcherModel(t, sm));
        }
        if (sans.Count > 0 && trusted.Count == 0 && !partial)
            errors.Add(path, "SAN-based verification of peer certificates without trusted CA is insecure and not allowed");

        var hashes = new List<string>();
        for (var i = 0; i < v.VerifyCertificateHash.Count; i++)
        {
            var h = v.VerifyCertificateHash[i].Replace(":", "", StringComparison.Ordinal).ToLowerInvariant();
            if (h.Length != 64 || !h.All(Uri.IsHexDigit)) errors.Add($"{path}.verify_certificate_hash[{i}]", $"invalid SHA-256 certificate hash '{v.VerifyCertificateHash[i]}'");
            else hashes.Add(h);
        }
        var spkis = new List<string>();
        Span<byte> buf = stackalloc byte[64];
        for (var i = 0; i < v.VerifyCertificateSpki.Count; i++)
        {
            var s = v.VerifyCertificateSpki[i];
            if (!Convert.TryFromBase64String(s, buf, out var n) || n != 32) errors.Add($"{path}.verify_certificate_spki[{i}]", $"invalid base64 SHA-256 SPKI hash '{s}'");
            else spkis.Add(s);
        }

        return new CertificateValidationModel
        {
            TrustedCa = trusted,
            TrustedCaSource = SourceName(v.TrustedCa),
            SanMatchers = sans,
            AllowExpired = v.AllowExpiredCertificate,
            AcceptUntrusted = v.TrustChainVerification == CertificateValidationContext.Types.TrustChainVerification.AcceptUntrusted,
            CertificateHashes = hashes,
            SpkiHashes = spkis,
        };
    }

    /// <summary>OpenSSL/BoringSSL names (as Envoy takes them) of the TLS 1.2 suites .NET can enable.</summary>
    private static readonly Dictionary<string, TlsCipherSuite> s_cipherSuites = new(StringComparer.Ordinal)
    {
        ["ECDHE-ECDSA-AES128-GCM-SHA256"] = TlsCipherSuite.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
        ["ECDHE-RSA-AES128-GCM-SHA256"] = TlsCipherSuite.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
        ["ECDHE-ECDSA-AES256-GCM-SHA384"] = TlsCipherSuite.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
        ["ECDHE-RSA-AES256-GCM-SHA384"] = TlsCipherSuite.TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
        ["ECDHE-ECDSA-CHACHA20-POLY1305"] = TlsCipherSuite.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
        ["ECDHE-RSA-CHACHA20-POLY1305"] = TlsCipherSuite.TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
        ["ECDHE-ECDSA-AES128-SHA"] = TlsCipherSuite.TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA,
        ["ECDHE-RSA-AES128-SHA"] = TlsCipherSuite.TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA,
        ["ECDHE-ECDSA-AES256-SHA"] = TlsCipherSuite.TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA,
        ["ECDHE-RSA-AES256-SHA"] = TlsCipherSuite.TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA,
        ["AES128-GCM-SHA256"] = TlsCipherSuite.TLS_RSA_WITH_AES_128_GCM_SHA256,
        ["AES256-GCM-SHA384"] = TlsCipherSuite.TLS_RSA_WITH_AES_256_GCM_SHA384,
        ["AES128-SHA"] = TlsCipherSuite.TLS_RSA_WITH_AES_128_CBC_SHA,
        ["AES256-SHA"] = TlsCipherSuite.TLS_RSA_WITH_AES_256_CBC_SHA,
    };
}
