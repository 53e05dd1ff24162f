using System.Collections.Concurrent;
using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using CSharpEnvoy.DataPlane.Event;

namespace CSharpEnvoy.DataPlane.Upstream.Http1;

/// <summary>
/// A host's HTTP/1.1 connections for one cluster (Envoy's <c>Http1::ConnPoolImpl</c>): idle connections wait in a
/// lock-free queue; a request takes one, or opens a new one below the cluster's <c>max_connections</c> (per host, as
/// the SocketsHttpHandler path counts it), or waits for one to come back. Connections opened here count in the
/// cluster's <c>upstream_cx_*</c> stats exactly as the SocketsHttpHandler path's do.
/// </summary>
/// <remarks>
/// Idle connections wait in one queue per dispatcher (see <see cref="Event.Dispatcher"/>), as Envoy keeps a pool per
/// worker: a request takes one of its own dispatcher's first, so the response resumes on the thread (and core) that
/// serves the downstream connection. Only when its dispatcher has none idle does it take another dispatcher's rather
/// than open a new connection; that one goes back to its own queue afterwards. Limits are per host, over all queues.
/// </remarks>
/// <remarks>
/// A pool drains (<see cref="Drain"/>) when its host leaves the cluster or the cluster leaves the cluster map, as
/// Envoy's pools do with <c>DrainBehavior::DrainAndDelete</c>: idle connections close at once, a busy one closes when
/// its exchange ends instead of going back to the pool, unless a request is waiting for a connection (one that chose
/// the host before it left): that request gets it, and it closes after that exchange.
/// </remarks>
internal sealed class Http1ConnectionPool
{
    /// <summary>Idle connections by dispatcher, each queue made when a connection of its dispatcher first goes idle.</summary>
    private readonly ConcurrentQueue<Http1Connection>?[] _idle;
    private readonly ConcurrentQueue<Waiter> _waiters = new();
    private readonly Cluster _cluster;
    private readonly Host _host;
    private readonly EndPoint _endPoint;
    private readonly int _max;
    private int _count; // open or opening
    private volatile bool _draining;
    private volatile bool _disposed;

    public Http1ConnectionPool(Cluster cluster, Host host)
    {
        _cluster = cluster;
        _host = host;
        _endPoint = host.EndPointAt(host.Address.Port);
        _max = (int)Math.Clamp(cluster.Model.CircuitBreakers.MaxConnections, 1, int.MaxValue);
        _idle = new ConcurrentQueue<Http1Connection>?[Dispatcher.Enabled ? Dispatcher.Count : 1];
        _maxRequests = cluster.Model.MaxRequestsPerConnection;
        var idle = cluster.Model.UpstreamIdleTimeout;
        IdleTimeoutTicks = idle > TimeSpan.Zero && idle != Timeout.InfiniteTimeSpan ? (long)(idle.TotalSeconds * Stopwatch.Frequency) : 0;
    }

    private readonly int _maxRequests;

    public Cluster Cluster => _cluster;
    /// <summary>How long a connection may sit idle in the pool (the cluster's idle_timeout; 0: for ever).</summary>
    public long IdleTimeoutTicks { get; }

    /// <summary>An idle connection, a new one, or the next one released. <paramref name="fresh"/> skips idle ones.</summary>
    public ValueTask<Http1Connection> AcquireAsync(bool fresh, CancellationToken ct)
    {
        if (_disposed) throw new ObjectDisposedException(nameof(Http1ConnectionPool));
        if (!fresh && TryTakeIdle(out var c)) return new ValueTask<Http1Connection>(c);
        if (Interlocked.Increment(ref _count) <= _max) return ConnectAsync(ct);
        Interlocked.Decrement(ref _count);
        return WaitAsync(ct);
    }

    /// <summary>An idle connection reserved for the caller: its own dispatcher's first, then any other's.</summary>
    private bool TryTakeIdle([System.Diagnostics.CodeAnalysis.NotNullWhen(true)] out Http1Connection? connection)
    {
        var queues = _idle;
        var home = Dispatcher.CurrentIndex;
        if ((uint)home >= (uint)queues.Length) home = 0;
        for (var i = 0; i < queues.Length; i++)
        {
            if (queues[(home + i) % queues.Length] is not { } q) continue;
            while (q.TryDequeue(out connection))
                if (connection.TryReserve()) return true;
        }
        connection = null;
        return false;
    }

    private ConcurrentQueue<Http1Connection> IdleQueueOf(Http1Connection connection)
    {
        ref var slot = ref _idle[connection.DispatcherIndex % _idle.Length];
        return Volatile.Read(ref slot) ?? Interlocked.CompareExchange(ref slot, new ConcurrentQueue<Http1Connection>(), null) ?? slot!;
    }

    private async ValueTask<Http1Connection> WaitAsync(CancellationToken ct)
    {
        var waiter = new Waiter();
        _waiters.Enqueue(waiter);
        // A connection released between the failed attempt and the enqueue is handed over here.
        ServeWaiters();
        Http1Connection? c;
        using (ct.UnsafeRegister(static s => ((Waiter)s!).TrySetCanceled(), waiter))
            c = await waiter.Task.ConfigureAwait(false);
        // null: a connection slot was freed for this request to open.
        return c ?? await ConnectAsync(ct).ConfigureAwait(false);
    }

