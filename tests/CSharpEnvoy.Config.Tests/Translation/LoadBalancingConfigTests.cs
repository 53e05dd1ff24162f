using CSharpEnvoy.Config.Loading;
using CSharpEnvoy.Config.Model.Cluster;
using CSharpEnvoy.Config.Model.RouteConfiguration;
using CSharpEnvoy.Config.Tests.Loading;

namespace CSharpEnvoy.Config.Tests.Translation;

/// <summary>lb_policy, the *_lb_config messages, load_balancing_policy, endpoint weights and route hash policies.</summary>
public sealed class LoadBalancingConfigTests
{
    private static string Bootstrap(string clusterFields, string endpointExtra = "", string hashPolicy = "") => $$"""
        static_resources:
          listeners:
          - name: l0
            address: { socket_address: { address: 127.0.0.1, port_value: 10000 } }
            filter_chains:
            - filters:
              - name: envoy.filters.network.http_connection_manager
                typed_config:
                  "@type": type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager
                  stat_prefix: ingress
                  route_config:
                    virtual_hosts:
                    - name: vh
                      domains: ["*"]
                      routes:
                      - match: { prefix: "/" }
                        route:
                          cluster: c
        {{Indent(hashPolicy, 18)}}
          clusters:
          - name: c
            connect_timeout: 1s
        {{Indent(clusterFields, 4)}}
            load_assignment:
              cluster_name: c
              endpoints:
              - lb_endpoints:
                - endpoint: { address: { socket_address: { address: 127.0.0.1, port_value: 8080 } } }
        {{Indent(endpointExtra, 8)}}
        """;

    private static string Indent(string s, int n) => string.Join("\n", s.Split('\n').Select(l => l.Length == 0 ? l : new string(' ', n) + l));

    private static ClusterModel LoadCluster(string yaml)
    {
        var (model, errors) = BootstrapLoadingTests.Load(yaml);
        Assert.False(errors.HasErrors, errors.ToString());
        return Assert.Single(model!.Clusters);
    }

    private static ConfigErrors Errors(string yaml) => BootstrapLoadingTests.Load(yaml).Errors;

    [Fact]
    public void LegacyPolicies_WithTheirConfigs()
    {
        var lr = LoadCluster(Bootstrap("lb_policy: LEAST_REQUEST\nleast_request_lb_config: { choice_count: 3, active_request_bias: { default_value: 0.5, runtime_key: k } }")).LoadBalancer;
        Assert.Equal((LbPolicy.LeastRequest, 3u, 0.5), (lr.Policy, lr.ChoiceCount, lr.ActiveRequestBias));

        var rh = LoadCluster(Bootstrap("lb_policy: RING_HASH\nring_hash_lb_config: { minimum_ring_size: 64, maximum_ring_size: 4096 }")).LoadBalancer;
        Assert.Equal((LbPolicy.RingHash, 64UL, 4096UL), (rh.Policy, rh.MinimumRingSize, rh.MaximumRingSize));

        var mg = LoadCluster(Bootstrap("lb_policy: MAGLEV\nmaglev_lb_config: { table_size: 251 }")).LoadBalancer;
        Assert.Equal((LbPolicy.Maglev, 251UL), (mg.Policy, mg.MaglevTableSize));

        Assert.Equal(LbPolicy.Random, LoadCluster(Bootstrap("lb_policy: RANDOM")).LoadBalancer.Policy);
        Assert.Equal(LbPolicy.RoundRobin, LoadCluster(Bootstrap("")).LoadBalancer.Policy);
    }

