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

/// <summary>The content codings csenvoy compresses and decompresses with.</summary>
internal enum ContentCoding { Gzip, Brotli, Zstd }

/// <summary>A compressor library (<c>compression.gzip.compressor.v3.Gzip</c> or <c>compression.brotli.compressor.v3.Brotli</c>)
/// by its configured <see cref="Name"/>: the coding, the content-encoding token it writes (<c>gzip</c>, <c>br</c>) and its
/// settings. <see cref="Level"/> is zlib's level (-1 default, 0..9) or brotli's quality (0..11); <see cref="Window"/>
/// brotli's window bits; <see cref="Strategy"/> zlib's strategy (0 default, 1 filtered, 2 Huffman only, 3 RLE, 4 fixed)
/// or zstd's (0 default, 1 fast .. 9 btultra2). zstd may add a checksum and compress with a dictionary.</summary>
internal sealed record CompressorLibraryModel(string Name, ContentCoding Coding, int Level, int Strategy, int Window, int ChunkSize,
    bool Checksum = false, byte[]? Dictionary = null)
{
    public string Token => CodingNames.Token(Coding);

    /// <summary>The library's stat scope under the filter's: <c>gzip.</c>, <c>brotli.</c> or <c>zstd.</c>.</summary>
    public string StatPrefix => CodingNames.StatPrefix(Coding);
}

/// <summary>A coding's content-encoding token and the stat scope of its libraries.</summary>
internal static class CodingNames
{
    public static string Token(ContentCoding c) => c switch { ContentCoding.Gzip => "gzip", ContentCoding.Brotli => "br", _ => "zstd" };

    public static string StatPrefix(ContentCoding c) => c switch { ContentCoding.Gzip => "gzip.", ContentCoding.Brotli => "brotli.", _ => "zstd." };
}

/// <summary>One direction of <c>envoy.filters.http.compressor</c>: whether it compresses, the smallest content-length it
/// compresses (a body without one always qualifies) and the content types it compresses, compared case-insensitively
/// without parameters.</summary>
internal sealed record CompressorDirectionModel(bool Enabled, uint MinContentLength, HashSet<string> ContentTypes)
{
    /// <summary>Envoy's list when <c>content_type</c> is empty.</summary>
    public static readonly string[] DefaultContentTypes =
    [
        "text/html", "text/plain", "text/css", "application/javascript", "application/x-javascript", "text/javascript",
        "text/x-javascript", "text/ecmascript", "text/js", "text/jscript", "text/x-js", "application/ecmascript",
        "application/x-json", "application/xml", "application/json", "image/svg+xml", "text/xml", "application/xhtml+xml",
        "application/grpc-web", "application/grpc-web+proto",
    ];
}

/// <summary>Validated <c>extensions.filters.http.compressor.v3.Compressor</c>. <see cref="Request"/> is null unless
/// <c>request_direction_config</c> is set; <see cref="ResponseStatsScoped"/> is whether the response's common stats are
/// under <c>response.</c> (set by <c>response_direction_config</c>; the deprecated top-level fields keep them at the
/// library's scope).</summary>
internal sealed record CompressorFilterModel(
    CompressorLibraryModel Library,
    CompressorDirectionModel? Request,
    CompressorDirectionModel Response,
    bool DisableOnEtagHeader,
    bool RemoveAcceptEncodingHeader,
    int[] UncompressibleResponseCodes,
    bool ChooseFirst,
    bool ResponseStatsScoped);

/// <summary>Validated <c>extensions.filters.http.compressor.v3.CompressorPerRoute</c>: the filter off on the route, or its
/// response compression forced on with <see cref="RemoveAcceptEncodingHeader"/> overridden when set, and possibly another
/// library.</summary>
internal sealed record CompressorPerRouteModel(bool Disabled, bool ForceResponse, bool? RemoveAcceptEncodingHeader, CompressorLibraryModel? Library);

