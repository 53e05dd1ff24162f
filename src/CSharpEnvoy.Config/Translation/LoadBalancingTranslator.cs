using CSharpEnvoy.Config.Loading;
using CSharpEnvoy.Config.Model.Cluster;
using CSharpEnvoy.Config.Validation;
using Envoy.Config.Cluster.V3;
using Google.Protobuf.WellKnownTypes;
using LeastRequestExt = Envoy.Extensions.LoadBalancingPolicies.LeastRequest.V3.LeastRequest;
using LocalityLbConfig = Envoy.Extensions.LoadBalancingPolicies.Common.V3.LocalityLbConfig;
using RandomExt = Envoy.Extensions.LoadBalancingPolicies.Random.V3.Random;
using RoundRobinExt = Envoy.Extensions.LoadBalancingPolicies.RoundRobin.V3.RoundRobin;
using MaglevExt = Envoy.Extensions.LoadBalancingPolicies.Maglev.V3.Maglev;
using ProtoCluster = Envoy.Config.Cluster.V3.Cluster;
using RingHashExt = Envoy.Extensions.LoadBalancingPolicies.RingHash.V3.RingHash;
using WrrLocalityExt = Envoy.Extensions.LoadBalancingPolicies.WrrLocality.V3.WrrLocality;

namespace CSharpEnvoy.Config.Translation;

/// <summary>
/// A cluster's load balancer: <c>lb_policy</c> with its <c>*_lb_config</c>, or the typed
/// <c>load_balancing_policy</c> (first supported entry wins, as in Envoy). Validation follows Envoy's proto rules.
/// </summary>
internal static class LoadBalancingTranslator
{
    private const string Supported = "ROUND_ROBIN, LEAST_REQUEST, RANDOM, RING_HASH and MAGLEV are";

    public static LoadBalancerConfigModel Translate(ProtoCluster c, string path, ConfigErrors errors)
    {
        var model = TranslatePolicy(c, path, errors);
        var common = c.CommonLbConfig;
        var commonPath = ConfigErrors.Join(path, "common_lb_config");
        if (common?.HealthyPanicThreshold is { } panic)
        {
            if (panic.Value is < 0 or > 100 || double.IsNaN(panic.Value))
                errors.Add(commonPath + ".healthy_panic_threshold.value", $"healthy_panic_threshold must be between 0 and 100 (found {panic.Value})");
            // Envoy rounds the percentage to an integer.
            else model = model with { HealthyPanicThreshold = (uint)Math.Round(panic.Value) };
        }
        if (common is null || common.LocalityConfigSpecifierCase == ProtoCluster.Types.CommonLbConfig.LocalityConfigSpecifierOneofCase.None) return model;
        if (c.LoadBalancingPolicy is not null)
        {
            // Envoy reads locality settings from the typed policy then; the legacy ones have no effect.
            errors.Warn(commonPath, "common_lb_config's zone_aware_lb_config / locality_weighted_lb_config have no effect with load_balancing_policy (set locality_lb_config on the policy)");
            return model;
        }
        if (common.LocalityWeightedLbConfig is not null)
            return WithLocalityWeighted(model, commonPath + ".locality_weighted_lb_config", errors);
        var z = common.ZoneAwareLbConfig;
        return WithZoneAware(model, z.RoutingEnabled?.Value, z.MinClusterSize, z.FailTrafficOnPanic, false, null, commonPath + ".zone_aware_lb_config", errors);
    }

    private static LoadBalancerConfigModel WithLocalityWeighted(LoadBalancerConfigModel model, string path, ConfigErrors errors)
    {
        if (model.Policy is LbPolicy.RingHash or LbPolicy.Maglev)
            errors.Add(path, "locality-weighted balancing with ring hash or maglev is not supported yet (round robin, least request and random are)");
        return model with { LocalityMode = LocalityLbMode.LocalityWeighted };
    }

    private static LoadBalancerConfigModel WithZoneAware(LoadBalancerConfigModel model, double? routingEnabled, ulong? minClusterSize, bool failOnPanic,
        bool basisIsWeight, uint? forceLocalZoneMinSize, string path, ConfigErrors errors)
    {
        if (model.Policy is LbPolicy.RingHash or LbPolicy.Maglev)
            errors.Warn(path, "zone-aware routing does not apply to ring hash or maglev (as in Envoy); the setting has no effect");
        uint routing = 100;
        if (routingEnabled is { } r)
        {
            if (r is < 0 or > 100 || double.IsNaN(r)) errors.Add(path + ".routing_enabled.value", $"routing_enabled must be between 0 and 100 (found {r})");
            else routing = (uint)Math.Round(r);
        }
        return model with
        {
            LocalityMode = LocalityLbMode.ZoneAware,
            ZoneAware = new ZoneAwareModel
            {
                RoutingEnabledPercent = routing,
                MinClusterSize = minClusterSize ?? 6,
                FailTrafficOnPanic = failOnPanic,
                BasisIsWeight = basisIsWeight,
                ForceLocalZoneMinSize = forceLocalZoneMinSize,
            },
        };
    }

