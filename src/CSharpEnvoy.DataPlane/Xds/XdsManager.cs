using CSharpEnvoy.Config.Loading;
using CSharpEnvoy.Config.Model.Cluster;
using CSharpEnvoy.Config.Model.Listener;
using CSharpEnvoy.Config.Model.RouteConfiguration;
using CSharpEnvoy.Config.Model.Xds;
using CSharpEnvoy.Config.Translation;
using CSharpEnvoy.Config.Validation;
using CSharpEnvoy.DataPlane.Http;
using CSharpEnvoy.DataPlane.Listener;
using CSharpEnvoy.DataPlane.Stats;
using CSharpEnvoy.DataPlane.Upstream;
using Envoy.Admin.V3;
using Envoy.Service.Discovery.V3;
using Google.Protobuf;
using Google.Protobuf.WellKnownTypes;
using Microsoft.Extensions.Logging;
using ProtoCluster = Envoy.Config.Cluster.V3.Cluster;
using ProtoListener = Envoy.Config.Listener.V3.Listener;
using ProtoRoute = Envoy.Config.Route.V3.RouteConfiguration;
using ProtoCla = Envoy.Config.Endpoint.V3.ClusterLoadAssignment;

namespace CSharpEnvoy.DataPlane.Xds;

/// <summary>What the xDS manager needs from the server: building connection managers and starting/stopping listeners.</summary>
internal interface IListenerRuntime
{
    HttpConnectionManager CreateConnectionManager(HttpConnectionManagerModel model);
    /// <param name="socket">The listening socket of the listener being replaced on the same address, or null to bind one.</param>
    /// <param name="hcms">One connection manager per chain of <see cref="ListenerModel.AllFilterChains"/> (null for TCP proxy chains).</param>
    Task<ListenerHost> StartListenerAsync(ListenerModel model, IReadOnlyList<HttpConnectionManager?> hcms, ListenSocket? socket, CancellationToken ct);
    void RemoveListener(ListenerHost host);
    IReadOnlyList<ListenerHost> Listeners { get; }
    TimeSpan DrainTime { get; }
    /// <summary>A drain starting now, with the server's drain time and strategy.</summary>
    DrainSequence StartDrain();
}

/// <summary>
/// Applies xDS resources to the running server: validates every resource of a response with the bootstrap's
/// translators and support checker (any error rejects the whole response and changes nothing), then commits CDS,
/// EDS, LDS and RDS updates — cluster map swaps, EDS host sets, listener starts/swaps/drains, route swaps — with
/// Envoy's warming (EDS clusters wait for endpoints, RDS listeners for routes, up to initial_fetch_timeout).
/// Everything here runs under one async gate; the request path only sees the single-reference swaps.
/// </summary>
internal sealed class XdsManager : IXdsApplier, IAsyncDisposable
{
    private readonly SemaphoreSlim _gate = new(1, 1);
    private readonly Envoy.Config.Core.V3.Node _node;
    private readonly ControlPlaneConnectedState _connected;
    private readonly ControlPlaneRateLimitStats _rateLimitStats;
    // The subscriptions by source key and type (the ADS stream under "ads"); created as resources reference them.
    private readonly Dictionary<string, AdsClient> _streams = new(StringComparer.Ordinal);
    private readonly Dictionary<string, FilesystemSubscription> _files = new(StringComparer.Ordinal);
    private readonly ClusterManager _clusters;
    private readonly IListenerRuntime _runtime;
    private readonly StatsStore _stats;
    private readonly ILogger _logger;
    private readonly HashSet<string> _staticClusters;
    private readonly HashSet<string> _staticListeners;
    private readonly XdsModel _config;
    private readonly Tls.SecretManager? _secrets;
    private readonly CancellationTokenSource _stop = new();

    private readonly Dictionary<string, DynCluster> _dynClusters = new(StringComparer.Ordinal);
    private readonly Dictionary<string, Assignment> _assignments = new(StringComparer.Ordinal);
    private readonly Dictionary<string, DynListener> _dynListeners = new(StringComparer.Ordinal);
    private readonly Dictionary<string, DynRoute> _routes = new(StringComparer.Ordinal);
    private readonly Dictionary<string, UpdateFailureState> _clusterErrors = new(StringComparer.Ordinal);
    private readonly Dictionary<string, UpdateFailureState> _listenerErrors = new(StringComparer.Ordinal);
    private readonly TaskCompletionSource _cdsInitial = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly TaskCompletionSource _ldsInitial = new(TaskCreationOptions.RunContinuationsAsynchronously);
    /// <summary>The clusters of the first CDS response and the listeners of the first LDS response warming up.</summary>
    private readonly InitialWarming _initialClusters = new(), _initialListeners = new();
    /// <summary>Static EDS clusters waiting for their first assignment, with their initial_fetch_timeout.</summary>
    private readonly Dictionary<string, (TaskCompletionSource Assigned, TimeSpan Timeout)> _staticEdsInit = new(StringComparer.Ordinal);
    /// <summary>Completes when Envoy's cluster manager initialization is done: LDS starts then.</summary>
    private readonly TaskCompletionSource _clustersInitialized = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private string _cdsVersion = "";
    private string _ldsVersion = "";

    private sealed class DynCluster
    {
        public required ProtoCluster Proto;
        public required Cluster Live;
        public required string Version;
        public DateTimeOffset Updated;
        /// <summary>True while an EDS cluster waits for its first assignment (not in the cluster manager yet).</summary>
        public bool Warming;
        /// <summary>The initial_fetch_timeout timer this cluster waits on, shared by the clusters of one response.</summary>
        public WarmGroup? WarmTimer;

        /// <summary>This cluster no longer waits (its endpoints came, it was replaced or removed).</summary>
        public void StopWarmTimer()
        {
            WarmTimer?.Release();
            WarmTimer = null;
        }
    }

    /// <summary>One timer for the clusters of a CDS response that started warming with the same timeout (10,000 new
    /// EDS clusters wait on one timer, not 10,000); it stops once none of them waits any more.</summary>
    private sealed class WarmGroup(int pending)
    {
        private int _pending = pending;
        public CancellationTokenSource? Timer;

        public void Release()
        {
            if (Interlocked.Decrement(ref _pending) == 0) Timer?.Cancel();
        }
    }

    /// <summary>An accepted ClusterLoadAssignment: its bytes as received (for /config_dump and to recognise it when
    /// it is sent again; 100,000 endpoints kept as messages would be ~25 MB of small objects) and its endpoints.</summary>
    private sealed record Assignment(ByteString Raw, List<EndpointModel> Endpoints, string Version, DateTimeOffset Updated);

    /// <summary>The accepted assignments by their bytes: a resource sent again unchanged is known without decoding.</summary>
    private readonly Dictionary<ByteString, string> _assignmentNames = new();

    private sealed record DynRoute(ProtoRoute Proto, RouteConfigurationModel Model, string Version, DateTimeOffset Updated);

    private sealed class DynListener
    {
        public required ProtoListener Proto;
        public required ListenerModel Model;
        public required string Version;
        public DateTimeOffset Updated;
        /// <summary>The host serving it (null while a new listener warms).</summary>
        public ListenerHost? Host;
        /// <summary>The socket this listener took over from one leaving its address (<see cref="TakeOverSockets"/>), held
        /// until its server starts on it.</summary>
        public ListenSocket.Lease? Reserved;
        /// <summary>While warming: the model and its chains' connection managers waiting for their routes.</summary>
        public (ListenerModel Model, IReadOnlyList<HttpConnectionManager?> Hcms)? Pending;
        public CancellationTokenSource? WarmTimer;
    }

