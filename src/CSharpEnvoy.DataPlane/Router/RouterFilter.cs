using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using CSharpEnvoy.Config.Model.Cluster;
using CSharpEnvoy.Config.Model.RouteConfiguration;
using CSharpEnvoy.DataPlane.Http;
using CSharpEnvoy.DataPlane.Upstream;
using CSharpEnvoy.DataPlane.Upstream.Http1;
using CSharpEnvoy.DataPlane.Upstream.LoadBalancing;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.Features;
using Yarp.ReverseProxy.Forwarder;

namespace CSharpEnvoy.DataPlane.Router;

/// <summary>
/// The per-request state of a forwarded request, and its YARP transformer: it rewrites the upstream URI and Host the
/// way Envoy's router does and stamps Envoy's response headers when the upstream answers.
/// </summary>
internal sealed class UpstreamRequest : StreamInfo
{
    private static readonly UriCreationOptions s_rawUri = new() { DangerousDisablePathAndQueryCanonicalization = true };

    public WeightedClusterEntry? WeightedCluster { get; set; }
    /// <summary>The cluster's circuit breakers for the route's priority.</summary>
    public ResourceManager? Resources { get; set; }
    public string UpstreamPathAndQuery { get; set; } = "/";
    public string UpstreamAuthority { get; set; } = "";
    public long UpstreamStartTimestamp { get; set; }
    public bool ResponseStarted { get; private set; }
    /// <summary>The upstream accepted an upgrade (101): the request is now a tunnel.</summary>
    public bool Upgraded { get; private set; }
    public HttpConnectionManager? Hcm { get; set; }
    public RouteConfigurationModel? Routes { get; set; }
    /// <summary>The request as route matching saw it (raw path, pseudo-headers).</summary>
    public RequestView? Request { get; set; }
    /// <summary>The connection manager's request and stream duration timers; null when neither applies.</summary>
    public StreamTimeouts? StreamTimeouts { get; set; }
    /// <summary>The route timeout, disarmed when an upgrade is accepted; null outside the router's exchange.</summary>
    public RouteTimeout? RouteTimeout { get; set; }
    /// <summary>A Set-Cookie a cookie hash policy generated; added to the upstream response, as Envoy does.</summary>
    public string? HashPolicySetCookie { get; set; }
    /// <summary>Set for requests that may be retried.</summary>
    public RetryState? Retry { get; set; }
    /// <summary>The attempt's response matched a retry condition and a retry was taken: its body is discarded.</summary>
    public bool RetryRequested { get; set; }
    /// <summary>The attempt's response matched a retry condition but no retry was left (URX).</summary>
    public bool RetryLimitExceeded { get; set; }
    /// <summary>The attempt counts against max_pending_requests until its response headers arrive.</summary>
    public bool HoldsPending { get; set; }
    public bool AttemptCountInResponse { get; set; }

    public override async ValueTask TransformRequestAsync(HttpContext httpContext, HttpRequestMessage proxyRequest, string destinationPrefix, CancellationToken cancellationToken)
    {
        await base.TransformRequestAsync(httpContext, proxyRequest, destinationPrefix, cancellationToken).ConfigureAwait(false);
        proxyRequest.RequestUri = new Uri(destinationPrefix + UpstreamPathAndQuery, in s_rawUri);
        proxyRequest.Headers.Host = UpstreamAuthority;
        UpstreamStartTimestamp = Stopwatch.GetTimestamp();
    }

    public override async ValueTask<bool> TransformResponseAsync(HttpContext httpContext, HttpResponseMessage? proxyResponse, CancellationToken cancellationToken)
    {
        if (proxyResponse is null)
        {
            ReleasePending();
            return await base.TransformResponseAsync(httpContext, proxyResponse, cancellationToken).ConfigureAwait(false);
        }
        if (RetryOnResponse((int)proxyResponse.StatusCode, new RetryState.ResponseMessageHeaders(proxyResponse))) return false;
        return await ApplyResponseAsync(httpContext, proxyResponse, cancellationToken).ConfigureAwait(false);
    }

    private void ReleasePending()
    {
        if (!HoldsPending) return;
        HoldsPending = false;
        Resources!.PendingRequests.Release();
    }

    /// <summary>Response headers arrived: the attempt leaves the pending state, and a response matching a retry condition
    /// is counted and dropped when a retry is left (true: the router retries, nothing went downstream).</summary>
    public bool RetryOnResponse<THeaders>(int status, THeaders headers) where THeaders : IResponseHeaderLookup
    {
        ReleasePending();
        if (Retry is not { } retry || status == StatusCodes.Status101SwitchingProtocols || !retry.WouldRetry(status, headers)) return false;
        if (retry.TryTakeRetry(Resources!, out var exceeded))
        {
            Cluster!.Stats.ResponseCode(status);
            RetryRequested = true;
            return true;
        }
        RetryLimitExceeded = exceeded;
        return false;
    }

