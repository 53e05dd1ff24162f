using System.Globalization;
using System.Net.Http.Headers;
using CSharpEnvoy.Config.Model.RouteConfiguration;
using CSharpEnvoy.DataPlane.Upstream;
using Microsoft.AspNetCore.Http;

namespace CSharpEnvoy.DataPlane.Router;

/// <summary>Why an attempt ended without a response.</summary>
internal enum ResetKind { ConnectFailure, Reset, RefusedStream, PerTryTimeout }

/// <summary>
/// Envoy's RetryStateImpl for one request: the effective conditions (route or virtual host policy plus the
/// x-envoy-retry-* headers of internal requests), the retries left, the back-off and the hosts already tried.
/// Allocated only for requests that may be retried.
/// </summary>
internal sealed class RetryState
{
    private readonly RetryPolicyModel _policy;
    private readonly RetryOn _on;
    private readonly int[]? _headerStatusCodes;
    private readonly string[]? _headerNames;
    private uint _retriesLeft;
    private long _nextBackoffMs;
    private readonly long _maxBackoffMs;
    private Host[]? _tried;
    private int _triedCount;

    private RetryState(RetryPolicyModel policy, RetryOn on, uint numRetries, int[]? codes, string[]? names)
    {
        _policy = policy;
        _on = on;
        _retriesLeft = numRetries;
        _headerStatusCodes = codes;
        _headerNames = names;
        _nextBackoffMs = Math.Max(1, (long)policy.BaseInterval.TotalMilliseconds);
        _maxBackoffMs = Math.Max(_nextBackoffMs, (long)policy.MaxInterval.TotalMilliseconds);
    }

    public RetryPolicyModel Policy => _policy;

