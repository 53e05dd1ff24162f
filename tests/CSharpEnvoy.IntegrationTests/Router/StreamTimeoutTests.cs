using System.Net;
using CSharpEnvoy.IntegrationTests.Infrastructure;
using Microsoft.AspNetCore.Http;

namespace CSharpEnvoy.IntegrationTests.Router;

/// <summary>The connection manager's stream timers: stream_idle_timeout, request_timeout, and the route's
/// max_stream_duration.</summary>
public sealed class StreamTimeoutTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("csenvoy-timeouts").FullName;
    private string LogPath => Path.Combine(_dir, "access.log");

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private string Bootstrap(string backend, string hcmExtra, string routeExtra = "") => HttpFilters.FilterYaml.Bootstrap("", $$"""
        - name: vh
          domains: ["*"]
          routes:
          - match: { prefix: "/" }
            route:
              cluster: backend
              timeout: 20s
        {{Yaml.Indent(routeExtra, 6)}}
        """, Yaml.Cluster("backend", backend), LogPath, hcmExtra);

    /// <summary>A raw TCP connection to the listener, for requests no HTTP client would send.</summary>
    private static async Task<System.Net.Sockets.TcpClient> ConnectAsync(ProxyHarness proxy)
    {
        var tcp = new System.Net.Sockets.TcpClient();
        var address = proxy.ListenerAddress("main");
        await tcp.ConnectAsync(System.Net.IPAddress.Loopback, int.Parse(address[(address.LastIndexOf(':') + 1)..], System.Globalization.CultureInfo.InvariantCulture));
        return tcp;
    }

    /// <summary>A backend that answers only when released (or after 20 s).</summary>
    private static Task<TestBackend> SlowBackendAsync(TaskCompletionSource release) => TestBackend.StartAsync(async ctx =>
    {
        var body = new MemoryStream();
        await ctx.Request.Body.CopyToAsync(body);
        await release.Task.WaitAsync(TimeSpan.FromSeconds(20));
        await ctx.Response.WriteAsync("late");
    });

    [Fact]
    public async Task StreamIdleTimeout_FromTheConnectionManager_Is408StreamTimeout_FlagSI()
    {
        var release = new TaskCompletionSource();
        await using var backend = await SlowBackendAsync(release);
        await using (var proxy = await ProxyHarness.StartAsync(Bootstrap(backend.Address, "stream_idle_timeout: 0.3s")))
        {
            using var client = proxy.Client("main");
            using var response = await client.GetAsync("/");
            release.SetResult();
            Assert.Equal(HttpStatusCode.RequestTimeout, response.StatusCode);
            Assert.Equal("stream timeout", await response.Content.ReadAsStringAsync());
        }
        Assert.Equal("408 SI stream_idle_timeout", Assert.Single(await HttpFilters.FilterYaml.LogLinesAsync(LogPath, 1)));
    }

    [Fact]
    public async Task RequestTimeout_BodyNeverCompletes_Is408RequestTimeout()
    {
        var release = new TaskCompletionSource();
        await using var backend = await SlowBackendAsync(release);
        await using (var proxy = await ProxyHarness.StartAsync(Bootstrap(backend.Address, "request_timeout: 0.3s")))
        {
            // Half of a 10-byte body, then nothing: only request_timeout can end the request.
            using var tcp = await ConnectAsync(proxy);
            var stream = tcp.GetStream();
            await stream.WriteAsync("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\n12345"u8.ToArray());
            var buffer = new byte[4096];
            var text = "";
            using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(10));
            while (!text.Contains("request timeout", StringComparison.Ordinal))
            {
                var n = await stream.ReadAsync(buffer, cts.Token);
                if (n == 0) break;
                text += System.Text.Encoding.ASCII.GetString(buffer, 0, n);
            }
            Assert.StartsWith("HTTP/1.1 408 Request Timeout", text);
            Assert.EndsWith("request timeout", text);
            // The rest of the request never comes: as Envoy, the connection is closed after the reply.
            Assert.Equal(0, await stream.ReadAsync(buffer, cts.Token));
            release.SetResult();
            Assert.Equal(1, await proxy.StatAsync("http.ingress_http.downstream_rq_timeout"));
        }
        Assert.Equal("408 - request_overall_timeout", Assert.Single(await HttpFilters.FilterYaml.LogLinesAsync(LogPath, 1)));
    }

    /// <summary>A request body that sends its first bytes, then nothing until the test releases it.</summary>
    private sealed class StalledContent(TaskCompletionSource release) : HttpContent
    {
        protected override async Task SerializeToStreamAsync(Stream stream, TransportContext? context, CancellationToken cancellationToken)
        {
            await stream.WriteAsync("12345"u8.ToArray(), cancellationToken);
            await stream.FlushAsync(cancellationToken);
            await release.Task.WaitAsync(cancellationToken);
        }

        protected override Task SerializeToStreamAsync(Stream stream, TransportContext? context) => SerializeToStreamAsync(stream, context, CancellationToken.None);

        protected override bool TryComputeLength(out long length)
        {
            length = 0;
            return false;
        }
    }

    [Fact]
    public async Task RequestTimeout_Http2BodyStillArriving_ClientSees408RequestTimeout()
    {
        var release = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        await using var backend = await SlowBackendAsync(release);
        await using (var proxy = await ProxyHarness.StartAsync(Bootstrap(backend.Address, "request_timeout: 0.3s")))
        {
            using var client = proxy.Client("main", http2: true);
            using var request = new HttpRequestMessage(HttpMethod.Post, "/") { Version = HttpVersion.Version20, VersionPolicy = HttpVersionPolicy.RequestVersionExact, Content = new StalledContent(release) };
            using var response = await client.SendAsync(request).WaitAsync(TimeSpan.FromSeconds(10));
            Assert.Equal(HttpStatusCode.RequestTimeout, response.StatusCode);
            Assert.Equal("request timeout", await response.Content.ReadAsStringAsync());
            release.SetResult();
            Assert.Equal(1, await proxy.StatAsync("http.ingress_http.downstream_rq_timeout"));
        }
        Assert.Equal("408 - request_overall_timeout", Assert.Single(await HttpFilters.FilterYaml.LogLinesAsync(LogPath, 1)));
    }

    [Fact]
    public async Task RequestHeadersTimeout_HeadersNeverComplete_Is408AndTheConnectionCloses()
    {
        await using var backend = await TestBackend.StartEchoAsync();
        await using var proxy = await ProxyHarness.StartAsync(Bootstrap(backend.Address, "request_headers_timeout: 0.5s"));
        using var tcp = await ConnectAsync(proxy);
        var stream = tcp.GetStream();
        // The request line and one header, never the blank line that ends the headers.
        await stream.WriteAsync("GET / HTTP/1.1\r\nHost: x\r\n"u8.ToArray());
        var sw = System.Diagnostics.Stopwatch.StartNew();
        var buffer = new byte[4096];
        var text = "";
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(15));
        while (true)
        {
            var n = await stream.ReadAsync(buffer, cts.Token);
            if (n == 0) break; // closed
            text += System.Text.Encoding.ASCII.GetString(buffer, 0, n);
        }
        Assert.StartsWith("HTTP/1.1 408 Request Timeout", text);
        Assert.InRange(sw.ElapsedMilliseconds, 300, 10_000);
    }

    [Fact]
    public void RequestHeadersTimeout_Unset_IsOffAsInEnvoy_NotKestrels30Seconds()
    {
        var limits = new Microsoft.AspNetCore.Server.Kestrel.Core.KestrelServerLimits();
        CSharpEnvoy.DataPlane.Listener.ListenerHost.ConfigureLimits(limits, new CSharpEnvoy.Config.Model.Listener.HttpConnectionManagerModel { StatPrefix = "x", HttpFilters = [] });
        Assert.Equal(TimeSpan.FromDays(1), limits.RequestHeadersTimeout);
    }

    [Fact]
    public async Task RequestTimeout_DisarmedOnceTheRequestIsComplete()
    {
        await using var backend = await TestBackend.StartAsync(async ctx =>
        {
            await ctx.Request.Body.CopyToAsync(Stream.Null);
            await Task.Delay(600); // longer than request_timeout, after the request ended
            await ctx.Response.WriteAsync("ok");
        });
        await using var proxy = await ProxyHarness.StartAsync(Bootstrap(backend.Address, "request_timeout: 0.3s"));
        using var client = proxy.Client("main");
        using var response = await client.PostAsync("/", new StringContent("body"));
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("ok", await response.Content.ReadAsStringAsync());
    }

    [Fact]
    public async Task MaxStreamDuration_CompleteRequest_Is504DownstreamDurationTimeout_FlagDT()
    {
        var release = new TaskCompletionSource();
        await using var backend = await SlowBackendAsync(release);
        await using (var proxy = await ProxyHarness.StartAsync(Bootstrap(backend.Address, "", "max_stream_duration: { max_stream_duration: 0.3s }")))
        {
            using var client = proxy.Client("main");
            using var response = await client.GetAsync("/");
            release.SetResult();
            Assert.Equal(HttpStatusCode.GatewayTimeout, response.StatusCode);
            Assert.Equal("downstream duration timeout", await response.Content.ReadAsStringAsync());
            Assert.Equal(1, await proxy.StatAsync("http.ingress_http.downstream_rq_max_duration_reached"));
            Assert.Equal(0, await proxy.StatAsync("cluster.backend.upstream_rq_timeout"));
        }
        Assert.Equal("504 DT max_duration_timeout", Assert.Single(await HttpFilters.FilterYaml.LogLinesAsync(LogPath, 1)));
    }
}
