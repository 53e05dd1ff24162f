using System.Net;
using System.Net.Sockets;

// The floor of the HTTP/1.1 comparison: the least a .NET proxy can do per keep-alive request on this runtime and
// machine. Each downstream connection gets its own upstream connection; a request head (GET, no body) goes upstream as
// it came, and a response with a Content-Length comes back as it came. No routing, no header changes, no stats, no
// HTTP/1.1 semantics beyond framing: what is left is the runtime's sockets, async machinery and the kernel. csenvoy's
// cost above this floor is what its HTTP work and Kestrel add; the floor's cost above nginx's is what the runtime adds.
//
//   dotnet CSharpEnvoy.FloorProxy.dll <listen port> <upstream port>
//
// Socket completions run inline on the epoll thread, as csenvoy sets them.
if (Environment.GetEnvironmentVariable("DOTNET_SYSTEM_NET_SOCKETS_INLINE_COMPLETIONS") is null)
    Environment.SetEnvironmentVariable("DOTNET_SYSTEM_NET_SOCKETS_INLINE_COMPLETIONS", "1");

var listenPort = int.Parse(args[0]);
var upstream = new IPEndPoint(IPAddress.Loopback, int.Parse(args[1]));
using var listener = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
listener.SetSocketOption(SocketOptionLevel.Socket, SocketOptionName.ReuseAddress, true);
listener.Bind(new IPEndPoint(IPAddress.Loopback, listenPort));
listener.Listen(1024);
Console.WriteLine($"floor proxy on 127.0.0.1:{listenPort} -> {upstream}");
while (true)
{
    var downstream = await listener.AcceptAsync();
    downstream.NoDelay = true;
    _ = Floor.ServeAsync(downstream, upstream);
}

internal static class Floor
{
    public static async Task ServeAsync(Socket downstream, EndPoint upstreamAddress)
    {
        var request = new byte[8192];
        var response = new byte[8192];
        Socket? upstream = null;
        try
        {
            var have = 0;
            while (true)
            {
                int head;
                while ((head = HeadLength(request, have)) < 0)
                {
                    if (have == request.Length) return;
                    var n = await downstream.ReceiveAsync(request.AsMemory(have), SocketFlags.None);
                    if (n == 0) return;
                    have += n;
                }
                if (upstream is null)
                {
                    upstream = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
                    await upstream.ConnectAsync(upstreamAddress);
                }
                await upstream.SendAsync(request.AsMemory(0, head), SocketFlags.None);
                // A pipelined next request stays for the next turn.
                Buffer.BlockCopy(request, head, request, 0, have - head);
                have -= head;

                var got = 0;
                int responseHead;
                while ((responseHead = HeadLength(response, got)) < 0)
                {
                    if (got == response.Length) return;
                    var n = await upstream.ReceiveAsync(response.AsMemory(got), SocketFlags.None);
                    if (n == 0) return;
                    got += n;
                }
                var total = responseHead + ContentLength(response.AsSpan(0, responseHead));
                if (total > response.Length) return; // small responses only
                while (got < total)
                {
                    var n = await upstream.ReceiveAsync(response.AsMemory(got, total - got), SocketFlags.None);
                    if (n == 0) return;
                    got += n;
                }
                await downstream.SendAsync(response.AsMemory(0, total), SocketFlags.None);
            }
        }
        catch (SocketException)
        {
        }
        finally
        {
            downstream.Dispose();
            upstream?.Dispose();
        }
    }

    /// <summary>The length of the head up to and including its blank line; -1 while incomplete.</summary>
    private static int HeadLength(byte[] buffer, int length)
    {
        var i = buffer.AsSpan(0, length).IndexOf("\r\n\r\n"u8);
        return i < 0 ? -1 : i + 4;
    }

    /// <summary>The Content-Length of a response head (0 without one).</summary>
    private static int ContentLength(ReadOnlySpan<byte> head)
    {
        var i = head.IndexOf("\r\ncontent-length:"u8);
        if (i < 0) i = head.IndexOf("\r\nContent-Length:"u8);
        if (i < 0) return 0;
        var value = head[(i + 17)..];
        value = value[..value.IndexOf("\r\n"u8)].Trim((byte)' ');
        var n = 0;
        foreach (var b in value) n = n * 10 + (b - '0');
        return n;
    }
}
