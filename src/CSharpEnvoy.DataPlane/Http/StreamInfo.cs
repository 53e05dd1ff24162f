using System.Diagnostics;
using CSharpEnvoy.Config.Model.RouteConfiguration;
using CSharpEnvoy.DataPlane.Upstream;

namespace CSharpEnvoy.DataPlane.Http;

/// <summary>Envoy's response flags (<c>%RESPONSE_FLAGS%</c>). Short names in <see cref="StreamInfo.FormatResponseFlags"/>.</summary>
[Flags]
internal enum ResponseFlags
{
    None = 0,
    FailedLocalHealthCheck = 1 << 0,      // LH
    NoHealthyUpstream = 1 << 1,           // UH
    UpstreamRequestTimeout = 1 << 2,      // UT
    LocalReset = 1 << 3,                  // LR
    UpstreamRemoteReset = 1 << 4,         // UR
    UpstreamConnectionFailure = 1 << 5,   // UF
    UpstreamConnectionTermination = 1 << 6, // UC
    UpstreamOverflow = 1 << 7,            // UO
    NoRouteFound = 1 << 8,                // NR
    DelayInjected = 1 << 9,               // DI
    FaultInjected = 1 << 10,              // FI
    RateLimited = 1 << 11,                // RL
    DownstreamConnectionTermination = 1 << 12, // DC
    UpstreamRetryLimitExceeded = 1 << 13, // URX
    NoClusterFound = 1 << 14,             // NC
    DownstreamProtocolError = 1 << 15,    // DPE
    UpstreamProtocolError = 1 << 16,      // UPE
    StreamIdleTimeout = 1 << 17,          // SI
    RateLimitServiceError = 1 << 18,      // RLSE
    DurationTimeout = 1 << 19,            // DT
    UnauthorizedExternalService = 1 << 20, // UAEX
}

/// <summary>
/// What happened to one request (Envoy's <c>StreamInfo</c>): timings, route, upstream host, response code details and
/// flags. It is also the request's YARP transformer (see <see cref="Router.UpstreamRequest"/>), so a forwarded request costs
/// one object beyond what Kestrel and YARP allocate.
/// </summary>
internal class StreamInfo : Yarp.ReverseProxy.Forwarder.HttpTransformer
{
    public long StartTimestamp { get; } = Stopwatch.GetTimestamp();
    public ResponseFlags Flags { get; set; }
    public string? ResponseCodeDetails { get; set; }
    public RouteModel? Route { get; set; }
    public VirtualHostModel? VirtualHost { get; set; }
    public Cluster? Cluster { get; set; }
    public Host? UpstreamHost { get; set; }
    public string? RequestId { get; set; }
    /// <summary>The body of the proxy's own reply to this request (<c>%LOCAL_REPLY_BODY%</c>), before its format.</summary>
    public string? LocalReplyBody { get; set; }
    /// <summary>The connection manager's <c>local_reply_config</c>; null without one.</summary>
    internal LocalReplyRewriter? LocalReplyConfig { get; set; }

    // Access log facts (see AccessLog/): filled in only while an access log is configured, except AttemptCount.
    /// <summary>Request body bytes read from downstream (%BYTES_RECEIVED%).</summary>
    public long BytesReceived { get; set; }
    /// <summary>Response body bytes written downstream (%BYTES_SENT%).</summary>
    public long BytesSent { get; set; }
    /// <summary>When the last request byte arrived (Stopwatch ticks); 0 while unknown.</summary>
    public long RequestCompleteTimestamp { get; set; }
    /// <summary>When the upstream's response headers arrived (Stopwatch ticks); 0 when there were none.</summary>
    public long UpstreamFirstByteTimestamp { get; set; }
    /// <summary>Upstream attempts made: 1 once the router sent the request (csenvoy does not retry yet).</summary>
    public int AttemptCount { get; set; }
    public string? UpstreamTransportFailureReason { get; set; }
    /// <summary>The local address of the upstream connection that carried the last attempt (%UPSTREAM_LOCAL_ADDRESS%),
    /// filled in only while an access log prints it (see <see cref="Upstream.UpstreamConnection"/>).</summary>
    public string? UpstreamLocalAddress { get; set; }
    /// <summary>The client address taken from x-forwarded-for, when that, not the peer, is the trusted remote address.</summary>
    public System.Net.IPAddress? XffRemoteAddress { get; set; }
    /// <summary>The request's span while tracing is configured (see Tracing/HttpTracing).</summary>
    public Tracing.Span? Span { get; set; }
    /// <summary>The upstream CLIENT span under <see cref="Span"/> with spawn_upstream_span.</summary>
    public Tracing.Span? UpstreamSpan { get; set; }
    /// <summary>x-envoy-decorator-operation for the response of a traced ingress request (the route's decorator).</summary>
    public string? ResponseDecoratorOperation { get; set; }
    /// <summary>Set by the health check filter for requests it identified as health checks (not_health_check_filter).</summary>
    public bool HealthCheck { get; set; }
    /// <summary>The virtual cluster's stats when the virtual host has virtual_clusters.</summary>
    public VirtualClusterStats? VirtualCluster { get; set; }

