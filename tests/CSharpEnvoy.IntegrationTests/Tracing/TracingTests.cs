using System.Text.Json;
using CSharpEnvoy.Config.Loading;
using CSharpEnvoy.IntegrationTests.HealthChecking;
using CSharpEnvoy.IntegrationTests.Infrastructure;
using Google.Protobuf;
using OtlpSpan = OpenTelemetry.Proto.Trace.V1.Span;

namespace CSharpEnvoy.IntegrationTests.Tracing;

/// <summary>HCM tracing with the Zipkin and OpenTelemetry drivers, against real receivers: spans reported with
/// Envoy's tags, and the proxy's span passed to the backend as its parent.</summary>
public sealed class TracingTests
{
    private static string OtelTracing(string extra = "") => $"""
        tracing:
          {extra}
          provider:
            name: envoy.tracers.opentelemetry
            typed_config:
              "@type": type.googleapis.com/envoy.config.trace.v3.OpenTelemetryConfig
              service_name: front-proxy
              grpc_service: {"{"} envoy_grpc: {"{"} cluster_name: otlp {"}"} {"}"}
        """;

    private static string ZipkinTracing(string extra = "", string zipkinExtra = "") => $"""
        tracing:
          {extra}
          provider:
            name: envoy.tracers.zipkin
            typed_config:
              "@type": type.googleapis.com/envoy.config.trace.v3.ZipkinConfig
              collector_cluster: zipkin
              collector_endpoint: /api/v2/spans
              collector_endpoint_version: HTTP_JSON
              {zipkinExtra}
        """;

    private static Task<ProxyHarness> StartProxyAsync(string tracing, TestBackend backend, string collectorCluster) =>
        ProxyHarness.StartAsync("node: { id: node-1, cluster: front, locality: { zone: z1 } }\n" +
            Yaml.Bootstrap(Yaml.RoutesToBackend, Yaml.Cluster("backend", backend.Address) + "\n" + collectorCluster, hcmExtra: tracing));

    private static async Task<List<HttpResponseMessage>> SendAsync(ProxyHarness proxy, int count, Action<HttpRequestMessage>? setup = null, string path = "/")
    {
        using var client = proxy.Client("main");
        var responses = new List<HttpResponseMessage>();
        for (var i = 0; i < count; i++)
        {
            var request = new HttpRequestMessage(HttpMethod.Get, path);
            setup?.Invoke(request);
            responses.Add(await client.SendAsync(request));
        }
        return responses;
    }

    private static string Echoed(HttpResponseMessage r, string header) =>
        r.Headers.TryGetValues("x-echo-req-" + header, out var v) ? string.Join(",", v) : "";

    private static string Attr(OtlpSpan s, string key) => s.Attributes.FirstOrDefault(a => a.Key == key)?.Value.StringValue ?? "<none>";

    private static string Hex(ByteString b) => Convert.ToHexStringLower(b.ToByteArray());