    /// <summary>Opens a connection; the caller already holds its slot in <see cref="_count"/>.</summary>
    private async ValueTask<Http1Connection> ConnectAsync(CancellationToken ct)
    {
        var socket = Cluster.NewSocket(_endPoint);
        IoSocket? io = null;
        var stats = _cluster.Stats;
        using var connectTimeout = CancellationTokenSource.CreateLinkedTokenSource(ct);
        connectTimeout.CancelAfter(_cluster.Model.ConnectTimeout);
        try
        {
            // On a dispatcher of ours where there is one (see Event.Dispatcher), else on .NET's socket engine.
            if (Dispatcher.Enabled) io = await IoSocket.ConnectAsync(socket, _endPoint, connectTimeout.Token).ConfigureAwait(false);
            else await socket.ConnectAsync(_endPoint, connectTimeout.Token).ConfigureAwait(false);
        }
        catch (OperationCanceledException e)
        {
            socket.Dispose();
            SlotFreed();
            if (ct.IsCancellationRequested) throw;
            stats.UpstreamCxConnectFail.Inc();
            stats.UpstreamCxConnectTimeout.Inc();
            throw new HttpRequestException(HttpRequestError.ConnectionError, "connect timeout", new TimeoutException("connect timeout", e));
        }
        catch (SocketException e)
        {
            socket.Dispose();
            SlotFreed();
            stats.UpstreamCxConnectFail.Inc();
            throw new HttpRequestException(HttpRequestError.ConnectionError, e.Message, e);
        }
        catch
        {
            socket.Dispose();
            SlotFreed();
            throw;
        }
        var connection = new Http1Connection(socket, io, this);
        _cluster.OnConnectionOpened(_host, connection.LocalAddress);
        _cluster.Stats.UpstreamCxHttp1Total.Inc();
        if (_disposed)
        {
            connection.Close();
            throw new ObjectDisposedException(nameof(Http1ConnectionPool));
        }
        return connection;
    }

    /// <summary>Returns a connection after a complete exchange; one that may not be reused is closed instead.</summary>
    public void Release(Http1Connection connection, bool reusable)
    {
        // Draining: closed, unless a request waits for it (closing would make that request open another connection).
        // A connection that has carried max_requests_per_connection requests is done too.
        if (!reusable || _disposed || _draining && _waiters.IsEmpty || _maxRequests > 0 && connection.Exchanges >= _maxRequests)
        {
            connection.Close();
            return;
        }
        if (!connection.TryRelease()) return; // its idle timer or an abort closed it
        IdleQueueOf(connection).Enqueue(connection);
        if (!_waiters.IsEmpty) ServeWaiters();
        if (_draining || _disposed) CloseIdle();
    }

    /// <summary>Called once per connection when it closes.</summary>
    internal void OnClosed()
    {
        _cluster.OnConnectionClosed(_host);
        SlotFreed();
    }

    private void SlotFreed()
    {
        Interlocked.Decrement(ref _count);
        if (!_waiters.IsEmpty) ServeWaiters();
    }

    /// <summary>Hands idle connections, then free slots, to waiting requests, oldest first.</summary>
    private void ServeWaiters()
    {
        while (_waiters.TryPeek(out _))
        {
            if (TryTakeIdle(out var c))
            {
                if (!HandOver(c))
                {
                    // Nobody wanted it after all: back to the pool, or closed when the pool drains.
                    if (_draining || _disposed) c.Close();
                    else if (c.TryRelease())
                    {
                        IdleQueueOf(c).Enqueue(c);
                        if (_draining || _disposed) CloseIdle(); // Drain ran meanwhile
                    }
                    return;
                }
                continue;
            }
            if (Interlocked.Increment(ref _count) > _max)
            {
                Interlocked.Decrement(ref _count);
                return;
            }
            if (!HandOver(null))
            {
                Interlocked.Decrement(ref _count);
                return;
            }
        }
    }

    private bool HandOver(Http1Connection? connection)
    {
        while (_waiters.TryDequeue(out var w))
            if (w.TrySetResult(connection)) return true;
        return false;
    }

    private void CloseIdle()
    {
        foreach (var q in _idle)
            while (q is not null && q.TryDequeue(out var c))
                if (c.TryReserve()) c.Close();
    }

    /// <summary>The host left the cluster, or the cluster left the cluster map: idle connections close now, busy ones
    /// when their exchange ends (or after serving the requests already waiting for a connection). A request that
    /// chose the host just before it left is still served, on a connection that then closes.</summary>
    public void Drain()
    {
        _draining = true;
        // Release enqueues, then reads _draining; this writes it, then empties the queue: one of them closes the connection.
        Interlocked.MemoryBarrier();
        CloseIdle();
    }

    /// <summary>The cluster is gone for good (its drain time passed): idle connections close now, busy ones when their
    /// exchange ends, and waiting or new requests fail.</summary>
    public void Dispose()
    {
        _disposed = true;
        CloseIdle();
        while (_waiters.TryDequeue(out var w)) w.TrySetException(new ObjectDisposedException(nameof(Http1ConnectionPool)));
    }

    private sealed class Waiter() : TaskCompletionSource<Http1Connection?>(TaskCreationOptions.RunContinuationsAsynchronously);
}
