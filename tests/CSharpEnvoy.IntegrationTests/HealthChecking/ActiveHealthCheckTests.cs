using System.Net;
using System.Net.Sockets;
using System.Text.Json;
using CSharpEnvoy.IntegrationTests.Infrastructure;
using Grpc.Health.V1;
using Grpc.HealthCheck;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.Extensions.DependencyInjection;
using static CSharpEnvoy.IntegrationTests.HealthChecking.HealthTestKit;

namespace CSharpEnvoy.IntegrationTests.HealthChecking;

/// <summary>Active health checking end to end: real backends and sockets, time driven by a manual clock.</summary>
public sealed class ActiveHealthCheckTests
{
    private static string Hc(string checker, int unhealthy = 2, int healthy = 2) => $"""
        health_checks:
        - timeout: 1s
          interval: 1s
          no_traffic_interval: 1s
          unhealthy_threshold: {unhealthy}
          healthy_threshold: {healthy}
        {Yaml.Indent(checker, 2)}
        """;

    private const string HttpChecker = """
        http_health_check:
          path: /healthz
          host: hc.example
          request_headers_to_add:
          - header: { key: x-hc, value: "yes" }
        """;

    private static async Task<ProxyHarness> StartAsync(string clusterExtra, ManualTimeProvider time, params int[] ports)
    {
        var proxy = await ProxyHarness.StartAsync(Yaml.Bootstrap(Route, Cluster(clusterExtra, ports)), time: time);
        await WaitUntilAsync(() => Task.FromResult(time.ArmedTimers >= ports.Length), "first checks to finish");
        return proxy;
    }

    /// <summary><c>health_check_config</c>: the endpoint is checked on another port, with its own Host header.</summary>
    [Fact]
    public async Task Http_EndpointHealthCheckConfig_ChecksAnotherPortWithItsHostname()
    {
        await using var a = await FlipBackend.StartAsync("a");
        await using var b = await FlipBackend.StartAsync("b");
        await using var sidecar = await FlipBackend.StartAsync("a-health");
        sidecar.HealthStatus = 503;
        var cluster = Cluster(Hc(HttpChecker), a.Port, b.Port).Replace(
            $"port_value: {a.Port} }} }} }}",
            $"port_value: {a.Port} }} }}, health_check_config: {{ port_value: {sidecar.Port}, hostname: a.health }} }}");
        var time = new ManualTimeProvider();
        await using var proxy = await ProxyHarness.StartAsync(Yaml.Bootstrap(Route, cluster), time: time);
        await WaitUntilAsync(() => Task.FromResult(time.ArmedTimers >= 2), "first checks to finish");

        Assert.True(sidecar.HealthChecks >= 1);
        Assert.Equal(0, a.HealthChecks);
        Assert.Equal("a.health", sidecar.LastHealthHost);
        Assert.Equal("hc.example", b.LastHealthHost);
        Assert.Equal("/failed_active_hc", HealthFlags(await ClustersAsync(proxy), a.Port));
        var spread = await SpreadAsync(proxy, 10);
        Assert.Equal(10, spread.GetValueOrDefault("b"));
    }

    [Fact]
    public async Task Http_FailingHostIsRemoved_AndReturnsAfterHealthyThreshold()
    {
        await using var a = await FlipBackend.StartAsync("a");
        await using var b = await FlipBackend.StartAsync("b");
        var time = new ManualTimeProvider();
        await using var proxy = await StartAsync(Hc(HttpChecker), time, a.Port, b.Port);

        // The server started only after the first round: both hosts passed their first check.
        Assert.Equal(2, await proxy.StatAsync("cluster.c.health_check.success"));
        Assert.Equal(2, await proxy.StatAsync("cluster.c.membership_healthy"));
        Assert.Equal(2, await proxy.StatAsync("cluster.c.health_check.healthy"));
        Assert.Equal("healthy", HealthFlags(await ClustersAsync(proxy), b.Port));
        Assert.Equal("hc.example", b.LastHealthHost);
        Assert.Equal("Envoy/HC", b.LastHealthUserAgent);
        Assert.Equal("yes", b.LastHealthCustom);

        // A non-expected status fails the host at the next check (Envoy: an ACTIVE failure is immediate).
        b.HealthStatus = 503;
        await RoundAsync(proxy, time, 2);
        Assert.Equal("/failed_active_hc", HealthFlags(await ClustersAsync(proxy), b.Port));
        Assert.Equal(1, await proxy.StatAsync("cluster.c.membership_healthy"));
        var spread = await SpreadAsync(proxy, 10);
        Assert.Equal(10, spread.GetValueOrDefault("a"));

        // healthy_threshold 2: one success is not enough, the second brings the host back.
        b.HealthStatus = 200;
        await RoundAsync(proxy, time, 2);
        Assert.Equal("/failed_active_hc", HealthFlags(await ClustersAsync(proxy), b.Port));
        await RoundAsync(proxy, time, 2);
        Assert.Equal("healthy", HealthFlags(await ClustersAsync(proxy), b.Port));
        Assert.Equal(2, await proxy.StatAsync("cluster.c.membership_healthy"));
        spread = await SpreadAsync(proxy, 10);
        Assert.True(spread.GetValueOrDefault("b") > 0, string.Join(",", spread));
    }

