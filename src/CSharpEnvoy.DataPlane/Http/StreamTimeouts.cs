using System.Globalization;
using CSharpEnvoy.Config.Model.RouteConfiguration;
using Microsoft.AspNetCore.Http;

namespace CSharpEnvoy.DataPlane.Http;

/// <summary>Which connection manager timer ended a stream.</summary>
internal enum StreamTimeoutReason { None = 0, RequestTimeout = 1, MaxStreamDuration = 2 }

/// <summary>
/// The connection manager's per-stream timers (Envoy's <c>request_timer_</c> and <c>max_stream_duration_timer_</c>):
/// <c>request_timeout</c>, disarmed when the whole request has arrived, and the route's <c>max_stream_duration</c>
/// (or its gRPC <c>grpc-timeout</c> form). The first to fire cancels <see cref="Token"/>, which bounds the upstream
/// exchange; the router then answers as Envoy does. Allocated only for streams that have one of them.
/// </summary>
internal sealed class StreamTimeouts : IDisposable
{
    private readonly CancellationTokenSource _cts = new();
    private Timer? _requestTimer;
    private Timer? _durationTimer;
    private int _reason;

    public CancellationToken Token => _cts.Token;
    public StreamTimeoutReason Fired => (StreamTimeoutReason)Volatile.Read(ref _reason);

    public void ArmRequestTimeout(TimeSpan timeout) =>
        _requestTimer = new Timer(static s => ((StreamTimeouts)s!).Fire(StreamTimeoutReason.RequestTimeout), this, timeout, Timeout.InfiniteTimeSpan);

    /// <summary>The whole request has arrived (Envoy's <c>remoteDecodeComplete</c>).</summary>
    public bool RequestComplete { get; private set; }

    /// <summary>The request ended (its last byte arrived): request_timeout no longer applies.</summary>
    public void OnRequestComplete()
    {
        RequestComplete = true;
        _requestTimer?.Change(Timeout.InfiniteTimeSpan, Timeout.InfiniteTimeSpan);
    }

    public void ArmMaxStreamDuration(TimeSpan timeout) =>
        _durationTimer = new Timer(static s => ((StreamTimeouts)s!).Fire(StreamTimeoutReason.MaxStreamDuration), this, timeout, Timeout.InfiniteTimeSpan);

    private void Fire(StreamTimeoutReason reason)
    {
        if (Interlocked.CompareExchange(ref _reason, (int)reason, 0) != 0) return;
        try
        {
            _cts.Cancel();
        }
        catch (ObjectDisposedException)
        {
            // The stream ended as the timer fired.
        }
    }

    public void Dispose()
    {
        _requestTimer?.Dispose();
        _durationTimer?.Dispose();
        _cts.Dispose();
    }

    /// <summary>Envoy's <c>ActiveStream::refreshDurationTimeout</c>: the route's stream duration, or for a gRPC request
    /// with <c>grpc_timeout_header_max</c> its <c>grpc-timeout</c> (capped, less the offset); null when nothing bounds
    /// the stream (zero disables).</summary>
    public static TimeSpan? DurationFor(MaxStreamDurationModel m, HttpRequest request)
    {
        TimeSpan timeout;
        if (m.GrpcTimeoutHeaderMax is { } max && LocalReply.IsGrpc(request) && GrpcTimeout.TryParse(request.Headers["grpc-timeout"], out var header))
        {
            timeout = header;
            if (max > TimeSpan.Zero && timeout > max) timeout = max;
            if (timeout > TimeSpan.Zero && m.GrpcTimeoutHeaderOffset is { } offset)
                timeout = offset < timeout ? timeout - offset : TimeSpan.Zero;
        }
        else if (m.MaxStreamDuration is { } duration) timeout = duration;
        else return null;
        return timeout > TimeSpan.Zero ? timeout : null;
    }
}

/// <summary>The gRPC <c>grpc-timeout</c> header: up to 8 digits and a unit (H, M, S, m, u, n).</summary>
internal static class GrpcTimeout
{
    public static bool TryParse(Microsoft.Extensions.Primitives.StringValues values, out TimeSpan timeout)
    {
        timeout = TimeSpan.Zero;
        if (values.Count == 0) return false;
        var v = values[0].AsSpan();
        if (v.Length < 2 || v.Length > 9) return false;
        if (!long.TryParse(v[..^1], NumberStyles.None, CultureInfo.InvariantCulture, out var n)) return false;
        timeout = v[^1] switch
        {
            'H' => TimeSpan.FromHours(n),
            'M' => TimeSpan.FromMinutes(n),
            'S' => TimeSpan.FromSeconds(n),
            'm' => TimeSpan.FromMilliseconds(n),
            'u' => TimeSpan.FromMicroseconds(n),
            'n' => TimeSpan.FromTicks(n / 100),
            _ => TimeSpan.MinValue,
        };
        if (timeout == TimeSpan.MinValue) { timeout = TimeSpan.Zero; return false; }
        return true;
    }

    /// <summary>Envoy's <c>Grpc::Common::toGrpcTimeout</c>: milliseconds, in a larger unit when over 8 digits.</summary>
    public static string Format(TimeSpan timeout)
    {
        var ms = (long)timeout.TotalMilliseconds;
        const long max = 99_999_999;
        if (ms <= max) return ms.ToString(CultureInfo.InvariantCulture) + "m";
        var s = ms / 1000;
        if (s <= max) return s.ToString(CultureInfo.InvariantCulture) + "S";
        var m = s / 60;
        if (m <= max) return m.ToString(CultureInfo.InvariantCulture) + "M";
        return Math.Min(m / 60, max).ToString(CultureInfo.InvariantCulture) + "H";
    }
}

/// <summary>The downstream request body, watched for its end: the request is then complete (Envoy's
/// <c>remoteDecodeComplete</c>) and <c>request_timeout</c> is disarmed.</summary>
internal sealed class EndOfRequestWatcher(Stream inner, StreamTimeouts timeouts) : ReadOnlyBodyStream
{
    public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
    {
        var n = await inner.ReadAsync(buffer, cancellationToken).ConfigureAwait(false);
        if (n == 0 && !buffer.IsEmpty) timeouts.OnRequestComplete();
        return n;
    }

    public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
        ReadAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

    public override int Read(byte[] buffer, int offset, int count) => ReadAsync(buffer, offset, count, CancellationToken.None).GetAwaiter().GetResult();
}
