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
                return LocalRateLimit(typedConfig.Unpack<LocalRateLimit>(), path + ".typed_config", errors, perRoute: false);
            case ExtensionRegistry.RateLimitFilter:
                if (typedConfig is null) { errors.Add(path, $"'{ext.Name}' needs a typed_config"); return null; }
                return RateLimitFilterTranslator.Filter(typedConfig.Unpack<Envoy.Extensions.Filters.Http.Ratelimit.V3.RateLimit>(), path + ".typed_config", errors);
            case ExtensionRegistry.HealthCheckFilter:
                if (typedConfig is null) { errors.Add(path, $"'{ext.Name}' needs a typed_config"); return null; }
                return HealthCheck(typedConfig.Unpack<Envoy.Extensions.Filters.Http.HealthCheck.V3.HealthCheck>(), path + ".typed_config", errors);
            case ExtensionRegistry.RbacFilter:
                if (typedConfig is null) { errors.Add(path, $"'{ext.Name}' needs a typed_config"); return null; }
                return RbacTranslator.Http(typedConfig.Unpack<Envoy.Extensions.Filters.Http.Rbac.V3.RBAC>(), path + ".typed_config", errors);
            case ExtensionRegistry.CsrfFilter:
                if (typedConfig is null) { errors.Add(path, $"'{ext.Name}' needs a typed_config"); return null; }
                return CsrfPolicy(typedConfig.Unpack<Envoy.Extensions.Filters.Http.Csrf.V3.CsrfPolicy>(), path + ".typed_config", errors);
            case ExtensionRegistry.CompressorFilter:
                if (typedConfig is null) { errors.Add(path, $"'{ext.Name}' needs a typed_config"); return null; }
                return CompressionTranslator.Compressor(typedConfig.Unpack<Envoy.Extensions.Filters.Http.Compressor.V3.Compressor>(), path + ".typed_config", errors);
            case ExtensionRegistry.DecompressorFilter:
                if (typedConfig is null) { errors.Add(path, $"'{ext.Name}' needs a typed_config"); return null; }
                return CompressionTranslator.Decompressor(typedConfig.Unpack<Envoy.Extensions.Filters.Http.Decompressor.V3.Decompressor>(), path + ".typed_config", errors);
            case ExtensionRegistry.ExtAuthzFilter:
                if (typedConfig is null) { errors.Add(path, $"'{ext.Name}' needs a typed_config"); return null; }
                return ExtAuthzTranslator.Filter(typedConfig.Unpack<Envoy.Extensions.Filters.Http.ExtAuthz.V3.ExtAuthz>(), path + ".typed_config", errors);
            case ExtensionRegistry.GrpcHttp1BridgeFilter:
            {
                var c = typedConfig?.Unpack<Envoy.Extensions.Filters.Http.GrpcHttp1Bridge.V3.Config>();
                return new GrpcHttp1BridgeModel(c?.UpgradeProtobufToGrpc ?? false, c?.IgnoreQueryParameters ?? false);
            }
            case ExtensionRegistry.GrpcWebFilter:
                return GrpcWebModel.Instance; // GrpcWeb has no fields
            case ExtensionRegistry.CorsFilter:
                return CorsFilterModel.Instance; // Cors has no fields; its policies are per route
            default:
                return null;
        }
    }

    /// <summary><c>envoy.extensions.filters.http.csrf.v3.CsrfPolicy</c> (the filter's config, or typed_per_filter_config).</summary>
    public static CsrfPolicyModel CsrfPolicy(Envoy.Extensions.Filters.Http.Csrf.V3.CsrfPolicy c, string path, ConfigErrors errors)
    {
        if (c.FilterEnabled is null) errors.Add(path + ".filter_enabled", "filter_enabled is required");
        return new CsrfPolicyModel(
            Percent(c.FilterEnabled?.DefaultValue),
            c.ShadowEnabled is null ? null : Percent(c.ShadowEnabled.DefaultValue),
            RouteTranslator.StringMatchers(c.AdditionalOrigins, path + ".additional_origins", errors));
    }

    /// <summary><c>envoy.extensions.filters.http.cors.v3.CorsPolicy</c> (typed_per_filter_config).</summary>
    public static CorsPolicyModel CorsPolicy(Envoy.Extensions.Filters.Http.Cors.V3.CorsPolicy c, string path, ConfigErrors errors) =>
        CorsPolicy(c.AllowOriginStringMatch, c.AllowMethods, c.AllowHeaders, c.ExposeHeaders, c.MaxAge, c.AllowCredentials,
            c.FilterEnabled, c.ShadowEnabled, c.AllowPrivateNetworkAccess, c.ForwardNotMatchingPreflights, path, errors);

    /// <summary>A CORS policy from the fields the filter's <c>CorsPolicy</c> and the deprecated
    /// <c>envoy.config.route.v3.CorsPolicy</c> share.</summary>
    internal static CorsPolicyModel CorsPolicy(IList<Envoy.Type.Matcher.V3.StringMatcher> origins, string methods, string headers,
        string expose, string maxAge, bool? credentials, Envoy.Config.Core.V3.RuntimeFractionalPercent? enabled,
        Envoy.Config.Core.V3.RuntimeFractionalPercent? shadow, bool? privateNetwork, bool? forwardNotMatching, string path, ConfigErrors errors) =>
        new(RouteTranslator.StringMatchers(origins, path + ".allow_origin_string_match", errors), methods, headers, expose, maxAge, credentials,
            enabled is null ? null : Percent(enabled.DefaultValue), shadow is null ? null : Percent(shadow.DefaultValue), privateNetwork, forwardNotMatching);

    public static HealthCheckFilterModel HealthCheck(Envoy.Extensions.Filters.Http.HealthCheck.V3.HealthCheck h, string path, ConfigErrors errors)
    {
        if (h.PassThroughMode is null) errors.Add(path + ".pass_through_mode", "pass_through_mode is required");
        var headers = new List<Model.Matchers.HeaderMatcherModel>();
        for (var i = 0; i < h.Headers.Count; i++)
            if (RouteTranslator.HeaderMatcher(h.Headers[i], $"{path}.headers[{i}]", errors) is { } m) headers.Add(m);
        return new HealthCheckFilterModel(h.PassThroughMode ?? false, headers);
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

    /// <param name="perRoute">A per-route config must have its own token bucket (Envoy: "local rate limit token bucket
    /// must be set for per filter configs"); the filter-wide one may leave it to the routes.</param>
    public static LocalRateLimitModel LocalRateLimit(LocalRateLimit l, string path, ConfigErrors errors, bool perRoute)
    {
        if (string.IsNullOrEmpty(l.StatPrefix)) errors.Add(path + ".stat_prefix", "stat_prefix is required");
        uint maxTokens = 0, tokensPerFill = 1;
        var fillInterval = TimeSpan.Zero;
        if (l.TokenBucket is { } tb) TokenBucket(tb, path + ".token_bucket", errors, out maxTokens, out tokensPerFill, out fillInterval);
        else if (perRoute) errors.Add(path + ".token_bucket", "a per-route local rate limit needs a token_bucket");

        var descriptors = new List<LocalRateLimitDescriptorModel>(l.Descriptors.Count);
        var seen = new HashSet<string>(StringComparer.Ordinal);
        for (var i = 0; i < l.Descriptors.Count; i++)
        {
            var d = l.Descriptors[i];
            var dPath = $"{path}.descriptors[{i}]";
            if (d.Entries.Count == 0) errors.Add(dPath + ".entries", "a descriptor needs at least one entry");
            var entries = new KeyValuePair<string, string>[d.Entries.Count];
            for (var j = 0; j < entries.Length; j++) entries[j] = new(d.Entries[j].Key, d.Entries[j].Value);
            if (!seen.Add(string.Join("\n", entries))) errors.Add(dPath, "duplicate descriptor in the local rate limit descriptors");
            if (d.TokenBucket is null)
            {
                errors.Add(dPath + ".token_bucket", "token_bucket is required");
                continue;
            }
            TokenBucket(d.TokenBucket, dPath + ".token_bucket", errors, out var dMax, out var dPerFill, out var dInterval);
            // Envoy refills descriptors on the filter's fill timer, so their interval must be a multiple of it.
            if (fillInterval > TimeSpan.Zero && dInterval > TimeSpan.Zero && dInterval.Ticks % fillInterval.Ticks != 0)
                errors.Add(dPath + ".token_bucket.fill_interval", "local rate descriptor limit is not a multiple of token bucket fill timer");
            descriptors.Add(new LocalRateLimitDescriptorModel(entries, dMax, dPerFill, dInterval));
        }
        // Envoy consumes matched descriptors strictest first (tokens per whole second, ascending).
        descriptors.Sort((a, b) => TokensPerSecond(a).CompareTo(TokensPerSecond(b)));
        if (l.Stage > 10) errors.Add(path + ".stage", "stage must be at most 10");

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
            RouteTranslator.Mutation(l.ResponseHeadersToAdd, new RepeatedField<string>(), path, "response", errors))
        {
            Descriptors = descriptors.ToArray(),
            Stage = l.Stage,
            VhRateLimits = (VhRateLimitsOption)(int)l.VhRateLimits,
            AlwaysConsumeDefaultTokenBucket = l.AlwaysConsumeDefaultTokenBucket ?? true,
            RateLimitedAsResourceExhausted = l.RateLimitedAsResourceExhausted,
        };
    }

    private static long TokensPerSecond(LocalRateLimitDescriptorModel d) =>
        d.TokensPerFill / Math.Max(1, (long)d.FillInterval.TotalSeconds);

    private static void TokenBucket(Envoy.Type.V3.TokenBucket tb, string path, ConfigErrors errors, out uint maxTokens, out uint tokensPerFill, out TimeSpan fillInterval)
    {
        maxTokens = tb.MaxTokens;
        tokensPerFill = 1;
        fillInterval = TimeSpan.Zero;
        if (maxTokens == 0) errors.Add(path + ".max_tokens", "max_tokens must be greater than 0");
        if (tb.TokensPerFill is { } tpf)
        {
            if (tpf == 0) errors.Add(path + ".tokens_per_fill", "tokens_per_fill must be greater than 0");
            tokensPerFill = tpf;
        }
        if (tb.FillInterval is null) errors.Add(path + ".fill_interval", "fill_interval is required");
        else
        {
            fillInterval = tb.FillInterval.ToTimeSpan();
            // Envoy: "local rate limit token bucket fill timer must be >= 50ms".
            if (fillInterval < TimeSpan.FromMilliseconds(50))
                errors.Add(path + ".fill_interval", "fill_interval must be at least 50ms");
        }
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