    [Fact]
    public async Task Http_RetriableStatus_CountsTowardsUnhealthyThreshold()
    {
        await using var a = await FlipBackend.StartAsync("a");
        await using var b = await FlipBackend.StartAsync("b");
        var time = new ManualTimeProvider();
        const string checker = """
            http_health_check:
              path: /healthz
              retriable_statuses: [{ start: 503, end: 504 }]
            """;
        await using var proxy = await StartAsync(Hc(checker, unhealthy: 3), time, a.Port, b.Port);
        b.HealthStatus = 503;
        await RoundAsync(proxy, time, 2);
        await RoundAsync(proxy, time, 2);
        Assert.Equal("healthy", HealthFlags(await ClustersAsync(proxy), b.Port));
        await RoundAsync(proxy, time, 2);
        Assert.Equal("/failed_active_hc", HealthFlags(await ClustersAsync(proxy), b.Port));
        Assert.Equal(3, await proxy.StatAsync("cluster.c.health_check.failure"));
        Assert.Equal(0, await proxy.StatAsync("cluster.c.health_check.network_failure"));
    }

    [Fact]
    public async Task Http_StoppedBackend_IsNetworkFailure_RemovedAfterUnhealthyThreshold()
    {
        await using var a = await FlipBackend.StartAsync("a");
        var b = await FlipBackend.StartAsync("b");
        var time = new ManualTimeProvider();
        await using var proxy = await StartAsync(Hc(HttpChecker), time, a.Port, b.Port);
        await b.DisposeAsync();
        await RoundAsync(proxy, time, 2);
        Assert.Equal("healthy", HealthFlags(await ClustersAsync(proxy), b.Port));
        await RoundAsync(proxy, time, 2);
        Assert.Equal("/failed_active_hc", HealthFlags(await ClustersAsync(proxy), b.Port));
        Assert.Equal(2, await proxy.StatAsync("cluster.c.health_check.network_failure"));
        Assert.Equal(10, (await SpreadAsync(proxy, 10)).GetValueOrDefault("a"));
    }

    [Fact]
    public async Task ImmediateHealthCheckFailHeader_OnCheck_FailsAndExcludesAtOnce()
    {
        await using var a = await FlipBackend.StartAsync("a");
        await using var b = await FlipBackend.StartAsync("b");
        var time = new ManualTimeProvider();
        await using var proxy = await StartAsync(Hc(HttpChecker, unhealthy: 5), time, a.Port, b.Port);
        b.HealthStatus = 503;
        b.ImmediateFailHeader = true;
        await RoundAsync(proxy, time, 2);
        Assert.Equal("/failed_active_hc/excluded_via_immediate_hc_fail", HealthFlags(await ClustersAsync(proxy), b.Port));
        Assert.Equal(1, await proxy.StatAsync("cluster.c.membership_excluded"));
    }

    [Fact]
    public async Task ImmediateHealthCheckFailHeader_OnTraffic_IsAPassiveFailure()
    {
        await using var a = await FlipBackend.StartAsync("a");
        await using var b = await FlipBackend.StartAsync("b");
        var time = new ManualTimeProvider();
        await using var proxy = await StartAsync(Hc(HttpChecker, unhealthy: 5), time, a.Port, b.Port);
        b.ImmediateFailOnTraffic = true;
        await SpreadAsync(proxy, 4);
        await WaitStatAsync(proxy, "cluster.c.health_check.passive_failure", 1);
        Assert.Equal("/failed_active_hc/excluded_via_immediate_hc_fail", HealthFlags(await ClustersAsync(proxy), b.Port));
        Assert.Equal(10, (await SpreadAsync(proxy, 10)).GetValueOrDefault("a"));
    }

