using System.Collections.Concurrent;
using System.Net;
using System.Net.Sockets;
using System.Text;

namespace CSharpEnvoy.IntegrationTests.Router;

/// <summary>An upstream on 127.0.0.1 that runs a script per accepted connection over raw bytes (tests of the upstream
/// HTTP/1.1 codec and its connection pool).</summary>
internal sealed class RawUpstream : IAsyncDisposable
{
    private readonly TcpListener _listener;
    private readonly Func<RawConnection, Task> _script;
    private readonly CancellationTokenSource _stop = new();
    private readonly Task _accepting;
    private readonly ConcurrentBag<Task> _connections = [];
    private int _accepted;
    private readonly ConcurrentDictionary<int, TaskCompletionSource> _closed = new();

    private RawUpstream(Func<RawConnection, Task> script)
    {
        _script = script;
        _listener = new TcpListener(IPAddress.Loopback, 0);
        _listener.Start();
        _accepting = AcceptAsync();
    }

    public static RawUpstream Start(Func<RawConnection, Task> script) => new(script);

    public int Port => ((IPEndPoint)_listener.LocalEndpoint).Port;
    public string Address => $"127.0.0.1:{Port}";
    public int Connections => Volatile.Read(ref _accepted);
    public ConcurrentQueue<(string Head, string Body)> Requests { get; } = new();

    /// <summary>Completes once the script has closed its connection number <paramref name="index"/> (0-based);
    /// at once for an index not accepted yet.</summary>
    public Task WaitForClosedAsync(int index) =>
        index == 0 ? Task.CompletedTask : Closed(index - 1).Task.WaitAsync(TimeSpan.FromSeconds(20));

    private TaskCompletionSource Closed(int index) =>
        _closed.GetOrAdd(index, _ => new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously));

    private async Task AcceptAsync()
    {
        while (!_stop.IsCancellationRequested)
        {
            TcpClient client;
            try
            {
                client = await _listener.AcceptTcpClientAsync(_stop.Token);
            }
            catch (Exception)
            {
                return;
            }
            var index = Interlocked.Increment(ref _accepted) - 1;
            _connections.Add(Task.Run(async () =>
            {
                using (client)
                {
                    try
                    {
                        await _script(new RawConnection(client.GetStream(), this, _stop.Token));
                    }
                    catch (Exception) when (_stop.IsCancellationRequested)
                    {
                    }
                    catch (IOException)
                    {
                    }
                }
                Closed(index).TrySetResult();
            }));
        }
    }

    public async ValueTask DisposeAsync()
    {
        _stop.Cancel();
        _listener.Stop();
        await _accepting;
        await Task.WhenAll(_connections);
    }
}

internal sealed class RawConnection(NetworkStream stream, RawUpstream upstream, CancellationToken ct)
{
    private readonly MemoryStream _pending = new();

    public Task WriteAsync(string text) => stream.WriteAsync(Encoding.Latin1.GetBytes(text), ct).AsTask();

    /// <summary>The next request's head and body (Content-Length or chunked); null when the proxy closed the connection.</summary>
    public async Task<(string Head, string Body)?> ReadRequestAsync()
    {
        var head = await ReadUntilAsync("\r\n\r\n"u8.ToArray());
        if (head is null) return null;
        var headText = Encoding.Latin1.GetString(head);
        var body = new StringBuilder();
        var length = HeaderValue(headText, "Content-Length");
        if (HeaderValue(headText, "Transfer-Encoding") is "chunked")
        {
            while (true)
            {
                var sizeLine = Encoding.Latin1.GetString(await ReadUntilAsync("\r\n"u8.ToArray()) ?? throw new IOException("eof"));
                var size = Convert.ToInt32(sizeLine.Trim(), 16);
                if (size == 0)
                {
                    await ReadUntilAsync("\r\n"u8.ToArray());
                    break;
                }
                var data = await ReadExactAsync(size + 2);
                body.Append(Encoding.Latin1.GetString(data, 0, size));
            }
        }
        else if (length is not null)
        {
            body.Append(Encoding.Latin1.GetString(await ReadExactAsync(int.Parse(length))));
        }
        var request = (headText, body.ToString());
        upstream.Requests.Enqueue(request);
        return request;
    }

    private static string? HeaderValue(string head, string name)
    {
        foreach (var line in head.Split("\r\n"))
        {
            var colon = line.IndexOf(':');
            if (colon > 0 && line[..colon].Equals(name, StringComparison.OrdinalIgnoreCase)) return line[(colon + 1)..].Trim();
        }
        return null;
    }

    private async Task<byte[]?> ReadUntilAsync(byte[] terminator)
    {
        var buffer = new byte[1];
        while (true)
        {
            var have = _pending.ToArray();
            var at = have.AsSpan().IndexOf(terminator);
            if (at >= 0)
            {
                _pending.SetLength(0);
                _pending.Write(have, at + terminator.Length, have.Length - at - terminator.Length);
                return have[..(at + terminator.Length)];
            }
            var n = await stream.ReadAsync(buffer, ct);
            if (n == 0) return null;
            _pending.Write(buffer, 0, n);
        }
    }

    private async Task<byte[]> ReadExactAsync(int count)
    {
        var buffer = new byte[1];
        while (_pending.Length < count)
        {
            if (await stream.ReadAsync(buffer, ct) == 0) throw new IOException("eof");
            _pending.Write(buffer, 0, 1);
        }
        var have = _pending.ToArray();
        _pending.SetLength(0);
        _pending.Write(have, count, have.Length - count);
        return have[..count];
    }
}
