using System.Globalization;
using CSharpEnvoy.Config.Model.Tracing;
using CSharpEnvoy.DataPlane.Http;
using Microsoft.AspNetCore.Http;

namespace CSharpEnvoy.DataPlane.Tracing;

/// <summary>
/// A connection manager's tracing: the sampling decision (Envoy's <c>mutateTracingRequestHeader</c>), the request's
/// span with Envoy's tags (<c>HttpTracerUtility::finalizeDownstreamSpan</c>), and the context sent upstream.
/// </summary>
internal sealed class HttpTracing
{
    private readonly TracingModel _model;
    private readonly Tracer _tracer;
    private readonly TracerManager _manager;
    private readonly uint _client;
    private readonly uint _random;
    private readonly uint _overall;

    private readonly bool _packTraceReason = true;
    private readonly bool _sampleByRequestId = true;

    /// <param name="packTraceReason">The UUID request id extension's pack_trace_reason.</param>
    /// <param name="sampleByRequestId">Its use_request_id_for_trace_sampling.</param>
    public HttpTracing(TracingModel model, TracerManager manager, bool packTraceReason = true, bool sampleByRequestId = true)
    {
        _packTraceReason = packTraceReason;
        _sampleByRequestId = sampleByRequestId;
        _model = model;
        _manager = manager;
        _tracer = manager.Get(model);
        // Percentages become numerators over 10000, as Envoy's Percent → FractionalPercent(TEN_THOUSAND).
        _client = (uint)Math.Round(model.ClientSampling * 100);
        _random = (uint)Math.Round(model.RandomSampling * 100);
        _overall = (uint)Math.Round(model.OverallSampling * 100);
    }

    /// <summary>Decides whether the request is traced, records the reason in x-request-id as Envoy's UUID request
    /// id extension does, starts the span and writes the trace context upstream. Null when the caller's context
    /// was malformed (Envoy's null span).</summary>
    public Span? Start(HttpContext context, StreamInfo info, string scheme)
    {
        var headers = context.Request.Headers;
        var rid = info.RequestId;
        // Without pack_trace_reason the request id carries no trace decision (Envoy's getTraceReason: not traceable).
        var reason = _packTraceReason ? TraceReasonOf(rid) : TraceReason.NoTrace;
        // Envoy hashes the request id's first 8 hex digits; without one, a random value.
        var value = (_sampleByRequestId ? RequestIdInteger(rid) : null) ?? (ulong)Random.Shared.NextInt64();
        if (reason == TraceReason.NoTrace)
        {
            if (headers.ContainsKey("x-client-trace-id") && Enabled(_client, (ulong)Random.Shared.NextInt64())) reason = TraceReason.Client;
            else if (headers.ContainsKey("x-envoy-force-trace")) reason = TraceReason.Forced;
            else if (Enabled(_random, value)) reason = TraceReason.Sampled;
        }
        if (reason != TraceReason.Forced && !Enabled(_overall, value)) reason = TraceReason.NoTrace;
        if (_packTraceReason && rid is not null && SetTraceReason(rid, reason) is { } tagged)
        {
            info.RequestId = tagged;
            headers["x-request-id"] = tagged;
        }

        var now = Span.NowUnixNano(_manager.Time);
        var kind = _model.Egress ? SpanKind.Client : SpanKind.Server;
        var name = _model.Egress ? "egress " + context.Request.Host.Value : "ingress";
        var span = _tracer.StartSpan(headers, name, kind, reason != TraceReason.NoTrace, now);
        if (span is null) return null;
        span.SetTag("node_id", _manager.Node.Id);
        span.SetTag("zone", _manager.Node.Locality.Zone);
        var upstream = _model.SpawnUpstreamSpan ? span.SpawnChild("router egress", now) : null;
        info.UpstreamSpan = upstream;
        _tracer.Inject(upstream ?? span, headers);
        return span;
    }

    /// <summary>Envoy's decorator handling once the route is known (<c>ActiveStream::traceRequest</c>): the route's
    /// <c>decorator.operation</c> names the span. Ingress: an internal caller's x-envoy-decorator-operation overrides
    /// it and is not passed on; otherwise the operation is returned in the response header when it propagates.
    /// Egress: a propagating operation is sent upstream in that header.</summary>
    public void OnRoute(Span span, Config.Model.RouteConfiguration.RouteModel route, HttpContext context, StreamInfo info)
    {
        var headers = context.Request.Headers;
        if (route.DecoratorOperation is { } op) span.Name = op;
        if (_model.Egress)
        {
            if (route.DecoratorOperation is { } egressOp && route.DecoratorPropagate) headers["x-envoy-decorator-operation"] = egressOp;
            return;
        }
        if (headers["x-envoy-decorator-operation"] is { Count: > 0 } requested)
        {
            if (requested.ToString() is { Length: > 0 } name) span.Name = name;
            headers.Remove("x-envoy-decorator-operation");
            return;
        }
        if (route.DecoratorOperation is { } ingressOp && route.DecoratorPropagate) info.ResponseDecoratorOperation = ingressOp;
    }

