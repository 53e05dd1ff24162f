using System.Collections.Concurrent;
using System.Net.Sockets;
using CSharpEnvoy.Config.Model.Cluster;

namespace CSharpEnvoy.DataPlane.Upstream.HealthChecking;

/// <summary>Envoy's TCP health checker: connect only, or send <c>send</c> and wait until every <c>receive</c> block
/// has been seen, in order, in what the host answered (a fuzzy match, as Envoy's). No match before the timeout fails.</summary>
internal sealed class TcpHealthCheck(HealthCheckModel model, Cluster cluster) : IHealthCheck
{
    private readonly ConcurrentDictionary<Host, Socket> _connections = new(ReferenceEqualityComparer.Instance);
    private readonly Cluster _cluster = cluster;

    public async Task<HealthCheckResult> CheckAsync(Host host, CancellationToken ct)
    {
        Socket? socket = null;
        if (model.ReuseConnection && _connections.TryRemove(host, out var kept) && kept.Connected) socket = kept;
        try
        {
            try
            {
                socket ??= await HealthCheckConnector.ConnectAsync(host, ct).ConfigureAwait(false);
            }
            catch (SocketException)
            {
                return HealthCheckResult.NetworkFailure;
            }
            if (model.Send is { Length: > 0 } send) await socket.SendAsync(send, SocketFlags.None, ct).ConfigureAwait(false);
            if (model.Receive.Count > 0)
            {
                var buffer = new MemoryStream();
                var chunk = new byte[4096];
                while (!Matches(buffer.GetBuffer().AsSpan(0, (int)buffer.Length)))
                {
                    var n = await socket.ReceiveAsync(chunk, SocketFlags.None, ct).ConfigureAwait(false);
                    if (n == 0)
                    {
                        socket.Dispose();
                        socket = null;
                        return HealthCheckResult.NetworkFailure; // remote close before a match
                    }
                    buffer.Write(chunk, 0, n);
                }
            }
            if (model.ReuseConnection && socket is not null)
            {
                _connections[host] = socket;
                socket = null;
            }
            return HealthCheckResult.Success;
        }
        catch (SocketException)
        {
            return HealthCheckResult.NetworkFailure;
        }
        finally
        {
            socket?.Dispose();
        }
    }

    private bool Matches(ReadOnlySpan<byte> data)
    {
        var start = 0;
        foreach (var r in model.Receive)
        {
            var i = data[start..].IndexOf(r);
            if (i < 0) return false;
            start += i + r.Length;
        }
        return true;
    }

    public void Dispose()
    {
        foreach (var s in _connections.Values) s.Dispose();
        _connections.Clear();
    }
}
