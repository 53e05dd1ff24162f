using System.Buffers.Binary;
using System.Text;
using CSharpEnvoy.DataPlane.Router;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.Features;

namespace CSharpEnvoy.DataPlane.Http.Filters.GrpcWeb;

/// <summary>
/// Envoy's <c>envoy.filters.http.grpc_web</c>: a gRPC-Web request (<c>application/grpc-web[-text][+proto]</c>) goes
/// upstream as gRPC (content type <c>application/grpc</c>, <c>te: trailers</c>, <c>grpc-accept-encoding</c>; a
/// <c>-text</c> body is base64-decoded), and its response comes back as gRPC-Web: content type
/// <c>application/grpc-web+proto</c> (or <c>-text+proto</c> when the request accepts it, each frame then
/// base64-encoded), no content-length, and the trailers as a final frame in the body (flag 0x80, <c>name:value\r\n</c>
/// lines). A response that is not gRPC (another status or content type) becomes headers only: its body, percent-encoded,
/// in <c>grpc-message</c> and its status mapped to <c>grpc-status</c>.
/// </summary>
internal sealed class GrpcWebFilter : IHttpEncoderFilter
{
    public static readonly GrpcWebFilter Instance = new();

    private const string GrpcWeb = "application/grpc-web";
    private const string GrpcWebProto = "application/grpc-web+proto";
    private const string GrpcWebText = "application/grpc-web-text";
    private const string GrpcWebTextProto = "application/grpc-web-text+proto";

    public ValueTask<bool> DecodeHeadersAsync(HttpContext context, UpstreamRequest info, HttpConnectionManager hcm)
    {
        var request = context.Request;
        var contentType = request.ContentType;
        if (contentType is not (GrpcWeb or GrpcWebProto or GrpcWebText or GrpcWebTextProto)) return new ValueTask<bool>(true);
        var headers = request.Headers;
        headers.ContentLength = null;
        if (contentType is GrpcWebText or GrpcWebTextProto) request.Body = new Base64RequestBody(request.Body);
        headers.ContentType = "application/grpc";
        var accept = headers.Accept.ToString();
        var textResponse = accept is GrpcWebText or GrpcWebTextProto;
        headers.TE = "trailers";
        if (!headers.ContainsKey("grpc-accept-encoding")) headers["grpc-accept-encoding"] = "identity,deflate,gzip";
        var trailers = new CapturedTrailers();
        context.Features.Set<IHttpResponseTrailersFeature>(trailers);
        _ = new GrpcWebResponse(context, trailers, textResponse);
        return new ValueTask<bool>(true);
    }

    private sealed class GrpcWebResponse(HttpContext context, CapturedTrailers trailers, bool text) : ResponseBodyFilter(context)
    {
        /// <summary>How much of a non-gRPC body becomes the grpc-message (Envoy's limit on buffered text).</summary>
        private const int MaxMessage = 16384;

        private bool Text => text;

        private CapturedTrailers Trailers => trailers;

        protected override Stream? OnResponseStart(Stream downstream)
        {
            var headers = Context.Response.Headers;
            var transform = !IsGrpc(Context.Response, endStream: false) && !IsGrpcWebProto(headers);
            Rewrite(headers);
            if (transform)
            {
                DefersHeaders = true; // grpc-status and grpc-message come from the body, at its end
                return new NotGrpc(this);
            }
            return new Framing(this, downstream);
        }

        protected override void OnHeadersOnlyResponse() => Rewrite(Context.Response.Headers);

        private void Rewrite(IHeaderDictionary headers)
        {
            headers.ContentLength = null;
            headers.ContentType = Text ? GrpcWebTextProto : GrpcWebProto;
        }

        private static bool IsGrpc(HttpResponse response, bool endStream)
        {
            if (endStream) return response.Headers.ContainsKey("grpc-status");
            if (response.StatusCode != StatusCodes.Status200OK) return false;
            return LocalReply.IsGrpcContentType(response.ContentType);
        }

        private bool IsGrpcWebProto(IHeaderDictionary headers)
        {
            if (Context.Response.StatusCode != StatusCodes.Status200OK) return false;
            var ct = headers.ContentType.ToString().AsSpan();
            var semicolon = ct.IndexOf(';');
            if (semicolon >= 0) ct = ct[..semicolon];
            ct = ct.TrimEnd();
            return ct.Equals(GrpcWebProto, StringComparison.OrdinalIgnoreCase) || ct.Equals(GrpcWeb, StringComparison.OrdinalIgnoreCase);
        }

        /// <summary>The trailers frame: flag 0x80, length, then <c>name:value\r\n</c> per trailer.</summary>
        private byte[] TrailerFrame()
        {
            var sb = new StringBuilder();
            foreach (var (name, values) in trailers.Trailers)
                foreach (var v in values) sb.Append(name.ToLowerInvariant()).Append(':').Append(v).Append("\r\n");
            var payload = Encoding.Latin1.GetBytes(sb.ToString());
            var frame = new byte[5 + payload.Length];
            frame[0] = 0x80;
            BinaryPrimitives.WriteUInt32BigEndian(frame.AsSpan(1), (uint)payload.Length);
            payload.CopyTo(frame, 5);
            return frame;
        }

        /// <summary>A gRPC body: passed on (binary) or frame by frame in base64 (text), the trailers frame at the end.</summary>
        private sealed class Framing(GrpcWebResponse owner, Stream downstream) : WriteOnlyBodyStream
        {
            private readonly MemoryStream? _pending = owner.Text ? new MemoryStream() : null;

            public override void Write(byte[] buffer, int offset, int count) => WriteAsync(buffer.AsMemory(offset, count)).AsTask().GetAwaiter().GetResult();

