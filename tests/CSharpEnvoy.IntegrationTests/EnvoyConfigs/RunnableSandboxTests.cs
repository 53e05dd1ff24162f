using System.Net;
using System.Net.WebSockets;
using System.Text;
using CSharpEnvoy.IntegrationTests.Infrastructure;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;

namespace CSharpEnvoy.IntegrationTests.EnvoyConfigs;

/// <summary>
/// Sandbox configs csenvoy fully supports today: each is loaded as it is (only hosts and ports rewritten, see
/// <see cref="EnvoyConfigRewriter"/>), real Kestrel backends stand in for the sandbox's services, and the proxy must
/// answer the way the sandbox expects.
/// </summary>
public sealed class RunnableSandboxTests
{
    /// <summary>Unnamed listeners are named after their address; after the rewrite that is this.</summary>
    private const string UnnamedListener = "#0"; // the first listener (unnamed listeners get a UUID, as in Envoy)

    private static readonly TimeSpan s_timeout = TimeSpan.FromSeconds(10);

    // ----- front-proxy: the two service envoys behind the front proxy -----

    [Fact]
    public async Task FrontProxy_ServiceEnvoys_EachRouteItsOwnServicePath()
    {
        // front-proxy/envoy.yaml itself has a TLS listener (see UnsupportedSandboxTests); its two upstreams are
        // service-envoy.yaml and service-envoy-2.yaml, each forwarding /service/N to its local service.
        await using var service1 = await TestBackend.StartEchoAsync("service1");
        await using var service2 = await TestBackend.StartEchoAsync("service2");
        await using var envoy1 = await StartAsync("front-proxy/service-envoy.yaml", ("service1", service1));
        await using var envoy2 = await StartAsync("front-proxy/service-envoy-2.yaml", ("service2", service2));
        using var client1 = envoy1.Client(UnnamedListener);
        using var client2 = envoy2.Client(UnnamedListener);

        using var one = await client1.GetAsync("/service/1");
        using var two = await client2.GetAsync("/service/2?x=1");
        using var twoOnEnvoy1 = await client1.GetAsync("/service/2");

        Assert.Equal(HttpStatusCode.OK, one.StatusCode);
        Assert.Equal("service1 GET /service/1 body=0", await one.Content.ReadAsStringAsync());
        Assert.Equal(HttpStatusCode.OK, two.StatusCode);
        Assert.Equal("service2 GET /service/2?x=1 body=0", await two.Content.ReadAsStringAsync());
        // Each service envoy only knows its own prefix.
        Assert.Equal(HttpStatusCode.NotFound, twoOnEnvoy1.StatusCode);
        Assert.Equal(1, await envoy1.StatAsync("http.service_envoy_1.downstream_rq_2xx"));
        Assert.Equal(1, await envoy1.StatAsync("http.service_envoy_1.no_route"));
        Assert.Equal(1, await envoy1.StatAsync("cluster.service1.upstream_rq_200"));
        Assert.Equal(1, await envoy2.StatAsync("cluster.service2.upstream_rq_200"));
    }

    // ----- double-proxy: the plain HTTP proxy in front of the app -----

    [Fact]
    public async Task DoubleProxy_PlainListener_ProxiesEverythingToTheApp()
    {
        await using var app = await TestBackend.StartEchoAsync("app");
        await using var proxy = await StartAsync("double-proxy/envoy.yaml", ("service1", app));
        using var client = proxy.Client(UnnamedListener);

        using var root = await client.GetAsync("/");
        using var post = await client.PostAsync("/api/items", new StringContent("hello"));

        Assert.Equal(HttpStatusCode.OK, root.StatusCode);
        Assert.Equal("app GET / body=0", await root.Content.ReadAsStringAsync());
        Assert.Equal("app POST /api/items body=5", await post.Content.ReadAsStringAsync());
        Assert.Equal(proxy.ListenerAddress(UnnamedListener), root.Headers.GetValues("x-echo-host").Single());
    }

    // ----- websocket: upgrades allowed by the connection manager, and by the route -----

    [Fact]
    public async Task WebSocket_HcmUpgradeConfig_PassesWebSocketThrough()
    {
        await using var service = await StartWebSocketEchoAsync();
        await using var proxy = await StartAsync("websocket/envoy-ws.yaml", ("service_ws", service));

        var echoed = await WebSocketRoundTripAsync(proxy, "/", "hello");
        using var client = proxy.Client(UnnamedListener);
        using var plain = await client.GetAsync("/plain");

        Assert.Equal("echo: hello", echoed);
        Assert.Equal("http GET /plain", await plain.Content.ReadAsStringAsync());
    }

