using System.IO.Pipelines;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.Features;

namespace CSharpEnvoy.DataPlane.Http.Filters;

/// <summary>
/// The response side of a filter that transforms the body (Envoy's <c>encodeHeaders</c> / <c>encodeData</c>), for one
/// request. It takes the place of the response body feature when its filter decodes, so whatever writes the response
/// (the router, a later filter's local reply, a direct response) writes through it. At the first byte of the body,
/// when the status and headers are final, <see cref="OnResponseStart"/> decides: either the body passes through
/// untouched, or the headers are adjusted and every write goes through a transforming stream, flushed per write as
/// Envoy's filters flush per data frame. Filters later in the chain wrap earlier ones, so the response meets them in
/// reverse order, as Envoy's encoder filters. The connection manager finishes all of them once the response is
/// written (<see cref="FinishAllAsync"/>): the transform writes its last bytes, or the stream is reset when the
/// response could not be finished.
/// </summary>
internal abstract class ResponseBodyFilter : IHttpResponseBodyFeature
{
    private readonly IHttpResponseBodyFeature _inner;
    private Stream? _transform;
    private Downstream? _downstream;
    private BodyStream? _stream;
    private PipeWriter? _writer;
    private bool _decided;
    private bool _finished;

    protected ResponseBodyFilter(HttpContext context)
    {
        Context = context;
        _inner = context.Features.Get<IHttpResponseBodyFeature>()!;
        context.Features.Set<IHttpResponseBodyFeature>(this);
    }

    protected HttpContext Context { get; }

    /// <summary>The body feature underneath: the next filter's, or the server's.</summary>
    public IHttpResponseBodyFeature Inner => _inner;

    /// <summary>The bytes the transform has written downstream so far.</summary>
    protected long BytesWrittenDownstream => _downstream?.Written ?? 0;

    /// <summary>Called once, before the body's first byte goes downstream. Returns a stream that writes the transformed
    /// body into <paramref name="downstream"/> (having adjusted the response headers), or null to pass the body
    /// through. Not called when nothing is written (a response without a body).</summary>
    protected abstract Stream? OnResponseStart(Stream downstream);

    /// <summary>Called once the transformed body is complete and written (not for a pass-through body).</summary>
    protected virtual void OnTransformFinished() { }

    /// <summary>Called instead of <see cref="OnResponseStart"/> for a response that ends without a body, before its
    /// headers go out (Envoy's <c>encodeHeaders</c> with end of stream).</summary>
    protected virtual void OnHeadersOnlyResponse() { }

    public Stream Stream => _stream ??= new BodyStream(this);

    public PipeWriter Writer => _writer ??= PipeWriter.Create(Stream, new StreamPipeWriterOptions(leaveOpen: true));

    public void DisableBuffering() => _inner.DisableBuffering();

    public Task StartAsync(CancellationToken cancellationToken = default)
    {
        if (!_decided && !_finished && !Context.Response.HasStarted && IsHeadersOnly(Context))
        {
            // HEAD, 204 and 304 have no body: Envoy's encodeHeaders with end of stream.
            _decided = true;
            OnHeadersOnlyResponse();
        }
        // Starting with no body yet: the headers are final, so decide now (a transformed body has no content-length).
        Decide();
        // A transform that still changes the headers when it finishes (a buffering one) sends them then.
        if (_transform is not null && DefersHeaders) return Task.CompletedTask;
        return _inner.StartAsync(cancellationToken);
    }

    /// <summary>Set by <see cref="OnResponseStart"/> when the chosen transform changes the headers at its end (it
    /// buffers the body): the response must not start before.</summary>
    protected bool DefersHeaders { get; set; }

    private static bool IsHeadersOnly(HttpContext context) =>
        HttpMethods.IsHead(context.Request.Method) || context.Response.StatusCode is StatusCodes.Status204NoContent or StatusCodes.Status304NotModified;