/// <summary>A decompressor library (<c>compression.gzip.decompressor.v3.Gzip</c> or
/// <c>compression.brotli.decompressor.v3.Brotli</c>): the coding it reads, its output chunk size and the largest ratio of
/// output to input it lets through (a compression bomb guard); zstd may have a dictionary.</summary>
internal sealed record DecompressorLibraryModel(string Name, ContentCoding Coding, int ChunkSize, uint MaxInflateRatio, byte[]? Dictionary = null)
{
    public string Token => CodingNames.Token(Coding);
    public string StatPrefix => CodingNames.StatPrefix(Coding);
}

/// <summary>Validated <c>extensions.filters.http.decompressor.v3.Decompressor</c>.</summary>
internal sealed record DecompressorFilterModel(
    DecompressorLibraryModel Library,
    bool RequestEnabled,
    bool RequestIgnoreNoTransform,
    bool AdvertiseAcceptEncoding,
    bool ResponseEnabled,
    bool ResponseIgnoreNoTransform);

/// <summary>Validated <c>extensions.filters.http.grpc_http1_bridge.v3.Config</c>.</summary>
internal sealed record GrpcHttp1BridgeModel(bool UpgradeProtobufToGrpc, bool IgnoreQueryParameters);

/// <summary>Validated <c>extensions.filters.http.ext_authz.v3.ExtAuthz</c>: a gRPC (<see cref="GrpcCluster"/>) or HTTP
/// (<see cref="Http"/>) authorization service on a cluster, called within <see cref="Timeout"/> for each request.</summary>
internal sealed record ExtAuthzModel(
    string? GrpcCluster,
    ExtAuthzHttpServiceModel? Http,
    TimeSpan Timeout,
    bool FailureModeAllow,
    bool FailureModeAllowHeaderAdd,
    ExtAuthzBufferModel? WithRequestBody,
    int StatusOnError,
    FractionalPercentModel? FilterEnabled,
    bool DenyAtDisable,
    string StatPrefix,
    bool IncludePeerCertificate,
    CSharpEnvoy.Config.Model.Matchers.StringMatcherModel[]? AllowedHeaders,
    CSharpEnvoy.Config.Model.Matchers.StringMatcherModel[]? DisallowedHeaders,
    bool ClearRouteCache,
    bool ChargeClusterResponseStats = true);

/// <summary><c>with_request_body</c>: up to <see cref="MaxRequestBytes"/> of the body go with the check; a longer body
/// is refused (413) unless <see cref="AllowPartialMessage"/>.</summary>
internal sealed record ExtAuthzBufferModel(uint MaxRequestBytes, bool AllowPartialMessage, bool PackAsBytes);

/// <summary><c>http_service</c>: the authorization request goes to <see cref="Cluster"/> with the request's method and
/// <see cref="PathPrefix"/> before its path; the listed headers go with it, and the listed response headers come back.</summary>
internal sealed record ExtAuthzHttpServiceModel(
    string Cluster,
    string Authority,
    string PathPrefix,
    CSharpEnvoy.Config.Model.Matchers.StringMatcherModel[] AllowedHeaders,
    KeyValuePair<string, string>[] HeadersToAdd,
    CSharpEnvoy.Config.Model.Matchers.StringMatcherModel[] AllowedUpstreamHeaders,
    CSharpEnvoy.Config.Model.Matchers.StringMatcherModel[] AllowedUpstreamHeadersToAppend,
    CSharpEnvoy.Config.Model.Matchers.StringMatcherModel[]? AllowedClientHeaders,
    CSharpEnvoy.Config.Model.Matchers.StringMatcherModel[] AllowedClientHeadersOnSuccess);

/// <summary>Validated <c>extensions.filters.http.ext_authz.v3.ExtAuthzPerRoute</c>: off on the route, or its
/// context extensions (merged over less specific levels') and body buffering.</summary>
internal sealed record ExtAuthzPerRouteModel(bool Disabled, IReadOnlyDictionary<string, string> ContextExtensions, bool DisableRequestBodyBuffering,
    ExtAuthzBufferModel? WithRequestBody);

/// <summary><c>extensions.filters.http.grpc_web.v3.GrpcWeb</c>: the filter has no settings.</summary>
internal sealed record GrpcWebModel
{
    public static readonly GrpcWebModel Instance = new();
}
