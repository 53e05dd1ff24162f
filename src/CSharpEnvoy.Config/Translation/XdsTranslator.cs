using CSharpEnvoy.Config.Loading;
using CSharpEnvoy.Config.Model.Xds;
using Envoy.Config.Bootstrap.V3;
using Envoy.Config.Core.V3;

namespace CSharpEnvoy.Config.Translation;

/// <summary>Validates <c>dynamic_resources</c> and the <c>ConfigSource</c>s of LDS, CDS, RDS and EDS.</summary>
internal static class XdsTranslator
{
    /// <summary>Envoy's default <c>initial_fetch_timeout</c>.</summary>
    public static readonly TimeSpan DefaultInitialFetchTimeout = TimeSpan.FromSeconds(15);

    /// <summary>Translates a config source: <c>ads: {}</c>, a per-type <c>api_config_source</c> stream, or a watched file
    /// (<c>path_config_source</c> or the deprecated <c>path</c>). An initial fetch timeout of 0 becomes
    /// <see cref="Timeout.InfiniteTimeSpan"/> (wait forever). Whether a gRPC source's cluster exists is checked by
    /// <see cref="CheckSourceCluster"/>, which needs the static clusters.</summary>
    public static ConfigSourceModel TranslateConfigSource(ConfigSource? cs, string path, ConfigErrors errors)
    {
        if (cs is null)
        {
            errors.Add(path, "a config source is required");
            return ConfigSourceModel.AdsDefault;
        }
        var timeout = InitialFetchTimeout(cs, path, errors);
        if (cs.ResourceApiVersion != ApiVersion.V3 && cs.ResourceApiVersion != ApiVersion.Auto)
            errors.Add(ConfigErrors.Join(path, "resource_api_version"), "only the V3 xDS API is supported");
        switch (cs.ConfigSourceSpecifierCase)
        {
            case ConfigSource.ConfigSourceSpecifierOneofCase.Ads:
                return new ConfigSourceModel(ConfigSourceKind.Ads, timeout);
            case ConfigSource.ConfigSourceSpecifierOneofCase.ApiConfigSource:
            {
                var (cluster, apiType, rateLimit) = TranslateApiConfigSource(cs.ApiConfigSource, ConfigErrors.Join(path, "api_config_source"), errors, aggregated: false);
                return new ConfigSourceModel(ConfigSourceKind.Grpc, timeout) { Cluster = cluster, ApiType = apiType, RateLimit = rateLimit };
            }
            case ConfigSource.ConfigSourceSpecifierOneofCase.Path:
#pragma warning disable CS0612 // deprecated in the API, still accepted by Envoy (as path_config_source.path)
                if (string.IsNullOrEmpty(cs.Path)) errors.Add(ConfigErrors.Join(path, "path"), "path must not be empty");
                return new ConfigSourceModel(ConfigSourceKind.Path, timeout) { Path = cs.Path };
#pragma warning restore CS0612
            case ConfigSource.ConfigSourceSpecifierOneofCase.PathConfigSource:
            {
                var pcs = cs.PathConfigSource;
                var pPath = ConfigErrors.Join(path, "path_config_source");
                if (string.IsNullOrEmpty(pcs.Path)) errors.Add(pPath + ".path", "path is required");
                string? dir = null;
                if (pcs.WatchedDirectory is not null)
                {
                    dir = pcs.WatchedDirectory.Path;
                    if (string.IsNullOrEmpty(dir)) errors.Add(pPath + ".watched_directory.path", "path is required");
                }
                return new ConfigSourceModel(ConfigSourceKind.Path, timeout) { Path = pcs.Path, WatchedDirectory = dir };
            }
            case ConfigSource.ConfigSourceSpecifierOneofCase.Self:
                errors.Add(ConfigErrors.Join(path, "self"), "self config sources are not supported; use ads: {}, api_config_source or path_config_source");
                break;
            default:
                errors.Add(path, "the config source needs one of ads, api_config_source, path_config_source or path");
                break;
        }
        return new ConfigSourceModel(ConfigSourceKind.Ads, timeout);
    }

    private static TimeSpan InitialFetchTimeout(ConfigSource cs, string path, ConfigErrors errors)
    {
        if (cs.InitialFetchTimeout is null) return DefaultInitialFetchTimeout;
        var t = cs.InitialFetchTimeout.ToTimeSpan();
        if (t < TimeSpan.Zero)
        {
            errors.Add(ConfigErrors.Join(path, "initial_fetch_timeout"), "initial_fetch_timeout must not be negative");
            return DefaultInitialFetchTimeout;
        }
        return t == TimeSpan.Zero ? Timeout.InfiniteTimeSpan : t;
    }

