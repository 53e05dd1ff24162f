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

    public Host(SocketAddressModel address, string? hostname, LocalityModel locality, string clusterName, bool tls = false, uint weight = 1)
    {
        Weight = Math.Max(weight, 1);
        Address = address;
        Hostname = hostname;
        Locality = locality;
        // A pipe host is reached through the cluster's connect callback; the URI authority only keys its pool.
        Authority = address.IsPipe ? $"pipe-{(uint)address.PipePath!.GetHashCode():x8}.csenvoy.invalid" : address.ToString();
        DestinationPrefix = (tls ? "https://" : "http://") + Authority;
        ClusterName = clusterName;
    }

    public SocketAddressModel Address { get; }
    public string? Hostname { get; }
    public LocalityModel Locality { get; }
    public string Authority { get; }
    /// <summary>"http://ip:port" (https for a cluster with TLS), the prefix YARP forwards to.</summary>
    public string DestinationPrefix { get; }
    public string ClusterName { get; }
    /// <summary>The endpoint's <c>load_balancing_weight</c> (1 when unset).</summary>
    public uint Weight { get; }

    public long ActiveRequests => Volatile.Read(ref _activeRequests);
    public long RequestsTotal => Volatile.Read(ref _requestsTotal);
    public long ConnectionsActive => Volatile.Read(ref _connectionsActive);

    public void RequestStarted()
    {
        Interlocked.Increment(ref _activeRequests);
        Interlocked.Increment(ref _requestsTotal);
    }

    public void RequestFinished() => Interlocked.Decrement(ref _activeRequests);
    public void ConnectionOpened() => Interlocked.Increment(ref _connectionsActive);
    public void ConnectionClosed() => Interlocked.Decrement(ref _connectionsActive);

    public override string ToString() => Address.ToString();
}

/// <summary>An immutable view of a cluster's hosts, swapped whole when membership changes (DNS refresh, EDS).</summary>
internal sealed class HostSet
{
    public static readonly HostSet Empty = new(Array.Empty<Host>());

    public HostSet(Host[] hosts)
    {
        Hosts = hosts;
        HealthyHosts = hosts; // active health checking and outlier detection refine this later
    }

    public Host[] Hosts { get; }
    public Host[] HealthyHosts { get; }
}
