using CSharpEnvoy.DataPlane.Listener;
using CSharpEnvoy.IntegrationTests.Infrastructure;
using CSharpEnvoy.IntegrationTests.Protos;
using Google.Protobuf;
using Grpc.Core;

namespace CSharpEnvoy.IntegrationTests.Grpc;

/// <summary>gRPC calls of every streaming shape through the proxy to a real h2c gRPC backend.</summary>
public sealed class GrpcProxyTests
{
    [Fact]
    public async Task Unary_PayloadAndMetadata_RoundTrip()
    {
        await using var backend = await GrpcTestKit.StartBackendAsync();
        await using var proxy = await GrpcTestKit.StartProxyAsync(backend);
        using var channel = GrpcTestKit.Channel(proxy);
        var client = GrpcTestKit.Client(channel);
        var token = new byte[] { 0, 1, 2, 0x7f, 0x80, 0xfe, 0xff };
        var metadata = new Metadata { { "x-client-meta", "hello" }, { "x-token-bin", token } };
        var payload = GrpcTestKit.RandomBytes(64 * 1024, seed: 1);

        using var call = client.UnaryAsync(new EchoRequest { Text = "ping", Payload = payload }, metadata, GrpcTestKit.Deadline());
        var reply = await call.ResponseAsync;
        var headers = await call.ResponseHeadersAsync;
        var trailers = call.GetTrailers();

        Assert.Equal("ping", reply.Text);
        Assert.Equal(payload, reply.Payload);
        // What reached the backend: same method path over HTTP/2, the client's metadata, and Envoy's additions.
        Assert.Equal("/csenvoy.test.Echo/Unary", reply.Path);
        Assert.Equal("HTTP/2", reply.Protocol);
        Assert.Equal("hello", reply.RequestHeaders["x-client-meta"]);
        Assert.Equal("application/grpc", reply.RequestHeaders["content-type"]);
        Assert.Equal("trailers", reply.RequestHeaders["te"]);
        Assert.True(reply.RequestHeaders.ContainsKey("grpc-timeout"), "the client's deadline is forwarded as grpc-timeout");
        Assert.True(Guid.TryParse(reply.RequestHeaders["x-request-id"], out _));
        Assert.Equal("http", reply.RequestHeaders["x-forwarded-proto"]);
        Assert.Equal("15000", reply.RequestHeaders["x-envoy-expected-rq-timeout-ms"]);
        // What reached the client: the backend's headers plus Envoy's, then the backend's trailers.
        Assert.Equal("from-backend", headers.GetValue("x-backend-header"));
        Assert.Equal("envoy", headers.GetValue("server"));
        Assert.NotNull(headers.GetValue("x-envoy-upstream-service-time"));
        Assert.Equal(StatusCode.OK, call.GetStatus().StatusCode);
        Assert.Equal("trailer-value", trailers.GetValue("x-custom-trailer"));
        Assert.Equal(token, trailers.GetValueBytes("x-token-bin"));
    }

    [Fact]
    public async Task ServerStreaming_MessagesArriveInOrder_WithStatusAndTrailers()
    {
        await using var backend = await GrpcTestKit.StartBackendAsync();
        await using var proxy = await GrpcTestKit.StartProxyAsync(backend);
        using var channel = GrpcTestKit.Channel(proxy);
        var client = GrpcTestKit.Client(channel);
        const int count = 50;

        using var call = client.ServerStream(new StreamRequest { Count = count, Prefix = "msg-" }, deadline: GrpcTestKit.Deadline());
        var received = new List<EchoReply>();
        await foreach (var message in call.ResponseStream.ReadAllAsync()) received.Add(message);

        Assert.Equal(Enumerable.Range(0, count), received.Select(m => m.Index));
        Assert.Equal(Enumerable.Range(0, count).Select(i => "msg-" + i), received.Select(m => m.Text));
        Assert.Equal(StatusCode.OK, call.GetStatus().StatusCode);
        Assert.Equal("50", call.GetTrailers().GetValue("x-stream-count"));
    }

    [Fact]
    public async Task ServerStreaming_FirstMessageArrivesWhileTheStreamIsStillOpen()
    {
        var probe = new EchoProbe();
        await using var backend = await GrpcTestKit.StartBackendAsync(probe);
        await using var proxy = await GrpcTestKit.StartProxyAsync(backend);
        using var channel = GrpcTestKit.Channel(proxy);
        var client = GrpcTestKit.Client(channel);

        // The backend sends one message, then holds the stream open until released: a proxy that buffers the
        // response until end of stream never delivers it and the deadline fails the call.
        using var call = client.ServerStream(new StreamRequest { Count = 3, Prefix = "m", WaitAfterFirst = true }, deadline: GrpcTestKit.Deadline());
        Assert.True(await call.ResponseStream.MoveNext(CancellationToken.None));
        Assert.Equal("m0", call.ResponseStream.Current.Text);
        probe.Release.SetResult();
        var rest = new List<string>();
        await foreach (var message in call.ResponseStream.ReadAllAsync()) rest.Add(message.Text);

        Assert.Equal(["m1", "m2"], rest);
        Assert.Equal(StatusCode.OK, call.GetStatus().StatusCode);
    }

