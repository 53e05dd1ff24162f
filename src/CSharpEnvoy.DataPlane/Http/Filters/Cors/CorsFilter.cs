using CSharpEnvoy.Config.Model.HttpFilters;
using CSharpEnvoy.Config.Model.RouteConfiguration;
using CSharpEnvoy.DataPlane.Router;
using CSharpEnvoy.DataPlane.Stats;
using Microsoft.AspNetCore.Http;

namespace CSharpEnvoy.DataPlane.Http.Filters.Cors;

/// <summary>
/// Envoy's <c>envoy.filters.http.cors</c>. The policies are the route's, its virtual host's and its route
/// configuration's <c>CorsPolicy</c> (typed_per_filter_config); each setting comes from the most specific level that
/// has it, and whether the filter is on (<c>filter_enabled</c>, <c>shadow_enabled</c>) from the most specific policy.
/// A request with an <c>Origin</c> is counted in <c>cors.origin_valid</c> or <c>cors.origin_invalid</c>. A preflight
/// (OPTIONS with <c>access-control-request-method</c>) is answered here with 200 and the policy's
/// <c>access-control-*</c> headers (<c>cors_response</c>), unless its origin is not allowed and
/// <c>forward_not_matching_preflights</c> (default true) sends it upstream. Any other response to an allowed origin
/// gets <c>access-control-allow-origin</c>, <c>-allow-credentials</c> and <c>-expose-headers</c>.
/// </summary>
internal sealed class CorsFilter(HttpFilterNames names, StatsStore stats, string statPrefix) : IHttpDecoderFilter
{
    private readonly Counter _originValid = stats.Counter(statPrefix, "cors.origin_valid");
    private readonly Counter _originInvalid = stats.Counter(statPrefix, "cors.origin_invalid");

    public ValueTask<bool> DecodeHeadersAsync(HttpContext context, UpstreamRequest info, HttpConnectionManager hcm)
    {
        // As Envoy's: only routes that forward (a redirect or direct response has no route entry there).
        if (info.Route is not { Redirect: null, DirectResponse: null }) return new ValueTask<bool>(true);
        var policies = Policies(info);
        if (policies.Route is null && policies.VirtualHost is null && policies.Routes is null) return new ValueTask<bool>(true);
        var first = policies.MostSpecific;
        var enabled = first.FilterEnabled is not { } fe || HttpFilterChain.Sample(fe);
        var shadow = first.ShadowEnabled is { } se && HttpFilterChain.Sample(se);
        if (!enabled && !shadow) return new ValueTask<bool>(true);

        var request = context.Request;
        string origin = request.Headers.Origin.ToString();
        if (origin.Length == 0) return new ValueTask<bool>(true);
        var allowed = IsOriginAllowed(policies, origin);
        (allowed ? _originValid : _originInvalid).Inc();
        if (!enabled) return new ValueTask<bool>(true); // shadow only: counted, not enforced

        if (!HttpMethods.IsOptions(request.Method) || request.Headers.AccessControlRequestMethod.ToString() is not { Length: > 0 } requestMethod)
        {
            // An actual request: its response (the upstream's or a later local reply) names the allowed origin.
            if (allowed) context.Response.OnStarting(s_decorate, new Decoration(context, origin, policies));
            return new ValueTask<bool>(true);
        }
        // A preflight.
        if (!allowed && policies.ForwardNotMatchingPreflights) return new ValueTask<bool>(true);
        var response = context.Response;
        var headers = response.Headers;
        response.StatusCode = StatusCodes.Status200OK;
        if (hcm.LocalReplyServerName is { } server) headers.Server = server;
        if (allowed) headers.AccessControlAllowOrigin = origin;
        if (policies.AllowCredentials) headers.AccessControlAllowCredentials = "true";
        if (policies.AllowMethods is { Length: > 0 } methods) headers.AccessControlAllowMethods = methods == "*" ? requestMethod : methods;
        if (policies.AllowHeaders is { Length: > 0 } allowHeaders)
            headers.AccessControlAllowHeaders = allowHeaders == "*" ? request.Headers.AccessControlRequestHeaders.ToString() : allowHeaders;
        if (policies.MaxAge is { Length: > 0 } maxAge) headers.AccessControlMaxAge = maxAge;
        if (policies.AllowPrivateNetworkAccess && request.Headers["access-control-request-private-network"] == "true")
            headers["access-control-allow-private-network"] = "true";
        headers.ContentLength = 0;
        info.ResponseCodeDetails = "cors_response";
        return new ValueTask<bool>(false);
    }

