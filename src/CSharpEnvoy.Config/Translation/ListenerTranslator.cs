using CSharpEnvoy.Config.Loading;
using CSharpEnvoy.Config.Model.Listener;
using CSharpEnvoy.Config.Validation;
using Envoy.Extensions.Filters.Network.HttpConnectionManager.V3;
using Google.Protobuf.WellKnownTypes;
using ProtoListener = Envoy.Config.Listener.V3.Listener;

namespace CSharpEnvoy.Config.Translation;

/// <summary>Validates a listener, its filter chains and their HTTP connection managers.</summary>
internal static class ListenerTranslator
{
    /// <param name="clusterExists">Used for <c>validate_clusters</c> of inline route configurations; null skips the check.</param>
    public static ListenerModel? Translate(ProtoListener l, string path, ConfigErrors errors, Func<string, bool>? clusterExists)
    {
        var addr = ClusterTranslator.TranslateAddress(l.Address, ConfigErrors.Join(path, "address"), errors, requirePort: false);
        // Envoy names an unnamed listener with a random UUID.
        var name = string.IsNullOrEmpty(l.Name) ? Guid.NewGuid().ToString() : l.Name;
        var chains = new List<FilterChainModel>();
        var isUdp = l.Address?.SocketAddress?.Protocol == Envoy.Config.Core.V3.SocketAddress.Types.Protocol.Udp;
        // UDP listeners have no filter chains in Envoy; they are refused for their protocol already.
        if (l.FilterChains.Count == 0 && l.DefaultFilterChain is null && !isUdp)
            errors.Add(ConfigErrors.Join(path, "filter_chains"), "a listener needs at least one filter chain");
        for (var i = 0; i < l.FilterChains.Count; i++)
        {
            var fc = TranslateFilterChain(l.FilterChains[i], $"{ConfigErrors.Join(path, "filter_chains")}[{i}]", errors, clusterExists, l.TrafficDirection);
            if (fc is not null) chains.Add(fc);
        }
        FilterChainModel? defaultChain = null;
        if (l.DefaultFilterChain is not null)
        {
            var dPath = ConfigErrors.Join(path, "default_filter_chain");
            if (l.DefaultFilterChain.FilterChainMatch is not null)
                errors.Add(dPath + ".filter_chain_match", "the default filter chain takes no filter_chain_match");
            defaultChain = TranslateFilterChain(l.DefaultFilterChain, dPath, errors, clusterExists, l.TrafficDirection);
        }
        FilterChainMatchTranslator.CheckDistinct(l, path, errors);
        var listenerFilters = FilterChainMatchTranslator.TranslateListenerFilters(l, path, errors);
        if (addr is null) return null;
        var statPrefix = string.IsNullOrEmpty(l.StatPrefix) ? addr.ToString() : l.StatPrefix;
        return new ListenerModel(name, addr, statPrefix, chains)
        {
            Source = l, DefaultFilterChain = defaultChain, ListenerFilters = listenerFilters,
            Inbound = l.TrafficDirection == Envoy.Config.Core.V3.TrafficDirection.Inbound,
            AccessLogs = AccessLogTranslator.Translate(l.AccessLog, ConfigErrors.Join(path, "access_log"), errors),
        };
    }

