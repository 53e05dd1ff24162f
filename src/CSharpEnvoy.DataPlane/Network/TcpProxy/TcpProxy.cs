using System.IO.Pipelines;
using System.Net;
using System.Net.Sockets;
using CSharpEnvoy.Config.Model.Listener;
using CSharpEnvoy.DataPlane.Stats;
using CSharpEnvoy.DataPlane.Upstream;
using Microsoft.AspNetCore.Connections;

namespace CSharpEnvoy.DataPlane.Network.TcpProxy;

/// <summary>
/// <c>envoy.filters.network.tcp_proxy</c>: picks a cluster (weighted), a host from the cluster's load balancer
/// (so health checking and outlier ejection apply), connects (up to max_connect_attempts hosts), then copies bytes
/// both ways over pipes until either side closes, propagating half-closes, or the connection is idle for
/// idle_timeout. Stats are Envoy's <c>tcp.&lt;stat_prefix&gt;.*</c> plus the cluster's <c>upstream_cx_*</c>. With
/// <c>access_log</c>, one entry per connection when it closes (Envoy's TCP access log), with its response flags.
/// </summary>
internal sealed class TcpProxy
{
    private readonly TcpProxyModel _model;
    private readonly ClusterManager _clusters;
    private readonly uint _totalWeight;
    private readonly Counter _cxTotal, _noRoute, _connectAttemptsExceeded, _idleTimeout, _rxBytes, _txBytes;
    private readonly AccessLog.AccessLogger[]? _accessLogs;

    public TcpProxy(TcpProxyModel model, ClusterManager clusters, StatsStore stats, AccessLog.AccessLogManager? accessLogs = null)
    {
        _model = model;
        _clusters = clusters;
        _accessLogs = AccessLog.AccessLogger.CreateAll(model.AccessLogs, accessLogs);
        foreach (var (_, w) in model.Clusters) _totalWeight += w;
        var p = "tcp." + model.StatPrefix + ".";
        _cxTotal = stats.Counter(p, "downstream_cx_total");
        _noRoute = stats.Counter(p, "downstream_cx_no_route");
        _connectAttemptsExceeded = stats.Counter(p, "max_connect_attempts_exceeded");
        _idleTimeout = stats.Counter(p, "idle_timeout");
        _rxBytes = stats.Counter(p, "downstream_cx_rx_bytes_total");
        _txBytes = stats.Counter(p, "downstream_cx_tx_bytes_total");
    }

    public async Task HandleAsync(ConnectionContext downstream)
    {
        _cxTotal.Inc();
        // The connection's stream info: what the access log reads when the connection closes.
        var info = new Router.UpstreamRequest();
        try
        {
            await ProxyAsync(downstream, info).ConfigureAwait(false);
        }
        finally
        {
            if (_accessLogs is not null) Log(downstream, info);
        }
    }

    private async Task ProxyAsync(ConnectionContext downstream, Router.UpstreamRequest info)
    {
        var cluster = PickCluster();
        if (cluster is null)
        {
            _noRoute.Inc();
            info.Flags |= Http.ResponseFlags.NoClusterFound;
            return;
        }
        info.Cluster = cluster;
        // As Envoy, checked before connecting: a connection over max_connections is refused (UO).
        if (!cluster.Resources.Connections.TryAcquire())
        {
            cluster.Resources.UpstreamCxOverflow.Inc();
            info.Flags |= Http.ResponseFlags.UpstreamOverflow;
            return;
        }
        // The unit taken is held while connecting and for the connection's life.
        Socket? upstream;
        try
        {
            upstream = await ConnectAsync(cluster, downstream, info).ConfigureAwait(false);
        }
        catch
        {
            cluster.Resources.Connections.Release();
            throw;
        }
        if (upstream is null)
        {
            cluster.Resources.Connections.Release();
            return;
        }
        cluster.Stats.UpstreamCxTotal.Inc();
        cluster.Stats.UpstreamCxActive.Inc();
        try
        {
            await using var stream = new NetworkStream(upstream, ownsSocket: true);
            var upReader = PipeReader.Create(stream, new StreamPipeReaderOptions(leaveOpen: true));
            var upWriter = PipeWriter.Create(stream, new StreamPipeWriterOptions(leaveOpen: true));
            using var idle = new IdleTimer(_model.IdleTimeout);
            var down = CopyAsync(downstream.Transport.Input, upWriter, _rxBytes, idle, () => ShutdownSend(upstream), info, received: true);
            var up = CopyAsync(upReader, downstream.Transport.Output, _txBytes, idle, null, info, received: false);
            // Envoy closes the connection when either direction ends with a close from the other side; here: when both
            // directions are done, or either fails, or the idle timer fires.
            await Task.WhenAny(Task.WhenAll(down, up), idle.Fired).ConfigureAwait(false);
            var clean = down.IsCompletedSuccessfully && up.IsCompletedSuccessfully;
            if (!clean && idle.Fired.IsCompleted) _idleTimeout.Inc();
            upstream.Close(0);
            // A clean end leaves Kestrel to flush what is still buffered and close; anything else resets both sides.
            if (!clean) downstream.Abort();
            try
            {
                await Task.WhenAll(down, up).ConfigureAwait(false);
            }
            catch (Exception e) when (e is IOException or SocketException or ObjectDisposedException or ConnectionAbortedException or OperationCanceledException)
            {
            }
        }
        finally
        {
            cluster.Stats.UpstreamCxActive.Dec();
            cluster.Stats.UpstreamCxDestroy.Inc();
            cluster.Resources.Connections.Release();
        }
    }

