using CSharpEnvoy.Config.Model.Matchers;

namespace CSharpEnvoy.Config.Model.RouteConfiguration;

/// <summary>Envoy's retry_on / retry-grpc-on conditions, as bits.</summary>
[Flags]
internal enum RetryOn
{
    None = 0,
    FiveXx = 1 << 0,
    GatewayError = 1 << 1,
    Reset = 1 << 2,
    ConnectFailure = 1 << 3,
    Retriable4xx = 1 << 4,
    RefusedStream = 1 << 5,
    RetriableStatusCodes = 1 << 6,
    RetriableHeaders = 1 << 7,
    EnvoyRateLimited = 1 << 8,
    GrpcCancelled = 1 << 9,
    GrpcDeadlineExceeded = 1 << 10,
    GrpcResourceExhausted = 1 << 11,
    GrpcUnavailable = 1 << 12,
    GrpcInternal = 1 << 13,
}

internal static class RetryOnParser
{
    /// <summary>Parses a comma separated retry_on list; unknown names are returned in <paramref name="unknown"/>.</summary>
    public static RetryOn Parse(string value, out string? unknown)
    {
        unknown = null;
        var result = RetryOn.None;
        foreach (var raw in value.Split(','))
        {
            var name = raw.Trim();
            if (name.Length == 0) continue;
            var bit = Bit(name);
            if (bit == RetryOn.None) unknown ??= name;
            result |= bit;
        }
        return result;
    }

    public static RetryOn Bit(string name) => name switch
    {
        "5xx" => RetryOn.FiveXx,
        "gateway-error" => RetryOn.GatewayError,
        "reset" => RetryOn.Reset,
        "connect-failure" => RetryOn.ConnectFailure,
        "retriable-4xx" => RetryOn.Retriable4xx,
        "refused-stream" => RetryOn.RefusedStream,
        "retriable-status-codes" => RetryOn.RetriableStatusCodes,
        "retriable-headers" => RetryOn.RetriableHeaders,
        "envoy-ratelimited" => RetryOn.EnvoyRateLimited,
        "cancelled" => RetryOn.GrpcCancelled,
        "deadline-exceeded" => RetryOn.GrpcDeadlineExceeded,
        "resource-exhausted" => RetryOn.GrpcResourceExhausted,
        "unavailable" => RetryOn.GrpcUnavailable,
        "internal" => RetryOn.GrpcInternal,
        _ => RetryOn.None,
    };
}

/// <summary>A route's (or virtual host's) <c>retry_policy</c>.</summary>
internal sealed record RetryPolicyModel
{
    public RetryOn RetryOn { get; init; }
    /// <summary>Envoy's default is 1.</summary>
    public uint NumRetries { get; init; } = 1;
    /// <summary>Zero: no per-try timeout (the route timeout bounds every attempt).</summary>
    public TimeSpan PerTryTimeout { get; init; }
    public TimeSpan BaseInterval { get; init; } = TimeSpan.FromMilliseconds(25);
    /// <summary>Envoy's default is ten times the base interval.</summary>
    public TimeSpan MaxInterval { get; init; } = TimeSpan.FromMilliseconds(250);
    public int[] RetriableStatusCodes { get; init; } = Array.Empty<int>();
    public HeaderMatcherModel[] RetriableHeaders { get; init; } = Array.Empty<HeaderMatcherModel>();
    /// <summary><c>envoy.retry_host_predicates.previous_hosts</c>: retries avoid hosts already tried.</summary>
    public bool AvoidPreviousHosts { get; init; }
    /// <summary>Host picks per retry when a predicate rejects the host (Envoy's default 1).</summary>
    public long HostSelectionRetryMaxAttempts { get; init; } = 1;

    /// <summary>A policy with no conditions: only request headers (x-envoy-retry-on) can enable retries.</summary>
    public static readonly RetryPolicyModel Empty = new();
}

/// <summary>One <c>request_mirror_policies</c> entry.</summary>
internal sealed record RequestMirrorPolicyModel(string? Cluster, string? ClusterHeader, uint Numerator, uint Denominator);
