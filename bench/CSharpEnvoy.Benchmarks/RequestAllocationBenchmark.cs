using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using CSharpEnvoy.DataPlane.Server;
using Microsoft.Extensions.Logging;

namespace CSharpEnvoy.Benchmarks;

/// <summary>
/// Bytes allocated and gen0 collections per proxied HTTP/1.1 request, deterministic where wall-clock figures on a shared
/// machine are not. The proxy runs in this process; the backend and the clients are blocking raw sockets on their own
/// threads that allocate nothing per request, so the process's allocation delta is the proxy's alone. The backend
/// answers every request with a fixed 5-byte response, as the load scripts' hello backend does.
/// Run: <c>dotnet run -c Release --project bench/CSharpEnvoy.Benchmarks -- rq-alloc [requests] [connections]</c>.
/// </summary>
internal static class RequestAllocationBenchmark
{
    private static readonly byte[] s_backendResponse = "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Type: text/plain\r\n\r\nhello"u8.ToArray();

    public static async Task RunAsync(int requests, int connections)
    {
        // As the csenvoy executable sets it (src/CSharpEnvoy.Host/Program.cs): socket completions inline on the epoll
        // thread, read when the first socket is made.
        Environment.SetEnvironmentVariable("DOTNET_SYSTEM_NET_SOCKETS_INLINE_COMPLETIONS", "1");
        using var backend = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        backend.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        backend.Listen(256);
        var backendPort = ((IPEndPoint)backend.LocalEndPoint!).Port;
        new Thread(() => AcceptLoop(backend)) { IsBackground = true, Name = "backend-accept" }.Start();

        var loggers = LoggerFactory.Create(b => b.SetMinimumLevel(LogLevel.Warning));
        await using var server = await ServerBuilder.StartAsync(new ServerOptions { ConfigYaml = Yaml(backendPort) }, loggers);
        var proxyPort = server.Listeners[0].BoundAddress.Port;

        var request = "GET /hello HTTP/1.1\r\nHost: bench\r\n\r\n"u8.ToArray();
        var clients = new Socket[connections];
        for (var i = 0; i < connections; i++)
        {
            clients[i] = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
            clients[i].Connect(IPAddress.Loopback, proxyPort);
        }

        // Warm-up: the JIT's tiering (and its allocations) settles before the measured window.
        RunClients(clients, request, Math.Max(20_000, requests / 5));
        GC.Collect();
        GC.WaitForPendingFinalizers();

        using var sampler = new AllocationSampler();
        sampler.Start();
        var gen0 = GC.CollectionCount(0);
        var gen1 = GC.CollectionCount(1);
        var bytes = GC.GetTotalAllocatedBytes(precise: true);
        var sw = Stopwatch.StartNew();
        RunClients(clients, request, requests);
        sw.Stop();
        var allocated = GC.GetTotalAllocatedBytes(precise: true) - bytes;
        gen0 = GC.CollectionCount(0) - gen0;
        gen1 = GC.CollectionCount(1) - gen1;
        var top = sampler.Stop(25);

        Console.WriteLine($"requests: {requests:N0} over {connections} connections in {sw.Elapsed.TotalSeconds:F1} s");
        Console.WriteLine($"allocated per request: {allocated / (double)requests:F0} B");
        Console.WriteLine($"gen0 / gen1 collections per 10,000 requests: {gen0 * 10_000.0 / requests:F2} / {gen1 * 10_000.0 / requests:F2}");
        Console.WriteLine("sampled allocations (one sample per ~100 KB), bytes per request:");
        foreach (var (type, b) in top) Console.WriteLine($"  {b / (double)requests,8:F1}  {type}");
        foreach (var c in clients) c.Dispose();
    }

    private static string Yaml(int backendPort) => $$"""
        static_resources:
          listeners:
          - name: bench
            address: { socket_address: { address: 127.0.0.1, port_value: 0 } }
            filter_chains:
            - filters:
              - name: envoy.filters.network.http_connection_manager
                typed_config:
                  "@type": type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager
                  stat_prefix: bench
                  route_config:
                    virtual_hosts:
                    - name: all
                      domains: ["*"]
                      routes:
                      - match: { prefix: "/" }
                        route: { cluster: c0 }
          clusters:
          - name: c0
            connect_timeout: 1s
            load_assignment:
              cluster_name: c0
              endpoints:
              - lb_endpoints:
                - endpoint: { address: { socket_address: { address: 127.0.0.1, port_value: {{backendPort}} } } }
        """;

    /// <summary>Each connection sends its share of <paramref name="total"/> requests one after the other.</summary>
    private static void RunClients(Socket[] clients, byte[] request, int total)
    {
        var threads = new Thread[clients.Length];
        for (var i = 0; i < clients.Length; i++)
        {
            var socket = clients[i];
            var count = total / clients.Length + (i < total % clients.Length ? 1 : 0);
            threads[i] = new Thread(() => ClientLoop(socket, request, count)) { IsBackground = true };
            threads[i].Start();
        }
        foreach (var t in threads) t.Join();
    }

    private static void ClientLoop(Socket socket, byte[] request, int count)
    {
        var buffer = new byte[16 * 1024];
        for (var n = 0; n < count; n++)
        {
            socket.Send(request);
            var filled = 0;
            while (true)
            {
                var read = socket.Receive(buffer.AsSpan(filled));
                if (read == 0) throw new IOException("the proxy closed the connection");
                filled += read;
                if (ResponseLength(buffer.AsSpan(0, filled)) is int length && filled >= length)
                {
                    if (filled != length) throw new IOException("more than one response");
                    break;
                }
            }
        }
    }

    /// <summary>Header block plus Content-Length once the whole header block is in; null before.</summary>
    private static int? ResponseLength(ReadOnlySpan<byte> data)
    {
        var end = data.IndexOf("\r\n\r\n"u8);
        if (end < 0) return null;
        var head = data[..end];
        var at = head.IndexOf("\r\ncontent-length:"u8);
        if (at < 0) at = head.IndexOf("\r\nContent-Length:"u8);
        if (at < 0) throw new IOException("response without Content-Length");
        var value = head[(at + 17)..];
        var eol = value.IndexOf("\r\n"u8);
        if (eol >= 0) value = value[..eol];
        var length = 0;
        foreach (var b in value)
            if (b is >= (byte)'0' and <= (byte)'9') length = length * 10 + (b - '0');
        return end + 4 + length;
    }

    private static void AcceptLoop(Socket listener)
    {
        while (true)
        {
            Socket peer;
            try
            {
                peer = listener.Accept();
            }
            catch (SocketException)
            {
                return;
            }
            catch (ObjectDisposedException)
            {
                return;
            }
            peer.NoDelay = true;
            new Thread(() => BackendLoop(peer)) { IsBackground = true, Name = "backend" }.Start();
        }
    }

    /// <summary>Answers each request (a header block without a body) with the fixed response.</summary>
    private static void BackendLoop(Socket peer)
    {
        var buffer = new byte[16 * 1024];
        var filled = 0;
        try
        {
            while (true)
            {
                var read = peer.Receive(buffer.AsSpan(filled));
                if (read == 0) return;
                filled += read;
                int end;
                while ((end = buffer.AsSpan(0, filled).IndexOf("\r\n\r\n"u8)) >= 0)
                {
                    peer.Send(s_backendResponse);
                    var rest = filled - (end + 4);
                    buffer.AsSpan(end + 4, rest).CopyTo(buffer);
                    filled = rest;
                }
            }
        }
        catch (SocketException)
        {
        }
        finally
        {
            peer.Dispose();
        }
    }
}
