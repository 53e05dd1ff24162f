using System.Collections.Concurrent;
using System.Globalization;
using CSharpEnvoy.Config.Model.HttpFilters;
using CSharpEnvoy.DataPlane.Router;
using CSharpEnvoy.DataPlane.Stats;
using CSharpEnvoy.DataPlane.Upstream;
using Envoy.Service.Ratelimit.V3;
using Grpc.Core;
using Grpc.Net.Client;
using Microsoft.AspNetCore.Http;
using RlsCode = Envoy.Service.Ratelimit.V3.RateLimitResponse.Types.Code;

namespace CSharpEnvoy.DataPlane.Http.Filters.RateLimit;

/// <summary>
/// Envoy's <c>envoy.filters.http.ratelimit</c>: for a request whose route has <c>rate_limits</c> of the filter's stage,
/// asks the rate limit service (<c>RateLimitService/ShouldRateLimit</c>) with the request's descriptors. OVER_LIMIT is a
/// 429 (x-envoy-ratelimited, flag RL); a failed or late call passes the request (failure_mode_allowed) or, with
/// failure_mode_deny, is a 500 (flag RLSE). Stats go to the route's cluster: <c>cluster.&lt;name&gt;.ratelimit.*</c>.
/// </summary>
internal sealed class RateLimitFilter : IHttpDecoderFilter
{
    private readonly RateLimitFilterModel _model;
    private readonly HttpFilterNames _names;
    private readonly StatsStore _stats;
    private readonly ClusterManager _clusters;
    private readonly RateLimitService.RateLimitServiceClient _client;
    private readonly ConcurrentDictionary<string, RateLimitStats> _statsByCluster = new(StringComparer.Ordinal);

    public RateLimitFilter(RateLimitFilterModel model, HttpFilterNames names, StatsStore stats, ClusterManager clusters)
    {
        _model = model;
        _names = names;
        _stats = stats;
        _clusters = clusters;
        // The address only names the channel; ClusterGrpcHandler sends each call to a host of the cluster.
        var channel = GrpcChannel.ForAddress("http://" + "ratelimit-service", new GrpcChannelOptions
        {
            HttpHandler = new ClusterGrpcHandler(clusters, model.ClusterName),
            DisposeHttpClient = true,
        });
        _client = new RateLimitService.RateLimitServiceClient(channel);
    }

    public ValueTask<bool> DecodeHeadersAsync(HttpContext context, UpstreamRequest info, HttpConnectionManager hcm)
    {
        var m = _model;
        if (m.InternalOnly is bool internalOnly && (context.Request.Headers["x-envoy-internal"] == "true") != internalOnly)
            return new ValueTask<bool>(true);
        // Envoy calls the service only for requests routed to a cluster that exists.
        if (RouterFilter.TargetClusterName(context, info) is not { } clusterName || _clusters.Get(clusterName) is not { } cluster)
            return new ValueTask<bool>(true);
        var perRoute = _names.MostSpecific<RateLimitPerRouteModel>(info);
        var descriptors = RateLimitDescriptors.Populate(context, info, m.Stage, perRoute?.VhRateLimits ?? VhRateLimitsOption.Override);
        if (descriptors is null) return new ValueTask<bool>(true);
        return CallAsync(context, info, hcm, cluster, perRoute?.Domain ?? m.Domain, descriptors);
    }

    private async ValueTask<bool> CallAsync(HttpContext context, UpstreamRequest info, HttpConnectionManager hcm, Cluster cluster, string domain,
        List<KeyValuePair<string, string>[]> descriptors)
    {
        var m = _model;
        var request = new RateLimitRequest { Domain = domain };
        foreach (var d in descriptors)
        {
            var descriptor = new Envoy.Extensions.Common.Ratelimit.V3.RateLimitDescriptor();
            foreach (var e in d) descriptor.Entries.Add(new Envoy.Extensions.Common.Ratelimit.V3.RateLimitDescriptor.Types.Entry { Key = e.Key, Value = e.Value });
            request.Descriptors.Add(descriptor);
        }

        RateLimitResponse? response = null;
        using (var cts = CancellationTokenSource.CreateLinkedTokenSource(context.RequestAborted))
        {
            if (m.Timeout > TimeSpan.Zero) cts.CancelAfter(m.Timeout);
            try
            {
                response = await _client.ShouldRateLimitAsync(request, cancellationToken: cts.Token).ConfigureAwait(false);
            }
            catch (RpcException)
            {
                // Unreachable service, deadline, or a non-OK gRPC status: an error, as Envoy's client reports it.
            }
            catch (OperationCanceledException)
            {
            }
        }
        if (context.RequestAborted.IsCancellationRequested) return false;

        var stats = StatsFor(cluster.Name);
        var code = response?.OverallCode ?? RlsCode.Unknown;
        if (code == RlsCode.Unknown)
        {
            // Envoy treats an UNKNOWN overall code like a failed call.
            stats.Error.Inc();
            if (!m.FailureModeDeny)
            {
                stats.FailureModeAllowed.Inc();
                AddRequestHeaders(context, response);
                return true;
            }
            info.Flags |= ResponseFlags.RateLimitServiceError;
            return await HttpFilterChain.Replied(LocalReply.SendAsync(context, m.StatusOnError, "", hcm.LocalReplyServerName, info, "rate_limiter_error")).ConfigureAwait(false);
        }
        if (code == RlsCode.Ok)
        {
            stats.Ok.Inc();
            AddRequestHeaders(context, response);
            AddResponseHeadersOnStart(context, response!);
            return true;
        }

        stats.OverLimit.Inc();
        cluster.Stats.ResponseCode(429);
        var headers = context.Response.Headers;
        foreach (var h in response!.ResponseHeadersToAdd) headers.Append(h.Key, h.Value);
        if (m.XRateLimitHeaders) AddXRateLimitHeaders(headers, response);
        if (!m.DisableXEnvoyRateLimitedHeader) headers["x-envoy-ratelimited"] = "true";
        HeaderMutator.Apply(headers, m.ResponseHeaders, context);
        info.Flags |= ResponseFlags.RateLimited;
        var body = response.RawBody.Length == 0 ? "" : response.RawBody.ToStringUtf8();
        return await HttpFilterChain.Replied(LocalReply.SendAsync(context, m.RateLimitedStatus, body, hcm.LocalReplyServerName, info, "request_rate_limited",
            m.RateLimitedAsResourceExhausted ? 8 : null)).ConfigureAwait(false);
    }

