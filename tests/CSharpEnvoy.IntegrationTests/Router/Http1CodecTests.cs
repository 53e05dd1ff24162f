using System.Net;
using System.Text;
using CSharpEnvoy.IntegrationTests.Http;
using CSharpEnvoy.IntegrationTests.Infrastructure;
using Microsoft.AspNetCore.Http;

namespace CSharpEnvoy.IntegrationTests.Router;

/// <summary>
/// csenvoy's own upstream HTTP/1.1 codec (Upstream/Http1) against an upstream that writes raw bytes: body framings,
/// interim responses, malformed responses, connections the upstream closed, and what the request head carries.
/// </summary>
public sealed class Http1CodecTests
{
    private static Task<ProxyHarness> StartProxyAsync(RawUpstream upstream, string clusterExtra = "") =>
        ProxyHarness.StartAsync(Yaml.Bootstrap(Yaml.RoutesToBackend, Yaml.Cluster("backend", upstream.Address) + clusterExtra));

    [Fact]
    public async Task ChunkedResponse_IsDecoded_AndItsTrailersReachAnHttp2Client()
    {
        await using var upstream = RawUpstream.Start(async c =>
        {
            while (await c.ReadRequestAsync() is not null)
                await c.WriteAsync("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Type: text/plain\r\n\r\n" +
                    "5\r\nhello\r\n6;ext=1\r\n world\r\n0\r\nx-checksum: abc\r\n\r\n");
        });
        await using var proxy = await StartProxyAsync(upstream);
        using var client = proxy.Client("main", http2: true);
        for (var i = 0; i < 2; i++)
        {
            using var response = await client.GetAsync("/");
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
            Assert.Equal("hello world", await response.Content.ReadAsStringAsync());
            Assert.Equal("abc", Assert.Single(response.TrailingHeaders.GetValues("x-checksum")));
        }
        // The connection was reused: the chunked body ended exactly where the codec stopped reading.
        Assert.Equal(1, upstream.Connections);
    }

    [Fact]
    public async Task ResponseWithoutLength_IsReadUntilClose_AndItsConnectionIsNotReused()
    {
        await using var upstream = RawUpstream.Start(async c =>
        {
            if (await c.ReadRequestAsync() is null) return;
            await c.WriteAsync("HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nall of it");
        });
        await using var proxy = await StartProxyAsync(upstream);
        using var client = proxy.Client("main");
        for (var i = 0; i < 2; i++)
            Assert.Equal("all of it", await client.GetStringAsync("/"));
        Assert.Equal(2, upstream.Connections);
    }

    [Fact]
    public async Task InterimResponses_AreSkipped()
    {
        await using var upstream = RawUpstream.Start(async c =>
        {
            while (await c.ReadRequestAsync() is not null)
                await c.WriteAsync("HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </style.css>\r\n\r\n" +
                    "HTTP/1.1 201 Created\r\nContent-Length: 2\r\n\r\nok");
        });
        await using var proxy = await StartProxyAsync(upstream);
        using var client = proxy.Client("main");
        using var response = await client.GetAsync("/");
        Assert.Equal(HttpStatusCode.Created, response.StatusCode);
        Assert.Equal("ok", await response.Content.ReadAsStringAsync());
        Assert.False(response.Headers.Contains("Link"));
    }

    [Theory]
    [InlineData("HTTP/1.1 2x0 OK\r\nContent-Length: 0\r\n\r\n")]
    [InlineData("HTTP/1.1 200 OK\r\nno colon here\r\n\r\n")]
    [InlineData("HTTP/1.1 200 OK\r\nbad name: v\r\n\r\n")]
    [InlineData("HTTP/1.1 200 OK\r\nContent-Length: 1x\r\n\r\n")]
    [InlineData("HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\nab")]
    [InlineData("HTTP/2 200\r\n\r\n")]
    [InlineData("HTTP/1.1 101 Switching Protocols\r\n\r\n")]
    public async Task MalformedResponse_Is502UpstreamProtocolError(string raw)
    {
        await using var upstream = RawUpstream.Start(async c =>
        {
            if (await c.ReadRequestAsync() is null) return;
            await c.WriteAsync(raw);
        });
        await using var proxy = await StartProxyAsync(upstream);
        using var client = proxy.Client("main");
        using var response = await client.GetAsync("/");
        Assert.Equal(HttpStatusCode.BadGateway, response.StatusCode);
        Assert.Equal("upstream connect error or disconnect/reset before headers. reset reason: protocol error",
            await response.Content.ReadAsStringAsync());
        Assert.Equal(1, await proxy.StatAsync("cluster.backend.upstream_rq_502"));
    }

