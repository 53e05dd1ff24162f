using System.Diagnostics;
using System.IO.Pipelines;
using System.Text;
using CSharpEnvoy.Config.Model.AccessLog;
using CSharpEnvoy.DataPlane.Http;
using CSharpEnvoy.DataPlane.Router;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.Features;

namespace CSharpEnvoy.DataPlane.AccessLog;

/// <summary>One configured access log: its filter, its compiled format and its destination.</summary>
internal sealed class AccessLogger
{
    private readonly AccessLogFilter? _filter;
    private readonly AccessLogFormatter _formatter;
    private readonly AccessLogWriter _writer;

    /// <summary>The loggers of a connection manager, listener or TCP proxy; null when it has none (so its requests or
    /// connections pay nothing).</summary>
    public static AccessLogger[]? CreateAll(IReadOnlyList<AccessLogModel> models, AccessLogManager? manager)
    {
        if (models.Count == 0 || manager is null) return null;
        var loggers = new AccessLogger[models.Count];
        for (var i = 0; i < loggers.Length; i++) loggers[i] = new AccessLogger(models[i], manager);
        return loggers;
    }

    public AccessLogger(AccessLogModel model, AccessLogManager manager)
    {
        _filter = model.Filter is null ? null : AccessLogFilter.Create(model.Filter);
        _formatter = new AccessLogFormatter(model.Format);
        var path = model.Sink switch
        {
            AccessLogSink.Stdout => "/dev/stdout",
            AccessLogSink.Stderr => "/dev/stderr",
            _ => model.Path!,
        };
        try
        {
            _writer = manager.GetWriter(path);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            throw new Config.Loading.ConfigException(model.ConfigPath + ".typed_config.path", $"unable to open file '{path}': {ex.Message}");
        }
    }

    [ThreadStatic] private static StringBuilder? t_line;

    public void Log(in AccessLogContext c)
    {
        if (_filter is not null && !_filter.Evaluate(c)) return;
        var sb = t_line ??= new StringBuilder(512);
        sb.Clear();
        _formatter.Format(sb, c);
        _writer.Write(sb);
        if (sb.Capacity > 16 * 1024) t_line = null; // do not keep an unusually long line's buffer
    }

    /// <summary>Called when a request starts, with access logs configured: counts body bytes both ways and notes
    /// when the request body ends (%BYTES_RECEIVED%, %BYTES_SENT%, %REQUEST_DURATION%).</summary>
    public static void OnRequestStart(HttpContext context, StreamInfo info)
    {
        var request = context.Request;
        if (context.Features.Get<IHttpRequestBodyDetectionFeature>() is { CanHaveBody: false })
            info.RequestCompleteTimestamp = info.StartTimestamp;
        else request.Body = new CountingRequestBody(request.Body, info);
        if (context.Features.Get<IHttpResponseBodyFeature>() is { } body)
            context.Features.Set<IHttpResponseBodyFeature>(new CountingResponseBody(body, info));
    }

    /// <summary>Called once the request is over: one line per logger.</summary>
    public static void OnRequestEnd(AccessLogger[] loggers, HttpContext context, UpstreamRequest info)
    {
        var c = new AccessLogContext(context, info, Stopwatch.GetTimestamp(), DateTime.UtcNow);
        foreach (var l in loggers) l.Log(c);
    }
}

/// <summary>The downstream request body, counted as it is read; its end is timed.</summary>
internal sealed class CountingRequestBody(Stream inner, StreamInfo info) : ReadOnlyBodyStream
{
    private void Count(int n)
    {
        if (n > 0) info.BytesReceived += n;
        else if (info.RequestCompleteTimestamp == 0) info.RequestCompleteTimestamp = Stopwatch.GetTimestamp();
    }

    public override int Read(byte[] buffer, int offset, int count)
    {
        var n = inner.Read(buffer, offset, count);
        Count(n);
        return n;
    }

    public override int Read(Span<byte> buffer)
    {
        var n = inner.Read(buffer);
        Count(n);
        return n;
    }

    public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken ct) =>
        ReadAsync(buffer.AsMemory(offset, count), ct).AsTask();

    public override ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken ct = default)
    {
        var t = inner.ReadAsync(buffer, ct);
        if (t.IsCompletedSuccessfully)
        {
            var n = t.Result;
            Count(n);
            return new ValueTask<int>(n);
        }
        return Await(t);
    }

    private async ValueTask<int> Await(ValueTask<int> t)
    {
        var n = await t.ConfigureAwait(false);
        Count(n);
        return n;
    }

}

/// <summary>Kestrel's response body feature with the bytes written through it (stream or pipe) counted.</summary>
internal sealed class CountingResponseBody(IHttpResponseBodyFeature inner, StreamInfo info) : IHttpResponseBodyFeature
{
    private CountingWriteStream? _stream;
    private CountingPipeWriter? _writer;

    public Stream Stream => _stream ??= new CountingWriteStream(inner.Stream, info);
    public PipeWriter Writer => _writer ??= new CountingPipeWriter(inner.Writer, info);
    public void DisableBuffering() => inner.DisableBuffering();
    public Task StartAsync(CancellationToken cancellationToken = default) => inner.StartAsync(cancellationToken);
    public Task CompleteAsync() => inner.CompleteAsync();

    public Task SendFileAsync(string path, long offset, long? count, CancellationToken cancellationToken = default)
    {
        info.BytesSent += count ?? Math.Max(0, new FileInfo(path).Length - offset);
        return inner.SendFileAsync(path, offset, count, cancellationToken);
    }

    private sealed class CountingWriteStream(Stream inner, StreamInfo info) : WriteOnlyBodyStream
    {
        public override void Write(byte[] buffer, int offset, int count)
        {
            inner.Write(buffer, offset, count);
            info.BytesSent += count;
        }

        public override void Write(ReadOnlySpan<byte> buffer)
        {
            inner.Write(buffer);
            info.BytesSent += buffer.Length;
        }

        public override Task WriteAsync(byte[] buffer, int offset, int count, CancellationToken ct) =>
            WriteAsync(buffer.AsMemory(offset, count), ct).AsTask();

        public override ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken ct = default)
        {
            info.BytesSent += buffer.Length;
            return inner.WriteAsync(buffer, ct);
        }

        public override void Flush() => inner.Flush();
        public override Task FlushAsync(CancellationToken ct) => inner.FlushAsync(ct);
    }

    private sealed class CountingPipeWriter(PipeWriter inner, StreamInfo info) : PipeWriter
    {
        public override void Advance(int bytes)
        {
            info.BytesSent += bytes;
            inner.Advance(bytes);
        }

        public override Memory<byte> GetMemory(int sizeHint = 0) => inner.GetMemory(sizeHint);
        public override Span<byte> GetSpan(int sizeHint = 0) => inner.GetSpan(sizeHint);
        public override void CancelPendingFlush() => inner.CancelPendingFlush();
        public override void Complete(Exception? exception = null) => inner.Complete(exception);
        public override ValueTask CompleteAsync(Exception? exception = null) => inner.CompleteAsync(exception);
        public override ValueTask<FlushResult> FlushAsync(CancellationToken cancellationToken = default) => inner.FlushAsync(cancellationToken);
        public override bool CanGetUnflushedBytes => inner.CanGetUnflushedBytes;
        public override long UnflushedBytes => inner.UnflushedBytes;

        public override ValueTask<FlushResult> WriteAsync(ReadOnlyMemory<byte> source, CancellationToken cancellationToken = default)
        {
            info.BytesSent += source.Length;
            return inner.WriteAsync(source, cancellationToken);
        }
    }
}
