namespace CSharpEnvoy.DataPlane.Upstream;

/// <summary>Time and randomness for everything upstream that runs on timers (health checking, outlier detection),
/// injected so tests can drive intervals without sleeping.</summary>
internal sealed record UpstreamServices(TimeProvider Time, LoadBalancing.LbRandom Random)
{
    public static readonly UpstreamServices Default = new(TimeProvider.System, LoadBalancing.LbRandom.Shared);
}
