using System.Net;
using System.Net.Sockets;
using CSharpEnvoy.Config.Model.Listener;
using CSharpEnvoy.Config.Model.RouteConfiguration;
using CSharpEnvoy.DataPlane.Router;
using CSharpEnvoy.DataPlane.Stats;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.Features;

namespace CSharpEnvoy.DataPlane.Http;

/// <summary>Envoy's <c>http.&lt;stat_prefix&gt;.*</c> connection manager stats.</summary>
internal sealed class HttpConnectionManagerStats
{
    private readonly Counter[] _byClass = new Counter[6];

    public HttpConnectionManagerStats(StatsStore store, string statPrefix)
    {
        var p = "http." + statPrefix + ".";
        DownstreamRqTotal = store.Counter(p, "downstream_rq_total");
        DownstreamRqHttp1Total = store.Counter(p, "downstream_rq_http1_total");
        DownstreamRqHttp2Total = store.Counter(p, "downstream_rq_http2_total");
        DownstreamRqActive = store.Gauge(p, "downstream_rq_active");
        DownstreamRqCompleted = store.Counter(p, "downstream_rq_completed");
        DownstreamCxTotal = store.Counter(p, "downstream_cx_total");
        DownstreamCxActive = store.Gauge(p, "downstream_cx_active");
        DownstreamCxHttp1Total = store.Counter(p, "downstream_cx_http1_total");
        DownstreamCxHttp2Total = store.Counter(p, "downstream_cx_http2_total");
        DownstreamCxUpgradesTotal = store.Counter(p, "downstream_cx_upgrades_total");
        DownstreamCxUpgradesActive = store.Gauge(p, "downstream_cx_upgrades_active");
        NoRoute = store.Counter(p, "no_route");
        NoCluster = store.Counter(p, "no_cluster");
        RqRedirect = store.Counter(p, "rq_redirect");
        RqDirectResponse = store.Counter(p, "rq_direct_response");
        RqTotal = store.Counter(p, "rq_total");
        RqTimeout = store.Counter(p, "downstream_rq_timeout");
        RqMaxDurationReached = store.Counter(p, "downstream_rq_max_duration_reached");
        DownstreamRqTime = store.Histogram(p, "downstream_rq_time");
        DownstreamRqFailedPathNormalization = store.Counter(p, "downstream_rq_failed_path_normalization");
        DownstreamRqRedirectedWithNormalizedPath = store.Counter(p, "downstream_rq_redirected_with_normalized_path");
        for (var c = 1; c <= 5; c++) _byClass[c] = store.Counter(p, $"downstream_rq_{c}xx");
    }

    public Counter DownstreamRqTotal { get; }
    public Counter DownstreamRqHttp1Total { get; }
    public Counter DownstreamRqHttp2Total { get; }
    public Gauge DownstreamRqActive { get; }
    public Counter DownstreamRqCompleted { get; }
    public Counter DownstreamCxTotal { get; }
    public Gauge DownstreamCxActive { get; }
    public Counter DownstreamCxHttp1Total { get; }
    public Counter DownstreamCxHttp2Total { get; }
    public Counter DownstreamCxUpgradesTotal { get; }
    public Gauge DownstreamCxUpgradesActive { get; }
    public Counter NoRoute { get; }
    public Counter NoCluster { get; }
    public Counter RqRedirect { get; }
    public Counter RqDirectResponse { get; }
    public Counter RqTotal { get; }
    public Counter RqTimeout { get; }
    public Counter RqMaxDurationReached { get; }
    public Counter DownstreamRqFailedPathNormalization { get; }
    public Counter DownstreamRqRedirectedWithNormalizedPath { get; }
    /// <summary>Milliseconds from the request's arrival to the end of its response.</summary>
    public Histogram DownstreamRqTime { get; }

    public void ResponseCode(int code)
    {
        DownstreamRqCompleted.Inc();
        var c = code / 100;
        if ((uint)c is >= 1 and <= 5) _byClass[c].Inc();
    }
}

/// <summary>
/// Envoy's HTTP connection manager for one filter chain: request header sanitising (x-forwarded-*, x-request-id),
/// virtual host and route selection, direct responses and redirects, and the router for everything else.
/// </summary>
internal sealed class HttpConnectionManager
{
    private readonly RouterFilter _router;
    /// <summary>The access logs, null when there are none (so a request without them pays nothing).</summary>
    private readonly AccessLog.AccessLogger[]? _accessLogs;
    /// <summary>The decoder filters before the router, in configured order; null when there are none.</summary>
    private readonly Filters.HttpFilterEntry[]? _filters;
    private readonly StatsStore _store;
    /// <summary>Stats of the virtual clusters seen so far (made on a virtual cluster's first request).</summary>
    private readonly System.Collections.Concurrent.ConcurrentDictionary<VirtualClusterModel, VirtualClusterStats> _vclusters = new();
    /// <summary>Tracing, null when the connection manager has none.</summary>
    private readonly Tracing.HttpTracing? _tracing;
    private readonly LocalReplyRewriter? _localReply;
    /// <summary>With add_user_agent: the node's cluster and id; null without.</summary>
    private readonly string? _userAgent, _serviceNode;
    /// <summary>With headers_with_underscores_action: Envoy's codec counters, http1 then http2 (null for ALLOW).</summary>
    private readonly (Counter Dropped, Counter Rejected)[]? _underscoreStats;

