using CSharpEnvoy.Config.Model.Bootstrap;
using CSharpEnvoy.Config.Model.Tracing;
using CSharpEnvoy.DataPlane.Stats;
using CSharpEnvoy.DataPlane.Upstream;
using Microsoft.Extensions.Logging;

namespace CSharpEnvoy.DataPlane.Tracing;

/// <summary>The server's tracers: one per distinct provider config (so connection managers with the same provider
/// share one exporter and its batches), all flushed when the server stops.</summary>
internal sealed class TracerManager : IAsyncDisposable
{
    private readonly ClusterManager _clusters;
    private readonly StatsStore _stats;
    private readonly ILogger _logger;
    private readonly Dictionary<object, Tracer> _tracers = new();
    private readonly object _lock = new();

    public TracerManager(NodeModel node, ClusterManager clusters, StatsStore stats, ILogger logger, TimeProvider time)
    {
        Node = node;
        _clusters = clusters;
        _stats = stats;
        _logger = logger;
        Time = time;
    }

    public NodeModel Node { get; }
    public TimeProvider Time { get; }

    /// <summary>The tracer for a provider config; created on first use (at config time, never per request).</summary>
    public Tracer Get(TracingModel model)
    {
        object key = (object?)model.Zipkin ?? model.OpenTelemetry!;
        lock (_lock)
        {
            if (_tracers.TryGetValue(key, out var t)) return t;
            t = model.Kind == TracerKind.Zipkin
                ? new ZipkinTracer(model.Zipkin!, Node.Cluster, _clusters, _stats, _logger)
                : new OpenTelemetryTracer(model.OpenTelemetry!, _clusters, _stats, _logger);
            _tracers[key] = t;
            return t;
        }
    }

    public async ValueTask DisposeAsync()
    {
        Tracer[] all;
        lock (_lock)
        {
            all = _tracers.Values.ToArray();
            _tracers.Clear();
        }
        foreach (var t in all) await t.DisposeAsync().ConfigureAwait(false);
    }
}
