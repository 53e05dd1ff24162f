using System.Net;
using System.Net.Sockets;
using System.Threading.Channels;
using CSharpEnvoy.Config.Model.Xds;
using CSharpEnvoy.DataPlane.Stats;
using CSharpEnvoy.DataPlane.Upstream;
using Envoy.Config.Core.V3;
using Envoy.Service.Discovery.V3;
using Grpc.Core;
using Grpc.Net.Client;
using Microsoft.Extensions.Logging;

namespace CSharpEnvoy.DataPlane.Xds;

/// <summary>The v3 resource type URLs csenvoy subscribes to, in Envoy's ADS order (clusters and their endpoints
/// before listeners and their routes).</summary>
internal static class XdsTypes
{
    public const string Cluster = "type.googleapis.com/envoy.config.cluster.v3.Cluster";
    public const string Endpoint = "type.googleapis.com/envoy.config.endpoint.v3.ClusterLoadAssignment";
    public const string Listener = "type.googleapis.com/envoy.config.listener.v3.Listener";
    public const string Route = "type.googleapis.com/envoy.config.route.v3.RouteConfiguration";
    public const string Secret = Tls.SecretManager.TypeUrl;
    public static readonly string[] Ordered = [Cluster, Endpoint, Listener, Route, Secret];
}

/// <summary>What the client asks the applying side: which names to subscribe to, and to apply responses.</summary>
internal interface IXdsApplier
{
    /// <summary>The names of <paramref name="typeUrl"/> to request on the stream of config source
    /// <paramref name="sourceKey"/>: null for a wildcard subscription; an empty set means "not subscribed".</summary>
    IReadOnlySet<string>? Subscription(string typeUrl, string sourceKey);

    /// <summary>Applies a state-of-the-world response. Returns null (ACK) or the error detail (NACK; nothing changed).</summary>
    Task<string?> ApplySotwAsync(string typeUrl, string version, IReadOnlyList<Google.Protobuf.WellKnownTypes.Any> resources);

    /// <summary>Applies an incremental response. Returns null (ACK) or the error detail (NACK; nothing changed).</summary>
    Task<string?> ApplyDeltaAsync(string typeUrl, string systemVersion, IReadOnlyList<Resource> resources, IReadOnlyList<string> removed);
}

/// <summary>Envoy's <c>control_plane.connected_state</c>: 1 while at least one xDS stream has heard from its server.</summary>
internal sealed class ControlPlaneConnectedState(Gauge gauge)
{
    private int _connected;

    public void Up()
    {
        Interlocked.Increment(ref _connected);
        gauge.Set(1);
    }

    public void Down()
    {
        if (Interlocked.Decrement(ref _connected) <= 0) gauge.Set(0);
    }
}

/// <summary>Which stream an <see cref="AdsClient"/> runs: the aggregated one (all four types) or one per-type discovery
/// service (ListenerDiscoveryService, ClusterDiscoveryService, RouteDiscoveryService, EndpointDiscoveryService,
/// SecretDiscoveryService).</summary>
internal sealed record XdsStreamTarget(string Cluster, XdsApiType ApiType, string SourceKey, string? SingleType,
    XdsRateLimitModel? RateLimit = null)
{
    public static XdsStreamTarget Aggregated(AdsModel ads) => new(ads.Cluster, ads.ApiType, "ads", null, ads.RateLimit);

    public IReadOnlyList<string> Types => SingleType is null ? XdsTypes.Ordered : [SingleType];
}

/// <summary>
/// One xDS gRPC stream to a management server: over h2c (or a Unix socket) to a static cluster, state of the world or
/// delta, either the aggregated (ADS) stream or a per-type discovery service's. Keeps per type the last accepted
/// version and last nonce, ACKs and NACKs every response, re-subscribes when the applier's interest changes, and
/// reconnects with jittered exponential backoff while the last good configuration keeps serving.
/// </summary>
internal sealed class AdsClient : IAsyncDisposable
{
    private static readonly TimeSpan s_baseBackoff = TimeSpan.FromMilliseconds(500);
    private static readonly TimeSpan s_maxBackoff = TimeSpan.FromSeconds(30);

