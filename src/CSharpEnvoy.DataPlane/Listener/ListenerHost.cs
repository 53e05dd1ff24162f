using System.Buffers;
using System.IO.Pipelines;
using System.Net;
using System.Security.Cryptography.X509Certificates;
using CSharpEnvoy.Config.Model.Listener;
using CSharpEnvoy.DataPlane.Http;
using CSharpEnvoy.DataPlane.Stats;
using CSharpEnvoy.DataPlane.Tls;
using Microsoft.AspNetCore.Connections;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.AspNetCore.Server.Kestrel.Core.Features;
using Microsoft.AspNetCore.Server.Kestrel.Transport.Sockets;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace CSharpEnvoy.DataPlane.Listener;

/// <summary>A listener failed to bind (port in use, bad address): reported with the listener's name and address.</summary>
internal sealed class ListenerBindException : Exception
{
    public ListenerBindException(string message, Exception inner) : base(message, inner) { }
}

/// <summary>
/// One Envoy listener on its own Kestrel server, so listeners can be added and removed independently. With
/// <c>codec_type: AUTO</c> a cleartext port serves HTTP/1.1 and HTTP/2 prior-knowledge (h2c) side by side: Kestrel
/// alone only offers HTTP/1.1 on cleartext, so the first bytes are inspected for the HTTP/2 connection preface and
/// the connection is marked as ALPN "h2" before Kestrel picks its protocol.
/// </summary>
internal sealed class ListenerHost : IHttpApplication<HttpContext>, IAsyncDisposable
{
    private static readonly byte[] s_http2Preface = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"u8.ToArray();

    private volatile ListenerModel _model;
    /// <summary>Swapped whole by an LDS update that keeps the socket; read once per connection or request.</summary>
    private volatile HttpConnectionManager _hcm;
    private readonly IServiceProvider _services;
    private readonly ILoggerFactory _loggers;
    private readonly DownstreamTls? _tls;
    private KestrelServer? _server;

    /// <summary>The listener's connection access logs; null when there are none.</summary>
    private readonly AccessLog.AccessLogger[]? _accessLogs;

    public ListenerHost(ListenerModel model, HttpConnectionManager hcm, StatsStore stats, IServiceProvider services, ILoggerFactory loggers,
        AccessLog.AccessLogManager? accessLogs = null)
    {
        if (model.AccessLogs.Count > 0 && accessLogs is not null)
            _accessLogs = model.AccessLogs.Select(l => new AccessLog.AccessLogger(l, accessLogs)).ToArray();
        _model = model;
        _hcm = hcm;
        _services = services;
        _loggers = loggers;
        var prefix = "listener." + StatName(model) + ".";
        CxTotal = stats.Counter(prefix + "downstream_cx_total");
        CxActive = stats.Gauge(prefix + "downstream_cx_active");
        CxDestroy = stats.Counter(prefix + "downstream_cx_destroy");
        if (model.FilterChains.Count > 0 && model.FilterChains[0].Tls is { } tls) _tls = new DownstreamTls(tls, stats, prefix + "ssl.");
    }

    /// <summary>Inline scheduling of request code on I/O threads; on unless CSENVOY_INLINE_SCHEDULING=0.</summary>
    internal static bool InlineScheduling { get; } = Environment.GetEnvironmentVariable("CSENVOY_INLINE_SCHEDULING") != "0";

    public ListenerModel Model => _model;

    /// <summary>The connection manager new requests use; xDS replaces it (with the listener's new model) on an update.</summary>
    internal HttpConnectionManager ConnectionManager => _hcm;

    internal void Replace(ListenerModel model, HttpConnectionManager hcm)
    {
        _model = model;
        _hcm = hcm;
    }

    /// <summary>Stops accepting, lets open connections finish for up to <paramref name="drainTime"/>, then closes them.</summary>
    internal async Task DrainAndDisposeAsync(TimeSpan drainTime)
    {
        var server = _server;
        if (server is null) return;
        using var cts = new CancellationTokenSource(drainTime);
        try
        {
            await server.StopAsync(cts.Token).ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
        }
        server.Dispose();
        _server = null;
    }
    public Counter CxTotal { get; }
    public Gauge CxActive { get; }
    public Counter CxDestroy { get; }

