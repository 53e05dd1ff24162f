using CSharpEnvoy.Config.Loading;
using CSharpEnvoy.Config.Model.Cluster;
using Envoy.Config.Core.V3;
using Google.Protobuf.Collections;
using ProtoCluster = Envoy.Config.Cluster.V3.Cluster;

namespace CSharpEnvoy.Config.Translation;

/// <summary>Validates a cluster's <c>health_checks</c> and <c>outlier_detection</c> (Envoy's required fields and ranges).</summary>
internal static class HealthCheckTranslator
{
    public static HealthCheckModel? TranslateHealthChecks(ProtoCluster c, string path, ConfigErrors errors)
    {
        if (c.HealthChecks.Count == 0) return null;
        var listPath = ConfigErrors.Join(path, "health_checks");
        if (c.HealthChecks.Count > 1)
        {
            errors.Add(listPath, "Multiple health checks not supported");
            return null;
        }
        var model = Translate(c.HealthChecks[0], listPath + "[0]", errors);
        if (c.TransportSocket is not null && model.Kind != HealthCheckKind.Tcp)
            errors.Add(listPath + "[0]", "HTTP and gRPC health checks over TLS (a cluster with transport_socket) are not supported yet; use tcp_health_check");
        return model;
    }

    private static TimeSpan Required(Google.Protobuf.WellKnownTypes.Duration? d, string path, string field, ConfigErrors errors)
    {
        if (d is null)
        {
            errors.Add(path + "." + field, $"{field} is required");
            return TimeSpan.FromSeconds(1);
        }
        var t = d.ToTimeSpan();
        if (t <= TimeSpan.Zero) errors.Add(path + "." + field, $"{field} must be greater than 0s");
        return t;
    }

    private static TimeSpan? Optional(Google.Protobuf.WellKnownTypes.Duration? d, string path, string field, ConfigErrors errors, bool allowZero = false)
    {
        if (d is null) return null;
        var t = d.ToTimeSpan();
        if (t < TimeSpan.Zero || (!allowZero && t == TimeSpan.Zero)) errors.Add(path + "." + field, $"{field} must be greater than 0s");
        return t;
    }