    private readonly XdsStreamTarget _target;
    private readonly Node _node;
    private readonly ClusterManager _clusters;
    private readonly ILogger _logger;
    private readonly ControlPlaneConnectedState _connected;
    private readonly ControlPlaneRateLimitStats _rateLimitStats;
    private readonly XdsRequestRateLimiter? _rateLimiter;
    private readonly CancellationTokenSource _stop = new();
    private readonly object _gate = new();
    private readonly Dictionary<string, TypeState> _types = new(StringComparer.Ordinal);
    private IXdsApplier? _applier;
    private Channel<object>? _outbox;
    private Task? _loop;

    private sealed class TypeState
    {
        public string Version = "";
        public string Nonce = "";
        /// <summary>Names as last sent on the current stream; null when nothing was sent yet on it.</summary>
        public HashSet<string>? Sent;
        public bool SentWildcard;
        /// <summary>Delta: the accepted version of each resource, for initial_resource_versions on reconnect.</summary>
        public readonly Dictionary<string, string> ResourceVersions = new(StringComparer.Ordinal);
    }

    public AdsClient(XdsStreamTarget target, Node node, ClusterManager clusters, ControlPlaneConnectedState connected,
        ControlPlaneRateLimitStats rateLimitStats, ILogger logger)
    {
        _target = target;
        _node = node;
        _clusters = clusters;
        _logger = logger;
        _connected = connected;
        _rateLimitStats = rateLimitStats;
        if (target.RateLimit is { } rl) _rateLimiter = new XdsRequestRateLimiter(rl, TimeProvider.System);
        foreach (var t in target.Types) _types[t] = new TypeState();
    }

    public XdsStreamTarget Target => _target;

    public bool IsDelta => _target.ApiType == XdsApiType.Delta;

    /// <summary>Completes when a stream has been opened and its first response arrived.</summary>
    public void Start(IXdsApplier applier)
    {
        _applier = applier;
        _loop = Task.Run(RunAsync);
    }

    /// <summary>The applier's interest in <paramref name="typeUrl"/> changed: send an updated request if it differs.</summary>
    public void SubscriptionChanged(string typeUrl)
    {
        lock (_gate)
        {
            if (_outbox is null || !_types.ContainsKey(typeUrl)) return; // the next stream sends it
            // While a response is applied, as Envoy pauses the other types during a CDS or LDS update, the new
            // subscriptions it causes (EDS for new clusters, RDS for new listeners) go out after its ACK.
            if (_applying)
            {
                _deferred.Add(typeUrl);
                return;
            }
            var req = BuildSubscriptionRequest(typeUrl, initial: false);
            if (req is not null) _outbox.Writer.TryWrite(req);
        }
    }

    /// <summary>Under <see cref="_gate"/>: set while a response is applied, until its ACK/NACK is queued.</summary>
    private bool _applying;
    private readonly HashSet<string> _deferred = new(StringComparer.Ordinal);

    private void BeginApply()
    {
        lock (_gate) _applying = true;
    }

    /// <summary>Under <see cref="_gate"/>, right after the ACK/NACK: sends the subscription changes the update caused.</summary>
    private void EndApply(Channel<object> outbox)
    {
        _applying = false;
        foreach (var t in XdsTypes.Ordered)
        {
            if (!_deferred.Remove(t)) continue;
            var req = BuildSubscriptionRequest(t, initial: false);
            if (req is not null) outbox.Writer.TryWrite(req);
        }
    }

    /// <summary>Delta: forgets removed resources and records accepted versions.</summary>
    internal void RecordDeltaVersions(string typeUrl, IReadOnlyList<Resource> resources, IReadOnlyList<string> removed)
    {
        lock (_gate)
        {
            var st = _types[typeUrl];
            foreach (var r in removed) st.ResourceVersions.Remove(r);
            foreach (var r in resources) st.ResourceVersions[r.Name] = r.Version;
        }
    }