    /// <summary>Copies the upstream response headers that go downstream and stamps Envoy's response headers.</summary>
    public async ValueTask<bool> ApplyResponseAsync(HttpContext httpContext, HttpResponseMessage proxyResponse, CancellationToken cancellationToken)
    {
        var copy = await base.TransformResponseAsync(httpContext, proxyResponse, cancellationToken).ConfigureAwait(false);
        ApplyResponse(httpContext, (int)proxyResponse.StatusCode);
        return copy;
    }

    private static readonly string?[] s_smallNumbers = new string?[1024];

    /// <summary>A number's text; below 1,024 (most service times) made once and kept.</summary>
    private static string SmallNumberText(long n)
    {
        if ((ulong)n >= (ulong)s_smallNumbers.Length) return n.ToString(System.Globalization.CultureInfo.InvariantCulture);
        return s_smallNumbers[n] ??= n.ToString(System.Globalization.CultureInfo.InvariantCulture);
    }

    /// <summary>Stamps Envoy's response headers and counts the response, once its status and headers are in place.</summary>
    public void ApplyResponse(HttpContext httpContext, int statusCode)
    {
        UpstreamFirstByteTimestamp = Stopwatch.GetTimestamp();
        ResponseStarted = true;
        ResponseCodeDetails = "via_upstream";
        // Envoy arms the route timeout when the downstream request ends, which an upgraded (WebSocket) stream does not
        // do: once the upstream accepts the upgrade only the idle timeout bounds the tunnel.
        var hcm = Hcm!;
        if (statusCode == StatusCodes.Status101SwitchingProtocols)
        {
            RouteTimeout?.Disarm();
            Upgraded = true;
            hcm.Stats.DownstreamCxUpgradesTotal.Inc();
            hcm.Stats.DownstreamCxUpgradesActive.Inc();
        }
        Cluster?.Stats.ResponseCode(statusCode);
        if (!hcm.Model.SuppressEnvoyHeaders)
        {
            var ms = (long)Stopwatch.GetElapsedTime(UpstreamStartTimestamp).TotalMilliseconds;
            httpContext.Response.Headers["x-envoy-upstream-service-time"] = SmallNumberText(ms);
        }
        if (AttemptCountInResponse) httpContext.Response.Headers["x-envoy-attempt-count"] = SmallNumberText(AttemptCount);
        if (HashPolicySetCookie is { } setCookie) httpContext.Response.Headers.Append("set-cookie", setCookie);
        hcm.MutateResponseHeaders(httpContext, this, Routes!, VirtualHost!, Route!);
    }
}

/// <summary>A failed attempt that did not come from YARP's forwarder (a hedged try, the HTTP/1.1 codec), for
/// <see cref="RouterFilter"/>'s error handling, which reads it as it reads YARP's.</summary>
internal sealed class ForwarderFailure(ForwarderError error, Exception? exception) : IForwarderErrorFeature
{
    public ForwarderError Error { get; } = error;
    public Exception? Exception { get; } = exception;
}

/// <summary>
/// Envoy's router filter: picks the cluster (single, weighted, or from a header), asks the cluster's load balancer
/// for a host, applies request rewrites and header mutations, and forwards with YARP's <see cref="IHttpForwarder"/>
/// over the cluster's own <see cref="HttpMessageInvoker"/>. Failures become Envoy's local replies and response flags.
/// </summary>
internal sealed partial class RouterFilter
{
    private static readonly TimeSpan DefaultStreamIdleTimeout = TimeSpan.FromMinutes(5);

    // Envoy's stream_idle_timeout default (5 minutes) bounds a silent upstream; the route timeout bounds the whole.
    private static readonly ForwarderRequestConfig s_http1 = new() { Version = HttpVersion.Version11, VersionPolicy = HttpVersionPolicy.RequestVersionExact, ActivityTimeout = TimeSpan.FromMinutes(5) };
    private static readonly ForwarderRequestConfig s_http2 = new() { Version = HttpVersion.Version20, VersionPolicy = HttpVersionPolicy.RequestVersionExact, ActivityTimeout = TimeSpan.FromMinutes(5) };

    private readonly IHttpForwarder _forwarder;
    private readonly ClusterManager _clusters;

    public RouterFilter(IHttpForwarder forwarder, ClusterManager clusters)
    {
        _forwarder = forwarder;
        _clusters = clusters;
    }

    public ClusterManager Clusters => _clusters;

