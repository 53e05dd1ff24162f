using System.Diagnostics;
using System.Net;
using System.Net.Sockets;

namespace CSharpEnvoy.LoadGenerator;

/// <summary>What one constant-rate run measured. Latencies are in microseconds.</summary>
internal sealed class RunResult
{
    /// <summary>
    /// Response time from the moment the request was DUE on the schedule. When every connection is busy, or the
    /// generator wakes late, a request waits before it is sent; a closed-loop client (wrk, ab) simply sends fewer
    /// requests then and so never records the stall that a steady stream of users would see ("coordinated
    /// omission"). Counting from the due time puts that wait back, as wrk2 does; this is the figure to compare.
    /// </summary>
    public LatencyHistogram FromDue { get; } = new();

    /// <summary>Response time from the moment the request was written: the server's time alone.</summary>
    public LatencyHistogram FromSend { get; } = new();

    /// <summary>How late requests were sent: waits for a free connection plus the generator's own wake-up delay.</summary>
    public LatencyHistogram SendLag { get; } = new();

    public long Scheduled { get; set; }
    public long Unsent { get; set; }
    public long Completed { get; set; }
    public long Errors { get; set; }
    public long Timeouts { get; set; }
    public long Non2xx { get; set; }
    public long Reconnects { get; set; }
    public double Seconds { get; set; }

    /// <summary>Responses per second over the scheduled duration, or longer when the last response came in later.</summary>
    public double AchievedRate => Seconds > 0 ? Completed / Seconds : 0;
}

/// <summary>
/// Open-loop HTTP/1.1 load: request i is due at t0 + i / rate whatever happened to earlier requests, and goes out on
/// the connection that has been free longest (so all connections stay in use, as with wrk2's per-connection rate);
/// each connection carries one request at a time on keep-alive. One thread runs everything around ppoll(2): it
/// sleeps until the next request is due or a response arrives, never spins, and catches up at once when it wakes
/// late. Nothing on the loop allocates, so the generator's own garbage collections do not show up as latency.
/// </summary>
internal sealed class ConstantRateRunner : IDisposable
{
    private const int BufferSize = 16 * 1024;

    private readonly EndPoint _target;
    private readonly byte[] _request;
    private readonly long _timeoutTicks;
    private readonly Connection[] _connections;
    private readonly LinuxPoll.PollFd[] _pollFds;
    // Free connections, oldest first (a ring of indexes into _connections).
    private readonly int[] _free;
    private int _freeHead;
    private int _freeCount;

    public ConstantRateRunner(EndPoint target, byte[] request, int connections, TimeSpan timeout)
    {
        _target = target;
        _request = request;
        _timeoutTicks = (long)(timeout.TotalSeconds * Stopwatch.Frequency);
        _connections = new Connection[connections];
        _pollFds = new LinuxPoll.PollFd[connections];
        _free = new int[connections];
        for (var i = 0; i < connections; i++)
        {
            _connections[i] = new Connection(i);
        }
    }

    /// <summary>Opens every connection before the clock starts; throws when the target does not accept.</summary>
    public void Open()
    {
        _freeHead = 0;
        _freeCount = 0;
        foreach (var c in _connections)
        {
            if (!Connect(c, out var error))
            {
                throw new InvalidOperationException($"cannot connect to {_target}: {error}");
            }
            ReturnFree(c);
        }
    }

    public RunResult Run(double rate, double seconds)
    {
        var result = new RunResult();
        var frequency = Stopwatch.Frequency;
        var total = (long)Math.Round(rate * seconds);
        var interval = frequency / rate;
        var maxWait = frequency / 100; // wake at least every 10 ms to check timeouts
        var t0 = Stopwatch.GetTimestamp();
        var giveUp = t0 + (long)(seconds * frequency) + _timeoutTicks + frequency;
        long issued = 0;
        var lastDone = t0;
        result.Scheduled = total;
        while (result.Completed + result.Errors < total)
        {
            var now = Stopwatch.GetTimestamp();
            // Catch up: every request already due goes out now, oldest first, while connections are free.
            while (issued < total && _freeCount > 0)
            {
                var due = t0 + (long)(issued * interval);
                if (due > now)
                {
                    break;
                }
                issued++;
                Send(_connections[TakeFree()], due, result);
            }
            if (now > giveUp)
            {
                foreach (var c in _connections)
                {
                    if (c.Busy)
                    {
                        result.Timeouts++;
                        Fail(c, result);
                    }
                }
                result.Unsent = total - issued;
                break;
            }
            var wait = maxWait;
            if (issued < total && _freeCount > 0)
            {
                wait = Math.Min(wait, t0 + (long)(issued * interval) - now);
            }
            for (var i = 0; i < _connections.Length; i++)
            {
                var c = _connections[i];
                _pollFds[i].Fd = c.Socket is null ? -1 : c.Fd;
                _pollFds[i].Events = c.Busy && c.SendOffset < _request.Length
                    ? (short)(LinuxPoll.PollIn | LinuxPoll.PollOut)
                    : LinuxPoll.PollIn;
                _pollFds[i].Revents = 0;
            }
            var ready = LinuxPoll.Wait(_pollFds, Math.Max(0, wait) * 1_000_000_000 / frequency);
            now = Stopwatch.GetTimestamp();
            for (var i = 0; ready > 0 && i < _connections.Length; i++)
            {
                var revents = _pollFds[i].Revents;
                if (revents == 0)
                {
                    continue;
                }
                var c = _connections[i];
                if ((revents & LinuxPoll.PollOut) != 0 && c.Busy)
                {
                    ContinueSend(c, result);
                }
                if ((revents & (LinuxPoll.PollIn | LinuxPoll.PollErr | LinuxPoll.PollHup)) != 0 && c.Socket is not null)
                {
                    if (Receive(c, now, result))
                    {
                        lastDone = now;
                    }
                }
            }
            foreach (var c in _connections)
            {
                if (c.Busy && now - c.SentAt > _timeoutTicks)
                {
                    result.Timeouts++;
                    Fail(c, result);
                }
            }
        }
        result.Seconds = Math.Max(seconds, (double)(lastDone - t0) / frequency);
        return result;
    }