    [Fact]
    public async Task Tcp_SendReceive_And_ConnectOnly()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        var port = ((IPEndPoint)listener.LocalEndpoint).Port;
        using var cts = new CancellationTokenSource();
        _ = Task.Run(async () =>
        {
            while (!cts.IsCancellationRequested)
            {
                var client = await listener.AcceptTcpClientAsync(cts.Token);
                _ = Task.Run(async () =>
                {
                    using var c = client;
                    var s = c.GetStream();
                    var buf = new byte[64];
                    try
                    {
                        while (true)
                        {
                            var n = await s.ReadAsync(buf, cts.Token);
                            if (n == 0) return;
                            if (System.Text.Encoding.ASCII.GetString(buf, 0, n).Contains("ping")) await s.WriteAsync("xxpong"u8.ToArray(), cts.Token);
                        }
                    }
                    catch (Exception) { }
                });
            }
        });
        var deadPort = FixedPorts.Next();

        var time = new ManualTimeProvider();
        const string checker = """
            tcp_health_check:
              send: { text: "70696e67" }
              receive: [{ text: "706f6e67" }]
            """;
        await using var proxy = await StartAsync(Hc(checker), time, port, deadPort);
        var clusters = await ClustersAsync(proxy);
        Assert.Equal("healthy", HealthFlags(clusters, port));
        Assert.Equal("/failed_active_hc", HealthFlags(clusters, deadPort));
        Assert.Equal(1, await proxy.StatAsync("cluster.c.health_check.network_failure"));
        await RoundAsync(proxy, time, 2);
        Assert.Equal("healthy", HealthFlags(await ClustersAsync(proxy), port));
        cts.Cancel();