    /// <summary>The route's target cluster name as Envoy's route entry gives it to filters: the cluster, the picked
    /// weighted cluster, or the cluster_header's value; null when none.</summary>
    public static string? TargetClusterName(HttpContext context, UpstreamRequest info)
    {
        if (info.Route?.Route is not { } action) return null;
        if (action.Cluster is not null) return action.Cluster;
        if (action.WeightedClusters is { } weighted) return (info.WeightedCluster ??= PickWeighted(weighted, action.TotalWeight)).Name;
        var v = context.Request.Headers[action.ClusterHeader!];
        return v.Count == 0 ? null : v[0];
    }

    /// <remarks>Its state machine (~300 bytes: the attempt loop keeps many locals) comes from a per-thread pool instead of
    /// being allocated for every request; the connection manager awaits the result once, as a pooled ValueTask needs.</remarks>
    [System.Runtime.CompilerServices.AsyncMethodBuilder(typeof(System.Runtime.CompilerServices.PoolingAsyncValueTaskMethodBuilder))]
    public async ValueTask ForwardAsync(HttpContext context, UpstreamRequest info, HttpConnectionManager hcm, RouteConfigurationModel routes, VirtualHostModel vhost, RouteModel route, RequestView request)
    {
        var action = route.Route!;
        info.Hcm = hcm;
        info.Routes = routes;
        var serverName = hcm.LocalReplyServerName;

        string? clusterName;
        if (action.Cluster is not null) clusterName = action.Cluster;
        else if (action.WeightedClusters is { } weighted)
        {
            // Picked with the route, as Envoy does, so filters before the router see the same cluster.
            var entry = info.WeightedCluster ??= PickWeighted(weighted, action.TotalWeight);
            clusterName = entry.Name;
        }
        else
        {
            var v = context.Request.Headers[action.ClusterHeader!];
            clusterName = v.Count == 0 ? null : v[0];
        }

        var cluster = clusterName is null ? null : _clusters.Get(clusterName);
        if (cluster is null)
        {
            hcm.Stats.NoCluster.Inc();
            info.Flags |= ResponseFlags.NoClusterFound;
            await LocalReply.SendAsync(context, action.ClusterNotFoundResponseCode, "", serverName, info, "cluster_not_found").ConfigureAwait(false);
            return;
        }
        info.Cluster = cluster;

        // Envoy computes the route's hash only when the cluster's balancer asks for one (ring hash, maglev).
        var lbContext = action.HashPolicies.Length > 0 && cluster.UsesHashPolicy &&
            HashPolicyEvaluator.TryCompute(action.HashPolicies, context, request, info, out var hash)
            ? new LoadBalancerContext(hash) : LoadBalancerContext.None;
        var host = cluster.ChooseHost(lbContext);
        if (host is null)
        {
            await NoHealthyUpstreamAsync(context, info, cluster, serverName).ConfigureAwait(false);
            return;
        }
        info.UpstreamHost = host;

        ApplyRequestHeaderMutations(context, info, routes, vhost, route);
        RewritePathAndHost(context, info, action, route, request, host, hcm.Model.SuppressEnvoyHeaders);

        var headers = context.Request.Headers;
        var timeout = action.Timeout;
        var grpc = false;
        if (action.MaxStreamDuration is { GrpcTimeoutHeaderMax: { } grpcMax } msd && LocalReply.IsGrpc(context.Request))
        {
            // Envoy's FilterUtility::finalTimeout: the grpc-timeout header (absent: none) less the offset, capped.
            grpc = true;
            GrpcTimeout.TryParse(headers["grpc-timeout"], out var gt);
            if (msd.GrpcTimeoutHeaderOffset is { } offset && offset < gt) gt -= offset;
            if (grpcMax > TimeSpan.Zero && (gt == TimeSpan.Zero || gt > grpcMax)) gt = grpcMax;
            timeout = gt;
        }
        // The x-envoy-* overrides survive HCM sanitising only on internal requests; Envoy consumes them here.
        if (headers.ContainsKey("x-envoy-upstream-rq-timeout-ms"))
        {
            if (ulong.TryParse(headers["x-envoy-upstream-rq-timeout-ms"].ToString(), System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var ms))
                timeout = TimeSpan.FromMilliseconds(ms);
            headers.Remove("x-envoy-upstream-rq-timeout-ms");
        }
        var retryPolicy = action.RetryPolicy ?? vhost.RetryPolicy;
        var perTry = retryPolicy?.PerTryTimeout ?? TimeSpan.Zero;
        if (headers.ContainsKey("x-envoy-upstream-rq-per-try-timeout-ms"))
        {
            if (ulong.TryParse(headers["x-envoy-upstream-rq-per-try-timeout-ms"].ToString(), System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var ms))
                perTry = TimeSpan.FromMilliseconds(ms);
            headers.Remove("x-envoy-upstream-rq-per-try-timeout-ms");
        }
        // Envoy ignores a per-try timeout that is not shorter than the global one.
        if (timeout > TimeSpan.Zero && perTry >= timeout) perTry = TimeSpan.Zero;
        var retry = RetryState.Create(retryPolicy, headers);
        info.Retry = retry;
        var hedge = action.HedgeOnPerTryTimeout ?? vhost.HedgeOnPerTryTimeout ?? false;
        if (headers.ContainsKey("x-envoy-hedge-on-per-try-timeout"))
        {
            // Envoy's finalHedgingParams: "true" or "false" override the policy; the header is consumed either way.
            var v = headers["x-envoy-hedge-on-per-try-timeout"].ToString();
            if (v == "true") hedge = true;
            else if (v == "false") hedge = false;
            headers.Remove("x-envoy-hedge-on-per-try-timeout");
        }
        // The upstream learns the deadline the proxy enforces.
        if (grpc && timeout > TimeSpan.Zero) headers["grpc-timeout"] = GrpcTimeout.Format(timeout);
        var expected = perTry > TimeSpan.Zero ? perTry : timeout;
        if (expected > TimeSpan.Zero && !hcm.Model.SuppressEnvoyHeaders)
            headers["x-envoy-expected-rq-timeout-ms"] = ExpectedTimeoutText((long)expected.TotalMilliseconds);

        // Retries and mirrors replay the body: record it as it streams, up to the buffer limit.
        ReplayableBody? body = null;
        var limit = (int)Math.Min(int.MaxValue, route.PerRequestBufferLimitBytes ?? vhost.PerRequestBufferLimitBytes ?? 1024 * 1024);
        var hasBody = context.Features.Get<IHttpRequestBodyDetectionFeature>()?.CanHaveBody ?? false;
        var shadows = action.MirrorPolicies.Length > 0 ? RequestMirror.Prepare(action.MirrorPolicies, _clusters, context, info) : null;
        if (hasBody && (retry is not null || shadows is not null))
        {
            if (context.Request.ContentLength is long cl && cl > limit)
            {
                info.Retry = retry = null; // Envoy: too large to buffer, so not retried (nor mirrored)
                if (shadows is not null) { RequestMirror.Discard(shadows); shadows = null; }
            }
            else
            {
                body = new ReplayableBody(context.Request.Body, limit);
                context.Request.Body = body.NewReader();
            }
        }
        if (shadows is not null && !hasBody)
        {
            RequestMirror.Send(shadows, ReadOnlyMemory<byte>.Empty, null, timeout);
            shadows = null;
        }

        var config = cluster.Model.Protocol switch
        {
            UpstreamProtocol.Http2 => s_http2,
            UpstreamProtocol.UseDownstream => HttpProtocol.IsHttp2(context.Request.Protocol) ? s_http2 : s_http1,
            _ => s_http1,
        };
        var idle = action.IdleTimeout ?? hcm.Model.StreamIdleTimeout;
        if (idle != DefaultStreamIdleTimeout) config = WithIdleTimeout(config, idle);
        // Plain HTTP/1.1 upstreams go over csenvoy's own codec (Upstream/Http1), the rest over YARP and SocketsHttpHandler.
        var codec = config.Version!.Major == 1 && cluster.UsesHttp1Codec && Http1Forwarder.CanForward(context.Request);
        var vhIncludeAttempt = vhost.IncludeRequestAttemptCount;
        info.AttemptCountInResponse = vhost.IncludeAttemptCountInResponse;

        var stats = cluster.Stats;
        var resources = cluster.ResourcesFor(action.HighPriority);
        info.Resources = resources;
        // The connection manager's timers (request_timeout, max_stream_duration) bound the exchange too.
        var streamToken = info.StreamTimeouts?.Token ?? CancellationToken.None;
        var routeTimeout = RouteTimeout.Start(timeout, streamToken);
        var timeoutCts = routeTimeout?.Source;
        info.RouteTimeout = routeTimeout;
        // %UPSTREAM_LOCAL_ADDRESS%: the connection writing this request records itself (HTTP/1.1) in it.
        var logsLocalAddress = hcm.LogsUpstreamLocalAddress;
        if (logsLocalAddress) Upstream.UpstreamConnection.Sending.Value = info;
        var attempt = 0;
        try
        {
            if (hedge && retry is not null && perTry > TimeSpan.Zero && CanHedge(context))
            {
                // Tries run side by side, so each sends the whole buffered body (Envoy too starts the per-try timer
                // once the downstream request is complete).
                var buffered = true;
                if (body is not null)
                {
                    try
                    {
                        await body.FillAsync(timeoutCts?.Token ?? context.RequestAborted).ConfigureAwait(false);
                    }
                    catch (Exception e) when (e is OperationCanceledException or IOException or BadHttpRequestException)
                    {
                        await OnForwardErrorAsync(context, info, cluster, ForwarderError.RequestBodyClient, timeoutCts, serverName, perTryFired: false).ConfigureAwait(false);
                        return;
                    }
                    buffered = body.CanReplay; // larger than the buffer: not retried, so not hedged either
                }
                if (buffered)
                {
                    await ForwardHedgedAsync(context, info, hcm, cluster, host, retry, body?.Recorded, perTry, idle, config, timeoutCts, vhIncludeAttempt, serverName).ConfigureAwait(false);
                    return;
                }
            }
            while (true)
            {
                attempt++;
                info.AttemptCount = attempt;
                info.RetryRequested = false;
                if (vhIncludeAttempt) headers["x-envoy-attempt-count"] = attempt.ToString(System.Globalization.CultureInfo.InvariantCulture);
                if (!TryAdmit(cluster, info))
                {
                    if (attempt > 1) resources.Retries.Release();
                    await OverflowAsync(context, info, cluster, hcm, serverName).ConfigureAwait(false);
                    return;
                }
                retry?.RecordHost(host);
                stats.UpstreamRqTotal.Inc();
                stats.UpstreamRqActive.Inc();
                host.RequestStarted();
                using var perTryCts = perTry > TimeSpan.Zero
                    ? (timeoutCts is null ? new CancellationTokenSource() : CancellationTokenSource.CreateLinkedTokenSource(timeoutCts.Token))
                    : null;
                perTryCts?.CancelAfter(perTry);
                ForwarderError error;
                if (logsLocalAddress) info.UpstreamLocalAddress = null;
                var pool = codec ? null : cluster.AcquireHandlerPool(host);
                try
                {
                    var token = perTryCts?.Token ?? timeoutCts?.Token ?? CancellationToken.None;
                    error = pool is null
                        ? await Http1Forwarder.SendAsync(context, cluster, host, info, idle, token).ConfigureAwait(false)
                        : await _forwarder.SendAsync(context, host.DestinationPrefix, pool.Invoker, config, info, token).ConfigureAwait(false);
                }
                finally
                {
                    pool?.Release();
                    host.RequestFinished();
                    stats.UpstreamRqActive.Dec();
                    resources.Requests.Release();
                    if (info.HoldsPending)
                    {
                        info.HoldsPending = false;
                        resources.PendingRequests.Release();
                    }
                    if (attempt > 1) resources.Retries.Release();
                    if (info.Upgraded) hcm.Stats.DownstreamCxUpgradesActive.Dec();
                    else if (info.ResponseStarted) stats.UpstreamRqTime.Record(Stopwatch.GetElapsedTime(info.UpstreamStartTimestamp).TotalMilliseconds);
                }

                // HTTP/2 frames are written by the connection's own loop: name the host's newest connection instead.
                if (logsLocalAddress && info.UpstreamLocalAddress is null && info.ResponseStarted && config.Version?.Major == 2)
                    info.UpstreamLocalAddress = host.LastConnectionLocalAddress;
                cluster.ReportUpstreamResult(host, context, info.ResponseStarted || info.RetryRequested, error, perTryCts?.IsCancellationRequested == true || timeoutCts?.IsCancellationRequested == true); // outlier detection / immediate HC fail
                var retryNow = info.RetryRequested;
                var perTryFired = perTryCts is { IsCancellationRequested: true } && timeoutCts is not { IsCancellationRequested: true };
                if (perTryFired) resources.UpstreamRqPerTryTimeout.Inc();
                // Envoy's upstream_rq_tx_reset: the proxy reset the upstream request (a timeout, or the client left).
                if (error != ForwarderError.None && (perTryCts?.IsCancellationRequested == true || timeoutCts?.IsCancellationRequested == true
                    || context.RequestAborted.IsCancellationRequested))
                    stats.UpstreamRqTxReset.Inc();
                if (!retryNow && error != ForwarderError.None && retry is not null && !info.ResponseStarted && !context.Response.HasStarted
                    && !context.RequestAborted.IsCancellationRequested && timeoutCts is not { IsCancellationRequested: true }
                    && (body is null || body.CanReplay) && ClassifyReset(context, error, perTryFired) is { } kind && retry.WouldRetry(kind))
                {
                    if (retry.TryTakeRetry(resources, out var exceeded)) retryNow = true;
                    else if (exceeded) info.Flags |= ResponseFlags.UpstreamRetryLimitExceeded;
                }
                if (retryNow && body is { CanReplay: false })
                {
                    // The body outgrew the buffer while streaming: a retry cannot replay it.
                    resources.Retries.Release();
                    retryNow = false;
                }
                if (retryNow)
                {
                    context.Features.Set<IForwarderErrorFeature>(null);
                    context.Response.StatusCode = StatusCodes.Status200OK;
                    try
                    {
                        await Task.Delay(retry!.NextBackoff(), timeoutCts?.Token ?? context.RequestAborted).ConfigureAwait(false);
                    }
                    catch (OperationCanceledException)
                    {
                        resources.Retries.Release();
                        await OnForwardErrorAsync(context, info, cluster, ForwarderError.RequestTimedOut, timeoutCts, serverName, perTryFired: false).ConfigureAwait(false);
                        return;
                    }
                    var next = retry.ChooseHost(cluster);
                    if (next is null)
                    {
                        resources.Retries.Release();
                        await NoHealthyUpstreamAsync(context, info, cluster, serverName).ConfigureAwait(false);
                        return;
                    }
                    host = next;
                    info.UpstreamHost = host;
                    if (body is not null) context.Request.Body = body.NewReader();
                    // The retry resource taken by TryTakeRetry is released when this retry's attempt ends.
                    continue;
                }
                if (info.RetryLimitExceeded) info.Flags |= ResponseFlags.UpstreamRetryLimitExceeded;
                if (error == ForwarderError.None)
                {
                    if (attempt > 1) resources.UpstreamRqRetrySuccess.Inc();
                    return;
                }
                await OnForwardErrorAsync(context, info, cluster, error, timeoutCts, serverName, perTryFired).ConfigureAwait(false);
                return;
            }
        }
        finally
        {
            info.RouteTimeout = null;
            routeTimeout?.Release();
            if (shadows is not null)
            {
                // The main request read the whole body (or gave up): mirror it when it was buffered completely.
                if (body is { Complete: true, Overflowed: false }) RequestMirror.Send(shadows, body.Recorded, context.Request.ContentType, timeout);
                else RequestMirror.Discard(shadows);
            }
        }
    }

