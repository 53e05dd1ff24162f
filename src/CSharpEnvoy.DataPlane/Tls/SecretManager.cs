using CSharpEnvoy.Config.Loading;
using CSharpEnvoy.Config.Model.Tls;
using CSharpEnvoy.Config.Model.Xds;
using CSharpEnvoy.Config.Translation;
using CSharpEnvoy.Config.Validation;
using CSharpEnvoy.DataPlane.Stats;
using CSharpEnvoy.DataPlane.Xds;
using Google.Protobuf.WellKnownTypes;
using Microsoft.Extensions.Logging;
using ProtoSecret = Envoy.Extensions.TransportSockets.Tls.V3.Secret;

namespace CSharpEnvoy.DataPlane.Tls;

/// <summary>A secret as it serves now: its validated model, the version it came with and when.</summary>
internal sealed record SecretSnapshot(SecretModel Model, string Version, DateTimeOffset Updated);

/// <summary>
/// One secret in use (Envoy's SdsApi): the last good version of one name from one config source. A TLS context reads
/// <see cref="Current"/> at each handshake, so a rotation reaches new connections only. <see cref="Ready"/> completes
/// when the first version arrives or the source's initial_fetch_timeout passes (the warming of its users ends then).
/// Stats under <c>sds.&lt;name&gt;.</c>, as Envoy's subscription stats.
/// </summary>
internal sealed class SdsSecretProvider
{
    private volatile SecretSnapshot? _current;
    private readonly TaskCompletionSource _ready = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly StatsStore _stats;
    private readonly string _prefix;

    public SdsSecretProvider(SdsSecretConfigModel config, StatsStore stats)
    {
        Config = config;
        _stats = stats;
        _prefix = "sds." + config.Name + ".";
        if (config.Source is null) return;
        foreach (var c in new[] { "update_attempt", "update_success", "update_rejected", "update_failure", "init_fetch_timeout" }) stats.Counter(_prefix + c);
        if (config.Source.InitialFetchTimeout != Timeout.InfiniteTimeSpan)
        {
            _ = Task.Run(async () =>
            {
                await Task.Delay(config.Source.InitialFetchTimeout).ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
                if (_ready.TrySetResult()) stats.Counter(_prefix + "init_fetch_timeout").Inc();
            });
        }
    }

    public SdsSecretConfigModel Config { get; }
    public SecretSnapshot? Current => _current;
    public Task Ready => _ready.Task;

    internal void Set(SecretSnapshot snapshot)
    {
        _current = snapshot;
        _ready.TrySetResult();
    }

    internal void Count(bool accepted, string? version = null)
    {
        _stats.Counter(_prefix + "update_attempt").Inc();
        _stats.Counter(_prefix + (accepted ? "update_success" : "update_rejected")).Inc();
        if (accepted && version is not null)
            _stats.Gauge(_prefix + "version").Set(unchecked((long)Upstream.LoadBalancing.XxHash64.Hash(System.Text.Encoding.UTF8.GetBytes(version))));
    }

    internal void CountFailure()
    {
        _stats.Counter(_prefix + "update_attempt").Inc();
        _stats.Counter(_prefix + "update_failure").Inc();
    }
}

/// <summary>
/// Envoy's secret manager: the static secrets of the bootstrap and one <see cref="SdsSecretProvider"/> per
/// (config source, name) in use. File sources are watched here (a DiscoveryResponse of Secrets, as filesystem xDS);
/// ADS and per-type gRPC sources are subscribed through the xDS manager, which asks <see cref="Names"/> and hands
/// responses to <see cref="Apply"/>. An update is validated whole (bad PEM, a key that does not match, a missing file)
/// and rejected whole: the last good secret keeps serving.
/// </summary>
internal sealed class SecretManager : IAsyncDisposable
{
    public const string TypeUrl = "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.Secret";

    private readonly StatsStore _stats;
    private readonly ILogger _logger;
    private readonly Dictionary<string, SdsSecretProvider> _providers = new(StringComparer.Ordinal);
    private readonly Dictionary<string, FilesystemSubscription> _files = new(StringComparer.Ordinal);
    private readonly DateTimeOffset _started = DateTimeOffset.UtcNow;

    public SecretManager(StatsStore stats, ILogger logger, IReadOnlyList<SecretModel>? staticSecrets = null)
    {
        _stats = stats;
        _logger = logger;
        foreach (var s in staticSecrets ?? Array.Empty<SecretModel>())
        {
            var p = new SdsSecretProvider(new SdsSecretConfigModel(s.Name, null), stats);
            p.Set(new SecretSnapshot(s, "", _started));
            _providers[p.Config.Key] = p;
        }
    }

    /// <summary>Called with <see cref="TypeUrl"/> when a provider fetched over gRPC (ADS or its own stream) is added.</summary>
    public Action? GrpcSubscriptionChanged { get; set; }

