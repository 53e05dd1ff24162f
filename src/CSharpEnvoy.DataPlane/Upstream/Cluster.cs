using System.Net;
using System.Net.Sockets;
using CSharpEnvoy.Config.Model.Cluster;
using CSharpEnvoy.Config.Model.Listener;
using CSharpEnvoy.DataPlane.Stats;
using Microsoft.Extensions.Logging;

namespace CSharpEnvoy.DataPlane.Upstream;

/// <summary>Envoy's per-cluster stats (<c>cluster.&lt;name&gt;.*</c>), resolved once so the request path only increments.</summary>
internal sealed class ClusterStats
{
    private readonly StatsStore _store;
    private readonly string _prefix;
    private readonly Counter[] _byClass = new Counter[6];
    /// <summary><c>upstream_rq_&lt;code&gt;</c> by code, made on the cluster's first response (most of 10,000 clusters
    /// never answer, and 600 slots are 4.7 KB).</summary>
    private Counter?[]? _byCode;

    // A cluster's fixed stats, made in two calls (see StatsStore.CounterSet).
    private static readonly string[] s_counters =
    [
        "upstream_rq_total", "upstream_rq_completed", "upstream_rq_timeout", "upstream_rq_rx_reset", "upstream_rq_tx_reset",
        "upstream_cx_total", "upstream_cx_connect_fail", "upstream_cx_connect_timeout", "upstream_cx_destroy", "upstream_cx_none_healthy",
        "membership_change", "update_attempt", "update_success", "update_failure",
        "upstream_rq_1xx", "upstream_rq_2xx", "upstream_rq_3xx", "upstream_rq_4xx", "upstream_rq_5xx",
        "upstream_cx_http1_total", "upstream_cx_http2_total",
    ];
    private static readonly string[] s_gauges =
        ["upstream_rq_active", "upstream_cx_active", "membership_total", "membership_healthy", "membership_degraded", "membership_excluded"];

    public ClusterStats(StatsStore store, string clusterName)
    {
        _store = store;
        _prefix = "cluster." + clusterName + ".";
        var c = store.CounterSet(_prefix, s_counters);
        (UpstreamRqTotal, UpstreamRqCompleted, UpstreamRqTimeout, UpstreamRqRxReset, UpstreamRqTxReset) = (c[0], c[1], c[2], c[3], c[4]);
        (UpstreamCxTotal, UpstreamCxConnectFail, UpstreamCxConnectTimeout, UpstreamCxDestroy, UpstreamCxNoneHealthy) = (c[5], c[6], c[7], c[8], c[9]);
        (MembershipChange, UpdateAttempt, UpdateSuccess, UpdateFailure) = (c[10], c[11], c[12], c[13]);
        for (var i = 1; i <= 5; i++) _byClass[i] = c[13 + i];
        (UpstreamCxHttp1Total, UpstreamCxHttp2Total) = (c[19], c[20]);
        var g = store.GaugeSet(_prefix, s_gauges);
        (UpstreamRqActive, UpstreamCxActive, MembershipTotal, MembershipHealthy, MembershipDegraded, MembershipExcluded) = (g[0], g[1], g[2], g[3], g[4], g[5]);
        UpstreamRqTime = store.Histogram(_prefix, "upstream_rq_time");
    }

    /// <summary><c>cluster.&lt;name&gt;.</c></summary>
    public string Prefix => _prefix;

