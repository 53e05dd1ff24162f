using Microsoft.AspNetCore.Http;

namespace CSharpEnvoy.DataPlane.Tracing;

/// <summary>
/// A tracing driver (Envoy's <c>Tracing::Driver</c>): reads the caller's trace context from the request headers,
/// starts this proxy's span, writes the context the upstream must see, and hands finished sampled spans to its
/// exporter. One per distinct provider config, shared by the connection managers that use it.
/// </summary>
internal abstract class Tracer : IAsyncDisposable
{
    private readonly SpanExporter? _exporter;

    protected Tracer(SpanExporter? exporter) => _exporter = exporter;

    /// <summary>The span for a request; null when the caller's context is malformed and the driver refuses it
    /// (Envoy's null span: the request is then not traced).</summary>
    public abstract Span? StartSpan(IHeaderDictionary headers, string name, SpanKind kind, bool traced, long startUnixNano);

    /// <summary>Writes <paramref name="span"/>'s context into the headers sent upstream.</summary>
    public abstract void Inject(Span span, IHeaderDictionary headers);

    public void Finish(Span span, long endUnixNano)
    {
        span.EndUnixNano = endUnixNano;
        if (span.Sampled) _exporter?.Enqueue(span);
    }

    public ValueTask DisposeAsync() => _exporter?.DisposeAsync() ?? ValueTask.CompletedTask;
}
