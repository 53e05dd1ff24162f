using CSharpEnvoy.Config.Model.Cluster;
using CSharpEnvoy.DataPlane.Stats;
using Microsoft.Extensions.Logging;

namespace CSharpEnvoy.DataPlane.Upstream.HealthChecking;

/// <summary>Envoy's <c>cluster.&lt;name&gt;.health_check.*</c> stats.</summary>
internal sealed class HealthCheckStats
{
    public HealthCheckStats(StatsStore store, string clusterName)
    {
        var p = Prefix = "cluster." + clusterName + ".health_check.";
        Attempt = store.Counter(p, "attempt");
        Success = store.Counter(p, "success");
        Failure = store.Counter(p, "failure");
        NetworkFailure = store.Counter(p, "network_failure");
        PassiveFailure = store.Counter(p, "passive_failure");
        VerifyCluster = store.Counter(p, "verify_cluster");
        Healthy = store.Gauge(p, "healthy");
        Degraded = store.Gauge(p, "degraded");
    }

    public Counter Attempt { get; }
    public Counter Success { get; }
    public Counter Failure { get; }
    public Counter NetworkFailure { get; }
    public Counter PassiveFailure { get; }
    public Counter VerifyCluster { get; }
    public Gauge Healthy { get; }
    public Gauge Degraded { get; }
    public string Prefix { get; }
}

/// <summary>
/// A cluster's active health checker: one session per host, each a timer loop off the request path. A session
/// applies Envoy's rules (thresholds, the first check's fast path, edge and no-traffic intervals, jitter) and, when a
/// host's health flags change, asks the cluster to publish a new <see cref="PrioritySet"/>.
/// </summary>
internal sealed class HealthChecker : IDisposable
{
    private readonly Cluster _cluster;
    private readonly HealthCheckModel _model;
    private readonly IHealthCheck _check;
    private readonly UpstreamServices _services;
    private readonly ILogger _logger;
    private readonly Dictionary<Host, Session> _sessions = new(ReferenceEqualityComparer.Instance);
    private readonly object _lock = new();
    private readonly CancellationTokenSource _stop = new();
    private readonly HashSet<Host> _disabled = new(ReferenceEqualityComparer.Instance);

    public HealthChecker(Cluster cluster, HealthCheckModel model, StatsStore stats, UpstreamServices services, ILogger logger)
    {
        _cluster = cluster;
        _model = model;
        _services = services;
        _logger = logger;
        Stats = new HealthCheckStats(stats, cluster.Name);
        _check = model.Kind switch
        {
            HealthCheckKind.Tcp => new TcpHealthCheck(model, cluster),
            HealthCheckKind.Grpc => new GrpcHealthCheck(model, cluster),
            _ => new HttpHealthCheck(model, cluster),
        };
    }

    public HealthCheckStats Stats { get; }
    public HealthCheckModel Model => _model;

    /// <summary>Hosts new to the checker start failed and pending until their first check (Envoy's behaviour);
    /// endpoints with <c>disable_active_health_check</c> are left alone. Called before the host set is published.</summary>
    public void MarkNewHosts(Host[] hosts, Func<Host, bool> disabled)
    {
        lock (_lock)
            foreach (var h in hosts)
            {
                if (_sessions.ContainsKey(h) || _disabled.Contains(h)) continue;
                if (disabled(h))
                {
                    _disabled.Add(h);
                    continue;
                }
                h.SetHealthFlags(HostHealthFlags.FailedActiveHc | HostHealthFlags.PendingActiveHc, true);
            }
    }

    /// <summary>Starts sessions for new hosts and stops the sessions of removed ones.</summary>
    public void Sync(Host[] hosts)
    {
        lock (_lock)
        {
            var current = new HashSet<Host>(hosts, ReferenceEqualityComparer.Instance);
            foreach (var (h, s) in _sessions.ToArray())
                if (!current.Contains(h))
                {
                    s.Stop();
                    _sessions.Remove(h);
                }
            _disabled.IntersectWith(current);
            foreach (var h in hosts)
            {
                if (_sessions.ContainsKey(h) || _disabled.Contains(h)) continue;
                var s = new Session(this, h);
                _sessions[h] = s;
                s.Start();
            }
        }
        UpdateGauges();
    }