    /// <summary>An <c>ApiConfigSource</c> as csenvoy speaks it: GRPC or DELTA_GRPC (the AGGREGATED_ spellings on
    /// <c>ads_config</c> only), transport V3, one <c>envoy_grpc</c> service.</summary>
    private static (string Cluster, XdsApiType ApiType, XdsRateLimitModel? RateLimit) TranslateApiConfigSource(ApiConfigSource api, string path,
        ConfigErrors errors, bool aggregated)
    {
        var apiType = XdsApiType.StateOfTheWorld;
        switch (api.ApiType)
        {
            case ApiConfigSource.Types.ApiType.Grpc:
                break;
            case ApiConfigSource.Types.ApiType.DeltaGrpc:
                apiType = XdsApiType.Delta;
                break;
            case ApiConfigSource.Types.ApiType.AggregatedGrpc when aggregated:
                break;
            case ApiConfigSource.Types.ApiType.AggregatedDeltaGrpc when aggregated:
                apiType = XdsApiType.Delta;
                break;
            default:
                errors.Add(path + ".api_type", $"api_type {ProtoEnum.Name(api.ApiType)} is not supported {(aggregated ? "for ADS" : "for a per-type xDS stream")} (GRPC or DELTA_GRPC are)");
                break;
        }
        if (api.TransportApiVersion != ApiVersion.V3 && api.TransportApiVersion != ApiVersion.Auto)
            errors.Add(path + ".transport_api_version", "only the V3 xDS transport is supported");
        string cluster = "";
        if (api.GrpcServices.Count != 1)
            errors.Add(path + ".grpc_services", $"exactly one grpc_services entry is required (found {api.GrpcServices.Count})");
        else
        {
            var gs = api.GrpcServices[0];
            if (gs.TargetSpecifierCase != GrpcService.TargetSpecifierOneofCase.EnvoyGrpc)
                errors.Add(path + ".grpc_services[0]", "envoy_grpc is required (google_grpc is not supported)");
            else
            {
                cluster = gs.EnvoyGrpc.ClusterName;
                if (string.IsNullOrEmpty(cluster)) errors.Add(path + ".grpc_services[0].envoy_grpc.cluster_name", "cluster_name is required");
            }
        }
        return (cluster, apiType, TranslateRateLimit(api.RateLimitSettings, path + ".rate_limit_settings", errors));
    }

    /// <summary><c>rate_limit_settings</c> with Envoy's defaults (100 tokens, 10 per second); fill_rate must be
    /// positive, as Envoy's validation requires.</summary>
    private static XdsRateLimitModel? TranslateRateLimit(RateLimitSettings? settings, string path, ConfigErrors errors)
    {
        if (settings is null) return null;
        var fillRate = settings.FillRate ?? XdsRateLimitModel.DefaultFillRate;
        if (!(fillRate > 0) || double.IsInfinity(fillRate))
        {
            errors.Add(path + ".fill_rate", $"fill_rate must be a positive number (found {fillRate.ToString(System.Globalization.CultureInfo.InvariantCulture)})");
            fillRate = XdsRateLimitModel.DefaultFillRate;
        }
        var maxTokens = settings.MaxTokens ?? XdsRateLimitModel.DefaultMaxTokens;
        if (maxTokens == 0)
        {
            errors.Add(path + ".max_tokens", "max_tokens must be at least 1 (with 0 the stream could never send a request)");
            maxTokens = XdsRateLimitModel.DefaultMaxTokens;
        }
        return new XdsRateLimitModel(maxTokens, fillRate);
    }

    /// <summary>A gRPC config source must name a static, non-EDS cluster (Envoy's primary clusters): the stream that
    /// would deliver the cluster's own endpoints cannot depend on them.</summary>
    public static void CheckSourceCluster(ConfigSourceModel? source, string path, ConfigErrors errors, Func<string, bool> staticClusterExists)
    {
        if (source is not { Kind: ConfigSourceKind.Grpc, Cluster: { Length: > 0 } cluster }) return;
        if (!staticClusterExists(cluster))
            errors.Add(path, $"unknown static cluster '{cluster}' (an xDS management server cluster must be a static, non-EDS static_resources cluster)");
    }

    /// <summary><c>dynamic_resources</c> → <see cref="XdsModel"/>; <paramref name="staticClusterExists"/> checks the
    /// management servers' clusters.</summary>
    public static XdsModel? Translate(Bootstrap.Types.DynamicResources? dr, string path, ConfigErrors errors, Func<string, bool> staticClusterExists)
    {
        if (dr is null) return null;
        AdsModel? ads = null;
        if (dr.AdsConfig is not null)
        {
            var adsPath = ConfigErrors.Join(path, "ads_config");
            var (cluster, apiType, rateLimit) = TranslateApiConfigSource(dr.AdsConfig, adsPath, errors, aggregated: true);
            if (cluster.Length > 0 && !staticClusterExists(cluster))
                errors.Add(adsPath + ".grpc_services[0].envoy_grpc.cluster_name", $"unknown static cluster '{cluster}' (the ADS cluster must be a static_resources cluster)");
            ads = new AdsModel(cluster, apiType, rateLimit);
        }
        ConfigSourceModel? Source(ConfigSource? cs, string name)
        {
            if (cs is null) return null;
            var csPath = ConfigErrors.Join(path, name);
            var m = TranslateConfigSource(cs, csPath, errors);
            if (m.Kind == ConfigSourceKind.Ads && ads is null && cs.ConfigSourceSpecifierCase == ConfigSource.ConfigSourceSpecifierOneofCase.Ads)
                errors.Add(csPath + ".ads", "ads: {} is not supported without dynamic_resources.ads_config (the aggregated stream it refers to)");
            CheckSourceCluster(m, csPath + ".api_config_source.grpc_services[0].envoy_grpc.cluster_name", errors, staticClusterExists);
            return m;
        }
        return new XdsModel(ads, Source(dr.LdsConfig, "lds_config"), Source(dr.CdsConfig, "cds_config"));
    }
}
