namespace CSharpEnvoy.DataPlane.Listener;

/// <summary>Envoy's <c>--drain-strategy</c>.</summary>
internal enum DrainStrategy
{
    /// <summary>The share of HTTP/1 responses asking the client to close grows from none to all over the drain time.</summary>
    Gradual,
    /// <summary>Every HTTP/1 response asks the client to close from the start of the drain.</summary>
    Immediate,
}

/// <summary>
/// One drain of a listener or of a filter chain (Envoy's drain manager): started at a point in time, it lasts the drain
/// time (<c>--drain-time-s</c>), and decides per HTTP/1 response whether the connection is asked to close.
/// </summary>
internal sealed class DrainSequence(DrainStrategy strategy, TimeSpan drainTime, TimeProvider time)
{
    private readonly long _started = time.GetTimestamp();

    public TimeSpan DrainTime => drainTime;

    /// <summary>Whether this response asks the client to close its connection: always with the immediate strategy; with
    /// the gradual one with a probability of the share of the drain time gone (all of them once it is over).</summary>
    public bool CloseConnection()
    {
        if (strategy == DrainStrategy.Immediate || drainTime <= TimeSpan.Zero) return true;
        var share = time.GetElapsedTime(_started).Ticks / (double)drainTime.Ticks;
        return share >= 1 || Random.Shared.NextDouble() < share;
    }
}
