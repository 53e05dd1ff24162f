using System.Net;
using System.Net.Sockets;

namespace CSharpEnvoy.DataPlane.Upstream.HealthChecking;

/// <summary>Opens a health check connection straight to a host (IP or pipe), outside the cluster's pools and
/// without counting <c>upstream_cx_*</c>, as Envoy's health checkers do.</summary>
internal static class HealthCheckConnector
{
    public static async Task<Socket> ConnectAsync(Host host, CancellationToken ct)
    {
        var endPoint = host.EndPointAt(host.HealthCheckPort != 0 ? host.HealthCheckPort : host.Address.Port);
        var socket = Cluster.NewSocket(endPoint);
        try
        {
            await socket.ConnectAsync(endPoint, ct).ConfigureAwait(false);
            return socket;
        }
        catch
        {
            socket.Dispose();
            throw;
        }
    }

    private static readonly HttpRequestOptionsKey<Host> s_hostKey = new("csenvoy.hc.host");

    public static void SetHost(HttpRequestMessage request, Host host) => request.Options.Set(s_hostKey, host);

    /// <summary>A handler for HTTP and gRPC checks; connections go to the host carried in the request's options.</summary>
    public static SocketsHttpHandler CreateHandler() => new()
    {
        UseProxy = false,
        AllowAutoRedirect = false,
        UseCookies = false,
        AutomaticDecompression = DecompressionMethods.None,
        ActivityHeadersPropagator = null,
        PooledConnectionIdleTimeout = TimeSpan.FromHours(1),
        ConnectCallback = async (ctx, ct) =>
        {
            if (!ctx.InitialRequestMessage.Options.TryGetValue(s_hostKey, out var host)) throw new InvalidOperationException("health check request without a host");
            var socket = await ConnectAsync(host, ct).ConfigureAwait(false);
            return new NetworkStream(socket, ownsSocket: true);
        },
    };
}