    public HttpConnectionManager(HttpConnectionManagerModel model, StatsStore stats, RouterFilter router, AccessLog.AccessLogManager? accessLogs = null,
        Tracing.TracerManager? tracers = null, Server.ServerHealth? health = null, Config.Model.Bootstrap.NodeModel? node = null)
    {
        if (model.AddUserAgent)
        {
            _userAgent = node?.Cluster ?? "";
            _serviceNode = node?.Id ?? "";
        }
        if (model.Tracing is { } tracing && tracers is not null)
            _tracing = new Tracing.HttpTracing(tracing, tracers, model.PackTraceReason, model.UseRequestIdForTraceSampling);
        Model = model;
        _routes = model.RouteConfig;
        Stats = new HttpConnectionManagerStats(stats, model.StatPrefix);
        _store = stats;
        if (model.HeadersWithUnderscoresAction != HeadersWithUnderscoresAction.Allow)
            _underscoreStats =
            [
                (stats.Counter("http1.", "dropped_headers_with_underscores"), stats.Counter("http1.", "requests_rejected_with_underscores_in_headers")),
                (stats.Counter("http2.", "dropped_headers_with_underscores"), stats.Counter("http2.", "requests_rejected_with_underscores_in_headers")),
            ];
        _router = router;
        _filters = Filters.HttpFilterChain.Build(model, stats, router.Clusters, health);
        _accessLogs = AccessLog.AccessLogger.CreateAll(model.AccessLogs, accessLogs);
        if (model.LocalReply is { } localReply) _localReply = new LocalReplyRewriter(localReply);
        LogsUpstreamLocalAddress = _accessLogs is not null && model.AccessLogs.Any(l => l.Format.Uses("UPSTREAM_LOCAL_ADDRESS"));
    }

    /// <summary>An access log prints <c>%UPSTREAM_LOCAL_ADDRESS%</c>: the router then tells the upstream connection
    /// which request it is writing (see <see cref="Upstream.UpstreamConnection"/>).</summary>
    public bool LogsUpstreamLocalAddress { get; }

    public HttpConnectionManagerModel Model { get; }

    private volatile RouteConfigurationModel? _routes;

    /// <summary>The routes in force: the inline route_config, or the latest RDS one (swapped whole by xDS; a request
    /// reads it once).</summary>
    public RouteConfigurationModel? RouteConfig
    {
        get => _routes;
        set => _routes = value;
    }
    public HttpConnectionManagerStats Stats { get; }

    /// <summary>The server header of the proxy's own replies: none with PASS_THROUGH (Envoy only sets it in the
    /// OVERWRITE and APPEND_IF_ABSENT modes, and a local reply has none to pass through).</summary>
    public string? LocalReplyServerName => Model.ServerHeaderTransformation == ServerHeaderTransformation.PassThrough ? null : Model.ServerName;

    public async Task HandleAsync(HttpContext context, bool isTls)
    {
        var stats = Stats;
        stats.DownstreamRqTotal.Inc();
        if (HttpProtocol.IsHttp2(context.Request.Protocol)) stats.DownstreamRqHttp2Total.Inc();
        else stats.DownstreamRqHttp1Total.Inc();
        stats.DownstreamRqActive.Inc();
        var info = new UpstreamRequest();
        if (_localReply is { } localReply) info.LocalReplyConfig = localReply;
        var logs = _accessLogs;
        var tracing = _tracing;
        // Spans carry request_size/response_size, so tracing counts body bytes as access logs do.
        if (logs is not null || tracing is not null) AccessLog.AccessLogger.OnRequestStart(context, info);
        try
        {
            await ProcessAsync(context, info, isTls).ConfigureAwait(false);
        }
        finally
        {
            stats.DownstreamRqActive.Dec();
            stats.ResponseCode(context.Response.StatusCode);
            var elapsed = System.Diagnostics.Stopwatch.GetElapsedTime(info.StartTimestamp).TotalMilliseconds;
            stats.DownstreamRqTime.Record(elapsed);
            // Envoy charges virtual cluster stats for requests that went upstream.
            if (info.VirtualCluster is { } vc && info.UpstreamHost is not null)
            {
                vc.UpstreamRqTotal.Inc();
                vc.Charge(context.Response.StatusCode, elapsed);
            }
            if (logs is not null) AccessLog.AccessLogger.OnRequestEnd(logs, context, info);
            if (info.Span is { } span) tracing!.Finish(span, context, info, isTls ? "https" : "http");
        }
    }