    [Fact]
    public async Task ResponseHeadTooLarge_Is502()
    {
        var big = new string('a', 70 * 1024);
        await using var upstream = RawUpstream.Start(async c =>
        {
            if (await c.ReadRequestAsync() is null) return;
            await c.WriteAsync("HTTP/1.1 200 OK\r\nx-big: " + big + "\r\nContent-Length: 0\r\n\r\n");
        });
        await using var proxy = await StartProxyAsync(upstream);
        using var client = proxy.Client("main");
        using var response = await client.GetAsync("/");
        Assert.Equal(HttpStatusCode.BadGateway, response.StatusCode);
    }

    [Fact]
    public async Task PooledConnectionTheUpstreamClosed_IsReplacedWithoutFailingTheRequest()
    {
        // Each connection serves one keep-alive response, then the upstream closes it without saying so.
        await using var upstream = RawUpstream.Start(async c =>
        {
            if (await c.ReadRequestAsync() is null) return;
            await c.WriteAsync("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok");
        });
        await using var proxy = await StartProxyAsync(upstream);
        using var client = proxy.Client("main");
        for (var i = 0; i < 3; i++)
        {
            await upstream.WaitForClosedAsync(i);
            using var response = await client.GetAsync("/");
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        }
        Assert.Equal(3, upstream.Connections);
        Assert.Equal(0, await proxy.StatAsync("cluster.backend.upstream_rq_503"));
    }

    [Fact]
    public async Task BodyCutShort_ResetsTheDownstream()
    {
        await using var upstream = RawUpstream.Start(async c =>
        {
            if (await c.ReadRequestAsync() is null) return;
            await c.WriteAsync("HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nshort");
        });
        await using var proxy = await StartProxyAsync(upstream);
        using var client = proxy.Client("main");
        await Assert.ThrowsAnyAsync<Exception>(async () =>
        {
            using var response = await client.GetAsync("/");
            await response.Content.ReadAsByteArrayAsync();
        });
        Assert.Equal(1, await proxy.StatAsync("cluster.backend.upstream_rq_rx_reset"));
    }

    [Fact]
    public async Task HeadResponse_HasNoBody_AndTheConnectionStaysInUse()
    {
        await using var upstream = RawUpstream.Start(async c =>
        {
            while (await c.ReadRequestAsync() is { } request)
                await c.WriteAsync(request.Head.StartsWith("HEAD ", StringComparison.Ordinal)
                    ? "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n"
                    : "HTTP/1.1 204 No Content\r\n\r\n");
        });
        await using var proxy = await StartProxyAsync(upstream);
        using var client = proxy.Client("main");
        using (var head = await client.SendAsync(new HttpRequestMessage(HttpMethod.Head, "/")))
        {
            Assert.Equal(HttpStatusCode.OK, head.StatusCode);
            Assert.Equal(10, head.Content.Headers.ContentLength);
        }
        using (var noContent = await client.GetAsync("/"))
            Assert.Equal(HttpStatusCode.NoContent, noContent.StatusCode);
        Assert.Equal(1, upstream.Connections);
    }

    [Fact]
    public async Task RequestHead_CarriesHostAndFraming_AndDropsHopByHopHeaders()
    {
        await using var upstream = RawUpstream.Start(async c =>
        {
            while (await c.ReadRequestAsync() is not null)
                await c.WriteAsync("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n");
        });
        await using var proxy = await StartProxyAsync(upstream);
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(20));
        using var tcp = await HttpTestUtil.ConnectAsync(proxy, "main", cts.Token);
        var stream = tcp.GetStream();
        await stream.WriteAsync(Encoding.ASCII.GetBytes(
            "POST /upload?x=1 HTTP/1.1\r\nHost: example.com\r\nKeep-Alive: timeout=5\r\nProxy-Connection: keep-alive\r\n" +
            "TE: trailers\r\nx-custom: one\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n"), cts.Token);
        Assert.StartsWith("HTTP/1.1 200", await HttpTestUtil.ReadResponseHeadAsync(stream, cts.Token));
        await stream.WriteAsync(Encoding.ASCII.GetBytes("PUT /fixed HTTP/1.1\r\nHost: example.com\r\nContent-Length: 3\r\n\r\nabc"), cts.Token);
        Assert.StartsWith("HTTP/1.1 200", await HttpTestUtil.ReadResponseHeadAsync(stream, cts.Token));
        await stream.WriteAsync(Encoding.ASCII.GetBytes("DELETE /gone HTTP/1.1\r\nHost: example.com\r\n\r\n"), cts.Token);
        Assert.StartsWith("HTTP/1.1 200", await HttpTestUtil.ReadResponseHeadAsync(stream, cts.Token));

