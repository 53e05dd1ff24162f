using System.Net;
using System.Net.Sockets;

namespace CSharpEnvoy.Config.Model.Listener;

/// <summary>An IP prefix (Envoy's <c>CidrRange</c>): <see cref="Length"/> leading bits of <see cref="Prefix"/>.</summary>
internal sealed record CidrRangeModel(IPAddress Prefix, int Length)
{
    /// <summary>True when <paramref name="address"/> lies in the range. An IPv4-mapped IPv6 address is compared as IPv4.</summary>
    public bool Contains(IPAddress address)
    {
        if (address.IsIPv4MappedToIPv6 && Prefix.AddressFamily == AddressFamily.InterNetwork) address = address.MapToIPv4();
        if (address.AddressFamily != Prefix.AddressFamily) return false;
        Span<byte> a = stackalloc byte[16];
        Span<byte> p = stackalloc byte[16];
        address.TryWriteBytes(a, out var len);
        Prefix.TryWriteBytes(p, out _);
        var bits = Length;
        for (var i = 0; i < len && bits > 0; i++, bits -= 8)
        {
            var mask = bits >= 8 ? 0xff : (0xff << (8 - bits)) & 0xff;
            if ((a[i] & mask) != (p[i] & mask)) return false;
        }
        return true;
    }

    public override string ToString() => $"{Prefix}/{Length}";
}

internal enum ConnectionSourceType { Any = 0, SameIpOrLoopback = 1, External = 2 }

/// <summary>
/// A filter chain's <c>filter_chain_match</c>. Empty lists and null mean "any". Envoy picks a chain by narrowing the
/// candidates one property at a time, in a fixed order, keeping only the most specific matches at each step and never
/// backtracking (see <c>FilterChainMatch</c> in the listener docs).
/// </summary>
internal sealed record FilterChainMatchModel
{
    public static readonly FilterChainMatchModel Any = new();

    public int? DestinationPort { get; init; }
    public IReadOnlyList<CidrRangeModel> PrefixRanges { get; init; } = [];
    /// <summary>Exact names ("a.example.com") and wildcards, kept as their suffix (".example.com" for "*.example.com").</summary>
    public IReadOnlyList<string> ServerNames { get; init; } = [];
    /// <summary>"" for any, else e.g. "tls" or "raw_buffer".</summary>
    public string TransportProtocol { get; init; } = "";
    public IReadOnlyList<string> ApplicationProtocols { get; init; } = [];
    public IReadOnlyList<CidrRangeModel> DirectSourcePrefixRanges { get; init; } = [];
    public ConnectionSourceType SourceType { get; init; }
    public IReadOnlyList<CidrRangeModel> SourcePrefixRanges { get; init; } = [];
    public IReadOnlyList<int> SourcePorts { get; init; } = [];

    /// <summary>Whether matching this chain needs the ClientHello (server names or ALPN).</summary>
    public bool NeedsClientHello => ServerNames.Count > 0 || ApplicationProtocols.Count > 0;

    /// <summary>True when some connection would reach both chains at the same level of the match tree: each
    /// property is either unset on both or shares a value. Envoy refuses such a listener ("multiple filter chains
    /// with the same matching rules are defined").</summary>
    public bool SameRulesAs(FilterChainMatchModel o) =>
        DestinationPort == o.DestinationPort && Share(PrefixRanges, o.PrefixRanges) && Share(ServerNames, o.ServerNames) &&
        TransportProtocol == o.TransportProtocol && Share(ApplicationProtocols, o.ApplicationProtocols) &&
        Share(DirectSourcePrefixRanges, o.DirectSourcePrefixRanges) && SourceType == o.SourceType &&
        Share(SourcePrefixRanges, o.SourcePrefixRanges) && Share(SourcePorts, o.SourcePorts);

    private static bool Share<T>(IReadOnlyList<T> a, IReadOnlyList<T> b)
    {
        if (a.Count == 0 || b.Count == 0) return a.Count == b.Count;
        foreach (var x in a)
            foreach (var y in b)
                if (EqualityComparer<T>.Default.Equals(x, y)) return true;
        return false;
    }
}