    /// <summary>The last x-envoy-expected-rq-timeout-ms value with its text: most requests carry the same timeout (15 s
    /// by default), so its text is made when the value changes, not for every request.</summary>
    private static volatile MillisecondsText? s_expectedTimeout;

    private sealed record MillisecondsText(long Milliseconds, string Text);

    private static string ExpectedTimeoutText(long ms)
    {
        var last = s_expectedTimeout;
        if (last is not null && last.Milliseconds == ms) return last.Text;
        last = new MillisecondsText(ms, ms.ToString(System.Globalization.CultureInfo.InvariantCulture));
        s_expectedTimeout = last;
        return last.Text;
    }

    /// <summary>Circuit breakers for one attempt: max_requests, and max_pending_requests for HTTP/1.1 requests that find
    /// every allowed connection busy (SocketsHttpHandler then queues them: Envoy's pending state).</summary>
    private static bool TryAdmit(Cluster cluster, UpstreamRequest info)
    {
        var resources = info.Resources!;
        if (!resources.Requests.TryAcquire()) return false;
        if (cluster.Model.Protocol != UpstreamProtocol.Http2 && resources.Requests.Current > resources.Connections.Max)
        {
            resources.UpstreamCxOverflow.Inc();
            if (!resources.PendingRequests.TryAcquire())
            {
                resources.Requests.Release();
                return false;
            }
            info.HoldsPending = true;
        }
        return true;
    }

