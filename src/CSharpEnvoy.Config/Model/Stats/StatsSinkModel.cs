using CSharpEnvoy.Config.Model.Listener;

namespace CSharpEnvoy.Config.Model.Stats;

/// <summary>A StatsD sink: plain (<c>envoy.stat_sinks.statsd</c>) or with DogStatsD tags (<c>envoy.stat_sinks.dog_statsd</c>).</summary>
internal sealed record StatsSinkModel(bool DogStatsd, SocketAddressModel Address, string Prefix, int MaxBytesPerDatagram);
