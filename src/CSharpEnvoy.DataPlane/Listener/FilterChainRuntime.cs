using CSharpEnvoy.Config.Model.Listener;
using CSharpEnvoy.DataPlane.Http;
using CSharpEnvoy.DataPlane.Stats;
using CSharpEnvoy.DataPlane.Tls;

namespace CSharpEnvoy.DataPlane.Listener;

/// <summary>One filter chain in service: its connection manager and TLS termination. Set as a connection feature
/// once the chain is chosen, so the handshake and every request of the connection use the same chain.</summary>
internal sealed class FilterChainRuntime(FilterChainModel model, HttpConnectionManager? hcm, DownstreamTls? tls, Network.TcpProxy.TcpProxy? tcp)
{
    public FilterChainModel Model { get; } = model;
    private volatile HttpConnectionManager? _hcm = hcm;

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
    {
        var all = new List<FilterChainModel>(model.AllFilterChains);
        if (hcms.Count != all.Count) throw new ArgumentException($"listener '{model.Name}' has {all.Count} filter chains but {hcms.Count} connection managers");
        Chains = new FilterChainRuntime[model.FilterChains.Count];
        var matches = new List<FilterChainMatchModel>();
        for (var i = 0; i < all.Count; i++)
        {
            var fc = all[i];
            var tls = fc.Tls is null ? null : new DownstreamTls(fc.Tls, stats, listenerPrefix, clusters?.Services.Secrets);
            var tcp = fc.TcpProxy is { } t
                ? new Network.TcpProxy.TcpProxy(t, clusters ?? throw new ArgumentException("a tcp_proxy chain needs the cluster manager"), stats, accessLogs)
                : null;
            var runtime = new FilterChainRuntime(fc, hcms[i], tls, tcp)
            {
                NetworkRbac = fc.NetworkRbac is { } r ? new Http.Filters.Rbac.RbacStats(stats, r.StatPrefix, r) : null,
            };
            if (i < Chains.Length)
            {
                Chains[i] = runtime;
                matches.Add(fc.Match);
            }
            else Default = runtime;
        }
        Matcher = new FilterChainMatcher(matches);
        // With one chain that matches everything there is nothing to choose per connection.
        Single = all.Count == 1 && (Default is not null || IsCatchAll(all[0].Match)) ? (Default ?? Chains[0]) : null;
    }

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
