using CSharpEnvoy.Config.Model.Cluster;
using CSharpEnvoy.DataPlane.Stats;
using Microsoft.AspNetCore.Http;
using Yarp.ReverseProxy.Forwarder;

namespace CSharpEnvoy.DataPlane.Upstream;

/// <summary>
/// The cluster's host health: active health checking, outlier detection and configured endpoint health combine
/// into host flags; any change publishes a new immutable <see cref="PrioritySet"/> (never per request). So does a change
/// of the local cluster, whose hosts zone-aware routing compares with this cluster's.
/// </summary>
internal sealed partial class Cluster
{
    private readonly object _healthLock = new();
    private Host[] _allHosts = [];
    private HashSet<Host>? _hcDisabled;
    private Gauge? _membershipDegraded;
    private Gauge? _membershipExcluded;

    /// <summary>The cluster's active health checker, when <c>health_checks</c> is set.</summary>
    internal HealthChecking.HealthChecker? HealthChecker { get; private set; }
    /// <summary>The cluster's outlier detector, when <c>outlier_detection</c> is set.</summary>
    internal OutlierDetection.OutlierDetector? Outlier { get; private set; }

    private void InitHealth(StatsStore stats, UpstreamServices services)
    {
        _membershipDegraded = Stats.MembershipDegraded;
        _membershipExcluded = Stats.MembershipExcluded;
        if (Model.HealthCheck is { } hc)
            HealthChecker = new HealthChecking.HealthChecker(this, hc, stats, services, _logger);
        if (Model.OutlierDetection is { } od)
            Outlier = new OutlierDetection.OutlierDetector(this, od, stats, services);
    }

    /// <summary>The endpoint's configured <c>health_status</c>: UNHEALTHY and TIMEOUT fail the host (/failed_eds_health),
    /// DRAINING also marks it draining, DEGRADED degrades it (/degraded_eds_health); HEALTHY / UNKNOWN clear all.</summary>
    private void ApplyEdsHealth(Host host, EndpointModel e)
    {
        var failed = e.HealthStatus is EndpointHealthStatus.Unhealthy or EndpointHealthStatus.Draining or EndpointHealthStatus.Timeout;
        host.SetHealthFlags(HostHealthFlags.FailedEdsHealth, failed);
        host.SetHealthFlags(HostHealthFlags.EdsStatusDraining, e.HealthStatus == EndpointHealthStatus.Draining);
        host.SetHealthFlags(HostHealthFlags.DegradedEdsHealth, e.HealthStatus == EndpointHealthStatus.Degraded);
        if (e.DisableActiveHealthCheck) (_hcDisabled ??= new HashSet<Host>(ReferenceEqualityComparer.Instance)).Add(host);
    }

    private bool IsActiveHcDisabled(Host host) => _hcDisabled?.Contains(host) == true;

    /// <summary>A host's health flags changed (health check, ejection, un-ejection): publish a new host set. A host kept
    /// only until its health check fails (<see cref="KeepRemovedHealthyHosts"/>) leaves the set when it has.</summary>
    internal void OnHostHealthChanged()
    {
        bool dropped;
        Host[] before, after;
        lock (_healthLock)
        {
            before = _allHosts;
            dropped = DropFailedPendingHosts();
            after = _allHosts;
            PublishLocked();
        }
        PrioritySetPublished?.Invoke();
        if (!dropped) return;
        OnHostsRemoved(before, after);
        Stats.MembershipChange.Inc();
        // Not from inside the health check that reported the failure: its session is one of those stopped.
        ThreadPool.UnsafeQueueUserWorkItem(static c =>
        {
            var hosts = c._allHosts;
            c.HealthChecker?.Sync(hosts);
            c.Outlier?.Sync(hosts);
        }, this, preferLocal: false);
    }

    /// <summary>Envoy's handling of a discovery update that leaves hosts out (<c>ignore_health_on_host_removal</c> false,
    /// the default): with active health checking, a left-out host whose checks still pass stays in the set, flagged
    /// <c>pending_dynamic_removal</c> and taking traffic, until a check fails; one that has already failed (its health
    /// check or its EDS health) goes now. A host the update brings back is no longer pending.</summary>
    private Host[] KeepRemovedHealthyHosts(Host[] next)
    {
        foreach (var h in next) h.SetHealthFlags(HostHealthFlags.PendingDynamicRemoval, false);
        if (HealthChecker is null || Model.IgnoreHealthOnHostRemoval) return next;
        var current = _allHosts;
        HashSet<Host>? incoming = null;
        List<Host>? kept = null;
        foreach (var h in current)
        {
            incoming ??= new HashSet<Host>(next, ReferenceEqualityComparer.Instance);
            if (incoming.Contains(h) || IsFailed(h)) continue;
            h.SetHealthFlags(HostHealthFlags.PendingDynamicRemoval, true);
            (kept ??= []).Add(h);
        }
        return kept is null ? next : [.. next, .. kept];
    }

    private static bool IsFailed(Host h) => (h.HealthFlags & (HostHealthFlags.FailedActiveHc | HostHealthFlags.FailedEdsHealth)) != 0;

