using System.Buffers;
using System.Net;
using System.Net.Sockets;
using CSharpEnvoy.DataPlane.Event;
using Microsoft.AspNetCore.Connections;
using Microsoft.AspNetCore.Connections.Features;

namespace CSharpEnvoy.IntegrationTests.Event;

/// <summary>
/// The Kestrel transport on our dispatchers, on its own: bytes both ways through the pipes, a client's FIN, an abort
/// from the application, the closed token, unbinding, and an address already taken.
/// </summary>
public sealed class DispatcherTransportTests : IAsyncLifetime
{
    private static readonly TimeSpan Bound = TimeSpan.FromSeconds(10);
    private IConnectionListener _listener = null!;

    public async Task InitializeAsync() => _listener = await new DispatcherTransportFactory().BindAsync(new IPEndPoint(IPAddress.Loopback, 0));

    public async Task DisposeAsync()
    {
        await _listener.UnbindAsync();
        await _listener.DisposeAsync();
    }

    private async Task<(Socket Client, ConnectionContext Server)> ConnectAsync()
    {
        var accept = _listener.AcceptAsync().AsTask();
        var client = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        await client.ConnectAsync(_listener.EndPoint).WaitAsync(Bound);
        var server = await accept.WaitAsync(Bound);
        Assert.NotNull(server);
        return (client, server!);
    }

    [Fact]
    public async Task BytesGoBothWays_AndTheFeaturesDescribeTheConnection()
    {
        var (client, server) = await ConnectAsync();
        await using var _ = server;
        using var __ = client;

        Assert.Equal(client.LocalEndPoint, server.RemoteEndPoint);
        Assert.Equal(client.RemoteEndPoint, server.LocalEndPoint);
        Assert.NotNull(server.Features.Get<IConnectionSocketFeature>()?.Socket);
        Assert.NotNull(server.Features.Get<IMemoryPoolFeature>()?.MemoryPool);
        server.Features.Set(new Marker());
        Assert.NotNull(server.Features.Get<Marker>());

        var request = new byte[100_000];
        Random.Shared.NextBytes(request);
        await client.SendAsync(request).WaitAsync(Bound);
        var got = new List<byte>();
        while (got.Count < request.Length)
        {
            var result = await server.Transport.Input.ReadAsync().AsTask().WaitAsync(Bound);
            got.AddRange(result.Buffer.ToArray());
            server.Transport.Input.AdvanceTo(result.Buffer.End);
        }
        Assert.Equal(request, got.ToArray());

        await server.Transport.Output.WriteAsync("pong"u8.ToArray()).AsTask().WaitAsync(Bound);
        var reply = new byte[4];
        Assert.Equal(4, await client.ReceiveAsync(reply).WaitAsync(Bound));
        Assert.Equal("pong"u8.ToArray(), reply);
    }

    [Fact]
    public async Task AClientFin_CompletesTheInput_SignalsClosed_AndTheResponseStillGoesOut()
    {
        var (client, server) = await ConnectAsync();
        await using var _ = server;
        using var __ = client;

        await client.SendAsync("last words"u8.ToArray()).WaitAsync(Bound);
        client.Shutdown(SocketShutdown.Send);
        var read = new List<byte>();
        while (true)
        {
            var result = await server.Transport.Input.ReadAsync().AsTask().WaitAsync(Bound);
            read.AddRange(result.Buffer.ToArray());
            server.Transport.Input.AdvanceTo(result.Buffer.End);
            if (result.IsCompleted) break;
        }
        Assert.Equal("last words"u8.ToArray(), read.ToArray());
        // Closed for the application at the client's FIN (a request in flight is aborted), as Kestrel signals it.
        await WaitForAsync(server.ConnectionClosed);

        await server.Transport.Output.WriteAsync("bye"u8.ToArray()).AsTask().WaitAsync(Bound);
        await server.Transport.Output.CompleteAsync();
        var reply = new byte[16];
        var n = 0;
        while (true)
        {
            var m = await client.ReceiveAsync(reply.AsMemory(n)).AsTask().WaitAsync(Bound);
            if (m == 0) break;
            n += m;
        }
        Assert.Equal("bye"u8.ToArray(), reply[..n]);
    }

    [Fact]
    public async Task AnAbort_ClosesTheSocket_EvenWithASendStuckOnAClientThatDoesNotRead()
    {
        var (client, server) = await ConnectAsync();
        await using var _ = server;
        using var __ = client;

        // Far more than the socket buffers hold: the send loop ends up waiting for the client.
        var write = server.Transport.Output.WriteAsync(new byte[32 << 20]).AsTask();
        server.Abort(new ConnectionAbortedException("test abort"));
        await WaitForAsync(server.ConnectionClosed);

        // The client sees the end of the stream (or a reset) after whatever had been sent.
        var sink = new byte[1 << 20];
        try
        {
            while (await client.ReceiveAsync(sink).WaitAsync(Bound) > 0)
            {
            }
        }
        catch (SocketException e) when (e.SocketErrorCode == SocketError.ConnectionReset)
        {
        }
        // The application's write ends too (failed: the connection is gone).
        await Record.ExceptionAsync(() => write.WaitAsync(Bound));
        Assert.True(write.IsCompleted);
        // The input completes with the abort's reason.
        var input = await Assert.ThrowsAsync<ConnectionAbortedException>(async () =>
        {
            while (!(await server.Transport.Input.ReadAsync().AsTask().WaitAsync(Bound)).IsCompleted)
            {
            }
        });
        Assert.Equal("test abort", input.Message);
    }

    [Fact]
    public async Task Unbinding_EndsAccept_AndABoundAddressIsRefused()
    {
        var taken = Assert.IsType<IPEndPoint>(_listener.EndPoint);
        await Assert.ThrowsAsync<AddressInUseException>(async () => await new DispatcherTransportFactory().BindAsync(taken));

        var accept = _listener.AcceptAsync().AsTask();
        await _listener.UnbindAsync();
        Assert.Null(await accept.WaitAsync(Bound));
    }

    private static Task WaitForAsync(CancellationToken token)
    {
        var tcs = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        token.Register(() => tcs.TrySetResult());
        return tcs.Task.WaitAsync(Bound);
    }

    private sealed class Marker;
}
