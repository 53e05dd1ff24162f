using CSharpEnvoy.Config.Model.HttpFilters;
using CSharpEnvoy.Config.Model.RouteConfiguration;
using CSharpEnvoy.DataPlane.Router;
using Microsoft.AspNetCore.Http;

namespace CSharpEnvoy.DataPlane.Http.Filters.RateLimit;

/// <summary>
/// Envoy's <c>RateLimitPolicyEntry::populateDescriptors</c>: the request's descriptors from the route's (and, per
/// <see cref="VhRateLimitsOption"/>, the virtual host's) <c>rate_limits</c> of one stage. A rate limit gives one
/// descriptor when every action yields its entry; an action that cannot (an absent header, unmatched headers)
/// drops that descriptor. Shared by the local and the global rate limit filters.
/// </summary>
internal static class RateLimitDescriptors
{
    /// <summary>The descriptors, each an array of (key, value) entries; null when there are none.</summary>
    public static List<KeyValuePair<string, string>[]>? Populate(HttpContext context, UpstreamRequest info, uint stage, VhRateLimitsOption vhOption)
    {
        if (info.Route?.Route is not { } action) return null;
        List<KeyValuePair<string, string>[]>? result = null;
        Add(ref result, action.RateLimits, context, info, stage);
        var option = action.IncludeVirtualHostRateLimits ? VhRateLimitsOption.Include : vhOption;
        if (info.VirtualHost is { } vhost && (option == VhRateLimitsOption.Include || (option == VhRateLimitsOption.Override && action.RateLimits.Length == 0)))
            Add(ref result, vhost.RateLimits, context, info, stage);
        return result;
    }

    private static void Add(ref List<KeyValuePair<string, string>[]>? result, RateLimitPolicyModel[] policies, HttpContext context, UpstreamRequest info, uint stage)
    {
        for (var i = 0; i < policies.Length; i++)
        {
            var p = policies[i];
            if (p.Stage != stage) continue;
            if (TryBuild(p, context, info) is { } d) (result ??= new()).Add(d);
        }
    }

    private static KeyValuePair<string, string>[]? TryBuild(RateLimitPolicyModel policy, HttpContext context, UpstreamRequest info)
    {
        var entries = new List<KeyValuePair<string, string>>(policy.Actions.Length);
        foreach (var a in policy.Actions)
        {
            switch (a.Kind)
            {
                case RateLimitActionKind.DestinationCluster:
                    if (RouterFilter.TargetClusterName(context, info) is not { } cluster) return null;
                    entries.Add(new(a.DescriptorKey, cluster));
                    break;
                case RateLimitActionKind.RemoteAddress:
                    var ip = info.XffRemoteAddress ?? context.Connection.RemoteIpAddress;
                    if (ip is null) return null; // a pipe peer has no IP address
                    if (ip.IsIPv4MappedToIPv6) ip = ip.MapToIPv4();
                    entries.Add(new(a.DescriptorKey, ip.ToString()));
                    break;
                case RateLimitActionKind.RequestHeaders:
                    // Envoy takes the header's first value (pseudo-headers included).
                    var value = a.HeaderName![0] == ':' ? info.Request?.GetHeader(a.HeaderName) : FirstValue(context.Request.Headers, a.HeaderName);
                    if (value is null)
                    {
                        if (a.SkipIfAbsent) break;
                        return null;
                    }
                    entries.Add(new(a.DescriptorKey, value));
                    break;
                case RateLimitActionKind.GenericKey:
                    entries.Add(new(a.DescriptorKey, a.DescriptorValue!));
                    break;
                case RateLimitActionKind.HeaderValueMatch:
                    if (MatchesAll(a, info) == a.ExpectMatch) entries.Add(new(a.DescriptorKey, a.DescriptorValue!));
                    else if (a.DefaultValue is { } dv) entries.Add(new(a.DescriptorKey, dv));
                    else return null;
                    break;
            }
        }
        return entries.Count == 0 ? null : entries.ToArray();
    }

    private static string? FirstValue(IHeaderDictionary headers, string name)
    {
        var v = headers[name];
        return v.Count == 0 ? null : v[0];
    }

    /// <summary>Envoy's <c>HeaderUtility::matchHeaders</c>: every matcher matches.</summary>
    private static bool MatchesAll(RateLimitActionModel a, UpstreamRequest info)
    {
        var request = info.Request!;
        foreach (var m in a.Headers)
            if (!m.Match(request.GetHeader(m.Name))) return false;
        return true;
    }
}
