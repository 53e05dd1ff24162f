using CSharpEnvoy.Config.Model.HttpFilters;
using CSharpEnvoy.DataPlane.Router;
using CSharpEnvoy.DataPlane.Stats;
using Microsoft.AspNetCore.Http;

namespace CSharpEnvoy.DataPlane.Http.Filters.Fault;

/// <summary>
/// Envoy's <c>envoy.filters.http.fault</c>: a delay (fixed or from <c>x-envoy-fault-delay-request</c>), then an abort
/// (HTTP or gRPC status, fixed or from <c>x-envoy-fault-abort-request</c> / <c>x-envoy-fault-abort-grpc-request</c>),
/// each sampled by its percentage; header-given percentages are capped by the configured one. A request with a
/// fault counts once against max_active_faults until it ends; over the limit the fault is skipped (faults_overflow).
/// A route's <c>typed_per_filter_config</c> HTTPFault replaces the filter's settings for its requests, as in Envoy
/// (the active fault count and the stats stay the filter's).
/// </summary>
internal sealed class FaultFilter : IHttpDecoderFilter
{
    private const string DelayHeader = "x-envoy-fault-delay-request";
    private const string DelayPercentHeader = "x-envoy-fault-delay-request-percentage";
    private const string AbortHeader = "x-envoy-fault-abort-request";
    private const string AbortGrpcHeader = "x-envoy-fault-abort-grpc-request";
    private const string AbortPercentHeader = "x-envoy-fault-abort-request-percentage";

    private readonly FaultFilterModel _model;
    private readonly HttpFilterNames _names;
    private long _active;
    private readonly Counter _delaysInjected, _abortsInjected, _faultsOverflow;
    private readonly Gauge _activeFaults;

    /// <param name="statPrefix">The connection manager's "http.&lt;stat_prefix&gt;." prefix.</param>
    public FaultFilter(FaultFilterModel model, HttpFilterNames names, StatsStore stats, string statPrefix)
    {
        _model = model;
        _names = names;
        var p = statPrefix + "fault.";
        _delaysInjected = stats.Counter(p, "delays_injected");
        _abortsInjected = stats.Counter(p, "aborts_injected");
        _faultsOverflow = stats.Counter(p, "faults_overflow");
        _activeFaults = stats.Gauge(p, "active_faults");
    }

    public ValueTask<bool> DecodeHeadersAsync(HttpContext context, UpstreamRequest info, HttpConnectionManager hcm)
    {
        var model = _names.MostSpecific<FaultFilterModel>(info) ?? _model;
        var headers = context.Request.Headers;
        var active = false;
        var delay = DelayDuration(model, headers);
        if (delay > TimeSpan.Zero && TryIncActiveFaults(model, context, ref active))
        {
            _delaysInjected.Inc();
            info.Flags |= ResponseFlags.DelayInjected;
            return DelayThenMaybeAbortAsync(model, context, info, hcm, delay);
        }
        var abort = MaybeAbort(model, context, info, hcm, ref active);
        return abort is null ? new ValueTask<bool>(true) : HttpFilterChain.Replied(abort);
    }

    private async ValueTask<bool> DelayThenMaybeAbortAsync(FaultFilterModel model, HttpContext context, UpstreamRequest info, HttpConnectionManager hcm, TimeSpan delay)
    {
        try
        {
            await Task.Delay(delay, context.RequestAborted).ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
            return false; // the downstream went away during the delay
        }
        // The active fault is already charged for this request.
        var active = true;
        var abort = MaybeAbort(model, context, info, hcm, ref active);
        if (abort is null) return true;
        await abort.ConfigureAwait(false);
        return false;
    }