    [Fact]
    public async Task ClientStreaming_EachMessageReachesTheBackendBeforeTheNextIsSent()
    {
        var probe = new EchoProbe();
        await using var backend = await GrpcTestKit.StartBackendAsync(probe);
        await using var proxy = await GrpcTestKit.StartProxyAsync(backend);
        using var channel = GrpcTestKit.Channel(proxy);
        var client = GrpcTestKit.Client(channel);
        string[] texts = ["one", "two", "three", "four"];

        using var call = client.ClientStream(deadline: GrpcTestKit.Deadline());
        foreach (var text in texts)
        {
            await call.RequestStream.WriteAsync(new EchoRequest { Text = text, Payload = GrpcTestKit.RandomBytes(100, seed: 2) });
            // The backend must have read this message while the request stream is still open.
            Assert.Equal(text, await probe.NextReceivedAsync());
        }
        await call.RequestStream.CompleteAsync();
        var reply = await call.ResponseAsync;

        Assert.Equal("one,two,three,four", reply.Text);
        Assert.Equal(4, reply.ReceivedCount);
        Assert.Equal(StatusCode.OK, call.GetStatus().StatusCode);
        Assert.Equal("400", call.GetTrailers().GetValue("x-received-bytes"));
    }

    [Fact]
    public async Task Bidi_RepliesInterleaveWithRequests()
    {
        var probe = new EchoProbe();
        await using var backend = await GrpcTestKit.StartBackendAsync(probe);
        await using var proxy = await GrpcTestKit.StartProxyAsync(backend);
        using var channel = GrpcTestKit.Channel(proxy);
        var client = GrpcTestKit.Client(channel);

        using var call = client.Bidi(deadline: GrpcTestKit.Deadline());
        for (var i = 0; i < 5; i++)
        {
            // Send one, wait for its echo, then send the next: only works if neither direction is buffered.
            await call.RequestStream.WriteAsync(new EchoRequest { Text = "m" + i });
            Assert.True(await call.ResponseStream.MoveNext(CancellationToken.None));
            Assert.Equal("echo:m" + i, call.ResponseStream.Current.Text);
            Assert.Equal(i, call.ResponseStream.Current.Index);
        }
        await call.RequestStream.CompleteAsync();

        Assert.False(await call.ResponseStream.MoveNext(CancellationToken.None));
        Assert.Equal(StatusCode.OK, call.GetStatus().StatusCode);
        Assert.Equal("5", call.GetTrailers().GetValue("x-bidi-count"));
        Assert.Equal("envoy", (await call.ResponseHeadersAsync).GetValue("server"));
    }

    [Fact]
    public async Task BackendError_ReachesClient_AsThatStatusAndDetail()
    {
        await using var backend = await GrpcTestKit.StartBackendAsync();
        await using var proxy = await GrpcTestKit.StartProxyAsync(backend);
        using var channel = GrpcTestKit.Channel(proxy);
        var client = GrpcTestKit.Client(channel);
        // Spaces, punctuation and non-ASCII: the backend percent-encodes grpc-message and the proxy must not touch it.
        const string detail = "widget 42 not found: naïve/€ 100%";

        // Thrown before any message: the backend answers trailers-only (grpc-status in the response headers).
        var ex = await Assert.ThrowsAsync<RpcException>(async () =>
            await client.UnaryAsync(new EchoRequest { FailCode = (int)StatusCode.NotFound, FailMessage = detail }, deadline: GrpcTestKit.Deadline()));

        Assert.Equal(StatusCode.NotFound, ex.StatusCode);
        Assert.Equal(detail, ex.Status.Detail);
        Assert.Equal("error-detail", ex.Trailers.GetValue("x-error-trailer"));
    }

    [Fact]
    public async Task BackendError_AfterStreamedMessages_ArrivesInTrailers()
    {
        await using var backend = await GrpcTestKit.StartBackendAsync();
        await using var proxy = await GrpcTestKit.StartProxyAsync(backend);
        using var channel = GrpcTestKit.Channel(proxy);
        var client = GrpcTestKit.Client(channel);

        using var call = client.ServerStream(new StreamRequest
        {
            Count = 3, Prefix = "s", FailCode = (int)StatusCode.PermissionDenied, FailMessage = "quota used up",
        }, deadline: GrpcTestKit.Deadline());
        var received = new List<string>();
        var ex = await Assert.ThrowsAsync<RpcException>(async () =>
        {
            await foreach (var message in call.ResponseStream.ReadAllAsync()) received.Add(message.Text);
        });

        Assert.Equal(["s0", "s1", "s2"], received);
        Assert.Equal(StatusCode.PermissionDenied, ex.StatusCode);
        Assert.Equal("quota used up", ex.Status.Detail);
        Assert.Equal("3", ex.Trailers.GetValue("x-stream-count"));
        Assert.Equal("error-detail", ex.Trailers.GetValue("x-error-trailer"));
    }