    [Fact]
    public async Task OpenTelemetry_ChildOfTraceparent_ExportedOverOtlp_BackendSeesProxySpanAsParent()
    {
        var (collector, received) = await OtlpTraceReceiver.StartAsync();
        await using var _ = collector;
        await using var backend = await TestBackend.StartEchoAsync();
        await using var proxy = await StartProxyAsync(OtelTracing(), backend, Yaml.Cluster("otlp", http2: true, collector.Address));
        const string traceId = "4bf92f3577b34da6a3ce929d0e0e4736";
        const string callerSpan = "00f067aa0ba902b7";

        // Envoy flushes once min_flush_spans (5) spans are waiting: no timer involved.
        var responses = await SendAsync(proxy, 5, r =>
        {
            r.Headers.Add("traceparent", $"00-{traceId}-{callerSpan}-01");
            r.Headers.Add("tracestate", "vendor=abc");
        });
        await HealthTestKit.WaitUntilAsync(() => Task.FromResult(received.Spans.Count >= 5), "5 exported spans");

        var spans = received.Spans.Select(s => s.Span).ToList();
        Assert.Equal(5, spans.Count);
        Assert.All(received.Spans, s => Assert.Equal("front-proxy", s.ServiceName));
        foreach (var r in responses)
        {
            Assert.Equal(200, (int)r.StatusCode);
            // The backend's parent is the proxy's span: same trace, the proxy's span id, sampled.
            var parts = Echoed(r, "traceparent").Split('-');
            Assert.Equal(["00", traceId, "01"], new[] { parts[0], parts[1], parts[3] });
            var span = Assert.Single(spans, s => Hex(s.SpanId) == parts[2]);
            Assert.Equal(traceId, Hex(span.TraceId));
            Assert.Equal(callerSpan, Hex(span.ParentSpanId));
            Assert.Equal("vendor=abc", Echoed(r, "tracestate"));
            Assert.Equal("vendor=abc", span.TraceState);
            Assert.Equal(OtlpSpan.Types.SpanKind.Server, span.Kind);
            Assert.Equal("ingress", span.Name);
            Assert.True(span.EndTimeUnixNano >= span.StartTimeUnixNano && span.StartTimeUnixNano > 0);
            Assert.Equal(Echoed(r, "x-request-id"), Attr(span, "guid:x-request-id"));
        }
        var s0 = spans[0];
        Assert.Equal("proxy", Attr(s0, "component"));
        Assert.Equal("node-1", Attr(s0, "node_id"));
        Assert.Equal("z1", Attr(s0, "zone"));
        Assert.Equal("backend", Attr(s0, "upstream_cluster"));
        Assert.Equal(backend.Address, Attr(s0, "upstream_address"));
        Assert.Equal("200", Attr(s0, "http.status_code"));
        Assert.Equal("-", Attr(s0, "response_flags"));
        Assert.Equal("GET", Attr(s0, "http.method"));
        Assert.Equal($"http://{proxy.ListenerAddress("main")}/", Attr(s0, "http.url"));
        Assert.Equal("HTTP/1.1", Attr(s0, "http.protocol"));
        Assert.Equal("<none>", Attr(s0, "error"));
        Assert.Equal(5, await proxy.StatAsync("tracing.opentelemetry.spans_sent"));
    }

    [Fact]
    public async Task OpenTelemetry_NoTraceparent_StartsARootTrace_AndMarksErrors()
    {
        var (collector, received) = await OtlpTraceReceiver.StartAsync();
        await using var _ = collector;
        await using var backend = await TestBackend.StartAsync(ctx =>
        {
            ctx.Response.StatusCode = 503;
            ctx.Response.Headers["x-seen-traceparent"] = ctx.Request.Headers["traceparent"].ToString();
            return Task.CompletedTask;
        });
        var proxy = await StartProxyAsync(OtelTracing(), backend, Yaml.Cluster("otlp", http2: true, collector.Address));

        var responses = await SendAsync(proxy, 2);
        // Stopping the server flushes what is queued.
        await proxy.DisposeAsync();

        var spans = received.Spans.Select(s => s.Span).ToList();
        Assert.Equal(2, spans.Count);
        Assert.NotEqual(Hex(spans[0].TraceId), Hex(spans[1].TraceId));
        foreach (var r in responses)
        {
            var parts = r.Headers.GetValues("x-seen-traceparent").Single().Split('-');
            var span = Assert.Single(spans, s => Hex(s.SpanId) == parts[2]);
            Assert.Equal(parts[1], Hex(span.TraceId));
            Assert.True(span.ParentSpanId.IsEmpty);
            Assert.Equal("503", Attr(span, "http.status_code"));
            Assert.Equal("true", Attr(span, "error"));
            Assert.Equal(OpenTelemetry.Proto.Trace.V1.Status.Types.StatusCode.Error, span.Status.Code);
        }
    }