    private async Task RunAsync()
    {
        var backoff = s_baseBackoff;
        while (!_stop.IsCancellationRequested)
        {
            var gotResponse = false;
            try
            {
                gotResponse = await RunStreamAsync(_stop.Token).ConfigureAwait(false);
            }
            catch (OperationCanceledException) when (_stop.IsCancellationRequested)
            {
                break;
            }
            catch (Exception ex)
            {
                _logger.LogWarning("xDS stream to cluster '{Cluster}' failed: {Error}", _target.Cluster, ex is RpcException rpc ? rpc.Status.ToString() : ex.Message);
            }
            finally
            {
                lock (_gate) _outbox = null;
            }
            if (_stop.IsCancellationRequested) break;
            if (gotResponse) backoff = s_baseBackoff;
            // Full jitter over [backoff/2, backoff].
            var delay = TimeSpan.FromMilliseconds(backoff.TotalMilliseconds * (0.5 + Random.Shared.NextDouble() * 0.5));
            backoff = TimeSpan.FromMilliseconds(Math.Min(backoff.TotalMilliseconds * 2, s_maxBackoff.TotalMilliseconds));
            try
            {
                await Task.Delay(delay, _stop.Token).ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
                break;
            }
        }
    }

    /// <summary>One stream's life. Returns whether any response was received on it.</summary>
    private async Task<bool> RunStreamAsync(CancellationToken ct)
    {
        var cluster = _clusters.Get(_target.Cluster);
        var host = cluster?.ChooseHost() ?? throw new InvalidOperationException($"xDS cluster '{_target.Cluster}' has no hosts");
        var address = host.Address;
        using var handler = new SocketsHttpHandler { UseProxy = false, EnableMultipleHttp2Connections = false, KeepAlivePingDelay = TimeSpan.FromSeconds(30) };
        // The cluster's UpstreamTlsContext (mTLS to the control plane, as Envoy Gateway's bootstrap): its certificate,
        // validation context and SNI, with h2 offered by ALPN as gRPC needs.
        var tls = cluster.Model.Tls;
        if (tls is not null)
        {
            handler.SslOptions = cluster.Tls!.ClientOptions(tls.Sni is { Length: > 0 } sni ? sni : null, http2: true, http11: false);
        }
        if (address.IsPipe)
        {
            var path = address.PipePath!;
            handler.ConnectCallback = async (_, token) =>
            {
                var socket = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
                try
                {
                    await socket.ConnectAsync(new UnixDomainSocketEndPoint(path), token).ConfigureAwait(false);
                    return new NetworkStream(socket, ownsSocket: true);
                }
                catch
                {
                    socket.Dispose();
                    throw;
                }
            };
        }
        var authority = address.IsPipe ? "localhost" : new SocketAddressText(address.Address, address.Port).ToString();
        using var channel = GrpcChannel.ForAddress((tls is null ? "http://" : "https://") + authority, new GrpcChannelOptions
        {
            HttpHandler = handler,
            DisposeHttpClient = false,
            MaxReceiveMessageSize = null,
        });
        using var streamCts = CancellationTokenSource.CreateLinkedTokenSource(ct);
        // One reader (the write loop), but not declared: only the general channel can count what is queued
        // (control_plane.pending_requests under rate_limit_settings).
        var outbox = Channel.CreateUnbounded<object>();
        var gotResponse = IsDelta
            ? await PumpAsync(OpenDelta(channel, streamCts.Token), OnDeltaResponseAsync, outbox, streamCts).ConfigureAwait(false)
            : await PumpAsync(OpenSotw(channel, streamCts.Token), OnSotwResponseAsync, outbox, streamCts).ConfigureAwait(false);
        _logger.LogWarning("xDS stream to cluster '{Cluster}' closed by the control plane", _target.Cluster);
        return gotResponse;
    }

