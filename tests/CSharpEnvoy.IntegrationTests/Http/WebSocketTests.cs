using System.Net;
using System.Net.WebSockets;
using System.Text;
using CSharpEnvoy.IntegrationTests.Infrastructure;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;

namespace CSharpEnvoy.IntegrationTests.Http;

/// <summary>HTTP/1.1 WebSocket upgrades through the proxy (Envoy's "HTTP upgrades": upgrade_configs on the
/// connection manager and per route).</summary>
public sealed class WebSocketTests
{
    /// <summary>A backend that greets, then echoes every text message back as "echo:&lt;text&gt;".</summary>
    private static Task<TestBackend> StartWebSocketBackendAsync(StrongBox<int> upgrades) => TestBackend.StartAppAsync(app =>
    {
        app.UseWebSockets();
        app.Run(async ctx =>
        {
            if (!ctx.WebSockets.IsWebSocketRequest)
            {
                ctx.Response.StatusCode = 400;
                return;
            }
            Interlocked.Increment(ref upgrades.Value);
            using var ws = await ctx.WebSockets.AcceptWebSocketAsync();
            var ct = ctx.RequestAborted;
            await ws.SendAsync("welcome"u8.ToArray(), WebSocketMessageType.Text, true, ct);
            var buffer = new byte[4096];
            while (true)
            {
                var r = await ws.ReceiveAsync(buffer, ct);
                if (r.MessageType == WebSocketMessageType.Close)
                {
                    await ws.CloseAsync(WebSocketCloseStatus.NormalClosure, "bye", ct);
                    return;
                }
                var reply = Encoding.UTF8.GetBytes("echo:" + Encoding.UTF8.GetString(buffer, 0, r.Count));
                await ws.SendAsync(reply, WebSocketMessageType.Text, true, ct);
            }
        });
    });

    private static string Routes(string routeExtra = "") => $$"""
        - name: vh
          domains: ["*"]
          routes:
          - match: { prefix: "/" }
            route:
              cluster: backend
        {{Yaml.Indent(routeExtra, 6)}}
        """;

    private static HttpMessageInvoker Invoker() => new(new SocketsHttpHandler { UseProxy = false });

    private static async Task<string> ReceiveTextAsync(ClientWebSocket ws, CancellationToken ct)
    {
        var buffer = new byte[4096];
        var r = await ws.ReceiveAsync(buffer, ct);
        Assert.Equal(WebSocketMessageType.Text, r.MessageType);
        Assert.True(r.EndOfMessage);
        return Encoding.UTF8.GetString(buffer, 0, r.Count);
    }

    private static Task SendTextAsync(ClientWebSocket ws, string text, CancellationToken ct) =>
        ws.SendAsync(Encoding.UTF8.GetBytes(text), WebSocketMessageType.Text, true, ct);

    [Fact]
    public async Task Upgrade_Enabled_ExchangesMessagesBothWays()
    {
        var upgrades = new StrongBox<int>();
        await using var backend = await StartWebSocketBackendAsync(upgrades);
        await using var proxy = await ProxyHarness.StartAsync(Yaml.Bootstrap(Routes(), Yaml.Cluster("backend", backend.Address),
            "upgrade_configs: [{ upgrade_type: websocket }]"));
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(15));
        using var invoker = Invoker();
        using var ws = new ClientWebSocket();
        ws.Options.CollectHttpResponseDetails = true;

        await ws.ConnectAsync(new Uri($"ws://{proxy.ListenerAddress("main")}/chat"), invoker, cts.Token);

