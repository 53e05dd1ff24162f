using System.Buffers.Binary;
using System.Globalization;
using System.Net.Http.Headers;
using CSharpEnvoy.Config.Model.Tracing;
using CSharpEnvoy.DataPlane.Stats;
using CSharpEnvoy.DataPlane.Upstream;
using Google.Protobuf;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Logging;
using OpenTelemetry.Proto.Collector.Trace.V1;
using OpenTelemetry.Proto.Common.V1;
using OtlpSpan = OpenTelemetry.Proto.Trace.V1.Span;

namespace CSharpEnvoy.DataPlane.Tracing;

/// <summary>
/// <c>envoy.tracers.opentelemetry</c>: W3C trace context (<c>traceparent</c>, <c>tracestate</c>) and OTLP/gRPC
/// export (<c>TraceService/Export</c>) to the <c>grpc_service</c> cluster, with <c>service.name</c> as the resource.
/// The proxy's span is always a new child of the caller's; the caller's sampled flag wins over the proxy's decision.
/// </summary>
internal sealed class OpenTelemetryTracer : Tracer
{
    public OpenTelemetryTracer(OpenTelemetryModel model, ClusterManager clusters, StatsStore stats, ILogger logger)
        : base(model.CollectorCluster is null ? null : new Exporter(model, clusters, stats, logger))
    {
    }

    public override Span? StartSpan(IHeaderDictionary headers, string name, SpanKind kind, bool traced, long startUnixNano)
    {
        if (TryParseTraceparent(headers["traceparent"].ToString(), out var high, out var low, out var parent, out var sampled))
        {
            var state = headers["tracestate"];
            return new Span
            {
                TraceIdHigh = high, TraceIdLow = low, TraceId128 = true, SpanId = Span.NewId(), ParentSpanId = parent, Sampled = sampled,
                TraceState = state.Count == 0 ? null : state.ToString(), Name = name, Kind = kind, StartUnixNano = startUnixNano,
            };
        }
        // No (valid) parent: a new root, as Envoy's driver does for a missing or malformed traceparent.
        return new Span
        {
            TraceIdHigh = Span.NewId(), TraceIdLow = Span.NewId(), TraceId128 = true, SpanId = Span.NewId(), Sampled = traced,
            Name = name, Kind = kind, StartUnixNano = startUnixNano,
        };
    }

    /// <summary>W3C trace-context: <c>version-traceid-parentid-flags</c>, lower-case hex, version not ff, ids not zero.</summary>
    internal static bool TryParseTraceparent(string value, out ulong high, out ulong low, out ulong parent, out bool sampled)
    {
        high = low = parent = 0;
        sampled = false;
        var v = value.AsSpan().Trim();
        if (v.Length < 55 || v[2] != '-' || v[35] != '-' || v[52] != '-') return false;
        if (v.Length > 55 && (v[..2] is "00" || v[55] != '-')) return false;
        if (v[..2] is "ff" || !IsLowerHex(v[..2]) || !IsLowerHex(v.Slice(3, 32)) || !IsLowerHex(v.Slice(36, 16)) || !IsLowerHex(v.Slice(53, 2))) return false;
        if (!Span.TryParseId(v.Slice(3, 32), out high, out low)) return false;
        if (!Span.TryParseId(v.Slice(36, 16), out _, out parent)) return false;
        sampled = (byte.Parse(v.Slice(53, 2), NumberStyles.AllowHexSpecifier, CultureInfo.InvariantCulture) & 1) != 0;
        return true;
    }

    private static bool IsLowerHex(ReadOnlySpan<char> s)
    {
        foreach (var c in s) if (!char.IsAsciiDigit(c) && c is not (>= 'a' and <= 'f')) return false;
        return true;
    }

    public override void Inject(Span span, IHeaderDictionary headers)
    {
        headers["traceparent"] = "00-" + span.TraceIdHex + "-" + Span.Hex(span.SpanId) + (span.Sampled ? "-01" : "-00");
        if (span.TraceState is { Length: > 0 } state) headers["tracestate"] = state;
    }

    /// <summary>OTLP/gRPC over the cluster's own HTTP/2 connections: one unary Export per batch.
    /// Stats: Envoy's <c>tracing.opentelemetry.{spans_sent,timer_flushed}</c>.</summary>
    private sealed class Exporter : SpanExporter
    {
        private const string ExportPath = "/opentelemetry.proto.collector.trace.v1.TraceService/Export";
        private static readonly MediaTypeHeaderValue s_grpc = new("application/grpc");
        private readonly OpenTelemetry.Proto.Resource.V1.Resource _resource;

