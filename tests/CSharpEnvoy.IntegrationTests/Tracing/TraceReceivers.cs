using System.Collections.Concurrent;
using System.Text.Json;
using CSharpEnvoy.IntegrationTests.Infrastructure;
using Grpc.Core;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.Extensions.DependencyInjection;
using OpenTelemetry.Proto.Collector.Trace.V1;
using OtlpSpan = OpenTelemetry.Proto.Trace.V1.Span;

namespace CSharpEnvoy.IntegrationTests.Tracing;

/// <summary>What an OTLP receiver got: every span with its resource's service.name.</summary>
public sealed class OtlpSpans
{
    public ConcurrentQueue<(string ServiceName, OtlpSpan Span)> Spans { get; } = new();
    public int Exports;
}

/// <summary>A real OTLP/gRPC trace receiver (opentelemetry.proto.collector.trace.v1.TraceService).</summary>
public sealed class OtlpTraceReceiver(OtlpSpans sink) : TraceService.TraceServiceBase
{
    public override Task<ExportTraceServiceResponse> Export(ExportTraceServiceRequest request, ServerCallContext context)
    {
        Interlocked.Increment(ref sink.Exports);
        foreach (var rs in request.ResourceSpans)
        {
            var service = rs.Resource?.Attributes.FirstOrDefault(a => a.Key == "service.name")?.Value.StringValue ?? "";
            foreach (var ss in rs.ScopeSpans)
                foreach (var s in ss.Spans) sink.Spans.Enqueue((service, s));
        }
        return Task.FromResult(new ExportTraceServiceResponse());
    }

    public static async Task<(TestBackend Server, OtlpSpans Spans)> StartAsync()
    {
        var spans = new OtlpSpans();
        var server = await TestBackend.StartAppAsync(app => app.MapGrpcService<OtlpTraceReceiver>(), HttpProtocols.Http2, services =>
        {
            services.AddGrpc();
            services.AddSingleton(spans);
        });
        return (server, spans);
    }
}

/// <summary>A Zipkin collector: POST /api/v2/spans with a v2 JSON span list.</summary>
public sealed class ZipkinReceiver
{
    public ConcurrentQueue<JsonElement> Spans { get; } = new();
    public ConcurrentQueue<string> Hosts { get; } = new();

    public static async Task<(TestBackend Server, ZipkinReceiver Receiver)> StartAsync()
    {
        var receiver = new ZipkinReceiver();
        var server = await TestBackend.StartAsync(async ctx =>
        {
            if (ctx.Request.Path != "/api/v2/spans" || ctx.Request.Method != "POST" || ctx.Request.ContentType != "application/json")
            {
                ctx.Response.StatusCode = 400;
                return;
            }
            using var doc = await JsonDocument.ParseAsync(ctx.Request.Body);
            receiver.Hosts.Enqueue(ctx.Request.Host.Value ?? "");
            foreach (var span in doc.RootElement.EnumerateArray()) receiver.Spans.Enqueue(span.Clone());
            ctx.Response.StatusCode = 202;
        });
        return (server, receiver);
    }
}
