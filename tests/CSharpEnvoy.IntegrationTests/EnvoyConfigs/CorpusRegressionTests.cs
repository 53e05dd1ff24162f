using System.Net;
using System.Net.WebSockets;
using CSharpEnvoy.IntegrationTests.Infrastructure;

namespace CSharpEnvoy.IntegrationTests.EnvoyConfigs;

/// <summary>
/// Corpus configs on which csenvoy once diverged from Envoy, in the loader or the proxy. Each test asserts Envoy's
/// behaviour so the divergence cannot come back.
/// </summary>
public sealed class CorpusRegressionTests
{
    private const string UnnamedListener = "#0"; // the first listener (unnamed listeners get a UUID, as in Envoy)

    [Fact]
    public void Rbac_MatcherForm_IsRefusedWithItsPath()
    {
        // The RBAC filter is implemented with rules; this sandbox uses the matcher form, which is not.
        UnsupportedSandboxTests.AssertErrors("rbac/envoy.yaml",
            "static_resources.listeners[0].filter_chains[0].filters[0].typed_config.http_filters[0].typed_config.matcher: xds.type.matcher.v3.Matcher is not supported");
    }

    [Fact]
    public void Redis_MaglevIsAccepted_RedisProxyIsRefused()
    {
        UnsupportedSandboxTests.AssertErrors("redis/envoy.yaml",
            "static_resources.listeners[0].filter_chains[0].filters[0]: unsupported network filter 'envoy.filters.network.redis_proxy' (type 'type.googleapis.com/envoy.extensions.filters.network.redis_proxy.v3.RedisProxy')");
    }

    [Fact]
    public void GolangNetwork_RefusedClusterTypeAndLbPolicy_AreNamedAsInTheConfig()
    {
        UnsupportedSandboxTests.AssertErrors("golang-network/envoy.yaml",
            "static_resources.clusters[0].type: cluster type ORIGINAL_DST is not supported yet (STATIC, STRICT_DNS, LOGICAL_DNS and EDS are)",
            "static_resources.clusters[0].lb_policy: lb_policy CLUSTER_PROVIDED is not supported yet (ROUND_ROBIN, LEAST_REQUEST, RANDOM, RING_HASH and MAGLEV are)",
            "static_resources.listeners[0].filter_chains[0].filters[0]: unsupported network filter 'envoy.filters.network.golang' (type 'type.googleapis.com/envoy.extensions.filters.network.golang.v3alpha.Config')");
    }

    [Fact]
    public void Udp_IsRefusedForUdpAndListenerFiltersOnly()
    {
        UnsupportedSandboxTests.AssertErrors("udp/envoy.yaml",
            "static_resources.listeners[0].listener_filters[0]: unsupported listener filter 'envoy.filters.udp_listener.udp_proxy' (type 'type.googleapis.com/envoy.extensions.filters.udp.udp_proxy.v3.UdpProxyConfig')",
            "static_resources.listeners[0].address.socket_address.protocol: only TCP socket addresses are supported");
    }

    [Fact]
    public void FrontProxy_TwoListenersOnPortZero_AreNotDuplicates()
    {
        // Envoy names an unnamed listener with a UUID and skips the duplicate-address check for listeners that bind
        // port 0, so the rewritten front proxy (one plain and one TLS listener) loads.
        var yaml = EnvoyConfigRewriter.RewriteBootstrap(EnvoyConfigCorpus.Read("front-proxy/envoy.yaml"));

        var errors = ProxyHarness.Validate(yaml);

        Assert.Empty(errors.Errors.Select(e => e.ToString()));
    }

    [Fact]
    public async Task WebSocketRoute_UpgradeToTheDirectResponseRoute_IsForbidden()
    {
        await using var service = await RunnableSandboxTests.StartWebSocketEchoAsync();
        await using var proxy = await RunnableSandboxTests.StartAsync("websocket/envoy-ws-route.yaml", ("service_ws", service));
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(10));
        using var ws = new ClientWebSocket();
        ws.Options.Proxy = null;
        ws.Options.CollectHttpResponseDetails = true;

        await Assert.ThrowsAsync<WebSocketException>(() => ws.ConnectAsync(new Uri($"ws://{proxy.ListenerAddress(UnnamedListener)}/"), cts.Token));

        Assert.Equal(HttpStatusCode.Forbidden, ws.HttpStatusCode);
    }
}
