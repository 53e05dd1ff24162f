using CSharpEnvoy.Config.Model.RouteConfiguration;

namespace CSharpEnvoy.Config.Model.HttpFilters;

/// <summary>A <c>type.v3.FractionalPercent</c>: <see cref="Numerator"/> out of <see cref="Denominator"/> (100, 10000 or 1000000).</summary>
internal sealed record FractionalPercentModel(uint Numerator, uint Denominator)
{
    public static readonly FractionalPercentModel Zero = new(0, 100);
}

/// <summary>The delay of <c>envoy.filters.http.fault</c>: a fixed duration, or one taken from
/// <c>x-envoy-fault-delay-request</c> when <see cref="FromHeader"/>.</summary>
internal sealed record FaultDelayModel(TimeSpan FixedDelay, bool FromHeader, FractionalPercentModel Percentage);

/// <summary>The abort of <c>envoy.filters.http.fault</c>: an HTTP status, a gRPC status, or either one taken from
/// <c>x-envoy-fault-abort-request</c> / <c>x-envoy-fault-abort-grpc-request</c> when <see cref="FromHeader"/>.</summary>
internal sealed record FaultAbortModel(int? HttpStatus, int? GrpcStatus, bool FromHeader, FractionalPercentModel Percentage);

/// <summary>Validated <c>extensions.filters.http.fault.v3.HTTPFault</c>.</summary>
internal sealed record FaultFilterModel(FaultDelayModel? Delay, FaultAbortModel? Abort, uint? MaxActiveFaults);

/// <summary>Validated <c>extensions.filters.http.local_ratelimit.v3.LocalRateLimit</c> (one filter-wide token bucket).</summary>
internal sealed record LocalRateLimitModel(
    string StatPrefix,
    int Status,
    uint MaxTokens,
    uint TokensPerFill,
    TimeSpan FillInterval,
    FractionalPercentModel? FilterEnabled,
    FractionalPercentModel? FilterEnforced,
    HeaderMutationModel ResponseHeaders);

/// <summary>Validated <c>extensions.filters.http.health_check.v3.HealthCheck</c>: which requests are health checks
/// (all <see cref="Headers"/> match) and whether they are answered locally or passed through.</summary>
internal sealed record HealthCheckFilterModel(bool PassThroughMode, IReadOnlyList<CSharpEnvoy.Config.Model.Matchers.HeaderMatcherModel> Headers);
