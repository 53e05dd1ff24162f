using CSharpEnvoy.DataPlane.Upstream.LoadBalancing;
using CSharpEnvoy.IntegrationTests.Infrastructure;
using static CSharpEnvoy.IntegrationTests.HealthChecking.HealthTestKit;

namespace CSharpEnvoy.IntegrationTests.LoadBalancing;

/// <summary>Zone-aware routing and priority failover end to end: the real proxy, real backends, real sockets.</summary>
public sealed class PriorityAndZoneProxyTests
{
    private static string Endpoint(int port) =>
        $"    - endpoint: {{ address: {{ socket_address: {{ address: 127.0.0.1, port_value: {port} }} }} }}";

    private static string Locality(string zone, IEnumerable<int> ports, int priority = 0) =>
        $"  - locality: {{ zone: {zone} }}\n    priority: {priority}\n    lb_endpoints:\n" + string.Join("\n", ports.Select(p => "  " + Endpoint(p)));

    private static string StaticCluster(string name, string extra, params string[] localities) => $"""
        - name: {name}
          connect_timeout: 1s
          type: STATIC
        {Yaml.Indent(extra, 2)}
          load_assignment:
            cluster_name: {name}
            endpoints:
        {Yaml.Indent(string.Join("\n", localities), 2)}
        """;

    /// <summary>
    /// Envoy's documented residual case through the proxy: this proxy runs in zone a of a fleet spread 2 / 2 / 1 over
    /// zones a / b / c (the local cluster), the upstream has 2 / 4 / 2 hosts there. 62.5% of the requests stay in
    /// zone a, the other 37.5% go to b and c in proportion to their residual capacity (2 : 1).
    /// </summary>
    [Fact]
    public async Task ZoneAwareRouting_SendsTheDocumentedSharesToEachZone()
    {
        var backends = new List<FlipBackend>();
        try
        {
            foreach (var name in new[] { "a0", "a1", "b0", "b1", "b2", "b3", "c0", "c1" }) backends.Add(await FlipBackend.StartAsync(name));
            int[] Ports(string zone) => backends.Where(b => b.Name.StartsWith(zone, StringComparison.Ordinal)).Select(b => b.Port).ToArray();
            // The local cluster lists the fleet; its hosts are never contacted.
            var local = StaticCluster("local", "", Locality("a", [1, 2]), Locality("b", [3, 4]), Locality("c", [5]));
            var upstream = StaticCluster("c", "", Locality("a", Ports("a")), Locality("b", Ports("b")), Locality("c", Ports("c")));
            var yaml = Yaml.Bootstrap(Route, local + "\n" + upstream) + "\ncluster_manager: { local_cluster_name: local }\n";
            await using var proxy = await ProxyHarness.StartAsync(yaml, serviceZone: "a", time: null, random: LbRandom.Seeded(7));

            const int requests = 800;
            var spread = await SpreadAsync(proxy, requests);
            int Zone(string z) => spread.Where(kv => kv.Key.StartsWith(z, StringComparison.Ordinal)).Sum(kv => kv.Value);
            Assert.Equal(requests, Zone("a") + Zone("b") + Zone("c"));
            Assert.InRange(Zone("a"), 460, 540);  // 62.5% = 500
            Assert.InRange(Zone("b"), 165, 235);  // 25% = 200
            Assert.InRange(Zone("c"), 70, 130);   // 12.5% = 100
            Assert.Equal(Zone("a"), await proxy.StatAsync("cluster.c.lb_zone_routing_sampled"));
            Assert.Equal(Zone("b") + Zone("c"), await proxy.StatAsync("cluster.c.lb_zone_routing_cross_zone"));
            Assert.Equal(0, await proxy.StatAsync("cluster.c.lb_zone_routing_all_directly"));

            // /clusters shows each host's zone and priority.
            var clusters = await ClustersAsync(proxy);
            Assert.Contains($"c::127.0.0.1:{Ports("b")[0]}::zone::b", clusters);
            Assert.Contains($"c::127.0.0.1:{Ports("b")[0]}::priority::0", clusters);
        }
        finally
        {
            foreach (var b in backends) await b.DisposeAsync();
        }
    }

    /// <summary>Without a local cluster entry in this proxy's zone, nothing is zone-routed and the stat says why.</summary>
    [Fact]
    public async Task ZoneAwareRouting_LocalClusterWithoutThisZone_CountsLocalClusterNotOk()
    {
        await using var a = await FlipBackend.StartAsync("a");
        await using var b = await FlipBackend.StartAsync("b");
        var local = StaticCluster("local", "", Locality("b", [1]), Locality("c", [2]));
        var upstream = StaticCluster("c", "common_lb_config: { zone_aware_lb_config: { min_cluster_size: 1 } }", Locality("a", [a.Port]), Locality("b", [b.Port]));
        var yaml = Yaml.Bootstrap(Route, local + "\n" + upstream) + "\ncluster_manager: { local_cluster_name: local }\n";
        await using var proxy = await ProxyHarness.StartAsync(yaml, serviceZone: "a");
        Assert.True(await proxy.StatAsync("cluster.c.lb_local_cluster_not_ok") >= 1);
        var spread = await SpreadAsync(proxy, 20);
        Assert.Equal(10, spread["a"]);
        Assert.Equal(10, spread["b"]);
    }

