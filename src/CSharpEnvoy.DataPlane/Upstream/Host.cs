using CSharpEnvoy.Config.Model.Cluster;
using CSharpEnvoy.Config.Model.Listener;

namespace CSharpEnvoy.DataPlane.Upstream;

/// <summary>
/// One upstream host of a cluster (Envoy's <c>Upstream::Host</c>). Its identity is fixed; what changes per request
/// (active requests, totals) lives here and is updated with interlocked operations.
/// </summary>
internal sealed class Host
{
    private long _activeRequests;
    private long _requestsTotal;
    private long _connectionsActive;

    public Host(SocketAddressModel address, string? hostname, LocalityModel locality, string clusterName, bool tls = false, uint weight = 1,
        uint priority = 0, uint localityWeight = 0)
    {
        Weight = Math.Max(weight, 1);
        Priority = priority;
        LocalityWeight = localityWeight;
        Address = address;
        Hostname = hostname;
        Locality = locality;
        _tls = tls;
        ClusterName = clusterName;
    }

    private readonly bool _tls;
    private string? _authority;
    private string? _destinationPrefix;

    public SocketAddressModel Address { get; }
    public string? Hostname { get; }
    public LocalityModel Locality { get; }

    /// <summary>"ip:port"; built on first use (most of a large EDS push's hosts may never be printed or used).</summary>
    // A pipe host is reached through the cluster's connect callback; the URI authority only keys its pool.
    public string Authority => _authority ??=
        Address.IsPipe ? $"pipe-{(uint)Address.PipePath!.GetHashCode():x8}.csenvoy.invalid" : Address.ToString();

    /// <summary>Where to connect: the pipe, or the address (an IP, or a name to resolve) at <paramref name="port"/>.</summary>
    public System.Net.EndPoint EndPointAt(int port)
    {
        if (Address.IsPipe) return new System.Net.Sockets.UnixDomainSocketEndPoint(Address.PipePath!);
        return System.Net.IPAddress.TryParse(Address.Address.Trim('[', ']'), out var ip)
            ? new System.Net.IPEndPoint(ip, port) : new System.Net.DnsEndPoint(Address.Address, port);
    }

    /// <summary>"http://ip:port" (https for a cluster with TLS), the prefix YARP forwards to; built on first use.</summary>
    public string DestinationPrefix => _destinationPrefix ??= (_tls ? "https://" : "http://") + Authority;
    public string ClusterName { get; }
    /// <summary>The endpoint's <c>load_balancing_weight</c> (1 when unset). Changed in place by an EDS update
    /// (<see cref="UpdateInPlace"/>), which then publishes a new priority set built with it.</summary>
    public uint Weight { get; private set; }
    /// <summary>The priority of the endpoint's <c>LocalityLbEndpoints</c> (0 is the highest); changed in place too.</summary>
    public uint Priority { get; private set; }
    /// <summary>The <c>load_balancing_weight</c> of the endpoint's locality; 0 when unset; changed in place too.</summary>
    public uint LocalityWeight { get; private set; }

    /// <summary>Envoy's in-place host update: an EDS endpoint at the same address, locality and health check address
    /// keeps its host (health, outlier state, connections, stats) when only its weight, its priority or its locality's
    /// weight changed. Returns whether the priority changed (Envoy counts that as the host added to its new priority).</summary>
    internal bool UpdateInPlace(uint weight, uint priority, uint localityWeight)
    {
        var moved = Priority != priority;
        Weight = Math.Max(weight, 1);
        Priority = priority;
        LocalityWeight = localityWeight;
        return moved;
    }
    /// <summary><c>health_check_config.port_value</c> (0: the host's own port).</summary>
    public int HealthCheckPort { get; init; }
    /// <summary><c>health_check_config.hostname</c>: the Host header of this host's HTTP and gRPC health checks.</summary>
    public string? HealthCheckHostname { get; init; }

    public long ActiveRequests => Volatile.Read(ref _activeRequests);
    public long RequestsTotal => Volatile.Read(ref _requestsTotal);
    public long ConnectionsActive => Volatile.Read(ref _connectionsActive);

    public void RequestStarted()
    {
        Interlocked.Increment(ref _activeRequests);
        Interlocked.Increment(ref _requestsTotal);
    }

    public void RequestFinished() => Interlocked.Decrement(ref _activeRequests);

    private int _healthFlags;

    /// <summary>Envoy's per-host health flags (active HC, outlier detection, EDS status). Written off the request path.</summary>
    public HostHealthFlags HealthFlags => (HostHealthFlags)Volatile.Read(ref _healthFlags);

    /// <summary>Not failed by active health checking, outlier detection or EDS, and not excluded.</summary>
    public bool Healthy => (HealthFlags & HostHealthFlagsExtensions.Unhealthy) == 0;

