using System.Net;
using CSharpEnvoy.Config.Model.HttpFilters;
using CSharpEnvoy.Config.Model.Matchers;
using CSharpEnvoy.Config.Model.RouteConfiguration;
using CSharpEnvoy.DataPlane.Router;
using CSharpEnvoy.DataPlane.Stats;
using CSharpEnvoy.DataPlane.Upstream;
using Envoy.Service.Auth.V3;
using Google.Protobuf;
using Grpc.Core;
using Grpc.Net.Client;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.Features;

namespace CSharpEnvoy.DataPlane.Http.Filters.ExtAuthz;

/// <summary>
/// Envoy's <c>envoy.filters.http.ext_authz</c>: each routed request is held while an authorization service decides,
/// the gRPC <c>envoy.service.auth.v3.Authorization/Check</c> (a <c>CheckRequest</c> with the peer addresses, the
/// request's headers, pseudo-headers included, path, method, protocol, the buffered body and the route's context
/// extensions) or an HTTP server (the request's method and path under <c>path_prefix</c> with the allowed headers; 200
/// allows, 5xx is an error, any other status denies). Allowed: the service's headers go upstream (set, appended or
/// removed) and its response headers onto the response. Denied: the service's status (403 by default), headers and
/// body go to the client (flag UAEX, details <c>ext_authz_denied</c>). A failed, late or unreachable service is an
/// error: <c>status_on_error</c> (403), or with <c>failure_mode_allow</c> the request goes on. Stats
/// <c>http.&lt;stat_prefix&gt;.ext_authz.[&lt;filter stat_prefix&gt;.]{ok,denied,error,disabled,failure_mode_allowed}</c>, and
/// on the route's cluster <c>cluster.&lt;name&gt;.ext_authz.[&lt;filter stat_prefix&gt;.]{ok,denied,error,failure_mode_allowed}</c>.
/// </summary>
internal sealed class ExtAuthzFilter : IHttpDecoderFilter
{
    private readonly ExtAuthzModel _model;
    private readonly HttpFilterNames _names;
    private readonly ClusterManager _clusters;
    private readonly Envoy.Service.Auth.V3.Authorization.AuthorizationClient? _grpc;
    private readonly HttpMessageInvoker? _http;
    private readonly Counter _ok, _denied, _error, _disabled, _failureModeAllowed;
    private readonly StatsStore _stats;
    private readonly System.Collections.Concurrent.ConcurrentDictionary<string, ClusterStats> _clusterStats = new(StringComparer.Ordinal);

    public ExtAuthzFilter(ExtAuthzModel model, HttpFilterNames names, StatsStore stats, ClusterManager clusters, string hcmPrefix)
    {
        _model = model;
        _names = names;
        _clusters = clusters;
        _stats = stats;
        var prefix = hcmPrefix + "ext_authz." + (model.StatPrefix.Length > 0 ? model.StatPrefix + "." : "");
        _ok = stats.Counter(prefix, "ok");
        _denied = stats.Counter(prefix, "denied");
        _error = stats.Counter(prefix, "error");
        _disabled = stats.Counter(prefix, "disabled");
        _failureModeAllowed = stats.Counter(prefix, "failure_mode_allowed");
        if (model.GrpcCluster is { } grpcCluster)
        {
            var channel = GrpcChannel.ForAddress("http://ext-authz", new GrpcChannelOptions
            {
                HttpHandler = new RateLimit.ClusterGrpcHandler(clusters, grpcCluster),
                DisposeHttpClient = true,
            });
            _grpc = new Envoy.Service.Auth.V3.Authorization.AuthorizationClient(channel);
        }
        else if (model.Http is { } http) _http = new HttpMessageInvoker(new RateLimit.ClusterGrpcHandler(clusters, http.Cluster, clusterProtocol: true));
    }

    public ValueTask<bool> DecodeHeadersAsync(HttpContext context, UpstreamRequest info, HttpConnectionManager hcm)
    {
        // As Envoy: no route, no check.
        if (info.Route is null) return new ValueTask<bool>(true);
        var perRoute = _names.MostSpecific<ExtAuthzPerRouteModel>(info);
        if (perRoute is { Disabled: true }) return new ValueTask<bool>(true);
        if (_model.FilterEnabled is { } enabled && !HttpFilterChain.Sample(enabled))
        {
            _disabled.Inc();
            if (!_model.DenyAtDisable) return new ValueTask<bool>(true);
            info.Flags |= ResponseFlags.UnauthorizedExternalService;
            return HttpFilterChain.Replied(LocalReply.SendAsync(context, _model.StatusOnError, "", hcm.LocalReplyServerName, info, "ext_authz_error"));
        }
        return CheckAsync(context, info, hcm, perRoute);
    }

