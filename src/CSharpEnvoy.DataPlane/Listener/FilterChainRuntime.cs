using CSharpEnvoy.Config.Model.Listener;
using CSharpEnvoy.DataPlane.Http;
using CSharpEnvoy.DataPlane.Stats;
using CSharpEnvoy.DataPlane.Tls;

namespace CSharpEnvoy.DataPlane.Listener;

/// <summary>One filter chain in service: its connection manager and TLS termination. Set as a connection feature
/// once the chain is chosen, so the handshake and every request of the connection use the same chain.</summary>
internal sealed class FilterChainRuntime(FilterChainModel model, HttpConnectionManager? hcm, DownstreamTls? tls, Network.TcpProxy.TcpProxy? tcp)
{
    private volatile FilterChainModel _model = model;
    private volatile HttpConnectionManager? _hcm = hcm;
    /// <summary>Cancelled when a chain removed or changed by an LDS update has drained: its connections close then.</summary>
    private readonly CancellationTokenSource _closing = new();

    /// <summary>Replaced with the connection manager by an in-place LDS update that changes only the chain's connection manager.</summary>
    public FilterChainModel Model
    {
        get => _model;
        set => _model = value;
    }

    /// <summary>Null for a TCP proxy chain. Replaced by an in-place LDS update, so live connections follow it (read
    /// per request).</summary>
    public HttpConnectionManager? Hcm
    {
        get => _hcm;
        set => _hcm = value;
    }
    public DownstreamTls? Tls { get; } = tls;
    public Network.TcpProxy.TcpProxy? Tcp { get; } = tcp;
    /// <summary>The chain's network RBAC filter with its stats; null when it has none.</summary>
    public Http.Filters.Rbac.RbacStats? NetworkRbac { get; init; }

    /// <summary>Set once the chain left the listener: HTTP/1 responses ask the client to close, as Envoy's drain does.</summary>
    public DrainSequence? Draining { get; private set; }

    /// <summary>Fires when the drain is over; every connection of the chain is closed then.</summary>
    public CancellationToken Closing => _closing.Token;

    /// <summary>Envoy's filter chain drain after an in-place listener update: connections on a chain the update removed
    /// or changed finish over the drain time, then close.</summary>
    public void Drain(DrainSequence drain)
    {
        Draining = drain;
        _closing.CancelAfter(drain.DrainTime);
    }

    /// <summary>Runs the network RBAC filter (if any) once the connection, and its TLS handshake, is established.</summary>
    public bool ConnectionAllowed(Microsoft.AspNetCore.Connections.ConnectionContext context)
    {
        if (NetworkRbac is null) return true;
        var remote = (context.RemoteEndPoint as System.Net.IPEndPoint)?.Address;
        if (remote is { IsIPv4MappedToIPv6: true }) remote = remote.MapToIPv4();
        var input = new Http.Filters.Rbac.RbacInput
        {
            Local = context.LocalEndPoint as System.Net.IPEndPoint,
            DirectRemote = remote,
            Remote = remote,
            Tls = Tls is not null,
            Peer = context.Features.Get<PeerCertificateInfo>(),
            ServerName = context.Features.Get<Microsoft.AspNetCore.Connections.Features.ITlsHandshakeFeature>()?.HostName,
        };
        return NetworkRbac.Evaluate(Model.NetworkRbac!, input, out _);
    }
}

/// <summary>A listener's chains with their matcher; replaced whole when an update keeps the socket.</summary>
internal sealed class FilterChainTable
{
    public FilterChainTable(ListenerModel model, IReadOnlyList<HttpConnectionManager?> hcms, StatsStore stats, string listenerPrefix,
        Upstream.ClusterManager? clusters = null, AccessLog.AccessLogManager? accessLogs = null)
        : this(model, CreateAll(model, hcms, stats, listenerPrefix, clusters, accessLogs))
    {
    }

    /// <param name="runtimes">One per chain of <see cref="ListenerModel.AllFilterChains"/>, in that order (the default chain last).</param>
    public FilterChainTable(ListenerModel model, IReadOnlyList<FilterChainRuntime> runtimes)
    {
        Chains = new FilterChainRuntime[model.FilterChains.Count];
        var matches = new List<FilterChainMatchModel>(Chains.Length);
        for (var i = 0; i < runtimes.Count; i++)
        {
            if (i < Chains.Length)
            {
                Chains[i] = runtimes[i];
                matches.Add(runtimes[i].Model.Match);
            }
            else Default = runtimes[i];
        }
        Matcher = new FilterChainMatcher(matches);
        // With one chain that matches everything there is nothing to choose per connection.
        Single = runtimes.Count == 1 && (Default is not null || IsCatchAll(runtimes[0].Model.Match)) ? (Default ?? Chains[0]) : null;
    }

    private static List<FilterChainRuntime> CreateAll(ListenerModel model, IReadOnlyList<HttpConnectionManager?> hcms, StatsStore stats, string listenerPrefix,
        Upstream.ClusterManager? clusters, AccessLog.AccessLogManager? accessLogs)
    {
        var all = new List<FilterChainModel>(model.AllFilterChains);
        if (hcms.Count != all.Count) throw new ArgumentException($"listener '{model.Name}' has {all.Count} filter chains but {hcms.Count} connection managers");
        var runtimes = new List<FilterChainRuntime>(all.Count);
        for (var i = 0; i < all.Count; i++) runtimes.Add(Create(all[i], hcms[i], stats, listenerPrefix, clusters, accessLogs));
        return runtimes;
    }

    /// <summary>One chain put in service: its TLS context, TCP proxy and network RBAC built from the model.</summary>
    public static FilterChainRuntime Create(FilterChainModel fc, HttpConnectionManager? hcm, StatsStore stats, string listenerPrefix,
        Upstream.ClusterManager? clusters, AccessLog.AccessLogManager? accessLogs)
    {
        var tls = fc.Tls is null ? null : new DownstreamTls(fc.Tls, stats, listenerPrefix, clusters?.Services.Secrets);
        var tcp = fc.TcpProxy is { } t
            ? new Network.TcpProxy.TcpProxy(t, clusters ?? throw new ArgumentException("a tcp_proxy chain needs the cluster manager"), stats, accessLogs)
            : null;
        return new FilterChainRuntime(fc, hcm, tls, tcp)
        {
            NetworkRbac = fc.NetworkRbac is { } r ? new Http.Filters.Rbac.RbacStats(stats, r.StatPrefix, r) : null,
        };
    }

    /// <summary>Every chain, the default one last.</summary>
    public IEnumerable<FilterChainRuntime> All => Default is null ? Chains : Chains.Append(Default);

    public FilterChainRuntime[] Chains { get; }
    public FilterChainRuntime? Default { get; }
    public FilterChainMatcher Matcher { get; }
    /// <summary>Set when every connection gets this chain.</summary>
    public FilterChainRuntime? Single { get; }

    public FilterChainRuntime? Select(in ConnectionMatchInput input)
    {
        if (Single is not null) return Single;
        var i = Matcher.Select(input);
        return i >= 0 ? Chains[i] : Default;
    }

    private static bool IsCatchAll(FilterChainMatchModel m) => m.SameRulesAs(FilterChainMatchModel.Any);
}
