using CSharpEnvoy.DataPlane.Upstream;
using Envoy.Admin.V3;

namespace CSharpEnvoy.DataPlane.Admin;

/// <summary>/clusters?format=json: Envoy's <c>envoy.admin.v3.Clusters</c>, with each host's health and success rates.</summary>
internal static class ClustersStatus
{
    public static Clusters Build(ClusterManager manager, IReadOnlySet<string> staticClusters)
    {
        var result = new Clusters();
        foreach (var c in manager.Clusters.Values.OrderBy(c => c.Name, StringComparer.Ordinal))
        {
            var status = new ClusterStatus
            {
                Name = c.Name, ObservabilityName = c.Name, AddedViaApi = !staticClusters.Contains(c.Name),
                CircuitBreakers = new Envoy.Config.Cluster.V3.CircuitBreakers
                {
                    Thresholds = { Thresholds(Envoy.Config.Core.V3.RoutingPriority.Default, c.Model.CircuitBreakers), Thresholds(Envoy.Config.Core.V3.RoutingPriority.High, c.Model.CircuitBreakersHigh) },
                },
            };
            if (c.Model.EdsServiceName is { } eds) status.EdsServiceName = eds;
            foreach (var h in c.PrioritySet.Hosts)
            {
                var a = h.Address;
                var hs = new HostStatus
                {
                    Address = a.IsPipe
                        ? new Envoy.Config.Core.V3.Address { Pipe = new Envoy.Config.Core.V3.Pipe { Path = a.PipePath } }
                        : new Envoy.Config.Core.V3.Address { SocketAddress = new Envoy.Config.Core.V3.SocketAddress { Address = a.Address, PortValue = (uint)a.Port } },
                    Weight = h.Weight,
                    Priority = h.Priority,
                    Hostname = h.Hostname ?? "",
                    Locality = new Envoy.Config.Core.V3.Locality { Region = h.Locality.Region, Zone = h.Locality.Zone, SubZone = h.Locality.SubZone },
                    HealthStatus = Health(h.HealthFlags),
                };
                hs.Stats.Add(Metric("cx_active", h.ConnectionsActive, SimpleMetric.Types.Type.Gauge));
                hs.Stats.Add(Metric("rq_active", h.ActiveRequests, SimpleMetric.Types.Type.Gauge));
                hs.Stats.Add(Metric("rq_total", h.RequestsTotal, SimpleMetric.Types.Type.Counter));
                if (h.Outlier is { } o)
                {
                    if (o.SuccessRate >= 0) hs.SuccessRate = new Envoy.Type.V3.Percent { Value = o.SuccessRate };
                    if (o.LocalOriginSuccessRate >= 0) hs.LocalOriginSuccessRate = new Envoy.Type.V3.Percent { Value = o.LocalOriginSuccessRate };
                }
                status.HostStatuses.Add(hs);
            }
            result.ClusterStatuses.Add(status);
        }
        return result;
    }

    private static SimpleMetric Metric(string name, long value, SimpleMetric.Types.Type type) =>
        new() { Name = name, Value = (ulong)Math.Max(0, value), Type = type };

    private static HostHealthStatus Health(HostHealthFlags f) => new()
    {
        FailedActiveHealthCheck = (f & HostHealthFlags.FailedActiveHc) != 0,
        FailedOutlierCheck = (f & HostHealthFlags.FailedOutlierCheck) != 0,
        FailedActiveDegradedCheck = (f & HostHealthFlags.DegradedActiveHc) != 0,
        PendingDynamicRemoval = (f & HostHealthFlags.PendingDynamicRemoval) != 0,
        PendingActiveHc = (f & HostHealthFlags.PendingActiveHc) != 0,
        ExcludedViaImmediateHcFail = (f & HostHealthFlags.ExcludedViaImmediateHcFail) != 0,
        ActiveHcTimeout = (f & HostHealthFlags.ActiveHcTimeout) != 0,
        EdsHealthStatus = (f & HostHealthFlags.EdsStatusDraining) != 0 ? Envoy.Config.Core.V3.HealthStatus.Draining
            : (f & HostHealthFlags.FailedEdsHealth) != 0 ? Envoy.Config.Core.V3.HealthStatus.Unhealthy
            : (f & HostHealthFlags.DegradedEdsHealth) != 0 ? Envoy.Config.Core.V3.HealthStatus.Degraded
            : Envoy.Config.Core.V3.HealthStatus.Healthy,
    };

    public static string Flags(Host h) => h.HealthFlags.ToAdminString();

    /// <summary>The text format's success_rate values (-1 when not computed), as Envoy prints them.</summary>
    public static string Rate(double rate) => rate < 0 ? "-1" : rate.ToString(System.Globalization.CultureInfo.InvariantCulture);

    private static Envoy.Config.Cluster.V3.CircuitBreakers.Types.Thresholds Thresholds(Envoy.Config.Core.V3.RoutingPriority priority, Config.Model.Cluster.CircuitBreakersModel t) => new()
    {
        Priority = priority,
        MaxConnections = t.MaxConnections,
        MaxPendingRequests = t.MaxPendingRequests,
        MaxRequests = t.MaxRequests,
        MaxRetries = t.MaxRetries,
    };
}
