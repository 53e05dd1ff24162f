using System.Diagnostics;
using CSharpEnvoy.DataPlane.Http;

namespace CSharpEnvoy.DataPlane.Router;

/// <summary>
/// A request's route timeout (Envoy's <c>timeout</c>, 15 s by default) as a cancellation source. The common case, a
/// route timeout alone, takes a source and its timer from a per-thread pool and gives them back when the request ends,
/// instead of a new source, timer and registrations (~280 bytes) per request. When the connection manager's stream
/// timers bound the request too the source is linked to them and not pooled.
/// </summary>
/// <remarks>
/// A pooled source must never be cancelled by a timer armed for an earlier request. So the timer's callback cancels
/// only while the source is armed and its deadline has passed (a callback that comes early re-arms the timer for what
/// is left), and the request's end and the callback race on one compare-and-swap: if the callback wins, the source
/// is cancelled and dropped instead of pooled.
/// </remarks>
internal sealed class RouteTimeout
{
    private const int Idle = 0, Armed = 1, Fired = 2;
    private static readonly TimerCallback s_onTimer = static s => ((RouteTimeout)s!).OnTimer();

    private readonly CancellationTokenSource _cts;
    /// <summary>The pooled source's own timer, re-armed for each request; null for a linked source.</summary>
    private readonly Timer? _timer;
    private readonly bool _linked;
    private long _deadline;
    private int _state;

    private RouteTimeout(CancellationTokenSource cts, bool linked)
    {
        _cts = cts;
        _linked = linked;
        if (!linked) _timer = new Timer(s_onTimer, this, Timeout.Infinite, Timeout.Infinite);
    }

    /// <summary>The source the request's upstream exchange is bound by.</summary>
    public CancellationTokenSource Source => _cts;

    /// <summary>The source for a request with route timeout <paramref name="timeout"/> (zero: none) and the connection
    /// manager's stream timers' token; null when neither bounds the request.</summary>
    public static RouteTimeout? Start(TimeSpan timeout, CancellationToken streamToken)
    {
        if (streamToken.CanBeCanceled)
        {
            var linked = new RouteTimeout(CancellationTokenSource.CreateLinkedTokenSource(streamToken), linked: true);
            if (timeout > TimeSpan.Zero) linked._cts.CancelAfter(timeout);
            return linked;
        }
        if (timeout <= TimeSpan.Zero) return null;
        var pooled = PerThreadPool<RouteTimeout>.Rent() ?? new RouteTimeout(new CancellationTokenSource(), linked: false);
        pooled.Arm(timeout);
        return pooled;
    }

    private void Arm(TimeSpan timeout)
    {
        Volatile.Write(ref _deadline, Stopwatch.GetTimestamp() + (long)(timeout.TotalSeconds * Stopwatch.Frequency));
        Volatile.Write(ref _state, Armed);
        _timer!.Change(timeout, Timeout.InfiniteTimeSpan);
    }

    /// <summary>The upstream accepted an upgrade: only the idle timeout bounds the tunnel from now on.</summary>
    public void Disarm()
    {
        if (_linked)
        {
            _cts.CancelAfter(Timeout.InfiniteTimeSpan);
            return;
        }
        Interlocked.CompareExchange(ref _state, Idle, Armed);
        _timer!.Change(Timeout.Infinite, Timeout.Infinite);
    }

    /// <summary>The timer's callback (internal for tests, which play a late callback).</summary>
    internal void OnTimer()
    {
        if (Volatile.Read(ref _state) != Armed) return;
        var remaining = Volatile.Read(ref _deadline) - Stopwatch.GetTimestamp();
        if (remaining > 0)
        {
            // Early (the timer counts whole milliseconds) or left over from an earlier request: wait for the deadline.
            try
            {
                _timer!.Change(TimeSpan.FromSeconds(remaining / (double)Stopwatch.Frequency) + TimeSpan.FromMilliseconds(1), Timeout.InfiniteTimeSpan);
            }
            catch (ObjectDisposedException)
            {
                // The request ended meanwhile and the source was dropped.
            }
            return;
        }
        if (Interlocked.CompareExchange(ref _state, Fired, Armed) != Armed) return;
        _cts.Cancel();
    }

    /// <summary>The request is over: a pooled source goes back to the thread's pool unless its timer fired.</summary>
    public void Release()
    {
        if (_linked)
        {
            _cts.Dispose();
            return;
        }
        if (Interlocked.CompareExchange(ref _state, Idle, Armed) == Fired)
        {
            // Cancelled (perhaps still running its callbacks): dropped, never reused.
            _timer!.Dispose();
            return;
        }
        _timer!.Change(Timeout.Infinite, Timeout.Infinite);
        // TryReset also drops what is still registered on the token; it fails only for a cancelled source.
        if (!_cts.TryReset() || !PerThreadPool<RouteTimeout>.Return(this))
        {
            _timer.Dispose();
            _cts.Dispose();
        }
    }
}
