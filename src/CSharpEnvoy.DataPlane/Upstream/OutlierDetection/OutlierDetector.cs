using CSharpEnvoy.Config.Model.Cluster;
using CSharpEnvoy.DataPlane.Stats;

namespace CSharpEnvoy.DataPlane.Upstream.OutlierDetection;

/// <summary>Envoy's ejection types, by their stat names.</summary>
internal enum EjectionType { Consecutive5xx, SuccessRate, ConsecutiveGatewayFailure, ConsecutiveLocalOriginFailure, LocalOriginSuccessRate, FailurePercentage, FailurePercentageLocalOrigin }

/// <summary>What the router saw of one upstream attempt that did not produce response headers.</summary>
internal enum LocalOriginResult { ConnectFailed, Timeout }

/// <summary>
/// One host's passive health state. The request path only touches the interlocked counters here; a threshold
/// crossing queues the ejection decision to the thread pool, where the detector takes it under its lock.
/// </summary>
internal sealed class HostOutlierMonitor(OutlierDetector detector, Host host)
{
    private int _consecutive5xx;
    private int _consecutiveGateway;
    private int _consecutiveLocal;
    private long _extTotal, _extSuccess, _localTotal, _localSuccess;

    public OutlierDetector Detector { get; } = detector;
    public Host Host { get; } = host;

    // Ejection state: touched only under the detector's lock.
    internal uint NumEjections;
    internal uint Backoff;
    internal DateTimeOffset? LastEjection;
    internal DateTimeOffset? LastUnejection;
    internal TimeSpan Jitter;
    /// <summary>Success rates of the last interval (-1 when not computed), shown by /clusters.</summary>
    public double SuccessRate { get; internal set; } = -1;
    public double LocalOriginSuccessRate { get; internal set; } = -1;

    /// <summary>An upstream response code (Envoy's putHttpResponseCode).</summary>
    public void PutHttpResponseCode(int code)
    {
        var m = Detector.Model;
        Interlocked.Increment(ref _extTotal);
        if (code >= 500 && code < 600)
        {
            if (code is 502 or 503 or 504)
            {
                if (Interlocked.Increment(ref _consecutiveGateway) == m.ConsecutiveGatewayFailure)
                    Detector.OnConsecutiveError(this, EjectionType.ConsecutiveGatewayFailure);
            }
            else Volatile.Write(ref _consecutiveGateway, 0);
            if (Interlocked.Increment(ref _consecutive5xx) == m.Consecutive5xx)
                Detector.OnConsecutiveError(this, EjectionType.Consecutive5xx);
        }
        else
        {
            Interlocked.Increment(ref _extSuccess);
            Volatile.Write(ref _consecutive5xx, 0);
            Volatile.Write(ref _consecutiveGateway, 0);
        }
        if (m.SplitExternalLocalOriginErrors) LocalOriginSuccess();
    }

    /// <summary>A connection failure or timeout; without the split these count as 503 / 504, as in Envoy.</summary>
    public void PutLocalOriginResult(LocalOriginResult result)
    {
        if (!Detector.Model.SplitExternalLocalOriginErrors)
        {
            PutHttpResponseCode(result == LocalOriginResult.Timeout ? 504 : 503);
            return;
        }
        Interlocked.Increment(ref _localTotal);
        if (Interlocked.Increment(ref _consecutiveLocal) == Detector.Model.ConsecutiveLocalOriginFailure)
            Detector.OnConsecutiveError(this, EjectionType.ConsecutiveLocalOriginFailure);
    }

    private void LocalOriginSuccess()
    {
        Interlocked.Increment(ref _localTotal);
        Interlocked.Increment(ref _localSuccess);
        Volatile.Write(ref _consecutiveLocal, 0);
    }

    internal void ResetCounter(EjectionType type)
    {
        switch (type)
        {
            case EjectionType.Consecutive5xx: Volatile.Write(ref _consecutive5xx, 0); break;
            case EjectionType.ConsecutiveGatewayFailure: Volatile.Write(ref _consecutiveGateway, 0); break;
            case EjectionType.ConsecutiveLocalOriginFailure: Volatile.Write(ref _consecutiveLocal, 0); break;
        }
    }

    internal void ResetAllConsecutive()
    {
        Volatile.Write(ref _consecutive5xx, 0);
        Volatile.Write(ref _consecutiveGateway, 0);
        Volatile.Write(ref _consecutiveLocal, 0);
    }