    public Counter UpstreamRqTotal { get; }
    public Counter UpstreamRqCompleted { get; }
    public Gauge UpstreamRqActive { get; }
    public Counter UpstreamRqTimeout { get; }
    /// <summary>Milliseconds from the upstream request's start to the end of its response.</summary>
    public Histogram UpstreamRqTime { get; }
    public Counter UpstreamRqRxReset { get; }
    /// <summary>Upstream requests the proxy reset (timeouts, hedged tries that lost, clients that left).</summary>
    public Counter UpstreamRqTxReset { get; }
    public Counter UpstreamCxTotal { get; }
    /// <summary>HTTP/1.1 connections opened (the codec's, and SocketsHttpHandler's for HTTP/1.x requests).</summary>
    public Counter UpstreamCxHttp1Total { get; }
    /// <summary>HTTP/2 connections opened (SocketsHttpHandler's, h2c or TLS with ALPN "h2").</summary>
    public Counter UpstreamCxHttp2Total { get; }
    public Gauge UpstreamCxActive { get; }
    public Counter UpstreamCxConnectFail { get; }
    public Counter UpstreamCxConnectTimeout { get; }
    public Counter UpstreamCxDestroy { get; }
    public Counter UpstreamCxNoneHealthy { get; }
    public Gauge MembershipTotal { get; }
    public Gauge MembershipHealthy { get; }
    public Gauge MembershipDegraded { get; }
    public Gauge MembershipExcluded { get; }
    public Counter MembershipChange { get; }
    public Counter UpdateAttempt { get; }
    public Counter UpdateSuccess { get; }
    public Counter UpdateFailure { get; }

    /// <summary>Another counter of this cluster (<c>cluster.&lt;name&gt;.&lt;suffix&gt;</c>), made on first use.</summary>
    public Counter Counter(string suffix) => _store.Counter(_prefix, suffix);

    /// <summary>Counts a response code as <c>upstream_rq_&lt;code&gt;</c> and <c>upstream_rq_&lt;class&gt;xx</c>.</summary>
    public void ResponseCode(int code)
    {
        UpstreamRqCompleted.Inc();
        if ((uint)code >= 600 || code < 100) return;
        _byClass[code / 100].Inc();
        var byCode = _byCode ?? Interlocked.CompareExchange(ref _byCode, new Counter?[600], null) ?? _byCode;
        var c = byCode[code] ??= _store.Counter(_prefix, "upstream_rq_" + code.ToString(System.Globalization.CultureInfo.InvariantCulture));
        c.Inc();
    }
}

/// <summary>
/// A live cluster: its validated model, its current <see cref="PrioritySet"/> (swapped whole on any change), its load
/// balancer, and its hosts' connection pools (<see cref="Http1PoolFor"/>, <see cref="AcquireHandlerPool"/>).
/// </summary>
internal sealed partial class Cluster : IDisposable
{
    private volatile PrioritySet _prioritySet = PrioritySet.Empty;
    private readonly Tls.UpstreamTls? _tls;
    private readonly LoadBalancing.ClusterLoadBalancer _lb;
    private readonly ILogger _logger;
    private readonly CancellationTokenSource _stop = new();
    // Concurrent: EDS adds pipe hosts while connections are being opened. Made with the first pipe host.
    private System.Collections.Concurrent.ConcurrentDictionary<string, string>? _pipeByAuthority;
    private HttpMessageInvoker? _invoker;
    private int _disposed;

    public Cluster(ClusterModel model, StatsStore stats, ILogger logger, UpstreamServices? services = null)
    {
        Model = model;
        Name = model.Name;
        Stats = new ClusterStats(stats, model.Name);
        Resources = new ResourceManager(model.CircuitBreakers, stats, model.Name);
        ResourcesHigh = new ResourceManager(model.CircuitBreakersHigh, stats, model.Name, high: true);
        _logger = logger;
        InitHealth(stats, services ?? UpstreamServices.Default); // before the first SetHosts
        LbStats = new LoadBalancing.LbStats(stats, model.Name);
        _services = services ?? UpstreamServices.Default;
        _lb = new LoadBalancing.ClusterLoadBalancer(model.LoadBalancer, _services.Random, LbStats);
        _policy = (model.Endpoints as LoadAssignmentModel) is { } la ? Policy(la) : Policy(null);
        if (model.Tls is not null)
        {
            SslStats = new Tls.SslStats(stats, "cluster." + model.Name + ".ssl.");
            _tls = new Tls.UpstreamTls(model.Tls, SslStats, _services.Secrets, stats, "cluster." + model.Name + ".client_ssl_socket_factory.");
        }
        if (model.Type == DiscoveryType.Static)
        {
            var hosts = new Host[model.Endpoints.Count];
            for (var i = 0; i < hosts.Length; i++)
            {
                var e = model.Endpoints[i];
                hosts[i] = NewHost(e, e.Address, e.Hostname);
                ApplyEdsHealth(hosts[i], e);
                if (e.Address.IsPipe) AddPipe(hosts[i]);
            }
            SetHosts(hosts);
        }
    }