    /// <summary>A typed policy's <c>locality_lb_config</c> (round_robin, least_request, random).</summary>
    private static LoadBalancerConfigModel WithLocalityConfig(LoadBalancerConfigModel model, LocalityLbConfig? config, string path, ConfigErrors errors)
    {
        if (config is null) return model;
        if (config.LocalityWeightedLbConfig is not null) return WithLocalityWeighted(model, path + ".locality_weighted_lb_config", errors);
        if (config.ZoneAwareLbConfig is not { } z) return model;
        var zPath = path + ".zone_aware_lb_config";
        if (z.ForceLocalityDirectRouting)
            errors.Add(zPath + ".force_locality_direct_routing", "force_locality_direct_routing is deprecated and not supported; use force_local_zone");
        uint? force = z.ForceLocalZone is null ? null : z.ForceLocalZone.MinSize ?? 1;
        if (z.LocalityBasis == LocalityLbConfig.Types.ZoneAwareLbConfig.Types.LocalityBasis.HealthyHostsWeight || z.LocalityBasis == default)
            return WithZoneAware(model, z.RoutingEnabled?.Value, z.MinClusterSize, z.FailTrafficOnPanic,
                z.LocalityBasis == LocalityLbConfig.Types.ZoneAwareLbConfig.Types.LocalityBasis.HealthyHostsWeight, force, zPath, errors);
        errors.Add(zPath + ".locality_basis", $"locality_basis {ProtoEnum.Name(z.LocalityBasis)} is not supported (HEALTHY_HOSTS_NUM and HEALTHY_HOSTS_WEIGHT are)");
        return model;
    }

    private static LoadBalancerConfigModel TranslatePolicy(ProtoCluster c, string path, ConfigErrors errors)
    {
        if (c.LoadBalancingPolicy is { } policy)
        {
            // Envoy uses load_balancing_policy when set and ignores lb_policy and the legacy *_lb_config.
            if (c.LbPolicy is not (ProtoCluster.Types.LbPolicy.RoundRobin or ProtoCluster.Types.LbPolicy.LoadBalancingPolicyConfig))
                errors.Warn(ConfigErrors.Join(path, "lb_policy"), $"lb_policy {ProtoEnum.Name(c.LbPolicy)} is ignored because load_balancing_policy is set (as in Envoy)");
            if (c.LbConfigCase != ProtoCluster.LbConfigOneofCase.None)
                errors.Warn(path, "the legacy *_lb_config is ignored because load_balancing_policy is set (as in Envoy)");
            return FromPolicy(policy, ConfigErrors.Join(path, "load_balancing_policy"), errors, allowWrr: true) ?? LoadBalancerConfigModel.Default;
        }

        var model = c.LbPolicy switch
        {
            ProtoCluster.Types.LbPolicy.RoundRobin => LoadBalancerConfigModel.Default,
            ProtoCluster.Types.LbPolicy.Random => new LoadBalancerConfigModel { Policy = LbPolicy.Random },
            ProtoCluster.Types.LbPolicy.LeastRequest => LeastRequest(c.LeastRequestLbConfig?.ChoiceCount, c.LeastRequestLbConfig?.ActiveRequestBias,
                LeastRequestSelection.NChoices, ConfigErrors.Join(path, "least_request_lb_config"), errors),
            ProtoCluster.Types.LbPolicy.RingHash => RingHash(c.RingHashLbConfig?.MinimumRingSize, c.RingHashLbConfig?.MaximumRingSize,
                c.RingHashLbConfig?.HashFunction == ProtoCluster.Types.RingHashLbConfig.Types.HashFunction.MurmurHash2, false,
                ConfigErrors.Join(path, "ring_hash_lb_config"), errors),
            ProtoCluster.Types.LbPolicy.Maglev => Maglev(c.MaglevLbConfig?.TableSize, false, ConfigErrors.Join(path, "maglev_lb_config"), errors),
            ProtoCluster.Types.LbPolicy.LoadBalancingPolicyConfig => Error(ConfigErrors.Join(path, "lb_policy"),
                "lb_policy LOAD_BALANCING_POLICY_CONFIG needs load_balancing_policy", errors),
            _ => Error(ConfigErrors.Join(path, "lb_policy"), $"lb_policy {ProtoEnum.Name(c.LbPolicy)} is not supported yet ({Supported})", errors),
        };

        // A *_lb_config for another policy has no effect in Envoy either; say so instead of ignoring it silently.
        var configFor = c.LbConfigCase switch
        {
            ProtoCluster.LbConfigOneofCase.RingHashLbConfig => (LbPolicy?)LbPolicy.RingHash,
            ProtoCluster.LbConfigOneofCase.MaglevLbConfig => LbPolicy.Maglev,
            ProtoCluster.LbConfigOneofCase.LeastRequestLbConfig => LbPolicy.LeastRequest,
            ProtoCluster.LbConfigOneofCase.RoundRobinLbConfig => LbPolicy.RoundRobin,
            _ => null,
        };
        if (configFor is { } p && p != model.Policy)
            errors.Warn(path, $"{Snake(c.LbConfigCase)} has no effect with lb_policy {ProtoEnum.Name(c.LbPolicy)}");
        return model;
    }