    [Fact]
    public async Task OpenTelemetry_SpawnUpstreamSpan_BackendSeesTheClientSpan()
    {
        var (collector, received) = await OtlpTraceReceiver.StartAsync();
        await using var _ = collector;
        await using var backend = await TestBackend.StartEchoAsync();
        var proxy = await StartProxyAsync(OtelTracing("spawn_upstream_span: true"), backend, Yaml.Cluster("otlp", http2: true, collector.Address));

        var responses = await SendAsync(proxy, 1);
        await proxy.DisposeAsync();

        var spans = received.Spans.Select(s => s.Span).ToList();
        Assert.Equal(2, spans.Count);
        var server = Assert.Single(spans, s => s.Kind == OtlpSpan.Types.SpanKind.Server);
        var client = Assert.Single(spans, s => s.Kind == OtlpSpan.Types.SpanKind.Client);
        Assert.Equal("router backend egress", client.Name);
        Assert.Equal(server.SpanId, client.ParentSpanId);
        Assert.Equal(server.TraceId, client.TraceId);
        Assert.Equal(Hex(client.SpanId), Echoed(responses[0], "traceparent").Split('-')[2]);
        Assert.Equal("backend", Attr(client, "upstream_cluster"));
    }

    [Fact]
    public async Task Zipkin_NewTrace_ReportsV2Json_AndPropagatesB3()
    {
        var (collector, receiver) = await ZipkinReceiver.StartAsync();
        await using var _ = collector;
        await using var backend = await TestBackend.StartEchoAsync();
        await using var proxy = await StartProxyAsync(ZipkinTracing(), backend, Yaml.Cluster("zipkin", collector.Address));

        var responses = await SendAsync(proxy, 5, r => r.Headers.Add("x-client-trace-id", "client-1"));
        await HealthTestKit.WaitUntilAsync(() => Task.FromResult(receiver.Spans.Count >= 5), "5 reported spans");

        var spans = receiver.Spans.ToList();
        Assert.Equal(5, spans.Count);
        Assert.All(receiver.Hosts, h => Assert.Equal("zipkin", h));
        foreach (var r in responses)
        {
            var traceId = Echoed(r, "x-b3-traceid");
            var spanId = Echoed(r, "x-b3-spanid");
            Assert.Matches("^[0-9a-f]{16}$", traceId);
            Assert.Equal("1", Echoed(r, "x-b3-sampled"));
            Assert.Equal("", Echoed(r, "x-b3-parentspanid"));
            var span = Assert.Single(spans, s => s.GetProperty("id").GetString() == spanId);
            Assert.Equal(traceId, span.GetProperty("traceId").GetString());
            Assert.False(span.TryGetProperty("parentId", out JsonElement _));
            Assert.Equal("SERVER", span.GetProperty("kind").GetString());
            Assert.Equal("ingress", span.GetProperty("name").GetString());
            Assert.Equal("front", span.GetProperty("localEndpoint").GetProperty("serviceName").GetString());
            var tags = span.GetProperty("tags");
            Assert.Equal("proxy", tags.GetProperty("component").GetString());
            Assert.Equal("backend", tags.GetProperty("upstream_cluster").GetString());
            Assert.Equal("200", tags.GetProperty("http.status_code").GetString());
            Assert.Equal("node-1", tags.GetProperty("node_id").GetString());
            Assert.Equal("client-1", tags.GetProperty("guid:x-client-trace-id").GetString());
            Assert.Equal(Echoed(r, "x-request-id"), tags.GetProperty("guid:x-request-id").GetString());
            // Envoy packs the trace decision into the request id: 'b' is "traced because of x-client-trace-id".
            Assert.Equal('b', Echoed(r, "x-request-id")[14]);
        }
        Assert.Equal(5, await proxy.StatAsync("tracing.zipkin.spans_sent"));
        await HealthTestKit.WaitUntilAsync(async () => await proxy.StatAsync("tracing.zipkin.reports_sent") == 1, "reports_sent");
    }

    [Fact]
    public async Task Zipkin_IncomingB3_NotShared_ProxySpanIsChildOfCaller_128BitIds()
    {
        var (collector, receiver) = await ZipkinReceiver.StartAsync();
        await using var _ = collector;
        await using var backend = await TestBackend.StartEchoAsync();
        var proxy = await StartProxyAsync(ZipkinTracing(zipkinExtra: "shared_span_context: false"), backend, Yaml.Cluster("zipkin", collector.Address));
        const string traceId = "463ac35c9f6413ad48485a3953bb6124";
        const string callerSpan = "a2fb4a1d1a96d312";

        var responses = await SendAsync(proxy, 1, r =>
        {
            r.Headers.Add("x-b3-traceid", traceId);
            r.Headers.Add("x-b3-spanid", callerSpan);
            r.Headers.Add("x-b3-sampled", "1");
        });
        await proxy.DisposeAsync();

        var span = Assert.Single(receiver.Spans);
        Assert.Equal(traceId, span.GetProperty("traceId").GetString());
        Assert.Equal(callerSpan, span.GetProperty("parentId").GetString());
        var proxySpan = span.GetProperty("id").GetString();
        Assert.NotEqual(callerSpan, proxySpan);
        Assert.Equal(traceId, Echoed(responses[0], "x-b3-traceid"));
        Assert.Equal(proxySpan, Echoed(responses[0], "x-b3-spanid"));
        Assert.Equal(callerSpan, Echoed(responses[0], "x-b3-parentspanid"));
    }