    private ValueTask ProcessAsync(HttpContext context, UpstreamRequest info, bool isTls)
    {
        var model = Model;
        // Envoy's HTTP/1 codec refuses HTTP/1.0 unless accept_http_10; Kestrel parses it, so it is decided here.
        if (HttpProtocol.IsHttp10(context.Request.Protocol) && !AcceptHttp10(context, model))
            return new ValueTask(LocalReply.SendAsync(context, StatusCodes.Status426UpgradeRequired, "Upgrade Required", LocalReplyServerName, info, "http1.codec_error"));
        if (model.HeadersWithUnderscoresAction != HeadersWithUnderscoresAction.Allow && CheckUnderscores(context, info, model.HeadersWithUnderscoresAction) is { } rejected)
            return new ValueTask(rejected);
        var scheme = model.SchemeToOverwrite ?? (isTls ? "https" : "http");
        MutateRequestHeaders(context, info, scheme);
        // Envoy's scheme_to_overwrite wins over any x-forwarded-proto, trusted or not.
        if (model.SchemeToOverwrite is { } overwrite) context.Request.Headers["x-forwarded-proto"] = overwrite;
        if (_tracing is { } tracing) info.Span = tracing.Start(context, info, scheme);

        var routes = _routes;
        var request = new RequestView(context, scheme);
        if (model.TransformsPath && TransformPath(context, info, request) is { } refused) return new ValueTask(refused);
        var host = context.Request.Host.Value ?? "";
        var vhost = routes?.VirtualHosts.Find(host);
        info.Routes = routes;
        info.Request = request;
        RouteModel? route = null;
        var tlsRedirect = false;
        if (vhost is not null)
        {
            info.VirtualHost = vhost;
            if (vhost.VirtualClusters.Count > 0) info.VirtualCluster = VirtualClusterStats.Find(_vclusters, _store, vhost, request);
            // Envoy's virtual host answers with an SSL redirect "route" the router acts on, after the other filters.
            tlsRedirect = RequiresTlsRedirect(vhost.RequireTls, context.Request.Headers);
            if (!tlsRedirect) route = vhost.Routes.Find(request);
        }
        info.Route = route;
        if (route is not null && info.Span is { } span) _tracing!.OnRoute(span, route, context, info);
        ArmStreamTimeouts(context, info, route);

        // Envoy decides on upgrades when it creates the filter chain, before any filter runs.
        if (!tlsRedirect && !UpgradeAllowed(context, route))
            return new ValueTask(LocalReply.SendAsync(context, 403, "", LocalReplyServerName, info, "upgrade_failed"));

        // As in Envoy, the route is resolved up front (filters read it) but acted on by the router, the last filter:
        // a request without a route still passes through the filters before its 404.
        var filters = _filters;
        if (filters is not null) return RunFiltersAsync(filters, context, info, request, scheme, host, tlsRedirect);
        return RunAction(context, info, request, scheme, host, tlsRedirect);
    }

    /// <summary>Whether an HTTP/1.0 request is served (<c>accept_http_10</c>); one without a host then takes
    /// <c>default_host_for_http_10</c>.</summary>
    private static bool AcceptHttp10(HttpContext context, HttpConnectionManagerModel model)
    {
        if (!model.AcceptHttp10) return false;
        if (model.DefaultHostForHttp10 is { } host && !context.Request.Host.HasValue) context.Request.Host = new HostString(host);
        return true;
    }

    /// <summary><c>normalize_path</c>, <c>merge_slashes</c> and <c>path_with_escaped_slashes_action</c>, before routing
    /// (<see cref="PathNormalizer"/>): the reply when the request is refused (400) or redirected to its unescaped path
    /// (307; a gRPC request, which cannot follow it, gets INTERNAL), null when it goes on with the normalized path.</summary>
    private Task? TransformPath(HttpContext context, UpstreamRequest info, RequestView request)
    {
        var action = PathNormalizer.Normalize(request.Path, Model, out var normalized);
        request.Path = normalized;
        if (action == PathNormalizeAction.Continue) return null;
        info.Request = request;
        if (action == PathNormalizeAction.Reject)
        {
            Stats.DownstreamRqFailedPathNormalization.Inc();
            return LocalReply.SendAsync(context, 400, "", LocalReplyServerName, info, "path_normalization_failed");
        }
        Stats.DownstreamRqRedirectedWithNormalizedPath.Inc();
        if (LocalReply.IsGrpc(context.Request))
            return LocalReply.SendAsync(context, 400, "", LocalReplyServerName, info, "path_normalization_failed", grpcStatus: 13);
        context.Response.Headers.Location = request.PathAndQuery;
        return LocalReply.SendAsync(context, 307, "", LocalReplyServerName, info, "path_normalization_failed");
    }

