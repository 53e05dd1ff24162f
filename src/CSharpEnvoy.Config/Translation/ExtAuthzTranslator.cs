using CSharpEnvoy.Config.Loading;
using CSharpEnvoy.Config.Model.HttpFilters;
using CSharpEnvoy.Config.Model.Matchers;
using Envoy.Extensions.Filters.Http.ExtAuthz.V3;

namespace CSharpEnvoy.Config.Translation;

/// <summary>Translates <c>envoy.filters.http.ext_authz</c> and its per-route <c>ExtAuthzPerRoute</c>.</summary>
internal static class ExtAuthzTranslator
{
    private static readonly TimeSpan DefaultTimeout = TimeSpan.FromMilliseconds(200);

    public static ExtAuthzModel? Filter(ExtAuthz c, string path, ConfigErrors errors)
    {
        string? grpcCluster = null;
        ExtAuthzHttpServiceModel? http = null;
        var timeout = DefaultTimeout;
        switch (c.ServicesCase)
        {
            case ExtAuthz.ServicesOneofCase.GrpcService:
                var g = c.GrpcService;
                if (g.EnvoyGrpc is not { } envoyGrpc) errors.Add(path + ".grpc_service.envoy_grpc", "the authorization service must be given as envoy_grpc (a cluster)");
                else if (envoyGrpc.ClusterName.Length == 0) errors.Add(path + ".grpc_service.envoy_grpc.cluster_name", "cluster_name is required");
                else grpcCluster = envoyGrpc.ClusterName;
                if (g.Timeout is { } t) timeout = Positive(t.ToTimeSpan(), path + ".grpc_service.timeout", errors);
                if (c.TransportApiVersion == Envoy.Config.Core.V3.ApiVersion.V2)
                    errors.Add(path + ".transport_api_version", "transport_api_version V2 is not supported (AUTO or V3)");
                break;
            case ExtAuthz.ServicesOneofCase.HttpService:
                http = HttpService(c.HttpService, c.AllowedHeaders, path + ".http_service", errors, out timeout);
                break;
            default:
                errors.Add(path, "one of grpc_service or http_service is required");
                return null;
        }
        if (c.AllowedHeaders is not null && c.HttpService?.AuthorizationRequest?.AllowedHeaders is not null)
            errors.Add(path + ".allowed_headers", "Invalid duplicate configuration for allowed_headers.");
        var statusOnError = 403;
        if (c.StatusOnError is { } s)
        {
            if ((int)s.Code is < 100 or > 599) errors.Add(path + ".status_on_error.code", $"{(int)s.Code} is not an HTTP status");
            else statusOnError = (int)s.Code;
        }
        var body = c.WithRequestBody is null ? null : Buffer(c.WithRequestBody, path + ".with_request_body", errors);
        return new ExtAuthzModel(grpcCluster, http, timeout, c.FailureModeAllow, c.FailureModeAllowHeaderAdd, body, statusOnError,
            c.FilterEnabled is null ? null : HttpFilterTranslator.Percent(c.FilterEnabled.DefaultValue),
            c.DenyAtDisable?.DefaultValue ?? false, c.StatPrefix, c.IncludePeerCertificate,
            c.AllowedHeaders is null ? null : Matchers(c.AllowedHeaders, path + ".allowed_headers", errors),
            c.DisallowedHeaders is null ? null : Matchers(c.DisallowedHeaders, path + ".disallowed_headers", errors),
            c.ClearRouteCache, c.ChargeClusterResponseStats ?? true);
    }

    public static ExtAuthzPerRouteModel? PerRoute(ExtAuthzPerRoute p, string path, ConfigErrors errors)
    {
        switch (p.OverrideCase)
        {
            case ExtAuthzPerRoute.OverrideOneofCase.Disabled:
                return new ExtAuthzPerRouteModel(p.Disabled, new Dictionary<string, string>(), false, null);
            case ExtAuthzPerRoute.OverrideOneofCase.CheckSettings:
                var cs = p.CheckSettings;
                if (cs.DisableRequestBodyBuffering && cs.WithRequestBody is not null)
                    errors.Add(path + ".check_settings", "Invalid configuration for check_settings. Only one of disable_request_body_buffering or with_request_body can be set.");
                var body = cs.WithRequestBody is null ? null : Buffer(cs.WithRequestBody, path + ".check_settings.with_request_body", errors);
                return new ExtAuthzPerRouteModel(false, new Dictionary<string, string>(cs.ContextExtensions), cs.DisableRequestBodyBuffering, body);
            default:
                errors.Add(path, "one of disabled or check_settings is required");
                return null;
        }
    }