        var requests = upstream.Requests.ToArray();
        Assert.Equal(3, requests.Length);
        var chunked = requests[0];
        Assert.StartsWith("POST /upload?x=1 HTTP/1.1\r\nHost: example.com\r\n", chunked.Head);
        Assert.Contains("\r\nx-custom: one\r\n", chunked.Head);
        Assert.Contains("\r\nTransfer-Encoding: chunked\r\n", chunked.Head);
        Assert.DoesNotContain("Keep-Alive", chunked.Head, StringComparison.OrdinalIgnoreCase);
        Assert.DoesNotContain("Proxy-Connection", chunked.Head, StringComparison.OrdinalIgnoreCase);
        Assert.DoesNotContain("\r\nTE:", chunked.Head, StringComparison.OrdinalIgnoreCase);
        Assert.Equal("hello world", chunked.Body);
        Assert.StartsWith("PUT /fixed HTTP/1.1\r\n", requests[1].Head);
        Assert.Contains("\r\nContent-Length: 3\r\n", requests[1].Head);
        Assert.Equal("abc", requests[1].Body);
        Assert.StartsWith("DELETE /gone HTTP/1.1\r\n", requests[2].Head);
        Assert.DoesNotContain("Content-Length", requests[2].Head, StringComparison.OrdinalIgnoreCase);
        Assert.DoesNotContain("Transfer-Encoding", requests[2].Head, StringComparison.OrdinalIgnoreCase);
        Assert.Equal(1, upstream.Connections);
    }

    [Fact]
    public async Task MaxConnections_QueuesRequestsForTheOneConnection()
    {
        // max_connections: 1 and four requests at once: they take turns on one upstream connection.
        var inFlight = 0;
        var maxInFlight = 0;
        var firstArrived = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var release = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        await using var backend = await TestBackend.StartAsync(async ctx =>
        {
            var now = Interlocked.Increment(ref inFlight);
            InterlockedMax(ref maxInFlight, now);
            firstArrived.TrySetResult();
            await release.Task;
            Interlocked.Decrement(ref inFlight);
            await ctx.Response.WriteAsync("ok");
        });
        var cluster = Yaml.Cluster("backend", backend.Address) + "\n  circuit_breakers: { thresholds: [{ max_connections: 1, max_pending_requests: 10 }] }";
        await using var proxy = await ProxyHarness.StartAsync(Yaml.Bootstrap(Yaml.RoutesToBackend, cluster));
        using var client = proxy.Client("main");
        var requests = Enumerable.Range(0, 4).Select(_ => client.GetStringAsync("/")).ToArray();
        await firstArrived.Task.WaitAsync(TimeSpan.FromSeconds(20));
        release.SetResult();
        foreach (var body in await Task.WhenAll(requests)) Assert.Equal("ok", body);
        Assert.Equal(1, maxInFlight);
        Assert.Equal(1, await proxy.StatAsync("cluster.backend.upstream_cx_total"));
        Assert.Equal(1, await proxy.StatAsync("cluster.backend.upstream_cx_active"));
    }

    [Fact]
    public async Task UpstreamCxHttp1Total_CountsTheCodecsConnections_AndSocketsHttpHandlersHttp11Ones()
    {
        await using var backend = await TestBackend.StartAsync(ctx => ctx.Response.WriteAsync("ok"));
        await using var proxy = await ProxyHarness.StartAsync(Yaml.Bootstrap(Yaml.RoutesToBackend, Yaml.Cluster("backend", backend.Address)));
        using var client = proxy.Client("main");
        for (var i = 0; i < 3; i++) Assert.Equal("ok", await client.GetStringAsync("/"));
        Assert.Equal(1, await proxy.StatAsync("cluster.backend.upstream_cx_total"));
        Assert.Equal(1, await proxy.StatAsync("cluster.backend.upstream_cx_http1_total"));

        // A request with Expect goes over YARP and SocketsHttpHandler, on an HTTP/1.1 connection of its own.
        using var request = new HttpRequestMessage(HttpMethod.Post, "/") { Content = new StringContent("body") };
        request.Headers.ExpectContinue = true;
        using var response = await client.SendAsync(request);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal(2, await proxy.StatAsync("cluster.backend.upstream_cx_total"));
        Assert.Equal(2, await proxy.StatAsync("cluster.backend.upstream_cx_http1_total"));
        Assert.Equal(0, await proxy.StatAsync("cluster.backend.upstream_cx_http2_total"));
    }

    [Fact]
    public async Task AnHttp2Cluster_CountsUpstreamCxHttp2Total_NotHttp1()
    {
        await using var backend = await TestBackend.StartAsync(ctx => ctx.Response.WriteAsync("ok"), Microsoft.AspNetCore.Server.Kestrel.Core.HttpProtocols.Http2);
        await using var proxy = await ProxyHarness.StartAsync(Yaml.Bootstrap(Yaml.RoutesToBackend, Yaml.Cluster("backend", http2: true, backend.Address)));
        using var client = proxy.Client("main");
        Assert.Equal("ok", await client.GetStringAsync("/"));
        Assert.Equal(1, await proxy.StatAsync("cluster.backend.upstream_cx_total"));
        using var admin = proxy.AdminClient();
        Assert.Contains("cluster.backend.upstream_cx_http1_total: 0\n", await admin.GetStringAsync("/stats"));
        Assert.Equal(1, await proxy.StatAsync("cluster.backend.upstream_cx_http2_total"));
    }

    private static void InterlockedMax(ref int target, int value)
    {
        int seen;
        while ((seen = Volatile.Read(ref target)) < value && Interlocked.CompareExchange(ref target, value, seen) != seen)
        {
        }
    }

    [Theory]
    [InlineData("\n  typed_extension_protocol_options:\n    envoy.extensions.upstreams.http.v3.HttpProtocolOptions:\n      \"@type\": type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions\n      explicit_http_config: { http_protocol_options: {} }\n      common_http_protocol_options: { max_requests_per_connection: 2 }")]
    [InlineData("\n  max_requests_per_connection: 2")]
    public async Task MaxRequestsPerConnection_ClosesTheUpstreamConnectionAfterThatMany(string clusterExtra)
    {
        await using var upstream = RawUpstream.Start(async c =>
        {
            while (await c.ReadRequestAsync() is not null) await c.WriteAsync("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok");
        });
        await using var proxy = await StartProxyAsync(upstream, clusterExtra);
        using var client = proxy.Client("main");
        for (var i = 0; i < 5; i++)
        {
            using var r = await client.GetAsync("/");
            Assert.Equal(HttpStatusCode.OK, r.StatusCode);
        }
        // Two requests per connection: five requests took three connections.
        Assert.Equal(3, upstream.Connections);
    }

    [Fact]
    public void MaxRequestsPerConnection_IsRefused_WhereItIsNotCounted()
    {
        var h2 = Yaml.Cluster("backend", http2: true, "127.0.0.1:1").Replace("explicit_http_config: { http2_protocol_options: {} }",
            "explicit_http_config: { http2_protocol_options: {} }\n      common_http_protocol_options: { max_requests_per_connection: 3 }");
        var errors = ProxyHarness.Validate(Yaml.Bootstrap(Yaml.RoutesToBackend, h2)).Errors.Select(e => e.ToString()).ToList();
        Assert.Contains(errors, e => e.Contains("common_http_protocol_options.max_requests_per_connection: max_requests_per_connection is supported on plain-text HTTP/1.1 clusters only"));
        errors = ProxyHarness.Validate(Yaml.Bootstrap(Yaml.RoutesToBackend, Yaml.Cluster("backend", "127.0.0.1:1"),
            hcmExtra: "common_http_protocol_options: { max_requests_per_connection: 3 }")).Errors.Select(e => e.ToString()).ToList();
        Assert.Contains(errors, e => e.Contains("common_http_protocol_options.max_requests_per_connection: max_requests_per_connection is supported on clusters only"));
    }
}