    public async Task SendFileAsync(string path, long offset, long? count, CancellationToken cancellationToken = default)
    {
        if (Target == _inner.Stream)
        {
            await _inner.SendFileAsync(path, offset, count, cancellationToken).ConfigureAwait(false);
            return;
        }
        await using var file = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite, 1, useAsync: true);
        file.Seek(offset, SeekOrigin.Begin);
        var buffer = new byte[16 * 1024];
        var left = count ?? long.MaxValue;
        while (left > 0)
        {
            var n = await file.ReadAsync(buffer.AsMemory(0, (int)Math.Min(buffer.Length, left)), cancellationToken).ConfigureAwait(false);
            if (n == 0) break;
            await Stream.WriteAsync(buffer.AsMemory(0, n), cancellationToken).ConfigureAwait(false);
            left -= n;
        }
    }

    public async Task CompleteAsync()
    {
        await FinishAsync().ConfigureAwait(false);
        await _inner.CompleteAsync().ConfigureAwait(false);
    }

    /// <summary>Finishes every body filter of the request, the outermost (the chain's last) first.</summary>
    public static async ValueTask FinishAllAsync(HttpContext context)
    {
        var feature = context.Features.Get<IHttpResponseBodyFeature>();
        while (feature is ResponseBodyFilter filter)
        {
            await filter.FinishAsync().ConfigureAwait(false);
            feature = filter._inner;
        }
    }

    /// <summary>Releases every body filter of a request whose handling failed, writing nothing more (the stream is
    /// reset first, so no transform can be left waiting on the client).</summary>
    public static async ValueTask AbandonAllAsync(HttpContext context)
    {
        var feature = context.Features.Get<IHttpResponseBodyFeature>();
        if (feature is ResponseBodyFilter) context.Abort();
        while (feature is ResponseBodyFilter filter)
        {
            if (!filter._finished)
            {
                filter._finished = true;
                filter._downstream?.Detach();
                if (filter._transform is { } transform)
                {
                    try { await transform.DisposeAsync().ConfigureAwait(false); }
                    catch (Exception) { /* nothing more goes downstream */ }
                }
            }
            feature = filter._inner;
        }
    }

    private async ValueTask FinishAsync()
    {
        if (_finished) return;
        try
        {
            // What a writer still holds goes through the transform first.
            if (_writer is not null) await _writer.CompleteAsync().ConfigureAwait(false);
            _finished = true;
            if (!_decided && !Context.Response.HasStarted)
            {
                _decided = true;
                OnHeadersOnlyResponse();
            }
            if (_transform is not { } transform) return;
            if (Context.RequestAborted.IsCancellationRequested)
            {
                // The stream was reset: release the transform without writing its end.
                _downstream!.Detach();
                await transform.DisposeAsync().ConfigureAwait(false);
                return;
            }
            await transform.DisposeAsync().ConfigureAwait(false);
            OnTransformFinished();
        }
        catch (Exception) when (!Context.RequestAborted.IsCancellationRequested)
        {
            // The transformed body could not be finished: a reset, never a response that looks complete but is not.
            _finished = true;
            _downstream?.Detach();
            Context.Abort();
        }
        catch (Exception)
        {
            _finished = true; // already reset
        }
    }

    /// <summary>Where writes go: the transform, or the body underneath.</summary>
    private Stream Target
    {
        get
        {
            if (!_decided) Decide();
            return _transform ?? _inner.Stream;
        }
    }

    private bool Transforming => _transform is not null;

    private void Decide()
    {
        if (_decided) return;
        _decided = true;
        if (_finished || Context.Response.HasStarted) return; // the headers are gone: nothing can change now
        _downstream = new Downstream(_inner.Stream);
        _transform = OnResponseStart(_downstream);
        if (_transform is null) _downstream = null;
    }

    /// <summary>The response body as the writers above see it.</summary>
    private sealed class BodyStream(ResponseBodyFilter owner) : WriteOnlyBodyStream
    {
        public override void Write(byte[] buffer, int offset, int count) => Write(buffer.AsSpan(offset, count));

        public override void Write(ReadOnlySpan<byte> buffer)
        {
            var target = owner.Target;
            target.Write(buffer);
            if (owner.Transforming) target.Flush();
        }

        public override Task WriteAsync(byte[] buffer, int offset, int count, CancellationToken ct) =>
            WriteAsync(buffer.AsMemory(offset, count), ct).AsTask();

        public override ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken ct = default)
        {
            var target = owner.Target;
            if (!owner.Transforming) return target.WriteAsync(buffer, ct);
            return WriteAndFlushAsync(target, buffer, ct);
        }

        private static async ValueTask WriteAndFlushAsync(Stream target, ReadOnlyMemory<byte> buffer, CancellationToken ct)
        {
            await target.WriteAsync(buffer, ct).ConfigureAwait(false);
            await target.FlushAsync(ct).ConfigureAwait(false);
        }

        public override void Flush() => owner.Target.Flush();

        public override Task FlushAsync(CancellationToken ct) => owner.Target.FlushAsync(ct);
    }

    /// <summary>What a transform writes into: the body underneath, counted, and cut off once the stream was reset.</summary>
    private sealed class Downstream(Stream inner) : WriteOnlyBodyStream
    {
        private bool _detached;

        public long Written { get; private set; }

        public void Detach() => _detached = true;

        public override void Write(byte[] buffer, int offset, int count) => Write(buffer.AsSpan(offset, count));

        public override void Write(ReadOnlySpan<byte> buffer)
        {
            if (_detached) return;
            Written += buffer.Length;
            inner.Write(buffer);
        }

        public override Task WriteAsync(byte[] buffer, int offset, int count, CancellationToken ct) =>
            WriteAsync(buffer.AsMemory(offset, count), ct).AsTask();

        public override ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken ct = default)
        {
            if (_detached) return ValueTask.CompletedTask;
            Written += buffer.Length;
            return inner.WriteAsync(buffer, ct);
        }

        public override void Flush()
        {
            if (!_detached) inner.Flush();
        }

        public override Task FlushAsync(CancellationToken ct) => _detached ? Task.CompletedTask : inner.FlushAsync(ct);
    }
}