        // Connect-only: a listening port passes.
        var time2 = new ManualTimeProvider();
        await using var proxy2 = await StartAsync(Hc("tcp_health_check: {}"), time2, port);
        Assert.Equal("healthy", HealthFlags(await ClustersAsync(proxy2), port));
    }

    [Fact]
    public async Task Grpc_HealthService_ServingAndNotServing()
    {
        var health = new HealthServiceImpl();
        health.SetStatus("echo.Echo", HealthCheckResponse.Types.ServingStatus.Serving);
        await using var backend = await TestBackend.StartAppAsync(app => app.MapGrpcService<HealthServiceImpl>(), HttpProtocols.Http2,
            services =>
            {
                services.AddGrpc();
                services.AddSingleton(health);
            });
        var time = new ManualTimeProvider();
        const string checker = """
            grpc_health_check:
              service_name: echo.Echo
              authority: grpc.example
            """;
        var cluster = Cluster(Hc(checker, unhealthy: 1, healthy: 1) + """

            typed_extension_protocol_options:
              envoy.extensions.upstreams.http.v3.HttpProtocolOptions:
                "@type": type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions
                explicit_http_config: { http2_protocol_options: {} }
            """, backend.Port);
        await using var proxy = await ProxyHarness.StartAsync(Yaml.Bootstrap(Route, cluster), time: time);
        await WaitUntilAsync(() => Task.FromResult(time.ArmedTimers >= 1), "first check");
        Assert.Equal("healthy", HealthFlags(await ClustersAsync(proxy), backend.Port));

        health.SetStatus("echo.Echo", HealthCheckResponse.Types.ServingStatus.NotServing);
        await RoundAsync(proxy, time, 1);
        Assert.Equal("/failed_active_hc", HealthFlags(await ClustersAsync(proxy), backend.Port));

        health.SetStatus("echo.Echo", HealthCheckResponse.Types.ServingStatus.Serving);
        await RoundAsync(proxy, time, 1);
        Assert.Equal("healthy", HealthFlags(await ClustersAsync(proxy), backend.Port));

        // An unknown service is NOT_FOUND (a gRPC error): a failure.
        health.ClearStatus("echo.Echo");
        await RoundAsync(proxy, time, 1);
        Assert.Equal("/failed_active_hc", HealthFlags(await ClustersAsync(proxy), backend.Port));
    }

    [Fact]
    public async Task ClustersJson_ReportsHealthStatus()
    {
        await using var a = await FlipBackend.StartAsync("a");
        await using var b = await FlipBackend.StartAsync("b");
        b.HealthStatus = 500;
        var time = new ManualTimeProvider();
        await using var proxy = await StartAsync(Hc(HttpChecker), time, a.Port, b.Port);
        using var admin = proxy.AdminClient();
        using var doc = JsonDocument.Parse(await admin.GetStringAsync("/clusters?format=json"));
        var hosts = doc.RootElement.GetProperty("cluster_statuses")[0].GetProperty("host_statuses").EnumerateArray().ToList();
        var hb = hosts.Single(h => h.GetProperty("address").GetProperty("socket_address").GetProperty("port_value").GetInt32() == b.Port);
        Assert.True(hb.GetProperty("health_status").GetProperty("failed_active_health_check").GetBoolean());
        var ha = hosts.Single(h => h.GetProperty("address").GetProperty("socket_address").GetProperty("port_value").GetInt32() == a.Port);
        Assert.False(ha.GetProperty("health_status").TryGetProperty("failed_active_health_check", out _));
        Assert.Equal("HEALTHY", ha.GetProperty("health_status").GetProperty("eds_health_status").GetString());
    }

    [Fact]
    public async Task EndpointHealthStatus_Unhealthy_IsExcluded()
    {
        await using var a = await FlipBackend.StartAsync("a");
        await using var b = await FlipBackend.StartAsync("b");
        var cluster = $$"""
            - name: c
              connect_timeout: 1s
              load_assignment:
                cluster_name: c
                endpoints:
                - lb_endpoints:
                  - endpoint: { address: { socket_address: { address: 127.0.0.1, port_value: {{a.Port}} } } }
                  - endpoint: { address: { socket_address: { address: 127.0.0.1, port_value: {{b.Port}} } } }
                    health_status: UNHEALTHY
            """;
        await using var proxy = await ProxyHarness.StartAsync(Yaml.Bootstrap(Route, cluster));
        Assert.Equal("/failed_eds_health", HealthFlags(await ClustersAsync(proxy), b.Port));
        Assert.Equal(1, await proxy.StatAsync("cluster.c.membership_healthy"));
        Assert.Equal(10, (await SpreadAsync(proxy, 10)).GetValueOrDefault("a"));
    }

    [Theory]
    [InlineData("interval: 1s\n  unhealthy_threshold: 1\n  healthy_threshold: 1\n  tcp_health_check: {}", "static_resources.clusters[0].health_checks[0].timeout: timeout is required")]
    [InlineData("timeout: 1s\n  unhealthy_threshold: 1\n  healthy_threshold: 1\n  tcp_health_check: {}", "static_resources.clusters[0].health_checks[0].interval: interval is required")]
    [InlineData("timeout: 1s\n  interval: 1s\n  healthy_threshold: 1\n  tcp_health_check: {}", "static_resources.clusters[0].health_checks[0].unhealthy_threshold: unhealthy_threshold is required")]
    [InlineData("timeout: 1s\n  interval: 1s\n  unhealthy_threshold: 1\n  tcp_health_check: {}", "static_resources.clusters[0].health_checks[0].healthy_threshold: healthy_threshold is required")]
    [InlineData("timeout: 1s\n  interval: 1s\n  unhealthy_threshold: 1\n  healthy_threshold: 1", "static_resources.clusters[0].health_checks[0]: one of http_health_check, tcp_health_check or grpc_health_check is required")]
    [InlineData("timeout: 1s\n  interval: 1s\n  unhealthy_threshold: 1\n  healthy_threshold: 1\n  http_health_check: { path: /h, expected_statuses: [{ start: 200, end: 100 }] }", "static_resources.clusters[0].health_checks[0].http_health_check.expected_statuses[0]: Invalid http status range: expecting start < end, but found start=200 and end=100")]
    [InlineData("timeout: 1s\n  interval: 1s\n  unhealthy_threshold: 1\n  healthy_threshold: 1\n  tcp_health_check: { send: { text: zz } }", "static_resources.clusters[0].health_checks[0].tcp_health_check.send.text: invalid hex string 'zz'")]
    public void ConfigErrors_NameThePath(string hc, string expected)
    {
        var errors = ProxyHarness.Validate(Yaml.Bootstrap(Route, Cluster("health_checks:\n- " + hc, 1)));
        Assert.Contains(expected, errors.Errors.Select(e => e.ToString()));
    }
}
