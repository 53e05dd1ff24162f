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

/// <summary>Validated <c>extensions.filters.http.local_ratelimit.v3.LocalRateLimit</c>: the default token bucket
/// (<see cref="MaxTokens"/> 0 when there is none: nothing is limited by it) and the descriptor buckets.</summary>
internal sealed record LocalRateLimitModel(
    string StatPrefix,
    int Status,
    uint MaxTokens,
    uint TokensPerFill,
    TimeSpan FillInterval,
    FractionalPercentModel? FilterEnabled,
    FractionalPercentModel? FilterEnforced,
    HeaderMutationModel ResponseHeaders)
{
    public bool HasTokenBucket => MaxTokens > 0;
    /// <summary><c>descriptors</c>, strictest (fewest tokens per second) first, as Envoy consumes them.</summary>
    public LocalRateLimitDescriptorModel[] Descriptors { get; init; } = Array.Empty<LocalRateLimitDescriptorModel>();
    /// <summary>Route <c>rate_limits</c> of this stage make the request's descriptors.</summary>
    public uint Stage { get; init; }
    public VhRateLimitsOption VhRateLimits { get; init; }
    public bool AlwaysConsumeDefaultTokenBucket { get; init; } = true;
    /// <summary><c>rate_limited_as_resource_exhausted</c>: gRPC requests get RESOURCE_EXHAUSTED instead of UNAVAILABLE.</summary>
    public bool RateLimitedAsResourceExhausted { get; init; }
}

/// <summary>One local rate limit descriptor: its entries (key, value) and its own token bucket.</summary>
internal sealed record LocalRateLimitDescriptorModel(KeyValuePair<string, string>[] Entries, uint MaxTokens, uint TokensPerFill, TimeSpan FillInterval);

/// <summary>Envoy's <c>VhRateLimitsOptions</c>: how the virtual host's rate_limits combine with the route's.</summary>
internal enum VhRateLimitsOption { Override = 0, Include = 1, Ignore = 2 }

/// <summary>Validated <c>extensions.filters.http.ratelimit.v3.RateLimit</c>: the global rate limit service client.</summary>
internal sealed record RateLimitFilterModel
{
    public required string Domain { get; init; }
    public uint Stage { get; init; }
    /// <summary>Which requests are checked: by x-envoy-internal (null: both).</summary>
    public bool? InternalOnly { get; init; }
    /// <summary>Deadline of the ShouldRateLimit call (Envoy's default 20 ms).</summary>
    public TimeSpan Timeout { get; init; } = TimeSpan.FromMilliseconds(20);
    public bool FailureModeDeny { get; init; }
    public bool RateLimitedAsResourceExhausted { get; init; }
    /// <summary>The cluster of <c>rate_limit_service.grpc_service.envoy_grpc</c>.</summary>
    public required string ClusterName { get; init; }
    /// <summary><c>enable_x_ratelimit_headers: DRAFT_VERSION_03</c>.</summary>
    public bool XRateLimitHeaders { get; init; }
    public bool DisableXEnvoyRateLimitedHeader { get; init; }
    public int RateLimitedStatus { get; init; } = 429;
    public int StatusOnError { get; init; } = 500;
    public HeaderMutationModel ResponseHeaders { get; init; } = HeaderMutationModel.Empty;
    /// <summary>Stats live under <c>cluster.&lt;route cluster&gt;.ratelimit.</c> plus this and a dot, when set.</summary>
    public string StatPrefix { get; init; } = "";
}

/// <summary>Validated <c>extensions.filters.http.ratelimit.v3.RateLimitPerRoute</c>.</summary>
internal sealed record RateLimitPerRouteModel(VhRateLimitsOption VhRateLimits, string? Domain);


/// <summary>Validated <c>extensions.filters.http.health_check.v3.HealthCheck</c>: which requests are health checks
/// (all <see cref="Headers"/> match) and whether they are answered locally or passed through.</summary>
internal sealed record HealthCheckFilterModel(bool PassThroughMode, IReadOnlyList<CSharpEnvoy.Config.Model.Matchers.HeaderMatcherModel> Headers);

/// <summary><c>extensions.filters.http.cors.v3.Cors</c>: the filter has no settings of its own; its policies are the
/// routes' (<see cref="CorsPolicyModel"/> in typed_per_filter_config).</summary>
internal sealed record CorsFilterModel
{
    public static readonly CorsFilterModel Instance = new();
}

/// <summary>Validated <c>extensions.filters.http.cors.v3.CorsPolicy</c>. Empty strings, empty origins and null
/// booleans are unset: the filter takes each of them from the most specific level that sets it.</summary>
internal sealed record CorsPolicyModel(
    CSharpEnvoy.Config.Model.Matchers.StringMatcherModel[] AllowOrigins,
    string AllowMethods,
    string AllowHeaders,
    string ExposeHeaders,
    string MaxAge,
    bool? AllowCredentials,
    FractionalPercentModel? FilterEnabled,
    FractionalPercentModel? ShadowEnabled,
    bool? AllowPrivateNetworkAccess,
    bool? ForwardNotMatchingPreflights);

/// <summary>Validated <c>extensions.filters.http.csrf.v3.CsrfPolicy</c>: the filter's config, or a route's override.</summary>
internal sealed record CsrfPolicyModel(
    FractionalPercentModel FilterEnabled,
    FractionalPercentModel? ShadowEnabled,
    CSharpEnvoy.Config.Model.Matchers.StringMatcherModel[] AdditionalOrigins);
