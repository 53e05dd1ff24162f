using System.Net;
using System.Net.Sockets;
using System.Threading.Channels;
using Microsoft.AspNetCore.Connections;
using Microsoft.Extensions.Logging;

namespace CSharpEnvoy.DataPlane.Listener;

/// <summary>
/// The listening socket of one listener address, bound once and handed from one version of the listener to the next,
/// as Envoy's listener manager passes the socket of a replaced listener to its successor (Listeners: "Listener
/// updates"): the socket and its backlog outlive the Kestrel server of any one version, so a replacement never
/// refuses a connection. Each Kestrel server binds an <see cref="IConnectionListener"/> from <see cref="Factory"/>;
/// accepted connections go to the newest one still bound. The socket closes when the last one unbinds and no
/// <see cref="Retain"/> lease is left.
/// </summary>
internal sealed class ListenSocket
{
    private readonly IConnectionListener _transport;
    private readonly ILogger _logger;
    private readonly object _lock = new();
    /// <summary>The servers bound to the socket, oldest first; the last one gets new connections.</summary>
    private readonly List<Handoff> _bound = new(2);
    /// <summary>Connections accepted while no server is bound yet (between the bind and the first server's start).</summary>
    private readonly Queue<ConnectionContext> _waiting = new();
    private bool _closed;
    private bool _everBound;
    /// <summary>Open <see cref="Retain"/> leases: they keep the socket open while no server is bound.</summary>
    private int _leases;

    private ListenSocket(IConnectionListener transport, ILogger logger)
    {
        _transport = transport;
        _logger = logger;
        _ = Task.Run(AcceptLoopAsync);
    }

    /// <summary>The bound address (the real port when port 0 was asked for).</summary>
    public EndPoint EndPoint => _transport.EndPoint;

    /// <summary>A transport for one Kestrel server: its listener takes the connections of this socket once bound.</summary>
    public IConnectionListenerFactory Factory => new HandoffFactory(this);

    /// <summary>Binds and listens. Throws as the socket transport does (an <see cref="IOException"/> when the address is in use).</summary>
    public static async Task<ListenSocket> BindAsync(EndPoint endPoint, IConnectionListenerFactory transport, ILogger logger, CancellationToken ct)
    {
        var listener = await transport.BindAsync(endPoint, ct).ConfigureAwait(false);
        return new ListenSocket(listener, logger);
    }

    /// <summary>False once the socket closed (its last server unbound with no lease left).</summary>
    public bool IsOpen
    {
        get
        {
            lock (_lock) return !_closed;
        }
    }

    /// <summary>
    /// Keeps the socket open for a listener that takes it over before its server starts (Envoy's listener manager
    /// clones the socket of a draining listener on the same address for a new one, which may still be warming):
    /// connections accepted while no server is bound wait for the next one, as they would in the kernel's backlog.
    /// Null when the socket is already closed.
    /// </summary>
    public Lease? Retain()
    {
        lock (_lock)
        {
            if (_closed) return null;
            _leases++;
            return new Lease(this);
        }
    }

    private async ValueTask ReleaseAsync()
    {
        lock (_lock)
        {
            _leases--;
            if (_closed || _bound.Count > 0 || _leases > 0) return;
            _closed = true;
        }
        await CloseTransportAsync().ConfigureAwait(false);
    }

    /// <summary>Closes a socket no server ever bound (its first server failed to start).</summary>
    public async ValueTask CloseIfNeverBoundAsync()
    {
        lock (_lock)
        {
            if (_everBound || _closed || _leases > 0) return;
            _closed = true;
        }
        await CloseTransportAsync().ConfigureAwait(false);
    }

    private async Task AcceptLoopAsync()
    {
        while (true)
        {
            ConnectionContext? connection;
            try
            {
                connection = await _transport.AcceptAsync().ConfigureAwait(false);
            }
            catch (ObjectDisposedException)
            {
                return;
            }
            catch (SocketException ex)
            {
                // Out of descriptors and the like: Envoy keeps its listener; try again shortly.
                _logger.LogWarning("accept on {Address} failed: {Error}", EndPoint, ex.Message);
                await Task.Delay(10).ConfigureAwait(false);
                continue;
            }
            if (connection is null) return; // unbound
            Dispatch(connection);
        }
    }

    private void Dispatch(ConnectionContext connection)
    {
        lock (_lock)
        {
            if (_closed) connection.Abort();
            else if (_bound.Count == 0 || !_bound[^1].Queue.Writer.TryWrite(connection)) _waiting.Enqueue(connection);
        }
    }

    private void Attach(Handoff handoff)
    {
        lock (_lock)
        {
            _bound.Add(handoff);
            _everBound = true;
            while (_waiting.TryDequeue(out var c)) handoff.Queue.Writer.TryWrite(c);
        }
    }

    /// <summary>A server stops taking connections: what it had not taken yet goes to the newest server left; the socket
    /// closes when none is left.</summary>
    private async ValueTask DetachAsync(Handoff handoff)
    {
        bool close;
        lock (_lock)
        {
            if (!_bound.Remove(handoff)) return;
            handoff.Queue.Writer.TryComplete();
            close = _bound.Count == 0 && _leases == 0;
            if (close) _closed = true;
            while (handoff.Queue.Reader.TryRead(out var c))
            {
                if (close) c.Abort();
                else if (_bound.Count == 0) _waiting.Enqueue(c);
                else _bound[^1].Queue.Writer.TryWrite(c);
            }
        }
        if (close) await CloseTransportAsync().ConfigureAwait(false);
    }

    private async Task CloseTransportAsync()
    {
        await _transport.UnbindAsync().ConfigureAwait(false);
        await _transport.DisposeAsync().ConfigureAwait(false);
        lock (_lock)
            while (_waiting.TryDequeue(out var c)) c.Abort();
    }

    /// <summary>One <see cref="Retain"/>: disposing it (once) may close the socket.</summary>
    internal sealed class Lease(ListenSocket socket) : IAsyncDisposable
    {
        private int _released;

        public ListenSocket Socket => socket;

        public ValueTask DisposeAsync() => Interlocked.Exchange(ref _released, 1) == 0 ? socket.ReleaseAsync() : ValueTask.CompletedTask;
    }

    private sealed class HandoffFactory(ListenSocket socket) : IConnectionListenerFactory
    {
        public ValueTask<IConnectionListener> BindAsync(EndPoint endpoint, CancellationToken cancellationToken = default)
        {
            var handoff = new Handoff(socket);
            socket.Attach(handoff);
            return ValueTask.FromResult<IConnectionListener>(handoff);
        }
    }

    /// <summary>One Kestrel server's view of the socket: the connections dispatched to it.</summary>
    private sealed class Handoff(ListenSocket socket) : IConnectionListener
    {
        public readonly Channel<ConnectionContext> Queue = Channel.CreateUnbounded<ConnectionContext>(new UnboundedChannelOptions { SingleReader = true });

        public EndPoint EndPoint => socket.EndPoint;

        public async ValueTask<ConnectionContext?> AcceptAsync(CancellationToken cancellationToken = default)
        {
            try
            {
                return await Queue.Reader.ReadAsync(cancellationToken).ConfigureAwait(false);
            }
            catch (ChannelClosedException)
            {
                return null;
            }
        }

        public ValueTask UnbindAsync(CancellationToken cancellationToken = default) => socket.DetachAsync(this);

        public ValueTask DisposeAsync() => socket.DetachAsync(this);
    }
}
