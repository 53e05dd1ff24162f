using System.Buffers;
using System.Diagnostics;
using System.Net.Sockets;
using System.Text;
using CSharpEnvoy.DataPlane.Router;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.Features;
using Yarp.ReverseProxy.Forwarder;

namespace CSharpEnvoy.DataPlane.Upstream.Http1;

/// <summary>
/// Forwards one request attempt over csenvoy's own HTTP/1.1 codec: the request head is written from the downstream
/// request's headers straight into the connection's buffer, the response head is parsed straight into the downstream
/// response's headers, and bodies are copied between the two. No <c>HttpRequestMessage</c>, <c>HttpResponseMessage</c>,
/// header collections or <c>Uri</c> per request (what YARP over SocketsHttpHandler builds), and no read-ahead system
/// call on the pooled connection.
/// </summary>
/// <remarks>
/// It keeps the contract of YARP's <see cref="IHttpForwarder.SendAsync(HttpContext, string, HttpMessageInvoker, ForwarderRequestConfig, HttpTransformer, CancellationToken)"/>
/// that the router relies on: the same <see cref="ForwarderError"/> values for the same failures, the exception in
/// <see cref="IForwarderErrorFeature"/>, the same headers dropped both ways, and the router's hooks for the pending
/// state, retries on response headers and Envoy's response headers. Upgrades (WebSocket), CONNECT and
/// <c>Expect: 100-continue</c> requests take the YARP path (<see cref="CanForward"/>).
/// </remarks>
internal static class Http1Forwarder
{
    public static readonly bool Enabled = Environment.GetEnvironmentVariable("CSENVOY_UPSTREAM_HTTP1_CODEC") != "0";

    private static readonly byte[] s_lastChunk = "0\r\n\r\n"u8.ToArray();

    /// <summary>Whether this request can go over the codec (the cluster speaks plain-text HTTP/1.1).</summary>
    public static bool CanForward(HttpRequest request)
    {
        if (HttpMethods.IsConnect(request.Method)) return false;
        var headers = request.Headers;
        return headers.Upgrade.Count == 0 && headers.Expect.Count == 0;
    }

