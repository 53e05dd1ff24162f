using CSharpEnvoy.Config.Loading;
using CSharpEnvoy.Config.Model.Matchers;
using CSharpEnvoy.Config.Model.RouteConfiguration;
using Envoy.Config.Route.V3;
using Google.Protobuf.Collections;

namespace CSharpEnvoy.Config.Translation;

/// <summary>Translates the router's resilience settings: <c>retry_policy</c> and <c>request_mirror_policies</c>.</summary>
internal static class RouterPolicyTranslator
{
    public const string PreviousHostsPredicate = "envoy.retry_host_predicates.previous_hosts";
    private const string PreviousHostsType = "envoy.extensions.retry.host.previous_hosts.v3.PreviousHostsPredicate";

    public static RetryPolicyModel? Retry(RetryPolicy? p, string path, ConfigErrors errors)
    {
        if (p is null) return null;
        var retryOn = RetryOnParser.Parse(p.RetryOn ?? "", out var unknown);
        if (unknown is not null)
            errors.Add(path + ".retry_on", $"unsupported retry_on value '{unknown}' (supported: 5xx, gateway-error, reset, connect-failure, retriable-4xx, refused-stream, retriable-status-codes, retriable-headers, envoy-ratelimited, cancelled, deadline-exceeded, internal, resource-exhausted, unavailable)");

        var baseInterval = TimeSpan.FromMilliseconds(25);
        TimeSpan? maxInterval = null;
        if (p.RetryBackOff is { } bo)
        {
            if (bo.BaseInterval is null) errors.Add(path + ".retry_back_off.base_interval", "base_interval is required");
            else
            {
                baseInterval = bo.BaseInterval.ToTimeSpan();
                if (baseInterval < TimeSpan.FromMilliseconds(1)) errors.Add(path + ".retry_back_off.base_interval", "base_interval must be at least 1ms");
            }
            if (bo.MaxInterval is { } mi)
            {
                maxInterval = mi.ToTimeSpan();
                if (maxInterval < baseInterval) errors.Add(path + ".retry_back_off.max_interval", "max_interval must be greater than or equal to the base_interval");
            }
        }

        var avoidPrevious = false;
        for (var i = 0; i < p.RetryHostPredicate.Count; i++)
        {
            var hp = p.RetryHostPredicate[i];
            var type = hp.TypedConfig?.TypeUrl ?? "";
            var isPrevious = type.Length > 0 ? type.EndsWith("/" + PreviousHostsType, StringComparison.Ordinal) : hp.Name == PreviousHostsPredicate;
            if (isPrevious) avoidPrevious = true;
            else errors.Add($"{path}.retry_host_predicate[{i}]", $"unsupported retry host predicate '{(type.Length > 0 ? type : hp.Name)}' ({PreviousHostsPredicate} is supported)");
        }

        var codes = new int[p.RetriableStatusCodes.Count];
        for (var i = 0; i < codes.Length; i++) codes[i] = (int)p.RetriableStatusCodes[i];

        var headers = new List<HeaderMatcherModel>();
        for (var i = 0; i < p.RetriableHeaders.Count; i++)
            if (RouteTranslator.HeaderMatcher(p.RetriableHeaders[i], $"{path}.retriable_headers[{i}]", errors) is { } m) headers.Add(m);

        var perTry = p.PerTryTimeout?.ToTimeSpan() ?? TimeSpan.Zero;
        if (perTry < TimeSpan.Zero) errors.Add(path + ".per_try_timeout", "per_try_timeout must not be negative");
        return new RetryPolicyModel
        {
            RetryOn = retryOn,
            NumRetries = p.NumRetries ?? 1,
            PerTryTimeout = perTry,
            BaseInterval = baseInterval,
            MaxInterval = maxInterval ?? baseInterval * 10,
            RetriableStatusCodes = codes,
            RetriableHeaders = headers.ToArray(),
            AvoidPreviousHosts = avoidPrevious,
            HostSelectionRetryMaxAttempts = p.HostSelectionRetryMaxAttempts == 0 ? 1 : p.HostSelectionRetryMaxAttempts,
        };
    }

    /// <summary>Envoy's HedgePolicy: only hedge_on_per_try_timeout is acted on. Envoy itself does not implement more
    /// than one initial request nor the additional request chance, so only their defaults are accepted.</summary>
    public static bool? Hedge(HedgePolicy? p, string path, ConfigErrors errors)
    {
        if (p is null) return null;
        if (p.InitialRequests is { } initial && initial != 1)
            errors.Add(path + ".initial_requests", $"initial_requests {initial} is not supported (only 1: Envoy does not implement more)");
        if (p.AdditionalRequestChance is { Numerator: not 0 })
            errors.Add(path + ".additional_request_chance", "additional_request_chance is not supported (only 0: Envoy does not implement it)");
        return p.HedgeOnPerTryTimeout;
    }

    public static MaxStreamDurationModel? MaxStreamDuration(RouteAction.Types.MaxStreamDuration? m, string path, ConfigErrors errors)
    {
        if (m is null) return null;
        TimeSpan? Get(Google.Protobuf.WellKnownTypes.Duration? d, string field)
        {
            if (d is null) return null;
            var t = d.ToTimeSpan();
            if (t < TimeSpan.Zero) errors.Add(path + "." + field, field + " must not be negative");
            return t;
        }
        return new MaxStreamDurationModel(Get(m.MaxStreamDuration_, "max_stream_duration"), Get(m.GrpcTimeoutHeaderMax, "grpc_timeout_header_max"),
            Get(m.GrpcTimeoutHeaderOffset, "grpc_timeout_header_offset"));
    }

    public static RequestMirrorPolicyModel[] Mirrors(RepeatedField<RouteAction.Types.RequestMirrorPolicy> policies, string path, ConfigErrors errors, Func<string, bool>? clusterExists)
    {
        if (policies.Count == 0) return Array.Empty<RequestMirrorPolicyModel>();
        var result = new List<RequestMirrorPolicyModel>(policies.Count);
        for (var i = 0; i < policies.Count; i++)
        {
            var m = policies[i];
            var mPath = $"{path}[{i}]";
            var hasCluster = !string.IsNullOrEmpty(m.Cluster);
            var hasHeader = !string.IsNullOrEmpty(m.ClusterHeader);
            if (hasCluster == hasHeader)
            {
                errors.Add(mPath, "exactly one of cluster and cluster_header must be set");
                continue;
            }
            if (hasCluster && clusterExists is not null && !clusterExists(m.Cluster))
                errors.Add(mPath + ".cluster", $"route: unknown mirror cluster '{m.Cluster}'");
            uint numerator = 100, denominator = 100;
            if (m.RuntimeFraction?.DefaultValue is { } fp)
            {
                numerator = fp.Numerator;
                denominator = fp.Denominator switch
                {
                    Envoy.Type.V3.FractionalPercent.Types.DenominatorType.TenThousand => 10_000,
                    Envoy.Type.V3.FractionalPercent.Types.DenominatorType.Million => 1_000_000,
                    _ => 100,
                };
            }
            result.Add(new RequestMirrorPolicyModel(hasCluster ? m.Cluster : null, hasHeader ? m.ClusterHeader.ToLowerInvariant() : null, numerator, denominator));
        }
        return result.ToArray();
    }
}
