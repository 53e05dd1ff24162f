using System.Net;
using System.Net.Sockets;
using CSharpEnvoy.DataPlane.Event;

namespace CSharpEnvoy.IntegrationTests.Event;

/// <summary>
/// Sockets on our own epoll dispatcher, against a plain peer socket on 127.0.0.1: receives that wait for an edge and
/// ones that need not, short and full reads, sends that fill the socket buffer, the end of the stream, closing under a
/// waiting receive, and connects that fail.
/// </summary>
public sealed class IoSocketTests : IAsyncLifetime
{
    private static readonly TimeSpan Bound = TimeSpan.FromSeconds(10);
    private readonly TcpListener _listener = new(IPAddress.Loopback, 0);
    private IoSocket _client = null!;
    private Socket _peer = null!;

    public async Task InitializeAsync()
    {
        Assert.True(Dispatcher.Enabled, "the dispatcher runs wherever these tests do (Linux)");
        _listener.Start();
        var accept = _listener.AcceptSocketAsync();
        _client = await IoSocket.ConnectAsync(NewSocket(), _listener.LocalEndpoint, CancellationToken.None).AsTask().WaitAsync(Bound);
        _peer = await accept.WaitAsync(Bound);
    }

    public Task DisposeAsync()
    {
        _client.Dispose();
        _peer.Dispose();
        _listener.Stop();
        return Task.CompletedTask;
    }

    private static Socket NewSocket() => new(SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };

    [Fact]
    public async Task AReceiveWaitingForData_CompletesWhenItArrives()
    {
        var buffer = new byte[64];
        var receive = _client.ReceiveAsync(buffer);
        Assert.False(receive.IsCompleted); // nothing sent yet: it waits for the edge

        await _peer.SendAsync("hello"u8.ToArray());
        Assert.Equal(5, await receive.AsTask().WaitAsync(Bound));
        Assert.Equal("hello"u8.ToArray(), buffer[..5]);

        // The short read left the socket drained: the next receive waits again, and the next edge completes it.
        var next = _client.ReceiveAsync(buffer);
        Assert.False(next.IsCompleted);
        await _peer.SendAsync("world!"u8.ToArray());
        Assert.Equal(6, await next.AsTask().WaitAsync(Bound));
        Assert.Equal("world!"u8.ToArray(), buffer[..6]);
    }

    [Fact]
    public async Task AFullRead_LeavesTheRestReadableWithoutAnotherEdge()
    {
        await _peer.SendAsync("abcdefgh"u8.ToArray());
        var four = new byte[4];
        Assert.Equal(4, await _client.ReceiveAsync(four).AsTask().WaitAsync(Bound));
        Assert.Equal("abcd"u8.ToArray(), four);
        // The buffer was filled, so more may be waiting: the next receive tries the socket and finds it.
        Assert.Equal(4, await _client.ReceiveAsync(four).AsTask().WaitAsync(Bound));
        Assert.Equal("efgh"u8.ToArray(), four);
    }

    [Fact]
    public async Task ALargeTransferBothWays_ArrivesWholeAndInOrder()
    {
        var payload = new byte[4 << 20];
        Random.Shared.NextBytes(payload);

        // Client to peer: the peer reads only once the client's sends have filled the socket buffers.
        var sent = SendAllAsync(_client, payload);
        var received = new byte[payload.Length];
        for (var at = 0; at < received.Length;)
        {
            var n = await _peer.ReceiveAsync(received.AsMemory(at)).AsTask().WaitAsync(Bound);
            Assert.NotEqual(0, n);
            at += n;
        }
        await sent.WaitAsync(Bound);
        Assert.Equal(payload, received);

        // Peer to client, read in small pieces.
        var back = _peer.SendAsync(payload);
        var piece = new byte[3000];
        var got = new byte[payload.Length];
        for (var at = 0; at < got.Length;)
        {
            var n = await _client.ReceiveAsync(piece).AsTask().WaitAsync(Bound);
            Assert.NotEqual(0, n);
            piece.AsSpan(0, n).CopyTo(got.AsSpan(at));
            at += n;
        }
        await back.WaitAsync(Bound);
        Assert.Equal(payload, got);
    }

    private static async Task SendAllAsync(IoSocket socket, byte[] data)
    {
        for (var at = 0; at < data.Length;) at += await socket.SendAsync(data.AsMemory(at));
    }