    public string Name { get; }
    public ClusterModel Model { get; }
    public ClusterStats Stats { get; }
    /// <summary>Circuit breakers for DEFAULT priority routes, and the router's retry stats.</summary>
    public ResourceManager Resources { get; }
    /// <summary>Circuit breakers for routes with <c>priority: HIGH</c>.</summary>
    public ResourceManager ResourcesHigh { get; }

    public ResourceManager ResourcesFor(bool highPriority) => highPriority ? ResourcesHigh : Resources;
    /// <summary><c>cluster.&lt;name&gt;.ssl.*</c>, for clusters with a TLS transport socket.</summary>
    public Tls.SslStats? SslStats { get; }
    /// <summary>The cluster's TLS origination (its current client certificate and validation context).</summary>
    internal Tls.UpstreamTls? Tls => _tls;
    /// <summary>The connections of the cluster's side channels (the gRPC services and tracers that call it), made on
    /// first use (most of a mesh's thousands of clusters are never called by one sidecar; Envoy also opens pools on
    /// first use). Routed requests go over their host's pool instead (<see cref="AcquireHandlerPool"/>).</summary>
    public HttpMessageInvoker Invoker => _invoker ?? CreateInvoker();

    private HttpMessageInvoker CreateInvoker()
    {
        var invoker = new HttpMessageInvoker(CreateHandler(), disposeHandler: true);
        if (Interlocked.CompareExchange(ref _invoker, invoker, null) is { } other)
        {
            invoker.Dispose();
            return other;
        }
        // Disposed meanwhile: the invoker is disposed too (its requests fail as on a disposed cluster).
        if (Volatile.Read(ref _disposed) != 0) invoker.Dispose();
        return invoker;
    }

    private void AddPipe(Host host)
    {
        var map = _pipeByAuthority ??= new(StringComparer.OrdinalIgnoreCase);
        map[host.Authority] = host.Address.PipePath!;
    }
    /// <summary>The hosts by priority and locality with the balancing state derived from them.</summary>
    public PrioritySet PrioritySet => _prioritySet;
    /// <summary><c>cluster.&lt;name&gt;.lb_*</c>.</summary>
    internal LoadBalancing.LbStats LbStats { get; }
    public DateTimeOffset? LastDnsRefresh { get; private set; }

    public Host? ChooseHost() => ChooseHost(LoadBalancing.LoadBalancerContext.None);

    public Host? ChooseHost(in LoadBalancing.LoadBalancerContext context)
    {
        return _lb.ChooseHost(_prioritySet, context);
    }

    private Host NewHost(EndpointModel e, Config.Model.Listener.SocketAddressModel address, string? hostname) =>
        new(address, hostname, e.Locality, Name, Model.Tls is not null, e.Weight, e.Priority, e.LocalityWeight ?? 0)
        {
            HealthCheckPort = (int)e.HealthCheckPort,
            HealthCheckHostname = e.HealthCheckHostname,
        };

    /// <summary>Whether the balancer consumes the route's hash policy (ring hash, maglev).</summary>
    public bool UsesHashPolicy => _lb.UsesHash;

    private void SetHosts(Host[] hosts)
    {
        Host[] before;
        lock (_healthLock)
        {
            HealthChecker?.MarkNewHosts(hosts, IsActiveHcDisabled);
            before = _allHosts;
            _allHosts = hosts;
            PublishLocked();
        }
        PrioritySetPublished?.Invoke();
        OnHostsRemoved(before, hosts);
        HealthChecker?.Sync(hosts);
        Outlier?.Sync(hosts);
    }

