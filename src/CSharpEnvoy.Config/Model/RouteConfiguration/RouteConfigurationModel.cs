using CSharpEnvoy.Config.Model.Matchers;
using CSharpEnvoy.Config.Model.Route;

namespace CSharpEnvoy.Config.Model.RouteConfiguration;

/// <summary>Envoy's <c>HeaderValueOption.HeaderAppendAction</c>.</summary>
internal enum HeaderAppendAction { AppendIfExistsOrAdd = 0, AddIfAbsent = 1, OverwriteIfExistsOrAdd = 2, OverwriteIfExists = 3 }

/// <summary>One header to add, with its (possibly formatted) value.</summary>
internal sealed record HeaderToAdd(string Name, HeaderValueFormat Value, HeaderAppendAction Action, bool KeepEmptyValue);

/// <summary>The headers_to_add / headers_to_remove pair of one level (route configuration, virtual host, route,
/// weighted cluster). Applied in Envoy's order: remove first, then add.</summary>
internal sealed record HeaderMutationModel(IReadOnlyList<HeaderToAdd> Add, IReadOnlyList<string> Remove)
{
    public static readonly HeaderMutationModel Empty = new(Array.Empty<HeaderToAdd>(), Array.Empty<string>());
    public bool IsEmpty => Add.Count == 0 && Remove.Count == 0;
}

internal sealed record RouteConfigurationModel
{
    public required string Name { get; init; }
    public required VirtualHostTable<VirtualHostModel> VirtualHosts { get; init; }
    public HeaderMutationModel RequestHeaders { get; init; } = HeaderMutationModel.Empty;
    public HeaderMutationModel ResponseHeaders { get; init; } = HeaderMutationModel.Empty;
    public bool MostSpecificHeaderMutationsWins { get; init; }
    public IReadOnlyList<VirtualHostModel> VirtualHostList { get; init; } = Array.Empty<VirtualHostModel>();
    /// <summary><c>typed_per_filter_config</c> by filter name; null when empty.</summary>
    public IReadOnlyDictionary<string, PerFilterConfigModel>? TypedPerFilterConfig { get; init; }
}

internal enum TlsRequirement { None = 0, ExternalOnly = 1, All = 2 }

/// <summary>A virtual cluster: requests of the virtual host matching all <see cref="Headers"/> get their own
/// <c>vhost.&lt;vhost&gt;.vcluster.&lt;name&gt;.*</c> stats. Compared by reference (the data plane keys its stats on it).</summary>
internal sealed class VirtualClusterModel(string name, IReadOnlyList<CSharpEnvoy.Config.Model.Matchers.HeaderMatcherModel> headers)
{
    public string Name { get; } = name;
    public IReadOnlyList<CSharpEnvoy.Config.Model.Matchers.HeaderMatcherModel> Headers { get; } = headers;

    /// <summary>Envoy's catch-all virtual cluster for requests no configured one matches.</summary>
    public static VirtualClusterModel Other() => new("other", []);
}

internal sealed record VirtualHostModel
{
    public required string Name { get; init; }
    /// <summary>The configured virtual clusters, with Envoy's <c>other</c> last; empty when none are configured.</summary>
    public IReadOnlyList<VirtualClusterModel> VirtualClusters { get; init; } = [];
    public required IReadOnlyList<string> Domains { get; init; }
    public required RouteTable<RouteModel> Routes { get; init; }
    public HeaderMutationModel RequestHeaders { get; init; } = HeaderMutationModel.Empty;
    public HeaderMutationModel ResponseHeaders { get; init; } = HeaderMutationModel.Empty;
    public TlsRequirement RequireTls { get; init; }
    /// <summary>Used by routes without their own retry_policy.</summary>
    public RetryPolicyModel? RetryPolicy { get; init; }
    /// <summary><c>hedge_policy.hedge_on_per_try_timeout</c>; null when the virtual host has no hedge_policy.</summary>
    public bool? HedgeOnPerTryTimeout { get; init; }
    public bool IncludeRequestAttemptCount { get; init; }
    public bool IncludeAttemptCountInResponse { get; init; }
    public uint? PerRequestBufferLimitBytes { get; init; }
    /// <summary><c>typed_per_filter_config</c> by filter name; null when empty.</summary>
    public IReadOnlyDictionary<string, PerFilterConfigModel>? TypedPerFilterConfig { get; init; }
    /// <summary>The virtual host's <c>rate_limits</c>, in order.</summary>
    public RateLimitPolicyModel[] RateLimits { get; init; } = Array.Empty<RateLimitPolicyModel>();
    /// <summary>The deprecated <c>cors</c> field: the CORS filter's policy where no level has one in
    /// typed_per_filter_config.</summary>
    public HttpFilters.CorsPolicyModel? Cors { get; init; }
}

