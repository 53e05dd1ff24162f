using CSharpEnvoy.Config.Loading;
using CSharpEnvoy.Config.Model.Cluster;
using CSharpEnvoy.Config.Model.Listener;
using CSharpEnvoy.Config.Validation;
using Envoy.Config.Cluster.V3;
using Envoy.Config.Core.V3;
using Envoy.Config.Endpoint.V3;
using ProtoCluster = Envoy.Config.Cluster.V3.Cluster;

namespace CSharpEnvoy.Config.Translation;

/// <summary>Validates one <c>envoy.config.cluster.v3.Cluster</c> and turns it into a <see cref="ClusterModel"/>.</summary>
internal static class ClusterTranslator
{
    public static ClusterModel? Translate(ProtoCluster c, string path, ConfigErrors errors)
    {
        if (string.IsNullOrEmpty(c.Name)) errors.Add(ConfigErrors.Join(path, "name"), "cluster name must not be empty");

        if (c.ClusterDiscoveryTypeCase == ProtoCluster.ClusterDiscoveryTypeOneofCase.ClusterType)
            errors.Add(ConfigErrors.Join(path, "cluster_type"), $"custom cluster type '{c.ClusterType.Name}' is not supported");
        var type = c.Type switch
        {
            ProtoCluster.Types.DiscoveryType.Static => DiscoveryType.Static,
            ProtoCluster.Types.DiscoveryType.StrictDns => DiscoveryType.StrictDns,
            ProtoCluster.Types.DiscoveryType.LogicalDns => DiscoveryType.LogicalDns,
            ProtoCluster.Types.DiscoveryType.Eds => DiscoveryType.Eds,
            _ => Unsupported(ConfigErrors.Join(path, "type"), $"cluster type {ProtoEnum.Name(c.Type)} is not supported yet (STATIC, STRICT_DNS, LOGICAL_DNS and EDS are)", errors, DiscoveryType.Static),
        };

        var lb = LoadBalancingTranslator.Translate(c, path, errors);

        var endpoints = new List<EndpointModel>();
        string? edsServiceName = null;
        Model.Xds.ConfigSourceModel? edsConfig = null;
        if (type == DiscoveryType.Eds)
        {
            var ecPath = ConfigErrors.Join(path, "eds_cluster_config");
            if (c.EdsClusterConfig is null) errors.Add(ecPath, "an EDS cluster needs eds_cluster_config with an eds_config");
            else
            {
                edsConfig = XdsTranslator.TranslateConfigSource(c.EdsClusterConfig.EdsConfig, ecPath + ".eds_config", errors);
                edsServiceName = string.IsNullOrEmpty(c.EdsClusterConfig.ServiceName) ? c.Name : c.EdsClusterConfig.ServiceName;
            }
            if (c.LoadAssignment is not null)
                errors.Add(ConfigErrors.Join(path, "load_assignment"), "an EDS cluster takes its endpoints from EDS; remove load_assignment");
        }
        else
        {
            if (c.EdsClusterConfig is not null)
                errors.Add(ConfigErrors.Join(path, "eds_cluster_config"), "eds_cluster_config is only valid for type: EDS clusters");
            if (c.LoadAssignment is { } la)
                endpoints = TranslateLoadAssignment(la, ConfigErrors.Join(path, "load_assignment"), errors, type);
        }
        if (type == DiscoveryType.LogicalDns && endpoints.Count != 1)
            errors.Add(ConfigErrors.Join(path, "load_assignment"), $"LOGICAL_DNS clusters must have a single locality_lb_endpoint and a single lb_endpoint (found {endpoints.Count})");
        if (type is DiscoveryType.StrictDns or DiscoveryType.LogicalDns)
            foreach (var e in endpoints)
                if (e.Address.IsPipe) errors.Add(ConfigErrors.Join(path, "load_assignment"), "DNS clusters cannot use pipe addresses");

        var protocol = UpstreamProtocol.Http1;
        int? h2Window = null;
        if (c.Http2ProtocolOptions is { } h2)
        {
            protocol = UpstreamProtocol.Http2;
            h2Window = (int?)h2.InitialStreamWindowSize;
        }
        var autoSanValidation = false;
        var autoSni = false;
        var idleTimeout = TimeSpan.FromHours(1);
        uint? maxRequests = null;
        string? maxRequestsPath = null;
#pragma warning disable CS0612 // deprecated in the API, still accepted by Envoy (common_http_protocol_options wins)
        if (c.MaxRequestsPerConnection is { } legacy)
        {
            maxRequests = legacy;
            maxRequestsPath = ConfigErrors.Join(path, "max_requests_per_connection");
        }
#pragma warning restore CS0612
        foreach (var (key, any) in c.TypedExtensionProtocolOptions)
        {
            var optPath = $"{ConfigErrors.Join(path, "typed_extension_protocol_options")}[\"{key}\"]";
            var ext = ExtensionRegistry.FindByType(ExtensionCategory.UpstreamProtocolOptions, any.TypeUrl);
            if (ext is null)
            {
                errors.Add(optPath, $"unsupported protocol options '{key}' (type '{any.TypeUrl}')");
                continue;
            }
            var opts = any.Unpack<Envoy.Extensions.Upstreams.Http.V3.HttpProtocolOptions>();
            if (opts.CommonHttpProtocolOptions is { } common)
            {
                idleTimeout = ListenerTranslator.IdleTimeout(common.IdleTimeout, optPath + ".common_http_protocol_options.idle_timeout", errors);
                // The limit applies to requests a connection manager receives; upstream responses are not counted.
                if (common.MaxRequestsPerConnection is { } perConnection)
                {
                    maxRequests = perConnection;
                    maxRequestsPath = optPath + ".common_http_protocol_options.max_requests_per_connection";
                }
                if (common.MaxHeadersCount is not null)
                    errors.Add(optPath + ".common_http_protocol_options.max_headers_count", "max_headers_count is supported on connection managers only, not on clusters (see docs/compatibility.md)");
            }
            if (opts.UpstreamHttpProtocolOptions is { } uhpo)
            {
                autoSanValidation |= uhpo.AutoSanValidation;
                autoSni |= uhpo.AutoSni;
            }
            switch (opts.UpstreamProtocolOptionsCase)
            {
                case Envoy.Extensions.Upstreams.Http.V3.HttpProtocolOptions.UpstreamProtocolOptionsOneofCase.ExplicitHttpConfig:
                    if (opts.ExplicitHttpConfig.Http2ProtocolOptions is { } eh2)
                    {
                        protocol = UpstreamProtocol.Http2;
                        h2Window = (int?)eh2.InitialStreamWindowSize ?? h2Window;
                    }
                    else if (opts.ExplicitHttpConfig.HttpProtocolOptions is not null) protocol = UpstreamProtocol.Http1;
                    else errors.Add(optPath + ".explicit_http_config", "set http_protocol_options or http2_protocol_options (HTTP/3 is not supported)");
                    break;
                case Envoy.Extensions.Upstreams.Http.V3.HttpProtocolOptions.UpstreamProtocolOptionsOneofCase.UseDownstreamProtocolConfig:
                    protocol = UpstreamProtocol.UseDownstream;
                    break;
                case Envoy.Extensions.Upstreams.Http.V3.HttpProtocolOptions.UpstreamProtocolOptionsOneofCase.AutoConfig:
                    errors.Add(optPath + ".auto_config", "auto_config (ALPN-negotiated upstream protocol) is not supported yet");
                    break;
                default:
                    errors.Add(optPath, "one of explicit_http_config or use_downstream_protocol_config is required");
                    break;
            }
        }

        var tls = TlsTranslator.TranslateUpstream(c.TransportSocket, ConfigErrors.Join(path, "transport_socket"), autoSanValidation, errors, autoSni);
        // Counted by csenvoy's own HTTP/1.1 codec, which carries plain-text HTTP/1.1 clusters; SocketsHttpHandler (TLS,
        // HTTP/2) has no such limit.
        if (maxRequests is > 0 && (tls is not null || protocol != UpstreamProtocol.Http1))
            errors.Add(maxRequestsPath!, "max_requests_per_connection is supported on plain-text HTTP/1.1 clusters only (see docs/compatibility.md)");

        var breakers = CircuitBreakersTranslator.Translate(c.CircuitBreakers, ConfigErrors.Join(path, "circuit_breakers"), errors);
        var connectTimeout = c.ConnectTimeout?.ToTimeSpan() ?? TimeSpan.FromSeconds(5);
        if (connectTimeout <= TimeSpan.Zero) errors.Add(ConfigErrors.Join(path, "connect_timeout"), "connect_timeout must be greater than 0s");
        var dnsRefresh = c.DnsRefreshRate?.ToTimeSpan() ?? TimeSpan.FromSeconds(5);
        if (dnsRefresh < TimeSpan.FromMilliseconds(1)) errors.Add(ConfigErrors.Join(path, "dns_refresh_rate"), "dns_refresh_rate must be at least 1ms");

        return new ClusterModel
        {
            Name = c.Name,
            Type = type,
            ConnectTimeout = connectTimeout,
            UpstreamIdleTimeout = idleTimeout,
            MaxRequestsPerConnection = (int)Math.Min(maxRequests ?? 0, int.MaxValue),
            LbPolicy = lb.Policy,
            LoadBalancer = lb,
            Endpoints = endpoints,
            DnsRefreshRate = dnsRefresh,
            DnsLookupFamily = (DnsLookupFamily)(int)c.DnsLookupFamily,
            Protocol = protocol,
            Http2InitialStreamWindowSize = h2Window,
            Tls = tls,
            CircuitBreakers = breakers.Default,
            CircuitBreakersHigh = breakers.High,
            HealthCheck = HealthCheckTranslator.TranslateHealthChecks(c, path, errors),
            IgnoreHealthOnHostRemoval = c.IgnoreHealthOnHostRemoval,
            OutlierDetection = HealthCheckTranslator.TranslateOutlier(c, path, errors),
            Source = c,
            EdsServiceName = edsServiceName,
            EdsConfig = edsConfig,
        };
    }

