using CSharpEnvoy.Config.Model.HttpFilters;
using CSharpEnvoy.Config.Model.Listener;
using CSharpEnvoy.Config.Model.RouteConfiguration;
using CSharpEnvoy.DataPlane.Router;
using CSharpEnvoy.DataPlane.Stats;
using CSharpEnvoy.DataPlane.Upstream;
using Microsoft.AspNetCore.Http;

namespace CSharpEnvoy.DataPlane.Http.Filters;

/// <summary>A decoder filter that runs before the router (Envoy's <c>decodeHeaders</c>). One instance per
/// connection manager, shared by all its requests: read-only config and lock-free state only.</summary>
internal interface IHttpDecoderFilter
{
    /// <summary>True to continue with the next filter; false when the filter has sent a local reply (or the
    /// downstream went away), which ends the request.</summary>
    ValueTask<bool> DecodeHeadersAsync(HttpContext context, UpstreamRequest info, HttpConnectionManager hcm);
}

/// <summary>A decoder filter that may also act on the response body (Envoy's encoder side): it installs a
/// <see cref="ResponseBodyFilter"/> over the response body when it decodes, which the connection manager finishes once
/// the request's response is written (<see cref="ResponseBodyFilter.FinishAllAsync"/>).</summary>
internal interface IHttpEncoderFilter : IHttpDecoderFilter;

/// <summary>The names a filter's <c>typed_per_filter_config</c> entries are found by: its configured name, then its
/// extension name (Envoy's filter manager falls back to the latter).</summary>
internal sealed record HttpFilterNames(string ConfigName, string ExtensionName)
{
    public static HttpFilterNames Of(HttpFilterModel f) => new(f.ConfigName ?? f.Name, f.Name);

    /// <summary>The most specific per-route entry (route, then virtual host, then route configuration) of this
    /// filter for the request's route; null when there is none.</summary>
    public PerFilterConfigModel? Find(UpstreamRequest info) =>
        PerFilterConfigLookup.Find(info.Routes, info.VirtualHost, info.Route, ConfigName, ExtensionName);

    /// <summary>The filter's most specific per-route config of type <typeparamref name="T"/>, or null: what a filter
    /// calls to let a route override its filter-wide config.</summary>
    public T? MostSpecific<T>(UpstreamRequest info) where T : class
    {
        // Nothing to look up on most requests: no level has per-filter configs.
        if (info.Route?.TypedPerFilterConfig is null && info.VirtualHost?.TypedPerFilterConfig is null && info.Routes?.TypedPerFilterConfig is null)
            return null;
        return Find(info)?.Config as T;
    }
}

/// <summary>A filter of the chain with the names its per-route entries are keyed by and whether it is disabled by
/// default (<c>HttpFilter.disabled</c>).</summary>
internal sealed class HttpFilterEntry(IHttpDecoderFilter filter, HttpFilterNames names, bool disabledByDefault)
{
    public IHttpDecoderFilter Filter { get; } = filter;
    public HttpFilterNames Names { get; } = names;

    /// <summary>Whether the filter may wrap the response body (<see cref="IHttpEncoderFilter"/>).</summary>
    public bool Encodes { get; } = filter is IHttpEncoderFilter;

    /// <summary>Envoy's <c>FilterManager</c> decision per route: a per-route <c>FilterConfig</c> may disable the filter,
    /// and a filter disabled by default runs only where a per-route entry names it without disabling it.</summary>
    public bool IsEnabled(UpstreamRequest info)
    {
        if (info.Route?.TypedPerFilterConfig is null && info.VirtualHost?.TypedPerFilterConfig is null && info.Routes?.TypedPerFilterConfig is null)
            return !disabledByDefault;
        var entry = Names.Find(info);
        return entry is null ? !disabledByDefault : !entry.Disabled;
    }
}

internal static class HttpFilterChain
{
    /// <summary>The decoder filters of a connection manager in configured order, the router excluded; null when
    /// there are none.</summary>
    public static HttpFilterEntry[]? Build(HttpConnectionManagerModel model, StatsStore stats, ClusterManager clusters, Server.ServerHealth? health = null)
    {
        List<HttpFilterEntry>? filters = null;
        foreach (var f in model.HttpFilters)
        {
            var names = HttpFilterNames.Of(f);
            IHttpDecoderFilter? filter = f.Config switch
            {
                FaultFilterModel fault => new Fault.FaultFilter(fault, names, stats, "http." + model.StatPrefix + "."),
                LocalRateLimitModel lrl => new LocalRateLimit.LocalRateLimitFilter(lrl, names, stats),
                RateLimitFilterModel rl => new RateLimit.RateLimitFilter(rl, names, stats, clusters),
                HealthCheckFilterModel hc => new HealthCheck.HealthCheckFilter(hc, health ?? new Server.ServerHealth("")),
                Config.Model.Rbac.RbacFilterModel rbac => new Rbac.RbacFilter(rbac, names, stats, "http." + model.StatPrefix + "."),
                CorsFilterModel => new Cors.CorsFilter(names, stats, "http." + model.StatPrefix + "."),
                CsrfPolicyModel csrf => new Csrf.CsrfFilter(csrf, names, stats, "http." + model.StatPrefix + "."),
                CompressorFilterModel compressor => new Compressor.CompressorFilter(compressor, names, stats, "http." + model.StatPrefix + "."),
                DecompressorFilterModel decompressor => new Decompressor.DecompressorFilter(decompressor, stats, "http." + model.StatPrefix + "."),
                GrpcHttp1BridgeModel bridge => new GrpcHttp1Bridge.GrpcHttp1BridgeFilter(bridge),
                GrpcWebModel => GrpcWeb.GrpcWebFilter.Instance,
                ExtAuthzModel extAuthz => new ExtAuthz.ExtAuthzFilter(extAuthz, names, stats, clusters, "http." + model.StatPrefix + "."),
                _ => null,
            };
            if (filter is not null) (filters ??= new()).Add(new HttpFilterEntry(filter, names, f.Disabled));
        }
        return filters?.ToArray();
    }

    /// <summary>Envoy's <c>Runtime::Snapshot::featureEnabled</c> with a fractional percent default.</summary>
    public static bool Sample(FractionalPercentModel p) =>
        p.Numerator >= p.Denominator || (p.Numerator > 0 && (uint)Random.Shared.Next((int)p.Denominator) < p.Numerator);

    /// <summary>Ends a filter's request with its local reply (the filter returns false: the chain stops).</summary>
    public static async ValueTask<bool> Replied(Task reply)
    {
        await reply.ConfigureAwait(false);
        return false;
    }
}