    /// <summary>
    /// The hosts of <paramref name="before"/> missing from <paramref name="after"/> (the published set) left the
    /// cluster: each is flagged <see cref="Host.Removed"/> and its HTTP/1.1 pool drains, as Envoy drains a removed host's
    /// connection pools (idle connections close now, busy ones once their request is done). A host kept across the
    /// update (same object) is untouched.
    /// </summary>
    private void OnHostsRemoved(Host[] before, Host[] after)
    {
        if (before.Length == 0 || ReferenceEquals(before, after)) return;
        // Large sets are looked up in a hash set (a scan per host is quadratic); small ones are scanned.
        var kept = after.Length > 16 ? new HashSet<Host>(after, ReferenceEqualityComparer.Instance) : null;
        List<Host>? removed = null;
        foreach (var h in before)
        {
            if (kept is not null ? kept.Contains(h) : Array.IndexOf(after, h) >= 0) continue;
            h.Removed = true;
            (removed ??= []).Add(h);
        }
        if (removed is null) return;
        List<Http1.Http1ConnectionPool>? drain = null;
        // Under the lock Http1PoolFor registers pools with: a pool it makes is either seen here or sees Removed.
        lock (_http1Pools)
        {
            foreach (var h in removed)
                if (h.Http1Pool is { } pool && ReferenceEquals(pool.Cluster, this) && _http1Pools.Remove(pool)) (drain ??= []).Add(pool);
        }
        List<HandlerConnectionPool>? drainHandlers = null;
        lock (_handlerPools)
        {
            foreach (var h in removed)
                if (h.HandlerPool is { } pool && ReferenceEquals(pool.Cluster, this) && _handlerPools.Remove(pool)) (drainHandlers ??= []).Add(pool);
        }
        if (drain is not null)
            foreach (var pool in drain) pool.Drain();
        if (drainHandlers is not null)
            foreach (var pool in drainHandlers) pool.Drain();
    }

    /// <summary>Whether EDS has delivered at least one assignment (an EDS cluster warms until then).</summary>
    internal bool HasEdsAssignment { get; private set; }

    /// <summary>EDS: the host set becomes the assignment's endpoints. Hosts whose address and locality are unchanged
    /// are kept (with their per-host state and connections), their weight and priority updated in place; the HTTP/1.1
    /// pools of the hosts that left drain (<see cref="OnHostsRemoved"/>).</summary>
    internal void SetEdsEndpoints(IReadOnlyList<EndpointModel> endpoints)
    {
        _policy = Policy(endpoints as LoadAssignmentModel);
        var old = _prioritySet.Hosts;
        var hosts = new Host[endpoints.Count];
        var changed = WithoutPendingRemoval(old).Length != hosts.Length;
        // Large clusters find their old host by address (a scan per endpoint is quadratic: 25 million comparisons for an
        // update of a 5,000-endpoint cluster); the scan stays for small ones and for an address listed twice.
        Dictionary<SocketAddressModel, Host>? byAddress = null;
        if (old.Length > 16)
        {
            byAddress = new Dictionary<SocketAddressModel, Host>(old.Length);
            foreach (var h in old) byAddress.TryAdd(h.Address, h);
        }
        // An old host is kept for one endpoint at most (an address listed twice, e.g. in two priorities).
        var taken = byAddress is null ? null : new HashSet<Host>(ReferenceEqualityComparer.Instance);
        for (var i = 0; i < hosts.Length; i++)
        {
            var e = endpoints[i];
            Host? keep = null;
            Host? candidate = null;
            if (byAddress is not null && byAddress.TryGetValue(e.Address, out candidate) && SameEndpoint(candidate, e) && !taken!.Contains(candidate))
                keep = candidate;
            else if (byAddress is null || candidate is not null)
                foreach (var h in old)
                    if (SameEndpoint(h, e) && (taken is null ? Array.IndexOf(hosts, h, 0, i) < 0 : !taken.Contains(h))) { keep = h; break; }
            if (keep is null) changed = true;
            else if (keep.UpdateInPlace(e.Weight, e.Priority, e.LocalityWeight ?? 0)) changed = true;
            hosts[i] = keep ?? NewHost(e, e.Address, e.Hostname);
            taken?.Add(hosts[i]);
            ApplyEdsHealth(hosts[i], e);
            if (e.Address.IsPipe) AddPipe(hosts[i]);
        }
        SetHosts(KeepRemovedHealthyHosts(hosts));
        if (changed || !HasEdsAssignment) Stats.MembershipChange.Inc();
        HasEdsAssignment = true;
    }