    [System.Runtime.CompilerServices.AsyncMethodBuilder(typeof(System.Runtime.CompilerServices.PoolingAsyncValueTaskMethodBuilder<>))]
    public static async ValueTask<ForwarderError> SendAsync(HttpContext context, Cluster cluster, Host host, UpstreamRequest info, TimeSpan idle, CancellationToken ct)
    {
        var pool = cluster.Http1PoolFor(host);
        var request = context.Request;
        var hasBody = context.Features.Get<IHttpRequestBodyDetectionFeature>()?.CanHaveBody ?? false;
        var headRequest = HttpMethods.IsHead(request.Method);
        var aborted = context.RequestAborted;
        var fresh = false;
        while (true)
        {
            Http1Connection? c = null;
            var reusable = false;
            var receivedAny = false;
            CancellationTokenRegistration onCancel = default, onAbort = default;
            try
            {
                c = await pool.AcquireAsync(fresh, ct).ConfigureAwait(false);
                c.BeginExchange(idle);
                // A timeout or a departed client stops the exchange by closing the connection under it.
                onCancel = ct.UnsafeRegister(static s => ((Http1Connection)s!).Close(), c);
                onAbort = aborted.UnsafeRegister(static s => ((Http1Connection)s!).Close(), c);
                info.UpstreamLocalAddress = c.LocalAddress;
                info.UpstreamStartTimestamp = Stopwatch.GetTimestamp();

                var length = WriteHead(c, request, info, hasBody, out var chunked);
                var sendBody = hasBody || request.ContentLength > 0;
                await SendAllAsync(c, c.SendBuffer.AsMemory(0, length)).ConfigureAwait(false);
                if (sendBody)
                {
                    c.Stage = Http1Stage.ReadRequestBody;
                    await SendBodyAsync(c, request.Body, chunked, ct).ConfigureAwait(false);
                }

                c.Stage = Http1Stage.ReceiveHead;
                var head = c.Head;
                c.ReceiveStart = c.ReceiveEnd = 0;
                while (true)
                {
                    var taken = Http1Codec.TryParseHead(c.ReceiveBuffer.AsSpan(c.ReceiveStart, c.ReceiveEnd - c.ReceiveStart), headRequest, head, c.Strings);
                    if (taken > 0)
                    {
                        c.ReceiveStart += taken;
                        if (head.Status >= 200) break;
                        continue; // an interim response: the final one follows
                    }
                    if (c.ReceiveEnd - c.ReceiveStart >= Http1Connection.MaxHeadSize) throw new Http1ProtocolException("response headers too large");
                    MakeRoom(c);
                    var n = await c.ReceiveAsync(c.ReceiveBuffer.AsMemory(c.ReceiveEnd)).ConfigureAwait(false);
                    if (n == 0) throw new HttpIOException(HttpRequestError.ResponseEnded, "the upstream closed the connection before the response headers");
                    c.LastActivity = Stopwatch.GetTimestamp();
                    c.ReceiveEnd += n;
                    receivedAny = true;
                }
                receivedAny = true;

                if (info.RetryOnResponse(head.Status, head))
                {
                    // Dropped for a retry: the connection stays only when the whole body is already here.
                    reusable = head.KeepAlive && (head.Framing == BodyFraming.None
                        || (head.Framing == BodyFraming.ContentLength && c.ReceiveEnd - c.ReceiveStart == head.ContentLength));
                    return ForwarderError.None;
                }

                var response = context.Response;
                response.StatusCode = head.Status;
                var headers = response.Headers;
                var dropLength = head.Framing is BodyFraming.Chunked or BodyFraming.UntilClose;
                for (var i = 0; i < head.Count; i++)
                {
                    var name = head.Names[i];
                    if (Http1Codec.HopByHop.Contains(name)) continue;
                    if (dropLength && name.Length == 14 && name.Equals("content-length", StringComparison.OrdinalIgnoreCase)) continue;
                    // Not IHeaderDictionary.Append: it drops empty values, which a response may carry.
                    var value = head.Values[i];
                    headers[name] = headers.TryGetValue(name, out var existing) ? Microsoft.Extensions.Primitives.StringValues.Concat(existing, value) : value;
                }
                info.ApplyResponse(context, head.Status);

                c.Stage = Http1Stage.ReceiveBody;
                reusable = head.Framing switch
                {
                    BodyFraming.None => c.ReceiveEnd == c.ReceiveStart,
                    BodyFraming.ContentLength => await CopyFixedAsync(c, response, head.ContentLength, ct).ConfigureAwait(false),
                    BodyFraming.Chunked => await CopyChunkedAsync(c, response, ct).ConfigureAwait(false),
                    _ => await CopyUntilCloseAsync(c, response, ct).ConfigureAwait(false),
                } && head.KeepAlive;
                return ForwarderError.None;
            }
            catch (Exception e)
            {
                reusable = false;
                var idleFired = c?.IdleTimedOut == true;
                var stage = c?.Stage ?? Http1Stage.Connect;
                // A connection the upstream closed while it sat idle fails on first use: once, a request without a body
                // is sent again on a new connection (SocketsHttpHandler does the same).
                if (!fresh && c is { Reused: true } && !receivedAny && !hasBody && stage is Http1Stage.SendHead or Http1Stage.ReceiveHead
                    && !idleFired && !ct.IsCancellationRequested && !aborted.IsCancellationRequested && e is SocketException or HttpIOException or IOException)
                {
                    fresh = true;
                    continue;
                }
                var error = Classify(stage, e, idleFired, ct, aborted);
                context.Features.Set<IForwarderErrorFeature>(new ForwarderFailure(error, e));
                return error;
            }
            finally
            {
                onCancel.Dispose();
                onAbort.Dispose();
                if (c is not null)
                {
                    // A callback that ran (timeout, abort) closed the connection; Release then finds it closed.
                    if (reusable) pool.Release(c, true);
                    else c.Close();
                }
            }
        }
    }

    private static ForwarderError Classify(Http1Stage stage, Exception e, bool idleFired, CancellationToken ct, CancellationToken aborted)
    {
        var receiving = stage is Http1Stage.ReceiveBody or Http1Stage.WriteResponseBody;
        if (idleFired) return ForwarderError.RequestTimedOut;
        if (aborted.IsCancellationRequested)
            return stage switch
            {
                Http1Stage.ReadRequestBody or Http1Stage.SendBody => ForwarderError.RequestBodyCanceled,
                _ when receiving => ForwarderError.ResponseBodyClient,
                _ => ForwarderError.RequestCanceled,
            };
        if (ct.IsCancellationRequested) return receiving ? ForwarderError.ResponseBodyCanceled : ForwarderError.RequestCanceled;
        return stage switch
        {
            Http1Stage.ReadRequestBody => ForwarderError.RequestBodyClient,
            Http1Stage.SendBody => ForwarderError.RequestBodyDestination,
            Http1Stage.ReceiveBody => ForwarderError.ResponseBodyDestination,
            Http1Stage.WriteResponseBody => ForwarderError.ResponseBodyClient,
            _ => ForwarderError.Request,
        };
    }