        public Exporter(OpenTelemetryModel model, ClusterManager clusters, StatsStore stats, ILogger logger)
            : base(clusters, model.CollectorCluster!, stats, "tracing.opentelemetry.", logger)
        {
            _resource = new OpenTelemetry.Proto.Resource.V1.Resource();
            _resource.Attributes.Add(Attribute("service.name", model.ServiceName));
        }

        protected override async Task SendAsync(List<Span> batch, CancellationToken ct)
        {
            var host = ChooseHost(out var cluster);
            if (host is null || cluster is null) throw new InvalidOperationException($"cluster '{ClusterName}' has no host");
            var payload = Build(batch).ToByteArray();
            var framed = new byte[payload.Length + 5];
            BinaryPrimitives.WriteUInt32BigEndian(framed.AsSpan(1), (uint)payload.Length);
            payload.CopyTo(framed, 5);
            using var request = new HttpRequestMessage(HttpMethod.Post, host.DestinationPrefix + ExportPath)
            {
                Version = System.Net.HttpVersion.Version20,
                VersionPolicy = HttpVersionPolicy.RequestVersionExact,
                Content = new ByteArrayContent(framed),
            };
            request.Content.Headers.ContentType = s_grpc;
            request.Headers.TryAddWithoutValidation("te", "trailers");
            using var response = await cluster.Invoker.SendAsync(request, ct).ConfigureAwait(false);
            await response.Content.ReadAsByteArrayAsync(ct).ConfigureAwait(false);
            var status = response.TrailingHeaders.TryGetValues("grpc-status", out var t) ? t.FirstOrDefault()
                : response.Headers.TryGetValues("grpc-status", out var h) ? h.FirstOrDefault() : null;
            if (response.StatusCode != System.Net.HttpStatusCode.OK || status != "0")
                Logger.LogDebug("OTLP export to cluster '{Cluster}' failed: HTTP {Status}, grpc-status {GrpcStatus}", ClusterName, (int)response.StatusCode, status);
        }

        internal ExportTraceServiceRequest Build(List<Span> batch)
        {
            var scope = new OpenTelemetry.Proto.Trace.V1.ScopeSpans();
            foreach (var s in batch) scope.Spans.Add(ToOtlp(s));
            var resourceSpans = new OpenTelemetry.Proto.Trace.V1.ResourceSpans { Resource = _resource };
            resourceSpans.ScopeSpans.Add(scope);
            var request = new ExportTraceServiceRequest();
            request.ResourceSpans.Add(resourceSpans);
            return request;
        }

        private static OtlpSpan ToOtlp(Span s)
        {
            Span<byte> id = stackalloc byte[16];
            BinaryPrimitives.WriteUInt64BigEndian(id, s.TraceIdHigh);
            BinaryPrimitives.WriteUInt64BigEndian(id[8..], s.TraceIdLow);
            var span = new OtlpSpan
            {
                TraceId = ByteString.CopyFrom(id),
                SpanId = Id(s.SpanId),
                Name = s.Name,
                Kind = s.Kind == SpanKind.Server ? OtlpSpan.Types.SpanKind.Server : OtlpSpan.Types.SpanKind.Client,
                StartTimeUnixNano = (ulong)s.StartUnixNano,
                EndTimeUnixNano = (ulong)s.EndUnixNano,
                TraceState = s.TraceState ?? "",
                Flags = s.Sampled ? 1u : 0u,
            };
            if (s.ParentSpanId != 0) span.ParentSpanId = Id(s.ParentSpanId);
            foreach (var (k, v) in s.Tags) span.Attributes.Add(Attribute(k, v));
            // Envoy's OpenTelemetry span turns the error tag into the span status.
            if (s.GetTag("error") == "true") span.Status = new OpenTelemetry.Proto.Trace.V1.Status { Code = OpenTelemetry.Proto.Trace.V1.Status.Types.StatusCode.Error };
            return span;
        }

        private static ByteString Id(ulong id)
        {
            Span<byte> b = stackalloc byte[8];
            BinaryPrimitives.WriteUInt64BigEndian(b, id);
            return ByteString.CopyFrom(b);
        }

        private static KeyValue Attribute(string key, string value) => new() { Key = key, Value = new AnyValue { StringValue = value } };
    }
}
