using System.Net;
using CSharpEnvoy.Config.Model.Cluster;

namespace CSharpEnvoy.DataPlane.Upstream.HealthChecking;

/// <summary>Envoy's HTTP health checker: a request to <c>path</c> (Host = <c>host</c> or the cluster name); an
/// expected status passes, a retriable one counts towards the threshold, anything else fails the host at once.</summary>
internal sealed class HttpHealthCheck : IHealthCheck
{
    private readonly HealthCheckModel _model;
    private readonly string _authority;
    private readonly HttpMessageInvoker _invoker;
    private readonly HttpMethod _method;

    public HttpHealthCheck(HealthCheckModel model, Cluster cluster)
    {
        _model = model;
        _authority = model.Host ?? cluster.Name;
        _method = new HttpMethod(model.Method);
        _invoker = new HttpMessageInvoker(HealthCheckConnector.CreateHandler(), disposeHandler: true);
    }

    public async Task<HealthCheckResult> CheckAsync(Host host, CancellationToken ct)
    {
        using var request = new HttpRequestMessage(_method, new Uri("http://" + host.Authority + _model.Path))
        {
            Version = _model.Http2 ? HttpVersion.Version20 : HttpVersion.Version11,
            VersionPolicy = HttpVersionPolicy.RequestVersionExact,
        };
        HealthCheckConnector.SetHost(request, host);
        request.Headers.Host = host.HealthCheckHostname ?? _authority;
        request.Headers.TryAddWithoutValidation("user-agent", "Envoy/HC");
        foreach (var (k, v) in _model.RequestHeadersToAdd)
        {
            request.Headers.Remove(k);
            request.Headers.TryAddWithoutValidation(k, v);
        }
        foreach (var k in _model.RequestHeadersToRemove) request.Headers.Remove(k);
        if (!_model.ReuseConnection && !_model.Http2) request.Headers.ConnectionClose = true;

        HttpMessageInvoker? own = null;
        if (!_model.ReuseConnection && _model.Http2) own = new HttpMessageInvoker(HealthCheckConnector.CreateHandler(), disposeHandler: true);
        try
        {
            HttpResponseMessage response;
            try
            {
                response = await (own ?? _invoker).SendAsync(request, ct).ConfigureAwait(false);
            }
            catch (HttpRequestException)
            {
                return HealthCheckResult.NetworkFailure;
            }
            using (response)
            {
                // Envoy reads the whole response before judging it.
                await response.Content.CopyToAsync(Stream.Null, ct).ConfigureAwait(false);
                var code = (int)response.StatusCode;
                if (response.Headers.Contains("x-envoy-immediate-health-check-fail")) return HealthCheckResult.ImmediateFailure;
                if (!InRanges(_model.ExpectedStatuses, code))
                    return InRanges(_model.RetriableStatuses, code) ? HealthCheckResult.RetriableFailure : HealthCheckResult.ActiveFailure;
                return response.Headers.Contains("x-envoy-degraded") ? HealthCheckResult.Degraded : HealthCheckResult.Success;
            }
        }
        finally
        {
            own?.Dispose();
        }
    }

    private static bool InRanges(IReadOnlyList<StatusRange> ranges, int code)
    {
        foreach (var r in ranges)
            if (r.Contains(code)) return true;
        return false;
    }

    public void Dispose() => _invoker.Dispose();
}
