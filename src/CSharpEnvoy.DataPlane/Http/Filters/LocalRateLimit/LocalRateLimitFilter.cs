using System.Diagnostics;
using CSharpEnvoy.Config.Model.HttpFilters;
using CSharpEnvoy.DataPlane.Router;
using CSharpEnvoy.DataPlane.Stats;
using Microsoft.AspNetCore.Http;

namespace CSharpEnvoy.DataPlane.Http.Filters.LocalRateLimit;

/// <summary>
/// Envoy's <c>envoy.filters.http.local_ratelimit</c> with one filter-wide token bucket. The bucket is a single
/// timestamp updated by compare-and-swap (as Envoy's atomic token bucket): the moment it was (or would be) empty;
/// tokens refill continuously at tokens_per_fill per fill_interval, up to max_tokens. No timers.
/// </summary>
internal sealed class LocalRateLimitFilter : IHttpDecoderFilter
{
    private readonly LocalRateLimitModel _model;
    private readonly long _ticksPerToken;
    private readonly long _capacityTicks;
    private long _emptyAt;
    private readonly Counter _enabled, _enforced, _rateLimited, _ok;

    public LocalRateLimitFilter(LocalRateLimitModel model, StatsStore stats)
    {
        _model = model;
        var ticksPerToken = model.FillInterval.TotalSeconds * Stopwatch.Frequency / Math.Max(1u, model.TokensPerFill);
        var capacity = ticksPerToken * model.MaxTokens;
        // Clamp absurdly long intervals so the arithmetic stays in range (a century is "never" here).
        var max = 100.0 * 365 * 24 * 3600 * Stopwatch.Frequency;
        _ticksPerToken = (long)Math.Clamp(ticksPerToken, 1, max);
        _capacityTicks = (long)Math.Clamp(capacity, 1, max);
        _emptyAt = Stopwatch.GetTimestamp() - _capacityTicks; // starts full
        var p = model.StatPrefix + ".http_local_rate_limit.";
        _enabled = stats.Counter(p + "enabled");
        _enforced = stats.Counter(p + "enforced");
        _rateLimited = stats.Counter(p + "rate_limited");
        _ok = stats.Counter(p + "ok");
    }

    public ValueTask<bool> DecodeHeadersAsync(HttpContext context, UpstreamRequest info, HttpConnectionManager hcm)
    {
        var m = _model;
        // Without filter_enabled the filter is off (Envoy's default for the runtime fraction is absent = 0%).
        if (m.FilterEnabled is null || !HttpFilterChain.Sample(m.FilterEnabled)) return new ValueTask<bool>(true);
        _enabled.Inc();
        if (TryConsume())
        {
            _ok.Inc();
            return new ValueTask<bool>(true);
        }
        _rateLimited.Inc();
        if (m.FilterEnforced is null || !HttpFilterChain.Sample(m.FilterEnforced)) return new ValueTask<bool>(true);
        _enforced.Inc();
        info.Flags |= ResponseFlags.RateLimited;
        HeaderMutator.Apply(context.Response.Headers, m.ResponseHeaders, context);
        return Replied(LocalReply.SendAsync(context, m.Status, "local_rate_limited", hcm.LocalReplyServerName, info, "local_rate_limited"));
    }

    private static async ValueTask<bool> Replied(Task reply)
    {
        await reply.ConfigureAwait(false);
        return false;
    }

    private bool TryConsume()
    {
        var now = Stopwatch.GetTimestamp();
        while (true)
        {
            var emptyAt = Volatile.Read(ref _emptyAt);
            var start = Math.Max(emptyAt, now - _capacityTicks);
            var next = start + _ticksPerToken;
            if (next > now) return false;
            if (Interlocked.CompareExchange(ref _emptyAt, next, emptyAt) == emptyAt) return true;
        }
    }
}