    /// <summary>The provider of <paramref name="config"/>, created (and its file watched) on first use.</summary>
    public SdsSecretProvider Provider(SdsSecretConfigModel config)
    {
        SdsSecretProvider? created = null;
        SdsSecretProvider p;
        lock (_providers)
        {
            if (!_providers.TryGetValue(config.Key, out p!))
            {
                p = created = new SdsSecretProvider(config, _stats);
                _providers[config.Key] = p;
            }
        }
        if (created is null) return p;
        switch (config.Source?.Kind)
        {
            case ConfigSourceKind.Path:
                WatchFile(config.Source);
                break;
            case ConfigSourceKind.Ads or ConfigSourceKind.Grpc:
                GrpcSubscriptionChanged?.Invoke();
                break;
        }
        return p;
    }

    /// <summary>The providers a TLS context uses (created when new).</summary>
    public List<SdsSecretProvider> ProvidersOf(TlsContextModel context)
    {
        var list = new List<SdsSecretProvider>(2);
        if (context.CertificateSecret is { } c) list.Add(Provider(c));
        if (context.ValidationSecret is { } v) list.Add(Provider(v));
        return list;
    }

    /// <summary>True when every secret of <paramref name="context"/> is past warming (arrived or timed out).</summary>
    public bool IsReady(TlsContextModel context)
    {
        foreach (var p in ProvidersOf(context))
            if (!p.Ready.IsCompleted) return false;
        return true;
    }

    /// <summary>Waits until every provider created so far is past warming (each bounded by its initial_fetch_timeout).</summary>
    public Task WaitForInitialAsync(CancellationToken ct)
    {
        List<Task> tasks;
        lock (_providers) tasks = _providers.Values.Select(p => p.Ready).ToList();
        return Task.WhenAll(tasks).WaitAsync(ct);
    }

    /// <summary>True when some provider is fetched over gRPC (the server then runs the xDS manager).</summary>
    public bool UsesGrpc
    {
        get
        {
            lock (_providers) return _providers.Values.Any(p => p.Config.Source?.Kind is ConfigSourceKind.Ads or ConfigSourceKind.Grpc);
        }
    }

    /// <summary>The gRPC config sources in use (per-type SecretDiscoveryService streams and ADS).</summary>
    public List<ConfigSourceModel> GrpcSources()
    {
        lock (_providers)
            return _providers.Values.Select(p => p.Config.Source).Where(s => s?.Kind is ConfigSourceKind.Grpc or ConfigSourceKind.Ads)
                .DistinctBy(s => s!.Key).Select(s => s!).ToList();
    }

    /// <summary>The secret names to request on the stream of <paramref name="sourceKey"/>.</summary>
    public HashSet<string> Names(string sourceKey)
    {
        var names = new HashSet<string>(StringComparer.Ordinal);
        lock (_providers)
            foreach (var p in _providers.Values)
                if (p.Config.Source?.Key == sourceKey) names.Add(p.Config.Name);
        return names;
    }

    public List<SdsSecretProvider> Providers()
    {
        lock (_providers) return _providers.Values.ToList();
    }

    /// <summary>
    /// Applies Secret resources from a gRPC source (<paramref name="fromFile"/> null) or a file: all are validated
    /// first and any error rejects them all (counted as <c>update_rejected</c> on the named secrets); then every
    /// provider of those sources whose name came takes its new version. Returns the error text or null.
    /// </summary>
    public string? Apply(string version, List<(Any Any, string? Version)> resources, ConfigSourceModel? fromFile)
    {
        var errors = new ConfigErrors();
        var decodeErrors = new List<string>();
        var decoded = XdsManager.Decode(resources, version, ProtoSecret.Parser, TypeUrl, decodeErrors);
        foreach (var e in decodeErrors) errors.Add("", e);
        var targets = new List<SdsSecretProvider>();
        lock (_providers)
            foreach (var p in _providers.Values)
                if (fromFile is null ? p.Config.Source?.Kind is ConfigSourceKind.Ads or ConfigSourceKind.Grpc : p.Config.Source?.Key == fromFile.Key)
                    targets.Add(p);
        if (fromFile is not null && decoded.Count != 1)
            errors.Add(fromFile.Path ?? "", $"a secret file holds exactly one Secret (found {decoded.Count})");

        var models = new List<(SecretModel Model, string Version)>();
        foreach (var (proto, v) in decoded)
        {
            var path = proto.Name.Length == 0 ? "secret" : proto.Name;
            try
            {
                var before = errors.Errors.Count;
                SupportChecker.Check(proto, path, errors);
                var model = TlsTranslator.TranslateSecret(proto, path, errors);
                if (model is not null && errors.Errors.Count == before) models.Add((model, v));
            }
            catch (Exception ex)
            {
                // Translators are written for trusted files; control-plane input must never take the process down.
                errors.Add(path, "invalid secret: " + ex.Message);
            }
        }

        if (errors.HasErrors)
        {
            foreach (var p in targets)
                if (fromFile is not null || decoded.Exists(d => d.Proto.Name == p.Config.Name)) p.Count(accepted: false);
            var text = string.Join("\n", errors.Errors);
            _logger.LogWarning("SDS update '{Version}' rejected: {Error}", version, text);
            return text;
        }
        var now = DateTimeOffset.UtcNow;
        foreach (var p in targets)
        {
            foreach (var (model, v) in models)
            {
                // A file's one secret is the file's provider's, whatever it is called (Envoy checks the names match).
                if (fromFile is null ? model.Name != p.Config.Name : p.Config.Name.Length > 0 && model.Name.Length > 0 && model.Name != p.Config.Name) continue;
                if (p.Current is { } cur && cur.Model.Source.Equals(model.Source)) continue; // SotW re-sends: nothing changed
                p.Set(new SecretSnapshot(model, v, now));
                p.Count(accepted: true, v);
                _logger.LogInformation("secret '{Name}' version '{Version}' in use", p.Config.Name, v);
            }
        }
        return null;
    }