    private static FilterChainModel? TranslateFilterChain(Envoy.Config.Listener.V3.FilterChain fc, string fcPath, ConfigErrors errors, Func<string, bool>? clusterExists,
        Envoy.Config.Core.V3.TrafficDirection direction = Envoy.Config.Core.V3.TrafficDirection.Unspecified)
    {
        if (fc.Filters.Count == 0)
        {
            errors.Add(fcPath + ".filters", "a filter chain needs at least one network filter");
            return null;
        }
        HttpConnectionManagerModel? hcm = null;
        TcpProxyModel? tcp = null;
        Model.Rbac.RbacFilterModel? rbac = null;
        for (var j = 0; j < fc.Filters.Count; j++)
        {
            var f = fc.Filters[j];
            var fPath = $"{fcPath}.filters[{j}]";
            var ext = ResolveExtension(ExtensionCategory.NetworkFilter, f.Name, f.TypedConfig, fPath, "network filter", errors);
            if (ext is null) continue;
            if (ext.Name == ExtensionRegistry.NetworkRbac)
            {
                if (j == fc.Filters.Count - 1) errors.Add(fPath, $"'{ext.Name}' is not a terminal filter; a filter chain must end with the HTTP connection manager or the TCP proxy");
                else if (rbac is not null) errors.Add(fPath, "one network RBAC filter per chain is supported");
                else if (f.TypedConfig is null) errors.Add(fPath, $"'{ext.Name}' needs a typed_config");
                else rbac = RbacTranslator.Network(f.TypedConfig.Unpack<Envoy.Extensions.Filters.Network.Rbac.V3.RBAC>(), fPath + ".typed_config", errors);
                continue;
            }
            if (j != fc.Filters.Count - 1)
            {
                errors.Add(fPath, $"'{ext.Name}' is a terminal filter and must be the last in the chain");
                continue;
            }
            if (f.TypedConfig is null)
            {
                errors.Add(fPath, $"'{ext.Name}' needs a typed_config");
                continue;
            }
            if (ext.Name == ExtensionRegistry.TcpProxy)
            {
                tcp = TcpProxyTranslator.Translate(f.TypedConfig.Unpack<Envoy.Extensions.Filters.Network.TcpProxy.V3.TcpProxy>(), fPath + ".typed_config", errors, clusterExists);
                continue;
            }
            var proto = f.TypedConfig.Unpack<HttpConnectionManager>();
            hcm = TranslateHttpConnectionManager(proto, fPath + ".typed_config", errors, clusterExists);
            // Envoy names spans by the listener's direction: OUTBOUND is egress.
            if (hcm.Tracing is { } tr && direction == Envoy.Config.Core.V3.TrafficDirection.Outbound)
                hcm = hcm with { Tracing = tr with { Egress = true } };
        }
        var tls = TlsTranslator.TranslateDownstream(fc.TransportSocket, fcPath + ".transport_socket", errors);
        var match = FilterChainMatchTranslator.Translate(fc.FilterChainMatch, fcPath + ".filter_chain_match", errors);
        return hcm is null && tcp is null ? null : new FilterChainModel(fc.Name, hcm) { Tls = tls, Match = match, TcpProxy = tcp, NetworkRbac = rbac };
    }

    /// <summary>An optional duration where unset and zero both mean "off".</summary>
    private static LocalReplyConfigModel LocalReplyConfig(Envoy.Extensions.Filters.Network.HttpConnectionManager.V3.LocalReplyConfig c, string path, ConfigErrors errors)
    {
        var mappers = new List<LocalReplyMapperModel>();
        for (var i = 0; i < c.Mappers.Count; i++)
        {
            var m = c.Mappers[i];
            var mPath = $"{path}.mappers[{i}]";
            if (m.Filter is null)
            {
                errors.Add(mPath + ".filter", "filter is required");
                continue;
            }
            var filter = AccessLogTranslator.Filter(m.Filter, mPath + ".filter", errors);
            if (m.StatusCode is { } code && code is < 200 or >= 600) errors.Add(mPath + ".status_code", "status_code must be in [200, 600)");
            string? body = null;
            if (m.Body is not null && RouteTranslator.DataSourceBytes(m.Body, mPath + ".body", errors) is { } bytes) body = System.Text.Encoding.UTF8.GetString(bytes);
            var format = m.BodyFormatOverride is null ? null : LocalReplyFormat(m.BodyFormatOverride, mPath + ".body_format_override", errors);
            var headers = RouteTranslator.Mutation(m.HeadersToAdd, new Google.Protobuf.Collections.RepeatedField<string>(), mPath, "response", errors);
            if (filter is not null) mappers.Add(new LocalReplyMapperModel(filter, (int?)m.StatusCode, body, format, headers));
        }
        return new LocalReplyConfigModel(mappers.ToArray(), c.BodyFormat is null ? null : LocalReplyFormat(c.BodyFormat, path + ".body_format", errors));
    }

    /// <summary>A local reply format: text is <c>text/plain</c> and JSON <c>application/json</c> unless
    /// <c>content_type</c> says otherwise.</summary>
    private static LocalReplyFormatModel? LocalReplyFormat(Envoy.Config.Core.V3.SubstitutionFormatString f, string path, ConfigErrors errors)
    {
        var format = AccessLogTranslator.Format(f, path, errors);
        if (format is null) return null;
        var contentType = f.ContentType.Length > 0 ? f.ContentType : format.Json is not null ? "application/json" : "text/plain";
        return new LocalReplyFormatModel(format, contentType);
    }

