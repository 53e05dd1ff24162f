using CSharpEnvoy.Config.Loading;
using CSharpEnvoy.Config.Model.Xds;
using Envoy.Config.Bootstrap.V3;
using Envoy.Config.Core.V3;

namespace CSharpEnvoy.Config.Translation;

/// <summary>Validates <c>dynamic_resources</c> and the <c>ConfigSource</c>s of RDS and EDS.</summary>
internal static class XdsTranslator
{
    /// <summary>Envoy's default <c>initial_fetch_timeout</c>.</summary>
    public static readonly TimeSpan DefaultInitialFetchTimeout = TimeSpan.FromSeconds(15);

    /// <summary>Checks a config source is <c>ads: {}</c> and returns its initial fetch timeout
    /// (<see cref="Timeout.InfiniteTimeSpan"/> for 0, which means wait forever).</summary>
    public static TimeSpan TranslateConfigSource(ConfigSource? cs, string path, ConfigErrors errors)
    {
        if (cs is null)
        {
            errors.Add(path, "a config source is required");
            return DefaultInitialFetchTimeout;
        }
        switch (cs.ConfigSourceSpecifierCase)
        {
            case ConfigSource.ConfigSourceSpecifierOneofCase.Ads:
                break;
            case ConfigSource.ConfigSourceSpecifierOneofCase.ApiConfigSource:
                errors.Add(ConfigErrors.Join(path, "api_config_source"),
                    "per-type xDS streams (api_config_source) are not supported yet; use ads: {} with dynamic_resources.ads_config");
                break;
            case ConfigSource.ConfigSourceSpecifierOneofCase.Path:
                errors.Add(ConfigErrors.Join(path, "path"), "filesystem xDS (path, path_config_source) is not supported yet; use ads: {} with dynamic_resources.ads_config");
                break;
            case ConfigSource.ConfigSourceSpecifierOneofCase.PathConfigSource:
                errors.Add(ConfigErrors.Join(path, "path_config_source"), "filesystem xDS (path, path_config_source) is not supported yet; use ads: {} with dynamic_resources.ads_config");
                break;
            case ConfigSource.ConfigSourceSpecifierOneofCase.Self:
                errors.Add(ConfigErrors.Join(path, "self"), "self config sources are not supported; use ads: {}");
                break;
            default:
                errors.Add(path, "the config source needs ads: {}");
                break;
        }
        if (cs.ResourceApiVersion != ApiVersion.V3 && cs.ResourceApiVersion != ApiVersion.Auto)
            errors.Add(ConfigErrors.Join(path, "resource_api_version"), "only the V3 xDS API is supported");
        if (cs.InitialFetchTimeout is null) return DefaultInitialFetchTimeout;
        var t = cs.InitialFetchTimeout.ToTimeSpan();
        if (t < TimeSpan.Zero)
        {
            errors.Add(ConfigErrors.Join(path, "initial_fetch_timeout"), "initial_fetch_timeout must not be negative");
            return DefaultInitialFetchTimeout;
        }
        return t == TimeSpan.Zero ? Timeout.InfiniteTimeSpan : t;
    }

    /// <summary><c>dynamic_resources</c> → <see cref="XdsModel"/>; <paramref name="staticClusterExists"/> checks the ADS cluster.</summary>
    public static XdsModel? Translate(Bootstrap.Types.DynamicResources? dr, string path, ConfigErrors errors, Func<string, bool> staticClusterExists)
    {
        if (dr is null) return null;
        var adsPath = ConfigErrors.Join(path, "ads_config");
        if (dr.AdsConfig is null)
        {
            // Each config source says what is wrong with it; an ads: {} one only lacks the stream.
            foreach (var (cs, name) in new[] { (dr.LdsConfig, "lds_config"), (dr.CdsConfig, "cds_config") })
            {
                if (cs is null) continue;
                var csPath = ConfigErrors.Join(path, name);
                TranslateConfigSource(cs, csPath, errors);
                if (cs.ConfigSourceSpecifierCase == ConfigSource.ConfigSourceSpecifierOneofCase.Ads)
                    errors.Add(csPath + ".ads", "ads: {} is not supported without dynamic_resources.ads_config (the aggregated stream it refers to)");
            }
            return null;
        }
        var ads = dr.AdsConfig;
        var apiType = XdsApiType.StateOfTheWorld;
        switch (ads.ApiType)
        {
            case ApiConfigSource.Types.ApiType.Grpc:
            case ApiConfigSource.Types.ApiType.AggregatedGrpc:
                break;
            case ApiConfigSource.Types.ApiType.DeltaGrpc:
            case ApiConfigSource.Types.ApiType.AggregatedDeltaGrpc:
                apiType = XdsApiType.Delta;
                break;
            default:
                errors.Add(adsPath + ".api_type", $"api_type {ProtoEnum.Name(ads.ApiType)} is not supported for ADS (GRPC or DELTA_GRPC are)");
                break;
        }
        if (ads.TransportApiVersion != ApiVersion.V3 && ads.TransportApiVersion != ApiVersion.Auto)
            errors.Add(adsPath + ".transport_api_version", "only the V3 xDS transport is supported");
        string cluster = "";
        if (ads.GrpcServices.Count != 1)
            errors.Add(adsPath + ".grpc_services", $"exactly one grpc_services entry is required (found {ads.GrpcServices.Count})");
        else
        {
            var gs = ads.GrpcServices[0];
            if (gs.TargetSpecifierCase != GrpcService.TargetSpecifierOneofCase.EnvoyGrpc)
                errors.Add(adsPath + ".grpc_services[0]", "envoy_grpc is required (google_grpc is not supported)");
            else
            {
                cluster = gs.EnvoyGrpc.ClusterName;
                if (string.IsNullOrEmpty(cluster))
                    errors.Add(adsPath + ".grpc_services[0].envoy_grpc.cluster_name", "cluster_name is required");
                else if (!staticClusterExists(cluster))
                    errors.Add(adsPath + ".grpc_services[0].envoy_grpc.cluster_name", $"unknown static cluster '{cluster}' (the ADS cluster must be a static_resources cluster)");
            }
        }
        var ldsTimeout = DefaultInitialFetchTimeout;
        var cdsTimeout = DefaultInitialFetchTimeout;
        if (dr.LdsConfig is not null) ldsTimeout = TranslateConfigSource(dr.LdsConfig, ConfigErrors.Join(path, "lds_config"), errors);
        if (dr.CdsConfig is not null) cdsTimeout = TranslateConfigSource(dr.CdsConfig, ConfigErrors.Join(path, "cds_config"), errors);
        return new XdsModel(cluster, apiType, dr.LdsConfig is not null, dr.CdsConfig is not null, ldsTimeout, cdsTimeout);
    }
}