    /// <summary>The bound address (with the real port when the config asked for port 0).</summary>
    public SocketAddressModel BoundAddress { get; private set; } = null!;

    /// <summary>Envoy names listener stats by address with ':' → '_' ("listener.127.0.0.1_10000.*") unless stat_prefix is set.</summary>
    internal static string StatName(ListenerModel model) =>
        model.StatPrefix != model.Address.ToString() ? model.StatPrefix : model.Address.IsPipe ? model.Address.PipePath! : $"{model.Address.Address}_{model.Address.Port}";

    public async Task StartAsync(CancellationToken ct)
    {
        var hcm = _hcm.Model;
        var options = new KestrelServerOptions
        {
            ApplicationServices = _services,
            AddServerHeader = false,
            AllowAlternateSchemes = true, // h2c requests carry :scheme http on a connection marked as h2
        };
        ConfigureLimits(options.Limits, hcm);

        var protocols = hcm.CodecType switch
        {
            CodecType.Http1 => HttpProtocols.Http1,
            CodecType.Http2 => HttpProtocols.Http2,
            _ => HttpProtocols.Http1AndHttp2,
        };
        var addr = _model.Address;
        Action<ListenOptions> configure = lo =>
        {
            lo.Protocols = protocols;
            lo.Use(next => context => OnConnectionAsync(context, next, protocols == HttpProtocols.Http1AndHttp2));
            if (_tls is not null)
            {
                // Kestrel's HTTPS middleware, then the codec decision on the decrypted stream.
                lo.UseHttps(_tls.HandshakeOptions);
                lo.Use(next => context => OnTlsEstablishedAsync(context, next, protocols != HttpProtocols.Http1));
            }
        };
        if (addr.IsPipe)
        {
            if (File.Exists(addr.PipePath)) File.Delete(addr.PipePath!);
            options.ListenUnixSocket(addr.PipePath!, configure);
        }
        else
        {
            options.Listen(new IPEndPoint(ParseListenAddress(addr.Address), addr.Port), configure);
        }

        // Run request code on the socket's I/O thread instead of hopping to the thread pool: measured on 2 cores it
        // cuts context switches per request by more than half (docs/performance.md). Safe because nothing on the
        // request path blocks. CSENVOY_INLINE_SCHEDULING=0 turns it off.
        var transportOptions = new SocketTransportOptions { UnsafePreferInlineScheduling = InlineScheduling };
        var transport = new SocketTransportFactory(Options.Create(transportOptions), _loggers);
        _server = new KestrelServer(Options.Create(options), transport, _loggers);
        try
        {
            await _server.StartAsync(this, ct).ConfigureAwait(false);
        }
        catch (IOException ex)
        {
            _server.Dispose();
            _server = null;
            throw new ListenerBindException($"cannot bind listener '{_model.Name}' to {addr}: {ex.InnerException?.Message ?? ex.Message}", ex);
        }
        BoundAddress = addr;
        if (!addr.IsPipe && addr.Port == 0)
        {
            var bound = _server.Features.Get<IServerAddressesFeature>()?.Addresses.FirstOrDefault();
            if (bound is not null && Uri.TryCreate(bound, UriKind.Absolute, out var uri)) BoundAddress = addr with { Port = uri.Port };
        }
    }

    private static IPAddress ParseListenAddress(string address) =>
        IPAddress.TryParse(address, out var ip) ? ip : throw new ListenerBindException($"listener address '{address}' is not an IP address", new FormatException());