internal sealed record RouteModel
{
    public required string Name { get; init; }
    public required RouteMatchModel Match { get; init; }
    /// <summary>The matched prefix for <c>prefix</c> and <c>path_separated_prefix</c> routes (and the whole path for
    /// <c>path</c>), which <c>prefix_rewrite</c> replaces; null for regex routes.</summary>
    public string? MatchPrefix { get; init; }
    /// <summary>Exactly one of the three actions is set.</summary>
    public RouteActionModel? Route { get; init; }
    public RedirectActionModel? Redirect { get; init; }
    public DirectResponseModel? DirectResponse { get; init; }
    public HeaderMutationModel RequestHeaders { get; init; } = HeaderMutationModel.Empty;
    public HeaderMutationModel ResponseHeaders { get; init; } = HeaderMutationModel.Empty;
    /// <summary>Bounds the request body buffered for retries and mirrors; the virtual host's, then 1 MiB, when unset.</summary>
    public uint? PerRequestBufferLimitBytes { get; init; }
    /// <summary><c>typed_per_filter_config</c> by filter name; null when empty.</summary>
    public IReadOnlyDictionary<string, PerFilterConfigModel>? TypedPerFilterConfig { get; init; }
    /// <summary>The route's <c>decorator.operation</c>: the span's name when tracing; null without a decorator.</summary>
    public string? DecoratorOperation { get; init; }
    /// <summary><c>decorator.propagate</c> (default true): whether x-envoy-decorator-operation is passed on.</summary>
    public bool DecoratorPropagate { get; init; } = true;
}

/// <summary>A weighted cluster entry; <see cref="CumulativeWeight"/> is the running sum used to pick by a random number.</summary>
internal sealed record WeightedClusterEntry(string Name, uint Weight, ulong CumulativeWeight, HeaderMutationModel RequestHeaders, HeaderMutationModel ResponseHeaders);

internal enum HostRewriteKind { None, Literal, Auto, Header }

internal sealed record RouteActionModel
{
    /// <summary>The deprecated <c>cors</c> field (see <see cref="VirtualHostModel.Cors"/>).</summary>
    public HttpFilters.CorsPolicyModel? Cors { get; init; }
    /// <summary>Set for <c>cluster</c>.</summary>
    public string? Cluster { get; init; }
    /// <summary>Set for <c>weighted_clusters</c>; <see cref="TotalWeight"/> is their sum (or the configured total).</summary>
    public IReadOnlyList<WeightedClusterEntry>? WeightedClusters { get; init; }
    public ulong TotalWeight { get; init; }
    /// <summary>Set for <c>cluster_header</c> (lower case).</summary>
    public string? ClusterHeader { get; init; }
    public int ClusterNotFoundResponseCode { get; init; } = 503;
    public string? PrefixRewrite { get; init; }
    public RegexMatcherModel? RegexRewritePattern { get; init; }
    public string? RegexRewriteSubstitution { get; init; }
    public HostRewriteKind HostRewrite { get; init; }
    /// <summary>The literal host, or the header name for <see cref="HostRewriteKind.Header"/>.</summary>
    public string? HostRewriteValue { get; init; }
    /// <summary>Route timeout; <see cref="TimeSpan.Zero"/> disables it. Envoy's default is 15 s.</summary>
    public TimeSpan Timeout { get; init; } = TimeSpan.FromSeconds(15);
    /// <summary>Route <c>idle_timeout</c>: no byte either way for this long ends the stream; zero disables it; null
    /// leaves the connection manager's stream idle timeout (5 minutes).</summary>
    public TimeSpan? IdleTimeout { get; init; }
    /// <summary>Per-route upgrade overrides (lower-case type → enabled).</summary>
    public IReadOnlyDictionary<string, bool> UpgradeTypes { get; init; } = new Dictionary<string, bool>();
    /// <summary><c>hash_policy</c>, in order; an array so the request path iterates it without allocating.</summary>
    public HashPolicyModel[] HashPolicies { get; init; } = Array.Empty<HashPolicyModel>();
    /// <summary>The route's retry_policy; null falls back to the virtual host's.</summary>
    public RetryPolicyModel? RetryPolicy { get; init; }
    /// <summary><c>hedge_policy.hedge_on_per_try_timeout</c>; null (no hedge_policy) falls back to the virtual host's.</summary>
    public bool? HedgeOnPerTryTimeout { get; init; }
    public RequestMirrorPolicyModel[] MirrorPolicies { get; init; } = Array.Empty<RequestMirrorPolicyModel>();
    /// <summary>Route <c>priority: HIGH</c>: the cluster's HIGH circuit breaker thresholds apply.</summary>
    public bool HighPriority { get; init; }
    /// <summary>The route's <c>rate_limits</c>, in order.</summary>
    public RateLimitPolicyModel[] RateLimits { get; init; } = Array.Empty<RateLimitPolicyModel>();
    /// <summary><c>include_vh_rate_limits</c>: the virtual host's rate limits apply too.</summary>
    public bool IncludeVirtualHostRateLimits { get; init; }
    /// <summary><c>max_stream_duration</c>; null when unset.</summary>
    public MaxStreamDurationModel? MaxStreamDuration { get; init; }
}

/// <summary>Route <c>max_stream_duration</c>: a bound on the whole stream, and for gRPC requests the
/// <c>grpc-timeout</c> header capped by <see cref="GrpcTimeoutHeaderMax"/> (zero: uncapped) less the offset.</summary>
internal sealed record MaxStreamDurationModel(TimeSpan? MaxStreamDuration, TimeSpan? GrpcTimeoutHeaderMax, TimeSpan? GrpcTimeoutHeaderOffset);

internal sealed record RedirectActionModel
{
    public string? Scheme { get; init; }
    public string? Host { get; init; }
    public int? Port { get; init; }
    public string? Path { get; init; }
    public string? PrefixRewrite { get; init; }
    public RegexMatcherModel? RegexRewritePattern { get; init; }
    public string? RegexRewriteSubstitution { get; init; }
    /// <summary>301 (MOVED_PERMANENTLY), 302, 303, 307 or 308.</summary>
    public int ResponseCode { get; init; } = 301;
    public bool StripQuery { get; init; }
}

internal sealed record DirectResponseModel(int Status, byte[]? Body);
