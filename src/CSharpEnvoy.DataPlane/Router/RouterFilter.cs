using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using CSharpEnvoy.Config.Model.Cluster;
using CSharpEnvoy.Config.Model.RouteConfiguration;
using CSharpEnvoy.DataPlane.Http;
using CSharpEnvoy.DataPlane.Upstream;
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
    public string UpstreamPathAndQuery { get; set; } = "/";
    public string UpstreamAuthority { get; set; } = "";
    public long UpstreamStartTimestamp { get; set; }
    public bool ResponseStarted { get; private set; }
    /// <summary>The upstream accepted an upgrade (101): the request is now a tunnel.</summary>
    public bool Upgraded { get; private set; }
    public HttpConnectionManager? Hcm { get; set; }
    public RouteConfigurationModel? Routes { get; set; }
    /// <summary>The route timeout's source, disarmed when an upgrade is accepted.</summary>
    public CancellationTokenSource? RouteTimeout { get; set; }
    /// <summary>A Set-Cookie a cookie hash policy generated; added to the upstream response, as Envoy does.</summary>
    public string? HashPolicySetCookie { get; set; }

    public override async ValueTask TransformRequestAsync(HttpContext httpContext, HttpRequestMessage proxyRequest, string destinationPrefix, CancellationToken cancellationToken)
    {
        await base.TransformRequestAsync(httpContext, proxyRequest, destinationPrefix, cancellationToken).ConfigureAwait(false);
        proxyRequest.RequestUri = new Uri(destinationPrefix + UpstreamPathAndQuery, in s_rawUri);
        proxyRequest.Headers.Host = UpstreamAuthority;
        UpstreamStartTimestamp = Stopwatch.GetTimestamp();
        AttemptCount = 1;
    }

    public override async ValueTask<bool> TransformResponseAsync(HttpContext httpContext, HttpResponseMessage? proxyResponse, CancellationToken cancellationToken)
    {
        var copy = await base.TransformResponseAsync(httpContext, proxyResponse, cancellationToken).ConfigureAwait(false);
        if (proxyResponse is null) return copy;
        UpstreamFirstByteTimestamp = Stopwatch.GetTimestamp();
        ResponseStarted = true;
        ResponseCodeDetails = "via_upstream";
        // Envoy arms the route timeout when the downstream request ends, which an upgraded (WebSocket) stream does not
        // do: once the upstream accepts the upgrade only the idle timeout bounds the tunnel.
        var hcm = Hcm!;
        if (proxyResponse.StatusCode == HttpStatusCode.SwitchingProtocols)
        {
            RouteTimeout?.CancelAfter(Timeout.InfiniteTimeSpan);
            Upgraded = true;
            hcm.Stats.DownstreamCxUpgradesTotal.Inc();
            hcm.Stats.DownstreamCxUpgradesActive.Inc();
        }
        Cluster?.Stats.ResponseCode((int)proxyResponse.StatusCode);
        if (!hcm.Model.SuppressEnvoyHeaders)
        {
            var ms = (long)Stopwatch.GetElapsedTime(UpstreamStartTimestamp).TotalMilliseconds;
            httpContext.Response.Headers["x-envoy-upstream-service-time"] = ms.ToString(System.Globalization.CultureInfo.InvariantCulture);
        }
        if (HashPolicySetCookie is { } setCookie) httpContext.Response.Headers.Append("set-cookie", setCookie);
        hcm.MutateResponseHeaders(httpContext, this, Routes!, VirtualHost!, Route!);
        return copy;
    }
}

/// <summary>
/// Envoy's router filter: picks the cluster (single, weighted, or from a header), asks the cluster's load balancer
/// for a host, applies request rewrites and header mutations, and forwards with YARP's <see cref="IHttpForwarder"/>
/// over the cluster's own <see cref="HttpMessageInvoker"/>. Failures become Envoy's local replies and response flags.
/// </summary>
internal sealed class RouterFilter
{
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