    internal static void ConfigureLimits(KestrelServerLimits limits, HttpConnectionManagerModel hcm)
    {
        // Envoy does not cap proxied bodies or throttle slow peers by default; Kestrel does. Use Envoy's defaults.
        limits.MaxRequestBodySize = null;
        limits.MinRequestBodyDataRate = null;
        limits.MinResponseDataRate = null;
        limits.KeepAliveTimeout = TimeSpan.FromHours(1);          // HCM common_http_protocol_options.idle_timeout default
        limits.MaxRequestHeadersTotalSize = 60 * 1024;              // max_request_headers_kb default 60
        limits.MaxConcurrentConnections = null;
        limits.MaxConcurrentUpgradedConnections = null;
        limits.Http2.MaxStreamsPerConnection = hcm.Http2MaxConcurrentStreams ?? 1024;
        if (hcm.Http2InitialStreamWindowSize is int sw) limits.Http2.InitialStreamWindowSize = Math.Clamp(sw, 65535, int.MaxValue);
        if (hcm.Http2InitialConnectionWindowSize is int cw) limits.Http2.InitialConnectionWindowSize = Math.Clamp(cw, 65535, int.MaxValue);
    }

    private async Task OnConnectionAsync(ConnectionContext context, ConnectionDelegate next, bool sniffHttp2)
    {
        CxTotal.Inc();
        context.Features.Set(new AccessLog.DownstreamConnectionId()); // %CONNECTION_ID%
        CxActive.Inc();
        var connectionInfo = _accessLogs is null ? null : new Router.UpstreamRequest();
        var hcmStats = _hcm.Stats;
        hcmStats.DownstreamCxTotal.Inc();
        hcmStats.DownstreamCxActive.Inc();
        try
        {
            if (_tls is not null)
            {
                await _tls.RunAsync(context, next).ConfigureAwait(false);
                return;
            }
            var http2 = false;
            if (sniffHttp2)
            {
                http2 = await StartsWithHttp2PrefaceAsync(context.Transport.Input, context.ConnectionClosed).ConfigureAwait(false);
                if (http2)
                {
                    context.Features.Set<ITlsConnectionFeature>(PriorKnowledgeH2.Instance);
                    context.Features.Set<ITlsApplicationProtocolFeature>(PriorKnowledgeH2.Instance);
                }
            }
            else
            {
                http2 = _hcm.Model.CodecType == CodecType.Http2;
            }
            (http2 ? hcmStats.DownstreamCxHttp2Total : hcmStats.DownstreamCxHttp1Total).Inc();
            await next(context).ConfigureAwait(false);
        }
        finally
        {
            CxActive.Dec();
            CxDestroy.Inc();
            hcmStats.DownstreamCxActive.Dec();
            if (connectionInfo is not null) LogConnection(context, connectionInfo);
        }
    }

    /// <summary>Envoy's listener access log: written when the connection closes, from the connection's facts only
    /// (addresses, duration, connection id); request and response operators print "-", the response code 0.</summary>
    private void LogConnection(ConnectionContext connection, Router.UpstreamRequest info)
    {
        var http = new DefaultHttpContext();
        if (connection.RemoteEndPoint is IPEndPoint remote)
        {
            http.Connection.RemoteIpAddress = remote.Address;
            http.Connection.RemotePort = remote.Port;
        }
        if (connection.LocalEndPoint is IPEndPoint local)
        {
            http.Connection.LocalIpAddress = local.Address;
            http.Connection.LocalPort = local.Port;
        }
        if (connection.Features.Get<AccessLog.DownstreamConnectionId>() is { } id) http.Features.Set(id);
        http.Response.StatusCode = 0;
        var c = new AccessLog.AccessLogContext(http, info, System.Diagnostics.Stopwatch.GetTimestamp(), DateTime.UtcNow);
        foreach (var log in _accessLogs!) log.Log(c);
    }

    /// <summary>After the TLS handshake: ALPN decides HTTP/2; without ALPN, as Envoy's AUTO codec, the HTTP/2 preface does.</summary>
    private async Task OnTlsEstablishedAsync(ConnectionContext context, ConnectionDelegate next, bool http2Enabled)
    {
        _tls!.OnEstablished(context);
        var alpn = context.Features.Get<ITlsApplicationProtocolFeature>()?.ApplicationProtocol ?? default;
        var http2 = alpn.Span.SequenceEqual("h2"u8);
        if (!http2 && alpn.IsEmpty && http2Enabled)
        {
            http2 = await StartsWithHttp2PrefaceAsync(context.Transport.Input, context.ConnectionClosed).ConfigureAwait(false);
            if (http2) context.Features.Set<ITlsApplicationProtocolFeature>(PriorKnowledgeH2.Instance);
        }
        else if (!http2 && alpn.IsEmpty) http2 = _hcm.Model.CodecType == CodecType.Http2;
        (http2 ? _hcm.Stats.DownstreamCxHttp2Total : _hcm.Stats.DownstreamCxHttp1Total).Inc();
        await next(context).ConfigureAwait(false);
    }