    /// <summary>Envoy's codecs' <c>headers_with_underscores_action</c>, before any filter: the reply when the request is
    /// rejected (HTTP/1.1: 400 and the connection closes; HTTP/2: the stream is reset), null when it goes on (with the
    /// headers dropped for DROP_HEADER). Counted in Envoy's codec stats, <c>http1.</c>/<c>http2.</c> at the root.</summary>
    private Task? CheckUnderscores(HttpContext context, UpstreamRequest info, HeadersWithUnderscoresAction action)
    {
        var headers = context.Request.Headers;
        List<string>? underscored = null;
        foreach (var (name, _) in headers)
            if (name.Contains('_')) (underscored ??= []).Add(name);
        if (underscored is null) return null;
        var http2 = HttpProtocol.IsHttp2(context.Request.Protocol);
        var (dropped, rejected) = _underscoreStats![http2 ? 1 : 0];
        if (action == HeadersWithUnderscoresAction.DropHeader)
        {
            foreach (var name in underscored) headers.Remove(name);
            dropped.Add(underscored.Count);
            return null;
        }
        rejected.Inc();
        info.Flags |= ResponseFlags.DownstreamProtocolError;
        info.ResponseCodeDetails = http2 ? "http2.unexpected_underscore" : "http1.unexpected_underscore";
        if (http2)
        {
            context.Abort();
            return Task.CompletedTask;
        }
        context.Response.Headers.Connection = "close";
        return LocalReply.SendAsync(context, 400, "Bad Request", LocalReplyServerName, info, "http1.unexpected_underscore");
    }

    /// <summary>Envoy's request timer (until the request's last byte) and stream duration timer (from the route's
    /// max_stream_duration or grpc-timeout); nothing is allocated when neither applies.</summary>
    private void ArmStreamTimeouts(HttpContext context, UpstreamRequest info, RouteModel? route)
    {
        var requestTimeout = Model.RequestTimeout;
        var msd = route?.Route?.MaxStreamDuration;
        if (msd is null && requestTimeout <= TimeSpan.Zero) return; // the common case: nothing to arm
        TimeSpan? duration = msd is null ? null : StreamTimeouts.DurationFor(msd, context.Request);
        var hasBody = context.Features.Get<IHttpRequestBodyDetectionFeature>()?.CanHaveBody ?? false;
        if (duration is null && !(hasBody && requestTimeout > TimeSpan.Zero)) return;
        var timeouts = new StreamTimeouts();
        context.Response.RegisterForDispose(timeouts);
        info.StreamTimeouts = timeouts;
        if (duration is { } d) timeouts.ArmMaxStreamDuration(d);
        if (!hasBody)
        {
            timeouts.OnRequestComplete();
            return;
        }
        if (requestTimeout > TimeSpan.Zero) timeouts.ArmRequestTimeout(requestTimeout);
        context.Request.Body = new EndOfRequestWatcher(context.Request.Body, timeouts);
    }

    /// <summary>The local reply when a connection manager timer ended the stream, as Envoy's <c>onRequestTimeout</c> and
    /// <c>onStreamMaxDurationReached</c>: 504 once the request was complete, else 408 (Envoy's
    /// <c>maybeRequestTimeoutCode</c>); a reset once the response has started.</summary>
    public Task OnStreamTimeoutAsync(HttpContext context, UpstreamRequest info, StreamTimeouts timeouts)
    {
        var status = timeouts.RequestComplete ? 504 : 408;
        if (timeouts.Fired == StreamTimeoutReason.RequestTimeout)
        {
            Stats.RqTimeout.Inc();
            return LocalReply.SendAsync(context, status, "request timeout", LocalReplyServerName, info, "request_overall_timeout");
        }
        Stats.RqMaxDurationReached.Inc();
        info.Flags |= ResponseFlags.DurationTimeout;
        return LocalReply.SendAsync(context, status, "downstream duration timeout", LocalReplyServerName, info, "max_duration_timeout", grpcStatus: 4);
    }

    /// <summary>The decoder filters in order; the route's action when all of them continue.</summary>
    [System.Runtime.CompilerServices.AsyncMethodBuilder(typeof(System.Runtime.CompilerServices.PoolingAsyncValueTaskMethodBuilder))]
    private async ValueTask RunFiltersAsync(Filters.HttpFilterEntry[] filters, HttpContext context, UpstreamRequest info, RequestView request,
        string scheme, string host, bool tlsRedirect)
    {
        var encoders = false;
        for (var i = 0; i < filters.Length; i++)
        {
            var entry = filters[i];
            if (!entry.IsEnabled(info)) continue;
            encoders |= entry.Encodes;
            var step = entry.Filter.DecodeHeadersAsync(context, info, this);
            var proceed = step.IsCompletedSuccessfully ? step.Result : await step.ConfigureAwait(false);
            if (!proceed)
            {
                // A filter's local reply passes through the encoder filters before it, as in Envoy.
                if (encoders) await Filters.ResponseBodyFilter.FinishAllAsync(context).ConfigureAwait(false);
                return;
            }
        }
        if (!encoders)
        {
            await RunAction(context, info, request, scheme, host, tlsRedirect).ConfigureAwait(false);
            return;
        }
        try
        {
            await RunAction(context, info, request, scheme, host, tlsRedirect).ConfigureAwait(false);
        }
        catch
        {
            await Filters.ResponseBodyFilter.AbandonAllAsync(context).ConfigureAwait(false);
            throw;
        }
        await Filters.ResponseBodyFilter.FinishAllAsync(context).ConfigureAwait(false);
    }

