namespace CSharpEnvoy.Config.Model.Cluster;

internal enum LeastRequestSelection { NChoices = 0, FullScan = 1 }

/// <summary>
/// The cluster's load balancer and its settings, from <c>lb_policy</c> plus its <c>*_lb_config</c>, or from the
/// first supported entry of <c>load_balancing_policy</c>. Defaults are Envoy's.
/// </summary>
internal sealed record LoadBalancerConfigModel
{
    public static readonly LoadBalancerConfigModel Default = new();

    /// <summary>One of RoundRobin, LeastRequest, Random, RingHash, Maglev.</summary>
    public LbPolicy Policy { get; init; } = LbPolicy.RoundRobin;
    public uint ChoiceCount { get; init; } = 2;
    public double ActiveRequestBias { get; init; } = 1.0;
    public LeastRequestSelection Selection { get; init; }
    public ulong MinimumRingSize { get; init; } = 1024;
    public ulong MaximumRingSize { get; init; } = 8 * 1024 * 1024;
    public ulong MaglevTableSize { get; init; } = 65537;
    public bool UseHostnameForHashing { get; init; }
    /// <summary>The extension name when configured through <c>load_balancing_policy</c> (for logs and docs).</summary>
    public string? ExtensionName { get; init; }
}
