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
    /// <summary>For <see cref="ConfigSourceKind.Path"/>: the file (read again when a file is moved onto it).</summary>
    public string? Path { get; init; }
    /// <summary>For <see cref="ConfigSourceKind.Path"/>: a directory whose moves trigger the reload instead (Envoy's
    /// <c>watched_directory</c>, for symlink swaps as Kubernetes ConfigMaps do).</summary>
    public string? WatchedDirectory { get; init; }

    public string Key => Kind switch
    {
        ConfigSourceKind.Ads => "ads",
        ConfigSourceKind.Grpc => (ApiType == XdsApiType.Delta ? "delta_grpc:" : "grpc:") + Cluster,
        _ => "path:" + Path + (WatchedDirectory is null ? "" : "|" + WatchedDirectory),
    };

    public static readonly ConfigSourceModel AdsDefault = new(ConfigSourceKind.Ads, TimeSpan.FromSeconds(15));
}

/// <summary>The bootstrap's <c>ads_config</c>: the aggregated gRPC stream to the static cluster <see cref="Cluster"/>.</summary>
internal sealed record AdsModel(string Cluster, XdsApiType ApiType);

/// <summary>
/// The bootstrap's <c>dynamic_resources</c>: the ADS stream when there is one, and where listeners and clusters come
/// from (null when they are only static).
/// </summary>
internal sealed record XdsModel(AdsModel? Ads, ConfigSourceModel? Lds, ConfigSourceModel? Cds);
