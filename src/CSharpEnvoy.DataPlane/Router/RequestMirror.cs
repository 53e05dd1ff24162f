using System.Diagnostics;
using System.Net;
using CSharpEnvoy.Config.Model.Cluster;
using CSharpEnvoy.Config.Model.RouteConfiguration;
using CSharpEnvoy.DataPlane.Upstream;
using Microsoft.AspNetCore.Http;

namespace CSharpEnvoy.DataPlane.Router;

/// <summary>
/// Envoy's request mirroring (shadowing): a copy of the request, Host suffixed "-shadow", goes to another cluster
/// and its outcome is discarded. The shadow never delays or changes the main response.
/// </summary>
internal static class RequestMirror
{
    /// <summary>A shadow ready to send: its request is copied now, before the main request's headers change further.</summary>
    internal sealed class Pending
    {
        public required Cluster Cluster { get; init; }
        public required Host Host { get; init; }
        public required HttpRequestMessage Request { get; init; }
    }

    /// <summary>The shadows this request gets, each with a copy of the (already mutated) request headers.</summary>
    public static List<Pending>? Prepare(RequestMirrorPolicyModel[] policies, ClusterManager clusters, HttpContext context, UpstreamRequest info)
    {
        List<Pending>? result = null;
        foreach (var p in policies)
        {
            if (p.Numerator < p.Denominator && (uint)Random.Shared.NextInt64(p.Denominator) >= p.Numerator) continue;
            var name = p.Cluster;
            if (name is null)
            {
                var v = context.Request.Headers[p.ClusterHeader!];
                name = v.Count == 0 ? null : v[0];
            }
            var cluster = name is null ? null : clusters.Get(name);
            var host = cluster?.ChooseHost();
            if (cluster is null || host is null) continue;
            var request = new HttpRequestMessage(new HttpMethod(context.Request.Method), new Uri(host.DestinationPrefix + info.UpstreamPathAndQuery))
            {
                Version = cluster.Model.Protocol == UpstreamProtocol.Http2 ? HttpVersion.Version20 : HttpVersion.Version11,
                VersionPolicy = HttpVersionPolicy.RequestVersionExact,
            };
            foreach (var h in context.Request.Headers)
            {
                if (h.Key.Length == 0 || h.Key[0] == ':' || IsHopByHop(h.Key) || h.Key.Equals("host", StringComparison.OrdinalIgnoreCase)) continue;
                request.Headers.TryAddWithoutValidation(h.Key, (IEnumerable<string?>)h.Value);
            }
            request.Headers.Host = ShadowHost(info.UpstreamAuthority);
            (result ??= new List<Pending>()).Add(new Pending { Cluster = cluster, Host = host, Request = request });
        }
        return result;
    }

    /// <summary>Envoy inserts "-shadow" before the port: "api:8080" becomes "api-shadow:8080".</summary>
    internal static string ShadowHost(string authority)
    {
        var colon = authority.LastIndexOf(':');
        if (colon > 0 && authority.IndexOf(']') < colon && authority.IndexOf(':') == colon)
            return string.Concat(authority.AsSpan(0, colon), "-shadow", authority.AsSpan(colon));
        return authority + "-shadow";
    }

    private static bool IsHopByHop(string name) =>
        name.Equals("connection", StringComparison.OrdinalIgnoreCase) || name.Equals("keep-alive", StringComparison.OrdinalIgnoreCase)
        || name.Equals("transfer-encoding", StringComparison.OrdinalIgnoreCase) || name.Equals("upgrade", StringComparison.OrdinalIgnoreCase)
        || name.Equals("proxy-connection", StringComparison.OrdinalIgnoreCase) || name.Equals("te", StringComparison.OrdinalIgnoreCase)
        || name.Equals("content-length", StringComparison.OrdinalIgnoreCase) || name.Equals("content-type", StringComparison.OrdinalIgnoreCase);

    /// <summary>Sends the shadows in the background; <paramref name="body"/> is the complete request body (or empty).</summary>
    public static void Send(List<Pending> shadows, ReadOnlyMemory<byte> body, string? contentType, TimeSpan timeout)
    {
        foreach (var s in shadows)
        {
            if (body.Length > 0 || contentType is not null)
            {
                var content = new ReadOnlyMemoryContent(body);
                if (contentType is not null) content.Headers.TryAddWithoutValidation("content-type", contentType);
                s.Request.Content = content;
            }
            _ = SendOneAsync(s, timeout);
        }
    }

    /// <summary>Drops shadows that will not be sent (their body could not be buffered).</summary>
    public static void Discard(List<Pending> shadows)
    {
        foreach (var s in shadows) s.Request.Dispose();
    }

    private static async Task SendOneAsync(Pending s, TimeSpan timeout)
    {
        var cluster = s.Cluster;
        var stats = cluster.Stats;
        stats.UpstreamRqTotal.Inc();
        stats.UpstreamRqActive.Inc();
        s.Host.RequestStarted();
        var start = Stopwatch.GetTimestamp();
        // Envoy bounds a shadow by the route timeout; a disabled one still gets a ceiling so a hung shadow is reclaimed.
        using var cts = new CancellationTokenSource(timeout > TimeSpan.Zero ? timeout : TimeSpan.FromMinutes(5));
        HandlerConnectionPool? pool = null;
        try
        {
            pool = cluster.AcquireHandlerPool(s.Host);
            using var response = await pool.Invoker.SendAsync(s.Request, cts.Token).ConfigureAwait(false);
            stats.ResponseCode((int)response.StatusCode);
            // Read the body so the connection can be reused; its content is discarded.
            await response.Content.CopyToAsync(Stream.Null, cts.Token).ConfigureAwait(false);
            stats.UpstreamRqTime.Record(Stopwatch.GetElapsedTime(start).TotalMilliseconds);
        }
        catch (Exception) when (cts.IsCancellationRequested)
        {
            stats.UpstreamRqTimeout.Inc();
        }
        catch (Exception)
        {
            // A shadow's failure is nobody's business but its stats.
            stats.UpstreamRqRxReset.Inc();
        }
        finally
        {
            pool?.Release();
            s.Host.RequestFinished();
            stats.UpstreamRqActive.Dec();
            s.Request.Dispose();
        }
    }
}
