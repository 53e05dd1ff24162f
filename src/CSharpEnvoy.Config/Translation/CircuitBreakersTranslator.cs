using CSharpEnvoy.Config.Loading;
using CSharpEnvoy.Config.Model.Cluster;
using Envoy.Config.Cluster.V3;
using Envoy.Config.Core.V3;

namespace CSharpEnvoy.Config.Translation;

/// <summary>A cluster's <c>circuit_breakers</c>: the DEFAULT and HIGH priorities' thresholds, Envoy's defaults for
/// unset ones.</summary>
internal static class CircuitBreakersTranslator
{
    public static (CircuitBreakersModel Default, CircuitBreakersModel High) Translate(CircuitBreakers? cb, string path, ConfigErrors errors)
    {
        if (cb is null) return (CircuitBreakersModel.Default, CircuitBreakersModel.Default);
        CircuitBreakersModel? normal = null, high = null;
        var seen = new HashSet<RoutingPriority>();
        for (var i = 0; i < cb.Thresholds.Count; i++)
        {
            var t = cb.Thresholds[i];
            var tPath = $"{path}.thresholds[{i}]";
            if (!seen.Add(t.Priority)) errors.Add(tPath + ".priority", $"duplicate circuit breaker thresholds for priority {ProtoEnum.Name(t.Priority)}");
            var model = new CircuitBreakersModel
            {
                MaxConnections = t.MaxConnections ?? 1024,
                MaxPendingRequests = t.MaxPendingRequests ?? 1024,
                MaxRequests = t.MaxRequests ?? 1024,
                MaxRetries = t.MaxRetries ?? 3,
                TrackRemaining = t.TrackRemaining,
            };
            if (t.Priority == RoutingPriority.High) high = model;
            else normal = model;
        }
        return (normal ?? CircuitBreakersModel.Default, high ?? CircuitBreakersModel.Default);
    }
}