    private static void ShutdownSend(Socket s)
    {
        try
        {
            s.Shutdown(SocketShutdown.Send);
        }
        catch (Exception e) when (e is SocketException or ObjectDisposedException)
        {
        }
    }

    /// <summary>Envoy's TCP access log entry, from the connection's facts and its stream info.</summary>
    private void Log(ConnectionContext connection, Router.UpstreamRequest info)
    {
        var c = AccessLog.AccessLogContext.ForConnection(connection, info);
        foreach (var log in _accessLogs!) log.Log(c);
    }

    /// <summary>Copies until the reader completes, then completes the writer (a half-close) and runs <paramref name="onEnd"/>.
    /// The bytes are counted in the listener's stat and in the connection's stream info (received from, or sent to, downstream).</summary>
    private static async Task CopyAsync(PipeReader reader, PipeWriter writer, Counter bytes, IdleTimer idle, Action? onEnd,
        Router.UpstreamRequest info, bool received)
    {
        try
        {
            while (true)
            {
                var result = await reader.ReadAsync().ConfigureAwait(false);
                var buffer = result.Buffer;
                try
                {
                    if (!buffer.IsEmpty)
                    {
                        idle.Touch();
                        bytes.Add(buffer.Length);
                        if (received) info.BytesReceived += buffer.Length;
                        else info.BytesSent += buffer.Length;
                        foreach (var segment in buffer) await writer.WriteAsync(segment).ConfigureAwait(false);
                    }
                    if (result.IsCompleted || result.IsCanceled) break;
                }
                finally
                {
                    reader.AdvanceTo(buffer.End);
                }
            }
            await writer.CompleteAsync().ConfigureAwait(false);
            onEnd?.Invoke();
        }
        catch (Exception e) when (e is IOException or SocketException or ObjectDisposedException or ConnectionAbortedException or InvalidOperationException)
        {
            await writer.CompleteAsync(e).ConfigureAwait(false);
            throw;
        }
    }

    private Cluster? PickCluster()
    {
        var clusters = _model.Clusters;
        var name = clusters[0].Name;
        if (clusters.Count > 1)
        {
            var r = (uint)Random.Shared.NextInt64(_totalWeight);
            foreach (var (n, w) in clusters)
            {
                if (r < w)
                {
                    name = n;
                    break;
                }
                r -= w;
            }
        }
        return _clusters.Get(name);
    }

    /// <summary>Connects to a host the cluster's load balancer picks (with hash_policy source_ip, by the downstream
    /// address's hash), trying up to max_connect_attempts hosts.</summary>
    private async Task<Socket?> ConnectAsync(Cluster cluster, ConnectionContext downstream, Router.UpstreamRequest info)
    {
        var lb = Upstream.LoadBalancing.LoadBalancerContext.None;
        if (_model.HashSourceIp && Router.HashPolicyEvaluator.TryAddressHash((downstream.RemoteEndPoint as IPEndPoint)?.Address, out var hash))
            lb = new Upstream.LoadBalancing.LoadBalancerContext(hash);
        for (var attempt = 0; attempt < _model.MaxConnectAttempts; attempt++)
        {
            var host = cluster.ChooseHost(lb);
            if (host is null)
            {
                cluster.Stats.UpstreamCxNoneHealthy.Inc();
                info.Flags |= Http.ResponseFlags.NoHealthyUpstream;
                return null;
            }
            info.UpstreamHost = host;
            info.AttemptCount = attempt + 1;
            var socket = new Socket(SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
            // Only connect_timeout bounds the attempt: Kestrel signals ConnectionClosed on the client's FIN too, and a
            // client that half-closes at once (request sent, then shutdown) still gets its answer, as Envoy's half-close.
            using var timeout = new CancellationTokenSource();
            timeout.CancelAfter(cluster.Model.ConnectTimeout);
            try
            {
                await socket.ConnectAsync(new IPEndPoint(IPAddress.Parse(host.Address.Address), host.Address.Port), timeout.Token).ConfigureAwait(false);
                info.UpstreamLocalAddress = socket.LocalEndPoint?.ToString();
                return socket;
            }
            catch (Exception e) when (e is SocketException or OperationCanceledException or FormatException)
            {
                socket.Dispose();
                cluster.Stats.UpstreamCxConnectFail.Inc();
                if (e is OperationCanceledException) cluster.Stats.UpstreamCxConnectTimeout.Inc();
            }
        }
        _connectAttemptsExceeded.Inc();
        info.Flags |= Http.ResponseFlags.UpstreamConnectionFailure;
        return null;
    }

    /// <summary>Fires <see cref="Fired"/> when no byte moved either way for the idle timeout.</summary>
    private sealed class IdleTimer : IDisposable
    {
        private readonly TimeSpan? _timeout;
        private readonly TaskCompletionSource _fired = new(TaskCreationOptions.RunContinuationsAsynchronously);
        private readonly ITimer? _timer;

        public IdleTimer(TimeSpan? timeout)
        {
            _timeout = timeout;
            if (timeout is { } t) _timer = TimeProvider.System.CreateTimer(_ => _fired.TrySetResult(), null, t, Timeout.InfiniteTimeSpan);
        }

        public Task Fired => _fired.Task;

        public void Touch()
        {
            if (_timeout is { } t) _timer!.Change(t, Timeout.InfiniteTimeSpan);
        }

        public void Dispose() => _timer?.Dispose();
    }
}
