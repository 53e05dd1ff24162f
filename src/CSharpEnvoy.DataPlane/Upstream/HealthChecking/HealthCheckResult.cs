namespace CSharpEnvoy.DataPlane.Upstream.HealthChecking;

/// <summary>The outcome of one check, in Envoy's failure types: ACTIVE failures (a bad status) fail a host at once,
/// NETWORK failures (connect error, reset, timeout) and retriable statuses count towards <c>unhealthy_threshold</c>.</summary>
internal enum HealthCheckResult
{
    Success,
    /// <summary>Success with <c>x-envoy-degraded</c>.</summary>
    Degraded,
    ActiveFailure,
    RetriableFailure,
    NetworkFailure,
    Timeout,
    /// <summary><c>x-envoy-immediate-health-check-fail</c>: fail and exclude at once.</summary>
    ImmediateFailure,
}

/// <summary>One kind of check (HTTP, TCP, gRPC) against one host; the session handles timing and thresholds.</summary>
internal interface IHealthCheck : IDisposable
{
    /// <summary>Runs one check; <paramref name="ct"/> fires at the check's timeout (or on shutdown).</summary>
    Task<HealthCheckResult> CheckAsync(Host host, CancellationToken ct);
}
