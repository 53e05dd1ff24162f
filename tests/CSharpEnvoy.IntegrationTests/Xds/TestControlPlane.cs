using System.Collections.Concurrent;
using System.Net;
using System.Threading.Channels;
using Envoy.Service.Discovery.V3;
using Google.Protobuf;
using Google.Protobuf.WellKnownTypes;
using Grpc.Core;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace CSharpEnvoy.IntegrationTests.Xds;

/// <summary>
/// A scriptable xDS management server (state of the world and delta; the aggregated service and the four per-type
/// services: ListenerDiscoveryService, ClusterDiscoveryService, RouteDiscoveryService, EndpointDiscoveryService) on a
/// Kestrel h2c port. A test sets resources
/// per type with a version; every open stream gets what it subscribed to, following Envoy's xDS protocol: SotW
/// responses carry all (wildcard) or all requested resources, delta responses only what changed and what was removed.
/// Every request received is recorded, so a test can await the ACK or NACK of a version.
/// </summary>
public sealed class TestControlPlane : IAsyncDisposable
{
    public const string ClusterType = "type.googleapis.com/envoy.config.cluster.v3.Cluster";
    public const string EndpointType = "type.googleapis.com/envoy.config.endpoint.v3.ClusterLoadAssignment";
    public const string ListenerType = "type.googleapis.com/envoy.config.listener.v3.Listener";
    public const string RouteType = "type.googleapis.com/envoy.config.route.v3.RouteConfiguration";
    public const string SecretType = "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.Secret";
    private static readonly string[] s_types = [ClusterType, EndpointType, ListenerType, RouteType, SecretType];

    private readonly object _gate = new();
    private readonly Dictionary<string, (string Version, List<(string Name, Any Resource)> Resources)> _state = new();
    private readonly List<StreamState> _streams = new();
    private readonly List<IMessage> _received = new();
    private readonly List<long> _receivedAt = new();
    private readonly List<(Func<IMessage, bool> Match, TaskCompletionSource<IMessage> Tcs)> _waiters = new();
    private WebApplication? _app;
    private long _nonce;

    public int Port { get; private set; }

    /// <summary>Every DiscoveryRequest / DeltaDiscoveryRequest received, in order.</summary>
    public IReadOnlyList<IMessage> Received
    {
        get { lock (_gate) return _received.ToList(); }
    }

    /// <summary>When each of <see cref="Received"/> arrived (<see cref="System.Diagnostics.Stopwatch"/> timestamps).</summary>
    public IReadOnlyList<long> ReceivedAt
    {
        get { lock (_gate) return _receivedAt.ToList(); }
    }

    public int StreamsOpened;

    /// <summary>Streams opened per gRPC method ("StreamAggregatedResources", "StreamListeners", "DeltaEndpoints", ...).</summary>
    public readonly ConcurrentDictionary<string, int> StreamsByMethod = new();

    private Action<Microsoft.AspNetCore.Server.Kestrel.Core.ListenOptions>? _tls;

    /// <param name="tls">Configures TLS on the listening port (e.g. <c>UseHttps</c> requiring a client certificate);
    /// null for h2c.</param>
    public static async Task<TestControlPlane> StartAsync(Action<Microsoft.AspNetCore.Server.Kestrel.Core.ListenOptions>? tls = null)
    {
        var cp = new TestControlPlane { _tls = tls };
        await cp.StartServerAsync(0);
        return cp;
    }