    [Theory]
    [InlineData("lb_policy: MAGLEV\nmaglev_lb_config: { table_size: 65536 }", "static_resources.clusters[0].maglev_lb_config.table_size", "The table size of maglev must be prime number (found 65536)")]
    [InlineData("lb_policy: RING_HASH\nring_hash_lb_config: { hash_function: MURMUR_HASH_2 }", "static_resources.clusters[0].ring_hash_lb_config.hash_function", "ring hash hash_function MURMUR_HASH_2 is not supported yet (XX_HASH is)")]
    [InlineData("lb_policy: RING_HASH\nring_hash_lb_config: { minimum_ring_size: 100, maximum_ring_size: 10 }", "static_resources.clusters[0].ring_hash_lb_config", "ring hash: minimum_ring_size (100) > maximum_ring_size (10)")]
    [InlineData("lb_policy: LEAST_REQUEST\nleast_request_lb_config: { choice_count: 1 }", "static_resources.clusters[0].least_request_lb_config.choice_count", "choice_count must be at least 2 (found 1)")]
    [InlineData("lb_policy: CLUSTER_PROVIDED", "static_resources.clusters[0].lb_policy", "lb_policy CLUSTER_PROVIDED is not supported yet (ROUND_ROBIN, LEAST_REQUEST, RANDOM, RING_HASH and MAGLEV are)")]
    public void InvalidSettings_AreRefusedWithTheirPath(string fields, string path, string message)
    {
        var errors = Errors(Bootstrap(fields));
        Assert.Contains(errors.Errors, e => e.Path == path && e.Message == message);
    }

    [Fact]
    public void TypedPolicy_FirstSupportedWins_AndSkippedOnesWarn()
    {
        var yaml = Bootstrap("""
            load_balancing_policy:
              policies:
              - typed_extension_config:
                  name: envoy.load_balancing_policies.client_side_weighted_round_robin
                  typed_config: { "@type": type.googleapis.com/envoy.extensions.load_balancing_policies.client_side_weighted_round_robin.v3.ClientSideWeightedRoundRobin }
              - typed_extension_config:
                  name: envoy.load_balancing_policies.maglev
                  typed_config: { "@type": type.googleapis.com/envoy.extensions.load_balancing_policies.maglev.v3.Maglev, table_size: 131 }
              - typed_extension_config:
                  name: envoy.load_balancing_policies.round_robin
                  typed_config: { "@type": type.googleapis.com/envoy.extensions.load_balancing_policies.round_robin.v3.RoundRobin }
            """);
        var (model, errors) = BootstrapLoadingTests.Load(yaml);
        Assert.False(errors.HasErrors, errors.ToString());
        var lb = Assert.Single(model!.Clusters).LoadBalancer;
        Assert.Equal((LbPolicy.Maglev, 131UL, "envoy.load_balancing_policies.maglev"), (lb.Policy, lb.MaglevTableSize, lb.ExtensionName));
        Assert.Contains(errors.Warnings, w => w.Message.Contains("client_side_weighted_round_robin", StringComparison.Ordinal));
    }

    [Fact]
    public void TypedPolicy_WrrLocalityWrappingLeastRequest()
    {
        var lb = LoadCluster(Bootstrap("""
            load_balancing_policy:
              policies:
              - typed_extension_config:
                  name: envoy.load_balancing_policies.wrr_locality
                  typed_config:
                    "@type": type.googleapis.com/envoy.extensions.load_balancing_policies.wrr_locality.v3.WrrLocality
                    endpoint_picking_policy:
                      policies:
                      - typed_extension_config:
                          name: envoy.load_balancing_policies.least_request
                          typed_config: { "@type": type.googleapis.com/envoy.extensions.load_balancing_policies.least_request.v3.LeastRequest, choice_count: 4 }
            """)).LoadBalancer;
        Assert.Equal((LbPolicy.LeastRequest, 4u), (lb.Policy, lb.ChoiceCount));
    }

    [Fact]
    public void TypedPolicy_NoneSupported_IsAnError()
    {
        var errors = Errors(Bootstrap("""
            load_balancing_policy:
              policies:
              - typed_extension_config:
                  name: envoy.load_balancing_policies.client_side_weighted_round_robin
                  typed_config: { "@type": type.googleapis.com/envoy.extensions.load_balancing_policies.client_side_weighted_round_robin.v3.ClientSideWeightedRoundRobin }
            """));
        Assert.Contains(errors.Errors, e => e.Path == "static_resources.clusters[0].load_balancing_policy"
            && e.Message.StartsWith("none of the load balancing policies is supported by csenvoy", StringComparison.Ordinal));
    }