    /// <summary>Whether an existing host is this endpoint (so it keeps its per-host state: health, outlier state,
    /// connections, stats): the same address, locality, hostname and health check address, as Envoy matches hosts. A
    /// changed weight or priority is applied to the kept host (<see cref="Host.UpdateInPlace"/>); a changed locality or
    /// health check address makes a new host, as Envoy skips its in-place update for those.</summary>
    private static bool SameEndpoint(Host h, EndpointModel e) =>
        h.Address.Equals(e.Address) && h.Locality.Equals(e.Locality) && h.Hostname == e.Hostname &&
        h.HealthCheckPort == (int)e.HealthCheckPort && h.HealthCheckHostname == e.HealthCheckHostname;

    /// <summary>Resolves DNS clusters once (the cluster "initializes"), then keeps refreshing in the background.</summary>
    public async Task InitializeAsync(CancellationToken ct)
    {
        if (Model.Type is DiscoveryType.StrictDns or DiscoveryType.LogicalDns)
        {
            await ResolveAsync(ct).ConfigureAwait(false);
            _ = Task.Run(RefreshLoopAsync);
        }
        // Envoy's cluster warming: with active health checking, the cluster initializes once every host was checked.
        if (HealthChecker is { } hc) await hc.FirstRoundAsync(ct).ConfigureAwait(false);
    }

    private async Task RefreshLoopAsync()
    {
        try
        {
            using var timer = new PeriodicTimer(Model.DnsRefreshRate);
            while (await timer.WaitForNextTickAsync(_stop.Token).ConfigureAwait(false))
                await ResolveAsync(_stop.Token).ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
        }
    }

    private async Task ResolveAsync(CancellationToken ct)
    {
        Stats.UpdateAttempt.Inc();
        var hosts = new List<Host>();
        var failed = false;
        foreach (var e in Model.Endpoints)
        {
            IPAddress[] addresses;
            try
            {
                addresses = IPAddress.TryParse(e.Address.Address, out var ip) ? new[] { ip } : await Dns.GetHostAddressesAsync(e.Address.Address, ct).ConfigureAwait(false);
            }
            catch (Exception ex) when (ex is SocketException or ArgumentException)
            {
                _logger.LogWarning("cluster '{Cluster}': DNS resolution of '{Host}' failed: {Error}", Name, e.Address.Address, ex.Message);
                failed = true;
                continue;
            }
            var chosen = FilterFamily(addresses, Model.DnsLookupFamily);
            if (Model.Type == DiscoveryType.LogicalDns && chosen.Count > 1) chosen = chosen.GetRange(0, 1);
            foreach (var a in chosen)
            {
                hosts.Add(NewHost(e, new Config.Model.Listener.SocketAddressModel(a.ToString(), e.Address.Port), e.Hostname ?? e.Address.Address));
                ApplyEdsHealth(hosts[^1], e);
            }
        }
        if (failed && hosts.Count == 0 && _prioritySet.Hosts.Length > 0)
        {
            // Keep the last good answer when every lookup failed, as Envoy does.
            Stats.UpdateFailure.Inc();
            return;
        }
        var old = _prioritySet.Hosts;
        // Hosts kept only until their health check fails are not part of what DNS answered last.
        if (!SameAddresses(WithoutPendingRemoval(old), hosts))
        {
            // Reuse Host objects for unchanged addresses so their per-host state survives a refresh.
            var merged = new Host[hosts.Count];
            for (var i = 0; i < hosts.Count; i++)
            {
                merged[i] = hosts[i];
                foreach (var h in old)
                    if (h.Address.Equals(hosts[i].Address)) { merged[i] = h; break; }
            }
            SetHosts(Model.Type == DiscoveryType.StrictDns ? KeepRemovedHealthyHosts(merged) : merged);
            Stats.MembershipChange.Inc();
        }
        LastDnsRefresh = DateTimeOffset.UtcNow;
        if (failed) Stats.UpdateFailure.Inc(); else Stats.UpdateSuccess.Inc();
    }

    private static Host[] WithoutPendingRemoval(Host[] hosts)
    {
        var n = 0;
        foreach (var h in hosts)
            if ((h.HealthFlags & HostHealthFlags.PendingDynamicRemoval) == 0) n++;
        if (n == hosts.Length) return hosts;
        var active = new Host[n];
        n = 0;
        foreach (var h in hosts)
            if ((h.HealthFlags & HostHealthFlags.PendingDynamicRemoval) == 0) active[n++] = h;
        return active;
    }