    private static HealthCheckModel Translate(HealthCheck hc, string path, ConfigErrors errors)
    {
        var timeout = Required(hc.Timeout, path, "timeout", errors);
        var interval = Required(hc.Interval, path, "interval", errors);
        if (hc.UnhealthyThreshold is null) errors.Add(path + ".unhealthy_threshold", "unhealthy_threshold is required");
        if (hc.HealthyThreshold is null) errors.Add(path + ".healthy_threshold", "healthy_threshold is required");
        var noTraffic = Optional(hc.NoTrafficInterval, path, "no_traffic_interval", errors) ?? TimeSpan.FromSeconds(60);
        var unhealthy = Optional(hc.UnhealthyInterval, path, "unhealthy_interval", errors) ?? interval;
        if (hc.AltPort is not null) errors.Add(path + ".alt_port", "alt_port is not supported");

        var model = new HealthCheckModel
        {
            Timeout = timeout,
            Interval = interval,
            InitialJitter = Optional(hc.InitialJitter, path, "initial_jitter", errors, allowZero: true) ?? TimeSpan.Zero,
            IntervalJitter = Optional(hc.IntervalJitter, path, "interval_jitter", errors, allowZero: true) ?? TimeSpan.Zero,
            IntervalJitterPercent = hc.IntervalJitterPercent,
            UnhealthyThreshold = Math.Max(hc.UnhealthyThreshold ?? 1, 1),
            HealthyThreshold = Math.Max(hc.HealthyThreshold ?? 1, 1),
            NoTrafficInterval = noTraffic,
            NoTrafficHealthyInterval = Optional(hc.NoTrafficHealthyInterval, path, "no_traffic_healthy_interval", errors) ?? noTraffic,
            UnhealthyInterval = unhealthy,
            UnhealthyEdgeInterval = Optional(hc.UnhealthyEdgeInterval, path, "unhealthy_edge_interval", errors) ?? unhealthy,
            HealthyEdgeInterval = Optional(hc.HealthyEdgeInterval, path, "healthy_edge_interval", errors) ?? interval,
            ReuseConnection = hc.ReuseConnection ?? true,
        };

        switch (hc.HealthCheckerCase)
        {
            case HealthCheck.HealthCheckerOneofCase.HttpHealthCheck:
                return TranslateHttp(hc.HttpHealthCheck, path + ".http_health_check", model, errors);
            case HealthCheck.HealthCheckerOneofCase.TcpHealthCheck:
            {
                var tcp = hc.TcpHealthCheck;
                var tPath = path + ".tcp_health_check";
                if (tcp.ProxyProtocolConfig is not null) errors.Add(tPath + ".proxy_protocol_config", "PROXY protocol in TCP health checks is not supported");
                var receive = new List<byte[]>();
                for (var i = 0; i < tcp.Receive.Count; i++)
                    if (Payload(tcp.Receive[i], $"{tPath}.receive[{i}]", errors) is { } r) receive.Add(r);
                return model with
                {
                    Kind = HealthCheckKind.Tcp,
                    Send = tcp.Send is null ? null : Payload(tcp.Send, tPath + ".send", errors),
                    Receive = receive,
                };
            }
            case HealthCheck.HealthCheckerOneofCase.GrpcHealthCheck:
            {
                var g = hc.GrpcHealthCheck;
                return model with
                {
                    Kind = HealthCheckKind.Grpc,
                    ServiceName = g.ServiceName,
                    Authority = string.IsNullOrEmpty(g.Authority) ? null : g.Authority,
                    InitialMetadata = Headers(g.InitialMetadata, path + ".grpc_health_check.initial_metadata", errors),
                };
            }
            case HealthCheck.HealthCheckerOneofCase.CustomHealthCheck:
                errors.Add(path + ".custom_health_check", $"custom health checker '{hc.CustomHealthCheck.Name}' is not supported");
                return model;
            default:
                errors.Add(path, "one of http_health_check, tcp_health_check or grpc_health_check is required");
                return model;
        }
    }

    private static HealthCheckModel TranslateHttp(HealthCheck.Types.HttpHealthCheck h, string path, HealthCheckModel model, ConfigErrors errors)
    {
        if (string.IsNullOrEmpty(h.Path)) errors.Add(path + ".path", "path is required (a non-empty string)");
        if (h.Send is not null) errors.Add(path + ".send", "HTTP health check request bodies are not supported");
        if (h.Receive.Count > 0) errors.Add(path + ".receive", "HTTP health check response body matching is not supported");
        if (h.ServiceNameMatcher is not null) errors.Add(path + ".service_name_matcher", "service_name_matcher is not supported");
        if (h.ResponseBufferSize is not null) errors.Add(path + ".response_buffer_size", "response_buffer_size is only used with 'receive', which is not supported");
        var http2 = false;
        switch (h.CodecClientType)
        {
            case Envoy.Type.V3.CodecClientType.Http1: break;
            case Envoy.Type.V3.CodecClientType.Http2: http2 = true; break;
            default: errors.Add(path + ".codec_client_type", "HTTP3 health checks are not supported"); break;
        }
        var method = h.Method switch
        {
            RequestMethod.MethodUnspecified or RequestMethod.Get => "GET",
            RequestMethod.Head => "HEAD",
            RequestMethod.Post => "POST",
            RequestMethod.Put => "PUT",
            RequestMethod.Delete => "DELETE",
            RequestMethod.Options => "OPTIONS",
            RequestMethod.Trace => "TRACE",
            RequestMethod.Patch => "PATCH",
            _ => null,
        };
        if (method is null) errors.Add(path + ".method", $"method {ProtoEnum.Name(h.Method)} is not allowed for HTTP health checks");
        var removes = new List<string>();
        foreach (var r in h.RequestHeadersToRemove) removes.Add(r.ToLowerInvariant());
        return model with
        {
            Kind = HealthCheckKind.Http,
            Path = string.IsNullOrEmpty(h.Path) ? "/" : h.Path,
            Host = string.IsNullOrEmpty(h.Host) ? null : h.Host,
            Http2 = http2,
            Method = method ?? "GET",
            ExpectedStatuses = h.ExpectedStatuses.Count == 0 ? [new StatusRange(200, 201)] : Ranges(h.ExpectedStatuses, path + ".expected_statuses", errors),
            RetriableStatuses = Ranges(h.RetriableStatuses, path + ".retriable_statuses", errors),
            RequestHeadersToAdd = Headers(h.RequestHeadersToAdd, path + ".request_headers_to_add", errors),
            RequestHeadersToRemove = removes,
        };
    }