    [Fact]
    public void EndpointWeights_AreKept_ZeroIsRefused_LocalityWeightsAreKept()
    {
        var c = LoadCluster(Bootstrap("", "  load_balancing_weight: 7"));
        Assert.Equal(7u, Assert.Single(c.Endpoints).Weight);

        var zero = Errors(Bootstrap("", "  load_balancing_weight: 0"));
        Assert.Contains(zero.Errors, e => e.Path.EndsWith("lb_endpoints[0].load_balancing_weight", StringComparison.Ordinal)
            && e.Message == "load_balancing_weight must be at least 1");

        var locality = LoadCluster(Bootstrap("").Replace("      - lb_endpoints:", "      - load_balancing_weight: 5\n        priority: 2\n        lb_endpoints:"));
        Assert.Equal(5u, Assert.Single(locality.Endpoints).LocalityWeight);
        Assert.Equal(2u, locality.Endpoints[0].Priority);

        var zeroLocality = Errors(Bootstrap("").Replace("      - lb_endpoints:", "      - load_balancing_weight: 0\n        lb_endpoints:"));
        Assert.Contains(zeroLocality.Errors, e => e.Path == "static_resources.clusters[0].load_assignment.endpoints[0].load_balancing_weight"
            && e.Message == "a locality's load_balancing_weight must be at least 1");
        var tooLow = Errors(Bootstrap("").Replace("      - lb_endpoints:", "      - priority: 129\n        lb_endpoints:"));
        Assert.Contains(tooLow.Errors, e => e.Path == "static_resources.clusters[0].load_assignment.endpoints[0].priority");
    }

    [Fact]
    public void HashPolicies_AreTranslatedInOrder()
    {
        var (model, errors) = BootstrapLoadingTests.Load(Bootstrap("lb_policy: RING_HASH", hashPolicy: """
            hash_policy:
            - header: { header_name: X-User }
            - cookie: { name: s, ttl: 0s, path: /a, attributes: [{ name: SameSite, value: Lax }] }
              terminal: true
            - connection_properties: { source_ip: true }
            - query_parameter: { name: id }
            """));
        Assert.False(errors.HasErrors, errors.ToString());
        var action = model!.Listeners[0].FilterChains[0].HttpConnectionManager!.RouteConfig!.VirtualHostList[0].Routes.GetRoute(0).Route!;
        var p = action.HashPolicies;
        Assert.Equal(new[] { HashPolicyKind.Header, HashPolicyKind.Cookie, HashPolicyKind.SourceIp, HashPolicyKind.QueryParameter }, p.Select(x => x.Kind));
        Assert.Equal("x-user", p[0].Name);
        Assert.True(p[1].Terminal);
        Assert.Equal(TimeSpan.Zero, p[1].CookieTtl);
        Assert.Equal("; SameSite=Lax", p[1].CookieAttributes);
        Assert.Equal("id", p[3].Name);
    }

    [Fact]
    public void CommonLbConfig_PanicThreshold_ZoneAware_AndLocalityWeighted()
    {
        var lb = LoadCluster(Bootstrap("""
            common_lb_config:
              healthy_panic_threshold: { value: 30.6 }
              zone_aware_lb_config: { routing_enabled: { value: 80 }, min_cluster_size: 3, fail_traffic_on_panic: true }
            """)).LoadBalancer;
        Assert.Equal(31u, lb.HealthyPanicThreshold); // Envoy rounds to an integer percentage
        Assert.Equal(LocalityLbMode.ZoneAware, lb.LocalityMode);
        Assert.Equal((80u, 3UL, true), (lb.ZoneAware.RoutingEnabledPercent, lb.ZoneAware.MinClusterSize, lb.ZoneAware.FailTrafficOnPanic));

        Assert.Equal(50u, LoadCluster(Bootstrap("")).LoadBalancer.HealthyPanicThreshold);
        Assert.Equal(6UL, LoadCluster(Bootstrap("")).LoadBalancer.ZoneAware.MinClusterSize);
        Assert.Equal(LocalityLbMode.LocalityWeighted,
            LoadCluster(Bootstrap("common_lb_config: { locality_weighted_lb_config: {} }")).LoadBalancer.LocalityMode);

        var bad = Errors(Bootstrap("common_lb_config: { healthy_panic_threshold: { value: 120 } }"));
        Assert.Contains(bad.Errors, e => e.Path == "static_resources.clusters[0].common_lb_config.healthy_panic_threshold.value");
        var ring = Errors(Bootstrap("lb_policy: RING_HASH\ncommon_lb_config: { locality_weighted_lb_config: {} }"));
        Assert.Contains(ring.Errors, e => e.Path == "static_resources.clusters[0].common_lb_config.locality_weighted_lb_config");
    }