    /// <summary>The router's part: a TLS redirect, no route (404), a direct response, a redirect, or forwarding.</summary>
    private ValueTask RunAction(HttpContext context, UpstreamRequest info, RequestView request, string scheme, string host, bool tlsRedirect)
    {
        if (tlsRedirect) return new ValueTask(RedirectToHttps(context, host, request));
        var route = info.Route;
        if (route is null)
        {
            Stats.NoRoute.Inc();
            info.Flags |= ResponseFlags.NoRouteFound;
            return new ValueTask(LocalReply.SendAsync(context, 404, "", LocalReplyServerName, info, "route_not_found"));
        }
        var routes = info.Routes!;
        var vhost = info.VirtualHost!;
        if (route.DirectResponse is { } direct)
        {
            Stats.RqDirectResponse.Inc();
            return new ValueTask(SendDirectResponseAsync(context, info, direct, routes, vhost, route));
        }
        if (route.Redirect is { } redirect)
        {
            Stats.RqRedirect.Inc();
            return new ValueTask(SendRedirect(context, info, redirect, request, scheme, host, routes, vhost, route));
        }
        return _router.ForwardAsync(context, info, this, routes, vhost, route, request);
    }

    /// <summary>Envoy's <c>FilterManager::createUpgradeFilterChain</c> decision: a route-level entry decides (it may
    /// enable what the connection manager does not list); otherwise, and for redirects and direct responses, which
    /// have no upgrade config, the connection manager's entry does. A refused upgrade is a 403.</summary>
    private bool UpgradeAllowed(HttpContext context, RouteModel? route)
    {
        string? type = null;
        if (context.Features.Get<IHttpUpgradeFeature>() is { IsUpgradableRequest: true }) type = context.Request.Headers.Upgrade.ToString();
        else if (context.Features.Get<IHttpExtendedConnectFeature>() is { IsExtendedConnect: true } ec) type = ec.Protocol;
        if (type is null) return true;
        type = type.ToLowerInvariant();
        if (route?.Route is { } action && action.UpgradeTypes.TryGetValue(type, out var routeEnabled)) return routeEnabled;
        return Model.UpgradeTypes.TryGetValue(type, out var enabled) && enabled;
    }

