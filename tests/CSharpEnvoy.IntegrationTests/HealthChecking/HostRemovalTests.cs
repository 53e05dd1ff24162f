using CSharpEnvoy.IntegrationTests.Infrastructure;
using CSharpEnvoy.IntegrationTests.Xds;
using Google.Protobuf;
using static CSharpEnvoy.IntegrationTests.HealthChecking.HealthTestKit;

namespace CSharpEnvoy.IntegrationTests.HealthChecking;

/// <summary>Envoy's <c>ignore_health_on_host_removal</c>: with active health checking, a host EDS removed stays
/// (pending_dynamic_removal) until its check fails, unless the cluster says to ignore its health.</summary>
public sealed class HostRemovalTests
{
    /// <summary>The ADS bootstrap of the xDS tests with a static EDS cluster "c" under active health checks; the
    /// listener ("main", as HealthTestKit sends to) and its routes come over LDS/RDS.</summary>
    private static string Bootstrap(int controlPlanePort, bool ignore) => AdsTests.Bootstrap(controlPlanePort).Replace("  clusters:\n", $$"""
          clusters:
          - name: c
            type: EDS
            connect_timeout: 1s
            ignore_health_on_host_removal: {{(ignore ? "true" : "false")}}
            eds_cluster_config: { eds_config: { ads: {}, resource_api_version: V3 } }
            health_checks:
            - timeout: 1s
              interval: 1s
              no_traffic_interval: 1s
              unhealthy_threshold: 1
              healthy_threshold: 1
              http_health_check: { path: /healthz }

        """);

    private static IMessage[] Snapshot(params int[] ports) =>
        [AdsTests.Cla("c", ports), AdsTests.RdsListener("main", "routes"), AdsTests.Routes("routes", "c")];

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task RemovedHost_StaysUntilItsCheckFails_UnlessIgnoreHealthOnHostRemoval(bool ignore)
    {
        await using var a = await FlipBackend.StartAsync("a");
        await using var b = await FlipBackend.StartAsync("b");
        await using var cp = await TestControlPlane.StartAsync();
        cp.SetSnapshot("v1", Snapshot(a.Port, b.Port));
        var time = new ManualTimeProvider();
        await using var proxy = await ProxyHarness.StartAsync(Bootstrap(cp.Port, ignore), time: time);
        await WaitStatAsync(proxy, "cluster.c.membership_healthy", 2);
        using var listening = await AdsTests.ListenerClientAsync(proxy, "main"); // LDS delivered the listener

        cp.SetSnapshot("v2", Snapshot(a.Port));
        await cp.WaitForAckAsync(TestControlPlane.EndpointType, "v2");
        var clusters = await ClustersAsync(proxy);
        if (ignore)
        {
            Assert.DoesNotContain($"127.0.0.1:{b.Port}", clusters);
            Assert.Equal(1, await proxy.StatAsync("cluster.c.membership_total"));
            return;
        }
        Assert.Equal("/pending_dynamic_removal", HealthFlags(clusters, b.Port));
        Assert.Equal(2, await proxy.StatAsync("cluster.c.membership_healthy"));

        // Its next check fails: it goes, and its checks stop.
        b.HealthStatus = 503;
        var failures = await proxy.StatAsync("cluster.c.health_check.failure");
        time.Advance(TimeSpan.FromSeconds(1));
        await WaitStatAsync(proxy, "cluster.c.health_check.failure", failures + 1);
        await WaitUntilAsync(async () => !(await ClustersAsync(proxy)).Contains($"127.0.0.1:{b.Port}", StringComparison.Ordinal), "b to be removed");
        Assert.Equal(1, await proxy.StatAsync("cluster.c.membership_total"));
        var spread = await SpreadAsync(proxy, 6);
        Assert.Equal(6, spread.GetValueOrDefault("a"));
        var checks = b.HealthChecks;
        await RoundAsync(proxy, time, 1);
        Assert.Equal(checks, b.HealthChecks);
    }

    [Fact]
    public async Task PendingHost_BroughtBackByTheNextUpdate_IsNoLongerPending()
    {
        await using var a = await FlipBackend.StartAsync("a");
        await using var b = await FlipBackend.StartAsync("b");
        await using var cp = await TestControlPlane.StartAsync();
        cp.SetSnapshot("v1", Snapshot(a.Port, b.Port));
        var time = new ManualTimeProvider();
        await using var proxy = await ProxyHarness.StartAsync(Bootstrap(cp.Port, ignore: false), time: time);
        await WaitStatAsync(proxy, "cluster.c.membership_healthy", 2);
        using var listening = await AdsTests.ListenerClientAsync(proxy, "main"); // LDS delivered the listener

        cp.SetSnapshot("v2", Snapshot(a.Port));
        await cp.WaitForAckAsync(TestControlPlane.EndpointType, "v2");
        Assert.Equal("/pending_dynamic_removal", HealthFlags(await ClustersAsync(proxy), b.Port));
        cp.SetSnapshot("v3", Snapshot(a.Port, b.Port));
        await cp.WaitForAckAsync(TestControlPlane.EndpointType, "v3");
        Assert.Equal("healthy", HealthFlags(await ClustersAsync(proxy), b.Port));

        // No longer pending: a failing check marks it unhealthy but keeps it, as for any assigned host.
        b.HealthStatus = 503;
        await RoundAsync(proxy, time, 2);
        Assert.Equal("/failed_active_hc", HealthFlags(await ClustersAsync(proxy), b.Port));
        Assert.Equal(2, await proxy.StatAsync("cluster.c.membership_total"));
    }
}