    [Fact]
    public void TypedPolicies_LocalityLbConfig_AndWrrLocality()
    {
        var rr = LoadCluster(Bootstrap("""
            load_balancing_policy:
              policies:
              - typed_extension_config:
                  name: envoy.load_balancing_policies.round_robin
                  typed_config:
                    "@type": type.googleapis.com/envoy.extensions.load_balancing_policies.round_robin.v3.RoundRobin
                    locality_lb_config:
                      zone_aware_lb_config: { min_cluster_size: 2, locality_basis: HEALTHY_HOSTS_WEIGHT, force_local_zone: {} }
            """)).LoadBalancer;
        Assert.Equal((2UL, true, (uint?)1), (rr.ZoneAware.MinClusterSize, rr.ZoneAware.BasisIsWeight, rr.ZoneAware.ForceLocalZoneMinSize));

        var wrr = LoadCluster(Bootstrap("""
            load_balancing_policy:
              policies:
              - typed_extension_config:
                  name: envoy.load_balancing_policies.wrr_locality
                  typed_config:
                    "@type": type.googleapis.com/envoy.extensions.load_balancing_policies.wrr_locality.v3.WrrLocality
                    endpoint_picking_policy:
                      policies:
                      - typed_extension_config:
                          name: envoy.load_balancing_policies.least_request
                          typed_config: { "@type": type.googleapis.com/envoy.extensions.load_balancing_policies.least_request.v3.LeastRequest }
            """)).LoadBalancer;
        Assert.Equal((LbPolicy.LeastRequest, LocalityLbMode.LocalityWeighted), (wrr.Policy, wrr.LocalityMode));
    }

    [Fact]
    public void LoadAssignmentPolicy_AndDegradedEndpoints()
    {
        var c = LoadCluster(Bootstrap("", "  health_status: DEGRADED").Replace("    load_assignment:\n      cluster_name: c\n",
            "    load_assignment:\n      cluster_name: c\n      policy: { overprovisioning_factor: 200, weighted_priority_health: true }\n"));
        var la = Assert.IsType<LoadAssignmentModel>(c.Endpoints);
        Assert.Equal((200u, true), (la.OverprovisioningFactor, la.WeightedPriorityHealth));
        Assert.Equal(EndpointHealthStatus.Degraded, la[0].HealthStatus);

        var zero = Errors(Bootstrap("").Replace("    load_assignment:\n      cluster_name: c\n",
            "    load_assignment:\n      cluster_name: c\n      policy: { overprovisioning_factor: 0 }\n"));
        Assert.Contains(zero.Errors, e => e.Path == "static_resources.clusters[0].load_assignment.policy.overprovisioning_factor");
    }

    [Fact]
    public void LocalClusterName_MustNameAStaticClusterAtPriorityZero()
    {
        var (model, errors) = BootstrapLoadingTests.Load(Bootstrap("") + "\ncluster_manager: { local_cluster_name: c }\n");
        Assert.False(errors.HasErrors, errors.ToString());
        Assert.Equal("c", model!.LocalClusterName);

        var missing = Errors(Bootstrap("") + "\ncluster_manager: { local_cluster_name: nope }\n");
        Assert.Contains(missing.Errors, e => e.Path == "cluster_manager.local_cluster_name" && e.Message.Contains("'nope' must be defined"));
        var priority = Errors(Bootstrap("").Replace("      - lb_endpoints:", "      - priority: 1\n        lb_endpoints:") + "\ncluster_manager: { local_cluster_name: c }\n");
        Assert.Contains(priority.Errors, e => e.Path == "cluster_manager.local_cluster_name" && e.Message == "Unexpected non-zero priority for local cluster 'c'");
    }
}