    /// <summary>Completes when every current host has had its first check (Envoy's cluster warming with active HC).</summary>
    public Task FirstRoundAsync(CancellationToken ct)
    {
        Task[] tasks;
        lock (_lock) tasks = _sessions.Values.Select(s => s.FirstCheck).ToArray();
        return Task.WhenAll(tasks).WaitAsync(ct);
    }

    /// <summary>The router saw <c>x-envoy-immediate-health-check-fail</c> on a response: a passive failure.</summary>
    public void ReportImmediateFailure(Host host)
    {
        Session? s;
        lock (_lock) _sessions.TryGetValue(host, out s);
        s?.Apply(HealthCheckResult.ImmediateFailure, passive: true);
    }

    private void UpdateGauges()
    {
        long healthy = 0, degraded = 0;
        foreach (var h in _cluster.PrioritySet.Hosts)
        {
            var f = h.HealthFlags;
            if ((f & HostHealthFlagsExtensions.Unhealthy) == 0) healthy++;
            if ((f & HostHealthFlags.DegradedActiveHc) != 0) degraded++;
        }
        Stats.Healthy.Set(healthy);
        Stats.Degraded.Set(degraded);
    }

    private TimeSpan WithJitter(TimeSpan baseTime)
    {
        var ms = (ulong)Math.Max(0, (long)baseTime.TotalMilliseconds);
        var percentMod = _model.IntervalJitterPercent * ms / 100;
        if (percentMod > 0) ms += _services.Random.Next() % percentMod;
        var jitter = (ulong)_model.IntervalJitter.TotalMilliseconds;
        if (jitter > 0) ms += _services.Random.Next() % jitter;
        return TimeSpan.FromMilliseconds(ms);
    }

    public void Dispose()
    {
        _stop.Cancel();
        lock (_lock)
        {
            foreach (var s in _sessions.Values) s.Stop();
            _sessions.Clear();
        }
        _check.Dispose();
    }

    private enum Transition { Unchanged, Changed, ChangePending }

    /// <summary>One host's check loop and its threshold counters (touched only under the session's lock).</summary>
    private sealed class Session(HealthChecker parent, Host host)
    {
        private readonly CancellationTokenSource _stop = CancellationTokenSource.CreateLinkedTokenSource(parent._stop.Token);
        private readonly TaskCompletionSource _first = new(TaskCreationOptions.RunContinuationsAsynchronously);
        private readonly object _lock = new();
        private uint _numHealthy;
        private uint _numUnhealthy;
        private bool _firstCheck = true;

        public Task FirstCheck => _first.Task;

        public void Start() => _ = Task.Run(RunAsync);

        public void Stop()
        {
            _stop.Cancel();
            _first.TrySetResult();
        }

        private async Task RunAsync()
        {
            var model = parent._model;
            var time = parent._services.Time;
            var ct = _stop.Token;
            try
            {
                if (model.InitialJitter > TimeSpan.Zero)
                    await Task.Delay(TimeSpan.FromMilliseconds(parent._services.Random.Next() % (ulong)Math.Max(1, model.InitialJitter.TotalMilliseconds)), time, ct).ConfigureAwait(false);
                while (!ct.IsCancellationRequested)
                {
                    parent.Stats.Attempt.Inc();
                    HealthCheckResult result;
                    using (var timeout = new CancellationTokenSource(model.Timeout, time))
                    using (var linked = CancellationTokenSource.CreateLinkedTokenSource(ct, timeout.Token))
                    {
                        try
                        {
                            result = await parent._check.CheckAsync(host, linked.Token).ConfigureAwait(false);
                        }
                        catch (OperationCanceledException) when (!ct.IsCancellationRequested)
                        {
                            result = HealthCheckResult.Timeout;
                        }
                        catch (Exception ex) when (!ct.IsCancellationRequested)
                        {
                            parent._logger.LogDebug("health check of {Host} in cluster '{Cluster}' failed: {Error}", host, parent._cluster.Name, ex.Message);
                            result = HealthCheckResult.NetworkFailure;
                        }
                    }
                    if (ct.IsCancellationRequested) break;
                    var (healthy, transition) = Apply(result, passive: false);
                    _first.TrySetResult();
                    await Task.Delay(NextInterval(healthy, transition), time, ct).ConfigureAwait(false);
                }
            }
            catch (OperationCanceledException)
            {
            }
            finally
            {
                _first.TrySetResult();
            }
        }

