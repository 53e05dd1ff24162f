using System.Diagnostics;
using System.Net.Sockets;
using CSharpEnvoy.DataPlane.Event;

namespace CSharpEnvoy.DataPlane.Upstream.Http1;

/// <summary>
/// One upstream HTTP/1.1 connection of an <see cref="Http1ConnectionPool"/>: the socket, its send and receive buffers,
/// and a state word that decides, without locks, who may use or close it (Envoy's <c>ActiveClient</c>).
/// </summary>
/// <remarks>
/// One timer per connection serves both idle limits: while a request is in flight the stream idle timeout (no bytes
/// either way), while the connection sits in the pool the cluster's <c>idle_timeout</c>. It is armed once and re-armed
/// only when it fires, so a request costs no timer operation unless its idle limit is shorter than the armed one.
/// </remarks>
internal enum Http1Stage { Connect, SendHead, ReadRequestBody, SendBody, ReceiveHead, ReceiveBody, WriteResponseBody }

internal sealed class Http1Connection
{
    private const int StateIdle = 0, StateBusy = 1, StateClosed = 2;
    private const int InitialBufferSize = 4096;
    /// <summary>Largest response head accepted (Envoy's default max_response_headers_kb is 60).</summary>
    public const int MaxHeadSize = 60 * 1024;

    private readonly Socket _socket;
    /// <summary>The socket on a dispatcher of ours, or null when it runs on .NET's socket engine.</summary>
    private readonly IoSocket? _io;
    private readonly Http1ConnectionPool _pool;
    private int _state = StateBusy; // a new connection is handed to the request that opened it
    private Timer? _timer;
    private long _timerDue;
    private long _streamIdleTicks;
    private long _idleSince;

    public Http1Connection(Socket socket, IoSocket? io, Http1ConnectionPool pool)
    {
        _socket = socket;
        _io = io;
        _pool = pool;
        DispatcherIndex = io is null ? 0 : io.Dispatcher.Index;
        LocalAddress = UpstreamConnection.Format(socket.LocalEndPoint);
    }

    /// <summary>The dispatcher the socket is on (0 on .NET's socket engine): its idle queue in the pool.</summary>
    public int DispatcherIndex { get; }

    /// <summary>Receives into <paramref name="buffer"/>; 0 at the end of the stream.</summary>
    public ValueTask<int> ReceiveAsync(Memory<byte> buffer) => _io is { } io ? io.ReceiveAsync(buffer) : _socket.ReceiveAsync(buffer, SocketFlags.None);

    /// <summary>Sends part of <paramref name="data"/>; the count sent.</summary>
    public ValueTask<int> SendAsync(ReadOnlyMemory<byte> data) => _io is { } io ? io.SendAsync(data) : _socket.SendAsync(data, SocketFlags.None);

    /// <summary>%UPSTREAM_LOCAL_ADDRESS%.</summary>
    public string? LocalAddress { get; }
    public byte[] SendBuffer = new byte[InitialBufferSize];
    public byte[] ReceiveBuffer = new byte[InitialBufferSize];
    /// <summary>Unconsumed received bytes: ReceiveBuffer[ReceiveStart..ReceiveEnd].</summary>
    public int ReceiveStart, ReceiveEnd;
    /// <summary>The connection carried a request before this one (a failure before any response byte may mean the
    /// upstream closed it while it was idle).</summary>
    public bool Reused { get; private set; }
    /// <summary>The stream idle timeout fired while this connection carried a request.</summary>
    public bool IdleTimedOut { get; private set; }
    /// <summary>Stopwatch ticks of the last byte sent or received while busy.</summary>
    public long LastActivity;
    /// <summary>Where the exchange on this connection is (which side a failure came from).</summary>
    public Http1Stage Stage;
    /// <summary>The response head being parsed (reused by every exchange on the connection).</summary>
    public readonly Http1ResponseHead Head = new();
    /// <summary>Header names and last values seen on this connection (responses repeat them).</summary>
    public readonly HeaderStringCache Strings = new();

