using CSharpEnvoy.Config.Model.HttpFilters;
using CSharpEnvoy.Config.Model.Listener;
using CSharpEnvoy.DataPlane.Router;
using CSharpEnvoy.DataPlane.Stats;
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

internal static class HttpFilterChain
{
    /// <summary>The decoder filters of a connection manager in configured order, the router excluded; null when
    /// there are none.</summary>
    public static IHttpDecoderFilter[]? Build(HttpConnectionManagerModel model, StatsStore stats)
    {
        List<IHttpDecoderFilter>? filters = null;
        foreach (var f in model.HttpFilters)
        {
            IHttpDecoderFilter? filter = f.Config switch
            {
                FaultFilterModel fault => new Fault.FaultFilter(fault, stats, "http." + model.StatPrefix + "."),
                LocalRateLimitModel lrl => new LocalRateLimit.LocalRateLimitFilter(lrl, stats),
                Config.Model.Rbac.RbacFilterModel rbac => new Rbac.RbacFilter(rbac, stats, "http." + model.StatPrefix + "."),
                _ => null,
            };
            if (filter is not null) (filters ??= new()).Add(filter);
        }
        return filters?.ToArray();
    }

    /// <summary>Envoy's <c>Runtime::Snapshot::featureEnabled</c> with a fractional percent default.</summary>
    public static bool Sample(FractionalPercentModel p) =>
        p.Numerator >= p.Denominator || (p.Numerator > 0 && (uint)Random.Shared.Next((int)p.Denominator) < p.Numerator);
}
