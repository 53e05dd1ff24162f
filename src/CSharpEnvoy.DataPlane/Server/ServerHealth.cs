namespace CSharpEnvoy.DataPlane.Server;

/// <summary>The server's own health as load balancers see it: admin <c>/healthcheck/fail</c> and
/// <c>/healthcheck/ok</c> flip it; the health check filter answers by it (Envoy's <c>healthCheckFailed()</c>).</summary>
internal sealed class ServerHealth
{
    private volatile bool _failed;

    public ServerHealth(string localClusterName) => LocalClusterName = localClusterName;

    /// <summary>The node's cluster, returned in x-envoy-upstream-healthchecked-cluster.</summary>
    public string LocalClusterName { get; }

    public bool HealthCheckFailed
    {
        get => _failed;
        set => _failed = value;
    }
}
