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
        var secrets = StaticSecrets(sr, errors);
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
        CheckStaticConfigSources(clusters, listeners, xds?.Ads is not null, errors);
        CheckSecretReferences(clusters, listeners, secrets, xds?.Ads is not null, errors);
        if (xds?.Ads is { } ads && clusters.Find(c => c.Name == ads.Cluster) is { Type: DiscoveryType.Eds })
            errors.Add("dynamic_resources.ads_config.grpc_services[0].envoy_grpc.cluster_name", $"the ADS cluster '{ads.Cluster}' cannot be an EDS cluster");

        var sinks = StatsSinkTranslator.Translate(b.StatsSinks, errors);
        var statsConfig = StatsConfigTranslator.Translate(b.StatsConfig, errors);
        var flush = b.StatsFlushInterval?.ToTimeSpan() ?? TimeSpan.FromSeconds(5);
        if (flush < TimeSpan.FromMilliseconds(1) || flush > TimeSpan.FromSeconds(300))
            errors.Add("stats_flush_interval", "stats_flush_interval must be between 1ms and 300s");

        var localCluster = LocalCluster(b.ClusterManager, clusters, errors);

        if (errors.HasErrors) return null;
        return new BootstrapModel
        {
            Node = nodeModel, AdminAddress = admin, Listeners = listeners, Clusters = clusters, Source = b, Xds = xds,
            StatsSinks = sinks, StatsFlushInterval = flush, LocalClusterName = localCluster, StatsConfig = statsConfig,
            StaticSecrets = secrets,
        };
    }

    private static List<Model.Tls.SecretModel> StaticSecrets(Envoy.Config.Bootstrap.V3.Bootstrap.Types.StaticResources? sr, ConfigErrors errors)
    {
        var secrets = new List<Model.Tls.SecretModel>();
        if (sr is null) return secrets;
        var names = new HashSet<string>(StringComparer.Ordinal);
        for (var i = 0; i < sr.Secrets.Count; i++)
        {
            var path = $"static_resources.secrets[{i}]";
            var s = sr.Secrets[i];
            if (s.Name.Length == 0) errors.Add(path + ".name", "a static secret needs a name");
            else if (!names.Add(s.Name)) errors.Add(path + ".name", $"duplicate static secret name '{s.Name}'");
            var before = errors.Errors.Count;
            var model = TlsTranslator.TranslateSecret(s, path, errors);
            if (model is not null && errors.Errors.Count == before) secrets.Add(model);
        }
        return secrets;
    }

    /// <summary>Every secret a static listener or cluster names must be there to fetch: a static secret of the right
    /// kind (Envoy: "Unknown static secret"), or a reachable SDS source.</summary>
    private static void CheckSecretReferences(List<ClusterModel> clusters, List<ListenerModel> listeners, List<Model.Tls.SecretModel> secrets,
        bool hasAds, ConfigErrors errors)
    {
        bool IsSourceCluster(string name) => clusters.Exists(c => c.Name == name && c.Type != DiscoveryType.Eds);
        void Check(Model.Tls.TlsContextModel ctx, string path)
        {
            foreach (var (cfg, certificate) in new[] { (ctx.CertificateSecret, true), (ctx.ValidationSecret, false) })
            {
                if (cfg is null) continue;
                if (cfg.Source is null)
                {
                    var s = secrets.Find(x => x.Name == cfg.Name);
                    if (s is null || (certificate ? s.Certificate is null : s.Validation is null))
                        errors.Add(path, $"unknown static {(certificate ? "certificate" : "certificate validation context")} secret '{cfg.Name}' (static_resources.secrets)");
                    continue;
                }
                if (cfg.Source.Kind == Model.Xds.ConfigSourceKind.Ads && !hasAds)
                    errors.Add(path, $"secret '{cfg.Name}' is fetched from ads: {{}} but dynamic_resources.ads_config is not set");
                XdsTranslator.CheckSourceCluster(cfg.Source, path, errors, IsSourceCluster);
            }
        }
        foreach (var c in clusters)
            if (c.Tls is { } t) Check(t.Common, $"static_resources.clusters[{c.Name}].transport_socket");
        foreach (var l in listeners)
            foreach (var fc in l.AllFilterChains)
                if (fc.Tls is { } t) Check(t.Common, $"static_resources.listeners[{l.Name}].transport_socket");
    }

    /// <summary><c>cluster_manager.local_cluster_name</c>: as in Envoy it must name a static cluster, whose endpoints
    /// (this proxy's own fleet) are all at priority 0.</summary>
    private static string? LocalCluster(Envoy.Config.Bootstrap.V3.ClusterManager? cm, List<ClusterModel> clusters, ConfigErrors errors)
    {
        if (cm is null || cm.LocalClusterName.Length == 0) return null;
        var local = clusters.Find(c => c.Name == cm.LocalClusterName);
        if (local is null)
        {
            errors.Add("cluster_manager.local_cluster_name", $"local cluster '{cm.LocalClusterName}' must be defined in static_resources.clusters");
            return null;
        }
        foreach (var e in local.Endpoints)
            if (e.Priority != 0)
            {
                errors.Add("cluster_manager.local_cluster_name", $"Unexpected non-zero priority for local cluster '{local.Name}'");
                break;
            }
        return local.Name;
    }

    /// <summary>Static EDS clusters and RDS listeners need a source that can deliver: <c>ads: {}</c> needs ads_config, and
    /// a per-type stream needs a static, non-EDS cluster.</summary>
    private static void CheckStaticConfigSources(List<ClusterModel> clusters, List<ListenerModel> listeners, bool hasAds, ConfigErrors errors)
    {
        bool IsSourceCluster(string name) => clusters.Exists(c => c.Name == name && c.Type != DiscoveryType.Eds);
        foreach (var c in clusters)
        {
            if (c.EdsConfig is not { } eds) continue;
            if (eds.Kind == Model.Xds.ConfigSourceKind.Ads && !hasAds)
                errors.Add("static_resources.clusters", $"cluster '{c.Name}' takes EDS from ads: {{}} but dynamic_resources.ads_config is not set");
            XdsTranslator.CheckSourceCluster(eds, "static_resources.clusters", errors, IsSourceCluster);
        }
        foreach (var l in listeners)
            foreach (var fc in l.FilterChains)
            {
                if (fc.HttpConnectionManager?.RdsConfig is not { } rds) continue;
                if (rds.Kind == Model.Xds.ConfigSourceKind.Ads && !hasAds)
                    errors.Add("static_resources.listeners", $"listener '{l.Name}' takes RDS from ads: {{}} but dynamic_resources.ads_config is not set");
                XdsTranslator.CheckSourceCluster(rds, "static_resources.listeners", errors, IsSourceCluster);
            }
    }
}
