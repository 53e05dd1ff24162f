namespace CSharpEnvoy.Config.Model.Xds;

/// <summary>The gRPC xDS transport: state of the world (<c>GRPC</c>) or incremental (<c>DELTA_GRPC</c>).</summary>
internal enum XdsApiType { StateOfTheWorld, Delta }

/// <summary>Where a config source's resources come from.</summary>
internal enum ConfigSourceKind
{
    /// <summary><c>ads: {}</c>: the bootstrap's aggregated stream.</summary>
    Ads,
    /// <summary><c>api_config_source</c>: a stream of its own to the per-type discovery service.</summary>
    Grpc,
    /// <summary><c>path_config_source</c> (or the deprecated <c>path</c>): a watched file holding a DiscoveryResponse.</summary>
    Path,
}

/// <summary>
/// One validated <c>ConfigSource</c>. Sources with the same <see cref="Key"/> share a subscription: one ADS stream,
/// one per-type stream per cluster and transport, one watch per file.
/// </summary>
internal sealed record ConfigSourceModel(ConfigSourceKind Kind, TimeSpan InitialFetchTimeout)
{
    /// <summary>For <see cref="ConfigSourceKind.Grpc"/>: the static cluster of the management server.</summary>
    public string? Cluster { get; init; }
    public XdsApiType ApiType { get; init; }
    /// <summary>For <see cref="ConfigSourceKind.Grpc"/>: <c>api_config_source.rate_limit_settings</c> (null: unlimited).</summary>
    public XdsRateLimitModel? RateLimit { get; init; }
    /// <summary>For <see cref="ConfigSourceKind.Path"/>: the file (read again when a file is moved onto it).</summary>
    public string? Path { get; init; }
    /// <summary>For <see cref="ConfigSourceKind.Path"/>: a directory whose moves trigger the reload instead (Envoy's
    /// <c>watched_directory</c>, for symlink swaps as Kubernetes ConfigMaps do).</summary>
    public string? WatchedDirectory { get; init; }

    public string Key => Kind switch
    {
        ConfigSourceKind.Ads => "ads",
        // Sources that differ in their rate limit get streams of their own.
        ConfigSourceKind.Grpc => (ApiType == XdsApiType.Delta ? "delta_grpc:" : "grpc:") + Cluster + (RateLimit is { } rl ? "|" + rl : ""),
        _ => "path:" + Path + (WatchedDirectory is null ? "" : "|" + WatchedDirectory),
    };

    public static readonly ConfigSourceModel AdsDefault = new(ConfigSourceKind.Ads, TimeSpan.FromSeconds(15));
}

/// <summary>The bootstrap's <c>ads_config</c>: the aggregated gRPC stream to the static cluster <see cref="Cluster"/>.</summary>
internal sealed record AdsModel(string Cluster, XdsApiType ApiType, XdsRateLimitModel? RateLimit = null);

/// <summary>
/// An <c>ApiConfigSource</c>'s <c>rate_limit_settings</c>: a token bucket over the discovery requests a stream sends,
/// <see cref="MaxTokens"/> deep (Envoy's default 100) and refilled at <see cref="FillRate"/> tokens per second (default
/// 10). A request that finds it empty waits for the next token (counted in <c>control_plane.rate_limit_enforced</c>).
/// </summary>
internal sealed record XdsRateLimitModel(uint MaxTokens, double FillRate)
{
    public const uint DefaultMaxTokens = 100;
    public const double DefaultFillRate = 10;

    public override string ToString() => string.Create(System.Globalization.CultureInfo.InvariantCulture, $"rate_limit:{MaxTokens}/{FillRate}");
}

/// <summary>
/// The bootstrap's <c>dynamic_resources</c>: the ADS stream when there is one, and where listeners and clusters come
/// from (null when they are only static).
/// </summary>
internal sealed record XdsModel(AdsModel? Ads, ConfigSourceModel? Lds, ConfigSourceModel? Cds);