    /// <summary>Takes this interval's (total, success) counts and starts the next interval.</summary>
    internal (long Total, long Success, long LocalTotal, long LocalSuccess) SwapBuckets() =>
        (Interlocked.Exchange(ref _extTotal, 0), Interlocked.Exchange(ref _extSuccess, 0),
         Interlocked.Exchange(ref _localTotal, 0), Interlocked.Exchange(ref _localSuccess, 0));
}

/// <summary>Envoy's <c>cluster.&lt;name&gt;.outlier_detection.*</c> stats.</summary>
internal sealed class OutlierStats
{
    private readonly Counter[] _detected = new Counter[7];
    private readonly Counter[] _enforced = new Counter[7];
    private readonly Counter?[] _legacy = new Counter?[7];

    public OutlierStats(StatsStore s, string cluster)
    {
        var p = "cluster." + cluster + ".outlier_detection.";
        EjectionsActive = s.Gauge(p, "ejections_active");
        EjectionsOverflow = s.Counter(p, "ejections_overflow");
        EjectionsEnforcedTotal = s.Counter(p, "ejections_enforced_total");
        EjectionsTotal = s.Counter(p, "ejections_total");
        for (var i = 0; i < 7; i++)
        {
            var name = Name((EjectionType)i);
            _detected[i] = s.Counter(p + "ejections_detected_" + name);
            _enforced[i] = s.Counter(p + "ejections_enforced_" + name);
        }
        // Envoy's deprecated per-type counters (counted when detected).
        _legacy[(int)EjectionType.Consecutive5xx] = s.Counter(p, "ejections_consecutive_5xx");
        _legacy[(int)EjectionType.SuccessRate] = s.Counter(p, "ejections_success_rate");
    }

    public Gauge EjectionsActive { get; }
    public Counter EjectionsOverflow { get; }
    public Counter EjectionsEnforcedTotal { get; }
    public Counter EjectionsTotal { get; }

    public void Detected(EjectionType t)
    {
        _detected[(int)t].Inc();
        _legacy[(int)t]?.Inc();
    }

    public void Enforced(EjectionType t)
    {
        _enforced[(int)t].Inc();
        EjectionsEnforcedTotal.Inc();
    }

    public static string Name(EjectionType t) => t switch
    {
        EjectionType.Consecutive5xx => "consecutive_5xx",
        EjectionType.SuccessRate => "success_rate",
        EjectionType.ConsecutiveGatewayFailure => "consecutive_gateway_failure",
        EjectionType.ConsecutiveLocalOriginFailure => "consecutive_local_origin_failure",
        EjectionType.LocalOriginSuccessRate => "local_origin_success_rate",
        EjectionType.FailurePercentage => "failure_percentage",
        _ => "failure_percentage_local_origin",
    };
}

/// <summary>
/// A cluster's outlier detector (Envoy's <c>Outlier::DetectorImpl</c>): consecutive 5xx / gateway / local origin
/// failures eject at once; success rate and failure percentage are evaluated every <c>interval</c>, which is also
/// when ejected hosts whose time is up return. Ejection time is <c>base_ejection_time</c> × the host's ejection
/// count, capped by <c>max_ejection_time</c>.
/// </summary>
internal sealed class OutlierDetector : IDisposable
{
    private readonly Cluster _cluster;
    private readonly UpstreamServices _services;
    private readonly object _lock = new();
    private readonly Dictionary<Host, HostOutlierMonitor> _monitors = new(ReferenceEqualityComparer.Instance);
    private readonly CancellationTokenSource _stop = new();
    private int _ejectionsActive;

    public OutlierDetector(Cluster cluster, OutlierDetectionModel model, StatsStore stats, UpstreamServices services)
    {
        _cluster = cluster;
        Model = model;
        _services = services;
        Stats = new OutlierStats(stats, cluster.Name);
        _ = Task.Run(IntervalLoopAsync);
    }

    public OutlierDetectionModel Model { get; }
    public OutlierStats Stats { get; }

