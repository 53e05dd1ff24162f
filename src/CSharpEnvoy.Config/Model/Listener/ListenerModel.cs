using CSharpEnvoy.Config.Model.RouteConfiguration;

namespace CSharpEnvoy.Config.Model.Listener;

/// <summary>Where a listener or an upstream host lives: an IP socket address or a Unix socket (Envoy's <c>pipe</c>).</summary>
internal sealed record SocketAddressModel(string Address, int Port, string? PipePath = null, bool Ipv4Compat = false)
{
    public bool IsPipe => PipePath is not null;

    /// <summary>Envoy's spelling: <c>127.0.0.1:10000</c>, <c>[::1]:80</c>, or the pipe path.</summary>
    public override string ToString() =>
        PipePath ?? (Address.Contains(':') ? $"[{Address}]:{Port}" : $"{Address}:{Port}");
}

/// <summary>A validated listener: one socket, its filter chains.</summary>
internal sealed record ListenerModel(string Name, SocketAddressModel Address, string StatPrefix, IReadOnlyList<FilterChainModel> FilterChains)
{
    /// <summary>The JSON of the listener as configured (proto3 JSON), for /config_dump.</summary>
    public Google.Protobuf.IMessage? Source { get; init; }
    /// <summary><c>traffic_direction: INBOUND</c> (admin /drain_listeners?inboundonly).</summary>
    public bool Inbound { get; init; }
    /// <summary>The listener's own <c>access_log</c>: one line per downstream connection, when it closes.</summary>
    public IReadOnlyList<CSharpEnvoy.Config.Model.AccessLog.AccessLogModel> AccessLogs { get; init; } = [];
    /// <summary>The chain for connections no <c>filter_chain_match</c> selects; without it they are closed.</summary>
    public FilterChainModel? DefaultFilterChain { get; init; }
    /// <summary>Listener filters, in order (today only <c>envoy.filters.listener.tls_inspector</c>).</summary>
    public ListenerFiltersModel ListenerFilters { get; init; } = ListenerFiltersModel.None;

    /// <summary>Every chain a connection can get: the matched ones, then the default chain.</summary>
    public IEnumerable<FilterChainModel> AllFilterChains => DefaultFilterChain is null ? FilterChains : FilterChains.Append(DefaultFilterChain);
}

/// <summary>The listener filters that run before a filter chain is chosen.</summary>
internal sealed record ListenerFiltersModel(bool TlsInspector, TimeSpan Timeout, bool ContinueOnTimeout, int MaxClientHelloSize = 65536)
{
    public static readonly ListenerFiltersModel None = new(false, TimeSpan.FromSeconds(15), false);
}

/// <summary>A filter chain; its terminal network filter is the HTTP connection manager or the TCP proxy (exactly one is set).</summary>
internal sealed record FilterChainModel(string Name, HttpConnectionManagerModel? HttpConnectionManager)
{
    public TcpProxyModel? TcpProxy { get; init; }
    /// <summary><c>envoy.filters.network.rbac</c> before the terminal filter; null when absent.</summary>
    public Rbac.RbacFilterModel? NetworkRbac { get; init; }
    /// <summary>The chain's <c>envoy.transport_sockets.tls</c> settings; null for cleartext.</summary>
    public global::CSharpEnvoy.Config.Model.Tls.DownstreamTlsModel? Tls { get; init; }
    public FilterChainMatchModel Match { get; init; } = FilterChainMatchModel.Any;
}

internal enum CodecType { Auto = 0, Http1 = 1, Http2 = 2 }

/// <summary>How the connection manager treats <c>x-forwarded-client-cert</c> (same numbers as the proto enum).</summary>
internal enum ForwardClientCertDetails { Sanitize = 0, ForwardOnly = 1, AppendForward = 2, SanitizeSet = 3, AlwaysForwardOnly = 4 }

/// <summary><c>set_current_client_cert_details</c>: the client certificate fields written into the header.</summary>
[Flags]
internal enum ClientCertDetailsFields { None = 0, Subject = 1, Cert = 2, Chain = 4, Dns = 8, Uri = 16 }

internal enum ServerHeaderTransformation { Overwrite = 0, AppendIfAbsent = 1, PassThrough = 2 }

/// <summary><c>common_http_protocol_options.headers_with_underscores_action</c>: what a request header whose name has
/// an underscore gets.</summary>
internal enum HeadersWithUnderscoresAction { Allow = 0, RejectRequest = 1, DropHeader = 2 }