    private static List<StatusRange> Ranges(RepeatedField<Envoy.Type.V3.Int64Range> ranges, string path, ConfigErrors errors)
    {
        var list = new List<StatusRange>();
        for (var i = 0; i < ranges.Count; i++)
        {
            var r = ranges[i];
            // Envoy's messages, word for word in meaning: 100 <= start < end <= 600.
            if (r.Start < 100) errors.Add($"{path}[{i}].start", $"Invalid http status range: expecting start >= 100, but found start={r.Start}");
            else if (r.End > 600) errors.Add($"{path}[{i}].end", $"Invalid http status range: expecting end <= 600, but found end={r.End}");
            else if (r.Start >= r.End) errors.Add($"{path}[{i}]", $"Invalid http status range: expecting start < end, but found start={r.Start} and end={r.End}");
            else list.Add(new StatusRange(r.Start, r.End));
        }
        return list;
    }

    private static List<KeyValuePair<string, string>> Headers(RepeatedField<HeaderValueOption> options, string path, ConfigErrors errors)
    {
        var list = new List<KeyValuePair<string, string>>();
        for (var i = 0; i < options.Count; i++)
        {
            var o = options[i];
            var oPath = $"{path}[{i}]";
            if (o.Header is null || string.IsNullOrEmpty(o.Header.Key))
            {
                errors.Add(oPath + ".header.key", "header key must not be empty");
                continue;
            }
            var raw = o.Header.RawValue.Length > 0 ? o.Header.RawValue.ToStringUtf8() : o.Header.Value;
            var format = Model.RouteConfiguration.HeaderValueFormat.Parse(raw, out var err);
            if (format?.Literal is null)
            {
                errors.Add(oPath + ".header.value", err ?? "formatted header values (%...%) are not supported in health check headers");
                continue;
            }
            list.Add(new(o.Header.Key.ToLowerInvariant(), format.Literal));
        }
        return list;
    }

    private static byte[]? Payload(HealthCheck.Types.Payload p, string path, ConfigErrors errors)
    {
        switch (p.PayloadCase)
        {
            case HealthCheck.Types.Payload.PayloadOneofCase.Binary:
                return p.Binary.ToByteArray();
            case HealthCheck.Types.Payload.PayloadOneofCase.Text:
                try
                {
                    return Convert.FromHexString(p.Text.Trim());
                }
                catch (FormatException)
                {
                    errors.Add(path + ".text", $"invalid hex string '{p.Text}'");
                    return null;
                }
            default:
                errors.Add(path, "one of text or binary is required");
                return null;
        }
    }