    /// <summary>Envoy's <c>ConnectionManagerUtility::mutateRequestHeaders</c>, the parts that apply so far.</summary>
    private void MutateRequestHeaders(HttpContext context, UpstreamRequest info, string scheme)
    {
        var model = Model;
        var headers = context.Request.Headers;
        var remote = context.Connection.RemoteIpAddress;
        if (remote is { IsIPv4MappedToIPv6: true }) remote = remote.MapToIPv4();
        // Only this proxy says a request is internal, whatever use_remote_address is.
        headers.Remove("x-envoy-internal");
        // The trusted client address and whether it may make the request internal: with use_remote_address the
        // peer (or, past xff_num_trusted_hops, an XFF entry) and only when the request had no XFF; otherwise the
        // XFF entry xff_num_trusted_hops from the right, and only when XFF holds that single address.
        IPAddress? finalRemote = null;
        bool trustedChecks;
        var hops = model.XffNumTrustedHops;
        if (model.UseRemoteAddress)
        {
            trustedChecks = !headers.ContainsKey("x-forwarded-for");
            if (hops > 0) finalRemote = LastXffAddress(headers, hops - 1, out _);
            finalRemote ??= remote;
            if (!model.SkipXffAppend && remote is not null)
            {
                // Envoy appends a loopback peer as the server's own local address (config.localAddress()).
                var ip = IPAddress.IsLoopback(remote) ? s_localAddress.Value : remote.ToString();
                var xff = headers["x-forwarded-for"];
                headers["x-forwarded-for"] = xff.Count == 0 ? ip : xff.ToString() + "," + ip;
            }
            // A trusted previous hop's x-forwarded-proto (and x-forwarded-port) stands.
            if (hops == 0 || !headers.ContainsKey("x-forwarded-proto")) headers["x-forwarded-proto"] = scheme;
            if (model.AppendXForwardedPort && (hops == 0 || !headers.ContainsKey("x-forwarded-port"))) SetForwardedPort(context, headers);
        }
        else
        {
            finalRemote = LastXffAddress(headers, hops, out trustedChecks);
        }
        if (!headers.ContainsKey("x-forwarded-proto")) headers["x-forwarded-proto"] = scheme;
        if (model.AppendXForwardedPort && !headers.ContainsKey("x-forwarded-port")) SetForwardedPort(context, headers);

        var internalRequest = trustedChecks && (finalRemote is not null
            ? (model.InternalAddresses is { CidrRanges.Length: > 0 } ranges ? InRanges(ranges.CidrRanges, finalRemote) : IsInternal(finalRemote))
            : model.InternalAddresses is { UnixSockets: true } && IsUnixSocket(context));
        finalRemote ??= remote;
        // Envoy's downstream remote address becomes the XFF-derived one (%DOWNSTREAM_REMOTE_ADDRESS%).
        if (!ReferenceEquals(finalRemote, remote)) info.XffRemoteAddress = finalRemote;
        var edgeRequest = !internalRequest && model.UseRemoteAddress;
        if (internalRequest) headers["x-envoy-internal"] = "true";
        else
        {
            // Envoy's cleanInternalHeaders: control headers only trusted from internal callers.
            if (edgeRequest) foreach (var h in s_edgeOnlyHeaders) headers.Remove(h);
            foreach (var h in s_internalOnlyHeaders) headers.Remove(h);
        }
        if (_userAgent is { } userAgent)
        {
            headers["x-envoy-downstream-service-cluster"] = userAgent;
            if (headers.UserAgent is not { Count: > 0 } ua || string.IsNullOrEmpty(ua[0])) headers.UserAgent = userAgent;
            if (_serviceNode!.Length > 0) headers["x-envoy-downstream-service-node"] = _serviceNode;
        }

        if (model.StripTrailingHostDot) StripTrailingHostDot(context);
        if (model.StripHostPort != HostPortStripping.None) StripHostPort(context, model.StripHostPort);
        Tls.ClientCertDetails.Mutate(context, headers, model);
        if (model.Via is not null) headers.Append("via", model.Via);
        if (edgeRequest && finalRemote is not null) headers["x-envoy-external-address"] = finalRemote.ToString();

        if (model.GenerateRequestId)
        {
            var existing = headers["x-request-id"];
            // An edge proxy does not trust a request id from outside unless told to preserve it.
            var regenerate = existing.Count == 0 || (edgeRequest && !model.PreserveExternalRequestId);
            if (regenerate) headers["x-request-id"] = info.RequestId = Uuid.NewV4();
            else info.RequestId = existing.ToString();
        }
        else
        {
            info.RequestId = headers["x-request-id"].ToString();
        }
    }

    /// <summary>The listener's port, as Envoy's <c>append_x_forwarded_port</c> writes it (not for Unix sockets).</summary>
    private static void SetForwardedPort(HttpContext context, IHeaderDictionary headers)
    {
        var port = context.Connection.LocalPort;
        if (port != 0) headers["x-forwarded-port"] = port.ToString(System.Globalization.CultureInfo.InvariantCulture);
    }

    private static bool InRanges(Config.Model.Listener.CidrRangeModel[] ranges, IPAddress address)
    {
        foreach (var r in ranges) if (r.Contains(address)) return true;
        return false;
    }

    private static bool IsUnixSocket(HttpContext context) =>
        context.Features.Get<Microsoft.AspNetCore.Http.Features.IHttpConnectionFeature>() is { RemoteIpAddress: null, LocalIpAddress: null }
        && context.Connection.LocalPort == 0;

    /// <summary>Envoy's <c>stripTrailingHostDot</c>: "example.com." and "example.com.:8080" lose the dot.</summary>
    private static void StripTrailingHostDot(HttpContext context)
    {
        var host = context.Request.Host.Value;
        if (string.IsNullOrEmpty(host)) return;
        var dot = host.LastIndexOf('.');
        if (dot < 0) return;
        if (dot == host.Length - 1) context.Request.Host = new HostString(host[..dot]);
        else if (host[dot + 1] == ':') context.Request.Host = new HostString(string.Concat(host.AsSpan(0, dot), host.AsSpan(dot + 1)));
    }

    /// <summary>Envoy's <c>stripPortFromHost</c>: the port after the last ':' (not inside an IPv6 literal's
    /// brackets) goes, when it is a number and, for <see cref="HostPortStripping.Matching"/>, the listener's port.</summary>
    private static void StripHostPort(HttpContext context, HostPortStripping mode)
    {
        var host = context.Request.Host.Value;
        if (string.IsNullOrEmpty(host)) return;
        var colon = Config.Model.Route.HostHeader.PortStart(host);
        if (colon < 0) return;
        if (!uint.TryParse(host.AsSpan(colon + 1), System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var port)) return;
        if (mode == HostPortStripping.Matching && port != (uint)context.Connection.LocalPort) return;
        context.Request.Host = new HostString(host[..colon]);
    }

    private static readonly string[] s_edgeOnlyHeaders =
        ["x-envoy-decorator-operation", "x-envoy-downstream-service-cluster", "x-envoy-downstream-service-node"];

