using System.Net;
using System.Text;
using CSharpEnvoy.IntegrationTests.Infrastructure;

namespace CSharpEnvoy.IntegrationTests.Http;

/// <summary><c>common_http_protocol_options.idle_timeout</c> downstream (connection manager) and upstream (cluster
/// HttpProtocolOptions).</summary>
public sealed class IdleTimeoutTests
{
    [Fact]
    public async Task Downstream_AnIdleKeepAliveConnectionIsClosed()
    {
        await using var backend = await TestBackend.StartEchoAsync();
        await using var proxy = await ProxyHarness.StartAsync(Yaml.Bootstrap(Yaml.RoutesToBackend, Yaml.Cluster("backend", backend.Address),
            hcmExtra: "common_http_protocol_options: { idle_timeout: 0.3s }"));
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(10));
        using var tcp = await HttpTestUtil.ConnectAsync(proxy, "main", cts.Token);
        var stream = tcp.GetStream();
        await stream.WriteAsync(Encoding.ASCII.GetBytes("GET / HTTP/1.1\r\nHost: x\r\n\r\n"), cts.Token);
        var head = await HttpTestUtil.ReadResponseHeadAsync(stream, cts.Token);
        Assert.StartsWith("HTTP/1.1 200", head);

        // Then nothing: the proxy closes the connection (read returns 0) well before the 10 s bound.
        var buffer = new byte[4096];
        int n;
        while ((n = await stream.ReadAsync(buffer, cts.Token)) > 0)
        {
            // the rest of the body
        }
        Assert.Equal(0, n);
    }

    [Fact]
    public async Task Upstream_AnIdlePooledConnectionIsClosed()
    {
        await using var backend = await TestBackend.StartEchoAsync();
        var cluster = Yaml.Cluster("backend", backend.Address) + """

              typed_extension_protocol_options:
                envoy.extensions.upstreams.http.v3.HttpProtocolOptions:
                  "@type": type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions
                  common_http_protocol_options: { idle_timeout: 0.3s }
                  explicit_http_config: { http_protocol_options: {} }
            """;
        await using var proxy = await ProxyHarness.StartAsync(Yaml.Bootstrap(Yaml.RoutesToBackend, cluster));
        using var client = proxy.Client("main");
        using var response = await client.GetAsync("/");
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal(1, await proxy.StatAsync("cluster.backend.upstream_cx_total"));

        var deadline = DateTime.UtcNow.AddSeconds(10);
        while (await proxy.StatAsync("cluster.backend.upstream_cx_active") != 0)
        {
            Assert.True(DateTime.UtcNow < deadline, "the idle upstream connection was never closed");
            await Task.Delay(20);
        }
    }

    [Fact]
    public void NegativeIdleTimeouts_AreRefused()
    {
        var errors = ProxyHarness.Validate(Yaml.Bootstrap(Yaml.RoutesToBackend, Yaml.Cluster("backend", "127.0.0.1:1"),
            hcmExtra: "common_http_protocol_options: { idle_timeout: -1s }"));
        Assert.Contains(errors.Errors, e => e.Path.EndsWith("common_http_protocol_options.idle_timeout", StringComparison.Ordinal));
    }
}
