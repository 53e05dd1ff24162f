using CSharpEnvoy.Config.Loading;
using CSharpEnvoy.Config.Model.HttpFilters;
using CSharpEnvoy.Config.Validation;
using Envoy.Extensions.Filters.Http.Fault.V3;
using Envoy.Extensions.Filters.Http.LocalRatelimit.V3;
using Google.Protobuf.Collections;
using Google.Protobuf.WellKnownTypes;
using ProtoFractionalPercent = Envoy.Type.V3.FractionalPercent;

namespace CSharpEnvoy.Config.Translation;

/// <summary>Translates the typed configs of the HTTP filters that have one (fault, local rate limit).</summary>
internal static class HttpFilterTranslator
{
    /// <summary>The filter's immutable config model, or null for filters without one (the router).</summary>
    public static object? Translate(ExtensionInfo ext, Any? typedConfig, string path, ConfigErrors errors)
    {
        switch (ext.Name)
        {
            case ExtensionRegistry.FaultFilter:
                if (typedConfig is null) { errors.Add(path, $"'{ext.Name}' needs a typed_config"); return null; }
                return Fault(typedConfig.Unpack<HTTPFault>(), path + ".typed_config", errors);
            case ExtensionRegistry.LocalRateLimitFilter:
                if (typedConfig is null) { errors.Add(path, $"'{ext.Name}' needs a typed_config"); return null; }
                return LocalRateLimit(typedConfig.Unpack<LocalRateLimit>(), path + ".typed_config", errors);
            case ExtensionRegistry.RbacFilter:
                if (typedConfig is null) { errors.Add(path, $"'{ext.Name}' needs a typed_config"); return null; }
                return RbacTranslator.Http(typedConfig.Unpack<Envoy.Extensions.Filters.Http.Rbac.V3.RBAC>(), path + ".typed_config", errors);
            default:
                return null;
        }
    }

    public static FaultFilterModel Fault(HTTPFault f, string path, ConfigErrors errors)
    {
        FaultDelayModel? delay = null;
        if (f.Delay is { } d)
        {
            var dPath = path + ".delay";
            var pct = Percent(d.Percentage);
            switch (d.FaultDelaySecifierCase)
            {
                case Envoy.Extensions.Filters.Common.Fault.V3.FaultDelay.FaultDelaySecifierOneofCase.FixedDelay:
                    var fixedDelay = d.FixedDelay.ToTimeSpan();
                    if (fixedDelay <= TimeSpan.Zero) errors.Add(dPath + ".fixed_delay", "fixed_delay must be greater than 0");
                    delay = new FaultDelayModel(fixedDelay, false, pct);
                    break;
                case Envoy.Extensions.Filters.Common.Fault.V3.FaultDelay.FaultDelaySecifierOneofCase.HeaderDelay:
                    delay = new FaultDelayModel(TimeSpan.Zero, true, pct);
                    break;
                default:
                    errors.Add(dPath, "a delay needs fixed_delay or header_delay");
                    break;
            }
        }
        FaultAbortModel? abort = null;
        if (f.Abort is { } a)
        {
            var aPath = path + ".abort";
            var pct = Percent(a.Percentage);
            switch (a.ErrorTypeCase)
            {
                case FaultAbort.ErrorTypeOneofCase.HttpStatus:
                    if (a.HttpStatus is < 200 or >= 600) errors.Add(aPath + ".http_status", "http_status must be in [200, 600)");
                    abort = new FaultAbortModel((int)a.HttpStatus, null, false, pct);
                    break;
                case FaultAbort.ErrorTypeOneofCase.GrpcStatus:
                    // Envoy replies 200 with the gRPC status (a trailers-only gRPC reply to a gRPC request).
                    abort = new FaultAbortModel(200, (int)a.GrpcStatus, false, pct);
                    break;
                case FaultAbort.ErrorTypeOneofCase.HeaderAbort:
                    abort = new FaultAbortModel(null, null, true, pct);
                    break;
                default:
                    errors.Add(aPath, "an abort needs http_status, grpc_status or header_abort");
                    break;
            }
        }
        return new FaultFilterModel(delay, abort, f.MaxActiveFaults);
    }

    public static LocalRateLimitModel LocalRateLimit(LocalRateLimit l, string path, ConfigErrors errors)
    {
        if (string.IsNullOrEmpty(l.StatPrefix)) errors.Add(path + ".stat_prefix", "stat_prefix is required");
        uint maxTokens = 0, tokensPerFill = 1;
        var fillInterval = TimeSpan.Zero;
        var tb = l.TokenBucket;
        if (tb is null)
        {
            errors.Add(path + ".token_bucket", "token_bucket is required (descriptors are not supported)");
        }
        else
        {
            maxTokens = tb.MaxTokens;
            if (maxTokens == 0) errors.Add(path + ".token_bucket.max_tokens", "max_tokens must be greater than 0");
            if (tb.TokensPerFill is { } tpf)
            {
                if (tpf == 0) errors.Add(path + ".token_bucket.tokens_per_fill", "tokens_per_fill must be greater than 0");
                tokensPerFill = tpf;
            }
            if (tb.FillInterval is null) errors.Add(path + ".token_bucket.fill_interval", "fill_interval is required");
            else
            {
                fillInterval = tb.FillInterval.ToTimeSpan();
                // Envoy: "local rate limit token bucket fill timer must be >= 50ms".
                if (fillInterval < TimeSpan.FromMilliseconds(50))
                    errors.Add(path + ".token_bucket.fill_interval", "fill_interval must be at least 50ms");
            }
        }
        // Envoy's toErrorCode: a status below 400 means the default 429.
        var status = l.Status is null || (int)l.Status.Code < 400 ? 429 : (int)l.Status.Code;
        return new LocalRateLimitModel(
            l.StatPrefix,
            status,
            maxTokens,
            tokensPerFill,
            fillInterval,
            l.FilterEnabled is null ? null : Percent(l.FilterEnabled.DefaultValue),
            l.FilterEnforced is null ? null : Percent(l.FilterEnforced.DefaultValue),
            RouteTranslator.Mutation(l.ResponseHeadersToAdd, new RepeatedField<string>(), path, "response", errors));
    }

    internal static FractionalPercentModel Percent(ProtoFractionalPercent? p)
    {
        if (p is null) return FractionalPercentModel.Zero;
        var denominator = p.Denominator switch
        {
            ProtoFractionalPercent.Types.DenominatorType.TenThousand => 10_000u,
            ProtoFractionalPercent.Types.DenominatorType.Million => 1_000_000u,
            _ => 100u,
        };
        return new FractionalPercentModel(p.Numerator, denominator);
    }
}
