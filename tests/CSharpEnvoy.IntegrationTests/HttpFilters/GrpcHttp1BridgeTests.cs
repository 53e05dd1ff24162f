using System.Buffers.Binary;
using System.Net;
using System.Net.Http.Headers;
using CSharpEnvoy.IntegrationTests.Grpc;
using CSharpEnvoy.IntegrationTests.Infrastructure;
using CSharpEnvoy.IntegrationTests.Protos;
using Google.Protobuf;

namespace CSharpEnvoy.IntegrationTests.HttpFilters;

/// <summary><c>envoy.filters.http.grpc_http1_bridge</c>: an HTTP/1.1 client calls a unary gRPC method on an h2c gRPC
/// server and reads the status from response headers; protobuf requests upgraded to gRPC; query parameters dropped.</summary>
public sealed class GrpcHttp1BridgeTests
{
    private static string Filter(string config = "") =>
        "- name: envoy.filters.http.grpc_http1_bridge\n  typed_config:\n    \"@type\": type.googleapis.com/envoy.extensions.filters.http.grpc_http1_bridge.v3.Config\n" + Yaml.Indent(config, 4) + "\n";

    private static string Bootstrap(string filters, string cluster) => FilterYaml.Bootstrap(filters, GrpcTestKit.VirtualHosts(), cluster, logPath: null);

    private static byte[] Frame(IMessage message) => GrpcTestKit.Frame(message);

    private static async Task<(HttpResponseMessage Response, byte[] Body)> PostAsync(HttpClient client, string path, byte[] body, string contentType)
    {
        using var request = new HttpRequestMessage(HttpMethod.Post, path) { Version = HttpVersion.Version11, Content = new ByteArrayContent(body) };
        request.Content.Headers.ContentType = MediaTypeHeaderValue.Parse(contentType);
        request.Headers.TryAddWithoutValidation("te", "trailers");
        var response = await client.SendAsync(request);
        return (response, await response.Content.ReadAsByteArrayAsync());
    }

    [Fact]
    public async Task Http1Client_CallsUnaryGrpc_AndReadsTheStatusFromHeaders()
    {
        await using var backend = await GrpcTestKit.StartBackendAsync();
        await using var proxy = await ProxyHarness.StartAsync(Bootstrap(Filter(), Yaml.Cluster(GrpcTestKit.ClusterName, http2: true, backend.Address)));
        using var client = proxy.Client("main");

        var (ok, body) = await PostAsync(client, "/csenvoy.test.Echo/Unary", Frame(new EchoRequest { Text = "over http/1.1" }), "application/grpc");
        Assert.Equal(HttpStatusCode.OK, ok.StatusCode);
        Assert.Equal("0", ok.Headers.GetValues("grpc-status").Single());
        Assert.Equal(body.Length, ok.Content.Headers.ContentLength);
        Assert.Equal("over http/1.1", EchoReply.Parser.ParseFrom(body.AsSpan(5).ToArray()).Text);

        // A failure before any message is a trailers-only response: its status is already a header, and Envoy leaves
        // such a response (no body to buffer) as it is, 200 included.
        var (failed, _) = await PostAsync(client, "/csenvoy.test.Echo/Unary", Frame(new EchoRequest { FailCode = 5, FailMessage = "no such thing" }), "application/grpc");
        Assert.Equal(HttpStatusCode.OK, failed.StatusCode);
        Assert.Equal("5", failed.Headers.GetValues("grpc-status").Single());
        Assert.Equal("no such thing", failed.Headers.GetValues("grpc-message").Single());
    }

    [Fact]
    public async Task ProtobufRequest_IsUpgradedToGrpc_AndTheReplyUnframed_WithoutItsQuery()
    {
        string? seenTarget = null, seenType = null;
        byte[] seenBody = [];
        await using var upstream = Router.RawUpstream.Start(async c =>
        {
            while (await c.ReadRequestAsync() is { } r)
            {
                var lines = r.Head.Split("\r\n");
                seenTarget = lines[0].Split(' ')[1];
                seenType = lines.First(l => l.StartsWith("content-type:", StringComparison.OrdinalIgnoreCase))[13..].Trim();
                seenBody = System.Text.Encoding.Latin1.GetBytes(r.Body);
                var reply = Frame(new EchoReply { Text = "framed" });
                // A message, then the status in the trailers: a failure after the reply started.
                var status = seenTarget.Contains("Fail") ? "grpc-status: 13\r\ngrpc-message: broke late\r\n" : "grpc-status: 0\r\n";
                await c.WriteAsync("HTTP/1.1 200 OK\r\ncontent-type: application/grpc\r\ntransfer-encoding: chunked\r\n\r\n" +
                    $"{reply.Length:x}\r\n" + System.Text.Encoding.Latin1.GetString(reply) + "\r\n0\r\n" + status + "\r\n");
            }
        });
        var filter = Filter("upgrade_protobuf_to_grpc: true\nignore_query_parameters: true");
        await using var proxy = await ProxyHarness.StartAsync(Bootstrap(filter, Yaml.Cluster(GrpcTestKit.ClusterName, upstream.Address)));
        using var client = proxy.Client("main");

        var request = new EchoRequest { Text = "plain protobuf" };
        var (response, body) = await PostAsync(client, "/csenvoy.test.Echo/Unary?debug=1", request.ToByteArray(), "application/x-protobuf");
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("framed", EchoReply.Parser.ParseFrom(body).Text);
        Assert.Equal("0", response.Headers.GetValues("grpc-status").Single());
        Assert.Equal("/csenvoy.test.Echo/Unary", seenTarget);
        Assert.Equal("application/grpc", seenType);
        Assert.Equal(Frame(request), seenBody);

        // A non-zero status in the trailers makes the whole (buffered) response a 503.
        var (failed, failedBody) = await PostAsync(client, "/csenvoy.test.Echo/Fail", request.ToByteArray(), "application/x-protobuf");
        Assert.Equal(HttpStatusCode.ServiceUnavailable, failed.StatusCode);
        Assert.Equal("13", failed.Headers.GetValues("grpc-status").Single());
        Assert.Equal("broke late", failed.Headers.GetValues("grpc-message").Single());
        Assert.Equal("framed", EchoReply.Parser.ParseFrom(failedBody).Text);
    }

