using System.Buffers;
using System.Collections;
using System.IO.Pipelines;
using System.Net;
using System.Net.Sockets;
using Microsoft.AspNetCore.Connections;
using Microsoft.AspNetCore.Connections.Features;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.AspNetCore.Server.Kestrel.Transport.Sockets;

namespace CSharpEnvoy.DataPlane.Event;

/// <summary>
/// A Kestrel transport whose connections run on our <see cref="Dispatcher"/>s (Envoy's listener on a worker's
/// dispatcher) instead of .NET's socket engine: the same pipes and features as Kestrel's socket transport with
/// inline scheduling, minus the system calls that engine spends finding sockets empty (see <see cref="Dispatcher"/>).
/// Accepting stays on .NET's engine (it is rare); each accepted socket moves to a dispatcher.
/// </summary>
internal sealed class DispatcherTransportFactory : IConnectionListenerFactory
{
    /// <summary>Kestrel's defaults: the listen backlog, and how much either pipe buffers before it pushes back.</summary>
    private const int Backlog = 512;
    internal const long MaxReadBufferSize = 1024 * 1024, MaxWriteBufferSize = 64 * 1024;

    public ValueTask<IConnectionListener> BindAsync(EndPoint endpoint, CancellationToken cancellationToken = default)
    {
        Socket socket;
        try
        {
            socket = SocketTransportOptions.CreateDefaultBoundListenSocket(endpoint);
        }
        catch (SocketException e) when (e.SocketErrorCode == SocketError.AddressAlreadyInUse)
        {
            throw new AddressInUseException(e.Message, e);
        }
        try
        {
            socket.Listen(Backlog);
        }
        catch
        {
            socket.Dispose();
            throw;
        }
        return ValueTask.FromResult<IConnectionListener>(new Listener(socket));
    }

    private sealed class Listener(Socket socket) : IConnectionListener
    {
        private readonly EndPoint _endPoint = socket.LocalEndPoint!;
        private readonly MemoryPool<byte> _pool = BlockMemoryPool.Instance;
        private volatile bool _unbound;

        public EndPoint EndPoint => _endPoint;

        public async ValueTask<ConnectionContext?> AcceptAsync(CancellationToken cancellationToken = default)
        {
            while (true)
            {
                Socket accepted;
                try
                {
                    accepted = await socket.AcceptAsync(cancellationToken).ConfigureAwait(false);
                }
                catch (ObjectDisposedException)
                {
                    return null;
                }
                catch (SocketException e) when (e.SocketErrorCode == SocketError.OperationAborted || _unbound)
                {
                    return null;
                }
                catch (SocketException e) when (e.SocketErrorCode == SocketError.ConnectionReset)
                {
                    continue; // the client gave up while in the backlog
                }
                try
                {
                    if (accepted.AddressFamily is AddressFamily.InterNetwork or AddressFamily.InterNetworkV6) accepted.NoDelay = true;
                    return new DispatcherConnection(accepted, _pool);
                }
                catch (Exception e) when (e is SocketException or ObjectDisposedException)
                {
                    accepted.Dispose(); // reset before it was registered: nothing to serve
                }
            }
        }

        public ValueTask UnbindAsync(CancellationToken cancellationToken = default)
        {
            _unbound = true;
            socket.Dispose();
            return ValueTask.CompletedTask;
        }

        public ValueTask DisposeAsync()
        {
            _unbound = true;
            socket.Dispose();
            return ValueTask.CompletedTask;
        }
    }
}