    private async ValueTask<bool> CheckAsync(HttpContext context, UpstreamRequest info, HttpConnectionManager hcm, ExtAuthzPerRouteModel? perRoute)
    {
        var buffer = perRoute?.DisableRequestBodyBuffering == true ? null : perRoute?.WithRequestBody ?? _model.WithRequestBody;
        RequestBody? body = null;
        if (buffer is not null && HasBody(context))
        {
            body = await RequestBody.ReadAsync(context, buffer, context.RequestAborted).ConfigureAwait(false);
            if (body is null)
            {
                return await HttpFilterChain.Replied(LocalReply.SendAsync(context, StatusCodes.Status413PayloadTooLarge, "Payload Too Large",
                    hcm.LocalReplyServerName, info, "request_payload_too_large")).ConfigureAwait(false);
            }
        }

        Decision decision;
        using (var cts = CancellationTokenSource.CreateLinkedTokenSource(context.RequestAborted))
        {
            if (_model.Timeout > TimeSpan.Zero) cts.CancelAfter(_model.Timeout);
            try
            {
                decision = _grpc is not null
                    ? Decide(await _grpc.CheckAsync(BuildCheckRequest(context, info, body, buffer, perRoute), cancellationToken: cts.Token).ConfigureAwait(false))
                    : await CheckHttpAsync(context, info, body, cts.Token).ConfigureAwait(false);
            }
            catch (Exception) when (!context.RequestAborted.IsCancellationRequested)
            {
                // Unreachable, failing or late service (RpcException, HttpRequestException, a timeout): an error.
                decision = Decision.Failed;
            }
            catch (Exception)
            {
                return false; // the downstream went away
            }
        }
        if (context.RequestAborted.IsCancellationRequested) return false;

        // Envoy also counts on the route's cluster: cluster.<name>.ext_authz.[<stat_prefix>.]*.
        var routeCluster = RouterFilter.TargetClusterName(context, info) is { } name ? _clusters.Get(name) : null;
        var cluster = routeCluster is null ? null : _clusterStats.GetOrAdd(routeCluster.Name, static (n, f) => new ClusterStats(f._stats, n, f._model.StatPrefix), this);
        switch (decision.Outcome)
        {
            case Outcome.Ok:
                _ok.Inc();
                cluster?.Ok.Inc();
                ApplyOk(context, info, decision);
                return true;
            case Outcome.Denied:
                _denied.Inc();
                cluster?.Denied.Inc();
                info.Flags |= ResponseFlags.UnauthorizedExternalService;
                var status = decision.Status > 0 ? decision.Status : 403;
                // Envoy charges the denial's status to the route's cluster (charge_cluster_response_stats).
                if (_model.ChargeClusterResponseStats) routeCluster?.Stats.ResponseCode(status);
                return await HttpFilterChain.Replied(Reply(context, info, hcm, decision, status, "ext_authz_denied")).ConfigureAwait(false);
            default:
                _error.Inc();
                cluster?.Error.Inc();
                if (_model.FailureModeAllow)
                {
                    _failureModeAllowed.Inc();
                    cluster?.FailureModeAllowed.Inc();
                    if (_model.FailureModeAllowHeaderAdd) context.Request.Headers.Append("x-envoy-auth-failure-mode-allowed", "true");
                    return true;
                }
                info.Flags |= ResponseFlags.UnauthorizedExternalService;
                return await HttpFilterChain.Replied(Reply(context, info, hcm, decision, decision.Status > 0 ? decision.Status : _model.StatusOnError, "ext_authz_error")).ConfigureAwait(false);
        }
    }

    private static bool HasBody(HttpContext context) =>
        context.Features.Get<IHttpRequestBodyDetectionFeature>()?.CanHaveBody == true
        && context.Features.Get<IHttpUpgradeFeature>() is not { IsUpgradableRequest: true };