    private static string Snake(ProtoCluster.LbConfigOneofCase c) => c switch
    {
        ProtoCluster.LbConfigOneofCase.RingHashLbConfig => "ring_hash_lb_config",
        ProtoCluster.LbConfigOneofCase.MaglevLbConfig => "maglev_lb_config",
        ProtoCluster.LbConfigOneofCase.LeastRequestLbConfig => "least_request_lb_config",
        ProtoCluster.LbConfigOneofCase.RoundRobinLbConfig => "round_robin_lb_config",
        _ => c.ToString(),
    };

    /// <summary>The first policy csenvoy implements; the ones before it are skipped with a warning (Envoy would have
    /// used the first one it knows), and none at all is an error, as in Envoy.</summary>
    private static LoadBalancerConfigModel? FromPolicy(LoadBalancingPolicy policy, string path, ConfigErrors errors, bool allowWrr)
    {
        var skipped = new List<string>();
        for (var i = 0; i < policy.Policies.Count; i++)
        {
            var p = policy.Policies[i];
            var pPath = $"{path}.policies[{i}].typed_extension_config";
            var tec = p.TypedExtensionConfig;
            if (tec?.TypedConfig is not { } any || any.TypeUrl.Length == 0)
            {
                errors.Add(pPath, "a policy needs typed_extension_config with a typed_config");
                return null;
            }
            var ext = ExtensionRegistry.FindByType(ExtensionCategory.LoadBalancingPolicy, any.TypeUrl);
            if (ext is null || (!allowWrr && ext.Name == ExtensionRegistry.WrrLocalityPolicy))
            {
                skipped.Add($"'{tec.Name}' ({any.TypeUrl})");
                continue;
            }
            if (skipped.Count > 0)
                errors.Warn(path, $"load balancing policies not supported by csenvoy were skipped: {string.Join(", ", skipped)}; using '{ext.Name}'");
            var cfgPath = pPath + ".typed_config";
            var model = ext.Name switch
            {
                ExtensionRegistry.RoundRobinPolicy => WithLocalityConfig(LoadBalancerConfigModel.Default, any.Unpack<RoundRobinExt>().LocalityLbConfig, cfgPath + ".locality_lb_config", errors),
                ExtensionRegistry.RandomPolicy => WithLocalityConfig(new LoadBalancerConfigModel { Policy = LbPolicy.Random }, any.Unpack<RandomExt>().LocalityLbConfig, cfgPath + ".locality_lb_config", errors),
                ExtensionRegistry.LeastRequestPolicy => LeastRequestFrom(any.Unpack<LeastRequestExt>(), cfgPath, errors),
                ExtensionRegistry.RingHashPolicy => RingHashFrom(any.Unpack<RingHashExt>(), cfgPath, errors),
                ExtensionRegistry.MaglevPolicy => Maglev(any.Unpack<MaglevExt>().TableSize,
                    any.Unpack<MaglevExt>().ConsistentHashingLbConfig?.UseHostnameForHashing ?? false, cfgPath, errors),
                _ => WrrLocality(any.Unpack<WrrLocalityExt>(), cfgPath, errors),
            };
            return model with { ExtensionName = ext.Name };
        }
        errors.Add(path, $"none of the load balancing policies is supported by csenvoy: {string.Join(", ", skipped)} (supported: {SupportedNames()})");
        return null;
    }

    private static string SupportedNames()
    {
        var names = new List<string>();
        foreach (var e in ExtensionRegistry.All) if (e.Category == ExtensionCategory.LoadBalancingPolicy) names.Add(e.Name);
        return string.Join(", ", names);
    }

