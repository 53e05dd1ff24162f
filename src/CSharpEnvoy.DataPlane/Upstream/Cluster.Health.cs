using CSharpEnvoy.Config.Model.Cluster;
using CSharpEnvoy.DataPlane.Stats;
using Microsoft.AspNetCore.Http;
using Yarp.ReverseProxy.Forwarder;

namespace CSharpEnvoy.DataPlane.Upstream;

/// <summary>
/// The cluster's host health: active health checking, outlier detection and configured endpoint health combine
/// into host flags; any change publishes a new immutable <see cref="HostSet"/> (never per request).
/// </summary>
internal sealed partial class Cluster
{
    private readonly object _healthLock = new();
    private Host[] _allHosts = [];
    private HashSet<Host>? _hcDisabled;
    private Counter? _lbHealthyPanic;
    private Gauge? _membershipDegraded;
    private Gauge? _membershipExcluded;

    /// <summary>The cluster's active health checker, when <c>health_checks</c> is set.</summary>
    internal HealthChecking.HealthChecker? HealthChecker { get; private set; }
    /// <summary>The cluster's outlier detector, when <c>outlier_detection</c> is set.</summary>
    internal OutlierDetection.OutlierDetector? Outlier { get; private set; }

    private void InitHealth(StatsStore stats, UpstreamServices services)
    {
        var p = "cluster." + Model.Name + ".";
        _lbHealthyPanic = stats.Counter(p + "lb_healthy_panic");
        _membershipDegraded = stats.Gauge(p + "membership_degraded");
        _membershipExcluded = stats.Gauge(p + "membership_excluded");
        if (Model.HealthCheck is { } hc)
            HealthChecker = new HealthChecking.HealthChecker(this, hc, stats, services, _logger);
        if (Model.OutlierDetection is { } od)
            Outlier = new OutlierDetection.OutlierDetector(this, od, stats, services);
    }

    /// <summary>The endpoint's configured <c>health_status</c>: UNHEALTHY and TIMEOUT fail the host (/failed_eds_health),
    /// DRAINING also marks it draining; HEALTHY / UNKNOWN clear both.</summary>
    private void ApplyEdsHealth(Host host, EndpointModel e)
    {
        var failed = e.HealthStatus is EndpointHealthStatus.Unhealthy or EndpointHealthStatus.Draining or EndpointHealthStatus.Timeout;
        host.SetHealthFlags(HostHealthFlags.FailedEdsHealth, failed);
        host.SetHealthFlags(HostHealthFlags.EdsStatusDraining, e.HealthStatus == EndpointHealthStatus.Draining);
        if (e.DisableActiveHealthCheck) (_hcDisabled ??= new HashSet<Host>(ReferenceEqualityComparer.Instance)).Add(host);
    }

    private bool IsActiveHcDisabled(Host host) => _hcDisabled?.Contains(host) == true;

    /// <summary>A host's health flags changed (health check, ejection, un-ejection): publish a new host set.</summary>
    internal void OnHostHealthChanged()
    {
        lock (_healthLock) PublishLocked();
    }

    private void PublishLocked()
    {
        var set = new HostSet(_allHosts);
        _lb.Prepare(set); // build ring / maglev / schedule tables before requests see the new set
        _hostSet = set;
        long degraded = 0, excluded = 0;
        foreach (var h in set.Hosts)
        {
            var f = h.HealthFlags;
            if ((f & (HostHealthFlags.DegradedActiveHc | HostHealthFlags.DegradedEdsHealth)) != 0 && h.Healthy) degraded++;
            if ((f & HostHealthFlags.ExcludedViaImmediateHcFail) != 0) excluded++;
        }
        Stats.MembershipTotal.Set(set.Hosts.Length);
        Stats.MembershipHealthy.Set(set.HealthyCount);
        _membershipDegraded!.Set(degraded);
        _membershipExcluded!.Set(excluded);
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
            host.Outlier?.PutHttpResponseCode(context.Response.StatusCode);
            if (HealthChecker is { } hc && context.Response.Headers.ContainsKey("x-envoy-immediate-health-check-fail")) hc.ReportImmediateFailure(host);
            return;
        }
        if (error == ForwarderError.None || context.RequestAborted.IsCancellationRequested) return;
        if (error is ForwarderError.RequestBodyClient or ForwarderError.RequestBodyCanceled or ForwarderError.RequestCanceled && !timedOut) return;
        host.Outlier?.PutLocalOriginResult(timedOut ? OutlierDetection.LocalOriginResult.Timeout : OutlierDetection.LocalOriginResult.ConnectFailed);
    }

    private void DisposeHealth()
    {
        HealthChecker?.Dispose();
        Outlier?.Dispose();
    }
}