    /// <summary>A denial or error: the service's headers (they replace the reply's own), status and body.</summary>
    private static Task Reply(HttpContext context, UpstreamRequest info, HttpConnectionManager hcm, Decision d, int status, string details)
    {
        var headers = context.Response.Headers;
        string? contentType = null;
        if (d.Set is { } set)
            foreach (var (name, value) in set)
            {
                if (name.Equals("content-type", StringComparison.OrdinalIgnoreCase)) { contentType = value; continue; }
                if (name.Equals("content-length", StringComparison.OrdinalIgnoreCase) || name.StartsWith(':')) continue;
                headers.Remove(name);
            }
        if (d.Set is { } adds)
            foreach (var (name, value) in adds)
            {
                if (name.Equals("content-type", StringComparison.OrdinalIgnoreCase) || name.Equals("content-length", StringComparison.OrdinalIgnoreCase) || name.StartsWith(':')) continue;
                headers.Append(name, value);
            }
        return LocalReply.SendAsync(context, status, d.Body ?? "", hcm.LocalReplyServerName, info, details, contentType: contentType);
    }

    /// <summary>Envoy's OK path: request headers set, appended (to existing ones) and removed, query parameters set and
    /// removed, and response headers staged for the response.</summary>
    private void ApplyOk(HttpContext context, UpstreamRequest info, Decision d)
    {
        var headers = context.Request.Headers;
        var changed = false;
        if (d.Set is { } set)
            foreach (var (name, value) in set)
            {
                SetRequestHeader(context, info, name, value);
                changed = true;
            }
        if (d.Add is { } add)
            foreach (var (name, value) in add)
            {
                headers.Append(name, value);
                changed = true;
            }
        if (d.Append is { } append)
            foreach (var (name, value) in append)
            {
                // Only onto a header that is there: joined with a comma.
                if (headers.TryGetValue(name, out var existing) && existing.Count > 0)
                {
                    headers[name] = existing.ToString() + "," + value;
                    changed = true;
                }
            }
        if (d.Remove is { } remove)
            foreach (var name in remove)
            {
                if (name.StartsWith(':') || name.Equals("host", StringComparison.OrdinalIgnoreCase)) continue;
                headers.Remove(name);
                changed = true;
            }
        if ((d.QuerySet is { Count: > 0 } || d.QueryRemove is { Count: > 0 }) && info.Request is { } view)
        {
            view.Query = RewriteQuery(view.Query, d.QuerySet, d.QueryRemove);
            context.Request.QueryString = view.Query.Length == 0 ? QueryString.Empty : new QueryString("?" + view.Query);
            changed = true;
        }
        if (changed && _model.ClearRouteCache && info.Routes is { } routes && info.Request is { } request)
        {
            // The host may have changed too: the virtual host is found again, then the route.
            var vhost = routes.VirtualHosts.Find(context.Request.Host.Value ?? "");
            info.VirtualHost = vhost;
            info.Route = vhost?.Routes.Find(request);
        }
        if (d.ResponseHeaders is { Count: > 0 } responseHeaders)
            context.Response.OnStarting(static state =>
            {
                var (ctx, list) = ((HttpContext, List<(string Name, string Value, ResponseHeaderAction Action)>))state;
                var h = ctx.Response.Headers;
                foreach (var (name, value, action) in list)
                {
                    switch (action)
                    {
                        case ResponseHeaderAction.Add: h.Append(name, value); break;
                        case ResponseHeaderAction.Set: h[name] = value; break;
                        case ResponseHeaderAction.AddIfAbsent: if (!h.ContainsKey(name)) h[name] = value; break;
                        case ResponseHeaderAction.OverwriteIfExists: if (h.ContainsKey(name)) h[name] = value; break;
                    }
                }
                return Task.CompletedTask;
            }, (context, responseHeaders));
    }

    /// <summary>Sets a request header; <c>:path</c>, <c>:authority</c>/<c>host</c> and <c>:method</c> change the request itself.</summary>
    private static void SetRequestHeader(HttpContext context, UpstreamRequest info, string name, string value)
    {
        switch (name)
        {
            case ":authority":
            case "host":
                context.Request.Host = new HostString(value);
                return;
            case ":method":
                context.Request.Method = value;
                return;
            case ":path":
                if (!value.StartsWith('/')) return; // not a path csenvoy can route ("*", an absolute URI): ignored
                var q = value.IndexOf('?');
                var path = q < 0 ? value : value[..q];
                var query = q < 0 ? "" : value[(q + 1)..];
                context.Request.Path = new PathString(path);
                context.Request.QueryString = q < 0 ? QueryString.Empty : new QueryString(value[q..]);
                if (info.Request is { } view)
                {
                    view.Path = path;
                    view.Query = query;
                }
                return;
        }
        if (name.StartsWith(':')) return;
        context.Request.Headers[name] = value;
    }

