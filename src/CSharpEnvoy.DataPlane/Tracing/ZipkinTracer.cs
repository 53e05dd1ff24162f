using System.Globalization;
using System.Net.Http.Headers;
using System.Text;
using CSharpEnvoy.Config.Model.Tracing;
using CSharpEnvoy.DataPlane.Stats;
using CSharpEnvoy.DataPlane.Upstream;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Logging;

namespace CSharpEnvoy.DataPlane.Tracing;

/// <summary>
/// <c>envoy.tracers.zipkin</c>: B3 multi-header propagation (<c>x-b3-traceid</c>, <c>x-b3-spanid</c>,
/// <c>x-b3-parentspanid</c>, <c>x-b3-sampled</c>) and Zipkin v2 JSON reports. As Envoy's tracer, an ingress span
/// shares the caller's span id when <c>shared_span_context</c> (default true); otherwise it is a new child.
/// </summary>
internal sealed class ZipkinTracer : Tracer
{
    private readonly ZipkinModel _model;

    public ZipkinTracer(ZipkinModel model, string localServiceName, ClusterManager clusters, StatsStore stats, ILogger logger)
        : base(new Exporter(model, localServiceName, clusters, stats, logger)) => _model = model;

    public override Span? StartSpan(IHeaderDictionary headers, string name, SpanKind kind, bool traced, long startUnixNano)
    {
        var traceIdHeader = headers["x-b3-traceid"];
        var spanIdHeader = headers["x-b3-spanid"];
        var sampled = SampledHeader(headers["x-b3-sampled"].ToString()) ?? traced;
        if (traceIdHeader.Count == 0 && spanIdHeader.Count == 0)
        {
            // A new trace.
            return new Span
            {
                TraceIdHigh = _model.TraceId128Bit ? Span.NewId() : 0, TraceIdLow = Span.NewId(), TraceId128 = _model.TraceId128Bit,
                SpanId = Span.NewId(), Sampled = sampled, Name = name, Kind = kind, StartUnixNano = startUnixNano,
            };
        }
        // Envoy's B3 extractor: both ids are required and must be hex; anything else leaves the request untraced.
        var traceIdText = traceIdHeader.ToString();
        if (!Span.TryParseId(traceIdText, out var high, out var low) || !Span.TryParseId(spanIdHeader.ToString(), out var h2, out var callerSpan) || h2 != 0)
            return null;
        ulong callerParent = 0;
        if (headers["x-b3-parentspanid"] is { Count: > 0 } p && (!Span.TryParseId(p.ToString(), out var ph, out callerParent) || ph != 0)) return null;
        var shared = kind == SpanKind.Server && _model.SharedSpanContext;
        return new Span
        {
            TraceIdHigh = high, TraceIdLow = low, TraceId128 = traceIdText.Length == 32,
            SpanId = shared ? callerSpan : Span.NewId(), ParentSpanId = shared ? callerParent : callerSpan, Shared = shared,
            Sampled = sampled, Name = name, Kind = kind, StartUnixNano = startUnixNano,
        };
    }

    /// <summary>x-b3-sampled: "1"/"true"/"d" (debug) sample, "0"/"false" do not; absent or other: the decision.</summary>
    private static bool? SampledHeader(string value) => value switch
    {
        "1" or "true" or "d" => true,
        "0" or "false" => false,
        _ => null,
    };

    public override void Inject(Span span, IHeaderDictionary headers)
    {
        headers["x-b3-traceid"] = span.TraceIdHex;
        headers["x-b3-spanid"] = Span.Hex(span.SpanId);
        if (span.ParentSpanId != 0) headers["x-b3-parentspanid"] = Span.Hex(span.ParentSpanId);
        else headers.Remove("x-b3-parentspanid");
        headers["x-b3-sampled"] = span.Sampled ? "1" : "0";
    }

