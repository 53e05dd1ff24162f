using CSharpEnvoy.Config.Loading;
using CSharpEnvoy.Config.Model.Rbac;
using Envoy.Config.Rbac.V3;
using ProtoRbac = Envoy.Config.Rbac.V3.RBAC;

namespace CSharpEnvoy.Config.Translation;

/// <summary>Validates RBAC policies (shared by the HTTP and network RBAC filters).</summary>
internal static class RbacTranslator
{
    public static RbacFilterModel Http(Envoy.Extensions.Filters.Http.Rbac.V3.RBAC r, string path, ConfigErrors errors) =>
        new(Rules(r.Rules, path + ".rules", errors), Rules(r.ShadowRules, path + ".shadow_rules", errors))
        {
            RulesStatPrefix = r.RulesStatPrefix,
            ShadowRulesStatPrefix = r.ShadowRulesStatPrefix,
        };

    /// <summary><c>RBACPerRoute</c>: its <c>rbac</c> replaces the filter's config on the route; absent, the filter is off there.</summary>
    public static RbacPerRouteModel PerRoute(Envoy.Extensions.Filters.Http.Rbac.V3.RBACPerRoute r, string path, ConfigErrors errors) =>
        new(r.Rbac is null ? null : Http(r.Rbac, path + ".rbac", errors));

    public static RbacFilterModel Network(Envoy.Extensions.Filters.Network.Rbac.V3.RBAC r, string path, ConfigErrors errors)
    {
        if (string.IsNullOrEmpty(r.StatPrefix)) errors.Add(path + ".stat_prefix", "stat_prefix is required");
        if (r.EnforcementType != Envoy.Extensions.Filters.Network.Rbac.V3.RBAC.Types.EnforcementType.OneTimeOnFirstByte)
            errors.Add(path + ".enforcement_type", "CONTINUOUS enforcement needs protocol metadata, which csenvoy has no filter for; use ONE_TIME_ON_FIRST_BYTE");
        // Envoy's statPrefixJoin: "<stat_prefix>." unless it already ends with a dot.
        var prefix = r.StatPrefix.Length == 0 || r.StatPrefix.EndsWith('.') ? r.StatPrefix : r.StatPrefix + ".";
        return new RbacFilterModel(Rules(r.Rules, path + ".rules", errors), Rules(r.ShadowRules, path + ".shadow_rules", errors))
        {
            ShadowRulesStatPrefix = r.ShadowRulesStatPrefix,
            StatPrefix = prefix,
        };
    }

    /// <summary>Null when unset: Envoy then enforces nothing.</summary>
    public static RbacRulesModel? Rules(ProtoRbac? r, string path, ConfigErrors errors)
    {
        if (r is null) return null;
        var action = r.Action switch
        {
            ProtoRbac.Types.Action.Allow => RbacAction.Allow,
            ProtoRbac.Types.Action.Deny => RbacAction.Deny,
            _ => RbacAction.Log,
        };
        var names = new List<string>(r.Policies.Keys);
        names.Sort(StringComparer.Ordinal);
        var policies = new List<RbacPolicyModel>();
        foreach (var name in names)
        {
            var p = r.Policies[name];
            var pPath = $"{path}.policies[\"{name}\"]";
            if (p.Permissions.Count == 0) errors.Add(pPath + ".permissions", "a policy needs at least one permission");
            if (p.Principals.Count == 0) errors.Add(pPath + ".principals", "a policy needs at least one principal");
            var permissions = new List<RbacRule>();
            for (var i = 0; i < p.Permissions.Count; i++) permissions.Add(Permission(p.Permissions[i], $"{pPath}.permissions[{i}]", errors));
            var principals = new List<RbacRule>();
            for (var i = 0; i < p.Principals.Count; i++) principals.Add(Principal(p.Principals[i], $"{pPath}.principals[{i}]", errors));
            policies.Add(new RbacPolicyModel(name, permissions, principals));
        }
        return new RbacRulesModel(action, policies);
    }