    /// <summary>A <c>ClusterLoadAssignment</c> (a cluster's <c>load_assignment</c>, or an EDS resource) → endpoints
    /// with their priority and locality weight, plus the assignment's policy.</summary>
    public static LoadAssignmentModel TranslateLoadAssignment(ClusterLoadAssignment la, string laPath, ConfigErrors errors, DiscoveryType type)
    {
        uint overprovisioning = LoadAssignmentModel.DefaultOverprovisioningFactor;
        if (la.Policy?.OverprovisioningFactor is { } of)
        {
            if (of == 0) errors.Add(laPath + ".policy.overprovisioning_factor", "overprovisioning_factor must be greater than 0");
            else overprovisioning = of;
        }
        var endpoints = new LoadAssignmentModel { OverprovisioningFactor = overprovisioning, WeightedPriorityHealth = la.Policy?.WeightedPriorityHealth ?? false };
        for (var i = 0; i < la.Endpoints.Count; i++)
        {
            var lle = la.Endpoints[i];
            // Paths are built only for errors: an EDS push carries 100,000 endpoints that are almost always fine.
            if (lle.Priority > MaxPriority) errors.Add($"{laPath}.endpoints[{i}].priority", $"priority must be at most {MaxPriority} (found {lle.Priority})");
            uint? localityWeight = lle.LoadBalancingWeight;
            if (localityWeight == 0) errors.Add($"{laPath}.endpoints[{i}].load_balancing_weight", "a locality's load_balancing_weight must be at least 1");
            var locality = lle.Locality is null ? LocalityModel.Empty : new LocalityModel(lle.Locality.Region, lle.Locality.Zone, lle.Locality.SubZone);
            ulong weightSum = 0;
            for (var j = 0; j < lle.LbEndpoints.Count; j++)
            {
                var lbe = lle.LbEndpoints[j];
                string LbePath() => $"{laPath}.endpoints[{i}].lb_endpoints[{j}]";
                if (lbe.Endpoint is null)
                {
                    errors.Add(LbePath(), "an lb_endpoint needs an 'endpoint'");
                    continue;
                }
                var addr = PlainSocketAddress(lbe.Endpoint.Address, requirePort: true) ??
                    TranslateAddress(lbe.Endpoint.Address, LbePath() + ".endpoint.address", errors, requirePort: true);
                if (addr is null) continue;
                if (type is DiscoveryType.Static or DiscoveryType.Eds && !addr.IsPipe && !System.Net.IPAddress.IsValid(addr.Address))
                    errors.Add(LbePath() + ".endpoint.address.socket_address.address",
                        type == DiscoveryType.Eds
                            ? $"'{addr.Address}' is not an IP address; EDS endpoints need IP addresses"
                            : $"'{addr.Address}' is not an IP address; a STATIC cluster needs IP addresses (use STRICT_DNS or LOGICAL_DNS for host names)");
                // Envoy: load_balancing_weight is at least 1; a locality's weights must sum to at most 2^32 - 1.
                var weight = lbe.LoadBalancingWeight ?? 1;
                if (weight == 0) errors.Add(LbePath() + ".load_balancing_weight", "load_balancing_weight must be at least 1");
                weightSum += weight;
                var hcc = lbe.Endpoint.HealthCheckConfig;
                if (hcc?.PortValue > 65535) errors.Add(LbePath() + ".endpoint.health_check_config.port_value", $"port {hcc.PortValue} is out of range");
                endpoints.Add(new EndpointModel(addr, string.IsNullOrEmpty(lbe.Endpoint.Hostname) ? null : lbe.Endpoint.Hostname, locality, Math.Max(weight, 1),
                    (EndpointHealthStatus)(int)lbe.HealthStatus, hcc?.DisableActiveHealthCheck ?? false,
                    lle.Priority, localityWeight is 0 ? null : localityWeight)
                {
                    HealthCheckPort = hcc?.PortValue ?? 0,
                    HealthCheckHostname = string.IsNullOrEmpty(hcc?.Hostname) ? null : hcc.Hostname,
                });
            }
            if (weightSum > uint.MaxValue)
                errors.Add($"{laPath}.endpoints[{i}]", $"The sum of weights of all upstream hosts in a locality exceeds {uint.MaxValue}");
        }
        return endpoints;
    }