    // Envoy's ResponseFlagUtils order: flags are listed in this order, whatever order they were set in.
    private static readonly (ResponseFlags Flag, string Short, string Long)[] s_names =
    {
        (ResponseFlags.FailedLocalHealthCheck, "LH", "FailedLocalHealthCheck"), (ResponseFlags.NoHealthyUpstream, "UH", "NoHealthyUpstream"),
        (ResponseFlags.UpstreamRequestTimeout, "UT", "UpstreamRequestTimeout"), (ResponseFlags.LocalReset, "LR", "LocalReset"),
        (ResponseFlags.UpstreamRemoteReset, "UR", "UpstreamRemoteReset"), (ResponseFlags.UpstreamConnectionFailure, "UF", "UpstreamConnectionFailure"),
        (ResponseFlags.UpstreamConnectionTermination, "UC", "UpstreamConnectionTermination"), (ResponseFlags.UpstreamOverflow, "UO", "UpstreamOverflow"),
        (ResponseFlags.NoRouteFound, "NR", "NoRouteFound"), (ResponseFlags.DelayInjected, "DI", "DelayInjected"),
        (ResponseFlags.FaultInjected, "FI", "FaultInjected"), (ResponseFlags.RateLimited, "RL", "RateLimited"),
        (ResponseFlags.UnauthorizedExternalService, "UAEX", "UnauthorizedExternalService"),
        (ResponseFlags.RateLimitServiceError, "RLSE", "RateLimitServiceError"),
        (ResponseFlags.DownstreamConnectionTermination, "DC", "DownstreamConnectionTermination"),
        (ResponseFlags.UpstreamRetryLimitExceeded, "URX", "UpstreamRetryLimitExceeded"),
        (ResponseFlags.StreamIdleTimeout, "SI", "StreamIdleTimeout"),
        (ResponseFlags.DownstreamProtocolError, "DPE", "DownstreamProtocolError"),
        (ResponseFlags.DurationTimeout, "DT", "DurationTimeout"),
        (ResponseFlags.UpstreamProtocolError, "UPE", "UpstreamProtocolError"), (ResponseFlags.NoClusterFound, "NC", "NoClusterFound"),
    };

    /// <summary>Envoy's short form, comma separated, "-" when none.</summary>
    public static string FormatResponseFlags(ResponseFlags flags)
    {
        if (flags == ResponseFlags.None) return "-";
        var sb = new System.Text.StringBuilder();
        AppendResponseFlags(sb, flags, longNames: false);
        return sb.ToString();
    }

    /// <summary>Appends the flags as Envoy's %RESPONSE_FLAGS% (short) or %RESPONSE_FLAGS_LONG% does; "-" when none.</summary>
    public static void AppendResponseFlags(System.Text.StringBuilder sb, ResponseFlags flags, bool longNames)
    {
        if (flags == ResponseFlags.None)
        {
            sb.Append('-');
            return;
        }
        var first = true;
        foreach (var (f, s, l) in s_names)
        {
            if ((flags & f) == 0) continue;
            if (!first) sb.Append(',');
            sb.Append(longNames ? l : s);
            first = false;
        }
    }

    /// <summary>The flag for an Envoy short name; None for names csenvoy never sets (IH, ...).</summary>
    public static ResponseFlags ParseResponseFlag(string shortName)
    {
        foreach (var (f, s, _) in s_names) if (s == shortName) return f;
        return ResponseFlags.None;
    }
}
