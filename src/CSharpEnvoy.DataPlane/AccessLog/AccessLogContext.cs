using System.Diagnostics;
using CSharpEnvoy.DataPlane.Router;
using Microsoft.AspNetCore.Http;

namespace CSharpEnvoy.DataPlane.AccessLog;

/// <summary>What a log line is made from: the request's HttpContext and stream info, frozen when the request ended.</summary>
internal readonly struct AccessLogContext
{
    public AccessLogContext(HttpContext http, UpstreamRequest info, long endTimestamp, DateTime nowUtc)
    {
        Http = http;
        Info = info;
        EndTimestamp = endTimestamp;
        StartUtc = nowUtc - Stopwatch.GetElapsedTime(info.StartTimestamp, endTimestamp);
        // Envoy logs 0 when no response was sent (the client went away first).
        ResponseCode = http.Response.HasStarted || !http.RequestAborted.IsCancellationRequested ? http.Response.StatusCode : 0;
    }

    public HttpContext Http { get; }
    public UpstreamRequest Info { get; }
    public long EndTimestamp { get; }
    public DateTime StartUtc { get; }
    public int ResponseCode { get; }

    /// <summary>A connection-level entry (listener and TCP proxy access logs): the connection's addresses and id, no
    /// request (request operators print "-") and response code 0, ending now.</summary>
    public static AccessLogContext ForConnection(Microsoft.AspNetCore.Connections.ConnectionContext connection, UpstreamRequest info)
    {
        var http = new DefaultHttpContext();
        if (connection.RemoteEndPoint is System.Net.IPEndPoint remote)
        {
            http.Connection.RemoteIpAddress = remote.Address;
            http.Connection.RemotePort = remote.Port;
        }
        if (connection.LocalEndPoint is System.Net.IPEndPoint local)
        {
            http.Connection.LocalIpAddress = local.Address;
            http.Connection.LocalPort = local.Port;
        }
        if (connection.Features.Get<DownstreamConnectionId>() is { } id) http.Features.Set(id);
        http.Response.StatusCode = 0;
        return new AccessLogContext(http, info, Stopwatch.GetTimestamp(), DateTime.UtcNow);
    }

    /// <summary>Whole milliseconds from the request's start to <paramref name="timestamp"/> (Envoy truncates).</summary>
    public long MillisSinceStart(long timestamp) => (long)Stopwatch.GetElapsedTime(Info.StartTimestamp, timestamp).TotalMilliseconds;
}