    /// <summary>The load balancer found no host: 503 "no healthy upstream", UH.</summary>
    private static Task NoHealthyUpstreamAsync(HttpContext context, UpstreamRequest info, Cluster cluster, string? serverName)
    {
        cluster.Stats.UpstreamCxNoneHealthy.Inc();
        info.Flags |= ResponseFlags.NoHealthyUpstream;
        return LocalReply.SendAsync(context, 503, "no healthy upstream", serverName, info, "no_healthy_upstream");
    }

    /// <summary>Envoy's circuit breaker overflow reply: 503, x-envoy-overloaded, UO.</summary>
    private static Task OverflowAsync(HttpContext context, UpstreamRequest info, Cluster cluster, HttpConnectionManager hcm, string? serverName)
    {
        info.Resources!.UpstreamRqPendingOverflow.Inc();
        info.Flags |= ResponseFlags.UpstreamOverflow;
        cluster.Stats.ResponseCode(503);
        if (!hcm.Model.SuppressEnvoyHeaders) context.Response.Headers["x-envoy-overloaded"] = "true";
        return LocalReply.SendAsync(context, 503, "upstream connect error or disconnect/reset before headers. reset reason: overflow",
            serverName, info, "upstream_reset_before_response_started{overflow}");
    }

    private static ResetKind? ClassifyReset(HttpContext context, ForwarderError error, bool perTryFired)
    {
        if (perTryFired) return ResetKind.PerTryTimeout;
        switch (error)
        {
            case ForwarderError.RequestBodyClient:
            case ForwarderError.RequestBodyCanceled:
            case ForwarderError.RequestCanceled:
            case ForwarderError.UpgradeRequestClient:
            case ForwarderError.ResponseBodyClient:
                return null;
        }
        var exception = context.Features.Get<IForwarderErrorFeature>()?.Exception;
        if (IsConnectFailure(exception)) return ResetKind.ConnectFailure;
        for (var e = exception; e is not null; e = e.InnerException)
            if (e is HttpProtocolException { ErrorCode: 0x7 }) return ResetKind.RefusedStream;
        return ResetKind.Reset;
    }

