using System.Net;
using System.Net.Sockets;
using System.Threading.Tasks.Sources;

namespace CSharpEnvoy.DataPlane.Event;

/// <summary>
/// A non-blocking <see cref="Socket"/> driven by a <see cref="Dispatcher"/> (Envoy's <c>IoHandle</c> with its file
/// event): one receive and one send may be outstanding at a time, and each completes inline on the dispatcher thread.
/// </summary>
/// <remarks>
/// Readiness is tracked per direction with an event count the dispatcher bumps on every edge and the count last seen
/// when the socket turned out drained. A receive tries the socket only when an edge came since, and a short read
/// (fewer bytes than the buffer holds) counts as drained: a byte arriving after the read began raises a new edge,
/// which bumps the count. Sends always try first; only a full socket buffer makes them wait for an edge.
/// A waiting operation and the dispatcher hand it over with one exchange each, so neither can miss the other.
/// </remarks>
internal sealed class IoSocket : IDisposable
{
    private readonly Socket _socket;
    private readonly Dispatcher _dispatcher;
    private readonly int _fd;
    private readonly Operation _read;
    private readonly Operation _write;
    private volatile bool _closed;
    private int _disposed;

    /// <summary>The dispatcher's slot and its generation (set by <see cref="Dispatcher.Register"/>).</summary>
    internal int Slot;
    internal uint Generation;

    private IoSocket(Socket socket, Dispatcher dispatcher)
    {
        _socket = socket;
        _dispatcher = dispatcher;
        _fd = (int)socket.SafeHandle.DangerousGetHandle();
        _read = new Operation(this, isRead: true);
        _write = new Operation(this, isRead: false);
        dispatcher.Register(this, _fd);
    }

    public Socket Socket => _socket;

    /// <summary>The dispatcher whose thread this socket's readers and writers resume on.</summary>
    public Dispatcher Dispatcher => _dispatcher;

    /// <summary>Opens a connection without .NET's socket engine: a non-blocking connect, then the first writable
    /// edge. <paramref name="ct"/> (a connect timeout, the request going away) closes the socket and throws
    /// <see cref="OperationCanceledException"/>.</summary>
    public static async ValueTask<IoSocket> ConnectAsync(Socket socket, EndPoint endPoint, CancellationToken ct)
    {
        ct.ThrowIfCancellationRequested();
        socket.Blocking = false;
        var pending = false;
        try
        {
            socket.Connect(endPoint);
        }
        catch (SocketException e) when (e.SocketErrorCode is SocketError.WouldBlock or SocketError.InProgress)
        {
            pending = true;
        }
        var io = new IoSocket(socket, Dispatcher.ForNewSocket());
        if (!pending) return io;
        try
        {
            using (ct.UnsafeRegister(static s => ((IoSocket)s!).Dispose(), io))
                await io.WaitForEdgeAsync(io._write).ConfigureAwait(false);
            ct.ThrowIfCancellationRequested();
            var error = socket.GetSocketOption(SocketOptionLevel.Socket, SocketOptionName.Error) is int e ? (SocketError)e : SocketError.SocketError;
            if (error != SocketError.Success) throw new SocketException((int)error);
            return io;
        }
        catch (Exception e)
        {
            io.Dispose();
            if (ct.IsCancellationRequested && e is not OperationCanceledException) throw new OperationCanceledException(ct);
            throw;
        }
    }

    /// <summary>Takes over an accepted socket (already non-blocking).</summary>
    public static IoSocket Accepted(Socket socket) => new(socket, Dispatcher.ForNewSocket());

    /// <summary>Completes once the socket may have something to read (at once if it was not found drained), without
    /// reading: an idle connection waits here holding no buffer.</summary>
    public ValueTask<int> WaitReadableAsync() => WaitForEdgeAsync(_read);

    /// <summary>Receives into <paramref name="buffer"/>; 0 at the end of the stream.</summary>
    public ValueTask<int> ReceiveAsync(Memory<byte> buffer)
    {
        var op = _read;
        while (true)
        {
            var seen = Volatile.Read(ref op.Events);
            if (seen != op.Seen || op.Sticky)
            {
                var n = _socket.Receive(buffer.Span, SocketFlags.None, out var error);
                if (error == SocketError.Success)
                {
                    if (n > 0 && n < buffer.Length) op.Seen = seen;
                    return new ValueTask<int>(n);
                }
                if (error != SocketError.WouldBlock) return ValueTask.FromException<int>(new SocketException((int)error));
                op.Seen = seen;
            }
            op.Buffer = buffer;
            if (op.Park()) return new ValueTask<int>(op, op.Version);
            if (_closed) return ValueTask.FromException<int>(Aborted());
        }
    }

    /// <summary>Sends what the socket buffer takes of <paramref name="data"/> (at least one byte); the count.</summary>
    public ValueTask<int> SendAsync(ReadOnlyMemory<byte> data)
    {
        var op = _write;
        while (true)
        {
            var seen = Volatile.Read(ref op.Events);
            var n = _socket.Send(data.Span, SocketFlags.None, out var error);
            if (error == SocketError.Success) return new ValueTask<int>(n);
            if (error != SocketError.WouldBlock) return ValueTask.FromException<int>(new SocketException((int)error));
            op.Seen = seen;
            op.Data = data;
            if (op.Park()) return new ValueTask<int>(op, op.Version);
            if (_closed) return ValueTask.FromException<int>(Aborted());
        }
    }

    /// <summary>Completes at the direction's next edge, or at once when one came since it was last found drained.</summary>
    private ValueTask<int> WaitForEdgeAsync(Operation op)
    {
        if (op.Ready) return new ValueTask<int>(0);
        op.Probe = true;
        if (op.Park()) return new ValueTask<int>(op, op.Version);
        op.Probe = false;
        return _closed ? ValueTask.FromException<int>(Aborted()) : new ValueTask<int>(0);
    }

