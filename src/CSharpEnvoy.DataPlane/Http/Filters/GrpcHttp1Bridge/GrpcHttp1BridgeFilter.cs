using System.Buffers.Binary;
using CSharpEnvoy.Config.Model.HttpFilters;
using CSharpEnvoy.DataPlane.Router;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.Features;

namespace CSharpEnvoy.DataPlane.Http.Filters.GrpcHttp1Bridge;

/// <summary>
/// Envoy's <c>envoy.filters.http.grpc_http1_bridge</c>: an HTTP/1.x client that cannot read trailers calls a unary gRPC
/// method. For an HTTP/1.x request with a gRPC content type the response is buffered to its end; then its
/// <c>grpc-status</c> and <c>grpc-message</c> trailers become response headers, a non-zero (or unreadable) status turns
/// the response into a 503, and the body gets a content-length. With <c>upgrade_protobuf_to_grpc</c>, an
/// <c>application/x-protobuf</c> request is sent as gRPC (its body framed, content type <c>application/grpc</c>) and the
/// response body loses its frame header; with <c>ignore_query_parameters</c> a bridged request goes without its query.
/// </summary>
internal sealed class GrpcHttp1BridgeFilter(GrpcHttp1BridgeModel model) : IHttpEncoderFilter
{
    public ValueTask<bool> DecodeHeadersAsync(HttpContext context, UpstreamRequest info, HttpConnectionManager hcm)
    {
        var request = context.Request;
        var framing = false;
        if (model.UpgradeProtobufToGrpc && request.ContentType == "application/x-protobuf")
        {
            framing = true;
            request.ContentType = "application/grpc";
            request.ContentLength = null;
            request.Body = new FramedRequestBody(request.Body);
            // Envoy clears the route cache: the route may match on the new content type.
            if (info.VirtualHost is { } vhost && info.Request is { } view) info.Route = vhost.Routes.Find(view);
        }
        if (HttpProtocol.IsHttp2(request.Protocol) || !LocalReply.IsGrpcContentType(request.ContentType)) return new ValueTask<bool>(true);
        if (model.IgnoreQueryParameters && info.Request is { } r)
        {
            r.Query = "";
            request.QueryString = QueryString.Empty;
        }
        var trailers = new CapturedTrailers();
        context.Features.Set<IHttpResponseTrailersFeature>(trailers);
        _ = new BridgedResponse(context, trailers, framing);
        return new ValueTask<bool>(true);
    }

    /// <summary>The response buffered whole, then sent with its gRPC status in the headers.</summary>
    private sealed class BridgedResponse(HttpContext context, CapturedTrailers trailers, bool framing) : ResponseBodyFilter(context)
    {
        private bool Framing => framing;

        protected override Stream? OnResponseStart(Stream downstream)
        {
            DefersHeaders = true; // the status and grpc-status come from the trailers, at the end
            return new Buffering(this, downstream);
        }

        /// <summary>Envoy's <c>encodeTrailers</c>: the status and message to headers, 503 unless the status is 0.</summary>
        private void ApplyTrailers(long length)
        {
            var response = Context.Response;
            var t = trailers.Trailers;
            if (t.TryGetValue("grpc-status", out var status))
            {
                if (!uint.TryParse(status.ToString(), System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var code) || code != 0)
                    response.StatusCode = StatusCodes.Status503ServiceUnavailable;
                response.Headers["grpc-status"] = status.ToString();
            }
            if (t.TryGetValue("grpc-message", out var message)) response.Headers["grpc-message"] = message.ToString();
            response.ContentLength = length;
        }

        private sealed class Buffering(BridgedResponse owner, Stream downstream) : InMemoryWriteStream
        {
            private readonly MemoryStream _buffer = new();
            private bool _tooLarge;

            public override void Write(ReadOnlySpan<byte> buffer)
            {
                // Envoy's buffer limit (1 MiB by default): a longer reply is not buffered but answered with a 500.
                if (_tooLarge || _buffer.Length + buffer.Length > MaxBuffered)
                {
                    _tooLarge = true;
                    return;
                }
                _buffer.Write(buffer);
            }

            public override async ValueTask DisposeAsync()
            {
                if (_tooLarge)
                {
                    var response = owner.Context.Response;
                    response.StatusCode = StatusCodes.Status500InternalServerError;
                    response.Headers.Remove("grpc-status");
                    response.ContentType = "text/plain";
                    var text = "Internal Server Error"u8.ToArray();
                    response.ContentLength = text.Length;
                    await downstream.WriteAsync(text).ConfigureAwait(false);
                    return;
                }
                var body = _buffer.GetBuffer().AsMemory(0, (int)_buffer.Length);
                // An upgraded protobuf request's response loses its gRPC frame header (Envoy drains 5 bytes).
                if (owner.Framing) body = body[Math.Min(5, body.Length)..];
                owner.ApplyTrailers(body.Length);
                if (body.Length > 0) await downstream.WriteAsync(body).ConfigureAwait(false);
                GC.SuppressFinalize(this);
            }
        }
    }

    /// <summary>Envoy's default buffer limit (per_connection_buffer_limit_bytes): what the bridge holds at most.</summary>
    private const int MaxBuffered = 1024 * 1024;

    /// <summary>A protobuf request body read as one gRPC message: the whole body, after its 5-byte frame header. A body
    /// over the buffer limit is a 413, as Envoy's.</summary>
    private sealed class FramedRequestBody(Stream inner) : ReadOnlyBodyStream
    {
        private byte[]? _framed;
        private int _position;

        public override int Read(byte[] buffer, int offset, int count) => ReadAsync(buffer.AsMemory(offset, count)).AsTask().GetAwaiter().GetResult();

        public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken ct) =>
            ReadAsync(buffer.AsMemory(offset, count), ct).AsTask();

        public override async ValueTask<int> ReadAsync(Memory<byte> destination, CancellationToken ct = default)
        {
            if (_framed is null)
            {
                using var body = new MemoryStream();
                body.Write(stackalloc byte[5]);
                var chunk = new byte[16 * 1024];
                int read;
                while ((read = await inner.ReadAsync(chunk, ct).ConfigureAwait(false)) > 0)
                {
                    if (body.Length - 5 + read > MaxBuffered) throw new BadRequestBodyException("Payload Too Large", "request_payload_too_large", 413);
                    body.Write(chunk, 0, read);
                }
                _framed = body.ToArray();
                _framed[0] = 0; // not compressed
                BinaryPrimitives.WriteUInt32BigEndian(_framed.AsSpan(1, 4), (uint)(_framed.Length - 5));
            }
            var n = Math.Min(destination.Length, _framed.Length - _position);
            _framed.AsSpan(_position, n).CopyTo(destination.Span);
            _position += n;
            return n;
        }
    }
}