    // YARP's activity timeout is exactly Envoy's idle timeout (no bytes either way); one config per distinct value.
    private static readonly System.Collections.Concurrent.ConcurrentDictionary<(TimeSpan, bool), ForwarderRequestConfig> s_idleConfigs = new();

    private static ForwarderRequestConfig WithIdleTimeout(ForwarderRequestConfig config, TimeSpan idle)
    {
        // Zero disables the idle timeout; a day stands in for "never" within the timer's range.
        var activity = idle > TimeSpan.Zero ? idle : TimeSpan.FromDays(1);
        return s_idleConfigs.GetOrAdd((activity, ReferenceEquals(config, s_http2)), static (key, c) => c with { ActivityTimeout = key.Item1 }, config);
    }

    private static Task OnForwardErrorAsync(HttpContext context, UpstreamRequest info, Cluster cluster, ForwarderError error, CancellationTokenSource? timeoutCts, string? serverName, bool perTryFired)
    {
        if (context.RequestAborted.IsCancellationRequested)
        {
            info.Flags |= ResponseFlags.DownstreamConnectionTermination;
            info.ResponseCodeDetails = "downstream_remote_disconnect";
            return Task.CompletedTask;
        }
        if (info.StreamTimeouts is { Fired: not StreamTimeoutReason.None } streamTimeouts)
        {
            if (info.ResponseStarted) // past the response headers Envoy resets the stream
            {
                context.Abort();
                return Task.CompletedTask;
            }
            return info.Hcm!.OnStreamTimeoutAsync(context, info, streamTimeouts);
        }
        var stats = cluster.Stats;
        if (timeoutCts is { IsCancellationRequested: true } || perTryFired)
        {
            if (!perTryFired) stats.UpstreamRqTimeout.Inc();
            info.Flags |= ResponseFlags.UpstreamRequestTimeout;
            if (info.ResponseStarted)
            {
                context.Abort();
                return Task.CompletedTask;
            }
            stats.ResponseCode(504);
            return LocalReply.SendAsync(context, 504, "upstream request timeout", serverName, info, perTryFired ? "upstream_per_try_timeout" : "upstream_response_timeout");
        }
        if (error == ForwarderError.RequestTimedOut)
        {
            // The idle (activity) timeout fired: Envoy answers 408 "stream timeout" before response headers, and
            // resets the stream after them.
            info.Flags |= ResponseFlags.StreamIdleTimeout;
            if (info.ResponseStarted || context.Response.HasStarted)
            {
                context.Abort();
                return Task.CompletedTask;
            }
            return LocalReply.SendAsync(context, 408, "stream timeout", serverName, info, "stream_idle_timeout");
        }
        if (info.ResponseStarted || context.Response.HasStarted)
        {
            // The upstream reset mid-response: nothing to do but reset downstream too.
            stats.UpstreamRqRxReset.Inc();
            info.Flags |= ResponseFlags.UpstreamRemoteReset;
            context.Abort();
            return Task.CompletedTask;
        }
        if (error == ForwarderError.RequestBodyClient && !context.Response.HasStarted && FindBadBody(context.Features.Get<IForwarderErrorFeature>()?.Exception) is { } bad)
            return LocalReply.SendAsync(context, bad.Status, bad.Message, serverName, info, bad.Details);
        switch (error)
        {
            case ForwarderError.RequestBodyClient:
            case ForwarderError.RequestBodyCanceled:
            case ForwarderError.RequestCanceled:
                info.Flags |= ResponseFlags.DownstreamConnectionTermination;
                info.ResponseCodeDetails = "downstream_remote_disconnect";
                context.Abort();
                return Task.CompletedTask;
        }
        var exception = context.Features.Get<IForwarderErrorFeature>()?.Exception;
        if (IsProtocolError(exception))
        {
            // Envoy answers a codec protocol error from the upstream with 502 and UPE.
            info.Flags |= ResponseFlags.UpstreamProtocolError;
            stats.ResponseCode(502);
            return LocalReply.SendAsync(context, 502, "upstream connect error or disconnect/reset before headers. reset reason: protocol error",
                serverName, info, "upstream_reset_before_response_started{protocol_error}");
        }
        string reason;
        if (IsConnectFailure(exception))
        {
            info.Flags |= ResponseFlags.UpstreamConnectionFailure;
            reason = "connection failure";
        }
        else
        {
            info.Flags |= ResponseFlags.UpstreamConnectionTermination;
            reason = "connection termination";
        }
        stats.ResponseCode(503);
        return LocalReply.SendAsync(context, 503, "upstream connect error or disconnect/reset before headers. reset reason: " + reason,
            serverName, info, "upstream_reset_before_response_started{" + reason.Replace(' ', '_') + "}");
    }

