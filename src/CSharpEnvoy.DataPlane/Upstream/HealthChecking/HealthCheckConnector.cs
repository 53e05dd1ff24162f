using System.Net;
using System.Net.Sockets;

namespace CSharpEnvoy.DataPlane.Upstream.HealthChecking;

/// <summary>Opens a health check connection straight to a host (IP or pipe), outside the cluster's pools and
/// without counting <c>upstream_cx_*</c>, as Envoy's health checkers do.</summary>
internal static class HealthCheckConnector
{
    public static async Task<Socket> ConnectAsync(Host host, CancellationToken ct)
    {
        var a = host.Address;
        var port = host.HealthCheckPort != 0 ? host.HealthCheckPort : a.Port;
        EndPoint endPoint = a.IsPipe ? new UnixDomainSocketEndPoint(a.PipePath!)
            : IPAddress.TryParse(a.Address.Trim('[', ']'), out var ip) ? new IPEndPoint(ip, port) : new DnsEndPoint(a.Address, port);
        var socket = a.IsPipe
            ? new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified)
            : new Socket(SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
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