    private static bool SameAddresses(Host[] old, List<Host> fresh)
    {
        if (old.Length != fresh.Count) return false;
        for (var i = 0; i < old.Length; i++)
            if (!old[i].Address.Equals(fresh[i].Address)) return false;
        return true;
    }

    private static List<IPAddress> FilterFamily(IPAddress[] addresses, DnsLookupFamily family)
    {
        var v4 = new List<IPAddress>();
        var v6 = new List<IPAddress>();
        foreach (var a in addresses) (a.AddressFamily == AddressFamily.InterNetworkV6 ? v6 : v4).Add(a);
        return family switch
        {
            DnsLookupFamily.V4Only => v4,
            DnsLookupFamily.V6Only => v6,
            DnsLookupFamily.V4Preferred => v4.Count > 0 ? v4 : v6,
            DnsLookupFamily.All => [.. v4, .. v6],
            _ => v6.Count > 0 ? v6 : v4, // AUTO: IPv6 first, IPv4 as fallback (Envoy's documented behaviour)
        };
    }

    private SocketsHttpHandler CreateHandler()
    {
        var handler = new SocketsHttpHandler
        {
            UseProxy = false,
            AllowAutoRedirect = false,
            AutomaticDecompression = DecompressionMethods.None,
            UseCookies = false,
            EnableMultipleHttp2Connections = true,
            ConnectTimeout = Model.ConnectTimeout,
            // max_connections: the handler queues requests beyond it (per host; Envoy's limit is per cluster).
            // max_connections 0 (no connection allowed) is enforced by the resource manager; the handler needs at least 1.
            MaxConnectionsPerServer = (int)Math.Clamp(Model.CircuitBreakers.MaxConnections, 1, int.MaxValue),
            PooledConnectionIdleTimeout = Model.UpstreamIdleTimeout, // common_http_protocol_options.idle_timeout (default 1 h)
            ActivityHeadersPropagator = null,
            ConnectCallback = ConnectAsync,
        };
        if (Model.Http2InitialStreamWindowSize is int w) handler.InitialHttp2StreamWindowSize = Math.Max(w, 65535);
        // TLS runs in ConnectAsync (the handler uses the SslStream it returns), so the SNI is Envoy's choice.
        return handler;
    }

    /// <summary>Opens upstream connections ourselves: counts Envoy's <c>upstream_cx_*</c> stats and reaches pipe hosts.</summary>
    private async ValueTask<Stream> ConnectAsync(SocketsHttpConnectionContext context, CancellationToken ct)
    {
        EndPoint endPoint;
        string? path = null;
        if (_pipeByAuthority?.TryGetValue(context.DnsEndPoint.Host, out path) == true) endPoint = new UnixDomainSocketEndPoint(path);
        else if (IPAddress.TryParse(context.DnsEndPoint.Host.Trim('[', ']'), out var ip)) endPoint = new IPEndPoint(ip, context.DnsEndPoint.Port);
        else endPoint = context.DnsEndPoint;

        var socket = NewSocket(endPoint);
        try
        {
            await socket.ConnectAsync(endPoint, ct).ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
            socket.Dispose();
            // ct fires for both our connect timeout and the request going away; only the former is a connect timeout.
            Stats.UpstreamCxConnectFail.Inc();
            Stats.UpstreamCxConnectTimeout.Inc();
            throw;
        }
        catch (SocketException)
        {
            socket.Dispose();
            Stats.UpstreamCxConnectFail.Inc();
            throw;
        }
        var host = HostAt(context.DnsEndPoint, endPoint is UnixDomainSocketEndPoint ? path : null);
        var request = context.InitialRequestMessage;
        var http2 = request.Version.Major >= 2;
        var stream = new CountingNetworkStream(socket, this, host);
        if (_tls is null)
        {
            // In plain text the handler opens an HTTP/1.1 connection for an HTTP/1.x request, and HTTP/2 (h2c) for an
            // HTTP/2 one, which never falls back (exact version).
            (http2 ? Stats.UpstreamCxHttp2Total : Stats.UpstreamCxHttp1Total).Inc();
            return stream;
        }
        var http11 = !http2 || request.VersionPolicy == HttpVersionPolicy.RequestVersionOrLower;
        var ssl = await _tls.AuthenticateAsync(stream, _tls.ServerName(request, host?.Hostname), http2, http11, ct).ConfigureAwait(false);
        // Over TLS, ALPN decides (auto_config offers both).
        (ssl.NegotiatedApplicationProtocol == System.Net.Security.SslApplicationProtocol.Http2 ? Stats.UpstreamCxHttp2Total : Stats.UpstreamCxHttp1Total).Inc();
        return ssl;
    }