    private static string RewriteQuery(string query, List<(string Key, string Value)>? set, List<string>? remove)
    {
        var pairs = new List<(string Key, string? Value)>();
        foreach (var range in query.AsSpan().Split('&'))
        {
            var item = query[range];
            if (item.Length == 0) continue;
            var eq = item.IndexOf('=');
            pairs.Add(eq < 0 ? (item, null) : (item[..eq], item[(eq + 1)..]));
        }
        if (remove is not null) pairs.RemoveAll(p => remove.Contains(p.Key));
        if (set is not null)
            foreach (var (key, value) in set)
            {
                var at = pairs.FindIndex(p => p.Key == key);
                pairs.RemoveAll(p => p.Key == key);
                if (at < 0 || at > pairs.Count) pairs.Add((key, value));
                else pairs.Insert(at, (key, value));
            }
        var sb = new System.Text.StringBuilder();
        foreach (var (key, value) in pairs)
        {
            if (sb.Length > 0) sb.Append('&');
            sb.Append(key);
            if (value is not null) sb.Append('=').Append(value);
        }
        return sb.ToString();
    }

    // ----- gRPC -----

    private CheckRequest BuildCheckRequest(HttpContext context, UpstreamRequest info, RequestBody? body, ExtAuthzBufferModel? buffer, ExtAuthzPerRouteModel? perRoute)
    {
        var connection = context.Connection;
        var attributes = new AttributeContext
        {
            Source = new AttributeContext.Types.Peer { Address = Address(connection.RemoteIpAddress, connection.RemotePort) },
            Destination = new AttributeContext.Types.Peer { Address = Address(connection.LocalIpAddress, connection.LocalPort) },
        };
        var request = context.Request;
        if (request.Headers["x-envoy-downstream-service-cluster"].ToString() is { Length: > 0 } service) attributes.Source.Service = service;
        if (context.Features.Get<Tls.PeerCertificateInfo>() is { } peer)
        {
            attributes.Source.Principal = Principal(peer);
            if (_model.IncludePeerCertificate) attributes.Source.Certificate = Tls.ClientCertDetails.UrlEncodedPem(peer.Leaf);
        }
        var path = info.Request is { } view ? view.PathAndQuery : request.Path.Value + request.QueryString.Value;
        var http = new AttributeContext.Types.HttpRequest
        {
            Id = ((ulong)Random.Shared.NextInt64()).ToString(System.Globalization.CultureInfo.InvariantCulture),
            Method = request.Method,
            Path = path,
            Host = request.Host.Value ?? "",
            Scheme = request.Scheme,
            Protocol = HttpProtocol.IsHttp2(request.Protocol) ? "HTTP/2" : request.Protocol,
            Size = body?.Length ?? 0,
        };
        AddHeader(http, ":authority", http.Host);
        AddHeader(http, ":path", path);
        AddHeader(http, ":method", request.Method);
        AddHeader(http, ":scheme", request.Scheme);
        foreach (var (name, values) in request.Headers)
        {
            var key = name.ToLowerInvariant();
            if (key == "host" || key == "x-envoy-auth-partial-body") continue;
            AddHeader(http, key, values.Count == 1 ? values[0] ?? "" : string.Join(',', values.ToArray()));
        }
        if (body is not null)
        {
            var bytes = body.Bytes;
            if (buffer!.PackAsBytes) http.RawBody = ByteString.CopyFrom(bytes.Span);
            else http.Body = System.Text.Encoding.UTF8.GetString(bytes.Span);
            http.Headers["x-envoy-auth-partial-body"] = body.Partial ? "true" : "false";
        }
        attributes.Request = new AttributeContext.Types.Request
        {
            Time = Google.Protobuf.WellKnownTypes.Timestamp.FromDateTime(DateTime.UtcNow),
            Http = http,
        };
        foreach (var (k, v) in ContextExtensions(info)) attributes.ContextExtensions[k] = v;
        return new CheckRequest { Attributes = attributes };
    }

