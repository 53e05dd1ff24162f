namespace CSharpEnvoy.Config.Model.Cluster;

/// <summary>A cluster's circuit breaker thresholds for one routing priority; Envoy's defaults when unset.</summary>
internal sealed record CircuitBreakersModel
{
    public uint MaxConnections { get; init; } = 1024;
    public uint MaxPendingRequests { get; init; } = 1024;
    public uint MaxRequests { get; init; } = 1024;
    public uint MaxRetries { get; init; } = 3;
    public bool TrackRemaining { get; init; }

    public static readonly CircuitBreakersModel Default = new();
}
