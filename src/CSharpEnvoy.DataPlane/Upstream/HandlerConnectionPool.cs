namespace CSharpEnvoy.DataPlane.Upstream;

/// <summary>
/// A host's connections for one cluster on the SocketsHttpHandler path (TLS and HTTP/2 clusters, upgrades): a handler
/// of its own per host, so that the host's connections can be drained without touching the other hosts', as Envoy
/// keeps connection pools per host. Made on the host's first request (<see cref="Cluster.AcquireHandlerPool"/>).
/// </summary>
/// <remarks>
/// Every request holds the pool from before it picks the handler until its exchange (body, trailers, an upgraded
/// tunnel) is over (<see cref="TryAcquire"/>, <see cref="Release"/>). A pool that drains (its host left the cluster,
/// or the cluster left the cluster map) closes its handler, and with it every connection, once the last holder lets
/// go, as Envoy's <c>DrainBehavior::DrainAndDelete</c>: no connection of a request in flight is cut, and none stays
/// open after it. Holders and the closed state share one counter (-1: closed), so a request cannot take a pool that
/// is being closed: it makes a new one, which drains after that request.
/// </remarks>
internal sealed class HandlerConnectionPool
{
    private readonly HttpMessageInvoker _invoker;
    private int _holders; // requests holding the pool; -1 once closed
    private volatile bool _draining;

    public HandlerConnectionPool(Cluster cluster, HttpMessageHandler handler)
    {
        Cluster = cluster;
        _invoker = new HttpMessageInvoker(handler, disposeHandler: true);
    }

    public Cluster Cluster { get; }

    /// <summary>The handler of the host's connections; used only between <see cref="TryAcquire"/> and
    /// <see cref="Release"/>.</summary>
    public HttpMessageInvoker Invoker => _invoker;

    /// <summary>Whether its handler is closed (the pool drained and its last request finished).</summary>
    public bool Closed => Volatile.Read(ref _holders) < 0;

    /// <summary>Holds the pool for a request; false when it is already closed.</summary>
    public bool TryAcquire()
    {
        while (true)
        {
            var n = Volatile.Read(ref _holders);
            if (n < 0) return false;
            if (Interlocked.CompareExchange(ref _holders, n + 1, n) == n) return true;
        }
    }

    /// <summary>The request's exchange is over; the last one out of a draining pool closes it.</summary>
    public void Release()
    {
        if (Interlocked.Decrement(ref _holders) == 0 && _draining) TryClose();
    }

    /// <summary>No new request is meant for this pool any more: it closes when its last request is done (now, when
    /// none is in flight).</summary>
    public void Drain()
    {
        _draining = true;
        // Release decrements, then reads _draining; this writes it, then reads the count: one of them sees both.
        Interlocked.MemoryBarrier();
        TryClose();
    }

    /// <summary>Closes the handler now, whatever is in flight (the cluster is gone for good).</summary>
    public void Dispose()
    {
        Volatile.Write(ref _holders, -1);
        _invoker.Dispose();
    }

    private void TryClose()
    {
        if (Interlocked.CompareExchange(ref _holders, -1, 0) == 0) _invoker.Dispose();
    }
}