    private static RbacRule Permission(Permission p, string path, ConfigErrors errors)
    {
        switch (p.RuleCase)
        {
            case Envoy.Config.Rbac.V3.Permission.RuleOneofCase.Any:
                if (!p.Any) errors.Add(path + ".any", "any must be true");
                return RbacRule.AnyRule;
            case Envoy.Config.Rbac.V3.Permission.RuleOneofCase.AndRules:
                return Set(RbacRuleKind.And, p.AndRules.Rules, path + ".and_rules.rules", errors, Permission);
            case Envoy.Config.Rbac.V3.Permission.RuleOneofCase.OrRules:
                return Set(RbacRuleKind.Or, p.OrRules.Rules, path + ".or_rules.rules", errors, Permission);
            case Envoy.Config.Rbac.V3.Permission.RuleOneofCase.NotRule:
                return new RbacRule(RbacRuleKind.Not) { Children = [Permission(p.NotRule, path + ".not_rule", errors)] };
            case Envoy.Config.Rbac.V3.Permission.RuleOneofCase.Header:
                return new RbacRule(RbacRuleKind.Header) { Header = RouteTranslator.HeaderMatcher(p.Header, path + ".header", errors) };
            case Envoy.Config.Rbac.V3.Permission.RuleOneofCase.UrlPath:
                return UrlPath(p.UrlPath, path + ".url_path", errors);
            case Envoy.Config.Rbac.V3.Permission.RuleOneofCase.DestinationIp:
                return new RbacRule(RbacRuleKind.DestinationIp) { Cidr = FilterChainMatchTranslator.Cidr(p.DestinationIp, path + ".destination_ip", errors) };
            case Envoy.Config.Rbac.V3.Permission.RuleOneofCase.DestinationPort:
                if (p.DestinationPort > 65535) errors.Add(path + ".destination_port", "destination_port must be at most 65535");
                return new RbacRule(RbacRuleKind.DestinationPort) { Port = (int)p.DestinationPort };
            case Envoy.Config.Rbac.V3.Permission.RuleOneofCase.DestinationPortRange:
                if (p.DestinationPortRange.Start > p.DestinationPortRange.End)
                    errors.Add(path + ".destination_port_range", "start must not be greater than end");
                return new RbacRule(RbacRuleKind.DestinationPortRange) { Port = p.DestinationPortRange.Start, PortEnd = p.DestinationPortRange.End };
            case Envoy.Config.Rbac.V3.Permission.RuleOneofCase.RequestedServerName:
                return new RbacRule(RbacRuleKind.RequestedServerName) { String = RouteTranslator.StringMatcher(p.RequestedServerName, path + ".requested_server_name", errors) };
            case Envoy.Config.Rbac.V3.Permission.RuleOneofCase.None:
                errors.Add(path, "a permission needs a rule");
                return RbacRule.AnyRule;
            default:
                // metadata, matcher, uri_template, sourced_metadata: refused by the support checker with their path.
                return RbacRule.AnyRule;
        }
    }

    private static RbacRule Principal(Principal p, string path, ConfigErrors errors)
    {
        switch (p.IdentifierCase)
        {
            case Envoy.Config.Rbac.V3.Principal.IdentifierOneofCase.Any:
                if (!p.Any) errors.Add(path + ".any", "any must be true");
                return RbacRule.AnyRule;
            case Envoy.Config.Rbac.V3.Principal.IdentifierOneofCase.AndIds:
                return Set(RbacRuleKind.And, p.AndIds.Ids, path + ".and_ids.ids", errors, Principal);
            case Envoy.Config.Rbac.V3.Principal.IdentifierOneofCase.OrIds:
                return Set(RbacRuleKind.Or, p.OrIds.Ids, path + ".or_ids.ids", errors, Principal);
            case Envoy.Config.Rbac.V3.Principal.IdentifierOneofCase.NotId:
                return new RbacRule(RbacRuleKind.Not) { Children = [Principal(p.NotId, path + ".not_id", errors)] };
            case Envoy.Config.Rbac.V3.Principal.IdentifierOneofCase.Authenticated:
                var name = p.Authenticated.PrincipalName;
                return new RbacRule(RbacRuleKind.Authenticated)
                {
                    String = name is null ? null : RouteTranslator.StringMatcher(name, path + ".authenticated.principal_name", errors),
                };
#pragma warning disable CS0612 // source_ip is deprecated but still accepted by Envoy: the connection's peer address
            case Envoy.Config.Rbac.V3.Principal.IdentifierOneofCase.SourceIp:
                return new RbacRule(RbacRuleKind.DirectRemoteIp) { Cidr = FilterChainMatchTranslator.Cidr(p.SourceIp, path + ".source_ip", errors) };
#pragma warning restore CS0612
            case Envoy.Config.Rbac.V3.Principal.IdentifierOneofCase.DirectRemoteIp:
                return new RbacRule(RbacRuleKind.DirectRemoteIp) { Cidr = FilterChainMatchTranslator.Cidr(p.DirectRemoteIp, path + ".direct_remote_ip", errors) };
            case Envoy.Config.Rbac.V3.Principal.IdentifierOneofCase.RemoteIp:
                return new RbacRule(RbacRuleKind.RemoteIp) { Cidr = FilterChainMatchTranslator.Cidr(p.RemoteIp, path + ".remote_ip", errors) };
            case Envoy.Config.Rbac.V3.Principal.IdentifierOneofCase.Header:
                return new RbacRule(RbacRuleKind.Header) { Header = RouteTranslator.HeaderMatcher(p.Header, path + ".header", errors) };
            case Envoy.Config.Rbac.V3.Principal.IdentifierOneofCase.UrlPath:
                return UrlPath(p.UrlPath, path + ".url_path", errors);
            case Envoy.Config.Rbac.V3.Principal.IdentifierOneofCase.None:
                errors.Add(path, "a principal needs an identifier");
                return RbacRule.AnyRule;
            default:
                return RbacRule.AnyRule;
        }
    }

    private static RbacRule UrlPath(Envoy.Type.Matcher.V3.PathMatcher m, string path, ConfigErrors errors)
    {
        if (m.Path is null)
        {
            errors.Add(path + ".path", "path is required");
            return RbacRule.AnyRule;
        }
        return new RbacRule(RbacRuleKind.UrlPath) { String = RouteTranslator.StringMatcher(m.Path, path + ".path", errors) };
    }

    private static RbacRule Set<T>(RbacRuleKind kind, IList<T> items, string path, ConfigErrors errors, Func<T, string, ConfigErrors, RbacRule> translate)
    {
        if (items.Count == 0) errors.Add(path, "a set needs at least one rule");
        var children = new List<RbacRule>();
        for (var i = 0; i < items.Count; i++) children.Add(translate(items[i], $"{path}[{i}]", errors));
        return new RbacRule(kind) { Children = children };
    }
}
