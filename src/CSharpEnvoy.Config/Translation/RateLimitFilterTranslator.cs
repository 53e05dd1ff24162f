using CSharpEnvoy.Config.Loading;
using CSharpEnvoy.Config.Model.HttpFilters;
using Envoy.Extensions.Filters.Http.Ratelimit.V3;
using Google.Protobuf.Collections;

namespace CSharpEnvoy.Config.Translation;

/// <summary>Translates <c>envoy.filters.http.ratelimit</c> (the global rate limit filter) and its per-route config.</summary>
internal static class RateLimitFilterTranslator
{
    public static RateLimitFilterModel Filter(RateLimit r, string path, ConfigErrors errors)
    {
        if (string.IsNullOrEmpty(r.Domain)) errors.Add(path + ".domain", "domain is required");
        if (r.Stage > 10) errors.Add(path + ".stage", "stage must be at most 10");
        bool? internalOnly = r.RequestType switch
        {
            "" or "both" => null,
            "internal" => true,
            "external" => false,
            _ => Invalid(path + ".request_type", $"request_type must be internal, external or both, not '{r.RequestType}'", errors),
        };
        var cluster = "";
        var rls = r.RateLimitService;
        if (rls is null) errors.Add(path + ".rate_limit_service", "rate_limit_service is required");
        else
        {
            var gPath = path + ".rate_limit_service.grpc_service";
            if (rls.GrpcService?.EnvoyGrpc is not { } envoyGrpc) errors.Add(gPath + ".envoy_grpc", "the rate limit service must be given as envoy_grpc (a cluster)");
            else if (string.IsNullOrEmpty(envoyGrpc.ClusterName)) errors.Add(gPath + ".envoy_grpc.cluster_name", "cluster_name is required");
            else cluster = envoyGrpc.ClusterName;
            // Envoy only speaks the v3 transport; AUTO is refused by Envoy too.
            if (rls.TransportApiVersion != Envoy.Config.Core.V3.ApiVersion.V3)
                errors.Add(path + ".rate_limit_service.transport_api_version", "transport_api_version must be V3");
        }
        var timeout = r.Timeout?.ToTimeSpan() ?? TimeSpan.FromMilliseconds(20);
        if (timeout < TimeSpan.Zero) errors.Add(path + ".timeout", "timeout must not be negative");
        return new RateLimitFilterModel
        {
            Domain = r.Domain,
            Stage = r.Stage,
            InternalOnly = internalOnly,
            Timeout = timeout,
            FailureModeDeny = r.FailureModeDeny,
            RateLimitedAsResourceExhausted = r.RateLimitedAsResourceExhausted,
            ClusterName = cluster,
            XRateLimitHeaders = r.EnableXRatelimitHeaders == RateLimit.Types.XRateLimitHeadersRFCVersion.DraftVersion03,
            DisableXEnvoyRateLimitedHeader = r.DisableXEnvoyRatelimitedHeader,
            RateLimitedStatus = Status(r.RateLimitedStatus, 429),
            StatusOnError = Status(r.StatusOnError, 500),
            ResponseHeaders = RouteTranslator.Mutation(r.ResponseHeadersToAdd, new RepeatedField<string>(), path, "response", errors),
            StatPrefix = r.StatPrefix,
        };
    }

    public static RateLimitPerRouteModel PerRoute(RateLimitPerRoute r, string path, ConfigErrors errors) =>
        new((VhRateLimitsOption)(int)r.VhRateLimits, string.IsNullOrEmpty(r.Domain) ? null : r.Domain);

    /// <summary>Envoy's <c>toErrorCode</c>/<c>toRatelimitedHttpCode</c>: a status below 400 means the default.</summary>
    private static int Status(Envoy.Type.V3.HttpStatus? s, int fallback) => s is null || (int)s.Code < 400 ? fallback : (int)s.Code;

    private static bool? Invalid(string path, string message, ConfigErrors errors)
    {
        errors.Add(path, message);
        return null;
    }
}
