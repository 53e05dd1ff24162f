using CSharpEnvoy.Config.Model.Listener;
using CSharpEnvoy.Config.Model.Matchers;

namespace CSharpEnvoy.Config.Model.Rbac;

internal enum RbacAction { Allow = 0, Deny = 1, Log = 2 }

internal enum RbacRuleKind
{
    Any, And, Or, Not,
    Header, UrlPath, DestinationIp, DestinationPort, DestinationPortRange, RequestedServerName,
    Authenticated, DirectRemoteIp, RemoteIp,
}

/// <summary>
/// One node of a permission or principal tree (Envoy's <c>Permission</c> / <c>Principal</c> oneofs share their
/// shapes: and/or/not sets plus leaf matchers). Only the fields of its <see cref="Kind"/> are set.
/// </summary>
internal sealed record RbacRule(RbacRuleKind Kind)
{
    public static readonly RbacRule AnyRule = new(RbacRuleKind.Any);

    public IReadOnlyList<RbacRule> Children { get; init; } = [];
    public HeaderMatcherModel? Header { get; init; }
    /// <summary>url_path, requested_server_name, or authenticated.principal_name (null there matches any authenticated peer).</summary>
    public StringMatcherModel? String { get; init; }
    public CidrRangeModel? Cidr { get; init; }
    public int Port { get; init; }
    /// <summary>destination_port_range: [Port, PortEnd).</summary>
    public int PortEnd { get; init; }
}

/// <summary>A named policy: it matches when any permission and any principal match.</summary>
internal sealed record RbacPolicyModel(string Name, IReadOnlyList<RbacRule> Permissions, IReadOnlyList<RbacRule> Principals);

/// <summary>Envoy's <c>config.rbac.v3.RBAC</c>: the action taken when a policy matches (ALLOW: only matching
/// requests pass; DENY: matching requests are refused; LOG: all pass). Policies are in name order, as Envoy keeps them.</summary>
internal sealed record RbacRulesModel(RbacAction Action, IReadOnlyList<RbacPolicyModel> Policies);

/// <summary><c>envoy.filters.http.rbac</c> / <c>envoy.filters.network.rbac</c>: enforced rules, shadow rules, stat prefixes.</summary>
/// <summary>A route's <c>RBACPerRoute</c>: <see cref="Rbac"/> replaces the filter's config there; null turns it off.</summary>
internal sealed record RbacPerRouteModel(RbacFilterModel? Rbac);

internal sealed record RbacFilterModel(RbacRulesModel? Rules, RbacRulesModel? ShadowRules)
{
    public string RulesStatPrefix { get; init; } = "";
    public string ShadowRulesStatPrefix { get; init; } = "";
    /// <summary>The network filter's stat_prefix (the HTTP filter uses its connection manager's).</summary>
    public string StatPrefix { get; init; } = "";
}
