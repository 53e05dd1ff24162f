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
using Microsoft.AspNetCore.Hosting.Server.Abstractions;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.AspNetCore.Server.Kestrel.Core.Features;
using Microsoft.AspNetCore.Server.Kestrel.Transport.Sockets;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using System.Net.Security;
using Microsoft.AspNetCore.Server.Kestrel.Https;

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
    /// <summary>Swapped whole by an LDS update that keeps the socket; read once per connection.</summary>
    private volatile FilterChainTable _chains;
    private readonly Upstream.ClusterManager? _clusters;
    private readonly AccessLog.AccessLogManager? _accessLogManager;
    private readonly IServiceProvider _services;
    private readonly ILoggerFactory _loggers;
    private readonly StatsStore _stats;
    private readonly string _statPrefix;
    private readonly TlsInspector? _tlsInspector;
    /// <summary>Whether the listener's pipeline has Kestrel's HTTPS middleware (some chain terminates TLS).</summary>
    private readonly bool _anyTls;
    /// <summary>The pipeline after the chain is chosen: through the HTTPS middleware, or straight to HTTP for cleartext chains.</summary>
    private ConnectionDelegate? _tlsPipeline, _httpPipeline;
    private KestrelServer? _server;

    /// <summary>The listener's connection access logs; null when there are none.</summary>
    private readonly AccessLog.AccessLogger[]? _accessLogs;

    public ListenerHost(ListenerModel model, HttpConnectionManager hcm, StatsStore stats, IServiceProvider services, ILoggerFactory loggers)
        : this(model, [hcm], stats, services, loggers)
    {
    }

    /// <param name="hcms">One connection manager per chain of <see cref="ListenerModel.AllFilterChains"/>, in that order.</param>
    public ListenerHost(ListenerModel model, IReadOnlyList<HttpConnectionManager?> hcms, StatsStore stats, IServiceProvider services, ILoggerFactory loggers,
        Upstream.ClusterManager? clusters = null, AccessLog.AccessLogManager? accessLogs = null)
    {
        _accessLogs = AccessLog.AccessLogger.CreateAll(model.AccessLogs, accessLogs);
        _model = model;
        _clusters = clusters;
        _services = services;
        _loggers = loggers;
        _stats = stats;
        _statPrefix = "listener." + StatName(model) + ".";
        CxTotal = stats.Counter(_statPrefix, "downstream_cx_total");
        CxActive = stats.Gauge(_statPrefix, "downstream_cx_active");
        CxDestroy = stats.Counter(_statPrefix, "downstream_cx_destroy");
        NoFilterChainMatch = stats.Counter(_statPrefix, "no_filter_chain_match");
        PreCxTimeout = stats.Counter(_statPrefix, "downstream_pre_cx_timeout");
        _accessLogManager = accessLogs;
        _chains = new FilterChainTable(model, hcms, stats, _statPrefix, clusters, accessLogs);
        _anyTls = AnyTls(model);
        if (model.ListenerFilters.TlsInspector) _tlsInspector = new TlsInspector(stats, model.ListenerFilters.MaxClientHelloSize);
    }

    /// <summary>Inline scheduling of request code on I/O threads; on unless CSENVOY_INLINE_SCHEDULING=0.</summary>
    internal static bool InlineScheduling { get; } = Environment.GetEnvironmentVariable("CSENVOY_INLINE_SCHEDULING") != "0";

    public ListenerModel Model => _model;

    /// <summary>The connection managers of the listener's chains in service (TCP proxy chains have none).</summary>
    internal IEnumerable<HttpConnectionManager> ConnectionManagers
    {
        get
        {
            foreach (var c in _chains.All)
                if (c.Hcm is { } h) yield return h;
        }
    }

    /// <summary>
    /// Envoy's in-place filter chain update (Listeners: "filter chain only update"): the socket, listener filters and
    /// stats stay; a chain identical to one in service keeps it with its connections; a chain whose only change is its
    /// HTTP connection manager keeps its connections, which take the new connection manager at their next request; the
    /// other chains are new, and the connections of the chains left out drain over <paramref name="drainTime"/>.
    /// </summary>
    /// <param name="hcms">One connection manager per chain of the new model's <see cref="ListenerModel.AllFilterChains"/>.</param>
    internal void UpdateFilterChains(ListenerModel model, IReadOnlyList<HttpConnectionManager?> hcms, DrainSequence drain)
    {
        var old = new List<FilterChainRuntime>(_chains.All);
        var oldProtos = ChainProtos(_model);
        var newProtos = ChainProtos(model);
        var newModels = new List<FilterChainModel>(model.AllFilterChains);
        var kept = new HashSet<FilterChainRuntime>(ReferenceEqualityComparer.Instance);
        var runtimes = new List<FilterChainRuntime>(newModels.Count);
        for (var i = 0; i < newModels.Count; i++)
        {
            FilterChainRuntime? chain = null;
            if (oldProtos is not null && newProtos is not null)
            {
                for (var j = 0; j < old.Count && chain is null; j++)
                    if (!kept.Contains(old[j]) && oldProtos[j].Equals(newProtos[i])) chain = old[j];
                for (var j = 0; j < old.Count && chain is null && hcms[i] is { } hcm; j++)
                {
                    if (kept.Contains(old[j]) || old[j].Hcm?.Model.CodecType != hcm.Model.CodecType) continue;
                    if (!SameButConnectionManager(oldProtos[j], newProtos[i])) continue;
                    chain = old[j];
                    chain.Model = newModels[i];
                    chain.Hcm = hcm;
                }
            }
            chain ??= FilterChainTable.Create(newModels[i], hcms[i], _stats, _statPrefix, _clusters, _accessLogManager);
            kept.Add(chain);
            runtimes.Add(chain);
        }
        _model = model;
        _chains = new FilterChainTable(model, runtimes);
        foreach (var c in old)
            if (!kept.Contains(c)) c.Drain(drain);
    }

    /// <summary>The listener's FilterChain protos in <see cref="ListenerModel.AllFilterChains"/> order; null without a source.</summary>
    private static List<Envoy.Config.Listener.V3.FilterChain>? ChainProtos(ListenerModel model)
    {
        if (model.Source is not Envoy.Config.Listener.V3.Listener l) return null;
        var list = new List<Envoy.Config.Listener.V3.FilterChain>(l.FilterChains);
        if (l.DefaultFilterChain is not null) list.Add(l.DefaultFilterChain);
        return list;
    }

    private const string HcmTypeUrl = "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager";

    /// <summary>Whether two chains are the same but for their HTTP connection managers' settings.</summary>
    private static bool SameButConnectionManager(Envoy.Config.Listener.V3.FilterChain a, Envoy.Config.Listener.V3.FilterChain b)
    {
        static Envoy.Config.Listener.V3.FilterChain WithoutHcm(Envoy.Config.Listener.V3.FilterChain fc)
        {
            var c = fc.Clone();
            foreach (var f in c.Filters)
                if (f.TypedConfig?.TypeUrl == HcmTypeUrl) f.TypedConfig = new Google.Protobuf.WellKnownTypes.Any { TypeUrl = HcmTypeUrl };
            return c;
        }
        return WithoutHcm(a).Equals(WithoutHcm(b));
    }

    /// <summary>Whether <paramref name="next"/> can be applied by <see cref="UpdateFilterChains"/>: only its filter chains
    /// differ, and not in what the socket's Kestrel server was built with (protocols, TLS middleware, limits).</summary>
    internal static bool CanUpdateInPlace(ListenerModel current, ListenerModel next)
    {
        // Port 0 included: the same listener keeps its bound socket, as Envoy's in-place filter chain update does.
        if (current.Address.ToString() != next.Address.ToString() || current.StatPrefix != next.StatPrefix) return false;
        if (current.Source is not Envoy.Config.Listener.V3.Listener a || next.Source is not Envoy.Config.Listener.V3.Listener b) return false;
        var ac = a.Clone();
        var bc = b.Clone();
        ac.FilterChains.Clear();
        bc.FilterChains.Clear();
        ac.DefaultFilterChain = null;
        bc.DefaultFilterChain = null;
        if (!ac.Equals(bc)) return false;
        if (ListenProtocols(current) != ListenProtocols(next) || AnyTls(current) != AnyTls(next)) return false;
        var ha = FirstConnectionManager(current);
        var hb = FirstConnectionManager(next);
        if (ha is null || hb is null) return ha == hb;
        // What ConfigureLimits gives Kestrel from the first connection manager.
        return ha.Http2MaxConcurrentStreams == hb.Http2MaxConcurrentStreams &&
               ha.Http2InitialStreamWindowSize == hb.Http2InitialStreamWindowSize && ha.Http2InitialConnectionWindowSize == hb.Http2InitialConnectionWindowSize &&
               ha.IdleTimeout == hb.IdleTimeout && ha.RequestHeadersTimeout == hb.RequestHeadersTimeout;
    }

    private static bool AnyTls(ListenerModel model)
    {
        foreach (var fc in model.AllFilterChains)
            if (fc.Tls is not null) return true;
        return false;
    }

    /// <summary>Kestrel's limits are per socket: they come from the first chain's connection manager.</summary>
    private static HttpConnectionManagerModel? FirstConnectionManager(ListenerModel model)
    {
        foreach (var fc in model.AllFilterChains)
            if (fc.HttpConnectionManager is { } m) return m;
        return null;
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
    public Counter NoFilterChainMatch { get; }
    public Counter PreCxTimeout { get; }

    /// <summary>The bound address (with the real port when the config asked for port 0).</summary>
    public SocketAddressModel BoundAddress { get; private set; } = null!;

    /// <summary>Envoy names listener stats by address with ':' → '_' ("listener.127.0.0.1_10000.*") unless stat_prefix is set.</summary>
    internal static string StatName(ListenerModel model) =>
        model.StatPrefix != model.Address.ToString() ? model.StatPrefix : model.Address.IsPipe ? model.Address.PipePath! : $"{model.Address.Address}_{model.Address.Port}";

    /// <summary>Whether the socket this listener bound runs request code inline on its I/O thread.</summary>
    internal bool SchedulesInline { get; private set; }

    /// <summary>The listening socket; handed to the next version of the listener when it replaces this one.</summary>
    internal ListenSocket? Socket { get; private set; }

    /// <param name="socket">The socket of the listener version this one replaces (same address); null binds a new one.</param>
    public async Task StartAsync(CancellationToken ct, ListenSocket? socket = null)
    {
        var options = new KestrelServerOptions
        {
            ApplicationServices = _services,
            AddServerHeader = false,
            AllowAlternateSchemes = true, // h2c requests carry :scheme http on a connection marked as h2
        };
        if (FirstConnectionManager(_model) is { } first) ConfigureLimits(options.Limits, first);

        var protocols = ListenProtocols(_model);
        var addr = _model.Address;
        Action<ListenOptions> configure = lo =>
        {
            lo.Protocols = protocols;
            // Kestrel builds the pipeline from the last middleware back, so the later registrations capture their
            // continuations before the first (chain selection) is made.
            lo.Use(next =>
            {
                if (_anyTls) _tlsPipeline = next;
                else _httpPipeline = next;
                return context => OnConnectionAsync(context, protocols);
            });
            if (_anyTls)
            {
                // Kestrel's HTTPS middleware with the chosen chain's settings, then the codec decision on the decrypted stream.
                lo.UseHttps(new TlsHandshakeCallbackOptions { OnConnection = OnTlsHandshake });
                lo.Use(next =>
                {
                    _httpPipeline = next;
                    return context => OnTlsEstablishedAsync(context, next);
                });
            }
        };
        var owned = socket is null;
        if (socket is null)
        {
            EndPoint endPoint;
            if (addr.IsPipe)
            {
                if (File.Exists(addr.PipePath)) File.Delete(addr.PipePath!);
                endPoint = new System.Net.Sockets.UnixDomainSocketEndPoint(addr.PipePath!);
            }
            else endPoint = new IPEndPoint(ParseListenAddress(addr.Address), addr.Port);
            // Run request code on the socket's I/O thread instead of hopping to the thread pool: measured on 2 cores it
            // cuts context switches per request by more than half (docs/performance.md). Safe because nothing on the
            // request path blocks. CSENVOY_INLINE_SCHEDULING=0 turns it off. Not on listeners that speak only HTTP/2:
            // there inline output sends each stream's response on its own, where the I/O queues batch the responses of
            // many streams into one send (gRPC unary: ~15-30% less CPU per request measured; docs/performance.md).
            SchedulesInline = InlineScheduling && protocols != HttpProtocols.Http2;
            // Inline listeners run on our epoll dispatchers where there are some: fewer system calls per request
            // (Event.Dispatcher). CSENVOY_DISPATCHER=0 keeps Kestrel's socket transport.
            IConnectionListenerFactory transport = SchedulesInline && Event.Dispatcher.Enabled
                ? new Event.DispatcherTransportFactory()
                : new SocketTransportFactory(Options.Create(new SocketTransportOptions { UnsafePreferInlineScheduling = SchedulesInline }), _loggers);
            try
            {
                socket = await ListenSocket.BindAsync(endPoint, transport, _loggers.CreateLogger("listener"), ct).ConfigureAwait(false);
            }
            catch (Exception ex) when (ex is AddressInUseException or IOException or System.Net.Sockets.SocketException)
            {
                throw new ListenerBindException($"cannot bind listener '{_model.Name}' to {addr}: {ex.Message}", ex);
            }
        }
        options.Listen(socket.EndPoint, configure);
        _server = new KestrelServer(Options.Create(options), socket.Factory, _loggers);
        try
        {
            await _server.StartAsync(this, ct).ConfigureAwait(false);
        }
        catch
        {
            _server.Dispose();
            _server = null;
            if (owned) await socket.CloseIfNeverBoundAsync().ConfigureAwait(false);
            throw;
        }
        Socket = socket;
        BoundAddress = addr;
        if (socket.EndPoint is IPEndPoint ip && addr.Port == 0) BoundAddress = addr with { Port = ip.Port };
    }

    private static IPAddress ParseListenAddress(string address) =>
        IPAddress.TryParse(address, out var ip) ? ip : throw new ListenerBindException($"listener address '{address}' is not an IP address", new FormatException());

    internal static void ConfigureLimits(KestrelServerLimits limits, HttpConnectionManagerModel hcm)
    {
        // Envoy does not cap proxied bodies or throttle slow peers by default; Kestrel does. Use Envoy's defaults.
        limits.MaxRequestBodySize = null;
        limits.MinRequestBodyDataRate = null;
        limits.MinResponseDataRate = null;
        // common_http_protocol_options.idle_timeout (default 1 h). "None" (0) is ten years, not InfiniteTimeSpan, for
        // the same overflow as below.
        limits.KeepAliveTimeout = hcm.IdleTimeout == Timeout.InfiniteTimeSpan ? TimeSpan.FromDays(3650) : hcm.IdleTimeout;
        // request_headers_timeout: off unless set (Envoy), where Kestrel would give 30 s. Kestrel arms it at a
        // request's first byte, as Envoy does, answers 408 and closes the connection. "Off" is a day, not
        // InfiniteTimeSpan: Kestrel stores that as TimeSpan.MaxValue, and its timeout clock (now + ticks) overflows,
        // firing at the next heartbeat on any request whose headers straddle one.
        limits.RequestHeadersTimeout = hcm.RequestHeadersTimeout > TimeSpan.Zero ? hcm.RequestHeadersTimeout : TimeSpan.FromDays(1);
        limits.MaxRequestHeadersTotalSize = hcm.MaxRequestHeadersBytes; // max_request_headers_kb (default 60)
        limits.MaxRequestHeaderCount = hcm.MaxHeadersCount; // common_http_protocol_options.max_headers_count (default 100)
        // HTTP/2: one field may be as large as the whole limit (Kestrel's own default, 16 KiB, is the floor).
        limits.Http2.MaxRequestHeaderFieldSize = Math.Max(16 * 1024, hcm.MaxRequestHeadersBytes);
        limits.MaxConcurrentConnections = null;
        limits.MaxConcurrentUpgradedConnections = null;
        limits.Http2.MaxStreamsPerConnection = hcm.Http2MaxConcurrentStreams ?? 1024;
        if (hcm.Http2InitialStreamWindowSize is int sw) limits.Http2.InitialStreamWindowSize = Math.Clamp(sw, 65535, int.MaxValue);
        if (hcm.Http2InitialConnectionWindowSize is int cw) limits.Http2.InitialConnectionWindowSize = Math.Clamp(cw, 65535, int.MaxValue);
    }

    /// <summary>The protocols Kestrel offers on the socket: what the listener's chains' codecs need together.</summary>
    private static HttpProtocols ListenProtocols(ListenerModel model)
    {
        HttpProtocols p = 0;
        foreach (var fc in model.AllFilterChains)
            p |= fc.HttpConnectionManager?.CodecType switch
            {
                CodecType.Http1 => HttpProtocols.Http1,
                CodecType.Http2 => HttpProtocols.Http2,
                _ => HttpProtocols.Http1AndHttp2,
            };
        return p == 0 ? HttpProtocols.Http1AndHttp2 : p;
    }

    private async Task OnConnectionAsync(ConnectionContext context, HttpProtocols protocols)
    {
        CxTotal.Inc();
        context.Features.Set(new AccessLog.DownstreamConnectionId()); // %CONNECTION_ID%
        CxActive.Inc();
        var connectionInfo = _accessLogs is null ? null : new Router.UpstreamRequest();
        try
        {
            var chain = await SelectChainAsync(context).ConfigureAwait(false);
            if (chain is null) return; // closes the connection
            context.Features.Set(chain);
            // A chain an LDS update removed closes its connections once drained.
            using var closing = chain.Closing.UnsafeRegister(static c => ((ConnectionContext)c!).Abort(), context);
            // The chain runs here rather than in a method of its own: this method's state lives as long as the
            // connection, and a second async method would add its own (~150 bytes per idle connection).
            // Cleartext chains run their network RBAC now; TLS chains once the handshake is done.
            if (chain.Tls is null && !chain.ConnectionAllowed(context)) return;
            if (chain.Hcm is null)
            {
                // TCP proxy: the chain's TLS (if any) terminates first, then the bytes go upstream as they are.
                if (chain.Tls is not null) await chain.Tls.RunAsync(context, _tlsPipeline!).ConfigureAwait(false);
                else await chain.Tcp!.HandleAsync(context).ConfigureAwait(false);
                return;
            }
            var hcmStats = chain.Hcm.Stats;
            hcmStats.DownstreamCxTotal.Inc();
            hcmStats.DownstreamCxActive.Inc();
            try
            {
                if (chain.Tls is not null)
                {
                    await chain.Tls.RunAsync(context, _tlsPipeline!).ConfigureAwait(false);
                    return;
                }
                var codec = chain.Hcm.Model.CodecType;
                var http2 = codec == CodecType.Http2;
                if (codec == CodecType.Auto && protocols.HasFlag(HttpProtocols.Http2))
                {
                    http2 = await StartsWithHttp2PrefaceAsync(context.Transport.Input, context.ConnectionClosed).ConfigureAwait(false);
                    if (http2) MarkPriorKnowledgeH2(context);
                }
                else if (http2 && protocols != HttpProtocols.Http2) MarkPriorKnowledgeH2(context);
                (http2 ? hcmStats.DownstreamCxHttp2Total : hcmStats.DownstreamCxHttp1Total).Inc();
                if (!http2 && Http.Codec.Http1ServerConnection.Enabled)
                    await new Http.Codec.Http1ServerConnection(context, this, _httpPipeline!, chain.Hcm.Model.IdleTimeout,
                        chain.Hcm.Model.MaxRequestHeadersBytes, chain.Hcm.Model.MaxHeadersCount).RunAsync().ConfigureAwait(false);
                else await _httpPipeline!(context).ConfigureAwait(false);
            }
            finally
            {
                hcmStats.DownstreamCxActive.Dec();
            }
        }
        finally
        {
            CxActive.Dec();
            CxDestroy.Inc();
            if (connectionInfo is not null) LogConnection(context, connectionInfo);
        }
    }

    /// <summary>Runs the listener filters, then picks the filter chain (Envoy's order) or the default chain; null
    /// when the connection is to be closed, counted as <c>no_filter_chain_match</c> when no chain fits.</summary>
    private async ValueTask<FilterChainRuntime?> SelectChainAsync(ConnectionContext context)
    {
        var table = _chains;
        var hello = ClientHelloInfo.RawBuffer;
        if (_tlsInspector is not null)
        {
            var filters = _model.ListenerFilters;
            using var timeout = CancellationTokenSource.CreateLinkedTokenSource(context.ConnectionClosed);
            if (filters.Timeout > TimeSpan.Zero) timeout.CancelAfter(filters.Timeout);
            try
            {
                var inspected = await _tlsInspector.InspectAsync(context.Transport.Input, timeout.Token).ConfigureAwait(false);
                if (inspected is null) return null;
                hello = inspected;
            }
            catch (OperationCanceledException)
            {
                if (context.ConnectionClosed.IsCancellationRequested) return null;
                PreCxTimeout.Inc();
                if (!filters.ContinueOnTimeout) return null;
            }
        }
        if (table.Single is { } single) return single;
        var chain = table.Select(new ConnectionMatchInput(context.LocalEndPoint as IPEndPoint, context.RemoteEndPoint as IPEndPoint, hello));
        if (chain is null) NoFilterChainMatch.Inc();
        return chain;
    }

    /// <summary>Envoy's listener access log: written when the connection closes, from the connection's facts only
    /// (addresses, duration, connection id); request and response operators print "-", the response code 0.</summary>
    private void LogConnection(ConnectionContext connection, Router.UpstreamRequest info)
    {
        var c = AccessLog.AccessLogContext.ForConnection(connection, info);
        foreach (var log in _accessLogs!) log.Log(c);
    }

    private static void MarkPriorKnowledgeH2(ConnectionContext context)
    {
        context.Features.Set<ITlsConnectionFeature>(PriorKnowledgeH2.Instance);
        context.Features.Set<ITlsApplicationProtocolFeature>(PriorKnowledgeH2.Instance);
    }

    /// <summary>The TLS settings of the connection's chain (chosen before the handshake starts).</summary>
    private static ValueTask<SslServerAuthenticationOptions> OnTlsHandshake(TlsHandshakeCallbackContext context)
    {
        var chain = context.Connection.Features.Get<FilterChainRuntime>();
        return ValueTask.FromResult(chain!.Tls!.CreateOptions(context.Connection));
    }

    /// <summary>After the TLS handshake: ALPN decides HTTP/2; without ALPN, as Envoy's AUTO codec, the HTTP/2 preface does.</summary>
    private async Task OnTlsEstablishedAsync(ConnectionContext context, ConnectionDelegate next)
    {
        var chain = context.Features.Get<FilterChainRuntime>()!;
        chain.Tls!.OnEstablished(context);
        if (!chain.ConnectionAllowed(context)) return;
        if (chain.Hcm is null)
        {
            await chain.Tcp!.HandleAsync(context).ConfigureAwait(false);
            return;
        }
        var codec = chain.Hcm.Model.CodecType;
        var alpn = context.Features.Get<ITlsApplicationProtocolFeature>()?.ApplicationProtocol ?? default;
        var http2 = alpn.Span.SequenceEqual("h2"u8);
        if (!http2 && alpn.IsEmpty && codec == CodecType.Auto)
        {
            http2 = await StartsWithHttp2PrefaceAsync(context.Transport.Input, context.ConnectionClosed).ConfigureAwait(false);
            if (http2) context.Features.Set<ITlsApplicationProtocolFeature>(PriorKnowledgeH2.Instance);
        }
        else if (!http2 && alpn.IsEmpty && codec == CodecType.Http2)
        {
            http2 = true;
            context.Features.Set<ITlsApplicationProtocolFeature>(PriorKnowledgeH2.Instance);
        }
        (http2 ? chain.Hcm.Stats.DownstreamCxHttp2Total : chain.Hcm.Stats.DownstreamCxHttp1Total).Inc();
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

    /// <summary>A <see cref="DefaultHttpContext"/> from the thread's pool, re-initialised for the request: it saves the
    /// context, request, response and connection objects (about 300 bytes) on every request. Pooled per thread rather
    /// than kept per connection, as ASP.NET's hosting layer does in <see cref="IHostContextContainer{TContext}"/>, so that
    /// an idle keep-alive connection holds none (about 400 bytes each).</summary>
    public HttpContext CreateContext(IFeatureCollection contextFeatures)
    {
        var context = PerThreadPool<DefaultHttpContext>.Rent();
        if (context is null) return new DefaultHttpContext(contextFeatures);
        context.Initialize(contextFeatures);
        return context;
    }

    public Task ProcessRequestAsync(HttpContext context)
    {
        var chain = context.Features.Get<FilterChainRuntime>()!;
        // Draining (admin /drain_listeners?graceful, a removed listener or filter chain): clients are told to close, at
        // once or gradually (--drain-strategy), as Envoy's drain does: HTTP/1 responses carry Connection: close, an
        // HTTP/2 connection gets a GOAWAY (its streams in flight finish).
        if ((_draining ?? chain.Draining) is { } drain && drain.CloseConnection())
        {
            if (!HttpProtocol.IsHttp2(context.Request.Protocol)) context.Response.OnStarting(s_closeConnection, context.Response);
            else context.Features.Get<Microsoft.AspNetCore.Connections.Features.IConnectionLifetimeNotificationFeature>()?.RequestClose();
        }
        return chain.Hcm!.HandleAsync(context, isTls: chain.Tls is not null);
    }

    private volatile DrainSequence? _draining;

    /// <summary>Starts the listener's drain: responses ask HTTP/1 clients to close their connection.</summary>
    internal void StartDraining(DrainSequence drain) => _draining ??= drain;

    private static readonly Func<object, Task> s_closeConnection = static state =>
    {
        ((HttpResponse)state).Headers.Connection = "close";
        return Task.CompletedTask;
    };

    /// <summary>Kestrel is done with the request: the context drops its features (so it keeps nothing of the connection
    /// alive) and goes back to the thread's pool.</summary>
    public void DisposeContext(HttpContext context, Exception? exception)
    {
        if (context is not DefaultHttpContext pooled) return;
        pooled.Uninitialize();
        PerThreadPool<DefaultHttpContext>.Return(pooled);
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

