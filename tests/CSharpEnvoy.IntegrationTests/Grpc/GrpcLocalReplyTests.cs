using System.Net;
using System.Net.Http.Headers;
using CSharpEnvoy.IntegrationTests.Infrastructure;
using CSharpEnvoy.IntegrationTests.Protos;
using Grpc.Core;

namespace CSharpEnvoy.IntegrationTests.Grpc;

/// <summary>
/// Replies the proxy makes itself for gRPC requests (Envoy's sendLocalReply for a gRPC request: HTTP 200, trailers
/// only, grpc-status mapped from the HTTP code, grpc-message from the body), and the route's <c>grpc: {}</c> matcher.
/// </summary>
public sealed class GrpcLocalReplyTests
{
    private const string UnaryPath = "/csenvoy.test.Echo/Unary";

    private const string EmptyCluster = """
        - name: grpc_backend
          connect_timeout: 1s
          typed_extension_protocol_options:
            envoy.extensions.upstreams.http.v3.HttpProtocolOptions:
              "@type": type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions
              explicit_http_config: { http2_protocol_options: {} }
          load_assignment: { cluster_name: grpc_backend }
        """;

    [Fact]
    public async Task NoRoute_IsUnimplemented()
    {
        var routes = """
            - match: { prefix: "/other.Service/" }
              route: { cluster: grpc_backend }
            """;
        await using var proxy = await ProxyHarness.StartAsync(Yaml.Bootstrap(GrpcTestKit.VirtualHosts(routes), EmptyCluster));
        using var channel = GrpcTestKit.Channel(proxy);

        var ex = await Assert.ThrowsAsync<RpcException>(async () =>
            await GrpcTestKit.Client(channel).UnaryAsync(new EchoRequest(), deadline: GrpcTestKit.Deadline()));

        // HTTP 404 maps to UNIMPLEMENTED; Envoy's no-route reply has no body, so no grpc-message.
        Assert.Equal(StatusCode.Unimplemented, ex.StatusCode);
        Assert.Equal("", ex.Status.Detail);
        Assert.Equal(1, await proxy.StatAsync("http.ingress_http.no_route"));
    }

    [Fact]
    public async Task ClusterWithNoHosts_IsUnavailable_NoHealthyUpstream()
    {
        await using var proxy = await ProxyHarness.StartAsync(Yaml.Bootstrap(GrpcTestKit.VirtualHosts(), EmptyCluster));
        using var channel = GrpcTestKit.Channel(proxy);

        var ex = await Assert.ThrowsAsync<RpcException>(async () =>
            await GrpcTestKit.Client(channel).UnaryAsync(new EchoRequest(), deadline: GrpcTestKit.Deadline()));

        Assert.Equal(StatusCode.Unavailable, ex.StatusCode);
        Assert.Equal("no healthy upstream", ex.Status.Detail);
        Assert.Equal(1, await proxy.StatAsync("cluster.grpc_backend.upstream_cx_none_healthy"));
    }

    [Fact]
    public async Task UpstreamRefusingConnections_IsUnavailable()
    {
        var clusters = Yaml.Cluster(GrpcTestKit.ClusterName, http2: true, $"127.0.0.1:{FixedPorts.Next()}");
        await using var proxy = await ProxyHarness.StartAsync(Yaml.Bootstrap(GrpcTestKit.VirtualHosts(), clusters));
        using var channel = GrpcTestKit.Channel(proxy);
        var client = GrpcTestKit.Client(channel);

        // Every streaming shape gets the same local reply.
        var unary = await Assert.ThrowsAsync<RpcException>(async () =>
            await client.UnaryAsync(new EchoRequest(), deadline: GrpcTestKit.Deadline()));
        using var stream = client.ServerStream(new StreamRequest { Count = 1 }, deadline: GrpcTestKit.Deadline());
        var streaming = await Assert.ThrowsAsync<RpcException>(async () => await stream.ResponseStream.MoveNext(CancellationToken.None));

        foreach (var ex in new[] { unary, streaming })
        {
            Assert.Equal(StatusCode.Unavailable, ex.StatusCode);
            Assert.Equal("upstream connect error or disconnect/reset before headers. reset reason: connection failure", ex.Status.Detail);
        }
        Assert.Equal(2, await proxy.StatAsync("cluster.grpc_backend.upstream_cx_connect_fail"));
    }