    public static OutlierDetectionModel? TranslateOutlier(ProtoCluster c, string path, ConfigErrors errors)
    {
        if (c.OutlierDetection is not { } od) return null;
        var p = ConfigErrors.Join(path, "outlier_detection");
        void Percent(uint? v, string field)
        {
            if (v is > 100) errors.Add(p + "." + field, $"{field} must be between 0 and 100 (found {v})");
        }
        Percent(od.MaxEjectionPercent, "max_ejection_percent");
        Percent(od.EnforcingConsecutive5Xx, "enforcing_consecutive_5xx");
        Percent(od.EnforcingConsecutiveGatewayFailure, "enforcing_consecutive_gateway_failure");
        Percent(od.EnforcingConsecutiveLocalOriginFailure, "enforcing_consecutive_local_origin_failure");
        Percent(od.EnforcingSuccessRate, "enforcing_success_rate");
        Percent(od.EnforcingLocalOriginSuccessRate, "enforcing_local_origin_success_rate");
        Percent(od.EnforcingFailurePercentage, "enforcing_failure_percentage");
        Percent(od.EnforcingFailurePercentageLocalOrigin, "enforcing_failure_percentage_local_origin");
        Percent(od.FailurePercentageThreshold, "failure_percentage_threshold");
        if (od.Monitors.Count > 0) errors.Add(p + ".monitors", "outlier detection monitors are not supported");
        var interval = Optional(od.Interval, p, "interval", errors) ?? TimeSpan.FromSeconds(10);
        var baseTime = Optional(od.BaseEjectionTime, p, "base_ejection_time", errors) ?? TimeSpan.FromSeconds(30);
        var maxTime = Optional(od.MaxEjectionTime, p, "max_ejection_time", errors) ?? TimeSpan.FromSeconds(300);
        // Envoy: "base_ejection_time must be smaller than max_ejection_time" when both are set.
        if (od.BaseEjectionTime is not null && od.MaxEjectionTime is not null && baseTime > maxTime)
            errors.Add(p + ".base_ejection_time", "base_ejection_time value is greater than max_ejection_time value");
        if (od.MaxEjectionTime is null && baseTime > maxTime) maxTime = baseTime;
        return new OutlierDetectionModel
        {
            Consecutive5xx = od.Consecutive5Xx ?? 5,
            ConsecutiveGatewayFailure = od.ConsecutiveGatewayFailure ?? 5,
            ConsecutiveLocalOriginFailure = od.ConsecutiveLocalOriginFailure ?? 5,
            Interval = interval,
            BaseEjectionTime = baseTime,
            MaxEjectionTime = maxTime,
            MaxEjectionTimeJitter = Optional(od.MaxEjectionTimeJitter, p, "max_ejection_time_jitter", errors, allowZero: true) ?? TimeSpan.Zero,
            MaxEjectionPercent = od.MaxEjectionPercent ?? 10,
            EnforcingConsecutive5xx = od.EnforcingConsecutive5Xx ?? 100,
            EnforcingConsecutiveGatewayFailure = od.EnforcingConsecutiveGatewayFailure ?? 0,
            EnforcingConsecutiveLocalOriginFailure = od.EnforcingConsecutiveLocalOriginFailure ?? 100,
            EnforcingSuccessRate = od.EnforcingSuccessRate ?? 100,
            EnforcingLocalOriginSuccessRate = od.EnforcingLocalOriginSuccessRate ?? 100,
            SuccessRateMinimumHosts = od.SuccessRateMinimumHosts ?? 5,
            SuccessRateRequestVolume = od.SuccessRateRequestVolume ?? 100,
            SuccessRateStdevFactor = od.SuccessRateStdevFactor ?? 1900,
            FailurePercentageThreshold = od.FailurePercentageThreshold ?? 85,
            EnforcingFailurePercentage = od.EnforcingFailurePercentage ?? 0,
            EnforcingFailurePercentageLocalOrigin = od.EnforcingFailurePercentageLocalOrigin ?? 0,
            FailurePercentageMinimumHosts = od.FailurePercentageMinimumHosts ?? 5,
            FailurePercentageRequestVolume = od.FailurePercentageRequestVolume ?? 50,
            SplitExternalLocalOriginErrors = od.SplitExternalLocalOriginErrors,
            SuccessfulActiveHealthCheckUnejectHost = od.SuccessfulActiveHealthCheckUnejectHost ?? true,
            AlwaysEjectOneHost = od.AlwaysEjectOneHost ?? false,
        };
    }
}
