namespace CSharpEnvoy.Config.Model.Tracing;

internal enum TracerKind { Zipkin, OpenTelemetry }

/// <summary>A span tag from <c>custom_tags</c>: a literal, a request header or an environment variable (read once,
/// at load, as Envoy does).</summary>
internal sealed record CustomTagModel(string Tag, string? Literal, string? RequestHeader, string DefaultValue);

/// <summary><c>envoy.tracers.zipkin</c>: where spans go and how ids are shaped.</summary>
internal sealed record ZipkinModel(string CollectorCluster, string CollectorEndpoint, string CollectorHostname, bool TraceId128Bit,
    bool SharedSpanContext);

/// <summary><c>envoy.tracers.opentelemetry</c>: the OTLP/gRPC collector cluster and the resource's service.name.</summary>
internal sealed record OpenTelemetryModel(string? CollectorCluster, string ServiceName);

/// <summary>The connection manager's <c>tracing</c>: sampling percentages (0-100), span tags and the driver.</summary>
internal sealed record TracingModel
{
    public required TracerKind Kind { get; init; }
    public ZipkinModel? Zipkin { get; init; }
    public OpenTelemetryModel? OpenTelemetry { get; init; }
    public double ClientSampling { get; init; } = 100;
    public double RandomSampling { get; init; } = 100;
    public double OverallSampling { get; init; } = 100;
    public int MaxPathTagLength { get; init; } = 256;
    public IReadOnlyList<CustomTagModel> CustomTags { get; init; } = [];
    /// <summary>A CLIENT span per request for the upstream side (<c>spawn_upstream_span</c>, or the router's
    /// <c>start_child_span</c>), child of the downstream span; its context is what the backend sees.</summary>
    public bool SpawnUpstreamSpan { get; init; }
    /// <summary>EGRESS when the listener's traffic_direction is OUTBOUND (span name "egress &lt;host&gt;").</summary>
    public bool Egress { get; init; }
}