    /// <summary>POSTs batches as Zipkin v2 JSON to <c>collector_endpoint</c> on a host of <c>collector_cluster</c>.
    /// Stats: Envoy's <c>tracing.zipkin.{spans_sent,timer_flushed,reports_sent,reports_dropped,reports_failed}</c>.</summary>
    private sealed class Exporter : SpanExporter
    {
        private static readonly MediaTypeHeaderValue s_json = new("application/json");
        private readonly ZipkinModel _model;
        private readonly string _serviceName;
        private readonly Counter _reportsSent;
        private readonly Counter _reportsDropped;
        private readonly Counter _reportsFailed;

        public Exporter(ZipkinModel model, string serviceName, ClusterManager clusters, StatsStore stats, ILogger logger)
            : base(clusters, model.CollectorCluster, stats, "tracing.zipkin.", logger)
        {
            _model = model;
            _serviceName = serviceName;
            _reportsSent = stats.Counter("tracing.zipkin.reports_sent");
            _reportsDropped = stats.Counter("tracing.zipkin.reports_dropped");
            _reportsFailed = stats.Counter("tracing.zipkin.reports_failed");
        }

        protected override async Task SendAsync(List<Span> batch, CancellationToken ct)
        {
            var host = ChooseHost(out var cluster);
            if (host is null || cluster is null)
            {
                _reportsDropped.Inc();
                return;
            }
            using var request = new HttpRequestMessage(HttpMethod.Post, host.DestinationPrefix + _model.CollectorEndpoint)
            {
                Content = new ByteArrayContent(Encoding.UTF8.GetBytes(Serialize(batch))),
            };
            request.Content.Headers.ContentType = s_json;
            request.Headers.Host = _model.CollectorHostname;
            if (cluster.Model.Protocol == Config.Model.Cluster.UpstreamProtocol.Http2)
            {
                request.Version = System.Net.HttpVersion.Version20;
                request.VersionPolicy = HttpVersionPolicy.RequestVersionExact;
            }
            using var response = await cluster.Invoker.SendAsync(request, ct).ConfigureAwait(false);
            if ((int)response.StatusCode is >= 200 and < 300) _reportsSent.Inc();
            else OnReportFailed(dropped: false);
        }

        protected override void OnReportFailed(bool dropped) => (dropped ? _reportsDropped : _reportsFailed).Inc();

        /// <summary>Zipkin's v2 span list: ids in hex, timestamp and duration in microseconds.</summary>
        internal string Serialize(List<Span> batch)
        {
            var sb = new StringBuilder(512 * batch.Count).Append('[');
            for (var i = 0; i < batch.Count; i++)
            {
                var s = batch[i];
                if (i > 0) sb.Append(',');
                sb.Append("{\"traceId\":\"").Append(s.TraceIdHex).Append('"');
                if (s.ParentSpanId != 0) sb.Append(",\"parentId\":\"").Append(Span.Hex(s.ParentSpanId)).Append('"');
                sb.Append(",\"id\":\"").Append(Span.Hex(s.SpanId)).Append('"');
                sb.Append(",\"kind\":\"").Append(s.Kind == SpanKind.Server ? "SERVER" : "CLIENT").Append('"');
                sb.Append(",\"name\":").Append(Json(s.Name));
                sb.Append(",\"timestamp\":").Append((s.StartUnixNano / 1000).ToString(CultureInfo.InvariantCulture));
                sb.Append(",\"duration\":").Append(Math.Max(1, (s.EndUnixNano - s.StartUnixNano) / 1000).ToString(CultureInfo.InvariantCulture));
                sb.Append(",\"localEndpoint\":{\"serviceName\":").Append(Json(_serviceName)).Append('}');
                if (s.Shared) sb.Append(",\"shared\":true");
                sb.Append(",\"tags\":{");
                for (var t = 0; t < s.Tags.Count; t++)
                {
                    if (t > 0) sb.Append(',');
                    sb.Append(Json(s.Tags[t].Key)).Append(':').Append(Json(s.Tags[t].Value));
                }
                sb.Append("}}");
            }
            return sb.Append(']').ToString();
        }

        private static string Json(string s) => "\"" + System.Text.Json.JsonEncodedText.Encode(s).ToString() + "\"";
    }
}