    private static async ValueTask SendAllAsync(Http1Connection c, ReadOnlyMemory<byte> data)
    {
        while (data.Length > 0)
        {
            var n = await c.SendAsync(data).ConfigureAwait(false);
            data = data[n..];
            c.LastActivity = Stopwatch.GetTimestamp();
        }
    }

    /// <summary>Compacts the receive buffer, or doubles it when it is full of one unfinished head.</summary>
    private static void MakeRoom(Http1Connection c)
    {
        if (c.ReceiveEnd < c.ReceiveBuffer.Length) return;
        var pending = c.ReceiveEnd - c.ReceiveStart;
        if (c.ReceiveStart > 0)
        {
            c.ReceiveBuffer.AsSpan(c.ReceiveStart, pending).CopyTo(c.ReceiveBuffer);
        }
        else
        {
            var bigger = new byte[c.ReceiveBuffer.Length * 2];
            c.ReceiveBuffer.AsSpan(0, pending).CopyTo(bigger);
            c.ReceiveBuffer = bigger;
        }
        c.ReceiveStart = 0;
        c.ReceiveEnd = pending;
    }

    /// <summary>Fills the receive buffer after its unconsumed bytes; 0 at the end of the stream.</summary>
    private static async ValueTask<int> ReceiveAsync(Http1Connection c)
    {
        if (c.ReceiveStart == c.ReceiveEnd) c.ReceiveStart = c.ReceiveEnd = 0;
        else MakeRoom(c);
        var n = await c.ReceiveAsync(c.ReceiveBuffer.AsMemory(c.ReceiveEnd)).ConfigureAwait(false);
        c.LastActivity = Stopwatch.GetTimestamp();
        c.ReceiveEnd += n;
        return n;
    }

    private static async ValueTask<bool> CopyFixedAsync(Http1Connection c, HttpResponse response, long length, CancellationToken ct)
    {
        var body = response.Body;
        while (length > 0)
        {
            if (c.ReceiveStart == c.ReceiveEnd)
            {
                c.Stage = Http1Stage.ReceiveBody;
                if (await ReceiveAsync(c).ConfigureAwait(false) == 0)
                    throw new HttpIOException(HttpRequestError.ResponseEnded, "the upstream closed the connection before the end of the response body");
            }
            var take = (int)Math.Min(length, c.ReceiveEnd - c.ReceiveStart);
            c.Stage = Http1Stage.WriteResponseBody;
            await body.WriteAsync(c.ReceiveBuffer.AsMemory(c.ReceiveStart, take), ct).ConfigureAwait(false);
            c.LastActivity = Stopwatch.GetTimestamp(); // a slow client is activity too, as long as it reads
            c.ReceiveStart += take;
            length -= take;
        }
        // Bytes beyond the body: the upstream sent something the codec did not ask for.
        return c.ReceiveStart == c.ReceiveEnd;
    }

    private static async ValueTask<bool> CopyUntilCloseAsync(Http1Connection c, HttpResponse response, CancellationToken ct)
    {
        var body = response.Body;
        while (true)
        {
            if (c.ReceiveStart < c.ReceiveEnd)
            {
                c.Stage = Http1Stage.WriteResponseBody;
                await body.WriteAsync(c.ReceiveBuffer.AsMemory(c.ReceiveStart, c.ReceiveEnd - c.ReceiveStart), ct).ConfigureAwait(false);
                c.ReceiveStart = c.ReceiveEnd;
            }
            c.Stage = Http1Stage.ReceiveBody;
            if (await ReceiveAsync(c).ConfigureAwait(false) == 0) return false;
        }
    }