    /// <summary>Reads (and, as Envoy, consumes) the retry headers; null when no condition can ever retry.</summary>
    public static RetryState? Create(RetryPolicyModel? policy, IHeaderDictionary headers)
    {
        policy ??= RetryPolicyModel.Empty;
        var on = policy.RetryOn;
        var numRetries = policy.NumRetries;
        int[]? codes = null;
        string[]? names = null;
        var any = headers.ContainsKey("x-envoy-retry-on") || headers.ContainsKey("x-envoy-retry-grpc-on") || headers.ContainsKey("x-envoy-max-retries")
            || headers.ContainsKey("x-envoy-retriable-status-codes") || headers.ContainsKey("x-envoy-retriable-header-names");
        if (any)
        {
            // Unknown names in headers are ignored, as Envoy does.
            on |= RetryOnParser.Parse(headers["x-envoy-retry-on"].ToString(), out _);
            on |= RetryOnParser.Parse(headers["x-envoy-retry-grpc-on"].ToString(), out _);
            if (uint.TryParse(headers["x-envoy-max-retries"].ToString(), NumberStyles.None, CultureInfo.InvariantCulture, out var max)) numRetries = max;
            codes = ParseCodes(headers["x-envoy-retriable-status-codes"].ToString());
            var n = headers["x-envoy-retriable-header-names"].ToString();
            if (n.Length > 0) names = n.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries);
            headers.Remove("x-envoy-retry-on");
            headers.Remove("x-envoy-retry-grpc-on");
            headers.Remove("x-envoy-max-retries");
            headers.Remove("x-envoy-retriable-status-codes");
            headers.Remove("x-envoy-retriable-header-names");
        }
        if (on == RetryOn.None) return null;
        return new RetryState(policy, on, numRetries, codes, names);
    }

    private static int[]? ParseCodes(string v)
    {
        if (v.Length == 0) return null;
        var parts = v.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries);
        var list = new List<int>(parts.Length);
        foreach (var p in parts)
            if (int.TryParse(p, NumberStyles.None, CultureInfo.InvariantCulture, out var c)) list.Add(c);
        return list.ToArray();
    }

    /// <summary>Whether this response matches a retry condition (Envoy's wouldRetryFromHeaders).</summary>
    public bool WouldRetry(HttpResponseMessage response) => WouldRetry((int)response.StatusCode, new ResponseMessageHeaders(response));

    /// <summary>Whether a response with this status and these headers matches a retry condition.</summary>
    public bool WouldRetry<THeaders>(int status, THeaders headers) where THeaders : IResponseHeaderLookup
    {
        // An upstream Envoy that shed load must not be retried into.
        if (headers.Get("x-envoy-overloaded") is not null) return false;
        if ((_on & RetryOn.EnvoyRateLimited) != 0 && headers.Get("x-envoy-ratelimited") is not null) return true;
        if ((_on & RetryOn.FiveXx) != 0 && status >= 500) return true;
        if ((_on & RetryOn.GatewayError) != 0 && status is 502 or 503 or 504) return true;
        if ((_on & RetryOn.Retriable4xx) != 0 && status == 409) return true;
        if ((_on & RetryOn.RetriableStatusCodes) != 0 && (Contains(_policy.RetriableStatusCodes, status) || (_headerStatusCodes is { } hc && Contains(hc, status)))) return true;
        if ((_on & RetryOn.RetriableHeaders) != 0 && MatchesRetriableHeader(headers)) return true;
        const RetryOn grpc = RetryOn.GrpcCancelled | RetryOn.GrpcDeadlineExceeded | RetryOn.GrpcInternal | RetryOn.GrpcResourceExhausted | RetryOn.GrpcUnavailable;
        if ((_on & grpc) != 0 && headers.Get("grpc-status") is { } gs)
        {
            var comma = gs.IndexOf(',');
            var bit = (comma < 0 ? gs : gs[..comma]) switch
            {
                "1" => RetryOn.GrpcCancelled,
                "4" => RetryOn.GrpcDeadlineExceeded,
                "8" => RetryOn.GrpcResourceExhausted,
                "13" => RetryOn.GrpcInternal,
                "14" => RetryOn.GrpcUnavailable,
                _ => RetryOn.None,
            };
            if ((_on & bit) != 0) return true;
        }
        return false;
    }

    private bool MatchesRetriableHeader<THeaders>(THeaders headers) where THeaders : IResponseHeaderLookup
    {
        foreach (var m in _policy.RetriableHeaders)
            if (m.Match(headers.Get(m.Name))) return true;
        if (_headerNames is { } names)
            foreach (var n in names)
                if (headers.Get(n) is not null) return true;
        return false;
    }

    /// <summary>A response's headers as SocketsHttpHandler parsed them.</summary>
    internal readonly struct ResponseMessageHeaders(HttpResponseMessage response) : IResponseHeaderLookup
    {
        public string? Get(string name)
        {
            if (response.Headers.NonValidated.TryGetValues(name, out var v) || response.Content.Headers.NonValidated.TryGetValues(name, out v))
                return v.Count == 1 ? v.ToString() : string.Join(',', v);
            return null;
        }
    }

    private static bool Contains(int[] codes, int status)
    {
        foreach (var c in codes) if (c == status) return true;
        return false;
    }

    /// <summary>Envoy's wouldRetryFromReset.</summary>
    public bool WouldRetry(ResetKind kind) => kind switch
    {
        ResetKind.ConnectFailure => (_on & (RetryOn.ConnectFailure | RetryOn.FiveXx | RetryOn.GatewayError | RetryOn.Reset)) != 0,
        ResetKind.RefusedStream => (_on & (RetryOn.RefusedStream | RetryOn.FiveXx | RetryOn.GatewayError | RetryOn.Reset)) != 0,
        _ => (_on & (RetryOn.FiveXx | RetryOn.GatewayError | RetryOn.Reset)) != 0,
    };

    /// <summary>After a retriable outcome: takes a retry if one is left and the retry circuit breaker allows it
    /// (the caller releases <see cref="ResourceManager.Retries"/> when the retry ends). False leaves the outcome final.</summary>
    public bool TryTakeRetry(ResourceManager resources, out bool limitExceeded)
    {
        limitExceeded = false;
        if (_retriesLeft == 0)
        {
            limitExceeded = true;
            resources.UpstreamRqRetryLimitExceeded.Inc();
            return false;
        }
        _retriesLeft--;
        if (!resources.Retries.TryAcquire())
        {
            resources.UpstreamRqRetryOverflow.Inc();
            return false;
        }
        resources.UpstreamRqRetry.Inc();
        resources.UpstreamRqRetryBackoffExponential.Inc();
        return true;
    }

    /// <summary>Envoy's jittered exponential back-off: uniform in [0, interval), the interval doubling up to the maximum.</summary>
    public TimeSpan NextBackoff()
    {
        var interval = _nextBackoffMs;
        _nextBackoffMs = _nextBackoffMs > _maxBackoffMs / 2 ? _maxBackoffMs : _nextBackoffMs * 2;
        return TimeSpan.FromMilliseconds(Math.Min(Random.Shared.NextInt64(interval), _maxBackoffMs));
    }

    public void RecordHost(Host host)
    {
        if (!_policy.AvoidPreviousHosts) return;
        _tried ??= new Host[4];
        if (_triedCount == _tried.Length) Array.Resize(ref _tried, _tried.Length * 2);
        _tried[_triedCount++] = host;
    }

    /// <summary>previous_hosts: re-picks up to host_selection_retry_max_attempts times to avoid a host already tried.</summary>
    public Host? ChooseHost(Cluster cluster)
    {
        var host = cluster.ChooseHost();
        if (!_policy.AvoidPreviousHosts) return host;
        for (long i = 0; i < _policy.HostSelectionRetryMaxAttempts && host is not null && WasTried(host); i++)
            host = cluster.ChooseHost();
        return host;
    }

    private bool WasTried(Host host)
    {
        for (var i = 0; i < _triedCount; i++) if (ReferenceEquals(_tried![i], host)) return true;
        return false;
    }
}

