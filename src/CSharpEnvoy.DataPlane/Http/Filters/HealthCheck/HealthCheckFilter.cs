using CSharpEnvoy.Config.Model.HttpFilters;
using CSharpEnvoy.DataPlane.Router;
using CSharpEnvoy.DataPlane.Server;
using Microsoft.AspNetCore.Http;

namespace CSharpEnvoy.DataPlane.Http.Filters.HealthCheck;

/// <summary>
/// Envoy's <c>envoy.filters.http.health_check</c>. A request matching every configured header is a health check:
/// without pass-through it is answered here, 200 (<c>health_check_ok</c>) or, once the server failed its health
/// check (admin <c>/healthcheck/fail</c>), 503 (<c>health_check_failed</c>, flag LH); with pass-through it goes on
/// to the router unless the server has failed. Health check responses carry
/// <c>x-envoy-upstream-healthchecked-cluster</c>; while failed, every other response carries
/// <c>x-envoy-immediate-health-check-fail: true</c> so downstream Envoys drain this host at once.
/// </summary>
internal sealed class HealthCheckFilter : IHttpDecoderFilter
{
    private readonly HealthCheckFilterModel _model;
    private readonly ServerHealth _health;

    public HealthCheckFilter(HealthCheckFilterModel model, ServerHealth health)
    {
        _model = model;
        _health = health;
    }

    public ValueTask<bool> DecodeHeadersAsync(HttpContext context, UpstreamRequest info, HttpConnectionManager hcm)
    {
        var failed = _health.HealthCheckFailed;
        if (!IsHealthCheck(context))
        {
            if (failed) context.Response.OnStarting(s_markFailed, context.Response);
            return new ValueTask<bool>(true);
        }
        info.HealthCheck = true;
        context.Response.Headers["x-envoy-upstream-healthchecked-cluster"] = _health.LocalClusterName;
        if (!failed && _model.PassThroughMode) return new ValueTask<bool>(true);
        if (failed) info.Flags |= ResponseFlags.FailedLocalHealthCheck;
        return Replied(LocalReply.SendAsync(context, failed ? 503 : 200, "", hcm.LocalReplyServerName, info,
            failed ? "health_check_failed" : "health_check_ok"));
    }

    private static readonly Func<object, Task> s_markFailed = static state =>
    {
        ((HttpResponse)state).Headers["x-envoy-immediate-health-check-fail"] = "true";
        return Task.CompletedTask;
    };

    private bool IsHealthCheck(HttpContext context)
    {
        var headers = _model.Headers;
        if (headers.Count == 0) return false;
        var request = new RequestView(context, context.Request.Scheme);
        foreach (var h in headers)
            if (!h.Match(request.GetHeader(h.Name))) return false;
        return true;
    }

    private static async ValueTask<bool> Replied(Task reply)
    {
        await reply.ConfigureAwait(false);
        return false;
    }
}