    private async Task StartServerAsync(int port)
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        builder.WebHost.UseKestrelHttpsConfiguration();
        builder.WebHost.ConfigureKestrel(k => k.Listen(IPAddress.Loopback, port, lo =>
        {
            lo.Protocols = HttpProtocols.Http2;
            _tls?.Invoke(lo);
        }));
        builder.Services.AddGrpc();
        builder.Services.AddSingleton(new AdsService(this));
        builder.Services.AddSingleton(new LdsService(this));
        builder.Services.AddSingleton(new CdsService(this));
        builder.Services.AddSingleton(new RdsService(this));
        builder.Services.AddSingleton(new EdsService(this));
        builder.Services.AddSingleton(new SdsService(this));
        var app = builder.Build();
        app.MapGrpcService<AdsService>();
        app.MapGrpcService<LdsService>();
        app.MapGrpcService<CdsService>();
        app.MapGrpcService<RdsService>();
        app.MapGrpcService<EdsService>();
        app.MapGrpcService<SdsService>();
        await app.StartAsync();
        _app = app;
        Port = new Uri(app.Urls.First()).Port;
    }

    /// <summary>Stops the server (streams break); the state is kept.</summary>
    public async Task StopAsync()
    {
        DropStreams();
        if (_app is not null)
        {
            using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(2));
            await _app.StopAsync(cts.Token);
            await _app.DisposeAsync();
            _app = null;
        }
    }

    /// <summary>Starts again on the same port with the same state.</summary>
    public Task RestartAsync() => StartServerAsync(Port);

    /// <summary>Ends every open stream (the client reconnects).</summary>
    public void DropStreams()
    {
        lock (_gate)
            foreach (var s in _streams) s.Cts.Cancel();
    }

    /// <summary>Sets every type at once: the resources by their type, all with <paramref name="version"/>.</summary>
    public void SetSnapshot(string version, params IMessage[] resources)
    {
        lock (_gate)
        {
            foreach (var t in s_types)
                _state[t] = (version, resources.Where(r => TypeUrl(r) == t).Select(r => (NameOf(r), Any.Pack(r))).ToList());
            Kick();
        }
    }

    /// <summary>Sets one type's resources as raw Anys (for malformed or unexpected content).</summary>
    public void SetResources(string typeUrl, string version, IEnumerable<(string Name, Any Resource)> resources)
    {
        lock (_gate)
        {
            _state[typeUrl] = (version, resources.ToList());
            Kick();
        }
    }

    public Task<DiscoveryRequest> WaitForAckAsync(string typeUrl, string version, TimeSpan? timeout = null) =>
        WaitAsync<DiscoveryRequest>(r => r.TypeUrl == typeUrl && r.VersionInfo == version && r.ResponseNonce.Length > 0 && r.ErrorDetail is null, timeout);

    public Task<DiscoveryRequest> WaitForNackAsync(string typeUrl, TimeSpan? timeout = null) =>
        WaitAsync<DiscoveryRequest>(r => r.TypeUrl == typeUrl && r.ErrorDetail is not null, timeout);

    public async Task<T> WaitAsync<T>(Func<T, bool> match, TimeSpan? timeout = null) where T : class, IMessage
    {
        var tcs = new TaskCompletionSource<IMessage>(TaskCreationOptions.RunContinuationsAsynchronously);
        lock (_gate)
        {
            foreach (var r in _received)
                if (r is T t && match(t)) return t;
            _waiters.Add((m => m is T t && match(t), tcs));
        }
        return (T)await tcs.Task.WaitAsync(timeout ?? TimeSpan.FromSeconds(20));
    }

    private void Record(IMessage request)
    {
        lock (_gate)
        {
            _received.Add(request);
            _receivedAt.Add(System.Diagnostics.Stopwatch.GetTimestamp());
            for (var i = _waiters.Count - 1; i >= 0; i--)
                if (_waiters[i].Match(request))
                {
                    _waiters[i].Tcs.TrySetResult(request);
                    _waiters.RemoveAt(i);
                }
        }
    }

    private void Kick()
    {
        foreach (var s in _streams) s.Events.Writer.TryWrite(true);
    }

    internal static string TypeUrl(IMessage m) => "type.googleapis.com/" + m.Descriptor.FullName;

    private static string NameOf(IMessage m) => m switch
    {
        Envoy.Config.Cluster.V3.Cluster c => c.Name,
        Envoy.Config.Endpoint.V3.ClusterLoadAssignment a => a.ClusterName,
        Envoy.Config.Listener.V3.Listener l => l.Name,
        Envoy.Config.Route.V3.RouteConfiguration r => r.Name,
        Envoy.Extensions.TransportSockets.Tls.V3.Secret s => s.Name,
        _ => throw new ArgumentException("not an xDS resource: " + m.Descriptor.FullName),
    };

    private static bool IsWildcardType(string t) => t is ClusterType or ListenerType;

    private sealed class StreamState
    {
        public readonly CancellationTokenSource Cts = new();
        public readonly Channel<bool> Events = Channel.CreateUnbounded<bool>();
        // Per type: subscribed names (null = wildcard); SotW: last version and names sent; delta: what the client has.
        public readonly Dictionary<string, HashSet<string>?> Subscriptions = new();
        public readonly Dictionary<string, (string Version, string Names)> SotwSent = new();
        public readonly Dictionary<string, Dictionary<string, string>> DeltaKnown = new();
    }

    private sealed class AdsService(TestControlPlane cp) : AggregatedDiscoveryService.AggregatedDiscoveryServiceBase
    {
        public override Task StreamAggregatedResources(IAsyncStreamReader<DiscoveryRequest> requestStream, IServerStreamWriter<DiscoveryResponse> responseStream, ServerCallContext context) =>
            cp.ServeSotwAsync("StreamAggregatedResources", null, requestStream, responseStream, context);

        public override Task DeltaAggregatedResources(IAsyncStreamReader<DeltaDiscoveryRequest> requestStream, IServerStreamWriter<DeltaDiscoveryResponse> responseStream, ServerCallContext context) =>
            cp.ServeDeltaAsync("DeltaAggregatedResources", null, requestStream, responseStream, context);
    }

    private sealed class LdsService(TestControlPlane cp) : Envoy.Service.Listener.V3.ListenerDiscoveryService.ListenerDiscoveryServiceBase
    {
        public override Task StreamListeners(IAsyncStreamReader<DiscoveryRequest> requestStream, IServerStreamWriter<DiscoveryResponse> responseStream, ServerCallContext context) =>
            cp.ServeSotwAsync("StreamListeners", ListenerType, requestStream, responseStream, context);

        public override Task DeltaListeners(IAsyncStreamReader<DeltaDiscoveryRequest> requestStream, IServerStreamWriter<DeltaDiscoveryResponse> responseStream, ServerCallContext context) =>
            cp.ServeDeltaAsync("DeltaListeners", ListenerType, requestStream, responseStream, context);
    }

    private sealed class CdsService(TestControlPlane cp) : Envoy.Service.Cluster.V3.ClusterDiscoveryService.ClusterDiscoveryServiceBase
    {
        public override Task StreamClusters(IAsyncStreamReader<DiscoveryRequest> requestStream, IServerStreamWriter<DiscoveryResponse> responseStream, ServerCallContext context) =>
            cp.ServeSotwAsync("StreamClusters", ClusterType, requestStream, responseStream, context);

        public override Task DeltaClusters(IAsyncStreamReader<DeltaDiscoveryRequest> requestStream, IServerStreamWriter<DeltaDiscoveryResponse> responseStream, ServerCallContext context) =>
            cp.ServeDeltaAsync("DeltaClusters", ClusterType, requestStream, responseStream, context);
    }

    private sealed class RdsService(TestControlPlane cp) : Envoy.Service.Route.V3.RouteDiscoveryService.RouteDiscoveryServiceBase
    {
        public override Task StreamRoutes(IAsyncStreamReader<DiscoveryRequest> requestStream, IServerStreamWriter<DiscoveryResponse> responseStream, ServerCallContext context) =>
            cp.ServeSotwAsync("StreamRoutes", RouteType, requestStream, responseStream, context);

        public override Task DeltaRoutes(IAsyncStreamReader<DeltaDiscoveryRequest> requestStream, IServerStreamWriter<DeltaDiscoveryResponse> responseStream, ServerCallContext context) =>
            cp.ServeDeltaAsync("DeltaRoutes", RouteType, requestStream, responseStream, context);
    }

    private sealed class EdsService(TestControlPlane cp) : Envoy.Service.Endpoint.V3.EndpointDiscoveryService.EndpointDiscoveryServiceBase
    {
        public override Task StreamEndpoints(IAsyncStreamReader<DiscoveryRequest> requestStream, IServerStreamWriter<DiscoveryResponse> responseStream, ServerCallContext context) =>
            cp.ServeSotwAsync("StreamEndpoints", EndpointType, requestStream, responseStream, context);

        public override Task DeltaEndpoints(IAsyncStreamReader<DeltaDiscoveryRequest> requestStream, IServerStreamWriter<DeltaDiscoveryResponse> responseStream, ServerCallContext context) =>
            cp.ServeDeltaAsync("DeltaEndpoints", EndpointType, requestStream, responseStream, context);
    }

    private sealed class SdsService(TestControlPlane cp) : Envoy.Service.Secret.V3.SecretDiscoveryService.SecretDiscoveryServiceBase
    {
        public override Task StreamSecrets(IAsyncStreamReader<DiscoveryRequest> requestStream, IServerStreamWriter<DiscoveryResponse> responseStream, ServerCallContext context) =>
            cp.ServeSotwAsync("StreamSecrets", SecretType, requestStream, responseStream, context);

        public override Task DeltaSecrets(IAsyncStreamReader<DeltaDiscoveryRequest> requestStream, IServerStreamWriter<DeltaDiscoveryResponse> responseStream, ServerCallContext context) =>
            cp.ServeDeltaAsync("DeltaSecrets", SecretType, requestStream, responseStream, context);
    }

    /// <summary>A per-type service only serves its own type (<paramref name="onlyType"/>; null for ADS): a request for
    /// another type fails the stream, as a real management server would.</summary>
    private static void CheckType(string? onlyType, string typeUrl)
    {
        if (onlyType is not null && typeUrl.Length > 0 && typeUrl != onlyType)
            throw new RpcException(new Status(StatusCode.InvalidArgument, $"type '{typeUrl}' requested on the service for '{onlyType}'"));
    }

    private Task ServeSotwAsync(string method, string? onlyType, IAsyncStreamReader<DiscoveryRequest> requests, IServerStreamWriter<DiscoveryResponse> responses, ServerCallContext context)
    {
        StreamsByMethod.AddOrUpdate(method, 1, (_, n) => n + 1);
        return RunStreamAsync(context, (st, ct) => ReadSotwAsync(onlyType, requests, st, ct), SotwResponses, m => responses.WriteAsync((DiscoveryResponse)m));
    }

    private Task ServeDeltaAsync(string method, string? onlyType, IAsyncStreamReader<DeltaDiscoveryRequest> requests, IServerStreamWriter<DeltaDiscoveryResponse> responses, ServerCallContext context)
    {
        StreamsByMethod.AddOrUpdate(method, 1, (_, n) => n + 1);
        return RunStreamAsync(context, (st, ct) => ReadDeltaAsync(onlyType, requests, st, ct), DeltaResponses, m => responses.WriteAsync((DeltaDiscoveryResponse)m));
    }

    private async Task ReadSotwAsync(string? onlyType, IAsyncStreamReader<DiscoveryRequest> requests, StreamState st, CancellationToken ct)
    {
        while (await requests.MoveNext(ct))
        {
            var r = requests.Current;
            Record(r);
            CheckType(onlyType, r.TypeUrl);
            lock (_gate)
            {
                st.Subscriptions[r.TypeUrl] = r.ResourceNames.Count == 0 && IsWildcardType(r.TypeUrl) ? null : new HashSet<string>(r.ResourceNames);
                if (r.ResponseNonce.Length == 0) st.SotwSent.Remove(r.TypeUrl); // a fresh subscription gets the current state
            }
            st.Events.Writer.TryWrite(true);
        }
    }

    private async Task ReadDeltaAsync(string? onlyType, IAsyncStreamReader<DeltaDiscoveryRequest> requests, StreamState st, CancellationToken ct)
    {
        while (await requests.MoveNext(ct))
        {
            var r = requests.Current;
            Record(r);
            CheckType(onlyType, r.TypeUrl);
            lock (_gate)
            {
                var isNew = !st.Subscriptions.ContainsKey(r.TypeUrl);
                if (isNew)
                {
                    var subs = r.ResourceNamesSubscribe.ToHashSet();
                    st.Subscriptions[r.TypeUrl] = (subs.Count == 0 && IsWildcardType(r.TypeUrl)) || subs.Contains("*") ? null : subs;
                    st.DeltaKnown[r.TypeUrl] = new Dictionary<string, string>(r.InitialResourceVersions);
                }
                else if (st.Subscriptions[r.TypeUrl] is { } set)
                {
                    foreach (var n in r.ResourceNamesSubscribe) set.Add(n);
                    foreach (var n in r.ResourceNamesUnsubscribe)
                    {
                        set.Remove(n);
                        st.DeltaKnown[r.TypeUrl].Remove(n);
                    }
                }
            }
            st.Events.Writer.TryWrite(true);
        }
    }

    private async Task RunStreamAsync(ServerCallContext context, Func<StreamState, CancellationToken, Task> read, Func<StreamState, List<IMessage>> compute, Func<IMessage, Task> write)
    {
        var st = new StreamState();
        Interlocked.Increment(ref StreamsOpened);
        lock (_gate) _streams.Add(st);
        using var linked = CancellationTokenSource.CreateLinkedTokenSource(context.CancellationToken, st.Cts.Token);
        var reader = ReadThenEndAsync();
        async Task ReadThenEndAsync()
        {
            try
            {
                await read(st, linked.Token);
            }
            finally
            {
                // The client went away or broke the protocol: the stream ends.
                st.Cts.Cancel();
            }
        }
        try
        {
            await foreach (var _ in st.Events.Reader.ReadAllAsync(linked.Token))
            {
                List<IMessage> responses;
                lock (_gate) responses = compute(st);
                if (responses.Count > 0 && Interlocked.Exchange(ref _breakNext, 0) == 1)
                {
                    await BreakMidMessageAsync(context);
                    return;
                }
                foreach (var m in responses) await write(m);
            }
        }
        catch (OperationCanceledException)
        {
        }
        catch (IOException)
        {
        }
        finally
        {
            lock (_gate) _streams.Remove(st);
            try { await reader; } catch (Exception) { }
        }
    }

    private int _breakNext;

    /// <summary>The next response of any stream is cut off: half a gRPC message, then the HTTP/2 stream is reset.</summary>
    public void BreakNextResponse() => Interlocked.Exchange(ref _breakNext, 1);

    private static async Task BreakMidMessageAsync(ServerCallContext context)
    {
        var http = context.GetHttpContext();
        // A gRPC frame header announcing 1000 bytes, then 3 of them.
        await http.Response.BodyWriter.WriteAsync(new byte[] { 0, 0, 0, 0x03, 0xE8, 0x0A, 0x01, 0x31 });
        await http.Response.BodyWriter.FlushAsync();
        http.Abort();
    }

    private string NextNonce() => Interlocked.Increment(ref _nonce).ToString(System.Globalization.CultureInfo.InvariantCulture);

    /// <summary>Under the gate: SotW responses owed to a stream.</summary>
    private List<IMessage> SotwResponses(StreamState st)
    {
        var list = new List<IMessage>();
        foreach (var t in s_types)
        {
            if (!st.Subscriptions.TryGetValue(t, out var names)) continue;
            if (!_state.TryGetValue(t, out var snap)) continue;
            var chosen = snap.Resources.Where(r => names is null || names.Contains(r.Name)).ToList();
            var key = names is null ? "*" : string.Join(",", names.Order());
            if (st.SotwSent.TryGetValue(t, out var sent) && sent.Version == snap.Version && sent.Names == key) continue;
            if (names is not null && names.Count == 0) continue;
            st.SotwSent[t] = (snap.Version, key);
            var resp = new DiscoveryResponse { TypeUrl = t, VersionInfo = snap.Version, Nonce = NextNonce() };
            resp.Resources.AddRange(chosen.Select(c => c.Resource));
            list.Add(resp);
        }
        return list;
    }

    /// <summary>Under the gate: delta responses owed to a stream (changed resources, removals).</summary>
    private List<IMessage> DeltaResponses(StreamState st)
    {
        var list = new List<IMessage>();
        foreach (var t in s_types)
        {
            if (!st.Subscriptions.TryGetValue(t, out var names)) continue;
            if (!_state.TryGetValue(t, out var snap)) continue;
            var known = st.DeltaKnown[t];
            var resp = new DeltaDiscoveryResponse { TypeUrl = t, SystemVersionInfo = snap.Version };
            var present = new HashSet<string>();
            foreach (var (name, res) in snap.Resources)
            {
                if (names is not null && !names.Contains(name)) continue;
                present.Add(name);
                if (known.TryGetValue(name, out var v) && v == snap.Version) continue;
                resp.Resources.Add(new Resource { Name = name, Version = snap.Version, Resource_ = res });
                known[name] = snap.Version;
            }
            foreach (var name in known.Keys.ToList())
                if (!present.Contains(name))
                {
                    resp.RemovedResources.Add(name);
                    known.Remove(name);
                }
            if (resp.Resources.Count == 0 && resp.RemovedResources.Count == 0) continue;
            resp.Nonce = NextNonce();
            list.Add(resp);
        }
        return list;
    }

    public async ValueTask DisposeAsync() => await StopAsync();
}