    [Fact]
    public async Task HedgedRoute_WhichStartsTheResponseEarly_StillGetsTheStatusFromTheTrailers()
    {
        // A hedged route starts the response before its body (Response.StartAsync): the bridge must still hold the
        // headers until the trailers are in.
        await using var upstream = Router.RawUpstream.Start(async c =>
        {
            while (await c.ReadRequestAsync() is not null)
            {
                var reply = Frame(new EchoReply { Text = "late failure" });
                await c.WriteAsync("HTTP/1.1 200 OK\r\ncontent-type: application/grpc\r\ntransfer-encoding: chunked\r\n\r\n" +
                    $"{reply.Length:x}\r\n" + System.Text.Encoding.Latin1.GetString(reply) + "\r\n0\r\ngrpc-status: 14\r\ngrpc-message: gone\r\n\r\n");
            }
        });
        var routes = $$"""
            - name: vh
              domains: ["*"]
              routes:
              - match: { prefix: "/" }
                route:
                  cluster: {{GrpcTestKit.ClusterName}}
                  timeout: 20s
                  hedge_policy: { hedge_on_per_try_timeout: true }
                  retry_policy: { retry_on: 5xx, num_retries: 1, per_try_timeout: 5s }
            """;
        await using var proxy = await ProxyHarness.StartAsync(FilterYaml.Bootstrap(Filter(), routes, Yaml.Cluster(GrpcTestKit.ClusterName, upstream.Address), logPath: null));
        using var client = proxy.Client("main");

        var (response, body) = await PostAsync(client, "/csenvoy.test.Echo/Unary", Frame(new EchoRequest { Text = "x" }), "application/grpc");
        Assert.Equal(HttpStatusCode.ServiceUnavailable, response.StatusCode);
        Assert.Equal("14", response.Headers.GetValues("grpc-status").Single());
        Assert.Equal(body.Length, response.Content.Headers.ContentLength);
        Assert.Equal("late failure", EchoReply.Parser.ParseFrom(body.AsSpan(5).ToArray()).Text);
    }

    [Fact]
    public async Task AnUpgradedProtobufRequestOverTheBufferLimit_IsRefusedAsPayloadTooLarge()
    {
        await using var backend = await GrpcTestKit.StartBackendAsync();
        await using var proxy = await ProxyHarness.StartAsync(Bootstrap(Filter("upgrade_protobuf_to_grpc: true"), Yaml.Cluster(GrpcTestKit.ClusterName, http2: true, backend.Address)));
        using var client = proxy.Client("main");
        var big = new EchoRequest { Payload = ByteString.CopyFrom(new byte[1100 * 1024]) }.ToByteArray();
        var (response, _) = await PostAsync(client, "/csenvoy.test.Echo/Unary", big, "application/x-protobuf");
        // The request is gRPC by then, so the 413 local reply takes the gRPC form (grpc-status UNKNOWN, the text as message).
        Assert.Equal("2", response.Headers.GetValues("grpc-status").Single());
        Assert.Equal("Payload Too Large", response.Headers.GetValues("grpc-message").Single());
    }

    [Fact]
    public async Task Http2Clients_AreNotBridged()
    {
        await using var backend = await GrpcTestKit.StartBackendAsync();
        await using var proxy = await ProxyHarness.StartAsync(Bootstrap(Filter(), Yaml.Cluster(GrpcTestKit.ClusterName, http2: true, backend.Address)));
        using var channel = GrpcTestKit.Channel(proxy);
        var ex = await Assert.ThrowsAsync<global::Grpc.Core.RpcException>(async () =>
            await GrpcTestKit.Client(channel).UnaryAsync(new EchoRequest { FailCode = 5, FailMessage = "missing" }, deadline: GrpcTestKit.Deadline()));
        // The status arrives as a trailer, as the server sent it (a bridged response would be an HTTP 503).
        Assert.Equal(global::Grpc.Core.StatusCode.NotFound, ex.StatusCode);
        Assert.Equal("missing", ex.Status.Detail);
    }
}
