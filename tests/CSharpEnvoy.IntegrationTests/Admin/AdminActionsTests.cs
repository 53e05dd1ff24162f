using System.Net;
using System.Net.Sockets;
using CSharpEnvoy.DataPlane.Admin;
using CSharpEnvoy.IntegrationTests.HealthChecking;
using CSharpEnvoy.IntegrationTests.Infrastructure;

namespace CSharpEnvoy.IntegrationTests.Admin;

/// <summary>Admin endpoints that change the server: /logging, /healthcheck/fail|ok (with the health check filter) and
/// /drain_listeners.</summary>
public sealed class AdminActionsTests
{
    private static async Task<HttpResponseMessage> PostAsync(HttpClient admin, string path) => await admin.PostAsync(path, null);

    [Fact]
    public async Task Logging_ListsLoggers_ChangesAllOneOrSeveral_AndRefusesBadInput()
    {
        await using var proxy = await ProxyHarness.StartAsync(Yaml.Bootstrap(Yaml.RoutesToBackend, Yaml.Cluster("backend", "127.0.0.1:1")));
        using var admin = proxy.AdminClient();
        var levels = proxy.Server.LogLevels;
        int Index(string name) => Array.IndexOf(LogLevels.Names, name);

        var list = await PostAsync(admin, "/logging");
        Assert.Equal(200, (int)list.StatusCode);
        var text = await list.Content.ReadAsStringAsync();
        Assert.StartsWith("active loggers:\n  admin: info\n  config: info\n", text);
        Assert.Contains("  upstream: info\n", text);

        Assert.Contains("  router: debug\n", await (await PostAsync(admin, "/logging?level=debug")).Content.ReadAsStringAsync());
        Assert.All(LogLevels.Names, n => Assert.Equal(Microsoft.Extensions.Logging.LogLevel.Debug, levels.Get(Index(n))));

        var one = await (await PostAsync(admin, "/logging?upstream=trace")).Content.ReadAsStringAsync();
        Assert.Contains("  upstream: trace\n", one);
        Assert.Contains("  main: debug\n", one);

        await PostAsync(admin, "/logging?paths=http:error,router:warning");
        Assert.Equal(Microsoft.Extensions.Logging.LogLevel.Error, levels.Get(Index("http")));
        Assert.Equal(Microsoft.Extensions.Logging.LogLevel.Warning, levels.Get(Index("router")));

        var unknownLogger = await PostAsync(admin, "/logging?nosuch=debug");
        Assert.Equal(404, (int)unknownLogger.StatusCode);
        Assert.StartsWith("error: unknown logger name\n\nusage: /logging?<name>=<level> (change single level)\n", await unknownLogger.Content.ReadAsStringAsync());
        var unknownLevel = await PostAsync(admin, "/logging?level=loud");
        Assert.Equal(404, (int)unknownLevel.StatusCode);
        Assert.Contains("error: unknown log level", await unknownLevel.Content.ReadAsStringAsync());
        Assert.Equal(Microsoft.Extensions.Logging.LogLevel.Trace, levels.Get(Index("upstream")));
        // As Envoy: /logging changes state, so it takes a POST.
        Assert.Equal(405, (int)(await admin.GetAsync("/logging")).StatusCode);
    }

    private static string HealthCheckFilter(bool passThrough) => $$"""
        http_filters:
        - name: envoy.filters.http.health_check
          typed_config:
            "@type": type.googleapis.com/envoy.extensions.filters.http.health_check.v3.HealthCheck
            pass_through_mode: {{(passThrough ? "true" : "false")}}
            headers:
            - name: ":path"
              string_match: { exact: /healthz }
        - name: envoy.filters.http.router
          typed_config:
            "@type": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router
        """;

    /// <summary>The standard bootstrap with the health check filter in front of the router.</summary>
    private static string HealthCheckBootstrap(bool passThrough, string backend)
    {
        var yaml = "node: { id: n1, cluster: edge }\n" + Yaml.Bootstrap(Yaml.RoutesToBackend, Yaml.Cluster("backend", backend));
        var router = Yaml.Indent("""
            http_filters:
            - name: envoy.filters.http.router
              typed_config:
                "@type": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router
            """, 10);
        Assert.Contains(router, yaml);
        return yaml.Replace(router, Yaml.Indent(HealthCheckFilter(passThrough), 10));
    }

