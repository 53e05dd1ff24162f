namespace CSharpEnvoy.Config.Model.Cluster;

internal enum HealthCheckKind { Http, Tcp, Grpc }

/// <summary>Envoy's <c>config.core.v3.HealthStatus</c> of a configured endpoint.</summary>
internal enum EndpointHealthStatus { Unknown = 0, Healthy = 1, Unhealthy = 2, Draining = 3, Timeout = 4, Degraded = 5 }

/// <summary>A half-open status range [Start, End) of <c>expected_statuses</c>.</summary>
internal readonly record struct StatusRange(long Start, long End)
{
    public bool Contains(int code) => code >= Start && code < End;
}

/// <summary>One active health checker of a cluster (<c>config.core.v3.HealthCheck</c>), validated, with Envoy's defaults.</summary>
internal sealed record HealthCheckModel
{
    public HealthCheckKind Kind { get; init; }
    public TimeSpan Timeout { get; init; }
    public TimeSpan Interval { get; init; }
    public TimeSpan InitialJitter { get; init; }
    public TimeSpan IntervalJitter { get; init; }
    public uint IntervalJitterPercent { get; init; }
    public uint UnhealthyThreshold { get; init; }
    public uint HealthyThreshold { get; init; }
    /// <summary>Used while the cluster has not carried traffic yet (default 60 s).</summary>
    public TimeSpan NoTrafficInterval { get; init; } = TimeSpan.FromSeconds(60);
    /// <summary>Defaults to <see cref="NoTrafficInterval"/>.</summary>
    public TimeSpan NoTrafficHealthyInterval { get; init; } = TimeSpan.FromSeconds(60);
    /// <summary>Defaults to <see cref="Interval"/>.</summary>
    public TimeSpan UnhealthyInterval { get; init; }
    /// <summary>Defaults to <see cref="UnhealthyInterval"/>.</summary>
    public TimeSpan UnhealthyEdgeInterval { get; init; }
    /// <summary>Defaults to <see cref="Interval"/>.</summary>
    public TimeSpan HealthyEdgeInterval { get; init; }
    public bool ReuseConnection { get; init; } = true;

    // HTTP
    public string Path { get; init; } = "/";
    /// <summary>The Host / :authority; null means the cluster name, as in Envoy.</summary>
    public string? Host { get; init; }
    public IReadOnlyList<StatusRange> ExpectedStatuses { get; init; } = [new StatusRange(200, 201)];
    public IReadOnlyList<StatusRange> RetriableStatuses { get; init; } = [];
    public IReadOnlyList<KeyValuePair<string, string>> RequestHeadersToAdd { get; init; } = [];
    public IReadOnlyList<string> RequestHeadersToRemove { get; init; } = [];
    public bool Http2 { get; init; }
    public string Method { get; init; } = "GET";

    // TCP (and HTTP send/receive are refused)
    public byte[]? Send { get; init; }
    public IReadOnlyList<byte[]> Receive { get; init; } = [];

    // gRPC
    public string ServiceName { get; init; } = "";
    public string? Authority { get; init; }
    public IReadOnlyList<KeyValuePair<string, string>> InitialMetadata { get; init; } = [];
}

/// <summary><c>config.cluster.v3.OutlierDetection</c> with Envoy's defaults.</summary>
internal sealed record OutlierDetectionModel
{
    public uint Consecutive5xx { get; init; } = 5;
    public uint ConsecutiveGatewayFailure { get; init; } = 5;
    public uint ConsecutiveLocalOriginFailure { get; init; } = 5;
    public TimeSpan Interval { get; init; } = TimeSpan.FromSeconds(10);
    public TimeSpan BaseEjectionTime { get; init; } = TimeSpan.FromSeconds(30);
    public TimeSpan MaxEjectionTime { get; init; } = TimeSpan.FromSeconds(300);
    public TimeSpan MaxEjectionTimeJitter { get; init; }
    public uint MaxEjectionPercent { get; init; } = 10;
    public uint EnforcingConsecutive5xx { get; init; } = 100;
    public uint EnforcingConsecutiveGatewayFailure { get; init; }
    public uint EnforcingConsecutiveLocalOriginFailure { get; init; } = 100;
    public uint EnforcingSuccessRate { get; init; } = 100;
    public uint EnforcingLocalOriginSuccessRate { get; init; } = 100;
    public uint SuccessRateMinimumHosts { get; init; } = 5;
    public uint SuccessRateRequestVolume { get; init; } = 100;
    public uint SuccessRateStdevFactor { get; init; } = 1900;
    public uint FailurePercentageThreshold { get; init; } = 85;
    public uint EnforcingFailurePercentage { get; init; }
    public uint EnforcingFailurePercentageLocalOrigin { get; init; }
    public uint FailurePercentageMinimumHosts { get; init; } = 5;
    public uint FailurePercentageRequestVolume { get; init; } = 50;
    public bool SplitExternalLocalOriginErrors { get; init; }
    public bool SuccessfulActiveHealthCheckUnejectHost { get; init; } = true;
    public bool AlwaysEjectOneHost { get; init; }
}