    /// <summary>The state-of-the-world call: ADS, or the per-type service's Stream* method.</summary>
    private AsyncDuplexStreamingCall<DiscoveryRequest, DiscoveryResponse> OpenSotw(GrpcChannel channel, CancellationToken ct) => _target.SingleType switch
    {
        null => new AggregatedDiscoveryService.AggregatedDiscoveryServiceClient(channel).StreamAggregatedResources(cancellationToken: ct),
        XdsTypes.Listener => new Envoy.Service.Listener.V3.ListenerDiscoveryService.ListenerDiscoveryServiceClient(channel).StreamListeners(cancellationToken: ct),
        XdsTypes.Cluster => new Envoy.Service.Cluster.V3.ClusterDiscoveryService.ClusterDiscoveryServiceClient(channel).StreamClusters(cancellationToken: ct),
        XdsTypes.Route => new Envoy.Service.Route.V3.RouteDiscoveryService.RouteDiscoveryServiceClient(channel).StreamRoutes(cancellationToken: ct),
        XdsTypes.Secret => new Envoy.Service.Secret.V3.SecretDiscoveryService.SecretDiscoveryServiceClient(channel).StreamSecrets(cancellationToken: ct),
        _ => new Envoy.Service.Endpoint.V3.EndpointDiscoveryService.EndpointDiscoveryServiceClient(channel).StreamEndpoints(cancellationToken: ct),
    };

    /// <summary>The delta call: ADS, or the per-type service's Delta* method.</summary>
    private AsyncDuplexStreamingCall<DeltaDiscoveryRequest, DeltaDiscoveryResponse> OpenDelta(GrpcChannel channel, CancellationToken ct) => _target.SingleType switch
    {
        null => new AggregatedDiscoveryService.AggregatedDiscoveryServiceClient(channel).DeltaAggregatedResources(cancellationToken: ct),
        XdsTypes.Listener => new Envoy.Service.Listener.V3.ListenerDiscoveryService.ListenerDiscoveryServiceClient(channel).DeltaListeners(cancellationToken: ct),
        XdsTypes.Cluster => new Envoy.Service.Cluster.V3.ClusterDiscoveryService.ClusterDiscoveryServiceClient(channel).DeltaClusters(cancellationToken: ct),
        XdsTypes.Route => new Envoy.Service.Route.V3.RouteDiscoveryService.RouteDiscoveryServiceClient(channel).DeltaRoutes(cancellationToken: ct),
        XdsTypes.Secret => new Envoy.Service.Secret.V3.SecretDiscoveryService.SecretDiscoveryServiceClient(channel).DeltaSecrets(cancellationToken: ct),
        _ => new Envoy.Service.Endpoint.V3.EndpointDiscoveryService.EndpointDiscoveryServiceClient(channel).DeltaEndpoints(cancellationToken: ct),
    };

    /// <summary>Runs one ADS stream of either flavour: a writer draining the outbox, the subscriptions sent, then every
    /// response handed to <paramref name="onResponse"/> until the control plane closes the stream. True when at least
    /// one response arrived (the caller resets its backoff then).</summary>
    private async Task<bool> PumpAsync<TRequest, TResponse>(AsyncDuplexStreamingCall<TRequest, TResponse> call,
        Func<TResponse, Channel<object>, Task> onResponse, Channel<object> outbox, CancellationTokenSource streamCts)
    {
        using (call)
        {
            var gotResponse = false;
            var writer = WriteLoopAsync(outbox.Reader, m => call.RequestStream.WriteAsync((TRequest)m), streamCts);
            OpenStream(outbox);
            try
            {
                while (await call.ResponseStream.MoveNext(streamCts.Token).ConfigureAwait(false))
                {
                    if (!gotResponse) _connected.Up();
                    gotResponse = true;
                    await onResponse(call.ResponseStream.Current, outbox).ConfigureAwait(false);
                }
            }
            finally
            {
                if (gotResponse) _connected.Down();
                outbox.Writer.TryComplete();
                streamCts.Cancel();
                await writer.ConfigureAwait(false);
            }
            return gotResponse;
        }
    }

    private sealed record SocketAddressText(string Address, int Port)
    {
        public override string ToString() => Address.Contains(':') ? $"[{Address}]:{Port}" : $"{Address}:{Port}";
    }