    /// <summary>Adds a header to the check unless <c>allowed_headers</c> leaves it out or <c>disallowed_headers</c> names it.</summary>
    private void AddHeader(AttributeContext.Types.HttpRequest http, string key, string value)
    {
        if (_model.DisallowedHeaders is { } disallowed && Matches(disallowed, key)) return;
        if (_model.AllowedHeaders is { } allowed && !Matches(allowed, key)) return;
        http.Headers[key] = value;
    }

    private static bool Matches(StringMatcherModel[] matchers, string value)
    {
        foreach (var m in matchers) if (m.Match(value)) return true;
        return false;
    }

    private static Envoy.Config.Core.V3.Address Address(IPAddress? ip, int port)
    {
        if (ip is { IsIPv4MappedToIPv6: true }) ip = ip.MapToIPv4();
        return new Envoy.Config.Core.V3.Address
        {
            SocketAddress = new Envoy.Config.Core.V3.SocketAddress { Address = ip?.ToString() ?? "", PortValue = (uint)Math.Max(0, port) },
        };
    }

    /// <summary>Envoy's principal of a peer certificate: its first URI SAN, else its first DNS SAN, else its subject.</summary>
    private static string Principal(Tls.PeerCertificateInfo peer)
    {
        foreach (var (t, v) in peer.Sans) if (t == Config.Model.Tls.SanType.Uri) return v;
        foreach (var (t, v) in peer.Sans) if (t == Config.Model.Tls.SanType.Dns) return v;
        return peer.Subject;
    }