    /// <summary>A filter's refusal of the request body, however the forwarder wrapped it.</summary>
    private static BadRequestBodyException? FindBadBody(Exception? e)
    {
        for (; e is not null; e = e.InnerException)
            if (e is BadRequestBodyException bad) return bad;
        return null;
    }

    /// <summary>A malformed upstream response, from either codec (ours or SocketsHttpHandler's).</summary>
    private static bool IsProtocolError(Exception? e)
    {
        for (; e is not null; e = e.InnerException)
            if (e is HttpRequestException { HttpRequestError: HttpRequestError.InvalidResponse }) return true;
        return false;
    }

    private static bool IsConnectFailure(Exception? e)
    {
        for (; e is not null; e = e.InnerException)
        {
            if (e is SocketException) return true;
            // A failed TLS handshake is a connection failure too (Envoy: UF, "transport failure reason").
            if (e is HttpRequestException { HttpRequestError: HttpRequestError.ConnectionError or HttpRequestError.NameResolutionError or HttpRequestError.SecureConnectionError }) return true;
            if (e is System.Security.Authentication.AuthenticationException) return true;
            if (e is TimeoutException) return true;
        }
        return false;
    }

    internal static WeightedClusterEntry PickWeighted(IReadOnlyList<WeightedClusterEntry> entries, ulong total)
    {
        var r = (ulong)Random.Shared.NextInt64((long)total);
        for (var i = 0; i < entries.Count; i++)
            if (r < entries[i].CumulativeWeight) return entries[i];
        return entries[^1];
    }

