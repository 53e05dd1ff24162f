using System.Net;
using CSharpEnvoy.Config.Model.Rbac;
using CSharpEnvoy.Config.Model.Tls;
using CSharpEnvoy.DataPlane.Tls;

namespace CSharpEnvoy.DataPlane.Http.Filters.Rbac;

/// <summary>What RBAC rules look at: the connection, and for the HTTP filter the request.</summary>
internal readonly struct RbacInput
{
    public RequestView? Request { get; init; }
    public IPEndPoint? Local { get; init; }
    /// <summary>The connection's peer.</summary>
    public IPAddress? DirectRemote { get; init; }
    /// <summary>The downstream address after x-forwarded-for processing (the peer when there is none).</summary>
    public IPAddress? Remote { get; init; }
    /// <summary>True on a TLS connection (Envoy's <c>connection.ssl()</c>).</summary>
    public bool Tls { get; init; }
    public PeerCertificateInfo? Peer { get; init; }
    public string? ServerName { get; init; }
}

/// <summary>Envoy's RBAC engine: the first policy (in name order) whose permissions and principals match decides.</summary>
internal static class RbacEngine
{
    /// <summary>Whether the request is allowed; <paramref name="policy"/> is the matched policy's name, if any.</summary>
    public static bool Allowed(RbacRulesModel rules, in RbacInput input, out string? policy)
    {
        policy = null;
        foreach (var p in rules.Policies)
        {
            if (AnyMatch(p.Permissions, input) && AnyMatch(p.Principals, input))
            {
                policy = p.Name;
                break;
            }
        }
        return rules.Action switch
        {
            RbacAction.Allow => policy is not null,
            RbacAction.Deny => policy is null,
            _ => true,
        };
    }

    private static bool AnyMatch(IReadOnlyList<RbacRule> rules, in RbacInput input)
    {
        foreach (var r in rules) if (Match(r, input)) return true;
        return false;
    }

    public static bool Match(RbacRule r, in RbacInput input)
    {
        switch (r.Kind)
        {
            case RbacRuleKind.Any:
                return true;
            case RbacRuleKind.And:
                foreach (var c in r.Children) if (!Match(c, input)) return false;
                return true;
            case RbacRuleKind.Or:
                return AnyMatch(r.Children, input);
            case RbacRuleKind.Not:
                return !Match(r.Children[0], input);
            case RbacRuleKind.Header:
                // Network RBAC has no headers: a header rule never matches there.
                return input.Request is { } req && r.Header is { } h && h.Match(req.GetHeader(h.Name));
            case RbacRuleKind.UrlPath:
                return input.Request is { } rq && r.String!.Match(rq.Path);
            case RbacRuleKind.DestinationIp:
                return input.Local is { } l && r.Cidr!.Contains(l.Address);
            case RbacRuleKind.DestinationPort:
                return input.Local is { } lp && lp.Port == r.Port;
            case RbacRuleKind.DestinationPortRange:
                return input.Local is { } lr && lr.Port >= r.Port && lr.Port < r.PortEnd;
            case RbacRuleKind.RequestedServerName:
                return r.String!.Match(input.ServerName ?? "");
            case RbacRuleKind.DirectRemoteIp:
                return input.DirectRemote is { } d && r.Cidr!.Contains(d);
            case RbacRuleKind.RemoteIp:
                return input.Remote is { } rm && r.Cidr!.Contains(rm);
            case RbacRuleKind.Authenticated:
                return Authenticated(r, input);
            default:
                return false;
        }
    }

    /// <summary>Envoy's AuthenticatedMatcher: any TLS connection without principal_name; otherwise the URI SANs, then
    /// the DNS SANs, then the subject of the peer certificate.</summary>
    private static bool Authenticated(RbacRule r, in RbacInput input)
    {
        if (!input.Tls) return false;
        var m = r.String;
        if (m is null) return true;
        var peer = input.Peer;
        if (peer is null) return m.Match("");
        var sans = peer.Sans;
        foreach (var (t, v) in sans) if (t == SanType.Uri && m.Match(v)) return true;
        foreach (var (t, v) in sans) if (t == SanType.Dns && m.Match(v)) return true;
        return m.Match(peer.Subject);
    }
}
