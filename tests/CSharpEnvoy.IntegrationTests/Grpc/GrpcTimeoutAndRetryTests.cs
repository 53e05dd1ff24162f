using System.Diagnostics;
using CSharpEnvoy.IntegrationTests.Infrastructure;
using CSharpEnvoy.IntegrationTests.Protos;
using Grpc.Core;

namespace CSharpEnvoy.IntegrationTests.Grpc;

/// <summary>gRPC through the router's resilience features: grpc-timeout bounded by max_stream_duration, and
/// UNAVAILABLE retried with retry_on: unavailable.</summary>
public sealed class GrpcTimeoutAndRetryTests
{
    private static string Route(string routeExtra) => $$"""
        - match: { prefix: "/" }
          route:
            cluster: grpc_backend
        {{Yaml.Indent(routeExtra, 4)}}
        """;

    [Fact]
    public async Task GrpcTimeoutHeaderMax_CapsTheClientDeadline_DeadlineExceededFromTheProxy()
    {
        var probe = new EchoProbe();
        await using var backend = await GrpcTestKit.StartBackendAsync(probe);
        await using var proxy = await GrpcTestKit.StartProxyAsync(backend, Route("max_stream_duration: { grpc_timeout_header_max: 0.3s }"));
        using var channel = GrpcTestKit.Channel(proxy);
        var client = GrpcTestKit.Client(channel);

        // A client stream the backend answers only when it ends: it never ends here, so only the proxy's bound
        // (0.3 s, far below the client's own 30 s deadline) can end the call.
        var sw = Stopwatch.StartNew();
        using var call = client.ClientStream(deadline: GrpcTestKit.Deadline(30));
        await call.RequestStream.WriteAsync(new EchoRequest { Text = "one" });
        Assert.Equal("one", await probe.NextReceivedAsync());
        var error = await Assert.ThrowsAsync<RpcException>(() => call.ResponseAsync);
        sw.Stop();

        Assert.Equal(StatusCode.DeadlineExceeded, error.StatusCode);
        Assert.Equal("downstream duration timeout", error.Status.Detail);
        Assert.True(sw.Elapsed < TimeSpan.FromSeconds(10), $"elapsed {sw.Elapsed}");
        Assert.Equal(1, await proxy.StatAsync("http.ingress_http.downstream_rq_max_duration_reached"));
    }

    [Fact]
    public async Task GrpcTimeoutHeader_LessOffset_IsSentUpstream()
    {
        await using var backend = await GrpcTestKit.StartBackendAsync();
        await using var proxy = await GrpcTestKit.StartProxyAsync(backend, Route("max_stream_duration: { grpc_timeout_header_max: 2s, grpc_timeout_header_offset: 0.5s }"));
        using var channel = GrpcTestKit.Channel(proxy);
        var client = GrpcTestKit.Client(channel);

        // The client's 30 s is capped to 2 s, then lowered by the offset only where that is smaller (Envoy applies
        // the offset first, then the cap).
        var reply = await client.UnaryAsync(new EchoRequest { Text = "hi" }, deadline: GrpcTestKit.Deadline(30));

        Assert.Equal("2000m", reply.RequestHeaders["grpc-timeout"]);
    }

    [Fact]
    public async Task GrpcTimeoutHeader_WithoutTheHeaderMax_IsNotEnforcedByTheProxy()
    {
        var probe = new EchoProbe();
        await using var backend = await GrpcTestKit.StartBackendAsync(probe);
        await using var proxy = await GrpcTestKit.StartProxyAsync(backend, Route("max_stream_duration: { max_stream_duration: 30s }"));
        using var channel = GrpcTestKit.Channel(proxy);
        var client = GrpcTestKit.Client(channel);
        var reply = await client.UnaryAsync(new EchoRequest { Text = "hi" }, deadline: GrpcTestKit.Deadline(20));
        Assert.Equal("hi", reply.Text);
        // The client's own deadline travels unchanged (what is left of its 20 s).
        var header = reply.RequestHeaders["grpc-timeout"];
        var value = long.Parse(header[..^1], System.Globalization.CultureInfo.InvariantCulture);
        var left = header[^1] switch { 'S' => TimeSpan.FromSeconds(value), 'm' => TimeSpan.FromMilliseconds(value), 'u' => TimeSpan.FromMicroseconds(value), 'n' => TimeSpan.FromTicks(value / 100), _ => TimeSpan.Zero };
        Assert.InRange(left, TimeSpan.FromSeconds(10), TimeSpan.FromSeconds(20));
    }

    [Fact]
    public async Task Unavailable_UnaryCall_RetriedToSuccess()
    {
        var probe = new EchoProbe { UnaryFailuresLeft = 2 };
        await using var backend = await GrpcTestKit.StartBackendAsync(probe);
        await using var proxy = await GrpcTestKit.StartProxyAsync(backend, Route("retry_policy: { retry_on: unavailable, num_retries: 3, retry_back_off: { base_interval: 0.01s } }"));
        using var channel = GrpcTestKit.Channel(proxy);
        var client = GrpcTestKit.Client(channel);

        var reply = await client.UnaryAsync(new EchoRequest { Text = "third time" }, deadline: GrpcTestKit.Deadline());

        Assert.Equal("third time", reply.Text);
        Assert.Equal(3, probe.UnaryCalls);
        Assert.Equal(2, await proxy.StatAsync("cluster.grpc_backend.upstream_rq_retry"));
        Assert.Equal(1, await proxy.StatAsync("cluster.grpc_backend.upstream_rq_retry_success"));
    }

    [Fact]
    public async Task Unavailable_NotInRetryOn_IsNotRetried()
    {
        var probe = new EchoProbe { UnaryFailuresLeft = 1 };
        await using var backend = await GrpcTestKit.StartBackendAsync(probe);
        await using var proxy = await GrpcTestKit.StartProxyAsync(backend, Route("retry_policy: { retry_on: \"cancelled,deadline-exceeded\", num_retries: 3 }"));
        using var channel = GrpcTestKit.Channel(proxy);
        var client = GrpcTestKit.Client(channel);

        var error = await Assert.ThrowsAsync<RpcException>(() => client.UnaryAsync(new EchoRequest { Text = "x" }, deadline: GrpcTestKit.Deadline()).ResponseAsync);

        Assert.Equal(StatusCode.Unavailable, error.StatusCode);
        Assert.Equal("not yet", error.Status.Detail);
        Assert.Equal(1, probe.UnaryCalls);
    }
}