    [Fact]
    public async Task ThePeerClosing_EndsTheStream_ForAWaitingReceiveAndTheNextOne()
    {
        var buffer = new byte[16];
        var receive = _client.ReceiveAsync(buffer);
        Assert.False(receive.IsCompleted);
        _peer.Shutdown(SocketShutdown.Send);
        Assert.Equal(0, await receive.AsTask().WaitAsync(Bound));
        Assert.Equal(0, await _client.ReceiveAsync(buffer).AsTask().WaitAsync(Bound));
    }

    [Fact]
    public async Task DataAndTheEndArrivingTogether_TheEndIsNotLostAfterAShortRead()
    {
        // Both are queued before the first receive (loopback delivers within the sender's call): the short read that
        // takes the data must not count the socket as drained, as no edge follows the end.
        await _peer.SendAsync("tail"u8.ToArray());
        _peer.Shutdown(SocketShutdown.Send);
        var buffer = new byte[64];
        Assert.Equal(4, await _client.ReceiveAsync(buffer).AsTask().WaitAsync(Bound));
        Assert.Equal(0, await _client.ReceiveAsync(buffer).AsTask().WaitAsync(Bound));
        Assert.Equal(0, await _client.ReceiveAsync(buffer).AsTask().WaitAsync(Bound));
    }

    [Fact]
    public async Task ClosingUnderAWaitingReceive_FailsIt_AndLaterCallsFailToo()
    {
        var receive = _client.ReceiveAsync(new byte[16]);
        Assert.False(receive.IsCompleted);
        _client.Dispose();
        var e = await Assert.ThrowsAsync<SocketException>(() => receive.AsTask().WaitAsync(Bound));
        Assert.Equal(SocketError.OperationAborted, e.SocketErrorCode);
        await Assert.ThrowsAnyAsync<ObjectDisposedException>(async () => await _client.SendAsync(new byte[1]));
    }

    [Fact]
    public async Task ConnectingToAClosedPort_FailsWithConnectionRefused()
    {
        var probe = new TcpListener(IPAddress.Loopback, 0);
        probe.Start();
        var closed = probe.LocalEndpoint;
        probe.Stop();
        var e = await Assert.ThrowsAsync<SocketException>(() => IoSocket.ConnectAsync(NewSocket(), closed, CancellationToken.None).AsTask().WaitAsync(Bound));
        Assert.Equal(SocketError.ConnectionRefused, e.SocketErrorCode);
    }

    [Fact]
    public async Task ACanceledConnect_ThrowsOperationCanceled()
    {
        using var cts = new CancellationTokenSource();
        cts.Cancel();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => IoSocket.ConnectAsync(NewSocket(), _listener.LocalEndpoint, cts.Token).AsTask().WaitAsync(Bound));
    }

    [Fact]
    public async Task ManySocketsAtOnce_EachGetsItsOwnEvents()
    {
        // More sockets than the dispatcher's first slot table holds, and slots reused after closing.
        for (var round = 0; round < 2; round++)
        {
            var pairs = new List<(IoSocket Client, Socket Peer)>();
            try
            {
                for (var i = 0; i < 100; i++)
                {
                    var accept = _listener.AcceptSocketAsync();
                    var c = await IoSocket.ConnectAsync(NewSocket(), _listener.LocalEndpoint, CancellationToken.None).AsTask().WaitAsync(Bound);
                    pairs.Add((c, await accept.WaitAsync(Bound)));
                }
                var receives = new Task<int>[pairs.Count];
                var buffers = new byte[pairs.Count][];
                for (var i = 0; i < pairs.Count; i++) receives[i] = pairs[i].Client.ReceiveAsync(buffers[i] = new byte[8]).AsTask();
                for (var i = pairs.Count - 1; i >= 0; i--) await pairs[i].Peer.SendAsync(BitConverter.GetBytes(i));
                for (var i = 0; i < pairs.Count; i++)
                {
                    Assert.Equal(4, await receives[i].WaitAsync(Bound));
                    Assert.Equal(i, BitConverter.ToInt32(buffers[i]));
                }
            }
            finally
            {
                foreach (var (c, p) in pairs)
                {
                    c.Dispose();
                    p.Dispose();
                }
            }
        }
    }
}
