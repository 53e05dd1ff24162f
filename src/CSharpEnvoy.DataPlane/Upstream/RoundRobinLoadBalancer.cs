namespace CSharpEnvoy.DataPlane.Upstream;

/// <summary>Envoy's ROUND_ROBIN over the healthy hosts: one interlocked increment per pick, starting at a random host
/// so that many proxies restarted together do not all hit the same first host.</summary>
internal sealed class RoundRobinLoadBalancer
{
    private int _next = Random.Shared.Next();

    public Host? ChooseHost(HostSet set)
    {
        var hosts = set.HealthyHosts;
        if (hosts.Length == 0) return null;
        var i = (uint)Interlocked.Increment(ref _next);
        return hosts[(int)(i % (uint)hosts.Length)];
    }
}