    private static readonly string[] s_internalOnlyHeaders =
    [
        "x-envoy-retriable-status-codes", "x-envoy-retriable-header-names", "x-envoy-retry-on", "x-envoy-retry-grpc-on",
        "x-envoy-max-retries", "x-envoy-upstream-alt-stat-name", "x-envoy-upstream-rq-timeout-ms",
        "x-envoy-upstream-rq-per-try-timeout-ms", "x-envoy-upstream-rq-timeout-alt-response",
        "x-envoy-expected-rq-timeout-ms", "x-envoy-force-trace", "x-envoy-ip-tags", "x-envoy-original-url",
        "x-envoy-hedge-on-per-try-timeout",
    ];

    /// <summary>Envoy's <c>Network::Utility::getLocalAddress</c>: the first non-loopback IPv4 address of the
    /// machine's interfaces, else 127.0.0.1.</summary>
    private static readonly Lazy<string> s_localAddress = new(() =>
    {
        try
        {
            foreach (var nic in System.Net.NetworkInformation.NetworkInterface.GetAllNetworkInterfaces())
                foreach (var a in nic.GetIPProperties().UnicastAddresses)
                    if (a.Address.AddressFamily == AddressFamily.InterNetwork && !IPAddress.IsLoopback(a.Address)) return a.Address.ToString();
        }
        catch (System.Net.NetworkInformation.NetworkInformationException)
        {
        }
        return "127.0.0.1";
    });

    /// <summary>Envoy's <c>Utility::getLastAddressFromXFF</c>: the XFF entry <paramref name="skip"/> places from the
    /// right, if it is an IP address; <paramref name="single"/> when XFF held just that one entry.</summary>
    private static IPAddress? LastXffAddress(IHeaderDictionary headers, int skip, out bool single)
    {
        single = false;
        var xff = headers["x-forwarded-for"];
        if (xff.Count == 0) return null;
        var s = xff.Count == 1 ? xff[0]! : xff.ToString();
        for (var i = 0; i < skip; i++)
        {
            var comma = s.LastIndexOf(',');
            if (comma < 0) return null;
            s = s[..comma];
        }
        var last = s.LastIndexOf(',');
        if (!IPAddress.TryParse(s.AsSpan(last + 1).Trim(" \t"), out var ip)) return null;
        single = last < 0 && skip == 0;
        return ip;
    }

    /// <summary>RFC 1918, loopback and unique-local addresses: Envoy's default internal address set.</summary>
    internal static bool IsInternal(IPAddress ip)
    {
        if (ip.IsIPv4MappedToIPv6) ip = ip.MapToIPv4();
        if (IPAddress.IsLoopback(ip)) return true;
        if (ip.AddressFamily == AddressFamily.InterNetwork)
        {
            Span<byte> b = stackalloc byte[4];
            ip.TryWriteBytes(b, out _);
            return b[0] == 10 || (b[0] == 172 && (b[1] & 0xF0) == 16) || (b[0] == 192 && b[1] == 168);
        }
        if (ip.AddressFamily == AddressFamily.InterNetworkV6)
        {
            Span<byte> b = stackalloc byte[16];
            ip.TryWriteBytes(b, out _);
            return (b[0] & 0xFE) == 0xFC;
        }
        return false;
    }

    /// <summary>Applies response header mutations of the route, virtual host and route configuration, and the
    /// connection manager's own response headers (server, request id).</summary>
    public void MutateResponseHeaders(HttpContext context, UpstreamRequest info, RouteConfigurationModel routes, VirtualHostModel vhost, RouteModel route)
    {
        var headers = context.Response.Headers;
        // As for requests, Envoy's weighted cluster entry applies its headers before the route's levels either way.
        if (info.WeightedCluster is { } wc) HeaderMutator.Apply(headers, wc.ResponseHeaders, context);
        if (routes.MostSpecificHeaderMutationsWins)
        {
            HeaderMutator.Apply(headers, routes.ResponseHeaders, context);
            HeaderMutator.Apply(headers, vhost.ResponseHeaders, context);
            HeaderMutator.Apply(headers, route.ResponseHeaders, context);
        }
        else
        {
            HeaderMutator.Apply(headers, route.ResponseHeaders, context);
            HeaderMutator.Apply(headers, vhost.ResponseHeaders, context);
            HeaderMutator.Apply(headers, routes.ResponseHeaders, context);
        }
        ApplyServerHeaders(context, info);
    }

    public void ApplyServerHeaders(HttpContext context, UpstreamRequest info)
    {
        var model = Model;
        var headers = context.Response.Headers;
        switch (model.ServerHeaderTransformation)
        {
            case ServerHeaderTransformation.Overwrite: headers.Server = model.ServerName; break;
            case ServerHeaderTransformation.AppendIfAbsent: if (!headers.ContainsKey("server")) headers.Server = model.ServerName; break;
        }
        if (model.AlwaysSetRequestIdInResponse && info.RequestId is { Length: > 0 } id) headers["x-request-id"] = id;
        if (info.ResponseDecoratorOperation is { } operation) headers["x-envoy-decorator-operation"] = operation;
        if (model.Via is not null) headers.Append("via", model.Via);
    }