    [Fact]
    public async Task HealthCheckFilter_AnswersLocally_AndFollowsHealthcheckFailAndOk()
    {
        var hits = 0;
        await using var backend = await TestBackend.StartAsync(_ => { Interlocked.Increment(ref hits); return Task.CompletedTask; });
        await using var proxy = await ProxyHarness.StartAsync(HealthCheckBootstrap(passThrough: false, backend.Address));
        using var client = proxy.Client("main");
        using var admin = proxy.AdminClient();

        var healthy = await client.GetAsync("/healthz");
        var normal = await client.GetAsync("/");
        Assert.Equal(200, (int)healthy.StatusCode);
        Assert.Equal("edge", healthy.Headers.GetValues("x-envoy-upstream-healthchecked-cluster").Single());
        Assert.Equal(200, (int)normal.StatusCode);
        Assert.False(normal.Headers.Contains("x-envoy-immediate-health-check-fail"));
        Assert.Equal(1, hits);

        Assert.Equal("OK\n", await (await PostAsync(admin, "/healthcheck/fail")).Content.ReadAsStringAsync());
        var failed = await client.GetAsync("/healthz");
        var during = await client.GetAsync("/");
        var ready = await admin.GetAsync("/ready");

        Assert.Equal(503, (int)failed.StatusCode);
        Assert.Equal(200, (int)during.StatusCode);
        Assert.Equal("true", during.Headers.GetValues("x-envoy-immediate-health-check-fail").Single());
        Assert.Equal(0, await proxy.StatAsync("server.live"));
        Assert.Equal(1, await proxy.StatAsync("server.state")); // DRAINING
        Assert.Equal(503, (int)ready.StatusCode);
        Assert.Equal("DRAINING\n", await ready.Content.ReadAsStringAsync());

        await PostAsync(admin, "/healthcheck/ok");
        Assert.Equal(200, (int)(await client.GetAsync("/healthz")).StatusCode);
        Assert.Equal(1, await proxy.StatAsync("server.live"));
        Assert.Equal("LIVE\n", await admin.GetStringAsync("/ready"));
        Assert.Equal(2, hits);
        Assert.Equal(405, (int)(await admin.GetAsync("/healthcheck/fail")).StatusCode);
    }

    [Fact]
    public async Task HealthCheckFilter_PassThrough_ReachesTheBackendUntilFailed()
    {
        var hits = 0;
        await using var backend = await TestBackend.StartAsync(_ => { Interlocked.Increment(ref hits); return Task.CompletedTask; });
        await using var proxy = await ProxyHarness.StartAsync(HealthCheckBootstrap(passThrough: true, backend.Address));
        using var client = proxy.Client("main");
        using var admin = proxy.AdminClient();

        var passed = await client.GetAsync("/healthz");
        await PostAsync(admin, "/healthcheck/fail");
        var failed = await client.GetAsync("/healthz");

        Assert.Equal(200, (int)passed.StatusCode);
        Assert.Equal("edge", passed.Headers.GetValues("x-envoy-upstream-healthchecked-cluster").Single());
        Assert.Equal(503, (int)failed.StatusCode);
        Assert.Equal(1, hits);
    }

    private static string TwoListeners(string backend) => $$"""
        admin:
          address: { socket_address: { address: 127.0.0.1, port_value: 0 } }
        static_resources:
          listeners:
          - name: in
            traffic_direction: INBOUND
            address: { socket_address: { address: 127.0.0.1, port_value: 0 } }
            filter_chains: [{ filters: [{{Hcm("in")}}] }]
          - name: out
            traffic_direction: OUTBOUND
            address: { socket_address: { address: 127.0.0.1, port_value: 0 } }
            filter_chains: [{ filters: [{{Hcm("out")}}] }]
          clusters:
        {{Yaml.Indent(Yaml.Cluster("backend", backend), 2)}}
        """;

    private static string Hcm(string prefix) =>
        "{ name: envoy.filters.network.http_connection_manager, typed_config: { \"@type\": type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager, " +
        $"stat_prefix: {prefix}, route_config: {{ virtual_hosts: [{{ name: vh, domains: [\"*\"], routes: [{{ match: {{ prefix: / }}, route: {{ cluster: backend }} }}] }}] }}, " +
        "http_filters: [{ name: envoy.filters.http.router, typed_config: { \"@type\": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router } }] } }";

    private static async Task<bool> AcceptsAsync(ProxyHarness proxy, string listener)
    {
        var address = IPEndPoint.Parse(proxy.ListenerAddress(listener));
        using var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        try
        {
            await socket.ConnectAsync(address);
            return true;
        }
        catch (SocketException)
        {
            return false;
        }
    }