    /// <summary>Envoy's finalizeDownstreamSpan tags, then the span (and its upstream child) to the exporter.</summary>
    public void Finish(Span span, HttpContext context, StreamInfo info, string scheme)
    {
        var request = context.Request;
        var headers = request.Headers;
        if (info.RequestId is { Length: > 0 } rid) span.SetTag("guid:x-request-id", rid);
        span.SetTag("http.url", Url(scheme, request));
        span.SetTag("http.method", request.Method);
        span.SetTag("downstream_cluster", HeaderOrDash(headers, "x-envoy-downstream-service-cluster"));
        span.SetTag("user_agent", HeaderOrDash(headers, "user-agent"));
        span.SetTag("http.protocol", request.Protocol);
        if (context.Connection.RemoteIpAddress is { } peer)
            span.SetTag("peer.address", (peer.IsIPv4MappedToIPv6 ? peer.MapToIPv4() : peer).ToString());
        if (headers["x-client-trace-id"] is { Count: > 0 } ct) span.SetTag("guid:x-client-trace-id", ct.ToString());
        foreach (var tag in _model.CustomTags)
        {
            var v = tag.Literal ?? (headers[tag.RequestHeader!] is { Count: > 0 } hv ? hv.ToString() : tag.DefaultValue);
            if (v.Length > 0) span.SetTag(tag.Tag, v);
        }
        SetCommonTags(span, context, info);
        span.SetTag("request_size", info.BytesReceived.ToString(CultureInfo.InvariantCulture));
        span.SetTag("response_size", info.BytesSent.ToString(CultureInfo.InvariantCulture));
        var end = Span.NowUnixNano(_manager.Time);
        if (info.UpstreamSpan is { } upstream)
        {
            if (info.Cluster is { } c) upstream.Name = "router " + c.Name + " egress";
            upstream.SetTag("http.method", request.Method);
            upstream.SetTag("http.url", Url(scheme, request));
            upstream.SetTag("http.protocol", request.Protocol);
            SetCommonTags(upstream, context, info);
            _tracer.Finish(upstream, end);
        }
        _tracer.Finish(span, end);
    }

    /// <summary>Envoy's setCommonTags: component, status, flags, the upstream, and error on a 5xx.</summary>
    private static void SetCommonTags(Span span, HttpContext context, StreamInfo info)
    {
        span.SetTag("component", "proxy");
        var code = context.Response.StatusCode;
        span.SetTag("http.status_code", code.ToString(CultureInfo.InvariantCulture));
        span.SetTag("response_flags", StreamInfo.FormatResponseFlags(info.Flags));
        if (info.Cluster is { } cluster && info.UpstreamHost is { } host)
        {
            span.SetTag("upstream_cluster", cluster.Name);
            span.SetTag("upstream_cluster.name", cluster.Name);
            span.SetTag("upstream_address", host.Address.ToString());
        }
        if (code >= 500) span.SetTag("error", "true");
    }

    private string Url(string scheme, HttpRequest request)
    {
        var path = request.PathBase.Value + request.Path.Value + request.QueryString.Value;
        if (path.Length > _model.MaxPathTagLength) path = path[.._model.MaxPathTagLength];
        return scheme + "://" + request.Host.Value + path;
    }

    private static string HeaderOrDash(IHeaderDictionary headers, string name) => headers[name] is { Count: > 0 } v ? v.ToString() : "-";

    private static bool Enabled(uint numerator, ulong value) => value % 10000 < numerator;

    private enum TraceReason { NoTrace, Sampled, Client, Forced }

    /// <summary>Envoy packs the trace reason into the UUID's version digit (index 14): '9' sampled, 'a' forced,
    /// 'b' client, '4' none.</summary>
    private static TraceReason TraceReasonOf(string? rid)
    {
        if (rid is null || !IsUuid(rid)) return TraceReason.NoTrace;
        return rid[14] switch
        {
            '9' => TraceReason.Sampled,
            'a' => TraceReason.Forced,
            'b' => TraceReason.Client,
            _ => TraceReason.NoTrace,
        };
    }

    private static string? SetTraceReason(string rid, TraceReason reason)
    {
        if (!IsUuid(rid)) return null;
        var c = reason switch { TraceReason.Sampled => '9', TraceReason.Forced => 'a', TraceReason.Client => 'b', _ => '4' };
        if (rid[14] == c) return null;
        return string.Create(rid.Length, (rid, c), static (dst, s) =>
        {
            s.rid.AsSpan().CopyTo(dst);
            dst[14] = s.c;
        });
    }

    private static bool IsUuid(string s) => s.Length == 36 && s[8] == '-' && s[13] == '-' && s[18] == '-' && s[23] == '-';

    private static ulong? RequestIdInteger(string? rid) =>
        rid is { Length: >= 8 } && ulong.TryParse(rid.AsSpan(0, 8), NumberStyles.AllowHexSpecifier, CultureInfo.InvariantCulture, out var v) ? v : null;
}
