using System.Net;
using CSharpEnvoy.Config.Loading;
using CSharpEnvoy.Config.Model.Listener;
using CSharpEnvoy.Config.Validation;
using Envoy.Config.Listener.V3;
using Envoy.Extensions.Filters.Listener.TlsInspector.V3;
using ProtoListener = Envoy.Config.Listener.V3.Listener;

namespace CSharpEnvoy.Config.Translation;

/// <summary>Validates <c>filter_chain_match</c> and the listener filters that feed it (tls_inspector).</summary>
internal static class FilterChainMatchTranslator
{
    public static FilterChainMatchModel Translate(FilterChainMatch? m, string path, ConfigErrors errors)
    {
        if (m is null) return FilterChainMatchModel.Any;
        var names = new List<string>();
        for (var i = 0; i < m.ServerNames.Count; i++)
        {
            var n = m.ServerNames[i].ToLowerInvariant();
            if (n.Contains('*') && !(n.StartsWith("*.", StringComparison.Ordinal) && n.IndexOf('*', 1) < 0))
                errors.Add($"{path}.server_names[{i}]", $"partial wildcards are not supported in \"server_names\" ('{m.ServerNames[i]}')");
            else if (n.Length == 0)
                errors.Add($"{path}.server_names[{i}]", "a server name must not be empty");
            else names.Add(n[0] == '*' ? n[1..] : n);
        }
        var ports = new List<int>();
        foreach (var p in m.SourcePorts)
        {
            if (p is 0 or > 65535) errors.Add(path + ".source_ports", $"source port {p} is out of range 1-65535");
            else ports.Add((int)p);
        }
        var alpn = new List<string>(m.ApplicationProtocols);
        if (alpn.Contains("")) errors.Add(path + ".application_protocols", "an application protocol must not be empty");
        int? destinationPort = null;
        if (m.DestinationPort is uint dp)
        {
            if (dp is 0 or > 65535) errors.Add(path + ".destination_port", $"destination_port {dp} is out of range 1-65535");
            else destinationPort = (int)dp;
        }
        return new FilterChainMatchModel
        {
            DestinationPort = destinationPort,
            PrefixRanges = Cidrs(m.PrefixRanges, path + ".prefix_ranges", errors),
            ServerNames = names,
            TransportProtocol = m.TransportProtocol,
            ApplicationProtocols = alpn,
            DirectSourcePrefixRanges = Cidrs(m.DirectSourcePrefixRanges, path + ".direct_source_prefix_ranges", errors),
            SourceType = (ConnectionSourceType)(int)m.SourceType,
            SourcePrefixRanges = Cidrs(m.SourcePrefixRanges, path + ".source_prefix_ranges", errors),
            SourcePorts = ports,
        };
    }

    public static IReadOnlyList<CidrRangeModel> Cidrs(IList<Envoy.Config.Core.V3.CidrRange> ranges, string path, ConfigErrors errors)
    {
        var result = new List<CidrRangeModel>();
        for (var i = 0; i < ranges.Count; i++)
            if (Cidr(ranges[i], $"{path}[{i}]", errors) is { } c) result.Add(c);
        return result;
    }

    /// <summary>Envoy's CidrRange: an unset prefix_len is 0 (every address of the family).</summary>
    public static CidrRangeModel? Cidr(Envoy.Config.Core.V3.CidrRange r, string path, ConfigErrors errors)
    {
        if (!IPAddress.TryParse(r.AddressPrefix, out var ip))
        {
            errors.Add(path + ".address_prefix", $"malformed IP address: '{r.AddressPrefix}'");
            return null;
        }
        var len = (int)(r.PrefixLen ?? 0);
        var max = ip.AddressFamily == System.Net.Sockets.AddressFamily.InterNetwork ? 32 : 128;
        if (len > max)
        {
            errors.Add(path + ".prefix_len", $"prefix_len {len} is longer than the address ({max} bits)");
            return null;
        }
        return new CidrRangeModel(ip, len);
    }

    /// <summary>Refuses two chains any connection could reach with the same rules (Envoy refuses them too).</summary>
    public static void CheckDistinct(ProtoListener l, string path, ConfigErrors errors)
    {
        var scratch = new ConfigErrors();
        var matches = new List<FilterChainMatchModel>();
        foreach (var fc in l.FilterChains) matches.Add(Translate(fc.FilterChainMatch, path, scratch));
        for (var i = 0; i < matches.Count; i++)
            for (var j = 0; j < i; j++)
                if (matches[i].SameRulesAs(matches[j]))
                {
                    errors.Add($"{ConfigErrors.Join(path, "filter_chains")}[{i}].filter_chain_match",
                        $"multiple filter chains with the same matching rules are defined (filter_chains[{j}] and filter_chains[{i}])");
                    break;
                }
    }

    public static ListenerFiltersModel TranslateListenerFilters(ProtoListener l, string path, ConfigErrors errors)
    {
        var tlsInspector = false;
        var maxHello = 65536;
        for (var i = 0; i < l.ListenerFilters.Count; i++)
        {
            var f = l.ListenerFilters[i];
            var fPath = $"{ConfigErrors.Join(path, "listener_filters")}[{i}]";
            if (f.ConfigTypeCase == ListenerFilter.ConfigTypeOneofCase.ConfigDiscovery)
            {
                errors.Add(fPath + ".config_discovery", "listener filter config discovery (ECDS) is not supported");
                continue;
            }
            var ext = ListenerTranslator.ResolveExtension(ExtensionCategory.ListenerFilter, f.Name, f.TypedConfig, fPath, "listener filter", errors);
            if (ext?.Name != ExtensionRegistry.TlsInspector) continue;
            if (f.TypedConfig is not null && f.TypedConfig.Unpack<TlsInspector>().MaxClientHelloSize is uint max)
            {
                if (max is > 65536 or < 256) errors.Add(fPath + ".typed_config.max_client_hello_size", "max_client_hello_size must be between 256 and 65536");
                else maxHello = (int)max;
            }
            tlsInspector = true;
        }
        var timeout = l.ListenerFiltersTimeout is null ? TimeSpan.FromSeconds(15) : l.ListenerFiltersTimeout.ToTimeSpan();
        if (!tlsInspector)
        {
            // Current Envoy no longer adds the inspector by itself: without it SNI and ALPN are unknown and such chains never match.
            var all = new List<FilterChain>(l.FilterChains);
            for (var i = 0; i < all.Count; i++)
            {
                var m = all[i].FilterChainMatch;
                if (m is not null && (m.ServerNames.Count > 0 || m.ApplicationProtocols.Count > 0 || m.TransportProtocol == "tls"))
                    errors.Warn($"{ConfigErrors.Join(path, "filter_chains")}[{i}].filter_chain_match",
                        "server_names, application_protocols and transport_protocol \"tls\" need the envoy.filters.listener.tls_inspector listener filter; without it this chain matches no connection");
            }
        }
        return new ListenerFiltersModel(tlsInspector, timeout, l.ContinueOnListenerFiltersTimeout, maxHello);
    }
}
