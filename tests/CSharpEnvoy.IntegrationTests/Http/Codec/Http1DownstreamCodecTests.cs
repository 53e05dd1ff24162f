using System.Text;
using CSharpEnvoy.IntegrationTests.Infrastructure;

namespace CSharpEnvoy.IntegrationTests.Http.Codec;

/// <summary>The downstream HTTP/1.1 codec in the proxy, over real sockets: pipelined requests, and a connection
/// that moves to Kestrel half-way (an HTTP/1.0 request, a head split across writes) keeps being served.</summary>
public sealed class Http1DownstreamCodecTests
{
    private const string Routes = """
        - name: vh
          domains: ["*"]
          routes:
          - match: { path: "/a" }
            direct_response: { status: 200, body: { inline_string: "AAA" } }
          - match: { path: "/b" }
            direct_response: { status: 201, body: { inline_string: "BB" } }
          - match: { prefix: "/" }
            route: { cluster: backend }
        """;

    [Fact]
    public async Task PipelinedRequests_AreAnsweredInOrder_ThenAnHttp10OneClosesTheConnection()
    {
        await using var backend = await TestBackend.StartEchoAsync();
        await using var proxy = await ProxyHarness.StartAsync(Yaml.Bootstrap(Routes, Yaml.Cluster("backend", backend.Address),
            hcmExtra: "http_protocol_options: { accept_http_10: true }"));
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(10));
        using var tcp = await HttpTestUtil.ConnectAsync(proxy, "main", cts.Token);
        var stream = tcp.GetStream();

        // Three requests in one write; the last is HTTP/1.0, which Kestrel's HTTP/1.1 answers and then closes.
        await stream.WriteAsync(Encoding.ASCII.GetBytes(
            "GET /a HTTP/1.1\r\nHost: x\r\n\r\n" +
            "GET /echo HTTP/1.1\r\nHost: x\r\nx-probe: p1\r\n\r\n" +
            "GET /b HTTP/1.0\r\nHost: x\r\n\r\n"), cts.Token);
        var all = await ReadToEndAsync(stream, cts.Token);

