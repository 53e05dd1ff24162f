using System.Net;
using System.Net.NetworkInformation;
using System.Net.Sockets;
using System.Text;

namespace CSharpEnvoy.IntegrationTests.Http;

/// <summary>Small helpers shared by the HTTP connection manager / router tests.</summary>
internal static class HttpTestUtil
{
    /// <summary>A raw TCP connection to a listener of the proxy, for requests HttpClient would rewrite or not send.</summary>
    public static async Task<TcpClient> ConnectAsync(Infrastructure.ProxyHarness proxy, string listener, CancellationToken ct)
    {
        var address = proxy.ListenerAddress(listener);
        var tcp = new TcpClient();
        try
        {
            await tcp.ConnectAsync(IPAddress.Loopback, int.Parse(address[(address.LastIndexOf(':') + 1)..]), ct);
            return tcp;
        }
        catch
        {
            tcp.Dispose();
            throw;
        }
    }

    /// <summary>
    /// A header of the response, its values (several lines or comma-joined) normalised to "a,b"; null when absent.
    /// Whether a multi-valued header travels as one comma-joined line or several lines is not what these tests check.
    /// </summary>
    public static string? Header(HttpResponseMessage response, string name)
    {
        if (!response.Headers.TryGetValues(name, out var values) && !response.Content.Headers.TryGetValues(name, out values))
            return null;
        return string.Join(",", values.SelectMany(v => v.Split(',')).Select(v => v.Trim()));
    }

    /// <summary>A request header as the echo backend saw it (<c>x-echo-req-&lt;name&gt;</c>), normalised like <see cref="Header"/>.</summary>
    public static string? Upstream(HttpResponseMessage response, string name) => Header(response, "x-echo-req-" + name);

    /// <summary>Sends a GET with extra request headers (and optionally a Host).</summary>
    public static async Task<HttpResponseMessage> GetAsync(HttpClient client, string path, string? host = null, params (string Name, string Value)[] headers)
    {
        using var request = new HttpRequestMessage(HttpMethod.Get, path);
        if (host is not null) request.Headers.Host = host;
        foreach (var (n, v) in headers) request.Headers.TryAddWithoutValidation(n, v);
        return await client.SendAsync(request);
    }

    /// <summary>
    /// What Envoy appends to x-forwarded-for for a loopback peer (<c>use_remote_address</c>): the server's local
    /// address, the first non-loopback IPv4 address of the machine's interfaces, or 127.0.0.1 when it has none
    /// (Envoy's <c>Network::Utility::getLocalAddress</c>).
    /// </summary>
    public static string EnvoyLocalAddress()
    {
        foreach (var nic in NetworkInterface.GetAllNetworkInterfaces())
        {
            foreach (var a in nic.GetIPProperties().UnicastAddresses)
                if (a.Address.AddressFamily == AddressFamily.InterNetwork && !IPAddress.IsLoopback(a.Address))
                    return a.Address.ToString();
        }
        return "127.0.0.1";
    }

    /// <summary>Reads one HTTP/1.1 response head (status line and headers) from a raw stream, byte by byte, so
    /// nothing after the blank line is consumed.</summary>
    public static async Task<string> ReadResponseHeadAsync(Stream stream, CancellationToken ct)
    {
        var sb = new StringBuilder();
        var one = new byte[1];
        while (!sb.ToString().EndsWith("\r\n\r\n", StringComparison.Ordinal))
        {
            var n = await stream.ReadAsync(one, ct);
            if (n == 0) throw new IOException("connection closed before the end of the response head: " + sb);
            sb.Append((char)one[0]);
        }
        return sb.ToString();
    }
}
