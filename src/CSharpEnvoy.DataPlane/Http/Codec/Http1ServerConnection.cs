using System.Buffers;
using System.Collections;
using System.IO.Pipelines;
using System.Net;
using System.Text;
using Microsoft.AspNetCore.Connections;
using Microsoft.AspNetCore.Connections.Features;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.AspNetCore.WebUtilities;

namespace CSharpEnvoy.DataPlane.Http.Codec;

/// <summary>
/// csenvoy's own downstream HTTP/1.1 codec for cleartext connections (Envoy's <c>Http1::ServerConnectionImpl</c>):
/// it reads request heads from the connection's transport, hands each request to the connection manager as an
/// <see cref="HttpContext"/> over its own features (this object, reused from one request to the next), and writes the
/// response head and body straight into the transport. It replaces Kestrel's HTTP/1.1 connection for the common
/// requests, which costs less per request and per idle connection (docs/performance.md, "Downstream HTTP/1.1 codec").
/// </summary>
/// <remarks>
/// Anything out of the ordinary (<see cref="Http1HeadVerdict.HandOff"/>: HTTP/1.0, upgrades, CONNECT, <c>Expect</c>,
/// chunked request bodies, encoded paths, heads split over reads, malformed input) is handed to Kestrel's HTTP/1.1
/// before a byte of that request is consumed, and Kestrel serves the connection from there, so both paths answer
/// every request alike. <c>CSENVOY_DOWNSTREAM_HTTP1_CODEC=0</c> leaves all connections to Kestrel.
/// </remarks>
internal sealed class Http1ServerConnection : IFeatureCollection, IHttpRequestFeature, IHttpRequestBodyDetectionFeature,
    IHttpResponseFeature, IHttpResponseBodyFeature, IHttpConnectionFeature, IHttpRequestLifetimeFeature, IHttpRequestIdentifierFeature
{
    public static readonly bool Enabled = Environment.GetEnvironmentVariable("CSENVOY_DOWNSTREAM_HTTP1_CODEC") != "0";

    private static readonly byte[][] s_statusLines = new byte[600][];
    private static readonly SearchValues<char> s_notInName = SearchValues.Create(":\r\n \t");

    private readonly ConnectionContext _connection;
    private readonly PipeReader _input;
    private readonly PipeWriter _output;
    private readonly IHttpApplication<HttpContext> _application;
    private readonly ConnectionDelegate _kestrel;
    private readonly long _idleTimeoutMs;
    private readonly Http1ServerRequest _request = new();
    private readonly Http1RequestBody _requestBody;
    private readonly Http1ResponseBody _responseBody;
    private HeaderDictionary? _responseHeaders;
    private Http1ResponsePipeWriter? _pipeWriter;

    // Per request; set by BeginRequest.
    private string _protocol = "HTTP/1.1";
    private string _scheme = "http";
    private string _method = HttpMethods.Get;
    private string _pathBase = "";
    private string _path = "/";
    private string _queryString = "";
    private string _rawTarget = "/";
    private IHeaderDictionary _requestHeaders = null!;
    private IHeaderDictionary? _responseHeadersOverride;
    private Stream _requestBodyStream = null!;
    private long _bodyRemaining;
    private bool _bodyReading;
    private int _statusCode;
    private string? _reasonPhrase;
    private bool _headWritten;
    private bool _responseCompleted;
    private bool _unflushed;
    private Framing _framing;
    private long _lengthRemaining;
    private bool _keepAlive;
    private List<KeyValuePair<Func<object, Task>, object>>? _onStarting;
    private List<KeyValuePair<Func<object, Task>, object>>? _onCompleted;
    private List<KeyValuePair<Type, object?>>? _extras;
    private int _revision;
    private long _requests;
    private string? _traceIdentifier;
    private CancellationTokenSource? _abortCts;
    private CancellationToken? _requestAbortedOverride;

    // Per connection.
    private volatile bool _closed;
    private volatile bool _aborted;
    private volatile bool _closeRequested;
    /// <summary><see cref="Environment.TickCount64"/> when the connection began to wait for a request; 0 while busy.</summary>
    private long _idleSince;
    private IPAddress? _remoteIp, _localIp;
    private int _remotePort, _localPort;
    private string? _connectionId;

    private enum Framing : byte { None, ContentLength, Chunked }

    private readonly int _maxHeadBytes;
    private readonly int _maxHeaderCount;

    /// <param name="kestrel">Kestrel's HTTP connection, which takes over the connection on a hand-off.</param>
    /// <param name="idleTimeout">The connection manager's <c>idle_timeout</c>; <see cref="Timeout.InfiniteTimeSpan"/> for none.</param>
    /// <param name="maxHeadBytes">The connection manager's <c>max_request_headers_kb</c>: a larger head goes to Kestrel,
    /// which answers 431 by the same limit.</param>
    /// <param name="maxHeaderCount">The connection manager's <c>max_headers_count</c>: a head with more headers goes to
    /// Kestrel likewise.</param>
    public Http1ServerConnection(ConnectionContext connection, IHttpApplication<HttpContext> application, ConnectionDelegate kestrel, TimeSpan idleTimeout,
        int maxHeadBytes = 60 * 1024, int maxHeaderCount = Http1RequestParser.MaxHeaderCount)
    {
        _maxHeadBytes = maxHeadBytes;
        _maxHeaderCount = maxHeaderCount;
        _connection = connection;
        _input = connection.Transport.Input;
        _output = connection.Transport.Output;
        _application = application;
        _kestrel = kestrel;
        _idleTimeoutMs = idleTimeout == Timeout.InfiniteTimeSpan || idleTimeout <= TimeSpan.Zero ? long.MaxValue : (long)idleTimeout.TotalMilliseconds;
        _requestBody = new Http1RequestBody(this);
        _responseBody = new Http1ResponseBody(this);
        if (connection.RemoteEndPoint is IPEndPoint remote) (_remoteIp, _remotePort) = (remote.Address, remote.Port);
        if (connection.LocalEndPoint is IPEndPoint local) (_localIp, _localPort) = (local.Address, local.Port);
    }

    /// <summary>Serves the connection's requests until it closes, or hands it to Kestrel.</summary>
    public async Task RunAsync()
    {
        Http1IdleTimer.Register(this);
        var onClosed = _connection.ConnectionClosed.UnsafeRegister(static s => ((Http1ServerConnection)s!).OnConnectionClosed(), this);
        var lifetime = _connection.Features.Get<IConnectionLifetimeNotificationFeature>();
        var onCloseRequested = lifetime is null ? default
            : lifetime.ConnectionClosedRequested.UnsafeRegister(static s => ((Http1ServerConnection)s!).OnCloseRequested(), this);
        var handOff = false;
        try
        {
            while (!_closeRequested)
            {
                Volatile.Write(ref _idleSince, Environment.TickCount64);
                ReadResult result;
                try
                {
                    result = await _input.ReadAsync().ConfigureAwait(false);
                }
                catch (Exception)
                {
                    return; // the connection was aborted under the read
                }
                Volatile.Write(ref _idleSince, 0);
                var buffer = result.Buffer;
                if (buffer.IsEmpty || result.IsCanceled)
                {
                    _input.AdvanceTo(buffer.Start, buffer.End);
                    if (result.IsCompleted) return;
                    continue;
                }
                _request.Reset();
                var headLength = 0;
                var verdict = buffer.IsSingleSegment ? Http1RequestParser.Parse(buffer.FirstSpan, _request, out headLength) : Http1HeadVerdict.HandOff;
                if (verdict != Http1HeadVerdict.Complete || headLength > _maxHeadBytes || _request.HeaderCount > _maxHeaderCount)
                {
                    // Nothing consumed: Kestrel reads this request from its first byte.
                    _input.AdvanceTo(buffer.Start);
                    handOff = true;
                    break;
                }
                _input.AdvanceTo(buffer.GetPosition(headLength));
                if (!await ProcessRequestAsync().ConfigureAwait(false)) return;
            }
        }
        finally
        {
            Http1IdleTimer.Unregister(this);
            onClosed.Dispose();
            onCloseRequested.Dispose();
        }
        if (handOff) await _kestrel(_connection).ConfigureAwait(false);
    }

    /// <summary>Runs one request through the application; false when the connection is to close after it. Its state
    /// machine is pooled: it completes asynchronously on every proxied request.</summary>
    [System.Runtime.CompilerServices.AsyncMethodBuilder(typeof(System.Runtime.CompilerServices.PoolingAsyncValueTaskMethodBuilder<>))]
    private async ValueTask<bool> ProcessRequestAsync()
    {
        BeginRequest();
        var context = _application.CreateContext(this);
        Exception? error = null;
        try
        {
            await _application.ProcessRequestAsync(context).ConfigureAwait(false);
        }
        catch (Exception e)
        {
            error = e;
        }
        try
        {
            if (error is not null)
            {
                // As Kestrel: a 500 with no body when nothing was sent yet, else the connection is reset.
                if (!_headWritten)
                {
                    _statusCode = 500;
                    _reasonPhrase = null;
                    var headers = ResponseHeaders;
                    _responseHeadersOverride = null;
                    headers.Clear();
                    headers.ContentLength = 0;
                    _pipeWriter?.Reset();
                }
                else Abort();
            }
            if (!_aborted) await FinishResponseAsync().ConfigureAwait(false);
        }
        catch (Exception e)
        {
            error ??= e;
            Abort();
        }
        if (_onCompleted is { Count: > 0 }) await FireOnCompletedAsync().ConfigureAwait(false);
        _application.DisposeContext(context, error);
        EndRequest();
        if (_aborted || _closed || !_keepAlive) return false;
        // A request body nobody read: dropped so the next head is found, when it is all here.
        return _bodyRemaining == 0 || (!_bodyReading && DrainBufferedBody());
    }

    private void BeginRequest()
    {
        var r = _request;
        _requests++;
        _revision++;
        _protocol = HttpProtocol.Http11;
        _scheme = "http";
        _method = r.Method;
        _pathBase = "";
        _path = r.Path;
        _queryString = r.QueryString;
        _rawTarget = r.RawTarget;
        _requestHeaders = r.Headers;
        _requestBodyStream = _requestBody;
        _bodyRemaining = r.ContentLength > 0 ? r.ContentLength : 0;
        _statusCode = 200;
        _reasonPhrase = null;
        _headWritten = false;
        _responseCompleted = false;
        _unflushed = false;
        _framing = Framing.None;
        _lengthRemaining = 0;
        _keepAlive = r.KeepAlive && !_closeRequested;
        _traceIdentifier = null;
        _requestAbortedOverride = null;
        _responseHeadersOverride = null;
        var headers = _responseHeaders;
        if (headers is not null)
        {
            headers.IsReadOnly = false;
            headers.Clear();
        }
    }

    private void EndRequest()
    {
        _onStarting?.Clear();
        _onCompleted?.Clear();
        _extras?.Clear();
        _pipeWriter?.Reset();
        if (_abortCts is { } cts && !_closed && !_aborted && !cts.TryReset())
        {
            cts.Dispose();
            _abortCts = null;
        }
    }

    private HeaderDictionary ResponseHeaders => _responseHeaders ??= new HeaderDictionary(8);

    // ----- connection events -----

    private void OnConnectionClosed()
    {
        _closed = true;
        CancelRequest();
    }

    /// <summary>Kestrel is stopping the listener: finish the request in progress, take no other.</summary>
    private void OnCloseRequested()
    {
        _closeRequested = true;
        _keepAlive = false;
        if (Volatile.Read(ref _idleSince) != 0) _input.CancelPendingRead();
    }

    /// <summary>Called once a second by <see cref="Http1IdleTimer"/>: a connection idle for longer than the idle timeout
    /// closes as Kestrel's keep-alive timeout does it, gracefully (the loop ends and the transport sends its FIN).</summary>
    internal void OnTick(long now)
    {
        var since = Volatile.Read(ref _idleSince);
        if (since == 0 || now - since < _idleTimeoutMs) return;
        _closeRequested = true;
        _input.CancelPendingRead();
    }

    private void CancelRequest()
    {
        try
        {
            _abortCts?.Cancel();
        }
        catch (ObjectDisposedException)
        {
        }
    }

    // ----- request body -----

    internal async ValueTask<int> ReadBodyAsync(Memory<byte> destination, CancellationToken ct)
    {
        if (_bodyRemaining == 0 || destination.IsEmpty) return 0;
        if (_bodyReading) throw new InvalidOperationException("Concurrent reads of the request body are not supported.");
        _bodyReading = true;
        try
        {
            while (true)
            {
                var result = await _input.ReadAsync(ct).ConfigureAwait(false);
                var buffer = result.Buffer;
                if (buffer.IsEmpty)
                {
                    _input.AdvanceTo(buffer.End);
                    if (result.IsCompleted) throw new BadHttpRequestException("Unexpected end of request content.");
                    continue; // a cancelled read (OnCloseRequested): the request still gets its body
                }
                var n = (int)Math.Min(Math.Min(buffer.Length, _bodyRemaining), destination.Length);
                buffer.Slice(0, n).CopyTo(destination.Span);
                _input.AdvanceTo(buffer.GetPosition(n));
                _bodyRemaining -= n;
                return n;
            }
        }
        finally
        {
            _bodyReading = false;
        }
    }

    /// <summary>Drops the rest of an unread request body when it has already arrived. When it has not, the connection
    /// closes after the response, as Envoy's HTTP/1 codec does for a request still incomplete when its response is.</summary>
    private bool DrainBufferedBody()
    {
        while (_bodyRemaining > 0 && _input.TryRead(out var result))
        {
            var buffer = result.Buffer;
            var n = Math.Min(buffer.Length, _bodyRemaining);
            _input.AdvanceTo(buffer.GetPosition(n));
            _bodyRemaining -= n;
            if (n == 0 || result.IsCompleted) break;
        }
        return _bodyRemaining == 0;
    }

    // ----- response -----

    internal ValueTask WriteBodyAsync(ReadOnlyMemory<byte> data, CancellationToken ct)
    {
        if (_responseCompleted) throw new InvalidOperationException("The response has completed.");
        if (!_headWritten)
        {
            if (_onStarting is { Count: > 0 }) return StartThenWriteAsync(data, ct);
            WriteHead(appCompleted: false);
        }
        WriteFramed(data.Span);
        return FlushAsync(ct);
    }

    private async ValueTask StartThenWriteAsync(ReadOnlyMemory<byte> data, CancellationToken ct)
    {
        await FireOnStartingAsync().ConfigureAwait(false);
        if (!_headWritten) WriteHead(appCompleted: false);
        WriteFramed(data.Span);
        await FlushAsync(ct).ConfigureAwait(false);
    }

    private void WriteFramed(ReadOnlySpan<byte> data)
    {
        switch (_framing)
        {
            case Framing.ContentLength:
                if (data.Length > _lengthRemaining)
                {
                    Abort();
                    throw new InvalidOperationException($"Response Content-Length mismatch: too many bytes written ({data.Length} more than the {_lengthRemaining} left).");
                }
                _lengthRemaining -= data.Length;
                _output.Write(data);
                break;
            case Framing.Chunked:
                if (data.IsEmpty) return;
                var span = _output.GetSpan(10);
                var prefix = WriteChunkPrefix(span, data.Length);
                _output.Advance(prefix);
                _output.Write(data);
                _output.Write("\r\n"u8);
                break;
            default:
                return; // HEAD, 1xx, 204, 304: no body on the wire
        }
        _unflushed = true;
    }

    private static int WriteChunkPrefix(Span<byte> span, int size)
    {
        var digits = 1;
        for (var s = size >> 4; s != 0; s >>= 4) digits++;
        for (var i = digits - 1; i >= 0; i--, size >>= 4) span[i] = (byte)"0123456789abcdef"[size & 0xF];
        span[digits] = (byte)'\r';
        span[digits + 1] = (byte)'\n';
        return digits + 2;
    }

    private ValueTask FlushAsync(CancellationToken ct)
    {
        if (!_unflushed) return default;
        _unflushed = false;
        var flush = _output.FlushAsync(ct);
        if (flush.IsCompletedSuccessfully) return default;
        return AwaitFlush(flush);

        static async ValueTask AwaitFlush(ValueTask<FlushResult> flush) => await flush.ConfigureAwait(false);
    }

    /// <summary>Writes the status line and headers (Kestrel's framing rules): the app's Content-Length when set; with
    /// none, "Content-Length: 0" for a response that ended without a body, else chunked.</summary>
    private void WriteHead(bool appCompleted)
    {
        var headers = ResponseHeaders;
        var userHeaders = _responseHeadersOverride;
        var status = _statusCode;
        var canHaveBody = status >= 200 && status != 204 && status != 304;
        var head = ReferenceEquals(_method, HttpMethods.Head) || HttpMethods.IsHead(_method);
        var contentLength = userHeaders is null ? headers.ContentLength : userHeaders.ContentLength;
        var addLengthZero = false;
        var chunked = false;
        _framing = Framing.None;
        if (canHaveBody)
        {
            if (contentLength is long length)
            {
                if (!head)
                {
                    _framing = Framing.ContentLength;
                    _lengthRemaining = length;
                }
            }
            else if (head)
            {
                // No framing header: a HEAD response's headers only describe the GET's.
            }
            else if (appCompleted)
            {
                addLengthZero = true;
                _framing = Framing.ContentLength;
                _lengthRemaining = 0;
            }
            else
            {
                chunked = true;
                _framing = Framing.Chunked;
            }
        }

        var w = new HeadWriter(_output);
        if (_reasonPhrase is null || _reasonPhrase.AsSpan().IndexOfAny('\r', '\n') >= 0) w.Write(StatusLine(status));
        else w.Write("HTTP/1.1 " + status.ToString(System.Globalization.CultureInfo.InvariantCulture) + " " + _reasonPhrase + "\r\n");
        var close = !_keepAlive;
        var sawDate = false;
        if (userHeaders is null)
        {
            foreach (var h in headers) WriteField(ref w, h.Key, h.Value, ref close, ref sawDate);
        }
        else
        {
            foreach (var h in userHeaders) WriteField(ref w, h.Key, h.Value, ref close, ref sawDate);
        }
        if (!sawDate) w.Write(HttpDate.HeaderLine);
        if (addLengthZero) w.Write("Content-Length: 0\r\n"u8);
        if (chunked) w.Write("Transfer-Encoding: chunked\r\n"u8);
        if (close)
        {
            _keepAlive = false;
            w.Write("Connection: close\r\n"u8);
        }
        w.Write("\r\n"u8);
        w.Commit();
        _unflushed = true;
        _headWritten = true;
        headers.IsReadOnly = true;
    }

    private static void WriteField(ref HeadWriter w, string name, Microsoft.Extensions.Primitives.StringValues values, ref bool close, ref bool sawDate)
    {
        // Only field names that cannot end the line or the head (Kestrel refuses others outright).
        if (name.Length == 0 || name.AsSpan().IndexOfAny(s_notInName) >= 0) return;
        switch (name.Length)
        {
            case 4 when name.Equals("Date", StringComparison.OrdinalIgnoreCase):
                sawDate = true;
                break;
            case 10 when name.Equals("Connection", StringComparison.OrdinalIgnoreCase):
                // Written once, below, when the connection closes; otherwise as the app set it.
                if (!close)
                {
                    foreach (var v in values)
                        if (v is not null && v.Contains("close", StringComparison.OrdinalIgnoreCase)) close = true;
                }
                if (close) return;
                break;
            case 17 when name.Equals("Transfer-Encoding", StringComparison.OrdinalIgnoreCase):
                return; // the codec frames the body itself
        }
        for (var i = 0; i < values.Count; i++)
        {
            var v = values[i] ?? "";
            if (v.AsSpan().IndexOfAny('\r', '\n') >= 0) continue; // never let a value start another header line
            w.Write(name);
            w.Write(": "u8);
            w.Write(v);
            w.Write("\r\n"u8);
        }
    }

    private static byte[] StatusLine(int status)
    {
        if ((uint)status < (uint)s_statusLines.Length && s_statusLines[status] is { } cached) return cached;
        var line = Encoding.ASCII.GetBytes($"HTTP/1.1 {status} {ReasonPhrases.GetReasonPhrase(status)}\r\n");
        if ((uint)status < (uint)s_statusLines.Length) s_statusLines[status] = line;
        return line;
    }

    /// <summary>Ends the response: the head if nothing was written, the last chunk, and a flush.</summary>
    private async ValueTask FinishResponseAsync()
    {
        if (_responseCompleted) return;
        if (_pipeWriter is { Buffered: > 0 } pw) await pw.FlushAsync().ConfigureAwait(false);
        if (!_headWritten)
        {
            if (_onStarting is { Count: > 0 }) await FireOnStartingAsync().ConfigureAwait(false);
            if (!_headWritten) WriteHead(appCompleted: true);
        }
        _responseCompleted = true;
        if (_framing == Framing.Chunked)
        {
            _output.Write("0\r\n\r\n"u8);
            _unflushed = true;
        }
        else if (_framing == Framing.ContentLength && _lengthRemaining > 0)
        {
            // Fewer bytes than the Content-Length promised: the client can only tell by the connection closing.
            Abort();
            return;
        }
        await FlushAsync(default).ConfigureAwait(false);
    }

    private async ValueTask FireOnStartingAsync()
    {
        var callbacks = _onStarting!;
        // Last registered runs first, as in Kestrel. A callback may register another one.
        while (callbacks.Count > 0)
        {
            var (callback, state) = callbacks[^1];
            callbacks.RemoveAt(callbacks.Count - 1);
            await callback(state).ConfigureAwait(false);
        }
    }

    private async ValueTask FireOnCompletedAsync()
    {
        var callbacks = _onCompleted!;
        while (callbacks.Count > 0)
        {
            var (callback, state) = callbacks[^1];
            callbacks.RemoveAt(callbacks.Count - 1);
            try
            {
                await callback(state).ConfigureAwait(false);
            }
            catch (Exception)
            {
                // As Kestrel: a failing completion callback does not stop the others.
            }
        }
    }

    private async Task StartCoreAsync(CancellationToken ct)
    {
        if (_onStarting is { Count: > 0 }) await FireOnStartingAsync().ConfigureAwait(false);
        if (!_headWritten) WriteHead(appCompleted: false);
        await FlushAsync(ct).ConfigureAwait(false);
    }

    /// <summary>Appends the head to the transport's buffer (Latin-1, as HTTP/1.1 field values are).</summary>
    private ref struct HeadWriter
    {
        private readonly PipeWriter _writer;
        private Span<byte> _span;
        private int _length;

        public HeadWriter(PipeWriter writer)
        {
            _writer = writer;
            _span = writer.GetSpan(512);
            _length = 0;
        }

        private void Grow(int needed)
        {
            _writer.Advance(_length);
            _length = 0;
            _span = _writer.GetSpan(Math.Max(needed, 512));
        }

        public void Write(ReadOnlySpan<byte> bytes)
        {
            if (bytes.Length > _span.Length - _length) Grow(bytes.Length);
            bytes.CopyTo(_span[_length..]);
            _length += bytes.Length;
        }

        public void Write(string s)
        {
            if (s.Length > _span.Length - _length) Grow(s.Length);
            _length += Encoding.Latin1.GetBytes(s, _span[_length..]);
        }

        public readonly void Commit() => _writer.Advance(_length);
    }

    // ----- IFeatureCollection -----

    bool IFeatureCollection.IsReadOnly => false;
    int IFeatureCollection.Revision => _revision;

    public object? this[Type key]
    {
        get
        {
            if (_extras is { Count: > 0 } extras)
            {
                for (var i = 0; i < extras.Count; i++)
                    if (extras[i].Key == key) return extras[i].Value;
            }
            if (key == typeof(IHttpRequestFeature) || key == typeof(IHttpResponseFeature) || key == typeof(IHttpResponseBodyFeature) ||
                key == typeof(IHttpRequestBodyDetectionFeature) || key == typeof(IHttpConnectionFeature) ||
                key == typeof(IHttpRequestLifetimeFeature) || key == typeof(IHttpRequestIdentifierFeature))
                return this;
            return _connection.Features[key];
        }
        set
        {
            var extras = _extras ??= new List<KeyValuePair<Type, object?>>(2);
            _revision++;
            for (var i = 0; i < extras.Count; i++)
            {
                if (extras[i].Key != key) continue;
                extras[i] = new(key, value);
                return;
            }
            extras.Add(new(key, value));
        }
    }

    public TFeature? Get<TFeature>() => (TFeature?)this[typeof(TFeature)];

    public void Set<TFeature>(TFeature? instance) => this[typeof(TFeature)] = instance;

    public IEnumerator<KeyValuePair<Type, object>> GetEnumerator()
    {
        Type[] own =
        [
            typeof(IHttpRequestFeature), typeof(IHttpResponseFeature), typeof(IHttpResponseBodyFeature), typeof(IHttpRequestBodyDetectionFeature),
            typeof(IHttpConnectionFeature), typeof(IHttpRequestLifetimeFeature), typeof(IHttpRequestIdentifierFeature),
        ];
        foreach (var t in own)
            if (this[t] is { } f) yield return new(t, f);
        if (_extras is not null)
        {
            foreach (var e in _extras.ToArray())
                if (e.Value is not null && Array.IndexOf(own, e.Key) < 0) yield return new(e.Key, e.Value);
        }
        foreach (var e in _connection.Features) yield return e;
    }

    IEnumerator IEnumerable.GetEnumerator() => GetEnumerator();

    // ----- IHttpRequestFeature -----

    string IHttpRequestFeature.Protocol { get => _protocol; set => _protocol = value; }
    string IHttpRequestFeature.Scheme { get => _scheme; set => _scheme = value; }
    string IHttpRequestFeature.Method { get => _method; set => _method = value; }
    string IHttpRequestFeature.PathBase { get => _pathBase; set => _pathBase = value; }
    string IHttpRequestFeature.Path { get => _path; set => _path = value; }
    string IHttpRequestFeature.QueryString { get => _queryString; set => _queryString = value; }
    string IHttpRequestFeature.RawTarget { get => _rawTarget; set => _rawTarget = value; }
    IHeaderDictionary IHttpRequestFeature.Headers { get => _requestHeaders; set => _requestHeaders = value; }
    Stream IHttpRequestFeature.Body { get => _requestBodyStream; set => _requestBodyStream = value; }

    bool IHttpRequestBodyDetectionFeature.CanHaveBody => _request.ContentLength > 0;

    // ----- IHttpResponseFeature -----

    int IHttpResponseFeature.StatusCode
    {
        get => _statusCode;
        set
        {
            if (_headWritten) throw new InvalidOperationException("StatusCode cannot be set because the response has already started.");
            _statusCode = value;
        }
    }

    string? IHttpResponseFeature.ReasonPhrase
    {
        get => _reasonPhrase;
        set
        {
            if (_headWritten) throw new InvalidOperationException("ReasonPhrase cannot be set because the response has already started.");
            _reasonPhrase = value;
        }
    }

    IHeaderDictionary IHttpResponseFeature.Headers
    {
        get => _responseHeadersOverride ?? ResponseHeaders;
        set => _responseHeadersOverride = ReferenceEquals(value, _responseHeaders) ? null : value;
    }

    [Obsolete("Use IHttpResponseBodyFeature.Stream")]
    Stream IHttpResponseFeature.Body { get => _responseBody; set => throw new NotSupportedException("Set IHttpResponseBodyFeature instead."); }

    bool IHttpResponseFeature.HasStarted => _headWritten;

    void IHttpResponseFeature.OnStarting(Func<object, Task> callback, object state)
    {
        if (_headWritten) throw new InvalidOperationException("OnStarting cannot be set because the response has already started.");
        (_onStarting ??= new(2)).Add(new(callback, state));
    }

    void IHttpResponseFeature.OnCompleted(Func<object, Task> callback, object state) => (_onCompleted ??= new(2)).Add(new(callback, state));

    // ----- IHttpResponseBodyFeature -----

    Stream IHttpResponseBodyFeature.Stream => _responseBody;
    PipeWriter IHttpResponseBodyFeature.Writer => _pipeWriter ??= new Http1ResponsePipeWriter(this);

    void IHttpResponseBodyFeature.DisableBuffering()
    {
    }

    Task IHttpResponseBodyFeature.StartAsync(CancellationToken ct) => _headWritten ? Task.CompletedTask : StartCoreAsync(ct);

    Task IHttpResponseBodyFeature.SendFileAsync(string path, long offset, long? count, CancellationToken ct) =>
        SendFileFallback.SendFileAsync(_responseBody, path, offset, count, ct);

    Task IHttpResponseBodyFeature.CompleteAsync() => FinishResponseAsync().AsTask();

    // ----- IHttpConnectionFeature -----

    string IHttpConnectionFeature.ConnectionId { get => _connectionId ??= _connection.ConnectionId; set => _connectionId = value; }
    IPAddress? IHttpConnectionFeature.RemoteIpAddress { get => _remoteIp; set => _remoteIp = value; }
    IPAddress? IHttpConnectionFeature.LocalIpAddress { get => _localIp; set => _localIp = value; }
    int IHttpConnectionFeature.RemotePort { get => _remotePort; set => _remotePort = value; }
    int IHttpConnectionFeature.LocalPort { get => _localPort; set => _localPort = value; }

    // ----- IHttpRequestLifetimeFeature -----

    CancellationToken IHttpRequestLifetimeFeature.RequestAborted
    {
        get
        {
            if (_requestAbortedOverride is { } token) return token;
            var cts = _abortCts;
            if (cts is null)
            {
                _abortCts = cts = new CancellationTokenSource();
                if (_closed || _aborted) cts.Cancel();
            }
            return cts.Token;
        }
        set => _requestAbortedOverride = value;
    }

    /// <summary>Resets the connection (the request can no longer be answered normally).</summary>
    public void Abort()
    {
        _aborted = true;
        _keepAlive = false;
        _connection.Abort(new ConnectionAbortedException("The request was aborted."));
        CancelRequest();
    }

    // ----- IHttpRequestIdentifierFeature -----

    string IHttpRequestIdentifierFeature.TraceIdentifier
    {
        get => _traceIdentifier ??= _connection.ConnectionId + ":" + _requests.ToString("X8", System.Globalization.CultureInfo.InvariantCulture);
        set => _traceIdentifier = value;
    }

    // ----- body streams -----

    private sealed class Http1RequestBody(Http1ServerConnection c) : ReadOnlyBodyStream
    {
        public override int Read(byte[] buffer, int offset, int count) => throw new InvalidOperationException("Synchronous operations are disallowed.");
        public override ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken ct = default) => c.ReadBodyAsync(buffer, ct);
        public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken ct) => c.ReadBodyAsync(buffer.AsMemory(offset, count), ct).AsTask();
    }

    private sealed class Http1ResponseBody(Http1ServerConnection c) : WriteOnlyBodyStream
    {
        public override void Flush() { }
        public override Task FlushAsync(CancellationToken ct) => c._headWritten ? c.FlushAsync(ct).AsTask() : c.StartCoreAsync(ct);
        public override void Write(byte[] buffer, int offset, int count) => throw new InvalidOperationException("Synchronous operations are disallowed.");
        public override ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken ct = default) => c.WriteBodyAsync(buffer, ct);
        public override Task WriteAsync(byte[] buffer, int offset, int count, CancellationToken ct) => c.WriteBodyAsync(buffer.AsMemory(offset, count), ct).AsTask();
    }

    /// <summary>The response body as a <see cref="PipeWriter"/>: bytes collect in a pooled buffer and go out, framed,
    /// on each flush.</summary>
    private sealed class Http1ResponsePipeWriter(Http1ServerConnection c) : PipeWriter
    {
        private byte[]? _buffer;
        private int _length;

        public int Buffered => _length;

        public override void Advance(int bytes) => _length += bytes;

        public override Memory<byte> GetMemory(int sizeHint = 0)
        {
            Ensure(sizeHint);
            return _buffer.AsMemory(_length);
        }

        public override Span<byte> GetSpan(int sizeHint = 0)
        {
            Ensure(sizeHint);
            return _buffer.AsSpan(_length);
        }

        private void Ensure(int sizeHint)
        {
            sizeHint = Math.Max(sizeHint, 1);
            if (_buffer is not null && _buffer.Length - _length >= sizeHint) return;
            var bigger = ArrayPool<byte>.Shared.Rent(Math.Max(4096, _length + sizeHint));
            if (_buffer is not null)
            {
                _buffer.AsSpan(0, _length).CopyTo(bigger);
                ArrayPool<byte>.Shared.Return(_buffer);
            }
            _buffer = bigger;
        }

        public override async ValueTask<FlushResult> FlushAsync(CancellationToken ct = default)
        {
            if (_length > 0)
            {
                var n = _length;
                _length = 0;
                await c.WriteBodyAsync(_buffer.AsMemory(0, n), ct).ConfigureAwait(false);
            }
            else if (!c._headWritten) await c.StartCoreAsync(ct).ConfigureAwait(false);
            return new FlushResult(isCanceled: false, isCompleted: c._closed || c._aborted);
        }

        public override void CancelPendingFlush()
        {
        }

        public override void Complete(Exception? exception = null)
        {
            if (exception is not null) c.Abort();
        }

        /// <summary>Drops what is buffered and gives the buffer back (end of the request).</summary>
        public void Reset()
        {
            _length = 0;
            if (_buffer is null) return;
            ArrayPool<byte>.Shared.Return(_buffer);
            _buffer = null;
        }
    }
}
