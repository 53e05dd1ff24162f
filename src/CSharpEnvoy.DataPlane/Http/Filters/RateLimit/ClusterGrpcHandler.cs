using System.Net;
using CSharpEnvoy.DataPlane.Upstream;

namespace CSharpEnvoy.DataPlane.Http.Filters.RateLimit;

/// <summary>
/// The HTTP handler of a gRPC channel to a named cluster (Envoy's <c>envoy_grpc</c>): each call goes to a host the
/// cluster's load balancer picks, over the cluster's own connection pools, as HTTP/2. The cluster is looked up per
/// call, so a cluster replaced by CDS is followed. Failures surface to the gRPC client as UNAVAILABLE. With
/// <paramref name="clusterProtocol"/> (plain HTTP side calls, such as ext_authz's HTTP service) a request goes as the
/// cluster's protocol: HTTP/2 when it is configured for it, HTTP/1.1 otherwise.
/// </summary>
internal sealed class ClusterGrpcHandler(ClusterManager clusters, string clusterName, bool clusterProtocol = false) : HttpMessageHandler
{
    /// <summary>The path goes as given (no dot-segment removal or re-escaping).</summary>
    private static readonly UriCreationOptions s_raw = new() { DangerousDisablePathAndQueryCanonicalization = true };

    protected override Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken)
    {
        var cluster = clusters.Get(clusterName);
        if (cluster is null) return Task.FromException<HttpResponseMessage>(new HttpRequestException($"unknown cluster '{clusterName}'"));
        var host = cluster.ChooseHost();
        if (host is null) return Task.FromException<HttpResponseMessage>(new HttpRequestException($"no healthy upstream in cluster '{clusterName}'"));
        request.RequestUri = new Uri(host.DestinationPrefix + request.RequestUri!.PathAndQuery, in s_raw);
        request.Version = !clusterProtocol || cluster.Model.Protocol == Config.Model.Cluster.UpstreamProtocol.Http2 ? HttpVersion.Version20 : HttpVersion.Version11;
        request.VersionPolicy = HttpVersionPolicy.RequestVersionExact;
        return cluster.Invoker.SendAsync(request, cancellationToken);
    }
}
