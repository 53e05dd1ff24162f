using System.Collections.Concurrent;
using System.Text;

namespace CSharpEnvoy.DataPlane.Http.Codec;

/// <summary>
/// The connection manager's <c>idle_timeout</c> for <see cref="Http1ServerConnection"/>s: one timer ticking once a
/// second over all of them, as Kestrel's heartbeat does, rather than a timer per connection. A connection notes when it
/// started to wait for its next request (one field write per request); a tick closes those that waited too long.
/// </summary>
internal static class Http1IdleTimer
{
    private static readonly ConcurrentDictionary<Http1ServerConnection, byte> s_connections = new();
    private static Timer? s_timer;

    public static void Register(Http1ServerConnection connection)
    {
        s_connections.TryAdd(connection, 0);
        if (Volatile.Read(ref s_timer) is null)
        {
            var timer = new Timer(static _ => Tick(), null, Timeout.Infinite, Timeout.Infinite);
            if (Interlocked.CompareExchange(ref s_timer, timer, null) is null) timer.Change(1000, 1000);
            else timer.Dispose();
        }
    }

    public static void Unregister(Http1ServerConnection connection) => s_connections.TryRemove(connection, out _);

    private static void Tick()
    {
        var now = Environment.TickCount64;
        foreach (var (connection, _) in s_connections) connection.OnTick(now);
    }
}

/// <summary>The <c>Date</c> response header's value, formatted once a second.</summary>
internal static class HttpDate
{
    private sealed record Entry(long Second, byte[] Line);
    private static Entry s_current = new(-1, []);

    /// <summary>"Date: &lt;IMF-fixdate&gt;\r\n" for the current second.</summary>
    public static byte[] HeaderLine
    {
        get
        {
            var now = DateTimeOffset.UtcNow;
            var second = now.ToUnixTimeSeconds();
            var e = s_current;
            if (e.Second == second) return e.Line;
            var line = Encoding.ASCII.GetBytes("Date: " + now.ToString("r", System.Globalization.CultureInfo.InvariantCulture) + "\r\n");
            s_current = new Entry(second, line);
            return line;
        }
    }
}
