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
        public CSharpEnvoy.DataPlane.Listener.DrainSequence StartDrain() => new(CSharpEnvoy.DataPlane.Listener.DrainStrategy.Immediate, DrainTime, TimeProvider.System);
    }

    internal static ProtoCluster Cluster(int i) => new()
    {
        Name = "cluster-" + i,
        Type = ProtoCluster.Types.DiscoveryType.Eds,
        ConnectTimeout = Duration.FromTimeSpan(TimeSpan.FromSeconds(1)),
        EdsClusterConfig = new ProtoCluster.Types.EdsClusterConfig
        {
            EdsConfig = new Envoy.Config.Core.V3.ConfigSource { Ads = new Envoy.Config.Core.V3.AggregatedConfigSource(), ResourceApiVersion = Envoy.Config.Core.V3.ApiVersion.V3 },
        },
    };

    internal static ProtoCla Assignment(int i, int portBase)
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

    /// <param name="warm">First apply the same pushes to a throw-away manager, so the measured pass runs compiled code
    /// (what a ReadyToRun or Native AOT binary runs from the start) instead of paying the JIT on its first push.</param>
    public static async Task RunAsync(bool warm, bool allocations = false)
    {
        using var sampler = allocations ? new AllocationSampler() : null;
        if (warm)
        {
            var warmStats = new StatsStore();
            var warmClusters = new ClusterManager(warmStats, NullLoggerFactory.Instance);
            var warmManager = new XdsManager(new XdsModel(new AdsModel("xds", XdsApiType.StateOfTheWorld), null, ConfigSourceModel.AdsDefault),
                new Envoy.Config.Core.V3.Node(), warmClusters, new NoListeners(), [], [], warmStats, NullLogger.Instance);
            Check(await warmManager.ApplySotwAsync(XdsTypes.Cluster, "w", Enumerable.Range(0, Clusters).Select(i => Any.Pack(Cluster(i))).ToList()));
            Check(await warmManager.ApplySotwAsync(XdsTypes.Endpoint, "w", Enumerable.Range(0, Clusters).Select(i => Any.Pack(Assignment(i, 7000))).ToList()));
            await warmManager.DisposeAsync();
            foreach (var c in warmClusters.Clusters.Values) c.Dispose();
            Console.WriteLine("(warm: the pushes below run after the same pushes were applied once to another manager)");
        }
        var stats = new StatsStore();
        var clusters = new ClusterManager(stats, NullLoggerFactory.Instance);
        var config = new XdsModel(new AdsModel("xds", XdsApiType.StateOfTheWorld), null, ConfigSourceModel.AdsDefault);
        var manager = new XdsManager(config, new Envoy.Config.Core.V3.Node(), clusters, new NoListeners(), [], [], stats, NullLogger.Instance);

        var cds = Enumerable.Range(0, Clusters).Select(i => Any.Pack(Cluster(i))).ToList();
        var eds = Enumerable.Range(0, Clusters).Select(i => Any.Pack(Assignment(i, 8000))).ToList();
        var heapInputs = Heap();

        var sw = Stopwatch.StartNew();
        var cpu = Cpu();
        var gc = GcMark.Now();
        sampler?.Start();
        Check(await manager.ApplySotwAsync(XdsTypes.Cluster, "v1", cds));
        var cdsTypes = sampler?.Stop(25);
        var cdsTime = sw.Elapsed;
        var cdsCpu = Cpu() - cpu;
        var cdsGc = GcMark.Now() - gc;
        var heapClusters = Heap();
        sw.Restart();
        cpu = Cpu();
        gc = GcMark.Now();
        sampler?.Start();
        Check(await manager.ApplySotwAsync(XdsTypes.Endpoint, "v1", eds));
        var edsTypes = sampler?.Stop(25);
        var edsTime = sw.Elapsed;
        var edsCpu = Cpu() - cpu;
        var edsGc = GcMark.Now() - gc;
        var heapApplied = Heap();
        var hosts = clusters.Clusters.Values.Sum(c => c.PrioritySet.Hosts.Length);
        Console.WriteLine($"machine load average: {LoadAverage()} on {Environment.ProcessorCount} cores (wall times stretch with it; CPU times much less)");
        Console.WriteLine($"SotW CDS push of {Clusters:N0} clusters: {cdsTime.TotalMilliseconds:N0} ms wall, {cdsCpu.TotalMilliseconds:N0} ms CPU; {cdsGc.Describe(Clusters, "cluster")}");
        Console.WriteLine($"managed heap per cluster (stats, pools, load balancer, kept resource; before EDS): {(heapClusters - heapInputs) / 1024.0 / Clusters:N1} KB");
        Console.WriteLine($"SotW EDS push of {hosts:N0} endpoints:  {edsTime.TotalMilliseconds:N0} ms wall, {edsCpu.TotalMilliseconds:N0} ms CPU; {edsGc.Describe(hosts, "endpoint")}");
        Console.WriteLine($"CDS + EDS total: {(cdsTime + edsTime).TotalMilliseconds:N0} ms wall, {(cdsCpu + edsCpu).TotalMilliseconds:N0} ms CPU; managed heap kept by csenvoy: {(heapApplied - heapInputs) / 1048576.0:N1} MB (inputs excluded), whole heap {heapApplied / 1048576.0:N1} MB");

        if (cdsTypes is not null && edsTypes is not null)
        {
            Console.WriteLine("largest allocators (sampled), CDS push:");
            foreach (var (type, bytes) in cdsTypes) Console.WriteLine($"  {bytes / 1048576.0,8:N1} MB  {type}");
            Console.WriteLine("largest allocators (sampled), EDS push:");
            foreach (var (type, bytes) in edsTypes) Console.WriteLine($"  {bytes / 1048576.0,8:N1} MB  {type}");
        }

        Phases(cds, eds);

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

    /// <summary>The CDS push's steps one at a time over the same 10,000 clusters (warm): where a cluster's CPU goes.</summary>
    private static void Phases(List<Any> cds, List<Any> eds)
    {
        var protos = new List<ProtoCluster>(cds.Count);
        var decode = Step(() => { foreach (var any in cds) protos.Add(ProtoCluster.Parser.ParseFrom(any.Value)); });
        var errors = new CSharpEnvoy.Config.Loading.ConfigErrors();
        var check = Step(() => { foreach (var p in protos) CSharpEnvoy.Config.Validation.SupportChecker.Check(p, p.Name, errors); });
        var models = new List<CSharpEnvoy.Config.Model.Cluster.ClusterModel>(protos.Count);
        var translate = Step(() => { foreach (var p in protos) models.Add(CSharpEnvoy.Config.Translation.ClusterTranslator.Translate(p, p.Name, errors)!); });
        var equal = 0;
        var compare = Step(() => { for (var i = 0; i < protos.Count; i++) if (protos[i].Equals(protos[(i + 1) % protos.Count])) equal++; });
        var statsOnly = Step(() =>
        {
            var onlyStats = new StatsStore();
            foreach (var m in models) _ = new ClusterStats(onlyStats, m.Name);
        });
        var stats = new StatsStore();
        var live = new List<CSharpEnvoy.DataPlane.Upstream.Cluster>(models.Count);
        var create = Step(() => { foreach (var m in models) live.Add(new CSharpEnvoy.DataPlane.Upstream.Cluster(m, stats, NullLogger.Instance)); });
        if (errors.HasErrors || equal != 0) throw new InvalidOperationException(errors.ToString());
        Console.WriteLine($"CDS steps for {cds.Count:N0} clusters, µs of CPU per cluster: decode {Per(decode)}, support check {Per(check)}, translate {Per(translate)}, " +
            $"compare with the previous version {Per(compare)}, create the live cluster {Per(create)}; ClusterStats alone in a fresh store {Per(statsOnly)}");

        var assignments = new List<ProtoCla>(eds.Count);
        var edsDecode = Step(() => { foreach (var any in eds) assignments.Add(ProtoCla.Parser.ParseFrom(any.Value)); });
        var edsCheck = Step(() => { foreach (var a in assignments) CSharpEnvoy.Config.Validation.SupportChecker.Check(a, a.ClusterName, errors); });
        var endpoints = new List<CSharpEnvoy.Config.Model.Cluster.LoadAssignmentModel>(assignments.Count);
        var edsTranslate = Step(() =>
        {
            foreach (var a in assignments)
                endpoints.Add(CSharpEnvoy.Config.Translation.ClusterTranslator.TranslateLoadAssignment(a, a.ClusterName, errors, CSharpEnvoy.Config.Model.Cluster.DiscoveryType.Eds));
        });
        var edsCompare = Step(() => { for (var i = 0; i < assignments.Count; i++) if (assignments[i].Equals(assignments[(i + 1) % assignments.Count])) equal++; });
        // What the xDS client runs for plain assignments instead of the three steps above.
        var wire = Step(() =>
        {
            foreach (var any in eds)
                if (CSharpEnvoy.Config.Translation.LoadAssignmentWireTranslator.TryTranslate(any.Value.Span, out _) is null) equal++;
        });
        var set = Step(() => { for (var i = 0; i < live.Count; i++) live[i].SetEdsEndpoints(endpoints[i]); });
        foreach (var c in live) c.Dispose();
        if (errors.HasErrors || equal != 0) throw new InvalidOperationException(errors.ToString());
        Console.WriteLine($"EDS steps for {eds.Count:N0} assignments, µs of CPU per assignment of {EndpointsPerCluster}: decode {Per(edsDecode)}, support check {Per(edsCheck)}, " +
            $"translate {Per(edsTranslate)} (all three straight from the wire, as applied: {Per(wire)}), compare with the previous version {Per(edsCompare)}, " +
            $"set the cluster's hosts {Per(set)}");

        string Per(TimeSpan t) => (t.TotalMicroseconds / cds.Count).ToString("N1");

        static TimeSpan Step(Action step)
        {
            Heap(); // each step starts from a collected heap
            var cpu = Cpu();
            step();
            return Cpu() - cpu;
        }
    }

    /// <summary>Allocation and collections between two points (the whole process; the pushes run alone).</summary>
    private readonly record struct GcMark(long Allocated, int Gen0, int Gen1, int Gen2, TimeSpan Paused)
    {
        public static GcMark Now() => new(GC.GetTotalAllocatedBytes(precise: false), GC.CollectionCount(0), GC.CollectionCount(1),
            GC.CollectionCount(2), GC.GetTotalPauseDuration());

        public static GcMark operator -(GcMark a, GcMark b) =>
            new(a.Allocated - b.Allocated, a.Gen0 - b.Gen0, a.Gen1 - b.Gen1, a.Gen2 - b.Gen2, a.Paused - b.Paused);

        public string Describe(int count, string unit) =>
            $"allocated {Allocated / 1048576.0:N0} MB ({Allocated / 1024.0 / count:N1} KB per {unit}), collections gen0/1/2 {Gen0}/{Gen1}/{Gen2}, paused {Paused.TotalMilliseconds:N0} ms";
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