        var a = all.IndexOf("HTTP/1.1 200 OK\r\n", StringComparison.Ordinal);
        var echo = all.IndexOf("x-echo-req-x-probe: p1", StringComparison.OrdinalIgnoreCase);
        var b = all.IndexOf("HTTP/1.1 201 Created\r\n", StringComparison.Ordinal);
        Assert.True(a == 0 && echo > a && b > echo, all);
        Assert.Contains("\r\n\r\nAAA", all);
        Assert.EndsWith("\r\n\r\nBB", all);
        Assert.Equal(3, await proxy.StatAsync("http.ingress_http.downstream_rq_total"));
    }

    /// <summary>Envoy's default: HTTP/1.0 gets 426; <c>accept_http_10</c> serves it, and a request without a host
    /// takes <c>default_host_for_http_10</c> (here the only virtual host that routes).</summary>
    [Theory]
    [InlineData("", "GET /a HTTP/1.0\r\nHost: x\r\n\r\n", "HTTP/1.1 426 Upgrade Required\r\n", "Upgrade Required")]
    [InlineData("http_protocol_options: { accept_http_10: true }", "GET /a HTTP/1.0\r\nHost: x\r\n\r\n", "HTTP/1.1 200 OK\r\n", "AAA")]
    [InlineData("http_protocol_options: { accept_http_10: true, default_host_for_http_10: only.example }", "GET /a HTTP/1.0\r\n\r\n", "HTTP/1.1 200 OK\r\n", "only")]
    [InlineData("http_protocol_options: { accept_http_10: true }", "GET /a HTTP/1.0\r\n\r\n", "HTTP/1.1 404 Not Found\r\n", "")]
    public async Task Http10_Is426UnlessAccepted(string hcmExtra, string request, string statusLine, string body)
    {
        var routes = Routes + """

            - name: only
              domains: ["only.example"]
              routes:
              - match: { prefix: "/" }
                direct_response: { status: 200, body: { inline_string: "only" } }
            """;
        routes = routes.Replace("domains: [\"*\"]", "domains: [\"x\"]", StringComparison.Ordinal);
        await using var proxy = await ProxyHarness.StartAsync(Yaml.Bootstrap(routes, Yaml.Cluster("backend", "127.0.0.1:9"), hcmExtra: hcmExtra));
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(10));
        using var tcp = await HttpTestUtil.ConnectAsync(proxy, "main", cts.Token);
        var stream = tcp.GetStream();
        await stream.WriteAsync(Encoding.ASCII.GetBytes(request), cts.Token);
        var all = await ReadToEndAsync(stream, cts.Token); // HTTP/1.0 without keep-alive: the connection closes

        Assert.StartsWith(statusLine, all);
        Assert.EndsWith("\r\n\r\n" + body, all);
    }

    [Fact]
    public async Task AHeadSplitAcrossWrites_IsServed_AndSoAreTheRequestsAfterIt()
    {
        await using var proxy = await ProxyHarness.StartAsync(Yaml.Bootstrap(Routes, Yaml.Cluster("backend", "127.0.0.1:9")));
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(10));
        using var tcp = await HttpTestUtil.ConnectAsync(proxy, "main", cts.Token);
        tcp.NoDelay = true;
        var stream = tcp.GetStream();

        await stream.WriteAsync(Encoding.ASCII.GetBytes("GET /a HTTP/1.1\r\nHost: x\r\n\r\n"), cts.Token);
        Assert.StartsWith("HTTP/1.1 200", await HttpTestUtil.ReadResponseHeadAsync(stream, cts.Token));
        await stream.ReadExactlyAsync(new byte[3], cts.Token);

        // Half a head, answered only once the rest arrives.
        await stream.WriteAsync(Encoding.ASCII.GetBytes("GET /b HTTP/1.1\r\nHo"), cts.Token);
        await stream.FlushAsync(cts.Token);
        var pending = HttpTestUtil.ReadResponseHeadAsync(stream, cts.Token);
        Assert.False(pending.IsCompleted);
        await stream.WriteAsync(Encoding.ASCII.GetBytes("st: x\r\n\r\n"), cts.Token);
        Assert.StartsWith("HTTP/1.1 201", await pending);
        await stream.ReadExactlyAsync(new byte[2], cts.Token);

        await stream.WriteAsync(Encoding.ASCII.GetBytes("GET /a HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"), cts.Token);
        var last = await ReadToEndAsync(stream, cts.Token);
        Assert.StartsWith("HTTP/1.1 200", last);
        Assert.EndsWith("\r\n\r\nAAA", last);
    }

    [Fact]
    public async Task AMalformedRequest_Gets400_AsFromKestrel()
    {
        await using var proxy = await ProxyHarness.StartAsync(Yaml.Bootstrap(Routes, Yaml.Cluster("backend", "127.0.0.1:9")));
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(10));
        using var tcp = await HttpTestUtil.ConnectAsync(proxy, "main", cts.Token);
        var stream = tcp.GetStream();
        await stream.WriteAsync(Encoding.ASCII.GetBytes("GET /a HTTP/1.1\r\nHost: x\r\n\r\nGET /a HTTP/1.1\r\nHost: x\r\nBad Name: 1\r\n\r\n"), cts.Token);
        var all = await ReadToEndAsync(stream, cts.Token);
        Assert.StartsWith("HTTP/1.1 200 OK\r\n", all);
        Assert.Contains("HTTP/1.1 400 Bad Request\r\n", all);
    }

    private static async Task<string> ReadToEndAsync(Stream stream, CancellationToken ct)
    {
        var sb = new StringBuilder();
        var buffer = new byte[4096];
        int n;
        while ((n = await stream.ReadAsync(buffer, ct)) > 0) sb.Append(Encoding.ASCII.GetString(buffer, 0, n));
        return sb.ToString();
    }
}