    /// <summary>The context extensions of the route's levels, the most specific key winning.</summary>
    private Dictionary<string, string> ContextExtensions(UpstreamRequest info)
    {
        var merged = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var level in new[] { info.Routes?.TypedPerFilterConfig, info.VirtualHost?.TypedPerFilterConfig, info.Route?.TypedPerFilterConfig })
        {
            if (level is null) continue;
            if ((level.TryGetValue(_names.ConfigName, out var e) || level.TryGetValue(_names.ExtensionName, out e)) && e.Config is ExtAuthzPerRouteModel p)
                foreach (var (k, v) in p.ContextExtensions) merged[k] = v;
        }
        return merged;
    }

    private static Decision Decide(CheckResponse response)
    {
        var d = new Decision();
        if (response.Status is null || response.Status.Code == 0)
        {
            d.Outcome = Outcome.Ok;
            if (response.OkResponse is { } ok)
            {
                foreach (var h in ok.Headers) d.Header(h);
                d.Remove = ok.HeadersToRemove.Count == 0 ? null : [.. ok.HeadersToRemove];
                foreach (var h in ok.ResponseHeadersToAdd)
                {
#pragma warning disable CS0612 // the deprecated append is what Envoy reads first
                    var action = h.Append is { } append ? (append ? ResponseHeaderAction.Add : ResponseHeaderAction.Set) : h.AppendAction switch
                    {
                        Envoy.Config.Core.V3.HeaderValueOption.Types.HeaderAppendAction.AddIfAbsent => ResponseHeaderAction.AddIfAbsent,
                        Envoy.Config.Core.V3.HeaderValueOption.Types.HeaderAppendAction.OverwriteIfExistsOrAdd => ResponseHeaderAction.Set,
                        Envoy.Config.Core.V3.HeaderValueOption.Types.HeaderAppendAction.OverwriteIfExists => ResponseHeaderAction.OverwriteIfExists,
                        _ => ResponseHeaderAction.Add,
                    };
#pragma warning restore CS0612
                    if (h.Header is { Key.Length: > 0 } hv) (d.ResponseHeaders ??= []).Add((hv.Key.ToLowerInvariant(), hv.Value, action));
                }
                foreach (var q in ok.QueryParametersToSet) (d.QuerySet ??= []).Add((q.Key, q.Value));
                if (ok.QueryParametersToRemove.Count > 0) d.QueryRemove = [.. ok.QueryParametersToRemove];
            }
            return d;
        }
        if (response.ErrorResponse is { } error)
        {
            d.Outcome = Outcome.Error;
            d.Status = error.Status is { } s ? (int)s.Code : 0;
            foreach (var h in error.Headers) d.Header(h);
            d.Body = error.Body;
            return d;
        }
        d.Outcome = Outcome.Denied;
        if (response.DeniedResponse is { } denied)
        {
            d.Status = denied.Status is { } s ? (int)s.Code : 0;
            foreach (var h in denied.Headers) d.Header(h);
            d.Body = denied.Body;
        }
        return d;
    }

    // ----- HTTP service -----

    private static readonly HashSet<string> s_hopByHop = new(StringComparer.OrdinalIgnoreCase)
    {
        "connection", "keep-alive", "proxy-connection", "transfer-encoding", "upgrade", "te", "trailer", "host", "content-length",
    };

    private static readonly UriCreationOptions s_rawUri = new() { DangerousDisablePathAndQueryCanonicalization = true };

    private async Task<Decision> CheckHttpAsync(HttpContext context, UpstreamRequest info, RequestBody? body, CancellationToken ct)
    {
        var service = _model.Http!;
        var request = context.Request;
        // The path as routed and forwarded (normalized, slashes merged), so the check sees what the upstream gets.
        var path = info.Request?.PathAndQuery ?? request.Path.Value + request.QueryString.Value;
        using var message = new HttpRequestMessage(new HttpMethod(request.Method), new Uri("http://" + service.Authority + service.PathPrefix + path, in s_rawUri));
        message.Headers.Host = request.Host.Value;
        message.Headers.TryAddWithoutValidation("x-envoy-internal", "true");
        foreach (var (name, values) in request.Headers)
        {
            var key = name.ToLowerInvariant();
            if (s_hopByHop.Contains(key) || key == "x-envoy-auth-partial-body") continue;
            var allowed = key == "authorization" || Matches(service.AllowedHeaders, key);
            if (!allowed || (_model.DisallowedHeaders is { } disallowed && Matches(disallowed, key))) continue;
            message.Headers.TryAddWithoutValidation(name, values.ToArray());
        }
        if (body is not null)
        {
            message.Content = new ReadOnlyMemoryContent(body.Bytes);
            message.Headers.TryAddWithoutValidation("x-envoy-auth-partial-body", body.Partial ? "true" : "false");
        }
        else if (request.Method is not "GET" and not "HEAD") message.Content = new ByteArrayContent([]);
        foreach (var (name, value) in service.HeadersToAdd)
        {
            message.Headers.Remove(name);
            message.Headers.TryAddWithoutValidation(name, value);
        }

        using var response = await _http!.SendAsync(message, ct).ConfigureAwait(false);
        var status = (int)response.StatusCode;
        var d = new Decision { Status = status };
        if (status >= 500)
        {
            d.Outcome = Outcome.Error;
            d.Status = 0; // status_on_error, nothing from the service
            return d;
        }
        var headers = new List<(string Name, string Value)>();
        foreach (var h in response.Headers) foreach (var v in h.Value) headers.Add((h.Key.ToLowerInvariant(), v));
        foreach (var h in response.Content.Headers) foreach (var v in h.Value) headers.Add((h.Key.ToLowerInvariant(), v));
        if (status == 200)
        {
            d.Outcome = Outcome.Ok;
            foreach (var (name, value) in headers)
            {
                if (name == "x-envoy-auth-headers-to-remove")
                {
                    foreach (var r in value.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries)) (d.Remove ??= []).Add(r.ToLowerInvariant());
                    continue;
                }
                if (Matches(service.AllowedUpstreamHeaders, name)) (d.Set ??= []).Add((name, value));
                if (Matches(service.AllowedUpstreamHeadersToAppend, name)) (d.Add ??= []).Add((name, value));
                if (Matches(service.AllowedClientHeadersOnSuccess, name)) (d.ResponseHeaders ??= []).Add((name, value, ResponseHeaderAction.Add));
            }
            return d;
        }
        d.Outcome = Outcome.Denied;
        foreach (var (name, value) in headers)
        {
            if (name is "host" or "x-envoy-auth-headers-to-remove" || s_hopByHop.Contains(name) && name != "content-length") continue;
            var pass = service.AllowedClientHeaders is not { } allowedClient || Matches(allowedClient, name)
                || name is "www-authenticate" or "location" or "content-type";
            if (pass) (d.Set ??= []).Add((name, value));
        }
        d.Body = await response.Content.ReadAsStringAsync(ct).ConfigureAwait(false);
        return d;
    }

    /// <summary><c>cluster.&lt;route cluster&gt;.ext_authz.[&lt;stat_prefix&gt;.]*</c>.</summary>
    private sealed class ClusterStats(StatsStore store, string cluster, string statPrefix)
    {
        private readonly string _p = "cluster." + cluster + ".ext_authz." + (statPrefix.Length == 0 ? "" : statPrefix + ".");
        public Counter Ok => _ok ??= store.Counter(_p, "ok");
        public Counter Denied => _denied ??= store.Counter(_p, "denied");
        public Counter Error => _error ??= store.Counter(_p, "error");
        public Counter FailureModeAllowed => _fma ??= store.Counter(_p, "failure_mode_allowed");
        private Counter? _ok, _denied, _error, _fma;
    }

    private enum Outcome { Error, Ok, Denied }

    private enum ResponseHeaderAction { Add, Set, AddIfAbsent, OverwriteIfExists }

    /// <summary>What the service said: the outcome and the header and body changes that come with it.</summary>
    private sealed class Decision
    {
        public static Decision Failed => new() { Outcome = Outcome.Error };

        public Outcome Outcome;
        public int Status;
        public string? Body;
        public List<(string Name, string Value)>? Set, Add, Append;
        public List<string>? Remove;
        public List<(string Name, string Value, ResponseHeaderAction Action)>? ResponseHeaders;
        public List<(string Key, string Value)>? QuerySet;
        public List<string>? QueryRemove;

        /// <summary>Envoy reads only the deprecated <c>append</c> here: true appends, unset or false sets.</summary>
        public void Header(Envoy.Config.Core.V3.HeaderValueOption h)
        {
            if (h.Header is not { Key.Length: > 0 } hv) return;
            var entry = (hv.Key.ToLowerInvariant(), hv.Value);
#pragma warning disable CS0612 // Envoy reads only the deprecated append here
            var append = h.Append == true;
#pragma warning restore CS0612
            if (append) (Append ??= []).Add(entry);
            else (Set ??= []).Add(entry);
        }
    }

    /// <summary>The request body read for the check (up to the limit) and put back for the upstream.</summary>
    private sealed class RequestBody(byte[] bytes, int length, bool partial)
    {
        public ReadOnlyMemory<byte> Bytes => bytes.AsMemory(0, length);
        public int Length => length;
        public bool Partial => partial;

        /// <summary>Null when the body is longer than the limit and partial messages are not allowed (413).</summary>
        public static async Task<RequestBody?> ReadAsync(HttpContext context, ExtAuthzBufferModel settings, CancellationToken ct)
        {
            var max = (int)Math.Min(settings.MaxRequestBytes, int.MaxValue - 1);
            var request = context.Request;
            var buffer = new byte[Math.Min(max + 1, 64 * 1024)];
            var length = 0;
            var inner = request.Body;
            var ended = false;
            while (length <= max)
            {
                if (length == buffer.Length) Array.Resize(ref buffer, Math.Min(buffer.Length * 2, max + 1));
                var n = await inner.ReadAsync(buffer.AsMemory(length, Math.Min(buffer.Length, max + 1) - length), ct).ConfigureAwait(false);
                if (n == 0) { ended = true; break; }
                length += n;
            }
            if (!ended && !settings.AllowPartialMessage) return null;
            var seen = length;
            // What was read goes upstream first, then the rest of the body.
            request.Body = new ReplayBody(buffer, seen, ended ? null : inner);
            return new RequestBody(buffer, Math.Min(seen, max), !ended || seen > max);
        }
    }

    /// <summary>The bytes read for the check, then whatever the body still holds.</summary>
    private sealed class ReplayBody(byte[] head, int length, Stream? rest) : ReadOnlyBodyStream
    {
        private int _position;

        public override int Read(byte[] buffer, int offset, int count) => ReadAsync(buffer.AsMemory(offset, count)).AsTask().GetAwaiter().GetResult();

        public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken ct) =>
            ReadAsync(buffer.AsMemory(offset, count), ct).AsTask();

        public override ValueTask<int> ReadAsync(Memory<byte> destination, CancellationToken ct = default)
        {
            if (_position < length)
            {
                var n = Math.Min(destination.Length, length - _position);
                head.AsSpan(_position, n).CopyTo(destination.Span);
                _position += n;
                return new ValueTask<int>(n);
            }
            return rest is null ? new ValueTask<int>(0) : rest.ReadAsync(destination, ct);
        }
    }
}