    /// <summary>An unconnected socket for an upstream endpoint: a pipe, or TCP without Nagle's delay.</summary>
    internal static Socket NewSocket(EndPoint endPoint) => endPoint is UnixDomainSocketEndPoint
        ? new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified)
        : new Socket(SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };

    /// <summary>The host a new connection goes to: by pipe path, or by address and port.</summary>
    private Host? HostAt(DnsEndPoint endPoint, string? pipePath)
    {
        var address = endPoint.Host.Trim('[', ']');
        foreach (var h in _prioritySet.Hosts)
        {
            if (pipePath is not null ? h.Address.PipePath == pipePath : h.Address.Address == address && h.Address.Port == endPoint.Port)
                return h;
        }
        return null;
    }

    /// <summary>An upstream connection: decrements <c>upstream_cx_active</c> exactly once when the pool drops it, counts
    /// the host's connections, and records its local address in the request being written (see
    /// <see cref="UpstreamConnection"/>).</summary>
    private sealed class CountingNetworkStream : NetworkStream
    {
        private readonly Cluster _cluster;
        private readonly Host? _host;
        private readonly string? _localAddress;
        private int _closed;

        public CountingNetworkStream(Socket socket, Cluster cluster, Host? host) : base(socket, ownsSocket: true)
        {
            _cluster = cluster;
            _host = host;
            _localAddress = UpstreamConnection.Format(socket.LocalEndPoint);
            cluster.OnConnectionOpened(host, _localAddress);
        }

        private void NoteRequest()
        {
            // Only the request going to this connection's host: a mirror or retry elsewhere writes on its own connection.
            if (UpstreamConnection.Sending.Value is { } info && ReferenceEquals(info.UpstreamHost, _host))
                info.UpstreamLocalAddress = _localAddress;
        }

        public override void Write(ReadOnlySpan<byte> buffer)
        {
            NoteRequest();
            base.Write(buffer);
        }

        public override void Write(byte[] buffer, int offset, int count)
        {
            NoteRequest();
            base.Write(buffer, offset, count);
        }

        public override ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken = default)
        {
            NoteRequest();
            return base.WriteAsync(buffer, cancellationToken);
        }

        public override Task WriteAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken)
        {
            NoteRequest();
            return base.WriteAsync(buffer, offset, count, cancellationToken);
        }

        protected override void Dispose(bool disposing)
        {
            if (Interlocked.Exchange(ref _closed, 1) == 0) _cluster.OnConnectionClosed(_host);
            base.Dispose(disposing);
        }
    }

    /// <summary>Counts a new upstream connection (either path): <c>upstream_cx_total</c>, <c>upstream_cx_active</c>, the
    /// connection circuit breaker, and the host's own count. Its protocol is counted by the caller, once known.</summary>
    internal void OnConnectionOpened(Host? host, string? localAddress)
    {
        Stats.UpstreamCxTotal.Inc();
        Stats.UpstreamCxActive.Inc();
        Resources.Connections.Add();
        if (host is null) return;
        host.ConnectionOpened();
        host.LastConnectionLocalAddress = localAddress;
    }

    /// <summary>Counts a closed upstream connection, once per connection.</summary>
    internal void OnConnectionClosed(Host? host)
    {
        Stats.UpstreamCxActive.Dec();
        Resources.Connections.Release();
        Stats.UpstreamCxDestroy.Inc();
        host?.ConnectionClosed();
    }

    /// <summary>Whether requests to this cluster go over csenvoy's own HTTP/1.1 codec (<see cref="Http1.Http1ConnectionPool"/>)
    /// rather than SocketsHttpHandler: plain-text HTTP/1.1 clusters, unless <c>CSENVOY_UPSTREAM_HTTP1_CODEC=0</c>.</summary>
    public bool UsesHttp1Codec => _tls is null && Http1.Http1Forwarder.Enabled;

    private readonly HashSet<Http1.Http1ConnectionPool> _http1Pools = [];
    private volatile bool _poolsDraining;

    /// <summary>The host's HTTP/1.1 pool for this cluster, made on its first request.</summary>
    internal Http1.Http1ConnectionPool Http1PoolFor(Host host)
    {
        var pool = host.Http1Pool;
        if (pool is not null && ReferenceEquals(pool.Cluster, this)) return pool;
        lock (_http1Pools)
        {
            pool = host.Http1Pool;
            if (pool is not null && ReferenceEquals(pool.Cluster, this)) return pool;
            pool = new Http1.Http1ConnectionPool(this, host);
            _http1Pools.Add(pool);
            host.Http1Pool = pool;
        }
        if (Volatile.Read(ref _disposed) != 0) pool.Dispose();
        // The request chose its host just before the host (or this cluster) left: served, then the connection closes.
        else if (host.Removed)
        {
            lock (_http1Pools) _http1Pools.Remove(pool);
            pool.Drain();
        }
        else if (_poolsDraining) pool.Drain();
        return pool;
    }

    private readonly HashSet<HandlerConnectionPool> _handlerPools = [];

    /// <summary>The host's SocketsHttpHandler pool for this cluster (made on its first request, or anew when the last
    /// one closed), held for one request until <see cref="HandlerConnectionPool.Release"/>. A host that left the
    /// cluster, or a cluster that left the cluster map, still serves a request that chose it just before: its pool
    /// drains, and closes once that request is done.</summary>
    internal HandlerConnectionPool AcquireHandlerPool(Host host)
    {
        while (true)
        {
            var pool = host.HandlerPool;
            if (pool is null || !ReferenceEquals(pool.Cluster, this) || pool.Closed)
            {
                lock (_handlerPools)
                {
                    pool = host.HandlerPool;
                    if (pool is null || !ReferenceEquals(pool.Cluster, this) || pool.Closed)
                    {
                        if (pool is not null && ReferenceEquals(pool.Cluster, this)) _handlerPools.Remove(pool);
                        pool = new HandlerConnectionPool(this, CreateHandler());
                        _handlerPools.Add(pool);
                        host.HandlerPool = pool;
                    }
                }
            }
            if (!pool.TryAcquire()) continue; // closed meanwhile: make another
            if (host.Removed || _poolsDraining || Volatile.Read(ref _disposed) != 0)
            {
                lock (_handlerPools) _handlerPools.Remove(pool);
                pool.Drain();
            }
            return pool;
        }
    }

    /// <summary>The cluster left the cluster map (CDS removed it, or replaced it with a new cluster and new hosts): its
    /// hosts' pools drain now, as Envoy drains a removed cluster's pools (idle connections close at once, busy ones
    /// when their request is done). The shared handler of its side channels (gRPC services, tracers), health checking
    /// and the rest go at <see cref="Dispose"/>, once in-flight requests had time to finish.</summary>
    internal void DrainConnectionPools()
    {
        _poolsDraining = true;
        Http1.Http1ConnectionPool[] pools;
        lock (_http1Pools) pools = [.. _http1Pools];
        foreach (var pool in pools) pool.Drain();
        HandlerConnectionPool[] handlers;
        lock (_handlerPools) handlers = [.. _handlerPools];
        foreach (var pool in handlers) pool.Drain();
    }

    public void Dispose()
    {
        _stop.Cancel();
        DisposeHealth();
        Volatile.Write(ref _disposed, 1);
        Interlocked.Exchange(ref _invoker, null)?.Dispose();
        lock (_http1Pools)
        {
            foreach (var pool in _http1Pools) pool.Dispose();
        }
        lock (_handlerPools)
        {
            foreach (var pool in _handlerPools) pool.Dispose();
        }
    }
}
