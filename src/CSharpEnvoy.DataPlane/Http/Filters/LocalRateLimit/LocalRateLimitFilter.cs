using System.Diagnostics;
using System.Runtime.CompilerServices;
using CSharpEnvoy.Config.Model.HttpFilters;
using CSharpEnvoy.DataPlane.Router;
using CSharpEnvoy.DataPlane.Stats;
using Microsoft.AspNetCore.Http;

namespace CSharpEnvoy.DataPlane.Http.Filters.LocalRateLimit;

/// <summary>
/// Envoy's <c>envoy.filters.http.local_ratelimit</c>. The filter-wide config, or a route's most specific
/// <c>typed_per_filter_config</c> LocalRateLimit (with its own buckets and stats, as Envoy's per-route config), decides.
/// Descriptors from the route's <c>rate_limits</c> of the filter's stage consume their own buckets, strictest first,
/// and the default bucket too unless <c>always_consume_default_token_bucket</c> is false.
/// </summary>
internal sealed class LocalRateLimitFilter : IHttpDecoderFilter
{
    private readonly LocalRateLimiter _limiter;
    private readonly HttpFilterNames _names;
    private readonly StatsStore _stats;
    /// <summary>The limiter of each per-route config, made on first use; lives as long as its route configuration.</summary>
    private readonly ConditionalWeakTable<LocalRateLimitModel, LocalRateLimiter> _perRoute = new();
    private readonly ConditionalWeakTable<LocalRateLimitModel, LocalRateLimiter>.CreateValueCallback _createLimiter;

    public LocalRateLimitFilter(LocalRateLimitModel model, HttpFilterNames names, StatsStore stats)
    {
        _limiter = new LocalRateLimiter(model, stats);
        _names = names;
        _stats = stats;
        _createLimiter = m => new LocalRateLimiter(m, _stats);
    }

    public ValueTask<bool> DecodeHeadersAsync(HttpContext context, UpstreamRequest info, HttpConnectionManager hcm)
    {
        var limiter = _limiter;
        // A lock-free lookup on the request path; the limiter is made once, on a route's first request.
        if (_names.MostSpecific<LocalRateLimitModel>(info) is { } routeModel && !_perRoute.TryGetValue(routeModel, out limiter))
            limiter = _perRoute.GetValue(routeModel, _createLimiter);
        var m = limiter.Model;
        // Without filter_enabled the filter is off (Envoy's default for the runtime fraction is absent = 0%).
        if (m.FilterEnabled is null || !HttpFilterChain.Sample(m.FilterEnabled)) return new ValueTask<bool>(true);
        limiter.Enabled.Inc();
        var descriptors = m.Descriptors.Length > 0 ? RateLimit.RateLimitDescriptors.Populate(context, info, m.Stage, m.VhRateLimits) : null;
        if (limiter.RequestAllowed(descriptors))
        {
            limiter.Ok.Inc();
            return new ValueTask<bool>(true);
        }
        limiter.RateLimited.Inc();
        if (m.FilterEnforced is null || !HttpFilterChain.Sample(m.FilterEnforced)) return new ValueTask<bool>(true);
        limiter.Enforced.Inc();
        info.Flags |= ResponseFlags.RateLimited;
        HeaderMutator.Apply(context.Response.Headers, m.ResponseHeaders, context);
        return HttpFilterChain.Replied(LocalReply.SendAsync(context, m.Status, "local_rate_limited", hcm.LocalReplyServerName, info, "local_rate_limited",
            m.RateLimitedAsResourceExhausted ? 8 : null));
    }
}

/// <summary>The buckets and stats of one LocalRateLimit config (the filter's or a route's).</summary>
internal sealed class LocalRateLimiter
{
    private readonly TokenBucket? _default;
    private readonly (KeyValuePair<string, string>[] Entries, TokenBucket Bucket)[] _descriptors;

    public LocalRateLimiter(LocalRateLimitModel model, StatsStore stats)
    {
        Model = model;
        if (model.HasTokenBucket) _default = new TokenBucket(model.MaxTokens, model.TokensPerFill, model.FillInterval);
        _descriptors = new (KeyValuePair<string, string>[], TokenBucket)[model.Descriptors.Length];
        for (var i = 0; i < _descriptors.Length; i++)
        {
            var d = model.Descriptors[i];
            _descriptors[i] = (d.Entries, new TokenBucket(d.MaxTokens, d.TokensPerFill, d.FillInterval));
        }
        var p = model.StatPrefix + ".http_local_rate_limit.";
        Enabled = stats.Counter(p, "enabled");
        Enforced = stats.Counter(p, "enforced");
        RateLimited = stats.Counter(p, "rate_limited");
        Ok = stats.Counter(p, "ok");
    }

    public LocalRateLimitModel Model { get; }
    public Counter Enabled { get; }
    public Counter Enforced { get; }
    public Counter RateLimited { get; }
    public Counter Ok { get; }

    /// <summary>Envoy's <c>LocalRateLimiterImpl::requestAllowed</c>: matched descriptors (exact entries) consume
    /// their buckets strictest first and stop at the first empty one; then the default bucket, when nothing matched
    /// or when it is always consumed. No default bucket allows.</summary>
    public bool RequestAllowed(List<KeyValuePair<string, string>[]>? requestDescriptors)
    {
        var matched = false;
        if (requestDescriptors is not null)
        {
            foreach (var (entries, bucket) in _descriptors)
            {
                foreach (var rd in requestDescriptors)
                {
                    if (!SameEntries(entries, rd)) continue;
                    matched = true;
                    if (!bucket.TryConsume()) return false;
                    break;
                }
            }
        }
        if (!matched || Model.AlwaysConsumeDefaultTokenBucket) return _default?.TryConsume() ?? true;
        return true;
    }

    private static bool SameEntries(KeyValuePair<string, string>[] a, KeyValuePair<string, string>[] b)
    {
        if (a.Length != b.Length) return false;
        for (var i = 0; i < a.Length; i++)
            if (a[i].Key != b[i].Key || a[i].Value != b[i].Value) return false;
        return true;
    }
}

/// <summary>
/// A token bucket as a single timestamp updated by compare-and-swap (as Envoy's atomic token bucket): the moment it
/// was (or would be) empty; tokens refill continuously at tokens_per_fill per fill_interval, up to max_tokens. No timers.
/// </summary>
internal sealed class TokenBucket
{
    private readonly long _ticksPerToken;
    private readonly long _capacityTicks;
    private long _emptyAt;

    public TokenBucket(uint maxTokens, uint tokensPerFill, TimeSpan fillInterval)
    {
        var ticksPerToken = fillInterval.TotalSeconds * Stopwatch.Frequency / Math.Max(1u, tokensPerFill);
        var capacity = ticksPerToken * maxTokens;
        // Clamp absurdly long intervals so the arithmetic stays in range (a century is "never" here).
        var max = 100.0 * 365 * 24 * 3600 * Stopwatch.Frequency;
        _ticksPerToken = (long)Math.Clamp(ticksPerToken, 1, max);
        _capacityTicks = (long)Math.Clamp(capacity, 1, max);
        _emptyAt = Stopwatch.GetTimestamp() - _capacityTicks; // starts full
    }

    public bool TryConsume()
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