    /// <summary>Reads until the first bytes either match or rule out the 24-byte HTTP/2 preface, consuming nothing.</summary>
    internal static async ValueTask<bool> StartsWithHttp2PrefaceAsync(PipeReader input, CancellationToken ct)
    {
        while (true)
        {
            ReadResult result;
            try
            {
                result = await input.ReadAsync(ct).ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
                return false;
            }
            var buffer = result.Buffer;
            var verdict = Compare(buffer);
            if (verdict != 0 || result.IsCompleted || result.IsCanceled)
            {
                input.AdvanceTo(buffer.Start);
                return verdict > 0;
            }
            // Not enough bytes to decide: mark them examined so the next read waits for more.
            input.AdvanceTo(buffer.Start, buffer.End);
        }
    }

    /// <summary>+1 preface, -1 not a preface, 0 undecided (a shorter prefix of it so far).</summary>
    private static int Compare(ReadOnlySequence<byte> buffer)
    {
        var len = (int)Math.Min(buffer.Length, s_http2Preface.Length);
        Span<byte> head = stackalloc byte[24];
        buffer.Slice(0, len).CopyTo(head);
        if (!head[..len].SequenceEqual(s_http2Preface.AsSpan(0, len))) return -1;
        return len == s_http2Preface.Length ? 1 : 0;
    }

    /// <summary>Marks a cleartext connection as negotiated "h2" so Kestrel speaks HTTP/2 on it. Carries no certificate;
    /// the request's scheme stays "http" because Kestrel takes it from :scheme (AllowAlternateSchemes).</summary>
    private sealed class PriorKnowledgeH2 : ITlsConnectionFeature, ITlsApplicationProtocolFeature
    {
        public static readonly PriorKnowledgeH2 Instance = new();
        private static readonly ReadOnlyMemory<byte> s_h2 = "h2"u8.ToArray();
        public X509Certificate2? ClientCertificate { get => null; set { } }
        public Task<X509Certificate2?> GetClientCertificateAsync(CancellationToken cancellationToken) => Task.FromResult<X509Certificate2?>(null);
        public ReadOnlyMemory<byte> ApplicationProtocol => s_h2;
    }

    // ----- IHttpApplication: Kestrel hands every request straight to the connection manager (no middleware) -----

    public HttpContext CreateContext(IFeatureCollection contextFeatures) => new DefaultHttpContext(contextFeatures);

    public Task ProcessRequestAsync(HttpContext context)
    {
        // Draining (admin /drain_listeners?graceful): HTTP/1 clients are told to close, as Envoy's drain does.
        if (_draining && !HttpProtocol.IsHttp2(context.Request.Protocol)) context.Response.OnStarting(s_closeConnection, context.Response);
        return _hcm.HandleAsync(context, isTls: _tls is not null);
    }

    private volatile bool _draining;

    /// <summary>Starts the listener's drain: responses ask HTTP/1 clients to close their connection.</summary>
    internal void StartDraining() => _draining = true;

    private static readonly Func<object, Task> s_closeConnection = static state =>
    {
        ((HttpResponse)state).Headers.Connection = "close";
        return Task.CompletedTask;
    };

    public void DisposeContext(HttpContext context, Exception? exception)
    {
    }

    public async Task StopAsync(CancellationToken ct)
    {
        if (_server is not null) await _server.StopAsync(ct).ConfigureAwait(false);
    }

    public async ValueTask DisposeAsync()
    {
        if (_server is null) return;
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(5));
        try
        {
            await _server.StopAsync(cts.Token).ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
        }
        _server.Dispose();
        _server = null;
    }
}