    private void Send(Connection c, long due, RunResult result)
    {
        if (c.Socket is null)
        {
            if (!Connect(c, out _))
            {
                result.Errors++;
                ReturnFree(c);
                return;
            }
            result.Reconnects++;
        }
        c.Parser.Reset();
        c.Filled = 0;
        c.SendOffset = 0;
        c.Busy = true;
        c.Due = due;
        c.SentAt = Stopwatch.GetTimestamp();
        result.SendLag.Record(Micros(c.SentAt - due));
        ContinueSend(c, result);
    }

    private void ContinueSend(Connection c, RunResult result)
    {
        if (c.SendOffset >= _request.Length)
        {
            return;
        }
        var n = c.Socket!.Send(_request.AsSpan(c.SendOffset), SocketFlags.None, out var error);
        if (error == SocketError.Success)
        {
            c.SendOffset += n;
        }
        else if (error != SocketError.WouldBlock)
        {
            Fail(c, result);
        }
    }

    // Returns true when a response completed.
    private bool Receive(Connection c, long now, RunResult result)
    {
        var n = c.Socket!.Receive(c.Buffer.AsSpan(c.Filled), SocketFlags.None, out var error);
        if (error == SocketError.WouldBlock)
        {
            return false;
        }
        if (!c.Busy)
        {
            // An idle connection closed by the server (keep-alive timeout) or, against the protocol, sent bytes
            // nobody asked for: reopen it when it is next used.
            Close(c);
            return false;
        }
        if (error != SocketError.Success)
        {
            Fail(c, result);
            return false;
        }
        if (n == 0)
        {
            if (c.Parser.OnEndOfStream() != ParseStatus.Complete)
            {
                Fail(c, result);
                return false;
            }
            Complete(c, now, result);
            Close(c);
            return true;
        }
        c.Filled += n;
        switch (c.Parser.Parse(c.Buffer.AsSpan(0, c.Filled), out var consumed))
        {
            case ParseStatus.Complete when consumed == c.Filled:
                Complete(c, now, result);
                if (c.Parser.ConnectionClose)
                {
                    Close(c);
                }
                return true;
            case ParseStatus.NeedMore when consumed > 0 || c.Filled < c.Buffer.Length:
                c.Buffer.AsSpan(consumed, c.Filled - consumed).CopyTo(c.Buffer);
                c.Filled -= consumed;
                return false;
            default: // a parse error, a head larger than the buffer, or bytes after the response (we never pipeline)
                Fail(c, result);
                return false;
        }
    }

    private void Complete(Connection c, long now, RunResult result)
    {
        result.Completed++;
        if (c.Parser.StatusCode is < 200 or > 299)
        {
            result.Non2xx++;
        }
        result.FromDue.Record(Micros(now - c.Due));
        result.FromSend.Record(Micros(now - c.SentAt));
        c.Busy = false;
        ReturnFree(c);
    }

    private void Fail(Connection c, RunResult result)
    {
        result.Errors++;
        Close(c);
        c.Busy = false;
        ReturnFree(c);
    }

    private bool Connect(Connection c, out string error)
    {
        var socket = new Socket(_target.AddressFamily, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
        try
        {
            socket.Connect(_target);
        }
        catch (SocketException e)
        {
            socket.Dispose();
            error = e.SocketErrorCode.ToString();
            return false;
        }
        socket.Blocking = false;
        c.Socket = socket;
        c.Fd = (int)socket.Handle;
        error = "";
        return true;
    }

    private static void Close(Connection c)
    {
        c.Socket?.Dispose();
        c.Socket = null;
        c.Fd = -1;
    }

    private int TakeFree()
    {
        var index = _free[_freeHead];
        _freeHead = (_freeHead + 1) % _free.Length;
        _freeCount--;
        return index;
    }

    private void ReturnFree(Connection c) => _free[(_freeHead + _freeCount++) % _free.Length] = c.Index;

    private static long Micros(long ticks) => ticks * 1_000_000 / Stopwatch.Frequency;

    public void Dispose()
    {
        foreach (var c in _connections)
        {
            Close(c);
        }
    }

    private sealed class Connection(int index)
    {
        public int Index { get; } = index;
        public Socket? Socket;
        public int Fd = -1;
        public bool Busy;
        public long Due;
        public long SentAt;
        public int SendOffset;
        public int Filled;
        public readonly byte[] Buffer = new byte[BufferSize];
        public readonly HttpResponseParser Parser = new();
    }
}