    /// <summary>wrr_locality: localities are balanced by their weights (locality-weighted balancing) and the child
    /// policy picks the endpoint within the chosen locality.</summary>
    private static LoadBalancerConfigModel WrrLocality(WrrLocalityExt w, string path, ConfigErrors errors)
    {
        if (w.EndpointPickingPolicy is null)
        {
            errors.Add(path + ".endpoint_picking_policy", "wrr_locality needs an endpoint_picking_policy");
            return LoadBalancerConfigModel.Default;
        }
        var child = FromPolicy(w.EndpointPickingPolicy, path + ".endpoint_picking_policy", errors, allowWrr: false) ?? LoadBalancerConfigModel.Default;
        if (child.Policy is not (LbPolicy.RoundRobin or LbPolicy.LeastRequest or LbPolicy.Random))
            errors.Add(path + ".endpoint_picking_policy", $"wrr_locality's endpoint_picking_policy must be round_robin, least_request or random (found '{child.ExtensionName}')");
        return child with { LocalityMode = LocalityLbMode.LocalityWeighted };
    }

    private static LoadBalancerConfigModel LeastRequestFrom(LeastRequestExt lr, string path, ConfigErrors errors)
    {
        var selection = lr.SelectionMethod == LeastRequestExt.Types.SelectionMethod.FullScan ? LeastRequestSelection.FullScan : LeastRequestSelection.NChoices;
        return WithLocalityConfig(LeastRequest(lr.ChoiceCount, lr.ActiveRequestBias, selection, path, errors),
            lr.LocalityLbConfig, path + ".locality_lb_config", errors);
    }

    private static LoadBalancerConfigModel RingHashFrom(RingHashExt rh, string path, ConfigErrors errors)
    {
        var useHostname = rh.ConsistentHashingLbConfig?.UseHostnameForHashing ?? rh.UseHostnameForHashing;
        return RingHash(rh.MinimumRingSize, rh.MaximumRingSize, rh.HashFunction == RingHashExt.Types.HashFunction.MurmurHash2, useHostname, path, errors);
    }

    private static LoadBalancerConfigModel LeastRequest(uint? choiceCount, Envoy.Config.Core.V3.RuntimeDouble? bias, LeastRequestSelection selection, string path, ConfigErrors errors)
    {
        var count = choiceCount ?? 2;
        if (count < 2) errors.Add(path + ".choice_count", $"choice_count must be at least 2 (found {count})");
        var b = bias?.DefaultValue ?? 1.0;
        if (b < 0 || double.IsNaN(b) || double.IsInfinity(b))
            errors.Add(path + ".active_request_bias", $"active_request_bias must be a finite value >= 0 (found {b})");
        return new LoadBalancerConfigModel { Policy = LbPolicy.LeastRequest, ChoiceCount = count, ActiveRequestBias = b, Selection = selection };
    }

    private const ulong MaxRingSize = 8 * 1024 * 1024;

    private static LoadBalancerConfigModel RingHash(ulong? min, ulong? max, bool murmur, bool useHostname, string path, ConfigErrors errors)
    {
        if (murmur) errors.Add(path + ".hash_function", "ring hash hash_function MURMUR_HASH_2 is not supported yet (XX_HASH is)");
        var minSize = min ?? 1024;
        var maxSize = max ?? MaxRingSize;
        if (minSize > MaxRingSize) errors.Add(path + ".minimum_ring_size", $"minimum_ring_size must be at most {MaxRingSize} (found {minSize})");
        if (maxSize > MaxRingSize) errors.Add(path + ".maximum_ring_size", $"maximum_ring_size must be at most {MaxRingSize} (found {maxSize})");
        if (minSize > maxSize) errors.Add(path, $"ring hash: minimum_ring_size ({minSize}) > maximum_ring_size ({maxSize})");
        return new LoadBalancerConfigModel
        {
            Policy = LbPolicy.RingHash,
            MinimumRingSize = Math.Min(minSize, maxSize),
            MaximumRingSize = Math.Min(maxSize, MaxRingSize),
            UseHostnameForHashing = useHostname,
        };
    }

    private static LoadBalancerConfigModel Maglev(ulong? tableSize, bool useHostname, string path, ConfigErrors errors)
    {
        var size = tableSize ?? 65537;
        if (size > 5000011) errors.Add(path + ".table_size", $"table_size must be at most 5000011 (found {size})");
        else if (!IsPrime(size)) errors.Add(path + ".table_size", $"The table size of maglev must be prime number (found {size})");
        return new LoadBalancerConfigModel { Policy = LbPolicy.Maglev, MaglevTableSize = IsPrime(size) && size <= 5000011 ? size : 65537, UseHostnameForHashing = useHostname };
    }

    private static bool IsPrime(ulong n)
    {
        if (n < 2) return false;
        if (n % 2 == 0) return n == 2;
        for (ulong d = 3; d * d <= n; d += 2)
            if (n % d == 0) return false;
        return true;
    }

    private static LoadBalancerConfigModel Error(string path, string message, ConfigErrors errors)
    {
        errors.Add(path, message);
        return LoadBalancerConfigModel.Default;
    }
}
