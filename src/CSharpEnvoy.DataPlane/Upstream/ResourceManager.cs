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
    private static readonly string[] s_open = ["cx_open", "rq_pending_open", "rq_open", "rq_retry_open"];
    private static readonly string[] s_remaining = ["remaining_cx", "remaining_pending", "remaining_rq", "remaining_retries"];
    private static readonly string[] s_counters =
    [
        "upstream_rq_retry", "upstream_rq_retry_success", "upstream_rq_retry_limit_exceeded", "upstream_rq_retry_overflow",
        "upstream_rq_retry_backoff_exponential", "upstream_rq_per_try_timeout", "upstream_rq_pending_overflow", "upstream_cx_overflow",
    ];

    public ResourceManager(CircuitBreakersModel model, StatsStore store, string clusterName, bool high = false)
    {
        var cb = "cluster." + clusterName + (high ? ".circuit_breakers.high." : ".circuit_breakers.default.");
        var open = store.GaugeSet(cb, s_open);
        var remaining = model.TrackRemaining ? store.GaugeSet(cb, s_remaining) : null;
        Connections = new ResourceLimit(model.MaxConnections, open[0], remaining?[0]);
        PendingRequests = new ResourceLimit(model.MaxPendingRequests, open[1], remaining?[1]);
        Requests = new ResourceLimit(model.MaxRequests, open[2], remaining?[2]);
        Retries = new ResourceLimit(model.MaxRetries, open[3], remaining?[3]);
        var c = store.CounterSet("cluster." + clusterName + ".", s_counters);
        (UpstreamRqRetry, UpstreamRqRetrySuccess, UpstreamRqRetryLimitExceeded, UpstreamRqRetryOverflow) = (c[0], c[1], c[2], c[3]);
        (UpstreamRqRetryBackoffExponential, UpstreamRqPerTryTimeout, UpstreamRqPendingOverflow, UpstreamCxOverflow) = (c[4], c[5], c[6], c[7]);
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
