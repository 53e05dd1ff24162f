using CSharpEnvoy.Config.Model.Cluster;
using CSharpEnvoy.DataPlane.Stats;

namespace CSharpEnvoy.DataPlane.Upstream;

/// <summary>One circuit breaker: a lock-free counter with a ceiling, and Envoy's <c>*_open</c> / <c>remaining_*</c> gauges.</summary>
internal sealed class ResourceLimit
{
    private long _current;
    private readonly Gauge _open;
    private readonly Gauge? _remaining;

    public ResourceLimit(long max, Gauge open, Gauge? remaining)
    {
        Max = max;
        _open = open;
        _remaining = remaining;
        _remaining?.Set(max);
    }

    public long Max { get; }
    public long Current => Volatile.Read(ref _current);

    /// <summary>Takes one unit unless the ceiling is reached (compare-and-swap, so concurrent callers never overshoot).</summary>
    public bool TryAcquire()
    {
        while (true)
        {
            var c = Volatile.Read(ref _current);
            if (c >= Max)
            {
                _open.Set(1);
                return false;
            }
            if (Interlocked.CompareExchange(ref _current, c + 1, c) == c)
            {
                Publish(c + 1);
                return true;
            }
        }
    }

    /// <summary>Counts a unit that cannot be refused (an upstream connection the pool already opened).</summary>
    public void Add() => Publish(Interlocked.Increment(ref _current));

    public void Release() => Publish(Interlocked.Decrement(ref _current));

    private void Publish(long current)
    {
        _open.Set(current >= Max ? 1 : 0);
        _remaining?.Set(Math.Max(0, Max - current));
    }
}

/// <summary>
/// A cluster's DEFAULT-priority circuit breakers (Envoy's ResourceManager) and the router's per-cluster retry and
/// overflow stats.
/// </summary>
internal sealed class ResourceManager
{
    public ResourceManager(CircuitBreakersModel model, StatsStore store, string clusterName, bool high = false)
    {
        var cb = "cluster." + clusterName + (high ? ".circuit_breakers.high." : ".circuit_breakers.default.");
        var track = model.TrackRemaining;
        Connections = new ResourceLimit(model.MaxConnections, store.Gauge(cb, "cx_open"), track ? store.Gauge(cb, "remaining_cx") : null);
        PendingRequests = new ResourceLimit(model.MaxPendingRequests, store.Gauge(cb, "rq_pending_open"), track ? store.Gauge(cb, "remaining_pending") : null);
        Requests = new ResourceLimit(model.MaxRequests, store.Gauge(cb, "rq_open"), track ? store.Gauge(cb, "remaining_rq") : null);
        Retries = new ResourceLimit(model.MaxRetries, store.Gauge(cb, "rq_retry_open"), track ? store.Gauge(cb, "remaining_retries") : null);
        var p = "cluster." + clusterName + ".";
        UpstreamRqRetry = store.Counter(p, "upstream_rq_retry");
        UpstreamRqRetrySuccess = store.Counter(p, "upstream_rq_retry_success");
        UpstreamRqRetryLimitExceeded = store.Counter(p, "upstream_rq_retry_limit_exceeded");
        UpstreamRqRetryOverflow = store.Counter(p, "upstream_rq_retry_overflow");
        UpstreamRqRetryBackoffExponential = store.Counter(p, "upstream_rq_retry_backoff_exponential");
        UpstreamRqPerTryTimeout = store.Counter(p, "upstream_rq_per_try_timeout");
        UpstreamRqPendingOverflow = store.Counter(p, "upstream_rq_pending_overflow");
        UpstreamCxOverflow = store.Counter(p, "upstream_cx_overflow");
    }

    public ResourceLimit Connections { get; }
    public ResourceLimit PendingRequests { get; }
    public ResourceLimit Requests { get; }
    public ResourceLimit Retries { get; }

    public Counter UpstreamRqRetry { get; }
    public Counter UpstreamRqRetrySuccess { get; }
    public Counter UpstreamRqRetryLimitExceeded { get; }
    public Counter UpstreamRqRetryOverflow { get; }
    public Counter UpstreamRqRetryBackoffExponential { get; }
    public Counter UpstreamRqPerTryTimeout { get; }
    public Counter UpstreamRqPendingOverflow { get; }
    public Counter UpstreamCxOverflow { get; }
}