    private static async ValueTask<bool> CopyChunkedAsync(Http1Connection c, HttpResponse response, CancellationToken ct)
    {
        var body = response.Body;
        while (true)
        {
            c.Stage = Http1Stage.ReceiveBody;
            long size;
            int taken;
            while ((taken = Http1Codec.TryParseChunkSize(c.ReceiveBuffer.AsSpan(c.ReceiveStart, c.ReceiveEnd - c.ReceiveStart), out size)) == 0)
                await ReceiveMoreAsync(c).ConfigureAwait(false);
            c.ReceiveStart += taken;
            if (size == 0) break;
            while (size > 0)
            {
                if (c.ReceiveStart == c.ReceiveEnd) await ReceiveMoreAsync(c).ConfigureAwait(false);
                var take = (int)Math.Min(size, c.ReceiveEnd - c.ReceiveStart);
                c.Stage = Http1Stage.WriteResponseBody;
                await body.WriteAsync(c.ReceiveBuffer.AsMemory(c.ReceiveStart, take), ct).ConfigureAwait(false);
                c.Stage = Http1Stage.ReceiveBody;
                c.ReceiveStart += take;
                size -= take;
            }
            // The chunk's CRLF.
            while (c.ReceiveEnd - c.ReceiveStart < 2)
            {
                if (c.ReceiveEnd - c.ReceiveStart == 1 && c.ReceiveBuffer[c.ReceiveStart] == (byte)'\n') break;
                await ReceiveMoreAsync(c).ConfigureAwait(false);
            }
            if (c.ReceiveBuffer[c.ReceiveStart] == (byte)'\r' && c.ReceiveBuffer[c.ReceiveStart + 1] == (byte)'\n') c.ReceiveStart += 2;
            else if (c.ReceiveBuffer[c.ReceiveStart] == (byte)'\n') c.ReceiveStart += 1;
            else throw new Http1ProtocolException("missing CRLF after chunk data");
        }
        // Trailer section: field lines up to an empty line; forwarded when the downstream protocol carries trailers.
        var trailers = response.SupportsTrailers();
        while (true)
        {
            var data = c.ReceiveBuffer.AsSpan(c.ReceiveStart, c.ReceiveEnd - c.ReceiveStart);
            var nl = data.IndexOf((byte)'\n');
            if (nl < 0)
            {
                if (data.Length >= Http1Connection.MaxHeadSize) throw new Http1ProtocolException("response trailers too large");
                await ReceiveMoreAsync(c).ConfigureAwait(false);
                continue;
            }
            var line = data[..nl];
            if (line.Length > 0 && line[^1] == (byte)'\r') line = line[..^1];
            c.ReceiveStart += nl + 1;
            if (line.IsEmpty) break;
            var colon = line.IndexOf((byte)':');
            if (colon <= 0) throw new Http1ProtocolException("malformed trailer line");
            if (!trailers) continue;
            var name = Encoding.Latin1.GetString(line[..colon]);
            if (Http1Codec.HopByHop.Contains(name)) continue;
            response.AppendTrailer(name, Encoding.Latin1.GetString(line[(colon + 1)..].Trim(" \t"u8)));
        }
        return c.ReceiveStart == c.ReceiveEnd;
    }

    private static async ValueTask ReceiveMoreAsync(Http1Connection c)
    {
        if (await ReceiveAsync(c).ConfigureAwait(false) == 0)
            throw new HttpIOException(HttpRequestError.ResponseEnded, "the upstream closed the connection in the middle of a chunked body");
    }

    private static async ValueTask SendBodyAsync(Http1Connection c, Stream body, bool chunked, CancellationToken ct)
    {
        // Chunked: room for the size line before the data and the CRLF after it.
        const int Prefix = 18;
        var buffer = c.SendBuffer;
        while (true)
        {
            c.Stage = Http1Stage.ReadRequestBody;
            var n = chunked
                ? await body.ReadAsync(buffer.AsMemory(Prefix, buffer.Length - Prefix - 2), ct).ConfigureAwait(false)
                : await body.ReadAsync(buffer, ct).ConfigureAwait(false);
            c.Stage = Http1Stage.SendBody;
            if (n == 0) break;
            if (!chunked)
            {
                await SendAllAsync(c, buffer.AsMemory(0, n)).ConfigureAwait(false);
                continue;
            }
            var start = WriteChunkPrefix(buffer, Prefix, n);
            buffer[Prefix + n] = (byte)'\r';
            buffer[Prefix + n + 1] = (byte)'\n';
            await SendAllAsync(c, buffer.AsMemory(start, Prefix + n + 2 - start)).ConfigureAwait(false);
        }
        if (chunked) await SendAllAsync(c, s_lastChunk).ConfigureAwait(false);
    }

    /// <summary>Writes "hex\r\n" so that it ends at <paramref name="end"/>; returns where it starts.</summary>
    private static int WriteChunkPrefix(byte[] buffer, int end, int size)
    {
        var i = end;
        buffer[--i] = (byte)'\n';
        buffer[--i] = (byte)'\r';
        do
        {
            buffer[--i] = (byte)"0123456789abcdef"[size & 0xF];
            size >>= 4;
        } while (size != 0);
        return i;
    }

    // ---- request head ----