    /// <summary>Envoy's limit on priority levels (priorities are 0..128).</summary>
    internal const uint MaxPriority = 128;

    /// <summary>The common case of <see cref="TranslateAddress"/> with nothing to report (a TCP socket address with an
    /// address and a port in range), without building any path; null when <see cref="TranslateAddress"/> must look.</summary>
    private static SocketAddressModel? PlainSocketAddress(Address? address, bool requirePort) =>
        address is { AddressCase: Address.AddressOneofCase.SocketAddress, SocketAddress: { Protocol: SocketAddress.Types.Protocol.Tcp } sa } &&
        sa.PortSpecifierCase != SocketAddress.PortSpecifierOneofCase.NamedPort && sa.Address.Length > 0 && sa.PortValue <= 65535 &&
        (!requirePort || sa.PortValue != 0)
            ? new SocketAddressModel(sa.Address, (int)sa.PortValue, null, sa.Ipv4Compat)
            : null;

    public static SocketAddressModel? TranslateAddress(Address? address, string path, ConfigErrors errors, bool requirePort)
    {
        if (address is null)
        {
            errors.Add(path, "address is required");
            return null;
        }
        switch (address.AddressCase)
        {
            case Address.AddressOneofCase.SocketAddress:
                var sa = address.SocketAddress;
                var saPath = path + ".socket_address";
                if (sa.Protocol != SocketAddress.Types.Protocol.Tcp)
                    errors.Add(saPath + ".protocol", "only TCP socket addresses are supported");
                if (sa.PortSpecifierCase == SocketAddress.PortSpecifierOneofCase.NamedPort)
                    errors.Add(saPath + ".named_port", "named ports are not supported; use port_value");
                if (string.IsNullOrEmpty(sa.Address))
                {
                    errors.Add(saPath + ".address", "address must not be empty");
                    return null;
                }
                if (sa.PortValue > 65535)
                {
                    errors.Add(saPath + ".port_value", $"port {sa.PortValue} is out of range");
                    return null;
                }
                if (requirePort && sa.PortValue == 0)
                    errors.Add(saPath + ".port_value", "an upstream endpoint needs a port_value");
                return new SocketAddressModel(sa.Address, (int)sa.PortValue, null, sa.Ipv4Compat);
            case Address.AddressOneofCase.Pipe:
                if (string.IsNullOrEmpty(address.Pipe.Path))
                {
                    errors.Add(path + ".pipe.path", "pipe path must not be empty");
                    return null;
                }
                return new SocketAddressModel("", 0, address.Pipe.Path);
            case Address.AddressOneofCase.None:
                errors.Add(path, "one of socket_address or pipe is required");
                return null;
            default:
                errors.Add(path, $"{address.AddressCase} addresses are not supported");
                return null;
        }
    }

    private static T Unsupported<T>(string path, string message, ConfigErrors errors, T fallback)
    {
        errors.Add(path, message);
        return fallback;
    }
}
