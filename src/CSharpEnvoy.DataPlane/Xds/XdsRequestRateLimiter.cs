using CSharpEnvoy.Config.Model.Xds;
using CSharpEnvoy.DataPlane.Stats;

namespace CSharpEnvoy.DataPlane.Xds;

/// <summary>Envoy's <c>control_plane.rate_limit_enforced</c> (how often a discovery request had to wait for a token)
/// and <c>control_plane.pending_requests</c> (requests held back meanwhile), shared by every xDS stream.</summary>
internal sealed record ControlPlaneRateLimitStats(Counter Enforced, Gauge Pending)
{
    public static ControlPlaneRateLimitStats Create(StatsStore stats) =>
        new(stats.Counter("control_plane.rate_limit_enforced"), stats.Gauge("control_plane.pending_requests"));
}

/// <summary>
/// An <c>ApiConfigSource</c>'s <c>rate_limit_settings</c> on one xDS stream: a token bucket over the discovery
/// requests (subscriptions, ACKs and NACKs) it sends, full at start, kept across reconnects as Envoy keeps it per
/// stream. Used by the stream's single writer only.
/// </summary>
internal sealed class XdsRequestRateLimiter(XdsRateLimitModel settings, TimeProvider time)
{
    private double _tokens = settings.MaxTokens;
    private long _last = time.GetTimestamp();

    /// <summary>Takes a token: <see cref="TimeSpan.Zero"/> when there was one, else how long until the next.</summary>
    public TimeSpan TryTake()
    {
        var now = time.GetTimestamp();
        _tokens = Math.Min(settings.MaxTokens, _tokens + time.GetElapsedTime(_last, now).TotalSeconds * settings.FillRate);
        _last = now;
        if (_tokens >= 1)
        {
            _tokens -= 1;
            return TimeSpan.Zero;
        }
        // At least a millisecond: a wait rounded down to nothing would spin.
        return TimeSpan.FromSeconds(Math.Max((1 - _tokens) / settings.FillRate, 0.001));
    }
}