/// <summary><c>path_with_escaped_slashes_action</c> (the default is KEEP_UNCHANGED, as in Envoy without runtime overrides).</summary>
internal enum PathWithEscapedSlashesAction { ImplementationSpecificDefault = 0, KeepUnchanged = 1, RejectRequest = 2, UnescapeAndRedirect = 3, UnescapeAndForward = 4 }

/// <summary>An HTTP filter of the connection manager's chain, already resolved to its extension.</summary>
internal sealed record HttpFilterModel(string Name, string TypeName, object? Config)
{
    /// <summary>The filter's <c>name</c> as configured: the first key of its typed_per_filter_config lookups.</summary>
    public string? ConfigName { get; init; }
    /// <summary><c>disabled</c>: the filter runs only on routes whose typed_per_filter_config enables it.</summary>
    public bool Disabled { get; init; }
}

/// <summary>Validated settings of <c>envoy.filters.network.http_connection_manager</c>.</summary>
/// <summary><c>local_reply_config</c>: mappers tried in order on every reply the proxy makes itself (the first whose
/// filter matches rewrites it), then the body format.</summary>
internal sealed record LocalReplyConfigModel(LocalReplyMapperModel[] Mappers, LocalReplyFormatModel? BodyFormat);

/// <summary>A <c>ResponseMapper</c>: when <see cref="Filter"/> matches, the status, body, headers and format given
/// replace the reply's.</summary>
internal sealed record LocalReplyMapperModel(
    AccessLog.AccessLogFilterModel Filter,
    int? StatusCode,
    string? Body,
    LocalReplyFormatModel? BodyFormatOverride,
    HeaderMutationModel Headers);

/// <summary>A local reply body format (a <c>SubstitutionFormatString</c>) and the content type it gives the reply.</summary>
internal sealed record LocalReplyFormatModel(AccessLog.AccessLogFormatModel Format, string ContentType);

internal enum HostPortStripping { None, Matching, Any }