    private void WatchFile(ConfigSourceModel source)
    {
        lock (_files)
        {
            if (_files.ContainsKey(source.Key)) return;
            if (FilesystemSubscription.CheckExists(source) is { } missing)
            {
                // Envoy refuses the config then; a provider made later (LDS/CDS) was checked before it got here.
                _logger.LogWarning("SDS: {Error}", missing);
                return;
            }
            var file = new FilesystemSubscription(TypeUrl, source,
                (_, version, resources) => Task.FromResult(Apply(version, resources.Select(a => (a, (string?)null)).ToList(), source)),
                (_, _) => CountFileFailure(source), _logger);
            _files[source.Key] = file;
            file.Start();
        }
    }

    private void CountFileFailure(ConfigSourceModel source)
    {
        foreach (var p in Providers())
            if (p.Config.Source?.Key == source.Key) p.CountFailure();
    }

    /// <summary>The certificate and validation context <paramref name="context"/> uses now: its own, or its secrets'
    /// current versions (the combined default merged with the secret's). Null members when a secret has not arrived.</summary>
    public static (TlsCertificateModel? Certificate, CertificateValidationModel? Validation) Resolve(TlsContextModel context,
        SecretSnapshot? certificate, SecretSnapshot? validation, ConfigErrors errors)
    {
        var cert = context.CertificateSecret is null
            ? (context.Certificates.Count > 0 ? context.Certificates[0] : null)
            : certificate?.Model.Certificate;
        CertificateValidationModel? v;
        if (context.ValidationSecret is null) v = context.Validation;
        else if (validation?.Model.Source.ValidationContext is not { } dynamic) v = null;
        else if (context.DefaultValidation is null)
            v = TlsTranslator.MergeValidation(null, dynamic, "validation_context_sds_secret_config", errors);
        else v = TlsTranslator.MergeValidation(context.DefaultValidation, dynamic, "combined_validation_context", errors);
        return (cert, v);
    }

    /// <summary>Envoy's <c>SecretsConfigDump</c>: static secrets, then dynamic ones (active, or warming before their
    /// first version), private keys and passwords redacted.</summary>
    public Envoy.Admin.V3.SecretsConfigDump ConfigDump()
    {
        var dump = new Envoy.Admin.V3.SecretsConfigDump();
        foreach (var p in Providers().OrderBy(p => p.Config.Key, StringComparer.Ordinal))
        {
            var cur = p.Current;
            if (p.Config.Source is null)
            {
                if (cur is null) continue;
                dump.StaticSecrets.Add(new Envoy.Admin.V3.SecretsConfigDump.Types.StaticSecret
                {
                    Name = p.Config.Name,
                    LastUpdated = Timestamp.FromDateTimeOffset(cur.Updated),
                    Secret = Any.Pack(Redacted(cur.Model.Source)),
                });
                continue;
            }
            var d = new Envoy.Admin.V3.SecretsConfigDump.Types.DynamicSecret { Name = p.Config.Name };
            if (cur is not null)
            {
                d.VersionInfo = cur.Version;
                d.LastUpdated = Timestamp.FromDateTimeOffset(cur.Updated);
                d.Secret = Any.Pack(Redacted(cur.Model.Source));
                dump.DynamicActiveSecrets.Add(d);
            }
            else dump.DynamicWarmingSecrets.Add(d);
        }
        return dump;
    }

    /// <summary>Envoy prints "[redacted]" for inline private keys and passwords; file names stay.</summary>
    private static ProtoSecret Redacted(ProtoSecret secret)
    {
        var copy = secret.Clone();
        if (copy.TlsCertificate is { } t)
        {
            Redact(t.PrivateKey);
            Redact(t.Password);
            if (t.Pkcs12 is { SpecifierCase: not Envoy.Config.Core.V3.DataSource.SpecifierOneofCase.Filename } p12) Redact(p12);
        }
        return copy;
    }

    private static void Redact(Envoy.Config.Core.V3.DataSource? source)
    {
        if (source is null || source.SpecifierCase == Envoy.Config.Core.V3.DataSource.SpecifierOneofCase.Filename) return;
        source.InlineString = "[redacted]";
    }

    public async ValueTask DisposeAsync()
    {
        List<FilesystemSubscription> files;
        lock (_files) files = _files.Values.ToList();
        foreach (var f in files) await f.DisposeAsync().ConfigureAwait(false);
    }
}