    public XdsManager(XdsModel config, Envoy.Config.Core.V3.Node node, ClusterManager clusters, IListenerRuntime runtime,
        IEnumerable<string> staticClusters, IEnumerable<string> staticListeners, StatsStore stats, ILogger logger, Tls.SecretManager? secrets = null)
    {
        _config = config;
        _secrets = secrets;
        if (secrets is not null) secrets.GrpcSubscriptionChanged = () => SubscriptionChanged(XdsTypes.Secret);
        _node = node;
        _connected = new ControlPlaneConnectedState(stats.Gauge("control_plane.connected_state"));
        _rateLimitStats = ControlPlaneRateLimitStats.Create(stats);
        _clusters = clusters;
        _runtime = runtime;
        _stats = stats;
        _logger = logger;
        _staticClusters = new HashSet<string>(staticClusters, StringComparer.Ordinal);
        _staticListeners = new HashSet<string>(staticListeners, StringComparer.Ordinal);
        if (config.Cds is null)
        {
            _cdsInitial.TrySetResult();
            _initialClusters.FirstResponse(rejected: true);
        }
        if (config.Lds is null)
        {
            _ldsInitial.TrySetResult();
            _initialListeners.FirstResponse(rejected: true);
        }
        foreach (var c in clusters.Clusters.Values)
            if (c.Model.Type == DiscoveryType.Eds)
                _staticEdsInit[c.Name] = (new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously), c.Model.EdsInitialFetchTimeout);
        _cdsStarted = _staticEdsInit.Count == 0;
        foreach (var p in new[] { "cluster_manager.cds.", "listener_manager.lds." })
        {
            stats.Counter(p, "update_attempt");
            stats.Counter(p, "update_success");
            stats.Counter(p, "update_rejected");
            stats.Gauge(p, "version");
        }
    }

    /// <summary>Opens the ADS stream and every subscription the bootstrap references. Throws when a bootstrap file
    /// source does not exist (Envoy refuses to start then).</summary>
    public void Start()
    {
        foreach (var (source, path) in new[] { (_config.Cds, "dynamic_resources.cds_config"), (_config.Lds, "dynamic_resources.lds_config") })
            if (source is { Kind: ConfigSourceKind.Path } && FilesystemSubscription.CheckExists(source) is { } missing)
                throw new InvalidOperationException($"{path}: {missing}");
        if (_config.Ads is { } ads) StartStream(XdsStreamTarget.Aggregated(ads));
        foreach (var t in XdsTypes.Ordered)
        {
            if (t == XdsTypes.Listener) continue;
            var missing = EnsureSources(t);
            if (missing.Count > 0) throw new InvalidOperationException(string.Join("\n", missing));
        }
        _ = InitializeClustersThenLdsAsync();
    }

    /// <summary>
    /// Envoy's initialization order (Operations: Initialization): the cluster manager initializes — static EDS clusters
    /// get their first assignment, then CDS starts and gets its first response, and the clusters of that response warm (EDS, secrets), each
    /// wait bounded by its initial_fetch_timeout (0s: no bound) — and only then does LDS start. A listener whose routes
    /// name CDS clusters is thus never validated against a partial cluster map, and no listener opens before the
    /// clusters it routes to have endpoints.
    /// </summary>
    private async Task InitializeClustersThenLdsAsync()
    {
        try
        {
            var statics = new List<Task>(_staticEdsInit.Count);
            foreach (var (assigned, timeout) in _staticEdsInit.Values) statics.Add(WaitAsync(assigned.Task, timeout, _stop.Token));
            await Task.WhenAll(statics).ConfigureAwait(false);
            if (!_cdsStarted)
            {
                _cdsStarted = true;
                SubscriptionChanged(XdsTypes.Cluster);
            }
            await WaitAsync(_cdsInitial.Task, _config.Cds?.InitialFetchTimeout ?? Timeout.InfiniteTimeSpan, _stop.Token).ConfigureAwait(false);
            // A first CDS response that came too late does not hold initialization back any more.
            if (_cdsInitial.Task.IsCompleted) await _initialClusters.Warmed.WaitAsync(_stop.Token).ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
            return;
        }
        _clustersInitialized.TrySetResult();
        if (_config.Lds is null) return;
        _ldsStarted = true;
        SubscriptionChanged(XdsTypes.Listener);
    }

    /// <summary>Set once the cluster manager is initialized: LDS is subscribed from then on.</summary>
    private volatile bool _ldsStarted;

    /// <summary>Set once the bootstrap's EDS clusters are initialized: CDS is subscribed from then on.</summary>
    private volatile bool _cdsStarted;

    /// <summary>Envoy's server initialization up to the listeners: the cluster manager initializes (see
    /// <see cref="InitializeClustersThenLdsAsync"/>), then the first LDS answer (accepted or not) arrives, bounded by its
    /// initial_fetch_timeout. Its listeners may still warm: <see cref="InitialListenersWarmed"/>.</summary>
    public async Task WaitForInitialAsync(CancellationToken ct)
    {
        await _clustersInitialized.Task.WaitAsync(ct).ConfigureAwait(false);
        await WaitAsync(_ldsInitial.Task, _config.Lds?.InitialFetchTimeout ?? Timeout.InfiniteTimeSpan, ct).ConfigureAwait(false);
        if (!_ldsInitial.Task.IsCompleted) _initialListeners.FirstResponse(rejected: true);
    }

    /// <summary>Completes once the listeners of the first LDS response have warmed (their routes and secrets arrived or
    /// their initial_fetch_timeout passed), or at once when that response was rejected or did not come in time: Envoy's
    /// server goes LIVE then.</summary>
    public Task InitialListenersWarmed => _initialListeners.Warmed;

    /// <summary>
    /// The resources of the first CDS (or LDS) response still warming, which Envoy's initialization waits for. Fed under
    /// the update gate with the names warming after each change; done when none of the first response's is left, or
    /// at once when that response was rejected (Envoy lets initialization go on after a failed update).
    /// </summary>
    private sealed class InitialWarming
    {
        private readonly object _lock = new();
        private readonly TaskCompletionSource _warmed = new(TaskCreationOptions.RunContinuationsAsynchronously);
        private bool _first;
        private HashSet<string>? _pending;

        public Task Warmed => _warmed.Task;

        /// <summary>Whether <see cref="StillWarming"/> is wanted (after the first response, until it all warmed).</summary>
        public bool Waiting
        {
            get
            {
                lock (_lock) return _first && !_warmed.Task.IsCompleted;
            }
        }

        /// <summary>A response was applied or rejected; only the first one counts.</summary>
        public void FirstResponse(bool rejected)
        {
            lock (_lock)
            {
                if (_first) return;
                _first = true;
                if (rejected) _warmed.TrySetResult();
            }
        }

        /// <summary>The resources warming now; the first call after <see cref="FirstResponse"/> names the first response's.</summary>
        public void StillWarming(HashSet<string> warming)
        {
            lock (_lock)
            {
                if (!_first || _warmed.Task.IsCompleted) return;
                if (_pending is null) _pending = warming;
                else _pending.IntersectWith(warming);
                if (_pending.Count == 0) _warmed.TrySetResult();
            }
        }
    }

    private static async Task WaitAsync(Task t, TimeSpan timeout, CancellationToken ct)
    {
        try
        {
            await t.WaitAsync(timeout, ct).ConfigureAwait(false);
        }
        catch (TimeoutException)
        {
        }
    }

    // ---------------------------------------------------------------- subscriptions

    public IReadOnlySet<string>? Subscription(string typeUrl, string sourceKey)
    {
        var names = new HashSet<string>(StringComparer.Ordinal);
        switch (typeUrl)
        {
            case XdsTypes.Cluster:
                return _config.Cds?.Key == sourceKey && _cdsStarted ? null : names;
            case XdsTypes.Listener:
                return _config.Lds?.Key == sourceKey && _ldsStarted ? null : names;
            case XdsTypes.Endpoint:
                foreach (var (source, name) in EdsSources())
                    if (source.Key == sourceKey) names.Add(name);
                return names;
            case XdsTypes.Route:
                foreach (var (source, name) in RdsSources())
                    if (source.Key == sourceKey) names.Add(name);
                return names;
            case XdsTypes.Secret:
                return _secrets?.Names(sourceKey) ?? names;
            default:
                return names;
        }
    }

    /// <summary>The EDS resources in use, with the config source each is fetched from.</summary>
    private List<(ConfigSourceModel Source, string Name)> EdsSources()
    {
        var list = new List<(ConfigSourceModel, string)>();
        foreach (var c in _clusters.Clusters.Values)
            if (c.Model is { Type: DiscoveryType.Eds, EdsServiceName: { } n, EdsConfig: { } src }) list.Add((src, n));
        lock (_dynClusters)
            foreach (var d in _dynClusters.Values)
                if (d.Warming && d.Live.Model is { EdsServiceName: { } n, EdsConfig: { } src }) list.Add((src, n));
        return list;
    }

    /// <summary>The RDS resources in use (serving and warming listeners), with the config source of each.</summary>
    private List<(ConfigSourceModel Source, string Name)> RdsSources()
    {
        var list = new List<(ConfigSourceModel, string)>();
        foreach (var h in RdsConnectionManagers())
            if (h.Model is { RdsRouteConfigName: { } n, RdsConfig: { } src }) list.Add((src, n));
        return list;
    }

    /// <summary>The interest in <paramref name="typeUrl"/> may have changed: opens the per-type streams and file watches
    /// newly referenced and tells every stream carrying the type.</summary>
    private void SubscriptionChanged(string typeUrl)
    {
        foreach (var missing in EnsureSources(typeUrl)) _logger.LogWarning("{Error}", missing);
        List<AdsClient> streams;
        lock (_streams) streams = _streams.Values.ToList();
        foreach (var s in streams) s.SubscriptionChanged(typeUrl);
    }

    /// <summary>Creates the subscriptions <paramref name="typeUrl"/>'s config sources need; returns the errors of file
    /// sources whose file does not exist.</summary>
    private List<string> EnsureSources(string typeUrl)
    {
        var sources = new List<ConfigSourceModel>();
        switch (typeUrl)
        {
            case XdsTypes.Cluster when _config.Cds is { } cds && _cdsStarted: sources.Add(cds); break;
            case XdsTypes.Listener when _config.Lds is { } lds && _ldsStarted: sources.Add(lds); break;
            case XdsTypes.Endpoint: foreach (var (src, _) in EdsSources()) sources.Add(src); break;
            case XdsTypes.Route: foreach (var (src, _) in RdsSources()) sources.Add(src); break;
            // File sources of secrets are watched by the secret manager itself.
            case XdsTypes.Secret when _secrets is not null: sources.AddRange(_secrets.GrpcSources()); break;
        }
        var missing = new List<string>();
        foreach (var src in sources)
        {
            var key = src.Key + "#" + typeUrl;
            if (src.Kind == ConfigSourceKind.Grpc)
            {
                lock (_streams)
                    if (_streams.ContainsKey(key)) continue;
                StartStream(new XdsStreamTarget(src.Cluster!, src.ApiType, src.Key, typeUrl, src.RateLimit));
            }
            else if (src.Kind == ConfigSourceKind.Path)
            {
                lock (_files)
                {
                    if (_files.ContainsKey(key)) continue;
                    if (FilesystemSubscription.CheckExists(src) is { } error)
                    {
                        missing.Add(error);
                        continue;
                    }
                    var file = new FilesystemSubscription(typeUrl, src, ApplySotwAsync, OnFileFailed, _logger);
                    _files[key] = file;
                    file.Start();
                }
            }
        }
        return missing;
    }

    private void StartStream(XdsStreamTarget target)
    {
        var client = new AdsClient(target, _node, _clusters, _connected, _rateLimitStats, _logger);
        lock (_streams) _streams[target.SourceKey + (target.SingleType is null ? "" : "#" + target.SingleType)] = client;
        client.Start(this);
    }

    /// <summary>A watched file could not be read or parsed: Envoy counts an update failure (per cluster for EDS, per
    /// connection manager for RDS) and keeps the last good config; a bootstrap LDS/CDS file still ends initialization.</summary>
    private void OnFileFailed(string typeUrl, string sourceKey)
    {
        var prefixes = new HashSet<string>(StringComparer.Ordinal);
        switch (typeUrl)
        {
            case XdsTypes.Cluster:
                prefixes.Add("cluster_manager.cds.");
                _cdsInitial.TrySetResult();
                _initialClusters.FirstResponse(rejected: true);
                break;
            case XdsTypes.Listener:
                prefixes.Add("listener_manager.lds.");
                _ldsInitial.TrySetResult();
                _initialListeners.FirstResponse(rejected: true);
                break;
            case XdsTypes.Endpoint:
                foreach (var c in _clusters.Clusters.Values)
                    if (c.Model.EdsConfig?.Key == sourceKey) prefixes.Add("cluster." + c.Name + ".");
                _ = UnderGateAsync(() =>
                {
                    EndEdsWarmingOnFailure(sourceKey);
                    return Task.CompletedTask;
                });
                break;
            case XdsTypes.Route:
                foreach (var h in RdsConnectionManagers())
                    if (h.Model.RdsConfig?.Key == sourceKey) prefixes.Add($"http.{h.Model.StatPrefix}.rds.{h.Model.RdsRouteConfigName}.");
                _ = UnderGateAsync(() => EndRdsWarmingOnFailureAsync(sourceKey));
                break;
        }
        foreach (var p in prefixes)
        {
            _stats.Counter(p, "update_attempt").Inc();
            _stats.Counter(p, "update_failure").Inc();
        }
    }

    // ---------------------------------------------------------------- entry points

    /// <summary>Runs work that changes the applied state outside an update (a warming timeout, a failed file) under
    /// the update gate; nothing once the manager stops.</summary>
    private async Task UnderGateAsync(Func<Task> body)
    {
        try
        {
            await _gate.WaitAsync(_stop.Token).ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
            return;
        }
        try
        {
            await body().ConfigureAwait(false);
        }
        catch (Exception ex)
        {
            _logger.LogError(ex, "xDS: ending a resource's warming failed");
        }
        finally
        {
            _gate.Release();
        }
    }

    public async Task<string?> ApplySotwAsync(string typeUrl, string version, IReadOnlyList<Any> resources)
    {
        await _gate.WaitAsync(_stop.Token).ConfigureAwait(false);
        try
        {
            return await ApplyAsync(typeUrl, version, resources.Select(a => (a, (string?)null)).ToList(), null, sotw: true).ConfigureAwait(false);
        }
        finally
        {
            _gate.Release();
        }
    }

    public async Task<string?> ApplyDeltaAsync(string typeUrl, string systemVersion, IReadOnlyList<Resource> resources, IReadOnlyList<string> removed)
    {
        await _gate.WaitAsync(_stop.Token).ConfigureAwait(false);
        try
        {
            var list = new List<(Any, string?)>();
            var errors = new List<string>();
            foreach (var r in resources)
            {
                if (r.Resource_ is null) errors.Add($"{r.Name}: a delta resource needs a 'resource'");
                else list.Add((r.Resource_, r.Version));
            }
            if (errors.Count > 0) return string.Join("\n", errors);
            return await ApplyAsync(typeUrl, systemVersion, list, removed, sotw: false).ConfigureAwait(false);
        }
        finally
        {
            _gate.Release();
        }
    }

    private Task<string?> ApplyAsync(string typeUrl, string version, List<(Any Any, string? Version)> resources, IReadOnlyList<string>? removed, bool sotw) =>
        typeUrl switch
        {
            XdsTypes.Cluster => ApplyClustersAsync(version, resources, removed, sotw),
            XdsTypes.Endpoint => Task.FromResult(ApplyEndpoints(version, resources, removed)),
            XdsTypes.Listener => ApplyListenersAsync(version, resources, removed, sotw),
            XdsTypes.Route => ApplyRoutesAsync(version, resources, removed),
            XdsTypes.Secret when _secrets is not null => Task.FromResult(_secrets.Apply(version, resources, null)),
            _ => Task.FromResult<string?>($"unsupported resource type '{typeUrl}'"),
        };

    /// <summary>Unpacks each resource as <typeparamref name="T"/>; wrong types and undecodable bytes are errors.</summary>
    /// <param name="previous">The previous state-of-the-world response of the type: bytes equal to one of its resources
    /// decode to that resource's message, without decoding (a 10,000-assignment push with one change decodes one).</param>
    /// <param name="seen">Collects this response's bytes and messages, for the next one.</param>
    internal static List<(T Proto, string Version)> Decode<T>(List<(Any Any, string? Version)> resources, string version, MessageParser<T> parser,
        string expectedType, List<string> errors, Dictionary<ByteString, IMessage>? previous = null, Dictionary<ByteString, IMessage>? seen = null)
        where T : IMessage<T>
    {
        var list = new List<(T, string)>();
        for (var i = 0; i < resources.Count; i++)
        {
            var (any, v) = resources[i];
            var proto = previous is not null && previous.TryGetValue(any.Value, out var same) && any.TypeUrl == expectedType
                ? (T)same
                : DecodeOne(any, i, parser, expectedType, errors);
            if (proto is null) continue;
            seen?.TryAdd(any.Value, proto);
            list.Add((proto, v ?? version));
        }
        return list;
    }

    /// <summary>One resource of a response as <typeparamref name="T"/>; null (and an error) for another type or bytes
    /// that do not decode.</summary>
    private static T? DecodeOne<T>(Any any, int index, MessageParser<T> parser, string expectedType, List<string> errors) where T : IMessage<T>
    {
        if (any.TypeUrl != expectedType)
        {
            errors.Add($"resources[{index}]: unexpected type '{any.TypeUrl}' in a response for '{expectedType}'");
            return default;
        }
        try
        {
            return parser.ParseFrom(any.Value.Span); // a span parses without a CodedInputStream per resource
        }
        catch (InvalidProtocolBufferException ex)
        {
            errors.Add($"resources[{index}]: cannot decode {expectedType}: {ex.Message}");
            return default;
        }
    }

    /// <summary>The last state-of-the-world response of each type, by resource bytes (see <see cref="Decode{T}"/>).</summary>
    private readonly Dictionary<string, Dictionary<ByteString, IMessage>> _lastSotw = new(StringComparer.Ordinal);

    private List<(T Proto, string Version)> Decode<T>(bool sotw, List<(Any Any, string? Version)> resources, string version, MessageParser<T> parser,
        string typeUrl, List<string> errors) where T : IMessage<T>
    {
        if (!sotw) return Decode(resources, version, parser, typeUrl, errors);
        _lastSotw.TryGetValue(typeUrl, out var previous);
        var seen = new Dictionary<ByteString, IMessage>(resources.Count);
        var decoded = Decode(resources, version, parser, typeUrl, errors, previous, seen);
        _lastSotw[typeUrl] = seen;
        return decoded;
    }

    private static string Format(ConfigErrors errors, List<string> extra)
    {
        var lines = new List<string>(extra);
        foreach (var e in errors.Errors) lines.Add(e.ToString());
        return string.Join("\n", lines);
    }

    private static bool Validate(Func<bool> body, string name, ConfigErrors errors)
    {
        try
        {
            return body();
        }
        catch (Exception ex)
        {
            // Translators are written for trusted files; control-plane input must never take the process down.
            errors.Add(name, "invalid resource: " + ex.Message);
            return false;
        }
    }

    private void Count(string prefix, bool success, string version)
    {
        _stats.Counter(prefix, "update_attempt").Inc();
        _stats.Counter(prefix + (success ? "update_success" : "update_rejected")).Inc();
        if (success) _stats.Gauge(prefix, "version").Set(VersionHash(version));
    }

    /// <summary>Envoy reports version_info in the <c>version</c> gauges as its 64-bit hash.</summary>
    private static long VersionHash(string version) =>
        unchecked((long)Upstream.LoadBalancing.XxHash64.Hash(System.Text.Encoding.UTF8.GetBytes(version)));

    /// <summary>Validates the named resources of one CDS or LDS response with the bootstrap's checks: each needs a unique
    /// name, static resources cannot be replaced, and a resource's errors are kept for /config_dump's error_state.
    /// Every error lands in <paramref name="errors"/> (any error NACKs the whole response).</summary>
    private static List<(TProto Proto, TModel Model, string Version)> TranslateNamed<TProto, TModel>(
        List<(TProto Proto, string Version)> decoded, string kind, string xds, HashSet<string> statics, Func<TProto, string> nameOf,
        Func<TProto, string, ConfigErrors, TModel?> translate, Dictionary<string, UpdateFailureState> failures,
        HashSet<string> names, ConfigErrors errors, Func<string, TProto, TModel?> unchanged)
        where TProto : IMessage where TModel : class
    {
        var models = new List<(TProto, TModel, string)>();
        foreach (var (proto, v) in decoded)
        {
            var name = nameOf(proto);
            var before = errors.Errors.Count;
            if (string.IsNullOrEmpty(name)) { errors.Add("", $"a {kind} resource needs a name"); continue; }
            if (!names.Add(name)) { errors.Add(name, $"duplicate {kind} '{name}' in the response"); continue; }
            if (statics.Contains(name)) { errors.Add(name, $"{kind} '{name}' is a static {kind} and cannot be changed by {xds}"); continue; }
            // State of the world re-sends every resource: one identical to the accepted one was validated then.
            if (unchanged(name, proto) is { } same)
            {
                models.Add((proto, same, v));
                continue;
            }
            TModel? model = null;
            Validate(() =>
            {
                SupportChecker.Check(proto, name, errors);
                model = translate(proto, name, errors);
                return true;
            }, name, errors);
            if (errors.Errors.Count != before) failures[name] = Failure(proto, string.Join("\n", errors.Errors.Skip(before)), v);
            else if (model is not null) models.Add((proto, model, v));
        }
        return models;
    }

    private ClusterModel? CheckSources(ClusterModel? model, string name, ConfigErrors errors)
    {
        if (model?.EdsConfig is { } eds) CheckSource(eds, name + ".eds_cluster_config.eds_config", errors);
        if (model?.Tls is { } tls) CheckSecretSources(tls.Common, name + ".transport_socket", errors);
        return model;
    }

    /// <summary>A dynamic resource's secrets: a static one must exist, an SDS source be reachable.</summary>
    private void CheckSecretSources(Config.Model.Tls.TlsContextModel context, string path, ConfigErrors errors)
    {
        foreach (var cfg in new[] { context.CertificateSecret, context.ValidationSecret })
        {
            if (cfg is null) continue;
            if (cfg.Source is { } src) CheckSource(src, path + ".sds_config", errors);
            else if (_secrets is null || !_secrets.Providers().Exists(p => p.Config.Key == cfg.Key))
                errors.Add(path, $"unknown static secret '{cfg.Name}' (static_resources.secrets)");
        }
    }

    /// <summary>True when every SDS secret of the listener's chains or the cluster is past warming; creates their
    /// providers (and subscriptions) on first use.</summary>
    private bool SecretsReady(ListenerModel model)
    {
        if (_secrets is null) return true;
        var ready = true;
        foreach (var fc in model.AllFilterChains)
            if (fc.Tls is { } t) ready &= _secrets.IsReady(t.Common);
        return ready;
    }

    private bool SecretsReady(ClusterModel model) => _secrets is null || model.Tls is not { } t || _secrets.IsReady(t.Common);

    /// <summary>Runs <paramref name="then"/> under the update gate once every secret of <paramref name="contexts"/> is past warming.</summary>
    private void WhenSecretsReady(IEnumerable<Config.Model.Tls.TlsContextModel> contexts, Func<Task> then)
    {
        var tasks = new List<Task>();
        foreach (var c in contexts)
            foreach (var p in _secrets!.ProvidersOf(c)) tasks.Add(p.Ready);
        _ = Task.Run(async () =>
        {
            await Task.WhenAll(tasks).WaitAsync(_stop.Token).ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
            if (_stop.IsCancellationRequested) return;
            try
            {
                await _gate.WaitAsync(_stop.Token).ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
                return;
            }
            try
            {
                await then().ConfigureAwait(false);
            }
            finally
            {
                _gate.Release();
            }
        });
    }

    private ListenerModel? CheckSources(ListenerModel? model, string name, ConfigErrors errors)
    {
        if (model is null) return null;
        foreach (var fc in model.AllFilterChains)
            if (fc.HttpConnectionManager?.RdsConfig is { } rds) CheckSource(rds, name + ".rds.config_source", errors);
        foreach (var fc in model.AllFilterChains)
            if (fc.Tls is { } tls) CheckSecretSources(tls.Common, name + ".transport_socket", errors);
        return model;
    }

    /// <summary>A dynamic resource's config source must be reachable: ads: {} needs the ADS stream, a per-type stream a
    /// static non-EDS cluster, a file source an existing file.</summary>
    private void CheckSource(ConfigSourceModel source, string path, ConfigErrors errors)
    {
        switch (source.Kind)
        {
            case ConfigSourceKind.Ads when _config.Ads is null:
                errors.Add(path + ".ads", "ads: {} is not supported without dynamic_resources.ads_config");
                break;
            case ConfigSourceKind.Grpc:
                XdsTranslator.CheckSourceCluster(source, path + ".api_config_source", errors,
                    n => _staticClusters.Contains(n) && _clusters.Get(n)?.Model.Type != DiscoveryType.Eds);
                break;
            case ConfigSourceKind.Path when FilesystemSubscription.CheckExists(source) is { } missing:
                errors.Add(path, missing);
                break;
        }
    }

    private static T? Existing<T>(Dictionary<string, T> map, string name) where T : class
    {
        lock (map) return map.GetValueOrDefault(name);
    }

    private static UpdateFailureState Failure(IMessage? resource, string details, string version)
    {
        var f = new UpdateFailureState { Details = details, VersionInfo = version, LastUpdateAttempt = Timestamp.FromDateTimeOffset(DateTimeOffset.UtcNow) };
        if (resource is not null) f.FailedConfiguration = Any.Pack(resource);
        return f;
    }

    // ---------------------------------------------------------------- CDS

    private async Task<string?> ApplyClustersAsync(string version, List<(Any, string?)> resources, IReadOnlyList<string>? removed, bool sotw)
    {
        const string statPrefix = "cluster_manager.cds.";
        var extra = new List<string>();
        var decoded = Decode(sotw, resources, version, ProtoCluster.Parser, XdsTypes.Cluster, extra);
        var errors = new ConfigErrors();
        var names = new HashSet<string>(StringComparer.Ordinal);
        var models = TranslateNamed(decoded, "cluster", "CDS", _staticClusters, c => c.Name,
            (proto, name, errs) => CheckSources(ClusterTranslator.Translate(proto, name, errs), name, errs), _clusterErrors, names, errors,
            (name, proto) => Existing(_dynClusters, name) is { } d && d.Proto.Equals(proto) ? d.Live.Model : null);
        _cdsInitial.TrySetResult();
        if (errors.HasErrors || extra.Count > 0)
        {
            _initialClusters.FirstResponse(rejected: true);
            Count(statPrefix, false, version);
            return Format(errors, extra);
        }

        // Commit. SotW: absent clusters are removed; delta: the removed list.
        var now = DateTimeOffset.UtcNow;
        var removals = new List<string>();
        lock (_dynClusters)
        {
            if (sotw)
            {
                foreach (var n in _dynClusters.Keys)
                    if (!names.Contains(n)) removals.Add(n);
            }
            else if (removed is not null)
            {
                foreach (var n in removed)
                    if (_dynClusters.ContainsKey(n)) removals.Add(n);
            }
        }
        var upserts = new List<Cluster>();
        var fresh = new List<Cluster>();
        var warmingByTimeout = new Dictionary<TimeSpan, List<DynCluster>>();
        var built = BuildClusters(models);
        for (var i = 0; i < models.Count; i++)
        {
            var (proto, model, v) = models[i];
            _clusterErrors.Remove(model.Name);
            DynCluster? existing;
            lock (_dynClusters) _dynClusters.TryGetValue(model.Name, out existing);
            if (existing is not null && existing.Proto.Equals(proto))
            {
                existing.Version = v;
                continue; // unchanged: keep the live cluster and its connection pool
            }
            var live = built[i] ?? _clusters.Create(model);
            fresh.Add(live);
            var warming = false;
            if (model.Type == DiscoveryType.Eds)
            {
                if (_assignments.TryGetValue(model.EdsServiceName!, out var a)) live.SetEdsEndpoints(a.Endpoints);
                else if (existing is not null && existing.Live.Model.EdsServiceName == model.EdsServiceName && existing.Live.HasEdsAssignment)
                    live.SetEdsEndpoints(EndpointsOf(existing.Live));
                else warming = true;
            }
            if (!SecretsReady(model))
            {
                // Envoy: a cluster whose client certificate has not arrived is not used until it does.
                warming = true;
                WhenSecretsReady([model.Tls!.Common], () =>
                {
                    List<DynCluster> ready;
                    lock (_dynClusters)
                        ready = _dynClusters.Values.Where(d => d.Warming && SecretsReady(d.Live.Model) &&
                            (d.Live.Model.Type != DiscoveryType.Eds || d.Live.HasEdsAssignment)).ToList();
                    if (ready.Count > 0) PromoteClusters(ready);
                    return Task.CompletedTask;
                });
            }
            existing?.StopWarmTimer();
            var dyn = new DynCluster { Proto = proto, Live = live, Version = v, Updated = now, Warming = warming };
            lock (_dynClusters) _dynClusters[model.Name] = dyn;
            if (warming)
            {
                var timeout = model.EdsInitialFetchTimeout;
                if (!warmingByTimeout.TryGetValue(timeout, out var list)) warmingByTimeout[timeout] = list = [];
                list.Add(dyn);
            }
            else upserts.Add(live);
        }
        foreach (var (timeout, dyns) in warmingByTimeout) StartClusterWarmTimer(dyns, timeout);
        foreach (var c in fresh)
            if (c.Model.Type is DiscoveryType.StrictDns or DiscoveryType.LogicalDns)
                await c.InitializeAsync(_stop.Token).ConfigureAwait(false);
        var goneWarming = new List<Cluster>();
        lock (_dynClusters)
            foreach (var n in removals)
                if (_dynClusters.Remove(n, out var d))
                {
                    d.StopWarmTimer();
                    if (d.Warming) goneWarming.Add(d.Live);
                }
        var gone = _clusters.Update(upserts, removals);
        gone.AddRange(goneWarming);
        DisposeLater(gone);
        _cdsVersion = version;
        Count(statPrefix, true, version);
        _initialClusters.FirstResponse(rejected: false);
        UpdateWarmingGauge();
        SubscriptionChanged(XdsTypes.Endpoint);
        return null;
    }

    /// <summary>The new and changed clusters of a large response, built in parallel (stats, circuit breakers, balancer:
    /// independent per cluster, and most of a 10,000-cluster push); null where the apply loop builds it itself (small
    /// responses, unchanged clusters, and clusters with SDS secrets, whose subscriptions are made on the update's thread).</summary>
    private Cluster?[] BuildClusters(List<(ProtoCluster Proto, ClusterModel Model, string Version)> models)
    {
        var built = new Cluster?[models.Count];
        if (models.Count < ParallelApply.Threshold) return built;
        ParallelApply.For(models.Count, i =>
        {
            var (proto, model, _) = models[i];
            if (model.Tls?.Common.UsesSecrets == true || Existing(_dynClusters, model.Name) is { } d && d.Proto.Equals(proto)) return;
            built[i] = _clusters.Create(model);
        });
        return built;
    }

    private static List<EndpointModel> EndpointsOf(Cluster c) =>
        c.PrioritySet.Hosts.Select(h => new EndpointModel(h.Address, h.Hostname, h.Locality, h.Weight, Priority: h.Priority,
            LocalityWeight: h.LocalityWeight == 0 ? null : h.LocalityWeight)).ToList();

    private void StartClusterWarmTimer(List<DynCluster> dyns, TimeSpan timeout)
    {
        var group = new WarmGroup(dyns.Count);
        foreach (var dyn in dyns) dyn.WarmTimer = group;
        group.Timer = AfterInitialFetchTimeout(timeout, () =>
        {
            var due = new List<DynCluster>();
            foreach (var dyn in dyns)
            {
                if (!dyn.Warming) continue;
                lock (_dynClusters)
                    if (!_dynClusters.TryGetValue(dyn.Live.Name, out var cur) || !ReferenceEquals(cur, dyn)) continue;
                _logger.LogWarning("cluster '{Cluster}': no EDS assignment within initial_fetch_timeout; using it without endpoints", dyn.Live.Name);
                dyn.Live.Stats.Counter("init_fetch_timeout").Inc();
                due.Add(dyn);
            }
            if (due.Count > 0) PromoteClusters(due);
            return Task.CompletedTask;
        });
    }

    /// <summary>Runs <paramref name="onTimeout"/> under the update gate once <c>initial_fetch_timeout</c> passes, unless the
    /// returned source is cancelled first (the awaited resource arrived). Null for an infinite timeout (0s in config).</summary>
    private CancellationTokenSource? AfterInitialFetchTimeout(TimeSpan timeout, Func<Task> onTimeout)
    {
        if (timeout == Timeout.InfiniteTimeSpan) return null;
        var cts = new CancellationTokenSource();
        _ = Task.Run(async () =>
        {
            // Cancellation is the common case (the resource arrived): wait without throwing, 10,000 clusters warm at once.
            await Task.Delay(timeout, cts.Token).ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
            if (cts.IsCancellationRequested) return;
            await UnderGateAsync(onTimeout).ConfigureAwait(false);
        });
        return cts;
    }

    /// <summary>Warming clusters that got their endpoints (or timed out) join the cluster map, in one swap.</summary>
    private void PromoteClusters(List<DynCluster> dyns)
    {
        var live = new List<Cluster>(dyns.Count);
        foreach (var dyn in dyns)
        {
            dyn.Warming = false;
            dyn.StopWarmTimer();
            live.Add(dyn.Live);
        }
        DisposeLater(_clusters.Update(live, []));
        UpdateWarmingGauge();
    }

    private void UpdateWarmingGauge()
    {
        var n = 0;
        var initial = _initialClusters.Waiting ? new HashSet<string>(StringComparer.Ordinal) : null;
        lock (_dynClusters)
            foreach (var (name, d) in _dynClusters)
                if (d.Warming)
                {
                    n++;
                    initial?.Add(name);
                }
        _stats.Gauge("cluster_manager.warming_clusters").Set(n);
        if (initial is not null) _initialClusters.StillWarming(initial);
    }

    private void DisposeLater(List<Cluster> gone)
    {
        if (gone.Count == 0) return;
        // Envoy drains a removed cluster's connection pools at once: no new request reaches it, and its idle HTTP/1.1
        // connections close now. In-flight requests hold their Cluster; the rest of it goes once they had time to finish.
        foreach (var c in gone) c.DrainConnectionPools();
        var delay = _runtime.DrainTime;
        _ = Task.Run(async () =>
        {
            try
            {
                await Task.Delay(delay, _stop.Token).ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
            }
            foreach (var c in gone) c.Dispose();
        });
    }

    // ---------------------------------------------------------------- EDS

    /// <summary>One resource of an EDS response after the independent part of its processing.</summary>
    private readonly record struct ParsedAssignment(string? Name, string Version, List<EndpointModel>? Endpoints, bool Unchanged,
        ConfigErrors? Errors, List<string>? Extra);

    private ParsedAssignment ParseAssignment(Any any, string version, int index)
    {
        // State of the world re-sends every subscribed assignment: the same bytes as the accepted one change nothing.
        if (any.TypeUrl == XdsTypes.Endpoint && _assignmentNames.TryGetValue(any.Value, out var same))
            return new(same, version, null, Unchanged: true, null, null);
        // The plain case straight from the wire; anything else takes the full path below, which names what is wrong.
        if (any.TypeUrl == XdsTypes.Endpoint && LoadAssignmentWireTranslator.TryTranslate(any.Value.Span, out var plainName) is { } plain)
            return new(plainName, version, plain, false, null, null);
        var extra = new List<string>(0);
        if (DecodeOne(any, index, ProtoCla.Parser, XdsTypes.Endpoint, extra) is not { } proto) return new(null, version, null, false, null, extra);
        var name = proto.ClusterName;
        var errors = new ConfigErrors();
        if (string.IsNullOrEmpty(name))
        {
            errors.Add("", "a ClusterLoadAssignment needs a cluster_name");
            return new(null, version, null, false, errors, null);
        }
        List<EndpointModel>? eps = null;
        Validate(() =>
        {
            SupportChecker.Check(proto, name, errors);
            eps = ClusterTranslator.TranslateLoadAssignment(proto, name, errors, DiscoveryType.Eds);
            return true;
        }, name, errors);
        return new(name, version, eps, false, errors, null);
    }

    private string? ApplyEndpoints(string version, List<(Any Any, string? Version)> resources, IReadOnlyList<string>? removed)
    {
        // Decoding, checking and translating each assignment is independent of the others (and most of the work).
        var items = new ParsedAssignment[resources.Count];
        ParallelApply.For(items.Length, i => items[i] = ParseAssignment(resources[i].Any, resources[i].Version ?? version, i));
        var extra = new List<string>();
        var errors = new ConfigErrors();
        var parsed = new List<(string Name, ByteString Raw, List<EndpointModel> Endpoints, string Version)>();
        var unchanged = new List<(string Name, string Version)>();
        for (var i = 0; i < items.Length; i++)
        {
            var item = items[i];
            if (item.Extra is { } x) extra.AddRange(x);
            if (item.Errors is { } e) errors.AddRange(e);
            if (item.Unchanged) unchanged.Add((item.Name!, item.Version));
            else if (item.Endpoints is { } eps) parsed.Add((item.Name!, resources[i].Any.Value, eps, item.Version));
        }
        var touched = new HashSet<string>(StringComparer.Ordinal);
        foreach (var (name, _, _, _) in parsed) touched.Add(name);
        if (removed is not null) touched.UnionWith(removed);
        var rejected = errors.HasErrors || extra.Count > 0;
        // One pass over the clusters: which use each service name of the response (active ones, and warming ones
        // waiting for it). Nothing is built for clusters the response does not name.
        var named = new HashSet<string>(touched, StringComparer.Ordinal);
        foreach (var (name, _) in unchanged) named.Add(name);
        var byService = EdsClustersByServiceName(named);
        foreach (var (name, _) in unchanged)
            if (byService.TryGetValue(name, out var users))
                foreach (var (c, _) in users)
                {
                    c.Stats.UpdateAttempt.Inc();
                    c.Stats.Counter(rejected ? "update_rejected" : "update_no_rebuild").Inc();
                }
        foreach (var name in touched)
            if (byService.TryGetValue(name, out var users))
                foreach (var (c, _) in users)
                {
                    c.Stats.UpdateAttempt.Inc();
                    (rejected ? c.Stats.Counter("update_rejected") : c.Stats.UpdateSuccess).Inc();
                }
        if (rejected)
        {
            EndEdsWarmingOnFailure(sourceKey: null);
            return Format(errors, extra);
        }

        var now = DateTimeOffset.UtcNow;
        foreach (var (name, v) in unchanged) _assignments[name] = _assignments[name] with { Version = v };
        foreach (var (name, raw, eps, v) in parsed)
        {
            if (_assignments.TryGetValue(name, out var replaced)) _assignmentNames.Remove(replaced.Raw);
            _assignments[name] = new Assignment(raw, eps, v, now);
            _assignmentNames[raw] = name;
        }
        if (removed is not null)
            foreach (var n in removed)
                if (_assignments.Remove(n, out var gone)) _assignmentNames.Remove(gone.Raw);
        var updates = new List<(Cluster Cluster, DynCluster? Warming, List<EndpointModel> Endpoints)>();
        foreach (var serviceName in touched)
        {
            if (!byService.TryGetValue(serviceName, out var users)) continue;
            var eps = _assignments.TryGetValue(serviceName, out var a) ? a.Endpoints : [];
            foreach (var (c, warming) in users) updates.Add((c, warming, eps));
        }
        // Each cluster's new host set is its own (a 10,000-assignment push builds 10,000 of them).
        ParallelApply.For(updates.Count, i => updates[i].Cluster.SetEdsEndpoints(updates[i].Endpoints));
        var promoted = new List<DynCluster>();
        foreach (var (c, warming, _) in updates)
        {
            if (warming is not null && SecretsReady(warming.Live.Model)) promoted.Add(warming);
            else if (warming is null && _staticEdsInit.TryGetValue(c.Name, out var init)) init.Assigned.TrySetResult();
        }
        if (promoted.Count > 0) PromoteClusters(promoted);
        return null;
    }

    /// <summary>Envoy's EDS onConfigUpdateFailed: a rejected (or unreadable) update ends the initial fetch of the EDS
    /// clusters still waiting for their first assignment, from <paramref name="sourceKey"/> (null: any source, as a
    /// rejection reaches every watch of the type); they start without endpoints, as after initial_fetch_timeout, so a
    /// control plane sending bad endpoints cannot hold initialization (with a 0s timeout: forever). Under the gate.</summary>
    private void EndEdsWarmingOnFailure(string? sourceKey)
    {
        var due = new List<DynCluster>();
        lock (_dynClusters)
            foreach (var d in _dynClusters.Values)
                if (d.Warming && d.Live.Model.EdsConfig is { } src && (sourceKey is null || src.Key == sourceKey) && SecretsReady(d.Live.Model))
                    due.Add(d);
        foreach (var d in due)
            _logger.LogWarning("cluster '{Cluster}': EDS update failed before its first assignment; using it without endpoints", d.Live.Name);
        if (due.Count > 0) PromoteClusters(due);
        foreach (var c in _clusters.Clusters.Values)
            if (_staticEdsInit.TryGetValue(c.Name, out var init) && (sourceKey is null || c.Model.EdsConfig?.Key == sourceKey))
                init.Assigned.TrySetResult();
    }

    /// <summary>The EDS clusters using one of <paramref name="names"/>, by service name: active ones (no DynCluster) and
    /// warming ones (with theirs).</summary>
    private Dictionary<string, List<(Cluster Cluster, DynCluster? Warming)>> EdsClustersByServiceName(HashSet<string> names)
    {
        var map = new Dictionary<string, List<(Cluster, DynCluster?)>>(StringComparer.Ordinal);
        void Add(string name, Cluster c, DynCluster? d)
        {
            if (!map.TryGetValue(name, out var list)) map[name] = list = new List<(Cluster, DynCluster?)>(1);
            list.Add((c, d));
        }
        foreach (var c in _clusters.Clusters.Values)
            if (c.Model is { Type: DiscoveryType.Eds, EdsServiceName: { } n } && names.Contains(n)) Add(n, c, null);
        lock (_dynClusters)
            foreach (var d in _dynClusters.Values)
                if (d.Warming && d.Live.Model.EdsServiceName is { } n && names.Contains(n)) Add(n, d.Live, d);
        return map;
    }

    // ---------------------------------------------------------------- LDS

    private async Task<string?> ApplyListenersAsync(string version, List<(Any, string?)> resources, IReadOnlyList<string>? removed, bool sotw)
    {
        const string statPrefix = "listener_manager.lds.";
        var extra = new List<string>();
        var decoded = Decode(resources, version, ProtoListener.Parser, XdsTypes.Listener, extra);
        var errors = new ConfigErrors();
        var names = new HashSet<string>(StringComparer.Ordinal);
        var models = TranslateNamed(decoded, "listener", "LDS", _staticListeners, l => l.Name,
            (proto, name, errs) => CheckSources(ListenerTranslator.Translate(proto, name, errs, ClusterKnown), name, errs), _listenerErrors, names, errors,
            (name, proto) => Existing(_dynListeners, name) is { } d && d.Proto.Equals(proto) ? d.Model : null);
        // Addresses must stay unique across static listeners and the listeners this update leaves in place.
        var removing = new HashSet<string>(StringComparer.Ordinal);
        lock (_dynListeners)
        {
            if (sotw) foreach (var n in _dynListeners.Keys) { if (!names.Contains(n)) removing.Add(n); }
            else if (removed is not null) foreach (var n in removed) if (_dynListeners.ContainsKey(n)) removing.Add(n);
        }
        var taken = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var l in _runtime.Listeners)
            if (_staticListeners.Contains(l.Model.Name)) taken[AddressKey(l.Model.Address)] = l.Model.Name;
        lock (_dynListeners)
            foreach (var (n, d) in _dynListeners)
                if (!removing.Contains(n) && !names.Contains(n)) taken[AddressKey(d.Model.Address)] = n;
        foreach (var (_, m, _) in models)
        {
            if (!m.Address.IsPipe && m.Address.Port == 0) continue;
            var key = AddressKey(m.Address);
            if (taken.TryGetValue(key, out var other) && other != m.Name)
                errors.Add(m.Name + ".address", $"error adding listener '{m.Name}': duplicate listener address {m.Address} (listener '{other}')");
            else taken[key] = m.Name;
        }
        _ldsInitial.TrySetResult();
        if (errors.HasErrors || extra.Count > 0)
        {
            _initialListeners.FirstResponse(rejected: true);
            Count(statPrefix, false, version);
            return Format(errors, extra);
        }

        var now = DateTimeOffset.UtcNow;
        // Removals first, as Envoy's LDS does; their servers stop once the listeners of this update took their sockets.
        var stopping = new List<ListenerHost>();
        var released = new List<(string Key, ListenSocket.Lease Lease)>();
        foreach (var n in removing)
        {
            DynListener? d;
            lock (_dynListeners) _dynListeners.Remove(n, out d);
            if (d is null) continue;
            d.WarmTimer?.Cancel();
            if (d.Host is { } host) stopping.Add(host);
            if (d.Reserved is { } r) released.Add((AddressKey(d.Model.Address), r));
            _stats.Counter("listener_manager.listener_removed").Inc();
        }
        var takeovers = TakeOverSockets(models, stopping, released);
        foreach (var (proto, model, v) in models)
        {
            _listenerErrors.Remove(model.Name);
            DynListener? existing;
            lock (_dynListeners) _dynListeners.TryGetValue(model.Name, out existing);
            if (existing is not null && existing.Proto.Equals(proto))
            {
                existing.Version = v;
                continue;
            }
            // One connection manager per HTTP chain; the listener warms until every RDS chain has its routes.
            var hcms = new List<HttpConnectionManager?>();
            var ready = true;
            foreach (var fc in model.AllFilterChains)
            {
                if (fc.HttpConnectionManager is not { } hcmModel)
                {
                    hcms.Add(null);
                    continue;
                }
                var hcm = _runtime.CreateConnectionManager(hcmModel);
                if (hcmModel.RdsRouteConfigName is { } rn)
                {
                    if (_routes.TryGetValue(rn, out var r)) hcm.RouteConfig = r.Model;
                    else ready = false;
                }
                hcms.Add(hcm);
            }
            if (!SecretsReady(model))
            {
                // Envoy: a listener whose certificate has not arrived does not open its port until it does.
                ready = false;
                var contexts = model.AllFilterChains.Where(fc => fc.Tls is not null).Select(fc => fc.Tls!.Common).ToList();
                WhenSecretsReady(contexts, ActivateReadyListenersAsync);
            }
            existing?.WarmTimer?.Cancel();
            var dyn = new DynListener { Proto = proto, Model = model, Version = v, Updated = now, Host = existing?.Host };
            // A listener still warming on a socket it took over keeps it while it stays on that address.
            dyn.Reserved = takeovers.GetValueOrDefault(model.Name) ?? existing?.Reserved;
            lock (_dynListeners) _dynListeners[model.Name] = dyn;
            if (existing is null) _stats.Counter("listener_manager.listener_added").Inc();
            else _stats.Counter("listener_manager.listener_modified").Inc();
            if (ready) await ActivateAsync(dyn, model, hcms).ConfigureAwait(false);
            else
            {
                dyn.Pending = (model, hcms);
                // Secrets bound their own wait (their initial_fetch_timeout, see WhenSecretsReady); this timer is RDS's.
                if (!HasAllRoutes(hcms)) StartListenerWarmTimer(dyn, RdsWarmTimeout(hcms));
            }
        }
        foreach (var host in stopping) StopListener(host);
        foreach (var (_, lease) in released) await lease.DisposeAsync().ConfigureAwait(false);
        _ldsVersion = version;
        Count(statPrefix, true, version);
        _initialListeners.FirstResponse(rejected: false);
        UpdateListenerGauges();
        SubscriptionChanged(XdsTypes.Route);
        return null;
    }

    private static string AddressKey(SocketAddressModel a) => a.ToString();

    /// <summary>
    /// Envoy's listener manager gives a listener added on the address of a draining one that listener's socket instead
    /// of binding the address again (ListenerManagerImpl: "clones listener sockets" of a draining listener with a
    /// compatible address). Here: each listener of the update that is new or moves to another address gets a lease on
    /// the socket a listener leaving that address holds — one this update removes (<paramref name="stopping"/>, or the
    /// reservation of one still warming in <paramref name="released"/>) or one that moves away. All leases are taken
    /// before anything starts or stops, so the order of the response does not matter and no connection is refused.
    /// Port 0 addresses are never shared.
    /// </summary>
    private Dictionary<string, ListenSocket.Lease> TakeOverSockets(List<(ProtoListener Proto, ListenerModel Model, string Version)> models,
        List<ListenerHost> stopping, List<(string Key, ListenSocket.Lease Lease)> released)
    {
        var leases = new Dictionary<string, ListenSocket.Lease>(StringComparer.Ordinal);
        var newKeys = new Dictionary<string, string>(StringComparer.Ordinal);
        var arriving = new List<ListenerModel>();
        foreach (var (_, m, _) in models)
        {
            var key = AddressKey(m.Address);
            newKeys[m.Name] = key;
            var existing = Existing(_dynListeners, m.Name);
            if (existing is not null && AddressKey(existing.Model.Address) == key) continue;
            // A warming listener moving elsewhere gives up the socket it had taken over.
            if (existing?.Reserved is { } r)
            {
                released.Add((AddressKey(existing.Model.Address), r));
                existing.Reserved = null;
            }
            if (m.Address.IsPipe || m.Address.Port != 0) arriving.Add(m);
        }
        if (arriving.Count == 0) return leases;
        var leaving = new Dictionary<string, ListenSocket>(StringComparer.Ordinal);
        foreach (var h in stopping)
            if (h.Socket is { } s) leaving.TryAdd(AddressKey(h.Model.Address), s);
        foreach (var (key, lease) in released) leaving.TryAdd(key, lease.Socket);
        foreach (var h in _runtime.Listeners)
            if (h.Socket is { } s && newKeys.TryGetValue(h.Model.Name, out var to) && to != AddressKey(h.Model.Address))
                leaving.TryAdd(AddressKey(h.Model.Address), s);
        foreach (var m in arriving)
            if (leaving.Remove(AddressKey(m.Address), out var socket) && socket.Retain() is { } lease)
                leases[m.Name] = lease;
        return leases;
    }

    /// <summary>Route validation (validate_clusters) knows active and warming clusters, as Envoy's hasCluster.</summary>
    private bool ClusterKnown(string name)
    {
        if (_clusters.Get(name) is not null) return true;
        lock (_dynClusters) return _dynClusters.ContainsKey(name);
    }

    /// <summary>A listener waits for each of its chains' route configurations up to that chain's initial_fetch_timeout, so
    /// for the longest of them (0s, waiting forever, wins).</summary>
    private static TimeSpan RdsWarmTimeout(IReadOnlyList<HttpConnectionManager?> hcms)
    {
        var timeout = TimeSpan.Zero;
        foreach (var h in hcms)
        {
            if (h?.Model.RdsRouteConfigName is null || h.RouteConfig is not null) continue;
            var t = h.Model.RdsInitialFetchTimeout;
            if (t == Timeout.InfiniteTimeSpan) return t;
            if (t > timeout) timeout = t;
        }
        return timeout;
    }

    private static bool HasAllRoutes(IReadOnlyList<HttpConnectionManager?> hcms)
    {
        foreach (var h in hcms)
            if (h?.Model.RdsRouteConfigName is not null && h.RouteConfig is null) return false;
        return true;
    }

    /// <summary>Puts a listener's new model and connection managers in service: in place when only its filter chains
    /// changed, otherwise a new server (on the old one's socket when the address stays; the old one drains).</summary>
    private async Task ActivateAsync(DynListener dyn, ListenerModel model, IReadOnlyList<HttpConnectionManager?> hcms)
    {
        dyn.Pending = null;
        var old = dyn.Host;
        if (old is not null && ListenerHost.CanUpdateInPlace(old.Model, model))
        {
            old.UpdateFilterChains(model, hcms, _runtime.StartDrain());
            _stats.Counter("listener_manager.listener_in_place_updated").Inc();
            return;
        }
        // Same address, changes that need a new server (transport socket, listener stats, codec limits): the new server
        // takes over the old one's listening socket, so no connection is refused while the old one drains.
        // A new listener (or one moving) on the address of one leaving it starts on the socket it took over.
        var socket = old is not null && AddressKey(old.Model.Address) == AddressKey(model.Address) ? old.Socket : dyn.Reserved?.Socket;
        try
        {
            dyn.Host = await _runtime.StartListenerAsync(model, hcms, socket, _stop.Token).ConfigureAwait(false);
        }
        catch (Exception ex)
        {
            dyn.Host = null;
            _stats.Counter("listener_manager.listener_create_failure").Inc();
            _listenerErrors[model.Name] = Failure(dyn.Proto, ex.Message, dyn.Version);
            _logger.LogError("LDS listener '{Name}' could not start: {Error}", model.Name, ex.Message);
        }
        // The server holds the socket now (or failed to start: the socket closes unless another listener uses it).
        if (dyn.Reserved is { } reserved)
        {
            dyn.Reserved = null;
            await reserved.DisposeAsync().ConfigureAwait(false);
        }
        if (old is not null) StopListener(old);
    }

    private void StopListener(ListenerHost host)
    {
        _runtime.RemoveListener(host);
        host.StartDraining(_runtime.StartDrain()); // HTTP/1 responses from now on ask the client to reconnect (to the new listener)
        var drain = _runtime.DrainTime;
        var draining = _stats.Gauge("listener_manager.total_listeners_draining");
        draining.Inc();
        _ = Task.Run(async () =>
        {
            try
            {
                await host.DrainAndDisposeAsync(drain).ConfigureAwait(false);
            }
            finally
            {
                draining.Dec();
            }
        });
    }

    private void StartListenerWarmTimer(DynListener dyn, TimeSpan timeout) =>
        dyn.WarmTimer = AfterInitialFetchTimeout(timeout, async () =>
        {
            if (dyn.Pending is not { } p) return;
            lock (_dynListeners)
                if (!_dynListeners.TryGetValue(dyn.Model.Name, out var cur) || !ReferenceEquals(cur, dyn)) return;
            _logger.LogWarning("listener '{Name}': no RDS route configuration within initial_fetch_timeout; serving without routes", dyn.Model.Name);
            await ActivateAsync(dyn, p.Model, p.Hcms).ConfigureAwait(false);
            UpdateListenerGauges();
            SubscriptionChanged(XdsTypes.Route);
        });

    private void UpdateListenerGauges()
    {
        int warming = 0, active = 0;
        var initial = _initialListeners.Waiting ? new HashSet<string>(StringComparer.Ordinal) : null;
        lock (_dynListeners)
            foreach (var (name, d) in _dynListeners)
                if (d.Pending is not null && d.Host is null)
                {
                    warming++;
                    initial?.Add(name);
                }
        if (initial is not null) _initialListeners.StillWarming(initial);
        active = _runtime.Listeners.Count;
        _stats.Gauge("listener_manager.total_listeners_warming").Set(warming);
        _stats.Gauge("listener_manager.total_listeners_active").Set(active);
    }

    // ---------------------------------------------------------------- RDS

    private async Task<string?> ApplyRoutesAsync(string version, List<(Any, string?)> resources, IReadOnlyList<string>? removed)
    {
        var extra = new List<string>();
        var decoded = Decode(resources, version, ProtoRoute.Parser, XdsTypes.Route, extra);
        var errors = new ConfigErrors();
        var parsed = new List<(ProtoRoute Proto, RouteConfigurationModel Model, string Version)>();
        foreach (var (proto, v) in decoded)
        {
            var name = proto.Name;
            if (string.IsNullOrEmpty(name)) { errors.Add("", "a RouteConfiguration resource needs a name"); continue; }
            RouteConfigurationModel? model = null;
            Validate(() =>
            {
                SupportChecker.Check(proto, name, errors);
                model = RouteTranslator.Translate(proto, name, errors, ClusterKnown, validateByDefault: false);
                return true;
            }, name, errors);
            if (model is not null) parsed.Add((proto, model, v));
        }
        var rejected = errors.HasErrors || extra.Count > 0;
        var hcms = RdsConnectionManagers();
        foreach (var name in decoded.Select(d => d.Proto.Name).Distinct())
            foreach (var prefix in hcms.Where(h => h.Model.RdsRouteConfigName == name).Select(h => h.Model.StatPrefix).Distinct())
            {
                var p = $"http.{prefix}.rds.{name}.";
                _stats.Counter(p, "update_attempt").Inc();
                _stats.Counter(p + (rejected ? "update_rejected" : "update_success")).Inc();
                if (!rejected)
                {
                    _stats.Counter(p, "config_reload").Inc();
                    _stats.Gauge(p, "version").Set(VersionHash(version));
                }
            }
        if (rejected)
        {
            foreach (var (proto, v) in decoded) _routeErrors[proto.Name] = Failure(proto, Format(errors, extra), v);
            await EndRdsWarmingOnFailureAsync(sourceKey: null).ConfigureAwait(false);
            return Format(errors, extra);
        }

        var now = DateTimeOffset.UtcNow;
        foreach (var (proto, model, v) in parsed)
        {
            _routeErrors.Remove(proto.Name);
            _routes[proto.Name] = new DynRoute(proto, model, v, now);
            foreach (var h in hcms)
                if (h.Model.RdsRouteConfigName == proto.Name) h.RouteConfig = model;
        }
        // Envoy keeps a route configuration a listener still uses; delta removals only forget it.
        if (removed is not null) foreach (var n in removed) _routes.Remove(n);

        // Listeners warming for these routes start now.
        await ActivateReadyListenersAsync().ConfigureAwait(false);
        return null;
    }

    /// <summary>Envoy's RDS onConfigUpdateFailed: a rejected (or unreadable) update ends the warming of listeners waiting
    /// for route configurations from <paramref name="sourceKey"/> (null: any source); they start, the routes they lack
    /// answer 404 until they arrive, as after initial_fetch_timeout. Under the gate.</summary>
    private async Task EndRdsWarmingOnFailureAsync(string? sourceKey)
    {
        List<DynListener> due = [];
        lock (_dynListeners)
            foreach (var d in _dynListeners.Values)
                if (d.Pending is { } p && !HasAllRoutes(p.Hcms) && SecretsReady(p.Model) && WaitsForRoutesFrom(p.Hcms, sourceKey))
                    due.Add(d);
        foreach (var d in due)
        {
            _logger.LogWarning("listener '{Name}': RDS update failed before its route configuration arrived; serving without routes", d.Model.Name);
            d.WarmTimer?.Cancel();
            var p = d.Pending!.Value;
            await ActivateAsync(d, p.Model, p.Hcms).ConfigureAwait(false);
        }
        if (due.Count == 0) return;
        UpdateListenerGauges();
        SubscriptionChanged(XdsTypes.Route);
    }

    private static bool WaitsForRoutesFrom(IReadOnlyList<HttpConnectionManager?> hcms, string? sourceKey)
    {
        if (sourceKey is null) return true;
        foreach (var h in hcms)
            if (h is { RouteConfig: null } && h.Model.RdsConfig?.Key == sourceKey) return true;
        return false;
    }

    /// <summary>Under the gate: warming listeners whose routes and secrets have all arrived start.</summary>
    private async Task ActivateReadyListenersAsync()
    {
        List<DynListener> ready;
        lock (_dynListeners)
            ready = _dynListeners.Values.Where(d => d.Pending is { } p && HasAllRoutes(p.Hcms) && SecretsReady(p.Model)).ToList();
        foreach (var d in ready)
        {
            var p = d.Pending!.Value;
            d.WarmTimer?.Cancel();
            await ActivateAsync(d, p.Model, p.Hcms).ConfigureAwait(false);
        }
        if (ready.Count > 0) UpdateListenerGauges();
    }

    private readonly Dictionary<string, UpdateFailureState> _routeErrors = new(StringComparer.Ordinal);

    private List<HttpConnectionManager> RdsConnectionManagers()
    {
        var list = new List<HttpConnectionManager>();
        foreach (var l in _runtime.Listeners)
            foreach (var h in l.ConnectionManagers)
                if (h.Model.RdsRouteConfigName is not null) list.Add(h);
        lock (_dynListeners)
            foreach (var d in _dynListeners.Values)
                if (d.Pending is { } p)
                    foreach (var h in p.Hcms)
                        if (h?.Model.RdsRouteConfigName is not null) list.Add(h);
        return list;
    }

    // ---------------------------------------------------------------- admin

    /// <summary>Adds Envoy's dynamic sections (and error_state of rejected resources) to /config_dump.</summary>
    public void AddToConfigDump(ClustersConfigDump clusters, ListenersConfigDump listeners, RoutesConfigDump routes, EndpointsConfigDump? endpoints)
    {
        _gate.Wait();
        try
        {
            clusters.VersionInfo = _cdsVersion;
            lock (_dynClusters)
                foreach (var (name, d) in _dynClusters.OrderBy(p => p.Key, StringComparer.Ordinal))
                {
                    var dc = new ClustersConfigDump.Types.DynamicCluster
                    {
                        VersionInfo = d.Version,
                        Cluster = Any.Pack(d.Proto),
                        LastUpdated = Timestamp.FromDateTimeOffset(d.Updated),
                    };
                    if (_clusterErrors.TryGetValue(name, out var err)) dc.ErrorState = err;
                    (d.Warming ? clusters.DynamicWarmingClusters : clusters.DynamicActiveClusters).Add(dc);
                }
            foreach (var (name, err) in _clusterErrors)
                if (!_dynClusters.ContainsKey(name))
                    clusters.DynamicActiveClusters.Add(new ClustersConfigDump.Types.DynamicCluster { ErrorState = err });

            listeners.VersionInfo = _ldsVersion;
            lock (_dynListeners)
                foreach (var (name, d) in _dynListeners.OrderBy(p => p.Key, StringComparer.Ordinal))
                {
                    var state = new ListenersConfigDump.Types.DynamicListenerState
                    {
                        VersionInfo = d.Version,
                        Listener = Any.Pack(d.Proto),
                        LastUpdated = Timestamp.FromDateTimeOffset(d.Updated),
                    };
                    var dl = new ListenersConfigDump.Types.DynamicListener { Name = name };
                    if (d.Host is null) dl.WarmingState = state;
                    else dl.ActiveState = state;
                    if (_listenerErrors.TryGetValue(name, out var err)) dl.ErrorState = err;
                    listeners.DynamicListeners.Add(dl);
                }
            foreach (var (name, err) in _listenerErrors)
                if (!_dynListeners.ContainsKey(name))
                    listeners.DynamicListeners.Add(new ListenersConfigDump.Types.DynamicListener { Name = name, ErrorState = err });

            // A rejected update leaves the last good route configuration in place, with error_state beside it (cleared by
            // the next accepted one); a configuration never accepted shows as error_state alone, as listeners do.
            foreach (var (name, r) in _routes.OrderBy(p => p.Key, StringComparer.Ordinal))
            {
                var dr = new RoutesConfigDump.Types.DynamicRouteConfig
                {
                    VersionInfo = r.Version,
                    RouteConfig = Any.Pack(r.Proto),
                    LastUpdated = Timestamp.FromDateTimeOffset(r.Updated),
                };
                if (_routeErrors.TryGetValue(name, out var err)) dr.ErrorState = err;
                routes.DynamicRouteConfigs.Add(dr);
            }
            foreach (var (name, err) in _routeErrors.OrderBy(p => p.Key, StringComparer.Ordinal))
                if (!_routes.ContainsKey(name))
                    routes.DynamicRouteConfigs.Add(new RoutesConfigDump.Types.DynamicRouteConfig { ErrorState = err });

            if (endpoints is not null)
                foreach (var (_, a) in _assignments.OrderBy(p => p.Key, StringComparer.Ordinal))
                    endpoints.DynamicEndpointConfigs.Add(new EndpointsConfigDump.Types.DynamicEndpointConfig
                    {
                        VersionInfo = a.Version,
                        EndpointConfig = new Any { TypeUrl = XdsTypes.Endpoint, Value = a.Raw },
                        LastUpdated = Timestamp.FromDateTimeOffset(a.Updated),
                    });
        }
        finally
        {
            _gate.Release();
        }
    }

    public async ValueTask DisposeAsync()
    {
        List<AdsClient> streams;
        lock (_streams) streams = _streams.Values.ToList();
        foreach (var c in streams) await c.DisposeAsync().ConfigureAwait(false);
        List<FilesystemSubscription> files;
        lock (_files) files = _files.Values.ToList();
        foreach (var f in files) await f.DisposeAsync().ConfigureAwait(false);
        _stop.Cancel();
        lock (_dynClusters)
            foreach (var d in _dynClusters.Values)
            {
                d.StopWarmTimer();
                if (d.Warming) d.Live.Dispose();
            }
        List<ListenerHost> hosts;
        lock (_dynListeners) hosts = _dynListeners.Values.Where(d => d.Host is not null).Select(d => d.Host!).ToList();
        foreach (var d in _dynListeners.Values)
        {
            d.WarmTimer?.Cancel();
            if (d.Reserved is { } r) await r.DisposeAsync().ConfigureAwait(false);
        }
        _ = hosts; // listener hosts are in the server's list and disposed with it
    }
}