internal sealed record HttpConnectionManagerModel
{
    /// <summary><c>local_reply_config</c>; null when absent.</summary>
    public LocalReplyConfigModel? LocalReply { get; init; }
    /// <summary><c>strip_any_host_port</c> (any port) or <c>strip_matching_host_port</c> (only the listener's) take the
    /// port off the Host header before routing.</summary>
    public HostPortStripping StripHostPort { get; init; }
    /// <summary><c>add_user_agent</c>: requests get <c>x-envoy-downstream-service-cluster</c> (the node's cluster),
    /// <c>x-envoy-downstream-service-node</c> (its id) and, when they have none, that cluster as user-agent.</summary>
    public bool AddUserAgent { get; init; }
    /// <summary><c>strip_trailing_host_dot</c>: "example.com." (and "example.com.:80") lose the dot before routing.</summary>
    public bool StripTrailingHostDot { get; init; }
    /// <summary><c>scheme_header_transformation.scheme_to_overwrite</c>: the scheme requests are taken to have ("http" or
    /// "https"); null: the connection's.</summary>
    public string? SchemeToOverwrite { get; init; }
    /// <summary><c>request_id_extension</c> (UUID): whether the trace decision is packed into x-request-id, and whether
    /// traces are sampled by the request id's hash (both Envoy's default true).</summary>
    public bool PackTraceReason { get; init; } = true;
    public bool UseRequestIdForTraceSampling { get; init; } = true;
    /// <summary><c>append_x_forwarded_port</c>: the listener's port as <c>x-forwarded-port</c>.</summary>
    public bool AppendXForwardedPort { get; init; }
    /// <summary><c>internal_address_config</c>: null keeps Envoy's default (RFC 1918, loopback and unique-local
    /// addresses are internal, Unix sockets are not).</summary>
    public InternalAddressConfigModel? InternalAddresses { get; init; }
    public required string StatPrefix { get; init; }
    public CodecType CodecType { get; init; }
    public RouteConfigurationModel? RouteConfig { get; init; }
    /// <summary>With <c>rds</c>: the route configuration to fetch over xDS (<see cref="RouteConfig"/> is then null).</summary>
    public string? RdsRouteConfigName { get; init; }
    /// <summary>With <c>rds</c>: where the route configuration comes from (<c>rds.config_source</c>).</summary>
    public global::CSharpEnvoy.Config.Model.Xds.ConfigSourceModel? RdsConfig { get; init; }
    /// <summary>With <c>rds</c>: how long the listener warms waiting for its routes (infinite for 0).</summary>
    public TimeSpan RdsInitialFetchTimeout => RdsConfig?.InitialFetchTimeout ?? TimeSpan.FromSeconds(15);
    public required IReadOnlyList<HttpFilterModel> HttpFilters { get; init; }
    public bool UseRemoteAddress { get; init; }
    public int XffNumTrustedHops { get; init; }
    public bool SkipXffAppend { get; init; }
    public string? Via { get; init; }
    public bool GenerateRequestId { get; init; } = true;
    public bool PreserveExternalRequestId { get; init; }
    public bool AlwaysSetRequestIdInResponse { get; init; }
    public string ServerName { get; init; } = "envoy";
    public ServerHeaderTransformation ServerHeaderTransformation { get; init; }
    public HeadersWithUnderscoresAction HeadersWithUnderscoresAction { get; init; }
    /// <summary><c>http_protocol_options.accept_http_10</c>: HTTP/1.0 requests are served; otherwise (Envoy's
    /// default) they get 426.</summary>
    public bool AcceptHttp10 { get; init; }
    /// <summary><c>http_protocol_options.default_host_for_http_10</c>: the host of HTTP/1.0 requests without one.</summary>
    public string? DefaultHostForHttp10 { get; init; }
    public bool NormalizePath { get; init; }
    public bool MergeSlashes { get; init; }
    public PathWithEscapedSlashesAction PathWithEscapedSlashesAction { get; init; }
    /// <summary>Whether any of the three path options above asks for work on each request.</summary>
    public bool TransformsPath => NormalizePath || MergeSlashes ||
        PathWithEscapedSlashesAction is not (PathWithEscapedSlashesAction.ImplementationSpecificDefault or PathWithEscapedSlashesAction.KeepUnchanged);
    /// <summary>Upgrade types (lower case, e.g. "websocket") enabled at the connection manager.</summary>
    public IReadOnlyDictionary<string, bool> UpgradeTypes { get; init; } = new Dictionary<string, bool>();
    public bool SuppressEnvoyHeaders { get; init; }
    public int? Http2MaxConcurrentStreams { get; init; }
    public int? Http2InitialStreamWindowSize { get; init; }
    public int? Http2InitialConnectionWindowSize { get; init; }
    /// <summary>The connection manager's <c>access_log</c>: one line per request, written when the request ends.</summary>
    public IReadOnlyList<CSharpEnvoy.Config.Model.AccessLog.AccessLogModel> AccessLogs { get; init; } = [];
    /// <summary><c>stream_idle_timeout</c> (Envoy's default 5 minutes; zero disables): no byte either way for this
    /// long ends the stream. A route's <c>idle_timeout</c> overrides it.</summary>
    public TimeSpan StreamIdleTimeout { get; init; } = TimeSpan.FromMinutes(5);
    /// <summary><c>request_timeout</c>: the whole request must arrive within it; zero (the default) disables it.</summary>
    public TimeSpan RequestTimeout { get; init; }
    /// <summary><c>request_headers_timeout</c>: the request headers must arrive within it from their first byte;
    /// zero (the default) disables it.</summary>
    public TimeSpan RequestHeadersTimeout { get; init; }
    /// <summary><c>max_request_headers_kb</c>: the most request header bytes a request may carry (default 60 KiB).</summary>
    public int MaxRequestHeadersBytes { get; init; } = 60 * 1024;
    /// <summary><c>common_http_protocol_options.max_headers_count</c>: the most request headers (default 100); a request
    /// with more gets 431.</summary>
    public int MaxHeadersCount { get; init; } = 100;
    /// <summary><c>common_http_protocol_options.idle_timeout</c>: a downstream connection with no request in flight
    /// closes after it (Envoy's default 1 h; <see cref="Timeout.InfiniteTimeSpan"/> when set to 0, disabled).</summary>
    public TimeSpan IdleTimeout { get; init; } = TimeSpan.FromHours(1);
    /// <summary>The <c>tracing</c> settings; null when requests are not traced.</summary>
    public CSharpEnvoy.Config.Model.Tracing.TracingModel? Tracing { get; init; }
    public ForwardClientCertDetails ForwardClientCert { get; init; }
    public ClientCertDetailsFields SetCurrentClientCertDetails { get; init; }
}

/// <summary><c>HttpConnectionManager.InternalAddressConfig</c>: whether Unix socket peers are internal, and the ranges
/// that are (empty: Envoy's default ranges).</summary>
internal sealed record InternalAddressConfigModel(bool UnixSockets, CidrRangeModel[] CidrRanges);