    [Fact]
    public async Task Zipkin_IncomingB3_SharedSpanContext_ReusesTheCallersSpanId()
    {
        var (collector, receiver) = await ZipkinReceiver.StartAsync();
        await using var _ = collector;
        await using var backend = await TestBackend.StartEchoAsync();
        var proxy = await StartProxyAsync(ZipkinTracing(), backend, Yaml.Cluster("zipkin", collector.Address));

        var responses = await SendAsync(proxy, 1, r =>
        {
            r.Headers.Add("x-b3-traceid", "80f198ee56343ba8");
            r.Headers.Add("x-b3-sampled", "1");
            r.Headers.Add("x-b3-spanid", "e457b5a2e4d86bd1");
            r.Headers.Add("x-b3-parentspanid", "05e3ac9a4f6e3b90");
        });
        await proxy.DisposeAsync();

        var span = Assert.Single(receiver.Spans);
        Assert.Equal("e457b5a2e4d86bd1", span.GetProperty("id").GetString());
        Assert.Equal("05e3ac9a4f6e3b90", span.GetProperty("parentId").GetString());
        Assert.True(span.GetProperty("shared").GetBoolean());
        Assert.Equal("e457b5a2e4d86bd1", Echoed(responses[0], "x-b3-spanid"));
        // No x-client-trace-id, no force: sampled by random_sampling (100%).
        Assert.Equal('9', Echoed(responses[0], "x-request-id")[14]);
    }

    [Fact]
    public async Task UuidRequestIdExtension_WithoutPackTraceReason_LeavesTheRequestIdAlone()
    {
        var (collector, receiver) = await ZipkinReceiver.StartAsync();
        await using var _ = collector;
        await using var backend = await TestBackend.StartEchoAsync();
        var tracing = ZipkinTracing() + """

            request_id_extension:
              typed_config:
                "@type": type.googleapis.com/envoy.extensions.request_id.uuid.v3.UuidRequestIdConfig
                pack_trace_reason: false
            """;
        var proxy = await StartProxyAsync(tracing, backend, Yaml.Cluster("zipkin", collector.Address));
        const string id = "11111111-2222-4333-8444-555555555555";
        var responses = await SendAsync(proxy, 1, r => r.Headers.Add("x-request-id", id));
        await proxy.DisposeAsync();

        // Sampled (random_sampling 100%), but the id keeps its variant nibble: no trace reason packed into it.
        Assert.Equal(id, Echoed(responses[0], "x-request-id"));
        Assert.Single(receiver.Spans);

        // Another request id extension is refused with its path.
        var other = ProxyHarness.Validate(Yaml.Bootstrap(Yaml.RoutesToBackend, Yaml.Cluster("backend", "127.0.0.1:1"),
            hcmExtra: "request_id_extension: { typed_config: { \"@type\": type.googleapis.com/google.protobuf.Struct } }"));
        Assert.Contains(other.Errors, e => e.Path.EndsWith("request_id_extension.typed_config", StringComparison.Ordinal));
    }

    [Theory]
    [InlineData("random_sampling: { value: 0 }")]
    [InlineData("overall_sampling: { value: 0 }")]
    public async Task Sampling_Zero_ReportsNothing_ButStillPropagatesTheDecision(string sampling)
    {
        var (collector, receiver) = await ZipkinReceiver.StartAsync();
        await using var _ = collector;
        await using var backend = await TestBackend.StartEchoAsync();
        var proxy = await StartProxyAsync(ZipkinTracing(sampling), backend, Yaml.Cluster("zipkin", collector.Address));

        var responses = await SendAsync(proxy, 10);
        await proxy.DisposeAsync(); // flushes anything queued

        Assert.Empty(receiver.Spans);
        Assert.All(responses, r =>
        {
            Assert.Equal("0", Echoed(r, "x-b3-sampled"));
            Assert.Equal('4', Echoed(r, "x-request-id")[14]);
        });
    }