    /// <summary>Writes the request line and headers into the connection's send buffer; returns their length.</summary>
    private static int WriteHead(Http1Connection c, HttpRequest request, UpstreamRequest info, bool hasBody, out bool chunked)
    {
        var w = new HeadWriter(c);
        w.Append(request.Method);
        w.Append(" "u8);
        w.AppendTarget(info.UpstreamPathAndQuery);
        w.Append(" HTTP/1.1\r\nHost: "u8);
        w.Append(info.UpstreamAuthority);
        w.Append("\r\n"u8);
        foreach (var header in request.Headers)
        {
            var name = header.Key;
            var values = header.Value;
            if (values.Count == 0 || name.Length == 0 || name[0] == ':') continue;
            if (IsFramingOrHost(name) || Http1Codec.HopByHop.Contains(name)) continue;
            if (ContainsLineBreak(values)) continue; // never let a value start another header line
            w.Append(name);
            w.Append(": "u8);
            if (values.Count == 1) w.Append(values[0]!);
            else
            {
                // Several lines of one field are joined as one, cookies with "; " (RFC 9113 section 8.2.3).
                var separator = name.Equals("cookie", StringComparison.OrdinalIgnoreCase) ? "; "u8 : ", "u8;
                for (var i = 0; i < values.Count; i++)
                {
                    if (i > 0) w.Append(separator);
                    w.Append(values[i]!);
                }
            }
            w.Append("\r\n"u8);
        }
        chunked = false;
        if (request.ContentLength is long length)
        {
            w.Append("Content-Length: "u8);
            w.Append(length);
            w.Append("\r\n"u8);
        }
        else if (hasBody)
        {
            w.Append("Transfer-Encoding: chunked\r\n"u8);
            chunked = true;
        }
        else if (HttpMethods.IsPost(request.Method) || HttpMethods.IsPut(request.Method) || HttpMethods.IsPatch(request.Method))
        {
            w.Append("Content-Length: 0\r\n"u8);
        }
        w.Append("\r\n"u8);
        return w.Length;
    }

    private static bool IsFramingOrHost(string name) => name.Length switch
    {
        4 => name.Equals("Host", StringComparison.OrdinalIgnoreCase),
        14 => name.Equals("Content-Length", StringComparison.OrdinalIgnoreCase),
        _ => false,
    };

    private static bool ContainsLineBreak(Microsoft.Extensions.Primitives.StringValues values)
    {
        for (var i = 0; i < values.Count; i++)
            if (values[i] is { } v && v.AsSpan().IndexOfAny('\r', '\n') >= 0) return true;
        return false;
    }

    /// <summary>Appends to the connection's send buffer, growing it as needed (Latin-1, as HTTP/1.1 field values are).</summary>
    private struct HeadWriter(Http1Connection c)
    {
        private byte[] _buffer = c.SendBuffer;
        private int _length;

        public readonly int Length => _length;

        private void Grow(int needed)
        {
            var bigger = new byte[Math.Max(_buffer.Length * 2, _length + needed)];
            _buffer.AsSpan(0, _length).CopyTo(bigger);
            _buffer = bigger;
            c.SendBuffer = bigger;
        }

        public void Append(ReadOnlySpan<byte> bytes)
        {
            if (_length + bytes.Length > _buffer.Length) Grow(bytes.Length);
            bytes.CopyTo(_buffer.AsSpan(_length));
            _length += bytes.Length;
        }

        public void Append(string s)
        {
            if (_length + s.Length > _buffer.Length) Grow(s.Length);
            _length += Encoding.Latin1.GetBytes(s, _buffer.AsSpan(_length));
        }

        public void Append(long value)
        {
            if (_length + 20 > _buffer.Length) Grow(20);
            System.Buffers.Text.Utf8Formatter.TryFormat(value, _buffer.AsSpan(_length), out var written);
            _length += written;
        }

        /// <summary>The request target: bytes outside visible ASCII (a rewrite may put them there) are percent-encoded.</summary>
        public void AppendTarget(string target)
        {
            if (target.AsSpan().IndexOfAnyExceptInRange('!', '~') < 0)
            {
                Append(target);
                return;
            }
            Span<byte> utf8 = stackalloc byte[4];
            foreach (var rune in target.EnumerateRunes())
            {
                if (rune.Value is >= '!' and <= '~')
                {
                    Span<byte> one = [(byte)rune.Value];
                    Append(one);
                    continue;
                }
                var n = rune.EncodeToUtf8(utf8);
                for (var i = 0; i < n; i++)
                {
                    Span<byte> escaped = [(byte)'%', (byte)"0123456789ABCDEF"[utf8[i] >> 4], (byte)"0123456789ABCDEF"[utf8[i] & 0xF]];
                    Append(escaped);
                }
            }
        }
    }
}
