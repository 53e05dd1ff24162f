using System.Net;
using CSharpEnvoy.Config.Model.Rbac;
using CSharpEnvoy.DataPlane.Router;
using CSharpEnvoy.DataPlane.Stats;
using CSharpEnvoy.DataPlane.Tls;
using Microsoft.AspNetCore.Connections.Features;
using Microsoft.AspNetCore.Http;

namespace CSharpEnvoy.DataPlane.Http.Filters.Rbac;

/// <summary>Envoy's RBAC counters: <c>&lt;prefix&gt;rbac.&lt;rules_stat_prefix&gt;allowed|denied</c> and
/// <c>&lt;prefix&gt;rbac.&lt;shadow_rules_stat_prefix&gt;shadow_allowed|shadow_denied</c>.</summary>
internal sealed class RbacStats(StatsStore stats, string prefix, RbacFilterModel model)
{
    public Counter Allowed { get; } = stats.Counter(prefix + "rbac." + model.RulesStatPrefix + "allowed");
    public Counter Denied { get; } = stats.Counter(prefix + "rbac." + model.RulesStatPrefix + "denied");
    public Counter ShadowAllowed { get; } = stats.Counter(prefix + "rbac." + model.ShadowRulesStatPrefix + "shadow_allowed");
    public Counter ShadowDenied { get; } = stats.Counter(prefix + "rbac." + model.ShadowRulesStatPrefix + "shadow_denied");

    /// <summary>Evaluates the shadow rules (counted only) then the enforced ones; true when the request may pass.</summary>
    public bool Evaluate(RbacFilterModel model, in RbacInput input, out string? policy)
    {
        policy = null;
        if (model.ShadowRules is { } shadow)
            (RbacEngine.Allowed(shadow, input, out _) ? ShadowAllowed : ShadowDenied).Inc();
        if (model.Rules is not { } rules) return true;
        var ok = RbacEngine.Allowed(rules, input, out policy);
        (ok ? Allowed : Denied).Inc();
        return ok;
    }
}

/// <summary><c>envoy.filters.http.rbac</c>: a denied request gets 403 <c>RBAC: access denied</c>.</summary>
internal sealed class RbacFilter(RbacFilterModel model, HttpFilterNames names, StatsStore stats, string statPrefix) : IHttpDecoderFilter
{
    private readonly RbacStats _stats = new(stats, statPrefix, model);
    /// <summary>Stats of the per-route policies seen so far (their own rules_stat_prefix), made on first use.</summary>
    private readonly System.Collections.Concurrent.ConcurrentDictionary<RbacFilterModel, RbacStats> _perRoute = new();

    public ValueTask<bool> DecodeHeadersAsync(HttpContext context, UpstreamRequest info, HttpConnectionManager hcm)
    {
        var active = model;
        var counters = _stats;
        if (names.MostSpecific<RbacPerRouteModel>(info) is { } perRoute)
        {
            if (perRoute.Rbac is not { } routeModel) return new ValueTask<bool>(true); // RBACPerRoute without rbac: off here
            active = routeModel;
            counters = _perRoute.GetOrAdd(routeModel, static (m, s) => new RbacStats(s.Store, s.Prefix, m), (Store: stats, Prefix: statPrefix));
        }
        var input = Input(context, info);
        if (counters.Evaluate(active, input, out var policy)) return new ValueTask<bool>(true);
        return Replied(LocalReply.SendAsync(context, 403, "RBAC: access denied", hcm.LocalReplyServerName, info,
            "rbac_access_denied_matched_policy[" + (policy ?? "none") + "]"));
    }

    private static RbacInput Input(HttpContext context, UpstreamRequest info)
    {
        var c = context.Connection;
        var direct = c.RemoteIpAddress is { IsIPv4MappedToIPv6: true } m ? m.MapToIPv4() : c.RemoteIpAddress;
        var local = c.LocalIpAddress is { } la ? new IPEndPoint(la.IsIPv4MappedToIPv6 ? la.MapToIPv4() : la, c.LocalPort) : null;
        var peer = context.Features.Get<PeerCertificateInfo>();
        var handshake = context.Features.Get<ITlsHandshakeFeature>();
        return new RbacInput
        {
            Request = new RequestView(context, handshake is null ? "http" : "https"),
            Local = local,
            DirectRemote = direct,
            Remote = info.XffRemoteAddress ?? direct,
            Tls = handshake is not null,
            Peer = peer,
            ServerName = handshake?.HostName,
        };
    }

    private static async ValueTask<bool> Replied(Task reply)
    {
        await reply.ConfigureAwait(false);
        return false;
    }
}