    private static bool IsOriginAllowed(in PolicySet policies, string origin)
    {
        foreach (var m in policies.AllowOrigins)
            if (m.Match("*") || m.Match(origin)) return true;
        return false;
    }

    private PolicySet Policies(UpstreamRequest info)
    {
        var set = info.Route?.TypedPerFilterConfig is null && info.VirtualHost?.TypedPerFilterConfig is null && info.Routes?.TypedPerFilterConfig is null
            ? default
            : new PolicySet(Find(info.Route?.TypedPerFilterConfig), Find(info.VirtualHost?.TypedPerFilterConfig), Find(info.Routes?.TypedPerFilterConfig));
        // As Envoy: the deprecated cors fields of the route and its virtual host count only where no level has a policy.
        if (set.Route is null && set.VirtualHost is null && set.Routes is null) set = new PolicySet(info.Route?.Route?.Cors, info.VirtualHost?.Cors, null);
        return set;
    }

    /// <summary>A level's policy, by the filter's configured name, then its extension name.</summary>
    private CorsPolicyModel? Find(IReadOnlyDictionary<string, PerFilterConfigModel>? level)
    {
        if (level is null) return null;
        if (level.TryGetValue(names.ConfigName, out var e) || level.TryGetValue(names.ExtensionName, out e)) return e.Config as CorsPolicyModel;
        return null;
    }

    private static readonly Func<object, Task> s_decorate = static state =>
    {
        var d = (Decoration)state;
        var headers = d.Context.Response.Headers;
        headers.AccessControlAllowOrigin = d.Origin;
        if (d.Policies.AllowCredentials) headers.AccessControlAllowCredentials = "true";
        if (d.Policies.ExposeHeaders is { Length: > 0 } expose) headers.AccessControlExposeHeaders = expose;
        return Task.CompletedTask;
    };

    private sealed record Decoration(HttpContext Context, string Origin, PolicySet Policies);

    /// <summary>The policies of a request's route, virtual host and route configuration; each setting from the most
    /// specific one that has it, as Envoy's filter reads them.</summary>
    private readonly record struct PolicySet(CorsPolicyModel? Route, CorsPolicyModel? VirtualHost, CorsPolicyModel? Routes)
    {
        public CorsPolicyModel MostSpecific => Route ?? VirtualHost ?? Routes!;

        public Config.Model.Matchers.StringMatcherModel[] AllowOrigins =>
            Route is { AllowOrigins.Length: > 0 } r ? r.AllowOrigins
            : VirtualHost is { AllowOrigins.Length: > 0 } v ? v.AllowOrigins
            : Routes?.AllowOrigins ?? [];

        public string AllowMethods => Pick(static p => p.AllowMethods);
        public string AllowHeaders => Pick(static p => p.AllowHeaders);
        public string ExposeHeaders => Pick(static p => p.ExposeHeaders);
        public string MaxAge => Pick(static p => p.MaxAge);
        public bool AllowCredentials => Route?.AllowCredentials ?? VirtualHost?.AllowCredentials ?? Routes?.AllowCredentials ?? false;
        public bool AllowPrivateNetworkAccess =>
            Route?.AllowPrivateNetworkAccess ?? VirtualHost?.AllowPrivateNetworkAccess ?? Routes?.AllowPrivateNetworkAccess ?? false;
        public bool ForwardNotMatchingPreflights =>
            Route?.ForwardNotMatchingPreflights ?? VirtualHost?.ForwardNotMatchingPreflights ?? Routes?.ForwardNotMatchingPreflights ?? true;

        private string Pick(Func<CorsPolicyModel, string> field)
        {
            if (Route is { } r && field(r) is { Length: > 0 } a) return a;
            if (VirtualHost is { } v && field(v) is { Length: > 0 } b) return b;
            return Routes is { } c ? field(c) : "";
        }
    }
}