    [Fact]
    public async Task WebSocketRoute_RouteUpgradeConfig_PassesWebSocketOnWs_AndAnswersDirectlyElsewhere()
    {
        await using var service = await StartWebSocketEchoAsync();
        await using var proxy = await StartAsync("websocket/envoy-ws-route.yaml", ("service_ws", service));
        using var client = proxy.Client(UnnamedListener);

        var echoed = await WebSocketRoundTripAsync(proxy, "/ws", "over the route");
        using var root = await client.GetAsync("/");
        // A websocket-enabled route still serves requests without upgrade headers as plain HTTP.
        using var plainWs = await client.GetAsync("/ws/info");

        Assert.Equal("echo: over the route", echoed);
        Assert.Equal(HttpStatusCode.OK, root.StatusCode);
        Assert.Equal("NotWebSocket\n", await root.Content.ReadAsStringAsync());
        Assert.Equal("http GET /ws/info", await plainWs.Content.ReadAsStringAsync());
    }

    // ----- dynamic-config-fs: the listener and cluster of its LDS/CDS files -----

    [Fact]
    public async Task DynamicConfigFs_ResourceFiles_ServeAsStaticResources()
    {
        // The bootstrap (dynamic-config-fs/envoy.yaml) reads these files through dynamic_resources, which csenvoy
        // refuses (see UnsupportedSandboxTests). The resources themselves are plain listener/cluster configs; loaded
        // as static resources they must work. lds.yaml gives 'filters' as a single object, which Envoy accepts.
        await using var service1 = await TestBackend.StartEchoAsync("service1");
        var yaml = EnvoyConfigRewriter.StaticBootstrapFromResourceFiles(
            new[] { EnvoyConfigCorpus.Read("dynamic-config-fs/configs/lds.yaml"), EnvoyConfigCorpus.Read("dynamic-config-fs/configs/cds.yaml") },
            new Dictionary<string, string> { ["example_proxy_cluster"] = service1.Address });
        await using var proxy = await ProxyHarness.StartAsync(yaml);
        using var client = proxy.Client("listener_0");

        using var response = await client.GetAsync("/anything");

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("service1 GET /anything body=0", await response.Content.ReadAsStringAsync());
        Assert.Equal(1, await proxy.StatAsync("cluster.example_proxy_cluster.upstream_rq_200"));
    }

    // ----- helpers -----

    internal static async Task<ProxyHarness> StartAsync(string corpusFile, params (string Cluster, TestBackend Backend)[] backends)
    {
        var yaml = EnvoyConfigRewriter.RewriteBootstrap(EnvoyConfigCorpus.Read(corpusFile),
            backends.ToDictionary(b => b.Cluster, b => b.Backend.Address));
        return await ProxyHarness.StartAsync(yaml);
    }

    /// <summary>The sandbox's websocket service: echoes each text message back with an "echo: " prefix; plain HTTP
    /// requests get "http METHOD PATH".</summary>
    internal static Task<TestBackend> StartWebSocketEchoAsync() => TestBackend.StartAppAsync(app =>
    {
        app.UseWebSockets();
        app.Run(async ctx =>
        {
            if (!ctx.WebSockets.IsWebSocketRequest)
            {
                await ctx.Response.WriteAsync($"http {ctx.Request.Method} {ctx.Request.Path}");
                return;
            }
            using var ws = await ctx.WebSockets.AcceptWebSocketAsync();
            var buffer = new byte[4096];
            while (true)
            {
                var received = await ws.ReceiveAsync(buffer, ctx.RequestAborted);
                if (received.MessageType == WebSocketMessageType.Close)
                {
                    await ws.CloseAsync(WebSocketCloseStatus.NormalClosure, null, ctx.RequestAborted);
                    return;
                }
                var reply = Encoding.UTF8.GetBytes("echo: " + Encoding.UTF8.GetString(buffer, 0, received.Count));
                await ws.SendAsync(reply, WebSocketMessageType.Text, true, ctx.RequestAborted);
            }
        });
    });

    /// <summary>Opens a WebSocket through the proxy's unnamed listener, sends one text message, returns the reply.</summary>
    internal static async Task<string> WebSocketRoundTripAsync(ProxyHarness proxy, string path, string message)
    {
        using var cts = new CancellationTokenSource(s_timeout);
        using var ws = new ClientWebSocket();
        ws.Options.Proxy = null;
        await ws.ConnectAsync(new Uri($"ws://{proxy.ListenerAddress(UnnamedListener)}{path}"), cts.Token);
        await ws.SendAsync(Encoding.UTF8.GetBytes(message), WebSocketMessageType.Text, true, cts.Token);
        var buffer = new byte[4096];
        var received = await ws.ReceiveAsync(buffer, cts.Token);
        var text = Encoding.UTF8.GetString(buffer, 0, received.Count);
        await ws.CloseAsync(WebSocketCloseStatus.NormalClosure, "done", cts.Token);
        return text;
    }
}