    public void Sync(Host[] hosts)
    {
        var changed = false;
        lock (_lock)
        {
            var current = new HashSet<Host>(hosts, ReferenceEqualityComparer.Instance);
            foreach (var h in _monitors.Keys.ToArray())
                if (!current.Contains(h))
                {
                    if ((h.HealthFlags & HostHealthFlags.FailedOutlierCheck) != 0) _ejectionsActive--;
                    _monitors.Remove(h);
                }
            foreach (var h in hosts)
                if (!_monitors.ContainsKey(h))
                {
                    var m = h.Outlier is { } existing && existing.Detector == this ? existing : new HostOutlierMonitor(this, h);
                    h.Outlier = m;
                    _monitors[h] = m;
                }
            Stats.EjectionsActive.Set(_ejectionsActive);
        }
        if (changed) _cluster.OnHostHealthChanged();
    }

    /// <summary>Called on the request path when a consecutive counter reaches its threshold: decided off the path.</summary>
    internal void OnConsecutiveError(HostOutlierMonitor monitor, EjectionType type) =>
        ThreadPool.UnsafeQueueUserWorkItem(static s => s.Item1.ConsecutiveErrorWorker(s.Item2, s.Item3), (this, monitor, type), preferLocal: false);

    private void ConsecutiveErrorWorker(HostOutlierMonitor monitor, EjectionType type)
    {
        bool ejected;
        lock (_lock)
        {
            // The host may have left the cluster, or be ejected already.
            if (!_monitors.ContainsKey(monitor.Host) || (monitor.Host.HealthFlags & HostHealthFlags.FailedOutlierCheck) != 0) return;
            Stats.Detected(type);
            ejected = EjectLocked(monitor, type);
            monitor.ResetCounter(type);
        }
        if (ejected) _cluster.OnHostHealthChanged();
    }

    private bool Enforce(EjectionType type)
    {
        var percent = type switch
        {
            EjectionType.Consecutive5xx => Model.EnforcingConsecutive5xx,
            EjectionType.ConsecutiveGatewayFailure => Model.EnforcingConsecutiveGatewayFailure,
            EjectionType.ConsecutiveLocalOriginFailure => Model.EnforcingConsecutiveLocalOriginFailure,
            EjectionType.SuccessRate => Model.EnforcingSuccessRate,
            EjectionType.LocalOriginSuccessRate => Model.EnforcingLocalOriginSuccessRate,
            EjectionType.FailurePercentage => Model.EnforcingFailurePercentage,
            _ => Model.EnforcingFailurePercentageLocalOrigin,
        };
        return percent >= 100 || (percent > 0 && _services.Random.Next() % 100 < percent);
    }

    private bool EjectLocked(HostOutlierMonitor monitor, EjectionType type)
    {
        var max = Math.Min(100u, Model.MaxEjectionPercent);
        var ejectedPercent = 100.0 * (_ejectionsActive + 1) / _monitors.Count;
        var shouldEject = ejectedPercent <= max || (Model.AlwaysEjectOneHost && _ejectionsActive == 0);
        if (!shouldEject)
        {
            Stats.EjectionsOverflow.Inc();
            return false;
        }
        if (!Enforce(type)) return false;
        _ejectionsActive++;
        Stats.EjectionsActive.Set(_ejectionsActive);
        Stats.Enforced(type);
        Stats.EjectionsTotal.Inc();
        monitor.Host.SetHealthFlags(HostHealthFlags.FailedOutlierCheck, true);
        monitor.NumEjections++;
        monitor.LastEjection = _services.Time.GetUtcNow();
        if (Model.BaseEjectionTime * monitor.Backoff < Model.MaxEjectionTime) monitor.Backoff++;
        var jitterMs = (ulong)Model.MaxEjectionTimeJitter.TotalMilliseconds;
        monitor.Jitter = TimeSpan.FromMilliseconds(_services.Random.Next() % (jitterMs + 1));
        return true;
    }

    /// <summary>A passing active health check ends an ejection (<c>successful_active_health_check_uneject_host</c>).</summary>
    internal void Uneject(Host host)
    {
        lock (_lock)
        {
            if (!_monitors.TryGetValue(host, out var m) || (host.HealthFlags & HostHealthFlags.FailedOutlierCheck) == 0) return;
            UnejectLocked(m, _services.Time.GetUtcNow());
        }
        // The caller (health checker) publishes the new host set.
    }

    private void UnejectLocked(HostOutlierMonitor m, DateTimeOffset now)
    {
        _ejectionsActive--;
        Stats.EjectionsActive.Set(_ejectionsActive);
        m.Host.SetHealthFlags(HostHealthFlags.FailedOutlierCheck, false);
        m.ResetAllConsecutive();
        m.LastUnejection = now;
    }