/// <summary>
/// The downstream request body, recorded as it streams to the first attempt so a retry (or a mirror) can replay it.
/// Recording stops past the buffer limit; the request then continues unbuffered and can no longer be replayed.
/// </summary>
internal sealed class ReplayableBody
{
    private readonly Stream _source;
    private readonly int _limit;
    private byte[] _buffer;
    private int _length;

    public ReplayableBody(Stream source, int limit)
    {
        _source = source;
        _limit = limit;
        _buffer = new byte[Math.Min(limit, 16 * 1024)];
    }

    public bool Overflowed { get; private set; }
    public bool Complete { get; private set; }
    public ReadOnlyMemory<byte> Recorded => _buffer.AsMemory(0, _length);
    public bool CanReplay => !Overflowed;

    public Stream NewReader() => new Reader(this);

    /// <summary>Reads the whole body into the buffer ahead of any reader (a hedged request sends tries side by side,
    /// each from the buffer). Stops once the body passes the limit: the byte past it is kept, so a reader still gets
    /// the whole body, buffered part first, but it cannot be replayed.</summary>
    public async ValueTask FillAsync(CancellationToken ct)
    {
        while (!Complete && !Overflowed)
        {
            if (_length == _buffer.Length) Array.Resize(ref _buffer, (int)Math.Min(_limit + 1L, Math.Max(_buffer.Length * 2L, 4096)));
            var read = await _source.ReadAsync(_buffer.AsMemory(_length), ct).ConfigureAwait(false);
            if (read == 0)
            {
                Complete = true;
                return;
            }
            _length += read;
            if (_length > _limit) Overflowed = true;
        }
    }

    private async ValueTask<int> ReadAtAsync(long position, Memory<byte> destination, CancellationToken ct)
    {
        if (destination.IsEmpty)
        {
            // A zero-byte read waits for data without consuming it; it is not the end of the body.
            if (position >= _length && !Complete) await _source.ReadAsync(destination, ct).ConfigureAwait(false);
            return 0;
        }
        if (position < _length)
        {
            var n = (int)Math.Min(destination.Length, _length - position);
            _buffer.AsMemory((int)position, n).CopyTo(destination);
            return n;
        }
        if (Complete) return 0;
        var read = await _source.ReadAsync(destination, ct).ConfigureAwait(false);
        if (read == 0)
        {
            Complete = true;
            return 0;
        }
        if (Overflowed) return read;
        if (_length + read > _limit)
        {
            Overflowed = true;
            return read;
        }
        if (_length + read > _buffer.Length) Array.Resize(ref _buffer, (int)Math.Min(_limit, Math.Max(_buffer.Length * 2L, _length + read)));
        destination[..read].CopyTo(_buffer.AsMemory(_length));
        _length += read;
        return read;
    }

    private sealed class Reader : Http.ReadOnlyBodyStream
    {
        private readonly ReplayableBody _body;
        private long _position;

        public Reader(ReplayableBody body) => _body = body;

        public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
        {
            var n = await _body.ReadAtAsync(_position, buffer, cancellationToken).ConfigureAwait(false);
            _position += n;
            return n;
        }

        public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
            ReadAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

        public override int Read(byte[] buffer, int offset, int count) => ReadAsync(buffer, offset, count, CancellationToken.None).GetAwaiter().GetResult();
        public override long Position { get => _position; set => throw new NotSupportedException(); }
    }
}

/// <summary>Response headers by name (case-insensitive), several values joined with commas; null when absent.</summary>
internal interface IResponseHeaderLookup
{
    string? Get(string name);
}