    private static string? SchemeToOverwrite(Envoy.Config.Core.V3.SchemeHeaderTransformation? t, string path, ConfigErrors errors)
    {
        if (t is null || t.TransformationCase != Envoy.Config.Core.V3.SchemeHeaderTransformation.TransformationOneofCase.SchemeToOverwrite) return null;
        if (t.SchemeToOverwrite is "http" or "https") return t.SchemeToOverwrite;
        errors.Add(path, $"scheme_to_overwrite must be \"http\" or \"https\", not '{t.SchemeToOverwrite}'");
        return null;
    }

    /// <summary>The UUID request id extension's config (the only one csenvoy has); null when unset or of another type,
    /// which the support checker reports as an unsupported type at its path.</summary>
    private static Envoy.Extensions.RequestId.Uuid.V3.UuidRequestIdConfig? RequestId(
        Envoy.Extensions.Filters.Network.HttpConnectionManager.V3.RequestIDExtension? ext) =>
        ext?.TypedConfig is { } any && any.Is(Envoy.Extensions.RequestId.Uuid.V3.UuidRequestIdConfig.Descriptor)
            ? any.Unpack<Envoy.Extensions.RequestId.Uuid.V3.UuidRequestIdConfig>()
            : null;

    private static InternalAddressConfigModel InternalAddresses(
        Envoy.Extensions.Filters.Network.HttpConnectionManager.V3.HttpConnectionManager.Types.InternalAddressConfig c, string path, ConfigErrors errors)
    {
        var ranges = new List<CidrRangeModel>();
        for (var i = 0; i < c.CidrRanges.Count; i++)
            if (FilterChainMatchTranslator.Cidr(c.CidrRanges[i], $"{path}.cidr_ranges[{i}]", errors) is { } r) ranges.Add(r);
        return new InternalAddressConfigModel(c.UnixSockets, ranges.ToArray());
    }

    private static HostPortStripping StripHostPort(Envoy.Extensions.Filters.Network.HttpConnectionManager.V3.HttpConnectionManager h, string path, ConfigErrors errors)
    {
        if (h.StripMatchingHostPort && h.StripAnyHostPort)
            errors.Add(ConfigErrors.Join(path, "strip_any_host_port"), "only one of strip_matching_host_port or strip_any_host_port can be set");
        return h.StripMatchingHostPort ? HostPortStripping.Matching : h.StripAnyHostPort ? HostPortStripping.Any : HostPortStripping.None;
    }

    /// <summary><c>max_request_headers_kb</c>: Envoy takes 1 to 8192 (KiB); unset is 60.</summary>
    /// <summary><c>max_headers_count</c>: at least 1 (Envoy's validation); default 100.</summary>
    private static int MaxHeadersCount(uint? count, string path, ConfigErrors errors)
    {
        if (count is null) return 100;
        if (count == 0) errors.Add(path, "max_headers_count must be at least 1");
        return (int)Math.Min(count.Value, int.MaxValue);
    }

    private static int MaxRequestHeadersBytes(uint? kb, string path, ConfigErrors errors)
    {
        if (kb is null) return 60 * 1024;
        if (kb is 0 or > 8192) errors.Add(path, "max_request_headers_kb must be from 1 to 8192");
        return (int)Math.Clamp(kb.Value, 1u, 8192u) * 1024;
    }

    private static TimeSpan NonNegative(Google.Protobuf.WellKnownTypes.Duration? d, string path, ConfigErrors errors)
    {
        var t = d?.ToTimeSpan() ?? TimeSpan.Zero;
        if (t >= TimeSpan.Zero) return t;
        errors.Add(path, "must not be negative");
        return TimeSpan.Zero;
    }

    /// <summary>A <c>common_http_protocol_options.idle_timeout</c>: Envoy's default of an hour when unset, and 0 for none
    /// (<see cref="Timeout.InfiniteTimeSpan"/>).</summary>
    internal static TimeSpan IdleTimeout(Google.Protobuf.WellKnownTypes.Duration? d, string path, ConfigErrors errors)
    {
        if (d is null) return TimeSpan.FromHours(1);
        var t = NonNegative(d, path, errors);
        return t == TimeSpan.Zero ? Timeout.InfiniteTimeSpan : t;
    }

