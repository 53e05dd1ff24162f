using System.Net;
using System.Net.Sockets;

namespace CSharpEnvoy.IntegrationTests.Infrastructure;

/// <summary>
/// Ports for tests that must name a port before anything listens on it (a listener pushed by xDS, a port that must
/// refuse connections). They come from below the kernel's ephemeral range, so no socket bound to port 0 and no
/// outgoing connection anywhere on the machine can take one between the pick and its use; a process-wide counter keeps
/// parallel tests from picking the same one, and each is checked free when picked.
/// </summary>
internal static class FixedPorts
{
    private const int First = 20000;
    private static readonly int s_end = EphemeralRangeStart();
    private static int s_next = First + Random.Shared.Next(0, Math.Max(1, (s_end - First) / 2));

    public static int Next()
    {
        for (var attempt = 0; attempt < 1000; attempt++)
        {
            var port = Interlocked.Increment(ref s_next);
            if (port >= s_end)
            {
                Interlocked.CompareExchange(ref s_next, First, port);
                continue;
            }
            if (IsFree(port)) return port;
        }
        throw new InvalidOperationException($"no free port in {First}..{s_end - 1}");
    }

    private static bool IsFree(int port)
    {
        using var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        try
        {
            socket.Bind(new IPEndPoint(IPAddress.Loopback, port));
            return true;
        }
        catch (SocketException)
        {
            return false;
        }
    }

    private static int EphemeralRangeStart()
    {
        try
        {
            var range = File.ReadAllText("/proc/sys/net/ipv4/ip_local_port_range").Split((char[])['\t', ' ', '\n'], StringSplitOptions.RemoveEmptyEntries);
            var low = int.Parse(range[0], System.Globalization.CultureInfo.InvariantCulture);
            return low > First + 1000 ? low : 32768;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or FormatException or IndexOutOfRangeException)
        {
            return 32768;
        }
    }
}