    private static void ApplyRequestHeaderMutations(HttpContext context, UpstreamRequest info, RouteConfigurationModel routes, VirtualHostModel vhost, RouteModel route)
    {
        var headers = context.Request.Headers;
        // Envoy's WeightedClusterEntry::finalizeRequestHeaders applies its own headers, then the route's levels in
        // the order most_specific_header_mutations_wins picks: the weighted cluster is first either way.
        if (info.WeightedCluster is { } wc) HeaderMutator.Apply(headers, wc.RequestHeaders, context);
        if (routes.MostSpecificHeaderMutationsWins)
        {
            HeaderMutator.Apply(headers, routes.RequestHeaders, context);
            HeaderMutator.Apply(headers, vhost.RequestHeaders, context);
            HeaderMutator.Apply(headers, route.RequestHeaders, context);
        }
        else
        {
            HeaderMutator.Apply(headers, route.RequestHeaders, context);
            HeaderMutator.Apply(headers, vhost.RequestHeaders, context);
            HeaderMutator.Apply(headers, routes.RequestHeaders, context);
        }
    }

    private static void RewritePathAndHost(HttpContext context, UpstreamRequest info, RouteActionModel action, RouteModel route, RequestView request, Host host, bool suppressEnvoyHeaders)
    {
        var path = request.Path;
        var rewritten = false;
        if (action.PrefixRewrite is not null && route.MatchPrefix is { } prefix)
        {
            path = action.PrefixRewrite + path[Math.Min(prefix.Length, path.Length)..];
            rewritten = true;
        }
        else if (action.RegexRewritePattern is not null)
        {
            path = action.RegexRewritePattern.Replace(path, action.RegexRewriteSubstitution!);
            rewritten = true;
        }
        if (rewritten && !suppressEnvoyHeaders) context.Request.Headers["x-envoy-original-path"] = request.PathAndQuery;
        info.UpstreamPathAndQuery = request.Query.Length == 0 ? path : path + "?" + request.Query;

        var authority = context.Request.Host.Value ?? "";
        switch (action.HostRewrite)
        {
            case HostRewriteKind.Literal:
                authority = action.HostRewriteValue!;
                break;
            case HostRewriteKind.Auto:
                // Envoy sets :authority to the host's hostname() alone, no port: the DNS name of a STRICT/LOGICAL_DNS
                // host or an endpoint's hostname. Without one "setting this to true has no effect".
                if (host.Hostname is { Length: > 0 } hn) authority = hn;
                break;
            case HostRewriteKind.Header:
                var v = context.Request.Headers[action.HostRewriteValue!];
                if (v.Count > 0 && !string.IsNullOrEmpty(v[0])) authority = v[0]!;
                break;
        }
        info.UpstreamAuthority = authority;
    }
}