    private async Task IntervalLoopAsync()
    {
        try
        {
            while (true)
            {
                await Task.Delay(Model.Interval, _services.Time, _stop.Token).ConfigureAwait(false);
                if (OnInterval()) _cluster.OnHostHealthChanged();
            }
        }
        catch (OperationCanceledException)
        {
        }
    }

    /// <summary>One interval: un-eject hosts whose time is up, then the success rate and failure percentage passes.</summary>
    internal bool OnInterval()
    {
        var changed = false;
        lock (_lock)
        {
            var now = _services.Time.GetUtcNow();
            var ext = new List<(HostOutlierMonitor M, double Rate, long Volume)>();
            var local = new List<(HostOutlierMonitor M, double Rate, long Volume)>();
            foreach (var m in _monitors.Values)
            {
                var ejectFor = Model.BaseEjectionTime * m.Backoff;
                if (ejectFor > Model.MaxEjectionTime) ejectFor = Model.MaxEjectionTime;
                if ((m.Host.HealthFlags & HostHealthFlags.FailedOutlierCheck) != 0)
                {
                    if (m.LastEjection is { } t && ejectFor + m.Jitter <= now - t)
                    {
                        UnejectLocked(m, now);
                        changed = true;
                    }
                }
                else if (m.LastUnejection is { } u && m.Backoff > 0 && now - u >= ejectFor + m.Jitter)
                {
                    // A host healthy for a whole ejection period earns back one step of backoff.
                    m.Backoff--;
                    m.LastUnejection = now;
                }
                var (total, success, lTotal, lSuccess) = m.SwapBuckets();
                m.SuccessRate = -1;
                m.LocalOriginSuccessRate = -1;
                if ((m.Host.HealthFlags & HostHealthFlags.FailedOutlierCheck) != 0) continue;
                if (total > 0) ext.Add((m, 100.0 * success / total, total));
                if (Model.SplitExternalLocalOriginErrors && lTotal > 0) local.Add((m, 100.0 * lSuccess / lTotal, lTotal));
            }
            changed |= RatePasses(ext, EjectionType.SuccessRate, EjectionType.FailurePercentage, local: false);
            if (Model.SplitExternalLocalOriginErrors)
                changed |= RatePasses(local, EjectionType.LocalOriginSuccessRate, EjectionType.FailurePercentageLocalOrigin, local: true);
        }
        return changed;
    }

    private bool RatePasses(List<(HostOutlierMonitor M, double Rate, long Volume)> hosts, EjectionType srType, EjectionType fpType, bool local)
    {
        var changed = false;
        var sr = hosts.Where(h => h.Volume >= Model.SuccessRateRequestVolume).ToList();
        if (_monitors.Count >= Model.SuccessRateMinimumHosts && sr.Count > 0 && sr.Count >= Model.SuccessRateMinimumHosts)
        {
            var mean = sr.Average(h => h.Rate);
            var variance = sr.Sum(h => (h.Rate - mean) * (h.Rate - mean)) / sr.Count;
            var threshold = mean - Model.SuccessRateStdevFactor / 1000.0 * Math.Sqrt(variance);
            foreach (var (m, rate, _) in sr)
            {
                if (local) m.LocalOriginSuccessRate = rate; else m.SuccessRate = rate;
                if (rate < threshold && (m.Host.HealthFlags & HostHealthFlags.FailedOutlierCheck) == 0)
                {
                    Stats.Detected(srType);
                    changed |= EjectLocked(m, srType);
                }
            }
        }
        var fp = hosts.Where(h => h.Volume >= Model.FailurePercentageRequestVolume).ToList();
        if (_monitors.Count >= Model.FailurePercentageMinimumHosts && fp.Count > 0 && fp.Count >= Model.FailurePercentageMinimumHosts)
            foreach (var (m, rate, _) in fp)
                if (100.0 - rate >= Model.FailurePercentageThreshold && (m.Host.HealthFlags & HostHealthFlags.FailedOutlierCheck) == 0)
                {
                    Stats.Detected(fpType);
                    changed |= EjectLocked(m, fpType);
                }
        return changed;
    }

    public void Dispose() => _stop.Cancel();
}
