using CSharpEnvoy.Config.Loading;
using CSharpEnvoy.Config.Model.Stats;
using CSharpEnvoy.Config.Validation;
using Envoy.Config.Metrics.V3;

namespace CSharpEnvoy.Config.Translation;

/// <summary>Bootstrap <c>stats_sinks</c> → sink models (UDP StatsD and DogStatsD).</summary>
internal static class StatsSinkTranslator
{
    public static List<StatsSinkModel> Translate(Google.Protobuf.Collections.RepeatedField<StatsSink> sinks, ConfigErrors errors)
    {
        var result = new List<StatsSinkModel>();
        for (var i = 0; i < sinks.Count; i++)
        {
            var s = sinks[i];
            var path = $"stats_sinks[{i}]";
            var ext = ListenerTranslator.ResolveExtension(ExtensionCategory.StatsSink, s.Name, s.TypedConfig, path, "stats sink", errors);
            if (ext is null) continue;
            if (s.TypedConfig is null)
            {
                errors.Add(path, $"'{ext.Name}' needs a typed_config with an address");
                continue;
            }
            var dog = ext.Name == ExtensionRegistry.DogStatsdSink;
            Envoy.Config.Core.V3.Address? address;
            string prefix;
            var maxBytes = 0;
            if (dog)
            {
                var d = s.TypedConfig.Unpack<DogStatsdSink>();
                address = d.Address;
                prefix = d.Prefix;
                if (d.MaxBytesPerDatagram is ulong mb)
                {
                    if (mb is 0 or > 65507) errors.Add(path + ".typed_config.max_bytes_per_datagram", $"max_bytes_per_datagram must be in [1, 65507] (found {mb})");
                    maxBytes = (int)Math.Min(mb, 65507);
                }
            }
            else
            {
                var d = s.TypedConfig.Unpack<StatsdSink>();
                if (d.StatsdSpecifierCase == StatsdSink.StatsdSpecifierOneofCase.TcpClusterName)
                {
                    errors.Add(path + ".typed_config.tcp_cluster_name", "TCP StatsD through a cluster is not supported yet; use a UDP address");
                    continue;
                }
                address = d.Address;
                prefix = d.Prefix;
            }
            var addr = ClusterTranslator.TranslateAddress(address, path + ".typed_config.address", errors, requirePort: true);
            if (addr is null) continue;
            if (addr.IsPipe)
            {
                errors.Add(path + ".typed_config.address.pipe", "StatsD over a Unix socket is not supported; use a UDP address");
                continue;
            }
            result.Add(new StatsSinkModel(dog, addr, string.IsNullOrEmpty(prefix) ? "envoy" : prefix, maxBytes));
        }
        return result;
    }
}
