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

    private static readonly (ResponseFlags Flag, string Short)[] s_names =
    {
        (ResponseFlags.FailedLocalHealthCheck, "LH"), (ResponseFlags.NoHealthyUpstream, "UH"),
        (ResponseFlags.UpstreamRequestTimeout, "UT"), (ResponseFlags.LocalReset, "LR"),
        (ResponseFlags.UpstreamRemoteReset, "UR"), (ResponseFlags.UpstreamConnectionFailure, "UF"),
        (ResponseFlags.UpstreamConnectionTermination, "UC"), (ResponseFlags.UpstreamOverflow, "UO"),
        (ResponseFlags.NoRouteFound, "NR"), (ResponseFlags.DelayInjected, "DI"), (ResponseFlags.FaultInjected, "FI"),
        (ResponseFlags.RateLimited, "RL"), (ResponseFlags.DownstreamConnectionTermination, "DC"),
        (ResponseFlags.UpstreamRetryLimitExceeded, "URX"), (ResponseFlags.NoClusterFound, "NC"),
        (ResponseFlags.DownstreamProtocolError, "DPE"), (ResponseFlags.UpstreamProtocolError, "UPE"),
    };

    /// <summary>Envoy's short form, comma separated, "-" when none.</summary>
    public static string FormatResponseFlags(ResponseFlags flags)
    {
        if (flags == ResponseFlags.None) return "-";
        var parts = new List<string>();
        foreach (var (f, s) in s_names) if ((flags & f) != 0) parts.Add(s);
        return string.Join(',', parts);
    }
}
