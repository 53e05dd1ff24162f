using System.Threading.Channels;
using CSharpEnvoy.DataPlane.Stats;
using CSharpEnvoy.DataPlane.Upstream;
using Microsoft.Extensions.Logging;

namespace CSharpEnvoy.DataPlane.Tracing;

/// <summary>
/// Batches finished spans off the request path, as Envoy's tracers do: a request only writes its span into a bounded
/// queue (never waits; a full queue drops the span); a background loop reports a batch once
/// <see cref="MinFlushSpans"/> spans are waiting (Envoy's <c>min_flush_spans</c>, 5) or every
/// <see cref="FlushInterval"/> (<c>flush_interval_ms</c>, 5 s), and what is left when the server stops.
/// </summary>
internal abstract class SpanExporter : IAsyncDisposable
{
    public const int MinFlushSpans = 5;
    public static readonly TimeSpan FlushInterval = TimeSpan.FromSeconds(5);
    private const int QueueCapacity = 8192;

    private readonly Channel<Span> _queue;
    private readonly CancellationTokenSource _stop = new();
    private readonly Task _loop;
    private readonly Counter _spansSent;
    private readonly Counter _timerFlushed;

    protected SpanExporter(ClusterManager clusters, string clusterName, StatsStore stats, string statPrefix, ILogger logger)
    {
        Clusters = clusters;
        ClusterName = clusterName;
        Logger = logger;
        _spansSent = stats.Counter(statPrefix, "spans_sent");
        _timerFlushed = stats.Counter(statPrefix, "timer_flushed");
        _queue = Channel.CreateBounded<Span>(new BoundedChannelOptions(QueueCapacity)
        {
            FullMode = BoundedChannelFullMode.DropWrite, SingleReader = true, SingleWriter = false,
        });
        _loop = Task.Run(RunAsync);
    }

    protected ClusterManager Clusters { get; }
    protected string ClusterName { get; }
    protected ILogger Logger { get; }

    /// <summary>Queues a finished, sampled span; never blocks.</summary>
    public void Enqueue(Span span) => _queue.Writer.TryWrite(span);

    /// <summary>Sends one batch to the collector; failures are logged and counted, never thrown.</summary>
    protected abstract Task SendAsync(List<Span> batch, CancellationToken ct);

    private async Task RunAsync()
    {
        var reader = _queue.Reader;
        var batch = new List<Span>();
        Task<bool>? read = null;
        var timer = Task.Delay(FlushInterval, _stop.Token);
        try
        {
            while (true)
            {
                read ??= reader.WaitToReadAsync(_stop.Token).AsTask();
                var done = await Task.WhenAny(read, timer).ConfigureAwait(false);
                if (done == timer)
                {
                    if (timer.IsCanceled) break;
                    if (batch.Count > 0)
                    {
                        _timerFlushed.Inc();
                        await FlushAsync(batch).ConfigureAwait(false);
                    }
                    timer = Task.Delay(FlushInterval, _stop.Token);
                    continue;
                }
                if (!await read.ConfigureAwait(false)) break;
                read = null;
                while (reader.TryRead(out var span))
                {
                    batch.Add(span);
                    if (batch.Count >= MinFlushSpans) await FlushAsync(batch).ConfigureAwait(false);
                }
            }
        }
        catch (OperationCanceledException)
        {
        }
        // Stopping: what was queued still goes out, bounded by the caller's wait.
        while (reader.TryRead(out var span)) batch.Add(span);
        if (batch.Count > 0) await FlushAsync(batch).ConfigureAwait(false);
    }

    private async Task FlushAsync(List<Span> batch)
    {
        _spansSent.Add(batch.Count);
        try
        {
            using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(5));
            await SendAsync(batch, timeout.Token).ConfigureAwait(false);
        }
        catch (Exception ex) when (ex is HttpRequestException or OperationCanceledException or IOException or InvalidOperationException)
        {
            Logger.LogDebug("span report to cluster '{Cluster}' failed: {Error}", ClusterName, ex.Message);
            OnReportFailed(dropped: true);
        }
        batch.Clear();
    }

    /// <summary>A report that could not be sent (no host, connection failure: dropped) or was refused (failed).</summary>
    protected virtual void OnReportFailed(bool dropped)
    {
    }

    /// <summary>A host of the collector cluster, or null (the report is dropped) when it has none.</summary>
    protected Host? ChooseHost(out Cluster? cluster)
    {
        cluster = Clusters.Get(ClusterName);
        return cluster?.ChooseHost();
    }

    public async ValueTask DisposeAsync()
    {
        _queue.Writer.TryComplete();
        await _stop.CancelAsync().ConfigureAwait(false);
        try
        {
            await _loop.WaitAsync(TimeSpan.FromSeconds(5)).ConfigureAwait(false);
        }
        catch (TimeoutException)
        {
        }
        _stop.Dispose();
    }
}