        private TimeSpan NextInterval(bool healthy, Transition transition)
        {
            var m = parent._model;
            TimeSpan baseTime;
            // Envoy: until the cluster has carried traffic, no_traffic_interval (no_traffic_healthy_interval once healthy).
            if (!parent._cluster.Stats.UpstreamCxTotal.Used && !parent._cluster.Stats.UpstreamRqTotal.Used)
                baseTime = healthy ? m.NoTrafficHealthyInterval : m.NoTrafficInterval;
            else if (!healthy)
                baseTime = transition == Transition.ChangePending ? m.UnhealthyEdgeInterval : m.UnhealthyInterval;
            else
                baseTime = transition == Transition.ChangePending ? m.HealthyEdgeInterval : m.Interval;
            return parent.WithJitter(baseTime);
        }

        /// <summary>Applies one result; returns whether the host now passes active HC and the kind of transition.</summary>
        public (bool Healthy, Transition Transition) Apply(HealthCheckResult result, bool passive)
        {
            var stats = parent.Stats;
            var changed = false;
            var transition = Transition.Unchanged;
            bool healthy;
            lock (_lock)
            {
                if (result is HealthCheckResult.Success or HealthCheckResult.Degraded)
                {
                    _numUnhealthy = 0;
                    if ((host.HealthFlags & HostHealthFlags.FailedActiveHc) != 0)
                    {
                        // Envoy: the very first success makes a host healthy at once (faster startup).
                        if (_firstCheck || ++_numHealthy == parent._model.HealthyThreshold)
                        {
                            changed |= host.SetHealthFlags(HostHealthFlags.FailedActiveHc, false);
                            transition = Transition.Changed;
                        }
                        else transition = Transition.ChangePending;
                    }
                    changed |= host.SetHealthFlags(HostHealthFlags.ExcludedViaImmediateHcFail | HostHealthFlags.ActiveHcTimeout, false);
                    changed |= host.SetHealthFlags(HostHealthFlags.DegradedActiveHc, result == HealthCheckResult.Degraded);
                    stats.Success.Inc();
                    // successful_active_health_check_uneject_host (default true): a passing check ends an ejection.
                    if (host.Outlier is { } om && parent._cluster.Model.OutlierDetection is { SuccessfulActiveHealthCheckUnejectHost: true } &&
                        (host.HealthFlags & HostHealthFlags.FailedOutlierCheck) != 0)
                        om.Detector.Uneject(host);
                }
                else
                {
                    _numHealthy = 0;
                    var network = result is HealthCheckResult.NetworkFailure or HealthCheckResult.Timeout;
                    if (result == HealthCheckResult.ImmediateFailure)
                        changed |= host.SetHealthFlags(HostHealthFlags.ExcludedViaImmediateHcFail, true);
                    if (result == HealthCheckResult.Timeout) changed |= host.SetHealthFlags(HostHealthFlags.ActiveHcTimeout, true);
                    if ((host.HealthFlags & HostHealthFlags.FailedActiveHc) == 0)
                    {
                        if ((!network && result != HealthCheckResult.RetriableFailure) || ++_numUnhealthy == parent._model.UnhealthyThreshold)
                        {
                            changed |= host.SetHealthFlags(HostHealthFlags.FailedActiveHc, true);
                            transition = Transition.Changed;
                        }
                        else transition = Transition.ChangePending;
                    }
                    stats.Failure.Inc();
                    if (network) stats.NetworkFailure.Inc();
                    else if (passive) stats.PassiveFailure.Inc();
                }
                if (!passive)
                {
                    changed |= host.SetHealthFlags(HostHealthFlags.PendingActiveHc, false);
                    _firstCheck = false;
                }
                healthy = (host.HealthFlags & HostHealthFlags.FailedActiveHc) == 0;
            }
            if (changed)
            {
                parent._cluster.OnHostHealthChanged();
                parent.UpdateGauges();
            }
            return (healthy, transition);
        }
    }
}
