using System.Diagnostics;
using CSharpEnvoy.Config.Model.Listener;
using CSharpEnvoy.Config.Model.Xds;
using CSharpEnvoy.DataPlane.Http;
using CSharpEnvoy.DataPlane.Listener;
using CSharpEnvoy.DataPlane.Stats;
using CSharpEnvoy.DataPlane.Upstream;
using CSharpEnvoy.DataPlane.Xds;
using Envoy.Service.Discovery.V3;
using Google.Protobuf.WellKnownTypes;
using Microsoft.Extensions.Logging.Abstractions;
using ProtoCla = Envoy.Config.Endpoint.V3.ClusterLoadAssignment;
using ProtoCluster = Envoy.Config.Cluster.V3.Cluster;

namespace CSharpEnvoy.Benchmarks;

/// <summary>
/// Applying xDS at scale, straight into the xDS manager (no gRPC): a state-of-the-world CDS push of 10,000 EDS
/// clusters and the EDS push of their 100,000 endpoints (time, managed heap kept), then one cluster's endpoints
/// changing among the 10,000, as a delta update and as a state-of-the-world EDS push where 9,999 assignments are
/// unchanged. Checks that an unrelated cluster's host set is not rebuilt.
/// Run: <c>dotnet run -c Release --project bench/CSharpEnvoy.Benchmarks -- xds</c>.
/// </summary>
internal static class XdsPushBenchmark
{
    private const int Clusters = 10_000;
    private const int EndpointsPerCluster = 10;

    private sealed class NoListeners : IListenerRuntime
    {
        public HttpConnectionManager CreateConnectionManager(HttpConnectionManagerModel model) => throw new NotSupportedException();
        public Task<ListenerHost> StartListenerAsync(ListenerModel model, IReadOnlyList<HttpConnectionManager?> hcms, ListenSocket? socket, CancellationToken ct) =>
            throw new NotSupportedException();
        public void RemoveListener(ListenerHost host) { }
        public IReadOnlyList<ListenerHost> Listeners => [];
        public TimeSpan DrainTime => TimeSpan.FromSeconds(1);
    }

    private static ProtoCluster Cluster(int i) => new()
    {
        Name = "cluster-" + i,
        Type = ProtoCluster.Types.DiscoveryType.Eds,
        ConnectTimeout = Duration.FromTimeSpan(TimeSpan.FromSeconds(1)),
        EdsClusterConfig = new ProtoCluster.Types.EdsClusterConfig
        {
            EdsConfig = new Envoy.Config.Core.V3.ConfigSource { Ads = new Envoy.Config.Core.V3.AggregatedConfigSource(), ResourceApiVersion = Envoy.Config.Core.V3.ApiVersion.V3 },
        },
    };

    private static ProtoCla Assignment(int i, int portBase)
    {
        var cla = new ProtoCla { ClusterName = "cluster-" + i };
        var lle = new Envoy.Config.Endpoint.V3.LocalityLbEndpoints();
        for (var e = 0; e < EndpointsPerCluster; e++)
            lle.LbEndpoints.Add(new Envoy.Config.Endpoint.V3.LbEndpoint
            {
                Endpoint = new Envoy.Config.Endpoint.V3.Endpoint
                {
                    Address = new Envoy.Config.Core.V3.Address
                    {
                        SocketAddress = new Envoy.Config.Core.V3.SocketAddress { Address = $"10.{i / 256 % 256}.{i % 256}.{e + 1}", PortValue = (uint)(portBase + e) },
                    },
                },
            });
        cla.Endpoints.Add(lle);
        return cla;
    }