    private async Task SendDirectResponseAsync(HttpContext context, UpstreamRequest info, DirectResponseModel direct, RouteConfigurationModel routes, VirtualHostModel vhost, RouteModel route)
    {
        info.ResponseCodeDetails = "direct_response";
        var response = context.Response;
        response.StatusCode = direct.Status;
        MutateResponseHeaders(context, info, routes, vhost, route);
        var body = direct.Body;
        if (info.LocalReplyConfig is { } rewriter)
        {
            // Envoy sends a direct response as a local reply: local_reply_config rewrites it too.
            var status = direct.Status;
            var text = body is { Length: > 0 } ? System.Text.Encoding.UTF8.GetString(body) : "";
            var contentType = rewriter.Rewrite(context, info, ref status, ref text);
            body = System.Text.Encoding.UTF8.GetBytes(text);
            if (contentType is not null && body.Length > 0) response.ContentType = contentType;
        }
        if (body is { Length: > 0 })
        {
            if (!response.Headers.ContainsKey("content-type")) response.ContentType = "text/plain";
            response.ContentLength = body.Length;
            if (!HttpMethods.IsHead(context.Request.Method)) await response.Body.WriteAsync(body).ConfigureAwait(false);
        }
        else
        {
            response.ContentLength = 0;
        }
    }

    private Task SendRedirect(HttpContext context, UpstreamRequest info, RedirectActionModel r, RequestView request, string scheme, string authority,
        RouteConfigurationModel routes, VirtualHostModel vhost, RouteModel route)
    {
        var newScheme = r.Scheme ?? scheme;
        SplitHostPort(authority, out var host, out var port);
        if (r.Host is not null) host = r.Host;
        if (r.Port is int p) port = p == 0 ? null : p.ToString(System.Globalization.CultureInfo.InvariantCulture);
        // Envoy drops the port when it is the default of the new scheme, or when only the scheme changed.
        if (port is not null && ((newScheme == "https" && port == "443") || (newScheme == "http" && port == "80") || (r.Scheme is not null && r.Port is null && r.Host is null)))
            port = null;

        string path;
        if (r.Path is not null) path = r.Path;
        else if (r.PrefixRewrite is not null && info.Route!.MatchPrefix is { } prefix)
            path = r.PrefixRewrite + request.Path[Math.Min(prefix.Length, request.Path.Length)..];
        else if (r.RegexRewritePattern is not null) path = r.RegexRewritePattern.Replace(request.Path, r.RegexRewriteSubstitution!);
        else path = request.Path;

        var query = request.Query;
        var pathHasQuery = path.Contains('?');
        var location = newScheme + "://" + host + (port is null ? "" : ":" + port) + path;
        if (!r.StripQuery && query.Length > 0 && !pathHasQuery) location += "?" + query;

        info.ResponseCodeDetails = "direct_response";
        context.Response.StatusCode = r.ResponseCode;
        context.Response.Headers.Location = location;
        context.Response.ContentLength = 0;
        // Envoy's router finalizes a redirect's headers with the route's response_headers_to_add/remove too.
        MutateResponseHeaders(context, info, routes, vhost, route);
        return Task.CompletedTask;
    }

    /// <summary>Envoy's <c>VirtualHostImpl::getRouteFromEntries</c> decides on x-forwarded-proto (as sanitized
    /// above), and EXTERNAL_ONLY spares requests marked x-envoy-internal.</summary>
    private static bool RequiresTlsRedirect(TlsRequirement requirement, IHeaderDictionary headers) => requirement switch
    {
        TlsRequirement.All => headers["x-forwarded-proto"] != "https",
        TlsRequirement.ExternalOnly => headers["x-forwarded-proto"] != "https" && headers["x-envoy-internal"] != "true",
        _ => false,
    };

    private Task RedirectToHttps(HttpContext context, string authority, RequestView request)
    {
        context.Response.StatusCode = 301;
        // Envoy's createSslRedirectPath: "https://" + the Host header as sent (port included) + the path.
        context.Response.Headers.Location = "https://" + authority + request.PathAndQuery;
        if (LocalReplyServerName is { } server) context.Response.Headers.Server = server;
        context.Response.ContentLength = 0;
        return Task.CompletedTask;
    }

    private static void SplitHostPort(string authority, out string host, out string? port)
    {
        var colon = authority.LastIndexOf(':');
        if (colon > 0 && authority.IndexOf(']', colon) < 0 && (authority[0] != '[' || authority[colon - 1] == ']'))
        {
            host = authority[..colon];
            port = authority[(colon + 1)..];
        }
        else
        {
            host = authority;
            port = null;
        }
    }
}
