using CSharpEnvoy.Config.Loading;
using CSharpEnvoy.Config.Model.Cluster;
using Envoy.Config.Cluster.V3;
using Envoy.Config.Core.V3;

namespace CSharpEnvoy.Config.Translation;

/// <summary>A cluster's <c>circuit_breakers</c>: the DEFAULT priority's thresholds, Envoy's defaults for unset ones.</summary>
internal static class CircuitBreakersTranslator
{
    public static CircuitBreakersModel Translate(CircuitBreakers? cb, string path, ConfigErrors errors)
    {
        if (cb is null) return CircuitBreakersModel.Default;
        CircuitBreakersModel? result = null;
        var seen = new HashSet<RoutingPriority>();
        for (var i = 0; i < cb.Thresholds.Count; i++)
        {
            var t = cb.Thresholds[i];
            var tPath = $"{path}.thresholds[{i}]";
            if (!seen.Add(t.Priority)) errors.Add(tPath + ".priority", $"duplicate circuit breaker thresholds for priority {ProtoEnum.Name(t.Priority)}");
            // Only routes with priority HIGH use HIGH thresholds, and route priority is refused, so they never apply
            // here, exactly as in Envoy for such a configuration.
            if (t.Priority != RoutingPriority.Default) continue;
            result = new CircuitBreakersModel
            {
                MaxConnections = t.MaxConnections ?? 1024,
                MaxPendingRequests = t.MaxPendingRequests ?? 1024,
                MaxRequests = t.MaxRequests ?? 1024,
                MaxRetries = t.MaxRetries ?? 3,
                TrackRemaining = t.TrackRemaining,
            };
        }
        return result ?? CircuitBreakersModel.Default;
    }
}