    /// <summary>On the dispatcher thread: an edge.</summary>
    internal void OnEvents(uint events)
    {
        if ((events & (Epoll.EPOLLERR | Epoll.EPOLLHUP | Epoll.EPOLLRDHUP)) != 0)
        {
            // The end of the stream (or an error) stays readable without further edges: every receive tries from now.
            _read.Sticky = true;
            if ((events & (Epoll.EPOLLERR | Epoll.EPOLLHUP)) != 0) _write.Sticky = true;
        }
        if ((events & (Epoll.EPOLLIN | Epoll.EPOLLERR | Epoll.EPOLLHUP | Epoll.EPOLLRDHUP)) != 0)
        {
            Interlocked.Increment(ref _read.Events);
            if (_read.TakeBack() && !_read.TryCompleteProbe()) Complete(_read);
        }
        if ((events & (Epoll.EPOLLOUT | Epoll.EPOLLERR | Epoll.EPOLLHUP)) != 0)
        {
            Interlocked.Increment(ref _write.Events);
            if (_write.TakeBack() && !_write.TryCompleteProbe()) Complete(_write);
        }
    }

    /// <summary>On the dispatcher thread, after an edge: the waiting receive or send, tried again.</summary>
    private void Complete(Operation op)
    {
        while (true)
        {
            var seen = Volatile.Read(ref op.Events);
            int n;
            SocketError error;
            try
            {
                n = op.IsRead
                    ? _socket.Receive(op.Buffer.Span, SocketFlags.None, out error)
                    : _socket.Send(op.Data.Span, SocketFlags.None, out error);
            }
            catch (ObjectDisposedException)
            {
                op.Fail(Aborted());
                return;
            }
            if (error == SocketError.WouldBlock)
            {
                op.Seen = seen;
                if (op.Park()) return;
                continue; // another edge came, or the socket closed: the retry says which
            }
            if (error != SocketError.Success)
            {
                op.Fail(new SocketException((int)error));
                return;
            }
            // A short read leaves the socket drained, as in ReceiveAsync.
            if (op.IsRead && n > 0 && n < op.Buffer.Length) op.Seen = seen;
            op.Buffer = default;
            op.Data = default;
            op.Succeed(n);
            return;
        }
    }

    private static SocketException Aborted() => new((int)SocketError.OperationAborted);

    /// <summary>Shuts both directions down (a FIN after what was sent); errors are moot here.</summary>
    public void Shutdown()
    {
        try
        {
            _socket.Shutdown(SocketShutdown.Both);
        }
        catch (Exception e) when (e is SocketException or ObjectDisposedException)
        {
        }
    }

    /// <summary>Closes the socket; a waiting receive or send fails with <see cref="SocketError.OperationAborted"/>.</summary>
    public void Dispose()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0) return;
        _closed = true;
        _dispatcher.Unregister(this, _fd);
        _socket.Dispose();
        if (_read.TakeBack()) _read.Fail(Aborted());
        if (_write.TakeBack()) _write.Fail(Aborted());
    }

    /// <summary>One direction: its readiness counts and the operation waiting on it.</summary>
    private sealed class Operation(IoSocket owner, bool isRead) : IValueTaskSource<int>
    {
        private ManualResetValueTaskSourceCore<int> _core; // continuations run inline, on whichever thread completes
        private int _waiting;
        /// <summary>Edges seen by the dispatcher.</summary>
        public int Events;
        /// <summary>The edge count when the socket was last found drained (reads) or full (writes).</summary>
        public int Seen;
        public Memory<byte> Buffer;
        public ReadOnlyMemory<byte> Data;
        /// <summary>Set once the stream ended or failed: the socket stays ready without further edges.</summary>
        public volatile bool Sticky;
        /// <summary>Waiting for an edge only: a connect for its first writable one, an idle reader for a readable one.</summary>
        public bool Probe;

        public short Version => _core.Version;

        public bool IsRead => isRead;

        /// <summary>An edge came since the socket was last found drained, or it ended.</summary>
        public bool Ready => Volatile.Read(ref Events) != Seen || Sticky;

        /// <summary>Hands the operation to the dispatcher; false when an edge came (or the socket closed) since the
        /// last try, and the caller keeps it and tries again.</summary>
        public bool Park()
        {
            Interlocked.Exchange(ref _waiting, 1);
            if (!Ready && !owner._closed) return true;
            // Whoever exchanges the flag back owns the operation: if the dispatcher did, it completes it.
            return !TakeBack();
        }

        public bool TakeBack() => Interlocked.Exchange(ref _waiting, 0) == 1;

        /// <summary>Completes a wait for an edge only (once taken back); false when a receive or send waits.</summary>
        public bool TryCompleteProbe()
        {
            if (!Probe) return false;
            Probe = false;
            _core.SetResult(0);
            return true;
        }

        public void Succeed(int n) => _core.SetResult(n);

        public void Fail(Exception e)
        {
            Buffer = default;
            Data = default;
            Probe = false;
            _core.SetException(e);
        }

        public int GetResult(short token)
        {
            try
            {
                return _core.GetResult(token);
            }
            finally
            {
                _core.Reset();
            }
        }

        public ValueTaskSourceStatus GetStatus(short token) => _core.GetStatus(token);

        public void OnCompleted(Action<object?> continuation, object? state, short token, ValueTaskSourceOnCompletedFlags flags)
            => _core.OnCompleted(continuation, state, token, flags);

        public override string ToString() => IsRead ? "receive" : "send";
    }
}
