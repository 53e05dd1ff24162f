using System.Net;
using System.Text;
using CSharpEnvoy.IntegrationTests.Infrastructure;

namespace CSharpEnvoy.IntegrationTests.Http;

/// <summary>A HEAD request to a direct_response route gets the headers (with the body's length) and no body.</summary>
public sealed class DirectResponseHeadTests
{
    private const string Routes = """
        - name: vh
          domains: ["*"]
          routes:
          - match: { path: "/direct" }
            direct_response: { status: 200, body: { inline_string: "teapot" } }
        """;

    [Fact]
    public async Task Head_OnDirectResponse_SendsHeadersOnly()
    {
        await using var proxy = await ProxyHarness.StartAsync(Yaml.Bootstrap(Routes));
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(10));
        using var tcp = await HttpTestUtil.ConnectAsync(proxy, "main", cts.Token);
        var stream = tcp.GetStream();

        // HEAD, then GET on the same connection: if the HEAD response carried a body, it would be read as the start
        // of the GET's response.
        await stream.WriteAsync(Encoding.ASCII.GetBytes("HEAD /direct HTTP/1.1\r\nHost: x\r\n\r\n"), cts.Token);
        var head = await HttpTestUtil.ReadResponseHeadAsync(stream, cts.Token);
        await stream.WriteAsync(Encoding.ASCII.GetBytes("GET /direct HTTP/1.1\r\nHost: x\r\n\r\n"), cts.Token);
        var get = await HttpTestUtil.ReadResponseHeadAsync(stream, cts.Token);
        var body = new byte[6];
        await stream.ReadExactlyAsync(body, cts.Token);

        Assert.StartsWith("HTTP/1.1 200", head);
        Assert.Contains("content-length: 6\r\n", head, StringComparison.OrdinalIgnoreCase);
        Assert.Contains("content-type: text/plain\r\n", head, StringComparison.OrdinalIgnoreCase);
        Assert.StartsWith("HTTP/1.1 200", get);
        Assert.Equal("teapot", Encoding.ASCII.GetString(body));
    }

    [Fact]
    public async Task Head_OnDirectResponse_Http2()
    {
        await using var proxy = await ProxyHarness.StartAsync(Yaml.Bootstrap(Routes));
        using var client = proxy.Client("main", http2: true);

        using var request = new HttpRequestMessage(HttpMethod.Head, "/direct") { Version = HttpVersion.Version20, VersionPolicy = HttpVersionPolicy.RequestVersionExact };
        using var response = await client.SendAsync(request);

        Assert.Equal(HttpVersion.Version20, response.Version);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal(6, response.Content.Headers.ContentLength);
        Assert.Empty(await response.Content.ReadAsByteArrayAsync());
    }
}