    private static void AddRequestHeaders(HttpContext context, RateLimitResponse? response)
    {
        if (response is null) return;
        foreach (var h in response.RequestHeadersToAdd) context.Request.Headers.Append(h.Key, h.Value);
    }

    /// <summary>The service's response headers (and X-RateLimit-*) on the upstream's response, as Envoy's
    /// <c>encodeHeaders</c> adds them.</summary>
    private void AddResponseHeadersOnStart(HttpContext context, RateLimitResponse response)
    {
        var x = _model.XRateLimitHeaders;
        if (response.ResponseHeadersToAdd.Count == 0 && !x) return;
        context.Response.OnStarting(static state =>
        {
            var (ctx, r, withX) = ((HttpContext, RateLimitResponse, bool))state;
            var headers = ctx.Response.Headers;
            foreach (var h in r.ResponseHeadersToAdd) headers.Append(h.Key, h.Value);
            if (withX) AddXRateLimitHeaders(headers, r);
            return Task.CompletedTask;
        }, (context, response, x));
    }

    /// <summary>Envoy's <c>XRateLimitHeaderUtils::create</c> (draft 03): the descriptor status with the fewest
    /// requests remaining gives limit, remaining and reset; the limit lists every window's quota policy.</summary>
    private static void AddXRateLimitHeaders(IHeaderDictionary headers, RateLimitResponse response)
    {
        RateLimitResponse.Types.DescriptorStatus? min = null;
        var policy = new System.Text.StringBuilder();
        foreach (var s in response.Statuses)
        {
            if (s.CurrentLimit is not { } limit) continue;
            if (min is null || s.LimitRemaining < min.LimitRemaining) min = s;
            var window = limit.Unit switch
            {
                RateLimitResponse.Types.RateLimit.Types.Unit.Second => 1,
                RateLimitResponse.Types.RateLimit.Types.Unit.Minute => 60,
                RateLimitResponse.Types.RateLimit.Types.Unit.Hour => 3600,
                RateLimitResponse.Types.RateLimit.Types.Unit.Day => 86400,
                _ => 0,
            };
            if (window == 0) continue;
            policy.Append(", ").Append(limit.RequestsPerUnit.ToString(CultureInfo.InvariantCulture)).Append(";w=").Append(window.ToString(CultureInfo.InvariantCulture));
            if (limit.Name.Length > 0) policy.Append(";name=\"").Append(limit.Name).Append('"');
        }
        if (min is null) return;
        headers["x-ratelimit-limit"] = min.CurrentLimit.RequestsPerUnit.ToString(CultureInfo.InvariantCulture) + policy.ToString();
        headers["x-ratelimit-remaining"] = min.LimitRemaining.ToString(CultureInfo.InvariantCulture);
        headers["x-ratelimit-reset"] = (min.DurationUntilReset?.Seconds ?? 0).ToString(CultureInfo.InvariantCulture);
    }

    private RateLimitStats StatsFor(string cluster) =>
        _statsByCluster.GetOrAdd(cluster, static (name, f) => new RateLimitStats(f._stats, name, f._model.StatPrefix), this);

    /// <summary><c>cluster.&lt;route cluster&gt;.ratelimit.[&lt;stat_prefix&gt;.]*</c>.</summary>
    private sealed class RateLimitStats
    {
        public RateLimitStats(StatsStore store, string cluster, string statPrefix)
        {
            var p = "cluster." + cluster + ".ratelimit." + (statPrefix.Length == 0 ? "" : statPrefix + ".");
            Ok = store.Counter(p, "ok");
            OverLimit = store.Counter(p, "over_limit");
            Error = store.Counter(p, "error");
            FailureModeAllowed = store.Counter(p, "failure_mode_allowed");
        }

        public Counter Ok { get; }
        public Counter OverLimit { get; }
        public Counter Error { get; }
        public Counter FailureModeAllowed { get; }
    }
}
