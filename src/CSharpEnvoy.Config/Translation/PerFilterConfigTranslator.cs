using CSharpEnvoy.Config.Loading;
using CSharpEnvoy.Config.Model.RouteConfiguration;
using Google.Protobuf;
using Google.Protobuf.Collections;
using Google.Protobuf.WellKnownTypes;

namespace CSharpEnvoy.Config.Translation;

/// <summary>
/// Translates <c>typed_per_filter_config</c> maps. Each HTTP filter that takes per-route overrides registers the
/// type of its per-route config here with a translator to its model; the data plane finds the most specific entry
/// through <see cref="PerFilterConfigLookup"/>.
/// </summary>
internal static class PerFilterConfigTranslator
{
    private const string FilterConfigType = "envoy.config.route.v3.FilterConfig";

    /// <summary>Per-route config type → translator to the filter's model. One line per filter.</summary>
    private static readonly Dictionary<string, Func<IMessage, string, ConfigErrors, object?>> s_translators = new(StringComparer.Ordinal)
    {
        ["envoy.extensions.filters.http.fault.v3.HTTPFault"] = (m, p, e) =>
            HttpFilterTranslator.Fault((Envoy.Extensions.Filters.Http.Fault.V3.HTTPFault)m, p, e),
        ["envoy.extensions.filters.http.local_ratelimit.v3.LocalRateLimit"] = (m, p, e) =>
            HttpFilterTranslator.LocalRateLimit((Envoy.Extensions.Filters.Http.LocalRatelimit.V3.LocalRateLimit)m, p, e, perRoute: true),
        ["envoy.extensions.filters.http.ratelimit.v3.RateLimitPerRoute"] = (m, p, e) =>
            RateLimitFilterTranslator.PerRoute((Envoy.Extensions.Filters.Http.Ratelimit.V3.RateLimitPerRoute)m, p, e),
        ["envoy.extensions.filters.http.csrf.v3.CsrfPolicy"] = (m, p, e) =>
            HttpFilterTranslator.CsrfPolicy((Envoy.Extensions.Filters.Http.Csrf.V3.CsrfPolicy)m, p, e),
        ["envoy.extensions.filters.http.cors.v3.CorsPolicy"] = (m, p, e) =>
            HttpFilterTranslator.CorsPolicy((Envoy.Extensions.Filters.Http.Cors.V3.CorsPolicy)m, p, e),
        ["envoy.extensions.filters.http.compressor.v3.CompressorPerRoute"] = (m, p, e) =>
            CompressionTranslator.PerRoute((Envoy.Extensions.Filters.Http.Compressor.V3.CompressorPerRoute)m, p, e),
        ["envoy.extensions.filters.http.ext_authz.v3.ExtAuthzPerRoute"] = (m, p, e) =>
            ExtAuthzTranslator.PerRoute((Envoy.Extensions.Filters.Http.ExtAuthz.V3.ExtAuthzPerRoute)m, p, e),
        ["envoy.extensions.filters.http.rbac.v3.RBACPerRoute"] = (m, p, e) =>
            RbacTranslator.PerRoute((Envoy.Extensions.Filters.Http.Rbac.V3.RBACPerRoute)m, p, e),
    };

    /// <param name="path">The path of the route, virtual host or route configuration.</param>
    public static IReadOnlyDictionary<string, PerFilterConfigModel>? Translate(MapField<string, Any> map, string path, ConfigErrors errors)
    {
        if (map.Count == 0) return null;
        var result = new Dictionary<string, PerFilterConfigModel>(StringComparer.Ordinal);
        foreach (var (name, any) in map)
        {
            var ePath = $"{path}.typed_per_filter_config[\"{name}\"]";
            var config = any;
            var optional = false;
            var disabled = false;
            var wrapped = TypeName(any.TypeUrl) == FilterConfigType;
            if (wrapped)
            {
                var fc = any.Unpack<Envoy.Config.Route.V3.FilterConfig>();
                optional = fc.IsOptional;
                disabled = fc.Disabled;
                config = fc.Config;
                if (config is null || config.TypeUrl.Length == 0)
                {
                    // Only enables (a filter disabled by default) or disables the filter on this route.
                    result[name] = new PerFilterConfigModel(null, disabled);
                    continue;
                }
                ePath += ".config";
            }
            var type = TypeName(config.TypeUrl);
            if (!s_translators.TryGetValue(type, out var translate))
            {
                // Envoy ignores an optional entry whose filter it does not know.
                if (!optional) errors.Add(ePath, $"unsupported per-filter config type '{config.TypeUrl}' (see docs/compatibility.md)");
                continue;
            }
            var message = ProtoRegistry.Default.Unpack(config, out var error);
            if (message is null)
            {
                errors.Add(ePath, error!);
                continue;
            }
            result[name] = new PerFilterConfigModel(translate(message, ePath, errors), disabled);
        }
        return result.Count == 0 ? null : result;
    }

    private static string TypeName(string typeUrl)
    {
        var slash = typeUrl.LastIndexOf('/');
        return slash >= 0 ? typeUrl[(slash + 1)..] : typeUrl;
    }
}