        Assert.Equal(HttpStatusCode.SwitchingProtocols, ws.HttpStatusCode);
        Assert.Equal("welcome", await ReceiveTextAsync(ws, cts.Token)); // server → client first
        await SendTextAsync(ws, "hello", cts.Token);
        Assert.Equal("echo:hello", await ReceiveTextAsync(ws, cts.Token));
        await SendTextAsync(ws, "second", cts.Token);
        Assert.Equal("echo:second", await ReceiveTextAsync(ws, cts.Token));
        await ws.CloseAsync(WebSocketCloseStatus.NormalClosure, "done", cts.Token);
        Assert.Equal(WebSocketState.Closed, ws.State);
        Assert.Equal(1, upgrades.Value);
        Assert.Equal(1, await proxy.StatAsync("cluster.backend.upstream_rq_101"));
    }

    [Fact]
    public async Task Upgrade_OutlivesTheRouteTimeout()
    {
        // Envoy arms the route timeout when the downstream request ends, which an upgraded stream does not do, so an
        // established WebSocket is not cut by it. The pause below is the thing under test, not synchronisation.
        var upgrades = new StrongBox<int>();
        await using var backend = await StartWebSocketBackendAsync(upgrades);
        await using var proxy = await ProxyHarness.StartAsync(Yaml.Bootstrap(Routes("timeout: 0.3s"), Yaml.Cluster("backend", backend.Address),
            "upgrade_configs: [{ upgrade_type: websocket }]"));
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(15));
        using var invoker = Invoker();
        using var ws = new ClientWebSocket();

        await ws.ConnectAsync(new Uri($"ws://{proxy.ListenerAddress("main")}/chat"), invoker, cts.Token);
        Assert.Equal("welcome", await ReceiveTextAsync(ws, cts.Token));
        await Task.Delay(TimeSpan.FromSeconds(0.8), cts.Token);
        await SendTextAsync(ws, "still there?", cts.Token);

        Assert.Equal("echo:still there?", await ReceiveTextAsync(ws, cts.Token));
        await ws.CloseAsync(WebSocketCloseStatus.NormalClosure, "done", cts.Token);
        Assert.Equal(0, await proxy.StatAsync("cluster.backend.upstream_rq_timeout"));
    }

    [Fact]
    public async Task Upgrade_NotConfigured_Is403()
    {
        var upgrades = new StrongBox<int>();
        await using var backend = await StartWebSocketBackendAsync(upgrades);
        await using var proxy = await ProxyHarness.StartAsync(Yaml.Bootstrap(Routes(), Yaml.Cluster("backend", backend.Address)));
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(15));
        using var invoker = Invoker();
        using var ws = new ClientWebSocket();
        ws.Options.CollectHttpResponseDetails = true;

        await Assert.ThrowsAsync<WebSocketException>(() => ws.ConnectAsync(new Uri($"ws://{proxy.ListenerAddress("main")}/chat"), invoker, cts.Token));

        Assert.Equal(HttpStatusCode.Forbidden, ws.HttpStatusCode);
        Assert.Equal(0, upgrades.Value);
        Assert.Equal(0, await proxy.StatAsync("cluster.backend.upstream_rq_total"));
    }

    [Fact]
    public async Task Upgrade_DisabledOnTheRoute_Is403_WhileTheConnectionManagerAllowsIt()
    {
        var upgrades = new StrongBox<int>();
        await using var backend = await StartWebSocketBackendAsync(upgrades);
        var vhosts = """
            - name: vh
              domains: ["*"]
              routes:
              - match: { prefix: "/no-ws" }
                route:
                  cluster: backend
                  upgrade_configs: [{ upgrade_type: WebSocket, enabled: false }]
              - match: { prefix: "/" }
                route: { cluster: backend }
            """;
        await using var proxy = await ProxyHarness.StartAsync(Yaml.Bootstrap(vhosts, Yaml.Cluster("backend", backend.Address),
            "upgrade_configs: [{ upgrade_type: websocket }]"));
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(15));
        using var invoker = Invoker();
        using var refused = new ClientWebSocket();
        refused.Options.CollectHttpResponseDetails = true;
        using var allowed = new ClientWebSocket();

        await Assert.ThrowsAsync<WebSocketException>(() => refused.ConnectAsync(new Uri($"ws://{proxy.ListenerAddress("main")}/no-ws"), invoker, cts.Token));
        await allowed.ConnectAsync(new Uri($"ws://{proxy.ListenerAddress("main")}/ok"), invoker, cts.Token);

        Assert.Equal(HttpStatusCode.Forbidden, refused.HttpStatusCode);
        Assert.Equal("welcome", await ReceiveTextAsync(allowed, cts.Token));
        await allowed.CloseAsync(WebSocketCloseStatus.NormalClosure, "done", cts.Token);
        Assert.Equal(1, upgrades.Value);
    }

    [Fact]
    public async Task Upgrade_EnabledOnlyOnTheRoute_IsAllowed()
    {
        // Envoy's createUpgradeFilterChain: a route-level enabled entry allows an upgrade the connection manager
        // does not list.
        var upgrades = new StrongBox<int>();
        await using var backend = await StartWebSocketBackendAsync(upgrades);
        await using var proxy = await ProxyHarness.StartAsync(Yaml.Bootstrap(Routes("upgrade_configs: [{ upgrade_type: websocket }]"),
            Yaml.Cluster("backend", backend.Address)));
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(15));
        using var invoker = Invoker();
        using var ws = new ClientWebSocket();

        await ws.ConnectAsync(new Uri($"ws://{proxy.ListenerAddress("main")}/chat"), invoker, cts.Token);

        Assert.Equal("welcome", await ReceiveTextAsync(ws, cts.Token));
        await ws.CloseAsync(WebSocketCloseStatus.NormalClosure, "done", cts.Token);
    }

    /// <summary>A mutable int shared with the backend's handler.</summary>
    private sealed class StrongBox<T>
    {
        public T Value = default!;
    }
}
