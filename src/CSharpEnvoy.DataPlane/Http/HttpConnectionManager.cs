using System.Net;
using System.Net.Sockets;
using CSharpEnvoy.Config.Model.Listener;
using CSharpEnvoy.Config.Model.RouteConfiguration;
using CSharpEnvoy.DataPlane.Router;
using CSharpEnvoy.DataPlane.Stats;
using Microsoft.AspNetCore.Http;

namespace CSharpEnvoy.DataPlane.Http;

/// <summary>Envoy's <c>http.&lt;stat_prefix&gt;.*</c> connection manager stats.</summary>
internal sealed class HttpConnectionManagerStats
{
    private readonly Counter[] _byClass = new Counter[6];

    public HttpConnectionManagerStats(StatsStore store, string statPrefix)
    {
        var p = "http." + statPrefix + ".";
        DownstreamRqTotal = store.Counter(p + "downstream_rq_total");
        DownstreamRqHttp1Total = store.Counter(p + "downstream_rq_http1_total");
        DownstreamRqHttp2Total = store.Counter(p + "downstream_rq_http2_total");
        DownstreamRqActive = store.Gauge(p + "downstream_rq_active");
        DownstreamRqCompleted = store.Counter(p + "downstream_rq_completed");
        DownstreamCxTotal = store.Counter(p + "downstream_cx_total");
        DownstreamCxActive = store.Gauge(p + "downstream_cx_active");
        DownstreamCxHttp1Total = store.Counter(p + "downstream_cx_http1_total");
        DownstreamCxHttp2Total = store.Counter(p + "downstream_cx_http2_total");
        DownstreamCxUpgradesTotal = store.Counter(p + "downstream_cx_upgrades_total");
        DownstreamCxUpgradesActive = store.Gauge(p + "downstream_cx_upgrades_active");
        NoRoute = store.Counter(p + "no_route");
        NoCluster = store.Counter(p + "no_cluster");
        RqRedirect = store.Counter(p + "rq_redirect");
        RqDirectResponse = store.Counter(p + "rq_direct_response");
        RqTotal = store.Counter(p + "rq_total");
        RqTimeout = store.Counter(p + "downstream_rq_timeout");
        for (var c = 1; c <= 5; c++) _byClass[c] = store.Counter(p + $"downstream_rq_{c}xx");
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

    public HttpConnectionManager(HttpConnectionManagerModel model, StatsStore stats, RouterFilter router)
    {
        Model = model;
        Stats = new HttpConnectionManagerStats(stats, model.StatPrefix);
        _router = router;
    }

    public HttpConnectionManagerModel Model { get; }
    public HttpConnectionManagerStats Stats { get; }

    public async Task HandleAsync(HttpContext context, bool isTls)
    {
        var stats = Stats;
        stats.DownstreamRqTotal.Inc();
        if (HttpProtocol.IsHttp2(context.Request.Protocol)) stats.DownstreamRqHttp2Total.Inc();
        else stats.DownstreamRqHttp1Total.Inc();
        stats.DownstreamRqActive.Inc();
        var info = new UpstreamRequest();
        try
        {
            await ProcessAsync(context, info, isTls).ConfigureAwait(false);
        }
        finally
        {
            stats.DownstreamRqActive.Dec();
            stats.ResponseCode(context.Response.StatusCode);
        }
    }

    private Task ProcessAsync(HttpContext context, UpstreamRequest info, bool isTls)
    {
        var model = Model;
        var scheme = isTls ? "https" : "http";
        MutateRequestHeaders(context, info, scheme);

        var routes = model.RouteConfig;
        var request = new RequestView(context, scheme);
        var host = context.Request.Host.Value ?? "";
        var vhost = routes?.VirtualHosts.Find(host);
        RouteModel? route = null;
        if (vhost is not null)
        {
            info.VirtualHost = vhost;
            if (vhost.RequireTls != TlsRequirement.None && !isTls)
                return RedirectToHttps(context, host, request);
            route = vhost.Routes.Find(request);
        }
        if (route is null)
        {
            Stats.NoRoute.Inc();
            info.Flags |= ResponseFlags.NoRouteFound;
            return LocalReply.SendAsync(context, 404, "", model.ServerName, info, "route_not_found");
        }
        info.Route = route;

        if (route.DirectResponse is { } direct)
        {
            Stats.RqDirectResponse.Inc();
            return SendDirectResponseAsync(context, info, direct, routes!, vhost!, route);
        }
        if (route.Redirect is { } redirect)
        {
            Stats.RqRedirect.Inc();
            return SendRedirect(context, info, redirect, request, scheme, host);
        }
        return _router.ForwardAsync(context, info, this, routes!, vhost!, route, request);
    }

    /// <summary>Envoy's <c>ConnectionManagerUtility::mutateRequestHeaders</c>, the parts that apply so far.</summary>
    private void MutateRequestHeaders(HttpContext context, UpstreamRequest info, string scheme)
    {
        var model = Model;
        var headers = context.Request.Headers;
        var remote = context.Connection.RemoteIpAddress;
        var internalRequest = false;
        if (model.UseRemoteAddress)
        {
            // The edge: the connection's peer is the client. Append it to XFF unless told not to.
            internalRequest = remote is not null && IsInternal(remote) && !headers.ContainsKey("x-forwarded-for");
            if (!model.SkipXffAppend && remote is not null)
            {
                var ip = remote.IsIPv4MappedToIPv6 ? remote.MapToIPv4().ToString() : remote.ToString();
                var xff = headers["x-forwarded-for"];
                headers["x-forwarded-for"] = xff.Count == 0 ? ip : xff.ToString() + "," + ip;
            }
            headers["x-forwarded-proto"] = scheme;
            if (internalRequest) headers["x-envoy-internal"] = "true";
            else
            {
                headers.Remove("x-envoy-internal");
                if (remote is not null) headers["x-envoy-external-address"] = remote.ToString();
            }
        }
        else if (!headers.ContainsKey("x-forwarded-proto"))
        {
            headers["x-forwarded-proto"] = scheme;
        }

        if (model.Via is not null) headers.Append("via", model.Via);

        if (model.GenerateRequestId)
        {
            var existing = headers["x-request-id"];
            // An edge proxy does not trust a request id from outside unless told to preserve it.
            var regenerate = existing.Count == 0 || (model.UseRemoteAddress && !internalRequest && !model.PreserveExternalRequestId);
            if (regenerate) headers["x-request-id"] = info.RequestId = Guid.NewGuid().ToString();
            else info.RequestId = existing.ToString();
        }
        else
        {
            info.RequestId = headers["x-request-id"].ToString();
        }
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
        if (routes.MostSpecificHeaderMutationsWins)
        {
            HeaderMutator.Apply(headers, routes.ResponseHeaders, context);
            HeaderMutator.Apply(headers, vhost.ResponseHeaders, context);
            HeaderMutator.Apply(headers, route.ResponseHeaders, context);
            if (info.WeightedCluster is { } wc) HeaderMutator.Apply(headers, wc.ResponseHeaders, context);
        }
        else
        {
            if (info.WeightedCluster is { } wc) HeaderMutator.Apply(headers, wc.ResponseHeaders, context);
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
        if (model.Via is not null) headers.Append("via", model.Via);
    }

    private async Task SendDirectResponseAsync(HttpContext context, UpstreamRequest info, DirectResponseModel direct, RouteConfigurationModel routes, VirtualHostModel vhost, RouteModel route)
    {
        info.ResponseCodeDetails = "direct_response";
        var response = context.Response;
        response.StatusCode = direct.Status;
        MutateResponseHeaders(context, info, routes, vhost, route);
        if (direct.Body is { Length: > 0 } body)
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

    private Task SendRedirect(HttpContext context, UpstreamRequest info, RedirectActionModel r, RequestView request, string scheme, string authority)
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
        ApplyServerHeaders(context, info);
        return Task.CompletedTask;
    }

    private Task RedirectToHttps(HttpContext context, string authority, RequestView request)
    {
        SplitHostPort(authority, out var host, out _);
        context.Response.StatusCode = 301;
        context.Response.Headers.Location = "https://" + host + request.PathAndQuery;
        context.Response.Headers.Server = Model.ServerName;
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