    private static ExtAuthzHttpServiceModel? HttpService(HttpService h, Envoy.Type.Matcher.V3.ListStringMatcher? filterAllowed, string path,
        ConfigErrors errors, out TimeSpan timeout)
    {
        timeout = DefaultTimeout;
        var uri = h.ServerUri;
        if (uri is null)
        {
            errors.Add(path + ".server_uri", "server_uri is required");
            return null;
        }
        if (uri.Cluster.Length == 0) errors.Add(path + ".server_uri.cluster", "cluster is required");
        if (uri.Uri.Length == 0) errors.Add(path + ".server_uri.uri", "uri is required");
        if (uri.Timeout is null) errors.Add(path + ".server_uri.timeout", "timeout is required");
        else timeout = Positive(uri.Timeout.ToTimeSpan(), path + ".server_uri.timeout", errors);
        if (h.PathPrefix.Length > 0 && h.PathPrefix[0] != '/') errors.Add(path + ".path_prefix", "path_prefix should start with \"/\".");
        // The authority of the authz request is the uri's host part (Envoy sends the uri's host as :authority).
        var authority = uri.Uri;
        var scheme = authority.IndexOf("://", StringComparison.Ordinal);
        if (scheme >= 0) authority = authority[(scheme + 3)..];
        var slash = authority.IndexOf('/');
        if (slash >= 0) authority = authority[..slash];

        var allowed = filterAllowed ?? h.AuthorizationRequest?.AllowedHeaders;
        var headersToAdd = new List<KeyValuePair<string, string>>();
        if (h.AuthorizationRequest is { } rq)
            for (var i = 0; i < rq.HeadersToAdd.Count; i++)
            {
                var hv = rq.HeadersToAdd[i];
                if (hv.Key.Length == 0) errors.Add($"{path}.authorization_request.headers_to_add[{i}].key", "key is required");
                else headersToAdd.Add(new(hv.Key.ToLowerInvariant(), hv.Value));
            }
        var rs = h.AuthorizationResponse;
        const string rsPath = ".authorization_response.";
        return new ExtAuthzHttpServiceModel(uri.Cluster, authority, h.PathPrefix,
            allowed is null ? [] : Matchers(allowed, path + ".authorization_request.allowed_headers", errors),
            headersToAdd.ToArray(),
            rs?.AllowedUpstreamHeaders is { } up ? Matchers(up, path + rsPath + "allowed_upstream_headers", errors) : [],
            rs?.AllowedUpstreamHeadersToAppend is { } upAppend ? Matchers(upAppend, path + rsPath + "allowed_upstream_headers_to_append", errors) : [],
            rs?.AllowedClientHeaders is { } client ? Matchers(client, path + rsPath + "allowed_client_headers", errors) : null,
            rs?.AllowedClientHeadersOnSuccess is { } onSuccess ? Matchers(onSuccess, path + rsPath + "allowed_client_headers_on_success", errors) : []);
    }

    private static ExtAuthzBufferModel Buffer(BufferSettings b, string path, ConfigErrors errors)
    {
        if (b.MaxRequestBytes == 0) errors.Add(path + ".max_request_bytes", "max_request_bytes must be greater than 0");
        return new ExtAuthzBufferModel(b.MaxRequestBytes, b.AllowPartialMessage, b.PackAsBytes);
    }

    private static StringMatcherModel[] Matchers(Envoy.Type.Matcher.V3.ListStringMatcher list, string path, ConfigErrors errors)
    {
        if (list.Patterns.Count == 0) errors.Add(path + ".patterns", "at least one pattern is required");
        return RouteTranslator.StringMatchers(list.Patterns, path + ".patterns", errors);
    }

    /// <summary>A check timeout: 0 means none.</summary>
    private static TimeSpan Positive(TimeSpan t, string path, ConfigErrors errors)
    {
        if (t < TimeSpan.Zero) errors.Add(path, "timeout must not be negative");
        return t;
    }
}
