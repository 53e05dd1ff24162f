using CSharpEnvoy.Config.Model.Cluster;

namespace CSharpEnvoy.DataPlane.Upstream.LoadBalancing;

/// <summary>The balancer for a cluster's validated load balancing config.</summary>
internal static class LoadBalancerFactory
{
    public static ILoadBalancer Create(LoadBalancerConfigModel config, LbRandom random) => config.Policy switch
    {
        LbPolicy.LeastRequest => new LeastRequestLoadBalancer(random, config.ChoiceCount, config.ActiveRequestBias,
            config.Selection == LeastRequestSelection.FullScan),
        LbPolicy.Random => new RandomLoadBalancer(random),
        LbPolicy.RingHash => new RingHashLoadBalancer(random, config.MinimumRingSize, config.MaximumRingSize, config.UseHostnameForHashing),
        LbPolicy.Maglev => new MaglevLoadBalancer(random, config.MaglevTableSize, config.UseHostnameForHashing),
        _ => new RoundRobinLoadBalancer(random),
    };
}