    /// <summary>Sends the subscriptions of a fresh stream, in ADS order, the node on the first one only.</summary>
    private void OpenStream(Channel<object> outbox)
    {
        lock (_gate)
        {
            _outbox = outbox;
            _applying = false;
            _deferred.Clear(); // the fresh stream subscribes to everything below
            var first = true;
            foreach (var t in _target.Types)
            {
                _types[t].Sent = null;
                _types[t].SentWildcard = false;
                _types[t].Nonce = "";
                var req = BuildSubscriptionRequest(t, initial: true);
                if (req is null) continue;
                if (first)
                {
                    if (req is DiscoveryRequest d) d.Node = _node;
                    else ((DeltaDiscoveryRequest)req).Node = _node;
                    first = false;
                }
                outbox.Writer.TryWrite(req);
            }
            if (first) _pendingNode = true;
        }
    }

    /// <summary>Set when a stream opened with nothing to subscribe to yet: the node goes on its first request.</summary>
    private bool _pendingNode;

    private async Task WriteLoopAsync(ChannelReader<object> reader, Func<object, Task> write, CancellationTokenSource streamCts)
    {
        long held = 0; // requests this stream counts in control_plane.pending_requests
        try
        {
            await foreach (var m in reader.ReadAllAsync(streamCts.Token).ConfigureAwait(false))
            {
                if (_rateLimiter is not null)
                {
                    // rate_limit_settings: without a token the request (and those queued behind it) waits for the next.
                    for (var wait = _rateLimiter.TryTake(); wait > TimeSpan.Zero; wait = _rateLimiter.TryTake())
                    {
                        _rateLimitStats.Enforced.Inc();
                        var queued = 1 + (reader.CanCount ? reader.Count : 0);
                        _rateLimitStats.Pending.Add(queued - held);
                        held = queued;
                        await Task.Delay(wait, streamCts.Token).ConfigureAwait(false);
                    }
                    if (held > 0)
                    {
                        held--;
                        _rateLimitStats.Pending.Dec();
                    }
                }
                await write(m).ConfigureAwait(false);
            }
        }
        catch (Exception)
        {
            // The stream broke: make the reader notice.
            streamCts.Cancel();
        }
        finally
        {
            _rateLimitStats.Pending.Add(-held);
        }
    }

    /// <summary>Under <see cref="_gate"/>. Null when the subscription is unchanged (or there is none to send).</summary>
    private object? BuildSubscriptionRequest(string typeUrl, bool initial)
    {
        var st = _types[typeUrl];
        var names = _applier?.Subscription(typeUrl, _target.SourceKey);
        var wildcard = names is null;
        if (!wildcard && names!.Count == 0 && st.Sent is null && !st.SentWildcard) return null; // never subscribed
        if (wildcard && st.SentWildcard) return null;
        if (!wildcard && st.Sent is not null && st.Sent.SetEquals(names!)) return null;
        object req;
        if (IsDelta)
        {
            var d = new DeltaDiscoveryRequest { TypeUrl = typeUrl };
            if (wildcard)
            {
                // First request for a wildcard type with no names: Envoy's (legacy) wildcard subscription.
            }
            else
            {
                foreach (var n in names!)
                    if (st.Sent is null || !st.Sent.Contains(n)) d.ResourceNamesSubscribe.Add(n);
                if (st.Sent is not null)
                    foreach (var n in st.Sent)
                        if (!names.Contains(n)) d.ResourceNamesUnsubscribe.Add(n);
            }
            if (initial)
                foreach (var (n, v) in st.ResourceVersions) d.InitialResourceVersions[n] = v;
            req = d;
        }
        else
        {
            var d = new DiscoveryRequest { TypeUrl = typeUrl, VersionInfo = st.Version, ResponseNonce = st.Nonce };
            if (!wildcard) d.ResourceNames.AddRange(names!.Order(StringComparer.Ordinal));
            req = d;
        }
        if (wildcard) st.SentWildcard = true;
        else st.Sent = new HashSet<string>(names!, StringComparer.Ordinal);
        if (_pendingNode)
        {
            if (req is DiscoveryRequest dr) dr.Node = _node;
            else ((DeltaDiscoveryRequest)req).Node = _node;
            _pendingNode = false;
        }
        return req;
    }