    public static HttpConnectionManagerModel TranslateHttpConnectionManager(HttpConnectionManager h, string path, ConfigErrors errors, Func<string, bool>? clusterExists)
    {
        if (string.IsNullOrEmpty(h.StatPrefix)) errors.Add(ConfigErrors.Join(path, "stat_prefix"), "stat_prefix is required");

        var codec = h.CodecType switch
        {
            HttpConnectionManager.Types.CodecType.Auto => CodecType.Auto,
            HttpConnectionManager.Types.CodecType.Http1 => CodecType.Http1,
            HttpConnectionManager.Types.CodecType.Http2 => CodecType.Http2,
            _ => Fail(ConfigErrors.Join(path, "codec_type"), $"codec_type {ProtoEnum.Name(h.CodecType)} is not supported", errors, CodecType.Auto),
        };

        Model.RouteConfiguration.RouteConfigurationModel? routes = null;
        string? rdsName = null;
        Model.Xds.ConfigSourceModel? rdsConfig = null;
        switch (h.RouteSpecifierCase)
        {
            case HttpConnectionManager.RouteSpecifierOneofCase.RouteConfig:
                routes = RouteTranslator.Translate(h.RouteConfig, ConfigErrors.Join(path, "route_config"), errors, clusterExists, validateByDefault: true);
                break;
            case HttpConnectionManager.RouteSpecifierOneofCase.Rds:
                var rdsPath = ConfigErrors.Join(path, "rds");
                rdsConfig = XdsTranslator.TranslateConfigSource(h.Rds.ConfigSource, rdsPath + ".config_source", errors);
                rdsName = h.Rds.RouteConfigName;
                if (string.IsNullOrEmpty(rdsName)) errors.Add(rdsPath + ".route_config_name", "route_config_name is required");
                break;
            case HttpConnectionManager.RouteSpecifierOneofCase.None:
                errors.Add(path, "one of route_config or rds is required");
                break;
            default:
                // rds and scoped_routes are rejected by the support checker with their path.
                break;
        }

        var filters = new List<HttpFilterModel>();
        if (h.HttpFilters.Count == 0)
        {
            // Envoy: an HCM without http_filters behaves as if it had just the router.
            filters.Add(new HttpFilterModel(ExtensionRegistry.Router, "envoy.extensions.filters.http.router.v3.Router", null));
        }
        var suppressEnvoyHeaders = false;
        var startChildSpan = false;
        for (var i = 0; i < h.HttpFilters.Count; i++)
        {
            var f = h.HttpFilters[i];
            var fPath = $"{ConfigErrors.Join(path, "http_filters")}[{i}]";
            if (f.ConfigTypeCase == HttpFilter.ConfigTypeOneofCase.ConfigDiscovery)
            {
                errors.Add(fPath + ".config_discovery", "filter config discovery (ECDS) is not supported");
                continue;
            }
            var ext = ResolveExtension(ExtensionCategory.HttpFilter, f.Name, f.TypedConfig, fPath, "HTTP filter", errors, f.IsOptional);
            if (ext is null) continue;
            if (ext.Name == ExtensionRegistry.Router)
            {
                if (i != h.HttpFilters.Count - 1) errors.Add(fPath, "the router filter must be the last HTTP filter");
                if (f.TypedConfig?.Unpack<Envoy.Extensions.Filters.Http.Router.V3.Router>() is { } router)
                {
                    suppressEnvoyHeaders = router.SuppressEnvoyHeaders;
#pragma warning disable CS0612 // deprecated in the API (for spawn_upstream_span), still accepted by Envoy
                    startChildSpan = router.StartChildSpan;
#pragma warning restore CS0612
                }
            }
            if (f.Disabled && ext.Name == ExtensionRegistry.Router) errors.Add(fPath + ".disabled", "the terminal filter cannot be disabled");
            filters.Add(new HttpFilterModel(ext.Name, ext.TypeName, HttpFilterTranslator.Translate(ext, f.TypedConfig, fPath, errors))
            {
                ConfigName = string.IsNullOrEmpty(f.Name) ? ext.Name : f.Name,
                Disabled = f.Disabled,
            });
        }
        if (filters.Count > 0 && filters[^1].Name != ExtensionRegistry.Router)
            errors.Add(ConfigErrors.Join(path, "http_filters"), "the last HTTP filter must be the router (envoy.filters.http.router)");

        var upgrades = new Dictionary<string, bool>(StringComparer.OrdinalIgnoreCase);
        for (var i = 0; i < h.UpgradeConfigs.Count; i++)
        {
            var u = h.UpgradeConfigs[i];
            var uPath = $"{ConfigErrors.Join(path, "upgrade_configs")}[{i}]";
            if (string.IsNullOrEmpty(u.UpgradeType)) errors.Add(uPath + ".upgrade_type", "upgrade_type is required");
            else if (!upgrades.TryAdd(u.UpgradeType.ToLowerInvariant(), u.Enabled ?? true))
                errors.Add(uPath + ".upgrade_type", $"duplicate upgrade type '{u.UpgradeType}'");
            if (u.Filters.Count > 0) errors.Add(uPath + ".filters", "per-upgrade filter chains are not supported");
        }

        // Downstream request limits per connection are not implemented; the field is supported on clusters.
        if (h.CommonHttpProtocolOptions?.MaxRequestsPerConnection is not null)
            errors.Add(ConfigErrors.Join(path, "common_http_protocol_options.max_requests_per_connection"),
                "max_requests_per_connection is supported on clusters only, not on connection managers (see docs/compatibility.md)");
        return new HttpConnectionManagerModel
        {
            StatPrefix = h.StatPrefix,
            CodecType = codec,
            RouteConfig = routes,
            RdsRouteConfigName = rdsName,
            RdsConfig = rdsConfig,
            HttpFilters = filters,
            UseRemoteAddress = h.UseRemoteAddress ?? false,
            XffNumTrustedHops = (int)h.XffNumTrustedHops,
            SkipXffAppend = h.SkipXffAppend,
            Via = string.IsNullOrEmpty(h.Via) ? null : h.Via,
            GenerateRequestId = h.GenerateRequestId ?? true,
            PreserveExternalRequestId = h.PreserveExternalRequestId,
            AlwaysSetRequestIdInResponse = h.AlwaysSetRequestIdInResponse,
            ServerName = string.IsNullOrEmpty(h.ServerName) ? "envoy" : h.ServerName,
            ServerHeaderTransformation = (ServerHeaderTransformation)(int)h.ServerHeaderTransformation,
            HeadersWithUnderscoresAction = (HeadersWithUnderscoresAction)(int)(h.CommonHttpProtocolOptions?.HeadersWithUnderscoresAction ?? 0),
            AcceptHttp10 = h.HttpProtocolOptions?.AcceptHttp10 ?? false,
            DefaultHostForHttp10 = string.IsNullOrEmpty(h.HttpProtocolOptions?.DefaultHostForHttp10) ? null : h.HttpProtocolOptions.DefaultHostForHttp10,
            NormalizePath = h.NormalizePath ?? false,
            MergeSlashes = h.MergeSlashes,
            PathWithEscapedSlashesAction = (PathWithEscapedSlashesAction)(int)h.PathWithEscapedSlashesAction,
            UpgradeTypes = upgrades,
            SuppressEnvoyHeaders = suppressEnvoyHeaders,
            Http2MaxConcurrentStreams = (int?)h.Http2ProtocolOptions?.MaxConcurrentStreams,
            Http2InitialStreamWindowSize = (int?)h.Http2ProtocolOptions?.InitialStreamWindowSize,
            Http2InitialConnectionWindowSize = (int?)h.Http2ProtocolOptions?.InitialConnectionWindowSize,
            AccessLogs = AccessLogTranslator.Translate(h.AccessLog, ConfigErrors.Join(path, "access_log"), errors),
            StreamIdleTimeout = h.StreamIdleTimeout?.ToTimeSpan() ?? TimeSpan.FromMinutes(5),
            RequestTimeout = h.RequestTimeout?.ToTimeSpan() ?? TimeSpan.Zero,
            RequestHeadersTimeout = NonNegative(h.RequestHeadersTimeout, ConfigErrors.Join(path, "request_headers_timeout"), errors),
            MaxRequestHeadersBytes = MaxRequestHeadersBytes(h.MaxRequestHeadersKb, ConfigErrors.Join(path, "max_request_headers_kb"), errors),
            MaxHeadersCount = MaxHeadersCount(h.CommonHttpProtocolOptions?.MaxHeadersCount, ConfigErrors.Join(path, "common_http_protocol_options.max_headers_count"), errors),
            LocalReply = h.LocalReplyConfig is null ? null : LocalReplyConfig(h.LocalReplyConfig, ConfigErrors.Join(path, "local_reply_config"), errors),
            StripHostPort = StripHostPort(h, path, errors),
            AddUserAgent = h.AddUserAgent ?? false,
            StripTrailingHostDot = h.StripTrailingHostDot,
            SchemeToOverwrite = SchemeToOverwrite(h.SchemeHeaderTransformation, ConfigErrors.Join(path, "scheme_header_transformation.scheme_to_overwrite"), errors),
            PackTraceReason = RequestId(h.RequestIdExtension)?.PackTraceReason ?? true,
            UseRequestIdForTraceSampling = RequestId(h.RequestIdExtension)?.UseRequestIdForTraceSampling ?? true,
            AppendXForwardedPort = h.AppendXForwardedPort,
            InternalAddresses = h.InternalAddressConfig is { } iac ? InternalAddresses(iac, ConfigErrors.Join(path, "internal_address_config"), errors) : null,
            IdleTimeout = IdleTimeout(h.CommonHttpProtocolOptions?.IdleTimeout, ConfigErrors.Join(path, "common_http_protocol_options.idle_timeout"), errors),
            Tracing = TracingTranslator.Translate(h.Tracing, ConfigErrors.Join(path, "tracing"), errors, clusterExists) is { } tracing
                ? tracing with { SpawnUpstreamSpan = tracing.SpawnUpstreamSpan || startChildSpan } : null,
            ForwardClientCert = (ForwardClientCertDetails)(int)h.ForwardClientCertDetails,
            SetCurrentClientCertDetails = ClientCertFields(h.SetCurrentClientCertDetails),
        };
    }

