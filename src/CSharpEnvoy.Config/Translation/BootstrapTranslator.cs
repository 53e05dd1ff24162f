using CSharpEnvoy.Config.Loading;
using CSharpEnvoy.Config.Model.Bootstrap;
using CSharpEnvoy.Config.Model.Cluster;
using CSharpEnvoy.Config.Model.Listener;
using CSharpEnvoy.Config.Validation;
using Envoy.Config.Bootstrap.V3;

namespace CSharpEnvoy.Config.Translation;

/// <summary>Command-line values that override or complete the bootstrap's node (Envoy's --service-* flags).</summary>
internal sealed record NodeOverrides(string? ServiceNode = null, string? ServiceCluster = null, string? ServiceZone = null);

/// <summary>
/// Bootstrap text → validated <see cref="BootstrapModel"/>: parse (YAML/JSON), merge <c>--config-yaml</c> over the file
/// as Envoy does (proto merge: scalars replaced, messages merged, lists appended), reject unsupported fields, then
/// validate and translate, collecting every error.
/// </summary>
internal static class BootstrapTranslator
{
    public static Bootstrap? Parse(string? fileText, string? configYaml, ConfigErrors errors, string fileName = "config")
    {
        var loader = new ProtoYamlLoader();
        Bootstrap? bootstrap = null;
        if (fileText is not null) bootstrap = loader.Load<Bootstrap>(fileText, errors, fileName);
        if (configYaml is not null)
        {
            var overlay = loader.Load<Bootstrap>(configYaml, errors, "--config-yaml");
            if (overlay is not null)
            {
                bootstrap ??= new Bootstrap();
                bootstrap.MergeFrom(overlay);
            }
        }
        if (fileText is null && configYaml is null) errors.Add("", "no configuration: give -c/--config-path or --config-yaml");
        return bootstrap;
    }

    public static BootstrapModel? Translate(Bootstrap b, NodeOverrides overrides, ConfigErrors errors)
    {
        SupportChecker.Check(b, "", errors);

        var node = b.Node ?? new Envoy.Config.Core.V3.Node();
        var zone = overrides.ServiceZone ?? node.Locality?.Zone ?? "";
        var nodeModel = new NodeModel(
            overrides.ServiceNode ?? node.Id,
            overrides.ServiceCluster ?? node.Cluster,
            new LocalityModel(node.Locality?.Region ?? "", zone, node.Locality?.SubZone ?? ""));

        SocketAddressModel? admin = null;
        if (b.Admin is { } a && a.Address is not null)
            admin = ClusterTranslator.TranslateAddress(a.Address, "admin.address", errors, requirePort: false);

        var clusters = new List<ClusterModel>();
        var clusterNames = new HashSet<string>(StringComparer.Ordinal);
        var sr = b.StaticResources;
        if (sr is not null)
        {
            for (var i = 0; i < sr.Clusters.Count; i++)
            {
                var path = $"static_resources.clusters[{i}]";
                var c = ClusterTranslator.Translate(sr.Clusters[i], path, errors);
                if (c is null) continue;
                if (!clusterNames.Add(c.Name))
                {
                    errors.Add(path + ".name", $"duplicate cluster name '{c.Name}'");
                    continue;
                }
                clusters.Add(c);
            }
        }

        var listeners = new List<ListenerModel>();
        if (sr is not null)
        {
            var names = new HashSet<string>(StringComparer.Ordinal);
            var addresses = new HashSet<string>(StringComparer.Ordinal);
            for (var i = 0; i < sr.Listeners.Count; i++)
            {
                var path = $"static_resources.listeners[{i}]";
                var l = ListenerTranslator.Translate(sr.Listeners[i], path, errors, clusterNames.Contains);
                if (l is null) continue;
                if (!names.Add(l.Name))
                {
                    errors.Add(path + ".name", $"error adding listener named '{l.Name}': duplicate listener name");
                    continue;
                }
                // Envoy allows any number of listeners on port 0 (each gets its own ephemeral port).
                if ((l.Address.IsPipe || l.Address.Port != 0) && !addresses.Add(l.Address.ToString()))
                {
                    errors.Add(path + ".address", $"error adding listener '{l.Name}': duplicate listener address {l.Address}");
                    continue;
                }
                listeners.Add(l);
            }
        }

        var xds = XdsTranslator.Translate(b.DynamicResources, "dynamic_resources", errors, clusterNames.Contains);
        if (xds is null)
        {
            // Without ADS nothing can deliver RDS routes or EDS endpoints.
            foreach (var c in clusters)
                if (c.Type == DiscoveryType.Eds) errors.Add("static_resources.clusters", $"cluster '{c.Name}' is type EDS but dynamic_resources.ads_config is not set");
            foreach (var l in listeners)
                foreach (var fc in l.FilterChains)
                    if (fc.HttpConnectionManager?.RdsRouteConfigName is not null)
                        errors.Add("static_resources.listeners", $"listener '{l.Name}' uses rds but dynamic_resources.ads_config is not set");
        }
        else if (clusters.Find(c => c.Name == xds.AdsCluster) is { Type: DiscoveryType.Eds })
            errors.Add("dynamic_resources.ads_config.grpc_services[0].envoy_grpc.cluster_name", $"the ADS cluster '{xds.AdsCluster}' cannot be an EDS cluster");

        var sinks = StatsSinkTranslator.Translate(b.StatsSinks, errors);
        var flush = b.StatsFlushInterval?.ToTimeSpan() ?? TimeSpan.FromSeconds(5);
        if (flush < TimeSpan.FromMilliseconds(1) || flush > TimeSpan.FromSeconds(300))
            errors.Add("stats_flush_interval", "stats_flush_interval must be between 1ms and 300s");

        if (errors.HasErrors) return null;
        return new BootstrapModel
        {
            Node = nodeModel, AdminAddress = admin, Listeners = listeners, Clusters = clusters, Source = b, Xds = xds,
            StatsSinks = sinks, StatsFlushInterval = flush,
        };
    }
}