    /// <summary>Envoy's coarse health: failed → Unhealthy, else a degraded flag → Degraded, else Healthy.</summary>
    public HostCoarseHealth CoarseHealth
    {
        get
        {
            var f = HealthFlags;
            if ((f & HostHealthFlagsExtensions.Unhealthy) != 0) return HostCoarseHealth.Unhealthy;
            return (f & HostHealthFlagsExtensions.Degraded) != 0 ? HostCoarseHealth.Degraded : HostCoarseHealth.Healthy;
        }
    }

    /// <summary>Sets (or clears) flags; true when the flags changed.</summary>
    public bool SetHealthFlags(HostHealthFlags flags, bool set)
    {
        while (true)
        {
            var old = Volatile.Read(ref _healthFlags);
            var next = set ? old | (int)flags : old & ~(int)flags;
            if (next == old) return false;
            if (Interlocked.CompareExchange(ref _healthFlags, next, old) == old) return true;
        }
    }

    /// <summary>The host's outlier detection state, when its cluster has outlier detection.</summary>
    internal OutlierDetection.HostOutlierMonitor? Outlier { get; set; }
    public void ConnectionOpened() => Interlocked.Increment(ref _connectionsActive);
    /// <summary>The local address of the newest upstream connection to this host (HTTP/2's %UPSTREAM_LOCAL_ADDRESS%).</summary>
    public string? LastConnectionLocalAddress { get; set; }
    /// <summary>This host's HTTP/1.1 connections (see <see cref="Cluster.Http1PoolFor"/>).</summary>
    internal Http1.Http1ConnectionPool? Http1Pool;
    /// <summary>This host's SocketsHttpHandler connections (see <see cref="Cluster.AcquireHandlerPool"/>).</summary>
    internal HandlerConnectionPool? HandlerPool;
    /// <summary>The host left its cluster (a discovery update, a DNS answer or a failed health check of a host pending
    /// removal took it out): a pool made for it after that drains at once.</summary>
    internal volatile bool Removed;
    public void ConnectionClosed() => Interlocked.Decrement(ref _connectionsActive);

    public override string ToString() => Address.ToString();
}

/// <summary>Envoy's <c>Host::HealthFlag</c> bits, shown by /clusters as <c>health_flags</c>.</summary>
[Flags]
internal enum HostHealthFlags
{
    None = 0,
    FailedActiveHc = 1,
    FailedOutlierCheck = 2,
    FailedEdsHealth = 4,
    DegradedActiveHc = 8,
    DegradedEdsHealth = 16,
    PendingDynamicRemoval = 32,
    PendingActiveHc = 64,
    ExcludedViaImmediateHcFail = 128,
    ActiveHcTimeout = 256,
    EdsStatusDraining = 512,
}

/// <summary>Envoy's <c>Host::Health</c>.</summary>
internal enum HostCoarseHealth { Unhealthy, Degraded, Healthy }

internal static class HostHealthFlagsExtensions
{
    public const HostHealthFlags Degraded = HostHealthFlags.DegradedActiveHc | HostHealthFlags.DegradedEdsHealth;

    public const HostHealthFlags Unhealthy = HostHealthFlags.FailedActiveHc | HostHealthFlags.FailedOutlierCheck |
        HostHealthFlags.FailedEdsHealth | HostHealthFlags.ExcludedViaImmediateHcFail | HostHealthFlags.EdsStatusDraining;

    /// <summary>Envoy's /clusters text (<c>HostUtility::healthFlagsToString</c>): "healthy" when no flag is set, else
    /// "/failed_active_hc/failed_outlier_check..." in Envoy's order.</summary>
    public static string ToAdminString(this HostHealthFlags f)
    {
        if (f == HostHealthFlags.None) return "healthy";
        var sb = new System.Text.StringBuilder();
        if ((f & HostHealthFlags.FailedActiveHc) != 0) sb.Append("/failed_active_hc");
        if ((f & HostHealthFlags.FailedOutlierCheck) != 0) sb.Append("/failed_outlier_check");
        if ((f & HostHealthFlags.FailedEdsHealth) != 0) sb.Append("/failed_eds_health");
        if ((f & HostHealthFlags.DegradedActiveHc) != 0) sb.Append("/degraded_active_hc");
        if ((f & HostHealthFlags.DegradedEdsHealth) != 0) sb.Append("/degraded_eds_health");
        if ((f & HostHealthFlags.PendingDynamicRemoval) != 0) sb.Append("/pending_dynamic_removal");
        if ((f & HostHealthFlags.PendingActiveHc) != 0) sb.Append("/pending_active_hc");
        if ((f & HostHealthFlags.ExcludedViaImmediateHcFail) != 0) sb.Append("/excluded_via_immediate_hc_fail");
        if ((f & HostHealthFlags.ActiveHcTimeout) != 0) sb.Append("/active_hc_timeout");
        if ((f & HostHealthFlags.EdsStatusDraining) != 0) sb.Append("/eds_status_draining");
        return sb.ToString();
    }
}