    private Task? MaybeAbort(FaultFilterModel model, HttpContext context, UpstreamRequest info, HttpConnectionManager hcm, ref bool active)
    {
        if (!AbortStatus(model, context.Request.Headers, out var httpStatus, out var grpcStatus)) return null;
        if (!TryIncActiveFaults(model, context, ref active)) return null;
        info.Flags |= ResponseFlags.FaultInjected;
        _abortsInjected.Inc();
        return LocalReply.SendAsync(context, httpStatus, "fault filter abort", hcm.LocalReplyServerName, info, "fault_filter_abort", grpcStatus);
    }

    private static TimeSpan DelayDuration(FaultFilterModel model, IHeaderDictionary headers)
    {
        var d = model.Delay;
        if (d is null) return TimeSpan.Zero;
        if (!d.FromHeader) return HttpFilterChain.Sample(d.Percentage) ? d.FixedDelay : TimeSpan.Zero;
        var value = headers[DelayHeader];
        if (value.Count == 0 || !ulong.TryParse(value[0], System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var ms)) return TimeSpan.Zero;
        if (!HttpFilterChain.Sample(HeaderPercentage(headers, DelayPercentHeader, d.Percentage))) return TimeSpan.Zero;
        return TimeSpan.FromMilliseconds(Math.Min(ms, (ulong)int.MaxValue));
    }

    /// <summary>Envoy's <c>FaultFilter::abortStatus</c>: an HTTP status, else a gRPC status with HTTP 200.</summary>
    private static bool AbortStatus(FaultFilterModel model, IHeaderDictionary headers, out int httpStatus, out int? grpcStatus)
    {
        httpStatus = 0;
        grpcStatus = null;
        var a = model.Abort;
        if (a is null) return false;
        if (!a.FromHeader)
        {
            if (!HttpFilterChain.Sample(a.Percentage)) return false;
            httpStatus = a.HttpStatus!.Value;
            grpcStatus = a.GrpcStatus;
            return true;
        }
        if (!HttpFilterChain.Sample(HeaderPercentage(headers, AbortPercentHeader, a.Percentage))) return false;
        var h = headers[AbortHeader];
        if (h.Count > 0 && ulong.TryParse(h[0], System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var code) && code is >= 200 and < 600)
        {
            httpStatus = (int)code;
            return true;
        }
        var g = headers[AbortGrpcHeader];
        if (g.Count > 0 && uint.TryParse(g[0], System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var grpc) && grpc <= int.MaxValue)
        {
            httpStatus = 200;
            grpcStatus = (int)grpc;
            return true;
        }
        return false;
    }

    /// <summary>Envoy's <c>HeaderPercentageProvider</c>: the header's numerator, capped by the configured one, over
    /// the configured denominator; the configured percentage when the header is absent or not a number.</summary>
    private static FractionalPercentModel HeaderPercentage(IHeaderDictionary headers, string name, FractionalPercentModel configured)
    {
        var h = headers[name];
        if (h.Count == 0 || !uint.TryParse(h[0], System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var n)) return configured;
        return n >= configured.Numerator ? configured : new FractionalPercentModel(n, configured.Denominator);
    }

    /// <summary>Envoy's <c>tryIncActiveFaults</c>: one charge per request, released when the request ends.</summary>
    private bool TryIncActiveFaults(FaultFilterModel model, HttpContext context, ref bool active)
    {
        if (active) return true;
        var maxActive = model.MaxActiveFaults is { } max ? max : long.MaxValue;
        while (true)
        {
            var current = Volatile.Read(ref _active);
            if (current >= maxActive)
            {
                _faultsOverflow.Inc();
                return false;
            }
            if (Interlocked.CompareExchange(ref _active, current + 1, current) == current) break;
        }
        _activeFaults.Inc();
        active = true;
        context.Response.RegisterForDispose(new ActiveFault(this));
        return true;
    }

    private sealed class ActiveFault(FaultFilter filter) : IDisposable
    {
        private int _disposed;

        public void Dispose()
        {
            if (Interlocked.Exchange(ref _disposed, 1) != 0) return;
            Interlocked.Decrement(ref filter._active);
            filter._activeFaults.Dec();
        }
    }
}