    private static ClientCertDetailsFields ClientCertFields(HttpConnectionManager.Types.SetCurrentClientCertDetails? d)
    {
        if (d is null) return ClientCertDetailsFields.None;
        var f = ClientCertDetailsFields.None;
        if (d.Subject == true) f |= ClientCertDetailsFields.Subject;
        if (d.Cert) f |= ClientCertDetailsFields.Cert;
        if (d.Chain) f |= ClientCertDetailsFields.Chain;
        if (d.Dns) f |= ClientCertDetailsFields.Dns;
        if (d.Uri) f |= ClientCertDetailsFields.Uri;
        return f;
    }

    /// <summary>Envoy's lookup: by the typed_config's type when there is one, else by name (legacy names included).</summary>
    internal static ExtensionInfo? ResolveExtension(ExtensionCategory category, string name, Any? typedConfig, string path, string role, ConfigErrors errors, bool isOptional = false)
    {
        ExtensionInfo? ext;
        if (typedConfig is not null && typedConfig.TypeUrl.Length > 0)
        {
            ext = ExtensionRegistry.FindByType(category, typedConfig.TypeUrl);
            if (ext is null)
            {
                if (isOptional)
                {
                    errors.Warn(path, $"optional {role} '{name}' (type '{typedConfig.TypeUrl}') is not supported and is skipped");
                    return null;
                }
                errors.Add(path, $"unsupported {role} '{name}' (type '{typedConfig.TypeUrl}')");
            }
            return ext;
        }
        ext = ExtensionRegistry.FindByName(category, name);
        if (ext is null)
        {
            if (isOptional)
            {
                errors.Warn(path, $"optional {role} '{name}' is not supported and is skipped");
                return null;
            }
            errors.Add(path, string.IsNullOrEmpty(name) ? $"{role} needs a name or a typed_config" : $"unsupported {role} '{name}'");
        }
        return ext;
    }

    private static T Fail<T>(string path, string message, ConfigErrors errors, T fallback)
    {
        errors.Add(path, message);
        return fallback;
    }
}