    public static async Task RunAsync()
    {
        var stats = new StatsStore();
        var clusters = new ClusterManager(stats, NullLoggerFactory.Instance);
        var config = new XdsModel(new AdsModel("xds", XdsApiType.StateOfTheWorld), null, ConfigSourceModel.AdsDefault);
        var manager = new XdsManager(config, new Envoy.Config.Core.V3.Node(), clusters, new NoListeners(), [], [], stats, NullLogger.Instance);

        var cds = Enumerable.Range(0, Clusters).Select(i => Any.Pack(Cluster(i))).ToList();
        var eds = Enumerable.Range(0, Clusters).Select(i => Any.Pack(Assignment(i, 8000))).ToList();
        var heapInputs = Heap();

        var sw = Stopwatch.StartNew();
        var cpu = Cpu();
        Check(await manager.ApplySotwAsync(XdsTypes.Cluster, "v1", cds));
        var cdsTime = sw.Elapsed;
        var cdsCpu = Cpu() - cpu;
        var heapClusters = Heap();
        sw.Restart();
        cpu = Cpu();
        Check(await manager.ApplySotwAsync(XdsTypes.Endpoint, "v1", eds));
        var edsTime = sw.Elapsed;
        var edsCpu = Cpu() - cpu;
        var heapApplied = Heap();
        var hosts = clusters.Clusters.Values.Sum(c => c.PrioritySet.Hosts.Length);
        Console.WriteLine($"machine load average: {LoadAverage()} on {Environment.ProcessorCount} cores (wall times stretch with it; CPU times much less)");
        Console.WriteLine($"SotW CDS push of {Clusters:N0} clusters: {cdsTime.TotalMilliseconds:N0} ms wall, {cdsCpu.TotalMilliseconds:N0} ms CPU");
        Console.WriteLine($"managed heap per cluster (stats, pools, load balancer, kept resource; before EDS): {(heapClusters - heapInputs) / 1024.0 / Clusters:N1} KB");
        Console.WriteLine($"SotW EDS push of {hosts:N0} endpoints:  {edsTime.TotalMilliseconds:N0} ms wall, {edsCpu.TotalMilliseconds:N0} ms CPU");
        Console.WriteLine($"CDS + EDS total: {(cdsTime + edsTime).TotalMilliseconds:N0} ms wall, {(cdsCpu + edsCpu).TotalMilliseconds:N0} ms CPU; managed heap kept by csenvoy: {(heapApplied - heapInputs) / 1048576.0:N1} MB (inputs excluded), whole heap {heapApplied / 1048576.0:N1} MB");

        var unrelated = clusters.Get("cluster-1")!.PrioritySet;
        var changed = 5_000;
        var delta = new List<double>();
        var deltaCpu = new List<double>();
        Heap(); // no collection of the pushes above is charged to the small updates
        for (var round = 0; round < 200; round++)
        {
            var r = new Resource { Name = "cluster-" + changed, Version = "d" + round, Resource_ = Any.Pack(Assignment(changed, 9000 + round)) };
            sw.Restart();
            cpu = Cpu();
            Check(await manager.ApplyDeltaAsync(XdsTypes.Endpoint, "d" + round, [r], []));
            delta.Add(sw.Elapsed.TotalMilliseconds);
            deltaCpu.Add((Cpu() - cpu).TotalMilliseconds);
        }
        Console.WriteLine($"one-cluster EDS change (delta, 1 resource): median {Median(delta):N3} ms wall (best {delta.Min():N3} ms), {deltaCpu.Average():N3} ms CPU (average over 200: process CPU time ticks in 10 ms)");

        var sotw = new List<double>();
        var sotwCpu = new List<double>();
        for (var round = 0; round < 10; round++)
        {
            eds[changed] = Any.Pack(Assignment(changed, 10000 + round));
            sw.Restart();
            cpu = Cpu();
            Check(await manager.ApplySotwAsync(XdsTypes.Endpoint, "s" + round, eds));
            sotw.Add(sw.Elapsed.TotalMilliseconds);
            sotwCpu.Add((Cpu() - cpu).TotalMilliseconds);
        }
        Console.WriteLine($"one-cluster EDS change (SotW, {Clusters:N0} assignments, 9,999 unchanged): median {Median(sotw):N1} ms wall (best {sotw.Min():N1} ms), {Median(sotwCpu):N1} ms CPU");
        Console.WriteLine($"unrelated cluster's priority set untouched: {ReferenceEquals(unrelated, clusters.Get("cluster-1")!.PrioritySet)}");
        Console.WriteLine($"changed cluster's first endpoint port: {clusters.Get("cluster-" + changed)!.PrioritySet.Hosts[0].Address.Port}");
        await manager.DisposeAsync();
    }

    private static TimeSpan Cpu() => Process.GetCurrentProcess().TotalProcessorTime;

    private static string LoadAverage()
    {
        try
        {
            return File.ReadAllText("/proc/loadavg").Split(' ')[0];
        }
        catch (IOException)
        {
            return "?";
        }
    }

    private static void Check(string? error)
    {
        if (error is not null) throw new InvalidOperationException(error);
    }

    private static long Heap()
    {
        GC.Collect(2, GCCollectionMode.Forced, blocking: true, compacting: true);
        GC.WaitForPendingFinalizers();
        return GC.GetTotalMemory(forceFullCollection: true);
    }

    private static double Median(List<double> values)
    {
        var sorted = values.Order().ToList();
        return sorted[sorted.Count / 2];
    }
}