    /// <summary>Idle → busy: false when the connection was closed meanwhile (by its idle timer or the pool).</summary>
    public bool TryReserve()
    {
        if (Interlocked.CompareExchange(ref _state, StateBusy, StateIdle) != StateIdle) return false;
        Reused = true;
        return true;
    }

    /// <summary>Starts an exchange: arms the idle timer when it would fire later than this request's idle limit.</summary>
    /// <summary>Exchanges begun on this connection (for the cluster's max_requests_per_connection).</summary>
    public int Exchanges { get; private set; }

    public void BeginExchange(TimeSpan streamIdle)
    {
        Exchanges++;
        IdleTimedOut = false;
        Stage = Http1Stage.SendHead;
        var now = Stopwatch.GetTimestamp();
        LastActivity = now;
        var ticks = streamIdle > TimeSpan.Zero ? (long)(streamIdle.TotalSeconds * Stopwatch.Frequency) : 0;
        _streamIdleTicks = ticks;
        if (ticks > 0 && (_timerDue == 0 || _timerDue - now > ticks)) Arm(ticks);
    }

    /// <summary>Busy → idle, back in the pool's hands; false when it was closed meanwhile (then it is gone).</summary>
    public bool TryRelease()
    {
        _idleSince = Stopwatch.GetTimestamp();
        if (Interlocked.CompareExchange(ref _state, StateIdle, StateBusy) != StateBusy) return false;
        var idle = _pool.IdleTimeoutTicks;
        if (idle > 0 && (_timerDue == 0 || _timerDue - _idleSince > idle)) Arm(idle);
        return true;
    }

    /// <summary>Closes the connection once, whatever state it is in; counts it in the cluster's stats. An exchange in
    /// flight (timeout, client gone) stops there: its pending socket operations fail.</summary>
    public void Close()
    {
        if (Interlocked.Exchange(ref _state, StateClosed) != StateClosed) CloseCore();
    }

    private void CloseCore()
    {
        _timer?.Dispose();
        try
        {
            if (_io is not null) _io.Dispose();
            else _socket.Dispose();
        }
        catch (ObjectDisposedException)
        {
        }
        _pool.OnClosed();
    }

    private void Arm(long ticks)
    {
        _timerDue = Stopwatch.GetTimestamp() + ticks;
        var ms = Math.Max(1, ticks * 1000 / Stopwatch.Frequency);
        var timer = _timer ??= new Timer(static s => ((Http1Connection)s!).OnTimer(), this, Timeout.Infinite, Timeout.Infinite);
        try
        {
            timer.Change(ms, Timeout.Infinite);
        }
        catch (ObjectDisposedException)
        {
        }
    }

    private void OnTimer()
    {
        _timerDue = 0;
        var now = Stopwatch.GetTimestamp();
        switch (Volatile.Read(ref _state))
        {
            case StateBusy:
                if (_streamIdleTicks <= 0) return;
                var left = LastActivity + _streamIdleTicks - now;
                if (left > 0)
                {
                    Arm(left);
                    return;
                }
                IdleTimedOut = true;
                Close(); // the exchange's pending socket operations fail
                return;
            case StateIdle:
                var idle = _pool.IdleTimeoutTicks;
                if (idle <= 0) return;
                var rest = _idleSince + idle - now;
                if (rest > 0)
                {
                    // Capped by the last stream idle limit: a request may take the connection while this re-arms.
                    Arm(_streamIdleTicks > 0 ? Math.Min(rest, _streamIdleTicks) : rest);
                    return;
                }
                // Only an idle connection is closed here; one taken meanwhile keeps serving.
                if (Interlocked.CompareExchange(ref _state, StateClosed, StateIdle) == StateIdle) CloseCore();
                return;
        }
    }
}
