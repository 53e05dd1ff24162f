using System.Threading.Channels;
using CSharpEnvoy.IntegrationTests.Protos;
using Grpc.Core;

namespace CSharpEnvoy.IntegrationTests.Grpc;

/// <summary>
/// Lets a test observe the backend while a call is in flight: which request messages it has read, and a gate the
/// server stream waits on. One per backend (a DI singleton), so tests running in parallel do not share it.
/// </summary>
public sealed class EchoProbe
{
    public Channel<string> Received { get; } = Channel.CreateUnbounded<string>();

    public TaskCompletionSource Release { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

    /// <summary>Unary calls the backend still fails with UNAVAILABLE before it answers normally.</summary>
    public int UnaryFailuresLeft;

    /// <summary>Unary calls the backend received.</summary>
    public int UnaryCalls;

    /// <summary>The next request message text the backend read, or a timeout if the proxy is holding it back.</summary>
    public async Task<string> NextReceivedAsync() =>
        await Received.Reader.ReadAsync().AsTask().WaitAsync(GrpcTestKit.ProbeTimeout);
}

/// <summary>The test service: echoes what it gets and reports the request headers it saw.</summary>
public sealed class EchoService(EchoProbe probe) : Echo.EchoBase
{
    public override async Task<EchoReply> Unary(EchoRequest request, ServerCallContext context)
    {
        Interlocked.Increment(ref probe.UnaryCalls);
        if (Interlocked.Decrement(ref probe.UnaryFailuresLeft) >= 0) throw new RpcException(new Status(StatusCode.Unavailable, "not yet"));
        FailIfAsked(request.FailCode, request.FailMessage);
        await context.WriteResponseHeadersAsync(new Metadata { { "x-backend-header", "from-backend" } });
        context.ResponseTrailers.Add("x-custom-trailer", "trailer-value");
        // Binary metadata travels base64 encoded; echo it back as a trailer to prove it survives both ways.
        if (context.RequestHeaders.GetValueBytes("x-token-bin") is { } token) context.ResponseTrailers.Add("x-token-bin", token);
        var reply = Describe(context);
        reply.Text = request.Text;
        reply.Payload = request.Payload;
        return reply;
    }

    public override async Task ServerStream(StreamRequest request, IServerStreamWriter<EchoReply> responseStream, ServerCallContext context)
    {
        for (var i = 0; i < request.Count; i++)
        {
            await responseStream.WriteAsync(new EchoReply { Text = request.Prefix + i, Index = i });
            if (i == 0 && request.WaitAfterFirst) await probe.Release.Task.WaitAsync(GrpcTestKit.ProbeTimeout, context.CancellationToken);
        }
        context.ResponseTrailers.Add("x-stream-count", request.Count.ToString(System.Globalization.CultureInfo.InvariantCulture));
        FailIfAsked(request.FailCode, request.FailMessage);
    }

    public override async Task<EchoReply> ClientStream(IAsyncStreamReader<EchoRequest> requestStream, ServerCallContext context)
    {
        var texts = new List<string>();
        long bytes = 0;
        await foreach (var message in requestStream.ReadAllAsync(context.CancellationToken))
        {
            texts.Add(message.Text);
            bytes += message.Payload.Length;
            probe.Received.Writer.TryWrite(message.Text);
        }
        context.ResponseTrailers.Add("x-received-bytes", bytes.ToString(System.Globalization.CultureInfo.InvariantCulture));
        var reply = Describe(context);
        reply.Text = string.Join(",", texts);
        reply.ReceivedCount = texts.Count;
        return reply;
    }

    public override async Task Bidi(IAsyncStreamReader<EchoRequest> requestStream, IServerStreamWriter<EchoReply> responseStream, ServerCallContext context)
    {
        var n = 0;
        await foreach (var message in requestStream.ReadAllAsync(context.CancellationToken))
        {
            probe.Received.Writer.TryWrite(message.Text);
            await responseStream.WriteAsync(new EchoReply { Text = "echo:" + message.Text, Index = n++, Payload = message.Payload });
        }
        context.ResponseTrailers.Add("x-bidi-count", n.ToString(System.Globalization.CultureInfo.InvariantCulture));
    }

    private static void FailIfAsked(int code, string message)
    {
        if (code != 0) throw new RpcException(new Status((StatusCode)code, message), new Metadata { { "x-error-trailer", "error-detail" } });
    }

    private static EchoReply Describe(ServerCallContext context)
    {
        var http = context.GetHttpContext();
        var reply = new EchoReply { Protocol = http.Request.Protocol, Path = http.Request.Path.Value ?? "" };
        foreach (var h in http.Request.Headers) reply.RequestHeaders[h.Key.ToLowerInvariant()] = h.Value.ToString();
        return reply;
    }
}