    /// <summary>Under <see cref="_healthLock"/>: removes pending hosts whose check has failed; whether any went.</summary>
    private bool DropFailedPendingHosts()
    {
        var hosts = _allHosts;
        var n = 0;
        foreach (var h in hosts)
            if (IsFailedPending(h)) n++;
        if (n == 0) return false;
        var next = new Host[hosts.Length - n];
        var i = 0;
        foreach (var h in hosts)
            if (!IsFailedPending(h)) next[i++] = h;
        _allHosts = next;
        return true;

        static bool IsFailedPending(Host h) => (h.HealthFlags & HostHealthFlags.PendingDynamicRemoval) != 0 && IsFailed(h);
    }

    private void PublishLocked()
    {
        var local = _localCluster;
        var self = ReferenceEquals(local, this);
        var set = PrioritySet.Build(_allHosts, _policy, self ? null : local?.PrioritySet, LbStats);
        // The local cluster compares its own hosts with themselves: the zone state from the set just built.
        if (self) LoadBalancing.ZoneAwareRouting.Compute(set, set, _policy, LbStats);
        _lb.Prepare(set); // build ring / maglev / schedule tables before requests see the new set
        _prioritySet = set;
        Stats.MembershipTotal.Set(set.Hosts.Length);
        Stats.MembershipHealthy.Set(set.HealthyCount);
        _membershipDegraded!.Set(set.DegradedCount);
        _membershipExcluded!.Set(set.ExcludedCount);
    }

    private readonly UpstreamServices _services;
    private PrioritySetOptions _policy = PrioritySetOptions.Default;
    private volatile Cluster? _localCluster;

    /// <summary>Raised after this cluster published a new priority set (clusters using it as their local cluster
    /// recompute their zone-aware routing).</summary>
    internal event Action? PrioritySetPublished;

    /// <summary>The balancing options for an assignment's policy (null: Envoy's defaults).</summary>
    private PrioritySetOptions Policy(LoadAssignmentModel? assignment)
    {
        var lb = Model.LoadBalancer;
        return new PrioritySetOptions
        {
            LocalLocality = _services.LocalLocality,
            OverprovisioningFactor = assignment?.OverprovisioningFactor ?? LoadAssignmentModel.DefaultOverprovisioningFactor,
            WeightedPriorityHealth = assignment?.WeightedPriorityHealth ?? false,
            PanicThreshold = lb.HealthyPanicThreshold,
            LocalityWeighted = lb.LocalityMode == LocalityLbMode.LocalityWeighted,
            ZoneAware = lb.ZoneAware,
        };
    }

    /// <summary>Sets the local cluster (<c>cluster_manager.local_cluster_name</c>) zone-aware routing compares with,
    /// and republishes. Locality-weighted and hashing balancers never route by zone, as in Envoy.</summary>
    internal void UseLocalCluster(Cluster? local)
    {
        if (Model.LoadBalancer.LocalityMode != LocalityLbMode.ZoneAware || UsesHashPolicy) local = null;
        var old = _localCluster;
        if (ReferenceEquals(old, local)) return;
        if (old is not null && !ReferenceEquals(old, this)) old.PrioritySetPublished -= OnHostHealthChanged;
        _localCluster = local;
        if (local is not null && !ReferenceEquals(local, this)) local.PrioritySetPublished += OnHostHealthChanged;
        OnHostHealthChanged();
    }

    /// <summary>
    /// The router's report after a forward: the upstream's status code (or the local failure) goes to the outlier
    /// detector, and <c>x-envoy-immediate-health-check-fail</c> on a response fails the host's active health check.
    /// Interlocked counters only; cheap when the cluster has neither feature.
    /// </summary>
    internal void ReportUpstreamResult(Host host, HttpContext context, bool responseStarted, ForwarderError error, bool timedOut)
    {
        if (HealthChecker is null && Outlier is null) return;
        if (responseStarted)
        {
            ReportUpstreamResponse(host, context.Response.StatusCode, HealthChecker is not null && context.Response.Headers.ContainsKey("x-envoy-immediate-health-check-fail"));
            return;
        }
        if (error == ForwarderError.None || context.RequestAborted.IsCancellationRequested) return;
        if (error is ForwarderError.RequestBodyClient or ForwarderError.RequestBodyCanceled or ForwarderError.RequestCanceled && !timedOut) return;
        host.Outlier?.PutLocalOriginResult(timedOut ? OutlierDetection.LocalOriginResult.Timeout : OutlierDetection.LocalOriginResult.ConnectFailed);
    }

    /// <summary>A response the router read but did not pass downstream (a retried or a hedged try).</summary>
    internal void ReportUpstreamResponse(Host host, int statusCode, bool immediateHealthCheckFail)
    {
        host.Outlier?.PutHttpResponseCode(statusCode);
        if (immediateHealthCheckFail && HealthChecker is { } hc) hc.ReportImmediateFailure(host);
    }

    private void DisposeHealth()
    {
        if (_localCluster is { } local && !ReferenceEquals(local, this)) local.PrioritySetPublished -= OnHostHealthChanged;
        HealthChecker?.Dispose();
        Outlier?.Dispose();
    }
}