    [Fact]
    public async Task DrainListeners_InboundOnly_StopsOnlyInboundListeners()
    {
        await using var backend = await TestBackend.StartEchoAsync();
        await using var proxy = await ProxyHarness.StartAsync(TwoListeners(backend.Address));
        using var admin = proxy.AdminClient();
        Assert.True(await AcceptsAsync(proxy, "in"));

        var response = await PostAsync(admin, "/drain_listeners?inboundonly");

        Assert.Equal("OK\n", await response.Content.ReadAsStringAsync());
        await HealthTestKit.WaitUntilAsync(async () => !await AcceptsAsync(proxy, "in"), "the inbound listener to stop accepting");
        using var outbound = proxy.Client("out");
        Assert.Equal(200, (int)(await outbound.GetAsync("/")).StatusCode);
        Assert.Equal(1, await proxy.StatAsync("listener_manager.listener_stopped"));
    }

    [Fact]
    public async Task DrainListeners_All_StopsEveryListener()
    {
        await using var backend = await TestBackend.StartEchoAsync();
        await using var proxy = await ProxyHarness.StartAsync(TwoListeners(backend.Address));
        using var admin = proxy.AdminClient();

        await PostAsync(admin, "/drain_listeners");

        await HealthTestKit.WaitUntilAsync(async () => !await AcceptsAsync(proxy, "in") && !await AcceptsAsync(proxy, "out"), "both listeners to stop accepting");
        Assert.Equal(2, await proxy.StatAsync("listener_manager.listener_stopped"));
        Assert.Equal(405, (int)(await admin.GetAsync("/drain_listeners")).StatusCode);
    }

    [Fact]
    public async Task DrainListeners_Graceful_AsksHttp1ClientsToClose_WhileStillAccepting()
    {
        await using var backend = await TestBackend.StartEchoAsync();
        await using var proxy = await ProxyHarness.StartAsync(TwoListeners(backend.Address));
        using var admin = proxy.AdminClient();
        using var client = proxy.Client("in");
        var before = await client.GetAsync("/");

        await PostAsync(admin, "/drain_listeners?graceful");
        var during = await client.GetAsync("/");

        Assert.False(before.Headers.ConnectionClose ?? false);
        Assert.True(during.Headers.ConnectionClose);
        Assert.Equal(200, (int)during.StatusCode);
        // The drain time (600 s by default) has not passed: the listener still accepts.
        Assert.True(await AcceptsAsync(proxy, "in"));
        Assert.Equal(0, await proxy.StatAsync("listener_manager.listener_stopped"));
    }

    /// <summary>A drain sends HTTP/2 clients a GOAWAY: the request in flight is answered, and the next one goes over a
    /// new connection.</summary>
    [Fact]
    public async Task DrainListeners_Graceful_SendsHttp2ClientsAGoAway()
    {
        await using var backend = await TestBackend.StartEchoAsync();
        await using var proxy = await ProxyHarness.StartAsync(TwoListeners(backend.Address));
        using var admin = proxy.AdminClient();
        using var client = proxy.Client("in", http2: true);
        using (var first = await client.GetAsync("/")) Assert.Equal(HttpVersion.Version20, first.Version);
        Assert.Equal(1, await proxy.StatAsync("http.in.downstream_cx_total"));

        await PostAsync(admin, "/drain_listeners?graceful");
        using (var during = await client.GetAsync("/")) Assert.Equal(200, (int)during.StatusCode);
        using (var after = await client.GetAsync("/")) Assert.Equal(200, (int)after.StatusCode);

        Assert.Equal(2, await proxy.StatAsync("http.in.downstream_cx_total"));
    }

    /// <summary>Envoy's default drain strategy, gradual: at the start of the drain no HTTP/1 response asks to close, and
    /// the share that does grows with the time gone (the decision itself: Listener/DrainSequenceTests).</summary>
    [Fact]
    public async Task DrainListeners_Graceful_Gradual_AsksNoClientToCloseAtTheStart()
    {
        var time = new ManualTimeProvider();
        await using var backend = await TestBackend.StartEchoAsync();
        await using var proxy = await ProxyHarness.StartAsync(TwoListeners(backend.Address), null, time, null, CSharpEnvoy.DataPlane.Listener.DrainStrategy.Gradual);
        using var admin = proxy.AdminClient();
        using var client = proxy.Client("in");

        await PostAsync(admin, "/drain_listeners?graceful");
        for (var i = 0; i < 20; i++)
        {
            using var response = await client.GetAsync("/");
            Assert.Equal(200, (int)response.StatusCode);
            Assert.False(response.Headers.ConnectionClose ?? false);
        }
    }
}