/// <summary>
/// One accepted connection on a dispatcher: a receive loop that fills the input pipe and a send loop that drains the
/// output pipe, as Kestrel's socket connection has, both scheduled inline. While idle the receive loop holds no
/// buffer: it waits for the socket to become readable first (without the <c>recv(MSG_PEEK)</c> of .NET's zero-byte
/// read).
/// </summary>
internal sealed class DispatcherConnection : ConnectionContext, IFeatureCollection, IConnectionIdFeature, IConnectionTransportFeature,
    IConnectionItemsFeature, IMemoryPoolFeature, IConnectionLifetimeFeature, IConnectionEndPointFeature, IConnectionSocketFeature
{
    private const int MinReceiveBuffer = 4096;
    private static long s_lastId;

    private readonly IoSocket _io;
    private readonly MemoryPool<byte> _pool;
    private readonly Pipe _input;
    private readonly Pipe _output;
    private readonly CancellationTokenSource _closed = new();
    private readonly Task _processing;
    private string? _connectionId;
    private IDictionary<object, object?>? _items;
    private IDuplexPipe _transport;
    private EndPoint? _local, _remote;
    private volatile ConnectionAbortedException? _abortReason;
    private int _revision;
    private int _closedQueued;
    /// <summary>Features set by others (Kestrel's, ours), in a short list: a connection carries a handful.</summary>
    private KeyValuePair<Type, object>[] _extra = [];
    private int _extraCount;

    public DispatcherConnection(Socket socket, MemoryPool<byte> pool)
    {
        _pool = pool;
        _local = socket.LocalEndPoint;
        _remote = socket.RemoteEndPoint;
        socket.Blocking = false;
        _io = IoSocket.Accepted(socket);
        var inline = PipeScheduler.Inline;
        _input = new Pipe(new PipeOptions(pool, readerScheduler: inline, writerScheduler: inline,
            pauseWriterThreshold: DispatcherTransportFactory.MaxReadBufferSize, resumeWriterThreshold: DispatcherTransportFactory.MaxReadBufferSize / 2,
            useSynchronizationContext: false));
        _output = new Pipe(new PipeOptions(pool, readerScheduler: inline, writerScheduler: inline,
            pauseWriterThreshold: DispatcherTransportFactory.MaxWriteBufferSize, resumeWriterThreshold: DispatcherTransportFactory.MaxWriteBufferSize / 2,
            useSynchronizationContext: false));
        _transport = new DuplexPipe(_input.Reader, _output.Writer);
        _processing = RunAsync();
    }

    // ---- ConnectionContext ----

    public override string ConnectionId
    {
        get => _connectionId ??= "D" + Interlocked.Increment(ref s_lastId).ToString("X12", System.Globalization.CultureInfo.InvariantCulture);
        set => _connectionId = value;
    }

    public override IFeatureCollection Features => this;

    public override IDictionary<object, object?> Items
    {
        get => _items ??= new ConnectionItems();
        set => _items = value;
    }

    public override IDuplexPipe Transport
    {
        get => _transport;
        set => _transport = value;
    }

    public override EndPoint? LocalEndPoint
    {
        get => _local;
        set => _local = value;
    }

    public override EndPoint? RemoteEndPoint
    {
        get => _remote;
        set => _remote = value;
    }

    public override CancellationToken ConnectionClosed
    {
        get => _closed.Token;
        set => throw new NotSupportedException();
    }

    public Socket Socket => _io.Socket;

    MemoryPool<byte> IMemoryPoolFeature.MemoryPool => _pool;

    public override void Abort(ConnectionAbortedException abortReason)
    {
        _abortReason ??= abortReason;
        // As Kestrel's socket transport: FIN, close (a send in progress fails), then the send loop ends.
        _io.Shutdown();
        _io.Dispose();
        _output.Reader.CancelPendingRead();
    }

    public override async ValueTask DisposeAsync()
    {
        // The pipes this transport made, whatever middleware put in Transport since.
        _input.Reader.Complete();
        _output.Writer.Complete();
        await _processing.ConfigureAwait(false);
        _closed.Dispose();
    }

    // ---- the loops ----

    /// <summary>Both loops; the send loop closes the socket when it ends, which ends the receive loop.</summary>
    private Task RunAsync() => Task.WhenAll(ReceiveLoopAsync(), SendLoopAsync());

    /// <summary>The connection is closed for the application once the client's side ended (as Kestrel signals it: a
    /// request in flight is aborted on a client's FIN). Off the dispatcher thread: callbacks may do anything.</summary>
    private void QueueClosed()
    {
        if (Interlocked.Exchange(ref _closedQueued, 1) == 0) ThreadPool.UnsafeQueueUserWorkItem(static c => c.FireClosed(), this, preferLocal: false);
    }

    private void FireClosed()
    {
        try
        {
            _closed.Cancel(throwOnFirstException: false);
        }
        catch (ObjectDisposedException)
        {
        }
    }

    private async Task ReceiveLoopAsync()
    {
        var writer = _input.Writer;
        Exception? error = null;
        try
        {
            while (true)
            {
                // Idle connections wait without a buffer.
                await _io.WaitReadableAsync().ConfigureAwait(false);
                var buffer = writer.GetMemory(MinReceiveBuffer);
                var n = await _io.ReceiveAsync(buffer).ConfigureAwait(false);
                if (n == 0) break; // FIN
                writer.Advance(n);
                var flush = await writer.FlushAsync().ConfigureAwait(false);
                if (flush.IsCompleted || flush.IsCanceled) break; // the application stopped reading
            }
        }
        catch (SocketException e) when (e.SocketErrorCode is SocketError.ConnectionReset)
        {
            error = new ConnectionResetException(e.Message, e);
        }
        catch (Exception e) when (e is SocketException or ObjectDisposedException)
        {
            // Closed under the loop (abort, or the send side finished first).
            error = _abortReason ?? new ConnectionAbortedException(e.Message, e);
        }
        catch (Exception e)
        {
            error = e;
        }
        finally
        {
            writer.Complete(_abortReason ?? error);
            QueueClosed();
        }
    }

    private async Task SendLoopAsync()
    {
        var reader = _output.Reader;
        Exception? error = null;
        try
        {
            while (true)
            {
                var result = await reader.ReadAsync().ConfigureAwait(false);
                if (result.IsCanceled) break;
                var buffer = result.Buffer;
                foreach (var segment in buffer)
                {
                    var data = segment;
                    while (data.Length > 0) data = data[await _io.SendAsync(data).ConfigureAwait(false)..];
                }
                reader.AdvanceTo(buffer.End);
                if (result.IsCompleted) break;
            }
        }
        catch (Exception e)
        {
            error = e;
        }
        finally
        {
            // Kestrel's order: shut the socket down (FIN after what was sent), then close it, which ends the receive loop.
            _io.Shutdown();
            reader.Complete(error);
            _io.Dispose();
        }
    }

    // ---- features ----

    string IConnectionIdFeature.ConnectionId { get => ConnectionId; set => ConnectionId = value; }
    IDuplexPipe IConnectionTransportFeature.Transport { get => Transport; set => Transport = value; }
    IDictionary<object, object?> IConnectionItemsFeature.Items { get => Items; set => Items = value; }
    CancellationToken IConnectionLifetimeFeature.ConnectionClosed { get => ConnectionClosed; set => throw new NotSupportedException(); }
    void IConnectionLifetimeFeature.Abort() => Abort(new ConnectionAbortedException("The connection was aborted by the application via IConnectionLifetimeFeature.Abort()."));

    bool IFeatureCollection.IsReadOnly => false;
    int IFeatureCollection.Revision => _revision;

    object? IFeatureCollection.this[Type key]
    {
        get
        {
            for (var i = 0; i < _extraCount; i++)
                if (_extra[i].Key == key) return _extra[i].Value;
            return OwnFeature(key);
        }
        set
        {
            _revision++;
            for (var i = 0; i < _extraCount; i++)
            {
                if (_extra[i].Key != key) continue;
                if (value is null)
                {
                    _extra[i] = _extra[--_extraCount];
                    _extra[_extraCount] = default;
                }
                else _extra[i] = new(key, value);
                return;
            }
            if (value is null) return;
            if (_extraCount == _extra.Length) Array.Resize(ref _extra, Math.Max(4, _extra.Length * 2));
            _extra[_extraCount++] = new(key, value);
        }
    }

    private object? OwnFeature(Type key) =>
        key == typeof(IConnectionIdFeature) || key == typeof(IConnectionTransportFeature) || key == typeof(IConnectionItemsFeature)
        || key == typeof(IMemoryPoolFeature) || key == typeof(IConnectionLifetimeFeature) || key == typeof(IConnectionEndPointFeature)
        || key == typeof(IConnectionSocketFeature) ? this : null;

    TFeature? IFeatureCollection.Get<TFeature>() where TFeature : default => (TFeature?)((IFeatureCollection)this)[typeof(TFeature)];

    void IFeatureCollection.Set<TFeature>(TFeature? instance) where TFeature : default => ((IFeatureCollection)this)[typeof(TFeature)] = instance;

    IEnumerator<KeyValuePair<Type, object>> IEnumerable<KeyValuePair<Type, object>>.GetEnumerator()
    {
        var own = new[]
        {
            typeof(IConnectionIdFeature), typeof(IConnectionTransportFeature), typeof(IConnectionItemsFeature), typeof(IMemoryPoolFeature),
            typeof(IConnectionLifetimeFeature), typeof(IConnectionEndPointFeature), typeof(IConnectionSocketFeature),
        };
        for (var i = 0; i < _extraCount; i++) yield return _extra[i];
        foreach (var t in own)
        {
            var shadowed = false;
            for (var i = 0; i < _extraCount; i++) shadowed |= _extra[i].Key == t;
            if (!shadowed) yield return new(t, this);
        }
    }

    IEnumerator IEnumerable.GetEnumerator() => ((IEnumerable<KeyValuePair<Type, object>>)this).GetEnumerator();

    private sealed class DuplexPipe(PipeReader input, PipeWriter output) : IDuplexPipe
    {
        public PipeReader Input => input;
        public PipeWriter Output => output;
    }

    private sealed class ConnectionItems : Dictionary<object, object?>;
}