    private async Task OnSotwResponseAsync(DiscoveryResponse resp, Channel<object> outbox)
    {
        var typeUrl = resp.TypeUrl;
        if (!_types.TryGetValue(typeUrl, out var st))
        {
            // A type never asked for: NACK it so the control plane sees the problem.
            outbox.Writer.TryWrite(new DiscoveryRequest
            {
                TypeUrl = typeUrl,
                ResponseNonce = resp.Nonce,
                ErrorDetail = new Google.Rpc.Status { Code = 3, Message = $"csenvoy did not subscribe to type '{typeUrl}'" },
            });
            return;
        }
        string? error;
        BeginApply();
        try
        {
            error = await _applier!.ApplySotwAsync(typeUrl, resp.VersionInfo, resp.Resources).ConfigureAwait(false);
        }
        catch (Exception ex)
        {
            error = "internal error applying the update: " + ex.Message;
            _logger.LogError(ex, "xDS {Type} update failed", typeUrl);
        }
        lock (_gate)
        {
            st.Nonce = resp.Nonce;
            if (error is null) st.Version = resp.VersionInfo;
            else _logger.LogWarning("xDS {Type} update version '{Version}' rejected: {Error}", typeUrl, resp.VersionInfo, error);
            var ack = new DiscoveryRequest { TypeUrl = typeUrl, VersionInfo = st.Version, ResponseNonce = resp.Nonce };
            var names = _applier!.Subscription(typeUrl, _target.SourceKey);
            if (names is not null)
            {
                ack.ResourceNames.AddRange(names.Order(StringComparer.Ordinal));
                st.Sent = new HashSet<string>(names, StringComparer.Ordinal);
            }
            if (error is not null) ack.ErrorDetail = new Google.Rpc.Status { Code = 3, Message = error };
            outbox.Writer.TryWrite(ack);
            EndApply(outbox);
        }
    }

    private async Task OnDeltaResponseAsync(DeltaDiscoveryResponse resp, Channel<object> outbox)
    {
        var typeUrl = resp.TypeUrl;
        if (!_types.ContainsKey(typeUrl))
        {
            outbox.Writer.TryWrite(new DeltaDiscoveryRequest
            {
                TypeUrl = typeUrl,
                ResponseNonce = resp.Nonce,
                ErrorDetail = new Google.Rpc.Status { Code = 3, Message = $"csenvoy did not subscribe to type '{typeUrl}'" },
            });
            return;
        }
        string? error;
        BeginApply();
        try
        {
            error = await _applier!.ApplyDeltaAsync(typeUrl, resp.SystemVersionInfo, resp.Resources, resp.RemovedResources).ConfigureAwait(false);
        }
        catch (Exception ex)
        {
            error = "internal error applying the update: " + ex.Message;
            _logger.LogError(ex, "xDS {Type} update failed", typeUrl);
        }
        if (error is null) RecordDeltaVersions(typeUrl, resp.Resources, resp.RemovedResources);
        else _logger.LogWarning("xDS {Type} delta update '{Version}' rejected: {Error}", typeUrl, resp.SystemVersionInfo, error);
        var ack = new DeltaDiscoveryRequest { TypeUrl = typeUrl, ResponseNonce = resp.Nonce };
        if (error is not null) ack.ErrorDetail = new Google.Rpc.Status { Code = 3, Message = error };
        lock (_gate)
        {
            outbox.Writer.TryWrite(ack);
            EndApply(outbox);
        }
    }

    public async ValueTask DisposeAsync()
    {
        _stop.Cancel();
        if (_loop is not null)
        {
            try
            {
                await _loop.ConfigureAwait(false);
            }
            catch (Exception)
            {
            }
        }
    }
}