    /// <summary>
    /// Priority failover with active health checking: P0 hosts fail one by one and traffic spills to P1 as the
    /// overprovisioning factor says: 4, 3 healthy → all on P0; 2 → 30% on P1; 1 → 65%; 0 → 100%.
    /// </summary>
    [Fact]
    public async Task PriorityFailover_TrafficSpillsToP1_AsP0HostsFailTheirHealthChecks()
    {
        var p0 = new List<FlipBackend>();
        var p1 = new List<FlipBackend>();
        try
        {
            for (var i = 0; i < 4; i++) p0.Add(await FlipBackend.StartAsync("p0-" + i));
            for (var i = 0; i < 4; i++) p1.Add(await FlipBackend.StartAsync("p1-" + i));
            const string hc = """
                health_checks:
                - timeout: 1s
                  interval: 1s
                  no_traffic_interval: 1s
                  unhealthy_threshold: 1
                  healthy_threshold: 1
                  http_health_check: { path: /healthz }
                """;
            var cluster = StaticCluster("c", hc, Locality("a", p0.Select(b => b.Port), 0), Locality("a", p1.Select(b => b.Port), 1));
            var time = new ManualTimeProvider();
            await using var proxy = await ProxyHarness.StartAsync(Yaml.Bootstrap(Route, cluster), serviceZone: null, time: time, random: LbRandom.Seeded(11));
            await WaitUntilAsync(() => Task.FromResult(time.ArmedTimers >= 8), "first checks to finish");

            const int requests = 400;
            int[] expectedOnP1 = [0, 0, 120, 260, 400]; // 0%, 0%, 30%, 65%, 100%
            for (var failed = 0; failed <= 4; failed++)
            {
                if (failed > 0)
                {
                    p0[failed - 1].HealthStatus = 503;
                    await RoundAsync(proxy, time, 8);
                }
                Assert.Equal(8 - failed, await proxy.StatAsync("cluster.c.membership_healthy"));
                var spread = await SpreadAsync(proxy, requests);
                var onP1 = spread.Where(kv => kv.Key.StartsWith("p1-", StringComparison.Ordinal)).Sum(kv => kv.Value);
                Assert.InRange(onP1, Math.Max(0, expectedOnP1[failed] - 30), Math.Min(requests, expectedOnP1[failed] + 30));
                Assert.DoesNotContain(spread.Keys, k => k.StartsWith('('));
                for (var i = 0; i < failed; i++) Assert.False(spread.ContainsKey("p0-" + i), $"failed host p0-{i} got traffic");
            }
        }
        finally
        {
            foreach (var b in p0.Concat(p1)) await b.DisposeAsync();
        }
    }

    /// <summary>A DEGRADED endpoint takes traffic only once too few hosts are healthy.</summary>
    [Fact]
    public async Task DegradedEndpoint_TakesTrafficOnlyWhenTooFewAreHealthy()
    {
        await using var healthy = await FlipBackend.StartAsync("healthy");
        await using var degraded = await FlipBackend.StartAsync("degraded");
        await using var down = await FlipBackend.StartAsync("down");
        var cluster = $$"""
            - name: c
              connect_timeout: 1s
              type: STATIC
              load_assignment:
                cluster_name: c
                endpoints:
                - lb_endpoints:
                  - endpoint: { address: { socket_address: { address: 127.0.0.1, port_value: {{healthy.Port}} } } }
                  - endpoint: { address: { socket_address: { address: 127.0.0.1, port_value: {{degraded.Port}} } } }
                    health_status: DEGRADED
                  - endpoint: { address: { socket_address: { address: 127.0.0.1, port_value: {{down.Port}} } } }
                    health_status: UNHEALTHY
            """;
        // 1 of 3 healthy × 1.4 = 46% and as much degraded: normalized over their 92%, half the load each.
        await using var proxy = await ProxyHarness.StartAsync(Yaml.Bootstrap(Route, cluster), serviceZone: null, time: null, random: LbRandom.Seeded(3));
        var spread = await SpreadAsync(proxy, 400);
        Assert.False(spread.ContainsKey("down"));
        Assert.InRange(spread.GetValueOrDefault("degraded"), 170, 230);
        Assert.Equal(1, await proxy.StatAsync("cluster.c.membership_degraded"));
        Assert.Contains($"c::127.0.0.1:{degraded.Port}::health_flags::/degraded_eds_health", await ClustersAsync(proxy));
    }
}