    [Fact]
    public async Task LocalReply_OnTheWire_IsHttp200WithGrpcStatusAndMessage()
    {
        await using var proxy = await ProxyHarness.StartAsync(Yaml.Bootstrap(GrpcTestKit.VirtualHosts(), EmptyCluster));
        using var http = proxy.Client("main", http2: true);

        using var response = await http.SendAsync(GrpcRequest("application/grpc"));

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("application/grpc", response.Content.Headers.ContentType?.MediaType);
        Assert.Equal("14", response.Headers.GetValues("grpc-status").Single());
        // Envoy percent-encodes only what gRPC requires (bytes outside 0x20-0x7E, and '%'): printable ASCII,
        // spaces included, goes out as is.
        Assert.Equal("no healthy upstream", response.Headers.GetValues("grpc-message").Single());
        Assert.Empty(await response.Content.ReadAsByteArrayAsync());
    }

    [Fact]
    public async Task GrpcRouteMatch_OnlyMatchesGrpcRequests()
    {
        await using var backend = await GrpcTestKit.StartBackendAsync();
        var routes = """
            - match: { prefix: "/", grpc: {} }
              route: { cluster: grpc_backend }
            """;
        await using var proxy = await GrpcTestKit.StartProxyAsync(backend, routes);
        using var channel = GrpcTestKit.Channel(proxy);
        using var h1 = proxy.Client("main");
        using var h2 = proxy.Client("main", http2: true);

        var reply = await GrpcTestKit.Client(channel).UnaryAsync(new EchoRequest { Text = "via grpc" }, deadline: GrpcTestKit.Deadline());
        using var get1 = await h1.GetAsync(UnaryPath);
        using var get2 = await h2.GetAsync(UnaryPath);

        Assert.Equal("via grpc", reply.Text);
        Assert.Equal(HttpStatusCode.NotFound, get1.StatusCode);
        Assert.Equal(HttpStatusCode.NotFound, get2.StatusCode);
        Assert.Equal(2, await proxy.StatAsync("http.ingress_http.no_route"));
        Assert.Equal(1, await proxy.StatAsync("cluster.grpc_backend.upstream_rq_total"));
    }

    [Fact]
    public async Task GrpcWebContentType_IsNotGrpc_ForTheMatcherOrTheLocalReply()
    {
        await using var backend = await GrpcTestKit.StartBackendAsync();
        var routes = """
            - match: { prefix: "/", grpc: {} }
              route: { cluster: grpc_backend }
            """;
        await using var proxy = await GrpcTestKit.StartProxyAsync(backend, routes);
        using var h2 = proxy.Client("main", http2: true);

        // Envoy's Grpc::Common::hasGrpcContentType: "application/grpc" or "application/grpc+...", never grpc-web.
        // So the route does not match, and without a grpc_web filter the 404 is a plain HTTP reply.
        using var response = await h2.SendAsync(GrpcRequest("application/grpc-web+proto"));

        Assert.Equal(HttpStatusCode.NotFound, response.StatusCode);
        Assert.False(response.Headers.Contains("grpc-status"));
        Assert.Equal(1, await proxy.StatAsync("http.ingress_http.no_route"));
    }

    /// <summary>A hand-built unary gRPC request (one empty message) for checks below the gRPC client library.</summary>
    private static HttpRequestMessage GrpcRequest(string contentType)
    {
        var content = new ByteArrayContent(new byte[5]); // uncompressed flag + zero length: one empty message
        content.Headers.ContentType = MediaTypeHeaderValue.Parse(contentType);
        var request = new HttpRequestMessage(HttpMethod.Post, UnaryPath) { Content = content };
        request.Headers.TryAddWithoutValidation("te", "trailers");
        return request;
    }
}