            public override Task WriteAsync(byte[] buffer, int offset, int count, CancellationToken ct) => WriteAsync(buffer.AsMemory(offset, count), ct).AsTask();

            public override ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken ct = default)
            {
                if (_pending is null) return downstream.WriteAsync(buffer, ct);
                _pending.Write(buffer.Span);
                return WriteFramesAsync(ct);
            }

            /// <summary>Each complete frame in the pending bytes, base64-encoded on its own (as Envoy encodes them).</summary>
            private async ValueTask WriteFramesAsync(CancellationToken ct)
            {
                var data = _pending!.GetBuffer();
                var length = (int)_pending.Length;
                var start = 0;
                StringBuilder? encoded = null;
                while (length - start >= 5)
                {
                    var frameLength = BinaryPrimitives.ReadUInt32BigEndian(data.AsSpan(start + 1, 4));
                    if (length - start - 5 < frameLength) break;
                    (encoded ??= new StringBuilder()).Append(Convert.ToBase64String(data, start, 5 + (int)frameLength));
                    start += 5 + (int)frameLength;
                }
                if (start > 0)
                {
                    var rest = length - start;
                    Buffer.BlockCopy(data, start, data, 0, rest);
                    _pending.SetLength(rest);
                }
                if (encoded is not null) await downstream.WriteAsync(Encoding.ASCII.GetBytes(encoded.ToString()), ct).ConfigureAwait(false);
            }

            public override void Flush() => downstream.Flush();

            public override Task FlushAsync(CancellationToken ct) => downstream.FlushAsync(ct);

            public override async ValueTask DisposeAsync()
            {
                if (_pending is { Length: > 0 } pending)
                    await downstream.WriteAsync(Encoding.ASCII.GetBytes(Convert.ToBase64String(pending.GetBuffer(), 0, (int)pending.Length))).ConfigureAwait(false);
                // Envoy adds the trailers frame when trailers come (a gRPC-Web upstream has already framed its own).
                if (owner.Trailers.Trailers.Count > 0)
                {
                    var frame = owner.TrailerFrame();
                    if (_pending is not null) await downstream.WriteAsync(Encoding.ASCII.GetBytes(Convert.ToBase64String(frame))).ConfigureAwait(false);
                    else await downstream.WriteAsync(frame).ConfigureAwait(false);
                }
                GC.SuppressFinalize(this);
            }
        }

        /// <summary>A body that is not gRPC: kept (up to the limit) to become grpc-message; nothing of it is sent.</summary>
        private sealed class NotGrpc(GrpcWebResponse owner) : InMemoryWriteStream
        {
            private readonly MemoryStream _body = new();

            public override void Write(ReadOnlySpan<byte> buffer)
            {
                var room = MaxMessage - (int)_body.Length;
                if (room > 0) _body.Write(buffer[..Math.Min(room, buffer.Length)]);
            }

            public override ValueTask DisposeAsync()
            {
                var response = owner.Context.Response;
                var headers = response.Headers;
                headers["grpc-message"] = LocalReply.EncodeGrpcMessage(Encoding.UTF8.GetString(_body.GetBuffer(), 0, (int)_body.Length));
                headers["grpc-status"] = LocalReply.HttpToGrpcStatus(response.StatusCode).ToString(System.Globalization.CultureInfo.InvariantCulture);
                headers.ContentLength = 0;
                GC.SuppressFinalize(this);
                return ValueTask.CompletedTask;
            }
        }
    }

    /// <summary>A <c>grpc-web-text</c> request body, base64-decoded in groups of four characters. Bad base64 fails the
    /// read; the router then answers 400 "Bad gRPC-web request, invalid base64 data." as Envoy does.</summary>
    private sealed class Base64RequestBody(Stream inner) : ReadOnlyBodyStream
    {
        private readonly byte[] _in = new byte[16 * 1024];
        private int _carry;
        private byte[] _out = [];
        private int _outStart, _outEnd;
        private bool _ended;

        public override int Read(byte[] buffer, int offset, int count) => ReadAsync(buffer.AsMemory(offset, count)).AsTask().GetAwaiter().GetResult();

        public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken ct) => ReadAsync(buffer.AsMemory(offset, count), ct).AsTask();

        public override async ValueTask<int> ReadAsync(Memory<byte> destination, CancellationToken ct = default)
        {
            while (_outStart == _outEnd)
            {
                if (_ended) return 0;
                var n = await inner.ReadAsync(_in.AsMemory(_carry), ct).ConfigureAwait(false);
                if (n == 0)
                {
                    _ended = true;
                    if (_carry != 0) throw new BadRequestBodyException("Bad gRPC-web request, invalid base64 data.", "grpc_base_64_decode_failed_bad_size");
                    return 0;
                }
                var available = _carry + n;
                var whole = available / 4 * 4;
                if (whole == 0)
                {
                    _carry = available;
                    continue;
                }
                if (_out.Length < whole) _out = new byte[whole];
                if (!Convert.TryFromBase64Chars(Encoding.ASCII.GetString(_in, 0, whole), _out, out var written))
                    throw new BadRequestBodyException("Bad gRPC-web request, invalid base64 data.", "grpc_base_64_decode_failed");
                _outStart = 0;
                _outEnd = written;
                _carry = available - whole;
                Buffer.BlockCopy(_in, whole, _in, 0, _carry);
            }
            var take = Math.Min(destination.Length, _outEnd - _outStart);
            _out.AsSpan(_outStart, take).CopyTo(destination.Span);
            _outStart += take;
            return take;
        }
    }
}