    public async Task ForwardAsync(HttpContext context, UpstreamRequest info, HttpConnectionManager hcm, RouteConfigurationModel routes, VirtualHostModel vhost, RouteModel route, RequestView request)
    {
        var action = route.Route!;
        info.Hcm = hcm;
        info.Routes = routes;
        var serverName = hcm.LocalReplyServerName;

        string? clusterName;
        if (action.Cluster is not null) clusterName = action.Cluster;
        else if (action.WeightedClusters is { } weighted)
        {
            var entry = PickWeighted(weighted, action.TotalWeight);
            info.WeightedCluster = entry;
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
            cluster.Stats.UpstreamCxNoneHealthy.Inc();
            info.Flags |= ResponseFlags.NoHealthyUpstream;
            await LocalReply.SendAsync(context, 503, "no healthy upstream", serverName, info, "no_healthy_upstream").ConfigureAwait(false);
            return;
        }
        info.UpstreamHost = host;

        ApplyRequestHeaderMutations(context, info, routes, vhost, route);
        RewritePathAndHost(context, info, action, route, request, host, hcm.Model.SuppressEnvoyHeaders);

        var timeout = action.Timeout;
        if (timeout > TimeSpan.Zero && !hcm.Model.SuppressEnvoyHeaders)
            context.Request.Headers["x-envoy-expected-rq-timeout-ms"] = ((long)timeout.TotalMilliseconds).ToString(System.Globalization.CultureInfo.InvariantCulture);

        var config = cluster.Model.Protocol switch
        {
            UpstreamProtocol.Http2 => s_http2,
            UpstreamProtocol.UseDownstream => HttpProtocol.IsHttp2(context.Request.Protocol) ? s_http2 : s_http1,
            _ => s_http1,
        };

        var stats = cluster.Stats;
        stats.UpstreamRqTotal.Inc();
        stats.UpstreamRqActive.Inc();
        host.RequestStarted();
        using var timeoutCts = timeout > TimeSpan.Zero ? new CancellationTokenSource(timeout) : null;
        info.RouteTimeout = timeoutCts;
        ForwarderError error;
        try
        {
            error = await _forwarder.SendAsync(context, host.DestinationPrefix, cluster.Invoker, config, info, timeoutCts?.Token ?? CancellationToken.None).ConfigureAwait(false);
        }
        finally
        {
            host.RequestFinished();
            stats.UpstreamRqActive.Dec();
            if (info.Upgraded) hcm.Stats.DownstreamCxUpgradesActive.Dec();
            else if (info.ResponseStarted) stats.UpstreamRqTime.Record(Stopwatch.GetElapsedTime(info.UpstreamStartTimestamp).TotalMilliseconds);
        }
        if (error == ForwarderError.None) return;
        await OnForwardErrorAsync(context, info, cluster, error, timeoutCts, serverName).ConfigureAwait(false);
    }

    private static Task OnForwardErrorAsync(HttpContext context, UpstreamRequest info, Cluster cluster, ForwarderError error, CancellationTokenSource? timeoutCts, string? serverName)
    {
        if (context.RequestAborted.IsCancellationRequested)
        {
            info.Flags |= ResponseFlags.DownstreamConnectionTermination;
            info.ResponseCodeDetails = "downstream_remote_disconnect";
            return Task.CompletedTask;
        }
        var stats = cluster.Stats;
        if (timeoutCts is { IsCancellationRequested: true })
        {
            stats.UpstreamRqTimeout.Inc();
            info.Flags |= ResponseFlags.UpstreamRequestTimeout;
            if (info.ResponseStarted)
            {
                context.Abort();
                return Task.CompletedTask;
            }
            stats.ResponseCode(504);
            return LocalReply.SendAsync(context, 504, "upstream request timeout", serverName, info, "upstream_response_timeout");
        }
        if (info.ResponseStarted || context.Response.HasStarted)
        {
            // The upstream reset mid-response: nothing to do but reset downstream too.
            stats.UpstreamRqRxReset.Inc();
            info.Flags |= ResponseFlags.UpstreamRemoteReset;
            context.Abort();
            return Task.CompletedTask;
        }
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

    private static WeightedClusterEntry PickWeighted(IReadOnlyList<WeightedClusterEntry> entries, ulong total)
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