    [Fact]
    public async Task CustomTags_LiteralAndRequestHeader()
    {
        var (collector, received) = await OtlpTraceReceiver.StartAsync();
        await using var _ = collector;
        await using var backend = await TestBackend.StartEchoAsync();
        var proxy = await StartProxyAsync(OtelTracing("custom_tags: [{ tag: team, literal: { value: edge } }, { tag: tenant, request_header: { name: x-tenant, default_value: none } }]"),
            backend, Yaml.Cluster("otlp", http2: true, collector.Address));

        await SendAsync(proxy, 1, r => r.Headers.Add("x-tenant", "acme"));
        await SendAsync(proxy, 1);
        await proxy.DisposeAsync();

        var spans = received.Spans.Select(s => s.Span).ToList();
        Assert.Equal(2, spans.Count);
        Assert.All(spans, s => Assert.Equal("edge", Attr(s, "team")));
        Assert.Equal(["acme", "none"], spans.Select(s => Attr(s, "tenant")).Order().ToArray());
    }

    [Fact]
    public async Task Decorator_NamesTheSpan_AndIsReturnedInTheResponse()
    {
        var (collector, received) = await OtlpTraceReceiver.StartAsync();
        await using var _ = collector;
        await using var backend = await TestBackend.StartEchoAsync();
        const string routes = """
            - name: vh
              domains: ["*"]
              routes:
              - match: { prefix: "/quiet" }
                route: { cluster: backend }
                decorator: { operation: quiet-op, propagate: false }
              - match: { prefix: "/" }
                route: { cluster: backend }
                decorator: { operation: checkAvailability }
            """;
        var proxy = await ProxyHarness.StartAsync(Yaml.Bootstrap(routes, Yaml.Cluster("backend", backend.Address) + "\n" +
            Yaml.Cluster("otlp", http2: true, collector.Address), hcmExtra: OtelTracing()));

        var loud = (await SendAsync(proxy, 1))[0];
        var quiet = (await SendAsync(proxy, 1, path: "/quiet"))[0];
        await proxy.DisposeAsync();

        Assert.Equal(["checkAvailability", "quiet-op"], received.Spans.Select(s => s.Span.Name).Order().ToArray());
        Assert.Equal("checkAvailability", loud.Headers.GetValues("x-envoy-decorator-operation").Single());
        Assert.False(quiet.Headers.Contains("x-envoy-decorator-operation"));
        Assert.Equal("", Echoed(loud, "x-envoy-decorator-operation"));
    }

    [Theory]
    [InlineData("collector_cluster: nowhere", "envoy.tracers.zipkin: unknown cluster 'nowhere'")]
    [InlineData("collector_cluster: zipkin\ncollector_endpoint: /x\ncollector_endpoint_version: HTTP_PROTO", "collector_endpoint_version HTTP_PROTO is not supported")]
    [InlineData("collector_cluster: zipkin", "tracing.provider.typed_config.collector_endpoint")]
    public async Task Zipkin_InvalidConfig_IsRefusedWithItsPath(string fields, string expected)
    {
        var tracing = $$"""
            tracing:
              provider:
                name: envoy.tracers.zipkin
                typed_config:
                  "@type": type.googleapis.com/envoy.config.trace.v3.ZipkinConfig
            {{Yaml.Indent(fields, 6)}}
            """;
        var yaml = Yaml.Bootstrap(Yaml.RoutesToBackend, Yaml.Cluster("backend", "127.0.0.1:1") + "\n" + Yaml.Cluster("zipkin", "127.0.0.1:2"), hcmExtra: tracing);

        var ex = await Assert.ThrowsAsync<ConfigException>(() => ProxyHarness.StartAsync(yaml));

        Assert.Contains(expected, ex.Message);
    }
}
