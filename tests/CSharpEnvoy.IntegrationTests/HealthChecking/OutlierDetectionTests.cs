using CSharpEnvoy.IntegrationTests.Infrastructure;
using static CSharpEnvoy.IntegrationTests.HealthChecking.HealthTestKit;

namespace CSharpEnvoy.IntegrationTests.HealthChecking;

/// <summary>Outlier detection end to end: a backend answering 5xx is ejected, gets no traffic, and returns after the
/// ejection time (driven by a manual clock, no sleeping).</summary>
public sealed class OutlierDetectionTests
{
    private const string Od = """
        outlier_detection:
          consecutive_5xx: 3
          interval: 10s
          base_ejection_time: 30s
          max_ejection_percent: 50
        """;

    private static async Task TickAsync(ManualTimeProvider time)
    {
        await WaitUntilAsync(() => Task.FromResult(time.ArmedTimers >= 1), "the interval timer");
        time.Advance(TimeSpan.FromSeconds(10));
    }

    [Fact]
    public async Task Consecutive5xx_EjectsHost_ThenUnejectsAfterBaseEjectionTime()
    {
        await using var a = await FlipBackend.StartAsync("a");
        await using var b = await FlipBackend.StartAsync("b");
        b.Status = 500;
        var time = new ManualTimeProvider();
        await using var proxy = await ProxyHarness.StartAsync(Yaml.Bootstrap(Route, Cluster(Od, a.Port, b.Port)), time: time);

        await SpreadAsync(proxy, 6); // round robin: three 500s from b
        await WaitStatAsync(proxy, "cluster.c.outlier_detection.ejections_active", 1);
        Assert.Equal(1, await proxy.StatAsync("cluster.c.outlier_detection.ejections_enforced_total"));
        Assert.Equal(1, await proxy.StatAsync("cluster.c.outlier_detection.ejections_detected_consecutive_5xx"));
        Assert.Equal(1, await proxy.StatAsync("cluster.c.outlier_detection.ejections_enforced_consecutive_5xx"));
        Assert.Equal("/failed_outlier_check", HealthFlags(await ClustersAsync(proxy), b.Port));
        Assert.Equal(1, await proxy.StatAsync("cluster.c.membership_healthy"));

        var before = b.Requests;
        Assert.Equal(20, (await SpreadAsync(proxy, 20)).GetValueOrDefault("a"));
        Assert.Equal(before, b.Requests);

        // 30 s of base ejection time: still ejected at 20 s, back at the 30 s interval tick.
        await TickAsync(time);
        await TickAsync(time);
        Assert.Equal("/failed_outlier_check", HealthFlags(await ClustersAsync(proxy), b.Port));
        await TickAsync(time);
        await WaitUntilAsync(async () => await proxy.StatAsync("cluster.c.outlier_detection.ejections_active") == 0, "un-ejection");
        Assert.Equal("healthy", HealthFlags(await ClustersAsync(proxy), b.Port));
        b.Status = 200;
        var spread = await SpreadAsync(proxy, 10);
        Assert.True(spread.GetValueOrDefault("b") > 0, string.Join(",", spread));
    }

    [Fact]
    public async Task MaxEjectionPercent_LimitsEjections()
    {
        await using var a = await FlipBackend.StartAsync("a");
        await using var b = await FlipBackend.StartAsync("b");
        b.Status = 503;
        var time = new ManualTimeProvider();
        // Default max_ejection_percent (10%): ejecting one of two hosts (50%) overflows.
        await using var proxy = await ProxyHarness.StartAsync(Yaml.Bootstrap(Route, Cluster("outlier_detection: { consecutive_5xx: 2 }", a.Port, b.Port)), time: time);
        await SpreadAsync(proxy, 4);
        await WaitStatAsync(proxy, "cluster.c.outlier_detection.ejections_overflow", 1);
        Assert.Equal(0, await proxy.StatAsync("cluster.c.outlier_detection.ejections_active"));
        Assert.Equal(1, await proxy.StatAsync("cluster.c.outlier_detection.ejections_detected_consecutive_5xx"));
    }

    [Fact]
    public async Task ConnectFailures_CountAs5xx_WithoutSplit()
    {
        await using var a = await FlipBackend.StartAsync("a");
        var b = await FlipBackend.StartAsync("b");
        var deadPort = b.Port;
        await b.DisposeAsync();
        var time = new ManualTimeProvider();
        await using var proxy = await ProxyHarness.StartAsync(Yaml.Bootstrap(Route, Cluster(Od, a.Port, deadPort)), time: time);
        await SpreadAsync(proxy, 6);
        await WaitStatAsync(proxy, "cluster.c.outlier_detection.ejections_active", 1);
        Assert.Equal("/failed_outlier_check", HealthFlags(await ClustersAsync(proxy), deadPort));
        Assert.Equal(10, (await SpreadAsync(proxy, 10)).GetValueOrDefault("a"));
    }

    [Fact]
    public async Task SplitLocalOrigin_ConnectFailuresUseConsecutiveLocalOriginFailure()
    {
        await using var a = await FlipBackend.StartAsync("a");
        var b = await FlipBackend.StartAsync("b");
        var deadPort = b.Port;
        await b.DisposeAsync();
        var time = new ManualTimeProvider();
        const string od = """
            outlier_detection:
              split_external_local_origin_errors: true
              consecutive_local_origin_failure: 2
              max_ejection_percent: 50
            """;
        await using var proxy = await ProxyHarness.StartAsync(Yaml.Bootstrap(Route, Cluster(od, a.Port, deadPort)), time: time);
        await SpreadAsync(proxy, 4);
        await WaitStatAsync(proxy, "cluster.c.outlier_detection.ejections_enforced_consecutive_local_origin_failure", 1);
        Assert.Equal(0, await proxy.StatAsync("cluster.c.outlier_detection.ejections_detected_consecutive_5xx"));
    }

    [Fact]
    public async Task FailurePercentage_EjectsAtInterval()
    {
        var backends = new List<FlipBackend>();
        for (var i = 0; i < 5; i++) backends.Add(await FlipBackend.StartAsync("b" + i));
        try
        {
            backends[4].Status = 500;
            var time = new ManualTimeProvider();
            const string od = """
                outlier_detection:
                  consecutive_5xx: 1000
                  enforcing_failure_percentage: 100
                  failure_percentage_request_volume: 5
                  failure_percentage_threshold: 50
                  max_ejection_percent: 50
                """;
            await using var proxy = await ProxyHarness.StartAsync(Yaml.Bootstrap(Route, Cluster(od, backends.Select(b => b.Port).ToArray())), time: time);
            await SpreadAsync(proxy, 50);
            await TickAsync(time);
            await WaitStatAsync(proxy, "cluster.c.outlier_detection.ejections_enforced_failure_percentage", 1);
            Assert.Equal("/failed_outlier_check", HealthFlags(await ClustersAsync(proxy), backends[4].Port));
        }
        finally
        {
            foreach (var b in backends) await b.DisposeAsync();
        }
    }

    [Fact]
    public void Config_BaseEjectionTimeAboveMax_IsRefused()
    {
        var errors = ProxyHarness.Validate(Yaml.Bootstrap(Route, Cluster("outlier_detection: { base_ejection_time: 400s, max_ejection_time: 300s }", 1)));
        Assert.Contains("static_resources.clusters[0].outlier_detection.base_ejection_time: base_ejection_time value is greater than max_ejection_time value",
            errors.Errors.Select(e => e.ToString()));
    }
}
