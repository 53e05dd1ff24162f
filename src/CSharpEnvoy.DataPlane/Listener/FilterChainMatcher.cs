using System.Net;
using CSharpEnvoy.Config.Model.Listener;

namespace CSharpEnvoy.DataPlane.Listener;

/// <summary>The connection properties a filter chain is chosen by.</summary>
internal readonly record struct ConnectionMatchInput(IPEndPoint? Local, IPEndPoint? Remote, ClientHelloInfo Hello);

/// <summary>
/// Envoy's filter chain selection (listener docs, "Filter chain match"): the candidates are narrowed property by
/// property in the order destination port, destination IP, server name, transport protocol, application protocols,
/// direct source IP, source type, source IP, source port. At each step only the most specific matches survive
/// (an exact port over none, the longest prefix, an exact server name over the longest wildcard over none...), and a
/// step that leaves nothing ends the search: Envoy never backtracks to a less specific branch.
/// </summary>
internal sealed class FilterChainMatcher
{
    private readonly FilterChainMatchModel[] _matches;

    public FilterChainMatcher(IReadOnlyList<FilterChainMatchModel> matches)
    {
        _matches = new FilterChainMatchModel[matches.Count];
        for (var i = 0; i < matches.Count; i++) _matches[i] = matches[i];
    }

    /// <summary>The index of the chosen chain, or -1 for none.</summary>
    public int Select(in ConnectionMatchInput c)
    {
        var n = _matches.Length;
        if (n == 0) return -1;
        Span<int> candidates = n <= 64 ? stackalloc int[n] : new int[n];
        for (var i = 0; i < n; i++) candidates[i] = i;
        for (var step = 0; step < 9 && n > 0; step++)
        {
            var best = -1;
            for (var i = 0; i < n; i++) best = Math.Max(best, Score(step, _matches[candidates[i]], c));
            if (best < 0) return -1;
            var kept = 0;
            for (var i = 0; i < n; i++)
                if (Score(step, _matches[candidates[i]], c) == best) candidates[kept++] = candidates[i];
            n = kept;
        }
        return candidates[0];
    }

    /// <summary>How specifically chain <paramref name="m"/> matches at one step: -1 not at all, 0 as a catch-all, more is more specific.</summary>
    private static int Score(int step, FilterChainMatchModel m, in ConnectionMatchInput c) => step switch
    {
        0 => m.DestinationPort is int port ? (c.Local?.Port == port ? 1 : -1) : 0,
        1 => Longest(m.PrefixRanges, c.Local?.Address),
        2 => ServerName(m.ServerNames, c.Hello.ServerName),
        3 => m.TransportProtocol.Length == 0 ? 0 : m.TransportProtocol == c.Hello.TransportProtocol ? 1 : -1,
        4 => Alpn(m.ApplicationProtocols, c.Hello.ApplicationProtocols),
        // Without the PROXY protocol the direct source is the source.
        5 => Longest(m.DirectSourcePrefixRanges, c.Remote?.Address),
        6 => SourceType(m.SourceType, c),
        7 => Longest(m.SourcePrefixRanges, c.Remote?.Address),
        _ => m.SourcePorts.Count == 0 ? 0 : c.Remote is { } r && Contains(m.SourcePorts, r.Port) ? 1 : -1,
    };

    private static int Longest(IReadOnlyList<CidrRangeModel> ranges, IPAddress? address)
    {
        if (ranges.Count == 0) return 0;
        if (address is null) return -1;
        var best = -1;
        foreach (var r in ranges)
            if (r.Length + 1 > best && r.Contains(address)) best = r.Length + 1;
        return best;
    }

    private static int ServerName(IReadOnlyList<string> names, string sni)
    {
        if (names.Count == 0) return 0;
        if (sni.Length == 0) return -1;
        var best = -1;
        foreach (var n in names)
        {
            if (n[0] != '.')
            {
                if (n == sni) return int.MaxValue;
            }
            // ".example.com" (from "*.example.com") covers any name ending in it with at least one more label.
            else if (sni.Length > n.Length && sni.EndsWith(n, StringComparison.Ordinal) && n.Length > best) best = n.Length;
        }
        return best;
    }

    private static int Alpn(IReadOnlyList<string> chain, IReadOnlyList<string> offered)
    {
        if (chain.Count == 0) return 0;
        // Envoy walks the client's list in order and takes the first protocol any chain names.
        for (var i = 0; i < offered.Count; i++)
            foreach (var p in chain)
                if (p == offered[i]) return offered.Count - i;
        return -1;
    }

    private static int SourceType(ConnectionSourceType type, in ConnectionMatchInput c)
    {
        if (type == ConnectionSourceType.Any) return 0;
        var local = c.Remote is { } r && (IPAddress.IsLoopback(r.Address) || (c.Local is { } l && r.Address.Equals(l.Address)));
        return (type == ConnectionSourceType.SameIpOrLoopback) == local ? 1 : -1;
    }

    private static bool Contains(IReadOnlyList<int> ports, int port)
    {
        foreach (var p in ports) if (p == port) return true;
        return false;
    }
}