    [Fact]
    public async Task LargeMessages_4MB_BothWays()
    {
        await using var backend = await GrpcTestKit.StartBackendAsync();
        await using var proxy = await GrpcTestKit.StartProxyAsync(backend);
        using var channel = GrpcTestKit.Channel(proxy);
        var client = GrpcTestKit.Client(channel);
        var up = GrpcTestKit.RandomBytes(4 * 1024 * 1024, seed: 3);
        var down = GrpcTestKit.RandomBytes(4 * 1024 * 1024, seed: 4);

        // Unary: 4 MB up, the same 4 MB echoed down.
        var reply = await client.UnaryAsync(new EchoRequest { Text = "big", Payload = up }, deadline: GrpcTestKit.Deadline(20));
        // Bidi: two 4 MB messages, each echoed before the next is sent, so both directions hold a large message at once.
        using var call = client.Bidi(deadline: GrpcTestKit.Deadline(20));
        var echoed = new List<ByteString>();
        foreach (var payload in new[] { up, down })
        {
            await call.RequestStream.WriteAsync(new EchoRequest { Text = "big", Payload = payload });
            Assert.True(await call.ResponseStream.MoveNext(CancellationToken.None));
            echoed.Add(call.ResponseStream.Current.Payload);
        }
        await call.RequestStream.CompleteAsync();
        Assert.False(await call.ResponseStream.MoveNext(CancellationToken.None));

        Assert.Equal(up, reply.Payload);
        Assert.Equal(up, echoed[0]);
        Assert.Equal(down, echoed[1]);
        Assert.Equal(StatusCode.OK, call.GetStatus().StatusCode);
    }

    [Fact]
    public async Task Stats_CountEveryCall()
    {
        await using var backend = await GrpcTestKit.StartBackendAsync();
        await using var proxy = await GrpcTestKit.StartProxyAsync(backend);
        using var channel = GrpcTestKit.Channel(proxy);
        var client = GrpcTestKit.Client(channel);

        await client.UnaryAsync(new EchoRequest { Text = "a" }, deadline: GrpcTestKit.Deadline());
        await client.UnaryAsync(new EchoRequest { Text = "b" }, deadline: GrpcTestKit.Deadline());
        // A gRPC error still travels as HTTP 200, so Envoy counts it as upstream_rq_200.
        await Assert.ThrowsAsync<RpcException>(async () =>
            await client.UnaryAsync(new EchoRequest { FailCode = (int)StatusCode.NotFound, FailMessage = "x" }, deadline: GrpcTestKit.Deadline()));
        using (var server = client.ServerStream(new StreamRequest { Count = 2 }, deadline: GrpcTestKit.Deadline()))
            await foreach (var _ in server.ResponseStream.ReadAllAsync()) { }
        using (var upload = client.ClientStream(deadline: GrpcTestKit.Deadline()))
        {
            await upload.RequestStream.WriteAsync(new EchoRequest { Text = "c" });
            await upload.RequestStream.CompleteAsync();
            await upload.ResponseAsync;
        }
        using (var bidi = client.Bidi(deadline: GrpcTestKit.Deadline()))
        {
            await bidi.RequestStream.WriteAsync(new EchoRequest { Text = "d" });
            await bidi.RequestStream.CompleteAsync();
            await foreach (var _ in bidi.ResponseStream.ReadAllAsync()) { }
        }
        const int calls = 6;

        Assert.Equal(calls, await proxy.StatAsync($"cluster.{GrpcTestKit.ClusterName}.upstream_rq_200"));
        Assert.Equal(calls, await proxy.StatAsync($"cluster.{GrpcTestKit.ClusterName}.upstream_rq_total"));
        Assert.Equal(calls, await proxy.StatAsync("http.ingress_http.downstream_rq_http2_total"));
        Assert.Equal(0, await proxy.StatAsync("http.ingress_http.downstream_rq_http1_total"));
    }

    [Fact]
    public async Task Http2OnlyListener_ForwardsUnary_AndDoesNotScheduleInline()
    {
        await using var backend = await GrpcTestKit.StartBackendAsync();
        await using var h2 = await ProxyHarness.StartAsync(Yaml.Bootstrap(GrpcTestKit.VirtualHosts(),
            Yaml.Cluster(GrpcTestKit.ClusterName, http2: true, backend.Address), codec: "HTTP2"));
        await using var auto = await GrpcTestKit.StartProxyAsync(backend);
        using var channel = GrpcTestKit.Channel(h2);

        var reply = await GrpcTestKit.Client(channel).UnaryAsync(new EchoRequest { Text = "ping" }, deadline: GrpcTestKit.Deadline());

        Assert.Equal("ping", reply.Text);
        // HTTP/2-only listeners leave scheduling to Kestrel's I/O queues (they batch the sends of many streams); AUTO
        // listeners keep inline scheduling for HTTP/1.1 (docs/performance.md, "h2c and gRPC").
        Assert.False(h2.Server.Listeners[0].SchedulesInline);
        Assert.Equal(ListenerHost.InlineScheduling, auto.Server.Listeners[0].SchedulesInline);
    }
}
